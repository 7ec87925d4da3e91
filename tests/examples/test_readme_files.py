"""The README's "Your own model and data" shows examples/tabular file for file."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_the_readme_shows_the_tabular_example_as_it_is() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Your own model and data"):readme.index("## Reading the results")]
    blocks = re.findall(r"<!-- file: (\S+) -->\n```\w+\n(.*?)```", section, re.S)
    assert {name for name, _ in blocks} == {
        "tabular_example/nets.py", "tabular_example/data.py", "conf/model/tabular_mlp.yaml",
        "conf/dataset/breast_cancer.yaml", "conf/sweep/tabular.yaml"}
    for name, text in blocks:
        assert text == (ROOT / "examples" / "tabular" / name).read_text(), name
    # the commands it shows are the ones tests/examples/test_examples.py runs
    for command in ("sweeps launch --config-dir conf sweep=tabular", "sweeps confirm tabular",
                    "sweeps report tabular", "sweeps reproduce tabular --trial best"):
        assert command in section

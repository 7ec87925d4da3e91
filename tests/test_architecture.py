"""The layers of the code hold: import-linter's contracts (pyproject.toml) pass, and fail on
a wrong import; no module outgrows a reader.

`lint-imports` reads the imports statically (grimp), so these tests are fast and need
nothing but the source.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ("trainer knows nothing of the sweep layer, Optuna or MLflow",
             "sweeps layers: cli > api > run > report | tracking > search > store",
             "no import cycles among the modules of any package",
             "sweeps uses the trainer only through trainer.api",
             "trainer.config composes and validates configs without torch")


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports", path=os.path.dirname(sys.executable)) or shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports is not installed (import-linter, in the dev extra)")
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([exe, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_import_contracts_hold() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in CONTRACTS:
        assert f"{name} KEPT" in result.stdout


@pytest.mark.parametrize(("module", "line", "broken"), [
    ("trainer/errors.py", "import optuna", CONTRACTS[0]),
    ("trainer/config/spec.py", "from sweeps.search import space", CONTRACTS[0]),
    ("sweeps/report/stats.py", "from sweeps.run import worker", CONTRACTS[1]),
    ("sweeps/tracking/clients.py", "from sweeps.run import trial", CONTRACTS[1]),
    ("sweeps/store/urls.py", "from sweeps.search import studies", CONTRACTS[1]),
    ("sweeps/report/summary.py", "from sweeps.tracking import runs", CONTRACTS[1]),
    ("sweeps/tracking/clients.py", "from sweeps.tracking import runs", CONTRACTS[2]),
    ("trainer/callbacks.py", "from trainer import loop", CONTRACTS[2]),
    ("sweeps/report/stats.py", "from trainer.loop import fit", CONTRACTS[3]),
    ("sweeps/api/frames.py", "from trainer import errors", CONTRACTS[3]),
    ("sweeps/run/worker.py", "from trainer.config import compose", CONTRACTS[3]),
    ("trainer/config/spec.py", "import torch", CONTRACTS[4]),
    ("trainer/config/compose.py", "from trainer.data import prepare", CONTRACTS[4]),
    ("trainer/config/targets.py", "import numpy", CONTRACTS[4]),
])
def test_a_wrong_import_breaks_its_contract(tmp_path: Path, module: str, line: str, broken: str) -> None:
    for part in ("sweeps", "trainer"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # the wrong import under test\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    assert f"{broken} BROKEN" in result.stdout


def _modules() -> list[Path]:
    return sorted(p for part in ("sweeps", "trainer") for p in (ROOT / part).rglob("*.py"))


def test_no_module_over_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in _modules() if (n := p.read_text().count("\n")) > 400}
    assert not long, long


def test_no_class_over_150_or_function_over_60_lines_in_sweeps() -> None:
    found = {}
    for path in _modules():
        if path.relative_to(ROOT).parts[0] != "sweeps":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            limit = 150 if isinstance(node, ast.ClassDef) else \
                60 if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) else None
            if limit is not None and node.end_lineno - node.lineno + 1 > limit:
                found[f"{path.relative_to(ROOT)}:{node.name}"] = node.end_lineno - node.lineno + 1
    assert not found, found


def test_every_sweeps_package_says_what_it_does_and_may_import() -> None:
    for init in sorted((ROOT / "sweeps").glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and "import" in doc, f"{init.relative_to(ROOT)}: no docstring on what it may import"


def test_the_wheel_lists_every_package() -> None:
    """pyproject.toml names its packages one by one (conf/ ships as `sweeps_conf`): a new
    subpackage left out would be missing from an installed (non-editable) copy."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts)
             for part in ("sweeps", "trainer") for init in (ROOT / part).rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)


def test_the_docs_map_and_each_package_docstring_name_every_module() -> None:
    """The map of the code in the docs matches the tree: a module added without a line there
    (or in its package's docstring) is a room nobody will find."""
    page = (ROOT / "docs" / "explanation" / "architecture.md").read_text()
    table = page[page.index("## Map of the code"):page.index("## Where to look first")]
    top = next(line for line in table.splitlines() if line.startswith("| `trainer/` |"))
    for module in sorted(p.stem for p in (ROOT / "trainer").glob("*.py") if p.stem[0] != "_"):
        assert f"`{module}`" in top, f"the map row of trainer/ lacks `{module}`"
    for init in sorted([*(ROOT / "sweeps").glob("*/__init__.py"), *(ROOT / "trainer").glob("*/__init__.py")]):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        room = f"{init.parent.parent.name}/{init.parent.name}/"
        rows = [line for line in table.splitlines() if line.startswith(f"| `{room}`")]
        assert len(rows) == 1, f"no map row for {room}"
        for module in sorted(p.stem for p in init.parent.glob("*.py") if p.stem != "__init__"):
            assert f"`{module}`" in doc, f"{init.relative_to(ROOT)} does not name `{module}`"
            assert f"`{module}`" in rows[0], f"the map row of {room} lacks `{module}`"

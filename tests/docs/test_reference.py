"""The generated reference pages say what the code does: every config key the page lists is a
key of the composed config, every key of the composed config is listed, each with a meaning;
every command and option of the CLI is on the CLI page; every exit code is explained."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from trainer.config.compose import compose
from trainer.validation import to_container

ROOT = Path(__file__).resolve().parents[2]


def _reference() -> Any:
    path = ROOT / "docs" / "scripts" / "reference.py"
    spec = importlib.util.spec_from_file_location("docs_reference", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("docs_reference", module)
    spec.loader.exec_module(module)
    return module


reference = _reference()
PAGE = reference.config_reference()


def _section(page: str, heading: str) -> str:
    """The text under `heading` up to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    start = page.index(heading + "\n")
    rest = page[start + len(heading) + 1:]
    ends = [m.start() for m in re.finditer(rf"^#{{1,{len(level)}}} ", rest, re.M)]
    return rest[:ends[0]] if ends else rest


def _rows(text: str) -> dict[str, tuple[str, str, str]]:
    """key -> (allowed, default, meaning) of every table row in `text`."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\| `([^`]+)` \| (.*?) \| (.*?) \| (.*?) \|$", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3), m.group(4))
    return rows


def _keys(section: Mapping[str, Any], prefix: str) -> set[str]:
    out = set()
    for key, value in section.items():
        if key in ("name", "_target_"):
            continue
        if isinstance(value, Mapping) and key in ("loader", "sampler", "pruner"):
            out |= _keys(value, f"{prefix}{key}.")
        else:
            out.add(f"{prefix}{key}")
    return out


@pytest.mark.parametrize("group", ["optimizer", "schedule", "model", "dataset"])
def test_every_option_of_a_group_lists_exactly_its_composed_keys(group: str) -> None:
    for option in reference.options(group):
        cfg = to_container(compose([f"{group}={option}"], "config"))
        listed = set(_rows(_section(PAGE, f"{'####' if group == 'dataset' else '###'} `{group}={option}`")))
        composed = _keys(cfg[group], f"{group}.")
        if group == "dataset":  # the page lists the trainer's keys once, above the options
            common = set(_rows(_section(PAGE, "## dataset")))
            listed |= {k for k in common if not k.startswith("dataset.loader.")}
            composed -= {"dataset.loader"}
        assert listed >= composed, (option, composed - listed)
        if group != "dataset":
            assert listed == composed, (option, listed ^ composed)


def test_the_trainer_and_sweep_keys_are_listed_exactly() -> None:
    cfg = to_container(compose([], "sweeps"))
    assert set(_rows(_section(PAGE, "## trainer"))) == _keys(cfg["trainer"], "trainer.")
    sweep_rows = set(_rows(_section(PAGE, "## sweep")))
    sweep_rows |= set(_rows(_section(PAGE, "### sweep.sampler")))
    sweep_rows |= set(_rows(_section(PAGE, "### sweep.pruner")))
    assert _keys(cfg["sweep"], "sweep.") <= sweep_rows, _keys(cfg["sweep"], "sweep.") - sweep_rows
    for group in ("storage", "tracking"):
        for option in reference.options(group):
            composed = _keys(to_container(compose([f"{group}={option}"], "sweeps"))[group], f"{group}.")
            assert set(_rows(_section(PAGE, f"### `{group}={option}`"))) == composed, option
    slurm = to_container(compose(["launcher=slurm"], "sweeps"))["launcher"]
    assert set(_rows(_section(PAGE, "### `launcher=slurm`"))) == _keys(slurm, "launcher.")


def test_every_bundled_search_dimension_is_listed() -> None:
    cfg = to_container(compose([], "sweeps"))
    for section, dims in cfg["search"].items():
        listed = _section(PAGE, f"#### `search.{section}`")
        for dim, spec in dims.items():
            assert f"| `{dim}` | `{spec['key']}` |" in listed, (section, dim)


def test_every_listed_key_has_a_meaning_and_what_it_allows() -> None:
    rows = _rows(PAGE)
    assert len(rows) > 100
    for key, (allowed, _default, meaning) in rows.items():
        assert allowed.strip() and meaning.strip(), f"{key} has no meaning or range in its key table"


def test_a_listed_default_is_the_value_a_composed_config_holds() -> None:
    cfg = to_container(compose(["optimizer=adam_to_sgd", "schedule=cyclic"], "config"))
    rows = _rows(PAGE)
    assert rows["trainer.epochs"][1] == f"`{cfg['trainer']['epochs']}`"
    adam_to_sgd = _rows(_section(PAGE, "### `optimizer=adam_to_sgd`"))
    assert adam_to_sgd["optimizer.switch_at"][1] == f"`{cfg['optimizer']['switch_at']}`"
    assert adam_to_sgd["optimizer.swats_eps"][0] == "a number > 0"
    cyclic = _rows(_section(PAGE, "### `schedule=cyclic`"))
    assert cyclic["schedule.mode"][0] == "one of triangular, triangular2, exp_range"


def test_the_cli_page_has_every_command_and_option() -> None:
    import typer

    from sweeps.cli import app

    page = reference.cli_reference()
    group = typer.main.get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert f"## `sweeps {name}`" in page, name
        section = page[page.index(f"## `sweeps {name}`"):]
        section = section[:section.find("\n## ", 1)] if "\n## " in section[1:] else section
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--"):
                    assert f"`{opt}" in section, (name, opt)


def test_the_exit_codes_page_explains_every_code_the_cli_uses() -> None:
    from sweeps.cli.app import EXIT_CODES

    page = reference.exit_codes()
    for code in (0, 1, 2, 130, 143):
        assert code in EXIT_CODES and f"| `{code}` |" in page


def test_the_committed_reference_pages_are_what_the_code_makes_now() -> None:
    """docs/reference/ holds the generated pages for readers on GitHub; the site makes them
    again at build time. Stale ones fail here: `python docs/scripts/reference.py`."""
    for page, make in reference.PAGES.items():
        assert (ROOT / "docs" / page).read_text() == make(), (
            f"docs/{page} is out of date: run `python docs/scripts/reference.py`")

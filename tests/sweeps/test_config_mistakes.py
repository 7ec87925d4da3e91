"""Hydra packaging mistakes in a user's config dir are one line that says what to change,
and the error path that explains a composition error never recurses."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sweeps.cli import app

from .test_user_project import _nothing_written, project  # noqa: F401  (the fixture)

MISTAKES = {
    # a sweep file that overrides groups but lacks the package line (the keys go under sweep.)
    "sweep/nopkg.yaml": ("defaults:\n  - base\n  - override /dataset: blobs\nsweep:\n  name: nopkg\n",
                         "sweep=nopkg", "sweep/nopkg.yaml: its `override /dataset` is read as "
                         "`sweep.dataset` because the file lacks a package line"),
    # the same without a defaults list: Hydra composes it, under sweep.
    "sweep/flat.yaml": ("sweep:\n  name: flat\ntrainer:\n  epochs: 1\n", "sweep=flat",
                        "the sweep file's sections landed under `sweep.` (sweep.sweep, sweep.trainer)"),
    # a model file that repeats its group's name
    "model/nested.yaml": ("model:\n  _target_: userpkg.Net\n", "model=nested",
                          "model/nested.yaml nests its keys under `model:`"),
    # a model file with the sweep files' package line
    "model/lifted.yaml": ("# @package _global_\n_target_: userpkg.Net\n", "model=lifted",
                          "`_target_` (userpkg.Net) is at the top of the config: a model or dataset "
                          "file has `# @package _global_`; remove that line"),
}


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_a_packaging_mistake_is_one_line_with_the_fix(project: Path, cli: CliRunner,  # noqa: F811
                                                       name: str) -> None:
    text, choice, expected = MISTAKES[name]
    (project / "conf" / name).write_text(text)
    overrides = [choice] if choice.startswith("sweep=") else ["sweep=user", choice]
    result = cli.invoke(app, ["--config-dir", "conf", "launch", *overrides])
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0].startswith("error: ") and expected in lines[0], result.output
    assert ("_global_" in lines[0]) == (name != "model/nested.yaml")  # the fix names the line
    _nothing_written(project)


def test_the_error_path_composes_at_most_once_more(project: Path,  # noqa: F811
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown key's message composes again to list the allowed keys; that second
    composition has no hints of its own, so a file that fails every composition cannot
    make the error path recurse (it once did, until a RecursionError)."""
    from trainer.config import compose as compose_module
    from trainer.errors import UserError

    conf = project / "conf"
    monkeypatch.setenv("SWEEPS_COMPOSE_CACHE", "0")
    calls: list[bool] = []
    real = compose_module.compose

    def counted(overrides=(), config_name="config", *, config_dir=None, hints=True):  # type: ignore[no-untyped-def]
        calls.append(hints)
        return real(overrides, config_name, config_dir=config_dir, hints=hints)

    monkeypatch.setattr(compose_module, "compose", counted)
    with pytest.raises(UserError, match="nosuch='1': unknown key; allowed keys of the config"):
        compose_module.compose(["sweep=user", "nosuch=1"], "sweeps", config_dir=conf)
    assert calls == [True, False]
    # the hint-less composition of a failing override: the bare message, no further call
    calls.clear()
    err = compose_module._composition_error(
        Exception("Could not override 'trainer.nosuch'"), ["trainer.nosuch=1"], "sweeps", None, hints=False)
    assert str(err) == "trainer.nosuch='1': unknown key" and calls == []


@pytest.mark.parametrize(("override", "name", "target"), [
    ("model._target_=__main__.Net", "Net", "trainer.models.mlp"),
    ("trainer.loss={_target_: __main__.my_loss}", "my_loss", "torch.nn.CrossEntropyLoss")])
def test_a_target_in_the_callers_main_script_is_refused_before_workers_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, override: str, name: str, target: str) -> None:
    """A class of a notebook cell or a script imports in that process, not in the worker
    processes a launch starts: one line that says so, and nothing written."""
    import importlib
    import sys

    import sweeps

    module, _, attr = target.rpartition(".")
    monkeypatch.setattr(sys.modules["__main__"], name, getattr(importlib.import_module(module), attr),
                        raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(sweeps.ConfigError, match=r"worker processes cannot import: move it into a "
                       r"module of your package, or run the trials in that process"):
        sweeps.launch("quick", [override], workers=1)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(("override", "line"), [
    ("+storage.foo=1", "storage.foo=1: unknown key; allowed: grace_period, heartbeat_interval, "
                       "patience_s, shared_fs, url"),
    ("storage.heartbeat_interval=0", "storage.heartbeat_interval=0: must be an integer >= 1"),
    ("tracking.patience_s=-1", "tracking.patience_s=-1: must be a number >= 0")])
def test_a_bad_storage_or_tracking_key_is_one_line_and_nothing_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, override: str, line: str) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["launch", override])
    assert result.exit_code == 2
    assert f"error: {line}" in result.output
    assert not any(tmp_path.iterdir())

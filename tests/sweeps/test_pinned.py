"""A value the user sets is never silently replaced by the search: the user's value wins and
the dimension is dropped, unless the user gave the dimension too; either way one line says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeps.search import pinned
from sweeps.search.load import load_sweep

from .test_user_project import project  # noqa: F401  (the fixture)

SEARCH = {"common": {"batch_size": {"type": "categorical", "choices": [32, 1024],
                                    "key": "trainer.batch_size"},
                     "schedule": {"type": "categorical", "choices": ["constant", "step"], "key": "schedule"}},
          "sgd": {"lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True, "key": "optimizer.lr"}},
          "adam": {"lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True, "key": "optimizer.lr"},
                   "one_minus_beta1": {"type": "float", "low": 0.01, "high": 0.5, "key": "optimizer.betas.0",
                                       "transform": "one_minus"}},
          "rmsprop": {"lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True, "key": "optimizer.lr"}}}


def test_a_key_the_user_sets_drops_its_dimension_and_says_so_once_per_key() -> None:
    user = pinned.Written({"trainer.batch_size": "conf/sweep/mine.yaml", "optimizer.lr": "the command line",
                           "optimizer.betas": "the command line"}, {})
    search, notes = pinned.apply(SEARCH, user, ("common", "sgd", "adam"))
    assert set(search["common"]) == {"schedule"}
    assert search["sgd"] == {} and search["adam"] == {} and search["rmsprop"] == {}
    assert notes == [
        "note: trainer.batch_size is set in conf/sweep/mine.yaml, so your value is used: "
        "search.common.batch_size is not searched (give it a range to search it)",
        "note: optimizer.lr is set on the command line, so your value is used: search.{sgd,adam}.lr "
        "are not searched (give one a range to search it)",
        "note: optimizer.betas is set on the command line, so your value is used: "
        "search.adam.one_minus_beta1 is not searched (give it a range to search it)"]


def test_a_dimension_the_user_gave_too_wins_and_says_how_to_pin() -> None:
    user = pinned.Written({"trainer.batch_size": "conf/sweep/mine.yaml"},
                          {"search.common.batch_size": "the command line"})
    search, notes = pinned.apply(SEARCH, user, ("common", "sgd"))
    assert search["common"]["batch_size"] == SEARCH["common"]["batch_size"]
    assert notes == ["note: trainer.batch_size is set in conf/sweep/mine.yaml but search.common.batch_size "
                     "(set on the command line) searches it: the search wins; to pin it, set "
                     "search.common.batch_size: null"]


def test_the_command_line_beats_a_file_and_a_group_choice_pins_only_itself() -> None:
    """`schedule=cosine` on the command line over a sweep file that searches the schedule: the
    choice is pinned, the cosine schedule's own dimension is still searched."""
    search = {"common": {**SEARCH["common"],
                         "cos_min": {"type": "float", "low": 0.0, "high": 0.1, "key": "schedule.min_lr_ratio",
                                     "when": {"schedule": "cosine"}}}}
    user = pinned.Written({"schedule": pinned.CLI},
                          {"search.common.schedule": "the bundled sweep/quick.yaml"})
    out, notes = pinned.apply(search, user, ("common",))
    assert set(out["common"]) == {"batch_size", "cos_min"}
    assert notes == ["note: schedule is set on the command line, so your value is used: "
                     "search.common.schedule is not searched (give it a range to search it)"]
    # the other way round: a dimension on the command line beats a value in a file
    user = pinned.Written({"schedule": "conf/sweep/mine.yaml"}, {"search.common.schedule": pinned.CLI})
    out, notes = pinned.apply(search, user, ("common",))
    assert "schedule" in out["common"] and "the search wins" in notes[0]


def test_nothing_the_user_did_not_write_changes_the_search() -> None:
    search, notes = pinned.apply(SEARCH, pinned.Written({"trainer.epochs": "x", "schedule.gamma": "y"}, {}),
                                 ("common", "sgd"))
    assert search == SEARCH and notes == []
    off = {**SEARCH, "common": {**SEARCH["common"], "batch_size": None}}  # turned off with null
    assert "batch_size" not in pinned.apply(off, pinned.Written({}, {}), ("common",))[0]["common"]


def test_what_the_user_wrote_is_read_from_the_sweep_files_and_the_command_line(
        project: Path) -> None:  # noqa: F811
    (project / "conf" / "sweep" / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - user\n  - override /schedule: cosine\n"
        "sweep:\n  name: mine\ntrainer:\n  batch_size: 64\n")
    conf = str(project / "conf")
    got = pinned.written(["sweep=mine", "optimizer.lr=0.1", "+search.common.x={type:int}"], "mine", conf)
    assert got.keys["trainer.batch_size"] == "conf/sweep/mine.yaml"
    assert got.keys["schedule"] == "conf/sweep/mine.yaml"  # the group choice of its defaults
    assert got.keys["trainer.epochs"] == "conf/sweep/user.yaml"  # through its defaults list
    assert got.keys["optimizer.lr"] == "the command line"
    assert got.dims["search.common.batch_size"] == "conf/sweep/user.yaml"
    assert got.dims["search.common.x"] == "the command line"
    assert "trainer.progress" in got.keys  # the bundled base sweep is a sweep file of the chain
    assert got.keys["trainer.progress"] == "the bundled sweep/base.yaml"


def test_a_sweep_file_s_batch_size_is_used_not_searched(project: Path) -> None:  # noqa: F811
    """The case a user met: `trainer.batch_size: 64` in the sweep file, and the bundled
    common search sampled 32..1024 over it."""
    (project / "conf" / "sweep" / "bs.yaml").write_text(
        "# @package _global_\ndefaults:\n  - base\n  - override /dataset: blobs\n"
        "  - override /model: user_net\nsweep:\n  name: bs\n  optimizers: [sgd]\n  n_trials: 1\n"
        "trainer:\n  epochs: 2\n  batch_size: 64\n")
    conf = str(project / "conf")
    spec = load_sweep(["sweep=bs"], conf)
    (study,) = spec.studies
    assert "batch_size" not in {d.name for d in study.space.dims}
    assert study.base["trainer"]["batch_size"] == 64
    assert spec.notes == ("note: trainer.batch_size is set in conf/sweep/bs.yaml, so your value is "
                          "used: search.common.batch_size is not searched (give it a range to search it)",)
    searched = load_sweep(["sweep=bs", "search.common.batch_size.choices=[32,128]"], conf)
    assert "batch_size" in {d.name for d in searched.studies[0].space.dims}
    assert "the search wins" in searched.notes[0]
    with pytest.raises(Exception, match="must be a mapping"):
        load_sweep(["sweep=bs", "search.common.schedule=3"], conf)


def test_a_one_epoch_sweep_narrows_the_bundled_warmup_and_refuses_the_users_with_the_fix(
        project: Path) -> None:  # noqa: F811
    from trainer.errors import ConfigError

    conf = str(project / "conf")
    # the bundled range (the user sweep does not write warmup_epochs)
    (project / "conf" / "sweep" / "one.yaml").write_text(
        "# @package _global_\ndefaults:\n  - base\n  - override /dataset: blobs\n"
        "  - override /model: user_net\nsweep:\n  name: one\n  optimizers: [sgd]\n  n_trials: 1\n"
        "trainer:\n  epochs: 1\n")
    spec = load_sweep(["sweep=one"], conf)
    warm = next(d for d in spec.studies[0].space.dims if d.name == "warmup_epochs")
    assert (warm.low, warm.high) == (0.0, 0.5)
    assert "note: trainer.epochs=1: the warmup search range is narrowed to [0, 0.5] epochs" in spec.notes[-1]
    with pytest.raises(ConfigError, match=r"narrow it \(search.common.warmup_epochs.high=0.5\) or turn "
                                          r"it off \(search.common.warmup_epochs=null\)"):
        load_sweep(["sweep=one", "search.common.warmup_epochs.high=1.0"], conf)
    off = load_sweep(["sweep=one", "search.common.warmup_epochs=null"], conf)
    assert "warmup_epochs" not in {d.name for d in off.studies[0].space.dims}

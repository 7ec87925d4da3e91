"""The sweep's TPE reads its study through a `TrialSnapshot` (incremental reads on a database)
and samples exactly what Optuna's own TPESampler samples on the same history: on a database
storage (SQLite files here; PostgreSQL in the scale-out tests), with pruned trials and their
curves, failed, queued and running trials (Optuna 5's constant liar reads those), trials
that finish between two samples, and with `sweep.sampler.history`."""

from __future__ import annotations

import functools
import math
import random
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from sweeps.search import history as history_mod
from sweeps.search.history import WindowedTPESampler
from sweeps.store import claim_queries

SPACE = {"lr": (1e-5, 1e-1), "one_minus_beta1": (0.01, 0.5), "eps": (1e-10, 1e-6)}


def _suggest(trial: optuna.Trial) -> dict[str, Any]:
    params: dict[str, Any] = {k: trial.suggest_float(k, lo, hi, log=True) for k, (lo, hi) in SPACE.items()}
    params["batch_size"] = trial.suggest_categorical("batch_size", [64, 128, 256])
    return params


def _value(params: dict[str, Any], rng: random.Random) -> float:
    return 0.9 - 0.05 * math.log10(params["lr"] / 3e-3) ** 2 + rng.uniform(0, 0.02)


def _grow(url: str, n: int, seed: int) -> None:
    """`n` trials finished by a random sampler (some pruned with a curve, one failed), then
    a queued trial popped and left running with its parameters: the same for the same seed."""
    rng = random.Random(seed)
    study = optuna.load_study(study_name="s", storage=url, sampler=optuna.samplers.RandomSampler(seed))
    for i in range(n):
        trial = study.ask()
        params = _suggest(trial)
        trial.set_user_attr("config", {"optimizer": {"lr": params["lr"]}})
        value = _value(params, rng)
        for epoch in (1, 2):
            trial.report(value - 0.1 / epoch, epoch)
        pruned = rng.random() < 0.3
        state = TrialState.FAIL if i == 3 else TrialState.PRUNED if pruned else TrialState.COMPLETE
        study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
    study.enqueue_trial({"lr": 1e-3})
    _suggest(study.ask())  # running, sampled


class _Side:
    """One database and one sampler on it: the sweep's (`ours`) or Optuna's."""

    def __init__(self, path: Path, sampler: optuna.samplers.BaseSampler) -> None:
        self.url = f"sqlite:///{path}"
        optuna.create_study(study_name="s", storage=self.url, direction="maximize")
        self.study = optuna.load_study(study_name="s", storage=self.url, sampler=sampler)
        self.sampled: list[optuna.Trial] = []

    def sample(self) -> dict[str, Any]:
        """A trial as the worker makes one: its row, then `optuna.Trial` and the suggests."""
        trial_id = self.study._storage.create_new_trial(self.study._study_id)
        self.study._thread_local.cached_all_trials = None
        trial = optuna.Trial(self.study, trial_id)
        self.sampled.append(trial)
        return _suggest(trial)

    def finish_oldest_sampled(self) -> None:
        trial = self.sampled.pop(0)
        self.study.tell(trial, 0.5 + 0.01 * len(self.sampled))


def _sides(tmp_path: Path, ours: WindowedTPESampler, theirs: optuna.samplers.BaseSampler
           ) -> tuple[_Side, _Side]:
    return _Side(tmp_path / "ours.db", ours), _Side(tmp_path / "theirs.db", theirs)


def _same_samples(a: _Side, b: _Side, rounds: int = 4) -> None:
    for side in (a, b):
        _grow(side.url, 12, seed=0)
    for r in range(rounds):
        got, want = a.sample(), b.sample()
        assert got == want, r
        if r % 2:  # a running trial finishes between samples (constant liar saw it running)
            a.finish_oldest_sampled()
            b.finish_oldest_sampled()
        for side in (a, b):
            _grow(side.url, 3, seed=100 + r)


def test_the_sweeps_tpe_samples_what_optunas_tpe_samples(tmp_path: Path) -> None:
    ours = WindowedTPESampler(None, seed=7, n_startup_trials=2)
    _same_samples(*_sides(tmp_path, ours, optuna.samplers.TPESampler(seed=7, n_startup_trials=2)))


@pytest.mark.parametrize("history", [5, 40])
def test_with_a_history_the_snapshot_changes_nothing(tmp_path: Path, history: int,
                                                     monkeypatch: Any) -> None:
    """The same windowed sampler reading through Optuna's cache instead of the snapshot (the
    window keeps 3 best trials here, not 25, so that it leaves trials out of this study)."""
    monkeypatch.setattr(history_mod, "window", functools.partial(history_mod.window, best=3))
    ours = WindowedTPESampler(history, seed=3, n_startup_trials=2)
    through_optuna = WindowedTPESampler(history, seed=3, n_startup_trials=2)
    through_optuna.snapshot.trials = lambda study, number: None  # type: ignore[method-assign]
    _same_samples(*_sides(tmp_path, ours, through_optuna))


def test_a_sample_reads_only_what_changed(tmp_path: Path, monkeypatch: Any) -> None:
    """Finished trials are read whole once; a running trial is read light until its
    parameters are written, then kept until it finishes."""
    side = _Side(tmp_path / "ours.db", WindowedTPESampler(None, seed=1, n_startup_trials=2))
    _grow(side.url, 12, seed=0)
    whole: list[int] = []
    light: list[int] = []
    for name, seen in (("whole_trials", whole), ("light_trials", light)):
        real = getattr(claim_queries, name)
        monkeypatch.setattr(claim_queries, name, lambda rdb, ids, real=real, seen=seen:
                            (seen.extend(ids), real(rdb, ids))[1])
    side.sample()
    assert len(whole) == 12  # every finished trial (one failed), once
    assert len(light) == 2  # the running one and the trial being sampled
    for kept in (1, 2):
        whole.clear()
        light.clear()
        side.sample()
        # the last sampled trial (with its parameters now: kept from here) and the new one
        assert whole == [] and len(light) == 2, kept
    whole.clear()
    light.clear()
    side.finish_oldest_sampled()
    _grow(side.url, 2, seed=5)
    side.sample()
    assert len(whole) == 3  # the sampled trial that finished, the two new finished ones
    assert len(light) == 3  # the last sampled trial, the new running one, the new one

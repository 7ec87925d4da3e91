"""TPE on a bounded history (`sweep.sampler.history`): the recent trials and the best ones."""

from __future__ import annotations

import optuna
import pytest

from sweeps.search import history
from sweeps.search.samplers import build_sampler


def _study(n: int, direction: str = "maximize") -> optuna.Study:
    study = optuna.create_study(direction=direction)
    dist = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    study.add_trials([optuna.trial.create_trial(params={"x": (i * 0.37) % 1}, distributions=dist,
                                                value=float((i * 7919) % 1000)) for i in range(n)])
    return study


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_the_window_is_the_recent_trials_and_the_best_older_ones_in_order(direction: str) -> None:
    study = _study(400, direction)
    trials = study.get_trials(deepcopy=False)
    kept = history.window(trials, 100, study.direction)
    numbers = [t.number for t in kept]
    assert numbers == sorted(numbers) and len(kept) == 100 + history.BEST
    assert numbers[-100:] == list(range(300, 400))
    older = sorted((t.value for t in trials[:300]), reverse=direction == "maximize")
    assert sorted((t.value for t in kept[:-100]), reverse=direction == "maximize") == older[:history.BEST]
    assert history.window(trials[:120], 100, study.direction) == trials[:120]  # short: all of it


def test_the_sampler_reads_only_its_window() -> None:
    study = _study(600)
    sampler = build_sampler({"name": "tpe", "n_startup_trials": 2, "history": 50}, 0, {})
    assert isinstance(sampler, history.WindowedTPESampler)
    seen: list[int] = []
    original = history._Windowed._get_trials

    def counted(self: history._Windowed, deepcopy: bool = True, states: object = None,
                use_cache: bool = False) -> list:
        got = original(self, deepcopy, states, use_cache)  # type: ignore[arg-type]
        if states is not None:  # the model's reads (the search space is the intersection over
            seen.append(len(got))  # every trial, read as Optuna reads it)
        return got

    history._Windowed._get_trials = counted  # type: ignore[method-assign]
    try:
        study.sampler = sampler
        trial = study.ask()
        trial.suggest_float("x", 0.0, 1.0)
    finally:
        history._Windowed._get_trials = original  # type: ignore[method-assign]
    assert seen and max(seen) <= 50 + history.BEST


def test_a_window_over_every_trial_samples_what_optuna_s_tpe_samples() -> None:
    picks = []
    for sampler in (optuna.samplers.TPESampler(seed=3, n_startup_trials=2),
                    build_sampler({"name": "tpe", "n_startup_trials": 2, "history": 10_000}, 3, {})):
        study = _study(80)
        study.sampler = sampler
        picks.append([study.ask().suggest_float("x", 0.0, 1.0) for _ in range(5)])
    assert picks[0] == picks[1]
    plain = build_sampler({"name": "tpe", "n_startup_trials": 2, "history": None}, 3, {})
    assert isinstance(plain, history.WindowedTPESampler) and plain.history is None  # no window

"""Search-space dimensions: parsing, conditional sampling, overrides, grids."""

from __future__ import annotations

import math

import optuna
import pytest

from sweeps.search.space import Dimension, SearchSpace, parse_dimension, to_overrides
from trainer.errors import ConfigError


@pytest.mark.parametrize(("spec", "key", "allowed"), [
    ({"type": "float", "low": 1.0, "high": 0.1, "key": "optimizer.lr"}, "s.x.low", "< high"),
    ({"type": "float", "low": 0.1, "high": 0.1, "key": "optimizer.lr"}, "s.x.low", "< high"),
    ({"type": "float", "low": 0.0, "high": 1.0, "log": True, "key": "a"}, "s.x.low", "> 0"),
    ({"type": "float", "low": -1.0, "high": 1.0, "log": True, "key": "a"}, "s.x.low", "> 0"),
    ({"type": "categorical", "choices": [], "key": "a"}, "s.x.choices", "non-empty"),
    ({"type": "categorical", "key": "a"}, "s.x.choices", "non-empty"),
    ({"type": "uniform", "low": 0, "high": 1, "key": "a"}, "s.x.type", "float, int, categorical"),
    ({"type": "int", "low": 0.5, "high": 3, "key": "a"}, "s.x.low", "integer"),
    ({"type": "float", "low": 0, "high": 1, "key": "a", "step": 2}, "s.x.step", "unknown field"),
])
def test_bad_dimensions_fail_with_one_line(spec: dict, key: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_dimension("s", "x", spec)
    assert info.value.key == key and allowed in str(info.value) and "\n" not in str(info.value)


def test_conditional_sampling_only_samples_active_dimensions() -> None:
    space = SearchSpace((
        Dimension("lr", "float", "optimizer.lr", 1e-4, 1.0, log=True),
        Dimension("b1", "float", "optimizer.betas.0", 0.01, 0.5, log=True, transform="one_minus"),
        Dimension("schedule", "categorical", "schedule", choices=("step", "cosine")),
        Dimension("gamma", "float", "schedule.gamma", 0.1, 0.9, when={"schedule": "step"}),
        Dimension("mode", "categorical", None, choices=("a", "b")),
        Dimension("extra", "int", "trainer.epochs", 1, 3, when={"mode": "b"}),
    ))
    base = {"optimizer": {"name": "adam", "betas": [0.9, 0.999]}, "schedule": {"name": "constant"}}
    trial = optuna.trial.FixedTrial({"lr": 0.01, "b1": 0.2, "schedule": "cosine", "mode": "a"})
    params, overrides = space.sample(trial, base)
    assert params == {"lr": 0.01, "b1": 0.2, "schedule": "cosine", "mode": "a"}
    assert overrides == ["schedule=cosine", "optimizer.betas=[0.8,0.999]", "optimizer.lr=0.01"]
    trial = optuna.trial.FixedTrial({"lr": 0.01, "b1": 0.2, "schedule": "step", "gamma": 0.5,
                                     "mode": "b", "extra": 2})
    params, overrides = space.sample(trial, base)
    assert params["gamma"] == 0.5 and "schedule.gamma=0.5" in overrides
    assert "trainer.epochs=2" in overrides
    assert space.overrides_for(params, base) == overrides


def test_grid_points_cover_the_range() -> None:
    d = Dimension("lr", "float", "optimizer.lr", 1e-4, 1e-2, log=True)
    assert [round(math.log10(v), 6) for v in d.grid(3)] == [-4.0, -3.0, -2.0]
    assert Dimension("n", "int", "k", 1, 3).grid(5) == [1, 2, 3]
    assert Dimension("c", "categorical", "k", choices=(1, 2)).grid(3) == [1, 2]


def test_to_overrides_formats_values_for_hydra() -> None:
    out = to_overrides({"optimizer.centered": True, "trainer.batch_size": 64,
                        "optimizer.eps": 1e-9}, {})
    assert out == ["optimizer.centered=true", "trainer.batch_size=64", "optimizer.eps=1e-09"]


def test_a_when_list_matches_any_of_its_values() -> None:
    space = SearchSpace((
        Dimension("schedule", "categorical", "schedule", choices=("cosine", "onecycle", "step")),
        Dimension("warm", "float", "schedule.warmup_epochs", 0.0, 1.0,
                  when={"schedule": ["cosine", "step"]}),
    ))
    base = {"schedule": {"name": "constant"}}
    for name, active in (("cosine", True), ("step", True), ("onecycle", False)):
        fixed = {"schedule": name, **({"warm": 0.5} if active else {})}
        params, _ = space.sample(optuna.trial.FixedTrial(fixed), base)
        assert ("warm" in params) == active

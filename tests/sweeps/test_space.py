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


# --- each part of a dimension, against values written out here ---------------------------

from sweeps.search.space import condition_values, lookup  # noqa: E402


@pytest.mark.parametrize(("spec", "message"), [
    ([0.1, 1.0], "s.x=[0.1, 1.0]: must be a mapping with type, low/high or choices, key"),
    ({"type": "float", "low": 0, "high": 1, "key": "a", "step": 2, "q": 1},
     "s.x.q=1: unknown field; allowed: choices, high, key, log, low, transform, type, when"),
    ({"low": 0, "high": 1}, "s.x.type=None: must be one of float, int, categorical"),
    ({"type": "uniform", "low": 0, "high": 1}, "s.x.type='uniform': must be one of float, int, categorical"),
    ({"type": "float", "low": 0, "high": 1, "key": 3},
     "s.x.key=3: must be a config key such as optimizer.lr, or null"),
    ({"type": "float", "low": 0, "high": 1, "key": "a", "transform": "square"},
     "s.x.transform='square': must be one of one_minus"),
    ({"type": "categorical", "choices": "ab", "key": "a"}, "s.x.choices='ab': must be a non-empty list"),
    ({"type": "categorical", "choices": 3, "key": "a"}, "s.x.choices=3: must be a non-empty list"),
    ({"type": "categorical", "choices": [1, 2, 1], "key": "a"},
     "s.x.choices=[1, 2, 1]: must not repeat a value"),
    ({"type": "float", "low": "0", "high": 1, "key": "a"}, "s.x.low='0': must be a finite number"),
    ({"type": "float", "low": 0, "high": True, "key": "a"}, "s.x.high=True: must be a finite number"),
    ({"type": "float", "low": 0, "high": math.inf, "key": "a"}, "s.x.high=inf: must be a finite number"),
    ({"type": "float", "low": math.nan, "high": 1, "key": "a"}, "s.x.low=nan: must be a finite number"),
    ({"type": "float", "high": 1, "key": "a"}, "s.x.low=None: must be a finite number"),
    ({"type": "int", "low": 1, "high": 2.5, "key": "a"}, "s.x.high=2.5: must be an integer for type int"),
    ({"type": "float", "low": 2, "high": 1, "key": "a"}, "s.x.low=2: must be < high (1)"),
    ({"type": "float", "low": 0, "high": 1, "log": True, "key": "a"},
     "s.x.low=0: must be > 0 for a log range"),
])
def test_each_bad_dimension_reads_exactly(spec, message) -> None:
    with pytest.raises(ConfigError) as info:
        parse_dimension("s", "x", spec)
    assert str(info.value) == message


def test_a_good_dimension_is_parsed_into_its_fields() -> None:
    d = parse_dimension("s", "lr", {"type": "float", "low": 1, "high": 10, "log": True, "key": "optimizer.lr",
                                    "when": {"schedule": "step"}})
    assert d == Dimension("lr", "float", "optimizer.lr", 1.0, 10.0, True, when={"schedule": "step"})
    assert isinstance(d.low, float) and isinstance(d.high, float)
    assert parse_dimension("s", "n", {"type": "int", "low": 1, "high": 4.0, "key": None}) == \
        Dimension("n", "int", None, 1.0, 4.0)
    assert parse_dimension("s", "m", {"type": "float", "low": 0.5, "high": 0.9, "key": "k",
                                      "transform": "one_minus", "log": 0}).transform == "one_minus"
    c = parse_dimension("s", "c", {"type": "categorical", "choices": [True, 1, "a"], "key": "k",
                                   "transform": "one_minus", "when": None})
    assert c == Dimension("c", "categorical", "k", choices=(True, 1, "a"), transform="one_minus")
    assert parse_dimension("s", "c", {"type": "categorical", "choices": ["a"], "key": "k"}).choices == ("a",)
    assert parse_dimension("s", "c", {"type": "categorical", "choices": ["a", "b"], "key": "k",
                                      "when": {"optimizer": "sgd"}}).when == {"optimizer": "sgd"}


def test_distributions_and_suggestions_follow_the_type() -> None:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    f = Dimension("lr", "float", "k", 0.001, 0.1, log=True)
    i = Dimension("n", "int", "k", 2.0, 8.0, log=True)
    lin = Dimension("m", "float", "k", 0.1, 0.9)
    c = Dimension("c", "categorical", "k", choices=("x", "y"))
    assert f.distribution() == FloatDistribution(0.001, 0.1, log=True)
    assert lin.distribution() == FloatDistribution(0.1, 0.9)
    assert i.distribution() == IntDistribution(2, 8, log=True)
    assert c.distribution() == CategoricalDistribution(("x", "y"))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    assert [d.suggest(trial) is not None for d in (f, i, lin, c)] == [True] * 4
    assert trial.distributions == {"lr": f.distribution(), "n": i.distribution(), "m": lin.distribution(),
                                   "c": c.distribution()}
    assert isinstance(trial.params["n"], int) and trial.params["c"] in ("x", "y")


def test_one_minus_maps_the_sampled_value_and_the_endpoints() -> None:
    d = Dimension("b1", "float", "optimizer.betas.0", 0.01, 0.5, log=True, transform="one_minus")
    assert d.config_value(0.2) == 0.8 and d.endpoints() == [0.99, 0.5]
    plain = Dimension("lr", "float", "k", 0.1, 0.3)
    assert plain.config_value(0.2) == 0.2 and plain.endpoints() == [0.1, 0.3]
    assert Dimension("c", "categorical", "k", choices=(1, 2)).endpoints() == [1, 2]


def test_grids_are_evenly_spaced_with_exact_endpoints() -> None:
    lin = Dimension("m", "float", "k", 0.0, 1.0)
    assert lin.grid(5) == [0.0, 0.25, 0.5, 0.75, 1.0] and lin.grid(1) == [0.0] and lin.grid(2) == [0.0, 1.0]
    log = Dimension("lr", "float", "k", 1e-3, 1e-1, log=True)
    assert log.grid(3)[0] == 1e-3 and log.grid(3)[-1] == 1e-1 and log.grid(3)[1] == pytest.approx(1e-2)
    assert log.grid(5)[1] == pytest.approx(10 ** -2.5) and log.grid(1) == [1e-3]
    assert log.grid(2) == [1e-3, 1e-1]  # exp(log(0.1)) alone would be 0.10000000000000006
    assert Dimension("n", "int", "k", 1.0, 9.0).grid(3) == [1, 5, 9]
    assert Dimension("n", "int", "k", 1.0, 100.0, log=True).grid(3) == [1, 10, 100]
    assert SearchSpace((lin, Dimension("c", "categorical", "k", choices=("a",)))).grid(2) == {
        "m": [0.0, 1.0], "c": ["a"]}


def test_a_dimension_describes_itself_with_only_the_fields_it_has() -> None:
    assert Dimension("lr", "float", "optimizer.lr", 0.1, 1.0, True).describe() == {
        "type": "float", "key": "optimizer.lr", "low": 0.1, "high": 1.0, "log": True}
    assert Dimension("c", "categorical", None, choices=(1, 2), transform="one_minus",
                     when={"schedule": "step"}).describe() == {
        "type": "categorical", "key": None, "choices": [1, 2], "transform": "one_minus",
        "when": {"schedule": "step"}}
    space = SearchSpace((Dimension("a", "int", "k", 1.0, 2.0),))
    assert space.describe() == {"a": {"type": "int", "key": "k", "low": 1.0, "high": 2.0, "log": False}}


def test_lookup_walks_mappings_and_lists_and_names_a_groups_option() -> None:
    cfg = {"optimizer": {"name": "adam", "betas": [0.9, 0.999], "lr": 0.01}, "schedule": {},
           "trainer": {"tag": "abc", "nested": {"x": 1}}}
    assert lookup(cfg, "optimizer") == "adam" and lookup(cfg, "schedule") is None
    assert lookup(cfg, "model") is None and lookup({}, "dataset") is None
    assert lookup(cfg, "optimizer.betas.1") == 0.999 and lookup(cfg, "optimizer.betas.0") == 0.9
    assert lookup(cfg, "optimizer.betas.2") is None and lookup(cfg, "optimizer.betas.x") is None
    assert lookup(cfg, "trainer.tag.0") is None  # a string is not a list
    assert lookup(cfg, "trainer.nested.x") == 1 and lookup(cfg, "trainer.nested") == {"x": 1}
    assert lookup(cfg, "trainer.missing") is None and lookup(cfg, "optimizer.lr.x") is None


def test_a_condition_is_one_value_or_any_of_a_list() -> None:
    assert condition_values("step") == ["step"] and condition_values(["a", "b"]) == ["a", "b"]
    assert condition_values(("a",)) == ["a"] and condition_values(None) == [None]


def test_conditions_read_the_sample_then_the_config_values_then_the_base() -> None:
    space = SearchSpace((
        Dimension("opt", "categorical", "optimizer", choices=("sgd", "adam")),
        Dimension("mom", "float", "optimizer.momentum", 0.1, 0.9, when={"opt": "sgd"}),
        Dimension("b1", "float", "optimizer.betas.0", 0.8, 0.9, when={"optimizer": "adam"}),
        Dimension("nest", "categorical", "optimizer.nesterov", choices=(True, False),
                  when={"optimizer.momentum": [0.5], "model": "mlp"}),
        Dimension("gamma", "float", "schedule.gamma", 0.1, 0.9, when={"schedule": "step"}),
    ))
    bases = {"adam": {"optimizer": {"name": "adam", "betas": [0.9, 0.999]}, "model": {"name": "mlp"}},
             "sgd": {"optimizer": {"name": "sgd"}, "model": {"name": "mlp"}}}
    base = {"optimizer": {"name": "sgd"}, "model": {"name": "mlp"}, "schedule": {"name": "step"}}
    params, overrides = space.sample(optuna.trial.FixedTrial({"opt": "sgd", "mom": 0.5, "nest": True,
                                                              "gamma": 0.2}), base, bases)
    assert params == {"opt": "sgd", "mom": 0.5, "nest": True}  # bases["sgd"] has no step schedule
    assert overrides == ["optimizer=sgd", "optimizer.momentum=0.5", "optimizer.nesterov=true"]
    params, overrides = space.sample(optuna.trial.FixedTrial({"opt": "adam", "b1": 0.85, "gamma": 0.2}),
                                     base, bases)
    assert params == {"opt": "adam", "b1": 0.85}
    assert overrides == ["optimizer=adam", "optimizer.betas=[0.85,0.999]"]  # the other beta from adam's base
    own = {**base, "optimizer": {"name": "sgd", "betas": [0.5, 0.6]}}
    params, overrides = space.sample(optuna.trial.FixedTrial({"opt": "adam", "b1": 0.85, "gamma": 0.2}), own)
    assert params == {"opt": "adam", "b1": 0.85, "gamma": 0.2}  # no bases: the one base config decides
    assert overrides == ["optimizer=adam", "optimizer.betas=[0.85,0.6]", "schedule.gamma=0.2"]
    params, _ = space.sample(optuna.trial.FixedTrial({"opt": "sgd", "mom": 0.4, "gamma": 0.2}), base, bases)
    assert "nest" not in params


def test_overrides_for_stored_params_skip_missing_and_keyless_dimensions() -> None:
    space = SearchSpace((Dimension("lr", "float", "optimizer.lr", 0.001, 0.1),
                         Dimension("tag", "categorical", None, choices=("a", "b")),
                         Dimension("b2", "float", "optimizer.betas.1", 0.001, 0.1, transform="one_minus"),
                         Dimension("sched", "categorical", "schedule", choices=("cosine",))))
    base = {"optimizer": {"betas": [0.9, 0.999]}}
    assert space.overrides_for({"lr": 0.01, "tag": "a", "b2": 0.25, "sched": "cosine"}, base) == [
        "schedule=cosine", "optimizer.betas=[0.9,0.75]", "optimizer.lr=0.01"]
    assert space.overrides_for({"tag": "b"}, base) == []
    with pytest.raises(ConfigError,
                       match=r"optimizer.betas.1=0.5: the base config's optimizer.betas has no element 1"):
        to_overrides({"optimizer.betas.1": 0.5}, {"optimizer": {"betas": [0.9]}})


def test_list_elements_become_one_override_built_on_the_base_list() -> None:
    base = {"optimizer": {"betas": [0.9, 0.999]}}
    assert to_overrides({"optimizer.betas.0": 0.8, "optimizer.betas.1": 0.99, "model": "cnn",
                         "optimizer.lr": 0.1}, base) == [
        "model=cnn", "optimizer.betas=[0.8,0.99]", "optimizer.lr=0.1"]
    assert base == {"optimizer": {"betas": [0.9, 0.999]}}  # the base is not changed
    assert to_overrides({"trainer.name": "a b"}, {}) == ["trainer.name='a b'"]

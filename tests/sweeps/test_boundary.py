"""Boundary warnings: which range ends are the trainer's own limits, and what a hit says."""

from __future__ import annotations

from sweeps.search import boundary
from sweeps.search.space import Dimension

SGD_BASE = {"optimizer": {"name": "momentum", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0,
                          "nesterov": False, "dampening": 0.0},
            "schedule": {"name": "constant"}, "trainer": {}, "model": {"name": "mlp"},
            "dataset": {"name": "mnist_5k"}}


def test_a_hit_describes_its_range_and_scale() -> None:
    log = boundary.BoundaryHit("lr", "high", 0.98, 1e-4, 1.0, True)
    assert log.describe() == ("lr = 0.98 is within 5% of the high edge of [0.0001, 1], log scale: "
                              "the range was probably too narrow")
    flat = boundary.BoundaryHit("momentum", "low", 0.01, 0.0, 0.99, False)
    assert flat.describe() == ("momentum = 0.01 is within 5% of the low edge of [0, 0.99]: "
                               "the range was probably too narrow")


def test_an_end_that_is_the_trainers_own_limit_is_fixed() -> None:
    momentum = Dimension("momentum", "float", "optimizer.momentum", 0.0, 0.9)
    assert boundary.fixed_edges(momentum, SGD_BASE, "momentum") == (True, False)  # momentum >= 0
    almost = Dimension("momentum", "float", "optimizer.momentum", 1e-13, 0.9)
    assert boundary.fixed_edges(almost, SGD_BASE, "momentum") == (True, False)  # 1e-13 is 0
    off = Dimension("momentum", "float", "optimizer.momentum", 1e-6, 0.9)
    assert boundary.fixed_edges(off, SGD_BASE, "momentum") == (False, False)
    # an element of betas: its limits are 0 and 1, here reached through 1 - x
    b1 = Dimension("b1", "float", "optimizer.betas.0", 0.0, 1.0, transform="one_minus")
    assert boundary.fixed_edges(b1, {**SGD_BASE, "optimizer": {"name": "adam", "betas": [0.9, 0.999]}},
                                "adam") == (True, True)
    # nothing is fixed about a choice, a dimension without a key, or a key no one owns
    assert boundary.fixed_edges(Dimension("s", "categorical", "schedule", choices=("a", "b")),
                                SGD_BASE, "momentum") == (False, False)
    assert boundary.fixed_edges(Dimension("m", "float", None, 0.0, 1.0), SGD_BASE, "momentum") == \
        (False, False)
    assert boundary.fixed_edges(Dimension("x", "float", "optimizer.nosuch", 0.0, 1.0), SGD_BASE,
                                "momentum") == (False, False)


def test_fixed_edges_of_a_joint_space_use_each_optimizers_own_base() -> None:
    dims = [Dimension("optimizer", "categorical", "optimizer", choices=("momentum", "adam")),
            Dimension("momentum.momentum", "float", "optimizer.momentum", 0.0, 0.9,
                      when={"optimizer": "momentum"}),
            Dimension("lr", "float", "optimizer.lr", 1e-4, 1.0, log=True)]
    bases = {"momentum": SGD_BASE}
    out = boundary.fixed_edges_of(dims, {**SGD_BASE, "optimizer": {"name": "adam"}}, "adam", bases)
    assert out == {"momentum.momentum": [True, False], "lr": [False, False]}  # no choice listed


def test_a_stored_trial_is_checked_from_its_studys_record() -> None:
    dims = [Dimension("momentum", "float", "optimizer.momentum", 0.0, 0.9),
            Dimension("lr", "float", "optimizer.lr", 1e-4, 1.0, log=True)]
    attrs = {"search_space": {d.name: d.describe() for d in dims}, "base_config": SGD_BASE}
    found = boundary.trial_hits(attrs, {"momentum": 0.001, "lr": 0.9}, "momentum")
    assert [(h.dim, h.edge) for h in found] == [("lr", "high")]  # momentum's low end is fixed
    stored = {**attrs, "fixed_edges": {"momentum": [False, False], "lr": [False, True]}}
    assert [(h.dim, h.edge) for h in boundary.trial_hits(stored, {"momentum": 0.001, "lr": 0.9},
                                                         "momentum")] == [("momentum", "low")]


def test_edges_within_rounding_of_a_limit_and_edges_that_depend_on_the_base() -> None:
    adam = {**SGD_BASE, "optimizer": {"name": "adam", "betas": [0.9, 0.999], "weight_decay": 0.0}}
    near_zero = Dimension("b2", "float", "optimizer.betas.1", 0.01, 1 - 1e-13, transform="one_minus")
    assert boundary.fixed_edges(near_zero, adam, "adam") == (False, True)  # 1 - (1 - 1e-13) is 0
    # a choice over a numeric key has no range ends at all
    sizes = Dimension("bs", "categorical", "trainer.batch_size", choices=(1, 64))
    assert boundary.fixed_edges(sizes, SGD_BASE, "momentum") == (False, False)
    # a schedule key's limits come from the schedule the base config (or the trial) uses
    cosine = {**SGD_BASE, "schedule": {"name": "cosine"}}
    ratio = Dimension("ratio", "float", "schedule.min_lr_ratio", 0.0, 0.5)
    assert boundary.fixed_edges(ratio, cosine, "momentum") == (True, False)
    # without a `when`, a dimension belongs to the study's own optimizer
    wd = Dimension("wd", "float", "optimizer.weight_decay", 0.0, 0.1)
    assert boundary.fixed_edges_of([wd], adam, "adam") == {"wd": [True, False]}
    attrs = {"search_space": {"ratio": ratio.describe()}, "base_config": cosine}
    assert boundary.trial_hits(attrs, {"ratio": 0.001}, "momentum") == []  # fixed: not a warning
    assert [h.edge for h in boundary.trial_hits(attrs, {"ratio": 0.499}, "momentum")] == ["high"]


def test_a_stored_space_that_no_longer_parses_names_its_key() -> None:
    import pytest

    from trainer.errors import ConfigError

    assert boundary.dims_of({"lr": {"type": "float", "key": "optimizer.lr", "low": 0.1, "high": 1.0}}) == [
        Dimension("lr", "float", "optimizer.lr", 0.1, 1.0)]
    with pytest.raises(ConfigError) as info:
        boundary.dims_of({"lr": {"type": "uniform"}})
    assert info.value.key == "search.lr.type"


def test_hits_are_at_most_5_percent_from_a_movable_end_and_skip_what_is_not_a_number() -> None:
    lr = Dimension("lr", "float", "optimizer.lr", 0.0, 1.0)
    width = Dimension("width", "categorical", "model.width", choices=(32, 64))
    later = Dimension("wd", "float", "optimizer.weight_decay", 0.0, 1.0)
    edges = {"lr": [False, False], "wd": [False, False]}

    def found(params: dict, dims=(width, lr)) -> list[tuple[str, str]]:
        return [(h.dim, h.edge) for h in boundary.hits(params, list(dims), SGD_BASE, "momentum", fixed=edges)]

    assert found({"width": 32, "lr": 0.05}) == [("lr", "low")]  # exactly 5 %: at the edge
    assert found({"width": 32, "lr": 0.95}) == [("lr", "high")]
    assert found({"width": 32, "lr": 0.06}) == [] and found({"width": 32, "lr": 0.94}) == []
    assert found({"lr": 0.99}) == [("lr", "high")]  # a dimension not sampled is passed over
    for odd in (True, "0.0", None):  # not a number: passed over, and the next one still checked
        assert found({"lr": odd, "wd": 1.0}, (lr, later)) == [("wd", "high")]


def test_a_joint_dimension_takes_the_fixed_ends_of_the_optimizer_it_belongs_to() -> None:
    """momentum = 1 is the momentum optimizer's own limit; in joint mode the dimension names
    that optimizer in its `when`, whatever the study's own optimizer is called."""
    dim = Dimension("momentum", "float", "optimizer.momentum", 0.5, 1.0, when={"optimizer": "momentum"})
    assert boundary.hits({"momentum": 1.0}, [dim], SGD_BASE, "joint") == []
    plain = Dimension("momentum", "float", "optimizer.momentum", 0.5, 1.0)
    assert [h.edge for h in boundary.hits({"momentum": 1.0}, [plain], SGD_BASE, "joint")] == ["high"]


def test_a_small_integer_range_never_warns_a_wide_one_does() -> None:
    """step_size in [1, 3] has three values: 3 is a third of it, not a sign of a narrow range."""
    small = Dimension("step_size", "int", "schedule.step_size", 1, 3)
    wide = Dimension("patience", "int", "schedule.patience", 0, 9)  # ten values: checked
    edges = {"step_size": [False, False], "patience": [False, False]}
    found = boundary.hits({"step_size": 3, "patience": 9}, [small, wide], SGD_BASE, "sgd", fixed=edges)
    assert [(h.dim, h.edge) for h in found] == [("patience", "high")]
    assert boundary.MIN_INT_VALUES == 10

"""Statistics, budget curves and boundary warnings against independent computations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from sweeps.report import stats
from sweeps.report import tuning_budget as budget
from sweeps.search import boundary
from sweeps.search.space import Dimension


def test_seed_summary_is_mean_std_and_a_t_interval() -> None:
    x = [0.912, 0.905, 0.918, 0.909, 0.915]
    s = stats.summarize(x)
    assert s is not None and s.n == 5
    assert s.mean == pytest.approx(np.mean(x)) and s.std == pytest.approx(np.std(x, ddof=1))
    low, high = sps.t.interval(0.95, df=4, loc=np.mean(x), scale=sps.sem(x))
    assert (s.ci_low, s.ci_high) == (pytest.approx(low), pytest.approx(high))


def test_intervals_are_cut_to_the_values_the_quantity_can_take() -> None:
    raw = stats.summarize([0.2, 0.95])
    cut = stats.summarize([0.2, 0.95], bounds=(0.0, 1.0))
    assert raw is not None and cut is not None
    assert raw.ci_low < 0.0 and raw.ci_high > 1.0  # t with 1 degree of freedom: 12.7 x SE
    assert (cut.ci_low, cut.ci_high) == (0.0, 1.0) and cut.mean == raw.mean


def test_one_seed_has_no_spread_rather_than_zero_spread() -> None:
    s = stats.summarize([0.9])
    assert s is not None and s.n == 1 and math.isnan(s.std) and math.isnan(s.ci_low)
    assert stats.summarize([]) is None and stats.summarize([float("nan")]) is None


def test_validation_standard_error() -> None:
    assert stats.validation_se(0.9, 1000) == pytest.approx(math.sqrt(0.09 / 1000))
    assert stats.validation_se(0.9, 1000) <= 0.01  # the quick sweep's split meets the target
    assert math.isnan(stats.validation_se(0.9, 0))


def test_paired_comparison_matches_scipy_and_keeps_the_pairing() -> None:
    a = [0.91, 0.92, 0.905, 0.915, 0.91]
    b = [0.90, 0.915, 0.90, 0.91, 0.912]
    c = stats.paired(a, b)
    assert c.n == 5 and c.mean_diff == pytest.approx(np.mean(np.subtract(a, b)))
    assert c.p_value == pytest.approx(sps.ttest_rel(a, b).pvalue)
    assert c.ci_low <= c.mean_diff <= c.ci_high
    # resampling seeds (pairs): the interval lies within the range of the differences
    d = np.subtract(a, b)
    assert d.min() <= c.ci_low and c.ci_high <= d.max()
    # a large seed effect shared by both optimizers cancels in a paired test
    shift = [0.0, 0.05, -0.05, 0.03, -0.03]
    shifted = stats.paired(np.add(a, shift), np.add(b, shift))
    assert shifted.p_value == pytest.approx(c.p_value)


def test_identical_or_constant_differences_are_reported_without_a_test() -> None:
    same = stats.paired([0.9, 0.8], [0.9, 0.8])
    assert same.identical and math.isnan(same.p_value)
    constant = stats.paired([0.9, 0.8, 0.7], [0.8, 0.7, 0.6])
    assert constant.mean_diff == pytest.approx(0.1) and constant.ci_low == constant.ci_high
    assert math.isnan(constant.p_value)
    with pytest.raises(ValueError):
        stats.paired([0.1], [0.1, 0.2])


def test_holm_adjustment() -> None:
    # textbook example: p = 0.01, 0.04, 0.03, 0.005 -> sorted 0.005, 0.01, 0.03, 0.04
    adjusted = stats.holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert math.isnan(stats.holm([float("nan"), 0.2])[0]) and stats.holm([float("nan"), 0.2])[1] == 0.2


def test_expected_max_equals_brute_force_enumeration() -> None:
    values = [0.62, 0.9, 0.71, 0.88, 0.5]
    for n in (1, 2, 3):
        draws = [max(c) for c in itertools.product(values, repeat=n)]
        point = budget.expected_max(values, n)
        assert point.expected == pytest.approx(np.mean(draws))
        assert point.std == pytest.approx(np.std(draws))
    curve = budget.budget_curve(values)
    assert [p.n for p in curve] == [1, 2, 3, 4, 5]
    assert all(a.expected <= b.expected for a, b in itertools.pairwise(curve))
    assert curve[0].expected == pytest.approx(np.mean(values))
    assert budget.budget_curve([]) == []


def test_boundary_hits_use_the_log_scale_and_skip_fixed_edges() -> None:
    lr = Dimension("lr", "float", "optimizer.lr", 1e-5, 1e-1, log=True)
    warm = Dimension("warmup_epochs", "float", "schedule.warmup_epochs", 0.0, 1.0)
    mom = Dimension("momentum", "float", "optimizer.momentum", 0.5, 0.99)
    base = {"schedule": {"name": "constant"}, "optimizer": {"name": "momentum"}}
    dims = [lr, warm, mom]
    # 0.07 is within 5 % of the top of [1e-5, 0.1] on the log scale (not on a linear one: 70 %)
    found = boundary.hits({"lr": 0.07, "warmup_epochs": 0.0, "momentum": 0.51}, dims, base, "momentum")
    assert [(h.dim, h.edge) for h in found] == [("lr", "high"), ("momentum", "low")]
    assert boundary.tag(found) == "lr:high,momentum:low"
    # warmup 0 is the trainer's own limit: never a sign of a narrow range
    assert boundary.fixed_edges(warm, base, "momentum") == (True, False)
    assert boundary.hits({"lr": 1e-3, "momentum": 0.7}, dims, base, "momentum") == []
    assert "log scale" in found[0].describe() and "high edge" in found[0].describe()


def test_a_long_budget_curve_is_log_spaced_and_exact_where_it_has_points() -> None:
    rng = np.random.default_rng(0)
    values = list(rng.uniform(0.5, 0.99, 3000))
    curve = budget.budget_curve(values)
    ns = [p.n for p in curve]
    assert ns[:64] == list(range(1, 65)) and ns[-1] == 3000
    assert ns == sorted(set(ns)) and len(ns) <= 64 + budget.CURVE_POINTS + 1
    for p in curve[::17]:  # each point is the exact expected maximum at its n
        exact = budget.expected_max(values, p.n)
        assert p.expected == pytest.approx(exact.expected) and p.std == pytest.approx(exact.std)
    assert budget.at(curve, 3000) is curve[-1] and budget.at(curve, 2999) in (None, curve[-2])
    assert [p.n for p in budget.budget_curve(values[:10])] == list(range(1, 11))


def _same(a: stats.PairedComparison, b: stats.PairedComparison) -> bool:
    def eq(x: float, y: float) -> bool:
        return (math.isnan(x) and math.isnan(y)) or x == y

    return a.n == b.n and all(eq(getattr(a, k), getattr(b, k))
                              for k in ("mean_diff", "ci_low", "ci_high", "p_value"))


def test_paired_edge_cases_are_exact() -> None:
    empty = stats.paired([], [])
    assert empty.n == 0 and all(math.isnan(x) for x in (empty.mean_diff, empty.ci_low, empty.ci_high,
                                                         empty.p_value))
    one = stats.paired([0.7], [0.5])  # one shared seed: a difference, no spread
    assert (one.n, one.ci_low, one.ci_high) == (1, pytest.approx(0.2), pytest.approx(0.2))
    assert one.mean_diff == pytest.approx(0.2) and math.isnan(one.p_value)
    constant = stats.paired([0.5, 0.5, 0.5], [0.0, 0.0, 0.0])
    assert (constant.n, constant.mean_diff, constant.ci_low, constant.ci_high) == (3, 0.5, 0.5, 0.5)
    assert math.isnan(constant.p_value)
    # "no spread" is relative to the size of the difference: 1e-9 on 1e6 is rounding
    big = stats.paired([1e6, 1e6 + 1e-9, 1e6], [0.0, 0.0, 0.0])
    assert big.ci_low == big.ci_high == big.mean_diff and math.isnan(big.p_value)
    # and absolute below a difference of 1: 1.5e-12 apart is a spread to resample
    tiny = stats.paired([0.0, 1.5e-12, 0.0, 1.5e-12], [0.0] * 4)
    assert not math.isnan(tiny.p_value)
    with pytest.raises(ValueError, match="paired samples need equal lengths, got 2 and 1"):
        stats.paired([0.1, 0.2], [0.1])


def test_paired_skips_missing_values_and_is_reproducible() -> None:
    a, b = [0.9, None, 0.8, 0.85, 0.7, 0.6], [0.8, 0.7, math.nan, 0.8, 0.75, None]
    c = stats.paired(a, b)  # seeds 1, 2 and 5 lack a value: three pairs are left
    assert c.n == 3 and c.mean_diff == pytest.approx((0.1 + 0.05 - 0.05) / 3)
    # the defaults are fixed (9999 resamples, seed 0): the report's intervals never move
    a = [0.91, 0.83, 0.88, 0.79, 0.95, 0.86, 0.9, 0.81]
    b = [0.88, 0.85, 0.8, 0.8, 0.9, 0.87, 0.84, 0.8]
    c = stats.paired(a, b)
    assert _same(stats.paired(a, b), c) and _same(stats.paired(a, b, n_resamples=9999, seed=0), c)
    assert not _same(stats.paired(a, b, n_resamples=2000), c)
    assert not _same(stats.paired(a, b, seed=1), c)


def test_expected_max_refuses_what_it_cannot_compute() -> None:
    with pytest.raises(ValueError, match="needs values and n >= 1, got 0 values"):
        budget.expected_max([], 1)
    with pytest.raises(ValueError, match="n=0"):
        budget.expected_max([0.5, 0.6], 0)
    one = budget.expected_max([0.5], 3)  # one value: the best of any n is that value
    assert (one.expected, one.std) == (0.5, 0.0)


def test_one_value_and_one_example_are_exact() -> None:
    one = stats.summarize([0.5])
    assert one is not None and one.n == 1 and one.mean == 0.5
    assert all(isinstance(x, float) and math.isnan(x) for x in (one.std, one.ci_low, one.ci_high))
    assert stats.validation_se(0.5, 1) == 0.5  # sqrt(0.25 / 1): one example still has an error
    assert math.isnan(stats.validation_se(0.5, 0))
    # an accuracy outside [0, 1] (a rounding artefact) is taken at its nearest end: no error
    assert stats.validation_se(1.5, 100) == 0.0 and stats.validation_se(-0.2, 100) == 0.0


def test_budget_curves_skip_missing_values_and_have_about_96_points_past_64() -> None:
    assert budget.expected_max([0.2, math.nan, 0.8, None], 1).expected == pytest.approx(0.5)
    ns = budget.curve_ns(10_000)
    assert ns[:63] == list(range(1, 64)) and ns[-1] == 10_000
    assert 90 <= len(ns) - 63 <= 97 and ns == sorted(set(ns))

"""Property tests of the report's formulas and of the search space, each against a
statement that does not come from the code under test (hypothesis draws the inputs).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sweeps.report import stats, tuning_budget

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
p_value = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
p_or_nan = st.one_of(p_value, st.just(math.nan))


@given(st.lists(p_or_nan, min_size=1, max_size=30))
def test_holm_adjusted_p_values_are_monotone_at_least_raw_and_at_most_one(raw: list[float]) -> None:
    adjusted = stats.holm(raw)
    tested = [(p, a) for p, a in zip(raw, adjusted, strict=True) if not math.isnan(p)]
    assert all(math.isnan(a) for p, a in zip(raw, adjusted, strict=True) if math.isnan(p))
    for p, a in tested:
        assert p <= a <= 1.0
    for p, a in tested:  # monotone: a smaller raw p never gets a larger adjusted one
        for q, b in tested:
            if p <= q:
                assert a <= b


@given(st.lists(p_value, min_size=1, max_size=12))
def test_holm_matches_its_step_down_definition(raw: list[float]) -> None:
    """adj(i) = max over the k smallest raw p-values up to i's rank of min(1, (m - k) p_(k))."""
    m = len(raw)
    order = sorted(range(m), key=lambda i: raw[i])
    expected = [0.0] * m
    for rank, i in enumerate(order):
        expected[i] = max(min(1.0, (m - k) * raw[order[k]]) for k in range(rank + 1))
    assert stats.holm(raw) == pytest.approx(expected, abs=0, rel=1e-12)


@given(st.lists(finite, min_size=2, max_size=40))
def test_the_t_interval_contains_the_mean_and_shrinks_with_n(values: list[float]) -> None:
    s = stats.summarize(values)
    assert s is not None and s.n == len(values)
    assert s.ci_low <= s.mean <= s.ci_high
    assert s.mean == pytest.approx(float(np.mean(values)), rel=1e-9, abs=1e-9)
    twice = stats.summarize(values + values)  # the same spread, twice the seeds
    assert twice is not None
    width, width2 = s.ci_high - s.ci_low, twice.ci_high - twice.ci_low
    if width > 0:
        assert width2 < width
    # and the half-width is the t quantile times the standard error (scipy's own t)
    from scipy import stats as sps

    half = sps.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values))
    assert s.ci_high - s.mean == pytest.approx(half, rel=1e-6, abs=1e-9)


@given(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=30))
def test_an_interval_cut_to_bounds_stays_inside_them(values: list[float]) -> None:
    s = stats.summarize(values, bounds=(0.0, 1.0))
    assert s is not None and 0.0 <= s.ci_low <= s.mean <= s.ci_high <= 1.0


@settings(deadline=None)
@given(st.lists(finite, min_size=1, max_size=60), st.integers(1, 400))
def test_the_budget_curve_rises_from_the_mean_toward_the_maximum(values: list[float], max_n: int) -> None:
    curve = tuning_budget.budget_curve(values, max_n)
    assert [p.n for p in curve][-1] == max_n and curve[0].n == 1
    expected = [p.expected for p in curve]
    lo, hi, n_values = min(values), max(values), len(values)
    tol = 1e-9 * max(1.0, abs(lo), abs(hi))
    assert curve[0].expected == pytest.approx(float(np.mean(values)), rel=1e-9, abs=tol)
    assert all(b >= a - tol for a, b in itertools.pairwise(expected))  # non-decreasing
    assert all(lo - tol <= e <= hi + tol for e in expected)
    # the best of n draws misses the maximum with probability at most (1 - 1/N)^n
    miss = (1.0 - 1.0 / n_values) ** max_n
    assert expected[-1] >= hi - (hi - lo) * miss - tol


def test_the_budget_curve_ends_at_the_maximum_for_a_large_budget() -> None:
    values = [0.1, 0.5, 0.9, 0.3]
    assert tuning_budget.budget_curve(values, 10_000)[-1].expected == pytest.approx(0.9, abs=1e-12)


def _studies() -> list:
    from sweeps.search.load import load_sweep

    return list(load_sweep(["sweep.mode=compare"]).studies) + list(
        load_sweep(["sweep.mode=joint", "sweep.name=joint"]).studies)


STUDIES = _studies()


def _holds(expected: object, actual: object) -> bool:
    return actual in (list(expected) if isinstance(expected, list | tuple) else [expected])


def _value_of(key: str, params: dict, overrides: list[str], base: dict) -> object:
    """A `when` key's value as the sampled trial has it: a sampled dimension, else an
    override the sample produced, else the base config (read here, not by the space)."""
    if key in params:
        return params[key]
    for o in overrides:
        k, _, v = o.partition("=")
        if k == key:
            return v
    node: object = base
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node.get("name") if isinstance(node, dict) else node


@settings(deadline=None, max_examples=60)
@given(st.integers(0, 2**31 - 1), st.sampled_from(range(len(STUDIES))))
def test_a_sample_satisfies_its_when_conditions_and_ranges(seed: int, which: int) -> None:
    study_spec = STUDIES[which]
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed)).ask()
    params, overrides = study_spec.space.sample(trial, dict(study_spec.base), dict(study_spec.bases))
    dims = {d.name: d for d in study_spec.space.dims}
    base = dict(study_spec.bases.get(params.get("optimizer"), study_spec.base))
    for name, value in params.items():
        d = dims[name]
        if d.type == "categorical":
            assert value in d.choices
        else:
            assert d.low <= value <= d.high, (name, value, d)
            assert d.type != "int" or float(value).is_integer()
    for d in study_spec.space.dims:  # sampled exactly when every condition holds
        active = all(_holds(want, _value_of(key, params, overrides, base)) for key, want in d.when.items())
        assert (d.name in params) == active, (d.name, d.when, params)


@given(st.lists(st.floats(-1.0, 1.0), min_size=3, max_size=12).filter(lambda d: max(d) - min(d) > 1e-3))
def test_the_paired_interval_is_a_percentile_bootstrap(d: list[float]) -> None:
    """A percentile interval of a mean of resampled seeds lies within the sample's range (a
    "basic" one, 2 x mean - quantiles, leaves it on a skewed sample), and its ends are the
    2.5 and 97.5 % quantiles of resampled means (computed here with NumPy)."""
    c = stats.paired(d, [0.0] * len(d), n_resamples=2000, seed=1)
    assert min(d) - 1e-12 <= c.ci_low <= c.ci_high <= max(d) + 1e-12
    rng = np.random.default_rng(7)
    means = np.asarray(d)[rng.integers(0, len(d), (20_000, len(d)))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    spread = max(d) - min(d)
    assert abs(c.ci_low - lo) <= 0.08 * spread and abs(c.ci_high - hi) <= 0.08 * spread


def test_a_skewed_sample_tells_percentile_from_basic() -> None:
    c = stats.paired([0.0, 0.0, 0.0, 0.0, 1.0], [0.0] * 5, n_resamples=4000, seed=0)
    assert c.ci_low >= 0.0  # basic: 2 x 0.2 - 0.6 = -0.2 below every value
    assert c.ci_high == pytest.approx(0.6, abs=0.05)  # the 97.5 % quantile of resampled means

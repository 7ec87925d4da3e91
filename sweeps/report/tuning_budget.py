"""Tuning-budget curves: expected best validation accuracy after n trials.

Dodge et al. 2019 ("Show Your Work: Improved Reporting of Experimental Results"): from
the N completed trials of a study, treated as i.i.d. draws from the search, the expected
maximum of n draws (with replacement) is

    E[max_n] = sum_i v_(i) * ((i/N)^n - ((i-1)/N)^n)        v_(1) <= ... <= v_(N)

and its variance sum_i v_(i)^2 w_i - E^2 with the same weights w_i. One curve per
optimizer shows which is easier to tune, not only which found the higher peak. No
library we know of ships this; it is five lines of NumPy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BudgetPoint:
    n: int
    expected: float
    std: float


DENSE = 64  # every n up to here; beyond, about CURVE_POINTS more, evenly on a log scale
CURVE_POINTS = 96


def _finite_sorted(values: Sequence[float]) -> np.ndarray:
    return np.sort(np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float))


def _point(v: np.ndarray, n: int) -> BudgetPoint:
    i = np.arange(1, v.size + 1, dtype=float) / v.size
    w = i ** n - (i - 1.0 / v.size) ** n
    mean = float(np.dot(w, v))
    var = max(0.0, float(np.dot(w, v * v)) - mean * mean)
    return BudgetPoint(n, mean, math.sqrt(var))


def expected_max(values: Sequence[float], n: int) -> BudgetPoint:
    """E and std of the best of `n` draws with replacement from `values`."""
    v = _finite_sorted(values)
    if v.size == 0 or n < 1:
        raise ValueError(f"expected_max needs values and n >= 1, got {v.size} values and {n=}")
    return _point(v, n)


def curve_ns(last: int) -> list[int]:
    """The n of a curve up to `last`: each up to DENSE, then log-spaced, `last` included (a
    point per n would cost O(N^2): 10^8 terms for a study of 10,000 trials)."""
    if last <= DENSE:
        return list(range(1, last + 1))
    tail = np.unique(np.round(np.geomspace(DENSE, last, CURVE_POINTS)).astype(int))
    return list(range(1, DENSE)) + [int(n) for n in tail if n >= DENSE] + \
        ([last] if int(tail[-1]) != last else [])


def budget_curve(values: Sequence[float], max_n: int | None = None) -> list[BudgetPoint]:
    """Expected maximum at n = 1 .. max_n (default: the number of values), every n up to
    DENSE and log-spaced beyond; the last point is always max_n."""
    v = _finite_sorted(values)
    if v.size == 0:
        return []
    return [_point(v, n) for n in curve_ns(max_n or int(v.size))]


def at(curve: Sequence[BudgetPoint], n: int) -> BudgetPoint | None:
    """The point of `curve` at exactly n, if it has one."""
    return next((p for p in curve if p.n == n), None)

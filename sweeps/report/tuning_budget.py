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


def expected_max(values: Sequence[float], n: int) -> BudgetPoint:
    """E and std of the best of `n` draws with replacement from `values`."""
    v = np.sort(np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float))
    if v.size == 0 or n < 1:
        raise ValueError(f"expected_max needs values and n >= 1, got {v.size} values and {n=}")
    i = np.arange(1, v.size + 1, dtype=float)
    w = (i / v.size) ** n - ((i - 1) / v.size) ** n
    mean = float(np.dot(w, v))
    var = max(0.0, float(np.dot(w, v * v)) - mean * mean)
    return BudgetPoint(n, mean, math.sqrt(var))


def budget_curve(values: Sequence[float], max_n: int | None = None) -> list[BudgetPoint]:
    """Expected maximum for n = 1 .. max_n (default: the number of values)."""
    finite = [x for x in values if x is not None and math.isfinite(x)]
    if not finite:
        return []
    return [expected_max(finite, n) for n in range(1, (max_n or len(finite)) + 1)]

"""The statistics the report stands on: seed summaries, paired comparisons, split noise.

A comparison of optimizers is only as good as its noise estimate. Two sources matter:
the seed (model init and data order), estimated from confirm re-runs, and the finite
validation split, whose binomial standard error sqrt(p(1-p)/n) bounds how finely a
single validation accuracy can rank anything. scipy does the distribution work
(t quantiles, the paired t-test, the bootstrap); this module decides what is reported.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trainer.api import lazy_module

sps = lazy_module("scipy.stats")  # ~2 s to import: only where a paired test needs it
special = lazy_module("scipy.special")  # ~0.4 s: the t quantile of every interval

ALPHA = 0.05  # written out: 1 - 0.95 is 0.050000000000000044, and p = 0.05 is not below 5 %
CONFIDENCE = 1.0 - ALPHA  # exactly 0.95


@dataclass(frozen=True)
class SeedSummary:
    """Mean, sample standard deviation and a t-interval of the mean over seeds."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float


def summarize(values: Sequence[float], bounds: tuple[float, float] = (-math.inf, math.inf),
              ) -> SeedSummary | None:
    """Mean ± std (ddof=1) and the 95 % t-interval of the mean; None without values.

    With one value the spread is unknown: std and the interval are NaN, never 0. The
    interval is cut to `bounds`, the values the quantity can take (an accuracy lies in
    [0, 1]): the intersection of a confidence interval with the parameter space keeps its
    coverage, and with K = 2 seeds the raw t-interval easily spans [-0.4, 1.7].
    """
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if x.size == 0:
        return None
    mean = float(x.mean())
    if x.size < 2:
        return SeedSummary(1, mean, math.nan, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = float(special.stdtrit(x.size - 1, 1 - ALPHA / 2)) * std / math.sqrt(x.size)  # t quantile
    low, high = bounds
    return SeedSummary(int(x.size), mean, std, max(low, mean - half), min(high, mean + half))


def validation_se(accuracy: float, n: int) -> float:
    """Binomial standard error of an accuracy measured on `n` examples: sqrt(p(1-p)/n)."""
    if n <= 0 or not math.isfinite(accuracy):
        return math.nan
    p = min(max(accuracy, 0.0), 1.0)
    return math.sqrt(p * (1.0 - p) / n)


@dataclass(frozen=True)
class PairedComparison:
    """a - b over shared seeds: mean difference, its bootstrap interval, the paired t-test."""

    n: int
    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float  # two-sided paired t-test; NaN when undefined (n < 2, or every difference equal)

    @property
    def identical(self) -> bool:
        return self.n > 0 and self.mean_diff == 0.0 and self.ci_low == self.ci_high == 0.0


def paired(a: Sequence[float], b: Sequence[float], *, n_resamples: int = 9999,
           seed: int = 0) -> PairedComparison:
    """Compare two equally long, seed-aligned samples (a[i] and b[i] share seed i).

    The interval is a percentile bootstrap of the mean difference (resampling seeds, so
    the pairing is kept); the p-value is the paired t-test's. Both are reported because
    with K = 5 seeds neither the t-test's normality nor the bootstrap's resampling is
    comfortable alone.
    """
    if len(a) != len(b):
        raise ValueError(f"paired samples need equal lengths, got {len(a)} and {len(b)}")
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return PairedComparison(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(d.mean())
    if d.size < 2 or float(np.ptp(d)) <= 1e-12 * max(1.0, abs(mean)):
        # no spread (rounding aside): nothing to resample, and a t-test would divide by ~0
        return PairedComparison(int(d.size), mean, mean, mean, math.nan)
    with warnings.catch_warnings():  # tiny samples make scipy warn about degenerate resamples
        warnings.simplefilter("ignore")
        boot = sps.bootstrap((d,), np.mean, n_resamples=n_resamples, confidence_level=CONFIDENCE,
                             method="percentile", rng=np.random.default_rng(seed))
        p_value = float(sps.ttest_1samp(d, 0.0).pvalue)
    return PairedComparison(int(d.size), mean, float(boot.confidence_interval.low),
                            float(boot.confidence_interval.high), p_value)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN and does not count as a test).

    The report compares the best optimizer with each of the others: m tests at once, so a
    raw p < 0.05 somewhere is expected by chance alone.
    """
    indexed = [(p, i) for i, p in enumerate(p_values) if math.isfinite(p)]
    m = len(indexed)
    out = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(indexed)):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out

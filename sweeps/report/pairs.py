"""A pair of confirmed configurations: the best optimizer against another over their shared
seeds, and the words every difference is written in (how much worse, for every metric)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sweeps.report import stats
from trainer.api import CLASSIFICATION, Task

# Fewer seeds than this: a bootstrap over seeds has only a handful of distinct resamples.
COARSE_BELOW = 5


@dataclass
class Pair:
    """The best optimizer against another over their shared completed seeds. Differences are
    oriented one way for every metric: how much worse this optimizer is than the best
    (lower accuracy or higher loss: positive; better: negative)."""

    optimizer: str
    best: str
    seeds: list[int]  # shared seeds on which both runs completed: K of the tests
    test: stats.PairedComparison  # worse-by on the test metric of the task
    val: stats.PairedComparison  # worse-by on the validation objective
    p_adjusted: float  # Holm over the comparisons with the best (test metric)
    task: Task = CLASSIFICATION
    split: str = "test"  # what `test` compares: the test split, or "val" where there is none
    seeds_run: list[int] = field(default_factory=list)  # seeds both configurations ran

    @property
    def significant(self) -> bool:
        """Both the (Holm-adjusted) paired t-test and the bootstrap interval exclude no difference."""
        c = self.test
        return (math.isfinite(self.p_adjusted) and self.p_adjusted < stats.ALPHA
                and (c.ci_low > 0 or c.ci_high < 0))

    @property
    def behind(self) -> bool:
        """This optimizer is worse than the best on test (lower accuracy, higher loss)."""
        return self.test.mean_diff > 0

    def sentence(self) -> str:
        c, name = self.test, f"{self.split} {self.task.metric}"
        amount = _diff_fmt(self.task)
        k = len(self.seeds)
        if c.n == 0:
            return f"{self.best} vs {self.optimizer}: no shared seed with a finite {name}"
        if c.n < 2 or not math.isfinite(c.p_value):
            same = f"{name} identical on every seed" if c.identical else \
                f"{self.optimizer} {worse_or_better(c.mean_diff, amount)} on {name} on every seed"
            return f"{self.best} vs {self.optimizer}: {same} (K={k}): no spread to test"
        verdict = (f"significant at K={k} ({stats.ALPHA:g}, Holm-corrected)" if self.significant
                   else f"not significant at K={k}")
        return (f"{self.best} vs {self.optimizer}: {self.optimizer} {worse_or_better(c.mean_diff, amount)} "
                f"on {name} (95 % CI of worse-by {amount(c.ci_low)}…{amount(c.ci_high)}), {verdict} "
                f"(paired t-test p = {c.p_value:.2g}, Holm-adjusted {self.p_adjusted:.2g}"
                f"{self._coarse()})")

    def _coarse(self) -> str:
        """Below COARSE_BELOW usable seeds: the caveat, and the one command that adds enough
        seeds (confirm runs seeds 1..N; those already done are kept), never one already run."""
        n = self.test.n
        if n >= COARSE_BELOW:
            return ""
        run = max(len(self.seeds_run), n)
        lost = f"{run - n} of {run} seeds did not complete; " if run > n else ""
        return (f"; {lost}with {n} seeds the bootstrap interval is coarse: "
                f"`sweeps confirm --seeds {run + COARSE_BELOW - n}` adds seeds")


def _pp(x: float) -> str:
    return f"{100 * x:.1f} pp"


def _diff_fmt(task: Task) -> Any:
    """How a difference of the task's metric is written: accuracy points, or loss units."""
    return _pp if task.has_accuracy else (lambda x: f"{x:.4g}")


def worse_or_better(worse_by: float, amount: Any) -> str:
    """"worse by 3.1 pp", "better by 0.02", "equal": one wording for every metric."""
    if worse_by == 0:
        return "equal"
    return f"{'worse' if worse_by > 0 else 'better'} by {amount(abs(worse_by))}"

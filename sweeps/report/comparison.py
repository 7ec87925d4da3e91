"""The comparison of optimizers that `sweeps report`, `confirm` and `best` print.

Read from the Optuna storage alone (search studies + the confirm study). The rule for
everything here: say only what the data supports. A search gives one seed per
configuration, so its ranking is shown as search results with the validation split's
standard error beside every accuracy, never as the answer. The answer comes from the
confirm runs: each optimizer's configuration over K shared seeds, ranked by mean
validation accuracy, compared with the best one by paired tests over those seeds. A
regression sweep is ranked the same way by validation loss, lowest first, with no accuracy
and no binomial standard error anywhere (there is no such error for a loss).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeps.report import failures, stats, summary
from sweeps.report import tuning_budget as budget
from sweeps.report.pairs import Pair
from sweeps.search import boundary, confirm_jobs
from sweeps.search.studies import sweep_task
from trainer.api import CLASSIFICATION, Task

TARGET_FRACTION = 0.99  # default target: 99 % of the best mean validation accuracy (loss: / 0.99)


@dataclass
class ConfirmedConfig:
    """One search configuration re-run over seeds."""

    optimizer: str
    study: str
    trial: FrozenTrial
    runs: list[FrozenTrial]  # finished re-runs, seed order (diverged ones included)
    seeds: list[int]
    val_acc: stats.SeedSummary | None
    test_acc: stats.SeedSummary | None
    val_loss: stats.SeedSummary | None
    test_loss: stats.SeedSummary | None
    gap_acc: stats.SeedSummary | None  # at the best-validation epoch
    gap_loss: stats.SeedSummary | None
    diverged: int
    val: stats.SeedSummary | None = None  # the objective: val_acc, or val_loss for regression
    test: stats.SeedSummary | None = None  # test_acc, or test_loss for regression
    adam_share: stats.SeedSummary | None = None  # adam_to_sgd: share of steps run by Adam
    switched: int = 0  # adam_to_sgd: runs that switched to SGD
    by_seed: dict[int, FrozenTrial] = field(default_factory=dict)

    @property
    def used(self) -> list[int]:
        """The seeds whose runs completed: the ones every mean and test is computed over."""
        return [s for s in self.seeds if self.by_seed[s].state == TrialState.COMPLETE]

    @property
    def lost(self) -> list[tuple[int, str]]:
        """(seed, what happened) of each run that did not complete: diverged or failed."""
        return [(s, failures.reason_of(self.by_seed[s])) for s in self.seeds
                if self.by_seed[s].state != TrialState.COMPLETE]

    def seeds_text(self) -> str:
        """"5", or "4 of 5" where a run diverged or failed."""
        used = len(self.used)
        return str(used) if used == len(self.seeds) else f"{used} of {len(self.seeds)}"


@dataclass
class Reach:
    """Epochs and training seconds until val/acc first reached the target, over seeds."""

    reached: int
    of: int
    epochs: stats.SeedSummary | None
    seconds: stats.SeedSummary | None


@dataclass
class OptimizerRow:
    optimizer: str
    studies: list[str]
    counts: dict[str, int]
    search_best: FrozenTrial | None
    search_study: optuna.Study | None
    configs: list[ConfirmedConfig]
    boundary: dict[int, list[boundary.BoundaryHit]]  # trial number -> hits (best / top-N)
    reach: Reach | None = None
    task: Task = CLASSIFICATION

    @property
    def representative(self) -> ConfirmedConfig | None:
        """The confirmed configuration with the best mean validation value."""
        scored = [c for c in self.configs if c.val is not None]
        sign = 1.0 if self.task.maximize else -1.0
        return max(scored, key=lambda c: sign * c.val.mean) if scored else None  # type: ignore[union-attr]


@dataclass
class Comparison:
    sweep: str
    n_val: int | None
    n_test: int | None
    rows: list[OptimizerRow]
    seeds: list[int]
    ranking: list[OptimizerRow]  # by confirmed mean val acc; empty without confirm runs
    pairs: list[Pair]
    target: float | None
    values: dict[str, list[float]]  # each optimizer's completed search values
    target_given: bool = False  # --target, rather than the default
    task: Task = CLASSIFICATION
    unchecked: dict[str, int] = field(default_factory=dict)  # study -> completed, too few for edges

    @functools.cached_property
    def budget(self) -> dict[str, list[budget.BudgetPoint]]:
        """Each optimizer's tuning-budget curve: computed where a view draws it (a fraction
        of a second at 10,000 trials, which `sweeps best` does not show)."""
        return {o: _budget_curve(v, self.task) for o, v in self.values.items() if v}

    @property
    def confirmed(self) -> bool:
        return bool(self.ranking)

    def se(self, accuracy: float | None) -> float:
        """The validation split's binomial standard error (none for a loss)."""
        if accuracy is None or not self.n_val or not self.task.has_accuracy:
            return math.nan
        return stats.validation_se(accuracy, self.n_val)

    def indistinguishable_from_search_best(self) -> list[str]:
        """Optimizers whose best search value is within one validation SE of the top one."""
        scored = [(r.optimizer, r.search_best.value) for r in self.rows
                  if r.search_best is not None and r.search_best.value is not None]
        if len(scored) < 2 or not self.task.has_accuracy:
            return []
        top = max(v for _, v in scored)
        se = self.se(top)
        return [o for o, v in sorted(scored, key=lambda ov: -ov[1]) if top - v < se]


def fmt_summary(s: stats.SeedSummary | None, digits: int = 4, ci: bool = True) -> str:
    if s is None:
        return "-"
    if s.n < 2:
        return f"{s.mean:.{digits}f} (1 seed)"
    text = f"{s.mean:.{digits}f} ± {s.std:.{digits}f}"
    return text + (f" [{s.ci_low:.{digits}f}, {s.ci_high:.{digits}f}]" if ci else "")


def _final(t: FrozenTrial, key: str) -> float | None:
    v = (t.user_attrs.get("final") or {}).get(key)
    return float(v) if v is not None and math.isfinite(float(v)) else None


def _at_best_epoch(t: FrozenTrial, key: str) -> float | None:
    epoch = _final(t, "best/epoch")
    curve = (t.user_attrs.get("curves") or {}).get(key) or []
    if epoch is None or not 1 <= int(epoch) <= len(curve):
        return None
    v = curve[int(epoch) - 1]
    return float(v) if v is not None else None


def adam_share(t: FrozenTrial) -> float | None:
    """Share of the run's optimizer steps taken by Adam (1.0: it never switched)."""
    if t.user_attrs.get("optimizer") != "adam_to_sgd" and (
            (t.user_attrs.get("config") or {}).get("optimizer", {}).get("name") != "adam_to_sgd"):
        return None
    epochs = t.user_attrs.get("epochs") or 0
    switch = _final(t, "switch/epoch")
    if not epochs:
        return None
    return 1.0 if switch is None else min(1.0, switch / epochs)


def _confirmed(optimizer: str, study: str, trial: FrozenTrial, runs: list[FrozenTrial],
               task: Task = CLASSIFICATION) -> ConfirmedConfig:
    ok = [r for r in runs if r.state == TrialState.COMPLETE]
    by_seed = {int(r.user_attrs["seed"]): r for r in runs}

    def summ(values: Sequence[float | None], bounds: tuple[float, float] = (-math.inf, math.inf),
             ) -> stats.SeedSummary | None:
        return stats.summarize([v for v in values if v is not None], bounds)

    unit, positive = (0.0, 1.0), (0.0, math.inf)  # what accuracies and losses can be
    shares = [adam_share(r) for r in ok]
    # a user's loss need not be positive: the interval is only clipped for the built-in ones
    losses = positive if task.has_accuracy else (-math.inf, math.inf)
    val_acc = summ([_final(r, "best/val_acc") for r in ok], unit)
    test_acc = summ([_final(r, "test/acc") for r in ok], unit)
    val_loss = summ([_at_best_epoch(r, "val/loss") for r in ok], losses)
    test_loss = summ([_final(r, "test/loss") for r in ok], losses)
    return ConfirmedConfig(
        optimizer, study, trial, runs, sorted(by_seed),
        val_acc=val_acc, test_acc=test_acc, val_loss=val_loss, test_loss=test_loss,
        gap_acc=summ([_at_best_epoch(r, "gap/acc") for r in ok], (-1.0, 1.0)),
        gap_loss=summ([_at_best_epoch(r, "gap/loss") for r in ok]),
        diverged=len(runs) - len(ok),
        val=val_acc if task.has_accuracy else summ([_final(r, "best/val_loss") for r in ok], losses),
        test=test_acc if task.has_accuracy else test_loss,
        adam_share=summ(shares, unit) if any(s is not None for s in shares) else None,
        switched=sum(_final(r, "switch/step") is not None for r in ok), by_seed=by_seed)


def reach(runs: Sequence[FrozenTrial], target: float, task: Task = CLASSIFICATION) -> Reach:
    """First epoch (and training seconds until then) at which the validation value reached
    the target (val/acc >= target; val/loss <= target for regression), per run."""
    epochs, seconds = [], []
    for r in runs:
        curves = r.user_attrs.get("curves") or {}
        acc, times = curves.get(task.val_key) or [], curves.get("time/epoch_s") or []
        for i, v in enumerate(acc):
            if v is not None and (v >= target if task.maximize else v <= target):
                epochs.append(float(i + 1))
                seconds.append(float(sum(x or 0.0 for x in times[:i + 1])))
                break
    return Reach(len(epochs), len(runs), stats.summarize(epochs), stats.summarize(seconds))


def _split_sizes(studies: Sequence[optuna.Study]) -> tuple[int | None, int | None]:
    """The validation and test split sizes: as a finished trial measured them, else (a sweep
    of an earlier release) from the bundled dataset's config."""
    for study in studies:
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            final = t.user_attrs.get("final") or {}
            if final.get("data/val_size"):
                n_test = final.get("data/test_size")
                return int(final["data/val_size"]), int(n_test) if n_test else None
    ds = (studies[0].user_attrs.get("base_config") or {}).get("dataset") or {}
    n_test = ds.get("test_size") if ds.get("name") == "mnist_5k" else {
        "mnist": 10000, "fashion_mnist": 10000, "cifar10": 10000}.get(str(ds.get("name")))
    return ds.get("val_size"), n_test


def build(studies: Sequence[optuna.Study], confirm: optuna.Study | None, *, top: int | None = None,
          target: float | None = None) -> Comparison:
    """Everything the report shows, computed once."""
    reruns = confirm_jobs.results(confirm)
    task = sweep_task(studies)
    sign = 1.0 if task.maximize else -1.0  # values compared as sign * value: higher is better
    optimizers = summary.sweep_optimizers(studies)
    rows: dict[str, OptimizerRow] = {o: OptimizerRow(o, [], {s: 0 for s in summary.STATE_COLUMNS},
                                                     None, None, [], {}, task=task) for o in optimizers}
    values: dict[str, list[float]] = {o: [] for o in optimizers}
    for study in studies:
        for t in study.get_trials(deepcopy=False):
            opt = confirm_jobs.optimizer_of(study, t)
            if opt not in rows:  # joint mode: a trial that failed before sampling its optimizer
                continue
            row = rows[opt]
            if study.study_name not in row.studies:
                row.studies.append(study.study_name)
            state = summary.trial_state(t)
            row.counts[state] = row.counts.get(state, 0) + 1
            if t.state == TrialState.COMPLETE and t.value is not None:
                values[opt].append(float(t.value))
                if row.search_best is None or sign * t.value > sign * row.search_best.value:  # type: ignore[operator]
                    row.search_best, row.search_study = t, study
    # boundary warnings for each optimizer's top trials; confirmed configs: trials with re-runs
    edges, unchecked = _edges(studies)
    for opt, chosen in confirm_jobs.top_trials(studies, top or 1).items():
        for study, t in chosen:
            rows[opt].boundary[t.number] = edges(study, t, opt)
    by_name = {s.study_name: (s, s.get_trials(deepcopy=False)) for s in studies} if reruns else {}
    for key, runs in reruns.items():
        found = _trial(by_name, *key)
        if found is None:
            continue
        study, t = found
        opt = confirm_jobs.optimizer_of(study, t)
        if opt in rows:
            rows[opt].configs.append(_confirmed(opt, study.study_name, t, runs, task))
            rows[opt].boundary.setdefault(t.number, edges(study, t, opt))
    for row in rows.values():
        row.configs.sort(key=lambda c: (-sign * (c.trial.value or 0.0), c.trial.number))
    ordered = list(rows.values())
    ranking = sorted([r for r in ordered if r.representative is not None],
                     key=lambda r: -sign * r.representative.val.mean)  # type: ignore[union-attr]
    seeds = sorted({s for r in ranking for s in r.representative.seeds})  # type: ignore[union-attr]
    pairs = _pairs(ranking, task)
    given = target is not None
    if target is None:
        target = _default_target(ranking, values, task)
    for r in ordered:
        rep = r.representative
        runs = ([x for x in rep.runs if x.state == TrialState.COMPLETE] if rep is not None
                else [r.search_best] if r.search_best is not None else [])
        r.reach = reach(runs, target, task) if target is not None and runs else None
    n_val, n_test = _split_sizes(studies)
    return Comparison(_sweep_name(studies), n_val, n_test, ordered, seeds, ranking, pairs, target,
                      values, given, task, unchecked=unchecked)


def _edges(studies: Sequence[optuna.Study]) -> tuple[Any, dict[str, int]]:
    """A trial's boundary hits, checked only in studies with enough completed trials to say
    (`boundary.MIN_TRIALS`); and the studies left unchecked, with their completed count."""
    completed = {s.study_name: len(s.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
                 for s in studies}
    unchecked = {name: n for name, n in completed.items() if n < boundary.MIN_TRIALS}

    def edges(study: optuna.Study, t: FrozenTrial, opt: str) -> list[boundary.BoundaryHit]:
        if study.study_name in unchecked:
            return []
        return boundary.trial_hits(study.user_attrs, t.params, opt)

    return edges, unchecked


def _default_target(ranking: Sequence[OptimizerRow], values: Mapping[str, list[float]],
                    task: Task) -> float | None:
    """99 % of the best optimizer's typical (mean) run, else of its search best; for a loss,
    the lowest divided by 0.99 (within about 1 % of it)."""
    peaks = [rep.val.mean for r in ranking if (rep := r.representative) is not None
             and rep.val is not None] or [v for vs in values.values() for v in vs]
    if not peaks:
        return None
    return TARGET_FRACTION * max(peaks) if task.maximize else min(peaks) / TARGET_FRACTION


def _trial(studies: Mapping[str, tuple[optuna.Study, list[FrozenTrial]]], name: str, number: int
           ) -> tuple[optuna.Study, FrozenTrial] | None:
    """A study's trial by number (Optuna numbers a study's trials 0, 1, ...: a list index)."""
    study, trials = studies.get(name, (None, []))
    if study is not None and 0 <= number < len(trials) and trials[number].number == number:
        return study, trials[number]
    return None


def _budget_curve(values: Sequence[float], task: Task) -> list[budget.BudgetPoint]:
    """Expected best value after n trials: the maximum, or for a loss the minimum."""
    if task.maximize:
        return budget.budget_curve(values)
    return [budget.BudgetPoint(p.n, -p.expected, p.std)
            for p in budget.budget_curve([-v for v in values])]


def _sweep_name(studies: Sequence[optuna.Study]) -> str:
    return str(studies[0].user_attrs.get("sweep", studies[0].study_name))


def _pairs(ranking: Sequence[OptimizerRow], task: Task = CLASSIFICATION) -> list[Pair]:
    if len(ranking) < 2:
        return []
    best = ranking[0].representative
    assert best is not None
    # without a test split the runs are compared on the validation split (and say so)
    split = "test" if any(task.test_key in (r.user_attrs.get("final") or {}) for r in best.runs) \
        else "val"
    key = task.test_key if split == "test" else task.best_key
    raw = []
    for row in ranking[1:]:
        other = row.representative
        assert other is not None
        shared = [s for s in best.seeds if s in other.seeds
                  and best.by_seed[s].state == other.by_seed[s].state == TrialState.COMPLETE]

        def metric(cfg: ConfirmedConfig, key: str, seeds: list[int] = shared) -> list[float]:
            return [_final(cfg.by_seed[s], key) or math.nan for s in seeds]

        def worse_by(key: str, other: ConfirmedConfig = other) -> stats.PairedComparison:
            """How much worse `other` is: best - other for an accuracy, other - best for a loss."""
            a, b = metric(best, key), metric(other, key)
            return stats.paired(a, b) if task.maximize else stats.paired(b, a)

        raw.append((row.optimizer, shared, worse_by(key), worse_by(task.best_key),
                    [s for s in best.seeds if s in other.seeds]))
    adjusted = stats.holm([p[2].p_value for p in raw])
    return [Pair(opt, ranking[0].optimizer, shared, test, val, adj, task, split, run)
            for (opt, shared, test, val, run), adj in zip(raw, adjusted, strict=True)]


def params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={f'{v:.4g}' if isinstance(v, float) else v}" for k, v in params.items())

"""The report's tables and sentences, built once and rendered as Markdown or HTML.

Every validation accuracy is printed with the validation split's standard error beside
it; a search value is labelled as one seed; without confirm runs the report says so and
what to run, and shows no ranking. A regression sweep's tables show losses only: no
accuracy column and no binomial standard error.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from sweeps.report import comparison as cmp
from sweeps.report import summary
from sweeps.report import tuning_budget as budget
from sweeps.report.stats import SeedSummary


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    right: set[int] = field(default_factory=set)  # right-aligned column indexes

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""] if self.title else []
        if self.rows:
            align = ["---:" if i in self.right else "---" for i in range(len(self.columns))]
            lines += ["| " + " | ".join(self.columns) + " |", "|" + "|".join(align) + "|"]
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in self.rows]
        lines += [""] + [f"{n}" for n in self.notes] + ([""] if self.notes else [])
        return "\n".join(lines)

    def html(self) -> str:
        out = [f"<h3>{html.escape(self.title)}</h3>"] if self.title else []
        if self.rows:
            head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
            body = "".join(
                "<tr>" + "".join(f"<td{' class=num' if i in self.right else ''}>{html.escape(c)}</td>"
                                 for i, c in enumerate(row)) + "</tr>" for row in self.rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        out += [f"<p class=note>{html.escape(n)}</p>" for n in self.notes]
        return "\n".join(out)


def _f(v: float | None, digits: int = 4) -> str:
    return summary.fmt(v, digits)


def _se(c: cmp.Comparison, acc: float | None) -> str:
    se = c.se(acc)
    return "-" if not math.isfinite(se) else f"±{se:.4f}"


def _summ(s: SeedSummary | None, digits: int = 4, ci: bool = True) -> str:
    return cmp.fmt_summary(s, digits, ci)


def _metric(c: cmp.Comparison) -> str:
    """The objective's name in prose: accuracy, or loss."""
    return "accuracy" if c.task.has_accuracy else "loss"


def _short(c: cmp.Comparison) -> str:
    return c.task.metric  # acc | loss


def _diff(c: cmp.Comparison, x: float) -> str:
    return f"{100 * x:+.1f}" if c.task.has_accuracy else f"{x:+.4g}"


def _worse_by_header(c: cmp.Comparison) -> str:
    on = "val" if _split(c) == "validation" else "test"
    return f"{on} {_short(c)}: worse than best by [95 % CI]"


def sign_convention(c: cmp.Comparison) -> str:
    """The one direction every difference in the report is written in."""
    unit = "accuracy points (pp)" if c.task.has_accuracy else "loss units"
    worse = "a lower accuracy" if c.task.has_accuracy else "a higher loss"
    return (f"Differences are written as how much worse than the best optimizer another one is, in "
            f"{unit}: positive is worse ({worse}), negative is better; the same for every metric.")


def _k(values: Sequence[int]) -> str:
    """One K, or the range of them where runs were lost."""
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}-{high}"


def lost_runs(c: cmp.Comparison) -> list[str]:
    """Each confirm run left out of the statistics, with what happened to it."""
    out = []
    for row in c.ranking:
        rep = row.representative
        if rep is not None and rep.lost:
            runs = "; ".join(f"seed {seed}: {reason}" for seed, reason in rep.lost)
            out.append(f"{row.optimizer} #{rep.trial.number} used {len(rep.used)} of its "
                       f"{len(rep.seeds)} seeds; left out of every mean and test: {runs}.")
    return out


def context(c: cmp.Comparison, studies_attrs: dict) -> list[str]:
    """What the numbers are measured on: data, splits, budget, seeds."""
    base = studies_attrs.get("base_config") or {}
    ds, model, t = base.get("dataset", {}), base.get("model", {}), base.get("trainer", {})
    loss = "the model's loss" if (t.get("loss") or {}) else (
        "mean cross-entropy" if c.task.has_accuracy else "mean squared error")
    test = f"test split {c.n_test} examples" if c.n_test else "no test split"
    lines = [f"Data: {ds.get('name', '?')} ({c.task.name}), validation split {c.n_val or '?'} "
             f"examples (split seed {ds.get('split_seed', '?')}), {test}. "
             f"Model: {model.get('name', '?')}. {t.get('epochs', '?')} epochs per run. Loss: {loss}. "
             f"Objective: validation {_metric(c)} ({studies_attrs.get('objective', 'best')} epoch, "
             f"{'highest' if c.task.maximize else 'lowest'} wins)"
             + ("; the test split is never used for selection." if c.n_test else ".")]
    if c.n_val and c.task.has_accuracy:
        lines.append(f"A validation accuracy near 0.90 measured on {c.n_val} examples has a standard "
                     f"error of ±{cmp.stats.validation_se(0.9, c.n_val):.4f} (sqrt(p(1-p)/n)); "
                     "differences smaller than that cannot be told apart on this split.")
    return lines


def verdict(c: cmp.Comparison) -> list[str]:
    """The answer, or why there is none yet."""
    if not c.confirmed:
        return [f"No confirm runs yet. The search below ran every configuration with one seed, so "
                f"its order is not a ranking: run `sweeps confirm {c.sweep}` (each optimizer's best "
                f"configuration with 5 new seeds), then `sweeps report {c.sweep}`."]
    best = c.ranking[0]
    on = _split(c)
    lines = [f"Ranked by mean validation {_metric(c)} over the confirm seeds "
             f"({', '.join(map(str, c.seeds))}; the search used its own seed, not among them). "
             f"Each optimizer is compared with the best one, {best.optimizer}, over the seeds on "
             "which both completed (K): a paired t-test (Holm-corrected over the comparisons) and "
             f"a bootstrap 95 % interval of the mean {on}-{_metric(c)} difference; \"significant\" "
             "needs both.", sign_convention(c)]
    lines += lost_runs(c)
    if on == "validation":
        lines.append("The data has no test split: the comparisons are on the validation split "
                     "that also chose the configurations, so they favour the chosen ones.")
    lines += [p.sentence() for p in c.pairs]
    if c.pairs:
        lines.append(bottom_line(c))
    if len(c.ranking) == 1:
        lines.append("Only one optimizer has confirm runs: there is nothing to compare it with.")
    return lines


def _split(c: cmp.Comparison) -> str:
    """What the pairs compare on: "test", or "validation" where the data has no test split."""
    return "validation" if c.pairs and c.pairs[0].split == "val" else "test"


def bottom_line(c: cmp.Comparison) -> str:
    """The pairs in one sentence: who is behind, who cannot be told apart, who is ahead on test."""
    best = c.ranking[0].optimizer
    used = [len(r.representative.used) for r in c.ranking if r.representative is not None]
    k = _k(used)
    tied = [p.optimizer for p in c.pairs if not p.significant]
    behind = [p.optimizer for p in c.pairs if p.significant and p.behind]
    ahead = [p.optimizer for p in c.pairs if p.significant and not p.behind]
    m = _metric(c)
    top = c.ranking[0].representative
    tie = [r.optimizer for r in c.ranking
           if r.representative is not None and top is not None and top.val is not None
           and r.representative.val is not None and r.representative.val.mean == top.val.mean]
    if len(tie) > 1:  # equal means: the order among them says nothing
        parts = [f"In short: {', '.join(tie)} tie on mean validation {m} over {k} seeds ({best} "
                 "is listed first and compared with the others only as the reference)"]
    else:
        parts = [f"In short: {best} ranks first on validation {m} over {k} seeds"]
    on = _split(c)
    if tied:
        at = _k([len(p.seeds) for p in c.pairs if not p.significant])
        parts.append(f"{', '.join(tied)} cannot be told apart from it on {on} {m} at K={at}")
    if behind:
        parts.append(f"{', '.join(behind)} {'is' if len(behind) == 1 else 'are'} significantly "
                     f"behind it on {on} {m}")
    if ahead:
        parts.append(f"{', '.join(ahead)} {'is' if len(ahead) == 1 else 'are'} significantly ahead "
                     f"of it on test {m} although behind on validation: the splits disagree")
    return "; ".join(parts) + "."


def ranking_table(c: cmp.Comparison) -> Table:
    pairs = {p.optimizer: p for p in c.pairs}
    has_test = _split(c) == "test"  # no test split: no test column
    rows = []
    for i, row in enumerate(c.ranking, 1):
        rep = row.representative
        assert rep is not None
        p = pairs.get(row.optimizer)
        unit = " pp" if c.task.has_accuracy else ""
        diff = "-" if p is None or p.test.n == 0 else (
            f"{_diff(c, p.test.mean_diff)}{unit} [{_diff(c, p.test.ci_low)}, {_diff(c, p.test.ci_high)}]"
            f" (K={len(p.seeds)})")
        se = [_se(c, rep.val.mean if rep.val else None)] if c.task.has_accuracy else []
        test = [_summ(rep.test)] if has_test else []
        rows.append([str(i), row.optimizer, f"#{rep.trial.number}", rep.seeds_text(),
                     _summ(rep.val), *se, *test, diff,
                     "-" if p is None else _f(p.p_adjusted, 3),
                     "best" if p is None else ("significant" if p.significant else "not significant")])
    m = _short(c)
    se_col = ["split SE"] if c.task.has_accuracy else []
    columns = ["rank", "optimizer", "trial", "seeds", f"val {m}", *se_col,
               *([f"test {m}"] if has_test else []),
               _worse_by_header(c), "p (Holm)", "verdict"]
    # the sign convention is stated once, in the verdict above the table
    notes = (["seeds: completed runs of those run; a diverged or failed run is left out of every "
              "mean and test (listed above)."]
             if any(r.representative and r.representative.lost for r in c.ranking) else [])
    return Table("Ranking (confirm runs: mean ± std [95 % CI over seeds])", columns, rows, notes,
                 right=set(range(3, len(columns) - 1)) | {0})


def confirmed_table(c: cmp.Comparison) -> Table:
    rows = []
    acc = c.task.has_accuracy
    for row in c.rows:
        for cfg in row.configs:
            accs = [_summ(cfg.val_acc), _summ(cfg.test_acc)] if acc else []
            losses = [_summ(cfg.val_loss, ci=not acc), _summ(cfg.test_loss, ci=not acc)]
            gaps = [_summ(cfg.gap_acc, ci=False)] if acc else []
            rows.append([row.optimizer, f"#{cfg.trial.number}", cfg.seeds_text(), str(cfg.diverged),
                         *accs, *losses, *gaps, _summ(cfg.gap_loss, ci=False), _share(cfg)])
    if acc:
        notes = ["Gaps are train minus validation accuracy (gap/acc) and validation minus train loss "
                 "(gap/loss) at each run's best-validation epoch; test metrics use the "
                 "best-validation weights. Adam share: the share of optimizer steps "
                 "Adam ran before the switch to SGD (1 = never switched)."]
    else:
        notes = ["gap/loss is validation minus train loss at each run's best-validation epoch; "
                 "test metrics use the best-validation weights. Adam share: the share of "
                 "optimizer steps Adam ran before the switch to SGD (1 = never switched)."]
    columns = ["optimizer", "trial", "seeds used", "not completed",
               *(["val acc", "test acc"] if acc else []),
               "val loss", "test loss", *(["gap/acc"] if acc else []), "gap/loss", "Adam share"]
    return Table(f"Confirmed configurations (mean ± std over seeds; [95 % CI] for "
                 f"{'accuracies' if acc else 'losses'})", columns, rows, notes,
                 right=set(range(2, len(columns))))


def _share(cfg: cmp.ConfirmedConfig) -> str:
    """Adam's share of the steps, mean ± std (a bounded share: no t-interval), and switches."""
    s = cfg.adam_share
    if s is None:
        return "-"
    spread = f" ± {s.std:.2f}" if s.n > 1 else ""
    return f"{s.mean:.2f}{spread} (switched in {cfg.switched}/{s.n})"


def reach_table(c: cmp.Comparison) -> Table:
    rows = []
    for row in c.ranking or c.rows:
        r = row.reach
        if r is None:
            continue
        source = "confirm runs" if row.representative is not None else "search trial (1 seed)"
        rows.append([row.optimizer, f"{r.reached}/{r.of}", _summ(r.epochs, 1).split(" [")[0],
                     _summ(r.seconds, 2).split(" [")[0], source])
    target = "-" if c.target is None else f"{c.target:.4f}"
    how = "--target" if c.target_given else (
        f"{cmp.TARGET_FRACTION:.0%} of the best optimizer's mean" if c.confirmed else
        f"{cmp.TARGET_FRACTION:.0%} of the best search value")
    if not c.task.maximize and not c.target_given:
        how = how.replace(f"{cmp.TARGET_FRACTION:.0%} of", f"the lowest loss / {cmp.TARGET_FRACTION:g}:"
                          " within 1 % of")
    return Table(f"Time to reach validation {_metric(c)} {target} ({how})",
                 ["optimizer", "reached", "epochs", "training seconds", "from"], rows,
                 ["Training seconds are the training part of each epoch (evaluation excluded), "
                  "summed up to the first epoch at the target; means are over the runs that reached it."],
                 right={1, 2, 3})


def search_table(c: cmp.Comparison) -> Table:
    rows = []
    sign = 1.0 if c.task.maximize else -1.0
    acc = c.task.has_accuracy
    for row in sorted(c.rows, key=lambda r: -(sign * r.search_best.value if r.search_best and
                                               r.search_best.value is not None else -math.inf)):
        t = row.search_best
        final = (t.user_attrs.get("final") or {}) if t is not None else {}
        warn = len(row.boundary.get(t.number, [])) if t is not None else 0
        se = [_se(c, t.value if t else None)] if acc else []
        rows.append([row.optimizer, *(str(row.counts.get(s, 0)) for s in
                                      ("complete", "pruned", "failed", "diverged")),
                     _f(t.value if t else None), *se,
                     "-" if t is None else f"#{t.number}", _f(final.get(c.task.test_key)),
                     str(warn) if warn else "-"])
    notes = ["One seed per trial: this order is a search result, not a ranking."]
    close = c.indistinguishable_from_search_best()
    if len(close) > 1:
        notes.append(f"{', '.join(close)}: best values within one standard error of the top one: "
                     "indistinguishable on this validation split.")
    m = _short(c)
    columns = ["optimizer", "complete", "pruned", "failed", "diverged", f"best val {m}",
               *(["split SE"] if acc else []), "trial", f"test {m}", "boundary"]
    return Table("Search (one seed per trial)", columns, rows, notes,
                 right=set(range(1, len(columns))))


def boundary_lines(c: cmp.Comparison) -> list[str]:
    out = []
    if c.unchecked:
        few = ", ".join(f"{name} ({n})" for name, n in c.unchecked.items())
        out.append(f"Not checked in studies with fewer than {cmp.boundary.MIN_TRIALS} completed "
                   f"trials, where a best value near an edge is chance: {few}.")
    for row in c.rows:
        for number, hits in sorted(row.boundary.items()):
            out += [f"{row.optimizer} #{number}: {h.describe()}" for h in hits]
    return out


def budget_table(c: cmp.Comparison, points: Sequence[int] = (1, 2, 4, 8, 16, 32, 64)) -> Table:
    longest = max((v[-1].n for v in c.budget.values() if v), default=0)
    ns = [n for n in points if n <= longest] + ([longest] if longest and longest not in points else [])
    rows = []
    for opt, curve in c.budget.items():
        found = {n: budget.at(curve, n) for n in ns}
        rows.append([opt, str(curve[-1].n if curve else 0)] + [
            f"{p.expected:.4f} ± {p.std:.4f}" if p is not None else "-" for p in found.values()])
    return Table(f"Tuning budget: expected best validation {_metric(c)} after n trials "
                 "(Dodge et al. 2019)",
                 ["optimizer", "trials"] + [f"n={n}" for n in ns], rows,
                 ["From each optimizer's completed trials (pruned ones excluded), as if drawn at "
                  "random with replacement; ± is the spread of that best value. A curve that rises "
                  "fast is an optimizer that is easy to tune."],
                 right=set(range(1, len(ns) + 2)))


def params_table(c: cmp.Comparison) -> Table:
    rows = []
    for row in c.ranking or c.rows:
        rep = row.representative
        t = rep.trial if rep is not None else row.search_best
        if t is not None:
            rows.append([row.optimizer, f"#{t.number}", cmp.params_text(t.params)])
    return Table("Configurations", ["optimizer", "trial", "params"], rows)

"""The report's tables and sentences, built once and rendered as Markdown or HTML.

Every validation accuracy is printed with the validation split's standard error beside
it; a search value is labelled as one seed; without confirm runs the report says so and
what to run, and shows no ranking.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from sweeps.report import comparison as cmp
from sweeps.report import summary
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


def context(c: cmp.Comparison, studies_attrs: dict) -> list[str]:
    """What the numbers are measured on: data, splits, budget, seeds."""
    base = studies_attrs.get("base_config") or {}
    ds, model, t = base.get("dataset", {}), base.get("model", {}), base.get("trainer", {})
    lines = [f"Data: {ds.get('name', '?')}, validation split {c.n_val or '?'} images "
             f"(split seed {ds.get('split_seed', '?')}), test split {c.n_test or '?'} images. "
             f"Model: {model.get('name', '?')}. {t.get('epochs', '?')} epochs per run. "
             f"Objective: validation accuracy ({studies_attrs.get('objective', 'best')} epoch); "
             "the test split is never used for selection."]
    if c.n_val:
        lines.append(f"A validation accuracy near 0.90 measured on {c.n_val} images has a standard "
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
    lines = [f"Ranked by mean validation accuracy over the confirm seeds "
             f"({', '.join(map(str, c.seeds))}; the search used its own seed, not among them). "
             f"Each optimizer is compared with the best one, {best.optimizer}, over the seeds they "
             "share: a paired t-test (Holm-corrected over the comparisons) and a bootstrap 95 % "
             "interval of the mean test-accuracy difference; \"significant\" needs both."]
    lines += [p.sentence() for p in c.pairs]
    if c.pairs:
        lines.append(bottom_line(c))
    if len(c.ranking) == 1:
        lines.append("Only one optimizer has confirm runs: there is nothing to compare it with.")
    return lines


def bottom_line(c: cmp.Comparison) -> str:
    """The pairs in one sentence: who is behind, who cannot be told apart, who is ahead on test."""
    best, k = c.ranking[0].optimizer, len(c.seeds)
    tied = [p.optimizer for p in c.pairs if not p.significant]
    behind = [p.optimizer for p in c.pairs if p.significant and p.test_acc.mean_diff > 0]
    ahead = [p.optimizer for p in c.pairs if p.significant and p.test_acc.mean_diff < 0]
    parts = [f"In short: {best} ranks first on validation accuracy over {k} seeds"]
    if tied:
        parts.append(f"{', '.join(tied)} cannot be told apart from it on test accuracy at K={k}")
    if behind:
        parts.append(f"{', '.join(behind)} {'is' if len(behind) == 1 else 'are'} significantly "
                     "behind it on test accuracy")
    if ahead:
        parts.append(f"{', '.join(ahead)} {'is' if len(ahead) == 1 else 'are'} significantly ahead "
                     "of it on test accuracy although behind on validation: the splits disagree")
    return "; ".join(parts) + "."


def ranking_table(c: cmp.Comparison) -> Table:
    pairs = {p.optimizer: p for p in c.pairs}
    rows = []
    for i, row in enumerate(c.ranking, 1):
        rep = row.representative
        assert rep is not None
        p = pairs.get(row.optimizer)
        diff = "-" if p is None or p.test_acc.n == 0 else (
            f"{100 * p.test_acc.mean_diff:+.1f} pp [{100 * p.test_acc.ci_low:+.1f}, "
            f"{100 * p.test_acc.ci_high:+.1f}]")
        rows.append([str(i), row.optimizer, f"#{rep.trial.number}", str(len(rep.seeds)),
                     _summ(rep.val_acc), _se(c, rep.val_acc.mean if rep.val_acc else None),
                     _summ(rep.test_acc), diff,
                     "-" if p is None else _f(p.p_adjusted, 3),
                     "best" if p is None else ("significant" if p.significant else "not significant")])
    return Table("Ranking (confirm runs: mean ± std [95 % CI over seeds])",
                 ["rank", "optimizer", "trial", "seeds", "val acc", "split SE", "test acc",
                  "test acc vs best [95 % CI]", "p (Holm)", "verdict"], rows,
                 right={0, 3, 4, 5, 6, 7, 8})


def confirmed_table(c: cmp.Comparison) -> Table:
    rows = []
    for row in c.rows:
        for cfg in row.configs:
            rows.append([row.optimizer, f"#{cfg.trial.number}", str(len(cfg.seeds)), str(cfg.diverged),
                         _summ(cfg.val_acc), _summ(cfg.test_acc), _summ(cfg.val_loss, ci=False),
                         _summ(cfg.test_loss, ci=False), _summ(cfg.gap_acc, ci=False),
                         _summ(cfg.gap_loss, ci=False),
                         _share(cfg)])
    notes = ["Gaps are train minus validation accuracy (gap/acc) and validation minus train loss "
             "(gap/loss) at each run's best-validation epoch; losses are mean cross-entropy; test "
             "metrics use the best-validation weights. Adam share: the share of optimizer steps "
             "Adam ran before the switch to SGD (1 = never switched)."]
    return Table("Confirmed configurations (mean ± std over seeds; [95 % CI] for accuracies)",
                 ["optimizer", "trial", "seeds", "diverged", "val acc", "test acc", "val loss",
                  "test loss", "gap/acc", "gap/loss", "Adam share"], rows, notes,
                 right=set(range(2, 11)))


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
    return Table(f"Time to reach validation accuracy {target} ({how})",
                 ["optimizer", "reached", "epochs", "training seconds", "from"], rows,
                 ["Training seconds are the training part of each epoch (evaluation excluded), "
                  "summed up to the first epoch at the target; means are over the runs that reached it."],
                 right={1, 2, 3})


def search_table(c: cmp.Comparison) -> Table:
    rows = []
    for row in sorted(c.rows, key=lambda r: -(r.search_best.value if r.search_best and
                                               r.search_best.value is not None else -1.0)):
        t = row.search_best
        final = (t.user_attrs.get("final") or {}) if t is not None else {}
        warn = len(row.boundary.get(t.number, [])) if t is not None else 0
        rows.append([row.optimizer, *(str(row.counts.get(s, 0)) for s in
                                      ("complete", "pruned", "failed", "diverged")),
                     _f(t.value if t else None), _se(c, t.value if t else None),
                     "-" if t is None else f"#{t.number}", _f(final.get("test/acc")),
                     str(warn) if warn else "-"])
    notes = ["One seed per trial: this order is a search result, not a ranking."]
    close = c.indistinguishable_from_search_best()
    if len(close) > 1:
        notes.append(f"{', '.join(close)}: best values within one standard error of the top one: "
                     "indistinguishable on this validation split.")
    return Table("Search (one seed per trial)",
                 ["optimizer", "complete", "pruned", "failed", "diverged", "best val acc",
                  "split SE", "trial", "test acc", "boundary"], rows, notes,
                 right=set(range(1, 10)))


def boundary_lines(c: cmp.Comparison) -> list[str]:
    out = []
    for row in c.rows:
        for number, hits in sorted(row.boundary.items()):
            out += [f"{row.optimizer} #{number}: {h.describe()}" for h in hits]
    return out


def budget_table(c: cmp.Comparison, points: Sequence[int] = (1, 2, 4, 8, 16, 32, 64)) -> Table:
    longest = max((len(v) for v in c.budget.values()), default=0)
    ns = [n for n in points if n <= longest] + ([longest] if longest and longest not in points else [])
    rows = []
    for opt, curve in c.budget.items():
        rows.append([opt, str(len(curve))] + [
            f"{curve[n - 1].expected:.4f} ± {curve[n - 1].std:.4f}" if n <= len(curve) else "-"
            for n in ns])
    return Table("Tuning budget: expected best validation accuracy after n trials (Dodge et al. 2019)",
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

"""Read-only views of a sweep's studies: counts by state, best trials, tables."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.table import Table

from sweeps.search.budget import counts_toward_budget

STATE_COLUMNS = ("complete", "pruned", "failed", "diverged", "running")


def trial_state(t: FrozenTrial) -> str:
    if t.state == TrialState.COMPLETE:
        return "complete"
    if t.state == TrialState.PRUNED:
        return "pruned"
    if t.state == TrialState.RUNNING:
        return "running"
    if t.state == TrialState.FAIL:
        return "diverged" if t.user_attrs.get("state") == "diverged" else "failed"
    return t.state.name.lower()


@dataclass
class StudyRow:
    study: str
    optimizer: str
    counts: dict[str, int]
    budget: int
    best: FrozenTrial | None


def study_rows(studies: Sequence[optuna.Study]) -> list[StudyRow]:
    """Each study's counts by state and best trial: a few queries on a database, whatever
    the sweep's size (`study_digest`)."""
    from sweeps.store.study_digest import digests

    rows = []
    for study, digest in zip(studies, digests(studies), strict=True):
        counts = {s: 0 for s in STATE_COLUMNS}
        for state, n in digest.counts.items():
            counts[state] = counts.get(state, 0) + n
        rows.append(StudyRow(study.study_name, str(study.user_attrs.get("optimizer") or "joint"),
                             counts, int(study.user_attrs.get("budget", 0)), digest.best))
    return rows


def sweep_optimizers(studies: Sequence[optuna.Study]) -> list[str]:
    """The sweep's optimizers in launch order (compare: one per study; joint: the choices)."""
    out: list[str] = []
    for study in studies:
        opt = study.user_attrs.get("optimizer")
        names = [opt] if opt else list(
            (study.user_attrs.get("search_space") or {}).get("optimizer", {}).get("choices") or [])
        out += [str(o) for o in names if o and o not in out]
    return out


def best_per_optimizer(studies: Sequence[optuna.Study]) -> dict[str, tuple[optuna.Study, FrozenTrial]]:
    best: dict[str, tuple[optuna.Study, FrozenTrial]] = {}
    for study in studies:
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            opt = str(t.user_attrs.get("optimizer") or study.user_attrs.get("optimizer"))
            if t.value is None:
                continue
            if opt not in best or _sign(study) * t.value > _sign(study) * best[opt][1].value:  # type: ignore[operator]
                best[opt] = (study, t)
    return best


def overall_best(studies: Sequence[optuna.Study]) -> tuple[optuna.Study, FrozenTrial] | None:
    per = best_per_optimizer(studies)
    if not per:
        return None
    return max(per.values(), key=lambda st: _sign(st[0]) * st[1].value)  # type: ignore[operator]


def _sign(study: optuna.Study) -> float:
    """+1 where higher values are better (accuracy), -1 where lower are (a loss)."""
    return -1.0 if study.direction == optuna.study.StudyDirection.MINIMIZE else 1.0


def finished_count(studies: Sequence[optuna.Study]) -> int:
    return sum(1 for s in studies for t in s.get_trials(deepcopy=False)
               if t.state != TrialState.RUNNING and counts_toward_budget(t))


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def status_table(studies: Sequence[optuna.Study], title: str,
                 rows: Sequence[StudyRow] | None = None) -> Table:
    """`rows`: the studies' `study_rows`, where the caller has read them already."""
    table = Table(title=title)
    table.add_column("study")
    table.add_column("optimizer")
    for s in STATE_COLUMNS:
        table.add_column(s, justify="right")
    table.add_column("budget", justify="right")
    from sweeps.search.studies import sweep_task

    table.add_column(f"best {sweep_task(studies).val_key}", justify="right")
    table.add_column("best trial", justify="right")
    for row in study_rows(studies) if rows is None else rows:
        table.add_row(row.study, row.optimizer, *(str(row.counts[s]) for s in STATE_COLUMNS),
                      str(row.budget), fmt(row.best.value if row.best else None),
                      "-" if row.best is None else f"#{row.best.number}")
    return table


def best_table(c: Any) -> Table:
    """Best search trial per optimizer with the split's standard error beside each value, and
    the confirm runs' mean ± std where there are any. `c` is a `comparison.Comparison`."""
    confirmed = c.confirmed
    title = ("best search trial per optimizer (one seed each: not a ranking"
             + ("" if confirmed else "; run `sweeps confirm` for one") + ")")
    table = Table(title=title)
    task, acc = c.task, c.task.has_accuracy
    cols = ["optimizer", "trial", task.val_key, *(["± split SE"] if acc else []), task.test_key,
            task.gap_key, "epochs"]
    if confirmed:
        cols += [f"confirmed {task.val_key} (mean ± std)", "seeds"]
    cols.append("boundary")
    for col in cols:
        table.add_column(col, justify="left" if col in ("optimizer", "boundary") else "right")
    sign = 1.0 if task.maximize else -1.0
    rows = sorted([r for r in c.rows if r.search_best is not None],
                  key=lambda r: -sign * (r.search_best.value or 0.0))
    for row in rows:
        t = row.search_best
        final = t.user_attrs.get("final", {})
        gap = (t.user_attrs.get("curves", {}).get(task.gap_key) or [None])[-1]
        test = fmt(final.get(task.test_key)) if task.test_key in final else "no test split"
        cells = [row.optimizer, f"#{t.number}", fmt(t.value), *([fmt(c.se(t.value))] if acc else []),
                 test, fmt(gap), str(t.user_attrs.get("epochs", "-"))]
        if confirmed:
            rep = row.representative
            cells += ["-" if rep is None or rep.val is None else
                      (f"{rep.val.mean:.4f} ± {rep.val.std:.4f}" if rep.val.n > 1
                       else f"{rep.val.mean:.4f}"),
                      "-" if rep is None else rep.seeds_text()]
        hits = row.boundary.get(t.number, [])
        cells.append(",".join(f"{h.dim}:{h.edge}" for h in hits) or "-")
        table.add_row(*cells)
    return table


def best_notes(c: Any) -> list[str]:
    """What the best table can and cannot tell: indistinguishable values, boundary hits."""
    notes = []
    close = c.indistinguishable_from_search_best()
    if len(close) > 1:
        notes.append(f"{', '.join(close)}: within one validation standard error of the top value "
                     "(indistinguishable on this split).")
    for row in c.rows:
        for number, hits in sorted(row.boundary.items()):
            notes += [f"warning: {row.optimizer} #{number}: {h.describe()}" for h in hits]
    if c.confirmed:
        notes.append(f"ranking with confidence intervals and paired tests: sweeps report {c.sweep}")
    else:
        notes.append(f"a single-seed search is not a ranking: sweeps confirm {c.sweep} re-runs each "
                     "optimizer's best configuration with 5 seeds")
    return notes


def confirm_line(confirm: optuna.Study | None, sweep: str) -> str:
    """One line on the sweep's confirm runs (seed re-runs)."""
    if confirm is None:
        return f"confirm runs: none yet (sweeps confirm {sweep})"
    counts: dict[str, int] = {}
    for t in confirm.get_trials(deepcopy=False):
        state = "waiting" if t.state == TrialState.WAITING else trial_state(t)
        counts[state] = counts.get(state, 0) + 1
    parts = [f"{counts[k]} {k}" for k in ("complete", "running", "waiting", "diverged", "failed")
             if counts.get(k)]
    return "confirm runs: " + (", ".join(parts) or "none")


def retried_count(studies: Sequence[optuna.Study]) -> int:
    """Trials that are retries of a trial whose worker died."""
    return sum("retry_of" in t.user_attrs for s in studies for t in s.get_trials(deepcopy=False))


def trainer_command(overrides: Sequence[str], config_dir: str | None = None) -> str:
    """The `python -m trainer` command that runs a config without the sweep layer (with the
    user's config dir, where the sweep has one)."""
    import shlex

    where = f"--config-dir {shlex.quote(config_dir)} " if config_dir else ""
    return f"python -m trainer {where}" + " ".join(shlex.quote(o) for o in overrides)


def best_metrics(studies: Sequence[optuna.Study]) -> dict[str, float]:
    """The parent run's metrics: the best value per optimizer and overall."""
    from sweeps.search.studies import sweep_task

    best = best_per_optimizer(studies)
    key = sweep_task(studies).best_key
    metrics = {f"{key}/{opt}": t.value for opt, (_, t) in best.items() if t.value is not None}
    overall = overall_best(studies)
    if overall is not None and overall[1].value is not None:
        metrics[key] = overall[1].value
    return metrics

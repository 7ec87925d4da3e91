"""Read-only views of a sweep's studies: counts by state, best trials, tables."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.table import Table

from sweeps.study import counts_toward_budget

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
    rows = []
    for study in studies:
        trials = study.get_trials(deepcopy=False)
        counts = {s: 0 for s in STATE_COLUMNS}
        for t in trials:
            state = trial_state(t)
            counts[state] = counts.get(state, 0) + 1
        complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
        best = max(complete, key=lambda t: t.value) if complete else None  # type: ignore[arg-type,return-value]
        rows.append(StudyRow(study.study_name, str(study.user_attrs.get("optimizer") or "joint"),
                             counts, int(study.user_attrs.get("budget", 0)), best))
    return rows


def best_per_optimizer(studies: Sequence[optuna.Study]) -> dict[str, tuple[optuna.Study, FrozenTrial]]:
    best: dict[str, tuple[optuna.Study, FrozenTrial]] = {}
    for study in studies:
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            opt = str(t.user_attrs.get("optimizer") or study.user_attrs.get("optimizer"))
            if t.value is None:
                continue
            if opt not in best or t.value > best[opt][1].value:  # type: ignore[operator]
                best[opt] = (study, t)
    return best


def overall_best(studies: Sequence[optuna.Study]) -> tuple[optuna.Study, FrozenTrial] | None:
    per = best_per_optimizer(studies)
    if not per:
        return None
    return max(per.values(), key=lambda st: st[1].value)  # type: ignore[arg-type,return-value]


def finished_count(studies: Sequence[optuna.Study]) -> int:
    return sum(1 for s in studies for t in s.get_trials(deepcopy=False)
               if t.state != TrialState.RUNNING and counts_toward_budget(t))


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def status_table(studies: Sequence[optuna.Study], title: str) -> Table:
    table = Table(title=title)
    table.add_column("study")
    table.add_column("optimizer")
    for s in STATE_COLUMNS:
        table.add_column(s, justify="right")
    table.add_column("budget", justify="right")
    table.add_column("best val/acc", justify="right")
    table.add_column("best trial", justify="right")
    for row in study_rows(studies):
        table.add_row(row.study, row.optimizer, *(str(row.counts[s]) for s in STATE_COLUMNS),
                      str(row.budget), fmt(row.best.value if row.best else None),
                      "-" if row.best is None else f"#{row.best.number}")
    return table


def best_table(studies: Sequence[optuna.Study]) -> Table:
    table = Table(title="best trial per optimizer (objective: validation accuracy)")
    for col in ("optimizer", "study", "trial", "val/acc", "test/acc", "gap/acc", "epochs"):
        table.add_column(col, justify="right" if col not in ("optimizer", "study") else "left")
    per = best_per_optimizer(studies)
    for opt, (study, t) in sorted(per.items(), key=lambda kv: -(kv[1][1].value or 0)):
        final = t.user_attrs.get("final", {})
        gap = (t.user_attrs.get("curves", {}).get("gap/acc") or [None])[-1]
        table.add_row(opt, study.study_name, f"#{t.number}", fmt(t.value), fmt(final.get("test/acc")),
                      fmt(gap), str(t.user_attrs.get("epochs", "-")))
    return table

"""What a launch shows while its workers run: one progress line (logs, pipes) or the live
table under it (a terminal)."""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from rich.console import Group
from rich.text import Text

from sweeps.report import summary
from sweeps.search import studies as study_mod


def line(studies: Sequence[optuna.Study], total: int, restarts: int = 0,
         rows: Sequence[summary.StudyRow] | None = None) -> str:
    """`rows`: the studies' `summary.study_rows`, where the caller has read them already."""
    rows = summary.study_rows(studies) if rows is None else rows
    counts = {s: sum(r.counts[s] for r in rows) for s in summary.STATE_COLUMNS}
    best = summary.overall_best(studies)
    done = summary.finished_count(studies)
    text = (f"[{done}/{total}] complete {counts['complete']}  pruned {counts['pruned']}  "
            f"failed {counts['failed']}  diverged {counts['diverged']}  running {counts['running']}")
    retried = summary.retried_count(studies)
    if retried or restarts:
        text += f"  retried {retried}  worker restarts {restarts}"
    if best is not None:
        study, t = best
        key = study_mod.sweep_task(studies).val_key
        text += f"  | best {key} {t.value:.4f} ({study.study_name} #{t.number})"
    return text


def render(studies: Sequence[optuna.Study], title: str, total: int, restarts: int = 0) -> Group:
    """The line and the table from one read of the studies' counts."""
    rows = summary.study_rows(studies)
    return Group(Text(line(studies, total, restarts, rows)), summary.status_table(studies, title, rows))

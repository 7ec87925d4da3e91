"""Failed trials grouped by reason: one row per cause, not one line per trial.

The reason is a trial's failure signature where it raised (`sweeps.run.fail_fast`: its
own folder, study and number masked, so one cause is one row), else the first line of the
reason it recorded (diverged, interrupted, a dead worker, a lost heartbeat).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.table import Table

REASON_CHARS = 150


@dataclass
class Cause:
    reason: str
    trials: list[str] = field(default_factory=list)  # "study #n", in order of the studies


def reason_of(t: FrozenTrial) -> str:
    text = t.user_attrs.get("failure_signature") or t.user_attrs.get("failure_reason") \
        or "failed without a recorded reason (a lost heartbeat)"
    first = (str(text).strip().splitlines() or [""])[0]
    return first if len(first) <= REASON_CHARS else first[:REASON_CHARS - 3] + "..."


def causes(studies: Sequence[optuna.Study]) -> list[Cause]:
    """The sweep's failed trials by reason, the most frequent first (only the failed ones are
    read: on a database, not the whole study through Optuna's cache)."""
    from sweeps.store.trial_counts import in_states

    found: dict[str, Cause] = {}
    for study in studies:
        for t in in_states(study._storage, study._study_id, (TrialState.FAIL,)):
            reason = reason_of(t)
            found.setdefault(reason, Cause(reason)).trials.append(f"{study.study_name} #{t.number}")
    return sorted(found.values(), key=lambda c: -len(c.trials))


def causes_table(studies: Sequence[optuna.Study], shown: int = 3) -> Table | None:
    """None where no trial failed."""
    rows = causes(studies)
    if not rows:
        return None
    table = Table(title="failed and diverged trials by reason")
    table.add_column("trials", justify="right")
    table.add_column("reason")
    table.add_column("e.g.")
    for c in rows:
        more = f" (+{len(c.trials) - shown})" if len(c.trials) > shown else ""
        table.add_row(str(len(c.trials)), c.reason, ", ".join(c.trials[:shown]) + more)
    return table

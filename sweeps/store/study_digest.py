"""What `sweeps status` shows of a study, in a few queries whatever its size.

Reading a study to count its trials by state and find its best one loads every trial with
its config and curves: seconds at 10,000 trials on PostgreSQL. On a database the counts
here are one GROUP BY for all of a sweep's studies (a failed trial is told apart from a
diverged one by its ``state`` attribute, joined in), and the best trial is found from each
completed trial's id and value alone, then read whole by itself. On the journal, which
holds every trial in memory already, both come from the replayed trials, as before.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeps.store.claim_queries import _query, whole_trials
from sweeps.store.trial_counts import _rdb


@dataclass(frozen=True)
class Digest:
    """A study's trials counted by state ("diverged": failed with ``state: diverged``), and
    its best completed trial (the first of equal ones, by trial id), read whole."""

    counts: dict[str, int]
    best: FrozenTrial | None


def state_name(state: TrialState, user_state: Any) -> str:
    if state == TrialState.FAIL:
        return "diverged" if user_state == "diverged" else "failed"
    return state.name.lower()


def digests(studies: Sequence[optuna.Study]) -> list[Digest]:
    """Each study's `Digest`, in study order."""
    if not studies:
        return []
    rdb = _rdb(studies[0]._storage)
    if rdb is None:
        return [_from_trials(s, s.get_trials(deepcopy=False)) for s in studies]
    counts = _counted(rdb, [s._study_id for s in studies])
    best_ids = [_best_id(rdb, s._study_id, _sign(s)) for s in studies]
    found = {t._trial_id: t for t in whole_trials(rdb, [i for i in best_ids if i is not None])}
    return [Digest(counts[s._study_id], None if i is None else found.get(i))
            for s, i in zip(studies, best_ids, strict=True)]


def _sign(study: optuna.Study) -> float:
    return -1.0 if study.direction == optuna.study.StudyDirection.MINIMIZE else 1.0


def _from_trials(study: optuna.Study, trials: Sequence[FrozenTrial]) -> Digest:
    counts: dict[str, int] = {}
    for t in trials:
        name = state_name(t.state, t.user_attrs.get("state"))
        counts[name] = counts.get(name, 0) + 1
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    sign = _sign(study)
    best = max(complete, key=lambda t: sign * t.value) if complete else None  # type: ignore[operator]
    return Digest(counts, best)


def _counted(rdb: optuna.storages.RDBStorage, ids: list[int]) -> dict[int, dict[str, int]]:
    import sqlalchemy
    from optuna.storages._rdb import models

    def run(session: Any) -> dict[int, dict[str, int]]:
        trial, attr = models.TrialModel, models.TrialUserAttributeModel
        joined = sqlalchemy.and_(attr.trial_id == trial.trial_id, attr.key == "state",
                                 trial.state == TrialState.FAIL)
        rows = session.query(trial.study_id, trial.state, attr.value_json,
                             sqlalchemy.func.count(trial.trial_id)).outerjoin(attr, joined).filter(
            trial.study_id.in_(ids)).group_by(trial.study_id, trial.state, attr.value_json).all()
        out: dict[int, dict[str, int]] = {i: {} for i in ids}
        for study_id, state, value_json, n in rows:
            name = state_name(TrialState(state) if not isinstance(state, TrialState) else state,
                              None if value_json is None else json.loads(value_json))
            out[study_id][name] = out[study_id].get(name, 0) + int(n)
        return out

    return dict(_query(rdb, "count trials by state", run))


def _best_id(rdb: optuna.storages.RDBStorage, study_id: int, sign: float) -> int | None:
    """The id of the study's best completed trial: its first objective's values (infinite ones
    as Optuna stores them), compared as `max` compares the trials in id order."""
    from optuna.storages._rdb import models

    def run(session: Any) -> list[tuple[int, float]]:
        trial, value = models.TrialModel, models.TrialValueModel
        rows = session.query(trial.trial_id, value.value, value.value_type).join(
            value, value.trial_id == trial.trial_id).filter(
            trial.study_id == study_id, trial.state == TrialState.COMPLETE,
            value.objective == 0).order_by(trial.trial_id).all()
        return [(int(i), value.stored_repr_to_value(v, kind)) for i, v, kind in rows]

    rows = _query(rdb, "find the best trial", run)
    return max(rows, key=lambda r: sign * r[1])[0] if rows else None

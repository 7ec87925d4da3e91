"""The reads and writes of a claim, each one round trip on a database, whatever the sweep's size.

A claim asks: every study's attributes (its budget, a halt), how many trials of each study
use the budget, and a queued trial to pop. Through Optuna each is a call per study, and the
pop reads the study through its cache, which re-reads every running trial with all its
attributes first: 64 running trials on every claim of a 64-worker sweep, while the other
workers wait for the budget lock. On a database, here each is one query for all the
sweep's studies (and the pop one indexed query and Optuna's own compare-and-set); on the
journal, which holds every trial in memory already, they are Optuna's own calls.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import TrialState

from sweeps.store import pg_calls, resilient
from sweeps.store.trial_counts import _rdb


def _query(rdb: optuna.storages.RDBStorage, what: str, run: Any) -> Any:
    """`run(session)` in one session, retried whole on a lost connection (as Optuna's calls)."""
    from optuna.storages._rdb.storage import _create_scoped_session

    def once() -> Any:
        with _create_scoped_session(rdb.scoped_session) as session:
            return run(session)

    return resilient.patiently(what, once, getattr(rdb, "patience_s", 0.0), on_retry=rdb.remove_session)


def study_named_by(storage: optuna.storages.BaseStorage, attrs: dict[str, Any]) -> str | None:
    """The name of the first study (by id) whose user attributes include `attrs`, or None: on
    a database one query, not every study read with all its attributes (a worker asks on
    every claim whether the sweep has a confirm study yet)."""
    rdb = _rdb(storage)
    if rdb is None:
        return next((s.study_name for s in storage.get_all_studies()
                     if all(s.user_attrs.get(k) == v for k, v in attrs.items())), None)
    if rdb.engine.dialect.name == "postgresql":  # a plain statement: the ORM's query costs
        # ~13 ms of the worker's CPU on every claim, more than the claim itself
        params: dict[str, Any] = {}
        where = ["TRUE"]
        for i, (key, value) in enumerate(attrs.items()):
            params[f"k{i}"], params[f"v{i}"] = key, json.dumps(value)
            where.append(f"EXISTS (SELECT 1 FROM study_user_attributes a WHERE a.study_id = s.study_id "
                         f"AND a.key = %(k{i})s AND a.value_json = %(v{i})s)")
        rows = pg_calls.send(rdb, "find a study", "SELECT s.study_name FROM studies s WHERE "
                             f"{' AND '.join(where)} ORDER BY s.study_id LIMIT 1", params)
        return str(rows[0][0]) if rows else None
    from optuna.storages._rdb import models
    from sqlalchemy import and_, select
    from sqlalchemy.orm import aliased

    def run(session: Any) -> str | None:
        query = select(models.StudyModel.study_name)
        for key, value in attrs.items():
            a = aliased(models.StudyUserAttributeModel)
            query = query.join(a, and_(a.study_id == models.StudyModel.study_id, a.key == key,
                                       a.value_json == json.dumps(value)))
        return session.execute(query.order_by(models.StudyModel.study_id).limit(1)).scalar()

    return _query(rdb, "find a study", run)


def study_attrs(studies: Sequence[optuna.Study]) -> list[dict[str, Any]]:
    """Each study's user attributes, in one query on a database."""
    rdb = _rdb(studies[0]._storage) if studies else None
    if rdb is None:
        return [study.user_attrs for study in studies]
    from optuna.storages._rdb import models

    ids = [study._study_id for study in studies]
    if rdb.engine.dialect.name == "postgresql":
        found: dict[int, dict[str, Any]] = {i: {} for i in ids}
        for study_id, key, value in pg_calls.send(
                rdb, "read study attributes",
                "SELECT study_id, key, value_json FROM study_user_attributes WHERE study_id = ANY(%(ids)s)",
                {"ids": ids}):
            found[study_id][key] = json.loads(value)
        return [found[i] for i in ids]

    def run(session: Any) -> list[dict[str, Any]]:
        rows = session.query(models.StudyUserAttributeModel.study_id, models.StudyUserAttributeModel.key,
                             models.StudyUserAttributeModel.value_json).filter(
            models.StudyUserAttributeModel.study_id.in_(ids)).all()
        found: dict[int, dict[str, Any]] = {i: {} for i in ids}
        for study_id, key, value in rows:
            found[study_id][key] = json.loads(value)
        return [found[i] for i in ids]

    return list(_query(rdb, "read study attributes", run))


def counts(studies: Sequence[optuna.Study], states: Sequence[TrialState]) -> list[int]:
    """How many trials each study holds in `states`, in one query on a database."""
    rdb = _rdb(studies[0]._storage) if studies else None
    if rdb is None:
        return [len(s._storage.get_all_trials(s._study_id, deepcopy=False, states=tuple(states)))
                for s in studies]
    import sqlalchemy
    from optuna.storages._rdb import models

    ids = [study._study_id for study in studies]

    def run(session: Any) -> list[int]:
        trial = models.TrialModel
        rows = session.query(trial.study_id, sqlalchemy.func.count(trial.trial_id)).filter(
            trial.study_id.in_(ids), trial.state.in_(list(states))).group_by(trial.study_id).all()
        found = {study_id: int(n) for study_id, n in rows}
        return [found.get(i, 0) for i in ids]

    return list(_query(rdb, "count trials", run))


def pop_waiting(study: optuna.Study) -> int | None:
    """A queued (WAITING) trial of the study set RUNNING, oldest first; None when none is
    queued. On a database: the oldest queued trial's id (one indexed query), then Optuna's own
    compare-and-set to RUNNING, which a trial another process took first fails."""
    rdb = _rdb(study._storage)
    if rdb is None:
        return study._pop_waiting_trial_id()
    from optuna.storages._rdb import models

    taken: set[int] = set()
    while True:
        def run(session: Any) -> int | None:
            row = session.query(models.TrialModel.trial_id).filter(
                models.TrialModel.study_id == study._study_id,
                models.TrialModel.state == TrialState.WAITING,
                models.TrialModel.trial_id.notin_(taken)).order_by(models.TrialModel.trial_id).first()
            return None if row is None else int(row[0])

        trial_id = _query(rdb, "find a queued trial", run)
        if trial_id is None:
            return None
        try:
            if study._storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                return int(trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass
        taken.add(trial_id)


def trial_states(rdb: optuna.storages.RDBStorage, study_id: int) -> list[tuple[int, TrialState]]:
    """Every trial of a study as (id, state): one query, two columns."""
    from optuna.storages._rdb import models

    if rdb.engine.dialect.name == "postgresql":
        return pg_calls.trial_states(rdb, study_id)

    def run(session: Any) -> list[tuple[int, TrialState]]:
        trial = models.TrialModel
        return [(int(i), TrialState(s) if not isinstance(s, TrialState) else s) for i, s in
                session.query(trial.trial_id, trial.state).filter(trial.study_id == study_id).all()]

    return list(_query(rdb, "read trial states", run))


def light_trials(rdb: optuna.storages.RDBStorage, ids: Sequence[int]) -> list[optuna.trial.FrozenTrial]:
    """Unfinished trials with their parameters and system attributes only (what a sampler
    reads of a trial still running): no user attributes, values or curves."""
    return _trials_by_id(rdb, ids, light=True)


def whole_trials(rdb: optuna.storages.RDBStorage, ids: Sequence[int]) -> list[optuna.trial.FrozenTrial]:
    """These trials with everything Optuna reads of a trial (as its own `_get_trials`)."""
    return _trials_by_id(rdb, ids, light=False)


def _trials_by_id(rdb: optuna.storages.RDBStorage, ids: Sequence[int], *,
                  light: bool) -> list[optuna.trial.FrozenTrial]:
    if not ids:
        return []
    if rdb.engine.dialect.name == "postgresql":
        return pg_calls.trials_by_id(rdb, ids, light=light)
    from optuna.storages._rdb import models
    from sqlalchemy import orm

    def run(session: Any) -> list[optuna.trial.FrozenTrial]:
        trial = models.TrialModel
        skipped = {"user_attributes", "values", "intermediate_values"} if light else set()
        options = [(orm.noload if name in skipped else orm.selectinload)(getattr(trial, name))
                   for name in ("params", "system_attributes", "user_attributes", "values",
                                "intermediate_values")]
        rows = session.query(trial).options(*options).filter(trial.trial_id.in_(list(ids))).all()
        return [rdb._build_frozen_trial_from_trial_model(m) for m in rows]

    return list(_query(rdb, "read running trials" if light else "read trials", run))

"""A trial's parameter and attribute rows, one statement per table, in the caller's transaction.

Optuna's helpers write a row per call and look the trial up again for each one (a SELECT of
the trial, then the row): some 50 statements for a trial's parameters and attributes at
about a millisecond of SQLAlchemy each, and 30 more for a tell with its result attributes.
Here the same rows, under the same checks (the trial still running; a parameter's
distribution compatible with the one the study already has), are one SELECT per trial, one
query for the distributions not known yet, and one multi-row INSERT (parameters) or upsert
(attributes) per table. On a database without an upsert that SQLAlchemy writes (other than
PostgreSQL and SQLite >= 3.24) the attributes go through Optuna's own helper, row by row.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna import distributions
from optuna.distributions import BaseDistribution

Param = tuple[int, str, float, BaseDistribution]  # trial id, name, internal value, distribution
Attr = tuple[int, str, Any]  # trial id, key, value


def running(rdb: optuna.storages.RDBStorage, session: Any, trial_ids: Sequence[int], *,
            for_update: bool = False) -> dict[int, Any]:
    """Each trial's row, once; Optuna's error where one is missing or has finished."""
    from optuna.storages._rdb import models

    found = {}
    for trial_id in dict.fromkeys(trial_ids):
        trial = models.TrialModel.find_or_raise_by_id(trial_id, session, for_update=for_update)
        rdb.check_trial_is_updatable(trial_id, trial.state)
        found[trial_id] = trial
    return found


def insert_params(session: Any, trials: dict[int, Any], params: Sequence[Param],
                  known: Callable[[int, str], BaseDistribution | None]) -> None:
    """The parameters' rows in one INSERT, each checked against the distribution its study
    has for that name (`known`, else the study's first row of it, read for all names at once)."""
    if not params:
        return
    import sqlalchemy as sa
    from optuna.storages._rdb import models

    p, t = models.TrialParamModel, models.TrialModel
    missing: dict[int, set[str]] = {}
    for trial_id, name, _, _ in params:
        if known(trial_id, name) is None:
            missing.setdefault(trials[trial_id].study_id, set()).add(name)
    stored: dict[tuple[int, str], BaseDistribution] = {}
    for study_id, names in missing.items():
        first = sa.select(sa.func.min(p.param_id)).join(t, t.trial_id == p.trial_id).where(
            t.study_id == study_id, p.param_name.in_(sorted(names))).group_by(p.param_name)
        for name, dist_json in session.execute(
                sa.select(p.param_name, p.distribution_json).where(p.param_id.in_(first))):
            stored[(study_id, name)] = distributions.json_to_distribution(dist_json)
    rows = []
    for trial_id, name, value, dist in params:
        before = known(trial_id, name) or stored.get((trials[trial_id].study_id, name))
        if before is not None:
            distributions.check_distribution_compatibility(before, dist)
        rows.append({"trial_id": trial_id, "param_name": name, "param_value": value,
                     "distribution_json": distributions.distribution_to_json(dist)})
    session.execute(sa.insert(p), rows)


def upsert_attrs(rdb: optuna.storages.RDBStorage, session: Any, model: Any, attrs: Sequence[Attr]) -> None:
    """Attributes of `model` (Optuna's user- or system-attribute table) set in one statement:
    new keys inserted, known ones replaced; a key set twice keeps its last value."""
    if not attrs:
        return
    latest: dict[tuple[int, str], str] = {}
    for trial_id, key, value in attrs:
        latest[(trial_id, key)] = json.dumps(value)
    if rdb.engine.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif rdb.engine.name == "sqlite" and sqlite3.sqlite_version_info >= (3, 24, 0):
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    else:
        for (trial_id, key), value_json in latest.items():
            rdb._set_trial_attr_without_commit(session, model, trial_id, key, json.loads(value_json))
        return
    statement = insert(model).values([{"trial_id": trial_id, "key": key, "value_json": value_json}
                                      for (trial_id, key), value_json in latest.items()])
    session.execute(statement.on_conflict_do_update(
        index_elements=[model.trial_id, model.key], set_={"value_json": statement.excluded.value_json}))

"""Optuna's per-trial storage calls on PostgreSQL as one statement each.

Optuna's `RDBStorage` makes each call an ORM session: a pooled connection (pinged first),
then a statement per table, then a commit. A trial's reads and writes on a worker (its
row read back when it starts and at its tell, a curve point each epoch, its run id, its
heartbeat, the study's attributes) came to some 60 statements and 20 pings, most of a
worker's CPU and most of its time on the database beyond its training. Here each of those
calls is one statement sent as one message on a connection of the storage's own pool, in
autocommit (a statement is its own transaction), with Optuna's checks kept: a finished
trial raises `UpdateFinishedTrialError` and a missing one `KeyError`, as Optuna's own do.
What each returns and writes is Optuna's, row for row (`tests/sweeps/test_pg_calls.py`).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeps.store import patience

UPDATABLE = ("RUNNING", "WAITING")  # Optuna's `check_trial_is_updatable`: not finished


def send(rdb: optuna.storages.RDBStorage, what: str, sql: str,
         params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Run `sql` (one statement, or several that form one message) on a pooled connection in
    autocommit and return the last statement's rows. A connection the server dropped is
    replaced at once; a server down or full is waited for (`patience.patiently`)."""

    def once() -> list[tuple[Any, ...]]:
        for attempt in (1, 2):
            pooled = rdb.engine.raw_connection()  # a refused or full server: `patiently` waits
            try:
                conn: Any = pooled.driver_connection  # psycopg2's own connection
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(sql, params)
                    rows = cur.fetchall() if cur.description is not None else []
                conn.autocommit = False  # back to the pool as SQLAlchemy lent it
                return rows
            except Exception as err:
                pooled.invalidate()  # never back to the pool half-set
                if attempt == 2 or not patience.is_connection_error(err):
                    raise
                # the server dropped this connection (restarted, terminated): every pooled
                # one is dead too (what a ping on each checkout would find one by one), so
                # the pool is renewed and the statement sent once more, at once, on a new one
                rdb.engine.dispose()
            finally:
                pooled.close()
        raise AssertionError("unreachable")  # the second attempt returns or raises

    return patience.patiently(what, once, getattr(rdb, "patience_s", patience.PATIENCE_S))


TRIALS = """
SELECT t.trial_id, t.number, t.state::text, t.datetime_start, t.datetime_complete,
  (SELECT json_agg(json_build_array(p.param_name, p.param_value, p.distribution_json) ORDER BY p.param_id)
   FROM trial_params p WHERE p.trial_id = t.trial_id),
  (SELECT json_agg(json_build_array(a.key, a.value_json) ORDER BY a.trial_system_attribute_id)
   FROM trial_system_attributes a WHERE a.trial_id = t.trial_id),
  {whole}
FROM trials t WHERE t.trial_id = ANY(%(ids)s) ORDER BY t.trial_id
"""
WHOLE = """(SELECT json_agg(json_build_array(v.objective, v.value, v.value_type) ORDER BY v.objective)
   FROM trial_values v WHERE v.trial_id = t.trial_id),
  (SELECT json_agg(json_build_array(a.key, a.value_json) ORDER BY a.trial_user_attribute_id)
   FROM trial_user_attributes a WHERE a.trial_id = t.trial_id),
  (SELECT json_agg(json_build_array(i.step, i.intermediate_value, i.intermediate_value_type) ORDER BY i.step)
   FROM trial_intermediate_values i WHERE i.trial_id = t.trial_id)"""
LIGHT = "NULL, NULL, NULL"


def trials_by_id(rdb: optuna.storages.RDBStorage, ids: Sequence[int], *,
                 light: bool = False) -> list[FrozenTrial]:
    """These trials as `RDBStorage.get_trial` reads each, in one statement, by id; `light`:
    their parameters and system attributes only (what a sampler reads of a running trial)."""
    from optuna.storages._rdb import models

    from sweeps.store.trial_reads import build

    if not ids:
        return []
    rows = send(rdb, "read trials", TRIALS.format(whole=LIGHT if light else WHOLE), {"ids": list(ids)})
    value_kind = models.TrialValueModel.TrialValueType
    curve_kind = models.TrialIntermediateValueModel.TrialIntermediateValueType
    return build(
        [(r[0], r[1], TrialState[r[2]], r[3], r[4]) for r in rows],
        [(r[0], name, value, dist) for r in rows for name, value, dist in r[5] or ()],
        [(r[0], objective, value, value_kind[kind]) for r in rows for objective, value, kind in r[7] or ()],
        [(r[0], key, value_json) for r in rows for key, value_json in r[8] or ()],
        [(r[0], key, value_json) for r in rows for key, value_json in r[6] or ()],
        [(r[0], step, value, curve_kind[kind]) for r in rows for step, value, kind in r[9] or ()])


def get_trial(rdb: optuna.storages.RDBStorage, trial_id: int) -> FrozenTrial:
    """`RDBStorage.get_trial`: the trial with its parameters, values, attributes and curve
    (a trial the worker has just written whole is answered once from `rdb.primed`)."""
    from optuna.storages._rdb import models

    primed = getattr(rdb, "primed", {}).pop(trial_id, None)
    if primed is not None:
        return primed
    found = trials_by_id(rdb, [trial_id])
    if not found:
        raise KeyError(models.NOT_FOUND_MSG)
    return found[0]


def trial_states(rdb: optuna.storages.RDBStorage, study_id: int) -> list[tuple[int, TrialState]]:
    """Every trial of a study as (id, state)."""
    rows = send(rdb, "read trial states",
                "SELECT trial_id, state::text FROM trials WHERE study_id = %(id)s ORDER BY trial_id",
                {"id": study_id})
    return [(int(i), TrialState[s]) for i, s in rows]


def _updatable(rdb: optuna.storages.RDBStorage, trial_id: int, rows: list[tuple[Any, ...]]) -> None:
    """Optuna's checks on the state the statement found: none (no such trial) or finished."""
    from optuna.storages._rdb import models

    if not rows or rows[0][0] is None:
        raise KeyError(models.NOT_FOUND_MSG)
    rdb.check_trial_is_updatable(trial_id, TrialState[rows[0][0]])


SET_CURVE_POINT = """
WITH t AS (SELECT state::text AS state FROM trials WHERE trial_id = %(id)s), w AS (
    INSERT INTO trial_intermediate_values (trial_id, step, intermediate_value, intermediate_value_type)
    SELECT %(id)s, %(step)s, %(value)s::float8, %(kind)s::trialintermediatevaluetype
    FROM t WHERE t.state IN ('RUNNING', 'WAITING')
    ON CONFLICT (trial_id, step) DO UPDATE SET intermediate_value = EXCLUDED.intermediate_value,
        intermediate_value_type = EXCLUDED.intermediate_value_type)
SELECT state FROM t
"""


def set_trial_intermediate_value(rdb: optuna.storages.RDBStorage, trial_id: int, step: int,
                                 intermediate_value: float) -> None:
    """`RDBStorage.set_trial_intermediate_value`: a curve point, written or replaced."""
    from optuna.storages._rdb import models

    stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(intermediate_value)
    rows = send(rdb, "set_trial_intermediate_value", SET_CURVE_POINT,
                {"id": trial_id, "step": step, "value": stored, "kind": kind.name})
    _updatable(rdb, trial_id, rows)


SET_ATTR = """
WITH t AS (SELECT state::text AS state FROM trials WHERE trial_id = %(id)s), w AS (
    INSERT INTO {table} (trial_id, key, value_json)
    SELECT %(id)s, %(key)s, %(json)s FROM t WHERE t.state IN ('RUNNING', 'WAITING')
    ON CONFLICT (trial_id, key) DO UPDATE SET value_json = EXCLUDED.value_json)
SELECT state FROM t
"""
ATTR_TABLES = {"user": "trial_user_attributes", "system": "trial_system_attributes"}


def _set_attr(rdb: optuna.storages.RDBStorage, kind: str, trial_id: int, key: str, value: Any) -> None:
    rows = send(rdb, f"set_trial_{kind}_attr", SET_ATTR.format(table=ATTR_TABLES[kind]),
                {"id": trial_id, "key": key, "json": json.dumps(value)})
    _updatable(rdb, trial_id, rows)


def set_trial_user_attr(rdb: optuna.storages.RDBStorage, trial_id: int, key: str, value: Any) -> None:
    """`RDBStorage.set_trial_user_attr`: written or replaced on a trial not finished."""
    _set_attr(rdb, "user", trial_id, key, value)


def set_trial_system_attr(rdb: optuna.storages.RDBStorage, trial_id: int, key: str, value: Any) -> None:
    """`RDBStorage.set_trial_system_attr`: written or replaced on a trial not finished."""
    _set_attr(rdb, "system", trial_id, key, value)


HEARTBEAT = """
INSERT INTO trial_heartbeats (trial_id, heartbeat) VALUES (%(id)s, CURRENT_TIMESTAMP)
ON CONFLICT (trial_id) DO UPDATE SET heartbeat = EXCLUDED.heartbeat
"""


def record_heartbeat(rdb: optuna.storages.RDBStorage, trial_id: int) -> None:
    """`RDBStorage.record_heartbeat`: the trial's heartbeat row, made or moved to now."""
    send(rdb, "record_heartbeat", HEARTBEAT, {"id": trial_id})


STUDY_USER_ATTRS = """
SELECT a.key, a.value_json FROM studies s
LEFT JOIN study_user_attributes a ON a.study_id = s.study_id WHERE s.study_id = %(id)s
"""


def get_study_user_attrs(rdb: optuna.storages.RDBStorage, study_id: int) -> dict[str, Any]:
    """`RDBStorage.get_study_user_attrs` (a missing study raises `KeyError`)."""
    from optuna.storages._rdb import models

    rows = send(rdb, "get_study_user_attrs", STUDY_USER_ATTRS, {"id": study_id})
    if not rows:
        raise KeyError(models.NOT_FOUND_MSG)
    return {key: json.loads(value) for key, value in rows if key is not None}


FINISH = """
WITH t AS (SELECT trial_id, state::text AS state FROM trials WHERE trial_id = %(id)s FOR UPDATE), up AS (
    UPDATE trials SET state = %(state)s::trialstate, datetime_complete = %(now)s
    FROM t WHERE trials.trial_id = t.trial_id AND t.state IN ('RUNNING', 'WAITING')
    RETURNING trials.trial_id
), vals AS (
    INSERT INTO trial_values (trial_id, objective, value, value_type)
    SELECT up.trial_id, x.objective, x.value, x.kind::trialvaluetype
    FROM up, unnest(%(objectives)s::int[], %(values)s::float8[], %(kinds)s::text[])
        AS x(objective, value, kind)
    ON CONFLICT (trial_id, objective) DO UPDATE SET value = EXCLUDED.value, value_type = EXCLUDED.value_type
), attrs AS (
    INSERT INTO trial_user_attributes (trial_id, key, value_json)
    SELECT up.trial_id, y.key, y.value_json
    FROM up, unnest(%(keys)s::text[], %(jsons)s::text[]) AS y(key, value_json)
    ON CONFLICT (trial_id, key) DO UPDATE SET value_json = EXCLUDED.value_json)
SELECT state FROM t
"""


def finish(rdb: optuna.storages.RDBStorage, trial_id: int, state: TrialState,
           values: Sequence[float] | None, attrs: Mapping[str, Any]) -> datetime.datetime:
    """`RDBStorage.set_trial_state_values` to a finished state, with user attributes written in
    the same statement: the trial row locked as Optuna locks it, its values, its attributes,
    its state and completion time, all or nothing. Returns the completion time as Optuna
    reads it back (naive local time)."""
    from optuna.storages._rdb import models

    assert state.is_finished()
    now = datetime.datetime.now()
    stored = [models.TrialValueModel.value_to_stored_repr(v) for v in values or ()]
    rows = send(rdb, "tell", FINISH, {
        "id": trial_id, "state": state.name, "now": now.astimezone(datetime.UTC).replace(tzinfo=None),
        "objectives": list(range(len(stored))), "values": [v for v, _ in stored],
        "kinds": [k.name for _, k in stored],
        "keys": list(attrs), "jsons": [json.dumps(v) for v in attrs.values()]})
    _updatable(rdb, trial_id, rows)
    return now


WRITE_TRIAL = """
WITH t AS (SELECT state::text AS state FROM trials WHERE trial_id = %(id)s), ok AS (
    SELECT %(id)s AS trial_id FROM t WHERE t.state IN ('RUNNING', 'WAITING')
), params AS (
    INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json)
    SELECT ok.trial_id, x.name, x.value, x.dist
    FROM ok, unnest(%(names)s::text[], %(values)s::float8[], %(dists)s::text[]) AS x(name, value, dist)
), users AS (
    INSERT INTO trial_user_attributes (trial_id, key, value_json)
    SELECT ok.trial_id, y.key, y.value_json
    FROM ok, unnest(%(ukeys)s::text[], %(ujsons)s::text[]) AS y(key, value_json)
    ON CONFLICT (trial_id, key) DO UPDATE SET value_json = EXCLUDED.value_json
), systems AS (
    INSERT INTO trial_system_attributes (trial_id, key, value_json)
    SELECT ok.trial_id, z.key, z.value_json
    FROM ok, unnest(%(skeys)s::text[], %(sjsons)s::text[]) AS z(key, value_json)
    ON CONFLICT (trial_id, key) DO UPDATE SET value_json = EXCLUDED.value_json)
SELECT state FROM t
"""


def write_trial(rdb: optuna.storages.RDBStorage, trial_id: int,
                params: Sequence[tuple[str, float, str]], users: Mapping[str, Any],
                systems: Mapping[str, Any]) -> None:
    """A trial's parameters ((name, internal value, distribution JSON), checked by the caller
    against its study's distributions) and its user and system attributes (new keys added,
    known ones replaced), on a trial not finished: Optuna's `set_trial_param`,
    `set_trial_user_attr` and `set_trial_system_attr` in one statement, all or nothing."""
    rows = send(rdb, "write trial", WRITE_TRIAL, {
        "id": trial_id, "names": [n for n, _, _ in params], "values": [v for _, v, _ in params],
        "dists": [d for _, _, d in params],
        "ukeys": list(users), "ujsons": [json.dumps(v) for v in users.values()],
        "skeys": list(systems), "sjsons": [json.dumps(v) for v in systems.values()]})
    _updatable(rdb, trial_id, rows)

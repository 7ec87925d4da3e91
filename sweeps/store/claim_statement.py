"""A claim on PostgreSQL in one round trip: the budget lock, the counts and the trial's row
in one message, with the lock held by the server alone.

The budget lock serialises "is there budget left? then the trial's row". Held by the
worker across the round trips of a claim, it is held for as long as that worker waits to
be scheduled between them: with 64 workers on a few cores, each woken by the last one's
unlock, a claim that runs in 35 ms kept the others waiting seconds (a lock convoy). Here the
worker sends one simple-query message of three statements, which PostgreSQL runs as one
transaction: a transaction-level advisory lock on the sweep's budget key (the same key as
the session-level lock of the other paths: they exclude each other), the sweep's study rows
locked as Optuna's own trial creation locks them (so trial numbers are counted the same
way), then one statement that counts each study's budget, picks the study with the most
left and pops its oldest queued trial or inserts a new running one with who runs it among
its attributes. The lock ends with the transaction, inside the server.

The decisions are those of `sweeps.run.claims` (tested side by side): the budget as
`budget.counts_toward_budget` counts it, the study with the least of its budget used. A
study with a trial to retry answers "slow", and the caller takes its own path under the
lock: re-enqueuing a lost trial with its parameters is rare and stays Optuna's. (An
attribute of an unexpected type also answers "slow": the Python path then decides.)
"""

from __future__ import annotations

import copy
import datetime
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sweeps.store import locks, pg_calls
from sweeps.store.trial_counts import _rdb

# `budget.UNCOUNTED_REASONS` and `budget.OWN_FAILURES`, as SQL (the search layer is above this one)
UNCOUNTED_LIKE = ("interrupted%", "worker died%", "machine:%")
OWN_FAILURES_JSON = ('"failed"', '"diverged"')

CLAIM = """
SELECT pg_advisory_xact_lock(%(lock)s), set_config('sweeps.locked', clock_timestamp()::text, true);
SELECT study_id FROM studies WHERE study_id = ANY(%(ids)s) ORDER BY study_id FOR UPDATE;
WITH s AS (
    SELECT * FROM unnest(%(ids)s::int[], %(budgets)s::int[]) WITH ORDINALITY AS s(study_id, budget, ord)
), plain AS (
    SELECT study_id, count(*) AS n FROM trials
    WHERE study_id = ANY(%(ids)s) AND state IN ('COMPLETE', 'PRUNED', 'RUNNING') GROUP BY study_id
), failed AS (
    SELECT t.study_id, t.trial_id, t.number,
        COALESCE((SELECT a.value_json::jsonb FROM trial_user_attributes a
                  WHERE a.trial_id = t.trial_id AND a.key = 'state')
                 IN (%(own1)s::jsonb, %(own2)s::jsonb), false)
        AND NOT COALESCE((SELECT a.value_json::jsonb #>> '{}' FROM trial_user_attributes a
                          WHERE a.trial_id = t.trial_id AND a.key = 'failure_reason'), '')
            LIKE ANY(%(uncounted)s) AS counted
    FROM trials t WHERE t.study_id = ANY(%(ids)s) AND t.state = 'FAIL'
), retries AS (  -- `budget.retry_candidate`: retryable, not retried yet, retries left
    SELECT f.study_id, count(*) AS n FROM failed f
    WHERE NOT f.counted
      AND EXISTS (SELECT 1 FROM trial_user_attributes a WHERE a.trial_id = f.trial_id
                  AND a.key = 'config' AND jsonb_typeof(a.value_json::jsonb) = 'object')
      AND COALESCE((SELECT CASE jsonb_typeof(a.value_json::jsonb)
                               WHEN 'array' THEN jsonb_array_length(a.value_json::jsonb) ELSE 0 END
                    FROM trial_user_attributes a
                    WHERE a.trial_id = f.trial_id AND a.key = 'retry_history'), 0) < %(max_retries)s
      AND NOT EXISTS (SELECT 1 FROM trial_user_attributes a JOIN trials t ON t.trial_id = a.trial_id
                      WHERE t.study_id = f.study_id AND a.key = 'retry_of'
                        AND a.value_json::jsonb = to_jsonb(f.number))
    GROUP BY f.study_id
), used AS (
    SELECT s.study_id, s.budget, s.ord,
        COALESCE(p.n, 0) + (SELECT count(*) FROM failed f WHERE f.study_id = s.study_id AND f.counted) AS n,
        COALESCE(r.n, 0) AS retry
    FROM s LEFT JOIN plain p ON p.study_id = s.study_id LEFT JOIN retries r ON r.study_id = s.study_id
), open AS (
    SELECT * FROM used WHERE n < budget
), verdict AS (
    SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM open) THEN 'none'
                WHEN EXISTS (SELECT 1 FROM open WHERE retry > 0) THEN 'slow'
                ELSE 'go' END AS v
), pick AS (
    SELECT open.study_id FROM open, verdict WHERE verdict.v = 'go'
    ORDER BY open.n::float8 / greatest(open.budget, 1), open.n, open.ord LIMIT 1
), waiting AS (
    SELECT t.trial_id FROM trials t JOIN pick ON t.study_id = pick.study_id
    WHERE t.state = 'WAITING' ORDER BY t.trial_id LIMIT 1 FOR UPDATE OF t SKIP LOCKED
), popped AS (
    UPDATE trials SET state = 'RUNNING', datetime_start = %(now)s FROM waiting
    WHERE trials.trial_id = waiting.trial_id AND trials.state = 'WAITING'
    RETURNING trials.trial_id, trials.study_id, trials.number, false AS made
), created AS (
    INSERT INTO trials (number, study_id, state, datetime_start)
    SELECT (SELECT count(*) FROM trials t WHERE t.study_id = pick.study_id), pick.study_id,
           'RUNNING', %(now)s
    FROM pick WHERE NOT EXISTS (SELECT 1 FROM waiting)
    RETURNING trial_id, study_id, number, true AS made
), claimed AS (
    SELECT * FROM popped UNION ALL SELECT * FROM created
), owner AS (
    INSERT INTO trial_user_attributes (trial_id, key, value_json)
    SELECT claimed.trial_id, o.key, o.value FROM claimed,
           unnest(%(keys)s::text[], %(values)s::text[]) AS o(key, value)
    ON CONFLICT (trial_id, key) DO UPDATE SET value_json = EXCLUDED.value_json
    RETURNING 1
)
SELECT verdict.v, claimed.trial_id, claimed.study_id, claimed.number, claimed.made,
       (SELECT count(*) FROM owner),
       -- the lock's wait and hold, as the server saw them (the benchmark prints them)
       extract(epoch FROM current_setting('sweeps.locked')::timestamptz - statement_timestamp()),
       extract(epoch FROM clock_timestamp() - current_setting('sweeps.locked')::timestamptz)
FROM verdict LEFT JOIN claimed ON true;
"""


@dataclass(frozen=True)
class Claimed:
    """What the statement did: `go` with the trial's row made (or popped), `none` (no budget
    left), or `slow` (a study has a trial to retry: the caller decides, under the lock)."""

    verdict: Literal["go", "none", "slow"]
    study_id: int | None = None
    trial_id: int | None = None
    number: int | None = None
    made: bool = False  # a new row (else a queued trial popped)
    start: datetime.datetime | None = None
    waited_s: float = 0.0  # for the lock, in the server
    held_s: float = 0.0  # the lock, from its grant to the statement's end (its commit follows)


def supported(storage: Any) -> bool:
    """A study's storage on PostgreSQL (Optuna's cache around it or not)."""
    rdb = _rdb(storage)
    return rdb is not None and rdb.engine.dialect.name == "postgresql"


def claim(storage: Any, lock_key: str, budgets: Sequence[tuple[int, int]], max_retries: int,
          owner: Mapping[str, Any]) -> Claimed:
    """Claim the next search trial of the studies `budgets` ((study id, budget), in the
    sweep's order) in one round trip, under the budget lock of `lock_key`, on a connection
    of the storage's own pool (autocommit for the message: it is its own transaction)."""
    rdb = _rdb(storage)
    assert rdb is not None
    now = datetime.datetime.now()  # as Optuna dates a new trial: the worker's clock (local;
    params = {  # stored in UTC, as Optuna's model stores it)
        "lock": locks.lock_id(lock_key), "ids": [i for i, _ in budgets], "budgets": [b for _, b in budgets],
        "own1": OWN_FAILURES_JSON[0], "own2": OWN_FAILURES_JSON[1], "uncounted": list(UNCOUNTED_LIKE),
        "max_retries": max_retries, "now": now.astimezone(datetime.UTC).replace(tzinfo=None),
        "keys": list(owner), "values": [json.dumps(v) for v in owner.values()],
    }
    rows = pg_calls.send(rdb, "claim a trial", CLAIM, params)
    verdict, trial_id, study_id, number, made, _, waited, held = rows[0]
    if verdict == "go" and trial_id is None:  # the picked study's row went meanwhile
        raise KeyError(f"study {budgets} not found")
    return Claimed(verdict, study_id, trial_id, number, bool(made), now, float(waited), float(held))


def adopt(storage: Any, claimed: Claimed, owner: Mapping[str, Any]) -> None:
    """The claimed trial in the study's cache, as Optuna's own `create_new_trial` puts a new
    trial there (its later writes look the trial's study up in it): a new row as the
    statement made it, a popped one as read back (it carries its queued parameters)."""
    from optuna.storages._cached_storage import _CachedStorage, _StudyInfo
    from optuna.trial import FrozenTrial, TrialState

    if not isinstance(storage, _CachedStorage):
        return
    assert claimed.study_id is not None and claimed.trial_id is not None and claimed.number is not None
    if claimed.made:
        frozen = FrozenTrial(number=claimed.number, state=TrialState.RUNNING, value=None, values=None,
                             datetime_start=claimed.start, datetime_complete=None, params={},
                             distributions={}, user_attrs=dict(owner), system_attrs={},
                             intermediate_values={}, trial_id=claimed.trial_id)
    else:
        frozen = storage._backend.get_trial(claimed.trial_id)
    with storage._lock:
        if claimed.study_id not in storage._studies:
            storage._studies[claimed.study_id] = _StudyInfo()
        storage._add_trials_to_cache(claimed.study_id, [frozen])
    if claimed.made and hasattr(storage._backend, "primed"):  # the trial's first read (its
        # `optuna.Trial`, next): only the trial just claimed, never an older one left unread
        storage._backend.primed = {claimed.trial_id: copy.deepcopy(frozen)}

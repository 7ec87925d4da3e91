"""A database storage that rides out lost connections (`ResilientRDBStorage`).

Every method of Optuna's `RDBStorage` that opens its own session is wrapped: a connection
error is retried with backoff for `PATIENCE_S`, anything else raises at once.
"""

from __future__ import annotations

import time
from typing import Any

import optuna

from sweeps.store.patience import PATIENCE_S, _causes, _why, is_connection_error, patiently

__all__ = ["PATIENCE_S", "ResilientRDBStorage", "_why", "is_connection_error", "patiently"]


class ResilientRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDBStorage whose calls survive a restarted PostgreSQL or terminated
    connections: a call that fails on a lost connection is retried (`patiently`; the first
    retry of a connection found dead goes at once, on a renewed pool). On PostgreSQL a
    trial's own calls are one statement each (`pg_calls`). Optuna wraps it in its cache as
    usual."""

    # per study id: user attributes read where first used (`sweeps.store.trial_reads.defer_reads`)
    deferred: dict[int, Any]
    # trials whose row the worker has just written whole (a claim's new trial): the next
    # `get_trial` of each is answered from here once instead of read back
    primed: dict[int, optuna.trial.FrozenTrial]

    def __init__(self, *args: Any, patience_s: float = PATIENCE_S, **kwargs: Any) -> None:
        self.patience_s = patience_s
        self.deferred = {}
        self.primed = {}

        def init() -> None:
            # workers starting together on an empty database race to create Optuna's schema
            # (check, then CREATE): the loser retries and finds the winner's tables
            for attempt in range(5):
                try:
                    return super(ResilientRDBStorage, self).__init__(*args, **kwargs)
                except Exception as err:
                    if not _lost_schema_race(err) or attempt == 4:
                        raise
                    time.sleep(0.2 * (attempt + 1))

        patiently("connect", init, patience_s)


def _lost_schema_race(err: BaseException) -> bool:
    """A concurrent creation of the same table, type or version row, in its error chain."""
    return any(type(seen).__name__ in ("DuplicateTable", "DuplicateObject", "UniqueViolation")
               or (type(seen).__name__ in ("ProgrammingError", "IntegrityError")
                   and ("already exists" in str(seen) or "pg_type_typname_nsp_index" in str(seen)))
               for seen in _causes(err))


def _retried(name: str) -> Any:
    method = getattr(optuna.storages.RDBStorage, name)

    def call(self: ResilientRDBStorage, *args: Any, **kwargs: Any) -> Any:
        # a session that saw its connection die is unusable ("invalid transaction"): drop it
        return patiently(name, lambda: method(self, *args, **kwargs), self.patience_s,
                         on_retry=self.remove_session)

    call.__name__ = name
    call.__doc__ = method.__doc__
    return call


def _opens_own_session(name: str, member: Any) -> bool:
    """Storage calls that run in a session of their own (retrying them is safe), as opposed
    to helpers that work inside a caller's session or on its ORM objects."""
    import inspect

    if not callable(member) or name.startswith("__") or name in ("remove_session", "upgrade"):
        return False
    if isinstance(member, staticmethod | classmethod):
        return False
    params = inspect.signature(member).parameters.values()
    return not any(p.name == "session" or "Model" in str(p.annotation) for p in params)


# Every such call, private ones included: Optuna's cache calls `_get_trials`,
# `_set_trial_param`, ... directly. A retried call may nest another; that only adds waiting.
for _name, _member in list(vars(optuna.storages.RDBStorage).items()):
    if _opens_own_session(_name, _member):
        setattr(ResilientRDBStorage, _name, _retried(_name))


def _get_trials(self: ResilientRDBStorage, study_id: int, states: Any, included_trial_ids: set[int],
                trial_id_greater_than: int) -> list[optuna.trial.FrozenTrial]:
    """Every read of trials, as plain rows (`trial_reads`), retried like the other calls;
    without the attributes in `deferred` (`defer_reads`) until they are used."""
    from sweeps.store.trial_reads import read_trials

    return patiently("_get_trials", lambda: read_trials(self, study_id, states, included_trial_ids,
                                                        trial_id_greater_than,
                                                        self.deferred.get(study_id, frozenset())),
                     self.patience_s, on_retry=self.remove_session)


ResilientRDBStorage._get_trials = _get_trials  # type: ignore[method-assign, assignment]


def _on_postgresql(name: str) -> None:
    """`ResilientRDBStorage.<name>` as one statement (`pg_calls.<name>`) on PostgreSQL."""
    slow = getattr(ResilientRDBStorage, name)

    def call(self: ResilientRDBStorage, *args: Any, **kwargs: Any) -> Any:
        if self.engine.dialect.name != "postgresql":
            return slow(self, *args, **kwargs)
        from sweeps.store import pg_calls

        return getattr(pg_calls, name)(self, *args, **kwargs)

    call.__name__ = name
    call.__doc__ = slow.__doc__
    setattr(ResilientRDBStorage, name, call)


for _name in ("get_trial", "set_trial_intermediate_value", "set_trial_user_attr",
              "set_trial_system_attr", "record_heartbeat", "get_study_user_attrs"):
    _on_postgresql(_name)

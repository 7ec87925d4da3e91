"""A database storage that rides out lost connections (`ResilientRDBStorage`).

Every method of Optuna's `RDBStorage` that opens its own session is wrapped: a connection
error is retried with backoff for `PATIENCE_S`, anything else raises at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import optuna

PATIENCE_S = 600.0  # how long a worker waits for its database to come back


def is_connection_error(err: BaseException) -> bool:
    """A lost or refused connection (server restarted, connection terminated), anywhere in
    the chain of causes, as opposed to an error in the statement itself."""
    import sqlalchemy.exc

    return any((isinstance(seen, sqlalchemy.exc.DBAPIError) and seen.connection_invalidated)
               or type(seen).__name__ in ("OperationalError", "InterfaceError", "PendingRollbackError")
               for seen in _causes(err))


def _causes(err: BaseException) -> Iterator[BaseException]:
    """`err` and the chain of errors that caused it."""
    seen: BaseException | None = err
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


FULL = "too many clients"  # PostgreSQL's max_connections reached: up, but full


def _why(err: BaseException) -> str:
    """One line: what the retry waits out."""
    line = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
    if FULL in str(err):
        return (f"PostgreSQL has no connection left ({line}): each worker keeps two (its "
                "main thread's, its heartbeats') and opens up to four at once; raise the "
                "server's max_connections (docker-compose.yml sets 300) or put PgBouncer in front")
    return f"database unreachable ({line})"


def patiently(what: str, fn: Any, patience_s: float, on_retry: Any = None) -> Any:
    """Call `fn()`; on a connection error retry with backoff (1 s doubling to 15 s) for up to
    `patience_s`: a restarted database costs waiting, not the trial."""
    import logging
    import time

    end, delay = time.monotonic() + patience_s, 1.0
    while True:
        try:
            return fn()
        except Exception as err:
            if not is_connection_error(err) or time.monotonic() + delay > end:
                raise
            logging.getLogger("sweeps").warning(
                "%s: %s; retrying in %.0f s, for %.0f s more at most (storage.patience_s; Ctrl-C "
                "stops)", what, _why(err), delay, end - time.monotonic())
            time.sleep(delay)
            delay = min(delay * 2, 15.0)
            if on_retry is not None:
                on_retry()


class ResilientRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDBStorage whose calls survive a restarted PostgreSQL or terminated
    connections: `pool_pre_ping` replaces dead pooled connections, and a call that fails on
    a lost connection is retried (`patiently`). Optuna wraps it in its cache as usual."""

    # per study id: user attributes read where first used (`sweeps.store.trial_reads.defer_reads`)
    deferred: dict[int, Any]

    def __init__(self, *args: Any, patience_s: float = PATIENCE_S, **kwargs: Any) -> None:
        self.patience_s = patience_s
        self.deferred = {}

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

"""Waiting out a lost database connection: which errors are one (`is_connection_error`) and
the retry with backoff (`patiently`) that every database call of a worker goes through.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

PATIENCE_S = 600.0  # how long a worker waits for its database to come back


def is_connection_error(err: BaseException) -> bool:
    """A lost or refused connection (server restarted, connection terminated), anywhere in
    the chain of causes, as opposed to an error in the statement itself."""
    import sqlalchemy.exc

    kinds = ("OperationalError", "InterfaceError", "PendingRollbackError")
    return any((isinstance(seen, sqlalchemy.exc.DBAPIError) and seen.connection_invalidated)
               or any(cls.__name__ in kinds for cls in type(seen).__mro__)  # psycopg2's own
               for seen in _causes(err))  # subclasses too (AdminShutdown: a terminated connection)


def _dropped(err: BaseException) -> bool:
    """A connection that was open and that the server dropped, as SQLAlchemy found it (it
    renews its pool then), as opposed to one refused or a server full."""
    import sqlalchemy.exc

    return any(isinstance(seen, sqlalchemy.exc.DBAPIError) and seen.connection_invalidated
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
                "server's max_connections (docker-compose.yml sets 400) or put PgBouncer in front")
    return f"database unreachable ({line})"


def patiently(what: str, fn: Any, patience_s: float, on_retry: Any = None) -> Any:
    """Call `fn()`; on a connection error retry with backoff (1 s doubling to 15 s) for up to
    `patience_s`: a restarted database costs waiting, not the trial."""
    import logging
    import time

    end, delay, at_once = time.monotonic() + patience_s, 1.0, True
    while True:
        try:
            return fn()
        except Exception as err:
            if not is_connection_error(err) or time.monotonic() + delay > end:
                raise
            if at_once and _dropped(err):  # a pooled connection the server dropped (restarted,
                at_once = False  # terminated): the pool is renewed; a new one is tried first
                if on_retry is not None:
                    on_retry()
                continue
            logging.getLogger("sweeps").warning(
                "%s: %s; retrying in %.0f s, for %.0f s more at most (storage.patience_s; Ctrl-C "
                "stops)", what, _why(err), delay, end - time.monotonic())
            time.sleep(delay)
            delay = min(delay * 2, 15.0)
            if on_retry is not None:
                on_retry()

"""Locks shared by every worker of a sweep: the budget lock and the launch lock.

A file lock next to the journal, a PostgreSQL advisory lock on a database: "is there
budget left? then ask" runs under the budget lock, so concurrent workers never overshoot.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sweeps.store import resilient
from sweeps.store.urls import connect_args, is_database, journal_path, libpq_url
from trainer.api import UserError


def _lock_id(key: str) -> int:
    """A PostgreSQL advisory-lock key for a name (64 bits of its SHA-1)."""
    return int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def _file_lock(path: Path, busy: Exception | None = None) -> Iterator[None]:
    """An exclusive flock on `path`: waits for it, or raises `busy` at once if given."""
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (fcntl.LOCK_NB if busy is not None else 0))
        except BlockingIOError:
            assert busy is not None
            raise busy from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def budget_lock(url: str, key: str) -> Iterator[None]:
    """Serialise "is there budget left? then ask" across processes (and machines on PostgreSQL)."""
    if not is_database(url):
        with _file_lock(journal_path(url).with_suffix(".budget.lock")):
            yield
        return
    if url.startswith("postgresql"):
        import psycopg2

        lock_id = _lock_id(key)

        def acquire() -> Any:
            """Connect and lock as one retried step: a connection terminated between the two
            (pg_terminate_backend, a restart) is retried, not raised."""
            conn = psycopg2.connect(libpq_url(url), **connect_args(url))
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT pg_advisory_lock(%s)", (lock_id,))
            except Exception:
                with contextlib.suppress(Exception):
                    conn.close()
                raise
            return conn

        conn = resilient.patiently("budget lock", acquire, resilient.PATIENCE_S)
        try:
            yield
        finally:
            with contextlib.suppress(Exception), conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (lock_id,))
            conn.close()
        return
    yield  # other databases: no cross-process lock; the budget may overshoot by a trial


@contextlib.contextmanager
def launch_lock(url: str, sweep: str) -> Iterator[None]:
    """Held for the whole of a `sweeps launch`: a second launch of the same sweep at the same
    time is refused (one line) instead of opening a second parent run. Released by the OS or
    by PostgreSQL when the launch process dies, so a crash never leaves it stuck."""
    busy = UserError(f"sweep {sweep!r} is being launched by another `sweeps launch` right now; "
                     f"add workers to it with `sweeps worker --study {sweep}`, or wait for it")
    if not is_database(url):
        path = journal_path(url).with_suffix(f".launch-{hashlib.sha1(sweep.encode()).hexdigest()[:12]}.lock")
        with _file_lock(path, busy):
            yield
        return
    if url.startswith("postgresql"):
        import psycopg2

        lock_id = _lock_id(f"launch:{sweep}")
        conn = psycopg2.connect(libpq_url(url), **connect_args(url))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(%s)", (lock_id,))
                if not cur.fetchone()[0]:
                    raise busy
            yield
        finally:
            conn.close()  # ends the session: PostgreSQL releases the lock
        return
    yield

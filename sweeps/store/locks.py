"""Locks shared by every worker of a sweep: the budget lock and the launch lock.

A file lock next to the journal, a PostgreSQL advisory lock on a database: "is there
budget left? then ask" runs under the budget lock, so concurrent workers never overshoot.
On a database, each thread keeps its connection for the budget lock between claims; a
lost connection (a restart, pg_terminate_backend) ends its session and the lock with it,
and the next claim connects again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sweeps.store import resilient
from sweeps.store.urls import connect_args, is_database, journal_path, libpq_url
from trainer.api import UserError


def lock_id(key: str) -> int:
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


_LOCK_CONNECTIONS = threading.local()  # url -> (pid, connection): one per thread and process


def lock_connection(url: str) -> Any:
    """This thread's connection for the budget lock, kept between claims: a claim pays a
    round trip for the lock, not a new connection (a fork makes its own)."""
    import psycopg2

    held = getattr(_LOCK_CONNECTIONS, "by_url", None)
    if held is None:
        held = _LOCK_CONNECTIONS.by_url = {}
    pid, conn = held.get(url, (None, None))
    if pid != os.getpid() or conn is None or conn.closed:
        conn = psycopg2.connect(libpq_url(url), **connect_args(url))
        conn.autocommit = True  # the lock is the session's: no transaction left open between claims
        held[url] = (os.getpid(), conn)
    return conn


def drop_lock_connection(url: str) -> None:
    pid, conn = getattr(_LOCK_CONNECTIONS, "by_url", {}).pop(url, (None, None))
    if conn is not None and pid == os.getpid():
        with contextlib.suppress(Exception):
            conn.close()


@contextlib.contextmanager
def budget_lock(url: str, key: str) -> Iterator[None]:
    """Serialise "is there budget left? then ask" across processes (and machines on PostgreSQL)."""
    if not is_database(url):
        with _file_lock(journal_path(url).with_suffix(".budget.lock")):
            yield
        return
    if url.startswith("postgresql"):
        key_id = lock_id(key)

        def acquire() -> Any:
            """Lock on this thread's connection (made, or made again after a lost one, as one
            retried step: a connection terminated between the two is retried, not raised)."""
            for kept in (True, False):  # a kept connection found dead: a new one at once
                conn = lock_connection(url)
                try:
                    with conn.cursor() as cur:
                        cur.execute("SELECT pg_advisory_lock(%s)", (key_id,))
                    return conn
                except Exception as err:
                    drop_lock_connection(url)
                    if not (kept and resilient.is_connection_error(err)):
                        raise
            raise AssertionError("unreachable")

        conn = resilient.patiently("budget lock", acquire, resilient.PATIENCE_S)
        try:
            yield
        finally:
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT pg_advisory_unlock(%s)", (key_id,))
            except Exception:  # its session ends with the connection: so does the lock
                drop_lock_connection(url)
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

        key_id = lock_id(f"launch:{sweep}")
        conn = psycopg2.connect(libpq_url(url), **connect_args(url))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(%s)", (key_id,))
                if not cur.fetchone()[0]:
                    raise busy
            yield
        finally:
            conn.close()  # ends the session: PostgreSQL releases the lock
        return
    yield

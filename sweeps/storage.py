"""Optuna storage from a URL: a journal file (embedded default) or a database (scale-out).

``storage.url`` (or $SWEEPS_STORAGE) is either a path to a journal file (``sweeps.journal``,
``journal:///abs/path``) or an SQLAlchemy URL (``postgresql://user@host/db``). Reachability
is checked before anything is written; passwords never appear in messages, params or tags.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import optuna

from trainer.errors import UserError

_DB_URL = re.compile(r"^[a-z][a-z0-9+]*://", re.IGNORECASE)


def redact(url: str) -> str:
    """Hide the password of a URL (``postgresql://u:***@host/db``)."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def is_database(url: str) -> bool:
    return bool(_DB_URL.match(url)) and not url.startswith("journal:")


def journal_path(url: str) -> Path:
    path = url[len("journal://"):] if url.startswith("journal://") else url
    path = path[len("journal:"):] if path.startswith("journal:") else path
    return Path(path).expanduser().resolve()


def sqlalchemy_url(url: str) -> str:
    """Plain ``postgresql://`` URLs go through psycopg2 (SQLAlchemy 2.1 would pick psycopg 3)."""
    return re.sub(r"^postgres(ql)?://", "postgresql+psycopg2://", url)


def check_reachable(url: str) -> None:
    """Raise UserError (one line) unless the storage can be opened; writes nothing."""
    if is_database(url):
        import sqlalchemy

        try:
            engine = sqlalchemy.create_engine(sqlalchemy_url(url), connect_args=_connect_args(url))
            with engine.connect():
                pass
            engine.dispose()
        except Exception as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise UserError(f"storage.url={redact(url)}: cannot connect ({reason})") from None
        return
    path = journal_path(url)
    if not path.parent.is_dir():
        raise UserError(f"storage.url={url}: directory {path.parent} does not exist")
    if path.exists() and not path.is_file():
        raise UserError(f"storage.url={url}: {path} is not a file")


def _connect_args(url: str) -> dict[str, Any]:
    # application_name names this process's connections in pg_stat_activity (host:pid), so
    # an operator (or a test) can tell workers apart and terminate exactly one's connections
    return {"connect_timeout": 5, "application_name": application_name()} \
        if url.startswith("postgresql") else {}


def application_name() -> str:
    import os
    import socket

    return f"sweeps {socket.gethostname()}:{os.getpid()}"[:63]


def exists(url: str) -> bool:
    """Whether the storage already holds data (a journal file that is there, or any DB)."""
    return is_database(url) or journal_path(url).exists()


def open_storage(url: str, cfg: Mapping[str, Any] | None = None,
                 stale_trial_callback: Any = None) -> optuna.storages.BaseStorage:
    """Open (creating if needed) the storage behind `url`."""
    cfg = cfg or {}
    if is_database(url):
        from sweeps.engine import quietly

        return quietly(_rdb, url, cfg, stale_trial_callback)  # heartbeats: "experimental"
    return _journal(url)


_OPEN: dict[tuple[Any, ...], optuna.storages.RDBStorage] = {}


def _rdb(url: str, cfg: Mapping[str, Any], stale_trial_callback: Any) -> optuna.storages.RDBStorage:
    """One storage (one connection pool) per database and settings in a process: commands
    and tests that open the same storage again must not pile up connections."""
    key = (url, int(cfg.get("heartbeat_interval", 30)), int(cfg.get("grace_period", 90)),
           float(cfg.get("patience_s", PATIENCE_S)), stale_trial_callback)
    if key not in _OPEN:
        _OPEN[key] = _new_rdb(url, cfg, stale_trial_callback)
    return _OPEN[key]


def _new_rdb(url: str, cfg: Mapping[str, Any], stale_trial_callback: Any) -> optuna.storages.RDBStorage:
    return ResilientRDBStorage(
            sqlalchemy_url(url),
            engine_kwargs={"pool_pre_ping": True, "connect_args": _connect_args(url)},
            heartbeat_interval=int(cfg.get("heartbeat_interval", 30)),
            grace_period=int(cfg.get("grace_period", 90)),
            heartbeat_stale_trial_callback=stale_trial_callback,  # Optuna >= 4.9's name
            patience_s=float(cfg.get("patience_s", PATIENCE_S)),
        )


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
            logging.getLogger("sweeps").warning("%s: database unreachable (%s); retrying in %.0f s",
                                                what, str(err).strip().splitlines()[0][:200], delay)
            time.sleep(delay)
            delay = min(delay * 2, 15.0)
            if on_retry is not None:
                on_retry()


class ResilientRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDBStorage whose calls survive a restarted PostgreSQL or terminated
    connections: `pool_pre_ping` replaces dead pooled connections, and a call that fails on
    a lost connection is retried (`patiently`). Optuna wraps it in its cache as usual."""

    def __init__(self, *args: Any, patience_s: float = PATIENCE_S, **kwargs: Any) -> None:
        self.patience_s = patience_s

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


def _journal(url: str) -> optuna.storages.JournalStorage:
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = journal_path(url)
    lock = JournalFileOpenLock(str(path))
    heal_torn_tail(path, lock)
    backend = JournalFileBackend(str(path), lock_obj=lock)
    try:
        return optuna.storages.JournalStorage(backend)
    except ValueError as err:  # json.JSONDecodeError: a line that is not a log entry
        raise UserError(corrupt_journal_message(url, path)) from err


def heal_torn_tail(path: Path, lock: Any) -> None:
    """A crash in the middle of a journal write leaves a last line without its newline.
    Optuna skips it when reading, but its next write would be appended to that same line,
    corrupting the file for good: so, under the journal's own lock (no write is in flight
    then), set the torn tail aside into ``NAME.torn`` and cut it off."""
    import logging

    from optuna.storages.journal._file import get_lock_file

    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb") as f:
        f.seek(-1, 2)
        if f.read(1) == b"\n":
            return
    with get_lock_file(lock):
        data = path.read_bytes()
        if data.endswith(b"\n"):
            return
        keep = data.rfind(b"\n") + 1
        with open(path.with_name(path.name + ".torn"), "ab") as torn:
            torn.write(data[keep:] + b"\n")
        with open(path, "r+b") as f:
            f.truncate(keep)
    logging.getLogger("sweeps").warning(
        "%s ended with a partial entry (a crash mid-write); set aside in %s.torn", path, path.name)


def corrupt_journal_message(url: str, path: Path) -> str:
    """Where the journal breaks. (An incomplete *last* line, from a crash mid-write, is not an
    error: Optuna skips it on reading, and the next write starts a fresh line.)"""
    import json

    lines = path.read_bytes().split(b"\n")
    for number, line in enumerate(lines, 1):
        if not line.strip() or number == len(lines):
            continue
        try:
            json.loads(line)
        except ValueError:
            return (f"storage.url={url}: {path} is corrupt at line {number} of {len(lines) - 1} "
                    "(not an Optuna log entry; the lines before it are intact): restore the file from a "
                    "backup, or remove that line (keep a copy; later entries may refer to it)")
    return f"storage.url={url}: {path} cannot be read as an Optuna journal"


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
        conn = patiently("budget lock", lambda: psycopg2.connect(
            _libpq_url(url), **_connect_args(url)), PATIENCE_S)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_lock(%s)", (lock_id,))
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
        conn = psycopg2.connect(_libpq_url(url), **_connect_args(url))
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


def _libpq_url(url: str) -> str:
    """SQLAlchemy's ``postgresql+psycopg2://`` -> libpq's ``postgresql://``."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)

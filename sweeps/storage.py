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
    return {"connect_timeout": 5} if url.startswith("postgresql") else {}


def exists(url: str) -> bool:
    """Whether the storage already holds data (a journal file that is there, or any DB)."""
    return is_database(url) or journal_path(url).exists()


def open_storage(url: str, cfg: Mapping[str, Any] | None = None,
                 failed_trial_callback: Any = None) -> optuna.storages.BaseStorage:
    """Open (creating if needed) the storage behind `url`."""
    cfg = cfg or {}
    if is_database(url):
        import warnings

        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return _rdb(url, cfg, failed_trial_callback)
    return _journal(url)


def _rdb(url: str, cfg: Mapping[str, Any], failed_trial_callback: Any) -> optuna.storages.RDBStorage:
    return optuna.storages.RDBStorage(
            sqlalchemy_url(url),
            engine_kwargs={"pool_pre_ping": True, "connect_args": _connect_args(url)},
            heartbeat_interval=int(cfg.get("heartbeat_interval", 30)),
            grace_period=int(cfg.get("grace_period", 90)),
            failed_trial_callback=failed_trial_callback,
        )


def _journal(url: str) -> optuna.storages.JournalStorage:
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = journal_path(url)
    backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
    return optuna.storages.JournalStorage(backend)


@contextlib.contextmanager
def budget_lock(url: str, key: str) -> Iterator[None]:
    """Serialise "is there budget left? then ask" across processes (and machines on PostgreSQL)."""
    if not is_database(url):
        lock_path = journal_path(url).with_suffix(".budget.lock")
        with open(lock_path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        return
    if url.startswith("postgresql"):
        import psycopg2

        lock_id = int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big", signed=True)
        conn = psycopg2.connect(_libpq_url(url), connect_timeout=5)
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


def _libpq_url(url: str) -> str:
    """SQLAlchemy's ``postgresql+psycopg2://`` -> libpq's ``postgresql://``."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)

"""Optuna storage from a URL (`open_storage`): a journal file, or a database with retries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna

from sweeps.store import distributions, existing, resilient
from sweeps.store.journal import open_journal
from sweeps.store.resilient import ResilientRDBStorage
from sweeps.store.urls import connect_args, is_database, is_server_database, sqlalchemy_url

distributions.install()


def open_storage(url: str, cfg: Mapping[str, Any] | None = None,
                 stale_trial_callback: Any = None, *, create: bool = True) -> optuna.storages.BaseStorage:
    """Open the storage behind `url`, creating it if needed; `create=False` (the commands
    that read a sweep): only one that holds Optuna's data already, and change nothing on
    opening it (no tables made in a database, no torn journal tail cut off)."""
    cfg = cfg or {}
    if is_database(url):
        from sweeps.store.quiet import quietly

        if not create:
            # a database file is looked at read-only first: closing a read-write connection to
            # SQLite folds its write-ahead log in, a change to a file that may not be ours
            local = not url.startswith("postgres")
            if local:
                existing.check(url)
            checked = quietly(_rdb, url, cfg, stale_trial_callback, reading=True)
            if checked is not None:
                return checked
            if not local:
                existing.check(url)  # what is wrong, in one line
        return quietly(_rdb, url, cfg, stale_trial_callback)  # heartbeats: "experimental"
    if not create:
        existing.check(url)
    if not create and existing.torn(url):
        return open_journal(url, heal=False)  # not kept: a later writer must heal it first
    return _journal(url)


_JOURNALS: dict[tuple[str, int, int], tuple[optuna.storages.JournalStorage, int, bytes]] = {}


def _journal(url: str) -> optuna.storages.JournalStorage:
    """One storage per journal file in a process: opening one replays the whole file (~2 s
    for 10,000 trials), while an open one reads only what was appended since. Keyed by the
    file's identity, and checked against its size and first bytes (the creating worker's
    id), so a journal removed and made again, or cut shorter (healed, rewritten), is
    opened afresh."""
    import os

    from sweeps.store.urls import journal_path

    path = journal_path(url)
    try:
        st = os.stat(path)
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return open_journal(url)  # not there yet: Optuna creates it
    key = (str(path.resolve()), st.st_dev, st.st_ino)
    known = _JOURNALS.get(key)
    if known is None or st.st_size < known[1] or head[:len(known[2])] != known[2]:
        known = (open_journal(url), st.st_size, head)
    _JOURNALS[key] = (known[0], st.st_size, head if len(head) > len(known[2]) else known[2])
    return known[0]


_OPEN: dict[tuple[Any, ...], optuna.storages.RDBStorage] = {}


def _rdb(url: str, cfg: Mapping[str, Any], stale_trial_callback: Any, *,
         reading: bool = False) -> optuna.storages.RDBStorage | None:
    """One storage (one connection pool) per database and settings in a process: commands
    and tests that open the same storage again must not pile up connections. `reading`: one
    opened without Optuna's table and version checks (`sweeps.store.reading`), or None where
    the database is not at this Optuna's schema (then open it the full way to learn why)."""
    key = (url, int(cfg.get("heartbeat_interval", 30)), int(cfg.get("grace_period", 90)),
           float(cfg.get("patience_s", resilient.PATIENCE_S)), stale_trial_callback)
    if key in _OPEN:
        return _OPEN[key]
    if reading:
        read_key = (*key, "reading")
        if read_key not in _OPEN:
            checked = _new_rdb(url, cfg, stale_trial_callback, reading=True)
            if checked is None:
                return None
            _OPEN[read_key] = checked
        return _OPEN[read_key]
    opened = _new_rdb(url, cfg, stale_trial_callback)
    assert opened is not None
    _OPEN[key] = opened
    return opened


def _new_rdb(url: str, cfg: Mapping[str, Any], stale_trial_callback: Any, *,
             reading: bool = False) -> optuna.storages.RDBStorage | None:
    if reading:
        from sweeps.store import reading as checked

        return checked.open_checked(ResilientRDBStorage, sqlalchemy_url(url),
                                    **_rdb_kwargs(url, cfg, stale_trial_callback))
    return ResilientRDBStorage(sqlalchemy_url(url), **_rdb_kwargs(url, cfg, stale_trial_callback))


# Connections a process keeps open to a database server: its main thread's and its heartbeat
# thread's. More at once (a start-up's threads) are made and closed again: SQLAlchemy's
# default keeps 5 open for good, and 64 workers with 5 each (and the MLflow server's) ran
# PostgreSQL's max_connections out.
POOL_KEPT = 2


def _rdb_kwargs(url: str, cfg: Mapping[str, Any], stale_trial_callback: Any) -> dict[str, Any]:
    # no ping before each use of a pooled connection (a round trip each, some 20 a trial):
    # a connection the server dropped fails its call, which `resilient.patiently` retries
    # at once on a renewed pool
    pool = {"pool_size": POOL_KEPT, "max_overflow": 10} if is_server_database(url) else {}
    return {"engine_kwargs": {"pool_pre_ping": False, "connect_args": connect_args(url), **pool},
            "heartbeat_interval": int(cfg.get("heartbeat_interval", 30)),
            "grace_period": int(cfg.get("grace_period", 90)),
            "heartbeat_stale_trial_callback": stale_trial_callback,  # Optuna >= 4.9's name
            "patience_s": float(cfg.get("patience_s", resilient.PATIENCE_S))}

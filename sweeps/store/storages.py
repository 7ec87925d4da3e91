"""Optuna storage from a URL (`open_storage`): a journal file, or a database with retries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna

from sweeps.store import resilient
from sweeps.store.journal import open_journal
from sweeps.store.resilient import ResilientRDBStorage
from sweeps.store.urls import connect_args, is_database, sqlalchemy_url


def open_storage(url: str, cfg: Mapping[str, Any] | None = None,
                 stale_trial_callback: Any = None) -> optuna.storages.BaseStorage:
    """Open (creating if needed) the storage behind `url`."""
    cfg = cfg or {}
    if is_database(url):
        from sweeps.store.quiet import quietly

        return quietly(_rdb, url, cfg, stale_trial_callback)  # heartbeats: "experimental"
    return open_journal(url)


_OPEN: dict[tuple[Any, ...], optuna.storages.RDBStorage] = {}


def _rdb(url: str, cfg: Mapping[str, Any], stale_trial_callback: Any) -> optuna.storages.RDBStorage:
    """One storage (one connection pool) per database and settings in a process: commands
    and tests that open the same storage again must not pile up connections."""
    key = (url, int(cfg.get("heartbeat_interval", 30)), int(cfg.get("grace_period", 90)),
           float(cfg.get("patience_s", resilient.PATIENCE_S)), stale_trial_callback)
    if key not in _OPEN:
        _OPEN[key] = _new_rdb(url, cfg, stale_trial_callback)
    return _OPEN[key]


def _new_rdb(url: str, cfg: Mapping[str, Any], stale_trial_callback: Any) -> optuna.storages.RDBStorage:
    return ResilientRDBStorage(
            sqlalchemy_url(url),
            engine_kwargs={"pool_pre_ping": True, "connect_args": connect_args(url)},
            heartbeat_interval=int(cfg.get("heartbeat_interval", 30)),
            grace_period=int(cfg.get("grace_period", 90)),
            heartbeat_stale_trial_callback=stale_trial_callback,  # Optuna >= 4.9's name
            patience_s=float(cfg.get("patience_s", resilient.PATIENCE_S)),
        )

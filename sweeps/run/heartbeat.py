"""Heartbeats of a running trial on database storages.

Optuna sends heartbeats only inside `study.optimize`; our workers use ask/tell (a trial is
a whole trainer run), so they beat from a thread of their own while a trial runs. A trial
whose worker stops beating is failed by `optuna.storages.fail_stale_trials` in any other
worker, and retried from its checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

import optuna

log = logging.getLogger("sweeps")


def interval(storage: Any) -> int | None:
    """Seconds between heartbeats, or None where the storage keeps none (the journal)."""
    getter = getattr(storage, "get_heartbeat_interval", None)
    return getter() if getter is not None else None


@contextlib.contextmanager
def beating(storage: Any, trial: optuna.Trial) -> Iterator[None]:
    """Beat for `trial` every `interval(storage)` seconds while the block runs."""
    every = interval(storage)
    if every is None:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            try:
                storage.record_heartbeat(trial._trial_id)
            except Exception as err:  # a missed beat is not worth a crash
                log.warning("heartbeat failed: %s", err)
            stop.wait(every)

    thread = threading.Thread(target=beat, name="sweeps-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)

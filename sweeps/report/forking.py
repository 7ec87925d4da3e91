"""Forked process pools for the report's independent figures, only where a fork is safe."""

from __future__ import annotations

import multiprocessing as mp
import signal
import threading
from typing import Any


def _default_signals() -> None:
    """A pool child ends quietly when the pool is closed: it inherited the command's own
    SIGTERM handler (`sweeps.run.stopping`, which raises to unwind a command), and the pool's
    terminate() would otherwise print that exception's traceback from every child."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle


def fork_pool(workers: int) -> Any | None:
    """A pool of `workers` forked processes, or None: run serially instead.

    Forking is what makes these pools cheap (the children inherit Optuna, plotly and torch
    already imported), and it is only safe in a process with one thread: a child inherits
    every lock another thread held at the fork, and waits on it forever.
    """
    if workers < 2 or "fork" not in mp.get_all_start_methods() or threading.active_count() > 1:
        return None
    return mp.get_context("fork").Pool(workers, initializer=_default_signals)

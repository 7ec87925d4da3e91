"""Forked process pools for the report's independent figures, only where a fork is safe."""

from __future__ import annotations

import multiprocessing as mp
import threading
from typing import Any


def fork_pool(workers: int) -> Any | None:
    """A pool of `workers` forked processes, or None: run serially instead.

    Forking is what makes these pools cheap (the children inherit Optuna, plotly and torch
    already imported), and it is only safe in a process with one thread: a child inherits
    every lock another thread held at the fork, and waits on it forever.
    """
    if workers < 2 or "fork" not in mp.get_all_start_methods() or threading.active_count() > 1:
        return None
    return mp.get_context("fork").Pool(workers)

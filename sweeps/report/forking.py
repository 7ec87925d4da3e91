"""The report's independent figures drawn in forked processes, where a fork is safe, with
every wait bounded.

Why not `multiprocessing.Pool`: its close-down (`terminate`, run at the end of `with pool:`)
takes the task queue's read lock with no timeout, a lock an idle pool process holds while it
waits for work, and its `map` waits with no timeout for a task whose process died (killed,
out of memory). A report once hung there under load and left its pool processes behind,
re-parented to PID 1. Here a `ProcessPoolExecutor` notices a dead process
(`BrokenProcessPool`), every wait has a bound (`POOL_TIMEOUT_S`), the processes are killed,
not asked, when the work is done, and each one dies with the report (`die_with_parent`). A
pool that fails or stalls costs time, not the report: what is left is drawn in-process.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import multiprocessing as mp
import os
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from trainer.api import die_with_parent, watchdog

log = logging.getLogger("sweeps")

T = TypeVar("T")
R = TypeVar("R")

POOL_TIMEOUT_S = 300.0  # for all the figures of one pool; past it they are drawn in-process


def _child_setup(parent: int) -> None:
    """A pool child ends quietly when it is stopped: it inherited the command's own SIGTERM
    handler (`sweeps.run.stopping`, which raises to unwind a command); Ctrl-C is the
    parent's to handle; and it dies with the report, whatever ends that."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(signal.SIGKILL, parent)


def can_fork(workers: int) -> bool:
    """Forking is what makes these pools cheap (the children inherit Optuna, plotly and torch
    already imported), and it is only safe in a process with one thread: a child inherits
    every lock another thread held at the fork, and waits on it forever. (The command's
    watchdog thread only waits on its own event, and holds nothing a child could need.)"""
    return workers >= 2 and "fork" in mp.get_all_start_methods() and \
        threading.active_count() - watchdog.running() == 1


def parallel_map(fn: Callable[[T], R], jobs: Sequence[T], workers: int,
                 timeout_s: float | None = None) -> list[R]:
    """`[fn(job) for job in jobs]`, spread over up to `workers` forked processes where that
    is safe. A process that dies, or a pool still busy after `timeout_s`
    (`POOL_TIMEOUT_S`), leaves the rest of the jobs to this process, with one log line."""
    workers = min(workers, len(jobs))
    if not can_fork(workers):
        return [fn(job) for job in jobs]
    results: list[R] = []
    pool = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=mp.get_context("fork"), initializer=_child_setup,
        initargs=(os.getpid(),))
    try:
        for result in pool.map(fn, jobs, timeout=POOL_TIMEOUT_S if timeout_s is None else timeout_s):
            results.append(result)
    except (concurrent.futures.process.BrokenProcessPool, concurrent.futures.TimeoutError) as err:
        why = "a drawing process died" if isinstance(err, concurrent.futures.process.BrokenProcessPool) \
            else f"the drawing processes were still busy after {timeout_s or POOL_TIMEOUT_S:.0f} s"
        log.warning("report: %s; drawing the remaining %d figure(s) in this process", why,
                    len(jobs) - len(results))
    finally:
        _stop(pool)
    return results + [fn(job) for job in jobs[len(results):]]


def _stop(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Kill the pool's processes and reap them: nothing of theirs is needed any more, and a
    polite shutdown is a wait on them."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # no public handle
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.kill()
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.join(5)
    manager = getattr(pool, "_executor_manager_thread", None)
    if manager is not None:  # it ends once it sees the processes gone
        manager.join(10)


def star(fn: Callable[..., R]) -> Callable[[tuple[Any, ...]], R]:
    """`fn(*job)` for `parallel_map`: a module-level function, so a forked child finds it."""
    return _Star(fn)


class _Star:
    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def __call__(self, job: tuple[Any, ...]) -> Any:
        return self.fn(*job)

"""The one writer per process that sends MLflow writes in order (`Background`)."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sweeps.tracking import clients, outage

log = logging.getLogger("sweeps")



def _op_open(uri: str, sweep: str) -> None:
    """Open the store and look the experiment up before the first trial needs it."""
    clients.experiment_id(uri, sweep)


def thread_writer() -> ThreadPoolExecutor:
    """The writer as a thread of this process."""
    return ThreadPoolExecutor(1, thread_name_prefix="sweeps-mlflow")


class Background:
    """One writer per process that sends MLflow writes in order, so training never waits.

    By default a thread. `use_process()` (sweep workers) moves the writes to a separate
    writer process, `use_launch_writer()` (a launch's own workers) to the launch: MLflow's
    SQLAlchemy store costs ~50 ms of Python per trial run, which on a thread competes with
    the training loop for the GIL; in another process it runs on a spare core. Not MLflow's
    own asynchronous logging: its queue takes about a second per run to shut down when the
    run is terminated. `wait()` returns when this object's writes are done, `drain()` when
    every write of the process is.
    """

    _executor: Any = None  # ThreadPoolExecutor, writer_process's ProcessPoolExecutor or a LaunchWriter
    _all: list[Future[Any]] = []  # every write of this process not yet known to be done
    _opened: Future[Any] | None = None  # the writer process's opening of the store
    # Writes waiting for an unreachable server: bounded, so that a long outage makes
    # training wait for room rather than grow memory without limit.
    MAX_PENDING = 20_000
    _room = threading.BoundedSemaphore(MAX_PENDING)

    def __init__(self) -> None:
        if Background._executor is None:
            Background._executor = thread_writer()
        self._futures: list[Future[Any]] = []

    @classmethod
    def use_process(cls, uri: str, sweep: str) -> bool:
        """Send this process's MLflow writes through a writer process (started now, opening
        the store while the caller warms up); False where none can be started."""
        if not cls.start_process(not uri.startswith(("http://", "https://"))):
            return False
        cls.open_store(uri, sweep)
        return True

    @classmethod
    def use_launch_writer(cls, address: Any) -> bool:
        """A launch's worker: send this process's MLflow writes to the launch, which has MLflow
        and the store open already (`writer_service`); False where it cannot be reached
        (then `start_process` starts a writer process of this worker's own)."""
        from sweeps.tracking.writer_service import LaunchWriter

        try:
            remote = LaunchWriter(address)
        except Exception as err:  # the launch's socket is gone or refuses: a writer of our own
            log.debug("the launch's MLflow writer is out of reach: %s", err)
            return False
        if cls._executor is not None:
            cls.drain()
        cls._executor = remote
        from multiprocessing import util

        util.Finalize(None, cls.close_process, exitpriority=100)  # its writes done at exit
        return True

    @classmethod
    def start_process(cls, sql_store: bool = True) -> bool:
        """Start the writer process, which imports MLflow at once but opens no store until
        `open_store` (a launch's new store may not exist yet); False where none can start."""
        if cls._executor is not None and not isinstance(cls._executor, ThreadPoolExecutor):
            return True
        from sweeps.tracking import writer_process

        started = writer_process.start(sql_store)
        if started is None:
            return False
        if cls._executor is not None:  # the thread's writes first, then the process's
            cls.drain()
        cls._executor, flag = started
        outage.share(flag)  # the writer process reports its outages here
        # multiprocessing joins a process's children before its atexit handlers run: without
        # this, a worker process would wait at its exit for a writer nobody shuts down
        from multiprocessing import util

        util.Finalize(None, cls.close_process, exitpriority=100)
        return True

    @classmethod
    def open_store(cls, uri: str, sweep: str) -> None:
        """The writer's first write: open the store and look the experiment up."""
        assert cls._executor is not None
        cls._opened = cls._executor.submit(outage.patiently_with, outage.PATIENCE_S, _op_open, uri, sweep)
        cls._all.append(cls._opened)

    @classmethod
    def wait_ready(cls, timeout: float) -> None:
        """Until the writer process has the store open (at most `timeout`: a server that is
        away is waited out by the writes themselves), so that a trial claimed next gets its
        run at once: a worker killed in its first seconds then still leaves the run behind."""
        if cls._opened is not None:
            with contextlib.suppress(Exception):
                cls._opened.result(timeout=timeout)

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        assert Background._executor is not None
        Background._room.acquire()
        try:
            future = Background._executor.submit(outage.patiently_with, outage.PATIENCE_S, fn,
                                                 *args, **kwargs)
        except RuntimeError as err:  # the writer process died (BrokenProcessPool): a thread takes over
            log.warning("MLflow writer process lost (%s); writing from this process", err)
            Background._executor = thread_writer()
            future = Background._executor.submit(outage.patiently_with, outage.PATIENCE_S, fn,
                                                 *args, **kwargs)
        future.add_done_callback(lambda _: Background._room.release())
        self._futures = [f for f in self._futures if not f.done()] + [future]
        Background._all = [f for f in Background._all if not f.done()] + [future]
        return future

    @classmethod
    def close_process(cls) -> None:
        """Write what is queued, then stop the writer process (at the worker's exit)."""
        executor = cls._executor
        if executor is None or isinstance(executor, ThreadPoolExecutor):
            return
        cls.drain()
        executor.shutdown(wait=True)
        cls._executor = None

    @classmethod
    def drain(cls) -> None:
        """Wait for every queued write of this process (before a worker exits)."""
        for future in list(cls._all):
            try:
                future.result()
            except Exception as err:  # reported, never raised: the Optuna record is the truth
                log.warning("MLflow logging failed: %s", err)
        cls._all = []

    def wait(self) -> None:
        for future in self._futures:
            try:
                future.result()
            except Exception as err:  # tracking must never take a trial down
                log.warning("MLflow logging failed: %s", err)
        self._futures = []

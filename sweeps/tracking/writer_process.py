"""The MLflow writer process of a sweep worker: one child that sends the worker's MLflow writes.

MLflow's SQLAlchemy store spends ~50 ms of Python per trial run (create, curves, params,
artifacts, end). On a thread of the worker that Python competes with the training loop for
the GIL, which a small model's loop needs all the time; in a child process it runs on a
spare core and the training loop does not wait (benchmarks/sweep_overhead.py).

The child is a one-process ProcessPoolExecutor: writes run one at a time in the order they
were submitted, results and errors come back as futures. It is started with ``spawn`` (no
fork of a process that may hold threads, CUDA or open database connections), ignores Ctrl-C
(the worker decides what to write before it stops), SIGTERM too (a scheduler's stop reaches
every process of the job) and leaves when its worker is gone.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from sweeps.store import logs
from sweeps.tracking import outage
from trainer.api import main_not_rerun

log = logging.getLogger("sweeps")
PARENT_POLL_S = 0.5
IMPORT_NICE = 10  # the writer's imports yield to the worker's start-up


def start(sql_store: bool = True) -> tuple[ProcessPoolExecutor, Any] | None:
    """The writer's executor and the outage flag it shares with this process, or None where
    no process can be started (then the writes stay on a thread)."""
    try:
        ctx = mp.get_context("spawn")
        flag = ctx.Value("b", 0, lock=False)
        pool = ProcessPoolExecutor(1, mp_context=ctx, initializer=_init,
                                   initargs=(os.getpid(), flag))
        with main_not_rerun():  # the child needs nothing of the parent's main script
            pool.submit(_import_mlflow, sql_store)  # start it now: it imports while the worker warms up
        return pool, flag
    except Exception as err:  # e.g. a sandbox without process creation
        log.warning("no MLflow writer process (%s); writing from a thread", err)
        return None


def _import_mlflow(sql_store: bool) -> None:
    """MLflow's client, and its SQL store for a database URI (~3 s of imports in all),
    before the first write needs them: on a thread of lower priority, so that on a busy
    machine the worker's own start-up (torch, its data) goes first. The writes themselves
    run at the worker's priority."""

    def imports() -> None:
        with contextlib.suppress(OSError, AttributeError):  # per-thread nice: Linux
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), IMPORT_NICE)
        import mlflow.tracking  # noqa: F401

        if sql_store:
            from mlflow.store.tracking import sqlalchemy_store  # noqa: F401

    thread = threading.Thread(target=imports, name="sweeps-mlflow-import")
    thread.start()
    thread.join()


def _init(parent: int, flag: Any) -> None:
    from trainer.api import skip_exit_gc

    skip_exit_gc()
    # Ctrl-C and SIGTERM are the worker's to act on: a scheduler's stop (Slurm's scancel, a
    # pod's termination) reaches every process of the job, and the writer must outlive the
    # worker's last writes (the interrupted trial's run closed). It leaves with its worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    outage.share(flag)
    logs.setup()
    threading.Thread(target=_leave_with, args=(parent,), name="sweeps-orphan-watch",
                     daemon=True).start()


def _leave_with(parent: int) -> None:
    """Exit once the worker is gone (killed: nobody will read the results or send more)."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(0)

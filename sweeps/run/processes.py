"""Local worker processes: start them, watch them, stop them on Ctrl-C.

`sweeps launch` (search trials) and `sweeps confirm` (seed re-runs) both run N worker
processes on this machine and show a live view until they are done. A worker that dies
has its running trial failed (its MLflow run too); Ctrl-C fails the running trials as
interrupted, so that nothing is left RUNNING and the next call resumes.
"""

from __future__ import annotations

import contextlib
import datetime
import multiprocessing as mp
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from rich.console import Console, RenderableType
from rich.live import Live

from sweeps.run import lost_trials, stopping
from sweeps.run.start_gate import StartGate
from sweeps.store import os_errors
from sweeps.tracking import runs as tracking_runs
from trainer.api import die_with_parent, main_not_rerun, passive_openmp_waits, platform_start_method, watchdog


@dataclass
class WorkerPlan:
    """What every local worker process is started with."""

    url: str
    sweep: str
    uri: str | None  # None until a launch has resolved it (its workers start earlier)
    workers: int
    kinds: tuple[str, ...]
    deadline: float | None = None
    threads: int | None = None
    storage_cfg: Mapping[str, Any] = field(default_factory=dict)
    output_root: str | None = None  # None: the sweep's checkpoint_dir
    max_restarts: int = 0  # a worker that dies is replaced up to this many times in all
    devices: tuple[str | None, ...] = ()  # the GPU of worker i (sweep.workers_per_device)
    restarts: int = 0  # replacements so far (the live view shows it)
    # a launch's sweep overrides: its workers start before the studies exist, compose the
    # sweep themselves and wait at the start gate (None: the studies exist, claim at once)
    overrides: tuple[str, ...] | None = None
    config_dir: str | None = None  # the user's config dir the workers compose with
    allowed_targets: tuple[str, ...] = ()  # packages the workers may call beyond their config dir's
    # the workers send their MLflow writes to this process (tracking.writer resolved to
    # process): one MLflow for all of them instead of a writer process each
    shared_writer: bool = False

    def options(self, i: int, writer: Any = None) -> Any:
        """Worker i's `WorkerOptions` (imported here: the launch itself never imports the
        worker's module, which imports torch)."""
        from sweeps.run.worker_options import WorkerOptions

        return WorkerOptions(
            self.url, self.sweep, index=i, tracking_uri=self.uri, deadline=self.deadline,
            output_root=self.output_root, quiet=True, storage_cfg=dict(self.storage_cfg),
            kinds=self.kinds, threads=self.threads,
            cuda_device=self.devices[i] if i < len(self.devices) else None,
            config_dir=self.config_dir, overrides=self.overrides,
            allowed_targets=self.allowed_targets, writer=writer)


class LocalWorkers:
    """The worker processes of one launch or confirm: started, replaced, stopped."""

    def __init__(self, plan: WorkerPlan) -> None:
        self.plan = plan
        self.ctx = mp.get_context("spawn")
        self.gate = StartGate.create(self.ctx, plan.workers, check_models=plan.overrides is not None)
        if plan.overrides is None:
            self.gate.release()
        self.procs: list[Any] = []
        self.started: list[Any] = []  # every process ever started, for Ctrl-C clean-up
        self.started_at: datetime.datetime | None = None
        self.writer = _writer_service(self.ctx) if plan.shared_writer else None

    def spawn(self, i: int) -> Any:
        plan = self.plan
        address = self.writer.address if self.writer is not None else None
        proc = self.ctx.Process(target=_worker_main, name=f"sweeps-worker-{i}",
                                args=(plan.options(i, address), self.gate, os.getpid()))
        with main_not_rerun():  # a script calling sweeps.launch() needs no __main__ guard
            proc.start()
        self.started.append(proc)
        return proc

    def start(self) -> LocalWorkers:
        self.started_at = datetime.datetime.now()  # Optuna's clock: local, naive
        self.procs = [self.spawn(i) for i in range(self.plan.workers)]
        return self

    def check_models(self, spec: Any) -> None:
        """The first worker's one-batch check of every model (raises its UserError); made
        here where that worker ended without a word."""
        first = self.procs[0] if self.procs else None
        if first is None or not self.gate.verdict(first.is_alive):
            from sweeps.run.warmup import check_models

            check_models(spec)

    def release(self) -> None:
        """The studies and the parent run exist: the workers may claim."""
        self.gate.release()

    def abort(self) -> None:
        """The launch gave up before any trial: the workers leave, having written nothing."""
        self.gate.abort()
        for proc in self.started:
            if proc.is_alive():
                proc.terminate()
        for proc in self.started:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(1)
        self.close()

    def close(self) -> None:
        """The workers have ended: the writer they shared takes no more connections."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _writer_service(ctx: Any) -> Any:
    """The MLflow writer this launch runs for its workers, or None where its socket cannot
    be made (each worker then starts a writer process of its own)."""
    from sweeps.tracking.writer_service import WriterService

    try:
        return WriterService(ctx)
    except OSError as err:
        import logging

        logging.getLogger("sweeps").debug("no shared MLflow writer (%s)", err)
        return None


@dataclass
class Outcome:
    interrupted: bool
    dead: list[tuple[str, int, int]]  # (name, pid, exit code) of workers that died
    gave_up: bool = False  # a worker died with no restart left: the budget may be unfinished
    stop_code: int = 130  # interrupted: the exit code its signal asks for (SIGTERM 143)


def _worker_main(opts: Any, gate: StartGate, launch_pid: int) -> None:
    """A local worker process: `sweeps.run.worker` (torch, the trainer) is imported here, in
    the child, never in the launch that starts it; the MLflow writer process is started
    first, so that its imports run beside the worker's (docs/explanation/performance.md,
    "Start-up and exit"). Its exit status is the worker's (`run_worker`).

    It leaves when its launch dies, even by SIGKILL: it is sent SIGTERM, the stop a launch
    would send, so its running trial is failed and its run closed, for the next launch to
    retry (never two sets of workers on one budget)."""
    die_with_parent(signal.SIGTERM, launch_pid)
    passive_openmp_waits()  # a launch from a script: before this process imports torch
    platform_start_method()  # its DataLoader workers forked, as under `python -m trainer`
    if opts.writer is not None:  # its writes go to the launch's MLflow (own writer if it fails)
        from sweeps.tracking.writer import Background

        Background.use_launch_writer(opts.writer)
    if opts.overrides is not None:  # a launch's worker: start the writer before importing torch
        from sweeps.run.warmup import start_writer

        start_writer(opts.overrides, opts.tracking_uri, opts.config_dir)
    from sweeps.run.worker import run_worker

    sys.exit(run_worker(opts, gate))


def worker_tags(pids: Sequence[int]) -> set[str]:
    """The ``sweeps.worker`` tags of local worker processes (``host:pid``)."""
    host = socket.gethostname()
    return {f"{host}:{pid}" for pid in pids}


def run(plan: WorkerPlan, studies: Callable[[], Sequence[optuna.Study]],
        render: Callable[[], RenderableType], line: Callable[[], str], console: Console,
        parent_run_id: str | None, workers: LocalWorkers | None = None) -> Outcome:
    """Run `plan.workers` worker processes until they finish; returns how it ended.

    A worker that dies (killed, out of memory) has its running trial failed, and is
    replaced while `plan.max_restarts` allows: the replacement (or any other worker) retries
    that trial from its last checkpoint. `workers`: started already (a launch starts them
    before its studies exist, and releases them before this); else started here.
    """
    workers = workers or LocalWorkers(plan).start()
    try:
        return _follow(plan, studies, render, line, console, parent_run_id, workers)
    finally:
        workers.close()  # every worker has ended (or was stopped)


def _follow(plan: WorkerPlan, studies: Callable[[], Sequence[optuna.Study]],
            render: Callable[[], RenderableType], line: Callable[[], str], console: Console,
            parent_run_id: str | None, workers: LocalWorkers) -> Outcome:
    procs, started, spawn = workers.procs, workers.started, workers.spawn
    dead: list[tuple[str, int, int]] = []
    gave_up = False
    live_ok = console.is_terminal
    last = ""
    try:
        with Live(render(), console=console, refresh_per_second=2, transient=False) if live_ok \
                else contextlib.nullcontext() as live:
            while True:
                watchdog.pet()  # each tick is progress; a tick that never ends is not
                gave_up = _replace_dead(procs, started, spawn, plan, dead, studies(), console) or gave_up
                if not any(proc.is_alive() for proc in procs):
                    if any(proc.exitcode not in (None, 0) for proc in procs):
                        continue  # died between the checks: handle it first
                    break
                if live is not None:
                    live.update(render())
                else:
                    text = line()
                    if text != last:
                        console.print(text, highlight=False)
                        last = text
                _wait_for_an_exit(procs, 1.0)
            if live is not None:
                live.update(render())
            elif (text := line()) != last:  # a log ends on the final counts too
                console.print(text, highlight=False)
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM to this process (run.stopping)
        _interrupted(started, plan, studies(), parent_run_id, console, err, workers.started_at)
        return Outcome(True, dead, gave_up, stopping.exit_code(err))
    except MachineStop as err:  # every worker would fail the same way: stop them all
        _stop([p for p in started if not isinstance(p, _Gone)], signal.SIGTERM)
        with contextlib.suppress(Exception):  # the stores may refuse this too: the next launch
            lost_trials.fail_dead_local_trials(studies(), {p.pid for p in started if p.pid}, str(err))
        console.print(f"[red]{err}[/]; the sweep stopped: fix it and run the same command again "
                      "(it resumes)", highlight=False, soft_wrap=True)
        return Outcome(True, dead, True, 1)
    return Outcome(False, dead, gave_up)


class MachineStop(Exception):
    """A worker exited after the machine refused a write (`os_errors.MACHINE_EXIT`)."""


def _wait_for_an_exit(procs: Sequence[Any], timeout: float) -> None:
    """Up to `timeout`, but no longer than until a worker exits: the last trial's end is
    followed at once, not at the next tick of the live view."""
    from multiprocessing.connection import wait

    sentinels = [p.sentinel for p in procs if not isinstance(p, _Gone) and p.is_alive()]
    if sentinels:
        wait(sentinels, timeout)
    else:
        time.sleep(min(timeout, 0.05))


def _replace_dead(procs: list[Any], started: list[Any], spawn: Callable[[int], Any], plan: WorkerPlan,
                  dead: list[tuple[str, int, int]], studies: Sequence[optuna.Study],
                  console: Console) -> bool:
    """Fail the trials of workers that died, and restart them while restarts are left;
    True if one could not be restarted."""
    gave_up = False
    for i, proc in enumerate(procs):
        if proc.exitcode in (None, 0):
            continue
        if proc.exitcode in (130, -signal.SIGINT):
            # Ctrl-C reached the worker first (this process was inside a call that
            # defers signals): an interrupt, not a death to restart
            raise KeyboardInterrupt
        if proc.exitcode == os_errors.MACHINE_EXIT:  # said in one line by the worker
            raise MachineStop(f"{proc.name} stopped: this machine refused the sweep's writes "
                              "(the line above says where)")
        _fail_dead(proc, dead, studies, console)
        if plan.restarts < plan.max_restarts and proc.exitcode != 2:  # 2: bad input
            plan.restarts += 1
            procs[i] = spawn(i)
            console.print(f"restarted {proc.name} ({plan.restarts} of "
                          f"sweep.max_worker_restarts={plan.max_restarts})", highlight=False)
        else:
            gave_up = True
            procs[i] = _Gone()
            console.print(f"[red]{proc.name} not restarted[/]: "
                          f"sweep.max_worker_restarts={plan.max_restarts} used up")
    return gave_up


def _interrupted(started: Sequence[Any], plan: WorkerPlan, studies: Sequence[optuna.Study],
                 parent_run_id: str | None, console: Console, err: BaseException,
                 since: datetime.datetime | None = None) -> None:
    """Ctrl-C or SIGTERM: stop every worker with the same signal (each marks its running trial
    interrupted and closes its run), then fail what a worker could not mark, close its runs."""
    pids = [pr.pid for pr in started if pr.pid]
    _stop([p for p in started if not isinstance(p, _Gone)], stopping.signum_of(err))
    why = stopping.reason(err)
    lost_trials.fail_dead_local_trials(studies, set(pids), why)
    if parent_run_id and plan.uri is not None:
        tracking_runs.close_orphans(plan.uri, parent_run_id, why, worker_tags(pids))
    n = len(lost_trials.interrupted_by(studies, worker_tags(pids), since))
    console.print(f"[yellow]{why}[/]: {n} running trial(s) marked failed (interrupted); "
                  "run the same command again to resume", highlight=False)


class _Gone:
    """Stands in for a dead worker that was not replaced."""

    exitcode = 0
    pid = None

    def is_alive(self) -> bool:
        return False


def _fail_dead(proc: Any, dead: list[tuple[str, int, int]], studies: Sequence[optuna.Study],
               console: Console) -> None:
    dead.append((proc.name, proc.pid, proc.exitcode))
    failed = lost_trials.fail_dead_local_trials(
        studies, {proc.pid}, f"worker died (exit code {proc.exitcode})")
    console.print(f"[red]worker {proc.name} (pid {proc.pid}) died with exit code "
                  f"{proc.exitcode}[/]; {len(failed)} running trial(s) marked failed", highlight=False)


def _stop(procs: Sequence[Any], signum: int = signal.SIGINT,
          timeout: float = stopping.GRACE_S - 8) -> None:
    """Pass the stop on (workers get Ctrl-C from the terminal too, never a SIGTERM sent to
    this PID alone), wait, then force: within the grace period, with time left to close runs."""
    for proc in procs:
        if proc.is_alive() and proc.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signum)
    end = time.time() + timeout
    for proc in procs:
        proc.join(max(0.0, end - time.time()))
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
            proc.join(5)

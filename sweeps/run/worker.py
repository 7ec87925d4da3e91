"""A worker: pull jobs from the shared storage and train them until none is left.

Two kinds of job: search trials (sampled by the study's sampler, until each study's
budget is spent) and confirm runs (seed re-runs of a trial's config, queued by `sweeps
confirm` in the sweep's confirm study). Local workers started by `sweeps launch` run
search trials, those of `sweeps confirm` confirm runs, and remote ones started by
`sweeps worker` run both, confirm runs first. The loop is here; which job comes next is
`claims`, running one is `trial`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna

from sweeps.run import checkpoints, fail_fast, heartbeat, lost_trials, stopping, warmup
from sweeps.run.claims import CONFIRM, SEARCH, Claims
from sweeps.run.start_gate import StartGate
from sweeps.run.trial import RunSettings, TrialRunner
from sweeps.run.worker_options import WorkerOptions
from sweeps.search import allowed_targets
from sweeps.search import studies as study_mod
from sweeps.search.allowed_targets import AllowedTargets
from sweeps.search.load import load_sweep
from sweeps.search.samplers import build_pruner, build_sampler
from sweeps.search.spec import SweepSpec
from sweeps.search.validate import check_for_processes
from sweeps.store import existing, logs, os_errors, urls
from sweeps.store.storages import open_storage
from sweeps.tracking import clients, outage
from sweeps.tracking.writer import Background
from trainer.api import UserError, watchdog

IDLE_RECHECK_S = 2.0
log = logging.getLogger("sweeps")


class Worker:
    """Runs the jobs of one sweep's studies from one process.

    Built from the objects it works with and doing no I/O itself, so that a test can build
    one over an in-memory storage; `connect` opens them from a storage URL."""

    def __init__(self, storage: Any, spec: SweepSpec, studies: Sequence[optuna.Study],
                 claims: Claims, runner: TrialRunner, *, sweep: str, uri: str,
                 url: str = "", index: int = 0) -> None:
        self.storage, self.spec, self.studies = storage, spec, list(studies)
        self.claims, self.runner = claims, runner
        self.sweep, self.uri, self.url, self.index = sweep, uri, url, index

    @classmethod
    def connect(cls, storage_url: str, sweep: str, **options: Any) -> Worker:
        """The worker of `WorkerOptions(storage_url, sweep, **options)`: the storage opened,
        the studies loaded, the sweep's config checked on this machine (devices, targets)."""
        return cls.from_options(WorkerOptions(storage_url, sweep, **options))

    @classmethod
    def from_options(cls, opts: WorkerOptions) -> Worker:
        storage = open_storage(opts.storage_url, opts.storage_cfg,
                               stale_trial_callback=lost_trials.on_stale_trial)
        found = _sweep_studies(storage, opts.storage_url, opts.sweep, opts.only_study)
        # the latest launch defines the sweep (a later launch may cover fewer optimizers)
        attrs = study_mod.latest_attrs(found)
        sweep = attrs.get("sweep", opts.sweep)
        allowed = allowed_targets.for_this_machine(opts.config_dir, opts.allowed_targets,
                                                   study_mod.recorded_config_dir(found))
        spec = _load_spec(found, attrs, opts.config_dir, allowed)
        warmup.check_devices(spec)  # before a claim: a trial per claim would fail on it
        uri = clients.resolve_uri(opts.tracking_uri or attrs.get("tracking_uri"))
        outage.set_patience(spec.tracking_patience_s)  # this process's tracking writes
        launched = {st.name for st in spec.studies}
        studies = [_load(spec, s.study_name, i, storage, opts.index) for i, s in
                   enumerate(s for s in found if s.study_name in launched)]
        claims = Claims(storage, opts.storage_url, sweep, studies, opts.kinds,
                        deadline=opts.deadline if opts.deadline is not None else attrs.get("deadline"),
                        max_retries=spec.max_retries)
        runner = TrialRunner(RunSettings(
            spec, sweep, uri, _output_root(opts.output_root, attrs.get("checkpoint_dir")),
            int(opts.threads or spec.threads_per_worker), opts.index, opts.quiet, opts.storage_url,
            allowed))
        return cls(storage, spec, studies, claims, runner, sweep=sweep, uri=uri,
                   url=opts.storage_url, index=opts.index)

    def warm_up(self, warmed: bool = False) -> None:
        """Before claiming a job: the data loaded and torch._dynamo imported (`warmup.warm`;
        `warmed`: done already, before the studies existed), Hydra's override parser built
        (`TrialConfigs.prepare`) and the MLflow store open (~1-2
        s; a writer process opens it meanwhile and is waited for), so that a claimed trial's
        time is its training and its run exists at once. A failure here is left to the trial
        (and MLflow's to its patient retries)."""
        in_process = self.spec.tracking_writer == "process" and \
            Background.use_process(self.uri, self.sweep)
        if not warmed:
            warmup.warm(self.spec)
        with contextlib.suppress(Exception):
            self.runner.configs.prepare()
        if not in_process:
            with contextlib.suppress(Exception):
                clients.experiment_id(self.uri, self.sweep)
        else:
            Background.wait_ready(WRITER_READY_S)

    def run(self, start_gate: StartGate | None = None, warmed: bool = False) -> int:
        """Run jobs until the budget, the deadline or the confirm queue is exhausted; returns
        how many ran. `start_gate`: a launch's workers claim together (`start_gate`)."""
        self.warm_up(warmed)
        if start_gate is not None:
            start_gate.wait_for_the_others()
        confirm = self.claims.confirm_study() if CONFIRM in self.claims.kinds else None
        lost_trials.fail_dead_local_trials([*self.studies, *([confirm] if confirm else [])])
        count = 0
        watchdog.disarm()  # a trial may last hours: heartbeats and patience watch it instead
        while True:
            nxt = self.claims.next_job()
            if nxt is None:
                if self.claims.others_may_fail():
                    time.sleep(_recheck_s(heartbeat.interval(self.storage)))
                    continue
                Background.drain()  # every queued MLflow write, before the worker ends
                return count
            study, trial, kind = nxt
            with heartbeat.beating(self.storage, trial):
                if kind == CONFIRM:
                    self.runner.run_confirm(study, trial)
                else:
                    outcome = self.runner.run_trial(study, trial)
                    if fail_fast.SIGNATURE in outcome.attrs:  # failed: the same way as before?
                        record = fail_fast.check(self.studies, self.spec.fail_fast)
                        if record is not None:
                            fail_fast.halt(self.studies, record)
            count += 1


def _load(spec: SweepSpec, name: str, i: int, storage: Any, index: int) -> optuna.Study:
    """A study with this worker's sampler (seeded per study and worker) and pruner."""
    study = spec.study(name)
    seed = spec.seed + 1000 * i + 7919 * index  # distinct per study and worker
    grid = study.space.grid(int(spec.sampler["grid_points"]))
    sampler = build_sampler(spec.sampler, seed, grid)
    pruner = build_pruner(spec.pruner, int(study.base["trainer"]["epochs"]))
    return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)


def _recheck_s(heartbeat_s: int | None) -> float:
    """How long an idle worker waits before looking again at the others' running trials:
    a heartbeat at most (a lost trial is failed no sooner), but no more than
    `IDLE_RECHECK_S`, so a worker leaves within seconds of the sweep's last trial ending,
    not up to a heartbeat later (one small query per look)."""
    return float(min(heartbeat_s or 1, IDLE_RECHECK_S))


def _load_spec(found: Sequence[optuna.Study], attrs: Mapping[str, Any],
               given: str | None, allowed: AllowedTargets) -> SweepSpec:
    """The sweep as launched, checked on this machine before any trial is claimed: a model
    or dataset target that does not import here is one line naming the module. `given`: the
    config dir this worker was started with (else the sweep's, where it exists here)."""
    recorded = study_mod.recorded_config_dir(found)
    chosen = study_mod.config_dir_for(found, given)
    try:
        return load_sweep(attrs.get("sweep_overrides", []), chosen, allowed)
    except UserError as err:
        if recorded and chosen is None:
            raise UserError(f"{err} (the sweep was launched with --config-dir {recorded}, which "
                            "is not on this machine: pass --config-dir with your copy)") from None
        raise


def _sweep_studies(storage: Any, url: str, sweep: str, only_study: str | None) -> list[optuna.Study]:
    studies = study_mod.sweep_studies(storage, sweep)
    if not studies:
        known = ", ".join(study_mod.sweep_names(storage)) or "none"
        raise UserError(f"--study {sweep!r}: no such sweep or study in "
                        f"{urls.redact(url)} (sweeps there: {known})")
    if only_study:
        studies = [s for s in studies if s.study_name == only_study]
    return studies


def _output_root(explicit: str | Path | None, shared: str | None) -> Path:
    """`--output-dir` if given, else the sweep's checkpoint_dir (where a retry on another
    worker finds the checkpoint), else ./outputs when this machine cannot write there."""
    if explicit is not None:
        return Path(explicit)
    if shared:
        try:
            return checkpoints.check_writable(shared)
        except UserError as err:
            log.warning("%s; this worker keeps its checkpoints in ./outputs, so a retry "
                        "elsewhere of a trial it loses starts from scratch", err)
    return Path("outputs")


def join(storage_url: str, study: str, storage_cfg: Mapping[str, Any], *, index: int = 0,
         tracking_uri: str | None = None, output_dir: str | None = None,
         config_dir: str | None = None, allowed_targets: Sequence[str] = ()) -> Worker:
    """The worker `sweeps worker --study STUDY` runs: a sweep's name takes all its studies and
    its confirm runs, a study's name that study alone, ``NAME.confirm`` only the confirm runs."""
    urls.check_reachable(storage_url)
    if not urls.exists(storage_url):
        raise UserError(f"--storage {urls.redact(storage_url)}: no sweeps there yet")
    existing.check(storage_url)  # creates nothing where there is no sweep
    st = open_storage(storage_url)
    sweep_name, only = study, None
    kinds: tuple[str, ...] = (CONFIRM, SEARCH)
    if study not in study_mod.sweep_names(st):
        summaries = {s.study_name: s for s in st.get_all_studies()}
        if study in summaries:
            sweep_name = summaries[study].user_attrs.get("sweep", study)
            if study_mod.is_search(summaries[study]):
                only = study
            else:  # NAME.confirm: only the sweep's queued confirm runs
                kinds = (CONFIRM,)
    worker = Worker.connect(storage_url, sweep_name, only_study=only, index=index,
                            tracking_uri=tracking_uri, output_root=output_dir, quiet=False,
                            storage_cfg=dict(storage_cfg), kinds=kinds, config_dir=config_dir,
                            allowed_targets=tuple(allowed_targets))
    check_for_processes(worker.spec)  # a class of the launching script does not import here
    return worker


WRITER_READY_S = 30.0  # the longest a worker's warm-up waits for its MLflow writer process


def run_worker(opts: WorkerOptions, start_gate: StartGate | None = None) -> int:
    """The body of a local worker process (started by `sweeps launch` and `sweeps confirm`);
    returns the process's exit status: 0, 2 after a one-line error, 130/143 when stopped.
    `opts.overrides`: a launch's worker, started before its studies exist."""
    import signal
    import sys

    from sweeps.search import devices
    from trainer.api import skip_exit_gc

    devices.pin(opts.cuda_device)  # before anything uses CUDA in this process
    skip_exit_gc()

    logs.setup()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Do not leave the worker's own process group: Ctrl-C in the terminal reaches it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stopping.install()  # and the launch passes a SIGTERM on
    try:
        early = start_gate is not None and opts.overrides is not None
        if start_gate is not None and opts.overrides is not None and \
                not warmup.before_the_studies(start_gate, opts.overrides, opts.index, opts.config_dir):
            # the launch gave up before any study existed: its stop may reach this process
            # in its exit clean-up, where there is nothing left to record
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            return 0
        Worker.from_options(opts).run(start_gate, warmed=early)
        return 0
    except KeyboardInterrupt as err:
        return stopping.exit_code(err)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        _stop_helpers()
        return 2
    except Exception as err:
        line = os_errors.describe(err, _store_of(err, opts))
        if line is None:
            raise
        print(f"error: worker {opts.index}: {line}", file=sys.stderr)  # one line, no traceback
        _stop_helpers()
        return os_errors.MACHINE_EXIT


def _store_of(err: BaseException, opts: WorkerOptions) -> str | None:
    """The journal, where a write to it failed (a write to an open file names no file)."""
    import traceback

    frames = traceback.extract_tb(err.__traceback__) if err.__traceback__ else []
    if any("journal" in f.filename for f in frames) and not urls.is_database(opts.storage_url):
        return str(urls.journal_path(opts.storage_url))
    return None


def _stop_helpers() -> None:
    """A worker that fails before its first job ends its MLflow writer process at once:
    nothing of its own is queued there, and a normal exit waits for child processes."""
    import multiprocessing

    for child in multiprocessing.active_children():
        child.terminate()
    for child in multiprocessing.active_children():
        child.join(5)

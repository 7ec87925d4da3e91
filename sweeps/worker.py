"""A worker: pull jobs from the shared storage and train them until none is left.

Two kinds of job: search trials (sampled by the study's sampler, until each study's
budget is spent) and confirm runs (seed re-runs of a trial's config, queued by `sweeps
confirm` in the sweep's confirm study). Local workers started by `sweeps launch` run
search trials, those of `sweeps confirm` confirm runs, and remote ones started by
`sweeps worker` run both, confirm runs first. A job that diverges or raises is recorded
as failed with its reason; the worker goes on. Ctrl-C marks the running job failed
(interrupted) in Optuna and MLflow, and stops the worker.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from sweeps import boundary, checkpoints, tracking, trial_writes
from sweeps import confirm as confirm_mod
from sweeps import storage as storage_mod
from sweeps import study as study_mod
from sweeps.config import SweepSpec, TrialConfigs, load_sweep
from sweeps.engine import build_pruner, build_sampler, quietly
from trainer.callbacks import Callback, RunInfo
from trainer.errors import UserError
from trainer.loop import FitResult, fit, resolve_device

log = logging.getLogger("sweeps")
SEARCH, CONFIRM = study_mod.SEARCH_KIND, study_mod.CONFIRM_KIND


class OptunaReporter(Callback):
    """Reports val/acc each epoch; asks the trainer to stop when the pruner says so."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial
        self.pruned_at: int | None = None
        self.resumed_from = 0

    def on_fit_start(self, run: RunInfo) -> None:
        """Resumed from a checkpoint: report the epochs trained before, without pruning."""
        self.resumed_from = len(run.history)
        for m in run.history:
            if math.isfinite(m.get("val/acc", math.nan)):
                self.trial.report(m["val/acc"], int(m["epoch"]))

    def on_epoch_end(self, run: RunInfo, epoch: int, metrics: Mapping[str, float]) -> None:
        value = metrics["val/acc"]
        if not math.isfinite(value):
            return
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch
            run.request_stop(f"pruned at epoch {epoch}")


def objective_value(result: FitResult, objective: str) -> float:
    if objective == "last":
        return float(result.history[-1]["val/acc"])
    return float(result.final["best/val_acc"])


@dataclass
class Outcome:
    state: str  # complete | pruned | failed | diverged
    value: float | None
    reason: str | None
    tags: Mapping[str, str] = field(default_factory=dict)  # extra MLflow tags for the run
    attrs: dict[str, Any] = field(default_factory=dict)  # what the trial records with its state


CURVE_KEYS = ("train/loss", "train/acc", "val/loss", "val/acc", "gap/acc", "gap/loss", "lr",
              "time/epoch_s")


def _curves(result: FitResult) -> dict[str, list[float | None]]:
    """Per-epoch curves as stored with the trial (JSON: NaN/inf become null)."""
    return {k: [_finite(h.get(k)) for h in result.history] for k in CURVE_KEYS}


def _step_lrs(result: FitResult) -> dict[str, list[float | None]]:
    """The learning rate applied at each logged step (for the report's lr-per-step plot)."""
    rows = [r for r in result.steps if "batch/lr" in r]
    return {"step": [float(r["step"]) for r in rows], "lr": [_finite(r["batch/lr"]) for r in rows]}


def _finite(v: Any) -> float | None:
    return float(v) if v is not None and math.isfinite(float(v)) else None


def result_attrs(result: FitResult) -> dict[str, Any]:
    """What the report, `best` and `reproduce` read later: the Optuna trial is the source of
    truth. Written with the trial's state in one storage write (`Worker._finish`)."""
    return {"final": _jsonable(result.final), "curves": _curves(result),
            "step_lrs": _step_lrs(result), "epochs": len(result.history),
            "device": result.device, "duration_s": result.duration_s}


def _jsonable(d: Mapping[str, float]) -> dict[str, float | None]:
    return {k: (float(v) if math.isfinite(float(v)) else None) for k, v in d.items()}


class Worker:
    """Runs trials of one sweep's studies from one process."""

    def __init__(self, storage_url: str, sweep: str, *, only_study: str | None = None,
                 index: int = 0, tracking_uri: str | None = None, deadline: float | None = None,
                 output_root: str | Path | None = None, quiet: bool = False,
                 storage_cfg: Mapping[str, Any] | None = None,
                 kinds: Sequence[str] = (CONFIRM, SEARCH), threads: int | None = None) -> None:
        self.url = storage_url
        self.storage = storage_mod.open_storage(storage_url, storage_cfg,
                                                stale_trial_callback=study_mod.on_stale_trial)
        studies = study_mod.sweep_studies(self.storage, sweep)
        if not studies:
            known = ", ".join(study_mod.sweep_names(self.storage)) or "none"
            raise UserError(f"--study {sweep!r}: no such sweep or study in "
                            f"{storage_mod.redact(storage_url)} (sweeps there: {known})")
        if only_study:
            studies = [s for s in studies if s.study_name == only_study]
        # the latest launch defines the sweep (a later launch may cover fewer optimizers)
        attrs = max(studies, key=lambda s: s.user_attrs.get("launched_at", 0.0)).user_attrs
        self.sweep = attrs.get("sweep", sweep)
        self.spec: SweepSpec = load_sweep(attrs.get("sweep_overrides", []))
        launched = {st.name for st in self.spec.studies}
        studies = [s for s in studies if s.study_name in launched]
        self.configs = TrialConfigs(self.spec)
        self.kinds = tuple(kinds)
        self.threads = int(threads or self.spec.threads_per_worker)
        self.confirm: optuna.Study | None = None
        self.index = index
        self.uri = tracking.resolve_uri(tracking_uri or attrs.get("tracking_uri"))
        self.deadline = deadline if deadline is not None else attrs.get("deadline")
        self.output_root = self._output_root(output_root, attrs.get("checkpoint_dir"))
        self.max_retries = self.spec.max_retries
        tracking.PATIENCE_S = self.spec.tracking_patience_s
        self.keep_checkpoints = self.spec.keep_checkpoints
        # what a retry needs is last.pt; best.pt too only where the checkpoints are kept
        self.checkpoint_mode = "every_epoch" if self.keep_checkpoints else "last"
        self.quiet = quiet
        self.studies: list[optuna.Study] = []
        for i, s in enumerate(studies):
            spec = self.spec.study(s.study_name)
            seed = self.spec.seed + 1000 * i + 7919 * index  # distinct per study and worker
            grid = spec.space.grid(int(self.spec.sampler["grid_points"]))
            sampler = build_sampler(self.spec.sampler, seed, grid)
            pruner = build_pruner(self.spec.pruner, int(spec.base["trainer"]["epochs"]))
            self.studies.append(optuna.load_study(study_name=s.study_name, storage=self.storage,
                                                  sampler=sampler, pruner=pruner))

    @staticmethod
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

    # ------------------------------------------------------------------ loop
    def _next_job(self) -> tuple[optuna.Study, optuna.Trial, str] | None:
        if self.deadline is not None and time.time() >= self.deadline and SEARCH in self.kinds:
            # the launch's timeout ends the search; queued confirm runs were asked for later
            self.kinds = tuple(k for k in self.kinds if k != SEARCH)
        if CONFIRM in self.kinds:
            job = self._next_confirm()
            if job is not None:
                return job[0], job[1], CONFIRM
        if SEARCH in self.kinds:
            nxt = self._next_trial()
            if nxt is not None:
                return nxt[0], nxt[1], SEARCH
        return None

    def _confirm_study(self) -> optuna.Study | None:
        if self.confirm is None:  # `sweeps confirm` may create it while this worker runs
            self.confirm = confirm_mod.load(self.storage, self.sweep)
        return self.confirm

    def _next_confirm(self) -> tuple[optuna.Study, optuna.Trial] | None:
        study = self._confirm_study()
        if study is None:
            return None
        if self._heartbeat_interval() is not None:
            quietly(optuna.storages.fail_stale_trials, study)
        with storage_mod.budget_lock(self.url, self.sweep):
            # ask() pops a queued (WAITING) run; with none queued it would create a new trial
            if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                return None
            trial = study.ask()
        trial.set_user_attr("worker", study_mod.worker_id())
        return study, trial

    def _next_trial(self) -> tuple[optuna.Study, optuna.Trial] | None:
        if self._heartbeat_interval() is not None:
            for study in self.studies:  # trials of workers that stopped sending heartbeats
                quietly(optuna.storages.fail_stale_trials, study)
        with storage_mod.budget_lock(self.url, self.sweep):
            open_studies = []
            for study in self.studies:
                budget = int(study.user_attrs.get("budget", 0))
                used = study_mod.used_budget(study)
                if used < budget:
                    open_studies.append((used / max(budget, 1), used, study))
            if not open_studies:
                return None
            open_studies.sort(key=lambda x: (x[0], x[1]))
            for _, _, candidate in open_studies:  # retries first: they resume, and never overshoot
                old = study_mod.retry_candidate(candidate, self.max_retries)
                if old is not None:
                    history = [*(old.user_attrs.get("retry_history") or []), old.number]
                    candidate.enqueue_trial(old.params, user_attrs={"retry_of": old.number,
                                                                    "retry_history": history})
                    trial = candidate.ask()
                    trial.set_user_attr("worker", study_mod.worker_id())
                    return candidate, trial
            study = open_studies[0][2]
            trial = study.ask()
            trial.set_user_attr("worker", study_mod.worker_id())
            return study, trial

    def _others_may_fail(self) -> bool:
        """No budget left, but trials of other workers still run (database storages): one of
        them may yet be failed by its missing heartbeat and need a retry, so stay until they
        end (within the sweep's deadline)."""
        if self._heartbeat_interval() is None or SEARCH not in self.kinds:
            return False
        if self.deadline is not None and time.time() >= self.deadline:
            return False
        return any(s.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) for s in self.studies)

    def _heartbeat_interval(self) -> int | None:
        getter = getattr(self.storage, "get_heartbeat_interval", None)
        return getter() if getter is not None else None

    @contextlib.contextmanager
    def _heartbeat(self, trial: optuna.Trial) -> Iterator[None]:
        """Database storages: beat while the trial runs (ask/tell has no thread of its own)."""
        interval = self._heartbeat_interval()
        if interval is None:
            yield
            return
        stop = threading.Event()

        def beat() -> None:
            while not stop.is_set():
                try:
                    self.storage.record_heartbeat(trial._trial_id)  # type: ignore[attr-defined]
                except Exception as err:  # a missed beat is not worth a crash
                    log.warning("heartbeat failed: %s", err)
                stop.wait(interval)

        thread = threading.Thread(target=beat, name="sweeps-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(5)

    def warm_up(self) -> None:
        """Before claiming a trial: load the sweep's data, import what the first optimizer
        step imports (torch._dynamo, ~1.5 s) and open the MLflow store (~1-2 s), so that a
        claimed trial's time is its training, not this process's start-up. A failure here
        is left to the trial (and MLflow's to its patient retries)."""
        import importlib

        from trainer.data import make_splits

        # the writer process opens the store while this one loads the data
        in_process = self.spec.tracking_writer == "process" and \
            tracking.Background.use_process(self.uri, self.sweep)
        with contextlib.suppress(Exception):
            importlib.import_module("torch._dynamo")
            for study in self.studies:
                base = self.spec.study(study.study_name).base
                make_splits(base["dataset"], resolve_device(base["trainer"]["device"]))
        if not in_process:
            with contextlib.suppress(Exception):
                tracking.experiment_id(self.uri, self.sweep)

    def run(self, start_gate: tuple[Any, int] | None = None) -> int:
        """Run jobs until the budget, the deadline or the confirm queue is exhausted.
        `start_gate` (a shared counter, the number of workers): see `_wait_for_the_others`."""
        self.warm_up()
        if start_gate is not None:
            _wait_for_the_others(*start_gate)
        confirm = self._confirm_study() if CONFIRM in self.kinds else None
        study_mod.fail_dead_local_trials([*self.studies, *([confirm] if confirm else [])])
        count = 0
        while True:
            nxt = self._next_job()
            if nxt is None:
                if self._others_may_fail():
                    time.sleep(float(self._heartbeat_interval() or 1))
                    continue
                tracking.Background.drain()  # every queued MLflow write, before the worker ends
                return count
            study, trial, kind = nxt
            with self._heartbeat(trial):
                if kind == CONFIRM:
                    self.run_confirm(study, trial)
                else:
                    self.run_trial(study, trial)
            count += 1

    # ----------------------------------------------------------------- trial
    def run_trial(self, study: optuna.Study, trial: optuna.Trial) -> Outcome:
        spec = self.spec.study(study.study_name)
        ref: tracking.RunRef | None = None
        background = tracking.Background()
        history = list(trial.user_attrs.get("retry_history") or [])
        out = checkpoints.trial_dir(self.output_root, self.sweep, study.study_name,
                                    history[0] if history else trial.number)
        try:
            with trial_writes.batched(trial):  # the sampled params and the config: one write
                params, overrides = spec.space.sample(trial, spec.base, spec.bases)
                overrides = [*spec.base_overrides, *overrides, f"trainer.threads={self.threads}"]
                cfg = self.configs.resolve(spec, overrides)
                optimizer = cfg["optimizer"]["name"]
                trial.set_user_attr("overrides", overrides)
                trial.set_user_attr("config", cfg)
                trial.set_user_attr("optimizer", optimizer)
            device = str(resolve_device(cfg["trainer"]["device"]))
            old_run = self._retried_run(study, trial)
            ref = tracking.start_trial_async(
                self.uri, background, self.sweep, study.user_attrs.get("parent_run_id"),
                study.study_name, trial.number, optimizer, cfg, params, device,
                on_created=_recorder(study, trial),
                extra_tags={"sweeps.retry_of": old_run} if old_run else None)
            retry_of = trial.user_attrs.get("retry_of")
            if retry_of is not None:
                tracking.retire_async(self.uri, background, ref, self.sweep, study.study_name,
                                      int(retry_of), old_run)
            result, reporter = self._fit_resumable(cfg, trial, ref, background, out)
            outcome = self._outcome(result, reporter)
            outcome.attrs = result_attrs(result)
            tags: dict[str, str] = {}
            if reporter.resumed_from:
                outcome.attrs["resumed_from_epoch"] = reporter.resumed_from
                tags["sweeps.resumed_from_epoch"] = str(reporter.resumed_from)
            if outcome.state == "complete":
                found = boundary.hits(params, spec.space.dims, spec.bases.get(optimizer, spec.base),
                                      optimizer)
                if found:
                    tags["sweeps.boundary"] = boundary.tag(found)
            outcome.tags = tags
        except KeyboardInterrupt:
            self._finish(study, trial, ref, Outcome("interrupted", None, "interrupted (Ctrl-C)"),
                         background)
            raise
        except UserError as err:
            outcome = Outcome("failed", None, f"bad config: {err}")
        except Exception as err:  # a crash in one trial must not kill the worker
            log.error("trial %s #%d crashed:\n%s", study.study_name, trial.number,
                      traceback.format_exc())
            outcome = Outcome("failed", None, f"{type(err).__name__}: {err}")
        self._finish(study, trial, ref, outcome, background)
        if not self.keep_checkpoints:  # finished by itself: nothing will resume it
            checkpoints.discard(out)
        return outcome

    def _retried_run(self, study: optuna.Study, trial: optuna.Trial) -> str | None:
        """The MLflow run of the trial this one retries (None for a first attempt)."""
        number = trial.user_attrs.get("retry_of")
        if number is None:
            return None
        old = study.get_trials(deepcopy=False)[int(number)]
        return study_mod.run_id(study, old)

    def _fit_resumable(self, cfg: Mapping[str, Any], trial: optuna.Trial, ref: tracking.RunRef,
                       background: tracking.Background, out: Path) -> tuple[FitResult, OptunaReporter]:
        """Train with a checkpoint every `sweep.checkpoint_every_s`; a retry resumes from the last."""
        retry = trial.user_attrs.get("retry_of") is not None
        last = checkpoints.last_checkpoint(out) if retry else None
        if retry and last is None:
            log.warning("trial #%d: no checkpoint of the lost attempt under %s; retrying from "
                        "scratch (is sweep.checkpoint_dir shared by every worker?)", trial.number, out)
        for resume in ([str(last)] if last else []) + [None]:
            run_cfg = {**cfg, "trainer": {**cfg["trainer"], "checkpoint": self.checkpoint_mode,
                                          "checkpoint_every_s": self.spec.checkpoint_every_s,
                                          "resume": resume}}
            reporter = OptunaReporter(trial)
            logger = tracking.TrialLogger(self.uri, ref, background, wait_at_end=False,
                                          hold_final=True)
            try:
                return fit(run_cfg, [reporter, logger], output_dir=out), reporter
            except UserError as err:
                if resume is None or not str(err).startswith("trainer.resume"):
                    raise
                log.warning("trial #%d: cannot resume (%s); starting from scratch", trial.number, err)
        raise AssertionError("unreachable")  # the last attempt (no resume) returns or raises

    def run_confirm(self, study: optuna.Study, trial: optuna.Trial) -> Outcome:
        """Re-run a trial's config with another seed (a job queued by `sweeps confirm`)."""
        job = confirm_mod.Job.from_attrs(trial.user_attrs)
        label = tracking.run_name(job.optimizer, job.trial, f"seed {job.seed}")
        ref: tracking.RunRef | None = None
        background = tracking.Background()
        try:
            cfg = confirm_mod.job_config(trial.user_attrs["config"], job.seed, self.threads)
            trial.set_user_attr("config", cfg)
            device = str(resolve_device(cfg["trainer"]["device"]))
            ref = tracking.start_trial_async(
                self.uri, background, self.sweep, study.user_attrs.get("parent_run_id"), job.study,
                job.trial, job.optimizer, cfg, trial.user_attrs.get("params", {}), device,
                on_created=_recorder(study, trial), kind=CONFIRM, name=label,
                extra_tags={"sweeps.seed": str(job.seed), "sweeps.confirms": job.run_id})
            logger = tracking.TrialLogger(self.uri, ref, background, wait_at_end=False,
                                          hold_final=True)
            out = self.output_root / self.sweep / "confirm" / f"{job.study}_{job.trial}_seed{job.seed}"
            result = fit(cfg, [logger], output_dir=out)
            outcome = self._outcome(result, None)
            outcome.attrs = result_attrs(result)
        except KeyboardInterrupt:
            self._finish(study, trial, ref, Outcome("interrupted", None, "interrupted (Ctrl-C)"),
                         background, label)
            raise
        except UserError as err:
            outcome = Outcome("failed", None, f"bad config: {err}")
        except Exception as err:  # a crash in one run must not kill the worker
            log.error("confirm run %s crashed:\n%s", label, traceback.format_exc())
            outcome = Outcome("failed", None, f"{type(err).__name__}: {err}")
        self._finish(study, trial, ref, outcome, background, label)
        return outcome

    def _outcome(self, result: FitResult, reporter: OptunaReporter | None) -> Outcome:
        if result.status == "diverged":
            return Outcome("diverged", None, f"diverged: {result.stop_reason}")
        if result.status == "stopped" and reporter is not None and reporter.pruned_at is not None:
            return Outcome("pruned", None, result.stop_reason)
        if not result.history:
            return Outcome("failed", None, "no epoch finished")
        value = objective_value(result, self.spec.objective)
        if not math.isfinite(value):
            return Outcome("diverged", None, "diverged: non-finite validation accuracy")
        return Outcome("complete", value, None)

    def _finish(self, study: optuna.Study, trial: optuna.Trial, ref: tracking.RunRef | None,
                outcome: Outcome, background: tracking.Background | None = None,
                label: str | None = None) -> None:
        if ref is not None:  # the run id goes into the trial before it is told (normally at once)
            ref.wait(5.0 if outcome.state == "interrupted" else tracking.PATIENCE_S)
        try:  # the result and its state in one write, then at once the tell: a worker killed
            # in between leaves a retryable trial
            attrs = {**outcome.attrs, "state": outcome.state}
            if outcome.reason:
                attrs["failure_reason" if outcome.state != "pruned" else "pruned_reason"] = outcome.reason
            trial_writes.set_user_attrs(trial, attrs)
            if outcome.state == "complete":
                study.tell(trial, outcome.value)
            elif outcome.state == "pruned":
                study.tell(trial, state=TrialState.PRUNED)
            else:
                study.tell(trial, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            # another worker failed it for missed heartbeats (this one was stalled): a retry
            # runs it again from its checkpoint, so this result is not the record
            log.warning("trial #%d was failed meanwhile (missed heartbeats); a retry takes over",
                        trial.number)
            outcome = Outcome("failed", None, "failed meanwhile: missed heartbeats")
        if ref is not None and background is not None:
            # closed by the writer after the trial's other writes: an MLflow
            # outage delays this, it does not hold up the next trial
            state = "failed" if outcome.state == "interrupted" else outcome.state
            tracking.end_trial_async(self.uri, background, ref, state, outcome.reason,
                                     outcome.value, outcome.tags)
        if not self.quiet:
            value = "" if outcome.value is None else f" val/acc {outcome.value:.4f}"
            print(f"[worker {self.index}] {label or f'{study.study_name} #{trial.number}'}: "
                  f"{outcome.state}"
                  f"{value}{'' if not outcome.reason else ' (' + outcome.reason + ')'}", flush=True)


def _recorder(study: optuna.Study, trial: optuna.Trial) -> Any:
    """Store the MLflow run id with the trial as soon as the run exists (called in this
    process when the writer has created the run)."""

    def record(run_id: str) -> None:
        try:
            study_mod.record_run_id(study, trial, run_id)
        except Exception as err:  # the Optuna storage is away too: `sweeps sync` finds it by tags
            log.warning("trial #%d: MLflow run %s not recorded: %s", trial.number, run_id, err)

    return record


START_GATE_S = 30.0  # the longest a warmed-up local worker waits for the launch's others


def _wait_for_the_others(ready: Any, workers: int) -> None:
    """A launch's local workers start claiming trials together, once all are warmed up: the
    first one ready would otherwise take every trial of a short sweep while the others
    still load data. A replacement worker (the count is already reached) does not wait, nor
    does any past START_GATE_S (a worker that died while warming up)."""
    with ready.get_lock():
        ready.value += 1
    end = time.monotonic() + START_GATE_S
    while ready.value < workers and time.monotonic() < end:
        time.sleep(0.05)


def run_worker(storage_url: str, sweep: str, index: int = 0, only_study: str | None = None,
               tracking_uri: str | None = None, deadline: float | None = None,
               output_root: str | None = None, quiet: bool = True,
               storage_cfg: Mapping[str, Any] | None = None,
               kinds: Sequence[str] = (CONFIRM, SEARCH), threads: int | None = None,
               cuda_device: str | None = None, start_gate: tuple[Any, int] | None = None) -> int:
    """Entry point of a local worker process (spawned by `sweeps launch`)."""
    import os
    import signal
    import sys

    from sweeps import devices

    devices.pin(cuda_device)  # before anything uses CUDA in this process

    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Do not leave the worker's own process group: Ctrl-C in the terminal reaches it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        worker = Worker(storage_url, sweep, only_study=only_study, index=index,
                        tracking_uri=tracking_uri, deadline=deadline, output_root=output_root,
                        quiet=quiet, storage_cfg=storage_cfg, kinds=kinds, threads=threads)
        return worker.run(start_gate)
    except KeyboardInterrupt:
        sys.exit(130)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        os._exit(2)

"""One job of a worker, start to end: a search trial or a confirm run of a trial's config.

A search trial samples its parameters, resolves its trainer config, opens its MLflow run
(through the writer, so training never waits for it), trains with a checkpoint every
`sweep.checkpoint_every_s`, and records its outcome in Optuna (the source of truth) and
then in MLflow. **A retry resumes here**: a trial whose `retry_of` names a lost trial
starts from that trial's last checkpoint (`TrialRunner._fit_resumable`). A job that
diverges or raises is recorded as failed with its reason; Ctrl-C records it as
interrupted and stops the worker.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from sweeps.run import checkpoints, fail_fast, stopping
from sweeps.run.outcome import OptunaReporter, Outcome, outcome_of, result_attrs
from sweeps.search import boundary, confirm_jobs
from sweeps.search import studies as study_mod
from sweeps.search.allowed_targets import AllowedTargets
from sweeps.search.spec import SweepSpec
from sweeps.search.trial_configs import TrialConfigs
from sweeps.store import os_errors, trial_writes
from sweeps.tracking import outage, run_writes
from sweeps.tracking import params as tracking_params
from sweeps.tracking import runs as tracking_runs
from sweeps.tracking.logger import TrialLogger, size_tags
from sweeps.tracking.writer import Background
from trainer.api import FitResult, UserError, fit, resolve_device

log = logging.getLogger("sweeps")
CONFIRM = study_mod.CONFIRM_KIND
FIRST_RUN_WAIT_S = 10.0  # the longest a worker's first trial waits for its MLflow run to exist


@dataclass
class RunSettings:
    """What every job of one worker runs with."""

    spec: SweepSpec
    sweep: str
    uri: str  # MLflow tracking URI
    output_root: Path  # trial outputs and checkpoints
    threads: int
    index: int = 0  # the worker's, in its output lines
    quiet: bool = False
    storage_url: str | None = None  # named in a trial run's `sweeps reproduce` tag
    allowed: AllowedTargets = field(default_factory=AllowedTargets)  # the targets it may call


class TrialRunner:
    """Runs jobs for one worker (`run_trial`, `run_confirm`) and records how they ended."""

    def __init__(self, settings: RunSettings) -> None:
        self.s = settings
        self.configs = TrialConfigs(settings.spec)
        self.constant = tracking_params.constant_config(settings.spec)  # what the parent run holds
        self._opened_a_run = False
        self.keep_checkpoints = settings.spec.keep_checkpoints
        # what a retry needs is last.pt; best.pt too only where the checkpoints are kept
        self.checkpoint_mode = "every_epoch" if self.keep_checkpoints else "last"

    def run_trial(self, study: optuna.Study, trial: optuna.Trial) -> Outcome:
        spec = self.s.spec.study(study.study_name)
        ref: run_writes.RunRef | None = None
        background = Background()
        history = list(trial.user_attrs.get("retry_history") or [])
        out = checkpoints.trial_dir(self.s.output_root, self.s.sweep, study.study_name,
                                    history[0] if history else trial.number)
        try:
            with trial_writes.batched(trial):  # the sampled params and the config: one write
                params, overrides = spec.space.sample(trial, spec.base, spec.bases)
                overrides = [*spec.base_overrides, *overrides, f"trainer.threads={self.s.threads}"]
                cfg = self.configs.resolve(spec, overrides)
                self.s.allowed.check(cfg)
                optimizer = cfg["optimizer"]["name"]
                trial.set_user_attr("overrides", overrides)
                trial.set_user_attr("config", cfg)
                trial.set_user_attr("optimizer", optimizer)
            ref = self._open_run(study, trial, background, cfg, params)
            self._opened_a_run = self._opened_a_run or _first_run_created(ref)
            result, reporter = self._fit_resumable(cfg, trial, ref, background, out)
            outcome = outcome_of(result, reporter, self.s.spec.objective)
            outcome.attrs = result_attrs(result)
            tags: dict[str, str] = size_tags(result.final)
            if reporter.resumed_from:
                outcome.attrs["resumed_from_epoch"] = reporter.resumed_from
                tags["sweeps.resumed_from_epoch"] = str(reporter.resumed_from)
            if outcome.state == "complete":
                found = boundary.hits(params, spec.space.dims, spec.bases.get(optimizer, spec.base),
                                      optimizer)
                if found:
                    tags["sweeps.boundary"] = boundary.tag(found)
            outcome.tags = tags
        except (KeyboardInterrupt, SystemExit) as err:  # Ctrl-C, SIGTERM, submitit's requeue exit
            self._finish(study, trial, ref, Outcome("interrupted", None, stopping.reason(err)),
                         background)
            raise
        except Exception as err:  # a crash in one trial must not kill the worker
            outcome = _crashed(err, out, study, f"trial {study.study_name} #{trial.number}")
        self._finish(study, trial, ref, outcome, background)
        if outcome.machine:  # the disk is full (...): every trial would fail so
            raise os_errors.MachineError(str(outcome.reason).removeprefix("machine: "))
        if not self.keep_checkpoints:  # finished by itself: nothing will resume it
            checkpoints.discard(out)
        return outcome

    def _open_run(self, study: optuna.Study, trial: optuna.Trial, background: Background,
                  cfg: Mapping[str, Any], params: Mapping[str, Any]) -> run_writes.RunRef:
        """The trial's MLflow run (a retry's points at the lost attempt's, which it retires)."""
        device = str(resolve_device(cfg["trainer"]["device"]))
        old_run = _retried_run(study, trial)
        tags = {"sweeps.reproduce": tracking_runs.reproduce_command(
            self.s.sweep, study.study_name, trial.number, self.s.storage_url)}
        if old_run:
            tags["sweeps.retry_of"] = old_run
        ref = run_writes.start_trial_async(
            self.s.uri, background, self.s.sweep, study.user_attrs.get("parent_run_id"),
            study.study_name, trial.number, cfg["optimizer"]["name"], cfg, params, device,
            on_created=_recorder(study, trial), extra_tags=tags, constant=self.constant)
        retry_of = trial.user_attrs.get("retry_of")
        if retry_of is not None:
            run_writes.retire_async(self.s.uri, background, ref, self.s.sweep, study.study_name,
                                    int(retry_of), old_run)
        return ref

    def _fit_resumable(self, cfg: Mapping[str, Any], trial: optuna.Trial, ref: run_writes.RunRef,
                       background: Background, out: Path) -> tuple[FitResult, OptunaReporter]:
        """Train with a checkpoint every `sweep.checkpoint_every_s`; a retry resumes from the last."""
        retry = trial.user_attrs.get("retry_of") is not None
        last = checkpoints.last_checkpoint(out) if retry else None
        if retry and last is None:
            _say_no_checkpoint(trial, out, self.s.spec.checkpoint_every_s)
        for resume in ([str(last)] if last else []) + [None]:
            run_cfg = {**cfg, "trainer": {**cfg["trainer"], "checkpoint": self.checkpoint_mode,
                                          "checkpoint_every_s": self.s.spec.checkpoint_every_s,
                                          "resume": resume}}
            reporter = OptunaReporter(trial)
            logger = TrialLogger(self.s.uri, ref, background, wait_at_end=False, hold_final=True)
            try:
                return fit(run_cfg, [reporter, logger], output_dir=out), reporter
            except UserError as err:
                if resume is None or not str(err).startswith("trainer.resume"):
                    raise
                log.warning("trial #%d: cannot resume (%s); starting from scratch", trial.number, err)
        raise AssertionError("unreachable")  # the last attempt (no resume) returns or raises

    def run_confirm(self, study: optuna.Study, trial: optuna.Trial) -> Outcome:
        """Re-run a trial's config with another seed (a job queued by `sweeps confirm`)."""
        job = confirm_jobs.Job.from_attrs(trial.user_attrs)
        label = tracking_runs.run_name(job.optimizer, job.trial, f"seed {job.seed}")
        ref: run_writes.RunRef | None = None
        background = Background()
        try:
            self.s.allowed.check(trial.user_attrs["config"])  # read from the storage
            cfg = confirm_jobs.job_config(trial.user_attrs["config"], job.seed, self.s.threads)
            trial.set_user_attr("config", cfg)
            device = str(resolve_device(cfg["trainer"]["device"]))
            ref = run_writes.start_trial_async(
                self.s.uri, background, self.s.sweep, study.user_attrs.get("parent_run_id"), job.study,
                job.trial, job.optimizer, cfg, trial.user_attrs.get("params", {}), device,
                on_created=_recorder(study, trial), kind=CONFIRM, name=label,
                extra_tags={"sweeps.seed": str(job.seed), "sweeps.confirms": job.run_id},
                constant=self.constant)
            logger = TrialLogger(self.s.uri, ref, background, wait_at_end=False, hold_final=True)
            out = self.s.output_root / self.s.sweep / "confirm" / f"{job.study}_{job.trial}_seed{job.seed}"
            result = fit(cfg, [logger], output_dir=out)
            outcome = outcome_of(result, None, self.s.spec.objective)
            outcome.attrs = result_attrs(result)
        except (KeyboardInterrupt, SystemExit) as err:
            self._finish(study, trial, ref, Outcome("interrupted", None, stopping.reason(err)),
                         background, label)
            raise
        except UserError as err:
            outcome = Outcome("failed", None, f"bad config: {err}")
        except Exception as err:  # a crash in one run must not kill the worker
            outcome = _confirm_crashed(err, label)
        self._finish(study, trial, ref, outcome, background, label)
        if outcome.machine:  # every run would fail so: the worker stops
            raise os_errors.MachineError(str(outcome.reason).removeprefix("machine: "))
        return outcome

    def _finish(self, study: optuna.Study, trial: optuna.Trial, ref: run_writes.RunRef | None,
                outcome: Outcome, background: Background | None = None,
                label: str | None = None) -> None:
        """Record the outcome: in Optuna first (the record), then in MLflow, then print it."""
        if ref is not None:  # the run id goes into the trial before it is told (normally at once)
            ref.wait(5.0 if outcome.state == "interrupted" else outage.PATIENCE_S)
        outcome = _tell(study, trial, outcome)
        if ref is not None and background is not None:
            # closed by the writer after the trial's other writes: an MLflow
            # outage delays this, it does not hold up the next trial
            state = "failed" if outcome.state == "interrupted" else outcome.state
            run_writes.end_trial_async(self.s.uri, background, ref, state, outcome.reason,
                                       outcome.value, outcome.tags)
        if not self.s.quiet:
            value = "" if outcome.value is None else f" {self.s.spec.task.val_key} {outcome.value:.4f}"
            print(f"[worker {self.s.index}] {label or f'{study.study_name} #{trial.number}'}: "
                  f"{outcome.state}"
                  f"{value}{'' if not outcome.reason else ' (' + outcome.reason + ')'}", flush=True)


def _confirm_crashed(err: Exception, label: str) -> Outcome:
    machine = os_errors.describe(err)
    if machine is not None:
        log.error("confirm run %s failed: %s", label, machine)
        return Outcome("failed", None, f"machine: {machine}", machine=True)
    log.error("confirm run %s crashed: %s: %s\n%s", label, type(err).__name__,
              (str(err).strip().splitlines() or [""])[0], traceback.format_exc())
    return Outcome("failed", None, f"{type(err).__name__}: {err}")


def _say_no_checkpoint(trial: optuna.Trial, out: Path, every_s: float) -> None:
    """A retry that starts from scratch says why (`checkpoints.why_none`)."""
    retry_of = int(trial.user_attrs["retry_of"])
    study = getattr(trial, "study", None)
    lost = None if study is None else next(
        (t for t in study.get_trials(deepcopy=False) if t.number == retry_of), None)
    log.warning("trial #%d retries #%d from scratch: %s", trial.number, retry_of,
                checkpoints.why_none(lost, out, every_s))


def _crashed(err: Exception, out: Path, study: optuna.Study, label: str) -> Outcome:
    """A trial that raised: failed, with its reason, its failure signature (the trial's own
    folder and study masked: one cause, one signature) and its full error (`fail_fast`)."""
    own = {str(out): "<trial dir>", str(out.resolve()): "<trial dir>", study.study_name: "<study>"}
    if isinstance(err, UserError):
        return Outcome("failed", None, f"bad config: {err}", attrs=fail_fast.failure_attrs(err, own))
    machine = os_errors.describe(err, str(out))
    if machine is not None:  # not the trial's fault: one line, the worker stops, a retry reruns it
        log.error("%s failed: %s", label, machine)
        return Outcome("failed", None, f"machine: {machine}", attrs=fail_fast.failure_attrs(err, own),
                       machine=True)
    log.error("%s crashed: %s: %s\n%s", label, type(err).__name__,
              (str(err).strip().splitlines() or [""])[0], traceback.format_exc())
    return Outcome("failed", None, f"{type(err).__name__}: {err}",
                   attrs=fail_fast.failure_attrs(err, own))


def _first_run_created(ref: run_writes.RunRef) -> bool:
    """A worker's first trial waits for its run: the writer's first run pays MLflow's one-time
    ORM set-up (~1 s), and a worker killed in its first seconds must still leave it."""
    ref.wait(FIRST_RUN_WAIT_S)
    return True


def _retried_run(study: optuna.Study, trial: optuna.Trial) -> str | None:
    """The MLflow run of the trial this one retries (None for a first attempt)."""
    number = trial.user_attrs.get("retry_of")
    if number is None:
        return None
    old = study.get_trials(deepcopy=False)[int(number)]
    return study_mod.run_id(study, old)


def _tell(study: optuna.Study, trial: optuna.Trial, outcome: Outcome) -> Outcome:
    """The result and its state: one transaction on a database; on the journal the result,
    then at once the tell (a worker killed in between leaves a retryable trial). Returns
    the outcome as recorded."""
    try:
        attrs = {**outcome.attrs, "state": outcome.state}
        if outcome.reason:
            attrs["failure_reason" if outcome.state != "pruned" else "pruned_reason"] = outcome.reason
        if outcome.state == "complete":
            trial_writes.tell_with_attrs(study, trial, attrs, outcome.value)
        elif outcome.state == "pruned":
            trial_writes.tell_with_attrs(study, trial, attrs, state=TrialState.PRUNED)
        else:
            trial_writes.tell_with_attrs(study, trial, attrs, state=TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        # another worker failed it for missed heartbeats (this one was stalled): a retry
        # runs it again from its checkpoint, so this result is not the record
        log.warning("trial #%d was failed meanwhile (missed heartbeats); a retry takes over",
                    trial.number)
        return Outcome("failed", None, "failed meanwhile: missed heartbeats")
    return outcome


def _recorder(study: optuna.Study, trial: optuna.Trial) -> Any:
    """Store the MLflow run id with the trial as soon as the run exists (called in this
    process when the writer has created the run)."""

    def record(run_id: str) -> None:
        try:
            study_mod.record_run_id(study, trial, run_id)
        except Exception as err:  # the Optuna storage is away too: `sweeps sync` finds it by tags
            log.warning("trial #%d: MLflow run %s not recorded: %s", trial.number, run_id, err)

    return record

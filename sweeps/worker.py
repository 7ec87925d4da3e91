"""A worker: pull trials from the shared storage and train them until the budget is spent.

Local workers started by `sweeps launch` and remote ones started by `sweeps worker` run
this same loop. A trial that diverges or raises is recorded as failed with its reason;
the worker goes on. Ctrl-C marks the running trial failed (interrupted) in Optuna and
MLflow, and stops the worker.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from sweeps import storage as storage_mod
from sweeps import study as study_mod
from sweeps import tracking
from sweeps.config import SweepSpec, TrialConfigs, load_sweep
from sweeps.engine import build_pruner, build_sampler
from trainer.callbacks import Callback, RunInfo
from trainer.errors import UserError
from trainer.fit import FitResult, fit, resolve_device

log = logging.getLogger("sweeps")


class OptunaReporter(Callback):
    """Reports val/acc each epoch; asks the trainer to stop when the pruner says so."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial
        self.pruned_at: int | None = None

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


def _curves(result: FitResult) -> dict[str, list[float]]:
    keys = ("train/loss", "train/acc", "val/loss", "val/acc", "gap/acc", "lr")
    return {k: [float(h.get(k, math.nan)) for h in result.history] for k in keys}


def _jsonable(d: Mapping[str, float]) -> dict[str, float | None]:
    return {k: (float(v) if math.isfinite(float(v)) else None) for k, v in d.items()}


class Worker:
    """Runs trials of one sweep's studies from one process."""

    def __init__(self, storage_url: str, sweep: str, *, only_study: str | None = None,
                 index: int = 0, tracking_uri: str | None = None, deadline: float | None = None,
                 output_root: str | Path = "outputs", quiet: bool = False,
                 storage_cfg: Mapping[str, Any] | None = None) -> None:
        self.url = storage_url
        self.storage = storage_mod.open_storage(storage_url, storage_cfg,
                                                failed_trial_callback=study_mod.on_stale_trial)
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
        self.index = index
        self.uri = tracking.resolve_uri(tracking_uri or attrs.get("tracking_uri"))
        self.deadline = deadline if deadline is not None else attrs.get("deadline")
        self.output_root = Path(output_root)
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

    # ------------------------------------------------------------------ loop
    def _next_trial(self) -> tuple[optuna.Study, optuna.Trial] | None:
        if self.deadline is not None and time.time() >= self.deadline:
            return None
        if self._heartbeat_interval() is not None:
            for study in self.studies:  # trials of workers that stopped sending heartbeats
                optuna.storages.fail_stale_trials(study)
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
            study = open_studies[0][2]
            trial = study.ask()
            trial.set_user_attr("worker", study_mod.worker_id())
            return study, trial

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

    def run(self) -> int:
        """Run trials until the budget or the deadline is reached; returns trials run."""
        study_mod.fail_dead_local_trials(self.studies)
        count = 0
        while True:
            nxt = self._next_trial()
            if nxt is None:
                return count
            with self._heartbeat(nxt[1]):
                self.run_trial(*nxt)
            count += 1

    # ----------------------------------------------------------------- trial
    def run_trial(self, study: optuna.Study, trial: optuna.Trial) -> Outcome:
        spec = self.spec.study(study.study_name)
        run_id: str | None = None
        background = tracking.Background()
        try:
            params, overrides = spec.space.sample(trial, spec.base, spec.bases)
            overrides = [*spec.base_overrides, *overrides,
                         f"trainer.threads={self.spec.threads_per_worker}"]
            cfg = self.configs.resolve(spec, overrides)
            optimizer = cfg["optimizer"]["name"]
            trial.set_user_attr("overrides", overrides)
            trial.set_user_attr("config", cfg)
            trial.set_user_attr("optimizer", optimizer)
            device = str(resolve_device(cfg["trainer"]["device"]))
            created: list[str] = []

            def record(new_id: str) -> None:
                created.append(new_id)
                trial.set_user_attr("mlflow_run_id", new_id)

            try:
                run_id = tracking.start_trial(self.uri, self.sweep,
                                              study.user_attrs.get("parent_run_id"),
                                              study.study_name, trial.number, optimizer, cfg,
                                              params, device, on_created=record,
                                              background=background)
            finally:
                run_id = created[0] if created else None
            reporter = OptunaReporter(trial)
            logger = tracking.TrialLogger(self.uri, run_id, background)
            out = self.output_root / self.sweep / study.study_name / f"trial_{trial.number}"
            result = fit(cfg, [reporter, logger], output_dir=out)
            outcome = self._outcome(result, reporter)
            trial.set_user_attr("final", _jsonable(result.final))
            trial.set_user_attr("curves", _curves(result))
            trial.set_user_attr("epochs", len(result.history))
            trial.set_user_attr("device", result.device)
        except KeyboardInterrupt:
            self._finish(study, trial, run_id, Outcome("interrupted", None, "interrupted (Ctrl-C)"),
                         background)
            raise
        except UserError as err:
            outcome = Outcome("failed", None, f"bad config: {err}")
        except Exception as err:  # a crash in one trial must not kill the worker
            log.error("trial %s #%d crashed:\n%s", study.study_name, trial.number,
                      traceback.format_exc())
            outcome = Outcome("failed", None, f"{type(err).__name__}: {err}")
        self._finish(study, trial, run_id, outcome, background)
        return outcome

    def _outcome(self, result: FitResult, reporter: OptunaReporter) -> Outcome:
        if result.status == "diverged":
            return Outcome("diverged", None, f"diverged: {result.stop_reason}")
        if result.status == "stopped" and reporter.pruned_at is not None:
            return Outcome("pruned", None, result.stop_reason)
        if not result.history:
            return Outcome("failed", None, "no epoch finished")
        value = objective_value(result, self.spec.objective)
        if not math.isfinite(value):
            return Outcome("diverged", None, "diverged: non-finite validation accuracy")
        return Outcome("complete", value, None)

    def _finish(self, study: optuna.Study, trial: optuna.Trial, run_id: str | None,
                outcome: Outcome, background: tracking.Background | None = None) -> None:
        trial.set_user_attr("state", outcome.state)
        if outcome.reason:
            trial.set_user_attr("failure_reason" if outcome.state not in ("pruned",) else
                                "pruned_reason", outcome.reason)
        if outcome.state == "complete":
            study.tell(trial, outcome.value)
        elif outcome.state == "pruned":
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, state=TrialState.FAIL)
        if background is not None:
            background.wait()
        if run_id is not None:
            try:
                tracking.end_trial(self.uri, run_id,
                                   "failed" if outcome.state == "interrupted" else outcome.state,
                                   outcome.reason, outcome.value)
            except Exception as err:
                log.warning("could not close MLflow run %s: %s", run_id, err)
        if not self.quiet:
            value = "" if outcome.value is None else f" val/acc {outcome.value:.4f}"
            print(f"[worker {self.index}] {study.study_name} #{trial.number}: {outcome.state}"
                  f"{value}{'' if not outcome.reason else ' (' + outcome.reason + ')'}", flush=True)


def run_worker(storage_url: str, sweep: str, index: int = 0, only_study: str | None = None,
               tracking_uri: str | None = None, deadline: float | None = None,
               output_root: str = "outputs", quiet: bool = True,
               storage_cfg: Mapping[str, Any] | None = None) -> int:
    """Entry point of a local worker process (spawned by `sweeps launch`)."""
    import os
    import signal
    import sys

    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Do not leave the worker's own process group: Ctrl-C in the terminal reaches it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        worker = Worker(storage_url, sweep, only_study=only_study, index=index,
                        tracking_uri=tracking_uri, deadline=deadline, output_root=output_root,
                        quiet=quiet, storage_cfg=storage_cfg)
        return worker.run()
    except KeyboardInterrupt:
        sys.exit(130)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        os._exit(2)

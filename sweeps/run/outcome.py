"""How a finished fit becomes a trial's outcome: its state, objective and what it records.

`OptunaReporter` reports each epoch's objective (val/acc, or val/loss for regression) and
asks the trainer to stop when the pruner says so; `outcome_of` turns the fit's result
into complete, pruned, failed or diverged; `result_attrs` is what the trial stores for the
report, `best` and `reproduce`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna

from trainer.api import Callback, FitResult, RunInfo, task_of


class OptunaReporter(Callback):
    """Reports the objective each epoch; asks the trainer to stop when the pruner says so."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial
        self.pruned_at: int | None = None
        self.resumed_from = 0
        self.key = "val/acc"

    def on_fit_start(self, run: RunInfo) -> None:
        """Resumed from a checkpoint: report the epochs trained before, without pruning."""
        self.key = task_of(run.cfg).val_key
        self.resumed_from = len(run.history)
        for m in run.history:
            if math.isfinite(m.get(self.key, math.nan)):
                self.trial.report(m[self.key], int(m["epoch"]))

    def on_epoch_end(self, run: RunInfo, epoch: int, metrics: Mapping[str, float]) -> None:
        value = metrics[self.key]
        if not math.isfinite(value):
            return
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch
            run.request_stop(f"pruned at epoch {epoch}")


def objective_value(result: FitResult, objective: str) -> float:
    task = task_of(result.config)
    if objective == "last":
        return float(result.history[-1][task.val_key])
    return float(result.final[task.best_key])


@dataclass
class Outcome:
    state: str  # complete | pruned | failed | diverged
    value: float | None
    reason: str | None
    tags: Mapping[str, str] = field(default_factory=dict)  # extra MLflow tags for the run
    attrs: dict[str, Any] = field(default_factory=dict)  # what the trial records with its state
    machine: bool = False  # failed for the machine (disk full, ...): the worker stops


CURVE_KEYS = ("train/loss", "train/acc", "val/loss", "val/acc", "gap/acc", "gap/loss", "lr",
              "time/epoch_s")


def _curves(result: FitResult) -> dict[str, list[float | None]]:
    """Per-epoch curves as stored with the trial (JSON: NaN/inf become null)."""
    return {k: [_finite(h.get(k)) for h in result.history] for k in CURVE_KEYS
            if any(k in h for h in result.history)}


def _step_lrs(result: FitResult) -> dict[str, list[float | None]]:
    """The learning rate applied at each logged step (for the report's lr-per-step plot)."""
    rows = [r for r in result.steps if "batch/lr" in r]
    return {"step": [float(r["step"]) for r in rows], "lr": [_finite(r["batch/lr"]) for r in rows]}


def _finite(v: Any) -> float | None:
    return float(v) if v is not None and math.isfinite(float(v)) else None


def result_attrs(result: FitResult) -> dict[str, Any]:
    """What the report, `best` and `reproduce` read later: the Optuna trial is the source of
    truth. Written with the trial's state in one storage write (`TrialRunner._finish`)."""
    return {"final": _jsonable(result.final), "curves": _curves(result),
            "step_lrs": _step_lrs(result), "epochs": len(result.history),
            "device": result.device, "duration_s": result.duration_s}


def _jsonable(d: Mapping[str, float]) -> dict[str, float | None]:
    return {k: (float(v) if math.isfinite(float(v)) else None) for k, v in d.items()}


def outcome_of(result: FitResult, reporter: OptunaReporter | None, objective: str) -> Outcome:
    """complete (with its objective value), pruned, failed or diverged."""
    if result.status == "diverged":
        return Outcome("diverged", None, f"diverged: {result.stop_reason}")
    if result.status == "stopped" and reporter is not None and reporter.pruned_at is not None:
        return Outcome("pruned", None, result.stop_reason)
    if not result.history:
        return Outcome("failed", None, "no epoch finished")
    value = objective_value(result, objective)
    if not math.isfinite(value):
        return Outcome("diverged", None, "diverged: non-finite validation accuracy")
    return Outcome("complete", value, None)

"""`sweeps reproduce`: re-run a trial from its stored resolved config and seed, and compare.

The trial's resolved trainer config (seed, thread count and all) is a user attribute
of the Optuna trial, so the re-run needs nothing but the storage. A pruned trial is
re-run up to the epoch at which it was pruned. The new MLflow run is tagged with the
original run's id.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.table import Table

from sweeps.report import summary
from sweeps.search import studies as study_mod
from sweeps.search.allowed_targets import AllowedTargets
from sweeps.tracking import clients
from sweeps.tracking import runs as tracking_runs
from sweeps.tracking.logger import TrialLogger, size_tags
from trainer.api import Callback, FitResult, RunInfo, UserError, fit, task_of, watchdog

COMPARED = ("best/val_acc", "best/epoch", "test/acc", "test/loss")
CURVES = ("train/loss", "train/acc", "val/loss", "val/acc")


class StopAfter(Callback):
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, run: RunInfo, epoch: int, metrics: Mapping[str, float]) -> None:
        if epoch >= self.epochs:
            run.request_stop(f"stopped at epoch {epoch}, where the original was pruned")


def find_trial(studies: Sequence[optuna.Study], ref: str) -> tuple[optuna.Study, FrozenTrial]:
    """`best`, `N` (single-study sweeps) or `OPTIMIZER:N` / `STUDY:N`."""
    if ref == "best":
        best = summary.overall_best(studies)
        if best is None:
            raise UserError("--trial best: no completed trial yet")
        return best
    part, sep, number = ref.rpartition(":")
    if not number.isdigit():
        raise UserError(f"--trial {ref!r}: use best, N or OPTIMIZER:N (e.g. adam:3)")
    if not sep:
        if len(studies) != 1:
            names = ", ".join(str(s.user_attrs.get("optimizer")) for s in studies)
            raise UserError(f"--trial {ref!r}: this sweep has one study per optimizer; "
                            f"use OPTIMIZER:N with one of {names}")
        candidates = list(studies)
    else:
        candidates = [s for s in studies if part in (s.study_name, s.user_attrs.get("optimizer"))]
        if not candidates:
            raise UserError(f"--trial {ref!r}: no study {part!r} in this sweep")
    study = candidates[0]
    for t in study.get_trials(deepcopy=False):
        if t.number == int(number):
            return study, t
    raise UserError(f"--trial {ref!r}: study {study.study_name} has no trial #{number}")


@dataclass
class Comparison:
    rows: list[tuple[str, float | None, float | None, float]]
    tolerance: float

    @property
    def ok(self) -> bool:
        return all(diff <= self.tolerance for *_, diff in self.rows)


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def _diff(a: float, b: float) -> float:
    if math.isnan(a) and math.isnan(b):
        return 0.0
    if math.isnan(a) or math.isnan(b):
        return math.inf
    return abs(a - b)


def compare(trial: FrozenTrial, result: FitResult, tolerance: float) -> Comparison:
    original = trial.user_attrs.get("final", {})
    rows: list[tuple[str, float | None, float | None, float]] = []
    task = task_of(result.config)
    compared: tuple[str, ...]
    curve_keys: tuple[str, ...]
    if not task.has_accuracy:  # a regression run has losses only
        compared, curve_keys = ("best/val_loss", "best/epoch", "test/loss"), ("train/loss", "val/loss")
    else:
        compared, curve_keys = COMPARED, CURVES
    compared = tuple(k for k in compared if k in original or k in result.final)
    for key in compared:
        a, b = _num(original.get(key)), _num(result.final.get(key))
        rows.append((key, a, b, _diff(a, b)))
    curves = trial.user_attrs.get("curves", {})
    for key in curve_keys:
        old = [_num(v) for v in curves.get(key, [])]
        new = [float(h[key]) for h in result.history]
        if len(old) != len(new):
            rows.append((f"{key} epochs", float(len(old)), float(len(new)), math.inf))
            continue
        worst = max((_diff(a, b) for a, b in zip(old, new, strict=True)), default=0.0)
        rows.append((f"max |Δ {key}| over epochs", None, None, worst))
    return Comparison(rows, tolerance)


def comparison_table(c: Comparison) -> Table:
    table = Table(title=f"original vs reproduced (tolerance {c.tolerance:g})")
    for col in ("metric", "original", "reproduced", "|difference|"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for key, a, b, diff in c.rows:
        style = "green" if diff <= c.tolerance else "red"
        table.add_row(key, summary.fmt(a, 6), summary.fmt(b, 6), f"[{style}]{diff:.3g}[/]")
    return table


def reproduce(studies: Sequence[optuna.Study], ref: str, tolerance: float | None,
              tracking_uri: str | None, output_root: str = "outputs",
              allowed: AllowedTargets | None = None) -> tuple[Comparison, FitResult, str]:
    """Train a stored trial's config again and compare; `allowed`: the targets this machine
    may call (the stored config is data: nothing else of it is imported)."""
    study, trial = find_trial(studies, ref)
    if trial.state == TrialState.RUNNING:
        raise UserError(f"trial {study.study_name} #{trial.number} is still running")
    config = trial.user_attrs.get("config")
    if not isinstance(config, dict):
        raise UserError(f"trial {study.study_name} #{trial.number} has no stored config "
                        "(it failed before training started)")
    (allowed or AllowedTargets()).check(config)
    config = {**config, "trainer": {**config["trainer"], "output_dir": None, "resume": None,
                                    "progress": False}}
    callbacks: list[Callback] = []
    epochs = int(trial.user_attrs.get("epochs", 0) or 0)
    if trial.state == TrialState.PRUNED and epochs:
        callbacks.append(StopAfter(epochs))
    uri = clients.resolve_uri(tracking_uri or study.user_attrs.get("tracking_uri"))
    clients.check_reachable(uri)  # one line now, not retries before a run nobody waits on
    sweep = str(study.user_attrs.get("sweep", study.study_name))
    optimizer = str(config["optimizer"]["name"])
    params = {k: v for k, v in trial.params.items()}
    run_id = tracking_runs.start_trial(
        uri, sweep, None, study.study_name, trial.number, optimizer, config, params,
        str(config["trainer"]["device"]), kind="reproduce",
        name=tracking_runs.run_name(optimizer, trial.number, "reproduce"),
        extra_tags={"sweeps.reproduces": study_mod.run_id(study, trial) or ""})
    callbacks.append(TrialLogger(uri, run_id))
    out = Path(output_root) / sweep / "reproduce" / f"{study.study_name}_{trial.number}_{int(time.time())}"
    watchdog.disarm()  # training: as long as the trial took
    result = fit(config, callbacks, output_dir=out)
    tol = tolerance if tolerance is not None else (0.0 if result.device == "cpu" else 1e-3)
    comparison = compare(trial, result, tol)
    state = "complete" if comparison.ok else "failed"
    tracking_runs.end_trial(uri, run_id, state, None if comparison.ok else "differs from the original",
                            extra_tags=size_tags(result.final))
    return comparison, result, run_id


"""Hooks through which a caller (e.g. the sweep layer) observes a run and stops it.

The trainer imports neither Optuna nor MLflow: a pruner or a tracker is just a
`Callback`. Any hook may call ``run.request_stop(reason)``; the trainer stops
after the current step/epoch with status ``stopped`` and that reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: observers (the sweep layer) need not import torch
    import torch
    from torch import nn
    from torch.optim import Optimizer

    from trainer.result import FitResult


@dataclass
class RunInfo:
    """What callbacks may read about the run in progress."""

    cfg: Mapping[str, Any]
    output_dir: Path
    device: torch.device
    model: nn.Module
    optimizer: Optimizer
    steps_per_epoch: int
    epoch: int = 0
    global_step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    stop_reason: str | None = None

    def request_stop(self, reason: str) -> None:
        """Ask the trainer to stop after the current step or epoch."""
        if self.stop_reason is None:
            self.stop_reason = reason

    @property
    def stop_requested(self) -> bool:
        return self.stop_reason is not None


AUTO_POINTS_PER_EPOCH = 10  # trainer.log_every=auto: at most about this many batch/* points per epoch
AUTO_MIN_EVERY = 10  # ... and never more often than every this many steps (a point is two rows)


def batch_log_every(setting: int | str, steps_per_epoch: int) -> int:
    """Steps between two ``batch/*`` points: the setting, or for ``auto`` about
    AUTO_POINTS_PER_EPOCH per epoch on long epochs, every AUTO_MIN_EVERY steps on shorter
    ones, and at least one per epoch."""
    if setting != "auto":
        return int(setting)
    every = max(AUTO_MIN_EVERY, -(-steps_per_epoch // AUTO_POINTS_PER_EPOCH))
    return max(1, min(every, steps_per_epoch))


class Callback:
    """Base class: override the hooks you need."""

    def on_fit_start(self, run: RunInfo) -> None: ...

    def on_epoch_start(self, run: RunInfo, epoch: int) -> None: ...

    def on_step(self, run: RunInfo, step: int, metrics: Mapping[str, float]) -> None:
        """Every `trainer.log_every` optimizer steps, with ``batch/loss``."""

    def on_epoch_end(self, run: RunInfo, epoch: int, metrics: Mapping[str, float]) -> None: ...

    def on_fit_end(self, run: RunInfo, result: FitResult) -> None: ...


class CallbackList(Callback):
    """Fans each hook out to several callbacks, in order."""

    def __init__(self, callbacks: Sequence[Callback] = ()) -> None:
        self.callbacks = list(callbacks)

    def on_fit_start(self, run: RunInfo) -> None:
        for cb in self.callbacks:
            cb.on_fit_start(run)

    def on_epoch_start(self, run: RunInfo, epoch: int) -> None:
        for cb in self.callbacks:
            cb.on_epoch_start(run, epoch)

    def on_step(self, run: RunInfo, step: int, metrics: Mapping[str, float]) -> None:
        for cb in self.callbacks:
            cb.on_step(run, step, metrics)

    def on_epoch_end(self, run: RunInfo, epoch: int, metrics: Mapping[str, float]) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(run, epoch, metrics)

    def on_fit_end(self, run: RunInfo, result: FitResult) -> None:
        for cb in self.callbacks:
            cb.on_fit_end(run, result)

"""What a run predicts (`dataset.task`), which decides its loss, metrics and objective.

- ``classification``: cross-entropy on class logits; per epoch ``*/loss`` and ``*/acc``;
  the best epoch and a sweep's objective are by ``val/acc``, maximised.
- ``regression``: mean squared error; ``*/loss`` only (no accuracy anywhere); the best epoch
  and the objective are by ``val/loss``, minimised.

`trainer.loss` may name another loss by `_target_` (e.g. ``torch.nn.HuberLoss``): it is
called as ``loss(outputs, targets)`` and returns the batch mean. Training and evaluation reduce
it the same way: evaluation weights each batch's mean by its size, so a loss with k targets per
example is the mean over every value in both (not k times larger in evaluation). No torch at import: the
sweep layer reads these records in commands that never train.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Task:
    name: str
    metric: str  # what ranks epochs and trials: "acc" or "loss"
    maximize: bool

    @property
    def val_key(self) -> str:
        """The per-epoch objective metric, e.g. ``val/acc``."""
        return f"val/{self.metric}"

    @property
    def best_key(self) -> str:
        """The final metric at the best epoch, e.g. ``best/val_acc``."""
        return f"best/val_{self.metric}"

    @property
    def test_key(self) -> str:
        return f"test/{self.metric}"

    @property
    def gap_key(self) -> str:
        return f"gap/{self.metric}"

    @property
    def direction(self) -> Literal["minimize", "maximize"]:
        """The Optuna study direction."""
        return "maximize" if self.maximize else "minimize"

    @property
    def has_accuracy(self) -> bool:
        return self.name == "classification"

    def better(self, a: float, b: float) -> bool:
        """`a` is better than `b`."""
        return a > b if self.maximize else a < b


CLASSIFICATION = Task("classification", "acc", True)
REGRESSION = Task("regression", "loss", False)
TASKS = {t.name: t for t in (CLASSIFICATION, REGRESSION)}


def task_of(cfg: Mapping[str, Any]) -> Task:
    """The task of a trainer config (configs written before tasks existed: classification)."""
    dataset = cfg.get("dataset") or {}
    return TASKS[str(dataset.get("task") or "classification")]


class Loss:
    """The run's loss: the task's default, or the `_target_` of `trainer.loss`."""

    def __init__(self, task: Task, spec: Mapping[str, Any] | None) -> None:
        import torch.nn.functional as F

        self.custom = None
        if spec is not None:
            from trainer.config.targets import build

            self.custom = build("trainer.loss", spec)
            if not callable(self.custom):
                from trainer.errors import ConfigError

                raise ConfigError("trainer.loss._target_", spec.get("_target_"),
                                  f"returned a {type(self.custom).__name__}; expected a callable loss")
        self._builtin = F.cross_entropy if task.name == "classification" else F.mse_loss

    def mean(self, outputs: Any, targets: Any) -> Any:
        if self.custom is not None:
            return self.custom(outputs, targets)
        return self._builtin(outputs, targets)

    def total(self, outputs: Any, targets: Any) -> Any:
        """The batch's loss as training reduces it, times the batch size, in float64: summed
        over batches and divided by the examples, it is the mean that training reports,
        whatever the number of targets per example. A user's loss: its own mean times the
        batch size. A built-in one: the exact sum over every value, divided by the values per
        example (k targets: k), which is that mean without its rounding."""
        if self.custom is not None:
            return self.custom(outputs.float(), targets).double() * len(targets)
        per_example = max(targets.numel() // max(len(targets), 1), 1)
        return self._builtin(outputs.float(), targets, reduction="sum").double() / per_example

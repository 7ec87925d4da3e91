"""Optimizers and schedules. Internal to the trainer (other packages use `trainer.api`).

- `factory`: the registry of torch.optim variants, validation; imports no torch;
- `adam_to_sgd`: the Adam-to-SGD switcher (`AdamToSGD`, loaded on first use);
- `schedules`: the learning-rate schedules' registry and builders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trainer.optim.factory import (
    OPTIMIZERS,
    OptimInfo,
    build_optimizer,
    effective_lr,
    list_optimizers,
)

if TYPE_CHECKING:
    from trainer.optim.adam_to_sgd import AdamToSGD

__all__ = [
    "OPTIMIZERS",
    "AdamToSGD",
    "OptimInfo",
    "build_optimizer",
    "effective_lr",
    "list_optimizers",
]


def __getattr__(name: str) -> Any:
    if name == "AdamToSGD":
        from trainer.optim.adam_to_sgd import AdamToSGD

        return AdamToSGD
    raise AttributeError(f"module 'trainer.optim' has no attribute {name!r}")

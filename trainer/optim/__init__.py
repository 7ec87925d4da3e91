"""Optimizers: the registry of torch.optim variants plus the Adam-to-SGD switcher.

`factory` (the registry, validation) imports no torch; `AdamToSGD` is loaded on first use.
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

"""Optimizers: the registry of torch.optim variants plus the Adam-to-SGD switcher."""

from trainer.optim.adam_to_sgd import AdamToSGD
from trainer.optim.factory import (
    OPTIMIZERS,
    OptimInfo,
    build_optimizer,
    effective_lr,
    list_optimizers,
)

__all__ = [
    "OPTIMIZERS",
    "AdamToSGD",
    "OptimInfo",
    "build_optimizer",
    "effective_lr",
    "list_optimizers",
]

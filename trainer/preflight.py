"""One batch through the model before any training: shapes, dtypes, labels, task vs outputs.

A user's model and data meet here first. What would otherwise fail deep inside the first
step (a shape mismatch in a Linear layer, logits of the wrong width, a loss that does not
take the targets) comes back as one `ConfigError` line naming the key to fix. Run by the
trainer before its first epoch and by `sweeps launch` (on CPU) before it writes anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.data import default_collate

from trainer.data.prepare import Splits
from trainer.data.splits import numeric, rng_untouched, targets
from trainer.errors import ConfigError
from trainer.tasks import Loss, Task

BATCH = 4


def first_batch(data: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A few training examples, read without touching the run's random state."""
    if isinstance(data, Splits):
        return data.train_x[:BATCH], data.train_y[:BATCH]
    n = min(BATCH, data.sizes()[0])
    with rng_untouched():
        x, y = default_collate([data.train[i] for i in range(n)])
    x = x.float() if x.dtype == torch.float64 else x  # as the loader path feeds it
    return x.to(device), targets(numeric(y, data.task, "train"), data.task, "train").to(device)


@torch.no_grad()
def check_first_batch(model: nn.Module, data: Any, task: Task, loss: Loss,
                      device: torch.device) -> None:
    x, y = first_batch(data, device)
    if not bool(torch.isfinite(x).all()):
        raise ConfigError("dataset._target_", "-", "its first training inputs hold NaN or "
                          "infinite values")
    if task.has_accuracy and len(y) and (int(y.min()) < 0 or int(y.max()) >= data.num_outputs):
        raise ConfigError("dataset.num_outputs", data.num_outputs,
                          f"labels must lie in [0, {data.num_outputs}); a batch has labels from "
                          f"{int(y.min())} to {int(y.max())}")
    was_training = model.training
    model.eval()  # no batch-norm statistics or dropout draws: the run's state is untouched
    try:
        out = model(x)
    except Exception as err:
        raise ConfigError("model._target_", _target(model),
                          f"forward on a batch of shape {tuple(x.shape)} ({x.dtype}) raised "
                          f"{type(err).__name__}: {_first_line(err)}") from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise ConfigError("model._target_", _target(model),
                          f"forward returned a {type(out).__name__}; expected a tensor of outputs")
    expected = (len(x), data.num_outputs)
    if tuple(out.shape) != expected:
        what = "class logits" if task.has_accuracy else "regression outputs"
        raise ConfigError("model._target_", _target(model),
                          f"returns outputs of shape {tuple(out.shape)} for a batch of {len(x)}; "
                          f"{task.name} needs {what} of shape {expected} (num_outputs="
                          f"{data.num_outputs}: take it as a constructor argument)")
    try:
        value = float(loss.mean(out.float(), y))
    except Exception as err:
        raise ConfigError("trainer.loss", "default" if loss.custom is None else type(loss.custom).__name__,
                          f"on outputs {tuple(out.shape)} and targets {tuple(y.shape)} ({y.dtype}) "
                          f"raised {type(err).__name__}: {_first_line(err)}") from None
    if math.isnan(value):
        raise ConfigError("trainer.loss", "-", "is NaN on the first batch before any training")


def _target(model: nn.Module) -> str:
    return f"{type(model).__module__}.{type(model).__qualname__}"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else "")[:300]


def check_config(cfg: Mapping[str, Any]) -> None:
    """Load the data, build the model and put one batch through it on CPU (`sweeps launch`)."""
    from trainer.data.prepare import make_splits
    from trainer.models import build_model
    from trainer.tasks import task_of

    cpu = torch.device("cpu")
    data = make_splits(cfg["dataset"], cpu)
    task = task_of(cfg)
    model = build_model(cfg["model"], data.input_shape, data.num_outputs)
    check_first_batch(model, data, task, Loss(task, cfg["trainer"]["loss"]), cpu)

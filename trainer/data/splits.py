"""What both data paths share: fixed-seed held-out splits, the targets' form per task, and
reading a sample without moving the run's random state."""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Iterator

import numpy as np
import torch

from trainer.errors import ConfigError


def split_indices(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed-seed random split of range(n) into `size` held-out indices and the rest."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[:size], perm[size:]


def held_out(size: int | float, n: int, key: str) -> int:
    """`size` examples (a count, or a fraction of `n`) to hold out of `n`."""
    k = round(size * n) if isinstance(size, float) and size < 1 else int(size)
    if not 1 <= k < n:
        raise ConfigError(key, size, f"must leave at least one of the {n} training examples "
                          "(a count >= 1, or a fraction in (0, 1))")
    return k


def numeric(value: object, task: str, split: str, role: str = "targets") -> torch.Tensor:
    """`value` (a tensor, an array, a list; a batch of labels a DataLoader collated) as a
    tensor, or one line saying why it cannot be one: string class labels are the common case,
    and torch's own error for them names neither the split nor the fix."""
    if isinstance(value, torch.Tensor):
        return value
    array = np.asarray(value)
    if array.dtype.kind in "USO":  # strings, bytes or Python objects
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError):
            first = next(iter(array.flat), None)
            example = str(first) if isinstance(first, str | bytes) else first
            what = "strings" if isinstance(first, str | bytes) else f"{type(first).__name__} objects"
            if role == "targets" and task != "regression":
                raise ConfigError("dataset.task", task, f"the {split!r} labels are "
                                  f"{what} (e.g. {example!r}); classification "
                                  "needs integer labels 0..C-1: encode them in your dataset callable "
                                  "(e.g. sklearn.preprocessing.LabelEncoder().fit_transform(y))") from None
            raise ConfigError("dataset._target_", "-", f"the {split!r} {role} are not numbers "
                              f"(e.g. {example!r}); return numeric arrays or tensors") from None
    return torch.as_tensor(array)


def targets(y: torch.Tensor, task: str, split: str) -> torch.Tensor:
    """Class indices (int64) for classification, float32 columns (N, k) for regression."""
    if task == "regression":
        y = y.to(torch.float32)
        return y.unsqueeze(1) if y.ndim == 1 else y
    if y.is_floating_point() and not bool((y == y.round()).all()):
        example = next((float(v) for v in y.flatten() if float(v) != round(float(v))), math.nan)
        raise ConfigError("dataset.task", task, f"the {split!r} targets are not class indices "
                          f"(e.g. {example:g}); a real-valued target needs task: regression")
    if y.ndim != 1:
        raise ConfigError("dataset.task", task, f"the {split!r} targets have shape "
                          f"{tuple(y.shape)}; classification needs one class index per example")
    return y.to(torch.int64)


@contextlib.contextmanager
def rng_untouched() -> Iterator[None]:
    """Python's, NumPy's and torch's CPU random state as they were: a sample read to learn a
    shape or to check a batch runs the dataset's random transforms, which must not change
    what the run draws afterwards (a run would then depend on whether its data was cached)."""
    py, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        yield
    random.setstate(py)
    np.random.set_state(np_state)

"""A dataset config's `_target_` called once per process, split, and put on one of two paths.

The callable returns ``{"train": ..., "val": ..., "test": ...}`` (or a tuple in that order;
`val` and `test` may be left out or None), each split either

- arrays or tensors ``(x, y)``, inputs of any shape: the in-memory path (`Splits`). Loaded,
  split and normalised once, moved to the training device; the loop only slices tensors
  (no per-sample work, no DataLoader workers) and augments whole image batches there;
- a map-style `torch.utils.data.Dataset`: the DataLoader path (`trainer.data.loader`), for data
  that does not fit in memory or needs per-sample transforms.

A missing validation split is carved from train with a fixed seed (`val_size`, a count or a
fraction); a missing test split is carved only where `test_size` is set, else the run has
none. The trainer's keys of the section are `trainer.config.dataset_keys`; every other key is a
keyword argument of the callable.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainer.config.dataset_keys import RESERVED
from trainer.data.splits import held_out, numeric, split_indices, targets
from trainer.errors import ConfigError


@dataclass
class Splits:
    """The in-memory path: float inputs and targets on the training device."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor | None
    test_y: torch.Tensor | None
    num_outputs: int
    task: str = "classification"

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    @property
    def num_classes(self) -> int:  # the name before regression existed
        return self.num_outputs

    def sizes(self) -> tuple[int, int, int]:
        return len(self.train_x), len(self.val_x), 0 if self.test_x is None else len(self.test_x)

    def train_batches(self, batch_size: int, generator: torch.Generator,
                      drop_last: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return iterate_batches(self.train_x, self.train_y, batch_size, generator=generator,
                               drop_last=drop_last)

    def eval_batches(self, split: str, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        x, y = (self.val_x, self.val_y) if split == "val" else (self.test_x, self.test_y)
        assert x is not None and y is not None
        return iterate_batches(x, y, batch_size)


def load_output(section: Mapping[str, Any]) -> dict[str, Any]:
    """The callable's splits as a dict, cached per process (a worker trains many trials)."""
    from trainer.config.targets import TARGET, call_kwargs

    key = json.dumps({TARGET: section[TARGET], **call_kwargs(section, RESERVED)},
                     sort_keys=True, default=str)
    return _load_cached(key)


@functools.lru_cache(maxsize=4)
def _load_cached(key: str) -> dict[str, Any]:
    from trainer.config.targets import TARGET, build

    cfg = json.loads(key)
    out = build("dataset", cfg)
    if isinstance(out, Mapping) and "train" in out and set(out) <= {"train", "val", "test"}:
        splits = {k: out.get(k) for k in ("train", "val", "test")}
    elif isinstance(out, tuple | list) and 1 <= len(out) <= 3 and not _is_pair(out):
        splits = dict(zip(("train", "val", "test"), [*out, None, None], strict=False))
    else:
        raise ConfigError(f"dataset.{TARGET}", cfg[TARGET],
                          f"returned {_kind(out)}; expected {{'train': (x, y) or a Dataset, "
                          "'val': ... (optional), 'test': ... (optional)}")
    for name, split in splits.items():
        if split is not None and not (_is_pair(split) or _is_dataset(split)):
            raise ConfigError(f"dataset.{TARGET}", cfg[TARGET],
                              f"its {name!r} split is {_kind(split)}; expected (inputs, targets) "
                              "arrays or a torch.utils.data.Dataset")
    forms = {_is_dataset(s) for s in splits.values() if s is not None}
    if len(forms) > 1:
        raise ConfigError(f"dataset.{TARGET}", cfg[TARGET], "mixes (x, y) arrays and Datasets "
                          "between splits; return one form for all of them")
    return splits


def uses_loader(section: Mapping[str, Any]) -> bool:
    return _is_dataset(load_output(section)["train"])


def _is_pair(value: Any) -> bool:
    return isinstance(value, tuple | list) and len(value) == 2 and all(
        isinstance(v, torch.Tensor | np.ndarray) or type(v).__module__.startswith("pandas")
        for v in value)


def _is_dataset(value: Any) -> bool:
    return isinstance(value, torch.utils.data.Dataset)


def _kind(value: Any) -> str:
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of {len(value)} ({', '.join(type(v).__name__ for v in value)})"
    return f"a {type(value).__name__}"


def make_splits(section: Mapping[str, Any], device: torch.device | str = "cpu") -> Any:
    """The dataset on its path: `Splits` (in memory, on `device`) or `trainer.data.loader.Loaders`.

    Cached per process (the last two): a sweep worker's trials share one copy instead of
    re-splitting and re-normalising for each trial. Nothing writes into these tensors.
    """
    key = json.dumps(dict(section), sort_keys=True, default=str)
    return _splits_cached(key, str(torch.device(device)))


@functools.lru_cache(maxsize=2)
def _splits_cached(key: str, device: str) -> Any:
    section = json.loads(key)
    raw = load_output(section)
    if _is_dataset(raw["train"]):
        from trainer.data.loader import make_loaders

        return make_loaders(section, raw, torch.device(device))
    return _in_memory(section, raw, torch.device(device))


def _in_memory(section: Mapping[str, Any], raw: Mapping[str, Any], device: torch.device) -> Splits:
    task = section["task"]
    x, y = _pair(raw["train"], task, "train")
    seed = int(section["split_seed"])
    if raw["test"] is not None:
        test: tuple[torch.Tensor, torch.Tensor] | None = _pair(raw["test"], task, "test")
    elif section["test_size"] is not None:
        idx, rest = split_indices(len(x), held_out(section["test_size"], len(x), "dataset.test_size"), seed)
        test, x, y = (x[idx], y[idx]), x[rest], y[rest]
    else:
        test = None
    if raw["val"] is not None:
        val = _pair(raw["val"], task, "val")
    else:
        idx, rest = split_indices(len(x), held_out(section["val_size"], len(x), "dataset.val_size"),
                                  seed + 1)
        val, x, y = (x[idx], y[idx]), x[rest], y[rest]
    parts = {"train": (x, y), "val": val, **({"test": test} if test is not None else {})}
    for name, (px, py) in parts.items():
        if len(px) != len(py):
            raise ConfigError("dataset._target_", section["_target_"],
                              f"its {name!r} split has {len(px)} inputs but {len(py)} targets")
    ys = {name: targets(py, task, name) for name, (_, py) in parts.items()}
    num_outputs = outputs_of(section, [ys[k] for k in ys], task)
    norm = _normalizer(section, x)
    out = {name: (norm(px).to(device), ys[name].to(device)) for name, (px, _) in parts.items()}
    for name, (px, _) in out.items():
        if not bool(torch.isfinite(px).all()):
            raise ConfigError("dataset._target_", section["_target_"],
                              f"its {name!r} inputs hold NaN or infinite values")
    test_x, test_y = out.get("test", (None, None))
    return Splits(*out["train"], *out["val"], test_x, test_y, num_outputs, task)


def _pair(split: Any, task: str, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A split's (inputs, targets) as tensors; strings among them are one line, not torch's."""
    inputs, labels = split
    return numeric(inputs, task, name, "inputs"), numeric(labels, task, name)


def outputs_of(section: Mapping[str, Any], ys: list[torch.Tensor], task: str) -> int:
    """`num_outputs` from the config, else the classes seen (max label + 1) or target columns."""
    if task == "regression":
        return int(ys[0].shape[1])
    low = min(int(y.min()) for y in ys if len(y))
    high = max(int(y.max()) for y in ys if len(y))
    given = section["num_outputs"]
    n = int(given) if given is not None else high + 1
    if low < 0 or high >= n:
        raise ConfigError("dataset.num_outputs", given,
                          f"labels must lie in [0, {n}); the data has labels from {low} to {high}")
    return n


def _normalizer(section: Mapping[str, Any], train_x: torch.Tensor) -> Any:
    """uint8 inputs scaled to [0, 1]; then `mean`/`std` per channel (dim 1) if given, or with
    `standardize` each feature's train mean and std."""
    mean, std = section["mean"], section["std"]
    scale = train_x.dtype == torch.uint8
    if mean is not None or std is not None:
        if mean is None or std is None or len(mean) != len(std):
            raise ConfigError("dataset.std", std, "needs as many values as dataset.mean")
        channels = train_x.shape[1] if train_x.ndim > 1 else 1
        if len(mean) != channels:
            raise ConfigError("dataset.mean", list(mean), f"needs {channels} value(s), one per channel")
        return functools.partial(_normalize, mean=list(mean), std=list(std), scale=scale)
    if section["standardize"]:
        base = train_x.to(torch.float32) / (255.0 if scale else 1.0)
        m, s = base.mean(0, keepdim=True), base.std(0, keepdim=True).clamp_min(1e-8)
        return lambda x: (x.to(torch.float32) / (255.0 if scale else 1.0) - m) / s
    return lambda x: x.to(torch.float32).div_(255.0) if scale else x.to(torch.float32)


def _normalize(x: torch.Tensor, *, mean: list[float], std: list[float], scale: bool) -> torch.Tensor:
    x = x.to(dtype=torch.float32)
    if scale:
        x = x.div_(255.0)
    shape = (1, -1, *([1] * (x.ndim - 2)))
    m = torch.tensor(mean).view(shape)
    s = torch.tensor(std).view(shape)
    return x.sub_(m).div_(s).contiguous()


def iterate_batches(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (x, y) minibatches; shuffled by `generator` (a CPU generator) if given."""
    n = len(x)
    if generator is not None:
        order = torch.randperm(n, generator=generator).to(x.device, non_blocking=True)
    else:
        order = None
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        if order is None:
            yield x[start:start + batch_size], y[start:start + batch_size]
        else:
            idx = order[start:start + batch_size]
            yield x.index_select(0, idx), y.index_select(0, idx)


def num_batches(n: int, batch_size: int, drop_last: bool) -> int:
    return n // batch_size if drop_last else -(-n // batch_size)


def augment_batch(x: torch.Tensor, *, padding: int, hflip: bool,
                  generator: torch.Generator) -> torch.Tensor:
    """Random crop (reflect padding) and horizontal flip of a whole batch at once."""
    b, c, h, w = x.shape
    if padding > 0:
        padded = F.pad(x, (padding,) * 4, mode="reflect")
        span = 2 * padding + 1
        dy = torch.randint(0, span, (b,), generator=generator).to(x.device)
        dx = torch.randint(0, span, (b,), generator=generator).to(x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        x = padded[torch.arange(b, device=x.device)[:, None, None, None],
                   torch.arange(c, device=x.device)[None, :, None, None], rows, cols]
    if hflip:
        flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    return x


def list_datasets() -> list[str]:
    """The bundled dataset options (conf/dataset/)."""
    from trainer.config.legacy import DATASET_TARGETS

    return sorted(DATASET_TARGETS)

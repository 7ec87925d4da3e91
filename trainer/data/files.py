"""Write image datasets in their published on-disk formats.

Used by the tests and the benchmark to exercise the real torchvision loading
path without internet: MNIST/Fashion-MNIST IDX files under ``ROOT/<Class>/raw``
and CIFAR-10 pickle batches under ``ROOT/cifar-10-batches-py``.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

MNIST_FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}


def _write_idx(path: Path, array: np.ndarray) -> None:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.tobytes())


def write_mnist(root: str | Path, train: tuple[np.ndarray, np.ndarray],
                test: tuple[np.ndarray, np.ndarray], class_name: str = "MNIST") -> Path:
    """Write (N, 28, 28) uint8 images and labels as torchvision's `class_name` expects."""
    raw = Path(root) / class_name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, (images, labels) in (("train", train), ("test", test)):
        _write_idx(raw / MNIST_FILES[(split, "images")], images.reshape(-1, 28, 28))
        _write_idx(raw / MNIST_FILES[(split, "labels")], labels)
    return raw


def write_cifar10(root: str | Path, train: tuple[np.ndarray, np.ndarray],
                  test: tuple[np.ndarray, np.ndarray], batches: int = 5) -> Path:
    """Write (N, 32, 32, 3) uint8 images and labels as CIFAR-10's python pickle batches."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def dump(name: str, images: np.ndarray, labels: np.ndarray) -> None:
        flat = np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), -1)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": flat.astype(np.uint8), "labels": [int(v) for v in labels]}, f)

    images, labels = train
    for i, (xs, ys) in enumerate(zip(np.array_split(images, batches),
                                     np.array_split(labels, batches), strict=True), start=1):
        dump(f"data_batch_{i}", xs, ys)
    dump("test_batch", *test)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)
    return folder

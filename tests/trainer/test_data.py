"""Datasets: offline mnist_5k, the torchvision path on files in each format, batching."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar

from trainer.data.files import write_cifar10, write_mnist
from trainer.data.prepare import (
    _load_cached,
    _splits_cached,
    augment_batch,
    iterate_batches,
    load_output,
    make_splits,
    num_batches,
)
from trainer.errors import DatasetUnavailableError
from trainer.validation import check_dataset


def _section(name: str, root: Path | str = "data", **kw: object) -> dict:
    base = {"_target_": f"trainer.datasets.{name}", "name": name, "val_size": 20,
            "split_seed": 7, "augment": False, "crop_padding": 0, "hflip": False,
            "mean": [0.5], "std": [0.25]}
    if name != "mnist_5k":
        base.update(data_root=str(root), download=False)
    base.update(kw)
    return check_dataset(base)


def load_raw(section: dict) -> tuple:
    splits = load_output(section)
    return (*splits["train"], *(splits["test"] or (None, None)))


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    _load_cached.cache_clear()
    _splits_cached.cache_clear()


def test_mnist_5k_splits_are_disjoint_fixed_and_normalised() -> None:
    section = _section("mnist_5k", val_size=500, test_size=1000, mean=[0.1307], std=[0.3081])
    s = make_splits(section)
    assert (len(s.train_x), len(s.val_x), len(s.test_x)) == (3500, 500, 1000)
    assert s.input_shape == (1, 28, 28) and s.num_classes == 10
    assert s.train_x.dtype == torch.float32
    assert abs(float(s.train_x.mean())) < 0.2 and 0.8 < float(s.train_x.std()) < 1.2
    # all ten classes in every split (the package's digits are sorted by class)
    for y in (s.train_y, s.val_y, s.test_y):
        assert set(y.tolist()) == set(range(10))
    rows = {tuple(r.flatten()[::7].tolist()) for r in s.train_x}
    assert not rows & {tuple(r.flatten()[::7].tolist()) for r in s.val_x}
    assert make_splits(section) is s  # cached per process: a worker's trials share one copy
    _splits_cached.cache_clear()
    again = make_splits(section)  # and made again, the same
    assert again is not s and torch.equal(again.val_x, s.val_x) and torch.equal(again.test_y, s.test_y)


@pytest.mark.parametrize(("name", "cls"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_torchvision_mnist_format_files_load(tmp_path: Path, name: str, cls: str) -> None:
    rng = np.random.default_rng(0)
    train = (rng.integers(0, 256, (120, 28, 28), dtype=np.uint8), rng.integers(0, 10, 120))
    test = (rng.integers(0, 256, (30, 28, 28), dtype=np.uint8), rng.integers(0, 10, 30))
    write_mnist(tmp_path, train, test, class_name=cls)
    train_x, _, _, test_y = load_raw(_section(name, tmp_path))
    assert train_x.shape == (120, 1, 28, 28) and train_x.dtype == torch.uint8
    assert np.array_equal(train_x[:, 0].numpy(), train[0])
    assert np.array_equal(test_y.numpy(), test[1])
    s = make_splits(_section(name, tmp_path))
    assert (len(s.train_x), len(s.val_x), len(s.test_x)) == (100, 20, 30)


def test_torchvision_cifar10_format_files_load(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # torchvision checks the published md5 sums of the CIFAR files; ours are synthetic,
    # so only that check is relaxed to "file exists": the unpickling path stays real.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity",
                        lambda path, md5=None: os.path.isfile(path))
    rng = np.random.default_rng(1)
    train = (rng.integers(0, 256, (50, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 50))
    test = (rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 10))
    write_cifar10(tmp_path, train, test)
    train_x, *_ = load_raw(_section("cifar10", tmp_path))
    assert train_x.shape == (50, 3, 32, 32)
    assert np.array_equal(train_x.permute(0, 2, 3, 1).numpy(), train[0])
    s = make_splits(_section("cifar10", tmp_path, val_size=10, mean=[0.5] * 3, std=[0.2] * 3))
    assert s.input_shape == (3, 32, 32) and len(s.test_x) == 10


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_missing_dataset_is_one_clear_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(DatasetUnavailableError) as info:
        load_raw(_section(name, tmp_path / "empty"))
    message = str(info.value)
    assert str(tmp_path / "empty") in message and "dataset=mnist_5k" in message
    assert "\n" not in message


def test_batches_cover_every_example_once_in_shuffled_order() -> None:
    x = torch.arange(10.0).view(10, 1, 1, 1)
    y = torch.arange(10)
    gen = torch.Generator().manual_seed(0)
    batches = list(iterate_batches(x, y, 4, generator=gen))
    assert [len(b[1]) for b in batches] == [4, 4, 2] == [4, 4, 2][: num_batches(10, 4, False)]
    seen = torch.cat([b[1] for b in batches])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))
    assert all(torch.equal(bx.view(-1), by.float()) for bx, by in batches)  # x, y stay paired
    assert len(list(iterate_batches(x, y, 4, generator=gen, drop_last=True))) == 2


def test_batched_augmentation_crops_and_flips_each_image_independently() -> None:
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8).repeat(32, 1, 1, 1)
    gen = torch.Generator().manual_seed(0)
    out = augment_batch(x, padding=2, hflip=True, generator=gen)
    assert out.shape == x.shape
    assert not torch.equal(out, x)
    differs = [not torch.equal(out[i], out[i + 2]) for i in range(0, 60, 2)]
    assert any(differs)  # different crops for copies of the same image
    same = augment_batch(x, padding=0, hflip=False, generator=gen)
    assert torch.equal(same, x)
    flip_only = augment_batch(x[:1].repeat(64, 1, 1, 1), padding=0, hflip=True, generator=gen)
    flipped = [torch.equal(img, x[0].flip(2)) for img in flip_only]
    assert 10 < sum(flipped) < 54 and all(f or torch.equal(i, x[0])
                                          for f, i in zip(flipped, flip_only, strict=True))


def test_mnist_5k_is_cached_as_arrays_and_a_bad_cache_is_rebuilt(tmp_path: Path, monkeypatch) -> None:
    from trainer.data.datasets import _mnist_5k_arrays

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    images, labels = _mnist_5k_arrays()
    (cache,) = (tmp_path / "optimizer-sweeps").glob("mnist_5k-*.npz")
    again, again_labels = _mnist_5k_arrays()  # from the cache now
    assert np.array_equal(images, again) and np.array_equal(labels, again_labels)
    assert images.shape == (5000, 1, 28, 28) and images.dtype == np.uint8
    cache.write_bytes(b"not an npz")  # a torn or foreign file: ignored and replaced
    fixed, _ = _mnist_5k_arrays()
    assert np.array_equal(images, fixed) and np.load(cache)["images"].shape == images.shape

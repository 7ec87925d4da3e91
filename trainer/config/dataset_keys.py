"""The trainer's own keys of a dataset section, their defaults and ranges (no torch here).

Every other key of a dataset section is a keyword argument of its `_target_`. A config
file gives only the keys it changes; validation fills in the rest (`with_defaults`), so a
run's recorded config says everything it used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainer.config.spec import Param, count, flag, one_of

TASKS = ("classification", "regression")
# The trainer's keys of a dataset section, with their defaults (filled in by validation).
DATASET_DEFAULTS: dict[str, Any] = {
    "task": "classification", "val_size": 0.1, "test_size": None, "split_seed": 1234,
    "num_outputs": None, "standardize": False, "mean": None, "std": None,
    "augment": False, "crop_padding": 0, "hflip": False,
    "loader": {"num_workers": 0, "pin_memory": True, "persistent_workers": True},
}
RESERVED = ("name", *DATASET_DEFAULTS)
DATASET_PARAMS: dict[str, Param] = {
    "task": one_of(*TASKS, doc="classification: cross-entropy, */acc metrics, ranked by val/acc; "
                   "regression: mean squared error, losses only, ranked by val/loss"),
    "val_size": Param("size", doc="validation examples carved from train with a fixed seed when "
                      "the callable gives no val split (a count, or a fraction)"),
    "test_size": Param("size", nullable=True, doc="likewise for a missing test split; null: no "
                       "test split"),
    "split_seed": count(0, "the seed of those splits", high=2**32 - 1),
    "num_outputs": count(1, "the model's outputs; null: the classes seen (largest label + 1), or "
                         "the regression target's columns", nullable=True),
    "standardize": flag("arrays: z-score each input feature with train's mean and std"),
    "mean": Param("floats", nullable=True, doc="arrays: per-channel mean to subtract (after uint8 "
                  "inputs are scaled to [0, 1])"),
    "std": Param("floats", nullable=True, doc="arrays: per-channel standard deviation to divide by"),
    "augment": flag("arrays of images: random crop (crop_padding) and flip (hflip) of whole "
                    "batches on the device"),
    "crop_padding": count(0, "augment: reflect padding before the random crop, in pixels"),
    "hflip": flag("augment: random horizontal flip"),
    "loader": Param("section", doc="the DataLoader path's settings (a Dataset split): "
                    "dataset.loader.*"),
}
# The arguments of the bundled torchvision datasets' callables (trainer.datasets.mnist, ...).
BUNDLED_ARGS: dict[str, Param] = {
    "data_root": Param("path", doc="where the files are downloaded and read; $SWEEPS_DATA_ROOT "
                       "sets it for every bundled dataset"),
    "download": flag("download the files when they are missing"),
}
LOADER_PARAMS: dict[str, Param] = {
    "num_workers": count(0, "DataLoader worker processes (0: load in the training process)"),
    "pin_memory": flag("page-locked batches, on CUDA only"),
    "persistent_workers": flag("keep the loader workers between epochs"),
}


def with_defaults(ds: Mapping[str, Any]) -> dict[str, Any]:
    """`ds` with every trainer key it leaves out at its default (`loader` key by key)."""
    out = {**{k: v for k, v in DATASET_DEFAULTS.items() if k not in ds}, **ds}
    loader = ds.get("loader") or {}
    out["loader"] = {**DATASET_DEFAULTS["loader"], **loader} if isinstance(loader, Mapping) else loader
    return out

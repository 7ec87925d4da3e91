"""The trainer's own keys of a dataset section, their defaults and ranges (no torch here).

Every other key of a dataset section is a keyword argument of its `_target_`. A config
file gives only the keys it changes; validation fills in the rest (`with_defaults`), so a
run's recorded config says everything it used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainer.spec import Param, count, flag, one_of

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
    "task": one_of(*TASKS), "val_size": Param("size"), "test_size": Param("size", nullable=True),
    "split_seed": count(0), "num_outputs": count(1, nullable=True), "standardize": flag(),
    "mean": Param("floats", nullable=True), "std": Param("floats", nullable=True),
    "augment": flag(), "crop_padding": count(0), "hflip": flag(), "loader": Param("section"),
}
LOADER_PARAMS: dict[str, Param] = {"num_workers": count(0), "pin_memory": flag(),
                                   "persistent_workers": flag()}


def with_defaults(ds: Mapping[str, Any]) -> dict[str, Any]:
    """`ds` with every trainer key it leaves out at its default (`loader` key by key)."""
    out = {**{k: v for k, v in DATASET_DEFAULTS.items() if k not in ds}, **ds}
    loader = ds.get("loader") or {}
    out["loader"] = {**DATASET_DEFAULTS["loader"], **loader} if isinstance(loader, Mapping) else loader
    return out

"""Configs written before models and datasets were named by `_target_` still load.

Journals, checkpoints and MLflow artifacts of earlier releases hold trainer configs whose
model and dataset sections name a bundled option only (``model: {name: mlp, ...}``) and
whose trainer section has no `loss`. `upgrade` gives them the `_target_` that option has
today, so that they reproduce and resume exactly as they ran.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainer.config.targets import TARGET

MODEL_TARGETS = {"mlp": "trainer.models.mlp", "cnn": "trainer.models.cnn",
                 "resnet": "trainer.models.resnet"}
DATASET_TARGETS = {"mnist": "trainer.datasets.mnist", "fashion_mnist": "trainer.datasets.fashion_mnist",
                   "cifar10": "trainer.datasets.cifar10", "mnist_5k": "trainer.datasets.mnist_5k"}
UNUSED = {"mnist_5k": ("data_root", "download")}  # keys its callable never took


def upgrade(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `data` in today's shape (unchanged where it already is)."""
    out = dict(data)
    model = dict(out.get("model") or {})
    if TARGET not in model and model.get("name") in MODEL_TARGETS:
        out["model"] = {TARGET: MODEL_TARGETS[model["name"]], **model}
    ds = dict(out.get("dataset") or {})
    if TARGET not in ds and ds.get("name") in DATASET_TARGETS:
        for key in UNUSED.get(ds["name"], ()):
            ds.pop(key, None)
        out["dataset"] = {TARGET: DATASET_TARGETS[ds["name"]], **ds}
    trainer = dict(out.get("trainer") or {})
    if "loss" not in trainer:
        out["trainer"] = {**trainer, "loss": None}
    return out

"""Compose the Hydra config from conf/ and validate all of it before anything runs.

`load_config(overrides)` is what both `python -m trainer` (as a pre-flight) and
the sweep layer use: Hydra's own composition errors (unknown group option,
unknown key, bad override syntax) and our range checks all come back as one
`UserError` line naming the key, the value and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import DictConfig

from trainer.compose import (  # noqa: F401  (re-exported: the config API in one place)
    GROUPS,
    compose,
    flatten,
    override_value,
    overrides_for,
    to_container,
)
from trainer.data import DATASETS
from trainer.errors import ConfigError
from trainer.models import MODELS
from trainer.optim.factory import validate_optimizer
from trainer.schedules import SCHEDULES
from trainer.spec import Param, check_section, count, flag, one_of

TRAINER_PARAMS: dict[str, Param] = {
    "epochs": count(1),
    "batch_size": count(1),
    "eval_batch_size": count(1),
    "seed": count(0),
    "device": Param("str"),
    "precision": one_of("fp32", "bf16"),
    "channels_last": flag(),
    "threads": count(0),
    "drop_last": flag(),
    "log_every": count(1),
    "selection": one_of("best", "last"),
    "checkpoint": one_of("every_epoch", "last", "best", "never"),
    "checkpoint_every_s": Param("float", low=0.0),
    "resume": Param("path", nullable=True),
    "progress": flag(),
    "output_dir": Param("path", nullable=True),
}
_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")


def load_config(overrides: Sequence[str] = (), config_name: str = "config") -> DictConfig:
    """Compose and validate; raises UserError with one line on any bad input."""
    cfg = compose(overrides, config_name)
    validate(cfg)
    return cfg


def validate(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """Validate a whole trainer config; return it as a resolved plain dict."""
    data = to_container(cfg)
    for section in ("trainer", *GROUPS):
        if not isinstance(data.get(section), dict):
            raise ConfigError(section, data.get(section), "missing section")
    t = data["trainer"]
    check_section("trainer", t, TRAINER_PARAMS, owner="trainer")
    if not _DEVICE.match(t["device"]):
        raise ConfigError("trainer.device", t["device"], "must be auto, cpu, cuda or cuda:N")

    ds = data["dataset"]
    check_section("dataset", ds, DATASETS.get(ds.get("name")).params, owner=f"dataset {ds['name']}")
    if len(ds["mean"]) != len(ds["std"]):
        raise ConfigError("dataset.std", ds["std"], "needs as many values as dataset.mean")

    m = data["model"]
    check_section("model", m, MODELS.get(m.get("name")).params, owner=f"model {m['name']}")
    if m["name"] == "cnn" and len(m["channels"]) != 2:
        raise ConfigError("model.channels", m["channels"], "must be two channel counts [c1, c2]")

    validate_optimizer(data["optimizer"])

    s = data["schedule"]
    info = SCHEDULES.get(s.get("name"))
    check_section("schedule", s, info.params, owner=f"schedule {info.name}")
    if s["warmup_epochs"] >= t["epochs"] and info.interval == "step":
        raise ConfigError("schedule.warmup_epochs", s["warmup_epochs"],
                          f"must be < trainer.epochs ({t['epochs']}) for schedule {info.name}")
    return data

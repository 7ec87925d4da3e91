"""Compose the Hydra config from conf/ and validate all of it before anything runs.

`load_config(overrides)` is what both `python -m trainer` (as a pre-flight) and
the sweep layer use: Hydra's own composition errors (unknown group option,
unknown key, bad override syntax) and our range checks all come back as one
`UserError` line naming the key, the value and what is allowed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import DictConfig

from trainer.config.compose import (  # noqa: F401  (re-exported: the config API in one place)
    GROUPS,
    compose,
    flatten,
    override_value,
    overrides_for,
    to_container,
)
from trainer.config.dataset_keys import DATASET_PARAMS, LOADER_PARAMS, RESERVED, with_defaults
from trainer.config.legacy import upgrade
from trainer.config.spec import Param, check_section, count, flag, one_of
from trainer.errors import ConfigError, UserError
from trainer.models import check_model
from trainer.optim.factory import validate_optimizer
from trainer.optim.schedules import SCHEDULES

MAX_EPOCHS = 100_000  # a count beyond it is a typo (1e5 for 1e2), not a run anyone waits for
MAX_BATCH = 2**24

TRAINER_PARAMS: dict[str, Param] = {
    "epochs": count(1, "passes over the training split", high=MAX_EPOCHS),
    "batch_size": count(1, "training examples per optimizer step", high=MAX_BATCH),
    "eval_batch_size": count(1, "examples per batch when evaluating (no gradients, so larger)",
                             high=MAX_BATCH),
    "seed": count(0, "model init, data order, dropout and augmentation; the same seed gives "
                     "identical metrics on CPU", high=2**32 - 1),
    "device": Param("str", doc="auto (CUDA when present, else CPU), cpu, cuda, cuda:N or mps"),
    "precision": one_of("fp32", "bf16", doc="bf16: bfloat16 autocast, CUDA only"),
    "channels_last": flag("NHWC memory format for conv models on CUDA"),
    "threads": count(0, "torch intra-op threads; 0: torch's default", high=4096),
    "drop_last": flag("drop the last partial training batch of each epoch"),
    "log_every": Param("log_every", doc="optimizer steps between batch/loss and batch/lr points; "
                       "auto: every 10, at most about ten points per epoch"),
    "selection": one_of("best", "last", doc="which epoch's weights the test split is evaluated "
                        "with: the best validation epoch, or the last"),
    "checkpoint": one_of("every_epoch", "last", "best", "never",
                         doc="every_epoch: last.pt and best.pt; last: last.pt; best: best.pt"),
    "checkpoint_every_s": Param("float", low=0.0, doc="write last.pt only once this many seconds "
                                "have passed since the previous one (0: every epoch)"),
    "resume": Param("path", nullable=True, doc="a checkpoint (last.pt) to continue from"),
    "progress": flag("a progress bar while an epoch runs"),
    "output_dir": Param("path", nullable=True, doc="where history.json and checkpoints/ go; "
                        "null: Hydra's run directory"),
    "loss": Param("section", nullable=True, doc="null: the task's loss (cross-entropy or mean "
                  "squared error); or a _target_ mapping, e.g. {_target_: torch.nn.HuberLoss}"),
}
_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")


def load_config(overrides: Sequence[str] = (), config_name: str = "config", *,
                config_dir: str | os.PathLike[str] | None = None) -> DictConfig:
    """Compose (with the user's `config_dir`) and validate; raises UserError with one line
    on any bad input."""
    cfg = compose(overrides, config_name, config_dir=config_dir)
    validate(cfg)
    return cfg


def validate(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """Validate a whole trainer config; return it as a resolved plain dict, with the
    defaults of the trainer's dataset keys filled in (a run's config says all it used)."""
    data = to_container(cfg)
    for section in ("trainer", *GROUPS):
        if not isinstance(data.get(section), dict):
            raise ConfigError(section, data.get(section), "missing section")
    data = upgrade(data)
    t = data["trainer"]
    check_section("trainer", t, TRAINER_PARAMS, owner="trainer")
    if not _DEVICE.match(t["device"]):
        raise ConfigError("trainer.device", t["device"], "must be auto, cpu, cuda or cuda:N")
    if t["loss"] is not None:
        from trainer.config.targets import check_call

        check_call("trainer.loss", t["loss"])

    check_packaging(data)
    data["dataset"] = check_dataset(data["dataset"])
    check_model(data["model"])

    validate_optimizer(data["optimizer"])

    s = data["schedule"]
    info = SCHEDULES.get(s.get("name"))
    check_section("schedule", s, info.params, owner=f"schedule {info.name}")
    if info.name == "onecycle" and s["three_phase"] and s["pct_start"] >= 0.5:
        raise ConfigError("schedule.pct_start", s["pct_start"], "must be < 0.5 with "
                          "schedule.three_phase=true (its two ramps take 2 x pct_start of the run)")
    if s["warmup_epochs"] >= t["epochs"] and info.interval == "step":
        raise ConfigError("schedule.warmup_epochs", s["warmup_epochs"],
                          f"must be < trainer.epochs ({t['epochs']}) for schedule {info.name}: "
                          f"warmup must leave epochs to schedule (e.g. schedule.warmup_epochs="
                          f"{t['epochs'] / 2:g})")
    return data


def check_packaging(data: Mapping[str, Any]) -> None:
    """The two Hydra packaging mistakes of a user's group file, named with their fix: its keys
    nested under the group's name again, or lifted to the top by ``# @package _global_``."""
    from trainer.config.targets import TARGET

    for group in ("dataset", "model"):
        section = data.get(group)
        if not isinstance(section, Mapping):
            continue
        name = section.get("name", "?")
        if TARGET not in section and isinstance(section.get(group), Mapping):
            raise UserError(f"{group}/{name}.yaml nests its keys under `{group}:`: a {group} file "
                            f"holds the {group}'s own keys (`_target_: ...`); remove the `{group}:` "
                            "level")
    if TARGET in data:
        raise UserError(f"`_target_` ({data[TARGET]}) is at the top of the config: a model or "
                        "dataset file has `# @package _global_`; remove that line (only sweep files "
                        "set keys of the whole config)")


def check_dataset(ds: Mapping[str, Any]) -> dict[str, Any]:
    """A dataset section with the trainer's keys checked and defaulted, and the callable's
    keyword arguments checked against its signature."""
    from trainer.config.targets import TARGET, check_call

    if TARGET not in ds:
        raise ConfigError(f"dataset.{TARGET}", None, "missing: name the callable that returns "
                          "the data, e.g. my_pkg.data.load")
    out = with_defaults(ds)
    owner = f"dataset {out.get('name', out[TARGET])}"
    check_section("dataset", {k: out[k] for k in DATASET_PARAMS}, DATASET_PARAMS, owner=owner)
    if not isinstance(out["loader"], Mapping):
        raise ConfigError("dataset.loader", out["loader"], "must be a mapping: num_workers, "
                          "pin_memory, persistent_workers")
    check_section("dataset.loader", out["loader"], LOADER_PARAMS, owner="dataset.loader")
    check_call("dataset", out, RESERVED)
    return out

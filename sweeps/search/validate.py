"""Checks of a composed sweep config, each failing with one line that names the key.

The sweep section (names, counts, sampler and pruner), every search-space dimension
(both endpoints against the trainer's own constraint for the key it sets), the storage
URL, the patience settings and the tracking writer.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from sweeps.search.samplers import PRUNERS, SAMPLERS
from sweeps.search.space import GROUP_KEYS, Dimension, condition_values, lookup, parse_dimension
from sweeps.search.spec import (
    MAX_NAME,
    PRUNER_PARAMS,
    SAMPLER_DEFAULTS,
    SAMPLER_PARAMS,
    STORAGE_PARAMS,
    SWEEP_DEFAULTS,
    SWEEP_PARAMS,
    TRACKING_PARAMS,
    TRACKING_WRITERS,
    SweepSpec,
    is_name,
)
from sweeps.store.urls import check_port
from trainer.api import (
    DATASET_PARAMS,
    OPTIMIZERS,
    RESERVED,
    SCHEDULES,
    TRAINER_PARAMS,
    ConfigError,
    Param,
    UserError,
    check_section,
    model_params,
)

# The config's top-level sections: found inside `sweep`, they come from a sweep file without
# a package line (Hydra puts a group file's keys under the group's name).
_SECTIONS = ("sweep", "trainer", "search", "dataset", "model", "optimizer", "schedule", "storage",
             "tracking", "launcher")


def check_for_processes(spec: SweepSpec) -> None:
    """`check_importable_targets` over every study's trainer config (each optimizer's in joint
    mode): before a launch, a confirm or `sweeps worker` starts worker processes."""
    check_importable_targets([s.base for s in spec.studies]
                             + [b for s in spec.studies for b in s.bases.values()])


def check_importable_targets(bases: Sequence[Mapping[str, Any]]) -> None:
    """A `_target_` in the caller's main script (a notebook cell, `python script.py`) cannot be
    imported by worker processes: say so before one starts, instead of failing in each. (The
    Python API runs such a sweep's trials in the calling process, where it imports.)"""
    for data in bases:
        for key, section in (("model", data.get("model")), ("dataset", data.get("dataset")),
                             ("trainer.loss", (data.get("trainer") or {}).get("loss"))):
            target = section.get("_target_") if isinstance(section, Mapping) else None
            if isinstance(target, str) and target.startswith("__main__."):
                raise ConfigError(f"{key}._target_", target,
                                  "defined in your notebook or script, which the sweep's worker "
                                  "processes cannot import: move it into a module of your "
                                  "package, or run the trials in that process (sweeps.launch "
                                  "with workers=0)")


def check_sweep_section(sweep: dict[str, Any]) -> None:
    nested = [k for k in _SECTIONS if k in sweep and k not in SWEEP_PARAMS]
    if nested:
        found = ", ".join(f"sweep.{k}" for k in nested)
        raise UserError(f"the sweep file's sections landed under `sweep.` ({found}) because the "
                        "file lacks a package line: add `# @package _global_` as its first line")
    for key, default in SWEEP_DEFAULTS.items():
        sweep.setdefault(key, default)
    for key, param in SWEEP_PARAMS.items():
        if key not in sweep:
            raise ConfigError(f"sweep.{key}", None, "missing from the sweep config")
        value = sweep[key]
        if param.kind == "str_list":
            if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"sweep.{key}", value, "must be a non-empty list of optimizer names")
            for v in value:
                if v not in OPTIMIZERS:
                    raise ConfigError(f"sweep.{key}", v, "unknown optimizer; allowed: "
                                      + ", ".join(OPTIMIZERS.names()))
            if len(set(value)) != len(value):
                raise ConfigError(f"sweep.{key}", value, "must not repeat an optimizer")
        elif param.kind == "section":
            if not isinstance(value, Mapping):
                raise ConfigError(f"sweep.{key}", value, "must be a mapping with a name")
        else:
            param.check(f"sweep.{key}", value)
    extra = sorted(set(sweep) - set(SWEEP_PARAMS))
    if extra:
        raise ConfigError(f"sweep.{extra[0]}", sweep[extra[0]],
                          "unknown key; allowed: " + ", ".join(sorted(SWEEP_PARAMS)))
    if not is_name(sweep["name"]):
        raise ConfigError("sweep.name", sweep["name"], "must be letters, digits, '_', '-', '.'")
    if len(sweep["name"]) > MAX_NAME:
        raise ConfigError("sweep.name", sweep["name"][:20] + "...", f"must be at most {MAX_NAME} "
                          f"characters (it names folders and studies), not {len(sweep['name'])}")
    SAMPLERS.get(sweep["sampler"].get("name"))
    for key, default in SAMPLER_DEFAULTS.items():  # sweep configs written before the key
        sweep["sampler"].setdefault(key, default)
    check_section("sweep.sampler", sweep["sampler"], SAMPLER_PARAMS, owner="sweep.sampler")
    PRUNERS.get(sweep["pruner"].get("name"))
    check_section("sweep.pruner", sweep["pruner"], PRUNER_PARAMS, owner="sweep.pruner")
    if sweep["mode"] == "compare" and sweep["n_trials"] < len(sweep["optimizers"]):
        raise ConfigError("sweep.n_trials", sweep["n_trials"],
                          f"compare mode needs at least one trial per optimizer "
                          f"({len(sweep['optimizers'])})")


def param_for(key: str, dim: Dimension, base: Mapping[str, Any], optimizer: str) -> Param | None:
    """The trainer constraint for a dimension's key (None: a list element, checked apart)."""
    section, _, rest = key.partition(".")
    name, _, index = rest.partition(".")
    if section == "trainer":
        table: Mapping[str, Param] = TRAINER_PARAMS
        owner = "trainer"
    elif section == "optimizer":
        table, owner = OPTIMIZERS.get(optimizer).params, f"optimizer {optimizer}"
    elif section == "schedule":
        scheds = condition_values(dim.when.get("schedule", lookup(base, "schedule")))
        for sched in scheds[1:]:  # a key set under several schedules must exist in each
            if name not in SCHEDULES.get(sched).params:
                raise ConfigError("key", key, f"not a setting of schedule {sched}")
        table, owner = SCHEDULES.get(scheds[0]).params, f"schedule {scheds[0]}"
    elif section == "model":
        table, owner = model_params(base["model"]), f"model {base['model'].get('name')}"
    elif section == "dataset":
        kwargs = {k: Param("any") for k in base["dataset"] if k not in RESERVED and k != "_target_"}
        table, owner = {**DATASET_PARAMS, **kwargs}, f"dataset {base['dataset'].get('name')}"
    else:
        raise ConfigError("key", key, "must start with trainer., optimizer., schedule., model. or dataset.")
    if name not in table:
        raise ConfigError("key", key, f"not a setting of {owner}; allowed: {', '.join(sorted(table))}")
    if index:
        if table[name].kind != "betas" or index not in ("0", "1"):
            raise ConfigError("key", key, f"{section}.{name} has no element {index}")
        return None
    return table[name]


def _check_dimension(path: str, dim: Dimension, base: Mapping[str, Any], optimizer: str,
                     earlier: set[str], config_dir: str | None = None) -> None:
    for cond in dim.when:
        if cond not in earlier and cond not in GROUP_KEYS and lookup(base, cond) is None:
            raise ConfigError(f"{path}.{dim.name}.when", cond,
                              "must name an earlier dimension or a config key")
    if dim.key is None:
        return
    if dim.key in GROUP_KEYS:
        if dim.type != "categorical":
            raise ConfigError(f"{path}.{dim.name}.type", dim.type,
                              f"must be categorical to choose the {dim.key} option")
        if dim.key in ("schedule", "optimizer"):
            allowed = (SCHEDULES if dim.key == "schedule" else OPTIMIZERS).names()
        else:  # the options in the config search path: bundled and the user's config dir
            from trainer.api import group_options

            allowed = group_options(dim.key, config_dir)
        for choice in dim.choices:
            if choice not in allowed:
                raise ConfigError(f"{path}.{dim.name}.choices", choice,
                                  f"unknown {dim.key}; allowed: {', '.join(allowed)}")
        return
    try:
        param = param_for(dim.key, dim, base, optimizer)
    except ConfigError as err:
        raise ConfigError(f"{path}.{dim.name}.key", dim.key, err.allowed) from None
    for value in dim.endpoints():
        if param is None:  # an element of betas
            ok = isinstance(value, int | float) and 0.0 <= value < 1.0 and math.isfinite(value)
            if not ok:
                raise ConfigError(f"{path}.{dim.name}", value, f"gives {dim.key} outside [0, 1)")
            continue
        try:
            param.check(dim.key, int(value) if dim.type == "int" else value)
        except ConfigError as err:
            raise ConfigError(f"{path}.{dim.name}", value, f"range gives {err}") from None


def build_space(search: Mapping[str, Any], optimizer: str, base: Mapping[str, Any],
                *, prefix: str = "", when: Mapping[str, Any] | None = None,
                config_dir: str | None = None) -> list[Dimension]:
    dims: list[Dimension] = []
    seen: set[str] = set()
    for section in (optimizer, "common") if not prefix else (optimizer,):
        spec = search.get(section)
        if spec is None:
            raise ConfigError(f"search.{section}", None, "no search space for this optimizer")
        for name, raw in spec.items():
            dim = parse_dimension(f"search.{section}", name, raw)
            _check_dimension(f"search.{section}", dim, base, optimizer, seen, config_dir)
            seen.add(dim.name)
            if prefix:
                cond = {**(when or {}),
                        **{(f"{prefix}{k}" if k in spec else k): v for k, v in dim.when.items()}}
                dim = Dimension(f"{prefix}{dim.name}", dim.type, dim.key, dim.low, dim.high,
                                dim.log, dim.choices, dim.transform, cond)
            dims.append(dim)
    return dims


def check_stores(data: Mapping[str, Any]) -> None:
    """The storage and tracking sections: every key known, every value in range."""
    for section, table in (("storage", STORAGE_PARAMS), ("tracking", TRACKING_PARAMS)):
        values = data.get(section) or {}
        for key, value in values.items():
            if key not in table:
                raise ConfigError(f"{section}.{key}", value,
                                  "unknown key; allowed: " + ", ".join(sorted(table)))
            table[key].check(f"{section}.{key}", value)
    check_port(check_storage_url(data.get("storage") or {}), "storage.url")
    uri = (data.get("tracking") or {}).get("uri")
    if isinstance(uri, str):
        check_port(uri, "tracking.uri")


def check_storage_url(storage: Mapping[str, Any]) -> str:
    url = storage.get("url")
    if not isinstance(url, str) or not url:
        raise ConfigError("storage.url", url, "must be a journal file path or a database URL")
    return url


def check_patience(section: str, cfg: Mapping[str, Any]) -> float:
    value = cfg.get("patience_s", 600)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{section}.patience_s", value, "must be a number of seconds >= 0")
    return float(value)


def tracking_writer(cfg: Mapping[str, Any], local_workers: int) -> str:
    """`process` or `thread`. `auto`: a writer process where this host has a core beyond one
    per local worker, else a thread: measured on 2 cores (benchmarks/sweep_scaling.py), one
    worker runs more trials per hour with a writer process, two workers with threads (a
    writer process per worker would be a fourth busy process on two cores)."""
    value = cfg.get("writer", "auto")
    if value not in TRACKING_WRITERS:
        raise ConfigError("tracking.writer", value, f"must be one of {', '.join(TRACKING_WRITERS)}")
    if value == "auto":
        return "process" if max(local_workers, 1) < (os.cpu_count() or 1) else "thread"
    return str(value)


def check_warmup(search: Mapping[str, Any], epochs: int, user_written: bool = True
                 ) -> tuple[dict[str, Any], list[str]]:
    """A warmup range must leave epochs to schedule. The bundled range (up to 1 epoch) is
    narrowed to half the run for a run of one epoch, and the launch says so; a range the
    user wrote is refused with the two ways to fix it."""
    out = dict(search)
    common = dict(out.get("common") or {})
    warmup = common.get("warmup_epochs")
    if not (isinstance(warmup, Mapping) and isinstance(warmup.get("high"), int | float)
            and warmup["high"] >= epochs):
        return out, []
    if user_written:
        raise ConfigError("search.common.warmup_epochs.high", warmup["high"],
                          f"must be < trainer.epochs ({epochs}): warmup must leave epochs to "
                          f"schedule; narrow it (search.common.warmup_epochs.high={epochs / 2:g}) "
                          "or turn it off (search.common.warmup_epochs=null)")
    high = epochs / 2
    common["warmup_epochs"] = {**warmup, "high": high, "low": min(float(warmup.get("low", 0.0)), high)}
    out["common"] = common
    return out, [f"note: trainer.epochs={epochs}: the warmup search range is narrowed to "
                 f"[{common['warmup_epochs']['low']:g}, {high:g}] epochs (it must leave epochs to "
                 "schedule)"]

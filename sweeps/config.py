"""The sweep config: compose conf/sweeps.yaml, validate all of it, derive the studies.

Everything is checked here, before a study, an experiment or a run is written: sweep
settings, sampler and pruner names, every search-space dimension (ranges, and both
endpoints against the trainer's own constraints for the key it sets), and the base
trainer config of every optimizer in the sweep.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sweeps.engine import PRUNERS, SAMPLERS
from sweeps.space import GROUP_KEYS, Dimension, SearchSpace, condition_values, lookup, parse_dimension
from trainer.config import GROUPS, TRAINER_PARAMS, compose, validate
from trainer.data import DATASETS
from trainer.errors import ConfigError
from trainer.models import MODELS
from trainer.optim.factory import OPTIMIZERS
from trainer.schedules import SCHEDULES
from trainer.spec import Param, check_section, count, flag, one_of

SWEEP_CONFIG = "sweeps"
DEFAULT_SWEEP = "quick"  # the `sweep:` default of conf/sweeps.yaml
TRAINER_SECTIONS = ("trainer", *GROUPS)
MODES = ("compare", "joint")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

SWEEP_PARAMS: dict[str, Param] = {
    "name": Param("str"),
    "mode": one_of(*MODES),
    "optimizers": Param("str_list"),
    "n_trials": count(1),
    "timeout": Param("float", low=0.0, low_open=True, nullable=True),
    "workers": count(0),
    "workers_per_device": count(1, nullable=True),
    "threads_per_worker": count(1, nullable=True),
    "objective": one_of("best", "last"),
    "seed": count(0),
    "sampler": Param("section"),
    "pruner": Param("section"),
    "max_retries": count(0),
    "max_worker_restarts": count(0),
    "checkpoint_dir": Param("str"),
    "keep_checkpoints": flag(),
    "checkpoint_every_s": Param("float", low=0.0),
}
# Keys a sweep file written before they existed may leave out.
SWEEP_DEFAULTS: dict[str, Any] = {"max_retries": 2, "max_worker_restarts": 3,
                                  "checkpoint_dir": "outputs", "keep_checkpoints": False,
                                  "checkpoint_every_s": 10.0, "workers_per_device": None}
SAMPLER_PARAMS = {"name": Param("str"), "n_startup_trials": count(0), "grid_points": count(1)}
PRUNER_PARAMS = {"name": Param("str"), "n_startup_trials": count(0), "n_warmup_steps": count(0),
                 "min_resource": count(1), "reduction_factor": count(2)}


@dataclass(frozen=True)
class StudySpec:
    """One Optuna study of the sweep: its name, optimizer, space, base overrides, budget."""

    name: str
    optimizer: str | None  # None in joint mode
    space: SearchSpace
    base_overrides: tuple[str, ...]
    base: Mapping[str, Any]  # resolved trainer config the trials start from
    budget: int
    bases: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # joint: per optimizer


@dataclass(frozen=True)
class SweepSpec:
    name: str
    mode: str
    optimizers: tuple[str, ...]
    n_trials: int
    timeout: float | None
    workers: int
    threads_per_worker: int
    worker_devices: tuple[str | None, ...]  # the GPU each local worker is pinned to (None: not)
    objective: str
    seed: int
    sampler: Mapping[str, Any]
    pruner: Mapping[str, Any]
    storage: Mapping[str, Any]
    tracking_uri: str | None
    overrides: tuple[str, ...]
    studies: tuple[StudySpec, ...]
    raw: Mapping[str, Any] = field(default_factory=dict)
    max_retries: int = 2
    max_worker_restarts: int = 3
    checkpoint_dir: str = "outputs"
    keep_checkpoints: bool = False
    checkpoint_every_s: float = 10.0
    tracking_patience_s: float = 600.0
    tracking_writer: str = "process"  # resolved: process or thread

    def study(self, name: str) -> StudySpec:
        for s in self.studies:
            if s.name == name:
                return s
        raise KeyError(name)


def trainer_part(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: data[k] for k in ("trainer", *GROUPS)}


def compose_trainer(user: Sequence[str], extra: Sequence[str] = ()) -> dict[str, Any]:
    """The trainer part of the sweep config, composed ~3x faster than through sweeps.yaml.

    The trainer root config plus the chosen sweep file (``+sweep=NAME``) and only the
    overrides that touch trainer sections gives the same trainer config (tested) without
    loading the nine search-space files, storage and tracking.
    """
    from trainer.config import to_container

    sweep = DEFAULT_SWEEP
    kept: list[str] = []
    for o in user:
        key = o.split("=", 1)[0].lstrip("+~")
        if key == "sweep":
            sweep = o.split("=", 1)[1]
        elif key.split(".")[0] in TRAINER_SECTIONS:
            kept.append(o)
    return validate(trainer_part(to_container(compose([f"+sweep={sweep}", *kept, *extra]))))


def _check_sweep_section(sweep: dict[str, Any]) -> None:
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
    if not _NAME.match(sweep["name"]):
        raise ConfigError("sweep.name", sweep["name"], "must be letters, digits, '_', '-', '.'")
    SAMPLERS.get(sweep["sampler"].get("name"))
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
        table, owner = MODELS.get(lookup(base, "model")).params, "model " + lookup(base, "model")
    elif section == "dataset":
        table, owner = DATASETS.get(lookup(base, "dataset")).params, "dataset " + lookup(base, "dataset")
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
                     earlier: set[str]) -> None:
    for cond in dim.when:
        if cond not in earlier and cond not in GROUP_KEYS and lookup(base, cond) is None:
            raise ConfigError(f"{path}.{dim.name}.when", cond,
                              "must name an earlier dimension or a config key")
    if dim.key is None:
        return
    if dim.key in GROUP_KEYS:
        registry = {"schedule": SCHEDULES, "model": MODELS, "dataset": DATASETS,
                    "optimizer": OPTIMIZERS}[dim.key]
        if dim.type != "categorical":
            raise ConfigError(f"{path}.{dim.name}.type", dim.type,
                              f"must be categorical to choose the {dim.key} option")
        for choice in dim.choices:
            if choice not in registry:
                raise ConfigError(f"{path}.{dim.name}.choices", choice,
                                  f"unknown {dim.key}; allowed: {', '.join(registry.names())}")
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
                *, prefix: str = "", when: Mapping[str, Any] | None = None) -> list[Dimension]:
    dims: list[Dimension] = []
    seen: set[str] = set()
    for section in (optimizer, "common") if not prefix else (optimizer,):
        spec = search.get(section)
        if spec is None:
            raise ConfigError(f"search.{section}", None, "no search space for this optimizer")
        for name, raw in spec.items():
            dim = parse_dimension(f"search.{section}", name, raw)
            _check_dimension(f"search.{section}", dim, base, optimizer, seen)
            seen.add(dim.name)
            if prefix:
                cond = {**(when or {}),
                        **{(f"{prefix}{k}" if k in spec else k): v for k, v in dim.when.items()}}
                dim = Dimension(f"{prefix}{dim.name}", dim.type, dim.key, dim.low, dim.high,
                                dim.log, dim.choices, dim.transform, cond)
            dims.append(dim)
    return dims


def _storage_url(storage: Mapping[str, Any]) -> str:
    url = storage.get("url")
    if not isinstance(url, str) or not url:
        raise ConfigError("storage.url", url, "must be a journal file path or a database URL")
    return url


def _patience(section: str, cfg: Mapping[str, Any]) -> float:
    value = cfg.get("patience_s", 600)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{section}.patience_s", value, "must be a number of seconds >= 0")
    return float(value)


TRACKING_WRITERS = ("auto", "process", "thread")


def _tracking_writer(cfg: Mapping[str, Any], local_workers: int) -> str:
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


def load_sweep(overrides: Sequence[str] = ()) -> SweepSpec:
    """Compose and validate a sweep; raises a one-line UserError on any bad input."""
    cfg = compose(overrides, SWEEP_CONFIG)
    from trainer.config import to_container

    data = to_container(cfg)
    sweep = data.get("sweep")
    if not isinstance(sweep, Mapping):
        raise ConfigError("sweep", sweep, "missing: choose one with sweep=quick|mnist|cifar10")
    sweep = dict(sweep)
    _check_sweep_section(sweep)
    search = data.get("search") or {}
    _storage_url(data.get("storage") or {})
    tracking = (data.get("tracking") or {}).get("uri")
    patience = {section: _patience(section, data.get(section) or {}) for section in ("storage", "tracking")}
    optimizers = tuple(sweep["optimizers"])
    from sweeps import devices

    per_device = sweep["workers_per_device"]
    gpus = devices.visible_gpus() if per_device is not None else []
    workers = devices.local_workers(per_device, int(sweep["workers"]), gpus)
    threads = sweep["threads_per_worker"] or max(1, (os.cpu_count() or 1) // max(workers, 1))
    user = [o for o in overrides if not o.startswith(("hydra.", "hydra/"))]

    bases = {opt: compose_trainer(user, [f"optimizer={opt}"]) for opt in optimizers}

    epochs = int(bases[optimizers[0]]["trainer"]["epochs"])
    warmup = (search.get("common") or {}).get("warmup_epochs")
    if isinstance(warmup, Mapping) and isinstance(warmup.get("high"), int | float) \
            and warmup["high"] >= epochs:
        raise ConfigError("search.common.warmup_epochs.high", warmup["high"],
                          f"must be < trainer.epochs ({epochs}): warmup must leave epochs to schedule")

    studies: list[StudySpec] = []
    if sweep["mode"] == "compare":
        budget = sweep["n_trials"] // len(optimizers)
        for opt in optimizers:
            space = SearchSpace(tuple(build_space(search, opt, bases[opt])))
            studies.append(StudySpec(f"{sweep['name']}.{opt}", opt, space, (f"optimizer={opt}",),
                                     bases[opt], budget))
    else:
        choice = Dimension("optimizer", "categorical", "optimizer", choices=optimizers)
        dims = [choice]
        for opt in optimizers:
            dims += build_space(search, opt, bases[opt], prefix=f"{opt}.",
                                when={"optimizer": opt})
        first = optimizers[0]
        common = build_space({**search, first: {}}, first, bases[first])
        studies.append(StudySpec(sweep["name"], None, SearchSpace(tuple(dims + common)), (),
                                 bases[first], int(sweep["n_trials"]), bases))
    return SweepSpec(
        name=sweep["name"], mode=sweep["mode"], optimizers=optimizers,
        n_trials=int(sweep["n_trials"]), timeout=sweep["timeout"], workers=workers,
        threads_per_worker=int(threads), worker_devices=devices.assignment(per_device, workers, gpus),
        objective=sweep["objective"], seed=int(sweep["seed"]),
        sampler=dict(sweep["sampler"]), pruner=dict(sweep["pruner"]),
        storage=dict(data["storage"]), tracking_uri=tracking, overrides=tuple(user),
        studies=tuple(studies), raw={"sweep": sweep, "search": search},
        max_retries=int(sweep["max_retries"]), max_worker_restarts=int(sweep["max_worker_restarts"]),
        checkpoint_dir=str(sweep["checkpoint_dir"]), keep_checkpoints=bool(sweep["keep_checkpoints"]),
        checkpoint_every_s=float(sweep["checkpoint_every_s"]),
        tracking_patience_s=patience["tracking"],
        tracking_writer=_tracking_writer(data.get("tracking") or {}, workers),
    )


class TrialConfigs:
    """Resolve a trial's trainer config from its overrides, fast.

    Hydra composes each distinct set of group choices (e.g. ``schedule=cosine``) once per
    process; scalar overrides are then parsed by Hydra's own override parser and set on a
    copy. The result equals composing ``base + overrides`` from scratch (tested), at a few
    milliseconds instead of a few hundred per trial.
    """

    def __init__(self, spec: SweepSpec) -> None:
        self.spec = spec
        self._cache: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
        self._parser: Any = None

    def resolve(self, study: StudySpec, overrides: Sequence[str]) -> dict[str, Any]:
        import copy

        from hydra.core.override_parser.overrides_parser import OverridesParser

        groups = tuple(o for o in overrides if o.split("=", 1)[0] in GROUP_KEYS)
        key = (study.name, groups)
        if key not in self._cache:
            if groups:
                self._cache[key] = compose_trainer(self.spec.overrides,
                                                   [*study.base_overrides, *groups])
            else:
                self._cache[key] = copy.deepcopy(dict(study.base))
        data = copy.deepcopy(self._cache[key])
        scalars = [o for o in overrides if o.split("=", 1)[0] not in GROUP_KEYS]
        values = [_plain(o) for o in scalars]  # sampled numbers: no parser needed
        rest = [o for o, v in zip(scalars, values, strict=True) if v is None]
        if rest:
            if self._parser is None:  # building Hydra's ANTLR parser costs ~20 ms: do it once
                self._parser = OverridesParser.create()
            values += [(p.key_or_group, p.value()) for p in self._parser.parse_overrides(rest)]
        for item in values:
            if item is None:
                continue
            dotted, value = item
            node = data
            *parents, last = dotted.split(".")
            for part in parents:
                node = node[part]
            if last not in node:
                raise ConfigError(dotted, value, "unknown key")
            node[last] = value
        return validate(data)


_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")
_KEY = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


def _plain(override: str) -> tuple[str, Any] | None:
    """``key=number`` or ``key=true|false``, parsed as Hydra's grammar would (Hydra's ANTLR
    parser costs ~1 ms per override); None for anything else, which Hydra parses."""
    key, sep, text = override.partition("=")
    if not sep or not _KEY.match(key):
        return None
    if _INT.match(text):
        return key, int(text)
    if _FLOAT.match(text):
        return key, float(text)
    if text in ("true", "false"):
        return key, text == "true"
    return None

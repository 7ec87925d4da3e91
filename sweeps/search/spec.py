"""What a validated sweep is: its settings and one `StudySpec` per Optuna study.

Plain frozen records, built by `sweeps.search.load.load_sweep` and read by everyone
else; nothing here composes or checks anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sweeps.search.space import SearchSpace
from trainer.config import GROUPS
from trainer.spec import Param, count, flag, one_of
from trainer.tasks import CLASSIFICATION, Task

SWEEP_CONFIG = "sweeps"


DEFAULT_SWEEP = "quick"  # the `sweep:` default of conf/sweeps.yaml


TRAINER_SECTIONS = ("trainer", *GROUPS)


MODES = ("compare", "joint")


# Upper bounds where a value would exhaust time, memory or disk before it did anything useful
MAX_TRIALS = 100_000  # a study's trials; `status` replays them all
MAX_WORKERS = 512  # local worker processes of one launch
MAX_THREADS = 1024  # torch threads per worker
MAX_NAME = 100  # sweep.name: in paths (trial folders), study names and MLflow experiments

SWEEP_PARAMS: dict[str, Param] = {
    "name": Param("str"),
    "mode": one_of(*MODES),
    "optimizers": Param("str_list"),
    "n_trials": Param("int", low=1, high=MAX_TRIALS),
    "timeout": Param("float", low=0.0, low_open=True, nullable=True),
    "workers": Param("int", low=0, high=MAX_WORKERS),
    "workers_per_device": Param("int", low=1, high=MAX_WORKERS, nullable=True),
    "threads_per_worker": Param("int", low=1, high=MAX_THREADS, nullable=True),
    "objective": one_of("best", "last"),
    "seed": Param("int", low=0, high=2**32 - 1),
    "sampler": Param("section"),
    "pruner": Param("section"),
    "max_retries": Param("int", low=0, high=100),
    "max_worker_restarts": Param("int", low=0, high=1000),
    "fail_fast": Param("int", low=0, high=1000),
    "checkpoint_dir": Param("str"),
    "keep_checkpoints": flag(),
    "checkpoint_every_s": Param("float", low=0.0),
}


# Keys a sweep file written before they existed may leave out.
SWEEP_DEFAULTS: dict[str, Any] = {"max_retries": 2, "max_worker_restarts": 3,
                                  "checkpoint_dir": "outputs", "keep_checkpoints": False,
                                  "checkpoint_every_s": 10.0, "workers_per_device": None,
                                  "fail_fast": 3}


SAMPLER_DEFAULTS: dict[str, Any] = {"history": 1000}  # tpe: sweeps.search.history


SAMPLER_PARAMS = {"name": Param("str"), "n_startup_trials": count(0), "grid_points": count(1),
                  "history": Param("int", 50, None, nullable=True)}


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
    fail_fast: int = 3  # consecutive same-reason failures that stop the sweep (0: never)
    checkpoint_dir: str = "outputs"
    keep_checkpoints: bool = False
    checkpoint_every_s: float = 10.0
    tracking_patience_s: float = 600.0
    tracking_writer: str = "process"  # resolved: process or thread
    task: Task = CLASSIFICATION  # what every study optimises (all share one dataset task)
    config_dir: str | None = None  # the user's config dir (--config-dir), recorded for workers
    launcher: Mapping[str, Any] = field(default_factory=lambda: {"name": "local"})  # where workers run
    notes: tuple[str, ...] = ()  # what the launch says before it starts (e.g. a pinned dimension)

    def study(self, name: str) -> StudySpec:
        for s in self.studies:
            if s.name == name:
                return s
        raise KeyError(name)


TRACKING_WRITERS = ("auto", "process", "thread")

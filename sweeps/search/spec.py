"""What a validated sweep is: its settings and one `StudySpec` per Optuna study.

Plain frozen records, built by `sweeps.search.load.load_sweep` and read by everyone
else; nothing here composes or checks anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sweeps.search.space import SearchSpace
from trainer.api import CLASSIFICATION, GROUPS, Param, Task, count, flag, one_of

# a sweep's and a study's name: it names folders (reports/NAME, checkpoints), so it is one
# path component; names read back from a storage are held to it too
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def is_name(value: object) -> bool:
    return isinstance(value, str) and bool(NAME.match(value))

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
    "name": Param("str", doc="the MLflow experiment; studies are NAME.OPTIMIZER (compare) or NAME "
                  "(joint)"),
    "mode": one_of(*MODES, doc="compare: one study per optimizer, equal budgets; joint: one study "
                   "where the optimizer is searched"),
    "optimizers": Param("str_list", doc="which optimizers to sweep"),
    "n_trials": Param("int", low=1, high=MAX_TRIALS, doc="finished trials in total (compare: split "
                      "equally between the optimizers)"),
    "timeout": Param("float", low=0.0, low_open=True, nullable=True,
                     doc="seconds after which no new trial starts; null: none"),
    "workers": Param("int", low=0, high=MAX_WORKERS, doc="local worker processes; 0: none (join "
                     "with sweeps worker)"),
    "workers_per_device": Param("int", low=1, high=MAX_WORKERS, nullable=True,
                                doc="K local workers per visible GPU, each pinned to its GPU (K "
                                "without one); replaces workers when set"),
    "threads_per_worker": Param("int", low=1, high=MAX_THREADS, nullable=True,
                                doc="torch threads per worker; null: cores / workers"),
    "objective": one_of("best", "last", doc="the value a trial reports: its best epoch's or its "
                        "last epoch's validation metric (never a test metric)"),
    "seed": Param("int", low=0, high=2**32 - 1, doc="the sampler's seed and the trials' seed"),
    "sampler": Param("section", doc="sweep.sampler.*: how parameters are chosen"),
    "pruner": Param("section", doc="sweep.pruner.*: how unpromising trials are stopped"),
    "max_retries": Param("int", low=0, high=100, doc="retries of a trial whose worker died, "
                         "resumed from its last checkpoint (0: never)"),
    "max_worker_restarts": Param("int", low=0, high=1000, doc="local worker processes a launch "
                                 "replaces when they die, in all"),
    "fail_fast": Param("int", low=0, high=1000, doc="stop the sweep when this many trials in a row "
                       "fail with the same error (0: never)"),
    "checkpoint_dir": Param("str", doc="trial outputs and checkpoints (made absolute; a shared "
                            "volume for workers on other machines)"),
    "keep_checkpoints": flag("keep the checkpoints of finished trials"),
    "checkpoint_every_s": Param("float", low=0.0, doc="a trial writes last.pt at the end of an "
                                "epoch once this many seconds have passed since the previous one "
                                "(0: every epoch); a retry redoes at most about this much work"),
}


# Keys a sweep file written before they existed may leave out.
SWEEP_DEFAULTS: dict[str, Any] = {"max_retries": 2, "max_worker_restarts": 3,
                                  "checkpoint_dir": "outputs", "keep_checkpoints": False,
                                  "checkpoint_every_s": 10.0, "workers_per_device": None,
                                  "fail_fast": 3}


SAMPLER_DEFAULTS: dict[str, Any] = {"history": 1000}  # tpe: sweeps.search.history


SAMPLER_PARAMS = {
    "name": Param("str", doc="tpe, random, grid, cmaes, gp or qmc"),
    "n_startup_trials": count(0, "tpe, gp, cmaes: random trials before the model is used"),
    "grid_points": count(1, "grid: values per float or int range"),
    "history": Param("int", 50, None, nullable=True,
                     doc="tpe: fit on the most recent this many finished trials and the 25 best "
                     "(null: every trial, as Optuna does)"),
}


PRUNER_PARAMS = {
    "name": Param("str", doc="median, hyperband, successive_halving or none; fed the objective's "
                  "metric every epoch"),
    "n_startup_trials": count(0, "median: trials before pruning starts"),
    "n_warmup_steps": count(0, "median: epochs before a trial can be pruned"),
    "min_resource": count(1, "hyperband, successive_halving: epochs of the first rung"),
    "reduction_factor": count(2, "hyperband, successive_halving: 1 / the share kept per rung"),
}


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


STORAGE_PARAMS: dict[str, Param] = {
    "url": Param("str", doc="an Optuna journal file path, or a database URL "
                 "(postgresql://USER@HOST:PORT/DB); $SWEEPS_STORAGE overrides"),
    "shared_fs": flag("launcher=slurm with a journal or a local MLflow store: every node "
                      "mounts their directory"),
    "heartbeat_interval": count(1, "database storages: seconds between a worker's heartbeats"),
    "grace_period": count(1, "database storages: a running trial without a heartbeat this long "
                          "is failed and retried"),
    "patience_s": Param("float", low=0.0, doc="how long a worker waits for its database to come "
                        "back before giving up a call"),
}


TRACKING_PARAMS: dict[str, Param] = {
    "uri": Param("str", nullable=True, doc="the MLflow tracking URI; null: MLflow's default "
                 "(mlflow.db in the launch directory); $MLFLOW_TRACKING_URI overrides"),
    "patience_s": Param("float", low=0.0, doc="how long tracking writes wait for an unreachable "
                        "server before giving up"),
    "writer": one_of(*TRACKING_WRITERS, doc="a worker's MLflow writes: process (outside the "
                     "worker, on a spare core: a launch's own workers send them to the launch, "
                     "other workers to a child process), thread, or auto (process where the host "
                     "has a core beyond one per local worker)"),
}

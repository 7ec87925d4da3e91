"""The `launcher` section: where a sweep's workers run, checked when the sweep is loaded.

`local` (the default): `sweep.workers` processes on this machine. `slurm`: one Slurm array
job of `launcher.workers` tasks (`sweeps.run.slurm_jobs`). Every key is checked here, with
the rest of the sweep, so a bad value fails before anything is submitted or written;
what only Slurm can answer (is `sbatch` here, does the partition exist) is asked in
`sweeps.run.slurm_jobs.preflight`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sweeps.store import urls
from trainer.api import ConfigError, Param, check_section, count, flag

LAUNCHERS = ("local", "slurm")

SLURM_PARAMS: dict[str, Param] = {
    "workers": count(1, "array tasks, one sweeps worker each"),
    "array_parallelism": count(1, "at most this many tasks at once (--array=...%N); null: all",
                               nullable=True),
    "partition": Param("str", nullable=True, doc="--partition; null: the cluster's default"),
    "account": Param("str", nullable=True, doc="--account"),
    "qos": Param("str", nullable=True, doc="--qos"),
    "time": count(1, "minutes per task (--time); a task that reaches it is requeued"),
    "cpus_per_task": count(1, "--cpus-per-task"),
    "gpus_per_task": count(0, "--gpus-per-task (0: none)"),
    "mem_gb": Param("float", low=0.0, low_open=True, nullable=True,
                    doc="--mem in GB; null: the partition's default"),
    "requeue": flag("a preempted or timed-out task goes back into the queue"),
    "max_requeues": count(0, "how often one task may be requeued at its time limit"),
    "signal_delay_s": count(0, "Slurm warns a task this long before its time limit "
                            "(--signal=USR2@N)"),
    "setup": Param("any", doc="shell lines run before the worker, e.g. [module load cuda]"),
    "sbatch": Param("any", doc="extra #SBATCH options, e.g. +launcher.sbatch.constraint=a100"),
    "python": Param("str", nullable=True, doc="the Python on the nodes; null: the one running "
                    "the launch"),
    "log_dir": Param("str", nullable=True, doc="submitit's scripts and task logs (shared); null: "
                     "CHECKPOINT_DIR/slurm"),
}


def check_launcher(section: Mapping[str, Any] | None, storage: Mapping[str, Any],
                   tracking_uri: str | None) -> dict[str, Any]:
    """The validated launcher section (``{"name": "local"}`` when the config has none)."""
    launcher = dict(section or {"name": "local"})
    name = launcher.get("name")
    if name not in LAUNCHERS:
        raise ConfigError("launcher", name, "unknown launcher; allowed: " + ", ".join(LAUNCHERS))
    if name == "local":
        extra = sorted(set(launcher) - {"name"})
        if extra:
            raise ConfigError(f"launcher.{extra[0]}", launcher[extra[0]],
                              "not a setting of launcher local (choose launcher=slurm for it)")
        return launcher
    check_section("launcher", launcher, SLURM_PARAMS, owner="launcher slurm")
    _check_lists(launcher)
    if launcher["signal_delay_s"] >= launcher["time"] * 60:
        raise ConfigError("launcher.signal_delay_s", launcher["signal_delay_s"],
                          f"must be shorter than launcher.time ({launcher['time']} min)")
    _check_shared(storage, tracking_uri)
    return launcher


def _check_lists(launcher: Mapping[str, Any]) -> None:
    setup = launcher["setup"]
    if not isinstance(setup, list) or not all(isinstance(line, str) for line in setup):
        raise ConfigError("launcher.setup", setup, "must be a list of shell lines")
    sbatch = launcher["sbatch"]
    if not isinstance(sbatch, Mapping) or not all(isinstance(k, str) for k in sbatch):
        raise ConfigError("launcher.sbatch", sbatch, "must be a mapping of #SBATCH options to values")
    owned = {"array", "output", "error", "signal", "requeue", "no-requeue", "time", "job-name"}
    taken = sorted(k for k in sbatch if k.replace("_", "-") in owned)
    if taken:
        raise ConfigError(f"launcher.sbatch.{taken[0]}", sbatch[taken[0]],
                          "set by the launcher itself (use launcher.time, launcher.requeue, ...)")


def _check_shared(storage: Mapping[str, Any], tracking_uri: str | None) -> None:
    """Array tasks run on other nodes: a file store needs a filesystem they all mount."""
    shared = storage.get("shared_fs", False)
    if not isinstance(shared, bool):
        raise ConfigError("storage.shared_fs", shared, "must be true or false")
    url = str(storage.get("url"))
    if not urls.is_database(url) and not shared:
        raise ConfigError("storage", urls.redact(url), "launcher=slurm runs workers on other nodes, "
                          "which an Optuna journal file reaches only on a shared filesystem: use "
                          "storage=postgres, or set storage.shared_fs=true if every node mounts it")
    if not str(tracking_uri or "").startswith(("http://", "https://")) and not shared:
        raise ConfigError("tracking.uri", urls.redact(tracking_uri or "mlflow.db"),
                          "launcher=slurm runs workers on other nodes, which a local MLflow "
                          "store reaches only on a shared filesystem: use tracking=server, or "
                          "set storage.shared_fs=true if every node mounts it")

"""Workers as one Slurm array job, through submitit: preflight, submit, task states, cancel.

Each array task runs `WorkerTask`: the same worker `sweeps worker --study NAME` runs,
in-process, against the sweep's storage and tracking. What schedulers do to a task:

- `scancel` of a task, or a preemption that kills it: Slurm sends SIGTERM; the worker marks
  its running trial interrupted (`sweeps.run.stopping`), and another worker retries it
  from its last checkpoint (on the shared `sweep.checkpoint_dir`).
- its time limit (or a preemption that signals first): Slurm sends SIGUSR2
  `launcher.signal_delay_s` before it; submitit's checkpoint hook requeues the task
  (`launcher.requeue=true`), and the exit it asks for marks the trial interrupted the
  same way. A requeued task is a fresh worker: it takes the retry or the next trial.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.api import UserError

ACTIVE = {"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING",
          "COMPLETING", "RESIZING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"}


@dataclass(frozen=True)
class Array:
    """A submitted array job: what `sweeps status` needs to find it again."""

    job_id: str
    tasks: int
    log_dir: str

    def attrs(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "tasks": self.tasks, "log_dir": self.log_dir}


def preflight(launcher: Mapping[str, Any]) -> None:
    """What only Slurm can answer, asked before anything is written or submitted: are its
    commands here, and would it accept this job (`sbatch --test-only`: partition, account,
    QOS, time and resources, in Slurm's own words)."""
    for command in ("sbatch", "srun", "squeue", "scancel"):
        if shutil.which(command) is None:
            raise UserError(f"launcher=slurm: `{command}` is not on the PATH here; run the launch "
                            "on a login node of your Slurm cluster")
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in sbatch_options(launcher).items()]
    test = subprocess.run(["sbatch", "--test-only", f"--array=0-{launcher['workers'] - 1}",
                           f"--time={launcher['time']}", *flags, "--wrap", "true"],
                          capture_output=True, text=True, timeout=60)
    if test.returncode != 0:
        raise UserError(f"Slurm refused the job: {slurm_error(test.stderr or test.stdout)}")


def check_time(launcher: Mapping[str, Any], epoch_s: float | None) -> None:
    """A task must have time for an epoch before Slurm's warning (where one is measured)."""
    usable = launcher["time"] * 60 - launcher["signal_delay_s"]
    if epoch_s is not None and usable < epoch_s:
        raise UserError(f"launcher.time={launcher['time']}: {usable} s of it before Slurm's "
                        f"warning is shorter than one epoch of this sweep (about {epoch_s:.0f} s "
                        "on its finished trials); raise launcher.time")


def slurm_error(text: str) -> str:
    """The one line of Slurm's refusal that says why."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    line = (errors or lines or ["(no message)"])[-1]
    return re.sub(r"^(sbatch|srun|scancel): (error: )?", "", line)


def sbatch_options(launcher: Mapping[str, Any]) -> dict[str, Any]:
    """The resource options, as #SBATCH keys (what the test submission and the job share)."""
    opts: dict[str, Any] = {"cpus_per_task": launcher["cpus_per_task"]}
    for key in ("partition", "account", "qos"):
        if launcher[key]:
            opts[key] = launcher[key]
    if launcher["gpus_per_task"]:
        opts["gpus_per_task"] = launcher["gpus_per_task"]
    if launcher["mem_gb"]:
        opts["mem"] = f"{int(launcher['mem_gb'] * 1024)}M"
    opts.update({k.replace("-", "_"): v for k, v in dict(launcher["sbatch"]).items()})
    return opts


def submit(launcher: Mapping[str, Any], task: WorkerTask, name: str, log_root: Path) -> Array:
    """Submit `launcher.workers` tasks of `task` as one array job."""
    import submitit

    folder = Path(launcher["log_dir"] or log_root).resolve()
    executor = submitit.SlurmExecutor(folder=folder / "%j", max_num_timeout=launcher["max_requeues"],
                                      python=launcher["python"])
    opts = sbatch_options(launcher)
    known = {k: opts.pop(k) for k in ("partition", "account", "qos", "cpus_per_task", "gpus_per_task",
                                      "mem") if k in opts}
    extra = {k.replace("_", "-"): v for k, v in opts.items()}
    extra["requeue" if launcher["requeue"] else "no-requeue"] = True
    executor.update_parameters(
        job_name=f"sweeps-{name}", time=launcher["time"], signal_delay_s=launcher["signal_delay_s"],
        setup=list(launcher["setup"]), stderr_to_stdout=True, additional_parameters=extra,
        array_parallelism=launcher["array_parallelism"] or launcher["workers"], **known)
    try:
        jobs = executor.map_array(task, list(range(launcher["workers"])))
    except (submitit.core.utils.FailedJobError, submitit.core.utils.FailedSubmissionError) as err:
        raise UserError(f"Slurm refused the job: {slurm_error(str(err))}") from None
    job_id = str(jobs[0].job_id).split("_")[0]
    return Array(job_id, launcher["workers"], str(folder / f"{job_id}_*"))


def task_states(job_id: str) -> dict[str, tuple[str, str]] | None:
    """Task id -> (state, node or reason) of an array job; None where Slurm cannot be asked.

    From `sacct` where the cluster keeps accounting, else from `squeue --states=all`,
    which knows a finished task for slurmctld's MinJobAge (5 minutes by default)."""
    if shutil.which("squeue") is None:
        return None
    if shutil.which("sacct"):
        acct = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "JobID,State,NodeList"],
                              capture_output=True, text=True, timeout=30)
        if acct.returncode == 0 and acct.stdout.strip():
            return _parse(acct.stdout, job_id)
    queue = subprocess.run(["squeue", "-h", "-j", job_id, "--states=all", "-r", "-o", "%i|%T|%R"],
                           capture_output=True, text=True, timeout=30)
    if queue.returncode != 0:
        return {}  # the job is no longer known to Slurm
    return _parse(queue.stdout, job_id)


def _parse(text: str, job_id: str) -> dict[str, tuple[str, str]]:
    states: dict[str, tuple[str, str]] = {}
    for line in text.strip().splitlines():
        parts = line.strip().split("|")
        if len(parts) < 3 or not parts[0].startswith(f"{job_id}_"):
            continue
        task = parts[0].split("_", 1)[1]
        state = parts[1].split()[0]  # sacct: "CANCELLED by 0"
        states[task] = (state, parts[2])
    return states


def active(states: Mapping[str, tuple[str, str]] | None) -> int:
    return sum(state in ACTIVE for state, _ in (states or {}).values())


def describe(states: Mapping[str, tuple[str, str]] | None, array: Mapping[str, Any]) -> str:
    """One line per array: `Slurm job 12: 2 tasks RUNNING (0 on node1, 1 on node2)`."""
    head = f"Slurm job {array['job_id']} ({array['tasks']} tasks, logs in {array['log_dir']})"
    if states is None:
        return f"{head}: task states need `squeue`, which is not on this machine's PATH"
    if not states:
        return f"{head}: no longer known to Slurm (ended)"
    parts = [f"task {task} {state}" + (f" on {where}" if state == "RUNNING" else
                                       f" {where}" if where.startswith("(") and where != "(None)" else "")
             for task, (state, where) in sorted(states.items(), key=lambda kv: _task_key(kv[0]))]
    return f"{head}: " + ", ".join(parts)


def _task_key(task: str) -> tuple[int, str]:
    return (int(task), "") if task.isdigit() else (10**9, task)


def cancel(job_id: str) -> None:
    subprocess.run(["scancel", job_id], capture_output=True, timeout=60)


class WorkerTask:
    """One array task: a `sweeps worker` for the sweep, in this process (picklable)."""

    requeue = False

    def __init__(self, storage_url: str, sweep: str, storage_cfg: Mapping[str, Any],
                 tracking_uri: str | None, config_dir: str | None, cwd: str,
                 close_parent: bool = False) -> None:
        self.storage_url, self.sweep, self.storage_cfg = storage_url, sweep, dict(storage_cfg)
        self.tracking_uri, self.config_dir, self.cwd = tracking_uri, config_dir, cwd
        self.close_parent = close_parent  # a detached launch: no one else closes its run
        self.allowed_targets: tuple[str, ...] = ()  # the launch's own, as for its local workers

    def __call__(self, index: int) -> int:

        import optuna

        from sweeps.run import stopping
        from sweeps.run.worker import join
        from sweeps.store import logs, secrets
        from sweeps.store.owners import worker_id
        from trainer.api import importable_from_cwd

        # SIGTERM (scancel, preemption) marks the trial interrupted; so does SIGUSR2 (the
        # time limit's warning) where no requeue is wanted, instead of submitit's requeue
        stopping.install(*(() if self.requeue else (signal.SIGUSR2,)))
        logs.setup()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        # the heartbeat thread is ours (sweeps.run.heartbeat), not Study.optimize's
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        os.chdir(self.cwd)  # where the launch ran: relative paths and the user's package
        importable_from_cwd()
        task = f"{os.environ.get('SLURM_ARRAY_JOB_ID', '?')}_{os.environ.get('SLURM_ARRAY_TASK_ID', index)}"
        try:
            worker = join(secrets.with_secret(self.storage_url, ("SWEEPS_STORAGE",)), self.sweep,
                          self.storage_cfg, index=index,
                          tracking_uri=self.tracking_uri, config_dir=self.config_dir,
                          allowed_targets=self.allowed_targets)
            print(f"worker {worker_id()} (Slurm task {task}) joined sweep {worker.sweep}", flush=True)
            n = worker.run()
        except KeyboardInterrupt as err:
            print(f"stopped by {stopping.reason(err)}", flush=True)
            return 0
        print(f"nothing left to run; this worker ran {n} trial(s) or confirm run(s)", flush=True)
        if self.close_parent:
            close_parent_if_spent(worker.studies, worker.uri)
        return n


class RequeuingWorkerTask(WorkerTask):
    """A task that goes back into the queue at its time limit or a preemption signal:
    submitit calls `checkpoint` on SIGUSR2 and requeues what it returns (the same task:
    all a worker's state is in the sweep's storage and checkpoints)."""

    requeue = True

    def checkpoint(self, index: int) -> Any:
        import submitit

        # submitit's `scontrol requeue` makes Slurm send SIGTERM while the trial is being
        # marked interrupted by the exit that follows; that cleanup must run to its end
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        again = RequeuingWorkerTask(self.storage_url, self.sweep, self.storage_cfg, self.tracking_uri,
                                    self.config_dir, self.cwd, self.close_parent)
        again.allowed_targets = self.allowed_targets
        return submitit.helpers.DelayedSubmission(again, index)


def task_for(launcher: Mapping[str, Any], *args: Any) -> WorkerTask:
    return (RequeuingWorkerTask if launcher["requeue"] else WorkerTask)(*args)


def sweep_arrays(studies: Sequence[Any]) -> list[dict[str, Any]]:
    """The array jobs recorded on a sweep's studies, newest last."""
    seen: dict[str, dict[str, Any]] = {}
    for s in studies:
        for array in s.user_attrs.get("slurm_arrays") or []:
            seen[str(array["job_id"])] = array
    return list(seen.values())


def close_parent_if_spent(studies: Sequence[Any], uri: str | None) -> None:
    """A detached launch's run, closed with the best values by a task that finds the
    budget spent (closing it twice is harmless)."""
    from sweeps.report import summary
    from sweeps.search import budget
    from sweeps.tracking import runs as tracking_runs

    parent = studies[0].user_attrs.get("parent_run_id") if studies else None
    if parent and uri and budget.spent(studies):
        tracking_runs.finish_parent(uri, parent, "FINISHED", summary.best_metrics(studies))

"""`sweeps launch launcher=slurm`: submit the workers as an array job, then follow the sweep.

Following is what a local launch shows (the live table), plus the array's task states;
it ends when the budget is spent and the tasks have left, or when every task has ended
with budget left (their logs say why). Ctrl-C or SIGTERM cancels the array: each task
marks its running trial interrupted, and the next launch resumes them. `--detach`
returns once the job is queued; the launch's run is then closed by the task that finds
the budget spent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from sweeps.run import slurm_jobs, stopping
from sweeps.run.processes import Outcome
from sweeps.search import allowed_targets
from sweeps.search import budget as study_budget
from sweeps.store import secrets
from trainer.api import watchdog

POLL_S = 2.0
LEAVE_S = 120.0  # how long the tasks may take to exit once the budget is spent


def epoch_seconds(studies: Sequence[optuna.Study]) -> float | None:
    """The median seconds per epoch of a sweep's finished trials (None before any)."""
    import statistics

    from optuna.trial import TrialState

    per_epoch = [t.duration.total_seconds() / len(t.intermediate_values)
                 for s in studies for t in s.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                 if t.duration is not None and t.intermediate_values]
    return statistics.median(per_epoch) if per_epoch else None


def submit(p: Any, studies: Sequence[optuna.Study], console: Console, detach: bool) -> slurm_jobs.Array:
    """The array job of the sweep's workers, recorded on every study."""
    spec = p.spec
    # the task is pickled to a shared folder: its URLs go without passwords, which each task
    # takes from its environment ($SWEEPS_STORAGE, $MLFLOW_TRACKING_URI, ~/.pgpass, ...)
    storage_cfg = {**spec.storage, "url": secrets.strip(str(spec.storage.get("url", p.url)))}
    task = slurm_jobs.task_for(spec.launcher, secrets.strip(p.url), spec.name, storage_cfg,
                               secrets.strip(p.uri), spec.config_dir, str(Path.cwd()), detach)
    task.allowed_targets = tuple(sorted(allowed_targets.in_overrides(spec.overrides)))
    array = slurm_jobs.submit(spec.launcher, task, spec.name, Path(p.checkpoint_dir) / "slurm")
    for s in studies:
        s.set_user_attr("slurm_arrays", [*(s.user_attrs.get("slurm_arrays") or []), array.attrs()])
    console.print(f"submitted Slurm array job [bold]{array.job_id}[/]: {array.tasks} task(s) of "
                  f"`sweeps worker`, logs in {array.log_dir}", highlight=False, soft_wrap=True)
    return array


def follow(array: slurm_jobs.Array, studies: Sequence[optuna.Study],
           render: Callable[[], RenderableType], console: Console) -> Outcome:
    """Show the sweep and the array until both are done; Ctrl-C/SIGTERM cancels the array."""
    spent_at: float | None = None
    try:
        with Live(console=console, refresh_per_second=1) if console.is_terminal else _NoLive() as live:
            last = ""
            while True:
                watchdog.pet()
                states = slurm_jobs.task_states(array.job_id)
                view = Group(render(), Text(slurm_jobs.describe(states, array.attrs())))
                if live is not None:
                    live.update(view)
                else:
                    line = slurm_jobs.describe(states, array.attrs())
                    if line != last:
                        console.print(line, highlight=False, soft_wrap=True)
                        last = line
                if study_budget.spent(studies):
                    spent_at = spent_at or time.time()
                    if not slurm_jobs.active(states) or time.time() - spent_at > LEAVE_S:
                        return Outcome(False, [])
                elif states is not None and not slurm_jobs.active(states):
                    console.print(f"[red]every task of Slurm job {array.job_id} has ended[/] with "
                                  f"budget left; their logs are in {array.log_dir}", highlight=False)
                    return Outcome(False, [], gave_up=True)
                time.sleep(POLL_S)
    except KeyboardInterrupt as err:
        _cancel(array, studies, console, err)
        return Outcome(True, [], stop_code=stopping.exit_code(err))


def _cancel(array: slurm_jobs.Array, studies: Sequence[optuna.Study], console: Console,
            err: BaseException) -> None:
    """scancel, then wait (within the grace period) for the tasks to mark their trials."""
    slurm_jobs.cancel(array.job_id)
    end = time.time() + stopping.GRACE_S - 5
    while time.time() < end and slurm_jobs.active(slurm_jobs.task_states(array.job_id)):
        time.sleep(0.5)
    console.print(f"[yellow]{stopping.reason(err)}[/]: cancelled Slurm job {array.job_id}; its tasks "
                  "mark their running trials interrupted, and the same command resumes them",
                  highlight=False, soft_wrap=True)


class _NoLive:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None

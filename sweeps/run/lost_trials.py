"""Trials whose worker is gone: failed with the reason, in Optuna and in MLflow.

A local worker that died or was stopped (Ctrl-C), or a remote one whose heartbeats
stopped (Optuna's stale-trial callback): its RUNNING trial is failed without a recorded
state, so it does not count toward the budget and is retried from its checkpoint.
"""

from __future__ import annotations

import datetime
import socket
from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeps.search.studies import run_id
from sweeps.store.owners import pid_alive


def on_stale_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    """Optuna failed a trial whose worker stopped sending heartbeats: mirror it to MLflow,
    from the background thread (an MLflow outage must not stall the worker that noticed)."""
    uri = study.user_attrs.get("tracking_uri")
    if uri is not None:
        from sweeps.tracking.runs import mark_trial_runs
        from sweeps.tracking.writer import Background

        Background().submit(mark_trial_runs, uri, str(study.user_attrs.get("sweep", study.study_name)),
                            study.study_name, trial.number, "failed", "worker died (no heartbeat)",
                            run_id(study, trial))


def fail_trial(study: optuna.Study, trial: FrozenTrial, reason: str) -> None:
    """Mark a RUNNING trial failed with a reason (and mirror it to its MLflow run)."""
    storage = study._storage
    try:
        storage.set_trial_user_attr(trial._trial_id, "failure_reason", reason)
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
        return  # finished meanwhile
    run = run_id(study, trial)
    uri = study.user_attrs.get("tracking_uri")
    if run and uri is not None:
        from sweeps.tracking.runs import mark_run

        mark_run(uri, run, "failed", reason)


def fail_dead_local_trials(studies: Sequence[optuna.Study], pids: set[int] | None = None,
                           reason: str = "worker died") -> list[FrozenTrial]:
    """Fail RUNNING trials whose worker ran on this host and is gone (or is in `pids`)."""
    host = socket.gethostname()
    failed = []
    for study in studies:
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            owner = str(t.user_attrs.get("worker", ""))
            h, _, pid_text = owner.rpartition(":")
            if h != host or not pid_text.isdigit():
                continue
            pid = int(pid_text)
            if (pids is not None and pid in pids) or (pids is None and not pid_alive(pid)):
                fail_trial(study, t, reason)
                failed.append(t)
    return failed


def interrupted_by(studies: Sequence[optuna.Study], workers: set[str],
                   since: datetime.datetime | None = None) -> list[FrozenTrial]:
    """The trials these workers (``host:pid`` tags) left failed as interrupted, started at or
    after `since` (a PID seen before, in an earlier launch of a container, is not this one)."""
    return [t for study in studies for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
            if t.user_attrs.get("worker") in workers
            and (since is None or (t.datetime_start is not None and t.datetime_start >= since))
            and str(t.user_attrs.get("failure_reason", "")).startswith("interrupted")]

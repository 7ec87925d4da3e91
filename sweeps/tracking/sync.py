"""`sweeps sync`: write into MLflow what it is missing, from the Optuna record.

The Optuna storage is the source of truth: every finished trial and confirm run holds its
config, sampled params, per-epoch curves and final metrics as user attributes. When the
tracking server stayed away longer than `tracking.patience_s`, some runs were never created,
or stopped short (curves cut off, still RUNNING). This command makes MLflow whole again:

* a finished trial without a run gets one (tagged ``sweeps.synced``); runs are matched by
  their study, trial number (and seed) tags, so syncing twice creates nothing twice, and a
  run the server received after its trial had finished is completed, not duplicated;
* a run with fewer epoch points than the trial's curves gets the missing ones;
* a run left RUNNING for a finished trial is closed with the trial's state.

Per-step records (``batch/*``) are not in the Optuna record and are not rebuilt.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeps.search import studies as study_mod
from sweeps.search.budget import OWN_FAILURES
from sweeps.store import owners
from sweeps.tracking import clients, outage
from sweeps.tracking import params as tracking_params
from sweeps.tracking import runs as tracking_runs
from trainer.api import watchdog

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass
class SyncResult:
    created: int = 0
    completed: int = 0  # runs that got missing epochs or were closed
    intact: int = 0
    skipped: int = 0  # failed before training (no config): nothing to write


def _parent_config(uri: str, parent: str | None) -> dict[str, str] | None:
    """The config the launch's parent run holds, which a rebuilt trial run leaves out (None
    where that run is gone: the trial's run then gets its whole config)."""
    if not parent:
        return None
    try:
        return tracking_params.config_part(clients.client(uri).get_run(parent).data.params)
    except Exception as err:
        if outage.unreachable(err):
            raise
        return None


def _state(t: FrozenTrial) -> str:
    if t.state == TrialState.COMPLETE:
        return "complete"
    if t.state == TrialState.PRUNED:
        return "pruned"
    own = t.user_attrs.get("state")  # "complete" here: its worker died before telling Optuna
    return str(own) if own in OWN_FAILURES else "failed"


def _known_runs(uri: str, sweep: str) -> tuple[dict[tuple[str, str, str], str], dict[str, str]]:
    """Every trial and confirm run in MLflow: (study, trial, seed) -> run id, for those an
    earlier `sweeps sync` created and those created after their trial had finished (the
    server came back too late for the run id to reach Optuna), the newest winning; and
    run id -> status."""
    c = clients.client(uri)
    exp = c.get_experiment_by_name(sweep)
    if exp is None:
        return {}, {}
    runs = c.search_runs([exp.experiment_id], max_results=50000,
                         order_by=["attributes.start_time DESC"])
    known: dict[tuple[str, str, str], str] = {}
    status: dict[str, str] = {}
    for r in runs:
        tags = r.data.tags
        if tags.get("sweeps.kind") not in ("trial", "confirm"):
            continue
        key = (tags.get("sweeps.study", ""), tags.get("sweeps.trial", ""),
               tags.get("sweeps.seed", "") if tags.get("sweeps.kind") == "confirm" else "")
        known.setdefault(key, r.info.run_id)
        status[r.info.run_id] = r.info.status
    return known, status


def _worker_gone(t: FrozenTrial) -> bool:
    """The trial's worker ran on this host and has exited: whatever MLflow writes it had
    queued are lost, and nobody else will send them."""
    host, _, pid = str(t.user_attrs.get("worker", "")).rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and not owners.pid_alive(int(pid))


def _epoch_metrics(t: FrozenTrial) -> dict[str, list[float | None]]:
    curves = t.user_attrs.get("curves") or {}
    return {k: list(v) for k, v in curves.items() if isinstance(v, list)}


def _missing_points(uri: str, run_id: str, curves: Mapping[str, Sequence[float | None]]) -> list[Any]:
    from mlflow.entities import Metric

    c = clients.client(uri)
    now = int(time.time() * 1000)
    out = []
    for key, values in curves.items():
        have = {m.step for m in c.get_metric_history(run_id, key)}
        out += [Metric(key, float(v), now, epoch) for epoch, v in enumerate(values, 1)
                if v is not None and epoch not in have]
    return out


def _write_run(uri: str, run_id: str, t: FrozenTrial, metrics: list[Any], state: str) -> None:
    from mlflow.entities import Metric

    c = clients.client(uri)
    now = int(time.time() * 1000)
    final = t.user_attrs.get("final") or {}
    epochs = int(t.user_attrs.get("epochs") or 0)
    metrics = metrics + [Metric(k, float(v), now, epochs) for k, v in final.items() if v is not None]
    for i in range(0, len(metrics), 1000):
        outage.patiently(c.log_batch, run_id, metrics=metrics[i:i + 1000])
    reason = t.user_attrs.get("failure_reason") or t.user_attrs.get("pruned_reason")
    tracking_runs.end_trial(uri, run_id, state, reason, t.value if t.state == TrialState.COMPLETE else None)


def sync(studies: Sequence[optuna.Study], confirm: optuna.Study | None, uri: str,
         sweep: str, *, dead_local_only: bool = False) -> SyncResult:
    """Make MLflow whole from the Optuna record. `dead_local_only` (the end of a launch):
    only trials whose worker on this host has exited, and only runs missing or left
    RUNNING (a run its worker closed had all its writes before the close): one search,
    then work only where something is missing."""
    result = SyncResult()
    known, status = _known_runs(uri, sweep)
    parent = studies[0].user_attrs.get("parent_run_id") if studies else None
    jobs: list[tuple[optuna.Study, FrozenTrial, str]] = [
        (s, t, "trial") for s in studies for t in s.get_trials(deepcopy=False, states=FINISHED)]
    if confirm is not None:
        jobs += [(confirm, t, "confirm") for t in confirm.get_trials(deepcopy=False, states=FINISHED)]
    if dead_local_only:
        jobs = [(s, t, kind) for s, t, kind in jobs if _worker_gone(t)]
    c = clients.client(uri)
    constant = _parent_config(uri, parent)
    for study, t, kind in jobs:
        watchdog.pet()
        config = t.user_attrs.get("config")
        if not isinstance(config, dict):
            result.skipped += 1
            continue
        curves = _epoch_metrics(t)
        state = _state(t)
        optimizer = str(t.user_attrs.get("optimizer") or study.user_attrs.get("optimizer") or "")
        source_study = str(t.user_attrs.get("source_study", study.study_name))
        number = int(t.user_attrs.get("source_trial", t.number))
        seed = str(t.user_attrs.get("seed", "")) if kind == "confirm" else ""
        run_id = study_mod.run_id(study, t) or known.get((source_study, str(number), seed))
        if dead_local_only and run_id is not None and status.get(run_id, "RUNNING") != "RUNNING":
            result.intact += 1
            continue
        if run_id is None:
            tags = {"sweeps.synced": "true"}
            name = None
            if kind == "confirm":
                tags.update({"sweeps.seed": seed, "sweeps.confirms": str(t.user_attrs.get(
                    "source_run_id", ""))})
                name = tracking_runs.run_name(optimizer, number, f"seed {seed}")
            run_id = tracking_runs.start_trial(uri, sweep, parent, source_study, number, optimizer,
                                          config, t.params, str(t.user_attrs.get("device", "")),
                                          kind=kind, name=name, extra_tags=tags,
                                          constant=constant)
            study.set_user_attr(f"{study_mod.LATE_RUN_ATTR}{t.number}", run_id)  # see studies.run_id
            _write_run(uri, run_id, t, _missing_points(uri, run_id, curves), state)
            result.created += 1
            continue
        run = c.get_run(run_id)
        missing = _missing_points(uri, run_id, curves)
        if missing or run.info.status == "RUNNING":
            _write_run(uri, run_id, t, missing, state)
            result.completed += 1
        else:
            result.intact += 1
    return result

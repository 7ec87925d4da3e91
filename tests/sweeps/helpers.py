"""Reading what a sweep left in its stores, for assertions."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState


def journal_trials(path: Path, sweep: str = "quick") -> dict[str, list[FrozenTrial]]:
    from sweeps.search.studies import sweep_studies
    from sweeps.store.storages import open_storage

    storage = open_storage(str(path))
    return {s.study_name: s.get_trials(deepcopy=False) for s in sweep_studies(storage, sweep)}


def mlflow_runs(uri: str, experiment: str = "quick") -> list[Any]:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], max_results=1000) if exp else []


def wait_for(predicate, timeout: float = 120.0, interval: float = 0.5) -> Any:
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


def running_trial(path: Path) -> FrozenTrial | None:
    if not path.exists():
        return None
    try:
        trials = journal_trials(path)
    except Exception:
        return None
    for ts in trials.values():
        for t in ts:
            if t.state == TrialState.RUNNING and "mlflow_run_id" in t.user_attrs:
                return t
    return None


def state_counts(trials: dict[str, list[FrozenTrial]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for ts in trials.values():
        for t in ts:
            out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def recovery_figures(trials: list[FrozenTrial]) -> tuple[list[FrozenTrial], int, str]:
    """What the chaos tests print and check: the completed trials, the epochs actually
    trained (a resumed retry's replayed epochs not counted twice), and a line saying so."""
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    retries = [t for t in done if "retry_of" in t.user_attrs]
    trained = sum(len(t.intermediate_values) - int(t.user_attrs.get("resumed_from_epoch", 0))
                  for t in trials)
    line = (f"{len(done)} complete, {len(retries)} retried and resumed from epochs "
            f"{[t.user_attrs.get('resumed_from_epoch') for t in retries]}, {trained} epochs trained")
    return done, trained, line


__all__ = ["journal_trials", "mlflow_runs", "optuna", "recovery_figures", "running_trial", "state_counts",
           "wait_for"]


def process_gone(pid: int) -> bool:
    """Whether process `pid` has ended (a zombie not yet reaped by PID 1 counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True

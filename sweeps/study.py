"""The sweep's Optuna studies: create or resume, check compatibility, count the budget.

The Optuna study is the source of truth for trial state. Each study carries, as user
attributes, what a worker on another machine needs to join: the sweep's overrides, its
search space, the objective, the MLflow tracking URI and the current parent run.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeps.config import SweepSpec
from trainer.config import flatten
from trainer.errors import UserError

DIRECTION = "maximize"
UNCOUNTED_REASONS = ("interrupted", "worker died")
# config keys that may change between launches of the same study without invalidating it
NEUTRAL_KEYS = {"trainer.progress", "trainer.threads", "trainer.output_dir", "trainer.resume",
                "trainer.device", "dataset.data_root", "dataset.download"}


def _differences(old: Mapping[str, Any], new: Mapping[str, Any],
                 skip: frozenset[str] | set[str] = frozenset()) -> list[str]:
    a, b = flatten(old), flatten(new)
    return [f"{k}: {a.get(k)!r} there, {b.get(k)!r} now"
            for k in sorted(set(a) | set(b)) if k not in skip and a.get(k) != b.get(k)]


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return [s.study_name for s in storage.get_all_studies()]


def check_compatible(storage: optuna.storages.BaseStorage, spec: SweepSpec) -> None:
    """Refuse a launch whose studies exist with another direction, space or objective."""
    existing = {s.study_name: s for s in storage.get_all_studies()}
    for s in existing.values():
        mode = s.user_attrs.get("mode")
        if s.user_attrs.get("sweep") == spec.name and mode and mode != spec.mode:
            raise UserError(f"sweep {spec.name!r} exists in {mode} mode (study {s.study_name!r}); "
                            f"a {spec.mode} sweep needs another sweep.name")
    for st in spec.studies:
        if st.name not in existing:
            continue
        frozen = existing[st.name]
        direction = frozen.direction.name.lower()
        if direction != DIRECTION:
            raise UserError(f"study {st.name!r} exists with direction {direction}; this sweep "
                            f"{DIRECTION}s val/acc: use another sweep.name")
        attrs = frozen.user_attrs
        diffs = _differences(attrs.get("search_space", {}), _jsonable(st.space.describe()))
        if diffs:
            raise UserError(f"study {st.name!r} exists with a different search space "
                            f"({'; '.join(diffs[:3])}): use another sweep.name or the same space")
        if attrs.get("objective", spec.objective) != spec.objective:
            raise UserError(f"study {st.name!r} exists with objective {attrs['objective']!r}, "
                            f"not {spec.objective!r}: use another sweep.name")
        diffs = _differences(attrs.get("base_config", {}), _jsonable(st.base), NEUTRAL_KEYS)
        if diffs:
            raise UserError(f"study {st.name!r} exists with a different fixed trainer config "
                            f"({'; '.join(diffs[:3])}): use another sweep.name")


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def create_studies(storage: optuna.storages.BaseStorage, spec: SweepSpec,
                   tracking_uri: str) -> None:
    """Create (or resume) every study of the sweep and record how to join it."""
    import time

    launched_at = time.time()
    for index, st in enumerate(spec.studies):
        study = optuna.create_study(storage=storage, study_name=st.name, direction=DIRECTION,
                                    load_if_exists=True)
        attrs = {
            "sweep": spec.name, "optimizer": st.optimizer, "mode": spec.mode, "index": index,
            "search_space": _jsonable(st.space.describe()), "objective": spec.objective,
            "base_config": _jsonable(st.base), "budget": st.budget,
            "sweep_overrides": list(spec.overrides), "tracking_uri": tracking_uri,
            "launched_at": launched_at,
            "deadline": launched_at + spec.timeout if spec.timeout else None,
        }
        for key, value in attrs.items():
            if study.user_attrs.get(key) != value:
                study.set_user_attr(key, value)


def sweep_studies(storage: optuna.storages.BaseStorage, sweep: str) -> list[optuna.Study]:
    """The studies that belong to sweep `sweep` (or the single study named so)."""
    summaries = storage.get_all_studies()
    names = [s.study_name for s in summaries if s.user_attrs.get("sweep") == sweep]
    if not names and any(s.study_name == sweep for s in summaries):
        names = [sweep]
    summaries_by_name = {s.study_name: s for s in summaries}
    names.sort(key=lambda n: summaries_by_name[n].user_attrs.get("index", 0))
    return [optuna.load_study(study_name=n, storage=storage) for n in names]


def sweep_names(storage: optuna.storages.BaseStorage) -> list[str]:
    seen: list[str] = []
    for s in storage.get_all_studies():
        name = s.user_attrs.get("sweep")
        if name and name not in seen:
            seen.append(name)
    return seen


def counts_toward_budget(t: FrozenTrial) -> bool:
    """Finished or running trials use the budget; failures of the infrastructure do not.

    A trial our worker finished has a ``state`` attribute; one failed from outside (Ctrl-C,
    a dead local worker, a missing heartbeat on a database storage) does not, or says why.
    """
    if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING):
        return True
    if t.state == TrialState.FAIL:
        reason = str(t.user_attrs.get("failure_reason", ""))
        return "state" in t.user_attrs and not reason.startswith(UNCOUNTED_REASONS)
    return False


def on_stale_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    """Optuna failed a trial whose worker stopped sending heartbeats: mirror it to MLflow."""
    run_id = trial.user_attrs.get("mlflow_run_id")
    uri = study.user_attrs.get("tracking_uri")
    if run_id and uri is not None:
        from sweeps.tracking import mark_run

        mark_run(uri, run_id, "failed", "worker died (no heartbeat)")


def used_budget(study: optuna.Study) -> int:
    return sum(counts_toward_budget(t) for t in study.get_trials(deepcopy=False))


def finished(study: optuna.Study) -> int:
    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(t.state in done and counts_toward_budget(t) for t in study.get_trials(deepcopy=False))


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_trial(study: optuna.Study, trial: FrozenTrial, reason: str) -> None:
    """Mark a RUNNING trial failed with a reason (and mirror it to its MLflow run)."""
    storage = study._storage
    try:
        storage.set_trial_user_attr(trial._trial_id, "failure_reason", reason)
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
        return  # finished meanwhile
    run_id = trial.user_attrs.get("mlflow_run_id")
    uri = study.user_attrs.get("tracking_uri")
    if run_id and uri is not None:
        from sweeps.tracking import mark_run

        mark_run(uri, run_id, "failed", reason)


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
            if (pids is not None and pid in pids) or (pids is None and not _pid_alive(pid)):
                fail_trial(study, t, reason)
                failed.append(t)
    return failed

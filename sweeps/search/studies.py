"""The sweep's Optuna studies: create or resume, check compatibility, find them again.

The Optuna study is the source of truth for trial state. Each study carries, as user
attributes, what a worker on another machine needs to join: the sweep's overrides, its
search space, the objective, the MLflow tracking URI and the current parent run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial

from sweeps.search import boundary
from sweeps.search.spec import is_name
from sweeps.store import secrets, urls
from sweeps.store.quiet import quietly
from sweeps.store.storages import open_storage
from trainer.api import TASKS, Task, UserError

if TYPE_CHECKING:  # the read-only commands import this module: keep torch out of it
    from sweeps.search.spec import SweepSpec


def sweep_task(studies: Sequence[Any]) -> Task:
    """What the sweep's studies optimise (a study of an earlier release: classification)."""
    name = next((s.user_attrs.get("task") for s in studies if s.user_attrs.get("task")), None)
    return TASKS[name or "classification"]


# config keys that may change between launches of the same study without invalidating it
# (log_every only thins the batch/* records: a sweep begun at 10 resumes under auto)
NEUTRAL_KEYS = {"trainer.progress", "trainer.threads", "trainer.output_dir", "trainer.resume",
                "trainer.device", "dataset.data_root", "dataset.download", "trainer.log_every"}


def _differences(old: Mapping[str, Any], new: Mapping[str, Any],
                 skip: frozenset[str] | set[str] = frozenset()) -> list[str]:
    from trainer.api import flatten

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
        if direction != spec.task.direction:
            raise UserError(f"study {st.name!r} exists with direction {direction}; this sweep "
                            f"{spec.task.direction}s {spec.task.val_key}: use another sweep.name")
        attrs = frozen.user_attrs
        diffs = _differences(attrs.get("search_space", {}), _jsonable(st.space.describe()))
        if diffs:
            raise UserError(f"study {st.name!r} exists with a different search space "
                            f"({'; '.join(diffs[:3])}): use another sweep.name or the same space")
        if attrs.get("objective", spec.objective) != spec.objective:
            raise UserError(f"study {st.name!r} exists with objective {attrs['objective']!r}, "
                            f"not {spec.objective!r}: use another sweep.name")
        diffs = _differences(_today(attrs.get("base_config", {})), _jsonable(st.base), NEUTRAL_KEYS)
        if diffs:
            raise UserError(f"study {st.name!r} exists with a different fixed trainer config "
                            f"({'; '.join(diffs[:3])}): use another sweep.name")


def _today(base: Mapping[str, Any]) -> Any:
    """A stored base config in today's shape (one of an earlier release has no `_target_`s
    and no defaults filled in), so that only real differences refuse a resumed launch."""
    from trainer.api import GROUPS, upgrade, with_defaults

    if not all(isinstance(base.get(g), Mapping) for g in ("trainer", *GROUPS)):
        return base
    data = upgrade(base)
    data["dataset"] = with_defaults(data["dataset"])
    return _jsonable(data)


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def create_studies(storage: optuna.storages.BaseStorage, spec: SweepSpec,
                   tracking_uri: str, checkpoint_dir: str | None = None) -> None:
    """Create (or resume) every study of the sweep and record how to join it."""
    import time

    launched_at = time.time()
    for index, st in enumerate(spec.studies):
        study = optuna.create_study(storage=storage, study_name=st.name,
                                    direction=spec.task.direction, load_if_exists=True)
        attrs = {
            "optimizer": st.optimizer, "mode": spec.mode, "index": index,
            "search_space": _jsonable(st.space.describe()), "objective": spec.objective,
            "base_config": _jsonable(st.base), "budget": st.budget,
            # without passwords: anyone who reads the storage would read them (secrets.strip)
            "sweep_overrides": secrets.strip_all(spec.overrides), "tracking_uri": secrets.strip(tracking_uri),
            "launched_at": launched_at, "checkpoint_dir": checkpoint_dir,
            "task": spec.task.name, "config_dir": spec.config_dir,
            "deadline": launched_at + spec.timeout if spec.timeout else None,
            "fixed_edges": boundary.fixed_edges_of(st.space.dims, st.base, str(st.optimizer),
                                                   st.bases),
        }
        name_objective(study, spec.task)
        # "sweep" last: it is what makes the study part of the sweep for `sweep_studies`, so a
        # worker that joins while the launch is still writing never sees half a record
        for key, value in [*attrs.items(), ("sweep", spec.name)]:
            if study.user_attrs.get(key) != value:
                study.set_user_attr(key, value)


def name_objective(study: optuna.Study, task: Task) -> None:
    """optuna-dashboard labels the objective with it (val/acc, val/loss), not "Objective 0"."""
    if study.metric_names != [task.val_key]:
        quietly(study.set_metric_names, [task.val_key])  # "experimental" since Optuna 3.2


SEARCH_KIND, CONFIRM_KIND = "search", "confirm"


def is_search(summary: Any) -> bool:
    """Search studies hold the sweep's trials; the confirm study holds seed re-runs of them."""
    return summary.user_attrs.get("kind", SEARCH_KIND) == SEARCH_KIND


def sweep_studies(storage: optuna.storages.BaseStorage, sweep: str) -> list[optuna.Study]:
    """The search studies that belong to sweep `sweep` (or the single study named so).

    Only studies whose record is complete: the launch writes the "sweep" attribute last, so
    a study without it (a joint-mode study is named like its sweep) is still being written."""
    # names read back from the storage are held to the rule for names given on the command
    # line: a study named "../../x" is no study of any sweep (names become folders)
    summaries = [s for s in storage.get_all_studies() if is_search(s) and "sweep" in s.user_attrs
                 and is_name(s.study_name) and is_name(s.user_attrs["sweep"])]
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
        if is_name(name) and is_name(s.study_name) and name not in seen:
            seen.append(str(name))
    return seen


LATE_RUN_ATTR = "mlflow_run_id:"  # + trial number: a study attribute, see `run_id`


def run_id(study: optuna.Study, trial: FrozenTrial | optuna.Trial) -> str | None:
    """The MLflow run of a trial. Normally a trial attribute; a run the tracking server
    created only after its trial had finished (an outage) is recorded on the study instead,
    since Optuna does not let a finished trial change."""
    found = trial.user_attrs.get("mlflow_run_id")
    return found or study.user_attrs.get(f"{LATE_RUN_ATTR}{trial.number}")


def record_run_id(study: optuna.Study, trial: optuna.Trial, run: str) -> None:
    try:
        trial.set_user_attr("mlflow_run_id", run)
    except optuna.exceptions.UpdateFinishedTrialError:  # told meanwhile: the server was away
        study.set_user_attr(f"{LATE_RUN_ATTR}{trial.number}", run)


def latest_attrs(studies: Sequence[optuna.Study]) -> dict[str, Any]:
    """The study attributes the latest launch wrote (tracking URI, parent run, deadline)."""
    return dict(max(studies, key=lambda s: s.user_attrs.get("launched_at", 0.0)).user_attrs)


def open_sweep(url: str, name: str | None) -> tuple[str, list[optuna.Study]]:
    """A sweep's name and its search studies, read from the storage at `url`; `name` None:
    the storage's only sweep. Writes nothing (a storage without sweeps is not created)."""
    if not urls.is_database(url):  # a database: its opening says, in one line, why it cannot be read
        urls.check_reachable(url)
    if not urls.exists(url):
        raise UserError(f"no sweeps yet in {urls.redact(url)}; start one with `sweeps launch`")
    storage = open_storage(url, create=False)  # a mistyped URL is left as it was
    names = sweep_names(storage)
    if name is None:
        if len(names) != 1:
            example = names[0] if names else "quick"
            raise UserError(f"which sweep? {urls.redact(url)} holds: "
                            f"{', '.join(names) or 'none'}; name one, e.g. `sweeps status {example}`")
        name = names[0]
    studies = sweep_studies(storage, name)
    if not studies:
        raise UserError(f"no sweep {name!r} in {urls.redact(url)} "
                        f"(sweeps there: {', '.join(names) or 'none'})")
    return name, studies


def config_dir_for(studies: Sequence[optuna.Study], given: str | None = None) -> str | None:
    """The config dir to compose the sweep's configs with: `given` (the caller's), else the
    one the sweep was launched with where it exists on this machine, else None."""
    from pathlib import Path

    if given is not None:
        return given
    recorded = recorded_config_dir(studies)
    return recorded if recorded and Path(recorded).is_dir() else None


def recorded_config_dir(studies: Sequence[optuna.Study]) -> str | None:
    """The config dir the sweep was launched with (None: it had none)."""
    recorded = latest_attrs(studies).get("config_dir") if studies else None
    return str(recorded) if recorded else None

"""Seed re-runs of the best configurations: what `sweeps confirm` queues and what it found.

A search ranks configurations on one seed each, and its winners are partly winners by
luck. `sweeps confirm` re-runs each optimizer's top-N configurations with K new seeds
(model init and data order; the validation split is fixed by ``dataset.split_seed``).
The seeds are the same list for every optimizer, ``search seed + 1 .. + K``, so that
comparisons are paired, and exclude the search's own seed, whose result selected the
configuration (re-using it would re-use that luck).

The re-runs are jobs in one more Optuna study per sweep, ``NAME.confirm``: each job is
an enqueued trial whose user attributes say which trial, which seed and which config;
workers pop them with ``study.ask()`` (Optuna hands a WAITING trial to exactly one
worker, also across machines on PostgreSQL). Finished jobs are reused: a second call,
or a larger K, only queues what is missing.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeps.search import budget as study_budget
from sweeps.search import studies as study_mod
from sweeps.store import claim_queries

DEFAULT_SEEDS = 5
DEFAULT_TOP = 1
SUFFIX = "confirm"


def study_name(sweep: str) -> str:
    return f"{sweep}.{SUFFIX}"


def load(storage: optuna.storages.BaseStorage, sweep: str) -> optuna.Study | None:
    """The sweep's confirm study, or None before the first `sweeps confirm`."""
    name = claim_queries.study_named_by(storage, {"kind": study_mod.CONFIRM_KIND, "sweep": sweep})
    return None if name is None else optuna.load_study(study_name=name, storage=storage)


def open_or_create(storage: optuna.storages.BaseStorage, sweep: str,
                   search: Sequence[optuna.Study]) -> optuna.Study:
    """The confirm study, created if needed, carrying what a remote worker needs to join (the
    latest launch's parent run and tracking store); writes only what changed."""
    task = study_mod.sweep_task(search)
    study = load(storage, sweep) or optuna.create_study(
        storage=storage, study_name=study_name(sweep), direction=task.direction)
    latest = study_mod.latest_attrs(search)
    attrs = {"sweep": sweep, "kind": study_mod.CONFIRM_KIND,
             "tracking_uri": latest.get("tracking_uri"),
             "parent_run_id": latest.get("parent_run_id"), "objective": latest.get("objective"),
             "task": task.name}
    for key, value in attrs.items():
        if study.user_attrs.get(key) != value:
            study.set_user_attr(key, value)
    study_mod.name_objective(study, task)
    return study


def seeds_for(search_seed: int, k: int) -> list[int]:
    """The confirm seeds: the same K for every optimizer, never the search's own seed."""
    return [search_seed + i for i in range(1, k + 1)]


@dataclass(frozen=True)
class Job:
    """One re-run: trial `trial` of search study `study`, with seed `seed`."""

    study: str
    trial: int
    optimizer: str
    seed: int
    run_id: str  # the MLflow run of the original trial

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.study, self.trial, self.seed)

    def attrs(self) -> dict[str, Any]:
        return {"kind": study_mod.CONFIRM_KIND, "source_study": self.study,
                "source_trial": self.trial, "optimizer": self.optimizer, "seed": self.seed,
                "source_run_id": self.run_id}

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> Job:
        return cls(str(attrs["source_study"]), int(attrs["source_trial"]), str(attrs["optimizer"]),
                   int(attrs["seed"]), str(attrs.get("source_run_id", "")))


def job_config(config: Mapping[str, Any], seed: int, threads: int) -> dict[str, Any]:
    """The original trial's resolved config with the new seed (and this worker's threads)."""
    cfg = copy.deepcopy(dict(config))
    cfg["trainer"] = {**cfg["trainer"], "seed": int(seed), "threads": int(threads),
                      "output_dir": None, "resume": None, "progress": False}
    return cfg


def optimizer_of(study: optuna.Study, t: FrozenTrial) -> str:
    return str(t.user_attrs.get("optimizer") or study.user_attrs.get("optimizer"))


Ranked = dict[str, list[tuple[optuna.Study, FrozenTrial]]]


def top_trials(studies: Sequence[optuna.Study], top: int) -> Ranked:
    """Each optimizer's `top` completed trials that recorded their config, best first (ties:
    the earlier trial). Configs are looked at best first, only until `top` are found: a
    large sweep's views read few of them (`sweeps.store.trial_reads.Deferred`)."""
    per: Ranked = {}
    for study in studies:
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if t.value is not None:
                per.setdefault(optimizer_of(study, t), []).append((study, t))

    def rank(st: tuple[optuna.Study, FrozenTrial]) -> tuple[float, int]:
        better_first = -1.0 if st[0].direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
        return better_first * float(st[1].value), st[1].number  # type: ignore[arg-type]

    out: Ranked = {}
    for opt, ranked in per.items():
        chosen: list[tuple[optuna.Study, FrozenTrial]] = []
        for st in sorted(ranked, key=rank):
            if len(chosen) == top:
                break
            if isinstance(st[1].user_attrs.get("config"), dict):
                chosen.append(st)
        if chosen:
            out[opt] = chosen
    return out


def job_state(t: FrozenTrial) -> str:
    """done (a result, diverged included) | queued (waiting or running) | lost (to re-queue)."""
    if t.state == TrialState.COMPLETE:
        return "done"
    if t.state in (TrialState.WAITING, TrialState.RUNNING):
        return "queued"
    if t.state == TrialState.FAIL and study_budget.counts_toward_budget(t):
        return "done"  # it failed by itself (diverged, crashed): that is its result
    return "lost"  # interrupted, its worker died: run it again


@dataclass
class Plan:
    seeds: list[int]
    jobs: list[Job]
    done: list[Job] = field(default_factory=list)
    queued: list[Job] = field(default_factory=list)
    missing: list[Job] = field(default_factory=list)
    without_trials: list[str] = field(default_factory=list)  # optimizers with nothing to confirm


def plan(studies: Sequence[optuna.Study], existing: optuna.Study | None, top: int, k: int,
         optimizers: Sequence[str]) -> Plan:
    """Which re-runs the request needs, and which of them exist already."""
    search_seed = _search_seed(studies)
    seeds = seeds_for(search_seed, k)
    chosen = top_trials(studies, top)
    jobs = [Job(study.study_name, t.number, opt, seed, study_mod.run_id(study, t) or "")
            for opt in optimizers for study, t in chosen.get(opt, []) for seed in seeds]
    states: dict[tuple[str, int, int], str] = {}
    if existing is not None:
        for t in existing.get_trials(deepcopy=False):
            if "source_study" not in t.user_attrs:
                continue
            key = Job.from_attrs(t.user_attrs).key
            state = job_state(t)
            if states.get(key) not in ("done", "queued"):  # a later re-queue supersedes a lost one
                states[key] = state
    out = Plan(seeds, jobs, without_trials=[o for o in optimizers if o not in chosen])
    for job in jobs:
        {"done": out.done, "queued": out.queued}.get(states.get(job.key, "lost"), out.missing).append(job)
    return out


def _search_seed(studies: Sequence[optuna.Study]) -> int:
    base = studies[0].user_attrs.get("base_config") or {}
    return int((base.get("trainer") or {}).get("seed", 0))


def enqueue(confirm: optuna.Study, jobs: Sequence[Job], studies: Sequence[optuna.Study]) -> None:
    """Queue the re-runs; each carries the original trial's resolved config and params."""
    by_key = {(s.study_name, t.number): t for s in studies for t in s.get_trials(deepcopy=False)}
    for job in jobs:
        source = by_key[(job.study, job.trial)]
        confirm.enqueue_trial({}, user_attrs={**job.attrs(), "config": source.user_attrs["config"],
                                              "params": dict(source.params)})


def results(confirm: optuna.Study | None) -> dict[tuple[str, int], list[FrozenTrial]]:
    """Finished re-runs per original (study, trial), in seed order; one per seed."""
    out: dict[tuple[str, int], dict[int, FrozenTrial]] = {}
    if confirm is None:
        return {}
    for t in confirm.get_trials(deepcopy=False):
        if "source_study" not in t.user_attrs or job_state(t) != "done":
            continue
        job = Job.from_attrs(t.user_attrs)
        out.setdefault((job.study, job.trial), {})[job.seed] = t
    return {key: [by_seed[s] for s in sorted(by_seed)] for key, by_seed in out.items()}

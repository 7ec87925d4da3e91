"""Which job a worker runs next: a queued confirm run, a retry, or a new search trial.

Every claim is made under the sweep's budget lock ("is there budget left? then the trial's row"), so
concurrent workers on any number of machines never overshoot `n_trials` and never take
the same job twice. Retries come first: a trial lost with its worker (Ctrl-C, a kill, a
lost heartbeat) is enqueued again with its parameters and resumes from its checkpoint.
"""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeps.run import fail_fast, heartbeat
from sweeps.search import budget as study_budget
from sweeps.search import confirm_jobs
from sweeps.search import studies as study_mod
from sweeps.store import claim_queries, claim_statement, locks, owners, trial_writes
from sweeps.store.quiet import quietly

SEARCH, CONFIRM = SEARCH_KIND, CONFIRM_KIND = study_mod.SEARCH_KIND, study_mod.CONFIRM_KIND


class Claims:
    """Hands out the jobs of one sweep's studies to one worker."""

    def __init__(self, storage: optuna.storages.BaseStorage, url: str, sweep: str,
                 studies: Sequence[optuna.Study], kinds: Sequence[str], *,
                 deadline: float | None, max_retries: int) -> None:
        self.storage, self.url, self.sweep = storage, url, sweep
        self.studies = list(studies)
        self.kinds = tuple(kinds)
        self.deadline = deadline
        self.max_retries = max_retries
        self.confirm: optuna.Study | None = None
        self.halt: dict[str, Any] | None = None  # why the sweep stopped (`fail_fast`)
        self._stale_checked: dict[int, float] = {}  # study id -> when its stale trials were failed

    def next_job(self) -> tuple[optuna.Study, optuna.Trial, str] | None:
        """The next job and its kind (CONFIRM or SEARCH), or None when nothing is left."""
        if self.deadline is not None and time.time() >= self.deadline and SEARCH in self.kinds:
            # the launch's timeout ends the search; queued confirm runs were asked for later
            self.kinds = tuple(k for k in self.kinds if k != SEARCH)
        if CONFIRM in self.kinds:
            job = self._next_confirm()
            if job is not None:
                return job[0], job[1], CONFIRM
        if SEARCH in self.kinds:
            nxt = self._next_trial()
            if nxt is not None:
                return nxt[0], nxt[1], SEARCH
        return None

    def confirm_study(self) -> optuna.Study | None:
        if self.confirm is None:  # `sweeps confirm` may create it while this worker runs
            self.confirm = confirm_jobs.load(self.storage, self.sweep)
        return self.confirm

    def _fail_stale(self, studies: Sequence[optuna.Study]) -> None:
        """Trials of workers that stopped sending heartbeats (database storages): looked for at
        most once a heartbeat interval per study (a trial turns stale only a grace period
        after its last beat), not on every claim."""
        every = heartbeat.interval(self.storage)
        if every is None:
            return
        now = time.monotonic()
        for study in studies:
            if now - self._stale_checked.get(study._study_id, -math.inf) >= every:
                quietly(optuna.storages.fail_stale_trials, study)
                self._stale_checked[study._study_id] = now

    def _next_confirm(self) -> tuple[optuna.Study, optuna.Trial] | None:
        study = self.confirm_study()
        if study is None:
            return None
        self._fail_stale([study])
        with locks.budget_lock(self.url, self.sweep):
            # only a queued (WAITING) run: with none queued, asking would create a new trial
            study._thread_local.cached_all_trials = None  # as ask() does: read afresh
            trial_id = claim_queries.pop_waiting(study)
        if trial_id is None:
            return None
        return study, _open(study, trial_id)

    def _next_trial(self) -> tuple[optuna.Study, optuna.Trial] | None:
        self._fail_stale(self.studies)
        # read before the lock: a budget changes only with a relaunch, and a halt written
        # meanwhile stops this worker at its next claim
        attrs = claim_queries.study_attrs(self.studies)
        self.halt = fail_fast.halted(self.studies, attrs)
        if self.halt is not None:  # trials keep failing the same way: claim no more
            return None
        if claim_statement.supported(self.storage):  # one round trip, the lock held by the server
            owner = _owner()
            claimed = claim_statement.claim(
                self.storage, self.sweep, [(s._study_id, int(a.get("budget", 0))) for s, a in
                                       zip(self.studies, attrs, strict=True)],
                self.max_retries, owner)
            if claimed.verdict == "none":
                return None
            if claimed.verdict == "go":
                study = next(s for s in self.studies if s._study_id == claimed.study_id)
                claim_statement.adopt(study._storage, claimed, owner)
                study._thread_local.cached_all_trials = None  # as ask() does: read afresh
                assert claimed.trial_id is not None
                return study, _open(study, claimed.trial_id)
        with locks.budget_lock(self.url, self.sweep):  # held for the counts, a row and no more
            reserved = self._reserve_trial(attrs)
        if reserved is None:
            return None
        return reserved[0], _open(*reserved)

    def _reserve_trial(self, attrs: Sequence[Mapping[str, Any]]) -> tuple[optuna.Study, int] | None:
        """Under the budget lock: the study with the most budget left, and its next trial's
        row (a retry of a lost trial first: it resumes, and never overshoots)."""
        open_studies = []
        used_failed = study_budget.used_and_failed_all(self.studies)  # the counts, for every study
        for study, a, (used, failed) in zip(self.studies, attrs, used_failed, strict=True):
            budget = int(a.get("budget", 0))
            if used < budget:
                open_studies.append((used / max(budget, 1), used, study, failed))
        if not open_studies:
            return None
        open_studies.sort(key=lambda x: (x[0], x[1]))
        for _, _, candidate, failed in open_studies:
            old = study_budget.retry_candidate(candidate, self.max_retries, failed)
            if old is not None:
                history = [*(old.user_attrs.get("retry_history") or []), old.number]
                candidate.enqueue_trial(old.params, user_attrs={"retry_of": old.number,
                                                                "retry_history": history})
                return candidate, _reserve(candidate)
        study = open_studies[0][2]
        return study, _reserve(study)

    def others_may_fail(self) -> bool:
        """No budget left, but trials of other workers still run (database storages): one of
        them may yet be failed by its missing heartbeat and need a retry, so stay until they
        end (within the sweep's deadline)."""
        if heartbeat.interval(self.storage) is None or SEARCH not in self.kinds or self.halt:
            return False
        if self.deadline is not None and time.time() >= self.deadline:
            return False
        return any(claim_queries.counts(self.studies, (TrialState.RUNNING,)))  # one COUNT, not the trials


def _reserve(study: optuna.Study) -> int:
    """The first half of `study.ask()`, under the budget lock: the trial's row (a queued
    trial popped, else a new running one that names who runs it, in the same write), which
    every later count includes."""
    study._thread_local.cached_all_trials = None  # as ask() does: the sampler reads afresh
    trial_id = claim_queries.pop_waiting(study)
    if trial_id is not None:
        return trial_id
    return study._storage.create_new_trial(study._study_id, template_trial=_owned_row())


def _owned_row() -> FrozenTrial:
    """A new running trial as Optuna would make it, with who runs it among its attributes."""
    return FrozenTrial(number=-1, state=TrialState.RUNNING, value=None, values=None,
                       datetime_start=datetime.datetime.now(), datetime_complete=None, params={},
                       distributions={}, user_attrs=_owner(), system_attrs={}, intermediate_values={},
                       trial_id=-1)


def _open(study: optuna.Study, trial_id: int) -> optuna.Trial:
    """The second half, after the lock: the Trial, whose sampler fits its model now (TPE's
    multivariate sampling reads every finished trial), and who runs it (written already
    where the row was made here)."""
    trial = optuna.Trial(study, trial_id)
    owner = _owner()
    if any(trial.user_attrs.get(k) != v for k, v in owner.items()):  # a popped trial
        trial_writes.set_user_attrs(trial, owner)  # one write
    return trial


def _owner() -> dict[str, str]:
    """Who runs a trial: ``host:pid``, and the Slurm task where there is one."""
    task = owners.scheduler_task()
    return {**({"slurm_task": task} if task else {}), "worker": owners.worker_id()}

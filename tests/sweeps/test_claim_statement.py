"""A claim on PostgreSQL in one statement (`sweeps.store.claim_statement`) decides as the
claim's own Python path does, in one round trip, never over the budget."""

from __future__ import annotations

import datetime
import random
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from sweeps.run.claims import Claims
from sweeps.store import claim_statement, locks

from .test_trial_reads import PG_URL, postgres_storage

pytestmark = pytest.mark.postgres
MAX_RETRIES = 2


@pytest.fixture
def storage() -> Iterator[optuna.storages.RDBStorage]:
    storage = postgres_storage()
    made: list[str] = []
    storage.made = made  # type: ignore[attr-defined]
    yield storage
    for name in made:
        optuna.delete_study(study_name=name, storage=storage)


def _frozen(state: TrialState, attrs: dict[str, Any], fixed: dict[str, Any] | None = None) -> FrozenTrial:
    done = state.is_finished()
    return FrozenTrial(number=-1, state=state, value=1.0 if state == TrialState.COMPLETE else None,
                       values=None, datetime_start=datetime.datetime.now(),
                       datetime_complete=datetime.datetime.now() if done else None, params={},
                       distributions={}, user_attrs=attrs,
                       system_attrs={"fixed_params": fixed} if fixed is not None else {},
                       intermediate_values={}, trial_id=-1)


KINDS = ("complete", "pruned", "running", "waiting", "own", "own_uncounted", "lost", "lost_retried",
         "lost_exhausted", "no_config", "retry")


Trial = tuple[TrialState, dict[str, Any]]
Spec = list[tuple[int, list[Trial]]]


def _random_trial(rng: random.Random, number: int, kind: str | None = None) -> Trial:
    """A trial of any kind a sweep holds, failed ones in every way the budget tells apart."""
    kind = kind or rng.choice(KINDS)
    config = {"config": {"optimizer": "adam"}}
    if kind == "complete":
        return TrialState.COMPLETE, {"state": "complete"}
    if kind == "pruned":
        return TrialState.PRUNED, {"state": "pruned"}
    if kind == "running":
        return TrialState.RUNNING, {"worker": "elsewhere:1"}
    if kind == "waiting":
        return TrialState.WAITING, {}
    if kind == "own":  # the trial's own failure: counts
        return TrialState.FAIL, {**config, "state": rng.choice(["failed", "diverged"]),
                                 "failure_reason": rng.choice(["", "ValueError: x"])}
    if kind == "own_uncounted":  # recorded as failed, but stopped from outside
        return TrialState.FAIL, {**config, "state": "failed",
                                 "failure_reason": rng.choice(["interrupted (SIGTERM)", "worker died",
                                                               "machine: disk full"])}
    if kind == "lost":  # a dead worker's: retried
        return TrialState.FAIL, {**config, "failure_reason": "worker died"}
    if kind == "lost_retried":  # a later trial says it retries this one
        return TrialState.FAIL, {**config, "failure_reason": "worker died", "_retried": True}
    if kind == "lost_exhausted":
        return TrialState.FAIL, {**config, "retry_history": list(range(MAX_RETRIES))}
    if kind == "no_config":  # failed before it was sampled: nothing to retry
        return TrialState.FAIL, {"failure_reason": "worker died"}
    return TrialState.COMPLETE, {"state": "complete", "retry_of": max(0, number - 1),
                                 "retry_history": [max(0, number - 1)]}


def _scenario(rng: random.Random, kind: str | None) -> Spec:
    """Studies as (budget, trials): two trials of `kind` and a complete one in a study with
    room for one more, or (None) the trials any sweep of several studies may hold."""
    if kind is not None:
        return [(4, [_random_trial(rng, 0, kind), _random_trial(rng, 1, kind),
                     _random_trial(rng, 2, "complete")])]
    out = []
    for _ in range(rng.randint(1, 3)):
        trials = [_random_trial(rng, n) for n in range(rng.randint(0, 7))]
        out.append((rng.randint(max(0, len(trials) - 3), len(trials) + 2), trials))  # near the edge
    return out


def _build(storage: optuna.storages.RDBStorage, spec: Spec) -> tuple[str, list[optuna.Study]]:
    sweep = f"claim-{uuid.uuid4().hex[:8]}"
    studies = []
    for i, (budget, trials) in enumerate(spec):
        name = f"{sweep}-{i}"
        storage.made.append(name)  # type: ignore[attr-defined]
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
        study.set_user_attr("budget", budget)
        for n, (state, attrs) in enumerate(trials):
            attrs = dict(attrs)
            if attrs.pop("_retried", False):  # a retry of this one, later in the study
                attrs["_mark"] = n
            fixed = {} if state == TrialState.WAITING else None  # queued: as enqueue_trial makes it
            storage.create_new_trial(study._study_id, _frozen(state, attrs, fixed))
        for t in study.get_trials(deepcopy=False):  # "retry_of" a lost trial, where asked
            if "_mark" in t.user_attrs:
                storage.create_new_trial(study._study_id, _frozen(
                    TrialState.COMPLETE, {"state": "complete", "retry_of": t.number}))
        studies.append(optuna.load_study(study_name=name, storage=storage))
    return sweep, studies


def _retries(studies: list[optuna.Study]) -> int:
    return sum("retry_of" in t.user_attrs for s in studies for t in s.get_trials(deepcopy=False))


def _claim(storage: optuna.storages.RDBStorage, sweep: str, studies: list[optuna.Study]) -> Any:
    """What a claim did: None, or (which study, the trial's number, its state before, owner,
    its retry_of); and how many lost trials it queued again."""
    before = {s._study_id: {t._trial_id: t.state for t in s.get_trials(deepcopy=False)} for s in studies}
    retries = _retries(studies)
    claims = Claims(storage, PG_URL, sweep, studies, ("search",), deadline=None, max_retries=MAX_RETRIES)
    job = claims.next_job()
    if job is None:
        return None, _retries(studies) - retries
    study, trial, _ = job
    frozen = storage.get_trial(trial._trial_id)
    index = [s._study_id for s in studies].index(study._study_id)
    return ((index, frozen.number, before[study._study_id].get(trial._trial_id), frozen.state,
             frozen.user_attrs.get("worker"), frozen.user_attrs.get("retry_of")),
            _retries(studies) - retries)


def test_the_statement_decides_as_the_python_path_on_any_sweep(
        storage: optuna.storages.RDBStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(20261207)
    verdicts: list[str] = []
    real = claim_statement.claim

    def spied(*args: Any, **kwargs: Any) -> claim_statement.Claimed:
        got = real(*args, **kwargs)
        verdicts.append(got.verdict)
        return got

    for kind in [*KINDS, *[None] * 10]:  # each kind alone, then mixed
        spec = _scenario(rng, kind)
        ours_sweep, ours = _build(storage, spec)
        theirs_sweep, theirs = _build(storage, spec)
        monkeypatch.setattr(claim_statement, "claim", spied)
        for _ in range(3):  # claims in a row: each sees the last one's trial
            ours_got = _claim(storage, ours_sweep, ours)
            monkeypatch.setattr(claim_statement, "supported", lambda storage: False)
            theirs_got = _claim(storage, theirs_sweep, theirs)
            monkeypatch.undo()
            monkeypatch.setattr(claim_statement, "claim", spied)
            assert ours_got == theirs_got, spec
            # "slow" exactly where the Python path queues a lost trial again (then it answers)
            assert (verdicts[-1] == "slow") == (theirs_got[1] > 0), (verdicts[-1], theirs_got, spec)
        monkeypatch.undo()
    # every answer of the statement was met: budget left, none left, a retry for Python
    assert {"go", "none", "slow"} <= set(verdicts), verdicts


def test_a_claim_is_one_message_and_leaves_the_lock_free(
        storage: optuna.storages.RDBStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    sweep, studies = _build(storage, [(3, [(TrialState.COMPLETE, {"state": "complete"})])])
    sent: list[str] = []
    status_back: list[int] = []  # the connection's transaction status when handed back
    real = storage.engine.raw_connection

    def counted() -> Any:  # the pool's connection, what is sent on it counted
        pooled = real()
        conn = pooled.driver_connection

        class Cursor:
            def __init__(self) -> None:
                self.cur = conn.cursor()

            def __enter__(self) -> Cursor:
                return self

            def __exit__(self, *exc: Any) -> None:
                self.cur.close()

            def execute(self, sql: str, params: Any = None) -> None:
                sent.append(sql)
                self.cur.execute(sql, params)

            @property
            def description(self) -> Any:
                return self.cur.description

            def fetchall(self) -> Any:
                return self.cur.fetchall()

        class Conn:
            def __setattr__(self, name: str, value: Any) -> None:
                setattr(conn, name, value)

            def cursor(self) -> Cursor:
                return Cursor()

        class Pooled:
            driver_connection = Conn()

            def invalidate(self) -> None:
                pooled.invalidate()

            def close(self) -> None:
                status_back.append(conn.get_transaction_status())
                pooled.close()

        return Pooled()

    monkeypatch.setattr(storage.engine, "raw_connection", counted)
    got = claim_statement.claim(storage, sweep, [(studies[0]._study_id, 3)], MAX_RETRIES, {"worker": "w:1"})
    monkeypatch.undo()
    assert got.verdict == "go" and len(sent) == 1 and got.held_s < 5.0
    assert status_back == [0]  # idle: no transaction left open, so no lock held
    import psycopg2

    with psycopg2.connect(PG_URL) as other, other.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s), pg_advisory_unlock_all()", (locks.lock_id(sweep),))
        assert cur.fetchone()[0] is True
    trial = storage.get_trial(got.trial_id)  # type: ignore[arg-type]
    assert (trial.number, trial.state, trial.user_attrs) == (1, TrialState.RUNNING, {"worker": "w:1"})


def test_workers_claiming_at_once_fill_the_budget_exactly(storage: optuna.storages.RDBStorage) -> None:
    sweep, studies = _build(storage, [(13, []), (11, [(TrialState.WAITING, {})] * 3)])
    got: list[tuple[int, int]] = []

    def worker() -> None:
        own = [optuna.load_study(study_name=s.study_name, storage=storage) for s in studies]
        claims = Claims(storage, PG_URL, sweep, own, ("search",), deadline=None, max_retries=MAX_RETRIES)
        while (job := claims.next_job()) is not None:
            got.append((job[0]._study_id, job[1].number))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    per_study = {s._study_id: sorted(n for i, n in got if i == s._study_id) for s in studies}
    assert per_study == {studies[0]._study_id: list(range(13)), studies[1]._study_id: list(range(11))}


def test_the_statements_budget_words_are_the_budget_modules() -> None:
    # the store layer cannot import the search layer's constants: kept equal here instead
    import json

    from sweeps.search import budget

    assert tuple(f"{r}%" for r in budget.UNCOUNTED_REASONS) == claim_statement.UNCOUNTED_LIKE
    assert tuple(json.dumps(r) for r in budget.OWN_FAILURES) == claim_statement.OWN_FAILURES_JSON

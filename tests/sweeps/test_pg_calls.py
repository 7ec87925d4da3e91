"""`sweeps.store.pg_calls`: a trial's storage calls on PostgreSQL, one statement each, write
and read what Optuna's own calls write and read, with Optuna's errors; a connection the
server dropped is replaced at once."""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import optuna
import pytest
import sqlalchemy
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from sweeps.store import pg_calls, trial_writes
from sweeps.store.resilient import ResilientRDBStorage
from sweeps.store.storages import open_storage

from ..servers import require_postgres


def _url() -> str:
    return require_postgres().replace("postgresql://", "postgresql+psycopg2://", 1)


@pytest.fixture
def pair() -> Iterator[tuple[ResilientRDBStorage, optuna.storages.RDBStorage, int]]:
    """Ours and Optuna's own storage on the same database, and a study of their own."""
    ours = ResilientRDBStorage(_url(), engine_kwargs={"pool_pre_ping": False})
    theirs = optuna.storages.RDBStorage(_url())
    name = f"calls-{uuid.uuid4().hex[:8]}"
    study_id = theirs.create_new_study([optuna.study.StudyDirection.MINIMIZE], name)
    yield ours, theirs, study_id
    theirs.delete_study(study_id)
    ours.engine.dispose()
    theirs.engine.dispose()


def _count_sends(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What each `pg_calls.send` from here on was for, in order (the calls still go out)."""
    sent: list[str] = []
    send = pg_calls.send

    def counted(rdb: Any, what: str, sql: str, params: Any) -> Any:
        sent.append(what)
        return send(rdb, what, sql, params)

    monkeypatch.setattr(pg_calls, "send", counted)
    return sent


def _same(a: FrozenTrial, b: FrozenTrial) -> None:
    """Equal but for what two trials cannot share: id, number, times."""
    for field in ("state", "values", "params", "distributions", "user_attrs", "system_attrs"):
        assert getattr(a, field) == getattr(b, field), field
    assert a.intermediate_values.keys() == b.intermediate_values.keys()
    for step, value in a.intermediate_values.items():
        other = b.intermediate_values[step]
        assert value == other or (math.isnan(value) and math.isnan(other)), step


def _fill(storage: Any, trial_id: int) -> None:
    """Every kind of write a trial gets, through `storage`'s own calls."""
    storage.set_trial_param(trial_id, "lr", 0.1 / 3, FloatDistribution(1e-5, 1.0, log=True))
    storage.set_trial_param(trial_id, "opt", 1.0, CategoricalDistribution(["sgd", "adam", None]))
    for step, value in [(0, 0.5), (1, float("nan")), (2, float("inf")), (3, float("-inf")), (1, 0.25)]:
        storage.set_trial_intermediate_value(trial_id, step, value)
    storage.set_trial_user_attr(trial_id, "config", {"a": [1, 2.5, None], "b": "x"})
    storage.set_trial_user_attr(trial_id, "config", {"a": "replaced"})
    storage.set_trial_user_attr(trial_id, "note", "é ünïcode")
    storage.set_trial_system_attr(trial_id, "fixed_params", {"lr": 0.01})


@pytest.mark.postgres
def test_the_writes_and_reads_equal_optunas(pair: tuple[ResilientRDBStorage, Any, int]) -> None:
    ours, theirs, study_id = pair
    mine, twin = ours.create_new_trial(study_id), theirs.create_new_trial(study_id)
    _fill(ours, mine)
    _fill(theirs, twin)
    _same(theirs.get_trial(mine), theirs.get_trial(twin))  # written alike
    assert ours.get_trial(mine) == theirs.get_trial(mine)  # and read alike, times included
    assert ours.get_trial(twin) == theirs.get_trial(twin)
    waiting = theirs.create_new_trial(study_id, optuna.trial.create_trial(state=TrialState.WAITING))
    assert ours.get_trial(waiting) == theirs.get_trial(waiting)
    theirs.set_trial_state_values(twin, TrialState.COMPLETE, [0.5])
    ids = [waiting, twin, mine]
    assert pg_calls.trials_by_id(ours, ids) == [theirs.get_trial(i) for i in sorted(ids)]
    light = pg_calls.trials_by_id(ours, ids, light=True)  # what a sampler reads of a running trial
    assert [(t.params, t.distributions, t.system_attrs, t.state) for t in light] == \
        [(t.params, t.distributions, t.system_attrs, t.state) for t in map(theirs.get_trial, sorted(ids))]
    assert all(t.user_attrs == {} and t.values is None and t.intermediate_values == {} for t in light)
    assert pg_calls.trial_states(ours, study_id) == [(i, theirs.get_trial(i).state) for i in sorted(ids)]
    theirs.set_study_user_attr(study_id, "parent_run_id", "abc")
    theirs.set_study_user_attr(study_id, "limits", {"n": [1, 2]})
    assert ours.get_study_user_attrs(study_id) == theirs.get_study_user_attrs(study_id)
    bare = theirs.create_new_study([optuna.study.StudyDirection.MAXIMIZE], f"bare-{uuid.uuid4().hex[:8]}")
    assert ours.get_study_user_attrs(bare) == {}
    theirs.delete_study(bare)


@pytest.mark.postgres
@pytest.mark.parametrize("state,values", [(TrialState.COMPLETE, [0.125]),
                                          (TrialState.COMPLETE, [float("inf")]),
                                          (TrialState.PRUNED, [0.5]), (TrialState.FAIL, None)])
def test_the_tell_in_one_statement_equals_optunas_tell_and_attributes(
        pair: tuple[ResilientRDBStorage, Any, int], state: TrialState, values: list[float] | None) -> None:
    ours, theirs, study_id = pair
    mine, twin = ours.create_new_trial(study_id), theirs.create_new_trial(study_id)
    attrs = {"state": state.name.lower(), "final": {"val/loss": 0.3, "n": None}}
    _fill(ours, mine)
    _fill(theirs, twin)
    done = pg_calls.finish(ours, mine, state, values, attrs)
    for key, value in attrs.items():
        theirs.set_trial_user_attr(twin, key, value)
    theirs.set_trial_state_values(twin, state, values)
    got = theirs.get_trial(mine)
    _same(got, theirs.get_trial(twin))
    assert got.datetime_complete == done  # the time it returns is the one stored


@pytest.mark.postgres
def test_finished_and_missing_trials_are_refused_as_optuna_refuses_them(
        pair: tuple[ResilientRDBStorage, Any, int]) -> None:
    ours, theirs, study_id = pair
    done = ours.create_new_trial(study_id)
    theirs.set_trial_state_values(done, TrialState.FAIL)
    before = theirs.get_trial(done)
    calls = [lambda t: ours.set_trial_intermediate_value(t, 0, 1.0),
             lambda t: ours.set_trial_user_attr(t, "k", 1),
             lambda t: ours.set_trial_system_attr(t, "k", 1),
             lambda t: pg_calls.finish(ours, t, TrialState.COMPLETE, [1.0], {"state": "complete"})]
    for call in calls:
        with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
            call(done)
        with pytest.raises(KeyError):
            call(10**9)
    assert theirs.get_trial(done) == before  # nothing written
    with pytest.raises(KeyError):
        ours.get_trial(10**9)
    with pytest.raises(KeyError):
        ours.get_study_user_attrs(10**9)


@pytest.mark.postgres
def test_each_call_is_one_statement_on_one_pooled_connection(
        pair: tuple[ResilientRDBStorage, Any, int], monkeypatch: pytest.MonkeyPatch) -> None:
    ours, _, study_id = pair
    trial_id = ours.create_new_trial(study_id)
    orm: list[str] = []
    checkouts: list[int] = []
    sqlalchemy.event.listen(ours.engine, "before_cursor_execute", lambda *a: orm.append(str(a[2])))
    sqlalchemy.event.listen(ours.engine.pool, "checkout", lambda *a: checkouts.append(1))
    sent = _count_sends(monkeypatch)
    calls = [lambda: ours.get_trial(trial_id), lambda: ours.set_trial_intermediate_value(trial_id, 0, 0.5),
             lambda: ours.set_trial_user_attr(trial_id, "k", [1]), lambda: ours.record_heartbeat(trial_id),
             lambda: ours.record_heartbeat(trial_id), lambda: ours.get_study_user_attrs(study_id),
             lambda: pg_calls.finish(ours, trial_id, TrialState.COMPLETE, [0.5], {"a": 1})]
    for call in calls:
        orm.clear(), checkouts.clear(), sent.clear()
        call()
        assert (orm, len(checkouts), len(sent)) == ([], 1, 1)
    with ours.engine.connect() as conn:  # the heartbeat row: made once, then moved
        rows = conn.execute(sqlalchemy.text(
            "SELECT count(*) FROM trial_heartbeats WHERE trial_id = :t"), {"t": trial_id}).scalar()
    assert rows == 1


@pytest.mark.postgres
def test_a_connection_the_server_dropped_is_replaced_at_once(
        pair: tuple[ResilientRDBStorage, Any, int], caplog: pytest.LogCaptureFixture) -> None:
    """No ping before each use: the call on a dead connection fails, and is retried at once
    on a renewed pool, without the backoff's wait or its warning."""
    ours, theirs, study_id = pair
    trial_id = ours.create_new_trial(study_id)
    ours.get_trial(trial_id)  # a connection now in the pool
    with ours.engine.connect() as conn:  # the ORM's pooled connections too
        pids = [conn.execute(sqlalchemy.text("SELECT pg_backend_pid()")).scalar()]
    pooled = ours.engine.raw_connection()
    with pooled.driver_connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pids.append(cur.fetchone()[0])
    pooled.close()
    with theirs.engine.connect() as admin:  # only the connections this test opened, by PID
        for pid in set(pids):
            admin.execute(sqlalchemy.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    with caplog.at_level(logging.WARNING, logger="sweeps"):
        ours.set_trial_user_attr(trial_id, "after", 1)  # one statement
        assert ours.get_trial(trial_id).user_attrs == {"after": 1}
        ours.set_trial_param(trial_id, "x", 0.5, FloatDistribution(0, 1))  # Optuna's ORM path
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]


@pytest.mark.postgres
def test_a_worker_tell_on_postgresql_reads_the_trial_once_and_writes_it_once() -> None:
    """`tell_with_attrs` through a study as the worker opens it: the record equals Optuna's
    tell after the attribute writes; a trial failed meanwhile refuses both."""
    storage = open_storage(require_postgres())
    name = f"tell-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(study_name=name, storage=storage)
    try:
        trial = study.ask()
        trial.report(0.7, 1)
        with pytest.MonkeyPatch.context() as monkeypatch:
            sent = _count_sends(monkeypatch)
            trial_writes.tell_with_attrs(study, trial, {"state": "complete", "final": {"x": 1}}, 0.3)
        assert sent == ["read trials", "tell"]
        plain = optuna.load_study(study_name=name, storage=_url())
        back = plain.trials[0]
        assert back.state == TrialState.COMPLETE and back.value == 0.3
        assert back.user_attrs == {"state": "complete", "final": {"x": 1}}
        assert back.intermediate_values == {1: 0.7}
        other = study.ask()
        plain.tell(other.number, state=TrialState.FAIL)  # another process failed it meanwhile
        with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
            trial_writes.tell_with_attrs(study, other, {"state": "complete"}, 0.1)
        again = optuna.load_study(study_name=name, storage=_url()).trials[1]
        assert again.state == TrialState.FAIL and again.user_attrs == {}
    finally:
        optuna.delete_study(study_name=name, storage=_url())


@pytest.mark.parametrize("where", ["journal", "sqlite",
                                   pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_study_is_found_by_its_attributes_in_one_query(where: str, tmp_path: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`claim_queries.study_named_by` (a worker's "is there a confirm study yet?", on every
    claim): on PostgreSQL one statement, whatever the number of attributes."""
    from sweeps.store import claim_queries

    url = {"journal": str(tmp_path / "j.log"), "sqlite": f"sqlite:///{tmp_path / 'db.sqlite'}",
           "postgresql": require_postgres() if where == "postgresql" else ""}[where]
    storage = open_storage(url)
    tag = uuid.uuid4().hex[:8]
    made = []
    for name, attrs in [(f"a-{tag}", {"kind": "confirm", "sweep": "other"}),
                        (f"b-{tag}", {"kind": "search", "sweep": tag}),
                        (f"c-{tag}", {"kind": "confirm", "sweep": tag, "extra": [1]}),
                        (f"d-{tag}", {"kind": "confirm", "sweep": tag})]:
        study = optuna.create_study(study_name=name, storage=storage)
        made.append(name)
        for key, value in attrs.items():
            study.set_user_attr(key, value)
    sent = _count_sends(monkeypatch)
    try:
        assert claim_queries.study_named_by(storage, {"kind": "confirm", "sweep": tag}) == f"c-{tag}"
        assert claim_queries.study_named_by(storage, {"kind": "search", "sweep": tag}) == f"b-{tag}"
        assert claim_queries.study_named_by(storage, {"kind": "confirm", "sweep": "none"}) is None
        assert claim_queries.study_named_by(storage, {"extra": [1]}) == f"c-{tag}"
        assert claim_queries.study_named_by(storage, {"sweep": tag, "kind": "confirm", "extra": [2]}) is None
        assert claim_queries.study_named_by(storage, {"sweep": "it's; --"}) is None  # a parameter
        assert sent == (["find a study"] * 6 if where == "postgresql" else [])
    finally:
        for name in made:
            optuna.delete_study(study_name=name, storage=storage)


@pytest.mark.postgres
def test_a_trials_writes_after_the_first_are_one_statement_equal_to_optunas(
        pair: tuple[ResilientRDBStorage, Any, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """`trial_writes.write_all` through Optuna's cache: once the study's distributions are
    known, a trial's parameters and attributes are one statement, with Optuna's checks."""
    from optuna.storages._cached_storage import _CachedStorage

    ours, theirs, study_id = pair
    cached = _CachedStorage(ours)
    dists = {"lr": FloatDistribution(1e-5, 1.0, log=True), "opt": CategoricalDistribution(["a", "b"])}

    def writes(trial_id: int) -> list[tuple[str, int, str, Any, Any]]:
        return [("param", trial_id, "lr", 0.01, dists["lr"]), ("param", trial_id, "opt", 1.0, dists["opt"]),
                ("user_attr", trial_id, "config", {"x": [1, None]}, None),
                ("user_attr", trial_id, "config", "last", None),
                ("system_attr", trial_id, "tpe", {"k": 2}, None)]

    first, second, twin = (cached.create_new_trial(study_id) for _ in range(3))
    trial_writes.write_all(cached, writes(first))  # the distributions are learnt here
    sent = _count_sends(monkeypatch)
    trial_writes.write_all(cached, writes(second))
    assert sent == ["write trial"]
    trial_writes.one_by_one(theirs, writes(twin))  # Optuna's own calls
    _same(theirs.get_trial(second), theirs.get_trial(twin))
    _same(theirs.get_trial(first), theirs.get_trial(twin))
    other = cached.create_new_trial(study_id)
    with pytest.raises(ValueError):  # incompatible with the study's: refused before writing
        trial_writes.write_all(cached, [("param", other, "lr", 1.0, IntDistribution(0, 2))])
    assert theirs.get_trial(other).params == {}
    theirs.set_trial_state_values(second, TrialState.FAIL)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        trial_writes.write_all(cached, [("user_attr", second, "late", 1, None)])
    assert "late" not in theirs.get_trial(second).user_attrs


@pytest.mark.parametrize("where", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_claims_read_of_every_studys_attributes_equals_optunas(where: str, tmp_path: Any) -> None:
    """`claim_queries.study_attrs`: one query for all the sweep's studies (one statement on
    PostgreSQL), in the order asked, a study without attributes included."""
    from sweeps.store import claim_queries

    url = require_postgres() if where == "postgresql" else f"sqlite:///{tmp_path / 'db.sqlite'}"
    storage = open_storage(url)
    tag = uuid.uuid4().hex[:8]
    studies = [optuna.create_study(study_name=f"{n}-{tag}", storage=storage) for n in "abc"]
    try:
        studies[0].set_user_attr("parent_run_id", "r1")
        studies[0].set_user_attr("limits", {"n": [1, None]})
        studies[2].set_user_attr("kind", "search")
        order = [studies[2], studies[1], studies[0]]
        assert claim_queries.study_attrs(order) == [s.user_attrs for s in order]
        assert claim_queries.study_attrs(order)[0] == {"kind": "search"}
    finally:
        for s in studies:
            optuna.delete_study(study_name=s.study_name, storage=storage)


@pytest.mark.postgres
def test_a_claimed_trial_is_not_read_back_and_equals_its_row(
        pair: tuple[ResilientRDBStorage, Any, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """The claim's new trial, as `adopt` keeps it for `optuna.Trial`'s first read, equals the
    row read back (its start time stored in UTC, read as local time, as Optuna's); only the
    trial just claimed is kept, for one read."""
    ours, theirs, study_id = pair
    monkeypatch.setenv("TZ", "America/New_York")  # a clock not on UTC
    time.tzset()
    try:
        _claimed_trials(ours, theirs, study_id, monkeypatch)
    finally:
        monkeypatch.undo()
        time.tzset()


def _claimed_trials(ours: ResilientRDBStorage, theirs: Any, study_id: int,
                    monkeypatch: pytest.MonkeyPatch) -> None:
    from optuna.storages._cached_storage import _CachedStorage

    from sweeps.store import claim_statement

    cached = _CachedStorage(ours)
    owner = {"worker": "w:1", "host": "h"}
    claims = [claim_statement.claim(cached, f"calls-{uuid.uuid4().hex[:8]}", [(study_id, 5)], 2, owner)
              for _ in range(2)]
    for claimed in claims:
        claim_statement.adopt(cached, claimed, owner)
    first, second = (c.trial_id for c in claims)
    assert set(ours.primed) == {second}
    sent = _count_sends(monkeypatch)
    kept = cached.get_trial(second)
    assert sent == []  # not read back
    assert kept == theirs.get_trial(second)  # times included
    assert cached.get_trial(second) == kept and sent == ["read trials"]  # once only
    assert cached.get_trial(first) == theirs.get_trial(first)

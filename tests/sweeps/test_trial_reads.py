"""`sweeps.store.trial_reads` returns exactly what Optuna's own `RDBStorage._get_trials` does,
for every combination of its arguments, on SQLite and on PostgreSQL: parameters of every
kind, infinite values, NaN and infinite curve points, user and system attributes, every state."""

from __future__ import annotations

import contextlib
import math
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from sweeps.store.trial_reads import read_trials

from .test_scale_out import PG_URL, _postgres_reachable


def _fill(study: optuna.Study) -> None:
    dists = {"lr": FloatDistribution(1e-5, 1e-1, log=True), "depth": IntDistribution(1, 8),
             "opt": CategoricalDistribution(["sgd", "adam", None]),
             "step": FloatDistribution(0, 1, step=0.25)}
    values = [0.5, math.inf, -math.inf, None, 0.75, None, 0.1]
    states = [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL,
              TrialState.PRUNED, TrialState.RUNNING, TrialState.COMPLETE]
    for i, (value, state) in enumerate(zip(values, states, strict=True)):
        study.add_trial(optuna.trial.create_trial(
            params={"lr": 10 ** -(1 + i % 4), "depth": 1 + i, "opt": [None, "sgd", "adam"][i % 3],
                    "step": 0.25 * (i % 5)},
            distributions=dists, value=value if state == TrialState.COMPLETE else None, state=state,
            intermediate_values={1: 0.1 * i, 2: math.nan, 3: math.inf} if i % 2 else {},
            user_attrs={"config": {"a": [1, 2, {"b": None}]}, "final": {"val/acc": 0.5 + i}, "n": i},
            system_attrs={"fixed_params": {"lr": 0.1}} if i == 2 else {}))
    study.enqueue_trial({"lr": 1e-3})


def _fields(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """Every field of a trial, NaN curve points made comparable (NaN != NaN under ==); dicts
    compare regardless of order (Optuna's own reads leave the order of attributes to the
    database)."""
    fields = {k.lstrip("_"): v for k, v in vars(t).items()}
    fields["intermediate_values"] = {k: "nan" if math.isnan(v) else v
                                     for k, v in t.intermediate_values.items()}
    return fields


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def storage(request: Any, tmp_path: Path) -> optuna.storages.RDBStorage:
    if request.param == "sqlite":
        return optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'reads.db'}")
    return postgres_storage()


def postgres_storage() -> optuna.storages.RDBStorage:
    """The test PostgreSQL as an RDBStorage; skipped where it is down (never in CI)."""
    reason = _postgres_reachable()
    if reason:
        if os.environ.get("SWEEPS_REQUIRE_POSTGRES"):  # CI: never skip
            pytest.fail(reason)
        pytest.skip(reason)
    return optuna.storages.RDBStorage(PG_URL.replace("postgresql://", "postgresql+psycopg2://", 1))


def test_the_plain_reads_equal_optunas(storage: optuna.storages.RDBStorage) -> None:
    name = f"reads-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(study_name=name, storage=storage)
    try:
        _fill(study)
        ids = [t._trial_id for t in study.get_trials(deepcopy=False)]
        cases = [(None, set(), -1), ((TrialState.COMPLETE,), set(), -1),
                 ((TrialState.RUNNING, TrialState.WAITING), set(), -1), (None, set(), ids[3]),
                 (None, {ids[1], ids[2]}, ids[4]), ((TrialState.COMPLETE,), {ids[0], ids[6]}, ids[5]),
                 (None, {ids[-1]}, ids[2])]
        for states, included, above in cases:
            want = optuna.storages.RDBStorage._get_trials(storage, study._study_id, states, included, above)
            got = read_trials(storage, study._study_id, states, included, above)
            assert [_fields(t) for t in got] == [_fields(t) for t in want], (states, included, above)
        with pytest.raises(KeyError):
            read_trials(storage, study._study_id + 10_000, None, set(), -1)
    finally:
        optuna.delete_study(study_name=name, storage=storage)


@contextlib.contextmanager
def _filled_and_counted(storage: optuna.storages.RDBStorage, prefix: str) -> Iterator[
        tuple[optuna.Study, list[optuna.trial.FrozenTrial], list[str]]]:
    """A filled study, its whole read, and the statements sent from then on (removed after)."""
    import sqlalchemy

    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(study_name=name, storage=storage)
    queries: list[str] = []

    def count(*args: Any) -> None:
        queries.append(str(args[2]))

    try:
        _fill(study)
        want = read_trials(storage, study._study_id, None, set(), -1)
        sqlalchemy.event.listen(storage.engine, "before_cursor_execute", count)
        try:
            yield study, want, queries
        finally:
            sqlalchemy.event.remove(storage.engine, "before_cursor_execute", count)
    finally:
        optuna.delete_study(study_name=name, storage=storage)


def test_deferred_reads_equal_whole_ones_and_read_only_what_is_used(
        storage: optuna.storages.RDBStorage) -> None:
    """A view's read leaves out the heavy attributes, parameters and curves; a trial's part
    is read where first used, and then the trial equals the whole read's."""
    import copy
    import pickle

    from sweeps.store.trial_reads import HEAVY

    with _filled_and_counted(storage, "deferred") as (study, want, queries):
        got = read_trials(storage, study._study_id, None, set(), -1, deferred=HEAVY)
        read = len(queries)
        assert all("trial_params" not in q and "trial_intermediate_values" not in q for q in queries)
        # what a table of states, values and finals reads costs nothing more
        def light(t: optuna.trial.FrozenTrial) -> tuple[Any, ...]:
            return (t.number, t.state, t.values, t.user_attrs.get("final"), "n" in t.user_attrs,
                    t.user_attrs.get("n"))

        assert [light(t) for t in got] == [light(t) for t in want]
        assert len(queries) == read
        # one trial's config: one query, for that trial only
        assert got[2].user_attrs["config"] == want[2].user_attrs["config"]
        assert len(queries) == read + 1
        assert got[2].params == want[2].params and len(queries) == read + 2
        # pickled or copied, a trial is the whole one, as plain dicts
        assert _fields(pickle.loads(pickle.dumps(got[4]))) == _fields(want[4])
        assert type(copy.deepcopy(got[5]).user_attrs) is dict
        assert [_fields(t) for t in got] == [_fields(t) for t in want]


def test_a_read_of_all_but_some_attributes_equals_the_whole_one(storage: optuna.storages.RDBStorage) -> None:
    """`AllBut(keys)`: only `keys` are read with the trials (what `sweeps best` looks up on every
    trial); any other attribute is one query for its own trial, then the trial is whole."""
    import gc

    from sweeps.store.trial_reads import AllBut

    with _filled_and_counted(storage, "allbut") as (study, want, queries):
        got = read_trials(storage, study._study_id, None, set(), -1, deferred=AllBut(frozenset({"n"})))
        read = len(queries)
        assert gc.isenabled()  # paused while the trials were built, and running again
        assert [(t.number, t.state, t.values, t.user_attrs.get("n")) for t in got] == \
            [(t.number, t.state, t.values, t.user_attrs.get("n")) for t in want]
        assert len(queries) == read
        assert got[1].user_attrs.get("final") == want[1].user_attrs["final"]
        assert len(queries) == read + 1 and got[1].user_attrs == want[1].user_attrs
        assert "final" not in got[1].user_attrs.get("missing", {}) and len(queries) == read + 1
        assert [_fields(t) for t in got] == [_fields(t) for t in want]

"""`sweeps.store.row_writes` writes the rows Optuna's own calls write, one statement per table,
with Optuna's checks, on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from sweeps.store import trial_writes

from .test_trial_reads import postgres_storage


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def storage(request: Any, tmp_path: Path) -> optuna.storages.RDBStorage:
    if request.param == "sqlite":
        return optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'writes.db'}")
    return postgres_storage()


DISTS = {"lr": FloatDistribution(1e-5, 1e-1, log=True), "depth": IntDistribution(1, 8),
         "opt": CategoricalDistribution(["sgd", "adam"])}


def _writes(trial_id: int, n_attrs: int) -> list[tuple[str, int, str, Any, Any]]:
    params = [("param", trial_id, "lr", 1e-3, DISTS["lr"]), ("param", trial_id, "depth", 3.0, DISTS["depth"]),
              ("param", trial_id, "opt", 1.0, DISTS["opt"])]
    users = [("user_attr", trial_id, f"a{k}", {"k": [k, None]}, None) for k in range(n_attrs)]
    return [*params, *users, ("user_attr", trial_id, "a0", "last", None),  # set twice: the last wins
            ("system_attr", trial_id, "s", {"x": 1}, None)]


def test_the_rows_equal_optunas_own_writes_in_a_statement_per_table(
        storage: optuna.storages.RDBStorage) -> None:
    name = f"rows-{uuid.uuid4().hex[:8]}"
    study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], name)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    sqlalchemy.event.listen(storage.engine, "before_cursor_execute", count)
    try:
        ours, theirs = storage.create_new_trial(study_id), storage.create_new_trial(study_id)
        trial_writes.one_by_one(storage, _writes(theirs, 3))  # Optuna's own calls
        statements.clear()
        trial_writes.write_all(storage, _writes(ours, 3))
        few = len(statements)
        statements.clear()
        trial_writes.write_all(storage, _writes(ours, 30)[3:])  # attributes only, ten times more
        assert len(statements) <= few  # a statement per table, whatever the number of rows
        got, want = storage.get_trial(ours), storage.get_trial(theirs)
        assert got.params == want.params and got.distributions == want.distributions
        assert got.system_attrs == want.system_attrs
        assert {k: got.user_attrs[k] for k in want.user_attrs} == want.user_attrs
        assert got.user_attrs["a0"] == "last" and len(got.user_attrs) == 30
    finally:
        sqlalchemy.event.remove(storage.engine, "before_cursor_execute", count)
        optuna.delete_study(study_name=name, storage=storage)


def test_a_parameter_is_checked_against_the_distribution_stored_for_its_study(
        storage: optuna.storages.RDBStorage) -> None:
    """Without Optuna's cache (which knows the study's distributions), the stored one is read:
    a float range made a choice is refused, and nothing of the batch is written."""
    name = f"rows-{uuid.uuid4().hex[:8]}"
    study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], name)
    other = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], name + "-other")
    try:
        first = storage.create_new_trial(study_id)
        trial_writes.write_all(storage, [("param", first, "lr", 1e-3, DISTS["lr"])])
        second = storage.create_new_trial(study_id)
        bad = [("user_attr", second, "seen", True, None),
               ("param", second, "lr", 0.0, CategoricalDistribution(["a", "b"]))]
        with pytest.raises(ValueError):
            trial_writes.write_all(storage, bad)
        assert storage.get_trial(second).user_attrs == {}
        elsewhere = storage.create_new_trial(other)  # another study's "lr" may be anything
        trial_writes.write_all(storage, [("param", elsewhere, "lr", 1.0, DISTS["opt"])])
        assert storage.get_trial(elsewhere).params == {"lr": "adam"}
        storage.set_trial_state_values(second, optuna.trial.TrialState.FAIL)
        with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
            trial_writes.write_all(storage, [("user_attr", second, "late", 1, None)])
    finally:
        optuna.delete_study(study_name=name, storage=storage)
        optuna.delete_study(study_name=name + "-other", storage=storage)

"""Batched trial writes: one journal append holding the lines Optuna itself would write."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from sweeps.store import trial_writes
from sweeps.store.storages import open_storage

from ..servers import require_postgres


def _lines(path: Path) -> int:
    return len(path.read_bytes().splitlines())


def test_params_and_attrs_in_one_append_read_back_by_a_plain_optuna(tmp_path: Path) -> None:
    journal = tmp_path / "s.journal"
    study = optuna.create_study(storage=open_storage(str(journal)), study_name="s")
    trial = study.ask()
    appends: list[int] = []
    backend = study._storage._backend  # type: ignore[attr-defined]
    real_append = backend.append_logs
    backend.append_logs = lambda logs: (appends.append(len(logs)), real_append(logs))[1]
    with trial_writes.batched(trial):
        lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
        width = trial.suggest_int("width", 8, 64)
        assert trial.params == {"lr": lr, "width": width}  # readable inside the block
        trial.set_user_attr("config", {"lr": lr})
        trial.set_user_attr("optimizer", "adam")
    assert appends == [4]  # two params, two attributes: one lock, one write, one fsync
    trial_writes.set_user_attrs(trial, {"final": {"test/acc": 0.9}, "epochs": 3})
    assert appends == [4, 2]
    study.tell(trial, 0.5)
    # a fresh process-independent reader (Optuna's own JournalStorage) sees all of it
    from optuna.storages.journal import JournalFileBackend

    fresh = optuna.load_study(study_name="s",
                              storage=optuna.storages.JournalStorage(JournalFileBackend(str(journal))))
    (t,) = fresh.trials
    assert t.params == {"lr": lr, "width": width} and t.value == 0.5
    assert t.user_attrs == {"config": {"lr": lr}, "optimizer": "adam",
                            "final": {"test/acc": 0.9}, "epochs": 3}


def test_a_finished_trial_refuses_the_batch_and_the_storage_stays_usable(tmp_path: Path) -> None:
    journal = tmp_path / "s.journal"
    storage = open_storage(str(journal))
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    before = _lines(journal)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        trial_writes.set_user_attrs(trial, {"a": 1, "b": 2})
    assert _lines(journal) == before  # nothing written
    # a trial finished by another process between the check and the append: Optuna's replay
    # refuses each of our lines for it; every one is read past, and the next calls work
    from optuna.storages.journal._storage import JournalOperation

    other = study.ask()
    writer = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal)))
    writer.set_trial_state_values(other._trial_id, optuna.trial.TrialState.FAIL)
    worker_id = storage._replay_result.worker_id  # type: ignore[attr-defined]
    storage._backend.append_logs([  # type: ignore[attr-defined]
        {"op_code": JournalOperation.SET_TRIAL_USER_ATTR, "worker_id": worker_id,
         "trial_id": other._trial_id, "user_attr": {k: 1}} for k in ("a", "b", "c")])
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        trial_writes._sync_past_refusals(storage)  # type: ignore[arg-type]
    assert len(study.get_trials()) == 2 and study.ask().number == 2


@pytest.mark.postgres
def test_on_postgresql_the_batch_is_one_transaction_read_back_by_a_plain_optuna() -> None:
    """The same rows Optuna's own calls write, one statement per table in one commit; a
    finished trial refuses the whole batch (nothing of it written)."""
    import uuid

    import sqlalchemy

    pg_url = require_postgres()
    storage = open_storage(pg_url)
    name = f"tw{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(storage=storage, study_name=name)
    try:
        events: list[str] = []

        def statement(conn: object, cursor: object, text: str, *args: object) -> None:
            if text.lstrip().upper().startswith("INSERT"):
                events.append("insert")

        sqlalchemy.event.listen(storage.engine, "before_cursor_execute", statement)
        sqlalchemy.event.listen(storage.engine, "commit", lambda conn: events.append("commit"))
        from sweeps.store.quiet import quietly

        trial = quietly(study.ask)  # (Optuna's "heartbeat ... Study.optimize" note: ours beat)
        events.clear()
        with trial_writes.batched(trial):
            lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
            width = trial.suggest_int("width", 8, 64)
            trial.set_user_attr("config", {"lr": lr})
            trial.set_user_attr("optimizer", "adam")
        writes = "".join("i" if e == "insert" else "c" for e in events).strip("c")
        # four rows: one INSERT per table (parameters, attributes), one transaction
        assert writes.count("i") == 2 and "c" not in writes
        study.tell(trial, 0.5)
        plain = optuna.load_study(study_name=name, storage=optuna.storages.RDBStorage(
            storage.url))
        (t,) = plain.trials
        assert t.params == {"lr": lr, "width": width} and t.value == 0.5
        assert t.user_attrs == {"config": {"lr": lr}, "optimizer": "adam"}
        # the next trial's param is checked against the study's distribution, as Optuna does
        bad = quietly(study.ask)
        with pytest.raises(ValueError), trial_writes.batched(bad):
            bad.set_user_attr("seen", True)
            bad.suggest_categorical("lr", ["a", "b"])  # "lr" was a float range
        assert "seen" not in study.trials[1].user_attrs  # the batch is written whole or not at all
        study.tell(bad, state=optuna.trial.TrialState.FAIL)
        with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
            trial_writes.set_user_attrs(bad, {"a": 1, "b": 2})
        assert set(study.trials[1].user_attrs) == set()
        sqlalchemy.event.remove(storage.engine, "before_cursor_execute", statement)
    finally:
        optuna.delete_study(study_name=name, storage=storage)


def test_a_journal_made_again_at_the_same_path_is_read_afresh(tmp_path: Path) -> None:
    """open_storage keeps one storage per journal file in a process; a new file at the same
    path (the inode may be reused) is never read through the old one's replay."""
    journal = tmp_path / "s.journal"
    first = open_storage(str(journal))
    optuna.create_study(storage=first, study_name="old").add_trials(
        [optuna.trial.create_trial(value=float(i)) for i in range(5)])
    kept = open_storage(str(journal))
    assert open_storage(str(journal)) is kept  # the same file: the open storage
    assert len(optuna.load_study(study_name="old", storage=kept).trials) == 5
    journal.unlink()
    again = open_storage(str(journal))
    optuna.create_study(storage=again, study_name="new").add_trials(
        [optuna.trial.create_trial(value=float(i)) for i in range(9)])
    seen = open_storage(str(journal))
    assert [s.study_name for s in seen.get_all_studies()] == ["new"]
    assert len(optuna.load_study(study_name="new", storage=seen).trials) == 9


@pytest.mark.parametrize("state", ["complete", "pruned", "failed"])
def test_on_a_database_the_result_and_the_tell_are_one_transaction(tmp_path: Path, state: str) -> None:
    """`tell_with_attrs`: the result attributes and the tell commit once, and read back as
    the two separate writes would; a trial finished meanwhile refuses both."""
    import sqlalchemy
    from optuna.trial import TrialState

    storage = open_storage(f"sqlite:///{tmp_path / 'db.sqlite'}")
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    trial.report(0.7, 1)
    commits: list[int] = []
    engine = study._storage._backend.engine  # type: ignore[attr-defined]
    wrote = [False]

    def executed(conn: object, cursor: object, text: str, *args: object) -> None:
        wrote[0] = wrote[0] or text.lstrip().upper().startswith(("INSERT", "UPDATE"))

    def committed(conn: object) -> None:  # a transaction that wrote (reads commit too)
        if wrote[0]:
            commits.append(1)
        wrote[0] = False

    sqlalchemy.event.listen(engine, "after_cursor_execute", executed)
    sqlalchemy.event.listen(engine, "commit", committed)
    attrs = {"state": state, "final": {"val/loss": 0.3}}
    tell = {"complete": {"value": 0.3}, "pruned": {"state": TrialState.PRUNED},
            "failed": {"state": TrialState.FAIL}}[state]
    trial_writes.tell_with_attrs(study, trial, attrs, **tell)  # type: ignore[arg-type]
    sqlalchemy.event.remove(engine, "commit", committed)
    sqlalchemy.event.remove(engine, "after_cursor_execute", executed)
    assert len(commits) == 1
    back = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'db.sqlite'}").trials[0]
    want = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "failed": TrialState.FAIL}
    assert back.state == want[state] and back.user_attrs == attrs and back.datetime_complete
    assert back.value == {"complete": 0.3, "pruned": 0.7, "failed": None}[state]
    assert trial.user_attrs == attrs  # the worker's copy too

    other = study.ask()
    elsewhere = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'db.sqlite'}")
    elsewhere.tell(other.number, state=TrialState.FAIL)  # another process failed it meanwhile
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        trial_writes.tell_with_attrs(study, other, {"state": "complete"}, 0.1)
    again = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'db.sqlite'}").trials[1]
    assert again.state == TrialState.FAIL and again.user_attrs == {}


@pytest.mark.parametrize("where", ["journal", "sqlite"])
def test_tpes_relative_parameters_go_with_the_batch(tmp_path: Path, where: str) -> None:
    """TPE (multivariate, constant liar: Optuna 5's defaults) shares what it sampled through a
    system attribute of the running trial; inside `batched` that is part of the one write."""
    url = str(tmp_path / "s.journal") if where == "journal" else f"sqlite:///{tmp_path / 'db.sqlite'}"
    study = optuna.create_study(storage=open_storage(url), study_name="s",
                                sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=2))
    dist = {k: optuna.distributions.FloatDistribution(0, 1) for k in ("x", "y")}
    for v in (0.1, 0.5, 0.9):
        study.add_trial(optuna.trial.create_trial(params={"x": v, "y": v}, distributions=dist, value=v))
    trial = study.ask()
    writes: list[list[str]] = []
    real = trial_writes.write_all
    trial_writes.write_all = lambda storage, w: (writes.append([k for k, *_ in w]), real(storage, w))[1]  # type: ignore[assignment]
    try:
        with trial_writes.batched(trial):
            trial.suggest_float("x", 0, 1)
            trial.suggest_float("y", 0, 1)
    finally:
        trial_writes.write_all = real  # type: ignore[assignment]
    assert writes == [["system_attr", "param", "param"]]  # one write: no system attribute alone
    back = optuna.load_study(study_name="s", storage=open_storage(url)).trials[-1]
    assert any(k.startswith("tpe:relative_params") for k in back.system_attrs)
    assert set(back.params) == {"x", "y"} and study._storage is trial.storage  # both restored

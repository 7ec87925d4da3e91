"""`sweeps status`'s counts and best trials from a few queries (`sweeps.store.study_digest`)
equal what reading every trial gives: on the journal, SQLite and PostgreSQL, for both
directions, with ties, diverged, queued, running and pruned trials."""

from __future__ import annotations

import math
import uuid
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from sweeps.store.journal import open_journal
from sweeps.store.study_digest import _from_trials, digests

from .test_trial_reads import postgres_storage


@pytest.fixture(params=["journal", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def storage(request: Any, tmp_path: Path) -> Any:
    if request.param == "journal":
        return open_journal(str(tmp_path / "digest.journal"))
    if request.param == "sqlite":
        return optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'digest.db'}")
    return postgres_storage()


def _grow(study: optuna.Study, values: list[Any]) -> None:
    dist = {"lr": FloatDistribution(1e-4, 1.0, log=True)}
    for i, value in enumerate(values):
        state, attrs = TrialState.COMPLETE, {"final": {"val/acc": value}}
        if value == "diverged":
            state, value, attrs = TrialState.FAIL, None, {"state": "diverged"}
        elif value == "failed":
            state, value, attrs = TrialState.FAIL, None, {"state": "failed"}
        elif value in ("pruned", "running"):
            state, value = TrialState[value.upper()], None
        study.add_trial(optuna.trial.create_trial(params={"lr": 10 ** -(i % 4)}, distributions=dist,
                                                  value=value, state=state, user_attrs=attrs))
    study.enqueue_trial({"lr": 0.01})


def test_digests_equal_a_read_of_every_trial(storage: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    grown = [("max", [0.5, 0.9, "diverged", 0.9, "failed", "pruned", "running", 0.1]),
             ("min", [0.5, 0.2, "diverged", "diverged", 0.2, math.inf, 0.3]),
             ("max", [math.inf, 0.5, "failed"]),
             ("max", ["running", "failed"])]  # nothing completed: no best
    studies = []
    try:
        for i, (direction, values) in enumerate(grown):
            study = optuna.create_study(study_name=f"digest-{tag}-{i}", storage=storage,
                                        direction="maximize" if direction == "max" else "minimize")
            _grow(study, values)
            studies.append(study)
        got = digests(studies)
        want = [_from_trials(s, s.get_trials(deepcopy=False)) for s in studies]
        assert [d.counts for d in got] == [d.counts for d in want]
        assert [None if d.best is None else d.best.number for d in got] == \
            [None if d.best is None else d.best.number for d in want] == [1, 1, 0, None]
        assert got[0].counts == {"complete": 4, "diverged": 1, "failed": 1, "pruned": 1,
                                 "running": 1, "waiting": 1}
        assert got[0].best is not None and got[0].best.user_attrs["final"] == {"val/acc": 0.9}
    finally:
        if isinstance(storage, optuna.storages.RDBStorage):
            for study in studies:
                optuna.delete_study(study_name=study.study_name, storage=storage)


def test_a_status_of_a_large_study_reads_no_trial_but_the_best(tmp_path: Path) -> None:
    """The digest's queries do not grow into a read of every trial: a study of 300 trials is
    counted and its best found in three queries, whatever its size."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'large.db'}")
    study = optuna.create_study(study_name="large", storage=storage, direction="maximize")
    _grow(study, [i / 300 for i in range(300)])
    queries: list[str] = []

    def count(*args: Any) -> None:
        queries.append(str(args[2]))

    sqlalchemy.event.listen(storage.engine, "before_cursor_execute", count)
    try:
        (digest,) = digests([optuna.load_study(study_name="large", storage=storage)])
    finally:
        sqlalchemy.event.remove(storage.engine, "before_cursor_execute", count)
    assert digest.counts == {"complete": 300, "waiting": 1} and digest.best is not None
    assert digest.best.number == 299
    reads_of_params = [q for q in queries if "FROM trial_params" in q]
    assert len(reads_of_params) <= 1  # the best trial's own, read whole by its id


def test_the_live_view_reads_the_counts_once_per_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """A launch's live view (line and table) reads the studies' counts once per refresh, and
    shows what the line and the table show on their own."""
    from sweeps.report import summary
    from sweeps.run import progress

    studies = []
    for i, (direction, values) in enumerate([("maximize", [0.5, 0.9, "failed", "running"]),
                                             ("minimize", [0.4, "diverged", 0.2])]):
        study = optuna.create_study(study_name=f"view-{i}", direction=direction)
        study.set_user_attr("optimizer", ["adam", "sgd"][i])
        study.set_user_attr("budget", 5)
        _grow(study, values)
        studies.append(study)
    alone_line = progress.line(studies, 10)
    alone_table = [list(c.cells) for c in summary.status_table(studies, "t").columns]
    reads = []
    real = summary.study_rows
    monkeypatch.setattr(summary, "study_rows", lambda s: reads.append(1) or real(s))
    group = progress.render(studies, "t", 10)
    assert len(reads) == 1
    text, table = group.renderables
    assert str(text) == alone_line
    assert "complete 4  pruned 0  failed 1  diverged 1  running 1" in alone_line
    assert [list(c.cells) for c in table.columns] == alone_table

"""A sweep's costs as it grows: what each step reads does not grow with the trials it holds.

Test-sized versions of benchmarks/growth.py (which times 100, 1,000 and 10,000 trials):
here the counts of what is read are asserted, never a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from sweeps.report import plots
from sweeps.report import tuning_budget as budget

from .benchmark_scripts import load
from .servers import require_postgres


def _growth() -> Any:
    return load("growth.py", "growth_benchmark")


def _rows_read_under_the_lock(tmp_path: Path, size: int, pg_url: str) -> tuple[int, int]:
    """(statements, rows fetched) while a worker holds the budget lock for one claim, in a
    sweep on PostgreSQL grown to `size` trials (one of them running)."""
    import uuid

    import sqlalchemy

    from sweeps.run.worker import Worker
    from sweeps.search.studies import sweep_studies
    from sweeps.store.storages import open_storage

    growth = _growth()
    cwd = tmp_path / f"n{size}"
    cwd.mkdir()
    name = f"rows{uuid.uuid4().hex[:8]}"
    growth.launch(cwd, name, 1, pg_url, 1)
    storage = open_storage(pg_url)
    (study,) = sweep_studies(storage, name)
    try:
        growth.grow(study, size)
        growth.launch(cwd, name, size + 5, pg_url, 0)
        worker = Worker.connect(pg_url, name, quiet=True)
        worker.claims.next_job()  # a running trial, as other workers' are
        seen = [0, 0]

        def fetched(conn: Any, cursor: Any, text: str, *args: Any) -> None:
            seen[0] += 1
            seen[1] += max(cursor.rowcount, 0) if text.lstrip().upper().startswith("SELECT") else 0

        sqlalchemy.event.listen(storage.engine, "after_cursor_execute", fetched)
        try:
            from sweeps.store import claim_queries

            attrs = claim_queries.study_attrs(worker.claims.studies)  # read before the lock
            seen[:] = [0, 0]
            assert worker.claims._reserve_trial(attrs) is not None
        finally:
            sqlalchemy.event.remove(storage.engine, "after_cursor_execute", fetched)
        return seen[0], seen[1]
    finally:
        for s in sweep_studies(storage, name):
            optuna.delete_study(study_name=s.study_name, storage=storage)


@pytest.mark.slow
@pytest.mark.postgres
def test_the_budget_lock_is_held_for_reads_that_do_not_grow_with_the_sweep(tmp_path: Path) -> None:

    pg_url = require_postgres()
    small = _rows_read_under_the_lock(tmp_path, 10, pg_url)
    large = _rows_read_under_the_lock(tmp_path, 80, pg_url)
    assert small == large, (small, large)  # a count, the failed trials, the new row: no more


def test_the_report_plots_a_bounded_sample_of_a_large_study() -> None:
    study = optuna.create_study(direction="maximize")
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    study.add_trials([optuna.trial.create_trial(params={"x": i / 5000}, distributions=dist,
                                                value=(i * 37 % 5000) / 5000) for i in range(5000)])
    data = plots.StudyData.of(study)
    assert len(data.trials) == plots.PLOT_TRIALS and data.finished == 5000
    best = sorted((t.value for t in study.trials), reverse=True)[:plots.PLOT_BEST]
    assert sorted((t.value for t in data.trials), reverse=True)[:plots.PLOT_BEST] == best
    assert "1,000 of 5,000 trials" in data.sampled
    small = plots.StudyData.of(optuna.create_study())
    assert small.sampled == "" and small.trials == []


def test_a_budget_curve_has_a_bounded_number_of_points() -> None:
    assert len(budget.curve_ns(10_000)) <= budget.DENSE + budget.CURVE_POINTS + 1
    assert budget.curve_ns(10_000)[-1] == 10_000 and budget.curve_ns(5) == [1, 2, 3, 4, 5]


def test_the_growth_table_names_each_target_and_the_growth() -> None:
    growth = _growth()
    row = {"sweeps status": 0.5, "sweeps best": 0.6, "sweeps report": 5.0, "claim": 0.002,
           "sample": 0.02, "grow (add_trials)": 0.1}
    rows = {100: row, 10000: {**row, "sweeps status": 2.5, "claim": 0.004, "sample": 0.03}}
    text = "\n".join(growth.table(rows))
    assert "5.0x" in text and "<= 2 s at 10,000" in text and "<= 2x of at 100" in text
    verdicts = growth.verdicts(rows)
    assert "sweeps status at 10,000 trials: 2.50 s (target <= 2 s): MISSED" in verdicts
    assert "claim + sample, 10,000 vs 100 trials: 1.5x (target <= 2x): met" in verdicts


def _mixed(storage: Any, name: str) -> optuna.Study:
    """Trials in every state the budget tells apart, through Optuna's API."""
    study = optuna.create_study(storage=storage, study_name=name)
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    made = [optuna.trial.create_trial(params={"x": 0.1}, distributions=dist, value=0.5),
            optuna.trial.create_trial(params={"x": 0.2}, distributions=dist,
                                      state=optuna.trial.TrialState.PRUNED),
            optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL,  # its own failure: counts
                                      user_attrs={"state": "diverged", "failure_reason": "nan"}),
            optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL,  # a dead worker: does not
                                      user_attrs={"state": "interrupted", "config": {}}),
            optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL)]  # a lost heartbeat
    study.add_trials(made)
    study.ask()  # running: counts
    study.enqueue_trial({"x": 0.3})  # waiting: does not
    return study


def test_the_counted_budget_is_the_budget_read_trial_by_trial(tmp_path: Path) -> None:
    from sweeps.search import budget as study_budget
    from sweeps.store.storages import open_storage

    study = _mixed(open_storage(str(tmp_path / "s.journal")), "s")
    used, failed = study_budget.used_and_failed(study)
    assert used == study_budget.used_budget(study) == 4 and len(failed) == 3
    assert study_budget.retry_candidate(study, 2, failed).number == 3


@pytest.mark.postgres
def test_on_postgresql_the_budget_is_one_count_and_the_failed_trials() -> None:
    import uuid

    from sweeps.search import budget as study_budget
    from sweeps.store.storages import open_storage

    pg_url = require_postgres()
    storage = open_storage(pg_url)
    name = f"count{uuid.uuid4().hex[:8]}"
    from sweeps.store.quiet import quietly

    study = quietly(_mixed, storage, name)
    try:
        loaded = optuna.load_study(study_name=name, storage=storage)
        used, failed = study_budget.used_and_failed(loaded)
        assert used == study_budget.used_budget(loaded) == 4
        assert sorted(t.number for t in failed) == [2, 3, 4]
        assert study_budget.retry_candidate(loaded, 2, failed).number == 3
    finally:
        optuna.delete_study(study_name=study.study_name, storage=storage)

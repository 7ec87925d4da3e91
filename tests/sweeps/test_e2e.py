"""End to end on the embedded stores, as a user runs it: launch with two workers, MLflow
parent/child runs and curves, best, reproduce, status, report, resume, Ctrl-C, dead worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from sweeps.cli import app

from .conftest import SMALL, run_sweeps
from .helpers import journal_trials, mlflow_runs, running_trial, state_counts, wait_for

pytestmark = pytest.mark.slow


def test_two_workers_sweep_track_best_reproduce_report_resume(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    args = ["launch", *SMALL, "sweep.workers=2", "sweep.threads_per_worker=1"]
    proc = run_sweeps(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trials = journal_trials(tmp_path / "sweeps.journal")
    assert set(trials) == {"quick.sgd", "quick.adam_to_sgd"}
    assert [len(ts) for ts in trials.values()] == [2, 2]  # budget exactly, never overshot
    every = [t for ts in trials.values() for t in ts]
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in every)
    workers = {t.user_attrs["worker"] for t in every}
    assert len(workers) == 2  # both local worker processes took trials

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    runs = mlflow_runs(uri)
    parents = [r for r in runs if r.data.tags.get("sweeps.kind") == "launch"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 4
    parent_id = parents[0].info.run_id
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent_id}
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    by_id = {t.user_attrs["mlflow_run_id"]: t for t in every}
    for run in children:
        trial = by_id[run.info.run_id]
        tags = run.data.tags
        assert tags["sweeps.trial"] == str(trial.number)
        assert tags["sweeps.state"] == trial.state.name.lower()
        assert tags["sweeps.optimizer"] in ("sgd", "adam_to_sgd")
        for key in ("sweeps.study", "sweeps.worker", "sweeps.device", "sweeps.git_commit",
                    "sweeps.versions"):
            assert tags[key]
        assert run.data.params["optimizer.name"] == tags["sweeps.optimizer"]
        assert run.data.metrics["trial"] == trial.number
        curve = client.get_metric_history(run.info.run_id, "val/acc")
        assert [m.step for m in curve] == list(range(1, trial.user_attrs["epochs"] + 1))
        gap = client.get_metric_history(run.info.run_id, "gap/acc")
        assert len(gap) == len(curve)
        assert client.get_metric_history(run.info.run_id, "batch/loss")
        assert "config.yaml" in [a.path for a in client.list_artifacts(run.info.run_id)]
    assert "search_space.yaml" in [a.path for a in client.list_artifacts(parent_id)]

    # the read-only commands in-process (CliRunner), in the launch directory
    cli = CliRunner()
    best = cli.invoke(app, ["best"])
    assert best.exit_code == 0, best.output
    assert "sweeps reproduce quick --trial" in best.output and "python -m trainer" in best.output

    rep = run_sweeps("reproduce", "--trial", "best", cwd=tmp_path)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert "reproduced: identical" in rep.stdout
    reproduced = [r for r in mlflow_runs(uri) if "sweeps.reproduces" in r.data.tags]
    assert len(reproduced) == 1 and reproduced[0].data.tags["sweeps.reproduces"] in by_id

    status = cli.invoke(app, ["status", "quick"])
    assert status.exit_code == 0 and "quick.adam_to_sgd" in status.output
    report = cli.invoke(app, ["report"])
    assert report.exit_code == 0, report.output
    assert (tmp_path / "reports/quick/report.html").stat().st_size > 10_000
    assert "| sgd |" in (tmp_path / "reports/quick/summary.md").read_text()

    again = run_sweeps(*args, cwd=tmp_path)  # same launch again: the budget is already spent
    assert again.returncode == 0, again.stderr
    assert [len(ts) for ts in journal_trials(tmp_path / "sweeps.journal").values()] == [2, 2]


def _launch_in_background(cwd: Path, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI")}
    return subprocess.Popen(
        [sys.executable, "-m", "sweeps", "launch", *SMALL, "trainer.epochs=15", *extra],
        cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)


def test_ctrl_c_leaves_nothing_running_and_the_next_launch_resumes(tmp_path: Path) -> None:
    proc = _launch_in_background(tmp_path, "sweep.workers=2", "sweep.threads_per_worker=1")
    journal = tmp_path / "sweeps.journal"
    wait_for(lambda: running_trial(journal), timeout=180)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    trials = journal_trials(journal)
    assert "RUNNING" not in state_counts(trials)
    interrupted = [t for ts in trials.values() for t in ts if t.state == TrialState.FAIL]
    assert interrupted and all(t.user_attrs["failure_reason"].startswith("interrupted")
                               for t in interrupted)
    runs = mlflow_runs(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert not [r for r in runs if r.info.status == "RUNNING"]
    for t in interrupted:
        if "mlflow_run_id" not in t.user_attrs:
            continue  # interrupted before its MLflow run was opened
        run = next(r for r in runs if r.info.run_id == t.user_attrs["mlflow_run_id"])
        assert run.info.status in ("KILLED", "FAILED") and run.data.tags["sweeps.state"] == "failed"

    # resume with short trials: interrupted trials do not use up the budget
    resumed = run_sweeps("launch", *SMALL, "sweep.workers=2", "sweep.threads_per_worker=1",
                         "trainer.epochs=15", "trainer.epochs=2", cwd=tmp_path)
    assert resumed.returncode == 2 and "trainer.epochs: 15 there, 2 now" in resumed.stderr
    proc = _launch_in_background(tmp_path, "sweep.workers=2", "sweep.threads_per_worker=1",
                                 "sweep.pruner.name=none")
    assert proc.wait(timeout=600) == 0, proc.stdout.read() if proc.stdout else ""
    trials = journal_trials(journal)
    finished = [t for ts in trials.values() for t in ts
                if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 4


def test_a_dead_local_worker_is_detected_and_its_trial_failed(tmp_path: Path) -> None:
    proc = _launch_in_background(tmp_path, "sweep.workers=1")
    journal = tmp_path / "sweeps.journal"
    trial = wait_for(lambda: running_trial(journal), timeout=180)
    pid = int(trial.user_attrs["worker"].rsplit(":", 1)[1])
    os.kill(pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    assert "died" in out
    failed = [t for ts in journal_trials(journal).values() for t in ts if t.number == trial.number
              and t.state == TrialState.FAIL and t.user_attrs.get("failure_reason", "").startswith(
                  "worker died")]
    assert failed
    runs = mlflow_runs(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = next(r for r in runs if r.info.run_id == trial.user_attrs["mlflow_run_id"])
    assert run.info.status == "FAILED" and run.data.tags["sweeps.state"] == "failed"

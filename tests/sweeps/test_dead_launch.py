"""A launch killed with SIGKILL (the OOM killer, a lost SSH session) leaves nothing behind:
its workers leave with it, their trials failed for the next launch to retry, and its MLflow
run is closed as KILLED, with the reason, by the next launch, worker or `sweeps sync`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from optuna.trial import TrialState

from sweeps.store import owners
from sweeps.tracking import runs as tracking_runs

from .conftest import SMALL, run_sweeps
from .helpers import journal_trials, mlflow_runs, process_gone, running_trial, wait_for


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_launch_run_is_closed_once_its_launch_process_isprocess_gone(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    c = MlflowClient(uri)
    exp = c.create_experiment("s", artifact_location=str(tmp_path / "artifacts"))
    tags = {"sweeps.kind": "launch"}
    dead = c.create_run(exp, tags={**tags, tracking_runs.LAUNCH_PROCESS: owners.process_id(_dead_pid())})
    alive = c.create_run(exp, tags={**tags, tracking_runs.LAUNCH_PROCESS: owners.process_id()})
    elsewhere = c.create_run(exp, tags={**tags, tracking_runs.LAUNCH_PROCESS: "other-host:1:5"})
    detached = c.create_run(exp, tags={**tags, tracking_runs.LAUNCH_PROCESS: owners.process_id(
        _dead_pid()), tracking_runs.DETACHED: "1"})
    assert tracking_runs.close_orphan_parents(uri, "s") == [dead.info.run_id]
    closed = c.get_run(dead.info.run_id)
    assert closed.info.status == "KILLED"
    assert "ended without closing it" in closed.data.tags["sweeps.end_reason"]
    for run in (alive, elsewhere, detached):  # alive, not to be judged from here, or its array's
        assert c.get_run(run.info.run_id).info.status == "RUNNING"
    assert tracking_runs.close_orphan_parents(uri, "s") == []
    assert tracking_runs.close_orphan_parents(uri, "no-such-sweep") == []


def test_a_reused_pid_is_not_the_process_that_started_the_run() -> None:
    me = owners.process_id()
    host, pid, start = me.split(":")
    assert owners.process_gone(me) is False
    assert owners.process_gone(f"{host}:{pid}:{int(start or 0) + 1}") is (bool(start))
    assert owners.process_gone(f"{host}:{_dead_pid()}:1") is True
    assert owners.process_gone("not-this-host:1:1") is None


@pytest.mark.slow
def test_kill_9_of_a_launch_its_workers_leave_and_the_next_launch_closes_its_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI")}
    words = [*SMALL, "trainer.epochs=60", "sweep.threads_per_worker=1"]
    proc = subprocess.Popen([sys.executable, "-m", "sweeps", "launch", *words, "sweep.workers=2"],
                            cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    journal = tmp_path / "sweeps.journal"
    try:
        trial = wait_for(lambda: running_trial(journal), timeout=180)
        workers = {int(t.user_attrs["worker"].rsplit(":", 1)[1]) for ts in journal_trials(journal).values()
                   for t in ts if t.state == TrialState.RUNNING and "worker" in t.user_attrs}
        assert trial is not None and workers
        proc.kill()  # SIGKILL: the launch can do nothing about it
        proc.communicate(timeout=30)
        wait_for(lambda: all(process_gone(pid) for pid in workers), timeout=60, interval=0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
    trials = [t for ts in journal_trials(journal).values() for t in ts]
    assert not [t for t in trials if t.state == TrialState.RUNNING]  # each worker failed its own
    stopped = [t for t in trials if t.state == TrialState.FAIL]
    assert stopped and all(t.user_attrs["failure_reason"].startswith("interrupted") for t in stopped)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    launches = [r for r in mlflow_runs(uri) if r.data.tags.get("sweeps.kind") == "launch"]
    assert [r.info.status for r in launches] == ["RUNNING"]  # nobody could close it yet

    again = run_sweeps("launch", *words, "sweep.workers=0", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "closed 1 MLflow run(s) of earlier launches of quick" in again.stdout, again.stdout
    runs = {r.info.run_id: r for r in mlflow_runs(uri)}
    old = runs[launches[0].info.run_id]
    assert old.info.status == "KILLED" and "PID" in old.data.tags["sweeps.end_reason"]
    assert not [r for r in runs.values() if r.info.status == "RUNNING"]

"""Self-healing: a trial whose worker was SIGKILLed is retried with the same parameters
and seed, resumes from its last epoch checkpoint, and ends where an uninterrupted run
ends; its MLflow run holds the whole curve and the killed run points to it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from sweeps.cli import app
from sweeps.run.outcome import _jsonable
from sweeps.run.worker import Worker
from trainer.loop import fit

from .conftest import SMALL, run_sweeps
from .helpers import journal_trials, mlflow_runs, wait_for

EPOCHS = 15
SLOW_TRIAL = ["sweep.optimizers=[sgd]", "sweep.n_trials=1", f"trainer.epochs={EPOCHS}",
              "search.common.batch_size.choices=[16]", "search.common.schedule.choices=[cosine]",
              "sweep.pruner.name=none", "sweep.workers=0",
              "sweep.checkpoint_every_s=0"]  # a checkpoint every epoch: these epochs are short


def _trials(journal: Path) -> list:
    try:
        return [t for ts in journal_trials(journal).values() for t in ts]
    except Exception:  # the journal is being written
        return []


@pytest.mark.slow
def test_a_killed_trial_resumes_from_its_last_epoch_and_ends_as_if_never_killed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    launch = run_sweeps("launch", *SMALL, *SLOW_TRIAL, cwd=tmp_path)
    assert launch.returncode == 0, launch.stdout + launch.stderr
    journal = tmp_path / "sweeps.journal"
    env = {k: v for k, v in os.environ.items() if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI")}
    victim = subprocess.Popen([sys.executable, "-m", "sweeps", "worker", "--study", "quick"],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    ckpt = tmp_path / "outputs/quick/quick.sgd/trial_0/checkpoints/last.pt"
    wait_for(lambda: ckpt.exists() and any(len(t.intermediate_values) >= 2
                                           for t in _trials(journal)), timeout=180, interval=0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)
    killed_at = max(len(t.intermediate_values) for t in _trials(journal))
    assert killed_at < EPOCHS, "the trial finished before the kill: make it slower"

    # the next worker fails the dead worker's trial (same host, dead pid) and retries it
    monkeypatch.chdir(tmp_path)
    for var in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    assert Worker.connect(str(journal), "quick", quiet=True).run() == 1
    first, retry = sorted(_trials(journal), key=lambda t: t.number)
    assert first.state == TrialState.FAIL and first.user_attrs["failure_reason"].startswith("worker died")
    assert retry.state == TrialState.COMPLETE
    assert retry.user_attrs["retry_of"] == 0 and retry.user_attrs["retry_history"] == [0]
    assert retry.params == first.params
    assert retry.user_attrs["config"] == first.user_attrs["config"]  # same seed, same everything
    resumed = retry.user_attrs["resumed_from_epoch"]
    assert 2 <= resumed <= EPOCHS - 1
    assert sorted(retry.intermediate_values) == list(range(1, EPOCHS + 1))

    # the same config trained without interruption ends with identical metrics (CPU)
    fresh = fit(retry.user_attrs["config"], output_dir=tmp_path / "fresh")
    assert _jsonable(fresh.final) == retry.user_attrs["final"]
    assert [m["val/acc"] for m in fresh.history] == retry.user_attrs["curves"]["val/acc"]

    # MLflow: the retry's run has every epoch; the killed run is FAILED and points to it
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    runs = {r.info.run_id: r for r in mlflow_runs(uri)}
    old, new = runs[first.user_attrs["mlflow_run_id"]], runs[retry.user_attrs["mlflow_run_id"]]
    assert old.info.status == "FAILED" and old.data.tags["sweeps.retried_by"] == new.info.run_id
    assert new.info.status == "FINISHED" and new.data.tags["sweeps.retry_of"] == old.info.run_id
    assert new.data.tags["sweeps.resumed_from_epoch"] == str(resumed)
    curve = MlflowClient(uri).get_metric_history(new.info.run_id, "val/acc")
    assert sorted(m.step for m in curve) == list(range(1, EPOCHS + 1))
    # the finished trial's checkpoints are gone; its history stays
    assert not ckpt.parent.exists() and (ckpt.parent.parent / "history.json").exists()


def test_retries_are_limited_and_own_failures_are_not_retried() -> None:
    import optuna
    from optuna.trial import create_trial

    from sweeps.search.budget import retry_candidate

    config = {"trainer": {}}
    study = optuna.create_study()
    died = {"failure_reason": "worker died (exit code -9)", "config": config}
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs=died))  # 0: retry it
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={  # 1: its own exception
        "state": "failed", "failure_reason": "RuntimeError: boom", "config": config}))
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={  # 2: diverged
        "state": "diverged", "failure_reason": "diverged: nan", "config": config}))
    assert retry_candidate(study, 2).number == 0
    # 3 retries 0 and dies too; 4 retries 3 and dies: two retries used up
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={
        **died, "retry_of": 0, "retry_history": [0]}))
    assert retry_candidate(study, 2).number == 3
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={
        **died, "retry_of": 3, "retry_history": [0, 3]}))
    assert retry_candidate(study, 2) is None
    assert retry_candidate(study, 3).number == 4
    assert retry_candidate(study, 0) is None  # sweep.max_retries=0: never


@pytest.mark.parametrize("override,message", [
    ("sweep.max_retries=-1", "sweep.max_retries=-1"),
    ("sweep.max_worker_restarts=-2", "sweep.max_worker_restarts=-2"),
    ("sweep.checkpoint_dir=/etc/passwd/ckpt", "sweep.checkpoint_dir=/etc/passwd/ckpt: /etc/passwd is a file"),
    ("sweep.checkpoint_dir=/proc/sweeps-ckpt", "sweep.checkpoint_dir=/proc/sweeps-ckpt: not writable"),
])
def test_bad_retry_settings_are_refused_before_anything_is_written(
        workdir: Path, cli, override: str, message: str) -> None:
    result = cli.invoke(app, ["launch", *SMALL, override])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert list(workdir.iterdir()) == []


def test_sync_writes_what_mlflow_missed_from_the_optuna_record(
        workdir: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from ..servers import free_port

    result = cli.invoke(app, ["launch", *SMALL, "sweep.workers=0", "sweep.pruner.name=none",
                              "tracking.patience_s=0"])
    assert result.exit_code == 0, result.output
    # the tracking server is away for the whole search (and patience is 0): no run is created
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    gone = f"http://127.0.0.1:{free_port()}"
    assert Worker.connect(str(workdir / "sweeps.journal"), "quick", quiet=True, tracking_uri=gone).run() == 4
    trials = [t for ts in journal_trials(workdir / "sweeps.journal").values() for t in ts]
    assert all(t.state == TrialState.COMPLETE and "mlflow_run_id" not in t.user_attrs for t in trials)
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    assert [r for r in mlflow_runs(uri) if r.data.tags.get("sweeps.kind") == "trial"] == []

    synced = cli.invoke(app, ["sync"])
    assert synced.exit_code == 0, synced.output
    assert "4 run(s) created, 0 completed, 0 already complete" in synced.output
    runs = [r for r in mlflow_runs(uri) if r.data.tags.get("sweeps.kind") == "trial"]
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
    client = MlflowClient(uri)
    by_trial = {(r.data.tags["sweeps.study"], int(r.data.tags["sweeps.trial"])): r for r in runs}
    for s, ts in journal_trials(workdir / "sweeps.journal").items():
        for t in ts:
            run = by_trial[(s, t.number)]
            curve = client.get_metric_history(run.info.run_id, "val/acc")
            assert [m.value for m in sorted(curve, key=lambda m: m.step)] == t.user_attrs["curves"]["val/acc"]
            assert run.data.metrics["test/acc"] == pytest.approx(t.user_attrs["final"]["test/acc"])
            assert run.data.tags["sweeps.state"] == "complete"
    again = cli.invoke(app, ["sync"])  # idempotent: nothing created twice
    assert "0 run(s) created, 0 completed, 4 already complete" in again.output

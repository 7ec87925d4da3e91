"""End to end on the embedded stores, as a user runs it: launch with two workers, MLflow
parent/child runs and curves, best, reproduce, status, report, resume, Ctrl-C, dead worker."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from sweeps.cli import app
from sweeps.tracking import params as tracking_params

from .conftest import SMALL, run_sweeps
from .helpers import journal_trials, mlflow_runs, recovery_figures, running_trial, state_counts, wait_for

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
        # what is no curve is no metric: the trial number and the split sizes are tags
        assert "trial" not in run.data.metrics and not any(k.startswith("data/") for k in run.data.metrics)
        if trial.state.name == "COMPLETE":
            assert int(tags["sweeps.data.val_size"]) == trial.user_attrs["final"]["data/val_size"]
        assert run.info.status == {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}.get(trial.state.name, "FAILED")
        curve = client.get_metric_history(run.info.run_id, "val/acc")
        assert [m.step for m in curve] == list(range(1, trial.user_attrs["epochs"] + 1))
        gap = client.get_metric_history(run.info.run_id, "gap/acc")
        assert len(gap) == len(curve)
        assert client.get_metric_history(run.info.run_id, "batch/loss")
        assert "config.yaml" in [a.path for a in client.list_artifacts(run.info.run_id)]
        # the run carries what varies; with its parent's it is the whole config
        assert tracking_params.rebuild(parents[0].data.params, run.data.params) == \
            tracking_params.flat_params(trial.user_attrs["config"])
        assert not set(run.data.params) & set(tracking_params.config_part(parents[0].data.params))
        assert tags["sweeps.reproduce"] == (f"sweeps reproduce quick --trial "
                                            f"{tags['sweeps.study']}:{trial.number}")
    assert {"search_space.yaml", "config.yaml"} <= {a.path for a in client.list_artifacts(parent_id)}
    assert parents[0].data.params["trainer.epochs"] == "2"

    # the read-only commands in-process (CliRunner), in the launch directory
    cli = CliRunner()
    best = cli.invoke(app, ["best"])
    assert best.exit_code == 0, best.output
    assert "sweeps reproduce quick --trial" in best.output and "python -m trainer" in best.output

    rep = run_sweeps("reproduce", "--trial", "best", cwd=tmp_path)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert "reproduced: identical" in rep.stdout
    tagged = shlex.split(children[0].data.tags["sweeps.reproduce"])  # the command a run shows
    rep = run_sweeps(*tagged[1:], cwd=tmp_path)
    assert rep.returncode == 0 and "reproduced: identical" in rep.stdout, rep.stdout + rep.stderr
    reproduced = [r for r in mlflow_runs(uri) if "sweeps.reproduces" in r.data.tags]
    assert len(reproduced) == 2 and {r.data.tags["sweeps.reproduces"] for r in reproduced} <= set(by_id)

    status = cli.invoke(app, ["status", "quick"])
    assert status.exit_code == 0 and "quick.adam_to_sgd" in status.output
    report = cli.invoke(app, ["report"])
    assert report.exit_code == 0, report.output
    assert (tmp_path / "reports/quick/report.html").stat().st_size > 10_000
    assert "| sgd |" in (tmp_path / "reports/quick/summary.md").read_text()

    again = run_sweeps(*args, cwd=tmp_path)  # same launch again: the budget is already spent
    assert again.returncode == 0, again.stderr
    assert [len(ts) for ts in journal_trials(tmp_path / "sweeps.journal").values()] == [2, 2]


# Trials long enough (a few seconds) that a test polling the journal sees one running with
# its MLflow run, and that a launch is still running when the test interrupts it, on a
# loaded machine too (15 epochs of this tiny sweep took under a second: CI once missed it).
LONG = "trainer.epochs=60"


def _launch_in_background(cwd: Path, *extra: str, long: str = LONG) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI", "OMP_WAIT_POLICY")}
    return subprocess.Popen(
        [sys.executable, "-m", "sweeps", "launch", *SMALL, long, *extra],
        cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)


def test_ctrl_c_leaves_nothing_running_and_the_next_launch_resumes(tmp_path: Path) -> None:
    proc = _launch_in_background(tmp_path, "sweep.workers=2", "sweep.threads_per_worker=1")
    journal = tmp_path / "sweeps.journal"
    try:
        wait_for(lambda: running_trial(journal), timeout=180)
    except AssertionError:  # say what the launch printed (once seen in CI: no trial in 180 s)
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError(f"no trial running after 180 s; the launch printed:\n"
                             f"{proc.communicate(timeout=30)[0][-4000:]}") from None
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    trials = journal_trials(journal)
    assert "RUNNING" not in state_counts(trials)
    interrupted = [t for ts in trials.values() for t in ts if t.state == TrialState.FAIL]
    assert interrupted and all(t.user_attrs["failure_reason"].startswith("interrupted")
                               for t in interrupted), [t.user_attrs for t in interrupted]
    runs = mlflow_runs(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert not [r for r in runs if r.info.status == "RUNNING"]
    for t in interrupted:
        if "mlflow_run_id" not in t.user_attrs:
            continue  # interrupted before its MLflow run was opened
        run = next(r for r in runs if r.info.run_id == t.user_attrs["mlflow_run_id"])
        assert run.info.status in ("KILLED", "FAILED") and run.data.tags["sweeps.state"] == "failed"

    # resume with short trials: interrupted trials do not use up the budget
    resumed = run_sweeps("launch", *SMALL, "sweep.workers=2", "sweep.threads_per_worker=1",
                         LONG, "trainer.epochs=2", cwd=tmp_path)
    assert resumed.returncode == 2 and "trainer.epochs: 60 there, 2 now" in resumed.stderr
    proc = _launch_in_background(tmp_path, "sweep.workers=2", "sweep.threads_per_worker=1",
                                 "sweep.pruner.name=none")
    assert proc.wait(timeout=600) == 0, proc.stdout.read() if proc.stdout else ""
    trials = journal_trials(journal)
    finished = [t for ts in trials.values() for t in ts
                if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 4


def test_embedded_chaos_two_killed_workers_are_replaced_and_their_trials_resumed(
        tmp_path: Path) -> None:
    """The chaos test's guarantees on the embedded stores (journal + SQLite), local workers:
    two workers SIGKILLed mid-trial, one after the other; the launch replaces them."""
    epochs, budget = 6, 8  # trials in all, over the two optimizers
    proc = _launch_in_background(tmp_path, "sweep.workers=2", "sweep.threads_per_worker=1",
                                 "sweep.pruner.name=none", f"trainer.epochs={epochs}",
                                 f"sweep.n_trials={budget}", "sweep.checkpoint_every_s=0")
    journal = tmp_path / "sweeps.journal"
    killed = []
    for _ in range(2):
        trial = wait_for(lambda: next((t for t in _all(journal) if t.state == TrialState.RUNNING
                                       and len(t.intermediate_values) >= 1
                                       and "retry_of" not in t.user_attrs
                                       and (t.user_attrs["optimizer"], t.number) not in killed),
                                      None), timeout=180, interval=0.1)
        os.kill(int(trial.user_attrs["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
        killed.append((trial.user_attrs["optimizer"], trial.number))
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out  # the launch replaced the workers and finished the budget
    assert out.count("died with exit code -9") == 2 and "restarted sweeps-worker-" in out

    trials = _all(journal)
    done, trained, line = recovery_figures(trials)
    print(f"\nembedded chaos: {line} for a budget of {budget} trials, {budget * epochs} epochs")
    assert len(done) == budget
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert trained <= budget * epochs + 2
    runs = {r.info.run_id: r for r in mlflow_runs(f"sqlite:///{tmp_path / 'mlflow.db'}")}
    assert not [r for r in runs.values() if r.info.status == "RUNNING"]
    by_key = {(t.user_attrs["optimizer"], t.number): t for t in trials}
    for optimizer, number in killed:
        lost = by_key[(optimizer, number)]
        assert lost.state == TrialState.FAIL and lost.user_attrs["failure_reason"].startswith("worker died")
        retry = next(t for t in done if t.user_attrs["optimizer"] == optimizer
                     and t.user_attrs.get("retry_of") == number)
        assert retry.params == lost.params and retry.user_attrs["resumed_from_epoch"] >= 1
        # the lost attempt's run, by its tags: killed after an epoch, its worker may not have
        # recorded the run id in Optuna yet (or, under load, its writer created no run at all:
        # then the launch's closing sync writes one from the Optuna record)
        olds = [r for r in runs.values() if r.data.tags.get("sweeps.kind") == "trial"
                and r.data.tags.get("sweeps.optimizer") == optimizer
                and r.data.tags.get("sweeps.trial") == str(number)]
        assert len(olds) == 1, [r.data.tags for r in olds]
        old = olds[0]
        assert old.info.run_id == lost.user_attrs.get("mlflow_run_id", old.info.run_id)
        assert old.info.status == "FAILED" and old.data.tags["sweeps.state"] == "failed"
        if "sweeps.synced" not in old.data.tags:  # opened by the killed worker: retired by the retry
            assert old.data.tags["sweeps.retried_by"] == retry.user_attrs["mlflow_run_id"]
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    for t in done:  # the whole curve in one run, resumed ones included
        steps = sorted(m.step for m in client.get_metric_history(t.user_attrs["mlflow_run_id"], "val/acc"))
        assert steps == list(range(1, epochs + 1)), (t.number, steps)


def test_without_restarts_left_a_dead_worker_stops_the_launch_with_the_reason(tmp_path: Path) -> None:
    proc = _launch_in_background(tmp_path, "sweep.workers=1", "sweep.max_worker_restarts=0")
    journal = tmp_path / "sweeps.journal"
    trial = wait_for(lambda: running_trial(journal), timeout=180)
    os.kill(int(trial.user_attrs["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    assert "sweep.max_worker_restarts=0 is used up" in out
    runs = mlflow_runs(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = next(r for r in runs if r.info.run_id == trial.user_attrs["mlflow_run_id"])
    assert run.info.status == "FAILED" and run.data.tags["sweeps.state"] == "failed"


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):  # a process that left meanwhile
            continue
    return found


def _all(journal: Path) -> list:
    try:
        return [t for ts in journal_trials(journal).values() for t in ts]
    except Exception:  # being written
        return []


def test_ctrl_c_during_confirm_and_the_next_call_finishes_only_what_is_missing(tmp_path: Path) -> None:
    from sweeps.run.worker import Worker
    from sweeps.search import confirm_jobs
    from sweeps.store.storages import open_storage

    search = run_sweeps("launch", *SMALL, "sweep.n_trials=2", LONG,
                        "sweep.pruner.name=none", "sweep.workers=0", cwd=tmp_path)
    assert search.returncode == 0, search.stderr
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        Worker.connect(str(tmp_path / "sweeps.journal"), "quick", quiet=True, kinds=("search",)).run()
    finally:
        os.chdir(cwd)

    def confirm_trials() -> list:
        study = confirm_jobs.load(open_storage(str(tmp_path / "sweeps.journal")), "quick")
        return [] if study is None else study.get_trials(deepcopy=False)

    env = {k: v for k, v in os.environ.items() if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI")}
    proc = subprocess.Popen([sys.executable, "-m", "sweeps", "confirm", "--seeds", "3",
                             "--workers", "2"], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for(lambda: any(t.state == TrialState.RUNNING and "mlflow_run_id" in t.user_attrs
                         for t in confirm_trials()), timeout=180)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    trials = confirm_trials()
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    lost = [t for t in trials if t.state == TrialState.FAIL]
    assert lost and all(t.user_attrs["failure_reason"].startswith("interrupted") for t in lost)
    done = sum(t.state == TrialState.COMPLETE for t in trials)
    runs = mlflow_runs(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert not [r for r in runs if r.info.status == "RUNNING"]

    again = run_sweeps("confirm", "--seeds", "3", "--workers", "2", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    waiting = sum(t.state == TrialState.WAITING for t in trials)
    assert f"6 runs, {done} done before, {waiting} already queued, {len(lost)} queued now" in again.stdout
    final = [t for t in confirm_trials() if t.state == TrialState.COMPLETE]
    assert sorted((t.user_attrs["optimizer"], t.user_attrs["seed"]) for t in final) == sorted(
        (o, s) for o in ("sgd", "adam_to_sgd") for s in (1, 2, 3))  # each exactly once


def test_a_second_launch_of_a_running_sweep_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    endless = "trainer.epochs=5000"  # still training when the test stops it, however slow the rest
    first = _launch_in_background(tmp_path, "sweep.workers=1", long=endless)
    journal = tmp_path / "sweeps.journal"
    trial = wait_for(lambda: running_trial(journal), timeout=180)
    worker = int(trial.user_attrs["worker"].rsplit(":", 1)[1])
    # its MLflow writes go to the launch, which has MLflow open: no writer process of its own
    assert _children(worker) == []
    # its OpenMP threads sleep while they wait (the launch's environment lacked the setting)
    assert b"OMP_WAIT_POLICY=PASSIVE" in Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
    before = journal.read_bytes()
    second = run_sweeps("launch", *SMALL, endless, "sweep.workers=1", cwd=tmp_path)
    assert second.returncode == 2, second.stdout + second.stderr
    assert "is being launched by another `sweeps launch`" in second.stderr
    assert "Traceback" not in second.stderr
    assert journal.read_bytes()[:len(before)] == before  # the second one wrote nothing
    os.killpg(first.pid, signal.SIGINT)  # stop the first one (Ctrl-C): that releases the lock
    out, _ = first.communicate(timeout=120)
    assert first.returncode == 130, out
    runs = mlflow_runs(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert len([r for r in runs if r.data.tags.get("sweeps.kind") == "launch"]) == 1
    again = run_sweeps("launch", *SMALL, endless, "sweep.workers=0", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr

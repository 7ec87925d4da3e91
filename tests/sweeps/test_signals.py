"""SIGTERM as Slurm, Kubernetes and systemd send it: to the command's PID alone, not to a
terminal's process group. Each long-running command (`launch`, `worker`, `confirm`, `ui`)
must stop its children, mark what it was running interrupted (a retry resumes it), close
its MLflow runs and exit 143 within the grace period (`sweeps.run.stopping.GRACE_S`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from optuna.trial import TrialState

from sweeps.run.stopping import GRACE_S

from ..servers import free_port
from .conftest import SMALL, run_sweeps
from .helpers import journal_trials, mlflow_runs, wait_for

LONG = "trainer.epochs=60"  # trials that are still running when the signal comes


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI")}


def _start(cwd: Path, *args: str) -> subprocess.Popen[str]:
    # a session of its own: nothing but this test's os.kill reaches it
    return subprocess.Popen([sys.executable, "-m", "sweeps", *args], cwd=cwd, env=_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (from /proc: no extra dependency)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    left = set()
    for pid in pids:
        try:
            state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            left.add(pid)
    return left


def terminate(proc: subprocess.Popen[str]) -> str:
    """SIGTERM to the PID alone; the output, once it exited (within the grace period)."""
    below = descendants(proc.pid)
    os.kill(proc.pid, signal.SIGTERM)
    try:
        out = proc.communicate(timeout=GRACE_S)[0]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        tail = proc.communicate()[0][-3000:]
        raise AssertionError(f"still running {GRACE_S} s after SIGTERM:\n{tail}") from None
    # multiprocessing's resource tracker ends by itself once its parent is gone: a moment
    try:
        wait_for(lambda: not alive(below), timeout=10, interval=0.2)
    except AssertionError:
        raise AssertionError(f"children left running after SIGTERM: {sorted(alive(below))}") from None
    return out


def _trials(cwd: Path) -> list:
    try:
        return [t for ts in journal_trials(cwd / "sweeps.journal").values() for t in ts]
    except Exception:  # being written
        return []


def _training(cwd: Path) -> bool:
    return any(t.state == TrialState.RUNNING and len(t.intermediate_values) >= 1 for t in _trials(cwd))


def _check_interrupted(cwd: Path, out: str, trials: list | None = None) -> None:
    """Nothing RUNNING, the lost trials (the sweep's unless given) interrupted by SIGTERM,
    no MLflow run left RUNNING."""
    trials = _trials(cwd) if trials is None else trials
    assert TrialState.RUNNING not in [t.state for t in trials], out
    lost = [t for t in trials if t.state == TrialState.FAIL]
    assert lost, out
    assert {t.user_attrs["failure_reason"] for t in lost} == {"interrupted (SIGTERM)"}, out
    assert not [r for r in mlflow_runs(f"sqlite:///{cwd / 'mlflow.db'}") if r.info.status == "RUNNING"]


@pytest.mark.slow
def test_sigterm_to_launch_stops_its_workers_marks_trials_and_the_next_launch_resumes(tmp_path: Path) -> None:
    args = [*SMALL, LONG, "sweep.workers=2", "sweep.threads_per_worker=1", "sweep.checkpoint_every_s=0"]
    proc = _start(tmp_path, "launch", *args)
    wait_for(lambda: _training(tmp_path), timeout=180)
    out = terminate(proc)
    assert proc.returncode == 143, out
    _check_interrupted(tmp_path, out)
    lost = sum(t.state == TrialState.FAIL for t in _trials(tmp_path))
    assert f"interrupted (SIGTERM): {lost} running trial(s) marked failed" in out, out

    # the same command resumes: the interrupted trials are retried from their checkpoints
    resumed = _start(tmp_path, "launch", *args)
    wait_for(lambda: any(t.user_attrs.get("resumed_from_epoch", 0) >= 1 for t in _trials(tmp_path)),
             timeout=180)
    terminate(resumed)


@pytest.mark.slow
def test_sigterm_to_worker_marks_its_trial_and_exits(tmp_path: Path) -> None:
    created = run_sweeps("launch", *SMALL, LONG, "sweep.workers=0", cwd=tmp_path)
    assert created.returncode == 0, created.stdout + created.stderr
    proc = _start(tmp_path, "worker", "--study", "quick")
    wait_for(lambda: _training(tmp_path), timeout=180)
    out = terminate(proc)
    assert proc.returncode == 143, out
    _check_interrupted(tmp_path, out)


@pytest.mark.slow
def test_sigterm_to_confirm_stops_its_workers_and_marks_its_runs(tmp_path: Path) -> None:
    from sweeps.search import confirm_jobs
    from sweeps.store.storages import open_storage

    search = run_sweeps("launch", *SMALL, LONG, "sweep.n_trials=2", "sweep.pruner.name=none",
                        cwd=tmp_path)
    assert search.returncode == 0, search.stdout + search.stderr

    def confirm_trials() -> list:
        study = confirm_jobs.load(open_storage(str(tmp_path / "sweeps.journal")), "quick")
        return [] if study is None else study.get_trials(deepcopy=False)

    proc = _start(tmp_path, "confirm", "--seeds", "3", "--workers", "2")
    wait_for(lambda: any(t.state == TrialState.RUNNING and "mlflow_run_id" in t.user_attrs
                         for t in confirm_trials()), timeout=180)
    out = terminate(proc)
    assert proc.returncode == 143, out
    _check_interrupted(tmp_path, out, confirm_trials())


@pytest.mark.slow
def test_sigterm_to_ui_stops_the_mlflow_server(tmp_path: Path) -> None:
    port = free_port()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = _start(tmp_path, "ui", "--port", str(port), "--tracking-uri", uri)

    def serving() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.communicate()[0][-3000:]) from None
            return False

    wait_for(serving, timeout=120)
    assert descendants(proc.pid)  # mlflow ui and its server process
    terminate(proc)  # asserts that none of them is left
    assert proc.returncode == 143
    assert not serving_now(port)


def serving_now(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
            return True
    except OSError:
        return False


def test_an_interrupted_launch_counts_only_the_trials_it_marked() -> None:
    """A PID seen again (a container's workers get the same PIDs every launch) does not make
    the trials an earlier launch left interrupted count as this one's."""
    import datetime

    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    from sweeps.run.lost_trials import interrupted_by

    study = optuna.create_study(study_name="quick.sgd")
    start = datetime.datetime(2026, 1, 1, 12, 0)
    for minutes, reason in [(0, "interrupted (Ctrl-C)"), (60, "interrupted (SIGTERM)"),
                            (61, "worker died (exit code -9)"), (62, "interrupted (SIGTERM)")]:
        t = create_trial(state=TrialState.FAIL, params={"lr": 0.1},
                         distributions={"lr": FloatDistribution(1e-3, 1.0)},
                         user_attrs={"worker": "host:12", "failure_reason": reason})
        t.datetime_start = start + datetime.timedelta(minutes=minutes)
        t.datetime_complete = t.datetime_start + datetime.timedelta(seconds=5)
        study.add_trial(t)
    launch_began = start + datetime.timedelta(minutes=59)
    assert [t.number for t in interrupted_by([study], {"host:12"}, launch_began)] == [1, 3]
    assert len(interrupted_by([study], {"host:12"})) == 3  # without a start: every one
    assert interrupted_by([study], {"host:13"}, launch_began) == []

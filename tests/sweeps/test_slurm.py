"""`launcher=slurm` on a real single-node Slurm cluster started by the tests
(`tests/slurm_cluster.py`): workers as one array job through submitit, a task scancelled
mid-trial, another preempted (Slurm's warning signal, as at a time limit) and requeued,
`--detach` and `sweeps status`, and the input Slurm or the launcher refuses.

Without Slurm installed these skip with the reason; CI sets SWEEPS_REQUIRE_SLURM=1 (and
installs it), where they fail instead."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..servers import MlflowServer
from ..slurm_cluster import SlurmCluster, missing
from .helpers import wait_for
from .test_scale_out import PG_URL, pg_sweep  # noqa: F401  (the fixture)

# trials long enough that both tasks are seen mid-trial together (epochs 1 to 8 of 10) however
# fast the machine: with 6, a quiet 2-core machine once finished all 8 trials between looks
EPOCHS = 10


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    reason = missing()
    if reason:
        if os.environ.get("SWEEPS_REQUIRE_SLURM"):  # CI sets this: never skip there
            pytest.fail(reason)
        pytest.skip(reason)
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    cluster.start()
    yield cluster
    cluster.stop()


def _env(cluster: SlurmCluster, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in cluster.env.items() if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI")}
    env.update(extra)
    return env


def _sweeps(cwd: Path, env: dict[str, str], *args: str,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sweeps", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout)


def _sweep_args(name: str, uri: str, trials: int, epochs: int) -> list[str]:
    return [f"sweep.name={name}", "sweep.optimizers=[sgd,adam]", f"sweep.n_trials={trials}",
            f"trainer.epochs={epochs}", "model.width=32", "dataset.val_size=300",
            "search.common.batch_size.choices=[16]", "sweep.pruner.name=none",
            "sweep.checkpoint_every_s=0", "storage=postgres", f"storage.url={PG_URL}",
            "storage.heartbeat_interval=1", "storage.grace_period=4", "tracking=server",
            f"tracking.uri={uri}", "launcher=slurm", "launcher.workers=2", "launcher.cpus_per_task=1",
            "launcher.time=30", "trainer.threads=1"]


def _following_launch(cwd: Path, env: dict[str, str], args: list[str]) -> subprocess.Popen[str]:
    """`sweeps launch launcher=slurm ...` in the background, following its array job."""
    return subprocess.Popen([sys.executable, "-m", "sweeps", "launch", *args], cwd=cwd, env=env,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _trials(name: str) -> list[Any]:
    from sweeps.search.studies import sweep_studies
    from sweeps.store.storages import open_storage

    try:
        return [t for s in sweep_studies(open_storage(PG_URL), name) for t in s.get_trials(deepcopy=False)]
    except Exception:
        return []


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.postgres
def test_array_job_survives_a_cancelled_and_a_requeued_task(
        tmp_path: Path, slurm: SlurmCluster, pg_sweep: str) -> None:  # noqa: F811
    """8 trials through a 2-task array: one task is scancelled mid-trial (SIGTERM), the other
    gets Slurm's preemption/time-limit signal mid-trial and is requeued by submitit; the
    budget completes without a person and both lost trials resume from their checkpoints."""
    from mlflow import MlflowClient
    from optuna.trial import TrialState

    (tmp_path / "mlflow").mkdir()
    server = MlflowServer(tmp_path / "mlflow")
    server.start()
    env = _env(slurm)
    launch = _following_launch(tmp_path, env, _sweep_args(pg_sweep, server.uri, 8, EPOCHS))
    try:
        def mid_trial_on_each_task() -> dict[str, Any] | None:
            if launch.poll() is not None:
                raise AssertionError(launch.communicate()[0][-4000:])
            running = {t.user_attrs.get("slurm_task"): t for t in _trials(pg_sweep)
                       if t.state == TrialState.RUNNING and 1 <= len(t.intermediate_values) < EPOCHS - 1}
            running.pop(None, None)
            return running if len(running) == 2 else None

        victims = wait_for(mid_trial_on_each_task, timeout=300, interval=0.2)
        cancelled, requeued = sorted(victims)
        job = cancelled.split("_")[0]
        subprocess.run(["scancel", cancelled], check=True, env=env)  # SIGTERM, as scancel sends it
        # what Slurm sends launcher.signal_delay_s before the time limit (and where a
        # preemption signals first): submitit's checkpoint hook requeues the task
        subprocess.run(["scancel", "--signal=USR2", requeued], check=True, env=env)
        out = launch.communicate(timeout=600)[0]
        assert launch.returncode == 0, out

        final = _trials(pg_sweep)
        done = [t for t in final if t.state == TrialState.COMPLETE]
        assert len(done) == 8, out[-3000:]
        assert TrialState.RUNNING not in [t.state for t in final]
        reasons = {}
        for task, victim in victims.items():
            lost = next(t for t in final if t._trial_id == victim._trial_id)
            assert lost.state == TrialState.FAIL
            reasons[task] = lost.user_attrs["failure_reason"]
            retry = next(t for t in done if t.user_attrs.get("optimizer") == lost.user_attrs["optimizer"]
                         and lost.number in (t.user_attrs.get("retry_history") or []))
            assert retry.user_attrs.get("resumed_from_epoch", 0) >= 1, (task, retry.user_attrs)
        assert reasons[cancelled] == "interrupted (SIGTERM)", reasons
        assert reasons[requeued].startswith("interrupted"), reasons
        # the requeued task came back and worked: it ran trials after its requeue
        assert any(t.user_attrs.get("slurm_task") == requeued and t.datetime_start > victims[requeued]
                   .datetime_start for t in done), out[-3000:]

        runs = MlflowClient(server.uri).search_runs(
            [MlflowClient(server.uri).get_experiment_by_name(pg_sweep).experiment_id], max_results=500)
        assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
        states = dict(slurm.squeue(job))  # the job ended: nothing pending or running
        assert states == {cancelled: "CANCELLED", requeued: "COMPLETED"}, states

        status = _sweeps(tmp_path, env, "status", pg_sweep, "--storage", PG_URL)
        assert status.returncode == 0, status.stderr
        assert f"Slurm job {job} (2 tasks" in status.stdout
        assert f"task {cancelled.split('_')[1]} CANCELLED" in status.stdout
    finally:
        if launch.poll() is None:
            os.killpg(launch.pid, 9)
        server.stop()


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.postgres
def test_detach_returns_with_the_job_id_and_status_follows_it(
        tmp_path: Path, slurm: SlurmCluster, pg_sweep: str) -> None:  # noqa: F811
    from mlflow import MlflowClient
    from optuna.trial import TrialState

    (tmp_path / "mlflow").mkdir()
    server = MlflowServer(tmp_path / "mlflow")
    server.start()
    # a password in the storage URL (trust auth ignores it): the tasks take it from their
    # environment, and the submission files on the shared folder never hold it
    secret = "slurm-s3cret-Kp2"
    with_password = PG_URL.replace("postgres@", f"postgres:{secret}@")
    env = _env(slurm, SWEEPS_STORAGE=with_password)
    args = [a.replace(f"storage.url={PG_URL}", f"storage.url={with_password}")
            for a in _sweep_args(pg_sweep, server.uri, 4, 2)]
    try:
        out = _sweeps(tmp_path, env, "launch", "--detach", *args,
                      "+launcher.sbatch.comment=from-the-sweep-config")
        assert out.returncode == 0, out.stdout + out.stderr
        assert secret not in out.stdout + out.stderr
        log_dir = Path(out.stdout.split("logs in ")[1].split()[0]).parent  # FOLDER/JOB_*
        submitted = list(log_dir.rglob("*.pkl"))
        assert submitted and all(secret.encode() not in f.read_bytes() for f in submitted)
        assert "submitted Slurm array job" in out.stdout and "detached" in out.stdout, out.stdout
        job = out.stdout.split("submitted Slurm array job ")[1].split(":")[0].strip()
        # returned while the job is still queued or running, not after the budget
        assert {s for _, s in slurm.squeue(job)} & {"PENDING", "RUNNING", "CONFIGURING"}, slurm.squeue(job)
        status = _sweeps(tmp_path, env, "status", pg_sweep, "--storage", PG_URL)
        assert status.returncode == 0, status.stderr
        assert f"Slurm job {job} (2 tasks" in status.stdout, status.stdout
        comment = subprocess.run(["squeue", "-h", "-j", job, "--states=all", "-o", "%k"], env=env,
                                 capture_output=True, text=True).stdout
        assert "from-the-sweep-config" in comment  # an extra #SBATCH option reached the job
        wait_for(lambda: all(s == "COMPLETED" for _, s in slurm.squeue(job)) and slurm.squeue(job),
                 timeout=300)
        assert sum(t.state == TrialState.COMPLETE for t in _trials(pg_sweep)) == 4
        client = MlflowClient(server.uri)
        exp = client.get_experiment_by_name(pg_sweep)
        parents = [r for r in client.search_runs([exp.experiment_id])
                   if r.data.tags.get("sweeps.kind") == "launch"]
        assert len(parents) == 1 and parents[0].info.status == "FINISHED"  # closed by a task
        assert parents[0].data.metrics  # with the best values
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.slurm
def test_bad_input_is_one_line_and_nothing_is_submitted(tmp_path: Path, slurm: SlurmCluster) -> None:
    env = _env(slurm)
    shared = ["launcher=slurm", "storage.shared_fs=true", "sweep.n_trials=2", "sweep.optimizers=[sgd,adam]",
              "trainer.epochs=2", "model.width=32"]
    jobs_before = slurm.job_ids()

    def refused(*args: str, env: dict[str, str] = env, cwd: Path = tmp_path) -> str:
        written = sorted(p.name for p in cwd.iterdir())
        out = _sweeps(cwd, env, "launch", *args)
        assert out.returncode == 2, out.stdout + out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
        assert sorted(p.name for p in cwd.iterdir()) == written  # no journal, no mlflow.db
        return lines[0]

    line = refused(*shared, "launcher.partition=nosuch")
    assert "Slurm refused the job: " in line and "partition" in line.lower(), line
    assert "launcher.workers=0" in refused(*shared, "launcher.workers=0")
    assert "shared filesystem" in refused("launcher=slurm", *shared[2:])
    no_slurm = {**env, "PATH": os.path.dirname(sys.executable)}
    assert "`sbatch` is not on the PATH" in refused(*shared, env=no_slurm)
    assert "launcher.signal_delay_s=600" in refused(*shared, "launcher.time=5", "launcher.signal_delay_s=600")
    # a time limit shorter than one epoch, known from the sweep's finished trials
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    cnn = ["sweep.n_trials=2", "sweep.optimizers=[sgd,adam]", "trainer.epochs=2", "model=cnn", "~model.width"]
    first = _sweeps(resumed, env, "launch", *cnn)
    assert first.returncode == 0, first.stdout + first.stderr
    line = refused(*cnn, "sweep.n_trials=4", "launcher=slurm", "storage.shared_fs=true", "launcher.time=1",
                   "launcher.signal_delay_s=59", cwd=resumed)
    assert "shorter than one epoch" in line, line
    assert slurm.job_ids() == jobs_before  # nothing was submitted


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.postgres
def test_sigterm_to_a_following_launch_cancels_the_array(
        tmp_path: Path, slurm: SlurmCluster, pg_sweep: str) -> None:  # noqa: F811
    """What Ctrl-C does too: the array is cancelled, each task marks its running trial
    interrupted, the launch's run is closed, and the launch exits 143."""
    import signal

    from mlflow import MlflowClient
    from optuna.trial import TrialState

    (tmp_path / "mlflow").mkdir()
    server = MlflowServer(tmp_path / "mlflow")
    server.start()
    env = _env(slurm)
    launch = _following_launch(tmp_path, env, _sweep_args(pg_sweep, server.uri, 8, 30))
    try:
        wait_for(lambda: len({t.user_attrs.get("slurm_task") for t in _trials(pg_sweep)
                              if t.state == TrialState.RUNNING and t.intermediate_values} - {None}) == 2,
                 timeout=300, interval=0.2)
        launch.send_signal(signal.SIGTERM)  # to the launch's PID alone
        out = launch.communicate(timeout=60)[0]
        assert launch.returncode == 143, out
        job = out.split("submitted Slurm array job ")[1].split(":")[0].strip()
        assert f"cancelled Slurm job {job}" in out, out
        assert {s for _, s in slurm.squeue(job)} == {"CANCELLED"}, slurm.squeue(job)
        trials = _trials(pg_sweep)
        assert TrialState.RUNNING not in [t.state for t in trials]
        lost = [t for t in trials if t.state == TrialState.FAIL]
        assert len(lost) == 2 and {t.user_attrs["failure_reason"] for t in lost} == {"interrupted (SIGTERM)"}
        client = MlflowClient(server.uri)
        runs = client.search_runs([client.get_experiment_by_name(pg_sweep).experiment_id])
        assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
    finally:
        if launch.poll() is None:
            os.killpg(launch.pid, 9)
        server.stop()

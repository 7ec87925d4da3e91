"""The scale-out topology of docker-compose.yml, as real processes on loopback:
PostgreSQL storage, an `mlflow server`, a launch without local workers, and two
`sweeps worker` processes joining it. Also a static check of docker-compose.yml."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .conftest import SMALL, run_sweeps
from .helpers import mlflow_runs, wait_for

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("SWEEPS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_reachable() -> str | None:
    try:
        import psycopg2

        psycopg2.connect(PG_URL, connect_timeout=3).close()
        return None
    except Exception as err:
        return f"PostgreSQL not reachable at {PG_URL} ({str(err).strip().splitlines()[0]})"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    exe = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or "mlflow"
    proc = subprocess.Popen(
        [exe, "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    uri = f"http://127.0.0.1:{port}"
    try:
        import urllib.request

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(uri + "/health", timeout=2):
                    return True
            except OSError:
                return proc.poll() is not None and pytest.fail("mlflow server exited")

        wait_for(healthy, timeout=120)
        yield uri
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture
def pg_sweep() -> Iterator[str]:
    reason = _postgres_reachable()
    if reason:
        if os.environ.get("SWEEPS_REQUIRE_POSTGRES"):  # CI sets this: never skip there
            pytest.fail(reason)
        pytest.skip(reason)
    name = f"pg{uuid.uuid4().hex[:8]}"
    yield name
    import optuna

    from sweeps.storage import open_storage

    storage = open_storage(PG_URL)
    for s in storage.get_all_studies():
        if s.user_attrs.get("sweep") == name:
            optuna.delete_study(study_name=s.study_name, storage=storage)


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_storage_mlflow_server_and_remote_workers(tmp_path: Path, mlflow_server: str,
                                                           pg_sweep: str) -> None:
    launch = run_sweeps("launch", *SMALL, f"sweep.name={pg_sweep}", "storage=postgres",
                        f"storage.url={PG_URL}", "tracking=server", f"tracking.uri={mlflow_server}",
                        "sweep.workers=0", cwd=tmp_path)
    assert launch.returncode == 0, launch.stdout + launch.stderr
    assert f"sweeps worker --study {pg_sweep}" in launch.stdout
    env = {k: v for k, v in os.environ.items() if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI")}
    workers = [subprocess.Popen(
        [sys.executable, "-m", "sweeps", "worker", "--study", pg_sweep, "--storage", PG_URL,
         "--index", str(i), "--output-dir", str(tmp_path / f"w{i}")],
        cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for i in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs

    import optuna

    from sweeps.storage import open_storage

    storage = open_storage(PG_URL)
    studies = [s for s in storage.get_all_studies() if s.user_attrs.get("sweep") == pg_sweep]
    trials = [t for s in studies for t in optuna.load_study(study_name=s.study_name,
                                                            storage=storage).trials]
    assert len(trials) == 4  # the budget exactly, shared by two workers (advisory lock)
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2

    runs = mlflow_runs(mlflow_server, pg_sweep)
    parent = [r for r in runs if r.data.tags.get("sweeps.kind") == "launch"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parent) == 1 and len(children) == 4
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent[0].info.run_id}
    assert all("password" not in str(r.data.params) for r in runs)

    status = run_sweeps("status", pg_sweep, "--storage", PG_URL, cwd=tmp_path)
    assert status.returncode == 0 and f"{pg_sweep}.sgd" in status.stdout
    rep = run_sweeps("reproduce", pg_sweep, "--storage", PG_URL, cwd=tmp_path)
    assert rep.returncode == 0, rep.stdout + rep.stderr


def test_passwords_are_redacted() -> None:
    from sweeps.storage import redact

    assert redact("postgresql://sweeps:s3cret@db:5432/sweeps") == "postgresql://sweeps:***@db:5432/sweeps"
    assert redact("postgresql://sweeps@db/sweeps") == "postgresql://sweeps@db/sweeps"


def test_docker_compose_describes_the_scale_out_topology() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    assert {"postgres", "mlflow", "launch", "worker"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:")
    assert "mlflow server" in services["mlflow"]["command"]
    launch, worker = services["launch"], services["worker"]
    assert launch["command"].startswith("sweeps launch") and "sweep.workers=0" in launch["command"]
    assert "storage=postgres" in launch["command"] and "tracking=server" in launch["command"]
    assert worker["command"].startswith("sweeps worker --study")
    for svc in (launch, worker):
        env = svc["environment"]
        assert env["SWEEPS_STORAGE"].startswith("postgresql://")
        assert "@postgres:5432/" in env["SWEEPS_STORAGE"]
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert worker["depends_on"]["launch"]["condition"] == "service_completed_successfully"
    assert launch["depends_on"]["postgres"]["condition"] == "service_healthy"
    gpu = worker["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]
    # every image the services build or use is this project's Dockerfile
    assert (ROOT / "Dockerfile").exists() and services["mlflow"]["build"] == "."
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install ." in dockerfile and "COPY conf conf" in dockerfile
    # the storage and tracking groups the launch names exist
    assert (ROOT / "conf/storage/postgres.yaml").exists() and (ROOT / "conf/tracking/server.yaml").exists()


@pytest.mark.slow
def test_ui_serves_the_tracking_store(tmp_path: Path) -> None:
    import urllib.request

    from mlflow import MlflowClient

    MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").create_experiment("quick")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI")}
    proc = subprocess.Popen([sys.executable, "-m", "sweeps", "ui", "--port", str(port),
                             f"--tracking-uri=sqlite:///{tmp_path / 'mlflow.db'}"], cwd=tmp_path,
                            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        def up() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    return True
            except OSError:
                return False

        wait_for(up, timeout=120)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/"
                                    "get-by-name?experiment_name=quick", timeout=10) as resp:
            assert b'"name": "quick"' in resp.read().replace(b'":"', b'": "')
    finally:
        os.killpg(proc.pid, 15)
        out = proc.communicate(timeout=30)[0]
    assert f"http://127.0.0.1:{port}" in out


@pytest.mark.slow
@pytest.mark.postgres
def test_a_remote_worker_that_dies_is_failed_through_heartbeats(tmp_path: Path, pg_sweep: str) -> None:
    import signal

    from optuna.trial import TrialState

    from sweeps.storage import open_storage
    from sweeps.study import sweep_studies

    beat = ["storage=postgres", f"storage.url={PG_URL}", "storage.heartbeat_interval=1",
            "storage.grace_period=3"]
    launch = run_sweeps("launch", *SMALL, f"sweep.name={pg_sweep}", "sweep.optimizers=[sgd]",
                        "sweep.n_trials=2", "trainer.epochs=15", "sweep.pruner.name=none",
                        "sweep.workers=0", *beat, cwd=tmp_path)
    assert launch.returncode == 0, launch.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI")}

    def worker() -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "sweeps", "worker", "--study", pg_sweep,
                                 *beat], cwd=tmp_path, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def trials() -> list:
        storage = open_storage(PG_URL)
        return [t for s in sweep_studies(storage, pg_sweep) for t in s.get_trials(deepcopy=False)]

    first = worker()
    victim = wait_for(lambda: next((t for t in trials() if t.state == TrialState.RUNNING
                                    and "mlflow_run_id" in t.user_attrs), None), timeout=180)
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    second = worker()
    out = second.communicate(timeout=600)[0]
    assert second.returncode == 0, out
    final = {t.number: t for t in trials()}
    assert final[victim.number].state == TrialState.FAIL  # failed by the missing heartbeat
    done = [t for t in final.values() if t.state == TrialState.COMPLETE]
    assert len(done) == 2  # the lost trial did not use up the budget
    runs = mlflow_runs(f"sqlite:///{tmp_path / 'mlflow.db'}", pg_sweep)
    lost = next(r for r in runs if r.info.run_id == victim.user_attrs["mlflow_run_id"])
    assert lost.info.status == "FAILED" and lost.data.tags["sweeps.state"] == "failed"

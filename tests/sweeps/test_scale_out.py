"""The scale-out topology of docker-compose.yml, as real processes on loopback:
PostgreSQL storage, an `mlflow server`, a launch without local workers, and two
`sweeps worker` processes joining it. Also a static check of docker-compose.yml."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..servers import free_port, group_commands
from .conftest import SMALL, run_sweeps
from .helpers import mlflow_runs, wait_for
from .test_signals import descendants

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("SWEEPS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_reachable() -> str | None:
    try:
        import psycopg2

        psycopg2.connect(PG_URL, connect_timeout=3).close()
        return None
    except Exception as err:
        return f"PostgreSQL not reachable at {PG_URL} ({str(err).strip().splitlines()[0]})"


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

    from sweeps.store.storages import open_storage

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

    def worker(i: int) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "sweeps", "worker", "--study", pg_sweep, "--storage", PG_URL,
             "--index", str(i), "--output-dir", str(tmp_path / f"w{i}")],
            cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    # Both workers take a share, whatever their start-up times: the first is paused inside its
    # first trial (outside the budget lock) until the second has claimed one of its own.
    first = worker(0)
    with _paused_in_a_trial(first, pg_sweep, tmp_path / "w0"):
        second = worker(1)
        wait_for(lambda: _claimed_by(second, pg_sweep), timeout=300)
    workers = [first, second]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    # Optuna's heartbeat API through its current names, its "experimental" notes kept out
    assert not any("FutureWarning" in o or "ExperimentalWarning" in o or "Heartbeat of storage" in o
                   for o in outputs), outputs

    import optuna

    from sweeps.store.storages import open_storage

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

    # confirm runs go through the same machinery: queued in PostgreSQL, run by a remote worker
    queued = run_sweeps("confirm", pg_sweep, "--seeds", "2", "--workers", "0", "--storage", PG_URL,
                        cwd=tmp_path)
    assert queued.returncode == 0, queued.stdout + queued.stderr
    assert "4 queued now" in queued.stdout and f"sweeps worker --study {pg_sweep}" in queued.stdout
    remote = subprocess.run([sys.executable, "-m", "sweeps", "worker", "--study",
                             f"{pg_sweep}.confirm", "--storage", PG_URL, "--output-dir",
                             str(tmp_path / "wc")], cwd=tmp_path, env=env, text=True,
                            capture_output=True, timeout=600)
    assert remote.returncode == 0, remote.stdout + remote.stderr
    confirm_runs = [r for r in mlflow_runs(mlflow_server, pg_sweep)
                    if r.data.tags.get("sweeps.kind") == "confirm"]
    assert len(confirm_runs) == 4 and all(r.info.status == "FINISHED" for r in confirm_runs)
    assert {r.data.tags["sweeps.seed"] for r in confirm_runs} == {"1", "2"}
    assert {r.data.tags["mlflow.parentRunId"] for r in confirm_runs} == {parent[0].info.run_id}
    again = run_sweeps("confirm", pg_sweep, "--seeds", "2", "--storage", PG_URL, cwd=tmp_path)
    assert again.returncode == 0 and "4 done before" in again.stdout, again.stdout + again.stderr
    report = run_sweeps("report", pg_sweep, "--storage", PG_URL, cwd=tmp_path)
    assert report.returncode == 0, report.stdout + report.stderr
    assert "paired t-test" in report.stdout and (tmp_path / "reports" / pg_sweep / "report.html").exists()


def _claimed_by(proc: subprocess.Popen[str], sweep: str, states: tuple[str, ...] = ("RUNNING", "COMPLETE",
                                                                                   "PRUNED")) -> bool:
    """Whether the worker `proc` has claimed a trial of `sweep` (its ``host:pid`` recorded)."""
    from sweeps.search.studies import sweep_studies
    from sweeps.store.storages import open_storage

    return any(str(t.user_attrs.get("worker", "")).endswith(f":{proc.pid}") and t.state.name in states
               for s in sweep_studies(open_storage(PG_URL), sweep) for t in s.get_trials(deepcopy=False))


@contextlib.contextmanager
def _paused_in_a_trial(proc: subprocess.Popen[str], sweep: str, out: Path) -> Iterator[None]:
    """SIGSTOP `proc` (and its children) while one of its trials is running, so it holds no
    budget lock; SIGCONT on the way out. A trial's folder under `out` appears once it is
    claimed (polled fast: a tiny trial lasts about a second); one that ended before the stop
    took effect is let go, and the next one is waited for."""
    import signal

    seen: set[Path] = set()

    def new_trial() -> set[Path]:
        return set(out.glob(f"{sweep}/*")) - seen if proc.poll() is None else {Path("exited")}

    for _ in range(20):
        fresh = wait_for(new_trial, timeout=300, interval=0.01)
        assert proc.poll() is None, proc.communicate()[0]
        seen |= fresh
        pids = [proc.pid, *descendants(proc.pid)]
        _signal(pids, signal.SIGSTOP)
        wait_for(lambda: _state(proc.pid) == "T", timeout=10, interval=0.01)
        if _claimed_by(proc, sweep, ("RUNNING",)):
            break
        _signal(pids, signal.SIGCONT)
    else:
        raise AssertionError("the first worker was never caught inside a trial")
    try:
        yield
    finally:
        _signal(pids, signal.SIGCONT)


def _signal(pids: list[int], sig: int) -> None:
    """`sig` to each of these PIDs (started by this test) that is still there."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_passwords_are_redacted() -> None:
    from sweeps.store.urls import redact

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
        # shared checkpoints: a retry on another worker resumes from the lost trial's last epoch
        assert "runs:/runs" in svc["volumes"]
    assert "sweep.checkpoint_dir=/runs" in launch["command"]
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


def test_the_scale_out_stack_is_locked_down() -> None:
    """Basic auth on MLflow, nothing published but MLflow's UI on loopback, every secret from
    .env with no working default, a non-root image on a pinned base."""
    import re

    text = (ROOT / "docker-compose.yml").read_text()
    services = yaml.safe_load(text)["services"]
    mlflow = services["mlflow"]
    assert "--app-name basic-auth" in mlflow["command"]
    assert mlflow["ports"] == ["127.0.0.1:5000:5000"]
    assert all("ports" not in svc for name, svc in services.items() if name != "mlflow")
    # secrets: only ${VAR:?...} references (compose refuses to start without them)
    for var in ("POSTGRES_PASSWORD", "POSTGRES_SUPERUSER_PASSWORD", "MLFLOW_ADMIN_PASSWORD",
                "MLFLOW_SWEEPS_PASSWORD", "MLFLOW_SECRET_KEY"):
        refs = re.findall(r"\$\{" + var + r"(.{0,2})", text)
        assert refs and all(r.startswith(":?") for r in refs), (var, refs)
    assert "password1234" not in text and ":-sweeps}" not in text
    for svc in (services["launch"], services["worker"]):
        env = svc["environment"]
        # ordinary users: neither admin password reaches a launch or a worker
        assert env["MLFLOW_TRACKING_USERNAME"] == "sweeps"
        assert env["MLFLOW_TRACKING_PASSWORD"].startswith("${MLFLOW_SWEEPS_PASSWORD:?")
        assert env["SWEEPS_STORAGE"].startswith("postgresql://sweeps:${POSTGRES_PASSWORD:?")
        assert "ADMIN" not in str(env) and "SUPERUSER" not in str(env)
    assert mlflow["environment"]["MLFLOW_AUTH_ADMIN_PASSWORD"].startswith("${MLFLOW_ADMIN_PASSWORD:?")
    postgres = services["postgres"]
    assert postgres["environment"]["POSTGRES_USER"] != "sweeps"
    assert postgres["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_SUPERUSER_PASSWORD:?")
    assert services["mlflow-user"]["command"] == "python -m sweeps.tracking.accounts"
    assert services["launch"]["depends_on"]["mlflow-user"]["condition"] == "service_completed_successfully"
    for name, svc in services.items():  # no capabilities, no privilege gain, a read-only root
        assert svc["cap_drop"] == ["ALL"] and svc["security_opt"] == ["no-new-privileges:true"], name
        assert svc["read_only"] is True and "/tmp" in svc["tmpfs"], name
        assert set(svc.get("cap_add", [])) <= {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"}
        assert not svc.get("cap_add") or name == "postgres", name
    # the auth settings come from the image (the Dockerfile copies conf/ to /app/conf), with a
    # credential cache and no password of their own; the tests' basic-auth servers use them too
    import configparser

    from ..servers import AUTH_CONFIG

    auth_path = mlflow["environment"]["MLFLOW_AUTH_CONFIG_PATH"]
    assert auth_path == "/app/" + AUTH_CONFIG.relative_to(ROOT).as_posix()
    auth = configparser.ConfigParser()
    auth.read(AUTH_CONFIG)
    assert auth["mlflow"].getint("auth_cache_ttl_seconds") > 0
    assert "admin_password" not in auth["mlflow"] and auth["mlflow"]["default_permission"] == "READ"
    assert mlflow["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert {"POSTGRES_PASSWORD", "MLFLOW_ADMIN_PASSWORD", "MLFLOW_SECRET_KEY"} <= set(example)
    assert all(example[k] == "" for k in ("POSTGRES_PASSWORD", "MLFLOW_ADMIN_PASSWORD", "MLFLOW_SECRET_KEY"))
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", dockerfile, re.M)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base.group(1))
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert user and user[-1] not in ("root", "0")
    assert re.search(r"^WORKDIR /app$", dockerfile, re.M) and re.search(r"^COPY conf conf$", dockerfile, re.M)


@pytest.mark.slow
def test_ui_serves_the_tracking_store(tmp_path: Path) -> None:
    import urllib.request

    from mlflow import MlflowClient

    MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").create_experiment("quick")
    port = free_port()
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
        # one server process, no job runner: `sweeps ui`, its `mlflow ui`, one uvicorn
        # (the UI runs in a process group of its own, stopped as one: test_signals.py)
        commands = [*group_commands(proc.pid), *(c for pid in descendants(proc.pid)
                                                  for c in group_commands(pid))]
        assert sum("uvicorn" in c for c in commands) == 1, commands
        assert not any("huey" in c or "_job_runner" in c for c in commands), commands
    finally:
        os.killpg(proc.pid, 15)
        out = proc.communicate(timeout=30)[0]
    assert f"http://127.0.0.1:{port}" in out


@pytest.mark.slow
@pytest.mark.postgres
def test_a_remote_worker_that_dies_is_failed_through_heartbeats(tmp_path: Path, pg_sweep: str) -> None:
    import signal

    from optuna.trial import TrialState

    from sweeps.search.studies import sweep_studies
    from sweeps.store.storages import open_storage

    beat = ["storage=postgres", f"storage.url={PG_URL}", "storage.heartbeat_interval=1",
            "storage.grace_period=3"]
    launch = run_sweeps("launch", *SMALL, f"sweep.name={pg_sweep}", "sweep.optimizers=[sgd]",
                        # long enough for the trial to be seen running with its MLflow run,
                        # whose creation may trail the trial's start on a loaded machine
                        "sweep.n_trials=2", "trainer.epochs=30", "sweep.pruner.name=none",
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
    def running_with_its_run() -> Any:
        if first.poll() is not None:  # say why rather than wait out the timeout
            raise AssertionError(first.communicate()[0][-3000:])
        return next((t for t in trials() if t.state == TrialState.RUNNING
                     and "mlflow_run_id" in t.user_attrs), None)

    victim = wait_for(running_with_its_run, timeout=180)
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


@pytest.mark.slow
@pytest.mark.postgres
def test_a_worker_rides_out_terminated_postgres_connections(tmp_path: Path, pg_sweep: str) -> None:
    import socket

    import psycopg2
    from optuna.trial import TrialState

    from sweeps.search.studies import sweep_studies
    from sweeps.store.storages import open_storage

    pg = ["storage=postgres", f"storage.url={PG_URL}"]
    launch = run_sweeps("launch", *SMALL, f"sweep.name={pg_sweep}", "trainer.epochs=8",
                        "search.common.batch_size.choices=[64]", "sweep.pruner.name=none",
                        "sweep.workers=0", *pg, cwd=tmp_path)
    assert launch.returncode == 0, launch.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI")}
    worker = subprocess.Popen([sys.executable, "-m", "sweeps", "worker", "--study", pg_sweep, *pg],
                              cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)

    def trials() -> list:
        storage = open_storage(PG_URL)
        return [t for s in sweep_studies(storage, pg_sweep) for t in s.get_trials(deepcopy=False)]

    def terminate() -> int:
        """pg_terminate_backend on this test's worker's connections only (by its pid)."""
        conn = psycopg2.connect(PG_URL)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = %s", (f"sweeps {socket.gethostname()}:{worker.pid}",))
            n = int(cur.fetchone()[0])
        conn.close()
        return n

    terminated = 0
    wait_for(lambda: any(t.state == TrialState.RUNNING and len(t.intermediate_values) >= 1
                         for t in trials()), timeout=180, interval=0.2)
    end = time.time() + 3  # every 50 ms for 3 s: idle pooled connections and busy ones
    while time.time() < end:
        terminated += terminate()
        time.sleep(0.05)
    out = worker.communicate(timeout=600)[0]
    assert terminated >= 1, "the test terminated no connection"
    assert worker.returncode == 0, out
    final = trials()
    assert sorted(t.state.name for t in final) == ["COMPLETE"] * 4, out  # nothing lost or duplicated
    assert all(len(t.intermediate_values) == 8 for t in final)


def test_storage_calls_are_retried_on_lost_connections_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import optuna
    import sqlalchemy.exc

    from sweeps.store import resilient

    monkeypatch.setattr("time.sleep", lambda s: None)
    lost = optuna.exceptions.StorageInternalError("commit failed")
    lost.__cause__ = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed"))
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise lost
        return "ok"

    retried: list[int] = []
    assert resilient.patiently("test", flaky, 60, on_retry=lambda: retried.append(1)) == "ok"
    assert len(calls) == 3 and len(retried) == 2
    bad = optuna.exceptions.StorageInternalError("value too long")
    bad.__cause__ = sqlalchemy.exc.DataError("INSERT", {}, Exception("too long"))
    with pytest.raises(optuna.exceptions.StorageInternalError):
        resilient.patiently("test", lambda: (_ for _ in ()).throw(bad), 60)
    with pytest.raises(optuna.exceptions.StorageInternalError):  # past the patience: give up
        resilient.patiently("test", lambda: (_ for _ in ()).throw(lost), 0)
    # the storage retries the calls that open their own session, not the helpers inside one
    wrapped = set(vars(resilient.ResilientRDBStorage))
    assert {"set_trial_intermediate_value", "_get_trials", "_set_trial_param"} <= wrapped
    assert "_build_frozen_trial_from_trial_model" not in wrapped


def test_a_full_server_is_named_as_full_with_the_fix(monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """max_connections reached is not an outage: the retry says what to change."""
    import sqlalchemy.exc

    from sweeps.store import resilient

    monkeypatch.setattr("time.sleep", lambda s: None)
    full = sqlalchemy.exc.OperationalError(
        "connect", {}, Exception('connection to server at "db" failed: FATAL:  sorry, too many '
                                 "clients already"))
    calls: list[int] = []

    def refused() -> str:
        calls.append(1)
        if len(calls) < 2:
            raise full
        return "ok"

    with caplog.at_level("WARNING", logger="sweeps"):
        assert resilient.patiently("connect", refused, 60) == "ok"
    (line,) = [r.getMessage() for r in caplog.records]
    assert "no connection left" in line and "max_connections" in line and "retrying in 1 s" in line
    lost = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))
    assert resilient._why(lost).startswith("database unreachable (")


@pytest.mark.slow
@pytest.mark.postgres
def test_passwords_in_both_store_urls_never_leak(tmp_path: Path, pg_sweep: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A password-bearing PostgreSQL URL and an MLflow server with basic auth reached through
    a password-bearing URL: neither password appears in output, params, tags or artifacts."""
    from mlflow import MlflowClient

    from ..servers import MlflowServer

    secret_pg, secret_mlflow = "pg-s3cret-Xq7", "mlflow-s3cret-Zr9"
    pg_url = PG_URL.replace("postgres@", f"postgres:{secret_pg}@")  # trust auth ignores it
    server = MlflowServer(tmp_path / "mlflow", admin_password=secret_mlflow)
    (tmp_path / "mlflow").mkdir()
    server.start()
    try:
        uri = server.uri.replace("http://", f"http://admin:{secret_mlflow}@")
        outputs = [run_sweeps("launch", *SMALL, f"sweep.name={pg_sweep}", "storage=postgres",
                              f"storage.url={pg_url}", "tracking=server", f"tracking.uri={uri}",
                              "sweep.n_trials=2", "sweep.workers=1", cwd=tmp_path)]
        assert outputs[0].returncode == 0, outputs[0].stdout + outputs[0].stderr
        for cmd in (["best", pg_sweep], ["status", pg_sweep], ["report", pg_sweep]):
            outputs.append(run_sweeps(*cmd, "--storage", pg_url, cwd=tmp_path))
            assert outputs[-1].returncode == 0, outputs[-1].stdout + outputs[-1].stderr
        for out in outputs:
            assert secret_pg not in out.stdout + out.stderr and secret_mlflow not in out.stdout + out.stderr

        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", secret_mlflow)
        client = MlflowClient(server.uri)
        exp = client.get_experiment_by_name(pg_sweep)
        runs = client.search_runs([exp.experiment_id], max_results=100)
        assert len(runs) == 3  # the parent and 2 trials
        texts = []
        for r in runs:
            texts += [str(r.data.params), str(r.data.tags), str(r.data.metrics)]
            for art in client.list_artifacts(r.info.run_id):
                paths = [art] if not art.is_dir else client.list_artifacts(r.info.run_id, art.path)
                for a in paths:
                    local = client.download_artifacts(r.info.run_id, a.path, str(tmp_path / "dl"))
                    texts.append(Path(local).read_text(errors="replace"))
        blob = "\n".join(texts)
        assert "sweep:" in blob and "optimizer:" in blob  # the artifacts were read
        assert secret_pg not in blob and secret_mlflow not in blob
        for f in tmp_path.rglob("*"):
            if f.is_file() and f.suffix in (".json", ".yaml", ".md", ".html", ".log", ".txt"):
                text = f.read_text(errors="replace")
                assert secret_pg not in text and secret_mlflow not in text, f
    finally:
        server.stop()


def _open_together(url: str, n: int) -> tuple[list[Any], list[BaseException]]:
    """`n` storages on `url`, opened at the same instant from `n` threads."""
    import threading

    from sweeps.store.resilient import ResilientRDBStorage

    start, opened, errors = threading.Barrier(n), [], []

    def open_it() -> None:
        start.wait()
        try:
            opened.append(ResilientRDBStorage(url, patience_s=5))
        except Exception as err:  # the failure being tested for
            errors.append(err)

    threads = [threading.Thread(target=open_it) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return opened, errors


@pytest.mark.postgres
def test_workers_opening_an_empty_database_together_share_one_schema(pg_sweep: str) -> None:
    """Workers on many machines that start at once on a new database race to create Optuna's
    tables (check, then CREATE): each must open the storage, none may fail on the other's."""
    import psycopg2
    from optuna.study import StudyDirection

    from sweeps.store.urls import sqlalchemy_url

    admin = psycopg2.connect(PG_URL)
    admin.autocommit = True
    for round_ in range(3):  # the race is timing-dependent: several fresh databases
        db = f"sweeps_race_{uuid.uuid4().hex[:8]}"
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {db}")
        opened: list[Any] = []
        try:
            opened, errors = _open_together(sqlalchemy_url(PG_URL.rsplit("/", 1)[0] + f"/{db}"), 4)
            assert errors == [], f"round {round_}: {errors[0]!r}"
            assert len(opened) == 4
            study_id = opened[0].create_new_study([StudyDirection.MAXIMIZE], "race")
            assert [s.study_name for s in opened[3].get_all_studies()] == ["race"]
            assert opened[2].get_study_id_from_name("race") == study_id
        finally:
            for storage in opened:
                storage.engine.dispose()
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    admin.close()


def test_mlflow_keeps_its_store_in_its_own_postgresql_database() -> None:
    """docker-compose.yml and the Kubernetes manifests: MLflow's backend store on the same
    PostgreSQL server as the studies, its own database and user, made by one init script."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    mlflow, postgres = services["mlflow"], services["postgres"]
    store = mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"]
    assert store.startswith("postgresql+psycopg2://mlflow:${MLFLOW_DB_PASSWORD:?")
    assert store.endswith("@postgres:5432/mlflow") and "sqlite" not in mlflow["command"]
    assert "--backend-store-uri" not in mlflow["command"]  # MLflow reads the variable
    assert mlflow["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "./deploy/k8s/postgres-init:/docker-entrypoint-initdb.d:ro" in postgres["volumes"]
    assert postgres["environment"]["MLFLOW_DB_PASSWORD"].startswith("${MLFLOW_DB_PASSWORD:?")
    script = ROOT / "deploy/k8s/postgres-init/create-mlflow-db.sh"
    assert os.access(script, os.X_OK)  # the image's entrypoint executes it (sourced, set -u leaks)
    example = (ROOT / ".env.example").read_text()
    assert "\nMLFLOW_DB_PASSWORD=\n" in example
    docs = list(yaml.safe_load_all((ROOT / "deploy/k8s/mlflow.yaml").read_text()))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["MLFLOW_BACKEND_STORE_URI"]["value"] == \
        "postgresql+psycopg2://mlflow:$(MLFLOW_DB_PASSWORD)@postgres:5432/mlflow"
    assert not any("sqlite" in str(a) for a in container["command"])
    pg_docs = list(yaml.safe_load_all((ROOT / "deploy/k8s/postgres.yaml").read_text()))
    pg_set = next(d for d in pg_docs if d["kind"] == "StatefulSet")
    assert pg_set["spec"]["template"]["spec"]["containers"][0]["args"] == ["-c", "max_connections=400"]
    kustomization = yaml.safe_load((ROOT / "deploy/k8s/kustomization.yaml").read_text())
    (init,) = [g for g in kustomization["configMapGenerator"] if g["name"] == "postgres-init"]
    assert "postgres-init/create-mlflow-db.sh" in init["files"]


@pytest.mark.postgres
def test_the_init_script_makes_a_database_mlflow_can_use(tmp_path: Path) -> None:
    """The script compose and Kubernetes run, run for real (unique names, dropped after):
    MLflow migrates its schema there and keeps a run, as its server would."""
    from ..servers import mlflow_database

    if _postgres_reachable():
        if os.environ.get("SWEEPS_REQUIRE_POSTGRES"):
            pytest.fail(str(_postgres_reachable()))
        pytest.skip(str(_postgres_reachable()))
    from mlflow import MlflowClient

    with mlflow_database(PG_URL) as store:
        user = store.split("//", 1)[1].split(":", 1)[0]
        client = MlflowClient(store)
        exp = client.create_experiment("init-check", artifact_location=str(tmp_path))
        run = client.create_run(exp)
        client.log_metric(run.info.run_id, "val/acc", 0.5)
        assert client.get_run(run.info.run_id).data.metrics == {"val/acc": 0.5}
        import psycopg2

        with psycopg2.connect(PG_URL) as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (user,))
            assert cur.fetchone() == (user,)  # its own database, owned by its own user
        client._tracking_client.store.engine.dispose()

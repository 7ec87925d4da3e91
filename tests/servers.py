"""Servers the slow tests start themselves, on loopback, and stop by PID."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

AUTH_CONFIG = Path(__file__).resolve().parents[1] / "conf" / "mlflow" / "basic_auth.ini"
# The test servers run one uvicorn process (MLflow's default is 4) and none of MLflow's
# background job processes (its GenAI features; docker-compose.yml turns them off too): on
# 2 cores that halves their start-up and keeps ~1.5 GB free for the sweeps under test.
LEAN = ["--workers", "1"]
LEAN_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def group_commands(pgid: int) -> list[str]:
    """The command lines of the processes in process group `pgid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                found.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, IndexError, ValueError):  # a process that left meanwhile
            continue
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 120.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server behind {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@contextlib.contextmanager
def mlflow_server(root: Path, backend_store: str | None = None) -> Iterator[str]:
    """An `mlflow server` with an artifact root under `root` and its store in
    `backend_store` (default: SQLite under `root`)."""
    port = free_port()
    exe = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or "mlflow"
    proc = subprocess.Popen(
        [exe, "server", "--host", "127.0.0.1", "--port", str(port), *LEAN,
         "--backend-store-uri", backend_store or f"sqlite:///{root / 'server.db'}",
         "--artifacts-destination", str(root / "artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root, env={**os.environ, **LEAN_ENV})
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_http(uri + "/health", proc)
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class MlflowServer:
    """An `mlflow server` this test owns and may stop and start again on the same port
    (the same store): it runs in its own process group, stopped by that group's id."""

    def __init__(self, root: Path, admin_password: str | None = None) -> None:
        self.root, self.port = root, free_port()
        self.admin_password = admin_password  # set: `--app-name basic-auth`, user admin
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or "mlflow"
        env = {**os.environ, **LEAN_ENV}
        auth: list[str] = []
        if self.admin_password:
            auth = ["--app-name", "basic-auth"]
            env.update(MLFLOW_AUTH_ADMIN_PASSWORD=self.admin_password,
                       MLFLOW_FLASK_SERVER_SECRET_KEY="test-secret-key",
                       MLFLOW_AUTH_CONFIG_PATH=str(AUTH_CONFIG))  # docker-compose.yml's
        self.proc = subprocess.Popen(
            [exe, "server", *auth, "--host", "127.0.0.1", "--port", str(self.port), *LEAN,
             "--backend-store-uri", f"sqlite:///{self.root / 'server.db'}",
             "--artifacts-destination", str(self.root / "artifacts")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.root, env=env,
            start_new_session=True)
        wait_http(self.uri + "/health", self.proc)

    def stop(self, kill: bool = False) -> None:
        import signal

        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        end = time.time() + 30  # its uvicorn workers leave with the group; wait for the port
        while time.time() < end:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) != 0:
                    break
            time.sleep(0.2)
        self.proc = None


INIT_SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "k8s" / "postgres-init" / "create-mlflow-db.sh"
SWEEPS_INIT_SCRIPT = INIT_SCRIPT.with_name("create-sweeps-db.sh")


@contextlib.contextmanager
def mlflow_database(admin_url: str) -> Iterator[str]:
    """MLflow's own database and user on the PostgreSQL at `admin_url`, made by the script
    docker-compose.yml and the Kubernetes manifests run (unique names; dropped after).
    Yields the backend-store URI the compose file's server uses, for them."""
    import urllib.parse
    import uuid

    import psycopg2

    name = f"mlflow_t{uuid.uuid4().hex[:10]}"
    parts = urllib.parse.urlsplit(admin_url)
    env = {**os.environ, "PGHOST": parts.hostname or "127.0.0.1", "PGPORT": str(parts.port or 5432),
           "POSTGRES_USER": parts.username or "postgres", "POSTGRES_DB": "postgres",
           "MLFLOW_DB_USER": name, "MLFLOW_DB_NAME": name, "MLFLOW_DB_PASSWORD": "test-only"}
    subprocess.run(["sh", str(INIT_SCRIPT)], env=env, check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg2://{name}:test-only@{env['PGHOST']}:{env['PGPORT']}/{name}"
    finally:
        admin = psycopg2.connect(urllib.parse.urlunsplit(parts._replace(path="/postgres")))
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cur.execute(f'DROP USER IF EXISTS "{name}"')
        admin.close()


@contextlib.contextmanager
def sweeps_database(admin_url: str) -> Iterator[str]:
    """The sweeps' own role and database on the PostgreSQL at `admin_url`, made by the script
    docker-compose.yml and the Kubernetes manifests run (unique names; dropped after).
    Yields the storage URL the launch and workers use there."""
    import urllib.parse
    import uuid

    import psycopg2

    name = f"sweeps_t{uuid.uuid4().hex[:10]}"
    parts = urllib.parse.urlsplit(admin_url)
    env = {**os.environ, "PGHOST": parts.hostname or "127.0.0.1", "PGPORT": str(parts.port or 5432),
           "POSTGRES_USER": parts.username or "postgres", "POSTGRES_DB": "postgres",
           "SWEEPS_DB_USER": name, "SWEEPS_DB_NAME": name, "SWEEPS_DB_PASSWORD": "test-only"}
    subprocess.run(["sh", str(SWEEPS_INIT_SCRIPT)], env=env, check=True, capture_output=True)
    try:
        yield f"postgresql://{name}:test-only@{env['PGHOST']}:{env['PGPORT']}/{name}"
    finally:
        admin = psycopg2.connect(urllib.parse.urlunsplit(parts._replace(path="/postgres")))
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cur.execute(f'DROP ROLE IF EXISTS "{name}"')
        admin.close()


def postgres_url_reachable() -> str | None:
    """The tests' PostgreSQL URL (SWEEPS_TEST_POSTGRES) if a connection succeeds, else None."""
    url = os.environ.get("SWEEPS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        import psycopg2

        psycopg2.connect(url, connect_timeout=3).close()
        return url
    except Exception:
        return None


def require_postgres() -> str:
    """The tests' PostgreSQL URL; skips the test where none is reachable, or fails it where
    CI requires one (SWEEPS_REQUIRE_POSTGRES)."""
    import pytest

    url = postgres_url_reachable()
    if url is None:
        reason = "PostgreSQL not reachable at " + os.environ.get(
            "SWEEPS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
        if os.environ.get("SWEEPS_REQUIRE_POSTGRES"):
            pytest.fail(reason)
        pytest.skip(reason)
    return url

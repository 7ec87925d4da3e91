"""The servers of `benchmarks/load.py` and the CPU they use: a PostgreSQL of the run's own,
an `mlflow server` on a free loopback port, CPU seconds of process trees from /proc."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes (and their reaped children), /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
    return total


def pids_named(name: str) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            with contextlib.suppress(OSError):
                if (p / "comm").read_text().strip() == name:
                    out.append(int(p.name))
    return out


def tree(pid: int) -> list[int]:
    """`pid` and its descendants (/proc)."""
    children: dict[int, list[int]] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            with contextlib.suppress(OSError):
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(p.name))
    out, todo = [], [pid]
    while todo:
        q = todo.pop()
        out.append(q)
        todo.extend(children.get(q, []))
    return out


@contextlib.contextmanager
def postgres_server(root: Path, max_connections: int) -> Iterator[tuple[str, int]]:
    """A PostgreSQL server of this run's own (initdb, then pg_ctl on a free loopback port);
    yields its URL and postmaster pid. As root, it runs as the `postgres` user."""
    import glob
    import pwd

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins and not shutil.which("initdb"):
        raise SystemExit("no initdb here: pass --postgres URL of a running server")
    bindir = Path(bins[-1]).parent if bins else Path(shutil.which("initdb") or "").parent
    data = root / "pgdata"
    data.mkdir(parents=True)
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        pg = pwd.getpwnam("postgres")
        for d in (root, data):
            os.chown(d, pg.pw_uid, pg.pw_gid)
        os.chmod(root.parent, 0o755)  # a scratch directory is 0700: let postgres reach its data
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    for args in ([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                 [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(data / "log"), "-w", "-o",
                  f"-p {port} -c listen_addresses=127.0.0.1 -k {data} "
                  f"-c max_connections={max_connections}", "start"]):
        done = subprocess.run([*as_user, *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args[:1])} failed:\n{done.stdout}{done.stderr}")
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        yield url, pid
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True)


@contextlib.contextmanager
def mlflow_database(pg: str) -> Iterator[str]:
    """A database of its own for the MLflow server, dropped afterwards."""
    import psycopg2

    name = f"mlflow_load_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(pg.rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        # SQLAlchemy 2.1 reads postgresql:// as psycopg 3; psycopg2 is what is installed
        yield pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://", 1) + "/" + name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


# as docker-compose.yml runs it: no GenAI job runner, and its PostgreSQL pools bounded (with
# MLflow's defaults, 64 workers and the server passed max_connections=300; with 2 + 3 its
# requests waited for a connection, 30 s, and failed)
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": "5",
              "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW": "5"}


@contextlib.contextmanager
def mlflow_server(root: Path, backend: str, pg: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`mlflow server` on a free loopback port (MLflow's default workers), stopped after."""
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(mlflow_database(pg)) if backend == "postgresql" \
            else f"sqlite:///{root / 'server.db'}"
        port = _free_port()
        exe = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or "mlflow"
        log = open(root / "mlflow-server.log", "wb")  # noqa: SIM115  (closed with the stack)
        stack.callback(log.close)
        proc = subprocess.Popen(
            [exe, "server", "--host", "127.0.0.1", "--port", str(port), "--backend-store-uri", store,
             "--artifacts-destination", str(root / "artifacts")], stdout=log, stderr=log,
            env={**os.environ, **SERVER_ENV}, start_new_session=True)
        uri = f"http://127.0.0.1:{port}"
        deadline = time.time() + 180
        while True:
            try:
                urllib.request.urlopen(uri + "/health", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise SystemExit(f"mlflow server did not start: {root / 'mlflow-server.log'}") from None
                time.sleep(0.5)
        try:
            yield uri, proc
        finally:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()

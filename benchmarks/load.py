"""Load at cluster scale: N workers against PostgreSQL and an MLflow server, on loopback.

    python benchmarks/load.py [--workers 8,32,64] [--lengths 1,10] [--rounds 4]
                              [--backends postgresql] [--postgres URL]

For each N and trial length L: an `mlflow server` (its backend store on PostgreSQL, in a
database of its own made for the run, or on SQLite with `--backends sqlite`; both side by
side with `--backends postgresql,sqlite`), a sweep launched on PostgreSQL with N x rounds
trials and no local worker, and N `sweeps worker` processes (`benchmarks/_load_worker.py`:
the real worker, a synthetic trainer that sleeps L seconds and reports curves, no torch).
The workers wait for each other after their start-up, then claim together, as a cluster
does once its machines are up. Printed per run, from the Optuna record, the MLflow server
and /proc:

- trials/s over the run (first claim to last trial end) against the ideal N / L (no
  pruner: every trial lasts L);
- p50/p99 from a worker asking for a trial to the trial running;
- budget: trials that count toward it against n_trials; errors (failed trials, lines
  with a traceback or an error in the workers' output, non-zero exits); trials left
  RUNNING in Optuna and runs left RUNNING in MLflow, and trials without a finished run;
- the CPU share (of all cores, over the run) of PostgreSQL, the MLflow server and the
  workers.

Target (issue 21): 64 workers with 10 s trials >= 90 % of the ideal, budget exact, 0
errors, 0 RUNNING. PostgreSQL: a server of its own, made with `initdb` in a scratch
directory and started on a free loopback port with `max_connections` as docker-compose.yml
sets it (each worker holds about three connections: its storage's pool, its heartbeat
thread, the budget lock); or, with `--postgres URL`, an existing one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("SWEEPS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
MAX_CONNECTIONS = 300  # docker-compose.yml's
PG_PID: int | None = None  # the postmaster of the server this run started (its CPU is measured)
TARGET_SHARE = 0.90
ERROR_LINE = re.compile(r"Traceback|\berror\b|ERROR|exception", re.IGNORECASE)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI")}
    env["PYTHONWARNINGS"] = "ignore::UserWarning"  # Optuna's "heartbeat ... Study.optimize"
    return env


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


def _postgres_pids() -> list[int]:
    return tree(PG_PID) if PG_PID is not None else pids_named("postgres")


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
def postgres_server(root: Path, max_connections: int = MAX_CONNECTIONS) -> Iterator[tuple[str, int]]:
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
def mlflow_database() -> Iterator[str]:
    """A database of its own for the MLflow server, dropped afterwards."""
    import psycopg2

    name = f"mlflow_load_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(PG.rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        # SQLAlchemy 2.1 reads postgresql:// as psycopg 3; psycopg2 is what is installed
        yield PG.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://", 1) + "/" + name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@contextlib.contextmanager
def mlflow_server(root: Path, backend: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`mlflow server` on a free loopback port (MLflow's default workers), stopped after."""
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(mlflow_database()) if backend == "postgresql" \
            else f"sqlite:///{root / 'server.db'}"
        port = _free_port()
        exe = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or "mlflow"
        log = open(root / "mlflow-server.log", "wb")  # noqa: SIM115  (closed with the stack)
        stack.callback(log.close)
        proc = subprocess.Popen(
            [exe, "server", "--host", "127.0.0.1", "--port", str(port), "--backend-store-uri", store,
             "--artifacts-destination", str(root / "artifacts")], stdout=log, stderr=log,
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, start_new_session=True)
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


@dataclass
class Result:
    workers: int
    length: float
    backend: str
    n_trials: int
    span_s: float = 0.0
    startup_s: float = 0.0
    counted: int = 0
    errors: list[str] = field(default_factory=list)
    running: int = 0
    runs_running: int = 0
    runs_missing: int = 0
    ask_to_run: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def ideal(self) -> float:
        return self.workers / self.length

    @property
    def rate(self) -> float:
        return self.counted / self.span_s if self.span_s else 0.0


def _launch(root: Path, name: str, n_trials: int, uri: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sweeps", "launch", "sweep=quick", "sweep.optimizers=[adam]",
         f"sweep.name={name}", f"sweep.n_trials={n_trials}", "sweep.workers=0", "trainer.epochs=3",
         "sweep.pruner.name=none",
         "storage=postgres", f"storage.url={PG}", "tracking=server", f"tracking.uri={uri}",
         "tracking.writer=thread"], cwd=root, env=_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"launch failed:\n{proc.stdout}\n{proc.stderr}")


def run_load(workers: int, length: float, rounds: int, backend: str, root: Path) -> Result:
    root.mkdir(parents=True)
    name = f"load{uuid.uuid4().hex[:8]}"
    res = Result(workers, length, backend, workers * rounds)
    with mlflow_server(root, backend) as (uri, server):
        _launch(root, name, res.n_trials, uri)
        times, gate = root / "times.jsonl", root / "gate"
        gate.mkdir()
        env = {**_env(), "LOAD_TRIAL_S": str(length), "LOAD_LOG": str(times),
               "LOAD_GATE": str(gate), "LOAD_WORKERS": str(workers)}
        started = time.time()
        procs = []
        for i in range(workers):
            with open(root / f"worker{i}.log", "wb") as log:
                procs.append(subprocess.Popen(
                    [sys.executable, str(ROOT / "benchmarks" / "_load_worker.py"), "worker", "--study",
                     name, "--storage", PG, "--index", str(i), "--output-dir", str(root / "out")],
                    cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT))
        while len(list(gate.iterdir())) < workers and all(p.poll() is None for p in procs):
            time.sleep(0.2)
        res.startup_s = time.time() - started
        (gate / "go").touch()  # the workers claim from here
        cpu0 = {"postgresql": cpu_seconds(_postgres_pids()),
                "mlflow server": cpu_seconds(tree(server.pid)),
                "workers": cpu_seconds([p.pid for p in procs])}  # their start-up: not the load's
        go = time.time()
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        for p in procs:
            p.wait()
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu1 = {"postgresql": cpu_seconds(_postgres_pids()),
                "mlflow server": cpu_seconds(tree(server.pid))}
        wall = time.time() - go
        cpu1["workers"] = (children1.ru_utime + children1.ru_stime - children0.ru_utime
                           - children0.ru_stime)  # their whole lives, reaped: less cpu0's part
        res.cpu = {k: (cpu1[k] - cpu0[k]) / (wall * (os.cpu_count() or 1)) for k in cpu0}
        res.errors += [f"worker {i} exited {p.returncode}" for i, p in enumerate(procs) if p.returncode]
        for i in range(workers):
            for line in (root / f"worker{i}.log").read_text(errors="replace").splitlines():
                if ERROR_LINE.search(line):
                    res.errors.append(f"worker {i}: {line.strip()[:160]}")
        _check_record(res, name, uri, times, go)
    return res


def _check_record(res: Result, name: str, uri: str, times: Path, go: float) -> None:
    """Budget, states and timings from Optuna; runs from the MLflow server."""
    import optuna
    from mlflow import MlflowClient

    from sweeps.search import budget
    from sweeps.search.studies import sweep_studies
    from sweeps.store.storages import open_storage

    storage = open_storage(PG)
    trials = [t for s in sweep_studies(storage, name) for t in s.get_trials(deepcopy=False)]
    res.counted = sum(budget.counts_toward_budget(t) for t in trials)
    res.running = sum(t.state == optuna.trial.TrialState.RUNNING for t in trials)
    res.errors += [f"trial #{t.number} {t.state.name}: {t.user_attrs.get('failure_reason')}"
                   for t in trials if t.state == optuna.trial.TrialState.FAIL]
    ends = [t.datetime_complete.timestamp() for t in trials if t.datetime_complete]
    res.span_s = (max(ends) - go) if ends else 0.0
    res.ask_to_run = sorted(r["run"] - r["ask"] for r in map(json.loads, times.read_text().splitlines()))
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(name)
    runs = [] if exp is None else client.search_runs([exp.experiment_id], max_results=50000)
    by_id = {r.info.run_id: r for r in runs}
    res.runs_running = sum(r.info.status == "RUNNING" for r in runs)
    res.runs_missing = sum(by_id.get(str(t.user_attrs.get("mlflow_run_id"))) is None or
                           by_id[str(t.user_attrs["mlflow_run_id"])].info.status != "FINISHED"
                           for t in trials if t.state.is_finished())
    for s in sweep_studies(storage, name):
        optuna.delete_study(study_name=s.study_name, storage=storage)


def pct(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def line(r: Result) -> str:
    share = r.rate / r.ideal
    cpu = " ".join(f"{v:>5.0%}" for v in r.cpu.values())
    budget = f"{r.counted}/{r.n_trials}"
    return (f"{r.workers:>3} {r.length:>5.0f} s {r.backend:<11}{r.ideal:>7.2f}{r.rate:>7.2f}"
            f"{share:>7.0%}  {pct(r.ask_to_run, .5):>6.2f} {pct(r.ask_to_run, .99):>6.2f}"
            f"  {budget:>9} {len(r.errors):>6} {r.running:>4}/{r.runs_running}/{r.runs_missing}"
            f"  {cpu}   {r.startup_s:>5.0f} s")


HEADER = ("  N  trial mlflow store  ideal   got  share  ask->run s  budget    errors "
          "RUN/runs/miss   pg mlflow workers  start-up\n"
          "                        trials/s          p50    p99")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", default="8,32,64")
    ap.add_argument("--lengths", default="1,10")
    ap.add_argument("--rounds", type=int, default=4, help="trials per worker")
    ap.add_argument("--backends", default="postgresql", help="postgresql,sqlite")
    ap.add_argument("--postgres", default=None, help="an existing server's URL (default: start one)")
    a = ap.parse_args()
    results = []
    global PG, PG_PID
    with tempfile.TemporaryDirectory(prefix="sweeps-load-") as tmp, contextlib.ExitStack() as stack:
        if a.postgres:
            PG = a.postgres
        else:
            PG, PG_PID = stack.enter_context(postgres_server(Path(tmp) / "postgres"))
        for backend in a.backends.split(","):
            for n in [int(x) for x in a.workers.split(",")]:
                for length in [float(x) for x in a.lengths.split(",")]:
                    r = run_load(n, length, a.rounds, backend, Path(tmp) / f"{backend}-{n}-{length:g}")
                    results.append(r)
                    print(line(r), flush=True)
                    for e in r.errors[:5]:
                        print(f"      {e}")
    print(f"\nLoad on loopback ({os.cpu_count()} cores; {a.rounds} trials per worker; the workers "
          "share the cores with PostgreSQL and the MLflow server)")
    print(HEADER)
    for r in results:
        print(line(r))
    for r in results:
        if r.workers == 64 and r.length == 10:
            ok = (r.rate / r.ideal >= TARGET_SHARE and r.counted == r.n_trials and not r.errors
                  and not r.running and not r.runs_running and not r.runs_missing)
            print(f"target (64 workers, 10 s trials, {r.backend}): >= {TARGET_SHARE:.0%} of the "
                  f"ideal, budget exact, 0 errors, 0 RUNNING: {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    from _results import record

    record(main)

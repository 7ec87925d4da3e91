"""Load at cluster scale: N workers against PostgreSQL and an MLflow server, on loopback,
beside Optuna's own way of doing the same.

    python benchmarks/load.py [--workers 8,32,64] [--lengths 1,10] [--rounds 4]
                              [--backends postgresql] [--peer | --no-peer] [--postgres URL]

For each N and trial length L, in one run on the same PostgreSQL and MLflow server:

- **this tool**: a sweep launched on PostgreSQL with N x rounds trials and no local worker,
  then N `sweeps worker` processes (`benchmarks/_load_worker.py`: the real worker, a
  synthetic trainer that sleeps L seconds and reports curves, no torch);
- **the Optuna peer** (`benchmarks/_load_peer.py`, needs `pip install -e '.[peers]'`): N
  processes of `study.optimize` on one PostgreSQL study with `MaxTrialsCallback` for the
  budget and optuna-integration's `MLflowCallback` for tracking, the same sleeping
  objective, the same search space and TPE set-up.

Both wait for each other after their start-up, then claim together, as a cluster does once
its machines are up; which of the two goes first alternates from size to size. Printed per
run, from the Optuna record, the MLflow server and /proc:

- trials/s over the run (first claim to last trial end) against the ideal N / L (no
  pruner: every trial lasts L), and the fixed cost per trial in the steady state (the
  median time from one of a worker's trials starting to its next, less L: what each trial
  costs a worker beyond its training);
- p50/p99 from a worker asking for a trial to the trial running;
- budget: trials that count toward it against n_trials; errors (failed trials, lines
  with a traceback or an error in the workers' output, requests the MLflow server logged
  as failed, non-zero exits); trials left
  RUNNING in Optuna and runs left RUNNING in MLflow, and trials without a finished run;
- the CPU share (of all cores, over the run) of PostgreSQL, the MLflow server and the
  workers;
- for this tool, where each worker's time went (`_load_parts`): every round trip of a
  claim and of a trial (sampling, attribute writes, the tell, MLflow's requests on the
  writer thread), in ms per trial and per call; and the claims per second the lock allows
  (1 / lock held). On PostgreSQL a claim is one statement (`sweeps.store.claim_statement`):
  its round trip, and the lock's wait and hold as the server measured them; a claim that
  retries a lost trial takes the lock from the worker (lock wait, lock held, the count, the
  pop of a waiting trial, the trial row).

Then the floor: PostgreSQL's and the MLflow server's own round trip on loopback, and the
targets met or missed. PostgreSQL: a server of its own, made with `initdb` in a scratch
directory and started on a free loopback port with `max_connections` as docker-compose.yml
sets it (each worker keeps two connections, its main thread's and its heartbeat thread's,
and opens up to four at once); or, with `--postgres URL`, an existing one.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from _load_parts import summary
from _load_report import HEADER, Result, line, parts_table, verdicts
from _load_servers import cpu_seconds, mlflow_server, pids_named, postgres_server, tree

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("SWEEPS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
MAX_CONNECTIONS = 400  # docker-compose.yml's
PG_PID: int | None = None  # the postmaster of the server this run started (its CPU is measured)
ERROR_LINE = re.compile(r"Traceback|\berror\b|ERROR|exception", re.IGNORECASE)
EPOCHS = 3
ALONE_ROUNDS = 8  # trials of the one worker alone (its first is start-up, not steady state)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI")}
    env["PYTHONWARNINGS"] = "ignore::UserWarning"  # Optuna's "heartbeat ... Study.optimize"
    # MLflow's usage telemetry off for both tools (a machine without internet; once seen
    # killing a peer worker with KeyError: '_MLFLOW_TELEMETRY_SESSION_ID')
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return env


def _postgres_pids() -> list[int]:
    return tree(PG_PID) if PG_PID is not None else pids_named("postgres")


def _launch(root: Path, name: str, n_trials: int, uri: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sweeps", "launch", "sweep=quick", "sweep.optimizers=[adam]",
         f"sweep.name={name}", f"sweep.n_trials={n_trials}", "sweep.workers=0",
         f"trainer.epochs={EPOCHS}", "sweep.pruner.name=none",
         "storage=postgres", f"storage.url={PG}", "tracking=server", f"tracking.uri={uri}",
         "tracking.writer=thread"], cwd=root, env=_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"launch failed:\n{proc.stdout}\n{proc.stderr}")


def _psycopg2(url: str) -> str:
    """The URL as Optuna's SQLAlchemy must read it here (2.1 reads postgresql:// as psycopg 3)."""
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


def _peer_study(name: str, uri: str) -> None:
    """The peer's study and MLflow experiment, made once (64 processes making them at once race)."""
    import optuna
    from mlflow import MlflowClient

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(study_name=name, storage=_psycopg2(PG), direction="maximize")
    MlflowClient(uri).create_experiment(name)


def _run_together(res: Result, root: Path, server: subprocess.Popen[bytes],
                  commands: list[list[str]], env: dict[str, str], gate: Path) -> float:
    """Start every process, wait for their start-ups, open the gate, wait for them all; the
    CPU shares over the load, and errors in their output. Returns when the gate opened."""
    started = time.time()
    procs = []
    for i, cmd in enumerate(commands):
        with open(root / f"worker{i}.log", "wb") as log:
            procs.append(subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT))
    while len(list(gate.iterdir())) < len(procs) and all(p.poll() is None for p in procs):
        time.sleep(0.2)
    res.startup_s = time.time() - started
    (gate / "go").touch()  # they claim from here
    cpu0 = {"postgresql": cpu_seconds(_postgres_pids()), "mlflow server": cpu_seconds(tree(server.pid)),
            "workers": cpu_seconds([p.pid for p in procs])}  # their start-up: not the load's
    go = time.time()
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    for p in procs:
        p.wait()
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu1 = {"postgresql": cpu_seconds(_postgres_pids()), "mlflow server": cpu_seconds(tree(server.pid)),
            # their whole lives, reaped; less cpu0's part below
            "workers": children1.ru_utime + children1.ru_stime - children0.ru_utime - children0.ru_stime}
    wall = time.time() - go
    res.load_s = wall
    res.cpu = {k: (cpu1[k] - cpu0[k]) / (wall * (os.cpu_count() or 1)) for k in cpu0}
    res.errors += [f"worker {i} exited {p.returncode}" for i, p in enumerate(procs) if p.returncode]
    for i in range(len(procs)):
        for text in (root / f"worker{i}.log").read_text(errors="replace").splitlines():
            if ERROR_LINE.search(text):
                res.errors.append(f"worker {i}: {text.strip()[:160]}")
    return go


def run_load(workers: int, length: float, rounds: int, backend: str, root: Path, tool: str) -> Result:
    root.mkdir(parents=True)
    name = f"load{uuid.uuid4().hex[:8]}"
    res = Result(workers, length, backend, workers * rounds, tool)
    with mlflow_server(root, backend, PG) as (uri, server):
        times, gate, parts = root / "times.jsonl", root / "gate", root / "parts.jsonl"
        gate.mkdir()
        env = {**_env(), "LOAD_TRIAL_S": str(length), "LOAD_LOG": str(times), "LOAD_GATE": str(gate)}
        if tool == "sweeps":
            _launch(root, name, res.n_trials, uri)
            env["LOAD_PARTS"] = str(parts)
            commands = [[sys.executable, str(ROOT / "benchmarks" / "_load_worker.py"), "worker", "--study",
                         name, "--storage", PG, "--index", str(i), "--output-dir", str(root / "out")]
                        for i in range(workers)]
        else:
            _peer_study(name, uri)
            commands = [[sys.executable, str(ROOT / "benchmarks" / "_load_peer.py"), _psycopg2(PG), name,
                         str(res.n_trials), uri, str(i)] for i in range(workers)]
        go = _run_together(res, root, server, commands, env, gate)
        server_log = root / "mlflow-server.log"  # a request the server failed is an error too
        if server_log.exists():
            res.errors += [f"mlflow server: {text.strip()[:160]}" for text in
                           server_log.read_text(errors="replace").splitlines() if " ERROR " in text]
        if parts.exists():
            res.parts = summary([json.loads(x) for x in parts.read_text().splitlines()])
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
    studies = sweep_studies(storage, name) if res.tool == "sweeps" else \
        [optuna.load_study(study_name=name, storage=storage)]
    trials = [t for s in studies for t in s.get_trials(deepcopy=False)]
    res.counted = sum(budget.counts_toward_budget(t) for t in trials)
    res.running = sum(t.state == optuna.trial.TrialState.RUNNING for t in trials)
    res.errors += [f"trial #{t.number} {t.state.name}: {t.user_attrs.get('failure_reason')}"
                   for t in trials if t.state == optuna.trial.TrialState.FAIL]
    ends = [t.datetime_complete.timestamp() for t in trials if t.datetime_complete]
    res.span_s = (max(ends) - go) if ends else 0.0
    records = [json.loads(x) for x in times.read_text().splitlines()]
    res.ask_to_run = sorted(r["run"] - r["ask"] for r in records)
    starts: dict[int, list[float]] = {}
    for r in records:
        starts.setdefault(r["pid"], []).append(r["run"])
    res.cycles = [b - a for runs in map(sorted, starts.values()) for a, b in itertools.pairwise(runs)]
    res.first_starts = sorted(min(runs) - go for runs in starts.values())
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(name)
    runs = [] if exp is None else client.search_runs([exp.experiment_id], max_results=50000)
    res.runs_running = sum(r.info.status == "RUNNING" for r in runs)
    if res.tool == "sweeps":  # a trial's run as the tool finds it (`run_id`: on the trial, or,
        # where the server created it only after the trial had ended, on the study)
        from sweeps.search.studies import run_id

        finished = {r.info.run_id for r in runs if r.info.status == "FINISHED"}
        res.runs_missing = sum(run_id(s, t) not in finished for s in studies
                               for t in s.get_trials(deepcopy=False) if t.state.is_finished())
    else:  # MLflowCallback names each run by its trial's number
        named = {r.info.run_name for r in runs if r.info.status == "FINISHED"}
        res.runs_missing = sum(str(t.number) not in named for t in trials if t.state.is_finished())
    for s in studies:
        optuna.delete_study(study_name=s.study_name, storage=storage)


def floor() -> list[str]:
    """PostgreSQL's and the MLflow server's own round trips on loopback: what no change to
    this tool can go under, per round trip that must remain."""
    import psycopg2

    t0 = time.perf_counter()
    conn = psycopg2.connect(PG)
    connect = time.perf_counter() - t0
    conn.autocommit = True
    with conn.cursor() as cur:
        samples = []
        for _ in range(300):
            t0 = time.perf_counter()
            cur.execute("SELECT 1")
            cur.fetchone()
            samples.append(time.perf_counter() - t0)
        commits = []
        table = f"floor_probe_{uuid.uuid4().hex[:8]}"  # a real table: its commits wait for the WAL flush
        cur.execute(f"CREATE TABLE {table} (x int)")
        for _ in range(100):
            t0 = time.perf_counter()
            cur.execute(f"INSERT INTO {table} VALUES (1)")  # autocommit: one commit each
            commits.append(time.perf_counter() - t0)
        cur.execute(f"DROP TABLE {table}")
    conn.close()
    return [f"floor: PostgreSQL on loopback {1000 * statistics.median(samples):.3f} ms a round trip, "
            f"{1000 * statistics.median(commits):.2f} ms a committed write (medians), "
            f"{1000 * connect:.1f} ms a new connection"]


def mlflow_round_trip(uri: str) -> float:
    samples = []
    for _ in range(50):
        t0 = time.perf_counter()
        urllib.request.urlopen(f"{uri}/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default",
                               timeout=10).read()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def _peer_installed() -> bool:
    try:
        import optuna_integration.mlflow  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", default="8,32,64")
    ap.add_argument("--lengths", default="1,10")
    ap.add_argument("--rounds", type=int, default=4, help="trials per worker")
    ap.add_argument("--backends", default="postgresql", help="postgresql,sqlite")
    ap.add_argument("--peer", action=argparse.BooleanOptionalAction, default=True,
                    help="also run the Optuna peer (default: yes, where optuna-integration is installed)")
    ap.add_argument("--postgres", default=None, help="an existing server's URL (default: start one)")
    ap.add_argument("--alone", action=argparse.BooleanOptionalAction, default=True,
                    help="also one worker alone with 1 s trials: the fixed cost with no core shared")
    a = ap.parse_args()
    tools = ["sweeps"]
    if a.peer and _peer_installed():
        tools.append("optuna")
    elif a.peer:
        print("the Optuna peer is skipped: pip install -e '.[peers]' (optuna-integration[mlflow])")
    results = []
    global PG, PG_PID
    with tempfile.TemporaryDirectory(prefix="sweeps-load-") as tmp, contextlib.ExitStack() as stack:
        if a.postgres:
            PG = a.postgres
        else:
            PG, PG_PID = stack.enter_context(postgres_server(Path(tmp) / "postgres", MAX_CONNECTIONS))
        alone = None
        if a.alone:  # the fixed cost of a trial's round trips and CPU, with nothing else to wait for
            alone = run_load(1, 1.0, ALONE_ROUNDS, a.backends.split(",")[0], Path(tmp) / "alone", "sweeps")
            print(line(alone), "(one worker alone)", flush=True)
        size = 0
        for backend in a.backends.split(","):
            for n in [int(x) for x in a.workers.split(",")]:
                for length in [float(x) for x in a.lengths.split(",")]:
                    order = tools if size % 2 == 0 else tools[::-1]  # who goes first alternates
                    size += 1
                    for tool in order:
                        r = run_load(n, length, a.rounds, backend,
                                     Path(tmp) / f"{tool}-{backend}-{n}-{length:g}", tool)
                        results.append(r)
                        print(line(r), flush=True)
                        for e in r.errors[:5]:
                            print(f"      {e}")
        lines = floor()
        (Path(tmp) / "floor").mkdir()
        with mlflow_server(Path(tmp) / "floor", a.backends.split(",")[0], PG) as (uri, _):
            lines.append(f"floor: the MLflow server on loopback {1000 * mlflow_round_trip(uri):.1f} ms "
                         "a request (median of a small read)")
    print(f"\nLoad on loopback ({os.cpu_count()} cores; {a.rounds} trials per worker; the workers "
          "share the cores with PostgreSQL and the MLflow server)")
    print(HEADER)
    for r in results:
        print(line(r))
    if alone is not None:
        print(line(alone), "(one worker alone)")
    for r in results:
        if r.parts:
            print("\n".join(parts_table(r)))
    print()
    print("\n".join(lines))
    print()
    print("\n".join(verdicts(results, alone)))


if __name__ == "__main__":
    from _results import record

    record(main)

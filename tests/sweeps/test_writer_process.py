"""The worker's MLflow writer process: what a trial run gets, who wrote it, outages, losses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Client
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sweeps.cli import app
from sweeps.run.worker import Worker
from sweeps.tracking import clients, outage, writer, writer_service
from sweeps.tracking import runs as tracking_runs

from .conftest import SMALL
from .helpers import journal_trials, mlflow_runs, wait_for


@pytest.fixture
def fresh_background() -> Iterator[None]:
    """Each test gets this process's writer as it finds it back afterwards."""
    saved, saved_all, patience = writer.Background._executor, writer.Background._all, outage.PATIENCE_S
    shared = outage._shared_outage
    writer.Background._executor, writer.Background._all = None, []
    yield
    executor = writer.Background._executor
    if executor is not None and executor is not saved:
        executor.shutdown(wait=True, cancel_futures=True)
    writer.Background._executor, writer.Background._all = saved, saved_all
    outage.PATIENCE_S, outage._shared_outage = patience, shared
    outage._down_since = None


def _writer_pid() -> int:
    return writer.Background().submit(os.getpid).result(timeout=60)


def test_a_worker_with_a_writer_process_never_imports_mlflow(workdir: Path, cli: CliRunner) -> None:
    """Importing mlflow costs a worker ~1.7 s of its first trial; its writer process does
    the MLflow work, and the trial's points travel as plain tuples."""
    result = cli.invoke(app, ["launch", *SMALL, "sweep.workers=0", "sweep.optimizers=[adam]",
                              "sweep.n_trials=2", "tracking.writer=process"])
    assert result.exit_code == 0, result.output
    code = textwrap.dedent("""
        import sys
        from sweeps.run.worker import Worker
        ran = Worker.connect("sweeps.journal", "quick", quiet=True).run()
        print(ran, sorted(m for m in sys.modules if m.split(".")[0] == "mlflow")[:3])
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True,
                          timeout=300)
    assert proc.stdout.split("\n")[-2] == "2 []", proc.stdout + proc.stderr
    runs = [r for r in mlflow_runs(f"sqlite:///{workdir / 'mlflow.db'}")
            if r.data.tags.get("sweeps.kind") == "trial"]
    assert len(runs) == 2 and all(r.data.metrics["val/acc"] > 0 for r in runs)  # the points got there


def test_a_worker_sends_its_trials_runs_through_a_writer_process(
        workdir: Path, cli: CliRunner, fresh_background: None) -> None:
    result = cli.invoke(app, ["launch", *SMALL, "sweep.workers=0", "sweep.optimizers=[adam]",
                              "sweep.n_trials=2", "sweep.pruner.name=none", "tracking.writer=process"])
    assert result.exit_code == 0, result.output
    assert Worker.connect(str(workdir / "sweeps.journal"), "quick", quiet=True).run() == 2

    writer = _writer_pid()
    assert writer != os.getpid()  # the writes ran in another process
    runs = [r for r in mlflow_runs(f"sqlite:///{workdir / 'mlflow.db'}")
            if r.data.tags.get("sweeps.kind") == "trial"]
    trials = {t.number: t for t in journal_trials(workdir / "sweeps.journal")["quick.adam"]}
    assert len(runs) == 2
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    for run in runs:
        trial = trials[int(run.data.tags["sweeps.trial"])]
        assert trial.user_attrs["mlflow_run_id"] == run.info.run_id  # recorded in this process
        assert run.info.status == "FINISHED" and run.data.tags["sweeps.state"] == "complete"
        # the worker's identity, not the writer's: Ctrl-C clean-up picks runs by it
        assert run.data.tags["sweeps.worker"] == f"{socket.gethostname()}:{os.getpid()}"
        assert run.data.params["optimizer.name"] == "adam"
        assert run.data.params["hp.lr"] == str(trial.params["lr"])
        assert run.data.metrics["objective"] == pytest.approx(trial.value)
        curve = client.get_metric_history(run.info.run_id, "val/acc")
        assert [m.step for m in curve] == [1, 2]  # the held last epoch arrived with the end
        assert max(m.value for m in curve) == pytest.approx(trial.value)
        assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"config.yaml", "history.json"}
        history = json.loads(Path(client.download_artifacts(run.info.run_id, "history.json",
                                                            str(workdir / "dl"))).read_text())
        assert history["status"] == "completed" and [h["epoch"] for h in history["epochs"]] == [1, 2]
        import yaml

        config = Path(client.download_artifacts(run.info.run_id, "config.yaml", str(workdir / "dl")))
        assert yaml.safe_load(config.read_text()) == trial.user_attrs["config"]  # what reproduce runs


def test_thread_writer_is_a_setting_and_bad_values_are_refused(
        workdir: Path, cli: CliRunner, fresh_background: None) -> None:
    bad = cli.invoke(app, ["launch", *SMALL, "sweep.workers=0", "tracking.writer=fork"])
    assert bad.exit_code != 0
    assert "tracking.writer='fork': must be one of auto, process, thread" in bad.output
    assert not (workdir / "sweeps.journal").exists() and not (workdir / "mlflow.db").exists()

    result = cli.invoke(app, ["launch", *SMALL, "sweep.workers=0", "sweep.optimizers=[sgd]",
                              "sweep.n_trials=1", "tracking.writer=thread"])
    assert result.exit_code == 0, result.output
    assert Worker.connect(str(workdir / "sweeps.journal"), "quick", quiet=True).run() == 1
    assert isinstance(writer.Background._executor, ThreadPoolExecutor)
    assert _writer_pid() == os.getpid()
    (run,) = [r for r in mlflow_runs(f"sqlite:///{workdir / 'mlflow.db'}")
              if r.data.tags.get("sweeps.kind") == "trial"]
    assert run.data.tags["sweeps.state"] == "complete" and "val/acc" in run.data.metrics


@pytest.mark.parametrize(("workers", "cores", "writer"),
                         [(1, 2, "process"), (0, 2, "process"), (2, 2, "thread"), (2, 4, "process"),
                          (1, 1, "thread")])
def test_auto_writer_is_a_process_only_where_a_core_is_spare(
        monkeypatch: pytest.MonkeyPatch, workers: int, cores: int, writer: str) -> None:
    from sweeps.search.load import load_sweep

    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert load_sweep([*SMALL, f"sweep.workers={workers}"]).tracking_writer == writer
    for explicit in ("process", "thread"):
        spec = load_sweep([*SMALL, f"sweep.workers={workers}", f"tracking.writer={explicit}"])
        assert spec.tracking_writer == explicit


def test_an_outage_seen_by_the_writer_process_reaches_the_worker(
        tmp_path: Path, fresh_background: None) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    outage.PATIENCE_S = 6.0
    assert writer.Background.use_process(f"sqlite:///{tmp_path / 'unused.db'}", "x")
    writer.Background.drain()
    assert not outage.in_outage()
    future = writer.Background().submit(writer._op_open, f"http://127.0.0.1:{port}", "x")
    wait_for(outage.in_outage, timeout=30, interval=0.2)  # set in the child, read here
    with pytest.raises(outage.WriteFailed, match=r"Connection refused|Max retries"):
        future.result(timeout=60)  # past the patience: failed, as plain text


def test_a_lost_writer_process_hands_its_writes_to_a_thread(
        tmp_path: Path, fresh_background: None) -> None:
    assert writer.Background.use_process(f"sqlite:///{tmp_path / 'mlflow.db'}", "x")
    writer_pid = _writer_pid()
    os.kill(writer_pid, signal.SIGKILL)  # our own child
    executor: Any = writer.Background._executor
    wait_for(lambda: executor._broken, timeout=30, interval=0.1)
    assert _writer_pid() == os.getpid()  # a thread of this process took over


def test_the_writer_process_leaves_when_its_worker_is_killed(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from sweeps.tracking import outage
        from sweeps.tracking import runs as tracking_runs
        from sweeps.tracking import writer
        if __name__ == "__main__":
            writer.Background.use_process("sqlite:///{tmp_path / 'mlflow.db'}", "x")
            print(writer.Background().submit(os.getpid).result(timeout=120), flush=True)
            time.sleep(600)
    """)
    (tmp_path / "worker.py").write_text(script)
    proc = subprocess.Popen([sys.executable, str(tmp_path / "worker.py")], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        writer = int(proc.stdout.readline())
        assert writer != proc.pid and _alive(writer)
    finally:
        proc.kill()  # SIGKILL: the worker cannot tell its writer anything
        proc.wait()
    wait_for(lambda: not _alive(writer), timeout=30, interval=0.2)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _worker_process(db: str) -> None:
    writer.Background.use_process(f"sqlite:///{db}", "x")
    writer.Background().submit(os.getpid).result(timeout=120)


def test_a_worker_process_with_a_writer_exits_when_done(tmp_path: Path) -> None:
    # multiprocessing joins a process's children before its atexit handlers: the writer must
    # be shut down before that, or every `sweeps launch` worker would hang at its exit
    import multiprocessing as mp

    proc = mp.get_context("spawn").Process(target=_worker_process, args=(str(tmp_path / "m.db"),))
    proc.start()
    proc.join(120)
    alive = proc.is_alive()
    if alive:
        proc.kill()
    assert not alive and proc.exitcode == 0


class _FlakyClient:
    """An MlflowClient whose first `refusals` requests are refused, as by a restarting server."""

    def __init__(self, real: Any, refusals: int) -> None:
        self.real, self.refusals, self.calls = real, refusals, 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.real, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.refusals > 0:
                self.refusals -= 1
                raise ConnectionError("Failed to establish a new connection: [Errno 111] Connection refused")
            return method(*args, **kwargs)
        return call


def test_a_launchs_parent_run_waits_out_a_server_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_background: None) -> None:
    """The CI chaos test once stopped the server between a launch's reachability check and its
    parent run: the launch died with a traceback-free but fatal error. It now waits."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    flaky = _FlakyClient(MlflowClient(uri), refusals=3)
    monkeypatch.setattr(clients, "client", lambda _uri: flaky)
    monkeypatch.setattr(outage.time, "sleep", lambda _s: None)
    outage.PATIENCE_S = 60.0
    run = tracking_runs.start_parent(uri, "restart", {"sweep": {"n_trials": 4}}, {"sweep.yaml": "a: 1\n"})
    flaky.refusals = 2
    assert tracking_runs.finish_parent(uri, run, "FINISHED", {"best/val_acc": 0.5})
    assert flaky.calls > 5  # the refused requests were made, and retried
    got = MlflowClient(uri).get_run(run)
    assert got.info.status == "FINISHED" and got.data.metrics == {"best/val_acc": 0.5}
    assert got.data.params["sweep.n_trials"] == "4" and got.data.tags["sweeps.kind"] == "launch"


def test_a_launch_whose_server_stays_away_leaves_its_parent_open_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_background: None) -> None:
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = tracking_runs.start_parent(uri, "away", {}, {})
    flaky = _FlakyClient(MlflowClient(uri), refusals=10**6)
    monkeypatch.setattr(clients, "client", lambda _uri: flaky)
    monkeypatch.setattr(outage.time, "sleep", lambda _s: None)
    outage.PATIENCE_S = 0.0  # past the patience at once
    assert not tracking_runs.finish_parent(uri, run, "FINISHED", {})
    assert MlflowClient(uri).get_run(run).info.status == "RUNNING"


# ------------------------------------------------------- a launch as its workers' writer
_SEEN: list[int] = []  # what the writes a launch ran for its worker recorded, in order


def _record(i: int) -> int:
    _SEEN.append(i)
    return i


def _refuse() -> None:
    raise ValueError("refused by the store")


def _launch_worker(address: writer_service.WriterAddress, out: Any) -> None:
    """A launch's worker process: its writes go to the launch (this test's process)."""
    assert writer.Background.use_launch_writer(address)
    background = writer.Background()
    futures = [background.submit(_record, i) for i in range(50)]
    error = background.submit(_refuse).exception(timeout=60)
    out.put((background.submit(os.getpid).result(timeout=60), [f.result(timeout=60) for f in futures],
             repr(error), outage.in_outage(), os.getpid()))
    writer.Background.drain()


def test_a_launchs_workers_write_through_the_launch_in_order(fresh_background: None) -> None:
    """No writer process per worker: its writes run in the launch, in the order sent; an
    error comes back as the worker's; the launch's outage is the worker's too."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    service = writer_service.WriterService(ctx)
    try:
        assert oct(os.stat(os.path.dirname(service.address.path)).st_mode & 0o777) == "0o700"
        service.address.flag.value = 1  # the launch waits for a server that went away
        out = ctx.Queue()
        _SEEN.clear()
        proc = ctx.Process(target=_launch_worker, args=(service.address, out))
        proc.start()
        ran_in, results, error, worker_in_outage, worker = out.get(timeout=120)
        proc.join(60)
        assert proc.exitcode == 0
        assert ran_in == os.getpid()  # in the launch, not in a process of the worker's
        assert results == list(range(50)) and list(range(50)) == _SEEN
        assert error == "WriteFailed('refused by the store')"  # as from a writer process
        assert worker_in_outage
        assert service.served[worker] == 52
        idle = Client(service.address.path, "AF_UNIX", authkey=service.address.authkey)
        idle.send(os.getpid())  # a worker still connected when the launch closes
        wait_for(lambda: _writer_threads() == ["sweeps-writer-accept", "sweeps-writer"],
                 timeout=30, interval=0.05)
    finally:
        service.close()
    assert not os.path.exists(os.path.dirname(service.address.path))
    assert _writer_threads() == []  # none left waiting: the report's pools may fork
    idle.close()


def _writer_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("sweeps-writer")]


def _serve_once(conn: Any) -> None:
    """A launch that serves one worker and is then killed by the test."""
    import multiprocessing as mp
    import time

    service = writer_service.WriterService(mp.get_context("spawn"))
    conn.send((service.address.path, service.address.authkey))
    time.sleep(600)


def test_a_worker_that_loses_its_launch_writes_from_a_thread(fresh_background: None) -> None:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    here, there = ctx.Pipe()
    launch = ctx.Process(target=_serve_once, args=(there,), daemon=True)
    launch.start()
    try:
        path, key = here.recv()
        flag = ctx.Value("b", 0, lock=False)
        assert not writer.Background.use_launch_writer(
            writer_service.WriterAddress(path, b"not the launch's key", flag))  # refused
        assert writer.Background.use_launch_writer(writer_service.WriterAddress(path, key, flag))
        assert _writer_pid() == launch.pid
    finally:
        os.kill(launch.pid, signal.SIGKILL)  # our own child
        launch.join(30)
    executor: Any = writer.Background._executor
    wait_for(lambda: executor._broken, timeout=30, interval=0.1)
    assert _writer_pid() == os.getpid()  # a thread of this process took over

"""The report's forked pools: every wait bounded, nothing left behind, no noise.

A pool process that dies or stalls costs time, not the report; pool processes die with the
report whatever ends it (SIGKILL included); a stopped pool prints no child traceback (the
children do not inherit the command's SIGTERM handler, which raises to unwind a command).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from sweeps.report.forking import can_fork, parallel_map

from .helpers import process_gone


@pytest.fixture
def alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's threads as `sweeps report` has them (a pytest-xdist worker has its own
    IO thread beside the test's)."""
    monkeypatch.setattr(threading, "active_count", lambda: 1 + len(
        [t for t in threading.enumerate() if t.name.startswith("sweeps") or t.name == "other"]))


def _pid_or_die(x: int) -> tuple[int, int]:
    if x == 2 and os.environ.get("SWEEPS_TEST_PARENT") != str(os.getpid()):
        os.kill(os.getpid(), signal.SIGKILL)  # killed mid-task (the OOM killer, say)
    return x * x, os.getpid()


def _stall(x: int) -> int:
    if x == 1 and os.environ.get("SWEEPS_TEST_PARENT") != str(os.getpid()):
        time.sleep(60)  # a child that never answers
    return -x


def test_jobs_run_in_forked_processes_only_where_the_process_has_one_thread(alone: None) -> None:
    assert can_fork(2) and not can_fork(1)
    assert [r for r, _ in parallel_map(_pid_or_die, [0, 1, 3, 4], 2)] == [0, 1, 9, 16]
    assert {pid for _, pid in parallel_map(_pid_or_die, [0, 1, 3, 4], 2)} - {os.getpid()}
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, name="other")
    other.start()
    try:  # a thread that may hold a lock: a forked child could wait on it forever
        assert not can_fork(2)
        assert {pid for _, pid in parallel_map(_pid_or_die, [0, 1], 2)} == {os.getpid()}
    finally:
        stop.set()
        other.join()


def test_a_dead_or_stalled_pool_process_costs_time_not_the_result(
        alone: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("SWEEPS_TEST_PARENT", str(os.getpid()))
    assert [r for r, _ in parallel_map(_pid_or_die, [0, 1, 2, 3], 2)] == [0, 1, 4, 9]
    assert "a drawing process died" in caplog.text
    started = time.monotonic()
    assert parallel_map(_stall, [0, 1, 2], 2, timeout_s=3) == [0, -1, -2]
    assert time.monotonic() - started < 30  # the stalled child was not waited for
    assert "still busy after 3 s" in caplog.text


SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    from pathlib import Path
    from sweeps.report.forking import parallel_map

    class Stopped(Exception):
        pass

    def stop(signum, frame):
        raise Stopped("SIGTERM")

    def busy(x):
        Path(sys.argv[1], str(os.getpid())).touch()
        time.sleep(float(sys.argv[2]))
        return x

    signal.signal(signal.SIGTERM, stop)  # as sweeps.run.stopping installs it in a command
    print(parallel_map(busy, [1, 2], 2, timeout_s=float(sys.argv[3])), flush=True)
""")


def test_pool_processes_die_with_the_report_even_by_sigkill(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path), "120", "300"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        children = [int(p.name) for p in tmp_path.iterdir()]
        assert len(children) == 2
        os.kill(proc.pid, signal.SIGKILL)  # the report killed (a test's timeout, the OOM killer)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while not all(process_gone(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(process_gone(pid) for pid in children)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_stopped_pool_prints_no_child_traceback(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), "3", "1"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[1, 2]", out.stderr
    assert "Traceback" not in out.stderr and "Stopped" not in out.stderr, out.stderr

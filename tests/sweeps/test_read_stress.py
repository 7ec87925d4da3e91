"""`sweeps report`, `best` and `status` on a PostgreSQL + `mlflow server` sweep, again and
again under CPU load: each ends, and leaves no process behind (its forked plot processes
and upload helper included). A read that does hang (here: a table lock held by the test's
own connection) is stopped by the command's watchdog with one line saying where it waited."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from ..servers import require_postgres, sweeps_database
from .conftest import SMALL, run_sweeps

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _session_members(sid: int) -> list[int]:
    """Live processes of session `sid` (every process a command started stays in it)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            found.append(int(stat.parent.name))
    return found


def _command(verb: str, name: str, storage: str, cwd: Path, bound_s: int) -> subprocess.Popen[str]:
    env = {**os.environ, "SWEEPS_WATCHDOG_S": str(bound_s)}
    env.pop("SWEEPS_STORAGE", None)
    return subprocess.Popen([sys.executable, "-m", "sweeps", verb, name, "--storage", storage],
                            cwd=cwd, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)


def test_reads_under_load_end_leave_nothing_and_a_hang_is_stopped(tmp_path: Path,
                                                                  mlflow_server: str) -> None:
    import psycopg2

    name = f"stress{uuid.uuid4().hex[:6]}"
    with sweeps_database(require_postgres()) as storage:
        made = run_sweeps("launch", *SMALL, f"sweep.name={name}", "storage=postgres",
                          f"storage.url={storage}", "tracking=server", f"tracking.uri={mlflow_server}",
                          "sweep.workers=2", "sweep.threads_per_worker=1", cwd=tmp_path)
        assert made.returncode == 0, made.stdout + made.stderr
        burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
        try:
            for _ in range(2):
                for verb in ("report", "best", "status"):
                    proc = _command(verb, name, storage, tmp_path, 240)
                    try:
                        out, err = proc.communicate(timeout=300)
                    finally:
                        if proc.poll() is None:
                            os.killpg(proc.pid, 9)
                    assert proc.returncode == 0, (verb, out[-2000:], err[-2000:])
                    deadline = time.monotonic() + 10
                    while _session_members(proc.pid) and time.monotonic() < deadline:
                        time.sleep(0.1)
                    assert _session_members(proc.pid) == [], verb  # nothing left behind
        finally:
            for b in burners:
                b.kill()
                b.wait()

        lock = psycopg2.connect(storage)  # the test's own connection, by its own PID
        try:
            with lock.cursor() as cur:
                cur.execute("LOCK TABLE trials IN ACCESS EXCLUSIVE MODE")  # held: no commit
            started = time.monotonic()
            proc = _command("status", name, storage, tmp_path, 5)
            try:
                out, err = proc.communicate(timeout=120)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, 9)
            assert proc.returncode == 124, out + err
            assert time.monotonic() - started < 60
            lines = [ln for ln in err.splitlines() if ln.strip()]
            assert len(lines) == 1, err
            assert lines[0].startswith("error: sweeps status made no progress for 5 s and was "
                                       "stopped; it was waiting in "), lines[0]
            assert Path(re.search(r"stack is in (\S+?) \(", lines[0]).group(1)).is_file()
            assert _session_members(proc.pid) == []
        finally:
            lock.rollback()
            lock.close()

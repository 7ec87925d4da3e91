"""The commands' safety net: past its bound with no progress, a command says in one line
where it waited, keeps every thread's stack in a file, stops its children and exits 124."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import subprocess, sys, threading, time
    from trainer import watchdog

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    print(child.pid, flush=True)
    watchdog.arm("sweeps status", float(sys.argv[1]))
    for _ in range(int(sys.argv[2])):  # progress, then none
        time.sleep(0.5)
        watchdog.pet()
    threading.Event().wait()  # a wait with no end
""")


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_a_command_that_waits_forever_is_stopped_with_one_line_and_its_stacks(tmp_path: Path) -> None:
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", SCRIPT, "2", "6"], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "TMPDIR": str(tmp_path)})
    took = time.monotonic() - started
    assert out.returncode == 124, out.stderr
    assert took >= 4  # petted for 3 s: the bound ran again from each pet
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: sweeps status made no progress for 2 s and was stopped")
    assert "waiting in" in lines[0] and "threading.py" in lines[0], lines[0]
    stacks = Path(re.search(r"stack is in (\S+?) \(", lines[0]).group(1))
    text = stacks.read_text()
    assert "Thread" in text and "wait" in text  # faulthandler's dump of every thread
    child = int(out.stdout.split()[0])
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)  # its children were stopped with it


def test_a_disarmed_or_unset_watchdog_lets_the_command_run(tmp_path: Path) -> None:
    from trainer import watchdog

    watchdog.arm("sweeps best", 0.5)
    assert watchdog.running() == 1
    watchdog.disarm()
    time.sleep(1.0)  # past the bound: nothing happens
    assert watchdog.running() == 0
    os.environ["SWEEPS_WATCHDOG_S"] = "0"
    try:
        watchdog.arm("sweeps best")
        assert watchdog.running() == 0 and watchdog.bound_s() == 0
    finally:
        del os.environ["SWEEPS_WATCHDOG_S"]
    assert watchdog.bound_s() == watchdog.DEFAULT_S

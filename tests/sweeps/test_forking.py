"""The report's forked pools close without a word: their children do not inherit the
command's SIGTERM handler (which raises to unwind the command, and printed a traceback from
each child the pool terminated)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import signal, time
    from sweeps.report.forking import fork_pool

    class Stopped(Exception):
        pass

    def stop(signum, frame):
        raise Stopped("SIGTERM")

    signal.signal(signal.SIGTERM, stop)  # as sweeps.run.stopping installs it in a command
    for _ in range(3):
        pool = fork_pool(2)
        assert pool is not None
        assert pool.map(abs, [-1, -2, -3, -4]) == [1, 2, 3, 4]
        pool.apply_async(time.sleep, (5,))  # a child still busy when the pool is closed
        time.sleep(0.2)
        pool.terminate()  # SIGTERM to every child, as the pool's context manager does
        pool.join()
    print("done")
""")


def test_a_terminated_pool_prints_no_child_traceback() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "done", out.stderr
    assert "Traceback" not in out.stderr and "Stopped" not in out.stderr, out.stderr

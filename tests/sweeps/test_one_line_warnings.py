"""One line per warning, the same in every process, and no library chatter unless asked."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import logging
    from sweeps.store import logs

    logs.setup()
    logs.setup()  # twice: still one handler
    log = logging.getLogger("sweeps")
    for _ in range(3):
        log.warning("MLflow unreachable (refused); retrying in 2 s")
    try:
        raise OSError("deep down")
    except OSError:
        log.warning("could not close the run: first line\\nsecond line", exc_info=True)
    logging.getLogger("urllib3.connectionpool").warning(
        "Retrying (Retry(total=4, connect=None)) after connection broken")
    logging.getLogger("mlflow.store").warning("an MLflow warning")
""")


def _run(debug: bool) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "SWEEPS_DEBUG"}
    if debug:
        env["SWEEPS_DEBUG"] = "1"
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    return out.stderr.splitlines()


def test_each_warning_is_one_line_once_and_library_retries_stay_quiet() -> None:
    assert _run(debug=False) == [
        "warning: MLflow unreachable (refused); retrying in 2 s",
        "warning: could not close the run: first line",
    ]


def test_sweeps_debug_shows_everything_with_tracebacks() -> None:
    lines = _run(debug=True)
    assert lines.count("WARNING:sweeps: MLflow unreachable (refused); retrying in 2 s") == 3
    assert any(ln.startswith("Traceback") for ln in lines) and "OSError: deep down" in lines
    assert any("Retrying (Retry(total=4" in ln for ln in lines)
    assert "WARNING:mlflow.store: an MLflow warning" in lines

"""`sweeps ui`: the MLflow UI on a sweep's tracking store, started lean."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from typing import Any

from trainer.api import UserError

UI_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # a variable the user set wins


def check_address(host: str, port: int) -> None:
    """One line (exit 2) unless the UI can listen on `host:port`: tried with a socket of our
    own, closed at once, so that a busy port is not a traceback of the web server's."""
    import socket

    if not 1 <= port <= 65535:
        raise UserError(f"--port {port}: must be a TCP port in [1, 65535]")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as err:
        raise UserError(f"--host {host}: not an address of this machine ({err.strerror or err})") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as err:
            why = "in use (another server listens there)" if err.errno == 98 else (err.strerror or str(err))
            raise UserError(f"--port {port}: cannot listen on {host}:{port}: {why}; pick another "
                            "with --port") from None


def ui_command(uri: str, host: str, port: int) -> tuple[list[str], dict[str, str]]:
    """The `mlflow ui` command line and environment for a local tracking store.

    One user's UI: one server process (MLflow's default is 4) and none of the background job
    processes MLflow starts for its GenAI features (7 more, ~1 GB): it starts in about half
    the time.
    """
    exe = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or shutil.which("mlflow")
    if exe is None:
        raise UserError("the mlflow command is not installed in this environment")
    # the store's URI (with any password) goes in the environment, which only this user can
    # read, not on the command line, which every user of the machine sees in `ps`
    cmd = [exe, "ui", "--host", host, "--port", str(port), "--workers", "1"]
    return cmd, {**UI_ENV, **os.environ, "MLFLOW_BACKEND_STORE_URI": uri}


def serve(cmd: list[str], env: dict[str, str], grace_s: float = 10.0) -> int:
    """Run the UI until it exits or this process is stopped (Ctrl-C, SIGTERM).

    `mlflow ui` starts its web server as a child process of its own, so the UI runs in a
    process group of its own and is stopped as a group: SIGTERM, then SIGKILL past
    `grace_s`. Otherwise a SIGTERM to `sweeps ui` would leave the server running, and
    serving, under PID 1.
    """
    import signal
    import subprocess

    from trainer.api import die_with_parent, watchdog

    watchdog.disarm()  # serving until stopped is what was asked (and no thread at the fork)
    ui_pid = os.getpid()
    proc = subprocess.Popen(cmd, env=env, start_new_session=True,  # and it dies with this one
                            preexec_fn=lambda: die_with_parent(signal.SIGTERM, ui_pid))
    try:
        return proc.wait()
    finally:
        if proc.poll() is None:
            _stop_group(proc, grace_s)
        else:  # the CLI exited by itself; its server children must not outlive it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)


def _stop_group(proc: Any, grace_s: float) -> None:
    import signal
    import subprocess

    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # whatever of the group is left
    proc.wait()

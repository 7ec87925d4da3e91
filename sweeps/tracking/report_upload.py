"""The report's files logged to the sweep's parent run, from a helper opened in advance."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from sweeps.tracking import clients
from trainer.api import die_with_parent, main_not_rerun

UPLOAD_TIMEOUT_S = 120.0  # a few small files; past this the report says so and goes on


def log_report(uri: str, run_id: str, files: list[Path]) -> None:
    """Attach the report files to the sweep's parent run (artifact folder ``report/``)."""
    c = clients.client(uri)
    for f in files:
        c.log_artifact(run_id, str(f), "report")


def _upload(uri: str, run_id: str, files: list[Path]) -> str | None:
    try:
        log_report(uri, run_id, files)
        return None
    except Exception as err:  # reported by the caller as one line
        return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _serve(conn: Any, uri: str, report_pid: int) -> None:
    """The helper: open the client (import MLflow: ~2-4 s), then upload what it is sent. It
    dies with the report: a report killed while its forked plot processes held the pipe's
    other end would never send it EOF."""
    import signal

    die_with_parent(signal.SIGKILL, report_pid)
    with contextlib.suppress(Exception):
        clients.client(uri)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the report is gone
            return
        if job is None:
            return
        run_id, names = job
        conn.send(_upload(uri, run_id, [Path(n) for n in names]))


class ReportUploader:
    """Logs report files to MLflow from a helper process that opened the client in advance.

    Importing MLflow and opening its store takes seconds; `sweeps report` starts this helper
    first and builds the report meanwhile. The helper is *spawned*, and the report keeps no
    thread for it (a pipe, no executor): the report forks its plot workers while it holds a
    database connection, and a fork must find neither a thread that may hold a lock nor a
    child that shares that connection's socket.
    """

    def __init__(self, uri: str) -> None:
        import multiprocessing as mp

        self.uri = uri
        self._proc: Any = None
        try:
            ctx = mp.get_context("spawn")
            self._conn, theirs = ctx.Pipe()
            self._proc = ctx.Process(target=_serve, args=(theirs, uri, os.getpid()), daemon=True,
                                     name="sweeps-report-upload")
            with main_not_rerun():  # the helper needs nothing of the parent's main script
                self._proc.start()
            theirs.close()
        except OSError:  # no helper: log in-process
            self._proc = None

    def upload(self, run_id: str, files: list[Path]) -> str | None:
        """Log the files; returns None, or why it failed (one line)."""
        if self._proc is None:
            return _upload(self.uri, run_id, files)
        try:
            self._conn.send((run_id, [str(f) for f in files]))
            if not self._conn.poll(UPLOAD_TIMEOUT_S):
                return f"no answer from the tracking store in {UPLOAD_TIMEOUT_S:.0f} s"
            answer: str | None = self._conn.recv()
            return answer
        except (EOFError, OSError):
            code = self._proc.exitcode
            return f"the upload helper exited (code {code})"

    def close(self) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(OSError):
            self._conn.send(None)
            self._conn.close()
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)

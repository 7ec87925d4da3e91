"""Which process runs a trial: the ``host:pid`` a worker records, and whether it still lives."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def scheduler_task() -> str | None:
    """The Slurm array task this process runs in (``JOB_TASK``), if any."""
    job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if job and task:
        return f"{job}_{task}"
    return os.environ.get("SLURM_JOB_ID")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _start_time(pid: int) -> str:
    """When process `pid` started (clock ticks since boot, Linux), "" where unknown: a PID
    alone may be reused by a new process after the first one died."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def process_id(pid: int | None = None) -> str:
    """``host:pid:start`` of this process (or `pid`): names it for as long as it lives."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def process_gone(ident: str) -> bool | None:
    """Whether the process `process_id` named has ended: None where that cannot be told
    from here (another host, or not a process id)."""
    host, _, rest = ident.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if not pid_alive(pid):
        return True
    return bool(start) and _start_time(pid) not in ("", start)

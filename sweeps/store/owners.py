"""Which process runs a trial: the ``host:pid`` a worker records, and whether it still lives."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the read-only commands import this module: keep torch out of it
    pass


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

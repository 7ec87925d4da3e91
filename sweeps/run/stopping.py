"""SIGTERM as the schedulers send it, handled like Ctrl-C.

Slurm, Kubernetes and systemd stop a job with SIGTERM to its process (then SIGKILL after a
grace period), not with Ctrl-C to a terminal's process group. `install` makes SIGTERM raise
`Stopped` (a KeyboardInterrupt), so every long-running command takes the one path Ctrl-C
already takes: stop its children, mark its running trial interrupted (a retry resumes it
from its checkpoint), close its MLflow runs, exit. Signals that arrive while that cleanup
runs are ignored: the cleanup is what the grace period is for.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

# the most any command takes from SIGTERM to its exit: Slurm's KillWait and Kubernetes' default
GRACE_S = 30


class Stopped(KeyboardInterrupt):
    """A stop request by signal; `signum` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop(signum: int, frame: FrameType | None) -> None:
    # once: a second SIGTERM (Slurm sends one per step) must not abort the cleanup of the first
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Stopped(signum)


def install(*signums: int) -> None:
    """SIGTERM (and any of `signums`) raise `Stopped` in the main thread from now on."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, *signums):
        signal.signal(signum, _stop)


def reason(err: BaseException | None) -> str:
    """What an interrupted trial's failure reason says: which signal stopped it."""
    if isinstance(err, Stopped):
        return f"interrupted ({signal.Signals(err.signum).name})"
    if isinstance(err, SystemExit):
        return "interrupted (exit requested: preempted or timed out, requeued)"
    return "interrupted (Ctrl-C)"


def exit_code(err: BaseException) -> int:
    """The shell's convention: 128 + the signal number (SIGTERM 143, Ctrl-C 130)."""
    return 128 + (err.signum if isinstance(err, Stopped) else signal.SIGINT)


def signum_of(err: BaseException) -> int:
    """The signal to pass on to children: the one that stopped us."""
    return err.signum if isinstance(err, Stopped) else signal.SIGINT

"""A safety net for commands: past a generous bound with no progress, say where the command
waited, leave every thread's stack in a file, stop its child processes and exit 124.

Commands should never hang: their waits on servers, locks and processes are bounded where
they are made. This catches the one nobody foresaw, instead of a silent process that a
person (or a CI job) kills after minutes, leaving its children behind. It is a thread, not
SIGALRM: a main thread blocked inside a C library (a database driver's read) never returns
to the interpreter to run a signal handler. It waits on an event and holds no lock that a
forked child could inherit held (`sweeps.report.forking` forks beside it).

`SWEEPS_WATCHDOG_S` sets the bound (seconds, default 900; 0 turns it off). Long commands
arm it for their set-up and `pet` it as they progress (a sweep's training is watched by its
own heartbeats and patience, not by this).
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

THREAD_NAME = "sweeps-watchdog"
DEFAULT_S = 900.0
EXIT_CODE = 124  # as timeout(1): stopped for waiting too long

_lock = threading.Lock()
_state: dict[str, object] = {}  # what, bound, deadline, thread, stop (one watchdog per process)


def bound_s() -> float:
    """The bound from `SWEEPS_WATCHDOG_S`: a number of seconds; 0 (or a bad value) is off."""
    try:
        return max(0.0, float(os.environ.get("SWEEPS_WATCHDOG_S", DEFAULT_S)))
    except ValueError:
        return 0.0


def arm(what: str, seconds: float | None = None) -> None:
    """Watch this process from now: `what` names it in the line (e.g. ``sweeps report``)."""
    seconds = bound_s() if seconds is None else seconds
    disarm()
    if seconds <= 0:
        return
    stop = threading.Event()
    with _lock:
        _state.update(what=what, bound=seconds, deadline=time.monotonic() + seconds, stop=stop)
    thread = threading.Thread(target=_watch, args=(stop,), name=THREAD_NAME, daemon=True)
    thread.start()
    _state["thread"] = thread


def pet() -> None:
    """Progress was made: the bound runs again from now."""
    with _lock:
        if "deadline" in _state:
            _state["deadline"] = time.monotonic() + float(_state["bound"])  # type: ignore[arg-type]


def disarm() -> None:
    """Stop watching (the command's bounded part is over, or it ends)."""
    with _lock:
        stop = _state.pop("stop", None)
        thread = _state.pop("thread", None)
        _state.clear()
    if isinstance(stop, threading.Event):
        stop.set()
    if isinstance(thread, threading.Thread) and thread is not threading.current_thread():
        thread.join(1.0)  # gone when this returns: a report's pools count the threads to fork


def running() -> int:
    """1 while this process is watched (its thread is alive), else 0."""
    thread = _state.get("thread")
    return int(isinstance(thread, threading.Thread) and thread.is_alive())


def _watch(stop: threading.Event) -> None:
    while True:
        with _lock:
            if stop.is_set():
                return
            left = float(_state["deadline"]) - time.monotonic()  # type: ignore[arg-type]
        if left <= 0:
            break
        if stop.wait(min(left, 5.0)):
            return
    _fire(str(_state.get("what", "the command")), float(_state.get("bound", 0.0)))  # type: ignore[arg-type]


def where_main_waits() -> str:
    """The main thread's innermost frame, and the innermost of this project's frames below
    it: ``multiprocessing/pool.py:675 (_help_stuff_finish), from sweeps/report/plots.py:291
    (optuna_sections)``."""
    frame = sys._current_frames().get(threading.main_thread().ident or -1)
    if frame is None:
        return "an unknown place"
    inner = frame
    ours = None
    while frame is not None:
        name = frame.f_code.co_filename
        if ours is None and any(f"{os.sep}{pkg}{os.sep}" in name for pkg in ("sweeps", "trainer")) \
                and not name.endswith("watchdog.py"):
            ours = frame
        frame = frame.f_back

    def show(f: object) -> str:
        code = f.f_code  # type: ignore[attr-defined]
        parts = Path(code.co_filename).parts[-2:]
        return f"{'/'.join(parts)}:{f.f_lineno} ({code.co_name})"  # type: ignore[attr-defined]

    text = show(inner)
    if ours is not None and ours is not inner:
        text += f", from {show(ours)}"
    return text


def _fire(what: str, bound: float) -> None:
    """Say it in one line, keep the stacks, stop the children, exit."""
    where = where_main_waits()
    stacks = Path(tempfile.gettempdir()) / f"sweeps-watchdog-{os.getpid()}.txt"
    try:
        with open(stacks, "w") as f:
            f.write(f"{what}: no progress for {bound:.0f} s; every thread's stack:\n")
            faulthandler.dump_traceback(file=f, all_threads=True)
        kept = f"; every thread's stack is in {stacks}"
    except OSError:
        kept = ""
    line = (f"error: {what} made no progress for {bound:.0f} s and was stopped; it was "
            f"waiting in {where}{kept} (SWEEPS_WATCHDOG_S sets the bound; 0 turns it off)\n")
    with contextlib.suppress(OSError):  # not through a console another thread may hold
        os.write(2, line.encode(errors="replace"))
    _stop_children()
    os._exit(EXIT_CODE)  # the process's last line: the main thread cannot be unwound from here


def _stop_children() -> None:
    """SIGKILL this process's children (pool processes, helpers, workers), so none outlives
    it; read from /proc where there is one, else from multiprocessing's list."""
    import signal

    pids: set[int] = set()
    task_dir = Path(f"/proc/{os.getpid()}/task")
    try:
        for task in task_dir.iterdir():
            text = (task / "children").read_text()
            pids.update(int(p) for p in text.split())
    except OSError:
        import multiprocessing

        pids.update(p.pid for p in multiprocessing.active_children() if p.pid)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)

"""What a process pays to start and to exit: modules imported on first use, and no
collection of the whole heap at exit.

Validating a config needs the registries (optimizer, schedule, model and dataset names and
their keys) but not torch, whose import is ~2.5 s: `sweeps launch` validates a sweep in a
process that never trains, and its workers start while it does (`lazy_module`). At exit
CPython collects every object of the heap, which with torch, MLflow and SQLAlchemy loaded
is ~2 s of nothing (`skip_exit_gc`; docs/explanation/performance.md, "Start-up and exit").
A child started with `spawn` runs the parent's main script again unless it is hidden while
the child starts (`main_not_rerun`). OpenMP threads that spin while they wait burn the CPU
that other processes on the same cores need (`passive_openmp_waits`). A process started
with `spawn` starts its own children with `spawn` too, unless told otherwise
(`platform_start_method`).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any


class _Lazy(ModuleType):
    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self.__name__)
        return getattr(module, attr)


def lazy_module(name: str) -> Any:
    """A stand-in for `import name` that imports it when an attribute is first read."""
    return _Lazy(name)


_registered = False


def skip_exit_gc() -> None:
    """Freeze the heap when the interpreter exits, so that its final collection has nothing
    to walk: the process ends in ~0.3 s instead of ~2.5 s. Objects still get their
    finalizers where they matter (files are closed, buffers flushed by the atexit handlers
    and module teardown); only the cycle collector's last pass is skipped."""
    global _registered
    if not _registered:
        atexit.register(gc.freeze)
        _registered = True


def passive_openmp_waits() -> None:
    """Torch's OpenMP threads sleep between parallel regions instead of spinning, unless the
    user set ``OMP_WAIT_POLICY``. Read once, when torch loads OpenMP: call it before torch is
    imported (children inherit it).

    A spinning thread holds a core while the thread it waits for may not have one: where a
    training process shares its cores (a launch with its workers and writer, two sweeps, a
    shared node), two concurrent 4-trial launches on 2 cores took twice the CPU and 25-40 %
    longer than with sleeping waits. On idle cores the two policies trained equally fast
    (docs/explanation/performance.md, "Start-up and exit")."""
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@contextlib.contextmanager
def main_not_rerun() -> Iterator[None]:
    """Start `spawn` children inside this block: they do not import the parent's main script.

    multiprocessing's `spawn` runs the parent's `__main__` file again in each child (as
    `__mp_main__`) unless the script guards itself with `if __name__ == "__main__":`. The
    children started here run functions of installed modules and are given plain values, so
    they need nothing of the main script; a notebook's cells or a script calling
    `sweeps.launch(...)` then work without the guard. The main module is left as it was."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved: dict[str, Any] = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


def die_with_parent(sig: int, parent: int) -> None:
    """Have this process sent `sig` when `parent` (the process that started it) dies.

    A launch killed with SIGKILL (the OOM killer, a lost SSH session) cannot stop its
    children; without this its workers would go on training, re-parented to PID 1, beside the
    next launch. Linux's ``PR_SET_PDEATHSIG`` does it in the kernel; elsewhere a thread
    watches the parent's PID. A parent already gone when this is called counts as dead."""
    import os
    import threading
    import time

    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(sig), 0, 0, 0)  # PR_SET_PDEATHSIG
            if os.getppid() != parent:
                os.kill(os.getpid(), sig)
            return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), sig)

    threading.Thread(target=watch, name="sweeps-parent-watch", daemon=True).start()


def platform_start_method() -> None:
    """Start this process's own children (DataLoader workers) as `python -m trainer` does:
    with the platform's default method (`fork` on Linux).

    A process started with multiprocessing's `spawn` takes `spawn` as its default too, so a
    sweep's worker process would start every DataLoader worker by `spawn`: each one imports
    torch and the user's dataset module again (1 to 4 s per loader and trial, where the
    training of a small model takes less) instead of being forked from a process that has
    them already."""
    import multiprocessing as mp

    mp.set_start_method(mp.get_all_start_methods()[0], force=True)

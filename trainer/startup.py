"""What a process pays to start and to exit: modules imported on first use, and no
collection of the whole heap at exit.

Validating a config needs the registries (optimizer, schedule, model and dataset names and
their keys) but not torch, whose import is ~2.5 s: `sweeps launch` validates a sweep in a
process that never trains, and its workers start while it does (`lazy_module`). At exit
CPython collects every object of the heap, which with torch, MLflow and SQLAlchemy loaded
is ~2 s of nothing (`skip_exit_gc`; docs/explanation/performance.md, "Start-up and exit").
"""

from __future__ import annotations

import atexit
import gc
import importlib
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

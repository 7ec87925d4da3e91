"""Python's cyclic garbage collector paused while a storage's trials are built.

Reading 10,000 trials (rows of a database, or the replay of a journal file) makes hundreds of
thousands of small objects, none in a reference cycle. Each 700 new objects start the
collector, which every so often walks every object alive: about half the time of such a
read. Paused for the read, the objects are freed as usual (by reference counts) and the
collector runs again afterwards.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """A `with` block, or a decorator (`@paused()`), with the collector off; back on after it
    where it was on before."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()

"""Patience with an MLflow server that stopped answering: retry, and say whether it is away.

The outage state lives here alone: the writer process shares its flag with the worker
(`share`), so both see the same outage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("sweeps")



PATIENCE_S = 600.0  # how long writes wait for an unreachable tracking server (tracking.patience_s)


def unreachable(err: BaseException) -> bool:
    """The server is down or restarting (refused, reset, 502-504), not a bad request."""
    text = str(err)
    markers = ("Connection refused", "Max retries exceeded", "Connection aborted", "RemoteDisconnected",
               "Connection reset", "error code 502", "error code 503", "error code 504",
               "Failed to establish a new connection", "timed out")
    seen: BaseException | None = err
    while seen is not None:
        if type(seen).__name__ in ("ConnectionError", "ConnectTimeout", "ReadTimeout",
                                   "MaxRetryError", "NewConnectionError", "ProtocolError"):
            return True
        seen = seen.__cause__ or seen.__context__
    return any(m in text for m in markers)


_down_since: float | None = None  # when the server stopped answering (None: it answers)


_shared_outage: Any = None  # set by the writer process: a shared flag its parent reads


def share(flag: Any) -> None:
    """In the writer process: report outages through `flag`, which the worker reads."""
    global _shared_outage
    _shared_outage = flag


def set_patience(seconds: float) -> None:
    """How long writes wait for an unreachable server from now on (`tracking.patience_s`)."""
    global PATIENCE_S
    PATIENCE_S = seconds


def in_outage() -> bool:
    """Whether this process's tracking writes (or its writer process's) are waiting for a
    server that stopped answering."""
    return _down_since is not None or bool(_shared_outage is not None and _shared_outage.value)


def _set_down_since(value: float | None) -> None:
    global _down_since
    _down_since = value
    if _shared_outage is not None:
        _shared_outage.value = 1 if value is not None else 0


def patiently(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call `fn`; while the tracking server is unreachable, retry with backoff (2 s doubling
    to 10 s), so an outage delays the writes and loses none. The patience (PATIENCE_S) runs
    from the start of the outage, not per call: past it, queued writes fail at once (the
    Optuna record keeps everything; `sweeps sync` writes it later)."""
    delay = 2.0
    while True:
        try:
            result = fn(*args, **kwargs)
            if _down_since is not None:
                _set_down_since(None)
            return result
        except Exception as err:
            if not unreachable(err):
                raise
            now = time.monotonic()
            if _down_since is None:
                _set_down_since(now)
            assert _down_since is not None
            if now + delay > _down_since + PATIENCE_S:
                raise
            left = _down_since + PATIENCE_S - now
            log.warning("MLflow unreachable (%s); retrying in %.0f s, for %.0f s more at most "
                        "(tracking.patience_s; Ctrl-C stops)", str(err).splitlines()[0][:160],
                        delay, left)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def patiently_with(patience_s: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`patiently` under the submitting process's patience (the writer process has its own copy
    of PATIENCE_S)."""
    global PATIENCE_S
    PATIENCE_S = patience_s
    try:
        return patiently(fn, *args, **kwargs)
    except Exception as err:  # as plain text: not every library's error survives pickling
        raise WriteFailed(str(err) or type(err).__name__) from None


class WriteFailed(Exception):
    """A background MLflow write that failed (after `patiently`'s retries)."""

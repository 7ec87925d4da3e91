"""One line per warning, the same in every process of a command (the CLI, its workers,
their writer processes, Slurm tasks).

Python's defaults print a `sweeps` warning as ``WARNING:sweeps:...`` where `basicConfig`
ran and bare elsewhere, with a traceback when one is attached, and let urllib3 print its
own ``Retrying (Retry(total=4...`` lines beside ours when a server is away. Here each
record is ``warning: <its first line>``, a repeat of the same line within `REPEAT_S` is
dropped, and the libraries' connection chatter is kept for `SWEEPS_DEBUG=1`, which shows
everything as it comes, tracebacks included.
"""

from __future__ import annotations

import logging
import os
import sys
import time

REPEAT_S = 30.0
CHATTY = ("urllib3", "requests", "mlflow", "alembic", "sqlalchemy", "git")  # quiet unless debugging


def debugging() -> bool:
    return os.environ.get("SWEEPS_DEBUG") == "1"


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = (record.getMessage().strip().splitlines() or [""])[0]
        return f"{record.levelname.lower()}: {text}"


class _NoRepeat(logging.Filter):
    """Drop a line said by this process in the last `REPEAT_S` seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key, now = f"{record.name}:{record.getMessage()}", time.monotonic()
        last = self.seen.get(key)
        self.seen[key] = now
        if len(self.seen) > 1000:
            self.seen = {k: t for k, t in self.seen.items() if now - t < REPEAT_S}
        return last is None or now - last >= REPEAT_S


_HANDLER_NAME = "sweeps-one-line"


def setup() -> None:
    """Configure this process's logging (idempotent): warnings and errors on stderr, one
    line each; the libraries' own below ERROR only with `SWEEPS_DEBUG=1`."""
    # MLflow gives its logger a handler of its own when imported (later, in most commands):
    # told not to, here and in every process this one starts, its records come through ours
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    root = logging.getLogger()
    if any(h.get_name() == _HANDLER_NAME for h in root.handlers):
        return
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    if debugging():
        handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s: %(message)s"))
    else:
        handler.setFormatter(_OneLine())
        handler.addFilter(_NoRepeat())
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for name in CHATTY:
        lib = logging.getLogger(name)
        # MLflow logs an error, traceback and all, before raising it: the exception is what
        # the command words (`os_errors`, the CLI's one line)
        quiet = logging.CRITICAL if name == "mlflow" else logging.ERROR
        lib.setLevel(logging.WARNING if debugging() else quiet)
        if name == "mlflow":  # MLflow prints through handlers of its own: through ours instead
            for h in list(lib.handlers):
                lib.removeHandler(h)
            lib.propagate = True

"""`sweeps.start(...)`: a launch that runs beside the caller, for a notebook that watches it.

The launch is the `sweeps launch` command in a child process (it owns its signal handling
and its worker processes, which a thread of the caller could not); the caller reads the
sweep from the storage while it runs, and `wait()` turns its exit status into the API's
result or exceptions.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sweeps.api.errors import SweepFailed, UserError
from sweeps.api.handle import Sweep, open_sweep
from sweeps.api.launching import as_overrides


class Launch:
    """A launch running in a child process: `running`, `output`, `sweep()`, `wait()`, `stop()`."""

    def __init__(self, args: Sequence[str], storage: str, tracking_uri: str | None, name: str,
                 cwd: str | None = None, config_dir: str | None = None) -> None:
        self.args, self.storage, self.tracking_uri, self.name = list(args), storage, tracking_uri, name
        self.config_dir = config_dir
        self._log = tempfile.NamedTemporaryFile("w+", prefix="sweeps-launch-", suffix=".log")  # noqa: SIM115
        self._proc = subprocess.Popen([sys.executable, "-m", "sweeps", "launch", *self.args],
                                      stdout=self._log, stderr=subprocess.STDOUT, cwd=cwd,
                                      env={**os.environ, "COLUMNS": "120"})

    @property
    def running(self) -> bool:
        return self._proc.poll() is None

    @property
    def output(self) -> str:
        """What the launch has printed so far (its live table is printed once, at the end)."""
        return Path(self._log.name).read_text()

    def sweep(self) -> Sweep:
        """The sweep as it stands now; `UserError` until the launch has created its studies."""
        return open_sweep(self.name, self.storage, self.tracking_uri, self.config_dir)

    def wait(self, timeout: float | None = None) -> Sweep:
        """Block until the launch ends (`TimeoutError` past `timeout` seconds; it goes on),
        then return the sweep, or raise what the command reported: `UserError` for bad input
        (exit 2), `SweepFailed` otherwise."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._proc.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"the launch of {self.name!r} is still running after {timeout} s")
            time.sleep(0.2)
        code = self._proc.returncode
        if code == 0:
            return self.sweep()
        lines = [ln for ln in self.output.splitlines() if ln.strip()]
        errors = [ln[len("error: "):] for ln in lines if ln.startswith("error: ")]
        if code == 2 and errors:
            raise UserError(errors[-1])
        raise SweepFailed(f"sweeps launch {' '.join(self.args)} did not succeed (exit {code}): "
                          + " / ".join(lines[-3:]))

    def stop(self, timeout: float = 60.0) -> int:
        """Stop it as Ctrl-C does (running trials are marked interrupted and resume on the next
        launch); returns its exit status."""
        if self.running:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        return int(self._proc.returncode)

    def __del__(self) -> None:
        if getattr(self, "_proc", None) is not None and self._proc.poll() is not None:
            self._log.close()


def start(sweep: str = "quick", overrides: Mapping[str, Any] | Sequence[str] | None = None, *,
          config_dir: str | Path | None = None, workers: int | None = None) -> Launch:
    """Start `sweeps.launch(...)` beside the caller and return at once: watch it with
    `launch.sweep().trials()`, collect it with `launch.wait()`. The arguments are `launch`'s.
    A config that does not compose raises `UserError` here; the rest of the launch's checks
    (ranges, stores, one batch through the model) surface at `wait()`."""
    from sweeps.api.handle import as_dir
    from trainer.api import compose

    args = [f"sweep={sweep}", *as_overrides(overrides)]
    if workers is not None:
        args.append(f"sweep.workers={workers}")
    cfg_args = list(args)
    where = as_dir(config_dir)
    if where is not None:
        args = [f"--config-dir={where}", *args]
    cfg = compose(cfg_args, "sweeps", config_dir=where)
    tracking = cfg.tracking.uri
    return Launch(args, str(cfg.storage.url), None if tracking is None else str(tracking),
                  str(cfg.sweep.name), config_dir=where)

"""`TrialLogger`: the trainer callback that streams a trial's curves to its MLflow run.

Its points are plain ``(key, value, timestamp ms, step)`` tuples, made into MLflow metrics
where the writes run: a worker whose writer is a process never imports mlflow (~1.7 s).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeps.tracking.run_writes import RunRef, _op_artifacts, _op_write
from sweeps.tracking.writer import Background
from trainer.api import Callback, RunInfo

if TYPE_CHECKING:
    from trainer.api import FitResult


FLUSH_EVERY_S = 2.0  # a trial's curves go to MLflow at most this often (and at its end)

# Written first in every batch: the MLflow UI's compare view plots a run's first metric by
# default, and that is the objective's per-epoch curve (val/loss where there is no accuracy).
FIRST = {"val/acc": 0, "val/loss": 1}
# Final values that are no metric: how many examples each split held. Tags, see `size_tags`.
SIZES = "data/"


def size_tags(final: Mapping[str, float]) -> dict[str, str]:
    """``data/train_size`` -> tag ``sweeps.data.train_size``: a count of examples, not a curve."""
    return {"sweeps." + k.replace("/", "."): str(int(v)) for k, v in final.items() if k.startswith(SIZES)}


class TrialLogger(Callback):
    """Streams one trial's curves to its MLflow run through the writer: per-epoch
    metrics in one batched write at most every FLUSH_EVERY_S seconds (a trial of short
    epochs writes its curves once, at its end; one of long epochs, every epoch)."""

    def __init__(self, uri: str, run: str | RunRef | None, background: Background | None = None,
                 *, wait_at_end: bool = True, flush_every_s: float = FLUSH_EVERY_S,
                 hold_final: bool = False) -> None:
        self.uri = uri
        self.ref = run if isinstance(run, RunRef) else RunRef.of(run)
        self.background = background or Background()
        self.wait_at_end = wait_at_end  # a worker does not: the next trial need not wait for MLflow
        self.flush_every_s = flush_every_s
        # the last curves wait for the run's end (end_trial_async): one request instead of two
        self.hold_final = hold_final
        self._pending: list[Any] = []
        self._last_flush = time.monotonic()

    def on_fit_start(self, run: RunInfo) -> None:
        """A run resumed from a checkpoint: its earlier epochs go into this run too, so that
        the retry's run holds the whole curve."""
        now = int(time.time() * 1000)
        self._pending += [(k, float(v), now, int(m["epoch"])) for m in run.history
                          for k, v in m.items() if k != "epoch"]

    def on_step(self, run: RunInfo, step: int, metrics: Mapping[str, float]) -> None:
        now = int(time.time() * 1000)
        self._pending += [(k, float(v), now, step) for k, v in metrics.items()]

    def on_epoch_end(self, run: RunInfo, epoch: int, metrics: Mapping[str, float]) -> None:
        now = int(time.time() * 1000)
        self._pending += [(k, float(v), now, epoch) for k, v in metrics.items() if k != "epoch"]
        if time.monotonic() - self._last_flush >= self.flush_every_s:
            self._flush()

    def _flush(self, hold: bool = False) -> None:
        batch, self._pending = sorted(self._pending, key=lambda p: FIRST.get(p[0], 2)), []
        self._last_flush = time.monotonic()
        self.background.submit(_op_write, self.ref.key, self.ref.id, self.uri, batch, hold)

    def on_fit_end(self, run: RunInfo, result: FitResult) -> None:
        now = int(time.time() * 1000)
        self._pending += [(k, float(v), now, len(result.history)) for k, v in result.final.items()
                          if not k.startswith(SIZES)]
        if result.status == "diverged" and result.history:
            last = result.history[-1]
            self._pending += [(k, float(v), now, int(last["epoch"])) for k, v in last.items()
                              if k != "epoch"]
        self._flush(hold=self.hold_final)
        self.background.submit(_op_artifacts, self.ref.key, self.ref.id, self.uri,
                               {"history.json": Path(result.output_dir) / "history.json"})
        if self.wait_at_end:
            self.background.wait()

"""How a launch's local workers start: at once, and claiming together once the launch is ready.

`sweeps launch` starts its workers before it has checked the stores or created a study, so
that their start-up (torch, the data, the MLflow writer: seconds) runs while it does. A
worker that is warmed up waits at the gate: it claims a trial once the launch has opened
the studies and its parent run (`release`), and leaves without a write where the launch
gave up (`abort`). The first worker also checks every model of the sweep with one batch
(`report`), which the launch waits for before its first write (`verdict`): the launch
itself never imports torch. Warmed-up workers then start claiming together, so that the
first one ready does not take every trial of a short sweep while the others still load.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trainer.api import UserError

START_GATE_S = 30.0  # the longest a warmed-up local worker waits for the launch's others
POLL_S = 0.02
WAIT, GO, LEAVE = 0, 1, -1


@dataclass
class StartGate:
    ready: Any  # shared int: workers warmed up
    workers: int
    go: Any  # shared int: WAIT, GO or LEAVE
    verdicts: Any = None  # a queue: the first worker's check of the models (None: not asked)

    @classmethod
    def create(cls, ctx: Any, workers: int, check_models: bool) -> StartGate:
        return cls(ctx.Value("i", 0), workers, ctx.Value("i", WAIT),
                   ctx.Queue() if check_models else None)

    # ----------------------------------------------------------------- the workers' side
    def report(self, err: UserError | None) -> None:
        """The first worker's check of the models: None where every one ran a batch."""
        self.verdicts.put(None if err is None else (str(err), err.exit_code))

    def wait_for_go(self) -> bool:
        """Until the launch is ready (True) or gave up (False)."""
        while self.go.value == WAIT:
            time.sleep(POLL_S)
        return bool(self.go.value == GO)

    def wait_for_the_others(self) -> None:
        """Until every worker of the launch is warmed up. A replacement worker (the count is
        already reached) does not wait, nor does any past START_GATE_S (a worker that died
        while warming up)."""
        with self.ready.get_lock():
            self.ready.value += 1
        end = time.monotonic() + START_GATE_S
        while self.ready.value < self.workers and time.monotonic() < end:
            time.sleep(POLL_S)

    # ------------------------------------------------------------------ the launch's side
    def release(self) -> None:
        self.go.value = GO

    def abort(self) -> None:
        self.go.value = LEAVE

    def verdict(self, alive: Callable[[], bool]) -> bool:
        """Wait for the first worker's check of the models: raises its UserError; False where
        the worker ended without saying (the caller then checks them itself)."""
        while True:
            try:
                found = self.verdicts.get(timeout=0.1)
            except queue.Empty:
                if not alive():
                    try:
                        found = self.verdicts.get(timeout=0.5)  # said just before it ended
                    except queue.Empty:
                        return False
                else:
                    continue
            if found is None:
                return True
            message, code = found
            err = UserError(message)
            err.exit_code = code
            raise err

"""A trial's MLflow run written through the worker's writer, so that training never waits.

The training side holds a `RunRef`; the writes are module-level functions of plain values
(``_op_*``), so they run alike on the writer thread and in the writer process, and a run's
pending state (`RunState`) stays where the writes run, under the RunRef's key.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeps.tracking import outage
from sweeps.tracking.runs import RunState, end_trial, mark_trial_runs, start_trial, tag_run
from sweeps.tracking.writer import Background

log = logging.getLogger("sweeps")



@dataclass
class RunRef:
    """The training side's handle on a trial's MLflow run, which the background writer
    creates: until then (a tracking server that is down) training goes on and its writes
    queue up behind the creation. `key` names the run's RunState where the writes run."""

    id: str | None = None
    done: threading.Event = field(default_factory=threading.Event)
    key: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def of(cls, run_id: str | None) -> RunRef:
        ref = cls(run_id)
        ref.done.set()
        return ref

    def wait(self, timeout: float, outage_grace: float = 5.0) -> str | None:
        """Up to `timeout` for the run to exist, but only `outage_grace` once the server is
        known to be away: a finished trial must not sit RUNNING through an outage."""
        end = time.monotonic() + timeout
        outage_end: float | None = None
        while not self.done.wait(min(1.0, max(0.0, end - time.monotonic()))):
            now = time.monotonic()
            if outage.in_outage():
                outage_end = outage_end or now + outage_grace
            if now >= end or (outage_end is not None and now >= outage_end):
                break
        return self.id


# ------------------------------------------------------------------ writes, where they run
# Module-level functions of plain arguments, so that they run alike on the writer thread
# and in the writer process; a run's pending state stays there, under its RunRef's key.
_RUNS: dict[str, RunState] = {}


def _state(key: str, run_id: str | None) -> RunState:
    return _RUNS.get(key) or RunState(run_id)


def _op_create(key: str, uri: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    state = _RUNS.setdefault(key, RunState())
    start_trial(uri, *args, pending=state, **kwargs)
    return state.id


def _op_write(key: str, run_id: str | None, uri: str, metrics: list[Any], hold: bool = False) -> None:
    """A batch of curves; `hold`: the run's last before its end (`_op_end` sends it, in one
    request with the state tags)."""
    state = _state(key, run_id)
    if hold and key in _RUNS:
        state.held += metrics
    else:
        state.write(uri, metrics)


def _op_artifacts(key: str, run_id: str | None, uri: str, files: Mapping[str, Path]) -> None:
    _state(key, run_id).write_artifacts(uri, files)


def _op_end(key: str, run_id: str | None, uri: str, state: str, reason: str | None,
            value: float | None, tags: Mapping[str, str]) -> None:
    pending = _RUNS.pop(key, None) or RunState(run_id)
    if pending.id is not None:
        end_trial(uri, pending.id, state, reason, value, tags, pending)


def _op_retire(key: str, uri: str, sweep: str, study: str, number: int, old_run: str | None) -> None:
    """A killed attempt's run: FAILED (whoever noticed the death may not have reached
    MLflow), pointing at the run (`key`'s) that continues its curve."""
    new = _RUNS.get(key)
    for run in mark_trial_runs(uri, sweep, study, number, "failed", "worker died; retried", old_run):
        if new is not None and new.id is not None:
            tag_run(uri, run, {"sweeps.retried_by": new.id})


def start_trial_async(uri: str, background: Background, sweep: str, parent_run_id: str | None,
                      study: str, number: int, optimizer: str, config: Mapping[str, Any],
                      params: Mapping[str, Any], device: str, *,
                      on_created: Callable[[str], None] | None = None, kind: str = "trial",
                      name: str | None = None, extra_tags: Mapping[str, str] | None = None,
                      constant: Mapping[str, str] | None = None) -> RunRef:
    """`start_trial` (the same arguments) on the background writer: returns at once with a
    RunRef; `on_created` gets the run id here, in this process, as soon as the run exists."""
    ref = RunRef()
    args = (sweep, parent_run_id, study, number, optimizer, dict(config), dict(params), device)
    # this process's, not the writer's: `close_orphans` picks runs by the worker that opened them
    kwargs = {"kind": kind, "name": name, "constant": constant,
              "extra_tags": {"sweeps.worker": f"{socket.gethostname()}:{os.getpid()}",
                             **(extra_tags or {})}}

    def created(future: Future[Any]) -> None:
        try:
            ref.id = future.result()
        except BaseException as err:  # reported by drain(); training goes on without a run
            log.debug("MLflow run not created: %s", err)
        finally:
            ref.done.set()
        if ref.id is not None and on_created is not None:
            on_created(ref.id)

    background.submit(_op_create, ref.key, uri, args, kwargs).add_done_callback(created)
    return ref


def end_trial_async(uri: str, background: Background, ref: RunRef, state: str, reason: str | None,
                    value: float | None, tags: Mapping[str, str]) -> None:
    """`end_trial` on the background writer, after the run's other writes."""
    background.submit(_op_end, ref.key, ref.id, uri, state, reason, value, dict(tags))


def retire_async(uri: str, background: Background, ref: RunRef, sweep: str, study: str,
                 number: int, old_run: str | None) -> None:
    background.submit(_op_retire, ref.key, uri, sweep, study, number, old_run)

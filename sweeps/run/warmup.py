"""What a worker does before it claims a job, and the launch's check of every model.

`check_models` loads the data, builds the model and runs one batch forward, once per
distinct model and data of the sweep. `warm` loads the sweep's data and imports what the
first optimizer step imports (`torch._dynamo`, ~1.5-3 s: torch.optim's constructors
call it), so that a claimed trial's time is its training, not this process's start-up.

A local launch runs `check_models` in its first worker, started at once, not in the launch
itself: the launch then never imports torch, and the worker's start-up (torch, the data,
its MLflow writer) runs while the launch checks the stores (docs/explanation/performance.md,
"Start-up and exit").
"""

from __future__ import annotations

import contextlib
import importlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sweeps.search.spec import SweepSpec
from trainer.api import UserError

if TYPE_CHECKING:
    from sweeps.run.start_gate import StartGate


def check_devices(spec: SweepSpec) -> None:
    """The device every study trains on is on this machine (`trainer.device=cuda:7` on a
    one-GPU host is one line here, not a failed trial per claim)."""
    from trainer.api import resolve_device

    for device in sorted({str(b["trainer"]["device"]) for st in spec.studies
                          for b in (st.base, *st.bases.values())}):
        resolve_device(device)


def check_models(spec: SweepSpec) -> None:
    """One batch through each distinct model and data of the sweep, on CPU: a user's model or
    dataset that cannot work fails here, in one line, before a study, a run or an output
    directory exists. The devices too, where the launch's own workers train (local)."""
    from trainer.api import check_config

    if spec.launcher["name"] == "local" and spec.workers > 0:
        check_devices(spec)
    seen: set[str] = set()
    for st in spec.studies:
        for base in (st.base, *st.bases.values()):
            key = json.dumps([base["model"], base["dataset"], base["trainer"]["loss"]],
                             sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                check_config(base)


def warm(spec: SweepSpec) -> None:
    """The sweep's data in memory and torch._dynamo imported; a failure here is left to
    the trial, which reports it."""
    from trainer.api import make_splits, resolve_device

    with contextlib.suppress(Exception):
        importlib.import_module("torch._dynamo")
        for study in spec.studies:
            make_splits(study.base["dataset"], resolve_device(study.base["trainer"]["device"]))


def start_writer(overrides: Sequence[str], uri: str | None, config_dir: str | None = None) -> None:
    """A launch's worker: its MLflow writer process, started before the worker imports
    torch (the writer's ~3 s of MLflow imports then run beside torch's), where the sweep
    writes through one; the store is opened once the launch has made it."""
    from sweeps.search.load import load_sweep
    from sweeps.tracking.writer import Background

    with contextlib.suppress(Exception):  # a failure here is the worker's to report
        if load_sweep(overrides, config_dir).tracking_writer == "process":
            Background.start_process(not (uri or "").startswith(("http://", "https://")))


def before_the_studies(gate: StartGate, overrides: Sequence[str], index: int,
                       config_dir: str | None = None) -> bool:
    """A launch's worker, before the launch has opened its studies: compose the sweep, check
    its models (the first worker; the launch waits for that), warm up, then wait at the
    gate. False where the launch gave up (or a model failed): leave without a write."""
    from sweeps.search.load import load_sweep

    spec = load_sweep(overrides, config_dir)
    if index == 0 and gate.verdicts is not None:
        try:
            check_models(spec)
        except UserError as err:
            gate.report(err)
            return False
        gate.report(None)
    warm(spec)
    return gate.wait_for_go()

"""What a worker is started with, as one value: `sweeps worker`'s options, each of a
launch's worker processes (it is passed to the child) and an in-process run.

Apart from `worker` so that a launch builds it without importing the worker (torch).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sweeps.search.studies import CONFIRM_KIND, SEARCH_KIND


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker is started: what `sweeps worker`, a launch's worker processes (it is
    passed to each) and an in-process run give. `Worker.connect` opens what it names."""

    storage_url: str
    sweep: str  # a sweep's name (all its studies)
    index: int = 0  # this worker's number: its samplers' seeds differ from the others'
    only_study: str | None = None  # one study of the sweep
    tracking_uri: str | None = None  # None: the one the sweep was launched with
    deadline: float | None = None  # a time.time() after which no job starts
    output_root: str | None = None  # None: the sweep's checkpoint_dir
    quiet: bool = False
    storage_cfg: Mapping[str, Any] = field(default_factory=dict)
    kinds: tuple[str, ...] = (CONFIRM_KIND, SEARCH_KIND)
    threads: int | None = None
    config_dir: str | None = None  # None: the one the sweep was launched with, if here
    cuda_device: str | None = None  # a launch's worker: the GPU it is pinned to
    overrides: tuple[str, ...] | None = None  # a launch's worker, started before its studies
    allowed_targets: tuple[str, ...] = ()  # packages whose `_target_`s it may call (allowed_targets)
    writer: Any = None  # a local worker: where its launch takes its MLflow writes (WriterAddress)

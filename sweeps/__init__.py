"""The sweep service: Optuna studies over per-optimizer search spaces, tracked in MLflow.

As a library::

    import sweeps

    sweep = sweeps.launch("quick", {"sweep.n_trials": 8})   # blocks like `sweeps launch`
    run = sweeps.start("quick")                              # or runs beside you: run.wait()
    sweep.trials()                                           # a pandas DataFrame
    sweep.confirm(seeds=5)
    report = sweep.report()                                  # report.ranking, report.pairs
    sweeps.open("quick").reproduce("best").identical
    sweeps.work("quick")                                     # join it, as `sweeps worker` does

One package per job, in layers (each may import only those below it; checked by
import-linter, see pyproject.toml): `cli` (the `sweeps` command) > `api` (this library) >
`run` (workers, trials, launch, confirm, reproduce) > `report` | `tracking` (what a sweep
found | its MLflow mirror) > `search` (the sweep config, search spaces, studies, budget) >
`store` (the Optuna storage). The trainer it drives knows nothing of Optuna or MLflow.

The names below load on first use, so that `import sweeps.store` (a worker's writer
process) does not import the API's pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweeps.api.background import Launch, start
    from sweeps.api.errors import ConfigError, SweepFailed, UserError
    from sweeps.api.handle import Sweep
    from sweeps.api.handle import open_sweep as open  # `sweeps.open`, as designed
    from sweeps.api.launching import launch
    from sweeps.api.results import Report, Reproduction
    from sweeps.api.working import work

_EXPORTS = {"launch": ("sweeps.api.launching", "launch"), "open": ("sweeps.api.handle", "open_sweep"),
            "start": ("sweeps.api.background", "start"), "Launch": ("sweeps.api.background", "Launch"),
            "Sweep": ("sweeps.api.handle", "Sweep"), "Report": ("sweeps.api.results", "Report"),
            "Reproduction": ("sweeps.api.results", "Reproduction"),
            "UserError": ("sweeps.api.errors", "UserError"),
            "ConfigError": ("sweeps.api.errors", "ConfigError"),
            "SweepFailed": ("sweeps.api.errors", "SweepFailed"), "work": ("sweeps.api.working", "work")}

__all__ = ["ConfigError", "Launch", "Report", "Reproduction", "Sweep", "SweepFailed", "UserError",
           "launch", "open", "start", "work"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module, attr = _EXPORTS[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'sweeps' has no attribute {name!r}")

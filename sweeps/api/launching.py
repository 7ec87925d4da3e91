"""`sweeps.launch(...)`: the `sweeps launch` command as a function call.

It blocks like the command: it validates everything, creates or resumes the studies and runs
the local workers (processes) to the budget, then returns the `Sweep`. Models and datasets
are named by `_target_` in a config dir, as for the command: the workers are separate
processes and import them by path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sweeps.api.handle import Sweep, check_code, console_for, use_config_dir


def override_value(value: Any) -> str:
    """A Python value as Hydra's override grammar reads it: None -> null, True -> true,
    [1, 2] -> [1,2], {"a": 1} -> {a:1}."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{override_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def as_overrides(overrides: Mapping[str, Any] | Sequence[str] | None) -> list[str]:
    """`{"sweep.n_trials": 8}` or `["sweep.n_trials=8"]` as Hydra override strings."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [f"{k}={override_value(v)}" for k, v in overrides.items()]
    if isinstance(overrides, str):
        return [overrides]
    return [str(o) for o in overrides]


def launch(sweep: str = "quick", overrides: Mapping[str, Any] | Sequence[str] | None = None, *,
           config_dir: str | Path | None = None, workers: int | None = None,
           progress: bool = False) -> Sweep:
    """Run the sweep `sweep` (a bundled one, or yours in `config_dir`) to its budget and
    return it. `overrides` change any key (`{"sweep.n_trials": 8}`); `workers`: local worker
    processes (`0`: create the sweep only, for `sweeps worker` elsewhere). `progress=True`
    shows the live table; otherwise nothing is printed. Raises `UserError` on bad input
    (nothing written) and `SweepFailed` where the command exits 1."""
    from sweeps.run.launch import launch as run_launch
    from trainer.api import compose

    if config_dir is not None:
        use_config_dir(config_dir)
    args = [f"sweep={sweep}", *as_overrides(overrides)]
    if workers is not None:
        args.append(f"sweep.workers={workers}")
    console = console_for(progress)
    check_code(run_launch(args, console), console, f"sweeps launch {' '.join(args)}")
    cfg = compose(args, "sweeps")
    tracking = cfg.tracking.uri
    return Sweep(str(cfg.sweep.name), str(cfg.storage.url), None if tracking is None else str(tracking))

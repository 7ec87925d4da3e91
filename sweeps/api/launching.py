"""`sweeps.launch(...)`: the `sweeps launch` command as a function call.

It blocks like the command: it validates everything, creates or resumes the studies and runs
the trials to the budget, then returns the `Sweep`. With worker processes (the default, as
for the command) models and datasets are named by `_target_` in a config dir; with
`workers=0` the trials run in the calling process, and `model=`, `dataset=` and `loss=` may
be Python objects defined right there (`in_process`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from sweeps.api.errors import SweepFailed, UserError
from sweeps.api.handle import Sweep, as_dir, check_code, console_for


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


def launch_words(words: Sequence[str], console: Console, *, detach: bool = False,
                 config_dir: str | Path | None = None) -> None:
    """`sweeps launch WORDS`: the command line's overrides as given, progress on `console`;
    `SweepFailed` with the command's exit code where it did not succeed."""
    from sweeps.run.launch import launch as run_launch

    words = list(words)
    check_code(run_launch(words, console, detach=detach, config_dir=as_dir(config_dir)), console,
               f"sweeps launch {' '.join(words)}")


def launch(sweep: str = "quick", overrides: Mapping[str, Any] | Sequence[str] | None = None, *,
           model: Callable[..., Any] | None = None, dataset: Callable[..., Any] | None = None,
           loss: Callable[..., Any] | None = None, config_dir: str | Path | None = None,
           workers: int | None = None, progress: bool = False) -> Sweep:
    """Run the sweep `sweep` (a bundled one, or yours in `config_dir`) to its budget and
    return it. `overrides` change any key (`{"sweep.n_trials": 8}`). `workers`: local worker
    processes (default: the sweep's `sweep.workers`), or `0` to run the trials in this process.
    `model`, `dataset`, `loss`: a class or function of yours that builds the model, returns the
    data, or builds the loss (a class like `torch.nn.HuberLoss`); they need `workers=0`, the default
    when one is given, unless their module imports in other processes too. Start from the
    sweep `base` for them. `progress=True` shows the live table; otherwise nothing is printed.
    Raises `UserError` on bad input (nothing written) and `SweepFailed` where the command
    exits 1."""
    from sweeps.api import in_process
    from trainer.api import compose

    objects = {"model": model, "dataset": dataset, "loss": loss}
    if any(obj is not None for obj in objects.values()) and workers is None:
        workers = 0  # the objects are in this process
    where = as_dir(config_dir)
    args = [f"sweep={sweep}", *in_process.object_overrides(objects),
            *in_process.with_object_keys(as_overrides(overrides), objects)]
    if workers is not None:
        if workers < 0:
            raise UserError(f"workers={workers}: must be >= 0 (0: the trials run in this process)")
        args.append(f"sweep.workers={workers}")
    launch_words(args, console_for(progress), config_dir=where)
    cfg = compose(args, "sweeps", config_dir=where)
    tracking = None if cfg.tracking.uri is None else str(cfg.tracking.uri)
    from sweeps.search.allowed_targets import in_overrides

    mine = tuple(sorted(in_overrides(args)))  # what the caller named (and the objects it gave)
    result = Sweep(str(cfg.sweep.name), str(cfg.storage.url), tracking, where, allowed_targets=mine)
    if workers == 0:
        in_process.run_here(result.storage, result.name, tracking, ("search",), quiet=not progress,
                            config_dir=where, allowed_targets=mine)
        in_process.close_parent(result.studies(), tracking)
        if result.status()["complete"].sum() == 0:
            raise SweepFailed(f"no trial of sweep {result.name} completed: see Sweep.trials() for "
                              "why (each trial's state, and the failure reasons)")
    return result

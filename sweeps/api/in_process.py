"""Trials in the calling process (`workers=0`): Python objects of a notebook as model, data or
loss, which worker processes could not import.

The sweep is launched as `sweeps launch sweep.workers=0` does (validated, studies and the
parent run made, nothing trained), then one `Worker` of this process runs its trials, or its
queued confirm runs, with the very objects the caller passed: their `_target_` is their own
name (`__main__.Net` for a notebook's class), which imports here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sweeps.api.errors import SweepFailed, UserError

OBJECT_KEYS = ("model", "dataset", "loss")  # the `launch` arguments that take an object


def object_overrides(objects: dict[str, Callable[..., Any] | None]) -> list[str]:
    """Overrides that put each given object in its config section by name: a model or a
    dataset replaces the bundled one (its keyword arguments are then its keys); a loss is
    `trainer.loss`."""
    out: list[str] = []
    for key, obj in objects.items():
        if obj is None:
            continue
        qualname = getattr(obj, "__qualname__", None)
        module = getattr(obj, "__module__", None)
        if not callable(obj) or not qualname or not module:
            raise UserError(f"{key}={obj!r}: must be a class or function (a callable that builds "
                            "the model, returns the data, or computes the loss)")
        if "<" in qualname:  # <locals>, <lambda>: no name to find it by
            raise UserError(f"{key}={qualname}: define it at the top level of your notebook or "
                            "module, so that each trial can find it by name")
        path = f"{module}.{qualname}"
        if key == "loss":
            out.append(f"trainer.loss={{_target_: {path}}}")
        else:
            out += [f"~{key}", f"+{key}._target_={path}"]
    return out


def with_object_keys(overrides: Sequence[str], objects: dict[str, Callable[..., Any] | None]
                     ) -> list[str]:
    """The caller's overrides after the objects': a key of a given model or dataset (its
    keyword argument, e.g. `model.hidden=64`) is added to the section it makes (`++`)."""
    groups = tuple(f"{key}." for key, obj in objects.items() if obj is not None and key != "loss")
    return [f"++{o}" if groups and o.startswith(groups) else o for o in overrides]


def run_here(storage: str, name: str, tracking_uri: str | None, kinds: Sequence[str],
             quiet: bool, config_dir: str | None = None, allowed_targets: Sequence[str] = ()) -> int:
    """Run the sweep's jobs of `kinds` ("search", "confirm") in this process until none is
    left; returns how many ran. A sweep stopped by repeated failures raises `SweepFailed`."""
    from sweeps.run import fail_fast
    from sweeps.run.worker import Worker

    worker = Worker.connect(storage, name, tracking_uri=tracking_uri, quiet=quiet, kinds=tuple(kinds),
                            config_dir=config_dir, allowed_targets=tuple(allowed_targets))
    count = worker.run()
    if worker.claims.halt is not None:
        raise SweepFailed(fail_fast.describe(worker.claims.halt, worker.sweep)[0])
    return count


def close_parent(studies: Sequence[Any], tracking_uri: str | None) -> None:
    """The launch's MLflow run gets the best values, as a launch with its own workers gives it."""
    from sweeps.report import summary
    from sweeps.search.studies import latest_attrs
    from sweeps.tracking import clients
    from sweeps.tracking import runs as tracking_runs

    latest = latest_attrs(studies)
    parent = latest.get("parent_run_id")
    if parent:
        uri = clients.resolve_uri(tracking_uri or latest.get("tracking_uri"))
        tracking_runs.finish_parent(uri, str(parent), "FINISHED", summary.best_metrics(studies))

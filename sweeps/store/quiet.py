"""Optuna calls without its "experimental" warnings, which would repeat in every worker's output."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna


def quietly(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` without Optuna's "experimental" warnings (heartbeats, metric
    names, some samplers), which would repeat in every worker's output."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # our workers beat from their own thread (sweeps.run.heartbeat), not in optimize()
        warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with")
        return fn(*args, **kwargs)

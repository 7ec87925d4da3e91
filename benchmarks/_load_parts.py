"""Where a load worker's time goes around its trials: each round trip, timed where it is made.

`install()` wraps the functions a claim and a trial go through (the budget lock, the count,
the pop of a waiting trial, the trial row, sampling, attribute writes, the tell, the MLflow
requests) with a timer; at exit the worker appends one JSON line to LOAD_PARTS: its trials
and, per part, the seconds and calls. Nothing else changes: the worker runs the real code.
A timed call made inside another is counted in the outer one only; the lock's wait and
hold are the exception: the calls made while it is held are counted too, as its breakdown.
Parts marked ``writer`` run on the MLflow writer thread, beside training, not before it.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

_totals: dict[str, list[float]] = {}  # part -> [seconds, calls]
_lock = threading.Lock()
_trials = [0]


def add(part: str, seconds: float) -> None:
    with _lock:
        slot = _totals.setdefault(part, [0.0, 0])
        slot[0] += seconds
        slot[1] += 1


_active = threading.local()  # a timed call in progress on this thread: the calls it makes are its own


def timed(part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn`, timed as `part` unless it is called from another timed call (counted once)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if getattr(_active, "on", False):
            return fn(*args, **kwargs)
        _active.on = True
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _active.on = False
            add(part, time.perf_counter() - t0)
    return wrapper


def _wrap(owner: Any, name: str, part: str) -> None:
    setattr(owner, name, timed(part, getattr(owner, name)))


def install() -> None:
    """Wrap the round trips of a claim and of a trial (call after the worker's modules load)."""
    import optuna
    from mlflow import MlflowClient

    from sweeps.run import claims, trial
    from sweeps.search import budget, studies
    from sweeps.search.trial_configs import TrialConfigs
    from sweeps.store import locks, trial_writes
    from sweeps.store.resilient import ResilientRDBStorage

    try:
        from sweeps.store import claim_queries
    except ImportError:  # an older version of the code
        claim_queries = None  # type: ignore[assignment]

    real_lock = locks.budget_lock

    @contextlib.contextmanager
    def budget_lock(url: str, key: str) -> Iterator[None]:
        t0 = time.perf_counter()
        with real_lock(url, key):
            t1 = time.perf_counter()
            add("claim: lock wait", t1 - t0)
            try:
                yield
            finally:
                add("claim: lock held", time.perf_counter() - t1)

    locks.budget_lock = budget_lock  # type: ignore[assignment]
    try:
        from sweeps.store import claim_statement
    except ImportError:  # an older version of the code: every claim takes the lock above
        claim_statement = None  # type: ignore[assignment]
    if claim_statement is not None:
        real_claim = claim_statement.claim

        def claim(*args: Any, **kwargs: Any) -> Any:
            """The one-statement claim: its round trip, and the lock's wait and hold as the
            server measured them (the hold is what bounds the claims per second)."""
            t0 = time.perf_counter()
            got = real_claim(*args, **kwargs)
            add("claim: one statement (round trip)", time.perf_counter() - t0)
            add("claim: lock wait", got.waited_s)
            add("claim: lock held", got.held_s)
            return got

        claim_statement.claim = claim  # type: ignore[assignment]
    for owner, name, part in (
            (claims.Claims, "_fail_stale", "claim: fail stale trials"),
            (claim_queries, "study_attrs", "claim: study attributes"),
            (budget, "used_and_failed_all", "claim: count (in lock)"),
            (budget, "used_and_failed", "claim: count (in lock)"),
            (budget, "retry_candidate", "claim: retry candidate (in lock)"),
            (claim_queries, "pop_waiting", "claim: pop waiting trial (in lock)"),
            (optuna.Study, "_pop_waiting_trial_id", "claim: pop waiting trial (in lock)"),
            (ResilientRDBStorage, "create_new_trial", "claim: trial row (in lock)"),
            (claims, "_own", "claim: owner write"),  # older versions: a write of its own
            (optuna.Trial, "__init__", "trial: sampler set-up"),
            (optuna.Trial, "_suggest", "trial: sampling"),
            (trial_writes, "write_all", "trial: attribute writes"),
            (trial_writes, "set_user_attrs", "trial: attribute writes"),
            (optuna.Study, "tell", "trial: tell"),
            (optuna.Trial, "report", "trial: report (a curve point)"),
            (TrialConfigs, "resolve", "trial: config resolution"),
            (ResilientRDBStorage, "get_study_user_attrs", "trial: study attributes read"),
            (ResilientRDBStorage, "record_heartbeat", "trial: heartbeat (its thread)"),
            (optuna.Trial, "should_prune", "trial: should_prune"),
            (studies, "sweep_studies", "worker: load studies")):
        if owner is not None and hasattr(owner, name):  # older versions of the code lack some
            _wrap(owner, name, part)
    for name in ("create_run", "log_batch", "set_terminated", "set_tag", "log_param",
                 "search_runs", "get_run", "update_run"):
        if hasattr(MlflowClient, name):
            _wrap(MlflowClient, name, f"mlflow (writer): {name}")
    real_run = trial.TrialRunner.run_trial

    def run_trial(self: Any, *args: Any, **kwargs: Any) -> Any:
        """The whole trial, its parts inside (not `timed`: they are timed too)."""
        _trials[0] += 1
        t0 = time.perf_counter()
        try:
            return real_run(self, *args, **kwargs)
        finally:
            add("trial: whole, from claimed to told", time.perf_counter() - t0)

    trial.TrialRunner.run_trial = run_trial  # type: ignore[method-assign]
    atexit.register(_dump)


def _dump() -> None:
    path = os.environ.get("LOAD_PARTS")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "trials": _trials[0], "parts": _totals}) + "\n")


def summary(lines: list[dict[str, Any]]) -> list[tuple[str, float, float, float]]:
    """(part, ms per trial, ms per call, calls per trial) over every worker's line."""
    trials = sum(d["trials"] for d in lines) or 1
    parts: dict[str, list[float]] = {}
    for d in lines:
        for part, (seconds, calls) in d["parts"].items():
            slot = parts.setdefault(part, [0.0, 0])
            slot[0] += seconds
            slot[1] += calls
    return [(part, 1000 * s / trials, 1000 * s / max(c, 1), c / trials)
            for part, (s, c) in sorted(parts.items())]

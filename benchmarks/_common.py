"""Helpers shared by the sweep benchmarks: run `sweeps launch` in a scratch directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna

from sweeps.search.studies import sweep_studies
from sweeps.store.storages import open_storage


def launch(cwd: Path, *overrides: str) -> float:
    """Run `sweeps launch` in `cwd`; returns its wall time in seconds."""
    import time

    env = {k: v for k, v in os.environ.items() if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI")}
    cwd.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sweeps", "launch", *overrides], cwd=cwd, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"sweeps launch failed in {cwd}:\n{proc.stdout}\n{proc.stderr}")
    return time.perf_counter() - start


def trials(cwd: Path, sweep: str = "quick") -> list[optuna.trial.FrozenTrial]:
    storage = open_storage(str(cwd / "sweeps.journal"))
    return [t for s in sweep_studies(storage, sweep) for t in s.get_trials(deepcopy=False)]

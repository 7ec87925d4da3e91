"""Sweep tests run in a fresh directory each, with the embedded (file) stores."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

# A small, fast sweep: two optimizers, tiny model, 2 epochs per trial.
SMALL = [
    "sweep.optimizers=[sgd,adam_to_sgd]", "sweep.n_trials=4", "trainer.epochs=2",
    "model.width=32", "dataset.val_size=300", "search.common.batch_size.choices=[256,512]",
    "search.common.schedule.choices=[constant,cosine]",
]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run in an empty directory, with the embedded stores (no env overrides)."""
    for var in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def run_sweeps(*args: str, cwd: Path, timeout: float = 300,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The `sweeps` command in a subprocess, as a user runs it."""
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "sweeps", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout, env=full_env)

"""Disk full mid-sweep (a 30 MB tmpfs filled by the test): one line naming the file and
what to do, the sweep stopped rather than its budget burnt, no traceback; after space is
freed the same command finishes the budget exactly, with nothing left RUNNING."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from optuna.trial import TrialState

from .conftest import SMALL
from .helpers import journal_trials, mlflow_runs, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 30 MB tmpfs of the test's own (root may mount one; CI runs as root)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=30m", "tmpfs", str(disk)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        reason = f"cannot mount a tmpfs here ({made.stderr.strip()}): run as root"
        if os.environ.get("SWEEPS_REQUIRE_POSTGRES"):  # CI: never skipped there
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _launch(cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI")}
    return subprocess.Popen(
        [sys.executable, "-m", "sweeps", "launch", *SMALL, "trainer.epochs=200",
         "sweep.pruner.name=none", "sweep.workers=2", "sweep.threads_per_worker=1",
         "sweep.checkpoint_every_s=0"],
        cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_disk_full_mid_sweep_is_one_line_and_the_next_launch_finishes(small_disk: Path) -> None:
    journal = small_disk / "sweeps.journal"
    proc = _launch(small_disk)
    try:
        wait_for(lambda: any(t.state == TrialState.RUNNING and t.intermediate_values
                             for ts in _trials(journal) for t in ts), timeout=180, interval=0.2)
        with open(small_disk / "filler", "wb") as f:  # fill the disk to the last byte
            block = b"\0" * (1 << 20)
            try:
                while True:
                    f.write(block)
                    f.flush()
            except OSError:
                pass
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, out
    assert "Traceback" not in out, out
    assert "no space left on device" in out and "free space there" in out, out
    assert "the sweep stopped: fix it and run the same command again" in out, out
    assert str(small_disk) in out  # the line names where

    (small_disk / "filler").unlink()
    again = _launch(small_disk)
    out2, _ = again.communicate(timeout=600)
    assert again.returncode == 0, out2
    trials = [t for ts in journal_trials(journal).values() for t in ts]
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 4  # the budget exactly: what the full disk stopped was retried
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    runs = mlflow_runs(f"sqlite:///{small_disk / 'mlflow.db'}")
    assert not [r for r in runs if r.info.status == "RUNNING"]  # the stopped launch's run too


def _trials(journal: Path) -> list:
    try:
        return list(journal_trials(journal).values())
    except Exception:  # being written
        time.sleep(0.1)
        return []

"""The user projects in examples/ run end to end, as a user runs them: from the
project's folder, with its config dir, `sweeps launch` -> `confirm` -> `report` ->
`reproduce` (`examples/tabular` runs as the own-model tutorial shows it, in
tests/docs/test_runnable.py). Only the launch names the config dir: the later commands take it from the
sweep's record. Tiny budgets; nothing is downloaded."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).parents[2] / "examples"


def sweeps(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI", "SWEEPS_CONFIG_DIR")}
    return subprocess.run([sys.executable, "-m", "sweeps", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout, env=env)


def project(name: str, tmp_path: Path) -> Path:
    """A copy of the example, as a user's own folder would be."""
    dest = tmp_path / name
    shutil.copytree(EXAMPLES / name, dest, ignore=shutil.ignore_patterns("__pycache__", "digit_pngs"))
    return dest


def run_all(where: Path, sweep: str, *overrides: str) -> dict[str, str]:
    """launch, confirm (2 seeds), report, reproduce; each must succeed. Their outputs."""
    launch = sweeps("launch", "--config-dir", "conf", f"sweep={sweep}", "sweep.workers=1",
                    "sweep.threads_per_worker=1", *overrides, cwd=where)
    assert launch.returncode == 0, launch.stdout + launch.stderr
    confirm = sweeps("confirm", sweep, "--seeds", "2", cwd=where)
    assert confirm.returncode == 0, confirm.stdout + confirm.stderr
    report = sweeps("report", sweep, cwd=where)
    assert report.returncode == 0, report.stdout + report.stderr
    reproduce = sweeps("reproduce", sweep, "--trial", "best", cwd=where)
    assert reproduce.returncode == 0, reproduce.stdout + reproduce.stderr
    assert "reproduced: identical" in reproduce.stdout
    assert f"python -m trainer --config-dir {where / 'conf'}" in reproduce.stdout
    return {"launch": launch.stdout, "confirm": confirm.stdout, "report": report.stdout,
            "reproduce": reproduce.stdout,
            "summary": (where / "reports" / sweep / "summary.md").read_text()}


def test_regression_reports_losses_and_no_accuracy(tmp_path: Path) -> None:
    where = project("regression", tmp_path)
    out = run_all(where, "diabetes", "sweep.optimizers=[sgd,adam]", "sweep.n_trials=4",
                  "trainer.epochs=4")
    summary = out["summary"]
    assert "diabetes (regression)" in summary and "mean squared error" in summary
    assert "lowest wins" in summary and "val loss" in summary and "test loss" in summary
    assert "acc" not in summary.replace("accuracy", "").lower().replace("according", ""), summary
    assert "split SE" not in summary
    assert "best val/loss" in out["launch"] and "val/acc" not in out["launch"]
    assert "val/loss" in out["confirm"] and "val/acc" not in out["confirm"]


def test_two_target_regression_reports_losses_reduced_as_in_training(tmp_path: Path) -> None:
    """Two targets per example: every reported loss is the mean over both targets, as the
    training loss is; were evaluation to sum over targets, validation would be about twice
    the training loss and every generalization gap about the training loss itself."""
    from sweeps.search.studies import sweep_studies
    from sweeps.store.storages import open_storage

    where = project("regression", tmp_path)
    out = run_all(where, "friedman_two", "sweep.optimizers=[sgd,adam]", "sweep.n_trials=4",
                  "trainer.epochs=4")
    assert "friedman_two (regression)" in out["summary"] and "val loss" in out["summary"]
    trials = [t for s in sweep_studies(open_storage(str(where / "sweeps.journal")), "friedman_two")
              for t in s.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    assert trials
    for t in trials:
        curves = t.user_attrs["curves"]
        train, val = curves["train/loss"][-1], curves["val/loss"][-1]
        assert abs(val - train) < 0.5 * train, (t.number, train, val)
        assert t.user_attrs["final"]["test/loss"] < 1.5 * train


def test_image_folder_through_dataloader_workers(tmp_path: Path) -> None:
    where = project("image_folder", tmp_path)
    out = run_all(where, "digit_folders", "sweep.n_trials=4", "trainer.epochs=2",
                  "dataset.per_class=40")
    assert sorted(p.name for p in (where / "digit_pngs").iterdir()) == ["done", "test", "train", "val"]
    assert len(list((where / "digit_pngs" / "train" / "3").glob("*.png"))) == 28
    assert "digit_folders (classification)" in out["summary"]

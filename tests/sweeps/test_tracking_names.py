"""What the MLflow UI shows first: names that say a run's end, tags for what is no curve, and
the objective's curve as a run's first metric (the compare view's default axis)."""

from __future__ import annotations

from typing import Any

from sweeps.tracking import logger as tracking_logger
from sweeps.tracking import runs as tracking_runs
from trainer.callbacks import RunInfo


def test_a_run_name_says_how_the_run_ended_once() -> None:
    assert tracking_runs.marked_name("sgd #3", "pruned") == "sgd #3 (pruned)"
    assert tracking_runs.marked_name("sgd #3 (pruned)", "failed") == "sgd #3 (failed)"
    assert tracking_runs.marked_name("adam #1 seed 2", "diverged") == "adam #1 seed 2 (diverged)"
    assert "complete" not in tracking_runs.MARKED
    assert tracking_runs._MLFLOW_STATUS["pruned"] == "KILLED" != tracking_runs._MLFLOW_STATUS["complete"]


def test_split_sizes_are_tags_not_metrics() -> None:
    final = {"best/val_acc": 0.9, "data/train_size": 240.0, "data/val_size": 60.0}
    assert tracking_logger.size_tags(final) == {"sweeps.data.train_size": "240",
                                                "sweeps.data.val_size": "60"}


class _Background:
    def __init__(self) -> None:
        self.batches: list[list[Any]] = []

    def submit(self, fn: Any, key: Any, run_id: Any, uri: Any, batch: list[Any], *rest: Any) -> None:
        self.batches.append(batch)


def test_the_objective_s_curve_is_written_first_in_every_batch() -> None:
    bg = _Background()
    log = tracking_logger.TrialLogger("sqlite:///x.db", "run", bg, flush_every_s=0.0)  # type: ignore[arg-type]
    run = RunInfo.__new__(RunInfo)
    log.on_step(run, 1, {"batch/loss": 0.5, "batch/lr": 0.1})
    log.on_epoch_end(run, 1, {"epoch": 1, "train/loss": 0.4, "val/loss": 0.3, "val/acc": 0.8})
    (batch,) = bg.batches
    assert [p[0] for p in batch][:2] == ["val/acc", "val/loss"]
    assert {p[0] for p in batch} == {"batch/loss", "batch/lr", "train/loss", "val/loss", "val/acc"}
    assert "trial" not in {p[0] for p in batch}

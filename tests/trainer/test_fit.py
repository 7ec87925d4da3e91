"""The fit loop: metrics, every optimizer x schedule, determinism, resume, divergence, stops."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from trainer import Callback, RunInfo, fit
from trainer.optim import list_optimizers
from trainer.optim.schedules import list_schedules

EPOCH_KEYS = {"epoch", "train/loss", "train/acc", "val/loss", "val/acc", "gap/acc", "gap/loss",
              "lr", "time/epoch_s", "time/samples_per_s"}
FINAL_KEYS = {"best/val_acc", "best/epoch", "test/acc", "test/loss"}


def _untimed(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in h.items() if not k.startswith("time/")} for h in history]


@pytest.mark.parametrize("opt", list_optimizers())
@pytest.mark.parametrize("sched", list_schedules())
def test_every_optimizer_and_schedule_trains(tiny_cfg, opt: str, sched: str) -> None:
    result = fit(tiny_cfg(f"optimizer={opt}", f"schedule={sched}", "dataset.val_size=200",
                          "model.width=16", "trainer.batch_size=512"))
    assert result.status == "completed", result.stop_reason
    assert len(result.history) == 2
    for row in result.history:
        assert set(row) >= EPOCH_KEYS and all(math.isfinite(row[k]) for k in EPOCH_KEYS)
    assert set(result.final) >= FINAL_KEYS
    assert result.final["test/acc"] > 0.3  # learned something in two tiny epochs


def test_metric_definitions_and_history_file(tiny_cfg, tmp_path: Path) -> None:
    result = fit(tiny_cfg("optimizer=adam", "trainer.epochs=3", "trainer.log_every=5"))
    for row in result.history:
        assert row["gap/acc"] == pytest.approx(row["train/acc"] - row["val/acc"])
        assert row["gap/loss"] == pytest.approx(row["val/loss"] - row["train/loss"])
        assert 0 <= row["val/acc"] <= 1 and row["time/samples_per_s"] > 0
    best = max(result.history, key=lambda r: r["val/acc"])
    assert result.final["best/epoch"] == best["epoch"]
    assert result.final["best/val_acc"] == best["val/acc"]
    steps_per_epoch = math.ceil(3700 / 256)  # 5000 - 1000 test - 300 val
    assert [s["step"] for s in result.steps] == list(range(5, 3 * steps_per_epoch + 1, 5))
    doc = json.loads((tmp_path / "run" / "history.json").read_text())
    assert doc["status"] == "completed" and doc["epochs"] == result.history
    assert doc["final"] == result.final and doc["config"]["optimizer"]["name"] == "adam"


@pytest.mark.parametrize(("batch", "every"), [(16, 24), (256, 10), (2048, 2)])
def test_log_every_auto_records_at_most_about_ten_batch_points_per_epoch_and_at_least_one(
        tiny_cfg, batch: int, every: int) -> None:
    result = fit(tiny_cfg("trainer.epochs=2", "trainer.log_every=auto", f"trainer.batch_size={batch}"))
    steps_per_epoch = math.ceil(3700 / batch)  # 232 at 16, 15 at 256, 2 at 2048
    assert [s["step"] for s in result.steps] == list(range(every, 2 * steps_per_epoch + 1, every))
    per_epoch = [sum(1 for s in result.steps if s["epoch"] == e) for e in (1, 2)]
    assert all(1 <= n <= 10 for n in per_epoch), per_epoch


def test_same_config_and_seed_give_identical_metrics(tiny_cfg) -> None:
    cfg = tiny_cfg("optimizer=adam_to_sgd", "optimizer.policy=fixed", "optimizer.switch_epoch=1",
                   "schedule=cosine", "model.dropout=0.2")
    a, b = fit(cfg), fit(cfg)
    assert _untimed(a.history) == _untimed(b.history)
    assert a.final == b.final and a.steps == b.steps
    c = fit(tiny_cfg("optimizer=adam_to_sgd", "optimizer.policy=fixed", "optimizer.switch_epoch=1",
                     "schedule=cosine", "model.dropout=0.2", "trainer.seed=1"))
    assert _untimed(c.history) != _untimed(a.history)


class _Interrupt(Callback):
    def __init__(self, after_epoch: int) -> None:
        self.after_epoch = after_epoch

    def on_epoch_end(self, run: RunInfo, epoch: int, metrics: Mapping[str, float]) -> None:
        if epoch == self.after_epoch:
            raise KeyboardInterrupt


@pytest.mark.parametrize("opt", ["adam_to_sgd", "momentum"])
def test_interrupted_then_resumed_run_matches_uninterrupted(tiny_cfg, tmp_path: Path,
                                                            opt: str) -> None:
    common = [f"optimizer={opt}", "schedule=onecycle", "schedule.warmup_epochs=0.5",
              "trainer.epochs=4", "trainer.checkpoint=every_epoch", "model.dropout=0.1"]
    if opt == "adam_to_sgd":
        common += ["optimizer.policy=fixed", "optimizer.switch_epoch=3"]
    full = fit(tiny_cfg(*common), output_dir=tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_cfg(*common), [_Interrupt(2)], output_dir=tmp_path / "cut")
    assert json.loads((tmp_path / "cut" / "history.json").read_text())["status"] == "interrupted"
    resumed = fit(tiny_cfg(*common, f"trainer.resume={tmp_path / 'cut/checkpoints/last.pt'}"),
                  output_dir=tmp_path / "resumed")
    assert _untimed(resumed.history) == _untimed(full.history)
    assert resumed.final == full.final and resumed.steps == full.steps


def test_resume_rejects_a_different_config(tiny_cfg, tmp_path: Path) -> None:
    from trainer.errors import UserError

    fit(tiny_cfg("trainer.checkpoint=every_epoch"), output_dir=tmp_path / "a")
    ckpt = tmp_path / "a/checkpoints/last.pt"
    with pytest.raises(UserError, match=r"optimizer\.lr"):
        fit(tiny_cfg("optimizer.lr=0.5", f"trainer.resume={ckpt}"), output_dir=tmp_path / "b")
    with pytest.raises(UserError, match="no checkpoint file"):
        fit(tiny_cfg(f"trainer.resume={tmp_path / 'missing.pt'}"))


def test_checkpoint_modes(tiny_cfg, tmp_path: Path) -> None:
    for mode, files in (("every_epoch", {"best.pt", "last.pt"}), ("last", {"last.pt"}),
                        ("best", {"best.pt"}), ("never", set())):
        out = tmp_path / mode
        fit(tiny_cfg(f"trainer.checkpoint={mode}"), output_dir=out)
        found = {p.name for p in (out / "checkpoints").glob("*.pt")} if files else set()
        assert found == files
        assert not (out / "checkpoints").exists() or files


def test_checkpoint_every_s_skips_epochs_until_the_interval_has_passed(tiny_cfg, tmp_path: Path) -> None:
    """Epochs of milliseconds: with a 1-hour interval no last.pt is written; with 0, the last
    epoch's is there and resumes at the end (the interval does not change what is saved)."""
    common = ("trainer.checkpoint=last", "trainer.epochs=3")
    fit(tiny_cfg(*common, "trainer.checkpoint_every_s=3600"), output_dir=tmp_path / "rare")
    assert not (tmp_path / "rare/checkpoints/last.pt").exists()
    fit(tiny_cfg(*common, "trainer.checkpoint_every_s=0"), output_dir=tmp_path / "each")
    from trainer import checkpoint

    assert checkpoint.load(tmp_path / "each/checkpoints/last.pt")["epoch"] == 3


def test_nan_loss_is_a_diverged_result_not_a_crash(tiny_cfg) -> None:
    result = fit(tiny_cfg("optimizer=sgd", "optimizer.lr=1e12", "trainer.log_every=1"))
    assert result.status == "diverged"
    assert "non-finite" in (result.stop_reason or "")
    assert len(result.history) == 1 and math.isnan(result.history[0]["val/acc"])


class _StopAfter(Callback):
    def on_epoch_end(self, run: RunInfo, epoch: int, metrics: Mapping[str, float]) -> None:
        if epoch == 1:
            run.request_stop("pruned at epoch 1")


def test_callback_can_stop_the_run(tiny_cfg) -> None:
    seen: list[str] = []

    class Recorder(Callback):
        def on_fit_start(self, run: RunInfo) -> None:
            seen.append("start")

        def on_step(self, run: RunInfo, step: int, metrics: Mapping[str, float]) -> None:
            seen.append("step")

        def on_fit_end(self, run: RunInfo, result) -> None:
            seen.append(f"end:{result.status}")

    result = fit(tiny_cfg("trainer.epochs=5"), [_StopAfter(), Recorder()])
    assert result.status == "stopped" and result.stop_reason == "pruned at epoch 1"
    assert len(result.history) == 1
    assert seen[0] == "start" and seen[-1] == "end:stopped" and "step" in seen


def test_adam_to_sgd_reports_switch(tiny_cfg) -> None:
    result = fit(tiny_cfg("optimizer=adam_to_sgd", "optimizer.policy=fixed",
                          "optimizer.switch_epoch=1", "optimizer.sgd_lr=0.05", "trainer.log_every=1"))
    steps_per_epoch = math.ceil(3700 / 256)  # 5000 - 1000 test - 300 val
    assert result.final["switch/step"] == steps_per_epoch
    assert result.final["switch/epoch"] == 1.0
    assert result.final["switch/lr"] == pytest.approx(0.05)
    assert result.final["switch/lr_max"] == pytest.approx(0.05)  # constant schedule
    assert result.history[1]["lr"] == pytest.approx(0.05)  # epoch 2 runs SGD at sgd_lr
    # per step: the rate each step applied; the switching step itself is still Adam
    lrs = {s["step"]: s["batch/lr"] for s in result.steps}
    assert lrs[steps_per_epoch] == pytest.approx(1e-3)
    assert lrs[steps_per_epoch + 1] == pytest.approx(0.05)


def test_adam_to_sgd_switch_at_is_a_share_of_the_run(tiny_cfg) -> None:
    steps_per_epoch = math.ceil(3700 / 256)
    for epochs in (2, 4):
        result = fit(tiny_cfg("optimizer=adam_to_sgd", "optimizer.policy=fixed",
                              "optimizer.switch_at=0.25", f"trainer.epochs={epochs}",
                              "schedule=cosine"))
        assert result.final["switch/step"] == round(0.25 * epochs * steps_per_epoch)
        # a cosine schedule lowers the SGD rate after the switch: the largest is the first
        assert result.final["switch/lr_max"] <= result.final["switch/lr"] * (1 + 1e-9)


def test_trainer_does_not_import_optuna_or_mlflow() -> None:
    code = ("import sys, trainer, trainer.loop, trainer.console, trainer.__main__; "
            "assert 'optuna' not in sys.modules and 'mlflow' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.slow
def test_cli_trains_adam_to_sgd_cosine_on_mnist_5k(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "trainer", "optimizer=adam_to_sgd", "schedule=cosine",
         "dataset=mnist_5k", "trainer.epochs=2", f"hydra.run.dir={tmp_path / 'out'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "val/acc" in proc.stdout and "completed" in proc.stdout
    doc = json.loads((tmp_path / "out" / "history.json").read_text())
    assert doc["status"] == "completed" and len(doc["epochs"]) == 2
    assert doc["final"]["test/acc"] > 0.8

"""A user's model, data and loss by `_target_`: both data paths, regression, old configs."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.errors import ConfigError
from trainer.loop import fit
from trainer.validation import load_config, validate

PROJECT = Path(__file__).parents[1] / "fixtures" / "user_project"
BASE = ["trainer.epochs=3", "trainer.batch_size=32", "trainer.progress=false", "trainer.threads=1",
        "trainer.checkpoint=never"]


@pytest.fixture(autouse=True)
def _user_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(PROJECT))


def _user(tmp_path: Path, *overrides: str, dataset: str = "userpkg.blobs", model: str = "userpkg.Net"):
    """A config whose model and dataset sections are the user's alone (no bundled keys)."""
    cfg = validate(load_config([*BASE, f"trainer.output_dir={tmp_path}", *overrides]))
    cfg["model"] = {"_target_": model, "name": "user_net"}
    cfg["dataset"] = {"_target_": dataset, "name": "user_data", "val_size": 0.2}
    return cfg


def test_arrays_of_any_shape_train_in_memory_with_val_carved_and_no_test(tmp_path: Path) -> None:
    result = fit(_user(tmp_path, "trainer.epochs=6", "optimizer.lr=0.01"), output_dir=tmp_path)
    assert result.status == "completed"
    assert result.final["data/train_size"] == 240 and result.final["data/val_size"] == 60
    assert "test/acc" not in result.final and "test/loss" not in result.final  # no test split: none
    assert result.final["best/val_acc"] > 0.8  # the clusters are separable
    assert all(math.isfinite(h["val/acc"]) for h in result.history)


def test_the_model_gets_in_shape_and_num_outputs_only_where_it_takes_them(tmp_path: Path) -> None:
    result = fit(_user(tmp_path, model="userpkg.OnlyOutputs"), output_dir=tmp_path)
    assert result.status == "completed" and result.final["best/val_acc"] > 0.5


def test_regression_has_losses_only_and_picks_the_lowest_val_loss(tmp_path: Path) -> None:
    cfg = _user(tmp_path, "trainer.epochs=6", dataset="userpkg.line")
    cfg["dataset"]["task"] = "regression"
    result = fit(cfg, output_dir=tmp_path)
    assert result.status == "completed"
    assert not any("acc" in k for h in result.history for k in h), result.history[0]
    assert set(result.final) >= {"best/val_loss", "best/epoch", "test/loss"}
    assert "best/val_acc" not in result.final and "test/acc" not in result.final
    losses = [h["val/loss"] for h in result.history]
    assert result.final["best/val_loss"] == min(losses)
    assert result.final["best/epoch"] == losses.index(min(losses)) + 1
    assert losses[-1] < losses[0]  # it learns the line


def test_a_user_loss_by_target_is_used(tmp_path: Path) -> None:
    cfg = _user(tmp_path, dataset="userpkg.line")
    cfg["dataset"]["task"] = "regression"
    mse = fit(cfg, output_dir=tmp_path / "mse")
    cfg["trainer"]["loss"] = {"_target_": "torch.nn.L1Loss"}
    l1 = fit(cfg, output_dir=tmp_path / "l1")
    assert l1.history[0]["train/loss"] != mse.history[0]["train/loss"]
    cfg["trainer"]["loss"] = {"_target_": "torch.nn.L1Loss", "bogus": 1}
    with pytest.raises(ConfigError, match=r"trainer.loss.bogus=1: not a parameter of torch.nn.L1Loss"):
        validate(cfg)


def test_the_dataloader_path_is_seeded_and_resumes(tmp_path: Path) -> None:
    from trainer.data.prepare import uses_loader

    cfg = _user(tmp_path, "trainer.epochs=4", dataset="userpkg.tensor_datasets")
    cfg["dataset"]["loader"] = {"num_workers": 1, "pin_memory": True, "persistent_workers": False}
    assert uses_loader(validate(cfg)["dataset"])
    a = fit(cfg, output_dir=tmp_path / "a")
    b = fit(cfg, output_dir=tmp_path / "b")  # same process: the cached data changes nothing
    assert a.status == "completed"
    assert [h["train/loss"] for h in a.history] == [h["train/loss"] for h in b.history]
    assert a.final == b.final and a.final["data/val_size"] == 48
    # stopped after 2 epochs and resumed: the same as the straight run, bit for bit
    cfg["trainer"]["checkpoint"] = "every_epoch"
    cfg["trainer"]["epochs"] = 2
    fit(cfg, output_dir=tmp_path / "c")
    cfg["trainer"]["epochs"] = 4
    cfg["trainer"]["resume"] = str(tmp_path / "c" / "checkpoints" / "last.pt")
    resumed = fit(cfg, output_dir=tmp_path / "c")
    assert [h["val/loss"] for h in resumed.history] == [h["val/loss"] for h in a.history]


def test_a_config_of_an_earlier_release_still_validates_as_it_ran() -> None:
    today = validate(load_config(["model=cnn", "dataset=mnist"]))
    old = {**today, "model": {k: v for k, v in today["model"].items() if k != "_target_"},
           "dataset": {k: v for k, v in today["dataset"].items()
                       if k in ("name", "data_root", "download", "val_size", "split_seed", "augment",
                                "crop_padding", "hflip", "mean", "std")},
           "trainer": {k: v for k, v in today["trainer"].items() if k != "loss"}}
    assert validate(old) == today


def test_python_m_trainer_takes_the_config_dir_and_the_users_file_wins(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "trainer", "--config-dir", str(PROJECT / "conf"), "dataset=blobs",
            "model=mlp", "trainer.epochs=1", "trainer.progress=false", f"hydra.run.dir={tmp_path}"]
    run = subprocess.run(args, cwd=PROJECT, text=True, capture_output=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "model mlp: 83 parameters" in run.stdout + run.stderr  # the user's mlp (hidden 8), not ours
    bad = subprocess.run([*args, "+model.widht=3"], cwd=PROJECT, text=True, capture_output=True,
                         timeout=300)
    assert bad.returncode == 2
    assert bad.stderr.strip() == ("error: model.widht=3: not a parameter of userpkg.Net; it takes: "
                                  "hidden")

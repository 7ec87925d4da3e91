"""Every config group option composes and validates; every bad input fails in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trainer.data.prepare import list_datasets
from trainer.errors import ConfigError, UserError
from trainer.models import list_models
from trainer.optim import list_optimizers
from trainer.optim.schedules import list_schedules
from trainer.validation import compose, load_config

CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.mark.parametrize(("group", "names"), [
    ("dataset", list_datasets()), ("model", list_models()),
    ("optimizer", list_optimizers()), ("schedule", list_schedules()),
])
def test_registry_and_conf_group_agree(group: str, names: list[str]) -> None:
    files = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
    assert files == names


@pytest.mark.parametrize("opt", list_optimizers())
@pytest.mark.parametrize("sched", list_schedules())
def test_every_optimizer_schedule_pair_validates(opt: str, sched: str) -> None:
    cfg = load_config([f"optimizer={opt}", f"schedule={sched}"])
    assert cfg.optimizer.name == opt and cfg.schedule.name == sched


def test_design_names_are_all_present() -> None:
    assert set(list_optimizers()) == {"sgd", "momentum", "nesterov", "rmsprop", "adam",
                                      "amsgrad", "adamw", "adam_to_sgd"}
    assert set(list_schedules()) == {"constant", "step", "exponential", "inverse_time",
                                     "cosine", "cyclic", "onecycle", "plateau"}
    assert set(list_datasets()) == {"mnist", "fashion_mnist", "cifar10", "mnist_5k"}
    assert set(list_models()) == {"mlp", "cnn", "resnet"}


BAD = [
    (["optimizer=foo"], "optimizer", "allowed: adam, adam_to_sgd"),
    (["schedule=linear"], "schedule", "allowed: constant, cosine"),
    (["dataset=imagenet"], "dataset", "allowed: cifar10"),
    (["trainer.foo=1"], "trainer.foo", "unknown key"),
    (["optimizer.lr=-1"], "optimizer.lr", "> 0"),
    (["optimizer.lr=0"], "optimizer.lr", "> 0"),
    (["trainer.batch_size=0"], "trainer.batch_size", "in [1, 16777216]"),
    (["trainer.batch_size=-3"], "trainer.batch_size", "in [1, 16777216]"),
    (["trainer.epochs=0"], "trainer.epochs", "in [1, 100000]"),
    (["trainer.epochs=2.5"], "trainer.epochs", "integer"),
    (["optimizer=adam", "optimizer.betas=[0.9,1.0]"], "optimizer.betas", "[0, 1)"),
    (["optimizer=adamw", "optimizer.betas=[-0.1,0.9]"], "optimizer.betas", "[0, 1)"),
    (["optimizer=adam", "optimizer.betas=[0.9]"], "optimizer.betas", "[beta1, beta2]"),
    (["optimizer=adam", "optimizer.eps=0"], "optimizer.eps", "> 0"),
    (["optimizer=momentum", "optimizer.momentum=1.5"], "optimizer.momentum", "[0, 1)"),
    (["optimizer=rmsprop", "optimizer.alpha=1"], "optimizer.alpha", "[0, 1)"),
    (["optimizer=sgd", "optimizer.weight_decay=-0.1"], "optimizer.weight_decay", ">= 0"),
    (["+optimizer.momentum=0.9"], "optimizer.momentum", "not a setting of optimizer adam"),
    (["optimizer=adam_to_sgd", "optimizer.policy=sometimes"], "optimizer.policy", "fixed, swats"),
    (["optimizer=adam_to_sgd", "optimizer.policy=fixed", "optimizer.switch_at=null"],
     "optimizer.switch_at", "policy=fixed needs"),
    (["optimizer=adam_to_sgd", "optimizer.switch_at=1.0"], "optimizer.switch_at", "(0, 1)"),
    (["optimizer=adam_to_sgd", "optimizer.swats_tolerance=loose"], "optimizer.swats_tolerance",
     "relative, absolute"),
    (["optimizer=adam_to_sgd", "optimizer.swats_eps=0"], "optimizer.swats_eps", "> 0"),
    (["schedule=step", "schedule.gamma=0"], "schedule.gamma", "(0, 1]"),
    (["schedule=step", "schedule.step_size=0"], "schedule.step_size", ">= 1"),
    (["schedule=exponential", "schedule.gamma=1.5"], "schedule.gamma", "(0, 1]"),
    (["schedule=cyclic", "schedule.base_lr_ratio=2"], "schedule.base_lr_ratio", "(0, 1)"),
    (["schedule=onecycle", "schedule.pct_start=1.0"], "schedule.pct_start", "(0, 1)"),
    (["schedule=plateau", "schedule.factor=1.0"], "schedule.factor", "(0, 1)"),
    (["schedule=cosine", "schedule.warmup_epochs=-1"], "schedule.warmup_epochs", ">= 0"),
    (["schedule=cosine", "schedule.warmup_epochs=5", "trainer.epochs=5"],
     "schedule.warmup_epochs", "< trainer.epochs (5) for schedule cosine: warmup must leave epochs to "
                               "schedule (e.g. schedule.warmup_epochs=2.5)"),
    (["model.init=orthogonal"], "model.init", "he_normal"),
    (["model=resnet", "model.blocks=0"], "model.blocks", ">= 1"),
    (["trainer.device=tpu"], "trainer.device", "auto, cpu, cuda"),
    (["trainer.checkpoint=sometimes"], "trainer.checkpoint", "every_epoch"),
    (["trainer.precision=fp8"], "trainer.precision", "bf16"),
    (["trainer.log_every=0"], "trainer.log_every", "auto or an integer >= 1"),
    (["trainer.log_every=often"], "trainer.log_every", "auto or an integer >= 1"),
    (["dataset.val_size=0"], "dataset.val_size", ">= 1"),
]


@pytest.mark.parametrize(("overrides", "key", "allowed"), BAD)
def test_bad_input_names_key_value_and_allowed(overrides: list[str], key: str,
                                              allowed: str) -> None:
    with pytest.raises(UserError) as info:
        load_config(overrides)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(key), message
    assert allowed in message, message
    if isinstance(info.value, ConfigError):
        assert info.value.key == key


def test_unknown_key_lists_allowed_keys() -> None:
    with pytest.raises(ConfigError, match="allowed keys of trainer: batch_size"):
        compose(["trainer.epoch=3"])


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trainer", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=120)


# the messages themselves are checked in-process above; here: the process, as a user runs it
@pytest.mark.parametrize("args", [["optimizer=foo"], ["optimizer=adam", "optimizer.betas=[0.9,1.5]"]])
def test_cli_rejects_with_one_line_and_exit_2(args: list[str], tmp_path: Path) -> None:
    proc = _cli(*args, cwd=tmp_path)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "outputs").exists()  # nothing started

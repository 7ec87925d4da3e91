"""Training and evaluation reduce a loss the same way for any number of targets: the mean
over every value, batches weighted by their size. A regression with k targets once reported
validation and test losses k times its training loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from trainer.loop import evaluate, fit
from trainer.tasks import REGRESSION, Loss

from .test_user_targets import _user, _user_package  # noqa: F401  (puts userpkg on the path)

HUBER = {"_target_": "torch.nn.HuberLoss", "delta": 0.5}


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("spec", [None, HUBER], ids=["mse", "user-loss"])
def test_the_evaluated_loss_is_the_training_mean_over_the_same_data(k: int, spec: dict | None) -> None:
    torch.manual_seed(k)
    x, y = torch.randn(100, 5), torch.randn(100, k)
    model = nn.Linear(5, k)
    loss = Loss(REGRESSION, spec)
    batches = [(x[i:i + 32], y[i:i + 32]) for i in range(0, 100, 32)]  # the last one is short
    evaluated, _ = evaluate(model, batches, 100, torch.device("cpu"), loss, REGRESSION)
    with torch.no_grad():
        whole = float(loss.mean(model(x), y))  # what training computes on one batch of all of it
    assert evaluated == pytest.approx(whole, rel=1e-6)
    # the old reduction (a sum over targets per example) is k times that: it must not come back
    with torch.no_grad():
        summed = float(nn.functional.mse_loss(model(x), y, reduction="sum")) / 100
    if spec is None and k > 1:
        assert evaluated == pytest.approx(summed / k, rel=1e-6)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_the_gap_is_near_zero_when_validation_is_the_training_split(tmp_path: Path, k: int) -> None:
    """A learning rate too small to move the weights: the running training loss of an epoch
    and the validation loss after it measure the same model on the same data."""
    cfg = _user(tmp_path, "trainer.epochs=2", "optimizer=sgd", "optimizer.lr=1e-9",
                dataset="userpkg.targets_k")
    cfg["dataset"].update(task="regression", k=k, same_val=True, standardize=False)
    result = fit(cfg, output_dir=tmp_path)
    assert result.status == "completed"
    for epoch in result.history:
        assert epoch["val/loss"] == pytest.approx(epoch["train/loss"], rel=1e-4)
        assert abs(epoch["gap/loss"]) < 1e-4 * epoch["train/loss"]
    # the test split (the first 64 training examples): the same reduction, a comparable value
    assert result.final["test/loss"] == pytest.approx(result.history[-1]["val/loss"], rel=0.5)

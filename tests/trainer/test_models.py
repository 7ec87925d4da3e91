"""Models build for both input shapes; every init scheme does what its name says."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trainer.models import INITS, build_model, list_models

BASE = {
    "mlp": {"depth": 2, "width": 64, "activation": "relu", "dropout": 0.1},
    "cnn": {"channels": [8, 16], "hidden": 32, "activation": "relu", "dropout": 0.0},
    "resnet": {"blocks": 1, "width": 8},
}


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_models_map_images_to_class_logits(name: str, shape: tuple[int, ...]) -> None:
    model = build_model({"_target_": f"trainer.models.{name}", **BASE[name], "init": "default",
                         "init_scale": 0.05}, shape, 10)
    out = model(torch.randn(4, *shape))
    assert out.shape == (4, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_resnet20_has_the_published_depth() -> None:
    model = build_model({"_target_": "trainer.models.resnet", "blocks": 3, "width": 16, "init": "he_normal",
                         "init_scale": 0.05}, (3, 32, 32), 10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(convs) + len(linears) == 20
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


@pytest.mark.parametrize("init", INITS)
def test_init_schemes(init: str) -> None:
    torch.manual_seed(0)
    model = build_model({"_target_": "trainer.models.mlp", "depth": 1, "width": 400, "activation": "relu",
                         "dropout": 0.0, "init": init, "init_scale": 0.05}, (1, 28, 28), 10)
    layer = model[1]
    w, fan_in, fan_out = layer.weight.detach(), 784, 400
    expected_std = {
        "uniform": 0.05 / math.sqrt(3), "normal": 0.05,
        "xavier_uniform": math.sqrt(2 / (fan_in + fan_out)),
        "xavier_normal": math.sqrt(2 / (fan_in + fan_out)),
        "he_uniform": math.sqrt(2 / fan_in), "he_normal": math.sqrt(2 / fan_in),
        "default": 1 / math.sqrt(3 * fan_in),  # PyTorch's kaiming_uniform(a=sqrt(5))
    }[init]
    assert float(w.std()) == pytest.approx(expected_std, rel=0.05)
    if init == "uniform":
        assert float(w.abs().max()) <= 0.05
    if init != "default":
        assert torch.count_nonzero(layer.bias) == 0

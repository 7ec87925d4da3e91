"""Models of the comparison (MLP, LeNet-style CNN, CIFAR ResNet) and weight inits."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trainer.registry import Registry
from trainer.spec import Param, count, one_of, positive, unit

INITS = ("default", "uniform", "normal", "xavier_uniform", "xavier_normal", "he_uniform",
         "he_normal")
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU,
}


@dataclass(frozen=True)
class ModelInfo:
    name: str
    build: Callable[[Mapping[str, Any], tuple[int, ...], int], nn.Module]
    params: Mapping[str, Param]


MODELS: Registry[ModelInfo] = Registry("model.name")
_INIT = {"init": one_of(*INITS), "init_scale": positive("bound/std for uniform/normal")}


def _mlp(cfg: Mapping[str, Any], in_shape: tuple[int, ...], classes: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    width_in = math.prod(in_shape)
    for _ in range(int(cfg["depth"])):
        layers += [nn.Linear(width_in, int(cfg["width"])), ACTIVATIONS[cfg["activation"]]()]
        if cfg["dropout"] > 0:
            layers.append(nn.Dropout(cfg["dropout"]))
        width_in = int(cfg["width"])
    layers.append(nn.Linear(width_in, classes))
    return nn.Sequential(*layers)


def _cnn(cfg: Mapping[str, Any], in_shape: tuple[int, ...], classes: int) -> nn.Module:
    c1, c2 = (int(c) for c in cfg["channels"])
    act = ACTIVATIONS[cfg["activation"]]
    features = nn.Sequential(
        nn.Conv2d(in_shape[0], c1, 5, padding=2), act(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 5), act(), nn.MaxPool2d(2),
        nn.Flatten(),
    )
    with torch.no_grad():
        flat = features(torch.zeros(1, *in_shape)).shape[1]
    head: list[nn.Module] = [nn.Linear(flat, int(cfg["hidden"])), act()]
    if cfg["dropout"] > 0:
        head.append(nn.Dropout(cfg["dropout"]))
    head.append(nn.Linear(int(cfg["hidden"]), classes))
    return nn.Sequential(features, *head)


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:  # projection shortcut (option B)
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 inputs: stages of width w, 2w, 4w; n blocks each."""

    def __init__(self, in_channels: int, classes: int, blocks: int, width: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU())
        stages: list[nn.Module] = []
        c_in = width
        for i, c_out in enumerate((width, 2 * width, 4 * width)):
            for j in range(blocks):
                stages.append(_BasicBlock(c_in, c_out, 2 if (i > 0 and j == 0) else 1))
                c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def _resnet(cfg: Mapping[str, Any], in_shape: tuple[int, ...], classes: int) -> nn.Module:
    return CifarResNet(in_shape[0], classes, int(cfg["blocks"]), int(cfg["width"]))


_ACT = {"activation": one_of(*ACTIVATIONS), "dropout": unit()}
MODELS.register("mlp", ModelInfo("mlp", _mlp, {
    "depth": count(0), "width": count(1), **_ACT, **_INIT}))
MODELS.register("cnn", ModelInfo("cnn", _cnn, {
    "channels": Param("floats", doc="[c1, c2]"), "hidden": count(1), **_ACT, **_INIT}))
MODELS.register("resnet", ModelInfo("resnet", _resnet, {
    "blocks": count(1), "width": count(1), **_INIT}))


def list_models() -> list[str]:
    return MODELS.names()


def init_weights(model: nn.Module, scheme: str, scale: float) -> None:
    """Re-initialise Linear/Conv weights (biases to zero); `default` keeps PyTorch's."""
    if scheme == "default":
        return
    for module in model.modules():
        if not isinstance(module, nn.Linear | nn.Conv2d):
            continue
        w = module.weight
        if scheme == "uniform":
            nn.init.uniform_(w, -scale, scale)
        elif scheme == "normal":
            nn.init.normal_(w, 0.0, scale)
        elif scheme == "xavier_uniform":
            nn.init.xavier_uniform_(w)
        elif scheme == "xavier_normal":
            nn.init.xavier_normal_(w)
        elif scheme == "he_uniform":
            nn.init.kaiming_uniform_(w, nonlinearity="relu")
        elif scheme == "he_normal":
            nn.init.kaiming_normal_(w, nonlinearity="relu")
        else:  # validated at config load; kept for direct callers
            raise ValueError(f"init must be one of {INITS}, but got {scheme=}.")
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def build_model(cfg: Mapping[str, Any], in_shape: tuple[int, ...], classes: int) -> nn.Module:
    model = MODELS.get(cfg["name"]).build(cfg, in_shape, classes)
    init_weights(model, cfg["init"], float(cfg["init_scale"]))
    return model

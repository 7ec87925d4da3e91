"""The bundled models (MLP, LeNet-style CNN, CIFAR ResNet), weight inits, and `build_model`.

Every model, bundled or the user's, is a config with `_target_` built the same way
(`trainer.config.targets.build`): the callable gets the config's keyword arguments and, where its
signature has them, `in_shape` (one example's shape) and `num_outputs`. The bundled ones
also have their keys range-checked (`BUNDLED`); a user's are checked against its signature.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from trainer.config.spec import Param, check_section, count, one_of, positive, unit
from trainer.errors import ConfigError
from trainer.startup import lazy_module

if TYPE_CHECKING:
    import torch
    from torch import nn
else:  # validating a model section needs its keys, not torch
    torch = lazy_module("torch")
    nn = lazy_module("torch.nn")

INITS = ("default", "uniform", "normal", "xavier_uniform", "xavier_normal", "he_uniform",
         "he_normal")
ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "gelu": "GELU"}  # torch.nn's


def activation_layer(name: str) -> Callable[[], nn.Module]:
    return getattr(nn, ACTIVATIONS[name])


RESERVED = ("name",)  # model keys the trainer reads; the rest go to the callable
OFFERED = ("in_shape", "num_outputs")  # what the trainer passes where the signature takes it
_INIT = {"init": one_of(*INITS, doc="weight initialisation of Linear and Conv layers (biases "
                        "zero); default: PyTorch's"),
         "init_scale": positive("the bound of init=uniform, the std of init=normal")}


def mlp(in_shape: tuple[int, ...], num_outputs: int, depth: int = 1, width: int = 256,
        activation: str = "relu", dropout: float = 0.0, init: str = "default",
        init_scale: float = 0.05) -> nn.Module:
    """input -> depth x (Linear(width) + activation [+ dropout]) -> num_outputs."""
    layers: list[nn.Module] = [nn.Flatten()]
    width_in = math.prod(in_shape)
    for _ in range(int(depth)):
        layers += [nn.Linear(width_in, int(width)), activation_layer(activation)()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width_in = int(width)
    layers.append(nn.Linear(width_in, num_outputs))
    return _initialised(nn.Sequential(*layers), init, init_scale)


def cnn(in_shape: tuple[int, ...], num_outputs: int, channels: tuple[int, int] = (32, 64),
        hidden: int = 256, activation: str = "relu", dropout: float = 0.0, init: str = "default",
        init_scale: float = 0.05) -> nn.Module:
    """LeNet-style: conv5x5(c1)-pool-conv5x5(c2)-pool-fc(hidden)-fc(num_outputs)."""
    if len(channels) != 2:
        raise ValueError("channels must be two channel counts [c1, c2]")
    c1, c2 = (int(c) for c in channels)
    act = activation_layer(activation)
    features = nn.Sequential(
        nn.Conv2d(in_shape[0], c1, 5, padding=2), act(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 5), act(), nn.MaxPool2d(2),
        nn.Flatten(),
    )
    with torch.no_grad():
        flat = features(torch.zeros(1, *in_shape)).shape[1]
    head: list[nn.Module] = [nn.Linear(flat, int(hidden)), act()]
    if dropout > 0:
        head.append(nn.Dropout(dropout))
    head.append(nn.Linear(int(hidden), num_outputs))
    return _initialised(nn.Sequential(features, *head), init, init_scale)


def resnet(in_shape: tuple[int, ...], num_outputs: int, blocks: int = 3, width: int = 16,
           init: str = "he_normal", init_scale: float = 0.05) -> nn.Module:
    """CIFAR ResNet-(6·blocks+2) (He et al. 2016); blocks=3 is ResNet-20."""
    from trainer.resnet import CifarResNet

    return _initialised(CifarResNet(in_shape[0], num_outputs, int(blocks), int(width)), init,
                        init_scale)


def _initialised(model: nn.Module, init: str, scale: float) -> nn.Module:
    init_weights(model, init, float(scale))
    return model


_ACT = {"activation": one_of(*ACTIVATIONS, doc="the nonlinearity after each hidden layer"),
        "dropout": unit("dropout probability after each hidden layer (0: none)")}
# The range checks of the bundled models' keys, by `_target_` (their option names are
# `trainer.config.legacy.MODEL_TARGETS`, which configs written before `_target_` name them by).
BUNDLED: dict[str, Mapping[str, Param]] = {
    "trainer.models.mlp": {"depth": count(0, "hidden layers"), "width": count(1, "units per hidden layer"),
                           **_ACT, **_INIT},
    "trainer.models.cnn": {"channels": Param("floats", doc="[c1, c2]: the two conv layers' channels"),
                           "hidden": count(1, "units of the fully connected layer"),
                           **_ACT, **_INIT},
    "trainer.models.resnet": {"blocks": count(1, "basic blocks per stage (3: ResNet-20)"),
                              "width": count(1, "channels of the first stage (doubled per stage)"),
                              **_INIT},
}


def list_models() -> list[str]:
    """The bundled model options (conf/model/)."""
    from trainer.config.legacy import MODEL_TARGETS

    return sorted(MODEL_TARGETS)


def check_model(m: Mapping[str, Any]) -> None:
    """Validate a model section: a bundled model's keys and ranges, a user's signature."""
    from trainer.config.targets import TARGET, check_call

    target = m.get(TARGET)
    if target in BUNDLED:
        check_section("model", {k: v for k, v in m.items() if k != TARGET}, BUNDLED[target],
                      owner=f"model {m.get('name', target)}")
        if "channels" in m and len(m["channels"]) != 2:
            raise ConfigError("model.channels", list(m["channels"]),
                              "must be two channel counts [c1, c2]")
    check_call("model", m, RESERVED, OFFERED)


def model_params(m: Mapping[str, Any]) -> Mapping[str, Param]:
    """What each key of a model section may hold (a user model's keys: anything)."""
    from trainer.config.targets import TARGET

    target = m.get(TARGET)
    if target in BUNDLED:
        return BUNDLED[target]
    return {k: Param("any") for k in m if k not in (TARGET, *RESERVED)}


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


def build_model(cfg: Mapping[str, Any], in_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    """The model section's `_target_` called with its keys, `in_shape` and `num_outputs`."""
    from trainer.config.targets import TARGET, build

    model = build("model", cfg, RESERVED, {"in_shape": tuple(in_shape), "num_outputs": num_outputs})
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model.{TARGET}", cfg.get(TARGET),
                          f"returned a {type(model).__name__}; expected a torch.nn.Module")
    return model

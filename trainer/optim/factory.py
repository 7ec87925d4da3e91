"""Registry of optimizers: config name -> torch class, pinned kwargs, accepted keys.

Variants are a class plus pinned arguments (``amsgrad`` = Adam with
``amsgrad=True``), as in timm's optimizer factory. Unlike timm, a key that the
chosen optimizer does not take is an error, never silently dropped: in a sweep
that would tune a knob that does nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trainer.config.registry import Registry
from trainer.config.spec import Param, check_section, count, flag, nonneg, one_of, positive, unit
from trainer.errors import ConfigError

if TYPE_CHECKING:
    from torch.optim import Optimizer

POLICIES = ("fixed", "swats")  # AdamToSGD's switch policies
TOLERANCES = ("relative", "absolute")  # and its SWATS tolerance modes
ADAM_TO_SGD = "trainer.optim.adam_to_sgd.AdamToSGD"


@dataclass(frozen=True)
class OptimInfo:
    """How to build one named optimizer and which config keys it accepts."""

    name: str
    cls_path: str  # "module.Class": imported when one is built, so validation needs no torch
    params: Mapping[str, Param]
    pinned: Mapping[str, Any] = field(default_factory=dict)
    doc: str = ""

    @property
    def cls(self) -> type[Optimizer]:
        module, _, name = self.cls_path.rpartition(".")
        return getattr(importlib.import_module(module), name)


OPTIMIZERS: Registry[OptimInfo] = Registry("optimizer.name")

_IMPL = {"maximize": flag("maximize the objective instead of minimising it (torch.optim)"),
         "foreach": flag("torch.optim's multi-tensor kernels; null: torch decides", nullable=True)}
_LR = {"lr": positive("learning rate")}
_WD = {"weight_decay": nonneg("L2 penalty added to the gradient")}
_ADAM = {
    **_LR,
    "betas": Param("betas", doc="[beta1, beta2]: decay rates of the first and second moment "
                   "estimates"),
    "eps": positive("added to the denominator for numerical stability"),
    "weight_decay": nonneg("L2 penalty added to the gradient (adamw: decoupled decay)"),
}


def _register(info: OptimInfo) -> None:
    OPTIMIZERS.register(info.name, info)


_register(OptimInfo("sgd", "torch.optim.SGD", {**_LR, **_WD, **_IMPL},
                    {"momentum": 0.0}, "plain SGD"))
_register(OptimInfo("momentum", "torch.optim.SGD",
                    {**_LR, "momentum": unit("momentum factor"),
                     "dampening": unit("dampening of the momentum buffer", high_open=False),
                     **_WD, **_IMPL},
                    {"nesterov": False}, "SGD with heavy-ball momentum"))
_register(OptimInfo("nesterov", "torch.optim.SGD",
                    {**_LR, "momentum": Param("float", low=0.0, high=1.0, low_open=True,
                                              high_open=True, doc="momentum factor"),
                     **_WD, **_IMPL},
                    {"nesterov": True, "dampening": 0.0}, "SGD with Nesterov momentum"))
_register(OptimInfo("rmsprop", "torch.optim.RMSprop",
                    {**_LR, "alpha": unit("smoothing constant of the squared-gradient average"),
                     "eps": positive("added to the denominator for numerical stability"), **_WD,
                     "momentum": unit("momentum factor"),
                     "centered": flag("normalise by the gradient's estimated variance"), **_IMPL},
                    {}, "RMSprop"))
_register(OptimInfo("adam", "torch.optim.Adam", {**_ADAM, **_IMPL}, {"amsgrad": False}, "Adam"))
_register(OptimInfo("amsgrad", "torch.optim.Adam", {**_ADAM, **_IMPL}, {"amsgrad": True},
                    "AMSGrad"))
_register(OptimInfo("adamw", "torch.optim.AdamW",
                    {**_ADAM, "amsgrad": flag("the AMSGrad variant"), **_IMPL}, {},
                    "AdamW (decoupled weight decay)"))
_register(OptimInfo(
    "adam_to_sgd", ADAM_TO_SGD,
    {
        **_ADAM,
        "policy": one_of(*POLICIES, doc="fixed: switch at a set point; swats: when the SWATS "
                         "estimate has converged"),
        "switch_at": Param("float", low=0.0, high=1.0, low_open=True, high_open=True, nullable=True,
                           doc="fraction of the run's optimizer steps spent in Adam"),
        "switch_epoch": count(1, "fixed: epochs of Adam (overrides switch_at)", nullable=True),
        "switch_step": count(1, "fixed: optimizer steps of Adam (overrides switch_epoch and "
                             "switch_at)", nullable=True),
        "sgd_lr": positive("fixed: the SGD learning rate; null: the SWATS estimate", nullable=True),
        "sgd_momentum": unit("SGD momentum after the switch; null: beta1", nullable=True),
        "sgd_dampening": Param("float", low=0.0, high=1.0, nullable=True,
                               doc="SGD dampening after the switch; null: sgd_momentum (SWATS)"),
        "sgd_nesterov": flag("Nesterov momentum after the switch"),
        "swats_eps": positive("swats: the switch tolerance (not Adam's eps)"),
        "swats_tolerance": one_of(*TOLERANCES, doc="relative: |estimate - gamma| < swats_eps x "
                                  "estimate; absolute: < swats_eps (the paper)"),
    },
    {}, "Adam, then SGD with momentum (fixed or SWATS switch)",
))


def list_optimizers() -> list[str]:
    return OPTIMIZERS.names()


def validate_optimizer(section: Mapping[str, Any]) -> None:
    """Check an ``optimizer`` config section, including cross-key rules."""
    info = OPTIMIZERS.get(section.get("name"))
    check_section("optimizer", section, info.params, owner=f"optimizer {info.name}")
    if info.name == "adam_to_sgd":
        if section["policy"] == "fixed" and all(
                section[k] is None for k in ("switch_at", "switch_epoch", "switch_step")):
            raise ConfigError("optimizer.switch_at", None,
                              "policy=fixed needs switch_at (fraction of the run), switch_epoch or "
                              "switch_step")
        mu = section["betas"][0] if section["sgd_momentum"] is None else section["sgd_momentum"]
        damp = mu if section["sgd_dampening"] is None else section["sgd_dampening"]
        if section["sgd_nesterov"] and (mu <= 0 or damp != 0):
            raise ConfigError("optimizer.sgd_nesterov", True,
                              "needs sgd_momentum > 0 and sgd_dampening=0")


def switch_step(section: Mapping[str, Any], *, steps_per_epoch: int, total_steps: int) -> int | None:
    """Adam steps before a fixed switch: ``switch_step``, else ``switch_epoch`` epochs, else
    ``switch_at`` x the run's total steps (rounded, at least 1, at most total - 1)."""
    if section.get("switch_step") is not None:
        return int(section["switch_step"])
    if section.get("switch_epoch") is not None:
        return int(section["switch_epoch"]) * steps_per_epoch
    if section.get("switch_at") is not None:
        return min(max(1, round(float(section["switch_at"]) * total_steps)), max(1, total_steps - 1))
    return None


def build_optimizer(section: Mapping[str, Any], params: Iterable[Any], *,
                    steps_per_epoch: int, total_steps: int | None = None) -> Optimizer:
    """Instantiate the optimizer named by ``section['name']`` (already validated).

    `total_steps` (the run's optimizer steps) places a fractional Adam->SGD switch.
    """
    info = OPTIMIZERS.get(section["name"])
    kwargs: dict[str, Any] = {k: v for k, v in section.items() if k != "name"}
    if "betas" in kwargs:
        kwargs["betas"] = tuple(float(b) for b in kwargs["betas"])
    if info.cls_path == ADAM_TO_SGD:
        step = switch_step(section, steps_per_epoch=steps_per_epoch,
                           total_steps=total_steps if total_steps is not None else steps_per_epoch)
        for key in ("switch_at", "switch_epoch", "switch_step"):
            kwargs.pop(key)
        kwargs["switch_step"] = step
    kwargs.update(info.pinned)
    return info.cls(params, **kwargs)


def effective_lr(optimizer: Optimizer) -> float:
    """The learning rate applied to the first parameter group right now."""
    effective = getattr(optimizer, "effective_lrs", None)  # AdamToSGD: its SGD phase's rate
    if effective is not None:
        return float(effective()[0])
    return float(optimizer.param_groups[0]["lr"])

"""Learning-rate schedules on torch.optim.lr_scheduler, with optional linear warmup.

`Schedule` hides when each scheduler is stepped: warmup and the `step`-interval
schedules (cosine, cyclic, onecycle) per batch; the `epoch`-interval ones (step,
exponential, inverse_time, plateau) at epoch end. The main scheduler is built
when warmup ends, so it sees the full base learning rate and the remaining
horizon. Schedules shape ``group["lr"]``; the Adam-to-SGD optimizer derives its
SGD rate from it, so a schedule keeps acting after the switch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trainer.config.registry import Registry
from trainer.config.spec import Param, count, flag, nonneg, one_of, positive, unit
from trainer.startup import lazy_module

if TYPE_CHECKING:
    from torch.optim import Optimizer
    from torch.optim import lr_scheduler as sched

    LRScheduler = sched.LRScheduler | sched.ReduceLROnPlateau
else:
    sched = lazy_module("torch.optim.lr_scheduler")  # validation needs the registry, not torch


@dataclass(frozen=True)
class Horizon:
    steps_per_epoch: int
    total_steps: int  # optimizer steps left for the main schedule (after warmup)


@dataclass(frozen=True)
class ScheduleInfo:
    name: str
    interval: str  # "epoch" | "step"
    params: Mapping[str, Param]
    build: Callable[[Optimizer, Mapping[str, Any], Horizon], LRScheduler]


class InverseTime:
    """lr factor 1 / (1 + decay * t) (a picklable LambdaLR callable)."""

    def __init__(self, decay: float) -> None:
        self.decay = decay

    def __call__(self, t: int) -> float:
        return 1.0 / (1.0 + self.decay * t)


def _base_lr(opt: Optimizer) -> float:
    return float(opt.param_groups[0]["lr"])


SCHEDULES: Registry[ScheduleInfo] = Registry("schedule.name")
_WARMUP = {"warmup_epochs": nonneg("linear warmup length in epochs (may be fractional), "
                                   "stepped per batch; the schedule starts after it"),
           "warmup_start_factor": Param("float", low=0.0, high=1.0, low_open=True,
                                        doc="warmup starts at lr x this factor")}
_GAMMA = "multiplies the rate at each step of the schedule"


def _register(name: str, interval: str, params: Mapping[str, Param],
              build: Callable[[Optimizer, Mapping[str, Any], Horizon], LRScheduler]) -> None:
    SCHEDULES.register(name, ScheduleInfo(name, interval, {**params, **_WARMUP}, build))


_register("constant", "epoch", {}, lambda o, c, h: sched.ConstantLR(o, factor=1.0, total_iters=0))
_register("step", "epoch", {"step_size": count(1, "epochs between decays"),
                           "gamma": Param("float", 0.0, 1.0, True, doc=_GAMMA)},
          lambda o, c, h: sched.StepLR(o, step_size=int(c["step_size"]), gamma=c["gamma"]))
_register("exponential", "epoch", {"gamma": Param("float", 0.0, 1.0, True, doc=_GAMMA)},
          lambda o, c, h: sched.ExponentialLR(o, gamma=c["gamma"]))
_register("inverse_time", "epoch", {"decay": nonneg("k in lr / (1 + k t), t in epochs")},
          lambda o, c, h: sched.LambdaLR(o, InverseTime(float(c["decay"]))))
_register("cosine", "step", {"min_lr_ratio": unit("the rate ends at lr x this ratio")},
          lambda o, c, h: sched.CosineAnnealingLR(
              o, T_max=max(1, h.total_steps), eta_min=_base_lr(o) * c["min_lr_ratio"]))
_register("cyclic", "step", {
    "base_lr_ratio": Param("float", 0.0, 1.0, True, True, doc="the cycle's low end: lr x this"),
    "step_size_epochs": positive("a half cycle, in epochs"),
    "mode": one_of("triangular", "triangular2", "exp_range", doc="torch's CyclicLR mode"),
    "exp_gamma": Param("float", 0.0, 1.0, True, doc="exp_range: the amplitude's decay per step"),
}, lambda o, c, h: sched.CyclicLR(
    o, base_lr=_base_lr(o) * c["base_lr_ratio"], max_lr=_base_lr(o),
    step_size_up=max(1, round(c["step_size_epochs"] * h.steps_per_epoch)),
    mode=c["mode"], gamma=c["exp_gamma"], cycle_momentum=False))
_register("onecycle", "step", {
    "pct_start": Param("float", 0.0, 1.0, True, True, doc="share of the run spent rising to the "
                       "peak (optimizer.lr)"),
    "div_factor": Param("float", low=1.0, doc="the start rate is the peak / div_factor"),
    "final_div_factor": Param("float", low=1.0, doc="the end rate is the start rate / "
                              "final_div_factor"),
    "anneal_strategy": one_of("cos", "linear", doc="the shape of the ramps"),
    "three_phase": flag("a third phase that anneals below the start rate"),
}, lambda o, c, h: sched.OneCycleLR(
    o, max_lr=_base_lr(o), total_steps=onecycle_steps(h.total_steps, c["pct_start"]),
    pct_start=c["pct_start"],
    div_factor=c["div_factor"], final_div_factor=c["final_div_factor"],
    anneal_strategy=c["anneal_strategy"], three_phase=c["three_phase"], cycle_momentum=False))
_register("plateau", "epoch", {
    "factor": Param("float", 0.0, 1.0, True, True, doc="multiplies the rate when val/loss "
                    "stops improving"),
    "patience": count(0, "epochs without improvement before a cut"),
    "threshold": nonneg("the smallest relative improvement that counts"),
    "cooldown": count(0, "epochs after a cut before watching again"),
    "min_lr": nonneg("the rate never goes below this"),
}, lambda o, c, h: sched.ReduceLROnPlateau(
    o, mode="min", factor=c["factor"], patience=int(c["patience"]),
    threshold=c["threshold"], cooldown=int(c["cooldown"]), min_lr=c["min_lr"]))


def onecycle_steps(total: int, pct_start: float) -> int:
    """OneCycleLR's horizon: the run's steps, but at least enough for its warm-up phase to
    span one step (torch divides by ``pct_start * total - 1``: zero for 2 steps at 0.5). A
    run that short ends before the anneal does; found by a property test."""
    return max(1, total, math.floor(1.0 / pct_start) + 1)


def list_schedules() -> list[str]:
    return SCHEDULES.names()


def warmup_steps(cfg: Mapping[str, Any], steps_per_epoch: int) -> int:
    return round(float(cfg["warmup_epochs"]) * steps_per_epoch)


class Schedule:
    """Warmup + one torch scheduler, stepped per batch or per epoch as it requires."""

    def __init__(self, optimizer: Optimizer, cfg: Mapping[str, Any], *,
                 steps_per_epoch: int, epochs: int) -> None:
        self.optimizer, self.cfg = optimizer, dict(cfg)
        self.info = SCHEDULES.get(cfg["name"])
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = steps_per_epoch * epochs
        self.warmup_steps = min(warmup_steps(cfg, steps_per_epoch), self.total_steps)
        self.count = 0  # optimizer steps seen
        self.main_start = 0  # step at which the main scheduler took over from warmup
        self.warmup: sched.LinearLR | None = None
        self.main: LRScheduler | None = None
        if self.warmup_steps > 0:
            self.warmup = sched.LinearLR(optimizer, start_factor=cfg["warmup_start_factor"],
                                         end_factor=1.0, total_iters=self.warmup_steps)
        else:
            self._start_main()

    def _start_main(self) -> None:
        # End warmup exactly on the base lr, and forget warmup's `initial_lr`: torch schedulers
        # only `setdefault` it, so CyclicLR would otherwise take its first step from the peak
        # (warmup's initial lr) instead of its own base rate.
        for group in self.optimizer.param_groups:
            if "initial_lr" in group:
                group["lr"] = group.pop("initial_lr")
        self.main_start = self.count
        horizon = Horizon(self.steps_per_epoch, max(1, self.total_steps - self.count))
        self.main = self.info.build(self.optimizer, self.cfg, horizon)

    def after_batch(self) -> None:
        self.count += 1
        if self.main is None:
            assert self.warmup is not None
            self.warmup.step()
            if self.count >= self.warmup_steps:
                self._start_main()
        elif self.info.interval == "step" and self.count <= self.total_steps:
            self.main.step()

    def after_epoch(self, val_loss: float) -> None:
        if self.main is None or self.info.interval != "epoch":
            return
        if self.main_start > self.count - self.steps_per_epoch:
            return  # the main schedule took over during this epoch: count whole epochs only
        if isinstance(self.main, sched.ReduceLROnPlateau):
            self.main.step(val_loss)
        else:
            self.main.step()

    def state_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "warmup": None if self.warmup is None else self.warmup.state_dict(),
            "main": None if self.main is None else self.main.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore; call after ``optimizer.load_state_dict`` (group lrs are kept as loaded)."""
        saved = [{k: v for k, v in g.items() if k != "params"} for g in self.optimizer.param_groups]
        self.count = int(state["count"])
        if self.warmup is not None and state["warmup"] is not None:
            self.warmup.load_state_dict(state["warmup"])
        if state["main"] is not None:
            if self.main is None:
                self.count, count = max(0, self.warmup_steps), self.count
                self._start_main()
                self.count = count
            assert self.main is not None
            self.main.load_state_dict(state["main"])
        else:
            self.main = None
        for group, values in zip(self.optimizer.param_groups, saved, strict=True):
            group.update(values)

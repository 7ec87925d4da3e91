"""Property tests of the training side: schedules stay within their stated bounds, and the
Adam -> SGD switch never applies a negative or non-finite SGD rate (hypothesis draws them).
"""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer.optim.adam_to_sgd import AdamToSGD
from trainer.optim.schedules import Schedule

BASE_LR = 0.1
open_unit = st.floats(0.01, 0.99)
warmup = st.fixed_dictionaries({"warmup_epochs": st.sampled_from([0.0, 0.5, 1.0, 2.5]),
                                 "warmup_start_factor": st.floats(0.01, 1.0)})


def _lower_bound(cfg: dict) -> float:
    """The least rate each schedule may give (its documented floor), warmup included."""
    name = cfg["name"]
    floor = {"constant": BASE_LR, "step": 0.0, "exponential": 0.0, "inverse_time": 0.0,
             "plateau": cfg.get("min_lr", 0.0)}.get(name)
    if name == "cosine":
        floor = BASE_LR * cfg["min_lr_ratio"]
    elif name == "cyclic":
        decay = cfg["exp_gamma"] ** 10_000 if cfg["mode"] == "exp_range" else 1.0
        floor = BASE_LR * cfg["base_lr_ratio"] * decay
    elif name == "onecycle":
        floor = BASE_LR / (cfg["div_factor"] * cfg["final_div_factor"])
    assert floor is not None
    return min(floor, BASE_LR * cfg["warmup_start_factor"]) if cfg["warmup_epochs"] > 0 else floor


schedules = st.one_of(
    st.fixed_dictionaries({"name": st.just("constant")}),
    st.fixed_dictionaries({"name": st.just("step"), "step_size": st.integers(1, 3), "gamma": open_unit}),
    st.fixed_dictionaries({"name": st.just("exponential"), "gamma": open_unit}),
    st.fixed_dictionaries({"name": st.just("inverse_time"), "decay": st.floats(0.0, 5.0)}),
    st.fixed_dictionaries({"name": st.just("cosine"), "min_lr_ratio": st.floats(0.0, 0.99)}),
    st.fixed_dictionaries({"name": st.just("cyclic"), "base_lr_ratio": open_unit,
                           "step_size_epochs": st.floats(0.2, 2.0),
                           "mode": st.sampled_from(["triangular", "triangular2", "exp_range"]),
                           "exp_gamma": st.floats(0.9, 1.0)}),
    st.fixed_dictionaries({"name": st.just("onecycle"), "pct_start": open_unit,
                           "div_factor": st.floats(1.0, 100.0), "final_div_factor": st.floats(1.0, 1e4),
                           "anneal_strategy": st.sampled_from(["cos", "linear"]),
                           "three_phase": st.booleans()}),
    st.fixed_dictionaries({"name": st.just("plateau"), "factor": open_unit, "patience": st.integers(0, 2),
                           "threshold": st.floats(0.0, 0.1), "cooldown": st.integers(0, 2),
                           "min_lr": st.floats(0.0, 0.01)}),
)


@settings(max_examples=60)
@given(schedules, warmup, st.integers(1, 7), st.integers(1, 6),
       st.lists(st.floats(0.1, 5.0), min_size=6, max_size=6))
def test_every_schedule_stays_within_its_bounds(cfg: dict, warm: dict, steps_per_epoch: int,
                                                epochs: int, val_losses: list[float]) -> None:
    cfg = {**cfg, **warm}
    if cfg.get("three_phase"):  # validation refuses three phases past the middle
        cfg["pct_start"] = min(cfg["pct_start"], 0.49)
    if cfg["warmup_epochs"] >= epochs:
        cfg["warmup_epochs"] = 0.0  # validation refuses a warmup without epochs left
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=BASE_LR)
    sched = Schedule(opt, cfg, steps_per_epoch=steps_per_epoch, epochs=epochs)
    low = _lower_bound(cfg)
    rates = []  # the rate each optimizer step applies (what the trainer logs, too)
    for epoch in range(epochs):
        for _ in range(steps_per_epoch):
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.after_batch()
        sched.after_epoch(val_losses[epoch])
    for lr in rates:
        assert math.isfinite(lr)
        assert low * (1 - 1e-9) - 1e-15 <= lr <= BASE_LR * (1 + 1e-9), (cfg, rates)


@settings(max_examples=60)
@given(st.integers(0, 10_000), st.floats(1e-6, 1e3), st.sampled_from(["relative", "absolute"]),
       st.floats(1e-4, 0.5), st.floats(0.0, 3.0))
def test_swats_never_applies_a_negative_or_non_finite_sgd_rate(
        seed: int, swats_eps: float, tolerance: str, lr: float, noise: float) -> None:
    """Gradients of a noisy quadratic: the estimate gamma_k = p^T p / -p^T g often turns
    negative when the noise flips the gradient against the momentum; a generous tolerance
    makes the switch test pass readily, so only the guard keeps such an estimate out."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(4, generator=g, dtype=torch.float64).requires_grad_(True)
    opt = AdamToSGD([w], lr=lr, policy="swats", swats_eps=swats_eps, swats_tolerance=tolerance)
    for _ in range(40):
        opt.zero_grad()
        target = noise * torch.randn(4, generator=g, dtype=torch.float64)
        ((w - target) ** 2).sum().backward()
        opt.step()
        group = opt.param_groups[0]
        if group["phase"] == "sgd":
            assert group["switch_lr"] > 0 and math.isfinite(group["switch_lr"])
        for applied in opt.effective_lrs():
            assert applied > 0 and math.isfinite(applied)


@settings(max_examples=30)
@given(st.integers(0, 10_000), st.integers(1, 30), st.one_of(st.none(), st.floats(1e-4, 1.0)))
def test_the_fixed_policy_switches_at_its_step_to_a_positive_rate(seed: int, switch_step: int,
                                                                   sgd_lr: float | None) -> None:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(3, generator=g, dtype=torch.float64).requires_grad_(True)
    opt = AdamToSGD([w], lr=0.01, policy="fixed", switch_step=switch_step, sgd_lr=sgd_lr)
    for step in range(1, 35):
        opt.zero_grad()
        ((w - torch.randn(3, generator=g, dtype=torch.float64)) ** 2).sum().backward()
        opt.step()
        group = opt.param_groups[0]
        assert group["phase"] == ("sgd" if step >= switch_step else "adam")
    assert group["switched_at"] == switch_step
    assert group["switch_lr"] > 0 and math.isfinite(group["switch_lr"])
    if sgd_lr is not None:
        assert group["switch_lr"] == sgd_lr


estimates = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none())


@given(estimates, estimates, st.integers(0, 100), st.floats(1e-9, 1e9),
       st.sampled_from(["relative", "absolute"]), st.sampled_from(["swats", "fixed"]))
def test_a_switch_never_takes_a_negative_or_non_finite_estimate(
        Lambda: float | None, gamma: float | None, k: int, swats_eps: float, tolerance: str,
        policy: str) -> None:
    """Whatever the running estimates hold (a noisy run can drive Lambda_k below zero, an
    overflow to inf or NaN), the rate switched to is positive and finite."""
    w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = AdamToSGD([w], lr=0.01, policy=policy, switch_step=max(k, 1), swats_eps=swats_eps,
                    swats_tolerance=tolerance)
    group = opt.param_groups[0]
    group.update(swats_Lambda=Lambda, swats_gamma=gamma)
    opt._maybe_switch(group, k, updated=True)
    if group["phase"] == "sgd":
        assert group["switch_lr"] > 0 and math.isfinite(group["switch_lr"])
        assert all(lr > 0 and math.isfinite(lr) for lr in opt.effective_lrs())
    if policy == "swats" and AdamToSGD.swats_test(group, k):
        assert Lambda is not None and Lambda > 0 and math.isfinite(Lambda)

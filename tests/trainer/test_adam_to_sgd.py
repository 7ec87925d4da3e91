"""AdamToSGD against a direct re-computation of the SWATS formulas (design.md)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from trainer.optim import AdamToSGD

B1, B2, LR, EPS = 0.9, 0.999, 0.05, 1e-8


def _problem(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(32, 6, generator=g, dtype=torch.float64)
    b = torch.randn(32, generator=g, dtype=torch.float64)
    return a, b


def _grad(w: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 2.0 * a.T @ (a @ w - b) / len(b)


def _loss_step(opt: torch.optim.Optimizer, w: torch.Tensor, a: torch.Tensor,
               b: torch.Tensor) -> None:
    opt.zero_grad()
    ((a @ w - b) ** 2).mean().backward()
    opt.step()


def _reference(a: np.ndarray, b: np.ndarray, w0: np.ndarray, steps: int, swats_eps: float,
               wd: float = 0.0, relative: bool = False) -> list[dict[str, float | np.ndarray | bool]]:
    """SWATS Algorithm 1 written out with NumPy in float64 (`relative`: tolerance eps * Lambda)."""
    w, m, v = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
    lam, phase, sgd_lr, buf = 0.0, "adam", None, np.zeros_like(w0)
    out: list[dict] = []
    k = 0
    for _ in range(steps):
        g = _grad(w, a, b) + wd * w
        rec: dict = {}
        if phase == "adam":
            k += 1
            m = B1 * m + (1 - B1) * g
            v = B2 * v + (1 - B2) * g * g
            p = -LR * (m / (1 - B1**k)) / (np.sqrt(v / (1 - B2**k)) + EPS)
            w = w + p
            if p @ g != 0:
                gamma = (p @ p) / (-(p @ g))
                lam = B2 * lam + (1 - B2) * gamma
                big = lam / (1 - B2**k)
                rec.update(gamma=gamma, Lambda=big)
                tol = swats_eps * big if relative else swats_eps
                if k > 1 and big > 0 and abs(big - gamma) < tol:
                    phase, sgd_lr = "sgd", big
                    rec["switched"] = k
        else:  # v = b1 v + g ; w -= (1 - b1) Lambda v   (paper form)
            buf = B1 * buf + g
            w = w - (1 - B1) * sgd_lr * buf
        rec["w"] = w.copy()
        rec["phase"] = phase
        out.append(rec)
    return out


@pytest.mark.parametrize("wd", [0.0, 0.01])
@pytest.mark.parametrize(("tolerance", "swats_eps"), [("absolute", 5e-3), ("relative", 0.1)])
def test_swats_quantities_switch_and_sgd_phase_match_formulas(wd: float, tolerance: str,
                                                              swats_eps: float) -> None:
    a, b = _problem()
    w = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    opt = AdamToSGD([w], lr=LR, betas=(B1, B2), eps=EPS, weight_decay=wd, policy="swats",
                    swats_eps=swats_eps, swats_tolerance=tolerance)
    ref = _reference(a.numpy(), b.numpy(), np.zeros(6), 60, swats_eps, wd,
                     relative=tolerance == "relative")
    switched_at = None
    for rec in ref:
        _loss_step(opt, w, a, b)
        group = opt.param_groups[0]
        if "gamma" in rec and group["switched_at"] in (None, group["adam_steps"]):
            assert group["swats_gamma"] == pytest.approx(rec["gamma"], rel=1e-9)
            assert group["swats_Lambda"] == pytest.approx(rec["Lambda"], rel=1e-9)
        if "switched" in rec:
            switched_at = rec["switched"]
        assert group["phase"] == rec["phase"]
        np.testing.assert_allclose(w.detach().numpy(), rec["w"], rtol=1e-9, atol=1e-12)
    assert switched_at is not None, "the test problem must exercise the switch"
    report = opt.switch_report()[0]
    assert report["switch_step"] == switched_at
    assert report["switch_lr"] == pytest.approx(ref[switched_at - 1]["Lambda"], rel=1e-9)
    assert ref[-1]["phase"] == "sgd" and 2 < switched_at < 60


def test_a_step_without_a_fresh_estimate_never_switches_on_stale_values() -> None:
    # step 1: Lambda_1 == gamma_1 exactly (within any tolerance), but k > 1 is required;
    # step 2: a zero gradient gives p^T g = 0, so the estimate is not updated and the
    # test must not fire on step 1's values.
    w = torch.zeros(3, requires_grad=True)
    opt = AdamToSGD([w], lr=0.1, policy="swats", swats_eps=0.5)
    w.grad = torch.ones(3)
    opt.step()
    group = opt.param_groups[0]
    assert group["swats_Lambda"] == pytest.approx(group["swats_gamma"])
    w.grad = torch.zeros(3)
    opt.step()
    assert group["adam_steps"] == 2 and group["phase"] == "adam"
    w.grad = torch.ones(3)  # a fresh estimate again: now the test may fire
    opt.step()
    assert group["phase"] == "sgd" and group["switched_at"] == 3


def test_relative_tolerance_does_not_depend_on_the_scale_of_the_loss() -> None:
    # Adam's step is invariant to scaling the loss by c, while gamma_k and Lambda_k scale
    # as 1/c: the relative test switches at the same step for any c, the paper's absolute
    # test does not (one tolerance is "at once" for one loss scale and "never" for another).
    a, b = _problem(0)
    steps: dict[tuple[str, float], int | None] = {}
    for tolerance, eps in (("relative", 0.1), ("absolute", 5e-3)):
        for scale in (1.0, 1000.0):
            w = torch.zeros(6, dtype=torch.float64, requires_grad=True)
            opt = AdamToSGD([w], lr=LR, eps=1e-30, policy="swats", swats_eps=eps,
                            swats_tolerance=tolerance)
            for _ in range(80):
                opt.zero_grad()
                (scale * ((a @ w - b) ** 2).mean()).backward()
                opt.step()
            steps[tolerance, scale] = opt.param_groups[0]["switched_at"]
    assert steps["relative", 1.0] is not None
    assert steps["relative", 1.0] == steps["relative", 1000.0]
    assert steps["absolute", 1.0] != steps["absolute", 1000.0]


def test_switch_lr_max_is_the_largest_sgd_rate_applied() -> None:
    w = torch.zeros(3, requires_grad=True)
    opt = AdamToSGD([w], lr=0.1, policy="fixed", switch_step=1, sgd_lr=0.5)
    w.grad = torch.ones(3)
    opt.step()  # Adam, then the switch
    for lr in (0.1, 0.3, 0.05):  # a schedule raises, then lowers the rate
        opt.param_groups[0]["lr"] = lr
        opt.step()
    report = opt.switch_report()[0]
    assert report["switch_lr"] == pytest.approx(0.5)
    assert report["switch_lr_max"] == pytest.approx(0.5 * 0.3 / 0.1)


def test_loads_a_state_dict_saved_before_the_tolerance_and_lr_max_existed() -> None:
    w = torch.zeros(3, requires_grad=True)
    opt = AdamToSGD([w], lr=0.1, policy="fixed", switch_step=1, sgd_lr=0.5)
    w.grad = torch.ones(3)
    opt.step()
    old = copy.deepcopy(opt.state_dict())
    for group in old["param_groups"]:  # the keys of the previous release
        group["switch_at"] = group.pop("switch_step")
        del group["swats_tolerance"], group["switch_lr_max"]
    fresh = AdamToSGD([torch.zeros(3, requires_grad=True)], lr=0.1, policy="swats")
    fresh.load_state_dict(old)
    group = fresh.param_groups[0]
    assert group["switch_step"] == 1 and group["swats_tolerance"] == "relative"
    assert group["phase"] == "sgd" and group["switch_lr_max"] == pytest.approx(0.5)


def test_no_switch_on_first_step_or_when_tolerance_is_tight() -> None:
    a, b = _problem(1)
    w = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    opt = AdamToSGD([w], lr=LR, policy="swats", swats_eps=1e30,  # always within tolerance
                    swats_tolerance="absolute")
    _loss_step(opt, w, a, b)
    assert opt.param_groups[0]["phase"] == "adam"  # k > 1 is required
    _loss_step(opt, w, a, b)
    assert opt.param_groups[0]["phase"] == "sgd"
    assert opt.param_groups[0]["switched_at"] == 2

    w2 = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    tight = AdamToSGD([w2], lr=LR, policy="swats", swats_eps=1e-300, swats_tolerance="absolute")
    for _ in range(20):
        _loss_step(tight, w2, a, b)
    assert tight.param_groups[0]["phase"] == "adam"


def test_switch_tolerance_is_not_adam_eps() -> None:
    """|Lambda - gamma| is compared with swats_eps, never with Adam's eps: the optimizer
    switches at the step the reference switches at for each swats_eps (two different
    steps), not at the step (here: none) a tolerance of Adam's eps would give."""
    a, b = _problem(0)

    def reference_switch(tol: float) -> int | None:
        ref = _reference(a.numpy(), b.numpy(), np.zeros(6), 80, tol)
        return next((r["switched"] for r in ref if "switched" in r), None)

    assert reference_switch(EPS) is None
    seen = []
    for swats_eps in (1e-2, 5e-2):
        w = torch.zeros(6, dtype=torch.float64, requires_grad=True)
        opt = AdamToSGD([w], lr=LR, betas=(B1, B2), eps=EPS, policy="swats", swats_eps=swats_eps,
                        swats_tolerance="absolute")
        for _ in range(80):
            _loss_step(opt, w, a, b)
        seen.append(opt.param_groups[0]["switched_at"])
        assert seen[-1] == reference_switch(swats_eps)
    assert seen[0] != seen[1] and None not in seen


def test_fixed_policy_switches_at_given_step_with_given_or_estimated_lr() -> None:
    a, b = _problem(3)
    for sgd_lr in (0.3, None):
        w = torch.zeros(6, dtype=torch.float64, requires_grad=True)
        opt = AdamToSGD([w], lr=LR, policy="fixed", switch_step=5, sgd_lr=sgd_lr)
        for _ in range(4):
            _loss_step(opt, w, a, b)
        assert opt.param_groups[0]["phase"] == "adam"
        _loss_step(opt, w, a, b)
        g = opt.param_groups[0]
        assert g["phase"] == "sgd" and g["switched_at"] == 5
        expected = 0.3 if sgd_lr is not None else g["swats_Lambda"]
        assert g["switch_lr"] == pytest.approx(expected)
        # the SGD phase: buf = mu buf + (1 - d) g ; w -= lr_sgd * buf, buffer starting at zero
        before = w.detach().clone()
        _loss_step(opt, w, a, b)
        grad = torch.from_numpy(_grad(before.numpy(), a.numpy(), b.numpy()))
        buf = (1 - B1) * grad
        torch.testing.assert_close(w.detach(), before - g["switch_lr"] * buf)


def test_schedule_scaling_keeps_shaping_the_sgd_rate() -> None:
    w = torch.zeros(3, requires_grad=True)
    opt = AdamToSGD([w], lr=0.1, policy="fixed", switch_step=1, sgd_lr=0.5)
    w.grad = torch.ones(3)
    opt.step()
    assert opt.effective_lrs() == [pytest.approx(0.5)]
    opt.param_groups[0]["lr"] = 0.05  # a scheduler halves the rate
    assert opt.effective_lrs() == [pytest.approx(0.25)]


@pytest.mark.parametrize("split", [10, 40])  # round trip in the Adam phase and in the SGD phase
def test_state_dict_round_trip_continues_identically(split: int) -> None:
    a, b = _problem(0)  # switches at step 32 with swats_eps=5e-3
    w = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    kwargs = dict(lr=LR, policy="swats", swats_eps=5e-3, swats_tolerance="absolute")
    opt = AdamToSGD([w], **kwargs)
    for _ in range(split):
        _loss_step(opt, w, a, b)
    phase = opt.param_groups[0]["phase"]
    saved_state = copy.deepcopy(opt.state_dict())
    saved_w = w.detach().clone()
    for _ in range(30):  # from split 10 this crosses the switch at 32
        _loss_step(opt, w, a, b)
    expected = w.detach().clone()

    w2 = saved_w.clone().requires_grad_(True)
    opt2 = AdamToSGD([w2], lr=1.0, policy="fixed", switch_step=99)  # overwritten by the load
    opt2.load_state_dict(saved_state)
    assert opt2.param_groups[0]["phase"] == phase
    for _ in range(30):  # from split 10 this crosses the switch at 32
        _loss_step(opt2, w2, a, b)
    assert torch.equal(w2.detach(), expected)
    assert (split, phase) in {(10, "adam"), (40, "sgd")}


def test_momentum_buffer_is_not_mutated_when_switching() -> None:
    w = torch.ones(4, requires_grad=True)
    opt = AdamToSGD([w], lr=0.01, policy="fixed", switch_step=2, sgd_lr=0.1)
    for _ in range(2):
        w.grad = torch.ones(4)
        opt.step()
    m_before = opt.state[w]["exp_avg"].clone()
    w.grad = torch.ones(4)
    opt.step()
    assert torch.equal(opt.state[w]["exp_avg"], m_before)  # Adam moments untouched by SGD
    assert torch.allclose(opt.state[w]["momentum_buffer"], (1 - 0.9) * torch.ones(4))


@pytest.mark.parametrize("bad", [dict(policy="nope"), dict(policy="fixed"), dict(lr=0.0),
                                 dict(betas=(0.9, 1.0)), dict(swats_eps=0.0),
                                 dict(swats_tolerance="loose")])
def test_rejects_bad_arguments(bad: dict) -> None:
    with pytest.raises(ValueError):
        AdamToSGD([torch.zeros(1, requires_grad=True)], **bad)

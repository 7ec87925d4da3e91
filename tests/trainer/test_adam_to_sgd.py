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


def test_the_switch_report_names_each_quantity_before_and_after_the_switch() -> None:
    w = torch.nn.Parameter(torch.ones(3))
    opt = AdamToSGD([w], lr=0.1, policy="fixed", switch_step=2, sgd_lr=0.5)
    assert opt.switch_report() == [{"phase": "adam", "adam_steps": 0, "switch_step": None, "switch_lr": None,
                                    "switch_lr_max": None, "Lambda": None}]
    for _ in range(3):
        w.grad = torch.ones(3)
        opt.step()
    (report,) = opt.switch_report()
    assert (report["phase"], report["adam_steps"]) == ("sgd", 2)
    assert (report["switch_step"], report["switch_lr"]) == (2, 0.5)
    assert report["switch_lr_max"] == 0.5 and set(report) == {
        "phase", "adam_steps", "switch_step", "switch_lr", "switch_lr_max", "Lambda"}
    assert report["Lambda"] == opt.param_groups[0]["swats_Lambda"]


def _estimates(Lambda: float | None, gamma: float | None, eps: float, tolerance: str) -> dict:
    return {"swats_Lambda": Lambda, "swats_gamma": gamma, "swats_eps": eps, "swats_tolerance": tolerance}


@pytest.mark.parametrize(("group", "k", "switches"), [
    (_estimates(0.5, 0.5, 1e-9, "absolute"), 2, True),
    (_estimates(0.5, 0.5, 1e-9, "absolute"), 1, False),  # never on the first step
    (_estimates(0.0, 0.0, 1e-9, "absolute"), 2, False),  # a rate of 0 is no SGD rate
    (_estimates(-0.5, -0.5, 1e-9, "absolute"), 2, False),
    (_estimates(None, 0.5, 1e-9, "absolute"), 2, False),
    (_estimates(0.5, None, 1e-9, "absolute"), 2, False),
    (_estimates(0.5, 0.25, 0.25, "absolute"), 2, False),  # |0.5 - 0.25| = eps: not below it
    (_estimates(0.5, 0.26, 0.25, "absolute"), 2, True),
    (_estimates(0.5, 0.25, 0.5, "relative"), 2, False),  # |0.5 - 0.25| = 0.5 * 0.5: not below
    (_estimates(0.5, 0.26, 0.5, "relative"), 2, True),
])
def test_the_swats_test_itself(group: dict, k: int, switches: bool) -> None:
    assert AdamToSGD.swats_test(group, k) is switches


def test_used_directly_it_is_torchs_adam_then_swats_as_published() -> None:
    w = torch.zeros(1, requires_grad=True)
    ours, adam = AdamToSGD([w]).defaults, torch.optim.Adam([w]).defaults
    assert {k: ours[k] for k in ("lr", "betas", "eps", "weight_decay")} == {
        k: adam[k] for k in ("lr", "betas", "eps", "weight_decay")}
    assert (ours["policy"], ours["swats_eps"], ours["swats_tolerance"]) == ("swats", 1e-9, "relative")


def test_bad_arguments_and_sparse_gradients_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match=r"^policy must be one of "):
        AdamToSGD([torch.zeros(1, requires_grad=True)], policy="nope")
    zero = torch.zeros(1, requires_grad=True)
    fixed = "policy='fixed' needs switch_step >= 1, but got"
    for bad, message in ((dict(policy="fixed"), f"{fixed} switch_step=None."),
                         (dict(policy="fixed", switch_step=0), f"{fixed} switch_step=0."),
                         (dict(swats_tolerance="loose"), "swats_tolerance must be one of "
                          "('relative', 'absolute'), but got swats_tolerance='loose'."),
                         (dict(eps=0.0), "Invalid lr=0.001, eps=0.0, swats_eps=1e-09 or weight_decay=0.0.")):
        with pytest.raises(ValueError) as info:
            AdamToSGD([zero], **bad)
        assert str(info.value) == message
    assert AdamToSGD([zero], betas=(0.0, 0.0)).defaults["betas"] == (0.0, 0.0)  # 0 is a beta, 1 is not
    with pytest.raises(ValueError,
                       match=r"^Invalid lr=0.0, eps=1e-08, swats_eps=1e-09 or weight_decay=0.0\.$"):
        AdamToSGD([zero], lr=0.0)
    with pytest.raises(ValueError, match=r"^betas must be in \[0, 1\), but got betas=\(0.9, 1.0\)\.$"):
        AdamToSGD([zero], betas=(0.9, 1.0))
    for momentum, dampening in ((0.0, 0.0), (0.9, 0.1)):
        with pytest.raises(ValueError,
                           match=r"^sgd_nesterov needs sgd_momentum > 0 and sgd_dampening = 0\.$"):
            AdamToSGD([zero], sgd_nesterov=True, sgd_momentum=momentum, sgd_dampening=dampening)
    emb = torch.nn.Embedding(4, 2, sparse=True)
    opt = AdamToSGD(emb.parameters())
    emb(torch.tensor([1])).sum().backward()
    with pytest.raises(RuntimeError, match=r"^AdamToSGD does not support sparse gradients$"):
        opt.step()


def test_adam_phase_with_weight_decay_is_torchs_adam() -> None:
    """Weight decay as torch's Adam applies it (added to the gradient), at 1 as at 0.01."""
    for wd in (1.0, 0.01):
        w1 = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
        w2 = w1.detach().clone().requires_grad_(True)
        ours = AdamToSGD([w1], lr=0.1, weight_decay=wd, policy="fixed", switch_step=100)
        theirs = torch.optim.Adam([w2], lr=0.1, weight_decay=wd)
        for _ in range(5):
            for w, opt in ((w1, ours), (w2, theirs)):
                w.grad = torch.tensor([1.0, 0.5, -2.0])  # not a multiple of w: Adam is scale-free
                opt.step()
        assert torch.allclose(w1, w2, atol=1e-7), wd


def test_the_estimate_spans_every_parameter_of_the_group() -> None:
    """SWATS' p^T p and p^T g are over the group's whole vector: two tensors give what their
    concatenation gives."""
    a, b = torch.randn(3, generator=torch.Generator().manual_seed(1)), torch.randn(
        4, generator=torch.Generator().manual_seed(2))
    wa, wb = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
    wc = torch.cat([a, b]).requires_grad_(True)
    split = AdamToSGD([wa, wb], lr=0.01, policy="fixed", switch_step=100)
    whole = AdamToSGD([wc], lr=0.01, policy="fixed", switch_step=100)
    for step in range(4):
        scale = 1.0 + step  # gradients that change, so the estimate moves
        wa.grad, wb.grad = scale * wa.detach() ** 3, scale * wb.detach() ** 3
        wc.grad = scale * wc.detach() ** 3
        split.step()
        whole.step()
    gs, gw = split.param_groups[0], whole.param_groups[0]
    assert gs["swats_Lambda"] == pytest.approx(gw["swats_Lambda"], rel=1e-6)
    assert gs["swats_gamma"] == pytest.approx(gw["swats_gamma"], rel=1e-6)


@pytest.mark.parametrize(("pp", "pg"), [(float("inf"), -1.0), (1.0, float("nan")), (1.0, 0.0),
                                        (float("nan"), float("inf"))])
def test_an_estimate_from_a_non_finite_or_zero_product_is_not_taken(pp: float, pg: float) -> None:
    opt = AdamToSGD([torch.zeros(1, requires_grad=True)])
    group = opt.param_groups[0]
    assert opt._update_estimate(group, 2, pp, pg) is False
    assert (group["swats_Lambda"], group["swats_gamma"], group["swats_lambda"]) == (None, None, 0.0)
    assert opt._update_estimate(group, 2, 1.0, -2.0) is True and group["swats_gamma"] == 0.5


def test_a_fixed_switch_without_a_positive_estimate_keeps_the_adam_rate() -> None:
    opt = AdamToSGD([torch.zeros(1, requires_grad=True)], lr=0.02, policy="fixed", switch_step=1)
    group = opt.param_groups[0]
    for Lambda, expected in ((0.0, 0.02), (-1.0, 0.02), (float("inf"), 0.02), (0.3, 0.3)):
        group.update(phase="adam", swats_Lambda=Lambda)
        opt._maybe_switch(group, 1, True)
        assert (group["phase"], group["switch_lr"]) == ("sgd", expected), Lambda


@pytest.mark.parametrize(("momentum", "dampening", "nesterov"), [
    (0.0, 0.0, False), (0.0, 0.5, False), (0.9, 0.0, False), (0.9, 0.0, True)])
def test_the_sgd_phase_is_torchs_sgd_on_every_parameter(momentum: float, dampening: float,
                                                        nesterov: bool) -> None:
    """After the switch: torch.optim.SGD at the switch rate, for each tensor of the group that
    has a gradient: plain (where dampening means nothing), with momentum, and Nesterov. (With
    dampening and momentum torch's first step takes the whole gradient, where SWATS' buffer
    starts at 0: `test_momentum_buffer_is_not_mutated_when_switching` checks that form.)"""
    start = [torch.tensor([1.0, -2.0]), torch.tensor([0.5, 3.0, -1.0])]
    frozen = torch.zeros(2, requires_grad=True)  # no gradient: passed over, the rest still stepped
    ours_w = [t.clone().requires_grad_(True) for t in start]
    ours = AdamToSGD([frozen, *ours_w], lr=0.01, policy="fixed", switch_step=2, sgd_lr=0.1,
                     sgd_momentum=momentum, sgd_dampening=dampening, sgd_nesterov=nesterov)
    for _ in range(2):  # the Adam phase
        for w in ours_w:
            w.grad = 2 * w.detach()
        ours.step()
    theirs_w = [w.detach().clone().requires_grad_(True) for w in ours_w]
    theirs = torch.optim.SGD(theirs_w, lr=0.1, momentum=momentum, dampening=dampening, nesterov=nesterov)
    for _ in range(4):
        for ws, opt in ((ours_w, ours), (theirs_w, theirs)):
            for w in ws:
                w.grad = 2 * w.detach()
            opt.step()
    assert ours.param_groups[0]["phase"] == "sgd" and frozen.grad is None and not frozen.any()
    for a, b in zip(ours_w, theirs_w, strict=True):
        assert torch.allclose(a, b, atol=1e-7)

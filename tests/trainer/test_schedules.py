"""Schedules: each one's shape, warmup, per-batch vs per-epoch stepping, state round trip."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from trainer.optim import AdamToSGD, effective_lr
from trainer.optim.schedules import Schedule, list_schedules
from trainer.validation import load_config

SPE, EPOCHS, LR = 10, 4, 0.1


def _cfg(name: str, **kw: object) -> dict:
    section = dict(load_config([f"schedule={name}"]).schedule)
    section.update(kw)
    return section


def _trace(name: str, opt_factory=None, val_losses=None, **kw: object) -> list[float]:
    w = torch.zeros(2, requires_grad=True)
    opt = opt_factory([w]) if opt_factory else torch.optim.SGD([w], lr=LR)
    s = Schedule(opt, _cfg(name, **kw), steps_per_epoch=SPE, epochs=EPOCHS)
    lrs = []
    for epoch in range(EPOCHS):
        for _ in range(SPE):
            lrs.append(effective_lr(opt))
            w.grad = torch.ones(2)
            opt.step()
            s.after_batch()
        s.after_epoch(val_losses[epoch] if val_losses else 1.0)
    return lrs


def _epoch_start(lrs: list[float]) -> list[float]:
    return [lrs[i * SPE] for i in range(EPOCHS)]


def test_constant() -> None:
    assert _trace("constant") == pytest.approx([LR] * SPE * EPOCHS)


def test_step_halving_per_epoch() -> None:
    lrs = _trace("step", step_size=1, gamma=0.5)
    assert _epoch_start(lrs) == pytest.approx([LR, LR / 2, LR / 4, LR / 8])
    assert len(set(lrs[:SPE])) == 1  # constant within an epoch


def test_exponential_and_inverse_time() -> None:
    assert _epoch_start(_trace("exponential", gamma=0.5)) == pytest.approx(
        [LR * 0.5**e for e in range(EPOCHS)])
    assert _epoch_start(_trace("inverse_time", decay=1.0)) == pytest.approx(
        [LR / (1 + e) for e in range(EPOCHS)])


def test_cosine_per_batch_to_min() -> None:
    lrs = _trace("cosine", min_lr_ratio=0.0)
    total = SPE * EPOCHS
    assert lrs == pytest.approx([LR * (1 + math.cos(math.pi * t / total)) / 2
                                 for t in range(total)], abs=1e-9)


def test_cyclic_triangular() -> None:
    lrs = _trace("cyclic", base_lr_ratio=0.1, step_size_epochs=1.0)
    assert lrs[0] == pytest.approx(0.01) and lrs[SPE] == pytest.approx(LR)
    assert lrs[2 * SPE] == pytest.approx(0.01) and lrs[5] == pytest.approx(0.055)


def test_onecycle_peaks_at_lr() -> None:
    lrs = _trace("onecycle", pct_start=0.25)
    assert max(lrs) == pytest.approx(LR)
    assert lrs[0] == pytest.approx(LR / 25) and lrs[-1] < LR / 100


def test_plateau_reduces_on_stalled_val_loss() -> None:
    # epoch 1 sets the best loss; each later epoch without improvement halves the rate
    lrs = _trace("plateau", factor=0.5, patience=0, val_losses=[1.0, 1.0, 1.0, 1.0])
    assert _epoch_start(lrs) == pytest.approx([LR, LR, LR / 2, LR / 4])
    lrs = _trace("plateau", factor=0.5, patience=0, val_losses=[1.0, 0.5, 0.2, 0.1])
    assert lrs == pytest.approx([LR] * SPE * EPOCHS)


@pytest.mark.parametrize("name", list_schedules())
def test_linear_warmup_then_schedule(name: str) -> None:
    lrs = _trace(name, warmup_epochs=1.0, warmup_start_factor=0.1)
    assert lrs[0] == pytest.approx(LR * 0.1)
    assert all(a < b for a, b in itertools.pairwise(lrs[:SPE]))
    # epoch-interval schedules count whole epochs after the warmup
    assert lrs[SPE] == pytest.approx(LR) or name in ("cyclic", "onecycle", "cosine")


def test_schedule_shapes_sgd_rate_after_adam_to_sgd_switch() -> None:
    lrs = _trace("step", opt_factory=lambda p: AdamToSGD(p, lr=LR, policy="fixed", switch_step=5,
                                                         sgd_lr=1.0), step_size=1, gamma=0.5)
    assert lrs[4] == pytest.approx(LR)  # Adam
    assert lrs[5] == pytest.approx(1.0)  # switched: SGD at sgd_lr
    assert _epoch_start(lrs)[1:] == pytest.approx([0.5, 0.25, 0.125])  # still halving


@pytest.mark.parametrize("warmup", [0.5, 0.0], ids=["warmup", "no-warmup"])
@pytest.mark.parametrize("name", list_schedules())
def test_state_dict_round_trip(name: str, warmup: float) -> None:
    def run(split: int | None) -> list[float]:
        w = torch.zeros(2, requires_grad=True)
        opt = torch.optim.SGD([w], lr=LR, momentum=0.9)
        cfg = _cfg(name, warmup_epochs=warmup)
        s = Schedule(opt, cfg, steps_per_epoch=SPE, epochs=EPOCHS)
        lrs = []
        for step in range(SPE * EPOCHS):
            if step == split:
                state = (opt.state_dict(), s.state_dict())
                w2 = w.detach().clone().requires_grad_(True)
                opt = torch.optim.SGD([w2], lr=123.0, momentum=0.9)
                s = Schedule(opt, cfg, steps_per_epoch=SPE, epochs=EPOCHS)
                opt.load_state_dict(state[0])
                s.load_state_dict(state[1])
                w = w2
            lrs.append(effective_lr(opt))
            w.grad = torch.ones(2)
            opt.step()
            s.after_batch()
            if (step + 1) % SPE == 0:
                s.after_epoch(1.0)
        return lrs

    reference = run(None)
    assert run(3) == pytest.approx(reference, rel=1e-12)  # during warmup
    assert run(2 * SPE) == pytest.approx(reference, rel=1e-12)  # main schedule


def test_cyclic_after_warmup_starts_at_its_base_rate_not_at_the_peak() -> None:
    lrs = _trace("cyclic", warmup_epochs=1.0, base_lr_ratio=0.1, step_size_epochs=1.0)
    assert lrs[SPE - 1] < LR  # warmup ramps towards the peak ...
    assert lrs[SPE] == pytest.approx(LR * 0.1)  # ... then the cycle starts at its base
    assert lrs[2 * SPE] == pytest.approx(LR)  # and peaks one half-cycle later
    without = _trace("cyclic", base_lr_ratio=0.1, step_size_epochs=1.0)
    assert lrs[SPE:2 * SPE] == pytest.approx(without[:SPE])


def test_a_one_cycle_horizon_spans_at_least_its_warm_up_phase() -> None:
    """torch's OneCycleLR divides by pct_start * total - 1: the horizon is never below
    1 / pct_start + 1 steps; a run's own length where it is longer."""
    from trainer.optim.schedules import onecycle_steps

    assert onecycle_steps(100, 0.3) == 100
    assert onecycle_steps(2, 0.5) == 3
    assert onecycle_steps(1, 0.25) == 5
    assert [onecycle_steps(n, 0.25) for n in (4, 5, 6)] == [5, 5, 6]
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=LR)
    s = Schedule(opt, _cfg("onecycle", pct_start=0.5), steps_per_epoch=1, epochs=2)  # 2 steps
    for _ in range(2):
        opt.step()
        s.after_batch()
    assert 0 < opt.param_groups[0]["lr"] <= LR


def test_three_phases_past_the_middle_are_refused() -> None:
    from trainer.errors import ConfigError

    refused = r"schedule\.pct_start=0\.5: must be < 0\.5 with schedule\.three_phase"
    with pytest.raises(ConfigError, match=refused):
        load_config(["schedule=onecycle", "schedule.three_phase=true", "schedule.pct_start=0.5"])
    load_config(["schedule=onecycle", "schedule.three_phase=true", "schedule.pct_start=0.45"])
    load_config(["schedule=onecycle", "schedule.pct_start=0.7"])  # two phases: any pct_start


def _run(name: str, steps: int, spe: int,
         **kw: object) -> tuple[torch.optim.Optimizer, Schedule, list[float]]:
    """`steps` batches of a one-epoch-per-`spe` run; the lr before each batch and the optimizer."""
    w = torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([w], lr=LR)
    s = Schedule(opt, _cfg(name, **kw), steps_per_epoch=spe, epochs=max(1, steps // spe))
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        w.grad = torch.ones(2)
        opt.step()
        s.after_batch()
    return opt, s, lrs


def test_a_warmup_of_one_step_is_a_warmup() -> None:
    opt, _, lrs = _run("constant", 1, 10, warmup_epochs=0.1, warmup_start_factor=0.1)
    assert lrs == [pytest.approx(LR * 0.1)] and opt.param_groups[0]["lr"] == LR


@pytest.mark.parametrize(("start", "steps"), [(0.1, 7), (0.3, 3), (0.7, 10)])
def test_warmup_ends_exactly_on_the_base_rate(start: float, steps: int) -> None:
    """torch's LinearLR gets there by products (0.1 after 7 steps at 0.1 is 0.09999999999999998):
    the base rate is restored exactly, as the user wrote it."""
    opt, _, _ = _run("constant", steps, 10, warmup_epochs=steps / 10, warmup_start_factor=start)
    assert opt.param_groups[0]["lr"] == LR


@pytest.mark.parametrize("warmup", [0, 1, 3, 7, 9])
def test_a_cosine_schedule_ends_on_its_floor_whatever_its_warmup(warmup: int) -> None:
    """The main schedule gets the steps warmup left (at least one) and takes the last one."""
    opt, _, lrs = _run("cosine", 10, 10, min_lr_ratio=0.1, warmup_epochs=warmup / 10,
                       warmup_start_factor=0.5)
    assert opt.param_groups[0]["lr"] == pytest.approx(LR * 0.1)
    assert lrs[warmup] == LR  # the main schedule starts from the base rate

r"""Adam that switches to SGD with momentum: the `fixed` and `swats` policies.

SWATS is Keskar & Socher (2017), "Improving Generalization Performance by
Switching from Adam to SGD". Per parameter group, with Adam step count
k = 1, 2, ... and g_k the gradient (plus L2 weight decay ``wd * w``):

Adam phase::

    m_k = b1 m_{k-1} + (1 - b1) g_k          v_k = b2 v_{k-1} + (1 - b2) g_k^2
    p_k = -lr * (m_k / (1 - b1^k)) / (sqrt(v_k / (1 - b2^k)) + eps)
    w_k = w_{k-1} + p_k

Switch estimate (inner products over all parameters of the group)::

    if p_k^T g_k != 0:
        gamma_k  = p_k^T p_k / (-p_k^T g_k)
        lambda_k = b2 lambda_{k-1} + (1 - b2) gamma_k
        Lambda_k = lambda_k / (1 - b2^k)

Policies:

* ``swats``: switch after step k when the estimate was updated at step k (p_k^T g_k
  non-zero and finite: a step without a fresh estimate never switches on the previous
  step's values), ``k > 1``, ``Lambda_k > 0`` (a negative estimate is never used as a
  learning rate) and

      |Lambda_k - gamma_k| < swats_eps * Lambda_k     (swats_tolerance="relative", default)
      |Lambda_k - gamma_k| < swats_eps                (swats_tolerance="absolute", the paper)

  The SGD learning rate is ``Lambda_k``. ``swats_eps`` is the switch tolerance,
  distinct from Adam's ``eps``. The paper's absolute test depends on the scale of the
  learning rate (Lambda_k ~ lr), so one tolerance means "switch at once" for one
  learning rate and "never" for another; the relative test does not.
* ``fixed``: switch after ``switch_step`` Adam steps, to ``sgd_lr`` if given,
  else to the running estimate ``Lambda_k`` (else the current Adam lr).

SGD phase (zero-initialised buffer, so with dampening = momentum = b1 this is
exactly SWATS' ``v = b1 v + g; w -= (1 - b1) Lambda v``)::

    buf = mu * buf + (1 - dampening) * g
    w  -= lr_sgd * (g + mu * buf if nesterov else buf)

``switch_lr_max`` records the largest SGD rate applied after the switch (a schedule
can raise it above ``switch_lr``, e.g. a cyclic one).

A learning-rate schedule keeps shaping the SGD phase: ``group["lr"]`` stays the
scheduled rate and the SGD rate is ``group["lr"] * sgd_scale`` with
``sgd_scale = lr_sgd / lr_at_switch``. The phase, the estimates and the switch
record live in the param groups, so ``state_dict()``/``load_state_dict()``
resume either phase exactly. The momentum buffer is only ever replaced, never
scaled in place.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from trainer.optim.factory import POLICIES, TOLERANCES


class AdamToSGD(Optimizer):
    """Adam -> SGD-with-momentum switching optimizer (see module docstring)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        policy: str = "swats",
        switch_step: int | None = None,
        sgd_lr: float | None = None,
        sgd_momentum: float | None = None,
        sgd_dampening: float | None = None,
        sgd_nesterov: bool = False,
        swats_eps: float = 1e-9,
        swats_tolerance: str = "relative",
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, but got {policy=}.")
        if policy == "fixed" and (switch_step is None or switch_step < 1):
            raise ValueError(f"policy='fixed' needs switch_step >= 1, but got {switch_step=}.")
        if swats_tolerance not in TOLERANCES:
            raise ValueError(f"swats_tolerance must be one of {TOLERANCES}, but got {swats_tolerance=}.")
        if lr <= 0 or eps <= 0 or swats_eps <= 0 or weight_decay < 0:
            raise ValueError(f"Invalid {lr=}, {eps=}, {swats_eps=} or {weight_decay=}.")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be in [0, 1), but got {betas=}.")
        momentum = betas[0] if sgd_momentum is None else sgd_momentum
        dampening = momentum if sgd_dampening is None else sgd_dampening
        if sgd_nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("sgd_nesterov needs sgd_momentum > 0 and sgd_dampening = 0.")
        defaults = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
            policy=policy, switch_step=switch_step, sgd_lr=sgd_lr,
            sgd_momentum=momentum, sgd_dampening=dampening, sgd_nesterov=sgd_nesterov,
            swats_eps=swats_eps, swats_tolerance=swats_tolerance,
            # running state, kept in the group so it is part of state_dict()
            phase="adam", adam_steps=0, swats_lambda=0.0, swats_Lambda=None,
            swats_gamma=None, switched_at=None, switch_lr=None, switch_lr_max=None,
            sgd_scale=1.0,
        )
        super().__init__(params, defaults)

    # ------------------------------------------------------------------ public
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore; groups saved by an older version get the keys added since (as defaults)."""
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            if "switch_at" in group and "switch_step" not in group:
                group["switch_step"] = group.pop("switch_at")
            for key, value in self.defaults.items():
                group.setdefault(key, value)
            if group["phase"] == "sgd" and group["switch_lr_max"] is None:
                group["switch_lr_max"] = group["switch_lr"]

    def effective_lrs(self) -> list[float]:
        """Learning rate actually applied by each group (SGD rate after a switch)."""
        return [
            float(g["lr"]) * (g["sgd_scale"] if g["phase"] == "sgd" else 1.0)
            for g in self.param_groups
        ]

    def switch_report(self) -> list[dict[str, Any]]:
        """Per group: phase, Adam steps, switch step and the SGD learning rate chosen."""
        return [
            {
                "phase": g["phase"],
                "adam_steps": g["adam_steps"],
                "switch_step": g["switched_at"],
                "switch_lr": g["switch_lr"],
                "switch_lr_max": g["switch_lr_max"],
                "Lambda": g["swats_Lambda"],
            }
            for g in self.param_groups
        ]

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if group["phase"] == "adam":
                self._adam_step(group)
            else:
                self._sgd_step(group)
        return loss

    # ----------------------------------------------------------------- phases
    def _grads(self, group: dict[str, Any]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        out = []
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("AdamToSGD does not support sparse gradients")
            g = p.grad
            if group["weight_decay"] != 0:
                g = g.add(p, alpha=group["weight_decay"])
            out.append((p, g))
        return out

    def _adam_step(self, group: dict[str, Any]) -> None:
        pairs = self._grads(group)
        if not pairs:
            return
        b1, b2 = group["betas"]
        k = group["adam_steps"] + 1
        group["adam_steps"] = k
        bc1, bc2 = 1.0 - b1**k, 1.0 - b2**k
        lr, eps = float(group["lr"]), group["eps"]
        pp = torch.zeros((), dtype=torch.float64, device=pairs[0][0].device)
        pg = torch.zeros_like(pp)
        for p, g in pairs:
            state = self.state[p]
            if "exp_avg" not in state:
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m.mul_(b1).add_(g, alpha=1.0 - b1)
            v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
            denom = (v / bc2).sqrt_().add_(eps)
            step = (m / bc1).div_(denom).mul_(-lr)
            p.add_(step)
            s64, g64 = step.double(), g.double()
            pp += (s64 * s64).sum()
            pg += (s64 * g64).sum()
        pp_f, pg_f = (float(x) for x in torch.stack([pp, pg]).tolist())
        updated = self._update_estimate(group, k, pp_f, pg_f)
        self._maybe_switch(group, k, updated)

    def _update_estimate(self, group: dict[str, Any], k: int, pp: float, pg: float) -> bool:
        """Update gamma_k, lambda_k, Lambda_k; False (nothing changed) when p^T g is 0 or not finite."""
        if pg == 0.0 or not math.isfinite(pp) or not math.isfinite(pg):
            return False
        b2 = group["betas"][1]
        gamma = pp / (-pg)
        lam = b2 * group["swats_lambda"] + (1.0 - b2) * gamma
        group["swats_gamma"] = gamma
        group["swats_lambda"] = lam
        group["swats_Lambda"] = lam / (1.0 - b2**k)
        return True

    @staticmethod
    def swats_test(group: dict[str, Any], k: int) -> bool:
        """SWATS' switch condition on the current estimates (see the module docstring)."""
        Lambda, gamma = group["swats_Lambda"], group["swats_gamma"]
        if k <= 1 or Lambda is None or gamma is None or not Lambda > 0:
            return False
        tol = group["swats_eps"] * (Lambda if group["swats_tolerance"] == "relative" else 1.0)
        return abs(Lambda - gamma) < tol

    def _maybe_switch(self, group: dict[str, Any], k: int, updated: bool) -> None:
        Lambda = group["swats_Lambda"]
        if group["policy"] == "swats":
            if updated and self.swats_test(group, k):
                self._switch(group, k, Lambda)
        elif k >= group["switch_step"]:
            if group["sgd_lr"] is not None:
                lr = float(group["sgd_lr"])
            elif Lambda is not None and Lambda > 0 and math.isfinite(Lambda):
                lr = Lambda
            else:
                lr = float(group["lr"])
            self._switch(group, k, lr)

    @staticmethod
    def _switch(group: dict[str, Any], k: int, sgd_lr: float) -> None:
        group["phase"] = "sgd"
        group["switched_at"] = k
        group["switch_lr"] = sgd_lr
        group["sgd_scale"] = sgd_lr / float(group["lr"])

    def _sgd_step(self, group: dict[str, Any]) -> None:
        lr = float(group["lr"]) * group["sgd_scale"]
        if group["switch_lr_max"] is None or lr > group["switch_lr_max"]:
            group["switch_lr_max"] = lr
        mu, damp, nesterov = group["sgd_momentum"], group["sgd_dampening"], group["sgd_nesterov"]
        for p, g in self._grads(group):
            if mu == 0:
                p.add_(g, alpha=-lr)
                continue
            state = self.state[p]
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["momentum_buffer"] = buf
            buf.mul_(mu).add_(g, alpha=1.0 - damp)
            update = g.add(buf, alpha=mu) if nesterov else buf
            p.add_(update, alpha=-lr)

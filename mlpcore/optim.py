"""Optimisers over stacked parameters (M, ...), with torch.optim's semantics.

Each model has its own lr, momentum, weight decay and step count. The update is torch's fused
kernel (`torch._fused_adam_` and friends: one pass over memory, which is what bounds an
optimizer step on a CPU), called once per run of neighbouring active models that share
their hyperparameters, on the per-model views W[i] of every stacked tensor.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.optim import adam as torch_adam
from torch.optim import sgd as torch_sgd
from torch.optim.optimizer import _get_fused_kernels_supported_devices

BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults
EPS = 1e-8
KINDS = ("adam", "adamw", "sgd")


@dataclass
class _Group:
    """One kernel call: a slice of models sharing (lr, weight_decay, momentum)."""

    lr: float
    weight_decay: float
    momentum: float
    tensors: list[list[Tensor]]  # params, grads, then state lists, each sliced to the group
    steps: list[Tensor]  # the 0-dim step count of each tensor's model


class StackedOptimizer:
    """Adam, AdamW or SGD (momentum) over stacked params with per-model hyperparameters."""

    def __init__(
        self,
        params: Sequence[Tensor],
        kind: str,
        *,
        lrs: Sequence[float],
        momentums: Sequence[float],
        weight_decays: Sequence[float],
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown optimizer {kind!r}")
        self.params = list(params)
        self.kind = kind
        m = self.params[0].shape[0]
        self.lrs, self.momentums = list(lrs), list(momentums)
        self.weight_decays = list(weight_decays)
        self.active = [True] * m
        device = self.params[0].device
        self.fused = device.type in _get_fused_kernels_supported_devices()
        self.steps = torch.zeros(m, device=device)  # (M,) per-model step counts
        names = ("exp_avg", "exp_avg_sq") if kind != "sgd" else ("momentum_buffer",)
        # zero momentum buffers make the first SGD step buf = grad, as torch's clone does
        self.state = {n: [torch.zeros_like(p) for p in self.params] for n in names}
        # kernel groups and active mask per slice of models, rebuilt when lrs, activity or
        # the .grad tensors (whose views the groups hold) change
        self._groups: dict[tuple[int, int], tuple[list[_Group], Tensor]] = {}
        self._grads: list[Tensor | None] = []

    def set_lrs(self, lrs: Sequence[float]) -> None:
        """Per-model lrs for the coming steps (an lr schedule changes them per epoch)."""
        if list(lrs) != self.lrs:
            self.lrs = list(lrs)
            self._groups.clear()

    def freeze(self, i: int) -> None:
        """Stop updating model i; its step count and state stay where they are."""
        if self.active[i]:
            self.active[i] = False
            self._groups.clear()

    @torch.no_grad()
    def copy_model(self, src: int, dst: int) -> None:
        """Model src's step count and state into model dst (a run branching off another)."""
        self.steps[dst] = self.steps[src]
        for tensors in self.state.values():
            for t in tensors:
                t[dst].copy_(t[src])

    def step(self, models: slice | None = None) -> None:
        """Update the active models (of the slice `models`) from the stacked params' `.grad`."""
        lo, hi, _ = (models or slice(None)).indices(len(self.active))
        grads = [p.grad for p in self.params]
        if any(map(operator.is_not, grads, self._grads)):  # new grad tensors: stale views
            self._groups.clear()
            self._grads = grads
        if (lo, hi) not in self._groups:
            mask = torch.tensor(self.active[lo:hi], dtype=torch.float32, device=self.steps.device)
            self._groups[lo, hi] = (self._build_groups(lo, hi), mask)
        groups, mask = self._groups[lo, hi]
        self.steps[lo:hi].add_(mask)  # (M,) only active models advance
        for group in groups:
            self._update(group)

    def _build_groups(self, lo: int, hi: int) -> list[_Group]:
        """Maximal runs a:b within lo:hi of active neighbours with equal hyperparameters."""
        groups, a = [], lo
        while a < hi:
            hyper, b = self._hyper(a), a + 1
            while b < hi and self.active[a] and self._hyper(b) == hyper and self.active[b]:
                b += 1
            if self.active[a]:
                groups.append(self._group(a, b, hyper))
            a = b
        return groups

    def _hyper(self, i: int) -> tuple[float, float, float]:
        return self.lrs[i], self.weight_decays[i], self.momentums[i]

    def _group(self, a: int, b: int, hyper: tuple[float, float, float]) -> _Group:
        # one tensor per model and param, not a slice a:b: the kernel then meets each model's
        # tensors exactly as a solo run does (vector body vs tail), so rounding matches too
        grads = [_grad(p) for p in self.params]
        lists: list[list[Tensor]] = [self.params, grads, *self.state.values()]
        tensors = [[t[i] for i in range(a, b) for t in tl] for tl in lists]
        steps = [self.steps[i] for i in range(a, b) for _ in self.params]
        return _Group(*hyper, tensors=tensors, steps=steps)

    def _update(self, g: _Group) -> None:
        if self.kind == "sgd":
            params, grads, bufs = g.tensors
            bufs = bufs if g.momentum else []
            if self.fused:
                torch._fused_sgd_(
                    params,
                    grads,
                    bufs,
                    weight_decay=g.weight_decay,
                    momentum=g.momentum,
                    lr=g.lr,
                    dampening=0.0,
                    nesterov=False,
                    maximize=False,
                    is_first_step=False,
                )
            else:
                torch_sgd.sgd(
                    params,
                    grads,
                    list(bufs) if bufs else [None] * len(params),
                    foreach=True,
                    weight_decay=g.weight_decay,
                    momentum=g.momentum,
                    lr=g.lr,
                    dampening=0.0,
                    nesterov=False,
                    maximize=False,
                )
            return
        params, grads, exp_avg, exp_avg_sq = g.tensors
        none: list[Tensor] = []  # no max_exp_avg_sqs: amsgrad is off
        kw: dict[str, Any] = {
            "lr": g.lr,
            "beta1": BETAS[0],
            "beta2": BETAS[1],
            "eps": EPS,
            "weight_decay": g.weight_decay,
            "amsgrad": False,
            "maximize": False,
        }
        if self.fused:
            kernel = torch._fused_adamw_ if self.kind == "adamw" else torch._fused_adam_
            kernel(params, grads, exp_avg, exp_avg_sq, none, g.steps, **kw)
            return
        # torch's functional API advances the steps itself: hand it copies one behind
        steps = [s - 1 for s in g.steps]
        torch_adam.adam(
            params,
            grads,
            exp_avg,
            exp_avg_sq,
            none,
            steps,
            foreach=True,
            decoupled_weight_decay=self.kind == "adamw",
            **kw,
        )

    def state_dict(self) -> dict[str, Any]:
        """Step counts, activity and per-param state, as CPU tensors."""
        return {
            "kind": self.kind,
            "active": list(self.active),
            "steps": self.steps.cpu().clone(),
            **{n: [t.cpu().clone() for t in ts] for n, ts in self.state.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore in place (views held by kernel groups stay valid)."""
        if state["kind"] != self.kind or len(state["active"]) != len(self.active):
            raise ValueError("optimizer state is for another optimizer or group size")
        with torch.no_grad():
            self.steps.copy_(state["steps"])
            for name, tensors in self.state.items():
                for t, saved in zip(tensors, state[name], strict=True):
                    t.copy_(saved)
        self.active = list(state["active"])
        self._groups.clear()


def _grad(param: Tensor) -> Tensor:
    """The param's gradient buffer; step() runs after loss_and_grad_ wrote every one."""
    if param.grad is None:
        raise RuntimeError("step() before loss_and_grad_: a parameter has no gradient")
    return param.grad

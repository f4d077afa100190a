"""The stacked MLP: M models of one shape D -> hidden... -> C trained as one module.

Layer l holds a weight (M, in, out) and a bias (M, 1, out), so one batched matmul runs every
model. Models are ordered so that each activation covers a contiguous slice of the stack.
Besides an autograd-correct `forward`, `loss_and_grad_` computes the cross-entropy loss and
writes the gradients by hand into persistent `.grad` buffers: autograd's per-node overhead and
per-batch gradient allocations cost 10-25% of a small MLP's step on a CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

aten = torch.ops.aten
LEAKY_SLOPE = 0.01  # torch.nn.LeakyReLU's default


class Act(NamedTuple):
    """An activation: forward, in-place forward (only where backward needs just the output),
    backward(grad, pre-activation z, output h) as autograd itself computes it, nn module."""

    fn: Callable[[Tensor], Tensor]
    fn_: Callable[[Tensor], Tensor] | None
    grad: Callable[[Tensor, Tensor, Tensor], Tensor]
    module: Callable[[], nn.Module]


ACTIVATIONS: dict[str, Act] = {
    "sigmoid": Act(
        torch.sigmoid, torch.sigmoid_, lambda g, z, h: aten.sigmoid_backward(g, h), nn.Sigmoid
    ),
    "relu": Act(torch.relu, torch.relu_, lambda g, z, h: aten.threshold_backward(g, h, 0), nn.ReLU),
    "tanh": Act(torch.tanh, torch.tanh_, lambda g, z, h: aten.tanh_backward(g, h), nn.Tanh),
    "leaky_relu": Act(
        lambda z: F.leaky_relu(z, LEAKY_SLOPE),
        None,
        lambda g, z, h: aten.leaky_relu_backward(g, z, LEAKY_SLOPE, False),
        lambda: nn.LeakyReLU(LEAKY_SLOPE),
    ),
    "gelu": Act(F.gelu, None, lambda g, z, h: aten.gelu_backward(g, z), nn.GELU),
    "elu": Act(
        F.elu,
        lambda z: F.elu(z, inplace=True),
        lambda g, z, h: aten.elu_backward(g, 1.0, 1.0, 1.0, True, h),
        nn.ELU,
    ),
    "silu": Act(F.silu, None, lambda g, z, h: aten.silu_backward(g, z), nn.SiLU),
}


def init_linear_(weight: Tensor, bias: Tensor, init: str, gen: torch.Generator) -> None:
    """Initialise one nn.Linear-shaped layer (weight (out, in)) in place from `gen`.

    he: kaiming normal, fan_in, relu gain; xavier: xavier uniform; both with zero biases.
    default: exactly nn.Linear.reset_parameters, drawing from `gen`.
    """
    with torch.no_grad():
        if init == "he":
            nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu", generator=gen)
            bias.zero_()
        elif init == "xavier":
            nn.init.xavier_uniform_(weight, generator=gen)
            bias.zero_()
        elif init == "default":
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=gen)
            bound = 1 / math.sqrt(weight.shape[1])
            nn.init.uniform_(bias, -bound, bound, generator=gen)
        else:
            raise ValueError(f"unknown init {init!r}")


def _runs(names: Sequence[str]) -> list[tuple[str, int, int]]:
    """Contiguous runs (name, start, stop) of equal names."""
    runs: list[tuple[str, int, int]] = []
    for i, name in enumerate(names):
        if runs and runs[-1][0] == name:
            runs[-1] = (name, runs[-1][1], i + 1)
        else:
            runs.append((name, i, i + 1))
    return runs


class StackedMLP(nn.Module):
    """M independent MLPs D -> hidden... -> C with per-model activation, as stacked tensors."""

    def __init__(
        self,
        widths: Sequence[int],
        activations: Sequence[str],
        *,
        device: torch.device | str = "cpu",
        batched: bool = False,
    ) -> None:
        super().__init__()
        # True: one bmm over the stack on a CPU too, the arithmetic a GPU does (see _matmul)
        self.batched = batched
        unknown = set(activations) - ACTIVATIONS.keys()
        if unknown or not activations:
            raise ValueError(f"activations must be a non-empty list of {list(ACTIVATIONS)}")
        self.widths = list(widths)
        self.activations = list(activations)
        self.runs = _runs(self.activations)
        m = len(self.activations)
        pairs = list(zip(self.widths[:-1], self.widths[1:], strict=True))
        self.weights = nn.ParameterList(
            nn.Parameter(torch.zeros(m, i, o, device=device)) for i, o in pairs
        )  # (M, in, out)
        self.biases = nn.ParameterList(
            nn.Parameter(torch.zeros(m, 1, o, device=device)) for _, o in pairs
        )  # (M, 1, out)
        # the same Parameter objects (load_state_dict and .to() keep them), without
        # ParameterList's per-item Python indexing on the hot path
        self.layers = list(zip(self.weights, self.biases, strict=True))

    @property
    def num_models(self) -> int:
        return len(self.activations)

    def init_model_(self, i: int, *, init: str, seed: int) -> None:
        """Initialise model i from its own seed, layer by layer as nn.Linear stores them.

        Draws depend only on (init, seed, widths), never on M or i: model i gets exactly the
        weights a standalone nn.Sequential initialised with `init_linear_` would get.
        """
        gen = torch.Generator().manual_seed(seed)  # CPU: the same weights on every device
        for weight, bias in zip(self.weights, self.biases, strict=True):
            w = torch.empty(weight.shape[2], weight.shape[1])  # (out, in), nn.Linear layout
            b = torch.empty(weight.shape[2])  # (out,)
            init_linear_(w, b, init, gen)
            with torch.no_grad():
                weight[i].copy_(w.T)
                bias[i, 0].copy_(b)

    def _part(self, models: slice | None) -> tuple[int, int, list[tuple[str, int, int]]]:
        """Bounds lo:hi of a slice of the stack and its activation runs, relative to lo."""
        lo, hi, _ = (models or slice(None)).indices(self.num_models)
        runs = [(n, max(a, lo) - lo, min(b, hi) - lo) for n, a, b in self.runs if a < hi and b > lo]
        return lo, hi, runs

    def _sub(self, t: Tensor, lo: int, hi: int) -> Tensor:
        """t's slice lo:hi of the stack; t itself for the whole stack (a view op saved)."""
        return t if hi - lo == self.num_models else t[lo:hi]

    @staticmethod
    def _act(z: Tensor, runs: list[tuple[str, int, int]]) -> Tensor:
        """Each model's activation on its slice of z (M, B, H); in place when that is safe."""
        if len(runs) == 1:
            act = ACTIVATIONS[runs[0][0]]
            return act.fn_(z) if act.fn_ is not None else act.fn(z)
        return torch.cat([ACTIVATIONS[n].fn(z[a:b]) for n, a, b in runs])

    @staticmethod
    def _act_backward(g: Tensor, z: Tensor, h: Tensor, runs: list[tuple[str, int, int]]) -> Tensor:
        """Gradient through the activations, slice by slice."""
        if len(runs) == 1:
            return ACTIVATIONS[runs[0][0]].grad(g, z, h)
        return torch.cat([ACTIVATIONS[n].grad(g[a:b], z[a:b], h[a:b]) for n, a, b in runs])

    def _matmul(
        self, a: Tensor, b: Tensor, bias: Tensor | None = None, out: Tensor | None = None
    ) -> Tensor:
        """(m, n, k) @ (m, k, p) [+ bias (m, 1, p)] as one bmm, except on a CPU with m > 1
        unless `batched`: one bmm per model there, because MKL's batched GEMM rounds
        differently with the batch size (Adam amplifies that), while a 1-batch bmm is exactly
        what a solo run computes."""
        if len(b) == 1 or self.batched or not b.is_cpu:
            return _bmm(a, b, bias, out)
        parts = [
            (a[i : i + 1], b[i : i + 1], None if bias is None else bias[i : i + 1])
            for i in range(len(b))
        ]
        if torch.is_grad_enabled():  # out= is not differentiable
            return torch.cat([_bmm(*p) for p in parts])
        out = a.new_empty(len(b), a.shape[1], b.shape[2]) if out is None else out
        for i, p in enumerate(parts):
            _bmm(*p, out=out[i : i + 1])
        return out

    def _forward(self, x: Tensor, models: slice | None) -> tuple[Tensor, list[Tensor]]:
        """Logits (M, B, C) and the per-layer tensors backward needs: [x, z1, h1, z2, ...]
        (z is h after an in-place activation; backward then reads only h)."""
        lo, hi, runs = self._part(models)
        # shared x (B, D): expanding is free, and one bmm over stride-0 input was as fast as
        # the alternatives measured (matmul broadcast, one (B, D) @ (D, M*H) GEMM)
        h = x.expand(hi - lo, *x.shape) if x.dim() == 2 else x  # (M, B, D)
        saved = [x]
        last = len(self.weights) - 1
        for k, (weight, bias) in enumerate(self.layers):
            weight, bias = self._sub(weight, lo, hi), self._sub(bias, lo, hi)
            z = self._matmul(h, weight, bias)  # (M, B, out)
            h = self._act(z, runs) if k < last else z
            saved += [z, h]
        return h, saved

    def forward(self, x: Tensor, models: slice | None = None) -> Tensor:
        """Logits (M, B, C) from a shared batch x (B, D) or per-model batches (M, B, D);
        `models` restricts the pass to a slice of the stack."""
        return self._forward(x, models)[0]

    @torch.no_grad()
    def loss_and_grad_(self, x: Tensor, y: Tensor, models: slice | None = None) -> Tensor:
        """Per-model mean cross-entropy (M,); writes d(sum of losses)/d(param) into `.grad`.

        y is (B,) shared or (M, B). Models are independent, so each model's gradient is that
        of its own loss; with `models`, only that slice's gradients are written. The input
        gradient of layer 1 is never computed.
        """
        lo, hi, runs = self._part(models)
        logits, saved = self._forward(x, models)  # (M, B, C)
        m, batch = logits.shape[:2]
        target = y.expand(m, batch).unsqueeze(-1)  # (M, B, 1)
        logp = torch.log_softmax(logits, dim=-1)  # (M, B, C)
        loss = logp.gather(-1, target).mean(dim=(1, 2)).neg_()  # (M,)
        # d(mean CE)/d(logits) = (softmax - onehot) / B
        minus_one = logits.new_full((), -1.0).expand(target.shape)  # (M, B, 1) stride 0
        g = logp.exp_().scatter_add_(-1, target, minus_one).div_(batch)
        for k in range(len(self.layers) - 1, -1, -1):
            weight, bias = self.layers[k]
            grad_w, grad_b = self._sub(_grad(weight), lo, hi), self._sub(_grad(bias), lo, hi)
            weight = self._sub(weight, lo, hi)
            h_in = saved[2 * k]  # (M, B, in), or shared (B, in) for layer 1
            h_in_t = h_in.mT.expand(m, *h_in.mT.shape) if h_in.dim() == 2 else h_in.mT
            self._matmul(h_in_t, g, out=grad_w)  # (M, in, out)
            torch.sum(g, dim=1, keepdim=True, out=grad_b)  # (M, 1, out)
            if k > 0:
                g = self._matmul(g, weight.mT)  # (M, B, in)
                g = self._act_backward(g, saved[2 * k - 1], saved[2 * k], runs)
        return loss

    def export(self, i: int) -> nn.Sequential:
        """Model i as a plain torch nn.Sequential of nn.Linear and activation modules."""
        layers: list[nn.Module] = []
        last = len(self.weights) - 1
        for k, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            # skip_init: no default init, so exporting never draws from the global RNG
            linear = torch.nn.utils.skip_init(
                nn.Linear, weight.shape[1], weight.shape[2], device=weight.device
            )
            with torch.no_grad():
                linear.weight.copy_(weight[i].T)  # nn.Linear stores (out, in)
                linear.bias.copy_(bias[i, 0])
            layers.append(linear)
            if k < last:
                layers.append(ACTIVATIONS[self.activations[i]].module())
        return nn.Sequential(*layers)


def _bmm(a: Tensor, b: Tensor, bias: Tensor | None = None, out: Tensor | None = None) -> Tensor:
    """a @ b [+ bias] as one (baddbmm) call."""
    return torch.bmm(a, b, out=out) if bias is None else torch.baddbmm(bias, a, b, out=out)


def _grad(param: nn.Parameter) -> Tensor:
    """The parameter's persistent gradient buffer, created on first use."""
    if param.grad is None:
        param.grad = torch.zeros_like(param)
    return param.grad

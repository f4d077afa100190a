"""StackedMLP: init, export and hand-written gradients against plain torch."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mlpcore.model import ACTIVATIONS, StackedMLP, init_linear_

WIDTHS = [12, 9, 7, 5]
ACTS = list(ACTIVATIONS)


def stacked(activations, inits=None, seeds=None) -> StackedMLP:
    model = StackedMLP(WIDTHS, activations)
    for i in range(len(activations)):
        model.init_model_(i, init=(inits or ["default"] * 99)[i], seed=(seeds or range(99))[i])
    return model


def test_export_forward_equals_stacked_forward():
    model = stacked(ACTS)
    x = torch.randn(6, 12)  # shared
    xs = torch.randn(len(ACTS), 6, 12)  # per model
    shared, per_model = model(x), model(xs)  # (M, B, C)
    for i, name in enumerate(ACTS):
        plain = model.export(i)
        assert isinstance(plain, nn.Sequential)
        assert isinstance(plain[1], type(ACTIVATIONS[name].module()))
        torch.testing.assert_close(plain(x), shared[i], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(plain(xs[i]), per_model[i], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shared", [True, False])
def test_hand_written_gradients_equal_autograd(shared):
    model = stacked(ACTS)
    m = len(ACTS)
    x = torch.randn(6, 12) if shared else torch.randn(m, 6, 12)
    y = torch.randint(0, 5, (6,)) if shared else torch.randint(0, 5, (m, 6))
    loss = model.loss_and_grad_(x, y)
    manual = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    logits = model(x)
    reference = torch.stack([F.cross_entropy(logits[i], y.expand(m, 6)[i]) for i in range(m)])
    reference.sum().backward()
    torch.testing.assert_close(loss, reference.detach())
    for got, param in zip(manual, model.parameters(), strict=True):
        torch.testing.assert_close(got, param.grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "elu"])
def test_in_place_activations_keep_autograd_correct(name):
    model = stacked([name, name])
    x = torch.randn(4, 12)
    model(x).sum().backward()  # must not raise "modified by an inplace operation"
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("init", ["he", "xavier", "default"])
def test_init_depends_only_on_the_spec_not_on_stack_size_or_position(init):
    alone = stacked(["relu"], [init], [7])
    crowd = stacked(["tanh", "relu", "relu", "gelu"], [init] * 4, [1, 2, 7, 3])
    for a, b in zip(alone.parameters(), crowd.parameters(), strict=True):
        assert torch.equal(a[0], b[2])
    assert not torch.equal(crowd.weights[0][1], crowd.weights[0][2])  # other seed, other draw


def test_default_init_equals_nn_linear_under_the_same_seed():
    with torch.random.fork_rng():
        torch.manual_seed(5)
        reference = nn.Sequential(
            nn.Linear(12, 9), nn.ReLU(), nn.Linear(9, 7), nn.ReLU(), nn.Linear(7, 5)
        )
    exported = stacked(["relu"], ["default"], [5]).export(0)
    for a, b in zip(reference.parameters(), exported.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("init", ["he", "xavier"])
def test_he_and_xavier_equal_torch_init_on_a_standalone_model(init):
    reference = nn.Sequential(
        *[
            torch.nn.utils.skip_init(nn.Linear, i, o)
            for i, o in zip(WIDTHS[:-1], WIDTHS[1:], strict=True)
        ]
    )
    gen = torch.Generator().manual_seed(11)
    for layer in reference:
        if init == "he":
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu", generator=gen)
        else:
            nn.init.xavier_uniform_(layer.weight, generator=gen)
        nn.init.zeros_(layer.bias)
    exported = stacked(["relu"], [init], [11]).export(0)
    for a, b in zip(reference.parameters(), exported[::2].parameters(), strict=True):
        assert torch.equal(a, b)


def test_he_init_has_the_kaiming_scale():
    weight, bias = torch.empty(256, 1024), torch.empty(256)
    init_linear_(weight, bias, "he", torch.Generator().manual_seed(0))
    assert weight.std().item() == pytest.approx((2 / 1024) ** 0.5, rel=0.02)
    assert torch.count_nonzero(bias) == 0


def test_init_never_touches_the_global_rng():
    state = torch.random.get_rng_state()
    stacked(["relu", "tanh"]).export(1)
    assert torch.equal(state, torch.random.get_rng_state())


def test_unknown_activation_is_rejected():
    with pytest.raises(ValueError, match="activations"):
        StackedMLP(WIDTHS, ["swish"])

"""A trained run as a plain torch model: its weights in `nn.Sequential` state-dict form and a
JSON-able config that rebuilds the module (widths, activation, input scaling, dataset, spec).

The weights are what safetensors stores (the worker writes them, the client loads them); the
rebuilt module takes raw inputs as the dataset holds them (uint8 pixels, any image shape) and
scales them exactly as training did, so `model(x_test)` gives the run's test logits.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import Tensor, nn

from mlpcore.catalog import CLASS_NAMES
from mlpcore.model import ACTIVATIONS
from mlpcore.spec import RunSpec

MODEL_FORMAT = 1
LAYOUT = "flatten, rescale (x.float() / divide_by), then fc1, act1, fc2, ... (logits)"


class Rescale(nn.Module):
    """x.float() / divisor: torchvision's ToTensor scaling, as mlpcore.data's features()."""

    def __init__(self, divisor: float) -> None:
        super().__init__()
        self.divisor = float(divisor)

    def forward(self, x: Tensor) -> Tensor:
        return x.float().div(self.divisor)

    def extra_repr(self) -> str:
        return f"divisor={self.divisor}"


def model_config(spec: RunSpec, *, num_features: int, num_classes: int, divisor: float) -> dict:
    """How to rebuild a run's model, JSON-able."""
    return {
        "format": MODEL_FORMAT,
        "layout": LAYOUT,
        "widths": [num_features, *spec.hidden, num_classes],
        "activation": spec.activation,
        "input": {"flatten": True, "divide_by": float(divisor)},
        "dataset": spec.dataset,
        "class_names": list(CLASS_NAMES[spec.dataset]),
        "spec": spec.model_dump(mode="json"),
    }


def sequential_state(layers: list[tuple[Tensor, Tensor]]) -> dict[str, Tensor]:
    """State dict of the rebuilt module from one model's stacked-layout (W (in, out), b (1,
    out)) pairs: nn.Linear keeps (out, in), so weights are transposed; CPU, contiguous."""
    state: dict[str, Tensor] = {}
    for k, (weight, bias) in enumerate(layers, start=1):
        state[f"fc{k}.weight"] = weight.detach().T.contiguous().cpu()
        state[f"fc{k}.bias"] = bias.detach().reshape(-1).contiguous().cpu()
    return state


def build_sequential(
    config: dict[str, Any], state: dict[str, Tensor] | None = None
) -> nn.Sequential:
    """The module a config describes, with `state` loaded (strictly) when given."""
    if config.get("format") != MODEL_FORMAT:
        raise ValueError(f"model format {config.get('format')!r} is not {MODEL_FORMAT}")
    widths, act = config["widths"], ACTIVATIONS[config["activation"]]
    modules: list[tuple[str, nn.Module]] = [
        ("flatten", nn.Flatten()),
        ("rescale", Rescale(config["input"]["divide_by"])),
    ]
    for k, (w_in, w_out) in enumerate(zip(widths, widths[1:], strict=False), start=1):
        # skip_init: the weights come from `state`; never draw from the global RNG
        modules.append((f"fc{k}", torch.nn.utils.skip_init(nn.Linear, w_in, w_out)))
        if k < len(widths) - 1:
            modules.append((f"act{k}", act.module()))
    model = nn.Sequential(OrderedDict(modules))
    if state is not None:
        model.load_state_dict(state, strict=True)
    return model.eval()

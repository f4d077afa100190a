"""The fused training step eager vs under torch.compile, one process: is compiling worth it?

A step is StackedMLP.loss_and_grad_ (forward and the hand-written backward) plus the
StackedOptimizer's Adam step, on one batch of random pixels, for passes of 1, 4 and 16 models
of the study's 512-256-128 net. The compiled side wraps loss_and_grad_ in torch.compile
(inductor; on CUDA mode "reduce-overhead", which captures the step in a CUDA graph); the
optimizer already is one fused kernel per run of models. Each side is warmed (the compile
counted apart), then timed over --steps steps; the sides alternate --repeat times.

    python benchmarks/compile_step.py [--device cpu|cuda] [--steps 200] [--repeat 3]
    python benchmarks/compile_step.py --quick        # tiny: a smoke check that both sides run
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import _common as bench  # benchmarks/ is on sys.path when this runs as a script
import torch

from mlpcore.device import configure_process, resolve_device
from mlpcore.model import StackedMLP
from mlpcore.optim import StackedOptimizer

Step = Callable[[], object]


def build(
    widths: list[int], models: int, device: torch.device
) -> tuple[StackedMLP, StackedOptimizer]:
    model = StackedMLP(widths, ["relu"] * models, device=device)
    for i in range(models):
        model.init_model_(i, init="he", seed=i)
    opt = StackedOptimizer(
        list(model.parameters()),
        "adam",
        lrs=[1e-3] * models,
        momentums=[0.9] * models,
        weight_decays=[0.0] * models,
    )
    return model, opt


def steps(device: torch.device, widths: list[int], models: int, batch: int) -> dict[str, Step]:
    """Each side's step; the compiled one's first call compiles."""
    x = torch.rand(batch, widths[0], device=device)
    y = torch.randint(0, widths[-1], (batch,), device=device)
    sides: dict[str, Step] = {}
    for name in ("eager", "compiled"):
        model, opt = build(widths, models, device)
        fn = model.loss_and_grad_
        if name == "compiled":
            mode = "reduce-overhead" if device.type == "cuda" else None
            fn = torch.compile(fn, dynamic=False, mode=mode)

        def step(fn=fn, opt=opt) -> object:
            loss = fn(x, y)
            opt.step()
            return loss

        sides[name] = step
    return sides


def per_step(device: torch.device, step: Step, n: int) -> float:
    """Seconds per step over n steps (the device's queue drained at both ends)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    _, seconds = bench.timed(lambda: [step() for _ in range(n)])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return seconds / n


def main() -> None:
    parser = bench.make_parser(__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke check")
    args = parser.parse_args()
    configure_process()
    device = resolve_device(args.device)
    widths, groups, n = ([784, 512, 256, 128, 10], [1, 4, 16], args.steps)
    if args.quick:
        widths, groups, n, args.repeat = [64, 16, 10], [1, 4], 5, 1
    print(f"hidden {widths[1:-1]}, batch 64, Adam, device {device}, {bench.torch_line()}, "
          f"median of {args.repeat} x {n} steps")  # fmt: skip
    rows = []
    for models in groups:
        eager, compiled = steps(device, widths, models, 64).values()
        try:
            _, compile_s = bench.timed(lambda c=compiled: [c() for _ in range(3)])
        except Exception as exc:  # a failed compile is a finding, not a crash
            print(f"{models} models: compile failed: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        for _ in range(3):
            eager()
        timings = bench.alternate(
            args.repeat, [lambda f=f: per_step(device, f, n) for f in (eager, compiled)]
        )
        e, c = (statistics.median(t) for t in timings)
        rows.append((f"{models} models", e * 1e3, c * 1e3, e / c, compile_s))
    bench.print_table(
        "pass",
        12,
        [("eager ms", 10, ".2f"), ("compiled ms", 13, ".2f"), ("speed-up", 10, ".2f"),
         ("compile s", 11, ".1f")],
        rows,
    )  # fmt: skip
    bench.print_machine_load()


if __name__ == "__main__":
    main()

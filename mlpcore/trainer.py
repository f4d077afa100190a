"""The fused group's training loop: M >= 1 runs trained together as one StackedMLP.

`mlpcore.fused.train_group` is the public entry point; this module holds its state and loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import Tensor

from mlpcore import continuation, ending, trainer_state
from mlpcore.callbacks import ABANDONED, Abandon, Callback, EpochMetrics, RunResult
from mlpcore.data import TensorData, epoch_order
from mlpcore.evaluate import evaluate
from mlpcore.memory import cpu_models_per_pass, passes
from mlpcore.model import StackedMLP
from mlpcore.optim import StackedOptimizer
from mlpcore.outcome import Best, Criterion, default_criterion
from mlpcore.schedule import Branches, spec_schedule
from mlpcore.spec import RunSpec
from mlpcore.status import RunStatus

POLL_EVERY = 16  # batches between should_stop()/divergence polls: cancel latency vs syncs


def _stack_key(spec: RunSpec) -> tuple[Any, ...]:
    # longest first: runs that end early leave a gap at the end, not holes in the passes; then
    # activation: each becomes one contiguous slice; then the optimizer hyperparameters, so
    # neighbours share fused optimizer calls
    return -spec.epochs, spec.activation, spec.lr, spec.weight_decay, spec.momentum


class GroupTrainer:
    """A fused group's state; models live in stack order, `self.order[j]` is the caller index.

    Runs that share a prefix (mlpcore.schedule.Branches) train it once: position i trains from
    epoch `branches.starts[i]` on, and until then its numbers are those of the position it
    follows (`source()`), whose state is copied into it when it branches off. The stack holds
    the runs by start epoch, so an epoch trains a prefix of it; a stopped run whose state
    others still follow (`needed`) goes on training for them.
    """

    def __init__(
        self,
        specs: list[RunSpec],
        callbacks: list[Callback | None],
        data: TensorData,
        device: torch.device,
        models_per_pass: int | None = None,
        best_by: list[Criterion | None] | None = None,
        batched: bool = False,
        share: bool = True,
    ) -> None:
        self.caller_specs, self.data, self.device = specs, data, device
        schedules = [spec_schedule(s) for s in specs]
        self.order, self.branches = Branches.stacked(specs, schedules, key=_stack_key, share=share)
        self.specs = [specs[i] for i in self.order]
        self.callbacks = [callbacks[i] or Callback() for i in self.order]
        first = self.specs[0]
        widths = [data.num_features, *first.hidden, data.num_classes]
        acts = [s.activation for s in self.specs]
        self.model = StackedMLP(widths, acts, device=device, batched=batched)
        for i, s in enumerate(self.specs):
            self.model.init_model_(i, init=s.init, seed=s.seed)
        self.opt = StackedOptimizer(
            list(self.model.parameters()),
            first.optimizer,
            lrs=[s.lr for s in self.specs],
            momentums=[s.momentum for s in self.specs],
            weight_decays=[s.weight_decay for s in self.specs],
        )
        self.lrs = [schedules[i] for i in self.order]
        m = len(specs)
        # plain strings, not RunStatus members: they go into checkpoints (weights_only loads)
        self.status: list[str] = [RunStatus.running.value] * m
        self.reasons: list[str | None] = [None] * m
        self.history: list[list[EpochMetrics]] = [[] for _ in range(m)]
        criteria = best_by or [None] * m
        self.best = [Best(*(criteria[i] or default_criterion(specs[i]))) for i in self.order]
        self.confusion: list[Tensor | None] = [None] * m  # (C, C) of each run's last epoch
        self.runtimes = [0.0] * m  # seconds each run trained, frozen when it stops
        self.runtime_offsets = [0.0] * m  # seconds a continued run trained before this group
        self.ended: dict[int, RunResult] = {}  # what on_end was given, by stack position
        # a CPU pass keeps its models in cache (mlpcore.memory); a GPU takes all at once
        cpu = device.type == "cpu"
        self.per_pass = models_per_pass or (
            cpu_models_per_pass(first, data.num_features, data.num_classes) if cpu else m
        )
        self.last = max(s.epochs for s in self.specs)  # the group trains until the longest ends
        self.epoch = 0  # completed epochs
        self.first_epoch = 0  # the epoch this group started at (a continued one: later)
        self.parts = self._parts(0)
        self.owned = True  # False once a run was abandoned: the group's file is not ours now
        self.runtime_before = 0.0  # seconds spent before a resume
        self.started = time.perf_counter()

    def active(self, part: slice = slice(None)) -> list[int]:
        """Stack positions of the running models (within `part`)."""
        lo, hi, _ = part.indices(len(self.status))
        return [i for i in range(lo, hi) if self.status[i] == RunStatus.running]

    def runtime(self) -> float:
        return self.runtime_before + time.perf_counter() - self.started

    def now(self) -> int:
        """The epoch being trained, or the last one once all are."""
        return min(self.epoch, self.last - 1)

    def source(self, i: int, epoch: int | None = None) -> int:
        """The stack position that trains position i's model in `epoch` (default: now, or
        its last epoch once it has trained them all)."""
        epoch = min(self.now(), self.specs[i].epochs - 1) if epoch is None else epoch
        return self.branches.source(i, epoch)

    def needed(self, epoch: int | None = None) -> set[int]:
        """Stack positions that some running run's numbers come from."""
        return self.branches.needed(self.active(), self.now() if epoch is None else epoch)

    def _parts(self, epoch: int) -> list[slice]:
        """The passes of the epoch: runs of neighbouring positions that some running run
        needs (a run that has ended, and that nobody follows, trains no more), per_pass at
        most a pass."""
        return passes(self.needed(epoch), self.per_pass)

    def _branch(self, epoch: int) -> None:
        """Before the epoch (the current one): the runs that branch off take their leader's
        state, the passes widen to them, and what nobody needs any more stops updating."""
        needed = self.needed(epoch)
        self.parts = passes(needed, self.per_pass)
        for k in self.branches.branching(epoch):
            if k in needed:
                self._copy(self.source(k, epoch - 1), k)
        self._settle(needed)

    @torch.no_grad()
    def _copy(self, src: int, dst: int) -> None:
        """Position src's weights and optimizer state into position dst."""
        for p in self.model.parameters():
            p[dst].copy_(p[src])
        self.opt.copy_model(src, dst)

    def _settle(self, needed: set[int] | None = None) -> None:
        """Freeze the trained positions that no running run needs now (`needed`, if known)."""
        needed = self.needed() if needed is None else needed
        for i in range(self.branches.width(self.now())):
            if i not in needed:
                self.opt.freeze(i)

    def run(self, on_checkpoint: Callable[[dict[str, Any]], None] | None, poll_every: int) -> None:
        """Train the remaining epochs; stops early once every run has stopped."""
        self.started = time.perf_counter()
        self.model.train()
        for epoch in range(self.epoch, self.last):
            start = time.perf_counter()
            self._branch(epoch)
            self.opt.set_lrs([lrs[min(epoch, len(lrs) - 1)] for lrs in self.lrs])  # ended: any
            orders = self._orders(epoch)
            sums = [self._train_part(epoch, part, orders, poll_every) for part in self.parts]
            if not self.active():
                break
            train_loss = self._per_position(sums).div_(len(self.data.y_train)).tolist()
            self._end_epoch(epoch, train_loss, start)
            self.epoch = epoch + 1
            for i in self.active():  # runs of fewer epochs than the group end on their last
                if self.specs[i].epochs == self.epoch < self.last:
                    self._stop(i, RunStatus.succeeded, None)
            if on_checkpoint is not None and self.owned:
                on_checkpoint(self.state_dict())
        for i in self.active():
            self._stop(i, RunStatus.succeeded, None)

    def _per_position(self, sums: list[Tensor]) -> Tensor:
        """The passes' (m,) sums as one (M,) tensor by stack position (0 where none trained)."""
        out = torch.zeros(len(self.status), device=self.device)
        for part, values in zip(self.parts, sums, strict=True):
            out[part] = values
        return out

    def _orders(self, epoch: int) -> dict[int, Tensor]:
        """Each seed's sample order (N,) for the epoch, on the device."""
        n = len(self.data.y_train)
        return {
            seed: epoch_order(seed, epoch, n).to(self.device)
            for seed in {s.seed for s in self.specs}
        }

    def _train_part(
        self, epoch: int, part: slice, orders: dict[int, Tensor], poll_every: int
    ) -> Tensor:
        """One epoch of the models in `part`; their summed train losses (m,), on the device."""
        data, model, opt, size = self.data, self.model, self.opt, self.specs[0].batch_size
        n, seeds = len(data.y_train), [s.seed for s in self.specs[part]]
        loss_sum = torch.zeros(len(seeds), device=self.device)  # (m,)
        # one seed: one batch order, so the input batch is gathered once for all models
        order = (
            orders[seeds[0]]
            if len(set(seeds)) == 1
            else torch.stack([orders[seed] for seed in seeds])
        )  # (N,) or (m, N)
        trains, mask = self._mask(part)
        for k, start in enumerate(range(0, n, size) if trains else ()):
            idx = order[..., start : start + size]  # (B,) or (m, B)
            loss = model.loss_and_grad_(*self._batch(idx), models=part)  # (m,)
            opt.step(part)
            # a stopped run's loss (maybe NaN) must not reach its sum: where, not multiply
            loss_sum.add_(
                loss if mask is None else torch.where(mask, loss, 0.0), alpha=idx.shape[-1]
            )
            polling = (k + 1) % poll_every == 0 and start + size < n  # the end polls anyway
            if polling and self._poll(epoch, loss_sum, part, cancel=True):
                trains, mask = self._mask(part)
                if not trains:
                    break
        self._poll(epoch, loss_sum, part, cancel=False)
        return loss_sum

    def _batch(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        """Inputs (B, D) or (m, B, D) and labels (B,) or (m, B) of the indexed samples."""
        # index_select: several times faster than advanced indexing for row gathers
        data, flat = self.data, idx.reshape(-1)
        x = data.features(data.x_train.index_select(0, flat))  # (B or m*B, D)
        y = data.y_train.index_select(0, flat)
        return (x, y) if idx.dim() == 1 else (x.view(*idx.shape, -1), y.view(idx.shape))

    def _mask(self, part: slice) -> tuple[bool, Tensor | None]:
        """Whether some model of `part` is needed, and a bool (m,) of those that are (None
        when all are: the cheap case)."""
        needed = self.needed()
        on = [i in needed for i in range(*part.indices(len(self.status))[:2])]
        return any(on), None if all(on) else torch.tensor(on, device=self.device)

    def _poll(self, epoch: int, loss_sum: Tensor, part: slice, *, cancel: bool) -> bool:
        """Stop `part`'s runs whose loss went non-finite and (if `cancel`) any run, in any
        part, that asks to stop; True if some run stopped (or was abandoned)."""
        finite = torch.isfinite(loss_sum).tolist()  # one sync per poll
        lo, hi, _ = part.indices(len(self.status))
        running = len(self.active())
        bad = {i for i in self.needed() if lo <= i < hi and not finite[i - lo]}
        stopped = [i for i in self.active() if self.source(i) in bad]
        for i in stopped:
            self._stop(i, RunStatus.diverged, f"loss became non-finite in epoch {epoch + 1}")
        asking = [
            i for i in self.active() if cancel and self._heed(i, self.callbacks[i].should_stop)
        ]
        for i in asking:
            self._stop(i, RunStatus.cancelled, f"cancelled during epoch {epoch + 1}")
        return len(self.active()) < running

    def _end_epoch(self, epoch: int, train: list[float], start: float) -> None:
        """Evaluate, record the epoch for each running model, keep its best epoch, then poll
        cancels (not after the last epoch)."""
        data, c = self.data, self.data.num_classes
        x_test = data.test_features()
        test = evaluate(self.model, self.parts, x_test, data.y_test, c, confusion=True)
        x_val, y_val = data.val_features(), data.y_val
        val = (
            None
            if x_val is None or y_val is None
            else evaluate(self.model, self.parts, x_val, y_val, c)
        )
        assert test.confusion is not None
        seconds = time.perf_counter() - start  # the epoch's training and evaluation
        for i in self.active():
            s = self.source(i, epoch)  # i itself unless it still follows another run
            metrics = EpochMetrics(
                epoch + 1,
                train[s],
                test.loss[s],
                test.accuracy[s],
                self.lrs[i][epoch],
                seconds,
                None if val is None else val.loss[s],
                None if val is None else val.accuracy[s],
            )
            self.history[i].append(metrics)
            self.confusion[i] = test.confusion[s]
            weights = partial(self._layers, s, clone=True) if val is not None else None
            self.best[i].offer(metrics, test.confusion[s], weights)
            self._heed(i, partial(self.callbacks[i].on_epoch_end, metrics))
        for i in self.active():  # not after a run's last epoch: it has ended then
            if epoch + 1 < self.specs[i].epochs and self._heed(i, self.callbacks[i].should_stop):
                self._stop(i, RunStatus.cancelled, f"cancelled after epoch {epoch + 1}")

    def _layers(self, i: int, *, clone: bool = False) -> list[tuple[Tensor, Tensor]]:
        """Model i's (W (in, out), b (1, out)) pairs: views of the stack, or copies."""
        pairs = [(w[i].detach(), b[i].detach()) for w, b in self.model.layers]
        return [(w.clone(), b.clone()) for w, b in pairs] if clone else pairs

    def _heed(self, i: int, hook: Callable[[], bool | None]) -> bool:
        """Call a hook of run i's callback: True if it asks to stop. One that raises Abandon
        drops the run without ending it (no status, no on_end) and no later state is offered."""
        try:
            return bool(hook())
        except Abandon:
            self.status[i], self.owned = ABANDONED, False
            self._settle()
            return False

    def _stop(self, i: int, status: str, reason: str | None) -> None:
        """End run i: freeze its parameters and tell its callback at once."""
        self.status[i], self.reasons[i] = str(status), reason
        self.runtimes[i] = self.runtime_offsets[i] + self.runtime()
        self._settle()
        self.ended[i] = self._result(i)
        self.callbacks[i].on_end(self.ended[i])

    def _result(self, i: int) -> RunResult:
        return ending.run_result(self, i)

    def results(self) -> list[RunResult]:
        """Every run's result in the caller's order (the one its on_end got, if it ended)."""
        return [self.ended.get(j) or self._result(j) for j in self._caller()]

    def state_dict(self) -> dict[str, Any]:
        """Everything a resume needs, on the CPU (see mlpcore.trainer_state)."""
        return trainer_state.state_of(self)

    def _caller(self) -> list[int]:
        """Stack positions in the caller's order."""
        by_caller = {caller: j for j, caller in enumerate(self.order)}
        return [by_caller[i] for i in range(len(self.order))]

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a `state_dict()`; CheckpointError when it belongs to other runs."""
        trainer_state.restore(self, state)

    def continue_runs(self, states: list[dict[str, Any]]) -> None:
        """Start from each run's final state (mlpcore.continuation), in the caller's order."""
        continuation.continue_from(self, states)

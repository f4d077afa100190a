"""How a run of a fused group ended, as its RunResult: status, epochs, final numbers, weights
(its own, or a copy of those of the run it shared its epochs with), how to rebuild the model,
and for a succeeded run the state to continue it from."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from mlpcore import continuation
from mlpcore.callbacks import ABANDONED, RunResult
from mlpcore.export import model_config, sequential_state
from mlpcore.outcome import result_dict
from mlpcore.status import RunStatus

if TYPE_CHECKING:
    from mlpcore.trainer import GroupTrainer


def run_result(trainer: GroupTrainer, i: int) -> RunResult:
    """Stack position i's result now (no numbers for a diverged or abandoned run, or one
    stopped before its first epoch ended)."""
    spec, status, best = trainer.specs[i], trainer.status[i], trainer.best[i]
    history = list(trainer.history[i])
    run = RunResult(spec, status, history, None, trainer.reasons[i], str(trainer.device))
    run.shared_until = min(trainer.branches.starts[i], len(history))
    if not history or status in (RunStatus.diverged, ABANDONED):
        return run
    run.result = result_dict(spec, history, best, trainer.confusion[i], trainer.runtimes[i])
    if (shared := run.shared_until - trainer.first_epoch) > 0:
        run.result["shared_epochs"] = shared  # trained once, with runs of its prefix
    # a copy where the weights are another run's or others train on from them
    s = trainer.source(i)
    clone = s != i or s in trainer.needed()
    run.weights = sequential_state(trainer._layers(s, clone=clone))
    run.best_weights = None if best.weights is None else sequential_state(best.weights)
    data = trainer.data
    run.model_config = model_config(
        spec, num_features=data.num_features, num_classes=data.num_classes, divisor=data.divisor
    )
    if status == RunStatus.succeeded:
        state = partial(continuation.run_state, trainer, i)
        if clone:  # the slice it ended with trains on: keep the state as it is now
            now = state()
            state = partial(dict, now)
        run.resume_state = state
    return run

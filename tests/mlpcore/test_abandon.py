"""Abandon: a callback that says "this run is not mine any more" (its worker lost the lease)
drops the run from the group without ending it, and no later state of the group is offered
for a checkpoint; the mates train on exactly as before."""

import pytest

from mlpcore.callbacks import ABANDONED, Abandon
from mlpcore.fused import Callback, EpochMetrics, RunResult, train_group
from mlpcore.spec import RunSpec

BASE = RunSpec(dataset="synthetic", hidden=[16, 8], epochs=4, device="cpu", batch_size=32)


class Taken(Callback):
    """Raises Abandon from on_epoch_end at `epoch`, or from the `poll`-th should_stop."""

    def __init__(self, *, epoch: int | None = None, poll: int | None = None) -> None:
        self.epoch, self.poll, self.polls, self.ends = epoch, poll, 0, []
        self.epochs: list[int] = []

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        self.epochs.append(metrics.epoch)
        if metrics.epoch == self.epoch:
            raise Abandon

    def should_stop(self) -> bool:
        self.polls += 1
        if self.polls == self.poll:
            raise Abandon
        return False

    def on_end(self, result: RunResult) -> None:
        self.ends.append(result)


def group() -> list[RunSpec]:
    return [BASE.model_copy(update={"seed": s, "lr": 0.01 * (s + 1)}) for s in range(3)]


def plain(results: list[RunResult]) -> list[list[dict]]:
    return [[m.to_dict() | {"seconds": 0} for m in r.epochs] for r in results]


# 64 batches an epoch: polled after batches 16, 32 and 48 and at the epoch's end
@pytest.mark.parametrize(
    ("how", "told", "polls"),
    [({"epoch": 2}, [1, 2], 7), ({"poll": 6}, [1], 6)],  # in epoch 2: at its end, mid-way
)
def test_an_abandoned_run_is_dropped_without_an_end_and_its_mates_go_on(how, told, polls):
    specs, taken = group(), Taken(**how)
    states: list[dict] = []
    results = train_group(specs, callbacks=[None, taken, None], on_checkpoint=states.append)

    assert taken.ends == []  # no status, no result: it did not end here
    assert results[1].status == ABANDONED and results[1].result is None
    assert (taken.epochs, taken.polls) == (told, polls)  # asked and told nothing after
    # the state after epoch 1 was offered; none after the abandon (its file is the next
    # holder's now)
    assert [s["epoch"] for s in states] == [1]
    uninterrupted = train_group(specs)
    assert [r.status for r in results[::2]] == ["succeeded", "succeeded"]
    assert plain(results[::2]) == plain(uninterrupted[::2])


def test_a_resume_from_the_last_state_before_an_abandon_trains_every_epoch() -> None:
    specs, states = group(), []
    train_group(specs, callbacks=[Taken(epoch=2) for _ in specs], on_checkpoint=states.append)
    [state] = states
    assert [r["status"] for r in state["runs"]] == ["running"] * 3

    resumed = train_group(specs, resume=state)

    assert [r.status for r in resumed] == ["succeeded"] * 3
    uninterrupted = train_group(specs)
    assert plain(resumed) == plain(uninterrupted)
    assert [r.result for r in resumed] == [
        {**r.result, "runtime_s": s.result["runtime_s"]}
        for r, s in zip(uninterrupted, resumed, strict=True)
    ]

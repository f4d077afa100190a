"""Runs that differ only in their lr schedule train their common epochs once (mlpcore.schedule):
every run still ends exactly as its solo run (CPU, bit for bit), through branching, cancels of
the run others follow, divergence, abandon, resume from any epoch and continuation."""

from __future__ import annotations

import pytest
import torch

from mlpcore import checkpoint
from mlpcore.callbacks import Abandon
from mlpcore.data import load_dataset
from mlpcore.fused import Callback, RunResult, train_group
from mlpcore.schedule import shared_prefixes, spec_schedule, trained_epochs, trajectory_key
from mlpcore.spec import RunSpec
from mlpcore.trainer import GroupTrainer
from tests.support.training import StopAfter

BASE = RunSpec(
    dataset="synthetic", hidden=[16, 8], epochs=6, lr=0.02, device="cpu", seed=1, batch_size=32
)
STEPS = [BASE.model_copy(update={"step_size": s}) for s in (2, 4, 3, 6)]  # branch at 2, 3, 4


def strip(result: RunResult) -> list[dict]:
    return [{k: v for k, v in m.to_dict().items() if k != "seconds"} for m in result.epochs]


def same(a: RunResult, b: RunResult) -> None:
    """Equal status, epochs (all but their seconds), result numbers, weights and best."""
    assert (a.status, a.reason) == (b.status, b.reason)
    assert strip(a) == strip(b)
    if b.weights is None:
        assert a.weights is None
        return
    assert a.weights is not None and a.result is not None and b.result is not None
    assert all(torch.equal(a.weights[k], b.weights[k]) for k in b.weights)
    mine = ("runtime_s", "shared_epochs")  # the group's, not the model's
    assert {k: v for k, v in a.result.items() if k not in mine} == {
        k: v for k, v in b.result.items() if k not in mine
    }
    if b.best_weights is not None:
        assert a.best_weights is not None
        assert all(torch.equal(a.best_weights[k], b.best_weights[k]) for k in b.best_weights)


def solo(spec: RunSpec) -> RunResult:
    (result,) = train_group([spec], share=False)
    return result


def test_the_prefix_tree_of_the_study_step_sizes():
    specs = [BASE.model_copy(update={"epochs": 50, "step_size": s}) for s in (20, 30, 40)]
    keys = [trajectory_key(s) for s in specs]
    # lexicographic by lr: 40 first, 30 follows it to epoch 30, 20 follows 30 to epoch 20
    assert shared_prefixes(keys, [spec_schedule(s) for s in specs]) == [(20, 1), (30, 2), (0, None)]
    assert trained_epochs(specs) == [30, 20, 50]  # 100 model-epochs, not 150
    # two epochs only: one trajectory, trained by the first; another lr or seed shares nothing
    short = [s.model_copy(update={"epochs": 2}) for s in specs]
    assert trained_epochs(short) == [2, 0, 0]
    others = [short[0].model_copy(update={"lr": 0.01}), short[0].model_copy(update={"seed": 2})]
    assert trained_epochs([short[0], *others]) == [2, 2, 2]


def test_a_group_trains_only_the_runs_that_have_branched():
    data = load_dataset("synthetic", device=torch.device("cpu"))
    trainer = GroupTrainer(STEPS, [None] * 4, data, torch.device("cpu"), models_per_pass=2)
    assert trainer.branches.starts == [0, 2, 3, 4]  # step 6 leads, then 4, 3 and 2 branch off
    assert trainer.order == [3, 0, 2, 1]  # by start: steps 6, 2, 3, 4
    assert trainer._parts(0) == trainer._parts(1) == [slice(0, 1)]
    assert trainer._parts(3) == [slice(0, 2), slice(2, 3)]
    # step 3 follows step 4, which follows step 6: both train as position 0 until epoch 3
    assert [trainer.source(2, e) for e in range(6)] == [0, 0, 0, 2, 2, 2]
    assert [trainer.source(1, e) for e in range(6)] == [0, 0, 1, 1, 1, 1]


@pytest.mark.parametrize("per_pass", [1, 3])
def test_runs_that_branch_off_equal_their_solo_runs(per_pass):
    other_gamma, other_lr = (
        STEPS[0].model_copy(update={"gamma": 0.5}),
        BASE.model_copy(update={"lr": 0.01}),
    )
    specs = [*STEPS, other_gamma, other_lr]
    specs.append(specs[0])  # the same spec twice: it trains once
    results = train_group(specs, models_per_pass=per_pass)
    for spec, result in zip(specs, results, strict=True):
        same(result, solo(spec))
    shared = [(r.result or {}).get("shared_epochs") for r in results]
    assert shared == [2, 4, 3, None, 2, None, 6]  # the two at step 2 part at epoch 2


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_every_optimizer_with_a_val_split_branches_exactly(optimizer):
    update = {"optimizer": optimizer, "val_fraction": 0.2, "weight_decay": 0.01, "lr": 0.05}
    specs = [s.model_copy(update=update) for s in STEPS]
    for spec, result in zip(specs, train_group(specs), strict=True):
        assert result.best_weights is not None
        same(result, solo(spec))


@pytest.mark.parametrize("polls", [0, 3, 9])
def test_cancelling_the_run_others_follow_leaves_them_as_their_solo_runs(polls):
    # STEPS[3] (step 6: the largest lrs) leads; the others follow it for their first epochs
    stopper = StopAfter(polls)
    results = train_group(STEPS, callbacks=[None, None, None, stopper], poll_every=2)
    cancelled = results[3]
    assert cancelled.status == "cancelled"
    alone = train_group([STEPS[3]], callbacks=[StopAfter(polls)], poll_every=2, share=False)[0]
    same(cancelled, alone)
    for spec, result in zip(STEPS[:3], results, strict=False):
        same(result, solo(spec))


def test_a_follower_cancelled_before_it_branches_stops_alone():
    results = train_group(STEPS, callbacks=[None, StopAfter(1), None, None])
    assert results[1].status == "cancelled"
    for i in (0, 2, 3):
        same(results[i], solo(STEPS[i]))


def test_a_shared_divergence_ends_every_run_that_shares_it():
    specs = [s.model_copy(update={"optimizer": "sgd", "lr": 1e6}) for s in STEPS]
    results = train_group(specs, poll_every=4)
    assert {(r.status, r.reason) for r in results} == {
        ("diverged", "loss became non-finite in epoch 1")
    }
    same(results[0], solo(specs[0]))
    # the run they follow is cancelled at the first poll, before the loss blows up: they go on
    # training its model, and diverge as their solo runs do
    results = train_group(specs, callbacks=[None, None, None, StopAfter(0)], poll_every=1)
    assert results[3].status == "cancelled"
    for spec, result in zip(specs[:3], results, strict=False):
        assert result.status == "diverged"
        same(result, train_group([spec], poll_every=1, share=False)[0])


class _AbandonAt(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, metrics) -> None:
        if metrics.epoch == self.epoch:
            raise Abandon


def test_abandoning_the_run_others_follow_leaves_them_exact():
    results = train_group(STEPS, callbacks=[None, None, None, _AbandonAt(1)])
    assert results[3].status == "abandoned"
    for spec, result in zip(STEPS[:3], results, strict=False):
        same(result, solo(spec))


@pytest.mark.parametrize("after", [1, 2, 3, 5])
def test_a_resume_at_any_epoch_around_the_branches_is_exact(after):
    states: list[dict] = []
    whole = train_group(STEPS, on_checkpoint=states.append)
    state = checkpoint.from_bytes(checkpoint.to_bytes(states[after - 1]))
    for a, b in zip(train_group(STEPS, resume=state), whole, strict=True):
        same(a, b)


def test_a_run_that_never_trained_alone_continues_as_its_solo_run():
    pair = [BASE.model_copy(update={"epochs": 3, "step_size": s}) for s in (4, 5)]
    follower = train_group(pair)[0]  # step 4 follows step 5 for all 3 epochs
    assert follower.resume_state is not None
    state = checkpoint.from_bytes(checkpoint.to_bytes(follower.resume_state()))
    longer = pair[0].model_copy(update={"epochs": 6})
    (continued,) = train_group([longer], continue_from=[state])
    same(continued, solo(longer))


def test_sharing_off_trains_every_run():
    data = load_dataset("synthetic", device=torch.device("cpu"))
    trainer = GroupTrainer(STEPS, [None] * 4, data, torch.device("cpu"), share=False)
    assert trainer.branches.starts == [0, 0, 0, 0]
    for spec, result in zip(STEPS, train_group(STEPS, share=False), strict=True):
        same(result, solo(spec))


class _Ends(Callback):
    """Records, at its run's end, how many epochs the group's longest run had by then."""

    def __init__(self, log: list[tuple[int, int]], longest: list[RunResult]) -> None:
        self.log, self.longest = log, longest

    def on_end(self, result: RunResult) -> None:
        self.log.append((len(result.epochs), len(self.longest)))


def test_runs_of_other_epochs_fuse_end_on_their_own_last_epoch_and_share_it():
    specs = [
        BASE.model_copy(update={"epochs": 6}),
        BASE.model_copy(update={"epochs": 2}),  # follows the first for both its epochs
        BASE.model_copy(update={"epochs": 4, "step_size": 3}),  # branches off at epoch 3
        BASE.model_copy(update={"epochs": 3, "lr": 0.01}),  # shares nothing
        BASE.model_copy(update={"epochs": 4, "scheduler": "cosine"}),  # epoch 1 only
    ]
    assert len({s.fusion_key() for s in specs}) == 1  # epochs are no part of the key
    results = train_group(specs)
    for spec, result in zip(specs, results, strict=True):
        assert result.status == "succeeded" and len(result.epochs) == spec.epochs
        same(result, solo(spec))
    shared = [(r.result or {}).get("shared_epochs") for r in results]
    assert shared == [None, 2, 3, None, 1]


def test_a_short_run_ends_when_its_epochs_are_done_not_with_the_group():
    specs = [BASE.model_copy(update={"epochs": e, "seed": s}) for e, s in ((5, 1), (2, 2), (3, 1))]
    log: list[tuple[int, int]] = []
    seen: list[RunResult] = []

    class Longest(Callback):
        def on_epoch_end(self, metrics) -> None:
            seen.append(metrics)

    train_group(specs, callbacks=[Longest(), _Ends(log, seen), _Ends(log, seen)])
    assert log == [(2, 2), (3, 3)]  # each told at its own last epoch, the group going on


def test_a_short_follower_continues_from_the_state_it_ended_with():
    pair = [BASE.model_copy(update={"epochs": 5}), BASE.model_copy(update={"epochs": 2})]
    short = train_group(pair)[1]  # followed the 5-epoch run, which trained on after it ended
    assert short.resume_state is not None
    state = checkpoint.from_bytes(checkpoint.to_bytes(short.resume_state()))
    longer = pair[1].model_copy(update={"epochs": 4})
    (continued,) = train_group([longer], continue_from=[state])
    same(continued, solo(longer))


@pytest.mark.parametrize("after", [1, 2, 3])
def test_a_resume_of_a_group_of_other_epochs_is_exact(after):
    specs = [BASE.model_copy(update={"epochs": e}) for e in (4, 2, 3)]
    states: list[dict] = []
    whole = train_group(specs, on_checkpoint=states.append)
    state = checkpoint.from_bytes(checkpoint.to_bytes(states[after - 1]))
    resumed = train_group(specs, resume=state)
    for spec, a, b in zip(specs, resumed, whole, strict=True):
        if spec.epochs > after:  # ended before the checkpoint: a resume only keeps its record
            same(a, b)
        else:
            assert a.status == "succeeded" and strip(a) == strip(b)


def test_a_run_that_has_ended_trains_no_more():
    specs = [BASE.model_copy(update={"epochs": e, "seed": s}) for e, s in ((2, 2), (4, 1))]
    data = load_dataset("synthetic", device=torch.device("cpu")).subset(None).split_val(0.0)
    trainer = GroupTrainer(specs, [None, None], data, torch.device("cpu"), models_per_pass=2)
    assert trainer.order == [1, 0]  # the longest first
    passes: list[list[slice]] = []
    trainer.run(lambda state: passes.append(list(trainer.parts)), poll_every=4)
    assert passes == [[slice(0, 2)], [slice(0, 2)], [slice(0, 1)], [slice(0, 1)]]
    for spec, result in zip(specs, trainer.results(), strict=True):
        same(result, solo(spec))

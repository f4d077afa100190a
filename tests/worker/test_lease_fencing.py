"""A worker that lost its lease, in-process on the real Redis (issue 14, items 1 and 17): the
checkpoint hook pauses training right after an epoch (recorded, its file written) to do what
the rest of the world would while the worker stalled, so what the stale holder does next is
deterministic, however fast the machine."""

from __future__ import annotations

import json
import logging

import pytest

from mlpcore import checkpoint
from mlpcore.fused import train_group
from mlpcore.spec import RunSpec
from runstore import Store
from runstore.leases import Leases
from worker import leases
from worker.checkpoints import checkpoint_path
from worker.runner import run_group

SPEC = {"dataset": "synthetic", "hidden": [16], "epochs": 3, "batch_size": 64, "device": "cpu"}
LRS = (0.05, 0.01, 0.002)


def queued_runs(store, models: int) -> tuple[list[str], str]:
    """A lone run, or a sweep's runs planned as one fused group; their ids and file key."""
    if models == 1:
        run_id = store.create_run(owner="ann", spec=SPEC)["id"]
        return [run_id], run_id
    configs = [({"lr": lr}, {**SPEC, "lr": lr}) for lr in LRS[:models]]
    _, runs = store.create_sweep(
        owner="ann",
        spec={"name": "t"},
        metric="final_train_loss",
        mode="min",
        configs=configs,
        groups=["g-fence"] * models,
    )
    return [run["id"] for run in runs], "g-fence"


def expire(store, run_ids) -> None:
    """Let the leases run out, as they do while their worker is frozen."""
    store.client.zadd(store.keys.leases(), dict.fromkeys(run_ids, 0))


def statuses(store, run_id) -> list[str]:
    events = store.events(store.keys.run_events(run_id))
    return [json.loads(e.data)["status"] for e in events if e.type == "status"]


def stream_epochs(store, run_id) -> list[int]:
    return [int(e.id.split("-")[0]) for e in store.events(store.keys.run_events(run_id))
            if e.type == "epoch"]  # fmt: skip


class AtEpoch1:
    """The checkpoint hook: runs `act` once, when the file of epoch 1 has been written; keeps
    every state written."""

    def __init__(self, act) -> None:
        self.act, self.states = act, []

    def __call__(self, path, state) -> None:
        self.states.append(state)
        if state["epoch"] == 1:
            self.act()


def test_a_stale_holders_epochs_and_end_are_refused(store, settings) -> None:
    """Another worker took the run over after epoch 1: the stale holder records nothing more,
    ends nothing and leaves the file the new holder resumes from as it was."""
    [run_id], key = queued_runs(store, 1)

    def take_over() -> None:
        expire(store, [run_id])
        taken = store.mark_running(
            run_id=run_id, worker="other@host", device="cpu", holder="other", lease_s=600
        )
        assert taken == "running"

    hook = AtEpoch1(take_over)
    outcome = run_group([run_id], store=store, settings=settings, worker="w", written=hook)

    assert outcome == {"runs": {run_id: "running"}, "held_elsewhere": [run_id]}
    run = store.get_run(run_id)
    assert run["status"] == "running" and run["worker"] == "other@host"
    assert run["result"] is None and run["error"] is None and run["finished_at"] is None
    assert [e["epoch"] for e in run["epochs"]] == [1] == stream_epochs(store, run_id)
    assert statuses(store, run_id) == ["queued", "running", "running"]
    assert [s["epoch"] for s in hook.states] == [1]  # no file written once it was not its own
    on_disk = checkpoint.load(checkpoint_path(settings.checkpoint_dir, key))
    assert on_disk["epoch"] == 1 and [r["status"] for r in on_disk["runs"]] == ["running"]


def test_a_stale_holder_whose_end_is_refused_leaves_the_file_to_the_new_holder(
    store, settings, caplog
) -> None:
    """Taken over after its last epoch was recorded: the stale holder's end is refused, so it
    must not remove the group's file (the new holder's, to resume from) as a finished group
    would; the next attempt then resumes from it after the last epoch and just ends the run."""
    [run_id], key = queued_runs(store, 1)

    def take_over(path, state) -> None:
        if state["epoch"] == SPEC["epochs"]:  # recorded, its file written, its end to come
            store.client.hset(store.keys.run(run_id), "holder", "other")

    outcome = run_group([run_id], store=store, settings=settings, worker="w", written=take_over)

    assert outcome == {"runs": {run_id: "running"}, "held_elsewhere": [run_id]}
    path = checkpoint_path(settings.checkpoint_dir, key)
    assert checkpoint.load(path)["epoch"] == SPEC["epochs"]  # left for the new holder
    expire(store, [run_id])  # that holder vanished too: this process takes the run again
    with caplog.at_level(logging.INFO, logger="worker.checkpoints"):
        again = run_group([run_id], store=store, settings=settings, worker="w")
    assert again == {"runs": {run_id: "succeeded"}}
    assert f"resuming from epoch {SPEC['epochs']}" in caplog.text
    run = store.get_run(run_id)
    assert [e["epoch"] for e in run["epochs"]] == [1, 2, 3] == stream_epochs(store, run_id)
    assert run["result"]["final_train_loss"] == run["epochs"][-1]["train_loss"]
    assert not path.exists()


@pytest.mark.parametrize("noticed", ["append", "renewal"])
@pytest.mark.parametrize("models", [1, 3])
def test_a_run_reaped_from_a_stalled_worker_ends_succeeded(
    store, settings, caplog, models: int, noticed: str
) -> None:
    """The worker stalled past its lease after epoch 1 and the reaper requeued its group; the
    stale holder notices (its epoch 2 refused, or its heartbeat's renewal) and stops silently;
    the next attempt resumes and trains every remaining epoch, each recorded once."""
    run_ids, key = queued_runs(store, models)

    def reaped_while_stalled() -> None:
        expire(store, run_ids)
        assert sorted(store.leases.reap().run_ids) == sorted(run_ids)
        if noticed == "renewal":  # the heartbeat wakes first and finds the runs gone
            leases.renew_and_reap(store, settings, send_token=lambda: None)
            assert all(leases.is_lost(r) for r in run_ids)

    hook = AtEpoch1(reaped_while_stalled)
    first = run_group(run_ids, store=store, settings=settings, worker="w", written=hook)

    assert first == {"runs": dict.fromkeys(run_ids, "queued")}
    assert [s["epoch"] for s in hook.states] == [1]  # the stale holder wrote no later file
    for run in store.get_runs(run_ids):
        assert run["epochs"][-1]["epoch"] == 1 and run["result"] is None, run
    assert checkpoint_path(settings.checkpoint_dir, key).exists()  # the next holder's now

    with caplog.at_level(logging.INFO, logger="worker.checkpoints"):
        second = run_group(run_ids, store=store, settings=settings, worker="w")

    assert second == {"runs": dict.fromkeys(run_ids, "succeeded")}
    assert "resuming from epoch 1" in caplog.text
    uninterrupted = train_group([RunSpec(**r["spec"]) for r in store.get_runs(run_ids)])
    for run, alone in zip(store.get_runs(run_ids), uninterrupted, strict=True):
        assert run["status"] == "succeeded" and run["error"] is None, run
        assert run["requeues"] == 1 and run["cancel_requested"] is False
        assert [e["epoch"] for e in run["epochs"]] == [1, 2, 3] == stream_epochs(store, run["id"])
        assert [e["train_loss"] for e in run["epochs"]] == [m.train_loss for m in alone.epochs]
        last = run["epochs"][-1]
        assert run["result"]["final_train_loss"] == last["train_loss"]
        assert run["result"]["final_test_loss"] == last["test_loss"]
        assert run["result"]["final_test_accuracy"] == last["test_accuracy"]
        assert statuses(store, run["id"]) == ["queued", "running", "queued", "running",
                                               "succeeded"]  # fmt: skip
    assert list(settings.checkpoint_dir.iterdir()) == []


class NextAttemptDuringRenewal(Leases):
    """Real leases, except that while a renewal's answer is on its way, the attempt it asked
    about lets go and the next attempt in the same process (same holder) starts the run."""

    def __init__(self, store, run_id: str) -> None:
        super().__init__(store.client, prefix=store.keys.prefix)
        self.store, self.run_id = store, run_id

    def renew(self, *, holder: str, run_ids: list[str], ttl_s: float) -> list[str]:
        lost = super().renew(holder=holder, run_ids=run_ids, ttl_s=ttl_s)
        leases.let_go([self.run_id])
        assert start(self.store, self.run_id) == "running"
        leases.hold([self.run_id])
        return lost


def start(store, run_id: str) -> str:
    return store.mark_running(
        run_id=run_id, worker="w", device="cpu", holder=leases.holder(), lease_s=600
    )


def test_a_renewal_answered_for_an_earlier_attempt_does_not_drop_the_next(store, settings):
    """The old attempt's run was requeued and the heartbeat's renewal finds it lost, but by
    then the next attempt holds it: that attempt must not be abandoned for the old news."""
    run_id = store.create_run(owner="ann", spec=SPEC)["id"]
    assert start(store, run_id) == "running"
    leases.hold([run_id])
    expire(store, [run_id])
    assert store.leases.reap().run_ids == (run_id,)
    racing = Store(store.client, prefix=store.keys.prefix)
    racing.leases = NextAttemptDuringRenewal(store, run_id)
    try:
        leases.renew_and_reap(racing, settings, send_token=lambda: None)
        assert not leases.is_lost(run_id)
        assert store.get_run(run_id)["status"] == "running"
    finally:
        leases.let_go([run_id])

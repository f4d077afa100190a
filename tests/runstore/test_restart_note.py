"""A run trained again from epoch 1 on another host (its checkpoint not reachable there): the
restart is one status event after the epochs recorded, written only by the run's holder and
only when there are epochs to keep (runstore/leases.py, Leases.note_restart)."""

from __future__ import annotations

import json

from tests.support.runs import metrics

SPEC = {"dataset": "synthetic", "hidden": [8], "epochs": 3}
REASON = "checkpoint not reachable from this host"


def started(store, holder):
    run_id = store.create_run(owner="ann", spec=SPEC)["id"]
    outcome = store.mark_running(
        run_id=run_id, worker=f"{holder}@host", device="cpu", holder=holder, lease_s=60.0
    )
    assert outcome == "running"
    return run_id


def events(store, run_id):
    return [(e.id, e.type, json.loads(e.data)) for e in store.events(store.keys.run_events(run_id))]


def test_the_holder_records_the_restart_after_the_epochs_kept(store):
    run_id = started(store, "c")
    for epoch in (1, 2):
        store.append_epoch(run_id=run_id, metrics=metrics(epoch), holder="c")
    assert store.leases.note_restart(run_id=run_id, holder="c", reason=REASON) == 2
    entry_id, kind, data = events(store, run_id)[-1]
    assert kind == "status" and entry_id.startswith("2-")
    assert data["status"] == "running" and data["reason"] == REASON and data["restart"] is True
    assert store.get_run(run_id)["status"] == "running"
    # training again from epoch 1: the epochs kept are not recorded twice
    assert store.append_epoch(run_id=run_id, metrics=metrics(1), holder="c") is False
    assert store.append_epoch(run_id=run_id, metrics=metrics(3), holder="c") is True
    assert [e["epoch"] for e in store.get_run(run_id)["epochs"]] == [1, 2, 3]


def test_nothing_is_written_without_epochs_or_by_another_holder(store):
    run_id = started(store, "c")
    before = events(store, run_id)
    assert store.leases.note_restart(run_id=run_id, holder="c", reason=REASON) == 0
    store.append_epoch(run_id=run_id, metrics=metrics(1), holder="c")
    assert store.leases.note_restart(run_id=run_id, holder="b", reason=REASON) == -1
    assert [e for e in events(store, run_id) if e[1] == "status"] == [
        e for e in before if e[1] == "status"
    ]

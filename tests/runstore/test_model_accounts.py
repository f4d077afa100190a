"""Model bytes per owner and the max_artifact_bytes eviction (runstore/artifacts.py)."""

from runstore.artifacts import STORED

SPEC = {"dataset": "synthetic", "hidden": [8], "epochs": 1}


def stored_run(store, owner="ann", size=100, save="aa"):
    """A finished run whose model was saved and counted, as the worker records it."""
    run = store.create_run(owner=owner, spec=SPEC)
    store.mark_running(run_id=run["id"], worker="w", device="cpu")
    accounted = store.models.add(owner=owner, run_id=run["id"], size=size, save=save)
    model = {"state": STORED, "save": save, "files": {"final": size}, "bytes": size}
    store.finish_run(run_id=run["id"], status="succeeded", result={}, model=model)
    return run["id"], accounted


def test_usage_counts_each_stored_model_once(store):
    first, _ = stored_run(store, size=100)
    stored_run(store, size=250)
    store.models.add(owner="ann", run_id=first, size=100, save="aa")  # a retried save
    assert store.models.usage(owner="ann") == {"artifact_bytes": 350, "models": 2}
    assert store.models.usage(owner="bob") == {"artifact_bytes": 0, "models": 0}


def test_over_the_limit_the_oldest_models_go_and_their_runs_say_why(store):
    store.models.set_limit(owner="ann", limit=250)
    old, _ = stored_run(store, size=100, save="a1")
    middle, _ = stored_run(store, size=100, save="a2")
    new, accounted = stored_run(store, size=100, save="a3")
    assert accounted.evicted == [(old, "a1")] and accounted.total == 200
    assert store.get_run(old)["model"] == {
        "state": "evicted",
        "reason": "evicted: over max_artifact_bytes (250 bytes)",
        "at": store.get_run(old)["model"]["at"],
    }
    assert store.get_run(middle)["model"]["state"] == STORED
    assert store.models.usage(owner="ann") == {"artifact_bytes": 200, "models": 2}


def test_a_model_over_the_limit_by_itself_is_evicted_too_and_said_so(store):
    store.models.set_limit(owner="ann", limit=50)
    run_id, accounted = stored_run(store, size=100, save="b1")
    assert accounted.evicted == [(run_id, "b1")]
    assert accounted.marked["reason"] == "evicted: over max_artifact_bytes (50 bytes)"
    assert store.models.usage(owner="ann")["models"] == 0


def test_a_user_override_wins_over_the_limit_the_api_applied(store):
    store.users.add(name="ann")
    store.models.set_limit(owner="ann", limit=10)
    store.users.update("ann", limits={"max_artifact_bytes": 1000})
    _, accounted = stored_run(store, size=100)
    assert accounted.evicted == []


def test_without_a_known_limit_nothing_is_evicted(store):
    _, accounted = stored_run(store, size=10**12)
    assert accounted.evicted == [] and accounted.total == 10**12


def test_another_workers_save_in_flight_is_not_evicted(store):
    store.models.set_limit(owner="ann", limit=150)
    run = store.create_run(owner="ann", spec=SPEC)
    store.models.add(owner="ann", run_id=run["id"], size=100, save="c1")  # not recorded yet
    mine, accounted = stored_run(store, size=100, save="c2")
    assert accounted.evicted == [(mine, "c2")]
    assert store.get_run(run["id"])["model"] is None


def test_drop_marks_the_run_deleted_once(store):
    run_id, _ = stored_run(store, size=100)
    assert store.models.drop(owner="ann", run_id=run_id) is True
    assert store.get_run(run_id)["model"]["state"] == "deleted"
    assert store.models.drop(owner="ann", run_id=run_id) is False
    assert store.models.usage(owner="ann")["models"] == 0


def test_release_forgets_only_its_own_save(store):
    run = store.create_run(owner="ann", spec=SPEC)
    store.models.add(owner="ann", run_id=run["id"], size=100, save="d1")
    store.models.add(owner="ann", run_id=run["id"], size=120, save="d2")  # another worker's
    assert store.models.release(owner="ann", run_id=run["id"], save="d1") is False
    assert store.models.usage(owner="ann") == {"artifact_bytes": 120, "models": 1}
    assert store.models.release(owner="ann", run_id=run["id"], save="d2") is True
    assert store.models.usage(owner="ann")["models"] == 0

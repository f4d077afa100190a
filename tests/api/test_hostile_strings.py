"""Hostile strings where an id, a stream position or a device name belongs: each is a clear
4xx with a JSON detail, decided before Redis is asked (the app in-process, the real Redis)."""

import pytest

from api.deps import is_record_id
from runstore import InvalidEventId, after_position, new_id
from tests.support.http import starlette_test_client
from tests.support.servers import free_port

SPEC = {"dataset": "synthetic", "hidden": [8], "epochs": 2}
EPOCH = {
    "epoch": 1,
    "train_loss": 0.5,
    "test_loss": 0.6,
    "test_accuracy": 0.5,
    "lr": 0.001,
    "seconds": 0.01,
}
# Ids that name another key of the record: its event stream, a staged sweep's stage record.
SUFFIXES = [":events", ":stages"]
NOT_IDS = ["nope", "0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0", "*", "a" * 5000]


def finished_run_and_sweep(client, store) -> tuple[str, str]:
    """A sweep of two runs, one with an epoch and a terminal status in its stream."""
    sweep = client.post("/v1/sweeps", json={"base": SPEC, "grid": {"lr": [0.1, 0.01]}}).json()
    run_id = sweep["run_ids"][0]
    store.mark_running(run_id=run_id, worker="w", device="cpu")
    store.append_epoch(run_id=run_id, metrics=EPOCH)
    store.finish_run(run_id=run_id, status="succeeded", result={"final_train_loss": 0.5})
    return run_id, sweep["id"]


def paths(run_id: str, sweep_id: str) -> list[tuple[str, str]]:
    """Every route that takes a run or sweep id, with that id in its place."""
    return [
        ("GET", f"/v1/runs/{run_id}"),
        ("GET", f"/v1/runs/{run_id}/events"),
        ("GET", f"/v1/runs/{run_id}/plot.png"),
        ("DELETE", f"/v1/runs/{run_id}"),
        ("GET", f"/v1/runs?sweep_id={sweep_id}"),
        ("GET", f"/v1/sweeps/{sweep_id}"),
        ("GET", f"/v1/sweeps/{sweep_id}/best"),
        ("GET", f"/v1/sweeps/{sweep_id}/leaderboard"),
        ("GET", f"/v1/sweeps/{sweep_id}/events"),
        ("GET", f"/v1/sweeps/{sweep_id}/plot.png"),
        ("DELETE", f"/v1/sweeps/{sweep_id}"),
    ]


def assert_not_found(response) -> None:
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "not_found" and response.json()["detail"]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_an_id_naming_a_records_other_keys_is_404(client, store, suffix):
    """`<id>:events` is the run's stream: read as a hash it was a Redis WRONGTYPE, a 500."""
    run_id, sweep_id = finished_run_and_sweep(client, store)
    for method, path in paths(run_id + suffix, sweep_id + suffix):
        assert_not_found(client.request(method, path))
    assert client.get(f"/v1/runs/{run_id}").json()["status"] == "succeeded"  # nothing changed


def test_ids_not_of_the_id_format_are_404_without_asking_redis(api_settings):
    """With Redis unreachable a lookup is a 503; a malformed id never gets that far."""
    from api.main import create_app

    settings = api_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    with starlette_test_client()(create_app(settings)) as client:
        for bad in NOT_IDS:
            for method, path in paths(bad, bad):
                assert_not_found(client.request(method, path))
        assert client.get(f"/v1/runs/{new_id()}").status_code == 503  # a real id does ask


def test_the_id_format_is_the_one_records_get():
    assert all(is_record_id(new_id()) for _ in range(100))
    assert not any(is_record_id(bad) for bad in NOT_IDS + [new_id() + "\n"])


@pytest.mark.parametrize(
    "last_event_id",
    [
        "99999999999999999999999",  # passed the pattern, then broke the stream after its 200
        "18446744073709551616",  # 2**64: one past what a Redis stream id part holds
        "1-18446744073709551616",
        "1-2-3",
        "-1",
    ],
)
def test_a_last_event_id_no_stream_id_can_hold_is_422_before_streaming(
    client, store, last_event_id
):
    run_id, sweep_id = finished_run_and_sweep(client, store)
    for path in (f"/v1/runs/{run_id}/events", f"/v1/sweeps/{sweep_id}/events"):
        response = client.get(path, headers={"Last-Event-ID": last_event_id.encode()})
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_event_id"
        assert "Last-Event-ID" in response.json()["detail"]


def test_positions_are_ascii_digits_read_as_redis_reads_them():
    assert after_position("007") == "7-0" and after_position(" 3-1 ") == "3-1"
    for bad in ("\u0663", "3\n-1", "1e3", "0x10"):  # \u0663: a regex \d takes it, Redis not
        with pytest.raises(InvalidEventId):
            after_position(bad)


def test_the_largest_stream_id_is_a_position_after_everything(client, store):
    run_id, _ = finished_run_and_sweep(client, store)
    top = str(2**64 - 1)
    for last_event_id in (top, f"{top}-{top}"):
        with client.stream(
            "GET", f"/v1/runs/{run_id}/events", headers={"Last-Event-ID": last_event_id}
        ) as response:
            assert response.status_code == 200
            assert [line for line in response.iter_lines() if line] == []


@pytest.mark.parametrize("device", ["cpu\n", "cuda:" + "9" * 30, "cuda:64", "cuda:01"])
def test_a_device_no_worker_can_have_is_422(client, redis_client, device):
    response = client.post("/v1/runs", json={**SPEC, "device": device})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("device: ")
    assert redis_client.llen("celery") == 0

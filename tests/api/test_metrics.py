"""GET /metrics: the app in-process on the real Redis, then one end-to-end scrape.

The worker's Lua keeps the `{p}:stats` hash; the in-process tests write its fields directly
to stand in for the worker, which is what the collector reads.
"""

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from runstore import TERMINAL, Keys
from tests.support.http import bearer, starlette_test_client
from tests.support.redis_db import TEST_PREFIX
from tests.support.servers import free_port
from tests.support.waiting import wait_for_run

SPEC = {"dataset": "synthetic", "hidden": [8], "epochs": 2}
KEYS = Keys(TEST_PREFIX)


def scrape(client, **headers) -> dict[tuple[str, frozenset], float]:
    """Every sample of /metrics as {(sample name, labels): value}."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples, name, **labels) -> float:
    """One sample's value (KeyError when it is absent)."""
    return samples[(name, frozenset(labels.items()))]


def names(samples) -> set[str]:
    return {name for name, _ in samples}


def submit(client, n=1, **headers) -> list[str]:
    ids = []
    for _ in range(n):
        response = client.post("/v1/runs", json=SPEC, headers=headers)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return ids


def test_an_empty_server_reports_zeros(client):
    samples = scrape(client)
    assert value(samples, "mlplab_redis_up") == 1
    assert value(samples, "mlplab_runs", status="queued") == 0
    assert value(samples, "mlplab_runs", status="running") == 0
    assert value(samples, "mlplab_workers") == 0
    assert value(samples, "mlplab_epochs_trained_total") == 0
    for status in TERMINAL:
        assert value(samples, "mlplab_runs_finished_total", status=status) == 0
    assert value(samples, "mlplab_run_duration_seconds_count") == 0
    assert value(samples, "mlplab_run_duration_seconds_bucket", le="+Inf") == 0
    assert "mlplab_user_runs" not in names(samples)  # auth off: no per-user labels


def test_queued_and_running_runs_are_counted(client, store):
    queued, running, finished = submit(client, 3)
    store.mark_running(run_id=running, worker="w", device="cpu")
    store.mark_running(run_id=finished, worker="w", device="cpu")
    store.finish_run(run_id=finished, status="succeeded", result={"final_train_loss": 0.5})
    samples = scrape(client)
    assert value(samples, "mlplab_runs", status="queued") == 1
    assert value(samples, "mlplab_runs", status="running") == 1


def test_the_stats_hash_feeds_epochs_finished_runs_and_durations(client, redis_client):
    redis_client.hset(
        KEYS.stats(),
        mapping={
            "epochs": 7,
            "runs:succeeded": 2,
            "runs:failed": 1,
            "duration_count": 3,
            "duration_sum": 70.5,
            "duration_le:5": 1,
            "duration_le:15": 1,
            "duration_le:60": 2,
            "duration_le:300": 3,
            "duration_le:900": 3,
            "duration_le:3600": 3,
            "duration_le:14400": 3,
            "duration_le:86400": 3,
        },
    )
    samples = scrape(client)
    assert value(samples, "mlplab_epochs_trained_total") == 7
    assert value(samples, "mlplab_runs_finished_total", status="succeeded") == 2
    assert value(samples, "mlplab_runs_finished_total", status="failed") == 1
    assert value(samples, "mlplab_runs_finished_total", status="diverged") == 0
    buckets = {
        le: value(samples, "mlplab_run_duration_seconds_bucket", le=le)
        for le in ("1.0", "5.0", "15.0", "60.0", "300.0", "86400.0", "+Inf")
    }
    assert buckets == {
        "1.0": 0,
        "5.0": 1,
        "15.0": 1,
        "60.0": 2,
        "300.0": 3,
        "86400.0": 3,
        "+Inf": 3,
    }
    assert value(samples, "mlplab_run_duration_seconds_count") == 3
    assert value(samples, "mlplab_run_duration_seconds_sum") == 70.5


def test_workers_gauge_counts_live_heartbeats(client, store):
    for hostname in ("cpu1@a", "cpu2@a"):
        store.heartbeat(hostname=hostname, info={}, ttl_s=60)
    assert value(scrape(client), "mlplab_workers") == 2


def test_request_latency_is_labelled_by_route_template(client):
    for run_id in ("ffffffffffffffff", "eeeeeeeeeeeeeeee"):
        assert client.get(f"/v1/runs/{run_id}").status_code == 404
    submit(client)
    client.get("/no/such/path")
    samples = scrape(client)
    count = "mlplab_http_request_duration_seconds_count"
    assert value(samples, count, method="GET", route="/v1/runs/{run_id}", status="404") == 2
    assert value(samples, count, method="POST", route="/v1/runs", status="202") == 1
    assert value(samples, count, method="GET", route="unmatched", status="404") == 1
    routes = {dict(labels).get("route") for name, labels in samples if name == count}
    assert not any("ffff" in r or "no/such" in r for r in routes)


def test_redis_down_still_answers_with_redis_up_zero(api_settings):
    from api.main import create_app

    settings = api_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    with starlette_test_client()(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 503
        samples = scrape(client)
    assert value(samples, "mlplab_redis_up") == 0
    assert "mlplab_runs" not in names(samples)
    assert (
        value(
            samples,
            "mlplab_http_request_duration_seconds_count",
            method="GET",
            route="/healthz",
            status="503",
        )
        == 1
    )


@pytest.fixture
def tokens(users):
    return {name: users.add(name=name, admin=name == "root")[1] for name in ("ann", "bob", "root")}


def test_with_auth_metrics_name_users_and_need_an_admin(auth_client, tokens, store):
    ann = submit(auth_client, 2, **bearer(tokens["ann"]))
    submit(auth_client, 1, **bearer(tokens["bob"]))
    store.mark_running(run_id=ann[0], worker="w", device="cpu")
    anonymous = auth_client.get("/metrics")
    assert anonymous.status_code == 401 and "detail" in anonymous.json()
    assert auth_client.get("/metrics", headers=bearer(tokens["bob"])).status_code == 403
    samples = scrape(auth_client, **bearer(tokens["root"]))
    expected = {
        ("ann", "queued"): 1,
        ("ann", "running"): 1,
        ("bob", "queued"): 1,
        ("bob", "running"): 0,
        ("root", "queued"): 0,
        ("root", "running"): 0,
    }
    got = {
        (dict(labels)["user"], dict(labels)["status"]): v
        for (name, labels), v in samples.items()
        if name == "mlplab_user_runs"
    }
    assert got == expected
    assert value(samples, "mlplab_runs", status="queued") == 2


def test_the_metrics_token_scrapes_without_a_user(api_settings, redis_client):
    from api.main import create_app

    settings = api_settings.model_copy(
        update={"auth": True, "metrics_token": SecretStr("scrape-me")}
    )
    with starlette_test_client()(create_app(settings)) as client:
        assert value(scrape(client, **bearer("scrape-me")), "mlplab_redis_up") == 1
        assert client.get("/metrics", headers=bearer("scrape-you")).status_code == 401


def test_without_per_user_labels_metrics_are_open(api_settings, redis_client):
    from api.main import create_app

    settings = api_settings.model_copy(update={"auth": True, "metrics_per_user": False})
    with starlette_test_client()(create_app(settings)) as client:
        samples = scrape(client)
    assert "mlplab_user_runs" not in names(samples)
    assert value(samples, "mlplab_runs", status="queued") == 0


@pytest.mark.integration
def test_a_finished_run_shows_in_the_servers_metrics(http, server_redis):
    run_id = submit(http, 1)[0]
    run = wait_for_run(http, run_id, lambda r: r["status"] not in ("queued", "running"))
    assert run["status"] == "succeeded", run
    samples = scrape(http)
    assert value(samples, "mlplab_workers") >= 1
    assert (
        value(
            samples,
            "mlplab_http_request_duration_seconds_count",
            method="GET",
            route="/v1/runs/{run_id}",
            status="200",
        )
        >= 1
    )
    # The worker's Lua keeps {p}:stats: without it, a regression in the worker's stats would
    # read as all-zero totals (or a skip), so its absence fails the test.
    assert server_redis.exists(KEYS.stats()), "the worker kept no stats hash for a finished run"
    assert value(samples, "mlplab_epochs_trained_total") >= 2
    assert value(samples, "mlplab_runs_finished_total", status="succeeded") >= 1
    assert value(samples, "mlplab_run_duration_seconds_count") >= 1

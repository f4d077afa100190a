"""Bad input: a JSON detail naming the problem, the right status, and nothing written."""

import pytest

from tests.support.redis_db import TEST_PREFIX, prefix_keys

SPEC = {"dataset": "synthetic", "hidden": [16], "epochs": 2}
BIG = {"name": "x" * 100, "base": SPEC, "grid": {"seed": list(range(200_000))}}


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "code", "needle"),
    [
        (
            "/v1/runs",
            {"content": b'{"lr": 0.1,', "headers": {"content-type": "application/json"}},
            422,
            "validation_error",
            "malformed JSON",
        ),
        ("/v1/runs", {"json": {"epochs": "ten"}}, 422, "validation_error", "epochs"),
        ("/v1/runs", {"json": {"hiddden": [4]}}, 422, "validation_error", "hiddden: unknown"),
        (
            "/v1/runs",
            {"json": {"epcohs": 3}},
            422,
            "validation_error",
            "epcohs: unknown field (did you mean 'epochs'?)",
        ),
        (
            "/v1/sweeps",
            {"json": {"base": SPEC, "grid": {"lr": [0.1]}, "metrc": "final_test_loss"}},
            422,
            "validation_error",
            "metrc: unknown field (did you mean 'metric'?)",
        ),
        ("/v1/runs", {"json": {"lr": 0}}, 422, "validation_error", "lr"),
        ("/v1/runs", {"json": {"lr": -1}}, 422, "validation_error", "lr"),
        (
            "/v1/runs",
            {"content": b'{"lr": NaN}', "headers": {"content-type": "application/json"}},
            422,
            "validation_error",
            "lr",
        ),
        (
            "/v1/runs",
            {"content": b'{"lr": Infinity}', "headers": {"content-type": "application/json"}},
            422,
            "validation_error",
            "lr: Value error, must be a finite number",
        ),
        ("/v1/runs", {"json": [1, 2]}, 422, "validation_error", "body"),
        ("/v1/runs", {"json": {**SPEC, "epochs": 51}}, 422, "limit_exceeded", "max_epochs=50"),
        (
            "/v1/runs",
            {"json": {**SPEC, "hidden": [2048]}},
            422,
            "limit_exceeded",
            "max_hidden_width=1024",
        ),
        (
            "/v1/runs",
            {"json": {**SPEC, "hidden": [8] * 9}},
            422,
            "limit_exceeded",
            "max_hidden_layers=8",
        ),
        (
            "/v1/runs",
            {
                "content": b"lr=0.1",
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
            415,
            "unsupported_media_type",
            "application/json",
        ),
        (
            "/v1/runs",
            {"json": {**SPEC, "pad": "x" * (1024 * 1024)}},
            413,
            "payload_too_large",
            "max_body_bytes",
        ),
        ("/v1/sweeps", {"json": BIG}, 413, "payload_too_large", "max_body_bytes"),
        (
            "/v1/sweeps",
            {"json": {"base": SPEC, "grid": {"seed": list(range(17))}}},
            422,
            "invalid_spec",
            "max_runs_per_sweep=16",
        ),
        (
            "/v1/sweeps",
            {"json": {"base": SPEC, "grid": {"lr": [0.1, -1]}}},
            422,
            "invalid_spec",
            "configuration 1 {'lr': -1}",
        ),
        (
            "/v1/sweeps",
            {"json": {"base": SPEC, "grid": {"epochs": [5, 60]}}},
            422,
            "limit_exceeded",
            "configuration 1 {'epochs': 60}: epochs: 60 is over the server limit",
        ),
        (
            "/v1/sweeps",
            {"json": {"base": SPEC, "grid": {"colour": [1]}}},
            422,
            "validation_error",
            "colour",
        ),
        (
            "/v1/sweeps",
            {"json": {"base": SPEC, "grid": {"lr": [0.1]}, "metric": "speed"}},
            422,
            "validation_error",
            "metric",
        ),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(
    client, redis_client, path, kwargs, status, code, needle
):
    response = client.post(path, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and needle in body["detail"], body
    assert prefix_keys(redis_client, TEST_PREFIX) == []
    assert redis_client.llen("celery") == 0


def test_body_streamed_without_content_length_is_held_to_the_limit(client, redis_client):
    def chunks():
        yield b'{"name": "'
        for _ in range(80):
            yield b"x" * 16384
        yield b'"}'

    response = client.post(
        "/v1/runs", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert prefix_keys(redis_client, TEST_PREFIX) == []


@pytest.mark.parametrize(
    "path",
    [
        "/v1/runs/nope",
        "/v1/sweeps/nope",
        "/v1/runs/nope/events",
        "/v1/sweeps/nope/best",
        "/v1/sweeps/nope/leaderboard",
    ],
)
def test_unknown_ids_are_404_with_detail(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"detail": response.json()["detail"], "code": "not_found"}
    assert "nope" in response.json()["detail"]


def test_unknown_route_and_method_keep_the_error_shape(client):
    assert client.get("/v2/nothing").json()["code"] == "not_found"
    response = client.put("/v1/runs", json={})
    assert response.status_code == 405 and response.json()["code"] == "method_not_allowed"


def test_a_body_without_content_type_is_415_with_a_hint(client, redis_client):
    response = client.post("/v1/runs", content=b"{}")
    assert response.status_code == 415 and "-H 'Content-Type: application/json'" in response.text
    empty = client.post("/v1/runs")
    assert empty.status_code == 422 and empty.json()["detail"] == "body: Field required"
    assert prefix_keys(redis_client, TEST_PREFIX) == []

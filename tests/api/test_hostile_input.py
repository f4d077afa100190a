"""Hostile input: each request gets a clear 4xx with a JSON detail and writes nothing.

Extends test_errors.py (malformed JSON, limits, 413/415 basics) with what an attacker or a
broken client sends: huge sweeps in a small body, deep nesting, huge and non-finite numbers,
hostile names, odd content types, duplicate keys and tokens in the URL.
"""

import json

import pytest

from tests.support.http import bearer
from tests.support.redis_db import TEST_PREFIX, prefix_keys

SPEC = {"dataset": "synthetic", "hidden": [8], "epochs": 2}
BASE = json.dumps(SPEC)
HUGE = str(10**100)
MIB = 1024 * 1024


def raw(text: str | bytes) -> dict:
    """Request kwargs for a literal JSON body (NaN, duplicates, ... that json= cannot send)."""
    body = text.encode() if isinstance(text, str) else text
    return {"content": body, "headers": {"content-type": "application/json"}}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


CASES = [
    # a million configurations in a few kilobytes
    (
        "grid 1000x1000",
        "/v1/sweeps",
        {
            "json": {
                "base": SPEC,
                "grid": {"seed": list(range(1000)), "lr": [0.001 * (i + 1) for i in range(1000)]},
            }
        },
        422,
        "1000000 configurations, over the limit max_runs_per_sweep=16",
    ),
    (
        "random n=10^6",
        "/v1/sweeps",
        {
            "json": {
                "base": SPEC,
                "strategy": "random",
                "n": 10**6,
                "grid": {"lr": {"uniform": [0.001, 0.1]}},
            }
        },
        422,
        "1000000 configurations",
    ),
    # nesting
    ("100k nested lists", "/v1/runs", raw(nested(100_000)), 422, "nested deeper than 32"),
    (
        "100k nested in a field",
        "/v1/runs",
        raw(f'{{"hidden": {nested(100_000)}}}'),
        422,
        "nested deeper than 32",
    ),
    (
        "40 levels in a sweep base",
        "/v1/sweeps",
        raw(f'{{"grid": {{"lr": [0.1]}}, "base": {{"hidden": {nested(40)}}}}}'),
        422,
        "nested deeper than 32",
    ),
    # huge numbers
    (
        "lr 1e400",
        "/v1/runs",
        raw('{"lr": 1e400, "dataset": "synthetic"}'),
        422,
        "lr: Value error, must be a finite number",
    ),
    ("epochs 10^100", "/v1/runs", raw(f'{{"epochs": {HUGE}}}'), 422, "epochs"),
    (
        "epochs of 5000 digits",
        "/v1/runs",
        raw('{"epochs": ' + "9" * 5000 + "}"),
        422,
        "a number over 4300 digits long",
    ),
    ("train_subset 10^100", "/v1/runs", raw(f'{{"train_subset": {HUGE}}}'), 422, "train_subset"),
    ("step_size 10^100", "/v1/runs", raw(f'{{"step_size": {HUGE}}}'), 422, "step_size"),
    (
        "sweep seed 10^100",
        "/v1/sweeps",
        raw(
            f'{{"base": {BASE}, "strategy": "random", "n": 1, "seed": {HUGE},'
            ' "grid": {"lr": [0.1]}}'
        ),
        422,
        "seed",
    ),
    (
        "keep_top 10^100",
        "/v1/sweeps",
        raw(
            f'{{"base": {BASE}, "strategy": "staged", "keep_top": {HUGE},'
            ' "stages": [{"lr": [0.1, 0.2]}, {"activation": ["relu", "tanh"]}]}'
        ),
        422,
        "keep_top",
    ),
    # NaN and infinities where no other test looks
    ("momentum NaN", "/v1/runs", raw('{"optimizer": "sgd", "momentum": NaN}'), 422, "momentum"),
    ("gamma -Infinity", "/v1/runs", raw('{"gamma": -Infinity}'), 422, "gamma"),
    (
        "weight_decay Infinity",
        "/v1/runs",
        raw('{"weight_decay": Infinity}'),
        422,
        "weight_decay: Value error, must be a finite number",
    ),
    (
        "NaN in a grid",
        "/v1/sweeps",
        raw(f'{{"base": {BASE}, "grid": {{"lr": [0.1, NaN]}}}}'),
        422,
        "configuration 1 {'lr': nan}",
    ),
    (
        "uniform from NaN",
        "/v1/sweeps",
        raw(
            f'{{"base": {BASE}, "strategy": "random", "n": 2,'
            ' "grid": {"lr": {"uniform": [NaN, 0.1]}}}'
        ),
        422,
        "'lr': nan",
    ),
    (
        "loguniform to Infinity",
        "/v1/sweeps",
        raw(
            f'{{"base": {BASE}, "strategy": "random", "n": 2,'
            ' "grid": {"lr": {"loguniform": [0.1, Infinity]}}}'
        ),
        422,
        "must be a finite number",
    ),
    # names
    (
        "name of 201 characters",
        "/v1/sweeps",
        {"json": {"name": "n" * 201, "base": SPEC, "grid": {"lr": [0.1]}}},
        422,
        "at most 200 characters",
    ),
    (
        "name of 1 MB",
        "/v1/sweeps",
        {"json": {"name": "n" * MIB, "base": SPEC, "grid": {"lr": [0.1]}}},
        413,
        "max_body_bytes",
    ),
    (
        "name with NUL",
        "/v1/sweeps",
        {"json": {"name": "a\x00b", "base": SPEC, "grid": {"lr": [0.1]}}},
        422,
        "U+0000",
    ),
    (
        "name with newline",
        "/v1/sweeps",
        {"json": {"name": "a\nb", "base": SPEC, "grid": {"lr": [0.1]}}},
        422,
        "U+000A",
    ),
    (
        "name with ANSI escape",
        "/v1/sweeps",
        {"json": {"name": "\x1b[31mred", "base": SPEC, "grid": {"lr": [0.1]}}},
        422,
        "U+001B",
    ),
    (
        "name with RTL override",
        "/v1/sweeps",
        {"json": {"name": "run\u202egpj.exe", "base": SPEC, "grid": {"lr": [0.1]}}},
        422,
        "U+202E",
    ),
    (
        "name with a lone surrogate",
        "/v1/sweeps",
        raw(f'{{"name": "\\ud800", "base": {BASE}, "grid": {{"lr": [0.1]}}}}'),
        422,
        "name",
    ),
    # bytes and content types
    ("body not UTF-8", "/v1/runs", raw(b'{"device": "\xff\xfe"}'), 422, "not UTF-8"),
    (
        "text/plain",
        "/v1/runs",
        {"content": json.dumps(SPEC).encode(), "headers": {"content-type": "text/plain"}},
        415,
        "text/plain",
    ),
    (
        "multipart form",
        "/v1/runs",
        {"files": {"spec": ("spec.json", BASE.encode())}},
        415,
        "multipart/form-data",
    ),
    ("form on a sweep", "/v1/sweeps", {"data": {"name": "x"}}, 415, "application/json"),
    # duplicate keys: parsers disagree on which one wins, so neither does
    (
        "duplicate key, big value last",
        "/v1/runs",
        raw('{"dataset": "synthetic", "epochs": 2, "epochs": 300}'),
        422,
        "duplicate key 'epochs'",
    ),
    (
        "duplicate key, big value first",
        "/v1/runs",
        raw('{"dataset": "synthetic", "epochs": 300, "epochs": 2}'),
        422,
        "duplicate key 'epochs'",
    ),
    (
        "duplicate key in a sweep base",
        "/v1/sweeps",
        raw('{"base": {"lr": 0.1, "lr": 0.2}, "grid": {"seed": [1]}}'),
        422,
        "duplicate key 'lr'",
    ),
    # exactly one byte over the limit
    (
        "body of max_body_bytes + 1",
        "/v1/runs",
        raw('{"pad": "' + "x" * (MIB - 10) + '"}'),
        413,
        "max_body_bytes=1048576",
    ),
]


def queued_messages(redis_client) -> int:
    return redis_client.llen("celery")


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "needle"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_hostile_bodies_get_a_clear_4xx_and_write_nothing(
    client, redis_client, path, kwargs, status, needle
):
    before = prefix_keys(redis_client, TEST_PREFIX)
    response = client.post(path, **kwargs)
    assert response.status_code == status, response.text
    assert needle in response.json()["detail"], response.json()
    assert prefix_keys(redis_client, TEST_PREFIX) == before
    assert queued_messages(redis_client) == 0


def test_a_body_just_at_the_limit_is_read_and_validated(client, redis_client):
    body = '{"pad": "' + "x" * (MIB - 11) + '"}'
    assert len(body) == MIB
    response = client.post("/v1/runs", **raw(body))
    assert response.status_code == 422 and response.json()["detail"] == "pad: unknown field"
    assert prefix_keys(redis_client, TEST_PREFIX) == []


def test_unicode_names_within_the_limit_are_kept_as_sent(client):
    for name in ("שלום עולם", "مرحبا", "🧪 sweep 🚀", "a\u200bb\u200dc", "z" * 200):
        response = client.post(
            "/v1/sweeps", json={"name": name, "base": SPEC, "grid": {"lr": [0.1]}}
        )
        assert response.status_code == 202, response.text
        assert client.get(f"/v1/sweeps/{response.json()['id']}").json()["name"] == name


def test_a_nan_priority_for_a_user_is_refused(client, redis_client):
    before = prefix_keys(redis_client, TEST_PREFIX)
    response = client.patch("/v1/users/local", **raw('{"priority": NaN}'))
    assert response.status_code == 422 and "priority" in response.json()["detail"]
    assert prefix_keys(redis_client, TEST_PREFIX) == before


@pytest.mark.parametrize("param", ["token", "access_token", "api_key", "apikey"])
def test_a_token_in_the_query_string_never_authenticates(auth_client, users, redis_client, param):
    _, token = users.add(name="ann")
    before = prefix_keys(redis_client, TEST_PREFIX)
    for headers in ({}, bearer(token)):  # not even next to a valid header
        response = auth_client.post(f"/v1/runs?{param}={token}", json=SPEC, headers=headers)
        assert response.status_code == 401, response.text
        assert "Authorization: Bearer" in response.json()["detail"]
        assert response.json()["code"] == "auth_required"
    assert prefix_keys(redis_client, TEST_PREFIX) == before
    assert queued_messages(redis_client) == 0

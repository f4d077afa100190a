"""Talking to the API in tests: the in-process client, auth headers, SSE, the task queue."""

from __future__ import annotations

import base64
import json
import warnings

from tests.support.redis_db import TEST_PREFIX


def starlette_test_client() -> type:
    """Starlette's TestClient; its import warns that httpx should become httpx2 (not ours)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    return TestClient


def bearer(token):
    """The Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}


def parse_sse(lines) -> list[dict]:
    """SSE messages (id, event, data parsed as JSON) from an iterable of text lines."""
    messages, current = [], {}
    for line in lines:
        if not line:
            if "data" in current:
                messages.append({**current, "data": json.loads(current["data"])})
            current = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(": ")
            current[field] = value
    return messages


def sse(http, path, **headers):
    """Every message of an SSE stream on a live server, read until the server ends it."""
    with http.stream("GET", path, headers=headers, timeout=60) as response:
        assert response.status_code == 200
        return parse_sse(response.iter_lines())


def queued_task_messages(redis_client):
    """The Celery messages waiting in the default queue, decoded."""
    out = []
    for raw in redis_client.lrange("celery", 0, -1):
        message = json.loads(raw)
        body = json.loads(base64.b64decode(message["body"]))
        out.append((message["headers"]["task"], body[0]))
    return out


def queued_groups(redis_client, owner="local"):
    """The groups in the owner's fair-share queue, oldest first; one train_next token each."""
    key = f"{TEST_PREFIX}:fair:q:{owner}"
    groups = [json.loads(group) for group in redis_client.lrange(key, 0, -1)]
    assert queued_task_messages(redis_client) == [("mlplab.train_next", [])] * len(groups)
    return groups

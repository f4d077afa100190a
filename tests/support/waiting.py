"""Waiting on events: poll until something happened, with a generous bound against hangs."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest


def wait_for(
    ok: Callable[[], object],
    *,
    what: str | Callable[[], str],
    timeout: float = 240,
    every: float = 0.1,
) -> object:
    """Poll ok() until it is truthy and return that; fail naming what never happened (a
    callable `what` is read at failure time, to show the last state). A hang bound only."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = ok()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out waiting for {what() if callable(what) else what}")


def wait_for_run(
    http, run_id: str, predicate: Callable[[dict], object], *, headers=None, timeout: float = 240
) -> dict:
    """Poll GET /v1/runs/{run_id} until predicate(run) holds; that run record."""
    seen: list[dict] = []

    def ok() -> dict | None:
        seen[:] = [http.get(f"/v1/runs/{run_id}", headers=headers).json()]
        return seen[0] if predicate(seen[0]) else None

    return wait_for(
        ok,
        what=lambda: f"run {run_id} to get there (last seen: {seen[0] if seen else None})",
        timeout=timeout,
        every=0.05,
    )

"""New run and sweep records, and the writes that queue a new run (one pipeline each).

The store (creating runs and sweeps) and the stage moves (creating a stage's runs,
runstore/stages.py) build records here, so a new run looks the same whichever made it.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from runstore.codec import dumps, encode
from runstore.keys import Keys


def new_id() -> str:
    """A fresh random record id (16 hex digits)."""
    return secrets.token_hex(8)


def new_run(
    *,
    owner: str,
    spec: dict[str, Any],
    sweep_id: str | None,
    varied: dict[str, Any] | None,
    fused_group: str | None = None,
) -> dict[str, Any]:
    """A new queued run record."""
    return {
        "id": new_id(),
        "owner": owner,
        "status": "queued",
        "spec": spec,
        "sweep_id": sweep_id,
        "varied": varied,
        "fused_group": fused_group,
        "created_at": time.time(),
        "started_at": None,
        "finished_at": None,
        "worker": None,
        "device": None,
        "checkpoint": None,
        "result": None,
        "error": None,
        "cancel_requested": False,
        "epochs": [],
    }


def new_sweep(
    *,
    sweep_id: str,
    owner: str,
    spec: dict[str, Any],
    metric: str,
    mode: str,
    run_ids: list[str],
    created_at: float,
) -> dict[str, Any]:
    """A new sweep record over the given runs."""
    return {
        "id": sweep_id,
        "owner": owner,
        "name": spec.get("name"),
        "spec": spec,
        "metric": metric,
        "mode": mode,
        "varied": list(spec.get("grid", {})),
        "run_ids": run_ids,
        "n_runs": len(run_ids),
        "n_terminal": 0,
        "created_at": created_at,
    }


def queue_run(pipe: Any, keys: Keys, run: dict[str, Any]) -> None:
    """Queue the commands that write a new run, its index entries and its queued event."""
    run_id, fields = run["id"], {**encode(run), "last_epoch": "0"}
    fields.pop("epochs")
    pipe.hset(keys.run(run_id), mapping=fields)
    created_ms = int(run["created_at"] * 1000)
    pipe.zadd(keys.owner_runs(run["owner"]), {run_id: created_ms})
    pipe.zadd(keys.all_runs(), {run_id: created_ms})
    pipe.sadd(keys.owner_active(run["owner"]), run_id)  # counted by the quota
    data = dumps({"status": "queued", "at": run["created_at"]})
    pipe.xadd(keys.run_events(run_id), {"type": "status", "data": data}, id="0-*")
    if run["sweep_id"]:
        entry = {"type": "status", "run_id": run_id, "data": data}
        pipe.xadd(keys.sweep_events(run["sweep_id"]), entry)

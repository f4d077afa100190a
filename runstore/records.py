"""New run and sweep records, and the writes that queue a new run (one pipeline each).

The store (creating runs and sweeps) and the stage moves (creating a stage's runs,
runstore/stages.py) build records here, so a new run looks the same whichever made it.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from redis.commands.core import Script
from redis.typing import EncodableT

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
    repeat: int = 0,
) -> dict[str, Any]:
    """A new queued run record (`repeat`: which of its configuration's repeats it is)."""
    return {
        "id": new_id(),
        "owner": owner,
        "status": "queued",
        "spec": spec,
        "sweep_id": sweep_id,
        "varied": varied,
        "fused_group": fused_group,
        "repeat": repeat,
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
    varied: list[str],
) -> dict[str, Any]:
    """A new sweep record over the given runs (`varied`: mlpcore.sweep.varied_fields)."""
    return {
        "id": sweep_id,
        "owner": owner,
        "name": spec.get("name"),
        "spec": spec,
        "metric": metric,
        "mode": mode,
        "varied": varied,
        "run_ids": run_ids,
        "n_runs": len(run_ids),
        "n_terminal": 0,
        "created_at": created_at,
    }


# KEYS: the creation-order counter, then the zsets to add the record to; ARGV: its creation
# time (us), its id. The score is that time, or one more than the last score given when that
# is not later (records made in the same microsecond, a process whose clock is behind): unique
# and in creation order, so a newest-first listing never falls back on the random ids' order.
CREATION_INDEX = """
local score = math.max(tonumber(ARGV[1]), tonumber(redis.call('GET', KEYS[1]) or '0') + 1)
local text = string.format('%d', score)
redis.call('SET', KEYS[1], text)
for i = 2, #KEYS do redis.call('ZADD', KEYS[i], text, ARGV[2]) end
return text
"""


def index_created(
    pipe: Any, keys: Keys, *, index: Script, zsets: list[str], record_id: str, created_at: float
) -> None:
    """Queue adding a new record to creation-order zsets, under one score (CREATION_INDEX,
    registered as `index`)."""
    args: list[EncodableT] = [int(created_at * 1_000_000), record_id]
    index(keys=[keys.creation_order(), *zsets], args=args, client=pipe)


def queue_run(pipe: Any, keys: Keys, run: dict[str, Any], *, index: Script) -> None:
    """Queue the commands that write a new run, its index entries and its queued event."""
    run_id, fields = run["id"], {**encode(run), "last_epoch": "0"}
    fields.pop("epochs")
    pipe.hset(keys.run(run_id), mapping=fields)
    zsets = [keys.owner_runs(run["owner"]), keys.all_runs()]
    index_created(
        pipe, keys, index=index, zsets=zsets, record_id=run_id, created_at=run["created_at"]
    )
    pipe.sadd(keys.owner_active(run["owner"]), run_id)  # counted by the quota
    data = dumps({"status": "queued", "at": run["created_at"]})
    pipe.xadd(keys.run_events(run_id), {"type": "status", "data": data}, id="0-*")
    if run["sweep_id"]:
        entry = {"type": "status", "run_id": run_id, "data": data}
        pipe.xadd(keys.sweep_events(run["sweep_id"]), entry)

"""Records as Redis hashes: every field a string, JSON where the value is structured.

Non-finite floats (a diverged loss) are stored as null: JSON has no NaN, and a client must
be able to parse every record and event.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

RUN_JSON = ("spec", "varied", "result", "model", "tags", "attempts", "continuing", "extensions")
RUN_FLOAT = ("created_at", "started_at", "finished_at")
RUN_TEXT = (
    "id",
    "owner",
    "status",
    "sweep_id",
    "worker",
    "device",
    "error",
    "fused_group",
    "checkpoint",
    "name",
    "notes",
)
SWEEP_JSON = ("spec", "varied", "run_ids", "tags")
SWEEP_FLOAT = ("created_at",)
SWEEP_TEXT = ("id", "owner", "name", "metric", "mode", "notes")
SWEEP_INT = ("n_runs", "n_terminal")


def finite(value: Any) -> Any:
    """The value with every non-finite float inside it replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """Compact JSON with non-finite floats as null."""
    return json.dumps(finite(value), separators=(",", ":"), allow_nan=False)


def encode(record: dict[str, Any]) -> dict[str, str]:
    """A decoded record as hash fields; None becomes the empty string."""
    out: dict[str, str] = {}
    for key, value in record.items():
        if value is None:
            out[key] = ""
        elif isinstance(value, bool):
            out[key] = "1" if value else "0"
        elif isinstance(value, dict | list):
            out[key] = dumps(value)
        else:
            out[key] = str(value)
    return out


def _decode(
    raw: Mapping[str, str],
    *,
    json_fields: tuple[str, ...],
    float_fields: tuple[str, ...],
    text_fields: tuple[str, ...],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in json_fields:
        out[key] = json.loads(raw[key]) if raw.get(key) else None
    for key in float_fields:
        out[key] = float(raw[key]) if raw.get(key) else None
    for key in text_fields:
        out[key] = raw.get(key) or None
    return out


def decode_run(raw: Mapping[str, str]) -> dict[str, Any]:
    """A run hash as a record (without its epochs)."""
    out = _decode(raw, json_fields=RUN_JSON, float_fields=RUN_FLOAT, text_fields=RUN_TEXT)
    out["cancel_requested"] = raw.get("cancel_requested") == "1"
    out["last_epoch"] = int(raw.get("last_epoch") or 0)
    out["requeues"] = int(raw.get("requeues") or 0)
    out["repeat"] = int(raw.get("repeat") or 0)  # which of its configuration's repeats
    out["reaped"] = int(raw.get("reaped") or 0)  # requeues because its worker vanished
    for listed in ("tags", "attempts", "extensions"):  # runstore/curation.py
        out[listed] = out[listed] or []
    return out


def decode_runs(replies: list[Any], *, epochs: bool) -> list[dict[str, Any]]:
    """Records from pipelined HGETALL (and, with epochs, XRANGE) replies; missing runs dropped."""
    step = 2 if epochs else 1
    runs = []
    for i in range(0, len(replies), step):
        if replies[i]:
            run = decode_run(replies[i])
            run["epochs"] = _epochs(replies[i + 1]) if epochs else []
            runs.append(run)
    return runs


def _epochs(entries: list[tuple[str, dict[str, str]]]) -> list[dict[str, Any]]:
    """The epoch events' data, in order."""
    return [json.loads(f["data"]) for _, f in entries if f["type"] == "epoch"]


def decode_sweep(raw: Mapping[str, str]) -> dict[str, Any]:
    """A sweep hash as a record."""
    out = _decode(raw, json_fields=SWEEP_JSON, float_fields=SWEEP_FLOAT, text_fields=SWEEP_TEXT)
    for key in SWEEP_INT:
        out[key] = int(raw.get(key) or 0)
    out["tags"] = out["tags"] or []
    return out

"""Server-sent events as the client reads them: one Event per `event:`/`id:`/`data:` block."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    """One server-sent event: its type, id and decoded JSON data."""

    event: str
    id: str | None
    data: Any


def parse_sse(lines: Iterator[str]) -> Iterator[Event]:
    """Decode a text/event-stream body into events (comments and keep-alives skipped)."""
    event, event_id, data = "message", None, list[str]()
    for line in lines:
        if not line:
            if data:
                yield Event(event=event, id=event_id, data=_decode("\n".join(data)))
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            event = value
        elif field == "id":
            event_id = value
        elif field == "data":
            data.append(value)


def _decode(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text

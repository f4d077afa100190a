"""Event stream entries and the mapping of Last-Event-ID to a stream position."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from mlpcore.status import TERMINAL
from runstore.errors import InvalidEventId

_POSITION = re.compile(r"^(\d+)(?:-(\d+))?$")


@dataclass(frozen=True)
class Event:
    """One stream entry: an `epoch` or `status` event with its JSON data."""

    id: str
    type: str
    data: str
    run_id: str | None = None

    @property
    def terminal(self) -> bool:
        """True for the status event that ends a run."""
        return self.type == "status" and json.loads(self.data).get("status") in TERMINAL

    def epoch_id(self) -> str:
        """The SSE id on a run stream: the epoch number for epochs, `k-n` for status events."""
        epoch, _, seq = self.id.partition("-")
        return epoch if self.type == "epoch" and seq == "0" else self.id


def parse_entry(entry_id: str, fields: dict[str, str]) -> Event:
    """An Event from an XRANGE/XREAD entry."""
    return Event(entry_id, fields["type"], fields["data"], fields.get("run_id"))


def after_position(last_event_id: str | None) -> str:
    """The stream id to read after: `k` means after epoch k (k-0); `a-b` is taken as is."""
    if last_event_id is None or not last_event_id.strip():
        return "0-0"
    match = _POSITION.match(last_event_id.strip())
    if not match:
        raise InvalidEventId(
            f"Last-Event-ID {last_event_id!r} must be an epoch number or a stream id like 3-1"
        )
    return f"{match[1]}-{match[2] or 0}"

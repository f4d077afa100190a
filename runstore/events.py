"""Event stream entries and the mapping of Last-Event-ID to a stream position."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from mlpcore.status import TERMINAL
from runstore.errors import InvalidEventId

# ASCII digits only (a regex \d takes any script's digits, Redis does not), matched whole.
_POSITION = re.compile(r"([0-9]+)(?:-([0-9]+))?")
# Each part of a Redis stream id is an unsigned 64-bit integer; Redis refuses anything past it.
MAX_PART = 2**64 - 1
_MAX_DIGITS = len(str(MAX_PART))


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
    """The stream id to read after: `k` means after epoch k (k-0); `a-b` is that stream id."""
    if last_event_id is None or not last_event_id.strip():
        return "0-0"
    match = _POSITION.fullmatch(last_event_id.strip())
    if not match:
        raise InvalidEventId(
            f"Last-Event-ID {last_event_id[:40]!r} must be an epoch number or a stream id like 3-1"
        )
    # Checked here, before the stream starts: past 64 bits the first XREAD fails after the 200.
    # The length test comes first, so int() never reads thousands of digits.
    parts = [match[1], match[2] or "0"]
    if any(len(part.lstrip("0")) > _MAX_DIGITS or int(part) > MAX_PART for part in parts):
        raise InvalidEventId(
            f"Last-Event-ID {last_event_id[:40]!r}: each part of a stream id is at most {MAX_PART}"
        )
    return "-".join(str(int(part)) for part in parts)

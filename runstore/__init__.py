"""The one Redis key schema and record store shared by the API and the worker."""

from runstore.aio import AsyncStore
from runstore.errors import Conflict, InvalidEventId, LeaseLost, NotFound, RunstoreError
from runstore.events import TERMINAL, Event, after_position
from runstore.keys import Keys
from runstore.records import new_id
from runstore.store import Store

__all__ = [
    "TERMINAL",
    "AsyncStore",
    "Conflict",
    "Event",
    "InvalidEventId",
    "Keys",
    "LeaseLost",
    "NotFound",
    "RunstoreError",
    "Store",
    "after_position",
    "new_id",
]

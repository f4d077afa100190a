"""runstore's exceptions; the API maps them to HTTP in api/errors.py.

RunstoreError
├── NotFound           a run or sweep id that does not exist (or is not the caller's)
├── Conflict           an operation the record's state does not allow (cancel a finished run)
├── InvalidEventId     a Last-Event-ID that is not a stream position
├── LeaseLost          a worker writing to a run another worker holds now (runstore.leases)
└── QuotaFull          (runstore.quota) a submission over the owner's max_queued
"""


class RunstoreError(Exception):
    """Base of every error runstore raises on purpose."""


class NotFound(RunstoreError):
    """A run or sweep that does not exist."""


class Conflict(RunstoreError):
    """A state transition the record's current state forbids."""


class InvalidEventId(RunstoreError):
    """A Last-Event-ID header that names no stream position."""


class LeaseLost(RunstoreError):
    """A write from a worker whose lease on the run was lost (the run was requeued)."""

"""The orchestration's own errors (api/errors.py maps them to HTTP).

LabError
└── LimitExceeded      a spec over a server limit (max_epochs, ...)       -> 422
    └── Unservable     a spec no live worker can serve (its dataset, its device) -> 422
"""


class LabError(Exception):
    """Base of the orchestration's errors."""


class LimitExceeded(LabError):
    """A spec that asks for more than the server allows."""


class Unservable(LimitExceeded):
    """A spec that asks for a dataset or device no live worker has: more than the server
    can do now (a LimitExceeded, so the API's one map answers it 422)."""

"""The orchestration's own errors (api/errors.py maps them to HTTP).

LabError
└── LimitExceeded      a spec over a server limit (max_epochs, ...)       -> 422
"""


class LabError(Exception):
    """Base of the orchestration's errors."""


class LimitExceeded(LabError):
    """A spec that asks for more than the server allows."""

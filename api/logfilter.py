"""Secrets kept out of the access log: a token sent in the query string is written as REDACTED.

Tokens belong in the Authorization header, and a request that puts one in the URL is refused
(401), but uvicorn's access log writes every request line, query string included, to a file
that more people read than should know a token. The filter rewrites the path argument of each
`uvicorn.access` record before it is formatted, whatever the log config's format.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote_plus

SECRET_PARAMS = frozenset({"token", "access_token", "api_key", "apikey"})
REDACTED = "REDACTED"
ACCESS_LOGGER = "uvicorn.access"
PATH_ARG = 2  # uvicorn's access record args: (client, method, path?query, http version, status)


def redact_query(path: str) -> str:
    """The path with the values of secret-looking query parameters replaced by REDACTED."""
    base, sep, query = path.partition("?")
    if not sep:
        return path
    parts = []
    for item in query.split("&"):
        name, eq, _ = item.partition("=")
        secret = unquote_plus(name).strip().lower() in SECRET_PARAMS
        parts.append(f"{name}={REDACTED}" if secret and eq else item)
    return f"{base}?{'&'.join(parts)}"


class RedactSecrets(logging.Filter):
    """Redacts secret query parameters in uvicorn's access records; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's path argument in place; always keep the record."""
        args = record.args
        if isinstance(args, tuple) and len(args) > PATH_ARG:
            path = args[PATH_ARG]
            if isinstance(path, str):
                record.args = (*args[:PATH_ARG], redact_query(path), *args[PATH_ARG + 1 :])
        return True


def install() -> None:
    """Put the filter on uvicorn's access logger once (create_app may run more than once)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())

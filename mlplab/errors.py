"""The client's errors, one per kind of answer, with the server's detail and HTTP status.

MlplabError
├── ConnectionFailed   the server could not be reached
├── BadRequest         4xx not below (422 and the like)
├── Unauthorized       401
├── NotFound           404
├── Conflict           409
├── QuotaExceeded      429
└── ServerError        5xx
"""

from __future__ import annotations

import json

import httpx


class MlplabError(Exception):
    """Base of the client's errors; carries the server's detail and HTTP status."""

    def __init__(self, detail: str, status_code: int | None = None) -> None:
        super().__init__(detail if status_code is None else f"{status_code}: {detail}")
        self.detail, self.status_code = detail, status_code


class ConnectionFailed(MlplabError):
    """The server could not be reached."""

    @classmethod
    def reaching(cls, url: str, exc: Exception) -> ConnectionFailed:
        """The error for a failed request to `url`; a local URL suggests starting a server."""
        host = httpx.URL(url).host
        local = host in ("127.0.0.1", "localhost", "::1", "0.0.0.0")
        hint = "; is the server up? start one with `mlplab up`" if local else ""
        return cls(f"cannot reach mlplab at {url}: {exc}{hint}")


class BadRequest(MlplabError):
    """The server refused the request as invalid (4xx other than the ones below)."""


class Unauthorized(MlplabError):
    """Missing, wrong or revoked token (401)."""


class NotFound(MlplabError):
    """No such run or sweep for this user (404)."""


class Conflict(MlplabError):
    """The request does not fit the current state, e.g. cancelling a finished run (409)."""


class QuotaExceeded(MlplabError):
    """A per-user quota is full (429)."""


class ServerError(MlplabError):
    """The server failed (5xx)."""


_BY_STATUS = {401: Unauthorized, 404: NotFound, 409: Conflict, 429: QuotaExceeded}


def error_for(response: httpx.Response) -> MlplabError:
    try:
        detail = response.json().get("detail", response.text)
    except (json.JSONDecodeError, AttributeError):
        detail = response.text
    if not isinstance(detail, str):
        detail = json.dumps(detail)
    if response.status_code >= 500:
        return ServerError(detail, response.status_code)
    return _BY_STATUS.get(response.status_code, BadRequest)(detail, response.status_code)

"""The API's own exceptions and the one place that maps every domain error to HTTP.

ApiError
├── AuthRequired       no valid credentials (with WWW-Authenticate)       -> 401
├── Forbidden          an admin-only request from a non-admin             -> 403
└── PlotFailed         runs a plot cannot be drawn from (kept, not redrawn) -> 500
lab.errors.LimitExceeded (a spec over a server limit, max_epochs, ...) -> 422,
runstore.NotFound -> 404, runstore.Conflict -> 409, runstore.InvalidEventId -> 422,
runstore.quota.QuotaFull (max_queued, naming the user's count) -> 429,
runstore.streams.StreamsFull (max_streams event streams open already) -> 429,
mlpcore.errors.SpecError -> 422, request validation -> 422, Redis or the broker
unreachable -> 503 (api/outage.py, with Retry-After),
anything else -> logged 500.
Every error body is {"detail": str, "code": str}.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lab.errors import LimitExceeded
from mlpcore.errors import SpecError
from mlpcore.spec import RUN_FIELDS, did_you_mean
from mlpcore.sweep import SweepSpec
from runstore import Conflict, InvalidEventId, NotFound
from runstore.quota import QuotaFull
from runstore.streams import StreamsFull

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Base of the API's own errors."""


class AuthRequired(ApiError):
    """A request without usable credentials."""


class Forbidden(ApiError):
    """A request only an admin may make."""


class PlotFailed(ApiError):
    """A picture that could not be drawn from these runs (api/plots.py keeps the failure)."""


# exception class -> (status, code); the first matching entry in this order wins
_MAPPING: list[tuple[type[Exception], int, str]] = [
    (LimitExceeded, 422, "limit_exceeded"),
    (SpecError, 422, "invalid_spec"),
    (InvalidEventId, 422, "invalid_event_id"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (AuthRequired, 401, "auth_required"),
    (Forbidden, 403, "forbidden"),
    (QuotaFull, 429, "quota_exceeded"),
    (StreamsFull, 429, "too_many_streams"),
    (PlotFailed, 500, "plot_failed"),
]
_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="mlplab"'}


def error_response(status: int, detail: str, code: str) -> JSONResponse:
    """The one error body shape; a 401 says how to authenticate (RFC 6750)."""
    headers = _CHALLENGE if status == 401 else None
    return JSONResponse({"detail": detail, "code": code}, status_code=status, headers=headers)


# what an unknown field may have meant: a run spec's fields and a sweep's own
KNOWN_FIELDS = RUN_FIELDS | frozenset(SweepSpec.model_fields)


def describe_validation(errors: list[dict]) -> str:
    """A readable `where: what` line per problem, naming fields without the `body.` prefix."""
    parts = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "invalid JSON")
            parts.append(f"body: malformed JSON ({reason}, at character {loc[-1]})")
            continue
        if loc and loc[0] == "body":
            where = ".".join(loc[1:]) or "body"
        else:
            where = f"{loc[0]} parameter {'.'.join(loc[1:])}" if loc else "request"
        message = err.get("msg")
        if err.get("type") == "extra_forbidden":
            message = "unknown field" + did_you_mean(loc[-1], KNOWN_FIELDS)
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def install(app: FastAPI) -> None:
    """Register the handlers that turn exceptions into JSON errors."""

    async def on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, describe_validation(list(exc.errors())), "validation_error")

    async def on_http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, str(exc.detail), code)

    async def on_domain(request: Request, exc: Exception) -> JSONResponse:
        for cls, status, code in _MAPPING:
            if isinstance(exc, cls):
                if status >= 500:
                    log.error("%s %s: %s", request.method, request.url.path, exc)
                return error_response(status, str(exc), code)
        return await on_unexpected(request, exc)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal server error", "internal_error")

    app.add_exception_handler(RequestValidationError, on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http)  # type: ignore[arg-type]
    for cls, _, _ in _MAPPING:
        app.add_exception_handler(cls, on_domain)
    app.add_exception_handler(Exception, on_unexpected)

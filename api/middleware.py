"""Request guards that run before routing: body size (413), JSON content type (415) and
JSON that a plain parse would take silently or fail on obscurely (422): duplicate keys,
nesting deeper than MAX_JSON_DEPTH, numbers too long to read, text that is not UTF-8."""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response

_BODY_METHODS = {"POST", "PUT", "PATCH"}
MAX_JSON_DEPTH = 32  # a staged sweep spec needs 5
_INLINE_BYTES = 64 * 1024  # bodies up to this are checked on the event loop (well under 1 ms)


class _DuplicateKey(ValueError):
    """An object naming the same key twice (parsers disagree on which value wins)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _too_deep(value: dict | list, limit: int) -> bool:
    """True when lists and objects nest deeper than limit (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def json_problem(body: bytes) -> str | None:
    """Why the body is refused before validation, or None (malformed JSON is left to FastAPI,
    which names the position)."""
    try:
        value = json.loads(body, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        return f"body: duplicate key {exc.args[0]!r} (name each field once)"
    except RecursionError:
        return f"body: JSON nested deeper than {MAX_JSON_DEPTH} levels"
    except UnicodeDecodeError:
        return "body: not UTF-8 text (send JSON encoded as UTF-8)"
    except json.JSONDecodeError:
        return None
    except ValueError:  # an integer literal longer than Python reads (4300 digits by default)
        return f"body: a number over {sys.get_int_max_str_digits()} digits long"
    if isinstance(value, dict | list) and _too_deep(value, MAX_JSON_DEPTH):
        return f"body: JSON nested deeper than {MAX_JSON_DEPTH} levels"
    return None


async def _checked(body: bytes) -> str | None:
    """json_problem, on a worker thread for a big body so the event loop keeps streaming."""
    if len(body) <= _INLINE_BYTES:
        return json_problem(body)
    return await anyio.to_thread.run_sync(json_problem, body)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class BodyGuard:
    """Reject bodies over max_bytes (by Content-Length or as streamed) and non-JSON bodies.

    The body is read here (at most max_bytes) and replayed to the app, so a chunked upload
    without Content-Length is held to the same limit and nothing runs on a rejected request.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        body = await self._read(receive)
        if body is None:
            await self._too_large(scope, receive, send)
            return
        content_type = headers.get("content-type", "")
        if body and not _is_json(content_type):
            detail = (
                f"Content-Type must be application/json, not {content_type or 'none'!r} "
                "(with curl: -H 'Content-Type: application/json')"
            )
            await error_response(415, detail, "unsupported_media_type")(scope, receive, send)
            return
        if body and (problem := await _checked(body)):
            await error_response(422, problem, "validation_error")(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it grows past the limit."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b""
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"request body over the limit max_body_bytes={self.max_bytes}"
        await error_response(413, detail, "payload_too_large")(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that yields the buffered body once, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            message: dict[str, Any] = {"type": "http.request", "body": body, "more_body": False}
            return message
        return await receive()

    return replay

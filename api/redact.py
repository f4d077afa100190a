"""Server paths cut out of the error messages non-admins see.

A worker's error names the files it could not read (a dataset folder, a checkpoint), which
tells any user how the server's disks are laid out. Its owner still needs the message, so
the absolute paths in it become `<server path>`; admins, who run the server, see it whole.
"""

from __future__ import annotations

import json
import re
from typing import Any

from runstore.users import User

PLACEHOLDER = "<server path>"
# An absolute POSIX path (or ~/...): a slash that starts a word, not one inside a URL (`://`),
# a ratio (`1/2`) or a relative name (`MNIST/raw`), up to a space, quote, colon or bracket.
_PATH = re.compile(r"(?<![\w.:/~-])~?/[^\s'\"`,:;()<>\[\]{}]+")


def redact_paths(text: str) -> str:
    """The text with every absolute path replaced by PLACEHOLDER."""
    return _PATH.sub(PLACEHOLDER, text)


def runs_for(user: User, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The run records as this user may see them: errors without paths unless an admin."""
    if user.admin:
        return runs
    return [_redacted(r) for r in runs]


def _redacted(record: dict[str, Any]) -> dict[str, Any]:
    """A run record (or one of its earlier attempts) with its errors' paths cut out."""
    out = {**record, "error": redact_paths(record["error"])} if record.get("error") else record
    if record.get("attempts"):
        out = {**out, "attempts": [_redacted(a) for a in record["attempts"]]}
    return out


def event_data_for(user: User, data: str) -> str:
    """An event's JSON data as this user may see it (a status event may carry an error)."""
    if user.admin or '"error"' not in data:
        return data
    value = json.loads(data)
    if not isinstance(value.get("error"), str):
        return data
    return json.dumps({**value, "error": redact_paths(value["error"])})

"""The password of `mlplab up`'s private Redis: made once, kept in the state dir, found by
every part started later on the same box.

A private Redis (started when nothing answers at a local URL) requires a generated password.
It lives in `<state dir>/redis-password`, mode 0600, so only the account that runs the server
reads it; `mlplab api`, `worker` and `users` add it to a local URL that carries no password.
Nothing here imports redis: the client install uses the state-dir helpers too.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

PASSWORD_FILE = "redis-password"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def default_state_dir() -> Path:
    """$MLPLAB_STATE_DIR, else $XDG_STATE_HOME/mlplab, else ~/.local/state/mlplab."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(os.environ.get("MLPLAB_STATE_DIR") or os.path.join(base, "mlplab"))


def password_path(state_dir: Path) -> Path:
    """Where the private Redis's password is kept."""
    return state_dir / PASSWORD_FILE


def read_password(state_dir: Path) -> str | None:
    """The kept password, or None when there is none; a file others can read is made 0600."""
    path = password_path(state_dir)
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(0o600)  # someone loosened it: the password is the key to every record
    return text or None


def _write_private(path: Path, text: str) -> None:
    """Write a file created 0600 from the start (never briefly readable by others)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)  # O_CREAT's mode does not apply to a file that already existed


def ensure_password(state_dir: Path) -> str:
    """The kept password, made (secrets.token_urlsafe) and written 0600 when there is none."""
    existing = read_password(state_dir)
    if existing:
        return existing
    state_dir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(32)
    _write_private(password_path(state_dir), password + "\n")
    return password


def redis_conf_path(state_dir: Path) -> Path:
    """The private redis-server's config file (it holds requirepass)."""
    return state_dir / "redis.conf"


def write_redis_conf(state_dir: Path, *, password: str) -> None:
    """The config file that gives the private Redis its password (0600, like the password)."""
    quoted = password.replace("\\", "\\\\").replace('"', '\\"')  # redis.conf's string escapes
    _write_private(redis_conf_path(state_dir), f'requirepass "{quoted}"\n')


def is_local(url: str) -> bool:
    """True when the URL names a Redis on this machine."""
    return urlsplit(url).hostname in LOCAL_HOSTS


def url_password(url: str) -> str | None:
    """The password a Redis URL carries (None without one)."""
    password = urlsplit(url).password
    return unquote(password) if password else None


def with_password(url: str, password: str) -> str:
    """The URL with this password (and no user name: the private Redis has only `default`)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    netloc = f":{quote(password, safe='')}@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def local_url(url: str, *, state_dir: Path) -> str:
    """A local URL without a password gets the kept one, if any; any other URL is unchanged."""
    if url_password(url) or not is_local(url):
        return url
    password = read_password(state_dir)
    return with_password(url, password) if password else url


def redacted(url: str) -> str:
    """The URL fit for a log line: its password replaced by ***."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    user = quote(unquote(parts.username), safe="") if parts.username else ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, ""))

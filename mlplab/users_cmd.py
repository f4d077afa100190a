"""`mlplab users add|list|revoke|token|set`: manage users and tokens, run on the server box.

These talk to the server's Redis directly ($MLPLAB_REDIS_URL or --redis-url, key prefix
$MLPLAB_KEY_PREFIX or --prefix), so whoever can run them administers the box. A local URL
without a password gets the one `mlplab up` keeps for its private Redis (in the state dir,
readable only by the account that runs the server). `add` and
`token` print the new token alone on the last line of stdout, so a script can capture it
with `| tail -n1`; it is never shown again (Redis keeps only its SHA-256).
Exit codes: 0 ok, 1 refused (no such user, name taken, bad value), 3 Redis unreachable.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

from mlpcore.limits import LIMIT_NAMES
from mlplab.extras import needs
from mlplab.redisauth import default_state_dir, local_url, redacted


def register(sub: argparse._SubParsersAction) -> None:
    """Add `users` and its subcommands."""
    text = "manage users and API tokens (on the server: talks to its Redis)"
    users = sub.add_parser(
        "users",
        help=text,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    common = _common()
    p = actions.add_parser("add", parents=[common], help="add a user and print their token")
    p.add_argument("name")
    p.add_argument("--admin", action="store_true", help="sees and cancels everyone's work")
    p.set_defaults(func=_wrapped(cmd_add))
    p = actions.add_parser("list", parents=[common], help="list users")
    p.set_defaults(func=_wrapped(cmd_list))
    p = actions.add_parser("revoke", parents=[common], help="invalidate a user's token now")
    p.add_argument("name")
    p.set_defaults(func=_wrapped(cmd_revoke))
    p = actions.add_parser(
        "token",
        parents=[common],
        help="give a user a new token (the old one stops working at once)",
    )
    p.add_argument("name")
    p.set_defaults(func=_wrapped(cmd_token))
    p = actions.add_parser("set", parents=[common], help="set priority and limit overrides")
    p.add_argument("name")
    p.add_argument("--priority", type=float, help="fair-share weight (default 1; 2 = twice)")
    for limit in LIMIT_NAMES:
        p.add_argument(
            f"--{limit.replace('_', '-')}",
            dest=limit,
            type=int,
            metavar="N",
            help=f"override the server's {limit} for this user",
        )
    p.add_argument(
        "--unset",
        action="append",
        default=[],
        choices=LIMIT_NAMES,
        metavar="LIMIT",
        help="drop an override (repeatable): the server's applies",
    )
    p.set_defaults(func=_wrapped(cmd_set))


def _wrapped(func: Any) -> Any:
    """The command behind `run`, which turns its failures into exit codes."""
    return needs("server")(lambda args: run(func, args))


def add_redis_url(parser: argparse.ArgumentParser) -> None:
    """The --redis-url option every server-side command takes (None: resolved when it runs)."""
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("MLPLAB_REDIS_URL"),
        help="default: $MLPLAB_REDIS_URL, else the servers' default, Redis on 127.0.0.1:6379 db 0",
    )


def _common() -> argparse.ArgumentParser:
    """Where the server's Redis is."""
    parent = argparse.ArgumentParser(add_help=False)
    add_redis_url(parent)
    parent.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where `mlplab up` keeps its private Redis's password, used for a local URL "
        "without one (default: $MLPLAB_STATE_DIR, else ~/.local/state/mlplab)",
    )
    parent.add_argument(
        "--prefix",
        default=os.environ.get("MLPLAB_KEY_PREFIX", "mlplab"),
        help="runstore key prefix (default: $MLPLAB_KEY_PREFIX or mlplab)",
    )
    return parent


def _users(args: argparse.Namespace) -> Any:
    """A UserStore on the server's Redis."""
    from runstore.users import UserStore

    return UserStore(_redis(args.redis_url), prefix=args.prefix)


def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=3)


def cmd_add(args: argparse.Namespace) -> int:
    """Create the user and print the token last."""
    user, token = _users(args).add(name=args.name, admin=args.admin)
    role = "an admin" if user.admin else "a user"
    print(f"added {user.name} as {role}; their token (shown only now):")
    print(token)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """One line per user: name, role, priority, overrides, state, created."""
    users = _users(args).list()
    print(f"{'NAME':<20} {'ROLE':<6} {'PRIORITY':>8}  {'STATE':<8} {'CREATED':<17} OVERRIDES")
    for user in users:
        created = (
            dt.datetime.fromtimestamp(user.created_at).strftime("%Y-%m-%d %H:%M")
            if user.created_at
            else "-"
        )
        overrides = " ".join(f"{k}={v}" for k, v in sorted(user.overrides.items())) or "-"
        print(
            f"{user.name:<20} {'admin' if user.admin else 'user':<6} {user.priority:>8g}  "
            f"{'revoked' if user.revoked else 'active':<8} {created:<17} {overrides}"
        )
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    """Invalidate the user's token."""
    user = _users(args).revoke(args.name)
    print(f"revoked {user.name}'s token; `mlplab users token {user.name}` gives them a new one")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """Rotate the user's token and print the new one last."""
    users = _users(args)
    was_revoked = users.require(args.name).revoked
    user, token = users.rotate(args.name)
    note = " (this re-enables them)" if was_revoked else "; the old one no longer works"
    print(f"new token for {user.name}{note}:")
    print(token)
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    """Apply priority and overrides; print the resulting record."""
    limits: dict[str, int | None] = {
        k: getattr(args, k) for k in LIMIT_NAMES if getattr(args, k) is not None
    }
    limits.update(dict.fromkeys(args.unset))
    user = _users(args).update(args.name, priority=args.priority, limits=limits)
    overrides = " ".join(f"{k}={v}" for k, v in sorted(user.overrides.items())) or "none"
    print(f"{user.name}: priority {user.priority:g}; overrides {overrides}")
    return 0


def run(func: Any, args: argparse.Namespace) -> int:
    """Run a users command, turning known failures into one line on stderr."""
    import redis

    from runstore import RunstoreError

    state_dir = getattr(args, "state_dir", None) or default_state_dir()
    args.redis_url = local_url(args.redis_url or default_redis_url(), state_dir=state_dir)
    try:
        return func(args)
    except (RunstoreError, ValueError) as exc:
        print(f"mlplab users: {exc}", file=sys.stderr)
        return 1
    except redis.RedisError as exc:
        where = redacted(args.redis_url)
        print(f"mlplab users: Redis at {where} unreachable: {exc}", file=sys.stderr)
        return 3


def default_redis_url() -> str:
    """The Redis every part uses unless told otherwise (runstore's, read when a server
    command runs: the client install has no runstore dependencies)."""
    from runstore.keys import DEFAULT_REDIS_URL

    return DEFAULT_REDIS_URL


def auth_notice(*, no_auth: bool, redis_url: str, prefix: str, log: Any) -> None:
    """Say at start how requests are authenticated; loudly when nobody is checked."""
    if no_auth:
        log.warning(
            "AUTH IS OFF (--no-auth): anyone who reaches the API acts as the admin "
            "user 'local'. Use it only on a machine where you are the only user."
        )
        return
    try:
        count = len(_users(argparse.Namespace(redis_url=redis_url, prefix=prefix)).list())
    except Exception as exc:  # a notice must never stop the server
        log.info("auth on; could not count users: %s", exc)
        return
    if count:
        log.info(
            "auth on: %d user(s); every /v1 request needs Authorization: Bearer <token>", count
        )
    else:
        log.warning(
            "auth on and no users yet: create one with `mlplab users add NAME --admin` "
            "(or start with --no-auth for single-user local use)"
        )

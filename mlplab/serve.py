"""`mlplab up`, `mlplab api`, `mlplab worker`: start the server's processes and supervise them
(mlplab/supervisor.py: a crashed child is restarted, a signal stops them all).

Workers run Celery's solo pool, one task at a time in the worker's own process: datasets stay
cached in that process across tasks, CUDA is initialised where the task runs (no fork after
it), and SIGTERM reaches the process that trains. `up` adds a private redis-server, with a
password kept in the state dir (mlplab/redisauth.py), when nothing answers at MLPLAB_REDIS_URL.

One worker per visible GPU (CUDA_VISIBLE_DEVICES, else `nvidia-smi -L`; this process never
imports torch), each pinned with CUDA_VISIBLE_DEVICES=<that GPU> and named gpuK@host; one
CPU worker (cpu1@host) when there is no GPU; `--workers N` overrides the count. CPU workers
split the cores between them (MLPLAB_TORCH_THREADS) unless it is set.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mlplab.extras import needs
from mlplab.placement import worker_plan
from mlplab.redisauth import (
    default_state_dir,
    ensure_password,
    is_local,
    local_url,
    password_path,
    redacted,
    redis_conf_path,
    url_password,
    with_password,
    write_redis_conf,
)
from mlplab.supervisor import Supervisor
from mlplab.users_cmd import add_redis_url, auth_notice, default_redis_url

log = logging.getLogger("mlplab.serve")


def api_command(*, host: str, port: int) -> list[str]:
    """The uvicorn command line serving the app factory."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "api.main:create_app",
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
        "--timeout-graceful-shutdown",
        "3",
    ]


def worker_command(*, name: str) -> list[str]:
    """The Celery worker command line: solo pool, one task at a time."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery_app",
        "worker",
        "--pool",
        "solo",
        "--concurrency",
        "1",
        "--hostname",
        f"{name}@%h",
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "INFO",
    ]


@contextlib.contextmanager
def _probe(url: str) -> Iterator[Any]:
    """A client for one quick question at url (1 s timeouts), closed after it."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        yield client
    finally:
        client.close()


def redis_state(url: str) -> str:
    """ok when PING is answered at url, auth when it is refused for want of the right
    password, down when nothing answers."""
    import redis

    try:
        with _probe(url) as client:
            return "ok" if client.ping() else "down"
    except redis.AuthenticationError:
        return "auth"
    except (redis.RedisError, OSError):
        return "down"


# XADD with an `<ms>-*` id (runstore's events) came in Redis 7.0
OLDEST_REDIS = (7, 0)


def too_old(version: str) -> str | None:
    """Why a Redis of this version (INFO's redis_version) cannot serve, or None."""
    try:
        found = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return None  # a fork's own numbering: let it try
    if found >= OLDEST_REDIS:
        return None
    need = ".".join(map(str, OLDEST_REDIS))
    return f"it is Redis {version}; mlplab needs {need} or newer (XADD ids of the form <ms>-*)"


def redis_version(url: str) -> str | None:
    """INFO's redis_version at url, or None when it does not answer (or refuses us)."""
    import redis

    try:
        with _probe(url) as client:
            return str(client.info("server").get("redis_version", ""))
    except (redis.RedisError, OSError):
        return None


def ensure_redis(url: str, *, state_dir: Path, supervisor: Supervisor) -> str | None:
    """The URL the children use: url itself (with the kept password, for a local one without
    any) when a Redis answers there, else that of a private redis-server started here with
    AOF and a password; None if neither can be."""
    url = local_url(url, state_dir=state_dir)
    state = redis_state(url)
    if state == "ok":
        log.info("using Redis at %s", redacted(url))
        if url_password(url) is None:
            log.warning(
                "that Redis asks for no password: anyone who reaches it can change any record "
                "(README: Protecting Redis)"
            )
        return url
    if state == "auth":
        log.error(
            "Redis at %s refuses us: put its password in the URL "
            "(--redis-url or MLPLAB_REDIS_URL, redis://:PASSWORD@host:port/db)",
            redacted(url),
        )
        return None
    binary = shutil.which("redis-server")
    if not is_local(url) or binary is None:
        log.error("nothing answers at %s and no local redis-server can be started", redacted(url))
        return None
    password = url_password(url) or ensure_password(state_dir)
    url = with_password(url, password)
    write_redis_conf(state_dir, password=password)
    argv = _redis_argv(binary, port=urlparse(url).port or 6379, state_dir=state_dir)
    supervisor.start("redis-server", argv, dict(os.environ))
    log.info(
        "nothing answered at %s: started redis-server with AOF in %s and a password (in %s)",
        redacted(url),
        state_dir / "redis",
        password_path(state_dir),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if redis_state(url) == "ok":
            return url
        time.sleep(0.1)
    return None


def _redis_argv(binary: str, *, port: int, state_dir: Path) -> list[str]:
    """redis-server's command line: AOF on, localhost only, and its password read from the
    0600 config file, never from argv (which every local user can read in ps)."""
    data_dir = state_dir / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)  # the AOF holds every record
    conf = str(redis_conf_path(state_dir))
    options = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir)]
    return [binary, conf, *options, "--appendonly", "yes", "--save", ""]


def child_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment every child gets: MLPLAB_* from the options on top of ours."""
    from artifacts import default_artifact_dir

    env = dict(os.environ, MLPLAB_REDIS_URL=args.redis_url)
    env["MLPLAB_AUTH"] = "false" if args.no_auth else "true"
    # the API serves the models the workers store: one directory, named once for both
    env.setdefault("MLPLAB_ARTIFACT_DIR", str(default_artifact_dir()))
    if args.device:
        env["MLPLAB_DEVICE"] = args.device
    return env


def _serve(args: argparse.Namespace, *, api: bool, workers: int | None, redis: bool) -> int:
    """Start the chosen parts, restart any that crash, stop everything on SIGTERM/SIGINT."""
    args.redis_url = local_url(args.redis_url or default_redis_url(), state_dir=args.state_dir)
    _setup_logging()
    supervisor = Supervisor()
    stopping: list[bool] = []

    def on_signal(signum: int, _: Any) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        stopping.append(True)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    try:
        if redis:
            url = ensure_redis(args.redis_url, state_dir=args.state_dir, supervisor=supervisor)
            if url is None:
                return 1
            args.redis_url = url
        # a Redis that is down now may come up later (the children wait for it); one that
        # answers but is too old would fail every submission with a 500 and crash workers
        version = redis_version(args.redis_url)
        if version is not None and (why := too_old(version)):
            log.error("cannot use the Redis at %s: %s", redacted(args.redis_url), why)
            return 1
        env = child_env(args)
        plan = worker_plan(count=workers, env=env) if workers != 0 else []
        for name, worker_env in plan:
            supervisor.start(name, worker_command(name=name), worker_env)
            log.info(
                "%s: CUDA_VISIBLE_DEVICES=%s MLPLAB_TORCH_THREADS=%s",
                name,
                worker_env.get("CUDA_VISIBLE_DEVICES", "(unset)"),
                worker_env.get("MLPLAB_TORCH_THREADS", "(torch default)"),
            )
        if api:
            auth_notice(
                no_auth=args.no_auth,
                redis_url=args.redis_url,
                prefix=env.get("MLPLAB_KEY_PREFIX", "mlplab"),
                log=log,
            )
            supervisor.start("api", api_command(host=args.host, port=args.port), env)
            log.info("API on http://%s:%d (docs at /docs)", args.host, args.port)
        code = supervisor.wait(stopping)
    finally:
        supervisor.stop()
    return code


@needs("server", "worker")
def cmd_up(args: argparse.Namespace) -> int:
    """`mlplab up`: Redis if needed, the API and the workers."""
    return _serve(args, api=True, workers=args.workers, redis=True)


@needs("server")
def cmd_api(args: argparse.Namespace) -> int:
    """`mlplab api`: the API alone."""
    return _serve(args, api=True, workers=0, redis=False)


@needs("worker")
def cmd_worker(args: argparse.Namespace) -> int:
    """`mlplab worker`: worker processes alone (how a second GPU box joins)."""
    return _serve(args, api=False, workers=args.workers, redis=False)


def _add_options(parser: argparse.ArgumentParser) -> None:
    """The options `up`, `api` and `worker` share."""
    parser.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="API port (default 8000)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: one per visible GPU, else one on the CPU)",
    )
    parser.add_argument("--no-auth", action="store_true", help="single-user local mode")
    parser.add_argument("--device", default=None, help="worker device for `auto` specs")
    add_redis_url(parser)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=default_state_dir(),
        help="where a private Redis keeps its AOF and password (default %(default)s)",
    )


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s mlplab %(levelname)s: %(message)s")


def register(subparsers: Any) -> None:
    """Add `up`, `api` and `worker` to the CLI's subparsers."""
    for name, func, text in (
        ("up", cmd_up, "start the API and worker(s), and Redis if none answers"),
        ("api", cmd_api, "start the HTTP API alone"),
        ("worker", cmd_worker, "start worker process(es) alone"),
    ):
        parser = subparsers.add_parser(name, help=text, description=text)
        _add_options(parser)
        parser.set_defaults(func=func)


def main(argv: list[str] | None = None) -> int:
    """`python -m mlplab.serve up|api|worker ...`, the same as the mlplab subcommands."""
    parser = argparse.ArgumentParser(prog="mlplab")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

"""`mlplab up`, `mlplab api`, `mlplab worker`: start the server's processes and supervise them.

Workers run Celery's solo pool, one task at a time in the worker's own process: datasets stay
cached in that process across tasks, CUDA is initialised where the task runs (no fork after
it), and SIGTERM reaches the process that trains. `up` adds a private redis-server when nothing
answers at MLPLAB_REDIS_URL.

One worker per visible GPU (CUDA_VISIBLE_DEVICES, else `nvidia-smi -L`; this process never
imports torch), each pinned with CUDA_VISIBLE_DEVICES=<that GPU> and named gpuK@host; one
CPU worker (cpu1@host) when there is no GPU; `--workers N` overrides the count. CPU workers
split the cores between them (MLPLAB_TORCH_THREADS) unless it is set.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mlplab.extras import needs
from mlplab.placement import worker_plan
from mlplab.users_cmd import auth_notice, default_redis_url

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


class Supervisor:
    """Child processes started together and stopped together."""

    def __init__(self, *, stop_timeout_s: float = 10.0) -> None:
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.stop_timeout_s = stop_timeout_s

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start a child in its own session, so a terminal's Ctrl-C reaches only us."""
        proc = subprocess.Popen(argv, env=env, start_new_session=True)
        self.children.append((name, proc))
        log.info("started %s (pid %d): %s", name, proc.pid, " ".join(argv[1:]))
        return proc

    def wait(self, stopping: list[bool]) -> int:
        """Block until a child exits (1) or a stop is requested (0)."""
        while not stopping:
            for name, proc in self.children:
                if proc.poll() is not None:
                    log.error("%s exited with code %s; stopping everything", name, proc.returncode)
                    return 1
            time.sleep(0.2)
        return 0

    def stop(self) -> None:
        """Terminate the API and workers, then Redis (a worker hands its runs back through
        it), each wave killed if it outlives the timeout."""
        last = [(n, p) for n, p in self.children if n == "redis-server"]
        first = [(n, p) for n, p in reversed(self.children) if n != "redis-server"]
        for wave in (first, last):
            self._stop_wave(wave)
        log.info("all processes stopped")

    def _stop_wave(self, children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
        """SIGTERM these children together and wait for them; SIGKILL the late ones."""
        for _, proc in children:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + self.stop_timeout_s
        for name, proc in children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0f s; killing it", name, self.stop_timeout_s)
                proc.kill()
                proc.wait()


def redis_answers(url: str) -> bool:
    """True when a Redis server answers PING at url."""
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def ensure_redis(url: str, *, state_dir: Path, supervisor: Supervisor) -> bool:
    """Start a private redis-server (AOF on) for a local url nobody answers; False if we can't."""
    if redis_answers(url):
        log.info("using Redis at %s", url)
        return True
    parsed = urlparse(url)
    binary = shutil.which("redis-server")
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1") or binary is None:
        log.error("nothing answers at %s and no local redis-server can be started", url)
        return False
    data_dir = state_dir / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        binary,
        "--port",
        str(parsed.port or 6379),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes",
        "--save",
        "",
    ]
    supervisor.start("redis-server", argv, dict(os.environ))
    log.info("nothing answered at %s: started redis-server with AOF in %s", url, data_dir)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if redis_answers(url):
            return True
        time.sleep(0.1)
    return False


def child_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment every child gets: MLPLAB_* from the options on top of ours."""
    env = dict(os.environ, MLPLAB_REDIS_URL=args.redis_url)
    env["MLPLAB_AUTH"] = "false" if args.no_auth else "true"
    if args.device:
        env["MLPLAB_DEVICE"] = args.device
    return env


def _serve(args: argparse.Namespace, *, api: bool, workers: int | None, redis: bool) -> int:
    """Start the chosen parts, wait for a signal or a child's death, stop everything."""
    args.redis_url = args.redis_url or default_redis_url()
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
        if redis and not ensure_redis(
            args.redis_url, state_dir=args.state_dir, supervisor=supervisor
        ):
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
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("MLPLAB_REDIS_URL"),
        help="default: $MLPLAB_REDIS_URL, else the servers' default, Redis on 127.0.0.1:6379 db 0",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=_state_dir(),
        help="where a private Redis keeps its AOF (default %(default)s)",
    )


def _state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(os.environ.get("MLPLAB_STATE_DIR") or os.path.join(base, "mlplab"))


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

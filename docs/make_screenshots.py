"""Regenerate the README's images: docs/img/dashboard.png and docs/img/sweep-plot.png.

Runs a small real study (mnist-5k, hidden [128, 64], four activations, 8 epochs), shoots the
dashboard as its last run trains (or, when the worker trains a sweep's runs together, once
they are done), then saves the finished sweep's plot.png. Starts a real API and Celery worker
the way the tests do (tests/conftest.py's ServerProcesses) on an empty Redis DB (13 unless
--redis-url), or uses a running server.
Needs the system chromium and the playwright package (`pip install playwright`; never
`playwright install`, which downloads a browser).

    python docs/make_screenshots.py
    python docs/make_screenshots.py --url http://127.0.0.1:8000   # token: MLPLAB_TOKEN
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlplab.client import Client  # noqa: E402

SWEEP = {
    "name": "mnist-activations",
    "base": {
        "dataset": "mnist-5k",
        "hidden": [128, 64],
        "epochs": 8,
        "batch_size": 32,
        "lr": 1e-3,
        "scheduler": "none",
    },
    "grid": {"activation": ["relu", "tanh", "sigmoid", "gelu"]},
}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
# The moment to shoot: the leaderboard ranks every run the legend calls succeeded, and either
# all but the last have (one run at a time: the last is half way, still live) or the sweep is
# done (fused: its runs train together and finish together).
READY = """([runs, epochs]) => {
  const legend = [...document.querySelectorAll('#legend li')].map((li) => li.textContent);
  const points = [...document.querySelectorAll('#chart path.curve:not(.test)')]
    .reduce((n, p) => n + (p.getAttribute('d').match(/[ML]/g) || []).length, 0);
  const board = document.querySelectorAll('#leaderboard td.status-succeeded').length;
  const ranked = board === legend.filter((text) => text.endsWith('succeeded')).length;
  const live = board === runs - 1 && legend.some((text) => text.endsWith('running'))
    && points >= runs * epochs - Math.floor(epochs / 2);
  return legend.length === runs && ranked && (live || board === runs);
}"""


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server; default: start one like the tests do")
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/13",
        help="an empty Redis DB for the started server (flushed afterwards)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    return parser.parse_args()


@contextmanager
def server_url(args: argparse.Namespace) -> Iterator[str]:
    """args.url, or the URL of an API + worker started for the duration on an empty DB."""
    if args.url:
        yield args.url
        return
    import redis

    from tests.support.servers import ServerProcesses

    db = redis.Redis.from_url(args.redis_url)
    if db.dbsize():
        sys.exit(f"{args.redis_url} is not empty; pick an empty DB with --redis-url")
    with tempfile.TemporaryDirectory() as logs:
        procs = ServerProcesses(redis_url=args.redis_url, prefix="mlplabdocs", log_dir=Path(logs))
        try:
            procs.start("worker")
            procs.start("api")
            procs.wait_ready()
            yield procs.base_url
        finally:
            procs.close()
            db.flushdb()


def shoot_dashboard(page, client: Client, path: Path) -> str:
    """Submit the sweep, follow it on the dashboard, shoot it once READY."""
    sweep = client.submit_sweep(SWEEP)
    runs, epochs = len(sweep["run_ids"]), SWEEP["base"]["epochs"]
    page.goto(f"{client.url}/#sweep={sweep['id']}")
    page.wait_for_function(READY, arg=[runs, epochs], polling="raf", timeout=300_000)
    page.evaluate("pollRuns()")  # the runs table polls every 3 s; bring it up to date now
    page.screenshot(path=path, full_page=True)
    return sweep["id"]


def main() -> None:
    """Write both images into args.out."""
    from playwright.sync_api import sync_playwright

    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with (
        server_url(args) as url,
        Client(url) as client,
        sync_playwright() as pw,
        tempfile.TemporaryDirectory() as profile,
    ):
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=args.chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1760, "height": 400},
            device_scale_factor=2,
            color_scheme="light",
        )
        if client.token:  # the page reads its token from localStorage
            token = json.dumps(client.token)
            context.add_init_script(f"localStorage.setItem('mlplab.token', {token})")
        sweep_id = shoot_dashboard(context.new_page(), client, args.out / "dashboard.png")
        context.close()
        client.wait(sweep_id, sweep=True)
        (args.out / "sweep-plot.png").write_bytes(client.plot(sweep_id, sweep=True))
    print(f"wrote {args.out / 'dashboard.png'} and {args.out / 'sweep-plot.png'}")


if __name__ == "__main__":
    main()

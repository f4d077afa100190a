"""The dashboard at GET / in a real browser: Debian's chromium driven by playwright.

Runs against the real uvicorn + Celery worker (the `server` fixture). Skips only when no
chromium binary is found (set MLPLAB_CHROMIUM to point at one); the screenshot lands in
screenshots/ at the repository root.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.waiting import wait_for, wait_for_run

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "screenshots"  # git ignores it (artifacts/ is the model store package)
# Flags that work as root in a container with no GPU and no network beyond the test server.
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
# Slow enough on one CPU thread (~0.15 s an epoch) to watch a curve grow, quick to finish.
SLOW = {
    "dataset": "synthetic",
    "hidden": [512, 512],
    "batch_size": 16,
    "epochs": 30,
    "scheduler": "none",
    "device": "cpu",
}
# How long to wait for each thing the page should show: a bound against hangs only (the page
# waits on events, SSE and polls; a busy machine makes them slow, never wrong).
HANG_MS = 180_000
# Total points on the train-loss curves: one "M" or "L" per epoch drawn.
TRAIN_POINTS = """() => [...document.querySelectorAll('#chart path.curve:not(.test)')]
  .reduce((n, p) => n + (p.getAttribute('d').match(/[ML]/g) || []).length, 0)"""


def wait_until(page: Any, expression: str) -> None:
    """Poll a JS expression until it is true. page.evaluate runs it from outside the page;
    wait_for_function would eval it inside, which the page's CSP (rightly) refuses."""
    wait_for(lambda: page.evaluate(expression), what=expression, timeout=HANG_MS / 1000)


def find_chromium() -> str | None:
    """The system chromium: $MLPLAB_CHROMIUM, else the usual names on PATH."""
    names = [
        os.environ.get("MLPLAB_CHROMIUM", ""),
        "chromium",
        "chromium-browser",
        "google-chrome-stable",
        "google-chrome",
    ]
    return next((found for name in names if name and (found := shutil.which(name))), None)


CHROMIUM = find_chromium()
# Skipped before the session's servers start, so a machine without chromium pays nothing.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        CHROMIUM is None, reason="no chromium: apt-get install chromium, or set MLPLAB_CHROMIUM"
    ),
]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[tuple[Any, list[str]]]:
    """A fresh headless chromium page (own profile), and the console errors it records."""
    from playwright.sync_api import sync_playwright  # here: only needed once chromium exists

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            tmp_path / "profile",
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        page, problems = context.new_page(), []
        page.on(
            "console",
            lambda msg: (
                msg.type == "error" and problems.append(f"console: {msg.text} {msg.location}")
            ),
        )
        page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
        try:
            yield page, problems
        finally:
            context.close()


def test_dashboard_follows_a_sweep_live(server, browser):
    from playwright.sync_api import expect

    page, problems = browser

    sweep = httpx.post(
        f"{server.base_url}/v1/sweeps",
        timeout=10,
        json={"name": "browser", "base": SLOW, "grid": {"activation": ["relu", "tanh"]}},
    ).json()
    run_ids = sweep["run_ids"]
    try:
        page.goto(f"{server.base_url}/#sweep={sweep['id']}")
        page.wait_for_selector("#legend li:has-text('running')", timeout=HANG_MS)
        wait_until(page, f"({TRAIN_POINTS})() >= 2")
        first = page.evaluate(TRAIN_POINTS)
        # More epochs arrive over SSE and the curve is redrawn with them, no reload.
        wait_until(page, f"({TRAIN_POINTS})() >= {first + 3}")
        assert page.text_content("#conn") == "live"
        assert page.is_hidden("#token-form")  # this server needs no token
        for run_id in run_ids:
            expect(page.locator(f"#runs a[href='#run={run_id}']")).to_have_count(1, timeout=HANG_MS)

        # The sweep ends: both runs succeed, both curves are complete, the board ranks them.
        wait_until(page, f"({TRAIN_POINTS})() === {2 * SLOW['epochs']}")
        page.wait_for_selector("#view-summary:has-text('2 succeeded')", timeout=HANG_MS)
        wait_until(
            page, "document.querySelectorAll('#leaderboard td.status-succeeded').length === 2"
        )
        board = page.locator("#leaderboard tbody tr")
        assert board.count() == 2 and page.is_visible("#leaderboard")
        assert board.locator("td:first-child").all_text_contents() == ["1", "2"]
        assert sorted(board.locator("a.id").all_text_contents()) == sorted(run_ids)
        assert page.locator("#leaderboard tr.selected").count() == 1  # the best run
        assert page.locator("#chart circle").count() == 2
        assert page.is_hidden("#error")
        # The runs table, polled every 3 s, catches up too.
        for run_id in run_ids:
            expect(
                page.locator(f"#runs tr:has(a[href='#run={run_id}']) td:nth-child(3)")
            ).to_have_text("succeeded", timeout=HANG_MS)
    finally:
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=SCREENSHOTS / "dashboard-browser.png", full_page=True)
        httpx.delete(f"{server.base_url}/v1/sweeps/{sweep['id']}", timeout=10)  # no-op if done
    assert problems == []


def test_a_finished_runs_view_shows_its_confusion_matrix_and_downloads_its_model(server, browser):
    page, problems = browser
    spec = {"dataset": "synthetic", "hidden": [16], "epochs": 2, "device": "cpu"}
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        run_id = http.post("/v1/runs", json=spec).json()["id"]
        wait_for_run(http, run_id, lambda r: r["status"] == "succeeded")
        weights = http.get(f"/v1/runs/{run_id}/model").content
    page.goto(f"{server.base_url}/#run={run_id}")
    # the picture arrives as a data: URL once fetched with the page's headers
    wait_until(page, "document.getElementById('confusion').naturalWidth > 0")
    assert page.get_attribute("#confusion", "src").startswith("data:image/png;base64,")
    assert page.is_visible("#model-download") and "safetensors" in page.text_content("#model-note")
    with page.expect_download(timeout=HANG_MS) as download:
        page.click("#model-download")
    assert download.value.suggested_filename == f"{run_id}-final.safetensors"
    assert Path(download.value.path()).read_bytes() == weights
    page.goto(f"{server.base_url}/")  # no run picked: no model box
    assert page.is_hidden("#model-box")
    assert problems == []


def test_the_api_docs_render_with_no_network_beyond_the_server(server, browser):
    """Swagger UI from the app's own copy (a CDN is unreachable from here), rendering
    FastAPI's OpenAPI 3.1 (Swagger UI 4 cannot)."""
    page, problems = browser
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda request: (
            (request.url.startswith(("http", "ws")) and not request.url.startswith(server.base_url))
            and elsewhere.append(request.url)
        ),
    )
    page.goto(f"{server.base_url}/docs")
    page.wait_for_selector(
        ".swagger-ui .opblock-summary-path[data-path='/v1/runs']", timeout=HANG_MS
    )
    assert "mlplab" in page.title()
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "docs.png")
    assert elsewhere == [] and problems == []

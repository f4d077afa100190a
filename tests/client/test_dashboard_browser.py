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


MIDDLE_OF_BEST = """() => {
  const line = document.querySelector('#parallel polyline.best'), p = line.points;
  const svg = document.getElementById('parallel'), m = svg.createSVGPoint();
  m.x = (p[0].x + p[1].x) / 2; m.y = (p[0].y + p[1].y) / 2;
  const s = m.matrixTransform(line.getScreenCTM());
  return [s.x, s.y];
}"""


def test_a_sweeps_parallel_coordinates_filter_by_brush_and_name_a_run_on_hover(server, browser):
    page, problems = browser
    base = {"dataset": "synthetic", "hidden": [16], "epochs": 2, "device": "cpu"}
    grid = {"activation": ["relu", "tanh"], "lr": [0.3, 0.03, 0.003]}
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        sweep = http.post("/v1/sweeps", json={"name": "pc", "base": base, "grid": grid}).json()
        for run_id in sweep["run_ids"]:
            wait_for_run(http, run_id, lambda r: r["status"] == "succeeded")
    page.goto(f"{server.base_url}/#sweep={sweep['id']}")
    lines = "document.querySelectorAll('#parallel polyline.pc-line')"
    wait_until(page, f"{lines}.length === 6")
    wait_until(page, "document.querySelectorAll('#importance li').length === 2")
    assert page.is_visible("#insight-box")
    assert page.locator("#parallel polyline.best").count() == 1
    assert "relu" in page.text_content("#parallel") and "tanh" in page.text_content("#parallel")

    # brush the activation axis around its top category: only that activation's runs remain
    page.locator("#parallel").scroll_into_view_if_needed()  # mouse events hit the viewport
    hit = page.locator("#parallel rect.pc-hit[data-axis='activation']").bounding_box()
    assert hit is not None
    x, top = hit["x"] + hit["width"] / 2, hit["y"]
    page.mouse.move(x, top + 1)
    page.mouse.down()
    page.mouse.move(x, top + 20, steps=5)
    page.mouse.up()
    wait_until(page, f"[...{lines}].filter((l) => !l.classList.contains('filtered')).length === 3")
    assert page.locator("#parallel rect.pc-brush").count() == 1
    assert "3 of 6" in page.text_content("#parallel-note")

    # hover a line (halfway between its first two axes, where the best is drawn on top)
    x, y = page.evaluate(MIDDLE_OF_BEST)
    page.mouse.move(x, y)
    wait_until(page, "document.getElementById('parallel-hover').textContent.includes('(best)')")
    assert "activation=" in page.text_content("#parallel-hover")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "dashboard-parallel.png", full_page=True)
    assert problems == []


def _finished_sweep(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """Submit a sweep and wait until every run of it has ended."""
    sweep = http.post("/v1/sweeps", json=body).json()
    wait_for(
        lambda: http.get(f"/v1/sweeps/{sweep['id']}").json()["done"],
        what=f"sweep {sweep['id']} done",
        timeout=HANG_MS / 1000,
    )
    return sweep


def test_sweep_list_default_view_labels_retry_compare_and_no_clipping(server, browser):
    page, problems = browser
    page.set_viewport_size({"width": 1400, "height": 900})
    quick = {"dataset": "synthetic", "hidden": [16], "epochs": 2, "device": "cpu"}
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        searched = {"strategy": "random", "n": 2, "grid": {"lr": {"loguniform": [0.01, 0.1]}}}
        good = _finished_sweep(http, {"name": "good", "base": quick, **searched})
        wild = {**quick, "optimizer": "sgd", "activation": "relu"}  # lr 1e9: diverges at once
        bad = _finished_sweep(http, {"name": "bad", "base": wild, "grid": {"lr": [1e9, 1e10]}})
        busy = {**SLOW, "epochs": 300}
        slow = http.post(
            "/v1/sweeps", json={"name": "slow", "base": busy, "grid": {"lr": [0.01]}}
        ).json()
        try:
            # nothing picked: the newest active sweep is shown, streaming live
            page.goto(f"{server.base_url}/")
            wait_until(page, f"location.hash === '#sweep={slow['id']}'")
            page.wait_for_selector("#conn:text('live')", timeout=HANG_MS)
            page.wait_for_selector("#sweeps a:text('good')", timeout=HANG_MS)
            assert page.locator("#sweeps tbody tr").count() >= 3
            # labels and retry on the failed sweep's view
            page.goto(f"{server.base_url}/#sweep={bad['id']}")
            wait_until(page, "document.getElementById('label-name').value === 'bad'")
            page.fill("#label-name", "bad lr")
            page.fill("#label-tags", "sgd, wild")
            page.fill("#label-notes", "lr 1e9 diverges")
            page.click("#label-save")
            page.wait_for_selector("#tools-note:text('saved')", timeout=HANG_MS)
            record = http.get(f"/v1/sweeps/{bad['id']}").json()
            assert record["name"] == "bad lr" and record["tags"] == ["sgd", "wild"]
            assert record["notes"] == "lr 1e9 diverges"
            page.click("#retry-button")
            page.wait_for_selector("#tools-note:text('2 run(s) queued again')", timeout=HANG_MS)
            run = http.get(f"/v1/runs/{bad['run_ids'][0]}").json()
            assert [a["status"] for a in run["attempts"]] == ["diverged"]
            # compare the two finished sweeps from the list
            page.check(f"#sweeps tr:has(a[title='{good['id']}']) input[type=checkbox]")
            page.check(f"#sweeps tr:has(a[title='{bad['id']}']) input[type=checkbox]")
            page.click("#compare-button")
            wait_until(page, "document.querySelectorAll('#compare-table tbody tr').length === 4")
            wait_until(page, "document.getElementById('compare-img').naturalWidth > 0")
            # no view streams now: the pill shows the live queue, not "idle"
            page.wait_for_selector("#conn:has-text('running')", timeout=HANG_MS)
            # a finished sweep's runs train on to more epochs from their stored states
            page.goto(f"{server.base_url}/#sweep={good['id']}")
            page.wait_for_selector("#longer-button:visible", timeout=HANG_MS)
            page.fill("#extend-epochs", "3")
            page.click("#longer-button")
            page.wait_for_selector(
                "#tools-note:text('2 run(s) continue to 3 epochs')", timeout=HANG_MS
            )
            run = http.get(f"/v1/runs/{good['run_ids'][0]}").json()
            assert run["spec"]["epochs"] == 3 and run["extensions"][0]["from_epoch"] == 2
            # a random sweep's view adds samples: the next draws of its sampler
            page.wait_for_selector("#extend-button:visible", timeout=HANG_MS)
            page.fill("#extend-n", "1")
            page.click("#extend-button")
            page.wait_for_selector("#tools-note:text('1 new run(s) queued')", timeout=HANG_MS)
            assert len(http.get(f"/v1/sweeps/{good['id']}").json()["run_ids"]) == 3
            # at 1400 px neither pane scrolls sideways: test loss, accuracy, config all show
            page.wait_for_selector("#leaderboard:visible", timeout=HANG_MS)
            for section in ("#runs-section", "#view-section", "#sweeps-section"):
                wide = page.evaluate(
                    f"(() => {{ const s = document.querySelector('{section}');"
                    " return s.scrollWidth - s.clientWidth; })()"
                )
                assert wide <= 1, (section, wide)
        finally:
            SCREENSHOTS.mkdir(exist_ok=True)
            page.screenshot(path=SCREENSHOTS / "dashboard-sweeps.png", full_page=True)
            http.delete(f"/v1/sweeps/{slow['id']}")
            http.delete(f"/v1/sweeps/{bad['id']}")
            http.delete(f"/v1/sweeps/{good['id']}")
    # the insight panel's 409 for a sweep with too few finished runs is that panel's to judge
    assert [p for p in problems if "/importance" not in p] == []

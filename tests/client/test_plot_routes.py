"""The plot and dashboard routes in-process, on the real Redis, with epochs written by the store."""

import pytest

from api import plots
from api.routes import dashboard as dashboard_routes
from api.routes import plots as plot_routes
from tests.support.http import starlette_test_client

PNG = b"\x89PNG\r\n\x1a\n"
SPEC = {"dataset": "synthetic", "hidden": [16], "epochs": 3, "device": "cpu"}


@pytest.fixture
def app_client(api_settings, redis_client):
    """The app with the plot and dashboard routers (added here until main.py includes them)."""
    from api.main import create_app

    app = create_app(api_settings)
    paths = {getattr(route, "path", None) for route in app.routes}
    for router in (plot_routes.router, dashboard_routes.router):
        if not {route.path for route in router.routes} <= paths:
            app.include_router(router)
    with starlette_test_client()(app) as test_client:
        yield test_client


def train(store, run_id, losses, *, status=None):
    """Play a worker: mark running, append an epoch per loss, optionally finish."""
    store.mark_running(run_id=run_id, worker="test", device="cpu")
    for epoch, loss in enumerate(losses, start=1):
        store.append_epoch(
            run_id=run_id,
            metrics={
                "epoch": epoch,
                "train_loss": loss,
                "test_loss": loss + 0.1,
                "test_accuracy": 0.5,
                "lr": 0.001,
                "seconds": 0.1,
            },
        )
    if status:
        store.finish_run(
            run_id=run_id,
            status=status,
            result={"final_train_loss": losses[-1], "final_test_loss": 1.0},
        )


def test_run_plot_is_a_png_and_unknown_ids_are_404(app_client, store):
    run = app_client.post("/v1/runs", json=SPEC).json()
    train(store, run["id"], [1.0, 0.8])
    response = app_client.get(f"/v1/runs/{run['id']}/plot.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.content.startswith(PNG)
    missing = app_client.get("/v1/runs/nope/plot.png")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert app_client.get("/v1/sweeps/nope/plot.png").status_code == 404


def test_sweep_plot_is_cached_until_the_sweep_changes(app_client, store):
    body = {"base": SPEC, "grid": {"lr": [0.1, 0.01]}}
    sweep = app_client.post("/v1/sweeps", json=body).json()
    first_run, second_run = sweep["run_ids"]
    train(store, first_run, [1.0, 0.5, 0.2], status="succeeded")
    train(store, second_run, [1.2])
    url = f"/v1/sweeps/{sweep['id']}/plot.png"
    before = (plots.CACHE.hits, plots.CACHE.misses)
    first = app_client.get(url)
    again = app_client.get(url)
    assert first.status_code == 200 and first.content.startswith(PNG)
    assert again.content == first.content
    assert (plots.CACHE.hits - before[0], plots.CACHE.misses - before[1]) == (1, 1)
    store.append_epoch(run_id=second_run, metrics={"epoch": 2, "train_loss": 0.9, "test_loss": 1.0})
    grown = app_client.get(url)
    assert grown.content != first.content and plots.CACHE.misses - before[1] == 2


def test_dashboard_page_and_its_assets(app_client):
    page = app_client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for name, kind in dashboard_routes.ASSETS.items():
        assert f"/static/{name}" in page.text
        asset = app_client.get(f"/static/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind)
    assert "://" not in page.text.replace("http://www.w3.org", "")  # nothing from a CDN
    for response in [page] + [
        app_client.get(f"/static/{name}") for name in dashboard_routes.ASSETS
    ]:
        # the page and its assets: only its own scripts and styles run, never in a frame
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy and "unsafe" not in policy
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
    for bad in ("/static/dashboard.html", "/static/nope.js", "/static/..%2Fplots.py"):
        assert app_client.get(bad).status_code == 404


def test_a_sweep_named_in_mathtext_plots_its_name_as_plain_text(app_client, store):
    """`$\\foo$` as a name was a 500 on every request (mathtext, and failures not cached)."""
    name = "$" + "x^{" * 45 + "x" + "}" * 45 + "$ " + r"$\foo$"
    body = {"name": name, "base": SPEC, "grid": {"lr": [0.1, 0.01]}}
    sweep = app_client.post("/v1/sweeps", json=body).json()
    train(store, sweep["run_ids"][0], [1.0, 0.5], status="succeeded")
    url = f"/v1/sweeps/{sweep['id']}/plot.png"
    before = (plots.CACHE.hits, plots.CACHE.misses)
    for _ in range(2):
        response = app_client.get(url)
        assert response.status_code == 200 and response.content.startswith(PNG)
    assert (plots.CACHE.hits - before[0], plots.CACHE.misses - before[1]) == (1, 1)

"""The app as a whole: no torch, health, OpenAPI."""

import subprocess
import sys
import textwrap

from tests.support.http import starlette_test_client
from tests.support.paths import ROOT
from tests.support.redis_db import UNIT_REDIS_URL


def test_the_api_never_imports_torch(redis_client):
    code = textwrap.dedent(f"""
        import sys, warnings
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
        from api.main import create_app
        from api.settings import ApiSettings
        settings = ApiSettings(redis_url={UNIT_REDIS_URL!r}, key_prefix="notorch", auth=False)
        with TestClient(create_app(settings)) as client:
            spec = {{"dataset": "synthetic", "hidden": [4], "epochs": 1}}
            assert client.post("/v1/runs", json=spec).status_code == 202
            sweep = {{"base": spec, "grid": {{"lr": [0.1, 0.2]}}}}
            assert client.post("/v1/sweeps", json=sweep).status_code == 202
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "worker"))
        assert not loaded, loaded
    """)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_health_degraded_without_workers_then_ok(client, store):
    body = client.get("/healthz").json()
    assert body == {"status": "degraded", "redis": True, "workers": []}
    store.heartbeat(hostname="w1@box", info={"device": "cpu"}, ttl_s=5)
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"
    assert response.json()["workers"][0]["hostname"] == "w1@box"


def test_health_is_503_when_redis_is_unreachable(api_settings):
    from api.main import create_app

    settings = api_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with starlette_test_client()(create_app(settings)) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "redis": False, "workers": []}


def test_openapi_documents_every_route(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths) >= {
        "/healthz",
        "/v1/runs",
        "/v1/runs/{run_id}",
        "/v1/runs/{run_id}/events",
        "/v1/sweeps",
        "/v1/sweeps/{sweep_id}",
        "/v1/sweeps/{sweep_id}/best",
        "/v1/sweeps/{sweep_id}/leaderboard",
        "/v1/sweeps/{sweep_id}/events",
    }
    assert "202" in paths["/v1/runs"]["post"]["responses"]


def test_requests_are_503_with_detail_when_redis_is_unreachable(api_settings):
    from api.main import create_app

    settings = api_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with starlette_test_client()(create_app(settings)) as client:
        response = client.get("/v1/runs/0123456789abcdef")  # a malformed id: 404 first
    assert response.status_code == 503 and response.json()["code"] == "unavailable"

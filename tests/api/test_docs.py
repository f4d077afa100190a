"""/docs works on a box with no network: every asset it loads comes from the app, which
serves the copies that the `server` extra installs (the app in-process)."""

import re

ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


def local_assets(html: str) -> list[str]:
    """Every src= and href= of a page; a URL with a scheme or a host is a failure."""
    urls = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert urls, html
    remote = [u for u in urls if "//" in u or ":" in u]
    assert remote == [], f"the page loads assets from elsewhere: {remote}"
    return urls


def test_the_docs_page_loads_only_assets_the_app_serves(client):
    response = client.get("/docs")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert response.headers["x-frame-options"] == "DENY"
    assets = local_assets(response.text)
    assert any("swagger-ui-bundle.js" in url for url in assets)
    for url in assets:
        asset = client.get(url)
        assert asset.status_code == 200, url
        kind = ASSET_TYPES[url[url.rindex(".") :]]
        assert asset.headers["content-type"].startswith(kind), (url, asset.headers)
        assert len(asset.content) > 1000  # the real file, not a stub
    assert "openapi.json" in response.text
    assert client.get("/openapi.json").json()["info"]["title"] == "mlplab"


def test_redoc_is_off_as_it_always_calls_its_cdn(client):
    assert client.get("/redoc").status_code == 404


def test_only_the_docs_own_assets_are_served(client):
    for bad in ("/docs/static/nope.js", "/docs/static/..%2F__init__.py", "/docs/static/core.py"):
        response = client.get(bad)
        assert response.status_code == 404 and response.json()["code"] == "not_found"

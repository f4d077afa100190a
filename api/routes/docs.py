"""GET /docs: Swagger UI, with its script, style and icon served by the app.

FastAPI's own page loads them from a CDN, so on a lab box without internet it stays blank.
The files come from the `fastapi-offline` package (the `server` extra installs it), which
ships Swagger UI 5 (FastAPI's OpenAPI 3.1 needs 5; `swagger-ui-bundle` has 4). /redoc is
off: ReDoc fetches its logo from its own CDN whatever it is given.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from runstore import NotFound

router = APIRouter(tags=["docs"], include_in_schema=False)
ASSET_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}
_STATIC = "/docs/static"
_HEADERS = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"}


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI over /openapi.json: try the API from the browser."""
    page = get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{_STATIC}/swagger-ui-bundle.js",
        swagger_css_url=f"{_STATIC}/swagger-ui.css",
        swagger_favicon_url=f"{_STATIC}/favicon.png",
    )
    page.headers.update(_HEADERS)
    return page


@router.get(_STATIC + "/{name}", response_class=FileResponse)
def docs_asset(name: str) -> FileResponse:
    """One of the docs page's files; nothing else in the package is served."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFound(f"no docs asset {name!r}")
    return FileResponse(ASSET_DIR / name, media_type=media_type, headers=_HEADERS)

"""GET /: the dashboard page, and its static assets under /static/."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from runstore import NotFound

router = APIRouter(tags=["dashboard"], include_in_schema=False)
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
ASSETS = {
    "dashboard.js": "text/javascript",
    "sse.js": "text/javascript",
    "chart.js": "text/javascript",
    "dashboard.css": "text/css",
}
# The page is public (it holds no data); every request it makes carries the user's token.
_HEADERS = {"Cache-Control": "no-cache"}


@router.get("/", response_class=FileResponse)
def dashboard() -> FileResponse:
    """The dashboard page: queue, running runs, a sweep's leaderboard, live loss curves."""
    return FileResponse(STATIC_DIR / "dashboard.html", media_type="text/html", headers=_HEADERS)


@router.get("/static/{name}", response_class=FileResponse)
def static_asset(name: str) -> FileResponse:
    """One of the page's own assets; nothing else in the folder is served."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFound(f"no static asset {name!r}")
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=_HEADERS)

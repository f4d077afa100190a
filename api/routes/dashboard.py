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
    "sweeps.js": "text/javascript",
    "sse.js": "text/javascript",
    "chart.js": "text/javascript",
    "insight.js": "text/javascript",
    "dashboard.css": "text/css",
}
# The page is public (it holds no data); every request it makes carries the user's token.
# Only its own files run and style it and it talks only to this server (no inline script or
# style, no CDN), so an injected string cannot run or send the token elsewhere; no site may
# frame it (clickjacking a cancel button).
CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}


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

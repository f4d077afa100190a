"""GET /metrics: Prometheus text format (OpenMetrics when the scraper asks for it).

Who may scrape: anyone, unless the metrics name users (auth on and per-user labels on, the
default with auth); then an admin's token or the dedicated MLPLAB_METRICS_TOKEN, which is
what a Prometheus scrape config should send (`authorization: {credentials_file: ...}`).
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client.exposition import choose_encoder

from api.deps import AsyncStoreDep, SettingsDep, bearer_token, current_user
from api.errors import Forbidden
from api.metrics import metrics_protected

router = APIRouter(tags=["metrics"])


async def metrics_access(request: Request, settings: SettingsDep, store: AsyncStoreDep) -> None:
    """Let the request through when /metrics is open, for the metrics token, or for an admin.

    The metrics token is checked first and needs no Redis, so a scrape with it still answers
    (`mlplab_redis_up 0`) while Redis is down.
    """
    if not metrics_protected(settings):
        return
    expected = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    token = bearer_token(request)
    if expected and token and hmac.compare_digest(token.encode(), expected.encode()):
        return
    user = await current_user(request, settings, store)  # 401 without a valid token
    if not user.admin:
        raise Forbidden(
            f"/metrics names users: only an admin or the metrics token may read "
            f"it; {user.name} is not an admin"
        )


@router.get(
    "/metrics",
    response_class=Response,
    status_code=200,
    dependencies=[Depends(metrics_access)],
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text"}},
)
def metrics(request: Request) -> Response:
    """Queued and running runs, workers, epochs trained, run durations, request latency."""
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    body = encoder(request.app.state.metrics.registry)  # reads Redis: a plain def route
    return Response(body, media_type=content_type)

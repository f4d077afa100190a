"""GET /healthz: liveness plus Redis and worker reachability."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Response
from redis.exceptions import RedisError

from api.deps import StoreDep
from api.outage import RETRY_AFTER_S
from api.schemas import HealthPublic

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get(
    "/healthz",
    response_model=HealthPublic,
    status_code=200,
    responses={503: {"model": HealthPublic, "description": "Redis unreachable"}},
)
def healthz(store: StoreDep, response: Response) -> dict[str, Any]:
    """ok: Redis answers and a worker sent a heartbeat; degraded: no worker; 503 with
    `"redis": false` while Redis is unreachable (within the store's socket timeout)."""
    try:
        workers = store.live_workers()
    except RedisError as exc:
        log.warning("healthz: Redis unreachable: %s", exc)
        response.status_code = 503
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return {"status": "unavailable", "redis": False, "workers": []}
    return {"status": "ok" if workers else "degraded", "redis": True, "workers": workers}

"""A token task's side of fair share: take the group the scheduler picks, train it (the
worker's callable), and hand parked tokens back once it ends. Torch-free; the scheduler
itself is runstore.fairqueue's Lua.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from runstore import Store
from runstore.fairqueue import FairQueue

log = logging.getLogger(__name__)
CLAIM_MARGIN_S = 3600  # a claim outlives Celery's redelivery of its token by this much


def train_next(
    *,
    claim: str,
    store: Store,
    train: Callable[[list[str]], dict[str, Any]],
    send_token: Callable[[], None],
    visibility_timeout_s: int,
    hold_claim: Callable[[str], AbstractContextManager[object]],
    max_models: int = 1,
) -> dict[str, Any]:
    """Pop (or resume) this token's group, grown to `max_models` runs by same-shaped groups
    fair share serves next (of any sweep and owner), and train it while `hold_claim(claim)`
    leases the claim like its runs (a vanished worker's unstarted runs are queued again);
    parked tokens go back when it ends."""
    fair = store.fair
    ttl = visibility_timeout_s + CLAIM_MARGIN_S
    popped = fair.pop(claim=claim, claim_ttl_s=ttl, max_models=max_models)
    if popped.owner is None:
        log.info("token %s: %s", claim, popped.state)
        return {"dispatched": False, "state": popped.state}
    log.info(
        "token %s: %s's group of %d run(s)%s",
        claim,
        popped.owner,
        len(popped.run_ids),
        " (resumed)" if popped.state == "claimed" else "",
    )
    try:
        with hold_claim(claim):
            result = train(list(popped.run_ids))
    except BaseException:
        _unpark(fair, claim, send_token)
        raise
    if result.get("held_elsewhere"):  # a duplicate delivery: the claim's holder releases it
        log.info(
            "token %s: runs %s train elsewhere; leaving the claim to them",
            claim,
            result["held_elsewhere"],
        )
    else:
        _unpark(fair, claim, send_token)
    return {**result, "dispatched": True, "owner": popped.owner}


def _unpark(fair: FairQueue, claim: str, send_token: Callable[[], None]) -> None:
    """End the claim and re-send the tokens that waited for running capacity."""
    parked = fair.release(claim=claim)
    for _ in range(parked):
        send_token()
    fair.unparked(parked)  # after sending: a crash in between leaves surplus, never a loss
    if parked:
        log.info("token %s: re-sent %d parked token(s)", claim, parked)

"""The caller's sweeps as a list: newest first from the creation-order index, filtered on the
sweep hashes' own fields (name, tags, done), and only the page's runs read. Torch-free."""

from __future__ import annotations

import json
from typing import Any, Literal

from lab import ranking
from runstore import Store, curation

SweepState = Literal["active", "done"]


def list_sweeps(
    *,
    store: Store,
    owner: str | None,
    state: SweepState | None = None,
    name: str | None = None,
    tag: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """One page of sweep summaries, newest first, and how many match in all (owner None:
    every sweep, the admin's view)."""
    heads = curation.sweep_heads(store, curation.sweep_ids(store, owner=owner))
    wanted = [h for h in heads if _matches(h, state=state, name=name, tag=tag)]
    page = [store.get_sweep(h["id"]) for h in wanted[offset : offset + limit]]
    return [summary(s, store=store) for s in page if s is not None], len(wanted)


def _matches(head: dict[str, Any], *, state: str | None, name: str | None, tag: str | None) -> bool:
    """Whether a sweep's listing fields pass the filters (name: a case-blind substring)."""
    done = int(head["n_terminal"] or 0) >= int(head["n_runs"] or 0)
    if state is not None and (state == "done") != done:
        return False
    if name is not None and name.casefold() not in (head["name"] or "").casefold():
        return False
    return tag is None or tag in json.loads(head["tags"] or "[]")


def summary(sweep: dict[str, Any], *, store: Store) -> dict[str, Any]:
    """A sweep as the list shows it: labels, strategy, status counts, done and best so far."""
    runs = store.get_runs(sweep["run_ids"], epochs=False)
    spec = sweep.get("spec") or {}
    return {
        "id": sweep["id"],
        "owner": sweep["owner"],
        "name": sweep.get("name"),
        "tags": sweep.get("tags") or [],
        "notes": sweep.get("notes"),
        "strategy": spec.get("strategy", "grid"),
        "metric": sweep["metric"],
        "mode": sweep["mode"],
        "n_runs": len(runs),
        "counts": ranking.status_counts(runs),
        "done": sweep["n_terminal"] >= sweep["n_runs"],
        "best": ranking.sweep_best(sweep, runs),
        "created_at": sweep["created_at"],
    }

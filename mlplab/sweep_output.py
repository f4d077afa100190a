"""How the sweep list and a comparison print for people (rich tables)."""

from __future__ import annotations

from typing import Any

from mlplab.output import _age, _created, _loss


def sweeps_table(sweeps: list[dict[str, Any]], count: int) -> Any:
    """The `sweeps` table: one row per sweep, newest first."""
    from rich.table import Table

    table = Table(title=f"{len(sweeps)} of {count} sweeps", title_justify="left", box=None)
    for name in ("sweep", "name", "tags", "strategy", "status", "best", "metric", "created"):
        table.add_column(name, no_wrap=name not in ("name", "tags"), overflow="fold")
    for sweep in sweeps:
        best = sweep.get("best") or {}
        table.add_row(
            sweep["id"],
            sweep.get("name") or "–",
            ", ".join(sweep.get("tags") or []) or "–",
            sweep["strategy"],
            _status(sweep),
            _loss(best.get("value")),
            sweep["metric"],
            _age(_created(sweep)),
        )
    return table


def _status(sweep: dict[str, Any]) -> str:
    """`done` or `active`, with its counts: `active 3 running, 5 queued`."""
    counts = ", ".join(f"{n} {status}" for status, n in sweep["counts"].items())
    return f"{'done' if sweep['done'] else 'active'} {counts}".strip()


def compare_table(body: dict[str, Any]) -> Any:
    """The `compare` view: each sweep's best, then every run ranked together."""
    from rich.console import Group
    from rich.table import Table

    head = [f"metric: {body['metric']} ({body['mode']})"]
    for sweep in body["sweeps"]:
        label = sweep.get("name") or sweep["id"]
        head.append(f"  {label}: best {_loss(sweep['value'])} ({sweep['best_run_id'] or '–'})")
    fields = list(dict.fromkeys(k for row in body["data"] for k in row["varied"]))
    table = Table(box=None)
    for name in ("rank", "run", "sweep", "status", body["metric"], *fields):
        table.add_column(name, no_wrap=True)
    for row in body["data"]:
        table.add_row(
            str(row["rank"] or "–"),
            row["run_id"],
            row.get("sweep_name") or row.get("sweep_id") or "–",
            row["status"],
            _loss(row["value"]),
            *(str(row["varied"].get(f, "")) for f in fields),
        )
    return Group(*head, table)

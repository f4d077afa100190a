"""How the client commands print records: rich tables for people, JSON and CSV for scripts."""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

from mlplab.watch import label_of


def to_json(value: Any) -> str:
    """Indented JSON for --json output."""
    return json.dumps(value, indent=2)


def console() -> Any:
    """A stdout console; piped output gets a wide page instead of 80 columns."""
    import sys

    from rich.console import Console

    return Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def _loss(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _age(ts: float | None) -> str:
    if ts is None:
        return "–"
    seconds = max(0.0, time.time() - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def _created(record: dict[str, Any]) -> float | None:
    value = record.get("created_at")
    if isinstance(value, str):
        from datetime import datetime

        return datetime.fromisoformat(value).timestamp()
    return value


def runs_table(runs: list[dict[str, Any]], count: int) -> Any:
    """The `ls` table: one row per run."""
    from rich.table import Table

    table = Table(title=f"{len(runs)} of {count} runs", title_justify="left", box=None)
    for name, width in (
        ("run", 16),
        ("sweep", 16),
        ("status", 9),
        ("epoch", 5),
        ("train loss", 6),
        ("test loss", 6),
    ):
        table.add_column(name, no_wrap=True, min_width=width)
    table.add_column("config", overflow="fold")
    table.add_column("created", no_wrap=True)
    for run in runs:
        last = run["epochs"][-1] if run["epochs"] else {}
        table.add_row(
            run["id"],
            run.get("sweep_id") or "–",
            run["status"],
            f"{last.get('epoch', 0)}/{run['spec']['epochs']}",
            _loss(last.get("train_loss")),
            _loss(last.get("test_loss")),
            label_of(run, list(run["varied"]) if run.get("varied") else None),
            _age(_created(run)),
        )
    return table


def run_detail(run: dict[str, Any]) -> Any:
    """The `show` view of a run: its fields, then its epochs."""
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table

    result = run.get("result") or {}
    lines = [
        f"run {run['id']}  [bold]{run['status']}[/]"
        + (f"  (sweep {run['sweep_id']})" if run.get("sweep_id") else ""),
        escape("spec: " + " ".join(f"{k}={v}" for k, v in run["spec"].items())),
    ]
    if result:
        lines.append("result: " + " ".join(f"{k}={_num(v)}" for k, v in result.items()))
    if run.get("error"):
        lines.append(escape(f"error: {run['error']}"))
    table = Table(box=None)
    for name in ("epoch", "train loss", "test loss", "test acc", "lr", "seconds"):
        table.add_column(name, justify="right")
    for e in run["epochs"]:
        table.add_row(
            str(e["epoch"]),
            _loss(e.get("train_loss")),
            _loss(e.get("test_loss")),
            _loss(e.get("test_accuracy")),
            _num(e.get("lr")),
            _loss(e.get("seconds"), 2),
        )
    return Group(*lines, table)


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def sweep_detail(sweep: dict[str, Any], board: dict[str, Any]) -> Any:
    """The `show` view of a sweep: counts, best, then its leaderboard."""
    from rich.console import Group
    from rich.markup import escape

    counts = ", ".join(f"{n} {status}" for status, n in sweep["counts"].items())
    head = [
        f"sweep {sweep['id']}"
        + (f" ({escape(sweep['name'])})" if sweep.get("name") else "")
        + f"  {len(sweep['run_ids'])} runs: {counts}"
        + ("  [bold]done[/]" if sweep["done"] else ""),
        f"metric: {sweep['metric']} ({sweep['mode']})  varied: {', '.join(sweep['varied'])}",
    ]
    return Group(*head, leaderboard_table(board))


def leaderboard_table(board: dict[str, Any]) -> Any:
    """Runs ranked by the sweep's metric, with the varied values as columns."""
    from rich.table import Table

    fields = list(dict.fromkeys(k for row in board["data"] for k in row["varied"]))
    table = Table(box=None)
    for name in ("rank", "run", "status", board["metric"], *fields):
        table.add_column(name, no_wrap=True)
    for row in board["data"]:
        table.add_row(
            str(row["rank"] or "–"),
            row["run_id"],
            row["status"],
            _loss(row["value"]),
            *(str(row["varied"].get(f, "")) for f in fields),
        )
    return table


def best_text(best: dict[str, Any]) -> str:
    """The `best` answer for people."""
    varied = " ".join(f"{k}={v}" for k, v in best["config"]["varied"].items())
    spec = " ".join(f"{k}={v}" for k, v in best["config"]["spec"].items())
    return (
        f"best run {best['run_id']}: {best['metric']} = {best['value']:.6g} ({best['mode']})\n"
        f"varied: {varied}\nspec: {spec}"
    )


def rows_csv(rows: list[dict[str, Any]]) -> str:
    """CSV with a header of every column any row has; lists and dicts as JSON."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in row.items()}
        )
    return out.getvalue()

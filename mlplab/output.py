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
            _named(run, label_of(run, list(run["varied"]) if run.get("varied") else None)),
            _age(_created(run)),
        )
    return table


def _named(run: dict[str, Any], label: str) -> str:
    """The run's config label, after its name and tags when it has them."""
    tags = " ".join(f"#{t}" for t in run.get("tags") or [])
    return " ".join(part for part in (run.get("name"), tags, label) if part)


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
        *labels_lines(run),
    ]
    if result:  # numbers only: matrices and class names are for the plots
        numbers = {k: v for k, v in result.items() if not isinstance(v, list | dict)}
        lines.append("result: " + " ".join(f"{k}={_num(v)}" for k, v in numbers.items()))
    if run.get("error"):
        lines.append(escape(f"error: {run['error']}"))
    columns = dict(_EPOCH_COLUMNS)
    if not any(e.get("val_loss") is not None for e in run["epochs"]):
        columns = {k: v for k, v in columns.items() if not k.startswith("val")}
    table = Table(box=None)
    for name in columns:
        table.add_column(name, justify="right")
    for e in run["epochs"]:
        table.add_row(*(show(e.get(field)) for field, show in columns.values()))
    return Group(*lines, table)


def labels_lines(record: dict[str, Any], *, name: bool = True) -> list[str]:
    """A record's owner labels for `show`: its name (unless shown already), tags, notes."""
    from rich.markup import escape

    labels = {"name": record.get("name") if name else None, "tags": None, "notes": None}
    labels.update(tags=", ".join(record.get("tags") or []) or None, notes=record.get("notes"))
    return [f"{key}: {escape(value)}" for key, value in labels.items() if value]


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


_EPOCH_COLUMNS: dict[str, tuple[str, Any]] = {
    "epoch": ("epoch", str),
    "train loss": ("train_loss", _loss),
    "val loss": ("val_loss", _loss),
    "val acc": ("val_accuracy", _loss),
    "test loss": ("test_loss", _loss),
    "test acc": ("test_accuracy", _loss),
    "lr": ("lr", _num),
    "seconds": ("seconds", lambda v: _loss(v, 2)),
}


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
        *labels_lines(sweep, name=False),  # in the head line already
        *(f"[yellow]warning:[/] {escape(w)}" for w in sweep.get("warnings") or []),
    ]
    if sweep.get("verdict"):
        head.append(f"verdict: {escape(sweep['verdict']['summary'])}")
    return Group(*head, leaderboard_table(board))


def leaderboard_table(board: dict[str, Any]) -> Any:
    """Runs ranked by the sweep's metric, with the varied values as columns."""
    from rich.table import Table

    fields = list(dict.fromkeys(k for row in board["data"] for k in row["varied"]))
    grouped = any(row.get("run_ids") is not None for row in board["data"])  # by configuration
    spread = ("std", "n") if grouped else ()
    table = Table(box=None)
    metric = f"mean {board['metric']}" if grouped else board["metric"]
    for name in ("rank", "best run" if grouped else "run", "status", metric, *spread, *fields):
        table.add_column(name, no_wrap=True)
    for row in board["data"]:
        numbers = (_loss(row.get("std")), str(row.get("n") or 0)) if grouped else ()
        table.add_row(
            str(row["rank"] or "–"),
            row["run_id"],
            row["status"],
            _loss(row["value"]),
            *numbers,
            *(str(row["varied"].get(f, "")) for f in fields),
        )
    return table


def best_text(best: dict[str, Any]) -> str:
    """The `best` answer for people."""
    varied = " ".join(f"{k}={v}" for k, v in best["config"]["varied"].items())
    spec = " ".join(f"{k}={v}" for k, v in best["config"]["spec"].items())
    head = f"best run {best['run_id']}: {best['metric']} = {best['value']:.6g} ({best['mode']})"
    if best.get("runs"):  # a sweep with repeats: the best configuration
        std = "" if best.get("std") is None else f" ± {best['std']:.3g}"
        head = (
            f"best configuration: mean {best['metric']} = {best['value']:.6g}{std} over "
            f"{best['n']} runs ({best['mode']}); its best run {best['run_id']}"
        )
    lines = [head, f"varied: {varied}", f"spec: {spec}"]
    if best.get("verdict"):
        lines.append(f"verdict: {best['verdict']['summary']}")
    lines += [f"warning: {w}" for w in best.get("warnings") or []]
    return "\n".join(lines)


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


def dry_run_text(plan: dict[str, Any]) -> str:
    """A dry run in words: runs, fused groups, cost and the time estimate."""
    groups = plan["groups"]
    fused = sum(g["runs"] for g in groups if g["fused"])
    lines = [
        f"{plan['runs']} runs (at most {plan['runs_at_most']}) in {len(groups)} groups; "
        f"{fused} of them train fused",
        f"cost: {plan['model_epochs']} model-epochs, {plan['param_samples']:.3g} parameter-samples",
    ]
    if plan["trained_model_epochs"] < plan["model_epochs"]:
        lines[-1] += (
            f" ({plan['trained_model_epochs']} model-epochs trained: runs that differ only in "
            "their lr schedule train the epochs where their lrs agree once)"
        )
    for g in groups:
        shape = " ".join(f"{k}={_num(v)}" for k, v in g["shape"].items())
        lines.append(f"  {g['runs']:>3} run(s) {'fused' if g['fused'] else 'alone'}: {shape}")
    if plan.get("estimate_s") is None:
        lines.append(f"time: unknown ({plan.get('estimate_reason')})")
    else:
        lines.append(
            f"time: about {_duration(plan['estimate_s'])} on the fastest worker, "
            f"{_duration(plan['estimate_parallel_s'])} over {plan['workers_measured']} worker(s)"
        )
    if plan.get("note"):
        lines.append(plan["note"])
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"

"""`mlplab study SPEC|SWEEP_ID [--watch]`: run a staged sweep, the study's method, and print
each stage's table (configuration, final loss, runtime) as the stage ends, then the winner.

Exit codes as for the other client commands; 4 when the study ended without a winner or
before its last stage.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mlplab.commands import UsageError, _common, build_submission, run_command

EXIT_NO_WINNER = 4


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `study` subcommand."""
    help_text = "run a staged sweep (the study's method) and print each stage as it ends"
    p = sub.add_parser("study", parents=[_common()], help=help_text, description=help_text)
    p.add_argument(
        "spec",
        help="YAML/JSON staged sweep spec (e.g. examples/seed_study.yaml), "
        "or the id of a staged sweep already submitted",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a field (repeatable), as for submit",
    )
    p.add_argument("--watch", action="store_true", help="follow it until its last stage ends")
    p.set_defaults(func=lambda args: run_command(cmd_study, args))


def cmd_study(client: Any, args: argparse.Namespace) -> int:
    """Submit (or look up) the staged sweep; print its ended stages; with --watch follow it."""
    record = _submit(client, args) if Path(args.spec).exists() else client.sweep(args.spec)
    if record.get("stages") is None:
        raise UsageError(f"sweep {record['id']} is not staged (strategy: staged)")
    printed: set[int] = set()
    if args.watch:
        for event in client.stream(record["id"], sweep=True):
            if event.event == "stage":
                _print_stages(client, args, client.sweep(record["id"]), printed)
    final = client.sweep(record["id"])
    _print_stages(client, args, final, printed)
    if args.watch or final["done"]:
        return _print_end(args, final, client.sweep_runs(record["id"]))
    return 0


def _submit(client: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Validate the file as a staged sweep and submit it; say what was queued."""
    body, _ = build_submission(args.spec, args.overrides, sweep=True)
    if body.get("strategy") != "staged":
        raise UsageError(f"{args.spec} is not a staged sweep (set strategy: staged)")
    record = client.submit_sweep(body)
    plan = " → ".join(f"{s['field']} {s['values']}" for s in record["stages"])
    _print(
        args,
        {"event": "submitted", "id": record["id"], "stages": record["stages"]},
        f"submitted study {record['id']}: {plan}, keep_top {body.get('keep_top')}",
    )
    return record


def _print_stages(
    client: Any, args: argparse.Namespace, sweep: dict[str, Any], printed: set[int]
) -> None:
    """Print every finished stage not printed yet."""
    new = [
        i for i, s in enumerate(sweep["stages"]) if s["status"] == "finished" and i not in printed
    ]
    if not new:
        return
    runs = {r["id"]: r for r in client.sweep_runs(sweep["id"])}
    for index in new:
        printed.add(index)
        stage = sweep["stages"][index]
        fields = [s["field"] for s in sweep["stages"][: index + 1]]
        rows = stage_rows(stage, runs, metric=sweep["metric"], fields=fields)
        data = {"event": "stage", "stage": index + 1, "field": stage["field"], "rows": rows}
        _print(args, data, stage_table(index, stage, rows, metric=sweep["metric"]))


def stage_rows(
    stage: dict[str, Any], runs: dict[str, dict[str, Any]], *, metric: str, fields: list[str]
) -> list[dict[str, Any]]:
    """One row per run of the stage, in stage order: config (the values of `fields`, the
    stages so far), status, losses, runtime, and whether an earlier stage trained it."""
    rows = []
    for run_id in stage["run_ids"]:
        run, result = runs[run_id], runs[run_id].get("result") or {}
        rows.append(
            {
                "run_id": run_id,
                "config": {f: run["spec"][f] for f in fields},
                "kept": run_id in stage.get("kept", []),
                "status": run["status"],
                "epochs": run["spec"]["epochs"],
                "final_train_loss": result.get("final_train_loss"),
                metric: result.get(metric),
                "runtime_s": result.get("runtime_s"),
                "winner": run_id in stage["winners"],
            }
        )
    return rows


def stage_table(
    index: int, stage: dict[str, Any], rows: list[dict[str, Any]], *, metric: str
) -> Any:
    """The rich table of one ended stage; winners starred."""
    from rich.table import Table

    title = f"stage {index + 1}: {stage['field']} in {stage['values']}"
    table = Table(title=title, title_justify="left", box=None)
    columns = ["", "config", "status", "final loss", "runtime s", "run"]
    if metric != "final_train_loss":
        columns.insert(4, metric)
    for name in columns:
        table.add_column(name, no_wrap=True)
    for row in rows:
        cells = [
            "★" if row["winner"] else "",
            _config(row["config"]),
            row["status"],
            _num(row["final_train_loss"]),
            _num(row["runtime_s"], 1),
            row["run_id"] + (" (kept)" if row["kept"] else ""),
        ]
        if metric != "final_train_loss":
            cells.insert(4, _num(row[metric]))
        table.add_row(*cells)
    return table


def _print_end(args: argparse.Namespace, sweep: dict[str, Any], runs: list[dict[str, Any]]) -> int:
    """The winner (or why there is none); 0 with a winner of the whole study, else 4."""
    best = sweep.get("best")
    if sweep.get("end_reason") or best is None:
        reason = sweep.get("end_reason") or "no run finished"
        _print(args, {"event": "end", "winner": None, "reason": reason}, f"no winner: {reason}")
        return EXIT_NO_WINNER
    run = next(r for r in runs if r["id"] == best["run_id"])
    runtime = (run.get("result") or {}).get("runtime_s")
    saved = sweep["epochs_saved"]
    saved_text = f"; early stopping saved {saved} epochs" if saved else ""
    spec = best["config"]["spec"]  # every stage's field, also those it kept from the base
    config = {field: spec[field] for field in sweep["varied"]}
    human = (
        f"winner: {_config(config)}: {best['metric']} "
        f"{best['value']:.4f} in {_num(runtime, 1)} s (run {best['run_id']}){saved_text}"
    )
    _print(
        args,
        {
            "event": "end",
            "winner": {**best, "stage_config": config, "runtime_s": runtime},
            "epochs_saved": saved,
        },
        human,
    )
    return 0


def _config(varied: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in varied.items())


def _num(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _print(args: argparse.Namespace, data: dict[str, Any], human: Any) -> None:
    """A JSON line with --json (one per event, for scripts), else the human rendering."""
    if args.json:
        print(json.dumps(data), flush=True)
        return
    from mlplab import output

    output.console().print(human)

"""The client subcommands on sweeps as objects: sweeps, label, retry, extend, compare.

Exit codes as in mlplab/commands.py (0 ok, 1 refused, 2 usage, 3 unreachable).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mlplab.commands import UsageError, _common, _print, run_command


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sweeps, label, retry, extend and compare subcommands."""
    common = [_common()]

    def add(name: str, command: Any, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=common, help=help_text, description=help_text)
        p.set_defaults(func=lambda args: run_command(command, args))
        return p

    p = add("sweeps", cmd_sweeps, "list your sweeps, newest first, with their status and best")
    p.add_argument("--status", choices=("active", "done"), help="only active or done sweeps")
    p.add_argument("--name", help="only sweeps whose name contains this")
    p.add_argument("--tag", help="only sweeps with this tag")
    p.add_argument("--owner", help="(admins) one user's sweeps")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    p = add("label", cmd_label, "set the name, tags or notes of a run or sweep")
    p.add_argument("id", help="run or sweep id")
    p.add_argument("--name", help="its new name ('' clears it)")
    p.add_argument("--tag", dest="tags", action="append", help="a tag (repeatable; replaces)")
    p.add_argument("--no-tags", action="store_true", help="remove every tag")
    p.add_argument("--notes", help="its notes ('' clears them)")
    p = add("retry", cmd_retry, "queue a sweep's failed, cancelled and diverged runs again")
    p.add_argument("sweep_id")
    p = add("extend", cmd_extend, "more samples (random, learned) or more epochs for a sweep")
    p.add_argument("sweep_id")
    p.add_argument("--n", type=int, help="how many more samples")
    p.add_argument(
        "--epochs",
        type=int,
        help="once the sweep has ended, train every succeeded run on to this many epochs "
        "from its stored state (step or no lr schedule; not cosine)",
    )
    p = add("compare", cmd_compare, "one leaderboard across sweeps (or runs) and their curves")
    p.add_argument("ids", nargs="+", help="sweep ids (or run ids with --runs)")
    p.add_argument("--runs", action="store_true", help="the ids are runs")
    p.add_argument("--metric", help="with --runs: the metric to rank by")
    p.add_argument("-o", "--output", type=Path, help="also save compare.png here")


def cmd_sweeps(client: Any, args: argparse.Namespace) -> None:
    """The caller's sweeps, newest first."""
    from mlplab import sweep_output

    filters = {"status": args.status, "name": args.name, "tag": args.tag, "owner": args.owner}
    body = client.sweeps(**filters, limit=args.limit)
    _print(args, body, sweep_output.sweeps_table(body["data"], body["count"]))


def cmd_label(client: Any, args: argparse.Namespace) -> None:
    """Set a run's or sweep's labels; only the options given change."""
    labels: dict[str, Any] = {}
    if args.name is not None:
        labels["name"] = args.name or None
    if args.notes is not None:
        labels["notes"] = args.notes or None
    if args.tags or args.no_tags:
        labels["tags"] = [] if args.no_tags else args.tags
    if not labels:
        raise UsageError("give --name, --tag, --no-tags or --notes")
    kind, _ = client.resolve(args.id)
    record = (client.label_run if kind == "run" else client.label_sweep)(args.id, **labels)
    tags = ", ".join(record.get("tags") or []) or "none"
    _print(args, record, f"{kind} {args.id}: name {record.get('name') or '–'}, tags {tags}")


def cmd_retry(client: Any, args: argparse.Namespace) -> None:
    """Requeue the sweep's failed, cancelled and diverged runs as new attempts."""
    body = client.retry(args.sweep_id)
    _print(args, body, f"sweep {args.sweep_id}: {body['count']} run(s) queued again")


def cmd_extend(client: Any, args: argparse.Namespace) -> None:
    """More samples for a random sweep, or its succeeded runs continued to more epochs."""
    if (args.n is None) == (args.epochs is None):
        raise UsageError("give one of --n or --epochs")
    body = client.extend(args.sweep_id, n=args.n, epochs=args.epochs)
    if args.epochs is None:
        _print(args, body, f"sweep {args.sweep_id}: {body['count']} new run(s) queued")
        return
    lines = [f"sweep {args.sweep_id}: {body['count']} run(s) continue to {args.epochs} epochs"]
    lines += [f"  skipped {s['run_id']}: {s['reason']}" for s in body.get("skipped") or []]
    _print(args, body, "\n".join(lines))


def cmd_compare(client: Any, args: argparse.Namespace) -> None:
    """One leaderboard across the sweeps (or runs); with -o, their curves as a PNG."""
    from mlplab import sweep_output

    which = {"runs" if args.runs else "sweeps": args.ids}
    body = client.compare(**which, metric=args.metric)
    if args.output is not None:
        args.output.write_bytes(client.compare_plot(**which, metric=args.metric))
    _print(args, body, sweep_output.compare_table(body))

"""The client subcommands: submit, watch, ls, show, best, cancel, plot, export.

Exit codes: 0 ok; 1 the server refused (its detail is printed); 2 a usage or spec error;
3 the server is unreachable; 4 (watch) a run ended other than succeeded; 130 interrupted.
The client, rich and the spec models are imported inside the commands, not at import time.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlpcore.status import RunStatus

EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 1, 2, 3, 130
STATUSES = tuple(RunStatus)
SWEEP_KEYS = frozenset({"grid", "strategy", "base"})
Command = Callable[[Any, argparse.Namespace], int | None]


class UsageError(Exception):
    """A command line or file the client cannot act on."""


def _common() -> argparse.ArgumentParser:
    """Options every client command takes."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--url", help="server URL (else $MLPLAB_URL, the config file, or http://127.0.0.1:8000)"
    )
    parent.add_argument("--token", help="API token (else $MLPLAB_TOKEN or the config file)")
    parent.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    return parent


def register(sub: argparse._SubParsersAction) -> None:
    """Add the client subcommands."""
    common = [_common()]

    def add(name: str, command: Command, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=common, help=help_text, description=help_text)
        p.set_defaults(func=lambda args: run_command(command, args))
        return p

    p = add("submit", cmd_submit, "submit a run or sweep spec file to the server")
    p.add_argument("spec", help="YAML or JSON spec; one holding grid/strategy/base is a sweep")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a field (repeatable); for sweeps "
        "grid.F=[..] sets an axis, run fields go into base",
    )
    p.add_argument("--sweep", action="store_true", help="treat the file as a sweep")
    p.add_argument("--watch", action="store_true", help="follow it live until it ends")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="only show how it would train (fused groups, cost, time estimate); queue nothing",
    )
    p.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="a key of your own for this submission (default: a fresh one); the same key "
        "again within 24 h answers the first submission, so rerunning a script is safe",
    )
    p = add("watch", cmd_watch, "follow a run or sweep live until every run has ended")
    p.add_argument("id", help="run or sweep id")
    p = add("ls", cmd_ls, "list your runs, newest first")
    p.add_argument("--sweep", dest="sweep_id", help="only this sweep's runs")
    p.add_argument("--status", choices=STATUSES, help="only runs with this status")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    add(
        "show", cmd_show, "show a run (with its epochs) or a sweep (with its leaderboard)"
    ).add_argument("id", help="run or sweep id")
    add("best", cmd_best, "the best finished run of a sweep").add_argument("sweep_id")
    add(
        "importance", cmd_importance, "how much each varied field of a sweep mattered"
    ).add_argument("sweep_id")
    add("cancel", cmd_cancel, "cancel a run or every unfinished run of a sweep").add_argument(
        "id", help="run or sweep id"
    )
    p = add("plot", cmd_plot, "save the loss curves of a run or sweep as a PNG")
    p.add_argument("id", help="run or sweep id")
    p.add_argument("-o", "--output", type=Path, help="PNG file (default: ID.png)")
    p = add("export", cmd_export, "a sweep's runs as CSV or JSON, one row per run, best first")
    p.add_argument("sweep_id")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")


def run_command(command: Command, args: argparse.Namespace) -> int:
    """Run a command with a client; turn every failure into one line and an exit code."""
    from mlpcore.errors import SpecError
    from mlplab.client import Client, ConnectionFailed, MlplabError

    try:
        with Client(args.url, args.token) as client:
            return int(command(client, args) or 0)
    except ConnectionFailed as exc:
        return _fail(args, exc.detail, EXIT_UNREACHABLE)
    except MlplabError as exc:
        return _fail(args, exc.detail, EXIT_REFUSED)
    except (SpecError, UsageError) as exc:
        return _fail(args, str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail(args, "interrupted (runs go on on the server)", EXIT_INTERRUPTED)
    except BrokenPipeError:  # `mlplab export ID | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_REFUSED


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    print(f"mlplab {args.command}: error: {message}", file=sys.stderr)
    return code


def _print(args: argparse.Namespace, data: Any, human: Any) -> None:
    """JSON with --json, else the human rendering (a string or a rich renderable)."""
    from mlplab import output

    if args.json:
        print(output.to_json(data))
    else:
        output.console().print(human)


# -- submit ---------------------------------------------------------------------------------


def build_submission(path: str, overrides: list[str], *, sweep: bool) -> tuple[dict, bool]:
    """The request body from a spec file and overrides, validated; and whether it is a sweep."""
    from mlpcore.spec import load_spec_file, parse_override

    data = load_spec_file(path)
    pairs = [parse_override(text) for text in overrides]
    if sweep or SWEEP_KEYS & set(data):
        return _sweep_body(data, pairs), True
    data.update(pairs)
    _validate("RunSpec", data)
    return data, False


def _sweep_body(data: dict[str, Any], pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A SweepSpec body; a flat file (no `base:`) has its run fields moved into base."""
    from mlpcore.spec import RUN_FIELDS
    from mlpcore.sweep import SweepSpec

    body = dict(data)
    if "base" not in body:
        body["base"] = {k: body.pop(k) for k in list(body) if k not in SweepSpec.model_fields}
    body["base"], body["grid"] = dict(body.get("base") or {}), dict(body.get("grid") or {})
    for field, value in pairs:
        where, _, name = field.partition(".")
        if name and where in ("grid", "base"):
            body[where][name] = value
        elif field in RUN_FIELDS:
            body["base"][field] = value
        else:
            body[field] = value
    _validate("SweepSpec", body)
    return body


def _validate(model: str, body: dict[str, Any]) -> None:
    """Check the body against the shared spec model, so mistakes fail before the network."""
    from pydantic import ValidationError

    from mlpcore.errors import SpecError
    from mlpcore.spec import RunSpec, format_validation_error
    from mlpcore.sweep import SweepSpec

    try:
        (RunSpec if model == "RunSpec" else SweepSpec)(**body)
    except ValidationError as exc:
        raise SpecError(f"invalid spec: {format_validation_error(exc)}") from exc


def cmd_submit(client: Any, args: argparse.Namespace) -> int:
    """Submit (with an Idempotency-Key); print the new id (or the record with --json); with
    --watch follow it."""
    import json

    body, is_sweep = build_submission(args.spec, args.overrides, sweep=args.sweep)
    if args.dry_run:  # a run is asked as a sweep of one
        from mlplab import output

        sweep = body if is_sweep else {"base": body, "grid": {"seed": [body.get("seed", 0)]}}
        _print(args, plan := client.dry_run(sweep), output.dry_run_text(plan))
        return 0
    # the client retries a dropped connection with the same key: never a second submission
    submit = client.submit_sweep if is_sweep else client.submit_run
    record = submit(body, idempotency_key=args.idempotency_key)
    kind = "sweep" if is_sweep else "run"
    if args.json:
        print(json.dumps(record) if args.watch else json.dumps(record, indent=2), flush=True)
    else:
        extra = f" with {len(record['run_ids'])} runs" if is_sweep else ""
        print(f"submitted {kind} {record['id']}{extra}", flush=True)
    if not args.watch:
        return 0
    from mlplab.watch import watch

    return watch(client, kind, record, as_json=args.json)


# -- following and reading ------------------------------------------------------------------


def cmd_watch(client: Any, args: argparse.Namespace) -> int:
    """Live progress of a run or sweep until everything has ended."""
    from mlplab.watch import watch

    kind, record = client.resolve(args.id)
    return watch(client, kind, record, as_json=args.json)


def cmd_ls(client: Any, args: argparse.Namespace) -> None:
    """The caller's runs, optionally of one sweep or status."""
    from mlplab import output

    body = client.runs(sweep_id=args.sweep_id, status=args.status, limit=args.limit)
    _print(args, body, output.runs_table(body["data"], body["count"]))


def cmd_show(client: Any, args: argparse.Namespace) -> None:
    """A run with its epochs, or a sweep with its leaderboard."""
    from mlplab import output

    kind, record = client.resolve(args.id)
    if kind == "run":
        _print(args, record, output.run_detail(record))
        return
    board = {"metric": record["metric"], "data": client.leaderboard(record["id"])}
    _print(args, {**record, "leaderboard": board["data"]}, output.sweep_detail(record, board))


def cmd_best(client: Any, args: argparse.Namespace) -> None:
    """The sweep's best finished run, its metric and configuration."""
    from mlplab import output

    best = client.best(args.sweep_id)
    _print(args, best, output.best_text(best))


def cmd_importance(client: Any, args: argparse.Namespace) -> None:
    """Each varied field's importance for the sweep's metric, most important first."""
    scores = client.importance(args.sweep_id)
    width = max((len(f) for f in scores), default=0)
    lines = [f"{f:<{width}}  {v:6.3f}  {'#' * round(v * 40)}" for f, v in scores.items()]
    _print(args, scores, "\n".join(lines) or "no varied fields")


def cmd_cancel(client: Any, args: argparse.Namespace) -> None:
    """Cancel a run, or every unfinished run of a sweep."""
    kind, _ = client.resolve(args.id)
    if kind == "run":
        record = client.cancel(args.id)
        pending = record["status"] == RunStatus.running
        human = f"run {args.id}: {'cancel requested' if pending else record['status']}"
    else:
        record = client.cancel_sweep(args.id)
        counts = ", ".join(f"{n} {s}" for s, n in record["counts"].items())
        human = f"sweep {args.id}: cancelling ({counts})"
    _print(args, record, human)


def cmd_plot(client: Any, args: argparse.Namespace) -> None:
    """Save the loss-curve PNG of a run or sweep."""
    from mlplab.client import NotFound

    try:
        png = client.plot(args.id)
    except NotFound:
        try:
            png = client.plot(args.id, sweep=True)
        except NotFound:
            raise NotFound(f"no run or sweep with id {args.id!r}", 404) from None
    path = args.output or Path(f"{args.id}.png")
    _write(path, png)
    _print(args, {"path": str(path), "bytes": len(png)}, f"wrote {path} ({len(png)} bytes)")


def cmd_export(client: Any, args: argparse.Namespace) -> None:
    """A sweep's runs, one row each, as CSV or JSON, to stdout or a file."""
    from mlplab import output

    rows = client.sweep_rows(args.sweep_id)
    text = output.rows_csv(rows) if args.format == "csv" else output.to_json(rows) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        return
    _write(args.output, text.encode())
    if not args.json:
        print(f"wrote {len(rows)} rows to {args.output}", file=sys.stderr)


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from exc

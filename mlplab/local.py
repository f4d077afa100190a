"""`mlplab train`: run one spec on this machine with no server, with live progress."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlpcore.status import RunStatus
from mlplab.extras import needs

EXIT_CODES = {RunStatus.succeeded: 0, RunStatus.diverged: 3, RunStatus.cancelled: 130}
THREADS_ENV = "MLPLAB_TORCH_THREADS"  # the worker's setting (worker/settings.py), honoured here


class ThreadsError(ValueError):
    """MLPLAB_TORCH_THREADS is not a whole number of at least 1."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `train` subcommand."""
    p = sub.add_parser("train", help="train one spec locally (no server needed)")
    p.add_argument("spec", nargs="?", help="spec file (YAML or JSON); defaults apply when omitted")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a spec field (repeatable), e.g. --set lr=0.01",
    )
    p.add_argument("--out", type=Path, help="also write the result JSON to this file")
    p.add_argument("--data-dir", help="dataset directory (default: $MLPLAB_DATA_DIR or cache)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    p.add_argument(
        "--threads",
        type=_positive_int,
        metavar="N",
        help=f"CPU threads for torch (default: ${THREADS_ENV}, else torch's default; "
        "on a busy machine 1 is often fastest)",
    )
    p.set_defaults(func=run_train)


def resolve_spec(path: str | None, overrides: list[str]) -> Any:
    """Load the spec file, apply `field=value` overrides and validate; raises SpecError."""
    from pydantic import ValidationError

    from mlpcore.errors import SpecError
    from mlpcore.spec import RunSpec, format_validation_error, load_spec_file, parse_override

    fields = load_spec_file(path) if path else {}
    fields.update(parse_override(text) for text in overrides)
    try:
        return RunSpec(**fields)
    except ValidationError as exc:
        raise SpecError(f"invalid spec: {format_validation_error(exc)}") from exc


def _positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return value


def torch_threads(arg: int | None, environ: Mapping[str, str]) -> int | None:
    """--threads, else $MLPLAB_TORCH_THREADS, else None (torch's default); ThreadsError when
    the variable is set to something else than a whole number of at least 1."""
    if arg is not None:
        return arg
    text = environ.get(THREADS_ENV, "").strip()
    if not text:
        return None
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError as exc:
        raise ThreadsError(f"{THREADS_ENV}: {exc}") from exc


@needs("worker")
def run_train(args: argparse.Namespace) -> int:
    """Train locally; print one line per epoch to stderr and the result JSON to stdout."""
    from mlpcore.errors import MlpcoreError

    try:
        threads = torch_threads(args.threads, os.environ)
        spec = resolve_spec(args.spec, args.overrides)
        _warn_over_server_limits(spec)
        record = _train_with_progress(
            spec, data_dir=args.data_dir, quiet=args.quiet, threads=threads
        )
    except (MlpcoreError, ThreadsError) as exc:
        print(f"mlplab train: error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(record, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return EXIT_CODES.get(record["status"], 1)


def _warn_over_server_limits(spec: Any) -> None:
    """Training here has no epoch cap; say so when a server (by default) would refuse it."""
    from mlpcore.limits import DEFAULT_MAX_EPOCHS

    if spec.epochs > DEFAULT_MAX_EPOCHS:
        print(
            f"mlplab train: warning: epochs {spec.epochs} is over a server's default "
            f"max_epochs ({DEFAULT_MAX_EPOCHS}): this trains here with no cap, but a server "
            "refuses the spec unless its MLPLAB_MAX_EPOCHS is raised",
            file=sys.stderr,
        )


def _train_with_progress(
    spec: Any, *, data_dir: str | None, quiet: bool, threads: int | None
) -> dict[str, Any]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from mlpcore.device import configure_process
    from mlpcore.train import train
    from mlplab.progress import ProgressCallback

    configure_process(threads=threads)  # first, before torch starts any thread

    console = Console(stderr=True, quiet=quiet)
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        label = f"{spec.dataset} {spec.activation} lr={spec.lr:g}"
        task = progress.add_task(label, total=spec.epochs)
        watcher = ProgressCallback(progress, task, console)
        previous = signal.signal(signal.SIGINT, watcher.interrupt)
        try:
            result = train(spec, callbacks=[watcher], data_dir=data_dir)
        finally:
            signal.signal(signal.SIGINT, previous)
    console.print(f"{result.status} on {result.device}, {_threads_text()}", style="bold")
    return result.to_record()


def _threads_text() -> str:
    import torch

    threads = torch.get_num_threads()
    return f"{threads} CPU thread{'s' if threads != 1 else ''}"

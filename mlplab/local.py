"""`mlplab train`: run one spec on this machine with no server, with live progress."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

EXIT_CODES = {"succeeded": 0, "diverged": 3, "cancelled": 130}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `train` subcommand."""
    p = sub.add_parser("train", help="train one spec locally (no server needed)")
    p.add_argument("spec", nargs="?", help="spec file (YAML or JSON); defaults apply when omitted")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a spec field (repeatable), e.g. --set lr=0.01")
    p.add_argument("--out", type=Path, help="also write the result JSON to this file")
    p.add_argument("--data-dir", help="dataset directory (default: $MLPLAB_DATA_DIR or cache)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
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


def run_train(args: argparse.Namespace) -> int:
    """Train locally; print one line per epoch to stderr and the result JSON to stdout."""
    from mlpcore.errors import MlpcoreError

    try:
        spec = resolve_spec(args.spec, args.overrides)
        record = _train_with_progress(spec, data_dir=args.data_dir, quiet=args.quiet)
    except MlpcoreError as exc:
        print(f"mlplab train: error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(record, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return EXIT_CODES.get(record["status"], 1)


def _train_with_progress(spec: Any, *, data_dir: str | None, quiet: bool) -> dict[str, Any]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from mlpcore.train import train

    console = Console(stderr=True, quiet=quiet)
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        label = f"{spec.dataset} {spec.activation} lr={spec.lr:g}"
        task = progress.add_task(label, total=spec.epochs)
        watcher = _ProgressCallback(progress, task, console)
        previous = signal.signal(signal.SIGINT, watcher.interrupt)
        try:
            result = train(spec, callbacks=[watcher], data_dir=data_dir)
        finally:
            signal.signal(signal.SIGINT, previous)
    console.print(f"{result.status} on {result.device}", style="bold")
    return result.to_record()


def _epoch_line(m: Any) -> str:
    return (f"epoch {m.epoch:>3}  train_loss {m.train_loss:.4f}  test_loss {m.test_loss:.4f}  "
            f"test_acc {m.test_accuracy:.4f}  lr {m.lr:.2g}  {m.seconds:.2f}s")


class _ProgressCallback:
    """Advances the progress bar, prints each epoch, and turns Ctrl-C into a clean cancel."""

    def __init__(self, progress: Any, task: Any, console: Any) -> None:
        self.progress, self.task, self.console = progress, task, console
        self.stop = False

    def interrupt(self, signum: int, frame: Any) -> None:
        self.stop = True

    def on_epoch_end(self, metrics: Any) -> None:
        self.console.print(_epoch_line(metrics))
        self.progress.advance(self.task)

    def should_stop(self) -> bool:
        return self.stop

    def on_end(self, result: Any) -> None:
        pass

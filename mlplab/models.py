"""Trained models from the server: download a run's weights (checked against the SHA-256 its
model.json gives), load them as a torch module, and `mlplab pull`.

Torch and safetensors are imported only inside load_model: the client install has neither,
and says which install brings them (`pip install 'mlplab[models]'`). httpx too is imported
inside, so that `mlplab --help`, which registers `pull` from here, stays light.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlplab.extras import install_hint, missing_modules

Progress = Callable[[int, int], None]  # (bytes so far, bytes in all: 0 when unknown)


def default_path(run_id: str, which: str) -> Path:
    """`<run id>-<which>.safetensors`, the name the server's Content-Disposition gives."""
    return Path(f"{run_id}-{which}.safetensors")


def download_model(
    client: Any,
    run_id: str,
    path: str | Path | None = None,
    *,
    which: str = "final",
    progress: Progress | None = None,
) -> Path:
    """Save the run's weights to path (written whole or not at all), checked against the
    SHA-256 of its model.json; MlplabError when they differ."""
    expected = client.model_info(run_id)["files"][which]["sha256"]
    path = Path(path) if path is not None else default_path(run_id, which)
    partial = path.with_name(f".{path.name}.part")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for chunk in _stream(client, run_id, which, progress):
                digest.update(chunk)
                out.write(chunk)
        _check(digest.hexdigest(), expected, run_id)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _stream(client: Any, run_id: str, which: str, progress: Progress | None) -> Any:
    """The weights' bytes in chunks, reporting progress."""
    import httpx

    from mlplab.errors import ConnectionFailed, error_for

    url = f"/v1/runs/{run_id}/model"
    try:
        with client._http.stream("GET", url, params={"which": which}) as response:
            if response.status_code >= 400:
                response.read()
                raise error_for(response)
            total, done = int(response.headers.get("content-length") or 0), 0
            for chunk in response.iter_bytes():
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
                yield chunk
    except httpx.TransportError as exc:
        raise ConnectionFailed.reaching(client.url, exc) from exc


def _check(actual: str, expected: str, run_id: str) -> None:
    from mlplab.errors import MlplabError

    if actual != expected:
        raise MlplabError(f"run {run_id}'s model arrived damaged (sha256 {actual} != {expected})")


def load_model(client: Any, run_id: str, *, which: str = "final") -> Any:
    """The run's trained model as a torch `nn.Sequential` in eval mode: it takes the dataset's
    raw inputs (uint8 pixels) and gives logits. ImportError naming the install without torch."""
    missing = missing_modules("models")
    if missing:
        raise ImportError(
            f"load_model needs torch and safetensors (no {missing[0]} here): "
            f"{install_hint('models')}"
        )
    from safetensors.torch import load

    from mlpcore.export import build_sequential

    info = client.model_info(run_id)
    data = b"".join(_stream(client, run_id, which, None))
    _check(hashlib.sha256(data).hexdigest(), info["files"][which]["sha256"], run_id)
    return build_sequential(info["config"], load(data))


# -- mlplab pull ---------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:
    """Add `mlplab pull` with the client commands' common options."""
    from mlplab import commands

    text = "download a finished run's trained model (safetensors)"
    p = sub.add_parser("pull", parents=[commands._common()], help=text, description=text)
    p.add_argument("id", help="run id")
    p.add_argument("-o", "--output", type=Path, help="file (default: ID-WHICH.safetensors)")
    p.add_argument(
        "--which",
        choices=("final", "best"),
        default="final",
        help="final: the last epoch's weights; best: the best epoch's (runs with a val split)",
    )
    p.set_defaults(func=lambda args: commands.run_command(cmd_pull, args))


def cmd_pull(client: Any, args: argparse.Namespace) -> None:
    """Download the model, with a progress bar on a terminal."""
    import sys

    from mlplab.commands import UsageError, _print

    path = args.output or default_path(args.id, args.which)
    try:
        if sys.stderr.isatty() and not args.json:
            saved = _with_bar(client, args, path)
        else:
            saved = download_model(client, args.id, path, which=args.which)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from exc
    size = saved.stat().st_size
    _print(args, {"path": str(saved), "bytes": size}, f"wrote {saved} ({size} bytes)")


def _with_bar(client: Any, args: argparse.Namespace, path: Path) -> Path:
    """download_model with a rich progress bar on stderr."""
    from rich.console import Console
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    columns = [*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"{args.id} ({args.which})", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        return download_model(client, args.id, path, which=args.which, progress=advance)

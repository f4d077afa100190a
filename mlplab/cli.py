"""The `mlplab` command line: the client commands, local training and the server.

Each subcommand module registers its own parser; heavy modules (torch, fastapi, celery) are
imported inside the functions that need them, so `mlplab --help` stays fast and works in the
client install. The commands behind an extra (`up`, `api`, `worker`, `train`, `users`) check
for it first and exit 2 naming the install that brings it (mlplab/extras.py).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mlplab import commands, local, models, serve, study_cmd, sweep_cmds, users_cmd


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="mlplab", description="Train MLP experiments locally or on a shared training server."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    local.register(sub)
    serve.register(sub)
    commands.register(sub)
    models.register(sub)
    users_cmd.register(sub)
    study_cmd.register(sub)
    sweep_cmds.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

"""The optional parts of the install, and the one line a command prints when its part is missing.

`pip install mlplab` is the client; `mlplab[server]` adds the API, `mlplab[worker]` training,
`mlplab[all]` both; `mlplab[models]` lets the client load trained models. A command behind a
part checks its key modules with `find_spec` (nothing is imported) before it starts, and
exits 2 naming the install that brings them.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import sys
from collections.abc import Callable

EXIT_MISSING = 2
# The import names of each extra's packages in pyproject.toml (tests keep the two in step).
PARTS: dict[str, tuple[str, ...]] = {
    "server": (
        "fastapi",
        "uvicorn",
        "celery",
        "redis",
        "pydantic_settings",
        "prometheus_client",
        "matplotlib",
        "fastapi_offline",
        "optuna",
        "cmaes",
        "scipy",
    ),
    "worker": (
        "torch",
        "torchvision",
        "numpy",
        "celery",
        "redis",
        "pydantic_settings",
        "mlxtend",
        "sklearn",
        "safetensors",
        "optuna",
        "cmaes",
        "scipy",
    ),
    # client.load_model and `mlplab pull --load`: a run's model as a torch module
    "models": ("torch", "safetensors"),
}
Command = Callable[[argparse.Namespace], int]


def missing_modules(*parts: str) -> list[str]:
    """The key modules of these parts that cannot be imported here, in order, once each."""
    names = dict.fromkeys(name for part in parts for name in PARTS[part])
    return [name for name in names if not importable(name)]


def importable(name: str) -> bool:
    """Whether `import name` would find the module (nothing is imported); one set to None in
    sys.modules, as a test blocks it, is not."""
    try:
        return importlib.util.find_spec(name) is not None
    except ValueError:  # find_spec on a sys.modules entry with no spec
        return False


def install_hint(*parts: str) -> str:
    """The pip command that brings these parts."""
    extra = "all" if {"server", "worker"} <= set(parts) else ",".join(parts)
    return f"pip install 'mlplab[{extra}]'"


def missing_line(command: str, *parts: str) -> str | None:
    """None when every part is installed, else the one line that says what to install."""
    missing = missing_modules(*parts)
    if not missing:
        return None
    needs = " and ".join(parts) + (" parts" if len(parts) > 1 else " part")
    absent = missing[0] + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
    return f"mlplab {command} needs the {needs} (no {absent} here): {install_hint(*parts)}"


def needs(*parts: str) -> Callable[[Command], Command]:
    """Decorate a CLI command: exit 2 with one line on stderr when one of its parts is missing."""

    def decorate(func: Command) -> Command:
        @functools.wraps(func)
        def checked(args: argparse.Namespace) -> int:
            line = missing_line(getattr(args, "command", None) or func.__name__, *parts)
            if line is not None:
                print(line, file=sys.stderr)
                return EXIT_MISSING
            return func(args)

        return checked

    return decorate

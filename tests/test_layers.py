"""The layers stay apart: imports flow one way (STYLE.md), read from the source itself.

The graph is built from every `import` statement in the packages' files, function-level ones
included (a lazy import is still an arrow), so a new arrow fails here even if no test happens
to load the module that draws it. The last tests load the entry points in a fresh interpreter
and look at sys.modules, which also catches torch pulled in by a third-party import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from functools import cache
from pathlib import Path

import pytest

from tests.support.paths import ROOT

PACKAGES = ("api", "lab", "worker", "runstore", "mlpcore", "mlplab", "artifacts")
# package -> the project packages it must never import
FORBIDDEN = {
    "api": {"worker", "mlplab"},
    "worker": {"api", "mlplab"},
    "lab": {"api", "worker", "mlplab"},
    "runstore": {"api", "worker", "lab", "mlplab", "artifacts"},
    "mlpcore": {"api", "worker", "lab", "runstore", "mlplab", "artifacts"},
    "mlplab": {"api", "worker", "lab"},  # artifacts: `mlplab up` names its directory
    # the model files' store: bytes in, bytes out, below everything that uses it
    "artifacts": {"api", "worker", "lab", "runstore", "mlpcore", "mlplab"},
}
TORCH_FREE = ("api", "lab", "runstore", "artifacts")  # and mlpcore's torch-free modules they reach


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def sources() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


@cache
def imports_of(module: str) -> frozenset[str]:
    """Every module named by an import statement in the module's file (absolute names)."""
    tree = ast.parse(sources()[module].read_text(), filename=str(sources()[module]))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return frozenset(names)


def internal(names: frozenset[str]) -> set[str]:
    """The project modules among imported names (`from lab import stages` names lab.stages)."""
    return {name for name in names if name in sources()}


def reachable(start: str) -> set[str]:
    """The project modules `start` imports, directly or through other project modules."""
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parents = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
        todo.extend(internal(imports_of(module)) | (parents & set(sources())))
    return seen


def test_the_graph_sees_every_package_and_the_known_arrows():
    """The walker itself works: it finds the modules and arrows that do exist."""
    assert {m.split(".")[0] for m in sources()} == set(PACKAGES)
    assert "lab.submit" in internal(imports_of("api.routes.runs"))
    assert "lab.stages" in internal(imports_of("worker.runner"))
    assert "torch" in imports_of("mlpcore.model")


@pytest.mark.parametrize("package", PACKAGES)
def test_no_arrow_points_where_it_must_not(package):
    wrong = [
        f"{module} imports {name}"
        for module in sources()
        if module.split(".")[0] == package
        for name in sorted(imports_of(module))
        if name.split(".")[0] in FORBIDDEN[package]
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("package", TORCH_FREE)
def test_the_torch_free_layers_reach_no_torch(package):
    modules = [m for m in sources() if m.split(".")[0] == package]
    wrong = [
        f"{start} -> {module} imports torch"
        for start in modules
        for module in sorted(reachable(start))
        if any(name.split(".")[0] == "torch" for name in imports_of(module))
    ]
    assert not wrong, "\n".join(wrong)


def loaded_after(code: str) -> list[str]:
    """Top-level modules of the project and torch that a fresh interpreter holds after code."""
    probe = textwrap.dedent(code) + textwrap.dedent("""
        import sys
        print(sorted({m.split(".")[0] for m in sys.modules}))
    """)
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return ast.literal_eval(done.stdout.strip().splitlines()[-1])


def test_importing_the_api_loads_neither_torch_nor_the_worker():
    loaded = loaded_after("import api.main; api.main.create_app")
    assert "torch" not in loaded and "worker" not in loaded
    assert "lab" in loaded  # the probe sees what it should


def test_importing_the_client_loads_no_server_part():
    loaded = loaded_after("import mlplab, mlplab.cli; from mlplab import Client; Client")
    heavy = {"torch", "fastapi", "celery", "redis", "api", "worker", "lab", "runstore"}
    assert not heavy & set(loaded), sorted(heavy & set(loaded))
    assert "httpx" in loaded

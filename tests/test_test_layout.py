"""The tests' own layout: no file under tests/ imports a test module (`test_*`) or a conftest.py.

What tests share lives in tests/support (plain helpers) and in the conftest.py files (fixtures,
which pytest hands to the tests itself). Read from the source: every import statement,
function-level ones included, and importlib.import_module / __import__ with a literal name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def is_test_module(name: str) -> bool:
    """True when a dotted module name names a test module or a conftest, at any depth."""
    return any(part.startswith("test_") or part == "conftest" for part in name.split("."))


def imported_names(source: str) -> list[str]:
    """Every module name the source imports (`from a import b` gives a and a.b; relative
    imports keep their dots)."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            names.append(module)
            names += [f"{module.rstrip('.')}.{alias.name}".lstrip(".") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.append(node.args[0].value)
    return names


def offending_imports(source: str) -> list[str]:
    """The test modules and conftests the source imports."""
    return [name for name in imported_names(source) if is_test_module(name)]


def sources() -> dict[str, str]:
    """Every Python file under tests/, by its path relative to tests/."""
    return {path.relative_to(TESTS).as_posix(): path.read_text() for path in TESTS.rglob("*.py")}


@pytest.mark.parametrize(
    "source",
    [
        "from tests.api.test_runs import queued_groups",
        "from tests.api.test_isolation import bearer",
        "from tests.runstore.test_store import SPEC, metrics",
        "from tests.integration.test_server import sse, wait_for",
        "from tests.worker.test_runner import settings  # noqa: F401 (a fixture)",
        "from tests.conftest import ROOT, TEST_PREFIX",
        "from tests.client.conftest import mlplab",
        "import tests.conftest",
        "import tests.api.test_runs as runs",
        "from tests.api import test_runs",
        "from tests import conftest",
        "from .test_store import SPEC",
        "from . import test_store",
        "from .conftest import ROOT",
        "from .. import conftest",
        "import conftest",
        "from conftest import ROOT",
        "def f():\n    from tests.conftest import starlette_test_client\n",
        "import importlib\nimportlib.import_module('tests.api.test_runs')",
        "__import__('tests.conftest')",
    ],
)
def test_each_way_of_importing_a_test_module_is_caught(source):
    assert offending_imports(source)


@pytest.mark.parametrize(
    "source",
    [
        "from tests.support.http import bearer, queued_groups",
        "from tests.support import waiting",
        "import tests.support.paths",
        "from tests import support",
        "import pytest\nimport unittest\nfrom runstore import Store",
        "from . import helpers",
        "import importlib\nimportlib.import_module('runstore.keys')",
    ],
)
def test_imports_of_helpers_and_packages_pass(source):
    assert offending_imports(source) == []


def test_no_file_under_tests_imports_a_test_module_or_a_conftest():
    found = sources()
    assert "conftest.py" in found and "test_test_layout.py" in found and len(found) > 50
    bad = [
        f"{path} imports {name}"
        for path, source in sorted(found.items())
        for name in offending_imports(source)
    ]
    assert bad == [], "import it from tests/support (a fixture: from a conftest.py, by name)"

"""benchmarks/load.py in a tiny configuration against the real test server, and its checker."""

import importlib.util
import subprocess
import sys

import pytest

from tests.support.paths import ROOT

pytestmark = pytest.mark.integration


def load_module():
    """benchmarks/load_clients.py as a module (benchmarks/ is not a package)."""
    path = ROOT / "benchmarks" / "load_clients.py"
    spec = importlib.util.spec_from_file_location("load_clients", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def stream(*epochs, end="succeeded"):
    """(event, id, data) triples as read from a run's SSE stream."""
    events = [("status", "0-1", {"status": "queued"}), ("status", "0-2", {"status": "running"})]
    events += [("epoch", str(k), {"epoch": k}) for k in epochs]
    return events + ([("status", "3-1", {"status": end})] if end else [])


def test_the_checker_catches_lost_duplicated_misordered_and_unfinished_streams():
    check = load_module().check_events
    assert check("r", 3, stream(1, 2, 3)) == ""
    for bad in (
        stream(1, 3),
        stream(1, 2, 2, 3),
        stream(2, 1, 3),
        stream(1, 2, 3, end=None),
        stream(1, 2, 3) + [("status", "3-2", {"status": "succeeded"})],
    ):
        assert check("r", 3, bad), bad


def test_a_small_load_loses_and_duplicates_nothing(server):
    done = subprocess.run(
        [
            sys.executable,
            "benchmarks/load.py",
            "--url",
            server.base_url,
            "--runs",
            "20",
            "--clients",
            "4",
            "--streams",
            "5",
            "--pollers",
            "2",
            "--timeout",
            "240",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "HTTP errors: 0; lost/duplicated/misordered events: 0" in out, out
    assert "submitted 20/20; terminal 20/20" in out and "5/5 streams complete" in out, out
    assert out.rstrip().endswith("PASS"), out

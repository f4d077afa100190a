"""The checkout the tests run from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def python_stdout(code: str, **env: str) -> str:
    """What `python -c code` prints, run in a fresh process from the repo root with `env` added
    to the environment (for process-wide state: imports, torch flags); asserts it exits 0."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout

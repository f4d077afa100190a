"""Fixtures of the client tests."""

import os
import subprocess
import sys

import pytest

from tests.support.cli import SPEC_FILES
from tests.support.paths import ROOT


@pytest.fixture
def mlplab(server, tmp_path):
    """Run `python -m mlplab.cli ARGS` in tmp_path (holding run.yaml and sweep.yaml) against
    the test server; asserts the exit code (`code`) and returns the CompletedProcess."""
    env = dict(
        os.environ,
        MLPLAB_URL=server.base_url,
        XDG_CONFIG_HOME=str(tmp_path / "cfg"),
        PYTHONPATH=str(ROOT),
        COLUMNS="200",
    )
    env.pop("MLPLAB_TOKEN", None)
    for name, text in SPEC_FILES.items():
        (tmp_path / name).write_text(text)

    def run(*args, code=0, env_extra=None):
        done = subprocess.run(
            [sys.executable, "-m", "mlplab.cli", *args],
            cwd=tmp_path,
            env={**env, **(env_extra or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
        return done

    return run

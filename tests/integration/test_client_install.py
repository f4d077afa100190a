"""`pip install mlplab` with no extra, in a fresh venv: the client and its CLI, nothing heavy.

The venv is built from a copy of the checkout (pip reaches PyPI for httpx and the rest); its
`mlplab` then drives the real server that the full install runs (the `server` fixture).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from mlplab.extras import PARTS
from tests.support.paths import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
HEAVY = ("torch", "torchvision", "fastapi", "uvicorn", "celery", "redis", "sklearn", "mlxtend")
CLIENT_MB = 100  # the whole venv, pip and setuptools included
SWEEP_YAML = "dataset: synthetic\nhidden: [16]\nepochs: 2\ngrid:\n  activation: [relu, tanh]\n"
IMPORT_NAMES = {"scikit-learn": "sklearn", "pyyaml": "yaml"}  # where they differ, "-" aside
Run = Callable[..., subprocess.CompletedProcess[str]]


def _copy_checkout(target: Path) -> Path:
    """pyproject, README and the packages: pip builds from this copy, never in the tree."""
    target.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, target / name)
    patterns = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in patterns if (ROOT / p.rstrip("*")).is_dir()}
    for package in packages:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(ROOT / package, target / package, ignore=ignore)
    return target


def _clean_env(**extra: str) -> dict[str, str]:
    """Our environment without what points at the full install (PYTHONPATH, the venv)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.pop("MLPLAB_TOKEN", None)
    return {**env, "PIP_NO_INPUT": "1", **extra}


def _run(
    argv: list[str], *, cwd: Path, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run argv in the clean environment (plus env), no stdin, output captured."""
    return subprocess.run(
        argv,
        cwd=cwd,
        env=_clean_env(**env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no system site packages) with the checkout installed with no extra."""
    base = tmp_path_factory.mktemp("client-install")
    venv = base / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", str(venv)],
        check=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-input"]
    done = _run(
        [*pip, "--disable-pip-version-check", str(_copy_checkout(base / "src"))],
        cwd=base,
        timeout=780,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return venv


@pytest.fixture
def client_mlplab(client_venv: Path, tmp_path: Path) -> Run:
    """Run the client venv's `mlplab ARGS` in tmp_path (never the checkout); assert the code."""

    def run(*args: str, code: int = 0, env: dict[str, str] | None = None):
        extra = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "COLUMNS": "200", **(env or {})}
        done = _run([str(client_venv / "bin" / "mlplab"), *args], cwd=tmp_path, **extra)
        assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
        return done

    return run


def _size_mb(path: Path) -> float:
    files = (p for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return sum(p.stat().st_size for p in files) / 1e6


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_the_client_install_has_no_server_or_training_parts(client_venv, tmp_path):
    code = (
        "import importlib.util, json, mlplab, mlplab.cli, mlplab.client; "
        f"print(json.dumps({{n: importlib.util.find_spec(n) is not None for n in {HEAVY!r}}}))"
    )
    done = _run([str(client_venv / "bin" / "python"), "-c", code], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert sorted(found) == sorted(HEAVY)
    assert not [name for name, importable in found.items() if importable]
    assert _size_mb(client_venv) < CLIENT_MB


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_load_model_without_torch_names_the_install_that_brings_it(client_venv, tmp_path):
    code = "from mlplab import Client; Client('http://127.0.0.1:9').load_model('0' * 16)"
    done = _run([str(client_venv / "bin" / "python"), "-c", code], cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "ImportError: load_model needs torch and safetensors (no torch here): "
        "pip install 'mlplab[models]'"
    )


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_the_client_cli_submits_watches_and_ranks_on_a_real_server(client_mlplab, server, tmp_path):
    (tmp_path / "sweep.yaml").write_text(SWEEP_YAML)
    env = {"MLPLAB_URL": server.base_url}
    sweep = json.loads(client_mlplab("submit", "sweep.yaml", "--json", env=env).stdout)
    assert len(sweep["run_ids"]) == 2
    events = [
        json.loads(line)
        for line in client_mlplab("watch", sweep["id"], "--json", env=env).stdout.splitlines()
        if line
    ]
    epochs = [e["data"] for e in events if e["event"] == "epoch"]
    assert sorted((e["run_id"], e["epoch"]) for e in epochs) == sorted(
        (run_id, epoch) for run_id in sweep["run_ids"] for epoch in (1, 2)
    )
    assert events[-1]["event"] == "end" and events[-1]["record"]["counts"] == {"succeeded": 2}
    best = json.loads(client_mlplab("best", sweep["id"], "--json", env=env).stdout)
    assert best["run_id"] in sweep["run_ids"] and best["metric"] == "final_train_loss"
    assert best["run_id"] in client_mlplab("best", sweep["id"], env=env).stdout


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_commands_behind_a_missing_extra_exit_2_with_one_line_naming_it(client_mlplab):
    assert "submit" in client_mlplab("--help").stdout
    for args, part, extra in (
        (["up", "--no-auth"], "the server and worker parts", "all"),
        (["api"], "the server part", "server"),
        (["worker"], "the worker part", "worker"),
        (["train"], "the worker part", "worker"),
        (["users", "list"], "the server part", "server"),
    ):
        done = client_mlplab(*args, code=2)
        [line] = done.stderr.strip().splitlines()
        assert line.startswith(f"mlplab {args[0]} needs {part} "), line
        assert line.endswith(f"pip install 'mlplab[{extra}]'"), line
        assert done.stdout == ""


def test_each_part_checks_every_package_of_its_extra():
    extras = PYPROJECT["project"]["optional-dependencies"]
    for part, modules in PARTS.items():
        names = {re.match(r"[A-Za-z0-9._-]+", req)[0].lower() for req in extras[part]}
        wanted = {IMPORT_NAMES.get(name, name.replace("-", "_")) for name in names}
        assert wanted == set(modules), part
    assert set(extras["all"]) == {"mlplab[server,worker]"}

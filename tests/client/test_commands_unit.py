"""The CLI's pieces that need no server: building submissions, import weight, help."""

import subprocess
import sys

import pytest

from mlpcore.errors import SpecError
from mlplab.commands import build_submission
from tests.support.paths import ROOT


def write(tmp_path, text):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return str(path)


def test_a_plain_spec_is_a_run_with_overrides(tmp_path):
    body, is_sweep = build_submission(
        write(tmp_path, "dataset: synthetic\nepochs: 3\n"),
        ["lr=0.01", "hidden=[8, 4]"],
        sweep=False,
    )
    assert not is_sweep and body == {
        "dataset": "synthetic",
        "epochs": 3,
        "lr": 0.01,
        "hidden": [8, 4],
    }


def test_a_flat_sweep_file_moves_run_fields_into_base(tmp_path):
    text = "name: s\ndataset: synthetic\nepochs: 3\ngrid:\n  activation: [relu, tanh]\n"
    body, is_sweep = build_submission(
        write(tmp_path, text),
        ["lr=0.1", "grid.lr=[0.1, 0.01]", "metric=final_test_loss"],
        sweep=False,
    )
    assert is_sweep and body == {
        "name": "s",
        "base": {"dataset": "synthetic", "epochs": 3, "lr": 0.1},
        "grid": {"activation": ["relu", "tanh"], "lr": [0.1, 0.01]},
        "metric": "final_test_loss",
    }


def test_a_structured_sweep_keeps_its_sampler_seed(tmp_path):
    text = (
        "strategy: random\nn: 2\nseed: 7\nbase: {epochs: 2}\n"
        "grid:\n  lr: {loguniform: [0.001, 0.1]}\n"
    )
    body, _ = build_submission(write(tmp_path, text), ["base.seed=3"], sweep=False)
    assert body["seed"] == 7 and body["base"] == {"epochs": 2, "seed": 3}


@pytest.mark.parametrize(
    ("text", "overrides", "sweep", "message"),
    [
        ("epochs: 0\n", [], False, "epochs"),
        ("epochs: 3\n", [], True, "grid"),
        ("grid: {lr: []}\n", [], False, "empty"),
        ("epochs: 3\n", ["nonsense"], False, "field=value"),
    ],
)
def test_bad_specs_fail_before_the_network(tmp_path, text, overrides, sweep, message):
    with pytest.raises(SpecError, match=message):
        build_submission(write(tmp_path, text), overrides, sweep=sweep)


def test_help_imports_nothing_heavy():
    code = (
        "import argparse, sys; from mlplab import cli, commands;"
        "cli.build_parser().format_help();"
        "p = argparse.ArgumentParser(); commands.register(p.add_subparsers()); p.format_help();"
        "print(sorted({'torch', 'fastapi', 'celery', 'httpx'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"

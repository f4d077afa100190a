"""`mlplab train` as a user runs it: a subprocess, a spec file, overrides, clean errors."""

import json
import os
import subprocess
import sys

import pytest

from mlplab.local import THREADS_ENV, ThreadsError, torch_threads


def mlplab(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != THREADS_ENV}
    return subprocess.run(
        [sys.executable, "-m", "mlplab.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**environ, **(env or {})},
    )


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(
        "dataset: synthetic\nhidden: [32, 16]\nepochs: 3\nbatch_size: 64\n"
        "scheduler: step\nstep_size: 2\ngamma: 0.5\nlr: 0.01\ndevice: cpu\n"
    )
    return path


def test_train_prints_epochs_and_a_run_record(spec_file, tmp_path):
    out = tmp_path / "result.json"
    proc = mlplab("train", str(spec_file), "--set", "activation=tanh", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record == json.loads(out.read_text())
    assert record["status"] == "succeeded"
    assert record["spec"]["activation"] == "tanh" and record["spec"]["hidden"] == [32, 16]
    assert [e["epoch"] for e in record["epochs"]] == [1, 2, 3]
    assert [e["lr"] for e in record["epochs"]] == pytest.approx([0.01, 0.01, 0.005])
    assert record["epochs"][-1]["train_loss"] < record["epochs"][0]["train_loss"]
    assert record["result"]["final_train_loss"] == record["epochs"][-1]["train_loss"]
    assert record["result"]["runtime_s"] > 0
    assert proc.stderr.count("epoch ") >= 3  # one metrics line per epoch


def test_same_spec_and_seed_give_the_same_losses(spec_file):
    first, second = (
        json.loads(mlplab("train", str(spec_file), "--quiet").stdout) for _ in range(2)
    )
    assert [e["train_loss"] for e in first["epochs"]] == [e["train_loss"] for e in second["epochs"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "lr=-1"], "lr"),
        (["--set", "activation=swish"], "activation"),
        (["--set", "learning_rate=0.1"], "learning_rate"),
        (["--set", "lr"], "field=value"),
    ],
)
def test_bad_specs_are_one_line_errors(spec_file, args, message):
    proc = mlplab("train", str(spec_file), *args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("mlplab train: error:") and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_dataset_files_are_a_clear_error(tmp_path):
    proc = mlplab("train", "--set", "dataset=kmnist", "--data-dir", str(tmp_path))
    assert proc.returncode == 2
    assert "mnist-5k" in proc.stderr and str(tmp_path) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_spec_file(tmp_path):
    proc = mlplab("train", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2 and "cannot read spec file" in proc.stderr


def test_threads_come_from_the_flag_then_the_env_and_match_an_in_process_run(spec_file):
    import torch

    from mlpcore.device import configure_process
    from mlpcore.spec import RunSpec, load_spec_file
    from mlpcore.train import train

    from_env = mlplab("train", str(spec_file), env={THREADS_ENV: "2"})
    assert from_env.returncode == 0 and "2 CPU threads" in from_env.stderr, from_env.stderr
    flag = mlplab("train", str(spec_file), "--threads", "1", env={THREADS_ENV: "2"})
    assert flag.returncode == 0 and "1 CPU thread" in flag.stderr, flag.stderr
    threads = torch.get_num_threads()
    configure_process(threads=1)  # what `mlplab train --threads 1` does at start-up
    try:
        here = train(RunSpec(**load_spec_file(str(spec_file))))
    finally:
        torch.set_num_threads(threads)
    # bit for bit (JSON round-trips floats exactly): the CLI trains as the library does
    fields = ("epoch", "train_loss", "test_loss", "test_accuracy", "lr")
    cli = [{k: e[k] for k in fields} for e in json.loads(flag.stdout)["epochs"]]
    assert cli == [{k: getattr(m, k) for k in fields} for m in here.epochs]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--threads", "0"], {}, "--threads: expected a whole number of at least 1"),
        (["--threads", "two"], {}, "--threads: expected a whole number of at least 1"),
        ([], {THREADS_ENV: "0"}, f"mlplab train: error: {THREADS_ENV}: expected a whole number"),
    ],
)
def test_bad_thread_counts_are_one_line_errors(spec_file, args, env, message):
    proc = mlplab("train", str(spec_file), *args, env=env)
    assert proc.returncode == 2 and message in proc.stderr and proc.stdout == ""
    assert "Traceback" not in proc.stderr


def test_torch_threads_resolution():
    assert torch_threads(None, {}) is None  # torch's own default
    assert torch_threads(None, {THREADS_ENV: " "}) is None
    assert torch_threads(None, {THREADS_ENV: "3"}) == 3
    assert torch_threads(1, {THREADS_ENV: "3"}) == 1
    with pytest.raises(ThreadsError, match=THREADS_ENV):
        torch_threads(None, {THREADS_ENV: "-1"})


def test_train_shows_val_numbers_and_warns_over_a_servers_epoch_cap(spec_file):
    few = ("--set", "train_subset=64", "--set", "epochs=201")  # quick, for all its epochs
    proc = mlplab("train", str(spec_file), *few)
    proc_short = mlplab("train", str(spec_file), "--set", "val_fraction=0.2")
    assert proc_short.returncode == 0, proc_short.stderr
    assert "val_loss" in proc_short.stderr and "warning" not in proc_short.stderr
    record = json.loads(proc_short.stdout)
    assert record["result"]["best_val_loss"] == min(e["val_loss"] for e in record["epochs"])
    assert proc.returncode == 0
    assert "warning: epochs 201 is over a server's default max_epochs (200)" in proc.stderr

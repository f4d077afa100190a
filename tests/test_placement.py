"""`mlplab up`'s worker placement: one per visible GPU, else one CPU worker (no torch)."""

import subprocess
import sys

from mlplab.placement import visible_gpus, worker_plan
from tests.support.paths import ROOT


def test_one_pinned_worker_per_visible_gpu():
    plan = worker_plan(count=None, env={"CUDA_VISIBLE_DEVICES": "2,3"})
    assert [(name, env["CUDA_VISIBLE_DEVICES"]) for name, env in plan] == [
        ("gpu0", "2"),
        ("gpu1", "3"),
    ]
    assert all("MLPLAB_TORCH_THREADS" not in env for _, env in plan)


def test_workers_override_the_count_round_robin_over_gpus():
    plan = worker_plan(count=3, env={"CUDA_VISIBLE_DEVICES": "0,1"})
    assert [(name, env["CUDA_VISIBLE_DEVICES"]) for name, env in plan] == [
        ("gpu0-1", "0"),
        ("gpu1-1", "1"),
        ("gpu0-2", "0"),
    ]


def test_without_a_gpu_cpu_workers_share_the_cores():
    [(name, env)] = worker_plan(count=None, env={"CUDA_VISIBLE_DEVICES": ""}, cores=16)
    assert name == "cpu1" and env["MLPLAB_TORCH_THREADS"] == "16"
    plan = worker_plan(count=3, env={"CUDA_VISIBLE_DEVICES": "-1"}, cores=16)
    assert [n for n, _ in plan] == ["cpu1", "cpu2", "cpu3"]
    assert {e["MLPLAB_TORCH_THREADS"] for _, e in plan} == {"5"}
    kept = worker_plan(count=2, env={"CUDA_VISIBLE_DEVICES": "", "MLPLAB_TORCH_THREADS": "1"})
    assert {e["MLPLAB_TORCH_THREADS"] for _, e in kept} == {"1"}


def test_device_cpu_means_cpu_workers_even_with_gpus():
    [(name, env)] = worker_plan(
        count=None, env={"CUDA_VISIBLE_DEVICES": "0", "MLPLAB_DEVICE": "cpu"}, cores=4
    )
    assert name == "cpu1" and "CUDA_VISIBLE_DEVICES" in env  # inherited, unused


def test_visible_gpus_stop_at_the_first_hidden_entry():
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "1, 0,-1,2"}) == ["1", "0"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "GPU-5a1b"}) == ["GPU-5a1b"]


def test_without_cuda_visible_devices_nvidia_smi_counts(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-a)'\n"
        "echo 'GPU 1: NVIDIA H200 (UUID: GPU-b)'\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert visible_gpus({}) == ["0", "1"]
    assert [n for n, _ in worker_plan(count=None, env={})] == ["gpu0", "gpu1"]
    monkeypatch.setenv("PATH", str(tmp_path / "none"))
    assert visible_gpus({}) == [] and worker_plan(count=None, env={})[0][0] == "cpu1"


def test_the_launcher_never_imports_torch():
    code = (
        "import sys; from mlplab import cli, placement; "
        "placement.worker_plan(count=None, env={}); "
        "assert 'torch' not in sys.modules and 'fastapi' not in sys.modules"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_up_turns_auth_on_unless_no_auth_which_it_announces_loudly(caplog):
    import logging

    from mlplab.cli import build_parser
    from mlplab.serve import child_env
    from mlplab.users_cmd import auth_notice

    on = build_parser().parse_args(["up"])
    off = build_parser().parse_args(["up", "--no-auth"])
    assert child_env(on)["MLPLAB_AUTH"] == "true" and child_env(off)["MLPLAB_AUTH"] == "false"
    assert on.workers is None  # one per GPU by default
    log = logging.getLogger("test.serve")
    with caplog.at_level(logging.INFO, logger="test.serve"):
        auth_notice(no_auth=True, redis_url="redis://unused", prefix="x", log=log)
    [record] = caplog.records
    assert record.levelno == logging.WARNING and "AUTH IS OFF" in record.getMessage()


def test_up_gives_the_api_and_every_worker_one_artifact_dir(monkeypatch, tmp_path):
    from mlplab.cli import build_parser
    from mlplab.serve import child_env

    args = build_parser().parse_args(["up"])
    args.redis_url = "redis://unused"
    monkeypatch.delenv("MLPLAB_ARTIFACT_DIR", raising=False)
    monkeypatch.setenv("MLPLAB_STATE_DIR", str(tmp_path))
    assert child_env(args)["MLPLAB_ARTIFACT_DIR"] == str(tmp_path / "artifacts")
    shared = str(tmp_path / "shared-mount")  # one named outright is passed on as it is
    monkeypatch.setenv("MLPLAB_ARTIFACT_DIR", shared)
    assert child_env(args)["MLPLAB_ARTIFACT_DIR"] == shared

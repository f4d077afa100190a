"""benchmarks/gpu_check.py --device cpu --quick runs (as on a lent GPU box: without pydantic,
yaml or torchvision) and prints its table; its stand-in RunSpec is the real one's shape; and
benchmarks/compile_step.py --quick times both of its sides; with the server's packages it runs
the seed study through `mlplab up`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mlpcore.spec import RunSpec

ROOT = Path(__file__).resolve().parent.parent
# as on the device: these imports fail, so benchmarks/_standalone.py must stand in
BLOCKED = """
import runpy, sys
sys.modules.update(pydantic=None, yaml=None, torchvision=None, pydantic_settings=None)
sys.argv = ["gpu_check.py", "--device", "cpu", "--quick"]
runpy.run_path("benchmarks/gpu_check.py", run_name="__main__")
"""


def test_gpu_check_quick_runs_on_cpu_with_only_torch() -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCKED], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "mlpcore.spec stood in" in out
    for row in (
        "matmul peak",
        "cuda: no host sync per batch",
        "36-config grid, one fused group",
        "36-config grid, one by one",
        "checkpoint: every epoch",
        "seed study: best",
    ):
        assert row in out, out
    assert "12 runs x 1 epochs" in out and "FAIL" not in out
    assert "seed study through `mlplab up`" in out and "skipped  no pydantic" in out, out


def test_gpu_check_quick_runs_the_seed_study_through_mlplab_up() -> None:
    """With the server's packages (as device_prep.py carries them to a GPU box): `mlplab up`
    with its own redis-server, the staged study submitted, followed and its winner read."""
    done = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", "--device", "cpu", "--quick", "--only",
         "served"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "12 succeeded, synthetic (quick)" in out, out
    assert "seed study through `mlplab up`: best" in out and "final_train_loss" in out, out
    assert "FAIL" not in out and "skipped" not in out, out


def test_the_stand_in_runspec_has_the_real_fields_and_defaults() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import _standalone
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    shim, real = _standalone.RunSpec(), RunSpec()
    assert shim.model_dump() == real.model_dump()
    assert shim.fusion_key() == real.fusion_key()
    changed = {"lr": 0.01, "hidden": [8], "val_fraction": 0.1}
    assert (
        shim.model_copy(update=changed).fusion_key() == real.model_copy(update=changed).fusion_key()
    )
    assert _standalone.DATASETS == __import__("mlpcore.spec").spec.DATASETS


def test_compile_step_quick_times_both_sides() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/compile_step.py", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for models in ("1 models", "4 models"):
        assert models in done.stdout, done.stdout
    assert "eager ms" in done.stdout

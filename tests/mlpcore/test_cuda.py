"""The CUDA path: no host sync per batch, CUDA losses equal CPU losses to float32 rounding, the
memory model bounds the real peak. Skipped without CUDA; benchmarks/gpu_check.py runs the same
checks (benchmarks/cuda_checks.py) on a box with only torch."""

import pytest
import torch

from benchmarks.cuda_checks import CHECKS

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
def test_cuda(check):
    result = check(torch.device("cuda:0"))
    assert result.ok, f"{result.name}: {result.detail}"

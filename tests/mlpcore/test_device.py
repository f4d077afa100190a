"""Device names and the process set-up: 'cuda' and 'cuda:0' are one device (no GPU needed)."""

import pytest
import torch

from mlpcore.data import load_dataset
from mlpcore.device import canonical_device, resolve_device
from mlpcore.errors import DeviceError
from mlpcore.fused import train_group
from mlpcore.spec import RunSpec
from tests.support.paths import python_stdout


@pytest.mark.parametrize(
    ("name", "index", "expected"),
    [
        ("cuda", 0, "cuda:0"),
        (torch.device("cuda"), 0, "cuda:0"),
        ("cuda", 1, "cuda:1"),  # a bare 'cuda' means the current device
        ("cuda:0", 1, "cuda:0"),
        ("cuda:2", 0, "cuda:2"),
        ("mps", 0, "mps:0"),
        ("cpu", 0, "cpu"),
        (torch.device("cpu"), 3, "cpu"),
    ],
)
def test_canonical_device_names_the_index(name, index, expected):
    device = canonical_device(name, cuda_index=index)
    assert isinstance(device, torch.device) and device == torch.device(expected)


def test_a_bare_and_an_indexed_name_compare_equal_once_canonical():
    assert torch.device("cuda") != torch.device("cuda:0")  # why this module exists
    assert canonical_device("cuda") == canonical_device("cuda:0")


def test_resolve_device_on_this_machine():
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no such CUDA device"):
            resolve_device("cuda")
    else:
        assert resolve_device("cuda") == resolve_device("cuda:0") == torch.device("cuda:0")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_and_cuda0_share_the_loaded_data_and_train():
    data = load_dataset("synthetic", device="cuda")
    assert load_dataset("synthetic", device="cuda:0") is data
    spec = RunSpec(dataset="synthetic", hidden=[8], epochs=1, device="cuda")
    (result,) = train_group([spec], data=data)  # data on cuda:0, spec says cuda: one device
    assert result.status == "succeeded" and result.device == "cuda:0"


def test_configure_process_flushes_denormals_and_sets_threads():
    # a fresh process: the flag is process state, and this one has it set already
    code = (
        "import torch; from mlpcore.device import configure_process;"
        "tiny = lambda: torch.tensor([1e-40]).mul(1.0).item();"
        "before = tiny(); configure_process(threads=1);"
        "print(before > 0, tiny() == 0, torch.get_num_threads())"
    )
    assert python_stdout(code).split() == ["True", "True", "1"]

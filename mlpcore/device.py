"""Devices and the process-wide torch set-up that training expects."""

from __future__ import annotations

import torch

from mlpcore.errors import DeviceError

# Accelerators whose tensors always report an index: torch.device("cuda") != "cuda:0".
_INDEXED = ("cuda", "mps")


def canonical_device(device: str | torch.device, *, cuda_index: int = 0) -> torch.device:
    """torch.device(device), with the index an indexless 'cuda' or 'mps' means filled in
    ('cuda' -> 'cuda:<cuda_index>', 'mps' -> 'mps:0'), so that devices compare as their
    tensors' `.device` does. Touches no accelerator."""
    device = torch.device(device)
    if device.type in _INDEXED and device.index is None:
        return torch.device(device.type, cuda_index if device.type == "cuda" else 0)
    return device


def resolve_device(name: str | torch.device) -> torch.device:
    """The device a name means, indexed ('cuda' -> 'cuda:0'); 'auto' is cuda, then mps, then
    cpu; an absent cuda or mps raises DeviceError."""
    if name == "auto":
        name = (
            "cuda"
            if torch.cuda.is_available()
            else ("mps" if torch.backends.mps.is_available() else "cpu")
        )
    device = canonical_device(name, cuda_index=current_cuda_index())
    if device.type == "cuda" and not (
        torch.cuda.is_available() and device.index < torch.cuda.device_count()
    ):
        raise DeviceError(f"device {name!r} asked for, but this machine has no such CUDA device")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError("device 'mps' asked for, but MPS is not available here")
    return device


def configure_process(*, threads: int | None = None) -> None:
    """Once at process start-up, before any training thread starts: flush denormals, and use
    `threads` CPU threads when given (else torch's default).

    Adam moments of inputs that are always 0 (blank border pixels) decay through the denormal
    range, where x86 arithmetic is many times slower; flushing only changes values below
    1.2e-38. The flag covers the calling thread and the threads it starts from then on, so
    call it from the main thread before torch's thread pools exist.
    """
    torch.set_flush_denormal(True)
    set_threads(threads)


def set_threads(threads: int | None) -> None:
    """Use `threads` CPU threads (None: leave torch's choice); oversubscribed cores make
    torch many times slower."""
    if threads and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def current_cuda_index() -> int:
    """The index a bare 'cuda' means: the current device once CUDA is up, else 0 (asking
    would initialise CUDA)."""
    return torch.cuda.current_device() if torch.cuda.is_initialized() else 0

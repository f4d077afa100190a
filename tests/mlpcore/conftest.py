"""Shared fixtures of the mlpcore tests."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from threads, and on a loaded 2-core box each parallel region
    can wait a scheduler tick for a descheduled worker thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

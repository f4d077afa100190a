"""Fixtures of the worker tests."""

import pytest

from tests.support.training import worker_settings


@pytest.fixture
def settings(tmp_path):
    """WorkerSettings on the unit-test DB with data and checkpoints in tmp_path."""
    return worker_settings(tmp_path)

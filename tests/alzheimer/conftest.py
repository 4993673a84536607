"""Fixtures for the torchscope.alzheimer tests."""

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread_per_module():
    """Every test module here on one torch thread (module scope, unlike tests/conftest.py's
    ``one_torch_thread``, because test_train.py trains a module-scoped model): on a shared 2-core
    machine torch's two OpenMP threads spin against other processes (~30x slower)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

"""Kernel estimation is a long chain of small tensor operations: on a busy machine, torch's
thread pool costs more than it gains there, so these tests run torch on one thread (and put
the previous setting back after each test)."""

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

"""Fixtures for the torchscope.alzheimer tests."""

import pytest
from alz_helpers import tiny_cohort


@pytest.fixture
def tiny():
    """24 subjects of 32 x 40 slices (see alz_helpers.tiny_cohort)."""
    return tiny_cohort()


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Training tests on one thread: on a shared 2-core machine, torch's default of 2 OpenMP
    threads spin against other processes and runs ~30x slower. Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

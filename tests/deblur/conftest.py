"""Kernel estimation is a long chain of small tensor operations: these tests run torch on one
thread (the shared fixture of tests/conftest.py)."""

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here runs torch on one thread (see tests/conftest.py)."""

"""Shared fixtures: the ``device`` fixture runs a test on the CPU and on every GPU present."""

import os

import numpy as np
import pytest

# Tests must not inherit a device choice from the developer's shell.
os.environ.pop("TORCHSCOPE_DEVICE", None)
os.environ.pop("TORCHSCOPE_OOM", None)


def _devices():
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


@pytest.fixture(params=_devices())
def device(request):
    """Every device torch can use here: ``"cpu"``, plus ``"cuda"``/``"mps"`` when present."""
    return request.param


@pytest.fixture(scope="session")
def repo_script():
    """A loader: ``repo_script("train_x")`` imports ``scripts/train_x.py`` as a fresh module."""
    import importlib.util
    from pathlib import Path

    def load(name):
        path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def rng():
    """A fresh, seeded random generator per test."""
    return np.random.default_rng(12345)


@pytest.fixture
def one_torch_thread():
    """Run torch on one thread for the test, then restore the setting.

    Long chains of tiny tensor operations (kernel estimation, small reconstructions) run
    fastest on one thread: on a busy 2-core machine torch's thread pool costs more than it gains.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

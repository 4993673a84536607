"""Device choice, conversion, dtype policy and out-of-memory handling of torchscope.backend."""

import warnings

import numpy as np
import pytest
import torch

from torchscope import backend
from torchscope.backend import DeviceError, DeviceMemoryError


def test_auto_device_is_best_available(monkeypatch):
    monkeypatch.delenv("TORCHSCOPE_DEVICE", raising=False)
    dev = backend.get_device(None)
    if torch.cuda.is_available():
        assert dev.type == "cuda"
    elif torch.backends.mps.is_available():
        assert dev.type == "mps"
    else:
        assert dev == torch.device("cpu")
    assert backend.get_device("auto") == dev
    assert backend.device_name(None) == backend.available_devices()[0]


def test_auto_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.delenv("TORCHSCOPE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert backend.get_device().type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert backend.get_device() == torch.device("cuda", 0)


def test_environment_variable_overrides_auto(monkeypatch):
    monkeypatch.setenv("TORCHSCOPE_DEVICE", "cpu")
    assert backend.get_device(None) == torch.device("cpu")
    monkeypatch.setenv("TORCHSCOPE_DEVICE", "tpu")
    with pytest.raises(DeviceError, match="TORCHSCOPE_DEVICE"):
        backend.get_device(None)


def test_explicit_device_wins_over_environment(monkeypatch):
    monkeypatch.setenv("TORCHSCOPE_DEVICE", "no-such-device")
    assert backend.get_device("cpu") == torch.device("cpu")
    assert backend.get_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("name", ["tpu", "gpu0", "", "xla"])
def test_unknown_device_is_a_clear_error(name):
    with pytest.raises(DeviceError, match="device="):
        backend.get_device(name)


def test_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="device must be"):
        backend.get_device(3)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_cuda_is_a_clear_error():
    with pytest.raises(DeviceError, match="no usable CUDA device"):
        backend.get_device("cuda")
    with pytest.raises(DeviceError, match="CUDA"):
        backend.get_device("cuda:3")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_index_out_of_range():
    with pytest.raises(DeviceError, match="only"):
        backend.get_device(f"cuda:{torch.cuda.device_count()}")


def test_available_devices_ends_with_cpu():
    names = backend.available_devices()
    assert names[-1] == "cpu"
    for name in names:
        assert backend.get_device(name).type in {"cpu", "cuda", "mps"}


@pytest.mark.parametrize(
    "dtype, expected",
    [
        (np.float64, torch.float64),
        (np.float32, torch.float32),
        (np.float16, torch.float32),
        (np.uint8, torch.float32),
        (np.int64, torch.float32),
        (bool, torch.float32),
    ],
)
def test_dtype_policy(dtype, expected):
    assert backend.compute_dtype(dtype, "cpu") == expected


@pytest.mark.parametrize(
    "dtype", [bool, np.uint8, np.uint16, np.int16, np.int32, np.uint32, np.float32, np.float64]
)
def test_round_trip_keeps_values(dtype, device, rng):
    a = (rng.random((5, 7)) * 200).astype(dtype)
    t = backend.to_tensor(a, device=device)
    assert t.device.type == backend.get_device(device).type
    np.testing.assert_array_equal(backend.to_numpy(t), a)
    back = backend.to_numpy(t, dtype)
    assert back.dtype == np.dtype(dtype)


def test_to_tensor_handles_views_and_byte_order(rng):
    a = rng.random((6, 8))
    view = a[::2, ::-1]
    np.testing.assert_array_equal(backend.to_numpy(backend.to_tensor(view, device="cpu")), view)
    swapped = a.astype(">f8")
    np.testing.assert_array_equal(backend.to_numpy(backend.to_tensor(swapped, device="cpu")), a)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_round_trip(dtype, device, rng):
    a = (rng.random((4, 5)) + 1j * rng.random((4, 5))).astype(dtype)
    t = backend.to_tensor(a, device=device)
    assert t.is_complex()
    np.testing.assert_array_equal(backend.to_numpy(t), a)


def test_to_tensor_rejects_what_torch_cannot_hold():
    with pytest.raises(TypeError, match="complex256|clongdouble"):
        backend.to_tensor(np.zeros(3, np.clongdouble))
    with pytest.raises(TypeError, match="dtype"):
        backend.to_tensor(np.array(["a", "b"]))


def test_to_numpy_copy_detaches_from_the_tensor():
    t = torch.zeros(3)
    shared, own = backend.to_numpy(t), backend.to_numpy(t, copy=True)
    t += 1  # an iterative solver updating its state in place
    np.testing.assert_array_equal(shared, [1, 1, 1])  # the documented view
    np.testing.assert_array_equal(own, [0, 0, 0])


# ----------------------------------------------------------------------------- out of memory
def _fake_gpu_function():
    """A function that behaves like a GPU computation running out of memory."""
    calls = []

    @backend.on_device
    def compute(x, *, device):
        calls.append(device)
        if device.type != "cpu":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return x * 2

    return compute, calls


@pytest.fixture
def pretend_gpu(monkeypatch):
    """Make backend.get_device hand out a non-CPU device for 'cuda' (no kernel runs on it)."""
    from torchscope.backend import _memory

    real = backend.get_device

    def fake(device=None):
        if device == "cuda":
            return torch.device("cuda", 0)
        return real(device)

    monkeypatch.setattr(_memory, "get_device", fake)
    monkeypatch.setattr(_memory, "_release_cache", lambda dev: None)
    backend.set_oom_policy(None)
    yield
    backend.set_oom_policy(None)


def test_oom_raises_clear_error(pretend_gpu):
    compute, calls = _fake_gpu_function()
    with pytest.raises(DeviceMemoryError, match=r"ran out of memory on cuda:0.*device='cpu'"):
        compute(3, device="cuda")
    assert [d.type for d in calls] == ["cuda"]
    assert issubclass(DeviceMemoryError, MemoryError)


def test_oom_retries_on_cpu_when_asked(pretend_gpu):
    compute, calls = _fake_gpu_function()
    backend.set_oom_policy("cpu")
    with pytest.warns(ResourceWarning, match="retrying on the CPU"):
        assert compute(3, device="cuda") == 6
    assert [d.type for d in calls] == ["cuda", "cpu"]


def test_oom_policy_from_environment(pretend_gpu, monkeypatch):
    compute, _calls = _fake_gpu_function()
    monkeypatch.setenv("TORCHSCOPE_OOM", "cpu")
    with pytest.warns(ResourceWarning):
        assert compute(1, device="cuda") == 2
    monkeypatch.setenv("TORCHSCOPE_OOM", "sometimes")
    with pytest.raises(ValueError, match="TORCHSCOPE_OOM"):
        backend.get_oom_policy()


def test_other_errors_pass_through(pretend_gpu):
    @backend.on_device
    def broken(*, device):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        broken(device="cuda")


def test_set_oom_policy_rejects_unknown():
    with pytest.raises(ValueError, match="policy='later'"):
        backend.set_oom_policy("later")


def test_cpu_oom_is_not_retried():
    calls = []

    @backend.on_device
    def compute(*, device):
        calls.append(device)
        raise torch.OutOfMemoryError("out of memory")

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(torch.OutOfMemoryError):
            compute(device="cpu")
    assert len(calls) == 1


def test_read_only_input_converts_without_warning(rng):
    a = rng.random((4, 5))
    a.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = backend.to_tensor(a, device="cpu")
    np.testing.assert_array_equal(backend.to_numpy(t), a)
    assert not a.flags.writeable

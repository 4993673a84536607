"""GPU out-of-memory handling: a clear message, or a retry on the CPU."""

import functools
import os
import warnings

from torchscope.backend._device import get_device

ENV_VAR = "TORCHSCOPE_OOM"
_POLICIES = ("raise", "cpu")
_policy = None


class DeviceMemoryError(MemoryError):
    """A computation did not fit into the memory of its device."""


def set_oom_policy(policy):
    """Choose what happens when a computation runs out of GPU memory.

    Parameters
    ----------
    policy : {"raise", "cpu"} or None
        ``"raise"``: raise :class:`DeviceMemoryError` with a clear message (the default).
        ``"cpu"``: warn and run the same computation again on the CPU.
        ``None``: back to the default, or to the environment variable ``TORCHSCOPE_OOM``.

    Raises
    ------
    ValueError
        If ``policy`` is none of these.
    """
    global _policy
    if policy is not None and policy not in _POLICIES:
        raise ValueError(f"policy={policy!r}; accepted: {_POLICIES} or None.")
    _policy = policy


def get_oom_policy():
    """The policy in force: the one set by :func:`set_oom_policy`, else ``TORCHSCOPE_OOM``.

    Returns
    -------
    {"raise", "cpu"}
        ``"raise"`` when neither was set (an empty ``TORCHSCOPE_OOM`` counts as unset).

    Raises
    ------
    ValueError
        If no policy was set and ``TORCHSCOPE_OOM`` holds anything other than ``raise`` or
        ``cpu`` (in any case, surrounding spaces ignored).
    """
    if _policy is not None:
        return _policy
    env = os.environ.get(ENV_VAR, "raise").strip().lower() or "raise"
    if env not in _POLICIES:
        raise ValueError(f"environment variable {ENV_VAR}={env!r}; accepted: {_POLICIES}.")
    return env


def _is_oom(exc):
    import torch

    # torch.OutOfMemoryError exists from torch 2.5; torch.cuda.OutOfMemoryError before
    if isinstance(exc, getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def on_device(func):
    """Decorate a function that takes ``device=``: resolve it, and handle out-of-memory errors.

    The wrapped function receives a ``torch.device`` as ``device``. If it runs out of memory on
    a GPU, it raises :class:`DeviceMemoryError` naming the function, the device and the ways
    out, or, with the policy ``"cpu"``, warns and runs once more on the CPU.

    Parameters
    ----------
    func : callable
        A function with a keyword argument ``device``.

    Returns
    -------
    callable
        The wrapper, with ``func``'s name and docstring and ``device=None`` keyword-only.
        Besides what ``func`` raises, calling it raises :class:`DeviceMemoryError` (a
        ``MemoryError``) when ``func`` runs out of GPU memory under the policy ``"raise"``
        (under ``"cpu"`` it warns with a ``ResourceWarning`` and retries), and the
        ``DeviceError`` (a ``ValueError``) or ``TypeError`` of :func:`get_device` for a bad
        ``device``.
    """

    @functools.wraps(func)
    def wrapper(*args, device=None, **kwargs):
        dev = get_device(device)
        try:
            return func(*args, device=dev, **kwargs)
        except Exception as exc:
            if dev.type == "cpu" or not _is_oom(exc):
                raise
            _release_cache(dev)
            name = getattr(func, "__qualname__", "the computation")
            if get_oom_policy() == "cpu":
                warnings.warn(
                    f"{name} ran out of memory on {dev}; retrying on the CPU.",
                    ResourceWarning,
                    stacklevel=2,
                )
                return func(*args, device=get_device("cpu"), **kwargs)
            raise DeviceMemoryError(
                f"{name} ran out of memory on {dev}. Pass device='cpu', use smaller input "
                f"(or a dask array, which is processed chunk by chunk), or set "
                f"torchscope.backend.set_oom_policy('cpu') / {ENV_VAR}=cpu to retry on the "
                f"CPU automatically."
            ) from exc

    return wrapper


def _release_cache(dev):
    import torch

    if dev.type == "cuda":
        torch.cuda.empty_cache()
    elif dev.type == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()

"""Device choice: ``None`` means auto (CUDA, then MPS, then CPU); ``TORCHSCOPE_DEVICE`` overrides."""

import os

ENV_VAR = "TORCHSCOPE_DEVICE"
_KINDS = ("cpu", "cuda", "mps")


class DeviceError(ValueError):
    """An unknown or unavailable device was asked for."""


def _mps_available(torch):
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_devices():
    """Names of the devices torch can use on this machine, best first.

    Returns
    -------
    list of str
        For example ``["cuda:0", "cuda:1", "cpu"]`` or ``["cpu"]``.
    """
    import torch

    names = []
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available(torch):
        names.append("mps")
    names.append("cpu")
    return names


def get_device(device=None):
    """Resolve a device request to a ``torch.device``.

    Parameters
    ----------
    device : None, str or torch.device
        ``None`` or ``"auto"``: the environment variable ``TORCHSCOPE_DEVICE`` if it is set,
        otherwise the best device present (CUDA, then Apple MPS, then CPU). Otherwise a name
        such as ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"``, or a ``torch.device``.

    Returns
    -------
    torch.device
        With its index for CUDA (``cuda:0``, not ``cuda``).

    Raises
    ------
    DeviceError
        If the name is not a device kind torch knows here, or that device is not available
        (also for a bad ``TORCHSCOPE_DEVICE``, naming the variable). A subclass of
        ``ValueError``.
    TypeError
        If ``device`` is neither None, a string nor a ``torch.device``.
    """
    import torch

    source = "device"
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        env = os.environ.get(ENV_VAR, "").strip()
        if env and env.lower() != "auto":
            device, source = env, f"environment variable {ENV_VAR}"
        else:
            if torch.cuda.is_available():
                return torch.device("cuda", torch.cuda.current_device())
            if _mps_available(torch):
                return torch.device("mps")
            return torch.device("cpu")

    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device.strip().lower())
        except (RuntimeError, ValueError):
            raise DeviceError(
                f"{source}={device!r} is not a device name; use None/'auto', "
                f"one of {_KINDS} or an indexed one such as 'cuda:1'."
            ) from None
    else:
        raise TypeError(
            f"{source} must be None, a string or a torch.device, got {type(device).__name__}."
        )

    if dev.type not in _KINDS:
        raise DeviceError(
            f"{source}={device!r}: torchscope runs on {_KINDS}, not on {dev.type!r}."
        )
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"{source}={device!r} asks for CUDA, but this torch build or machine has no "
                f"usable CUDA device; available: {available_devices()}."
            )
        index = torch.cuda.current_device() if dev.index is None else dev.index
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"{source}={device!r}: there are only {torch.cuda.device_count()} CUDA "
                f"device(s); available: {available_devices()}."
            )
        return torch.device("cuda", index)
    if dev.type == "mps" and not _mps_available(torch):
        raise DeviceError(
            f"{source}={device!r} asks for Apple MPS, which is not available here; "
            f"available: {available_devices()}."
        )
    return dev


def device_name(device):
    """A short, stable string for a device (for metadata and messages): ``"cpu"``, ``"cuda:0"``.

    Parameters
    ----------
    device : None, str or torch.device
        Any request :func:`get_device` accepts; None or ``"auto"`` names the device it picks.

    Returns
    -------
    str
        ``"cpu"``, ``"mps"``, or ``"cuda:<index>"`` (always with the index, also for
        ``"cuda"``).

    Raises
    ------
    DeviceError
        If the device is unknown or not available (a subclass of ``ValueError``).
    TypeError
        If ``device`` is neither None, a string nor a ``torch.device``.
    """
    dev = get_device(device)
    if dev.type == "cuda":
        return f"cuda:{dev.index}"
    return dev.type

"""Arrays in, tensors inside, arrays out; and the dtype policy."""

import warnings

import numpy as np

from torchscope.backend._device import get_device


def as_array(value, name):
    """``np.asarray(value)``, with an error that names the argument for a ragged sequence.

    Numpy's own error for a ragged nested sequence (rows of different lengths) names no
    argument; this one does.

    Parameters
    ----------
    value : array_like
        Anything ``np.asarray`` accepts.
    name : str
        The argument's name, for the error message.

    Returns
    -------
    numpy.ndarray
        ``np.asarray(value)``: no copy when ``value`` is already an array.

    Raises
    ------
    ValueError
        If ``value`` is a ragged nested sequence (naming ``name``), or for any other value
        that ``np.asarray`` refuses with a ``ValueError`` (numpy's own message).
    """
    try:
        return np.asarray(value)
    except ValueError as exc:
        if "inhomogeneous" not in str(exc):
            raise
        raise ValueError(f"{name} is not a rectangular array: its rows have different lengths "
                         "(a ragged list?)") from None


def is_double(dtype):
    """Whether ``dtype`` is float64 or complex128, in either byte order.

    A big-endian ``>f8``, from a file written elsewhere, is not ``== np.float64``; it is double
    here all the same.

    Parameters
    ----------
    dtype : numpy dtype or anything ``np.dtype`` accepts
        The dtype to test (``">f8"``, ``np.complex128``, an array's ``.dtype``...).

    Returns
    -------
    bool
        True for 8-byte floats and 16-byte complex numbers, False for every other dtype.

    Raises
    ------
    TypeError
        If ``dtype`` is not something ``np.dtype`` understands.
    """
    d = np.dtype(dtype)
    return (d.kind == "f" and d.itemsize == 8) or (d.kind == "c" and d.itemsize == 16)


def compute_dtype(dtype, device=None):
    """The floating dtype torchscope computes in for input of ``dtype`` on ``device``.

    The policy: float64 input computes in float64 (except on Apple MPS, which has no float64);
    every other dtype (bool, integers, float16, float32) computes in float32.

    Parameters
    ----------
    dtype : numpy dtype or anything ``np.dtype`` accepts
        The dtype of the input.
    device : None, str or torch.device
        Where the computation runs; see :func:`torchscope.backend.get_device`.

    Returns
    -------
    torch.dtype
        ``torch.float64`` or ``torch.float32``.

    Raises
    ------
    TypeError
        If ``dtype`` is not something ``np.dtype`` understands, or ``device`` is neither None, a
        string nor a ``torch.device``.
    DeviceError
        If ``device`` is unknown or not available (a subclass of ``ValueError``).
    """
    import torch

    dev = get_device(device)
    if np.dtype(dtype).kind == "f" and is_double(dtype) and dev.type != "mps":
        return torch.float64
    return torch.float32


def to_tensor(array, *, device=None, dtype=None):
    """An array-like as a tensor on ``device``.

    On the CPU the tensor shares memory with a contiguous numpy input (no copy): callers must
    treat it as read-only, and torchscope never writes into it.

    Parameters
    ----------
    array : array_like
        A numpy array, anything ``np.asarray`` accepts, or a tensor.
    device : None, str or torch.device
        See :func:`torchscope.backend.get_device`.
    dtype : torch.dtype, optional
        Convert to this dtype; default: keep the array's dtype (bool, integer, float or
        complex; float16 becomes float32, uint16/uint32 widen to a signed type that holds
        them).

    Returns
    -------
    torch.Tensor
        Of the array's shape, on ``device``, in ``dtype`` or the array's own dtype (as above).
        A tensor input is moved and converted as ``Tensor.to`` does.

    Raises
    ------
    TypeError
        If the array's dtype is not bool, integer, float, complex64 or complex128 (strings,
        objects, datetimes, complex256), or ``device`` is neither None, a string nor a
        ``torch.device``.
    ValueError
        If a uint64 array holds values above ``2**63 - 1``, which no torch integer type holds.
    DeviceError
        If ``device`` is unknown or not available (a subclass of ``ValueError``).
    """
    import torch

    dev = get_device(device)
    if isinstance(array, torch.Tensor):
        return array.to(device=dev, dtype=dtype)
    a = np.asarray(array)
    if a.dtype.kind not in "biufc" or (a.dtype.kind == "c" and a.dtype.itemsize > 16):
        raise TypeError(
            f"array has dtype {a.dtype}; torchscope takes bool, integer, float or complex64/"
            "complex128 arrays."
        )
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if a.dtype == np.float16:
        a = a.astype(np.float32)
    elif a.dtype == np.uint16:
        a = a.astype(np.int32)
    elif a.dtype in (np.uint32, np.uint64):
        if a.dtype == np.uint64 and a.size and a.max() > np.iinfo(np.int64).max:
            raise ValueError(
                "array is uint64 with values above 2**63 - 1, which torch cannot hold; "
                "convert it to float64 (or a smaller integer type) first."
            )
        a = a.astype(np.int64)
    a = np.ascontiguousarray(a).reshape(a.shape)  # (ascontiguousarray makes 0-d arrays 1-d)
    if a.flags.writeable:
        t = torch.from_numpy(a)
    else:
        # read-only input (a memmap, np.broadcast_to): torch warns that writing to the tensor
        # would be undefined; torchscope never writes into its inputs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            t = torch.from_numpy(a)
    return t.to(device=dev, dtype=dtype)


def to_numpy(tensor, dtype=None, *, copy=False):
    """A numpy array from a tensor on any device.

    A tensor on another device is copied to host memory; a CPU tensor's array *shares* its
    memory (no copy), as ``Tensor.numpy`` does, unless ``copy=True`` or a cast to ``dtype``
    makes a new array. Conjugate and negative views are resolved, and bfloat16 (which numpy
    lacks) becomes float32.

    Parameters
    ----------
    tensor : torch.Tensor
        On any device, of any shape and dtype numpy can hold (bool, integer, float, complex;
        bfloat16 too). A tensor that requires grad is detached.
    dtype : numpy dtype, optional
        Cast to this dtype on the host.
    copy : bool
        Always return an array of its own: for a tensor that is still updated in place (an
        iterative solver's state handed out in a snapshot).

    Returns
    -------
    numpy.ndarray
        Of the tensor's shape, in ``dtype`` if given, else in the tensor's dtype (bfloat16 as
        float32).

    Raises
    ------
    TypeError
        If ``dtype`` is not something ``np.dtype`` understands.
    """
    import torch

    t = tensor.detach().resolve_conj().resolve_neg()
    if t.dtype == torch.bfloat16:
        t = t.float()
    on_host = t.device.type == "cpu"
    a = t.cpu().numpy()
    if dtype is not None and a.dtype != np.dtype(dtype):
        return a.astype(dtype)
    return a.copy() if copy and on_host else a

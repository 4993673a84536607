"""The shared PyTorch backend of napari-torchscope.

Every science module gets its devices, tensors and dtypes from here and nowhere else.

Devices
    :func:`get_device` turns ``device=None`` ("auto": CUDA, then Apple MPS, then CPU; the
    environment variable ``TORCHSCOPE_DEVICE`` overrides) or a name into a ``torch.device``.
    :func:`available_devices` lists what this machine offers.
Arrays and tensors
    :func:`to_tensor` and :func:`to_numpy` move data across (bool, integer, float and
    complex64/complex128 arrays; ``to_numpy(..., copy=True)`` for a tensor still updated in
    place); :func:`compute_dtype` is the dtype
    policy (float64 stays float64 where the device supports it, everything else computes in
    float32).
Blocks
    :func:`compute_blocks` computes a lazy dask array block by block as a generator of
    progress, so long work can show progress and be stopped between blocks.
Registration
    :func:`register_subpixel`: sub-pixel translation between many image pairs at once
    (Guizar-Sicairos' DFT upsampling by matrix products, scikit-image's algorithm) on the device;
    its tensor-level cores :func:`register_spectra` (from the two images' spectra) and
    :func:`register_cross_power` (from their cross-power spectrum), for callers that hold
    spectra on the device already.
Memory
    :func:`on_device` runs a computation and turns a GPU out-of-memory error into a
    :class:`DeviceMemoryError` with a clear message, or retries on the CPU when the policy says so
    (:func:`set_oom_policy`, or ``TORCHSCOPE_OOM=cpu``).
FFT and blur kernels
    :func:`fft_convolve`, :func:`psf2otf` / :func:`otf2psf` (kernel to transfer function and
    back), :func:`fft_size`, :func:`pad_periodic`, :func:`shift_ramps` (the Fourier phase
    ramps of sub-pixel translations).
Weights
    :func:`read_weights` (metadata and tensors of a ``.safetensors`` file),
    :func:`build_network` (the network its metadata describes) and :func:`load_weights` (into
    that network), with errors that name the file.
Packages
    :func:`lazy_namespace`: a science module's public names load their private file on first
    access, so importing the module imports neither its files nor torch.
Argument checks
    :func:`check_int`, :func:`check_real` and :func:`check_choice` validate scalar options and
    raise with a message that names the argument, what was given and what is accepted.

Nothing here imports torch at import time.
"""

from torchscope.backend._blocks import compute_blocks
from torchscope.backend._checks import check_choice, check_int, check_real, check_rng
from torchscope.backend._convert import as_array, compute_dtype, is_double, to_numpy, to_tensor
from torchscope.backend._device import (
    DeviceError,
    available_devices,
    device_name,
    get_device,
)
from torchscope.backend._fft import (
    fft_convolve,
    fft_size,
    otf2psf,
    pad_periodic,
    psf2otf,
    shift_ramps,
)
from torchscope.backend._lazy import lazy_namespace
from torchscope.backend._memory import (
    DeviceMemoryError,
    get_oom_policy,
    on_device,
    set_oom_policy,
)
from torchscope.backend._registration import (
    register_cross_power,
    register_spectra,
    register_subpixel,
)
from torchscope.backend._weights import build_network, load_weights, read_weights

__all__ = [
    "DeviceError",
    "DeviceMemoryError",
    "as_array",
    "available_devices",
    "build_network",
    "check_choice",
    "check_int",
    "check_real",
    "check_rng",
    "compute_blocks",
    "compute_dtype",
    "device_name",
    "fft_convolve",
    "fft_size",
    "get_device",
    "get_oom_policy",
    "is_double",
    "lazy_namespace",
    "load_weights",
    "on_device",
    "otf2psf",
    "pad_periodic",
    "psf2otf",
    "read_weights",
    "register_cross_power",
    "register_spectra",
    "register_subpixel",
    "set_oom_policy",
    "shift_ramps",
    "to_numpy",
    "to_tensor",
]

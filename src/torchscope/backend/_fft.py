"""Small FFT helpers shared by the science modules (tensors in, tensors out).

Conventions: the last two axes are (y, x); ``ortho``-normalised transforms, so Parseval holds
without factors; frequencies in cycles per pixel as ``torch.fft.fftfreq`` gives them. Nothing
here imports torch at import time.
"""

import math


def fft2c(x):
    """Centred, unitary 2-D FFT over the last two axes (zero frequency in the middle)."""
    import torch

    f = torch.fft.fft2(torch.fft.ifftshift(x, dim=(-2, -1)), norm="ortho")
    return torch.fft.fftshift(f, dim=(-2, -1))


def ifft2c(x):
    """Inverse of :func:`fft2c`."""
    import torch

    f = torch.fft.ifft2(torch.fft.ifftshift(x, dim=(-2, -1)), norm="ortho")
    return torch.fft.fftshift(f, dim=(-2, -1))


def shift_ramps(shifts, shape, *, dtype=None):
    """The 1-D Fourier phase ramps that translate images by ``shifts`` pixels.

    Parameters
    ----------
    shifts : torch.Tensor, (..., 2) float
        Translations (dy, dx) in pixels; positive moves the content towards larger indices.
    shape : (int, int)
        Image shape (ny, nx).
    dtype : torch.dtype, optional
        Complex dtype of the ramps (default: complex128 for float64 shifts, else complex64).

    Returns
    -------
    ry : torch.Tensor, (..., ny) complex
        ``exp(-2 pi i f dy)`` along y, ``f`` in cycles per pixel in unshifted FFT order
        (``fftfreq(ny)``).
    rx : torch.Tensor, (..., nx) complex
        The same along x. The 2-D ramp is ``ry[..., :, None] * rx[..., None, :]``; both are on
        the device of ``shifts``.
    """
    import torch

    if dtype is None:
        dtype = torch.complex128 if shifts.dtype == torch.float64 else torch.complex64
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    ramps = []
    for axis, n in enumerate(shape):
        f = torch.fft.fftfreq(n, device=shifts.device, dtype=real)
        phase = (-2.0 * math.pi) * shifts[..., axis, None].to(real) * f
        ramps.append(torch.polar(torch.ones_like(phase), phase).to(dtype))
    return ramps[0], ramps[1]


def fourier_shift(x, shifts):
    """Translate a batch of images by sub-pixel amounts with the Fourier shift theorem.

    The images are treated as periodic (content leaving one side re-enters on the other).

    Parameters
    ----------
    x : torch.Tensor, (..., ny, nx) real or complex
    shifts : torch.Tensor, (..., 2) float, broadcastable against ``x.shape[:-2]``
        Translations (dy, dx) in pixels; positive moves content towards larger indices.

    Returns
    -------
    torch.Tensor, (..., ny, nx) complex
        ``x(r - s)``; take ``.real`` for real input.
    """
    import torch

    cdtype = torch.complex128 if x.dtype in (torch.float64, torch.complex128) else torch.complex64
    ry, rx = shift_ramps(shifts, x.shape[-2:], dtype=cdtype)
    spectrum = torch.fft.fft2(x.to(cdtype))
    return torch.fft.ifft2(spectrum * ry[..., :, None] * rx[..., None, :])


# --- deblur (issue 5): convolution with blur kernels, kernel <-> transfer function, padding ---
# Kernels are real (..., kh, kw) arrays whose centre is the pixel (kh // 2, kw // 2); the
# transforms below are real-to-complex (``rfft2``) and unnormalised (torch's default), so
# ``psf2otf`` of a kernel that sums to 1 is 1 at zero frequency.

_CONVOLVE_MODES = ("full", "same", "valid", "wrap", "reflect", "nearest")


def fft_size(n):
    """The smallest integer >= ``n`` with no prime factor above 5 (a fast FFT length).

    Parameters
    ----------
    n : int
        The length needed, in samples; anything below 1 counts as 1.

    Returns
    -------
    int
        A 5-smooth length ``2**a * 3**b * 5**c`` >= ``max(n, 1)``: ``fft_size(97) == 100``.
    """
    n = max(int(n), 1)
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def psf2otf(kernel, shape):
    """The transfer function (``rfft2``) of a kernel centred on pixel (0, 0) of a periodic grid.

    Parameters
    ----------
    kernel : torch.Tensor, (..., kh, kw) real
        Centre at ``(kh // 2, kw // 2)``; ``kh <= shape[0]`` and ``kw <= shape[1]``.
    shape : (int, int)
        The periodic image grid (ny, nx).

    Returns
    -------
    torch.Tensor, (..., ny, nx // 2 + 1) complex
        Multiplying an image's ``rfft2`` by it convolves the image circularly with the kernel.
        complex64 for a float32 kernel, complex128 for a float64 one.

    Raises
    ------
    ValueError
        If the kernel is larger than the grid along either axis.
    """
    import torch

    kh, kw = kernel.shape[-2:]
    ny, nx = shape
    if kh > ny or kw > nx:
        raise ValueError(f"kernel of shape {(kh, kw)} does not fit a grid of shape {(ny, nx)}.")
    padded = kernel.new_zeros(kernel.shape[:-2] + (ny, nx))
    padded[..., :kh, :kw] = kernel
    padded = torch.roll(padded, shifts=(-(kh // 2), -(kw // 2)), dims=(-2, -1))
    return torch.fft.rfft2(padded)


def otf2psf(otf, shape, kernel_shape):
    """Inverse of :func:`psf2otf`: the ``kernel_shape`` window of a spectrum on grid ``shape``.

    Parameters
    ----------
    otf : torch.Tensor, (..., ny, nx // 2 + 1) complex
        A transfer function as :func:`psf2otf` returns it (half spectrum, ``rfft2`` layout).
    shape : (int, int)
        The periodic image grid (ny, nx) the transfer function belongs to.
    kernel_shape : (int, int)
        The kernel's (kh, kw), at most ``shape``.

    Returns
    -------
    torch.Tensor, (..., kh, kw) real
        The kernel, centre at ``(kh // 2, kw // 2)``; what lies outside the window on the grid
        is dropped. float32 for a complex64 ``otf``, float64 for a complex128 one.
    """
    import torch

    kh, kw = kernel_shape
    full = torch.fft.irfft2(otf, s=tuple(shape))
    full = torch.roll(full, shifts=(kh // 2, kw // 2), dims=(-2, -1))
    return full[..., :kh, :kw]


def fft_convolve(image, kernel, *, mode="same"):
    """Convolve images with kernels through the FFT (true convolution: the kernel is flipped).

    Parameters
    ----------
    image : torch.Tensor, (..., ny, nx) real
        The images, float32 or float64.
    kernel : torch.Tensor, (..., kh, kw) real
        Broadcast against ``image`` over the leading axes; centre at ``(kh // 2, kw // 2)``.
        Converted to the dtype of ``image``.
    mode : {"full", "same", "valid", "wrap", "reflect", "nearest"}
        ``"full"``, ``"same"`` and ``"valid"`` as :func:`scipy.signal.fftconvolve` (zeros outside
        the image; ``"same"`` is centred on the kernel's centre pixel, which for even kernel
        sides is one pixel off scipy's choice); ``"wrap"``: periodic image;
        ``"reflect"`` (mirror without repeating the edge pixel, as :func:`numpy.pad`'s
        ``"reflect"``) and ``"nearest"`` (edge pixel repeated): the image continued beyond its
        border, output of the image's shape.

    Returns
    -------
    torch.Tensor, (..., my, mx) real
        Same dtype as ``image``; the leading axes are those of ``image`` and ``kernel``
        broadcast together. ``(my, mx)`` is ``(ny + kh - 1, nx + kw - 1)`` for ``"full"``,
        ``(ny - kh + 1, nx - kw + 1)`` for ``"valid"`` and ``(ny, nx)`` for every other mode.

    Raises
    ------
    ValueError
        If ``mode`` is not one of the above, or with ``"wrap"``, if the kernel is larger than
        the image.
    """
    import torch
    import torch.nn.functional as F

    if mode not in _CONVOLVE_MODES:
        raise ValueError(f"mode={mode!r}; accepted: {_CONVOLVE_MODES}.")
    ny, nx = image.shape[-2:]
    kh, kw = kernel.shape[-2:]
    kernel = kernel.to(image.dtype)
    if mode == "wrap":
        out = torch.fft.rfft2(image) * psf2otf(kernel, (ny, nx))
        return torch.fft.irfft2(out, s=(ny, nx))
    if mode in ("reflect", "nearest"):
        # before the image, the kernel's reach on the far side of its centre (kh // 2, kw // 2):
        # kh - 1 - kh // 2 rows (one fewer than kh // 2 for even sizes, which came out 1 px off)
        top, left = kh - 1 - kh // 2, kw - 1 - kw // 2
        pads = (left, kw - 1 - left, top, kh - 1 - top)
        lead = image.shape[:-2]
        flat = image.reshape((-1, 1, ny, nx))
        flat = F.pad(flat, pads, mode="reflect" if mode == "reflect" else "replicate")
        image, mode = flat.reshape(lead + flat.shape[-2:]), "valid"
        ny, nx = image.shape[-2:]
    fy, fx = ny + kh - 1, nx + kw - 1
    sy, sx = fft_size(fy), fft_size(fx)
    spectrum = torch.fft.rfft2(image, s=(sy, sx)) * torch.fft.rfft2(kernel, s=(sy, sx))
    full = torch.fft.irfft2(spectrum, s=(sy, sx))[..., :fy, :fx]
    if mode == "full":
        return full
    if mode == "same":
        return full[..., kh // 2:kh // 2 + ny, kw // 2:kw // 2 + nx]
    return full[..., kh - 1:ny, kw - 1:nx]


def _reflect_index(i, n):
    """Indices ``i`` (any integers) mirrored into ``[0, n)``, edge repeated (``symmetric``)."""
    i = i % (2 * n)
    return i.where(i < n, 2 * n - 1 - i)


def pad_periodic(image, shape):
    """Extend images to ``shape`` so that they continue smoothly across the periodic boundary.

    The image stays at the top left; the added rows and columns blend (with ``cos**2``
    weights) a mirror image of the bottom/right edge into a mirror image of the top/left edge,
    so the FFT of the result sees no jump at the wrap-around. A cheap stand-in for Liu and
    Jia's (2008) boundary extension, used to deconvolve non-periodic images through the FFT.

    Parameters
    ----------
    image : torch.Tensor, (..., ny, nx) real
        The images, float32 or float64.
    shape : (int, int)
        Target (py, px), at least (ny, nx).

    Returns
    -------
    torch.Tensor, (..., py, px)
        Same dtype and device as ``image``; ``result[..., :ny, :nx]`` equals ``image``.

    Raises
    ------
    ValueError
        If ``shape`` is smaller than the image along either axis.
    """
    import torch

    out = image
    for axis, target in ((-1, shape[1]), (-2, shape[0])):
        n = out.shape[axis]
        p = int(target) - n
        if p < 0:
            raise ValueError(f"shape {tuple(shape)} is smaller than the image {image.shape[-2:]}.")
        if p == 0:
            continue
        t = torch.arange(p, device=image.device)
        near = out.index_select(axis, _reflect_index(n + t, n))  # mirror of the far edge
        far = out.index_select(axis, _reflect_index(t - p, n))   # mirror of the first edge
        w = torch.cos(0.5 * math.pi * (t.to(image.dtype) + 0.5) / p) ** 2
        w = w if axis == -1 else w[:, None]
        out = torch.cat([out, w * near + (1 - w) * far], dim=axis)
    return out

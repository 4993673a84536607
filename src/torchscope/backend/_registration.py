"""Sub-pixel image registration: Guizar-Sicairos' DFT upsampling, batched, on the device.

Guizar-Sicairos, Thurman & Fienup, "Efficient subpixel image registration algorithms",
Opt. Lett. 33, 156 (2008), as implemented by scikit-image's ``phase_cross_correlation``: a
whole-pixel peak of the cross-correlation by one inverse FFT, then the cross-correlation
upsampled ``upsample`` times in a 1.5 x 1.5 pixel neighbourhood of that peak by two matrix
products (a DFT evaluated only where it is needed, no zero padding). Here every step is batched
over many image pairs and runs on the device of the data, so a ptychography engine can register
hundreds of crops per iteration without leaving the GPU and without a host round trip per pair.
"""

import functools
import math

import numpy as np

from torchscope.backend._checks import check_choice, check_int
from torchscope.backend._convert import is_double
from torchscope.backend._device import get_device

_NORMALIZATIONS = ("phase", None)
_SPACES = ("real", "fourier")
# pairs per chunk are chosen so that the DFT kernels stay below this many bytes
_KERNEL_BYTES = 64 * 2**20


def _as_complex_tensor(array, name, device, cdtype):
    import torch

    if isinstance(array, torch.Tensor):
        t = array
    else:
        a = np.asarray(array)
        if a.dtype.kind not in "biufc":
            raise TypeError(f"{name} has dtype {a.dtype}; register_subpixel takes real or complex arrays.")
        t = torch.from_numpy(np.ascontiguousarray(a.astype(np.complex128 if a.dtype.kind == "c" else np.float64)))
    return t.to(device=device, dtype=cdtype)


def _peak(values):
    """Row and column of the largest value of each (..., ny, nx) image, as float tensors."""
    import torch

    flat = values.flatten(-2).argmax(-1)
    nx = values.shape[-1]
    return torch.div(flat, nx, rounding_mode="floor"), flat % nx


def _abs2(z):
    return z.real.square() + z.imag.square()


@functools.lru_cache(maxsize=32)
def _dft_kernel(n, upsample, region, device, dtype):
    """(region, n): ``exp(+2 pi i (r - region // 2) f_k)``, ``f = fftfreq(n) / upsample``: the
    inverse DFT along one axis, upsampled ``upsample`` times on ``region`` samples centred on
    zero shift."""
    import torch

    real = torch.float64 if dtype == torch.complex128 else torch.float32
    r = torch.arange(region, device=device, dtype=real) - math.trunc(region / 2.0)
    f = torch.fft.fftfreq(n, d=upsample, device=device, dtype=real)
    phase = (2.0 * math.pi) * r[:, None] * f
    return torch.polar(torch.ones_like(phase), phase).to(dtype)


@functools.lru_cache(maxsize=32)
def _real_block(n, upsample, region, device, dtype):
    """The transposed kernel of :func:`_dft_kernel` as a real (2 n, 2 region) matrix, so that
    ``view_as_real(z).reshape(m, 2 n) @ block`` gives ``[Re, Im]`` of ``z @ kernel.T``: one
    real matrix product, which on CPUs runs several times faster than a complex one."""
    import torch

    k = _dft_kernel(n, upsample, region, device, dtype).T  # (n, region)
    block = torch.zeros(2 * n, 2 * region, device=device, dtype=k.real.dtype)
    block[0::2, :region] = k.real
    block[1::2, :region] = -k.imag
    block[0::2, region:] = k.imag
    block[1::2, region:] = k.real
    return block


def _times_kernel_t(z, n, upsample, region):
    """``z @ _dft_kernel(n, ...).T`` for a (m, n) complex matrix ``z``, by a real matrix product."""
    import torch

    block = _real_block(n, upsample, region, z.device, z.dtype)
    out = torch.view_as_real(z.contiguous()).reshape(z.shape[0], 2 * n) @ block
    return torch.complex(out[:, :region], out[:, region:])


def _upsampled_peak(product, shift, upsample, region, interpolate=False):
    """Refine ``shift`` (B, 2) by the DFT of ``product`` (B, ny, nx) upsampled ``upsample`` times
    on a ``region`` x ``region`` grid centred on it; returns the refined (B, 2) shift.

    ``shift=None`` means zero for every pair: then both axes use one shared kernel (two plain
    matrix products for the whole batch). Otherwise each pair's kernel is the shared one times
    the Fourier phase ramp that moves its grid onto its own ``shift``.

    With ``interpolate``, the peak is refined further by the vertex of a parabola through the
    peak sample and its two neighbours along each axis (a continuous estimate, finer than the
    grid)."""
    import torch

    ny, nx = product.shape[-2:]
    real = product.real.dtype
    dftshift = math.trunc(region / 2.0)
    ky = _dft_kernel(ny, upsample, region, product.device, product.dtype)
    kx = _dft_kernel(nx, upsample, region, product.device, product.dtype)
    if shift is None:
        # x first: (B ny, nx) @ (nx, region) is one matrix product over the whole batch, then
        # y: (region, ny) @ (ny, B region), another one
        b = product.shape[0]
        half = _times_kernel_t(product.reshape(b * ny, nx), nx, upsample, region)
        half = half.reshape(b, ny, region).permute(1, 0, 2).reshape(ny, b * region)
        cc = (ky @ half).reshape(region, b, region).permute(1, 0, 2)  # (B, region, region)
        shift = torch.zeros(product.shape[0], 2, device=product.device, dtype=real)
    else:
        ramps = []
        for axis, n in enumerate((ny, nx)):
            phase = (2.0 * math.pi) * shift[:, axis, None] * torch.fft.fftfreq(n, device=product.device, dtype=real)
            ramps.append(torch.polar(torch.ones_like(phase), phase).to(product.dtype))
        half = product @ (kx * ramps[1][:, None, :]).transpose(-1, -2)  # (B, ny, region)
        cc = (ky * ramps[0][:, None, :]) @ half
    power = _abs2(cc)
    py, px = _peak(power)
    peak = torch.stack((py, px), dim=-1).to(real)
    if interpolate:
        peak = peak + _parabola_vertex(power, py, px)
    return shift + (peak - dftshift) / upsample


def _parabola_vertex(power, py, px):
    """Offsets (B, 2), within [-0.5, 0.5], of the vertices of the parabolas through each peak
    sample of ``power`` (B, R, R) and its neighbours along y and x (zero at the region's edge)."""
    import torch

    b = torch.arange(power.shape[0], device=power.device)
    r = power.shape[-1]
    offsets = []
    for axis, (p, q) in enumerate(((py, px), (px, py))):
        lo, hi = (p - 1).clamp(min=0), (p + 1).clamp(max=r - 1)
        if axis == 0:
            f0, fl, fh = power[b, p, q], power[b, lo, q], power[b, hi, q]
        else:
            f0, fl, fh = power[b, q, p], power[b, q, lo], power[b, q, hi]
        curvature = fl - 2 * f0 + fh
        inside = (p > 0) & (p < r - 1) & (curvature < 0)
        vertex = 0.5 * (fl - fh) / torch.where(inside, curvature, torch.ones_like(curvature))
        offsets.append(torch.where(inside, vertex.clamp(-0.5, 0.5), torch.zeros_like(vertex)))
    return torch.stack(offsets, dim=-1)


def register_spectra(ref_f, mov_f, *, upsample=100, normalization="phase", coarse_upsample=None,
                     start=None, interpolate=False):
    """Shifts between batches of images given by their (unshifted, unnormalised) 2-D spectra.

    The tensor core of :func:`register_subpixel`, for callers that already hold the spectra on the
    device (a ptychography engine, for instance). No host synchronisation happens here.

    Parameters
    ----------
    ref_f, mov_f : torch.Tensor, (B, ny, nx) complex
        ``fft2`` of the reference and the moving images.
    upsample : int
        Precision is ``1 / upsample`` pixel.
    normalization : {"phase", None}
    coarse_upsample : int, optional
        If given (and smaller than ``upsample``), upsample first by this factor around the
        whole-pixel peak and then by ``upsample`` in a ``1.5 / coarse_upsample`` pixel
        neighbourhood of that: two small DFTs instead of one ``1.5 upsample``-wide one. The
        result agrees with the one-stage search to ``1 / upsample`` pixel whenever the peak is
        unique within 1.5 pixels, which is the case for real cross-correlation peaks.
    start : torch.Tensor (B, 2) or "zero", optional
        Whole-pixel shifts to search around instead of the whole-pixel peak of the
        cross-correlation (which then is not computed): for callers that know the shift is
        small, such as an object crop and its own update in ptychography. ``"zero"``: around
        zero for every pair (the cheapest search: one shared DFT kernel).
    interpolate : bool
        Refine the final peak by parabolic interpolation of the upsampled cross-correlation's
        magnitude (a continuous estimate, below ``1 / upsample`` pixel; scikit-image does not).

    Returns
    -------
    torch.Tensor, (B, 2) real
        (dy, dx) in pixels: translating the moving image by this amount registers it onto the
        reference (scikit-image's convention). On the spectra's device; float32 for complex64
        spectra, float64 for complex128 ones.

    Raises
    ------
    ValueError
        If ``start`` is a string other than ``"zero"``.
    """
    return register_cross_power(ref_f * mov_f.conj(), upsample=upsample,
                                normalization=normalization, coarse_upsample=coarse_upsample,
                                start=start, interpolate=interpolate)


def register_cross_power(product, *, upsample=100, normalization="phase", coarse_upsample=None,
                         start=None, interpolate=False):
    """:func:`register_spectra` given the cross-power spectra ``ref_f * conj(mov_f)`` themselves.

    For callers that form the cross-power spectra in a buffer of their own (a ptychography
    engine, for instance): ``product`` is only read, never written. No host synchronisation
    happens here.

    Parameters
    ----------
    product : torch.Tensor, (B, ny, nx) complex
        ``fft2(reference) * conj(fft2(moving))`` for each of the B pairs (unshifted,
        unnormalised spectra).
    upsample : int
        Precision is ``1 / upsample`` pixel; 1: whole pixels only.
    normalization : {"phase", None}
        ``"phase"``: divide ``product`` by its magnitude first (phase correlation); ``None``:
        plain cross-correlation.
    coarse_upsample : int, optional
        Upsample in two stages, first by this factor (see :func:`register_spectra`).
    start : torch.Tensor (B, 2) or "zero", optional
        Whole-pixel shifts to search around instead of the cross-correlation's whole-pixel
        peak (see :func:`register_spectra`); ``"zero"``: around zero for every pair.
    interpolate : bool
        Refine the final peak by parabolic interpolation (see :func:`register_spectra`).

    Returns
    -------
    torch.Tensor, (B, 2) real
        (dy, dx) in pixels, as :func:`register_spectra` returns them: on ``product``'s device,
        float32 for complex64 input, float64 for complex128. Along an axis of length 1 the
        shift is 0.

    Raises
    ------
    ValueError
        If ``start`` is a string other than ``"zero"``.
    """
    import torch

    if normalization == "phase":
        eps = torch.finfo(product.real.dtype).eps
        product = product / _abs2(product).sqrt().clamp_min(100 * eps)
    ny, nx = product.shape[-2:]
    if start is None:
        cc = torch.fft.ifft2(product)
        py, px = _peak(_abs2(cc))
        shift = torch.stack((py, px), dim=-1).to(product.real.dtype)
        size = torch.tensor((ny, nx), device=shift.device, dtype=shift.dtype)
        shift = torch.where(shift > torch.trunc(size / 2), shift - size, shift)
    elif isinstance(start, str):
        if start != "zero":
            raise ValueError(f"start must be a tensor of shifts or 'zero', got {start!r}")
        shift = None
    else:
        shift = torch.round(start.to(device=product.device, dtype=product.real.dtype))
    if upsample > 1:
        if shift is not None:
            shift = torch.round(shift * upsample) / upsample
        if coarse_upsample is not None and 1 < coarse_upsample < upsample:
            shift = _upsampled_peak(product, shift, coarse_upsample, math.ceil(coarse_upsample * 1.5))
            shift = torch.round(shift * upsample) / upsample
            region = math.ceil(1.5 * upsample / coarse_upsample)
        elif shift is None:
            region = 2 * math.ceil(0.75 * upsample) + 1  # around zero: symmetric, +-0.75 pixel
        else:
            region = math.ceil(upsample * 1.5)  # as scikit-image
        shift = _upsampled_peak(product, shift, upsample, region, interpolate)
    elif shift is None:
        shift = torch.zeros(product.shape[0], 2, device=product.device, dtype=product.real.dtype)
    for axis, n in enumerate((ny, nx)):
        if n == 1:  # along an axis of length one there is nothing to register
            shift = shift.clone()
            shift[..., axis] = 0
    return shift


def register_subpixel(reference, moving, *, upsample=100, normalization="phase", space="real",
                      device=None):
    """Sub-pixel translation between image pairs, many pairs at once.

    Guizar-Sicairos' efficient subpixel registration (DFT upsampling by matrix products), the
    algorithm of ``skimage.registration.phase_cross_correlation``, batched over the leading axes
    and computed on ``device``.

    Parameters
    ----------
    reference, moving : array_like, (..., ny, nx) real or complex
        Image pairs; the leading axes broadcast against each other.
    upsample : int, optional
        Upsampling factor: shifts are found to ``1 / upsample`` pixel (default 100).
    normalization : {"phase", None}, optional
        ``"phase"`` (default, as scikit-image): phase correlation, the cross-power spectrum
        divided by its magnitude; ``None``: plain cross-correlation.
    space : {"real", "fourier"}, optional
        Whether the inputs are images or their (unshifted) 2-D FFTs.
    device : None, str or torch.device
        See :func:`torchscope.backend.get_device`.

    Returns
    -------
    ndarray, (..., 2) float64
        (dy, dx) in pixels: shifting ``moving`` by this amount (for instance with
        ``scipy.ndimage.shift``) registers it onto ``reference``. Same sign convention as
        scikit-image.

    Raises
    ------
    ValueError
        If the image shapes differ, an input is not (..., ny, nx) images or the leading axes do
        not broadcast, ``upsample`` is not a positive integer, ``normalization`` or ``space`` is
        unknown, or the images hold NaN or infinite values. Also ``DeviceError`` (a
        ``ValueError``) for an unknown or unavailable ``device``.
    TypeError
        If an input's dtype is not numeric (bool, integer, float or complex), or ``device`` is
        neither None, a string nor a ``torch.device``.
    """
    import torch

    upsample = check_int("upsample", upsample, 1, type_error=ValueError)
    check_choice("normalization", normalization, _NORMALIZATIONS)
    check_choice("space", space, _SPACES)
    dev = get_device(device)
    shapes = [tuple(np.shape(reference)), tuple(np.shape(moving))]
    for name, shape in zip(("reference", "moving"), shapes):
        if len(shape) < 2 or min(shape[-2:]) < 1:
            raise ValueError(f"{name} must be (..., ny, nx) images, got shape {shape}")
    if shapes[0][-2:] != shapes[1][-2:]:
        raise ValueError(
            f"reference and moving must have the same image shape, got {shapes[0][-2:]} and {shapes[1][-2:]}"
        )
    try:
        batch = np.broadcast_shapes(shapes[0][:-2], shapes[1][:-2])
    except ValueError:
        raise ValueError(
            f"the leading (batch) axes of reference {shapes[0][:-2]} and moving {shapes[1][:-2]} "
            "do not broadcast"
        ) from None
    wide = any(is_double(np.asarray(a).dtype) if not isinstance(a, torch.Tensor)
               else a.dtype in (torch.float64, torch.complex128) for a in (reference, moving))
    cdtype = torch.complex128 if wide and dev.type != "mps" else torch.complex64
    ref = _as_complex_tensor(reference, "reference", dev, cdtype)
    mov = _as_complex_tensor(moving, "moving", dev, cdtype)
    for name, t in (("reference", ref), ("moving", mov)):
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} holds NaN or infinite values")
    ny, nx = shapes[0][-2:]
    ref = ref.expand(*batch, ny, nx).reshape(-1, ny, nx)
    mov = mov.expand(*batch, ny, nx).reshape(-1, ny, nx)
    region = math.ceil(1.5 * upsample) if upsample > 1 else 1
    per_pair = 2 * region * max(ny, nx) * ref.element_size() + 4 * ny * nx * ref.element_size()
    chunk = max(1, _KERNEL_BYTES // per_pair)
    out = []
    for start in range(0, ref.shape[0], chunk):
        a, b = ref[start:start + chunk], mov[start:start + chunk]
        if space == "real":
            a, b = torch.fft.fft2(a), torch.fft.fft2(b)
        out.append(register_spectra(a, b, upsample=upsample, normalization=normalization))
    shifts = torch.cat(out) if out else torch.zeros(0, 2, dtype=ref.real.dtype, device=dev)
    return shifts.cpu().numpy().astype(np.float64).reshape(*batch, 2)

"""Linear filters: Gaussian, difference of Gaussians, Laplace, Laplacian of Gaussian, Sobel.

Every filter here is a sum of separable terms: products of 1-D correlations, one per axis.
Two engines evaluate them, both faster on a CPU than ``scipy.ndimage`` and much faster than
``conv2d``/``conv3d``:

- Gaussian kernels (:func:`_separable`, :func:`_correlate1d`): one pass per axis, each a banded
  matrix product. The axis is cut into tiles of ``_TILE`` outputs, and each tile is its window
  (``_TILE + 2 * radius`` inputs) times a banded ``(_TILE + 2 * radius, _TILE)`` matrix of the
  weights, so the arithmetic runs in BLAS. The passes run in place in the output array.
- 3-tap stencils (Laplace, Sobel; :func:`_halo_blocks`): all axes at once, block by block, on
  blocks extended by a 1-pixel halo; one pass over memory.

On the CPU both work in blocks of about ``_CPU_BLOCK`` elements, which stay in cache; other
devices take the whole array at once.

Border modes are those of ``scipy.ndimage`` (see :func:`torchscope.filters._core.pad`), with a
constant value of 0 for ``mode="constant"``. Values are never rescaled (integer images are not
divided by their dtype's maximum, unlike scikit-image without ``preserve_range=True``).
"""

import math
import numbers

import numpy as np

from torchscope.backend import check_real, to_tensor
from torchscope.filters._core import (
    apply,
    border_index,
    check_image,
    check_mode,
    float_dtype,
    pad,
    to_pixels,
)

_TILE = 32  # outputs per banded-matrix tile
_CPU_BLOCK = 1 << 18  # elements per block on the CPU (about 1 MB of float32: stays in cache)

# scikit-image's Sobel: derivative [1, 0, -1] (a convolution, so correlation weights [-1, 0, 1])
# along the edge axis, smoothing [1, 2, 1] / 4 along every other axis.
_SOBEL_EDGE = np.array([-1.0, 0.0, 1.0])
_SOBEL_SMOOTH = np.array([1.0, 2.0, 1.0]) / 4


# --------------------------------------------------------------------------- public filters
def gaussian(image, sigma, *, spacing=None, mode="nearest", truncate=4.0, device=None):
    """Gaussian smoothing.

    Parameters
    ----------
    image : numpy.ndarray or dask.array.Array
        Image of any dimension (2D, 3D, ...), bool, integer or real float.
    sigma : float or sequence of float
        Standard deviation of the Gaussian, one value or one per axis: in pixels, or in the
        physical unit of ``spacing`` when that is given. An axis with ``sigma`` 0 is not
        smoothed.
    spacing : sequence of float, optional
        Voxel size per axis (e.g. a napari layer's ``scale``). With it, ``sigma`` is physical
        and an anisotropic stack is smoothed with a Gaussian that is round in space.
    mode : {"nearest", "reflect", "mirror", "wrap", "constant"}
        How the image is extended beyond its border (as in ``scipy.ndimage``; ``"constant"``
        pads with 0).
    truncate : float
        The kernel reaches ``int(truncate * sigma + 0.5)`` pixels on each side (per axis).
    device : None, str or torch.device
        Where to compute; ``None`` picks CUDA, then Apple MPS, then the CPU.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        Smoothed image, float64 for float64 input and float32 otherwise. Values are not
        rescaled (like ``skimage.filters.gaussian(..., preserve_range=True)``).

    Raises
    ------
    ValueError
        For a negative or non-finite ``sigma``, a bad ``spacing``, ``mode`` or ``truncate``,
        or NaN in the image.

    Notes
    -----
    Equal, to float32 accuracy, to ``scipy.ndimage.gaussian_filter(image, sigma_pixels,
    mode=mode, truncate=truncate)`` with ``sigma_pixels = sigma / spacing``.

    Examples
    --------
    >>> import numpy as np
    >>> from torchscope.filters import gaussian
    >>> stack = np.random.default_rng(0).random((20, 64, 64), dtype=np.float32)
    >>> smooth = gaussian(stack, 1.0, spacing=(2.0, 0.5, 0.5))  # 1 um in a 2 x 0.5 x 0.5 um grid
    >>> smooth.shape, smooth.dtype
    ((20, 64, 64), dtype('float32'))
    """
    image = check_image(image)
    mode = check_mode(mode)
    kernels = _gaussian_kernels(image, sigma, spacing, truncate, "sigma")

    def kernel(t):
        return _separable(t, kernels, mode, _new_output(t))

    return apply(
        kernel, image, depth=_reach(kernels), dtype=float_dtype(image.dtype), device=device,
        mode=mode,
    )


def difference_of_gaussians(
    image, low_sigma, high_sigma=None, *, spacing=None, mode="nearest", truncate=4.0, device=None
):
    """Band-pass filter: the image smoothed with ``low_sigma`` minus it with ``high_sigma``.

    Removes noise (finer than ``low_sigma``) and background (coarser than ``high_sigma``) at
    once; bright objects of a size in between stand out.

    Parameters
    ----------
    image : numpy.ndarray or dask.array.Array
        Image of any dimension, bool, integer or real float.
    low_sigma : float or sequence of float
        Standard deviation of the narrower Gaussian (one value or one per axis), in pixels or,
        with ``spacing``, in physical units.
    high_sigma : float or sequence of float, optional
        Standard deviation of the wider Gaussian, in the same unit; at least ``low_sigma`` on
        every axis. Default: ``1.6 * low_sigma`` (as scikit-image).
    spacing : sequence of float, optional
        Voxel size per axis; makes both sigmas physical.
    mode : {"nearest", "reflect", "mirror", "wrap", "constant"}
        Border handling, as in :func:`gaussian`.
    truncate : float
        Kernel reach in standard deviations, as in :func:`gaussian`.
    device : None, str or torch.device
        Where to compute.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        float64 for float64 input, float32 otherwise. Values are not rescaled (like
        ``preserve_range=True``).

    Raises
    ------
    ValueError
        For a bad sigma, ``high_sigma < low_sigma`` on some axis, bad ``spacing``, ``mode`` or
        ``truncate``, or NaN in the image.

    Notes
    -----
    Equal, to float32 accuracy, to ``skimage.filters.difference_of_gaussians`` on float input
    (scikit-image first rescales integer images to [0, 1]; this function does not).
    """
    image = check_image(image)
    mode = check_mode(mode)
    low = to_pixels(low_sigma, image.ndim, spacing, "low_sigma")
    if high_sigma is None:
        high = tuple(1.6 * s for s in low)
    else:
        high = to_pixels(high_sigma, image.ndim, spacing, "high_sigma")
    if any(h < s for s, h in zip(low, high)):
        raise ValueError(
            f"high_sigma={high_sigma!r} must be at least low_sigma={low_sigma!r} on every axis."
        )
    low_kernels = _gaussian_kernels(image, low, None, truncate, "low_sigma")
    high_kernels = _gaussian_kernels(image, high, None, truncate, "high_sigma")

    def kernel(t):
        out = _separable(t, low_kernels, mode, _new_output(t))
        return _separable(t, high_kernels, mode, out, add=True, scale=-1.0)

    return apply(
        kernel, image, depth=_reach(high_kernels), dtype=float_dtype(image.dtype),
        device=device, mode=mode,
    )


def laplace(image, *, mode="reflect", device=None):
    """Laplace filter (edge detection): the discrete negative Laplacian.

    The kernel is the lecture's ``[[0, -1, 0], [-1, 4, -1], [0, -1, 0]]`` in 2D and its nD
    analogue (``2 * ndim`` at the centre, ``-1`` at the ``2 * ndim`` face neighbours): a pixel
    brighter than its neighbours gives a positive response.

    Parameters
    ----------
    image : numpy.ndarray or dask.array.Array
        Image of any dimension, bool, integer or real float.
    mode : {"reflect", "nearest", "mirror", "wrap", "constant"}
        Border handling (default ``"reflect"``, as ``skimage.filters.laplace``).
    device : None, str or torch.device
        Where to compute.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        float64 for float64 input, float32 otherwise; values are not rescaled.

    Notes
    -----
    Equal, to float32 accuracy, to ``skimage.filters.laplace(image)`` on float input (and to
    ``scipy.ndimage.convolve(image, kernel, mode=mode)`` for other modes).
    """
    image = check_image(image)
    mode = check_mode(mode)
    ndim = image.ndim

    def kernel(t):
        import torch

        out = _new_output(t)
        for rows, part in _halo_blocks(t, mode, out.dtype):
            target = out[rows]
            torch.mul(_shifted(part, 0, 1), 2.0 * ndim, out=target)
            for axis in range(ndim):
                target.sub_(_shifted(part, axis, 0)).sub_(_shifted(part, axis, 2))
        return out

    return apply(
        kernel, image, depth=(1,) * ndim, dtype=float_dtype(image.dtype), device=device,
        mode=mode,
    )


def laplacian_of_gaussian(image, sigma, *, spacing=None, mode="reflect", truncate=4.0, device=None):
    """Laplacian of Gaussian (LoG): Gaussian smoothing followed by the Laplace filter.

    Sign convention of the lecture: the Laplace kernel ``[[0, -1, 0], [-1, 4, -1], [0, -1, 0]]``
    is applied after the Gaussian, so bright blobs of a size near ``sigma`` respond
    *positively* (this is ``-scipy.ndimage.gaussian_laplace``).

    Parameters
    ----------
    image : numpy.ndarray or dask.array.Array
        Image of any dimension, bool, integer or real float.
    sigma : float or sequence of float
        Standard deviation of the Gaussian, > 0 on every axis; in pixels or, with ``spacing``,
        in physical units.
    spacing : sequence of float, optional
        Voxel size per axis; makes ``sigma`` physical, and the Laplacian too: each axis's
        second derivative is taken per physical unit (divided by ``spacing**2``), so an
        anisotropic stack gets the same response to the same curvature along every axis.
    mode : {"reflect", "nearest", "mirror", "wrap", "constant"}
        Border handling (default ``"reflect"``, as ``scipy.ndimage.gaussian_laplace``).
    truncate : float
        Kernel reach in standard deviations, as in :func:`gaussian`.
    device : None, str or torch.device
        Where to compute.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        float64 for float64 input, float32 otherwise; values are not rescaled.

    Notes
    -----
    Without ``spacing``, equal to float32 accuracy to ``-scipy.ndimage.gaussian_laplace(image,
    sigma, mode=mode, truncate=truncate)``: the sum over axes of the second derivative of the
    Gaussian along that axis times the Gaussian along the others. With ``spacing`` each term is
    divided by that axis's ``spacing**2`` (until 2026-12-07 it was not: the second derivatives
    stayed per pixel, and a z spacing 4 times the xy one weighed curvature along z 16 times).
    """
    image = check_image(image)
    mode = check_mode(mode)
    ndim = image.ndim
    sigmas = to_pixels(sigma, ndim, spacing, "sigma")
    if min(sigmas) <= 0:
        raise ValueError(f"sigma={sigma!r} must be > 0 on every axis for a Laplacian of Gaussian.")
    truncate = check_real("truncate", truncate, 0, low_open=True, type_error=ValueError)
    # per pixel without spacing; per physical unit with it (d^2/dx^2 = d^2/di^2 / spacing^2)
    units = (1.0,) * ndim if spacing is None else to_pixels(1.0, ndim, spacing, "spacing")
    smooth = [_gaussian_weights(s, truncate) for s in sigmas]
    second = [_gaussian_weights(s, truncate, order=2) * u * u for s, u in zip(sigmas, units)]

    def kernel(t):
        out = _new_output(t)
        work = out.new_empty(out.shape) if ndim > 1 else None
        for axis in range(ndim):
            kernels = [second[a] if a == axis else smooth[a] for a in range(ndim)]
            _separable(t, kernels, mode, out, add=axis > 0, work=work, scale=-1.0)
        return out

    return apply(
        kernel, image, depth=_reach(smooth), dtype=float_dtype(image.dtype), device=device,
        mode=mode,
    )


def sobel(image, *, axis=None, mode="reflect", device=None):
    """Sobel edge filter: the edge magnitude, or the derivative along one axis.

    Along the derivative axis the kernel is the central difference ``[1, 0, -1]``
    (a convolution), along every other axis the smoothing ``[1, 2, 1] / 4``.

    Parameters
    ----------
    image : numpy.ndarray or dask.array.Array
        Image of any dimension, bool, integer or real float.
    axis : None, int or sequence of int
        ``None``: the edge magnitude over all axes. An int (negative counts from the end): the
        signed derivative along that axis (positive where values increase with the index).
        A sequence of two or more axes: the magnitude over those axes.
    mode : {"reflect", "nearest", "mirror", "wrap", "constant"}
        Border handling (default ``"reflect"``, as scikit-image).
    device : None, str or torch.device
        Where to compute.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        float64 for float64 input, float32 otherwise; values are not rescaled. The magnitude
        is ``sqrt(sum(derivative_a ** 2 for a in axes) / image.ndim)``, as scikit-image (so a
        1-D image, whose only axis is one axis, gives the signed derivative).

    Notes
    -----
    Equal, to float32 accuracy, to ``skimage.filters.sobel(image, axis=axis, mode=mode)`` on
    float input.
    """
    image = check_image(image)
    mode = check_mode(mode)
    ndim = image.ndim
    axes = _check_axes(axis, ndim)
    magnitude = len(axes) > 1

    def kernel(t):
        import torch

        out = _new_output(t)
        for rows, part in _halo_blocks(t, mode, out.dtype):
            target = out[rows]
            for i, edge_axis in enumerate(axes):
                kernels = [_SOBEL_EDGE if a == edge_axis else _SOBEL_SMOOTH for a in range(ndim)]
                term = _valid_separable(part, kernels)
                if not magnitude:
                    target.copy_(term)
                elif i == 0:
                    torch.mul(term, term, out=target)
                else:
                    target.addcmul_(term, term)
            if magnitude:
                target.sqrt_().div_(math.sqrt(ndim))
        return out

    return apply(
        kernel, image, depth=(1,) * ndim, dtype=float_dtype(image.dtype), device=device,
        mode=mode,
    )


# --------------------------------------------------------------------------- validation, kernels
def _check_axes(axis, ndim):
    """``axis`` (None, an int or a sequence of ints) as a tuple of axes in ``range(ndim)``."""
    if axis is None:
        return tuple(range(ndim))
    values = [axis] if isinstance(axis, numbers.Integral) else axis
    try:
        values = list(values)
    except TypeError:
        raise TypeError(f"axis must be None, an int or a sequence of ints, got {axis!r}.") from None
    axes = []
    for a in values:
        if not isinstance(a, numbers.Integral) or isinstance(a, bool):
            raise TypeError(f"axis must be None, an int or a sequence of ints, got {axis!r}.")
        if not -ndim <= a < ndim:
            raise ValueError(f"axis={axis!r} is out of range for an image with {ndim} axes.")
        axes.append(int(a) % ndim)
    if not axes or len(set(axes)) != len(axes):
        raise ValueError(f"axis={axis!r} must name at least one axis, each once.")
    return tuple(axes)


def _gaussian_kernels(image, sigma, spacing, truncate, name):
    """Per-axis Gaussian weights for ``sigma`` (``None`` for an axis that is not smoothed)."""
    sigmas = to_pixels(sigma, image.ndim, spacing, name)
    truncate = check_real("truncate", truncate, 0, low_open=True, type_error=ValueError)
    return [_gaussian_weights(s, truncate) if s > 1e-15 else None for s in sigmas]


def _gaussian_weights(sigma, truncate, order=0):
    """Correlation weights of a sampled Gaussian (``order`` 0) or its second derivative (2).

    The same kernel as ``scipy.ndimage.gaussian_filter1d``: radius ``int(truncate * sigma +
    0.5)``, the Gaussian normalised to sum 1, the derivative as ``(x**2 / sigma**4 -
    1 / sigma**2)`` times that Gaussian.
    """
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 / sigma**2 * x**2)
    weights /= weights.sum()
    if order == 2:
        weights *= x**2 / sigma**4 - 1 / sigma**2
    return weights


def _reach(kernels):
    """Per-axis radius of separable ``kernels`` (the overlap dask blocks need)."""
    return tuple(0 if w is None else len(w) // 2 for w in kernels)


# --------------------------------------------------------------------------- separable passes
def _new_output(t):
    """An uninitialised float tensor for the result of filtering ``t``."""
    import torch

    dtype = torch.float64 if t.dtype == torch.float64 else torch.float32
    return torch.empty(t.shape, dtype=dtype, device=t.device)


def _separable(src, kernels, mode, out, *, add=False, scale=1.0, work=None):
    """Correlate ``src`` with ``kernels[axis]`` along each axis; ``None`` leaves an axis alone.

    Writes ``scale`` times the result into ``out``, or adds it to ``out`` when ``add`` is true;
    the intermediate passes then run in ``work`` (allocated when not given). ``src`` may be of
    any dtype; ``out`` and ``work`` are float tensors of its shape. Returns ``out``.
    """
    passes = [(axis, w) for axis, w in enumerate(kernels) if w is not None]
    if not passes:
        src = src.to(out.dtype)
        return out.add_(src, alpha=scale) if add else out.copy_(src).mul_(scale)
    buffer = out
    if add and len(passes) > 1:
        buffer = work if work is not None else out.new_empty(out.shape)
    for i, (axis, weights) in enumerate(passes):
        last = i == len(passes) - 1
        _correlate1d(
            src, weights * scale if i == 0 else weights, axis, mode,
            out if last else buffer, add=add and last,
        )
        src = buffer
    return out


def _correlate1d(src, weights, axis, mode, out, *, add=False):
    """1-D correlation along ``axis``: ``out[..., i, ...] = sum_k w[k] * src[..., i + k - r, ...]``.

    ``w`` (``weights``) has odd length ``2 r + 1``; ``src`` is extended beyond its border by
    ``mode``.
    With ``add``, the result is added to ``out`` instead. ``out`` may be ``src`` itself: each
    block is padded (copied) before its result is written.
    """
    import torch

    r = len(weights) // 2
    n = src.shape[axis]
    pre, post = math.prod(src.shape[:axis]), math.prod(src.shape[axis + 1 :])
    tiles = -(-n // _TILE)
    extra = tiles * _TILE - n  # the last tile runs past the end; its surplus is dropped
    width = _TILE + 2 * r  # window of one tile
    length = n + 2 * r + extra  # padded axis
    band = _band_matrix(weights, out.dtype, out.device)
    src3 = src.reshape(pre, n, post)
    out3 = out.view(pre, n, post)
    block = _CPU_BLOCK if out.device.type == "cpu" else None

    for rows, cols in _blocks(pre, length, post, block):
        part = src3[rows, :, cols].to(out.dtype)
        part = pad(part, ((0, 0), (r, r + extra), (0, 0)), mode).contiguous()
        p, _, q = part.shape
        if q == 1:  # along the last axis: windows as rows, times the band from the right
            windows = part.view(p, length).unfold(1, width, _TILE).reshape(-1, width)
            result = (windows @ band).view(p, tiles * _TILE, 1)
        else:  # windows of `width` rows by q columns, the band's transpose from the left
            windows = part.as_strided((p, tiles, width, q), (length * q, _TILE * q, q, 1))
            result = torch.matmul(band.T, windows).view(p, tiles * _TILE, q)
        target = out3[rows, :, cols]
        if add:
            target.add_(result[:, :n])
        else:
            target.copy_(result[:, :n])
    return out


def _band_matrix(weights, dtype, device):
    """The ``(_TILE + 2 r, _TILE)`` matrix with ``weights`` in rows ``j..j+2r`` of column ``j``."""

    band = np.zeros((_TILE + len(weights) - 1, _TILE))
    columns = np.arange(_TILE)
    for k, w in enumerate(weights):
        band[columns + k, columns] = w
    return to_tensor(band, device=device, dtype=dtype)


def _blocks(pre, length, post, block):
    """Blocks of a ``(pre, length, post)`` array of about ``block`` elements (``None``: one block).

    Yields ``(rows, cols)`` slices of the first and last axis; every block spans the whole
    middle (filtered) axis.
    """
    if block is None:
        yield slice(None), slice(None)
        return
    rows = max(1, block // (length * post))
    if rows > 1 or post == 1:
        for start in range(0, pre, rows):
            yield slice(start, start + rows), slice(None)
        return
    cols = max(1, block // length)
    for row in range(pre):
        for start in range(0, post, cols):
            yield slice(row, row + 1), slice(start, start + cols)


# --------------------------------------------------------------------------- short stencils
def _halo_blocks(t, mode, dtype):
    """Blocks of ``t`` along axis 0, each extended by one pixel on every side with ``mode``.

    Yields ``(rows, part)``: ``rows`` is the slice of axis 0 the block covers and ``part`` its
    data (as ``dtype``) with one more pixel on both sides of every axis, taken from the
    neighbouring rows or, at the image border, from ``mode``. A 3-tap stencil then runs on
    ``part`` in cache, and the image is read once.
    """

    n = t.shape[0]
    row = math.prod(t.shape[1:])
    # blocks of twice the usual size: the two halo rows are a smaller share of them
    step = max(1, 2 * _CPU_BLOCK // row) if t.device.type == "cpu" else n
    others = ((1, 1),) * (t.ndim - 1)
    index = None
    for start in range(0, n, step):
        stop = min(n, start + step)
        if start >= 1 and stop < n:
            part = t[start - 1 : stop + 1]
        elif mode == "constant":
            rows = ((int(start == 0), int(stop == n)),) + ((0, 0),) * (t.ndim - 1)
            part = pad(t[max(0, start - 1) : stop + 1], rows, mode)
        else:
            if index is None:
                index = to_tensor(border_index(n, 1, 1, mode), device=t.device)
            part = t.index_select(0, index[start : stop + 2])
        yield slice(start, stop), pad(part.to(dtype), ((0, 0),) + others, mode)


def _shifted(part, axis, offset):
    """``part`` without its 1-pixel halo, shifted by ``offset - 1`` pixels along ``axis``."""
    index = [slice(1, size - 1) for size in part.shape]
    index[axis] = slice(offset, part.shape[axis] - 2 + offset)
    return part[tuple(index)]


def _valid_separable(part, kernels):
    """Correlate ``part`` with the 3-tap ``kernels[axis]`` along each axis, keeping the valid
    region (every axis loses its 1-pixel halo). Taps of weight 0 are skipped.
    """
    for axis, weights in enumerate(kernels):
        m = part.shape[axis] - 2
        taps = [(float(w), part.narrow(axis, k, m)) for k, w in enumerate(weights) if w != 0]
        (w0, first), rest = taps[0], taps[1:]
        acc = first * w0
        for w, tap in rest:
            acc.add_(tap, alpha=w)
        part = acc
    return part

"""Rank filters and local statistics over disc/ball footprints.

:func:`median`, :func:`minimum`, :func:`maximum`, :func:`mean`, :func:`variance` and :func:`std`
take the values of the image under a disc (2D), ball (3D) or, with an anisotropic ``spacing``,
ellipsoid footprint around every pixel. All of them are networks of elementwise operations on
shifted copies of the padded image (see :mod:`torchscope.filters._network`); the min/max engine
here is also the one grey morphology (:mod:`torchscope.filters._morphology`) runs on.
"""

import functools

import numpy as np

from torchscope.backend import compute_dtype, to_tensor
from torchscope.filters import _core, _network

MEDIAN = "median"

#: Footprints with more elements than this take the median by sorting (:func:`_sorted_median`):
#: the selection network grows faster than the footprint (a ball of radius 10 would need some
#: 234,000 steps), sorting only linearly. A disc of radius 13 (529) still uses the network.
MEDIAN_NETWORK_MAX = 600
#: Elements of the stack of shifted copies that :func:`_sorted_median` sorts at a time.
SORT_ELEMENTS = 1 << 24


# --------------------------------------------------------------------------- shared engine
def prepare(image, radius, spacing, mode):
    """Validate the arguments of a footprint filter; return the image and its footprint."""
    image = _core.check_image(image)
    _core.check_mode(mode)
    return image, _core.footprint(radius, image.ndim, spacing=spacing)


def half_size(fp):
    """The reach of a footprint in pixels, per axis (the overlap dask blocks need)."""
    return tuple(s // 2 for s in fp.shape)


@functools.lru_cache(maxsize=64)
def _build_network(kind, shape, bits):
    fp = np.frombuffer(bits, dtype=bool).reshape(shape)
    net = _network.Network(len(shape))
    if kind == MEDIAN:
        return net, _network.median_footprint(net, fp)
    return net, _network.reduce_footprint(net, fp, kind)


def footprint_filter(t, fp, kind, mode, cval=0.0):
    """``kind`` of tensor ``t`` over footprint ``fp``, with the border ``mode``.

    ``kind`` is "min", "max", "add" (the sum) or "median"; ``cval`` is the value beyond the
    border for ``mode="constant"``. The result has the shape and dtype of ``t``.
    """
    half = half_size(fp)
    net, root = _build_network(kind, fp.shape, np.ascontiguousarray(fp, dtype=bool).tobytes())
    load = functools.partial(_padded_tile, t, half, mode, cval)
    return _network.evaluate(net, root, t, [2 * h for h in half], load)


def _sorted_median(t, fp, mode):
    """Median of ``t`` over ``fp`` by sorting the stacked shifted copies, tile by tile.

    For large footprints; exact (the footprint has an odd number of elements, so the median is
    one of the values). Memory: at most :data:`SORT_ELEMENTS` stacked elements at a time.
    """
    import itertools

    import torch

    half = half_size(fp)
    offsets = np.argwhere(fp)
    work = t.to(torch.uint8) if t.dtype == torch.bool else t
    padded = _core.pad(work, [(h, h) for h in half], mode)
    out = torch.empty_like(work)
    # tile the leading axes so that (footprint elements) x (tile size) fits the budget
    tile = list(t.shape)
    for axis in range(t.ndim):
        if len(offsets) * int(np.prod(tile)) <= SORT_ELEMENTS:
            break
        rest = len(offsets) * int(np.prod(tile[axis + 1 :]))
        tile[axis] = max(1, SORT_ELEMENTS // max(rest, 1))
    for corner in itertools.product(*(range(0, n, c) for n, c in zip(t.shape, tile))):
        region = tuple(slice(c, min(c + s, n)) for c, s, n in zip(corner, tile, t.shape))
        stack = torch.stack(
            [padded[tuple(slice(r.start + o, r.stop + o) for r, o in zip(region, off))]
             for off in offsets]
        )
        out[region] = stack.median(dim=0).values
    return out.bool() if t.dtype == torch.bool else out


def _padded_tile(t, half, mode, cval, region):
    """One tile of ``t`` padded by ``half``: ``padded[start : stop + 2 * half]`` per axis.

    Only the tile is copied (the whole image is never padded): along an axis that the tile
    covers, ``_core.pad`` pads it; along an axis it cuts, its rows are taken from the image, or
    for rows beyond the border, from where the border ``mode`` takes them.
    """

    widths, gathers = [], []
    for axis, (r, h) in enumerate(zip(region, half)):
        n = t.shape[axis]
        if r.start == 0 and r.stop == n:
            widths.append((h, h))
        elif mode == "constant":
            start, stop = max(r.start - h, 0), min(r.stop + h, n)
            t = t.narrow(axis, start, stop - start)
            widths.append((start - (r.start - h), r.stop + h - stop))
        else:
            rows = _core.border_index(n, h, h, mode)[r.start : r.stop + 2 * h]
            lo = int(rows.min())
            t = t.narrow(axis, lo, int(rows.max()) + 1 - lo)
            rows = rows - lo
            if not np.array_equal(rows, np.arange(len(rows))):
                gathers.append((axis, rows))
            widths.append((0, 0))
    # rows beyond a border are gathered only after every cut axis is narrowed: gathering
    # first copied whole planes of a 3D stack for every tile along the next axis
    for axis, rows in gathers:
        t = t.index_select(axis, to_tensor(rows, device=t.device))
    return _core.pad(t, widths, mode, cval)


def _local_variance(t, fp, mode):
    """Population variance of ``t`` under ``fp``, as a float64 tensor (float32 on Apple MPS).

    ``mean(d**2) - mean(d)**2`` with ``d`` the values relative to the image mean, so that an
    offset common to the whole image (1000 + noise) costs no precision.
    """
    import torch

    x = t.to(torch.float32 if t.device.type == "mps" else torch.float64)
    reference = float(x.mean())
    d = x - reference  # a new tensor; beyond a "constant" border, x = 0 is d = -reference
    count = int(np.count_nonzero(fp))
    first = footprint_filter(d, fp, _network.ADD, mode, -reference).div_(count)
    second = footprint_filter(d.mul_(d), fp, _network.ADD, mode, reference**2).div_(count)
    return second.sub_(first.mul_(first)).clamp_(min=0)


def _run(kernel, image, fp, dtype, mode, device):
    return _core.apply(kernel, image, depth=half_size(fp), dtype=dtype, device=device, mode=mode)


# --------------------------------------------------------------------------- public API
def median(image, radius, *, spacing=None, mode="nearest", device=None):
    """Local median over a disc/ball footprint: removes salt-and-pepper noise, keeps edges.

    Parameters
    ----------
    image : numpy.ndarray or dask.array.Array
        2D, 3D or nD image: bool, integer or float, without NaN.
    radius : float or sequence of float
        Radius of the footprint in pixels, or in the unit of ``spacing`` when that is given;
        one value per axis gives an ellipsoid. See :func:`torchscope.filters.footprint`: for an
        integer radius in pixels it is ``skimage.morphology.disk(radius)`` (2D) or
        ``ball(radius)`` (3D). 0 is the identity.
    spacing : sequence of float, optional
        Voxel size per axis (e.g. a napari layer's ``scale``), in the unit of ``radius``.
    mode : {"nearest", "reflect", "mirror", "wrap", "constant"}, optional
        How the image is extended beyond its border, as in ``scipy.ndimage`` ("constant" pads
        with 0).
    device : None, str or torch.device, optional
        Where to compute: ``None`` picks CUDA, then Apple MPS, then the CPU.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        Same shape and dtype as ``image`` (lazy for dask input).

    Raises
    ------
    ValueError
        NaN in ``image``; a negative or non-finite ``radius``, a ``spacing`` that is not
        positive, or either with the wrong number of values; an unknown ``mode``.
    TypeError
        A complex or non-numeric ``image``; a ``radius`` or ``spacing`` that is not a number.

    Notes
    -----
    The result equals ``scipy.ndimage.median_filter(image, footprint=fp, mode=mode)`` and
    ``skimage.filters.median(image, fp, mode=mode)`` with ``fp = footprint(radius,
    image.ndim, spacing=spacing)``. It is computed by a selection network (min/max only): each
    row of the footprint is sorted once for the whole image, and the sorted rows are merged,
    dropping whatever can no longer be the median.
    """
    image, fp = prepare(image, radius, spacing, mode)

    def kernel(t):
        if np.count_nonzero(fp) > MEDIAN_NETWORK_MAX:
            return _sorted_median(t, fp, mode)
        return footprint_filter(t, fp, MEDIAN, mode)

    return _run(kernel, image, fp, image.dtype, mode, device)


def minimum(image, radius, *, spacing=None, mode="nearest", device=None):
    """Local minimum over a disc/ball footprint (a grey erosion with a scipy border mode).

    Parameters
    ----------
    image : numpy.ndarray or dask.array.Array
        2D, 3D or nD image: bool, integer or float, without NaN.
    radius : float or sequence of float
        Radius of the footprint in pixels, or in the unit of ``spacing`` when that is given;
        see :func:`median`. 0 is the identity.
    spacing : sequence of float, optional
        Voxel size per axis, in the unit of ``radius``.
    mode : {"nearest", "reflect", "mirror", "wrap", "constant"}, optional
        How the image is extended beyond its border, as in ``scipy.ndimage`` ("constant" pads
        with 0).
    device : None, str or torch.device, optional
        Where to compute: ``None`` picks CUDA, then Apple MPS, then the CPU.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        Same shape and dtype as ``image``, bool included (lazy for dask input).

    Raises
    ------
    ValueError, TypeError
        As for :func:`median`.

    Notes
    -----
    The result equals ``scipy.ndimage.minimum_filter(image, footprint=fp, mode=mode)``. The
    footprint is split into slices along the first axis (identical slices computed once) down
    to runs along the last axis, and a run of width ``n`` costs ``log2(n)`` minima, so the cost
    grows with the radius much more slowly than the footprint's size.
    """
    image, fp = prepare(image, radius, spacing, mode)
    return _run(
        lambda t: footprint_filter(t, fp, _network.MIN, mode),
        image,
        fp,
        image.dtype,
        mode,
        device,
    )


def maximum(image, radius, *, spacing=None, mode="nearest", device=None):
    """Local maximum over a disc/ball footprint (a grey dilation with a scipy border mode).

    Parameters
    ----------
    image : numpy.ndarray or dask.array.Array
        2D, 3D or nD image: bool, integer or float, without NaN.
    radius : float or sequence of float
        Radius of the footprint in pixels, or in the unit of ``spacing`` when that is given;
        see :func:`median`. 0 is the identity.
    spacing : sequence of float, optional
        Voxel size per axis, in the unit of ``radius``.
    mode : {"nearest", "reflect", "mirror", "wrap", "constant"}, optional
        How the image is extended beyond its border, as in ``scipy.ndimage`` ("constant" pads
        with 0).
    device : None, str or torch.device, optional
        Where to compute: ``None`` picks CUDA, then Apple MPS, then the CPU.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        Same shape and dtype as ``image``, bool included (lazy for dask input).

    Raises
    ------
    ValueError, TypeError
        As for :func:`median`.

    Notes
    -----
    The result equals ``scipy.ndimage.maximum_filter(image, footprint=fp, mode=mode)``; see
    :func:`minimum` for the method.
    """
    image, fp = prepare(image, radius, spacing, mode)
    return _run(
        lambda t: footprint_filter(t, fp, _network.MAX, mode),
        image,
        fp,
        image.dtype,
        mode,
        device,
    )


def mean(image, radius, *, spacing=None, mode="nearest", device=None):
    """Local mean over a disc/ball footprint.

    Parameters
    ----------
    image : numpy.ndarray or dask.array.Array
        2D, 3D or nD image: bool, integer or float, without NaN.
    radius : float or sequence of float
        Radius of the footprint in pixels, or in the unit of ``spacing`` when that is given;
        see :func:`median`. 0 is the identity.
    spacing : sequence of float, optional
        Voxel size per axis, in the unit of ``radius``.
    mode : {"nearest", "reflect", "mirror", "wrap", "constant"}, optional
        How the image is extended beyond its border, as in ``scipy.ndimage`` ("constant" pads
        with 0).
    device : None, str or torch.device, optional
        Where to compute: ``None`` picks CUDA, then Apple MPS, then the CPU.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        Same shape as ``image``, in the image's unit; float64 for float64 input, float32 for
        every other dtype (lazy for dask input).

    Raises
    ------
    ValueError, TypeError
        As for :func:`median`.

    Notes
    -----
    The result equals ``scipy.ndimage.correlate(image.astype(float), fp / fp.sum(),
    mode=mode)`` to the accuracy of the result's dtype. Sums run along each row of the
    footprint by shifted additions (no cumulative sums, which lose precision on long rows).
    """
    image, fp = prepare(image, radius, spacing, mode)
    dtype = _core.float_dtype(image.dtype)
    count = int(np.count_nonzero(fp))

    def kernel(t):
        x = t.to(compute_dtype(dtype, t.device))
        return footprint_filter(x, fp, _network.ADD, mode).div_(count)

    return _run(kernel, image, fp, dtype, mode, device)


def variance(image, radius, *, spacing=None, mode="nearest", device=None):
    """Local (population) variance over a disc/ball footprint.

    The mean of the squared deviations from the local mean, ``mean(x**2) - mean(x)**2`` over
    the footprint: a measure of local texture or noise.

    Parameters
    ----------
    image : numpy.ndarray or dask.array.Array
        2D, 3D or nD image: bool, integer or float, without NaN.
    radius : float or sequence of float
        Radius of the footprint in pixels, or in the unit of ``spacing`` when that is given;
        see :func:`median`. 0 gives zeros.
    spacing : sequence of float, optional
        Voxel size per axis, in the unit of ``radius``.
    mode : {"nearest", "reflect", "mirror", "wrap", "constant"}, optional
        How the image is extended beyond its border, as in ``scipy.ndimage`` ("constant" pads
        with 0).
    device : None, str or torch.device, optional
        Where to compute: ``None`` picks CUDA, then Apple MPS, then the CPU.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        Same shape as ``image``, in the image's unit squared; float64 for float64 input,
        float32 for every other dtype (lazy for dask input).

    Raises
    ------
    ValueError, TypeError
        As for :func:`median`.

    Notes
    -----
    The result equals ``scipy.ndimage.generic_filter(image.astype(float), np.var,
    footprint=fp, mode=mode)`` to the accuracy of the result's dtype. The sums are accumulated
    in float64 (float32 on Apple MPS, which has no float64) on values taken relative to the
    image mean, so a large offset (1000 + noise) does not cancel the precision away.
    """
    image, fp = prepare(image, radius, spacing, mode)

    def kernel(t):
        return _local_variance(t, fp, mode)

    return _run(kernel, image, fp, _core.float_dtype(image.dtype), mode, device)


def std(image, radius, *, spacing=None, mode="nearest", device=None):
    """Local (population) standard deviation over a disc/ball footprint.

    The square root of :func:`variance`.

    Parameters
    ----------
    image : numpy.ndarray or dask.array.Array
        2D, 3D or nD image: bool, integer or float, without NaN.
    radius : float or sequence of float
        Radius of the footprint in pixels, or in the unit of ``spacing`` when that is given;
        see :func:`median`. 0 gives zeros.
    spacing : sequence of float, optional
        Voxel size per axis, in the unit of ``radius``.
    mode : {"nearest", "reflect", "mirror", "wrap", "constant"}, optional
        How the image is extended beyond its border, as in ``scipy.ndimage`` ("constant" pads
        with 0).
    device : None, str or torch.device, optional
        Where to compute: ``None`` picks CUDA, then Apple MPS, then the CPU.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        Same shape as ``image``, in the image's unit; float64 for float64 input, float32 for
        every other dtype (lazy for dask input).

    Raises
    ------
    ValueError, TypeError
        As for :func:`median`.

    Notes
    -----
    The result equals ``scipy.ndimage.generic_filter(image.astype(float), np.std,
    footprint=fp, mode=mode)`` to the accuracy of the result's dtype; see :func:`variance`.
    """
    image, fp = prepare(image, radius, spacing, mode)

    def kernel(t):
        return _local_variance(t, fp, mode).sqrt_()

    return _run(kernel, image, fp, _core.float_dtype(image.dtype), mode, device)

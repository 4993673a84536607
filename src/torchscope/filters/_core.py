"""What every filter shares: input checks, physical units, footprints, borders, dispatch.

A filter is written once, as a function of a tensor; :func:`apply` runs it on a numpy array (on
the chosen device) or lazily on a dask array (block by block with the overlap it needs).
"""

import numbers

import numpy as np

from torchscope.backend import (
    as_array,
    check_int,
    compute_dtype,
    get_device,
    is_double,
    on_device,
    to_numpy,
    to_tensor,
)

MODES = ("reflect", "nearest", "mirror", "wrap", "constant")


# --------------------------------------------------------------------------- input checks
def is_dask(image):
    """True for a dask array (without importing dask when it is not loaded)."""
    return type(image).__module__.startswith("dask.")


def check_image(image, name="image"):
    """Validate an image: a real-valued numpy (or dask) array of at least one dimension.

    Returns the array itself (numpy arrays via ``np.asarray``; no copy). NaN is checked where
    the data are computed (:func:`apply`), so dask arrays stay lazy.
    """
    if not is_dask(image):
        image = as_array(image, name)
    dtype = np.dtype(image.dtype)
    if dtype.kind not in "biuf":
        raise TypeError(
            f"{name} has dtype {dtype}; accepted: bool, integer or real floating point "
            f"(split colour or complex data into real channels first)."
        )
    if image.ndim < 1:
        raise ValueError(f"{name} must have at least one dimension, got a scalar.")
    if image.size == 0:
        raise ValueError(f"{name} is empty (shape {image.shape}).")
    return image


def check_mode(mode):
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not a border mode; accepted: {MODES}.")
    return mode


def per_axis(value, ndim, name, *, allow_zero=True):
    """A scalar or one value per axis, as a tuple of ``ndim`` non-negative floats."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        values = (float(value),) * ndim
    else:
        try:
            if isinstance(value, (str, bytes)):
                raise TypeError
            values = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must be a number or a sequence of {ndim} numbers, got {value!r}."
            ) from None
        if len(values) != ndim:
            raise ValueError(
                f"{name}={value!r} has {len(values)} values but the image has {ndim} axes."
            )
    for v in values:
        if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else "> 0"
            raise ValueError(f"{name}={value!r}: every value must be finite and {bound}.")
    return values


def to_pixels(value, ndim, spacing, name):
    """``value`` (scalar or per axis) in pixels: divided by ``spacing`` when that is given.

    ``spacing`` is the voxel size per axis in the same physical unit as ``value`` (a napari
    layer's ``scale``); ``None`` means ``value`` is already in pixels.
    """
    values = per_axis(value, ndim, name)
    if spacing is None:
        return values
    spacing = per_axis(spacing, ndim, "spacing", allow_zero=False)
    return tuple(v / s for v, s in zip(values, spacing))


# --------------------------------------------------------------------------- footprints
def footprint(radius, ndim=2, *, spacing=None):
    """The disc/ball footprint of a radius, as a bool array.

    Parameters
    ----------
    radius : float or sequence of float
        Radius in pixels, or in physical units when ``spacing`` is given. One value per axis
        gives an ellipsoid.
    ndim : int
        Number of axes.
    spacing : sequence of float, optional
        Voxel size per axis (same unit as ``radius``).

    Returns
    -------
    numpy.ndarray of bool
        Offsets ``d`` (in pixels, centred) with ``sum((d / r_pixels)**2) <= 1``; the half-size
        along each axis is ``floor(r_pixels)``. For an isotropic integer radius this is exactly
        ``skimage.morphology.disk(radius)`` (2D) or ``ball(radius)`` (3D).
    """
    ndim = check_int("ndim", ndim, 1, type_error=TypeError)
    radii = to_pixels(radius, ndim, spacing, "radius")
    half = [int(np.floor(r + 1e-9)) for r in radii]
    grids = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
    dist = sum((g / r) ** 2 if r > 0 else np.where(g == 0, 0.0, np.inf) for g, r in zip(grids, radii))
    return np.asarray(dist <= 1 + 1e-9)


# --------------------------------------------------------------------------- borders
def border_index(n, before, after, mode):
    """Indices (numpy int64) that extend an axis of length ``n`` by ``before``/``after``.

    Modes follow ``scipy.ndimage``: ``reflect`` (d c b a | a b c d | d c b a), ``nearest``
    (a a a | a b c d | d d d), ``mirror`` (d c b | a b c d | c b a), ``wrap``
    (b c d | a b c d | a b c). ``constant`` is handled by :func:`pad`.
    """
    idx = np.arange(-before, n + after)
    if mode == "nearest":
        return np.clip(idx, 0, n - 1)
    if mode == "wrap":
        return np.mod(idx, n)
    if mode == "reflect":
        m = np.mod(idx, 2 * n)
        return np.where(m >= n, 2 * n - 1 - m, m)
    if mode == "mirror":
        if n == 1:
            return np.zeros_like(idx)
        m = np.mod(idx, 2 * n - 2)
        return np.where(m >= n, 2 * n - 2 - m, m)
    raise ValueError(f"mode={mode!r} has no index form.")


def pad(t, widths, mode, cval=0.0):
    """Pad tensor ``t`` by ``widths`` (one ``(before, after)`` per axis) with a scipy mode."""
    import torch

    if mode == "constant":
        flat = []
        for before, after in reversed(widths):
            flat += [before, after]
        if t.dtype == torch.bool:
            return torch.nn.functional.pad(t.to(torch.uint8), flat, value=int(bool(cval))).bool()
        return torch.nn.functional.pad(t, flat, value=cval)
    for axis, (before, after) in enumerate(widths):
        if before == 0 and after == 0:
            continue
        n = t.shape[axis]
        if mode == "nearest" and before <= n and after <= n:
            # cheaper than a gather: copy the core and fill the edges by broadcasting
            shape = list(t.shape)
            shape[axis] = n + before + after
            out = t.new_empty(shape)
            out.narrow(axis, before, n).copy_(t)
            if before:
                out.narrow(axis, 0, before).copy_(t.narrow(axis, 0, 1).expand_as(out.narrow(axis, 0, before)))
            if after:
                out.narrow(axis, before + n, after).copy_(
                    t.narrow(axis, n - 1, 1).expand_as(out.narrow(axis, before + n, after))
                )
            t = out
            continue
        # copy the core and gather only the edges (a gather along the whole axis is several
        # times slower than a copy, especially along the last axis)
        index = to_tensor(border_index(n, before, after, mode), device=t.device)
        shape = list(t.shape)
        shape[axis] = n + before + after
        out = t.new_empty(shape)
        out.narrow(axis, before, n).copy_(t)
        if before:
            out.narrow(axis, 0, before).copy_(t.index_select(axis, index[:before]))
        if after:
            out.narrow(axis, before + n, after).copy_(t.index_select(axis, index[before + n :]))
        t = out
    return t


# --------------------------------------------------------------------------- dtypes
def float_dtype(dtype):
    """The numpy float dtype of a smoothing/edge result: float64 stays, the rest is float32."""
    return np.dtype(np.float64) if is_double(dtype) else np.dtype(np.float32)


# --------------------------------------------------------------------------- dispatch
def apply(kernel, image, *, depth, dtype, device=None, mode="nearest", check_nan=True):
    """Run ``kernel`` (a function of one tensor) on a numpy or dask image.

    Parameters
    ----------
    kernel : callable
        ``kernel(tensor) -> tensor`` of the same shape. It receives the image on the device in
        its own dtype (uint16/uint32 widened; see :func:`torchscope.backend.to_tensor`) and
        pads by itself.
    image : numpy.ndarray or dask.array.Array
        Checked with :func:`check_image` by the caller.
    depth : sequence of int
        Overlap per axis the kernel needs (its reach, in pixels): dask blocks get that much of
        their neighbours, so the blockwise result equals the in-memory one.
    dtype : numpy dtype
        Dtype of the result.
    device : None, str or torch.device
    mode : str
        The kernel's border mode (dask blocks need to know whether it wraps around).
    check_nan : bool
        Raise ``ValueError`` on NaN in floating input.

    Returns
    -------
    numpy.ndarray, or a lazy dask array for dask input.
    """
    dtype = np.dtype(dtype)
    if is_dask(image):
        return _apply_dask(
            kernel, image, depth=depth, dtype=dtype, device=device, mode=mode,
            check_nan=check_nan,
        )
    return _apply_numpy(kernel, image, dtype=dtype, device=device, check_nan=check_nan)


@on_device
def _apply_numpy(kernel, image, *, dtype, device, check_nan):
    import torch

    # the dtype policy: float64 stays float64 except where the device has none (Apple MPS)
    float64 = is_double(image.dtype)
    t = to_tensor(image, device=device, dtype=compute_dtype(image.dtype, device) if float64 else None)
    # min and max propagate NaN and show infinities: one reduction, far cheaper than isfinite
    if check_nan and t.is_floating_point() and t.numel():
        lo, hi = torch.aminmax(t)
        if not bool(torch.isfinite(lo) & torch.isfinite(hi)):
            raise ValueError(
                "image contains NaN or infinite values; torchscope filters do not define a "
                "result for them. Replace them first, e.g. np.nan_to_num(image, nan=value, "
                "posinf=value, neginf=value)."
            )
    return to_numpy(kernel(t), dtype)


def _apply_dask(kernel, image, *, depth, dtype, device, mode, check_nan):
    import dask.array as da

    depth = [int(d) for d in depth]
    # An axis the kernel reaches across entirely is computed in one chunk; an axis in one chunk
    # needs no overlap (the kernel pads the array's own edges). dask itself enlarges chunks
    # that are smaller than the overlap they lend.
    whole = {axis: -1 for axis, d in enumerate(depth) if d >= image.shape[axis]}
    if whole:
        image = image.rechunk(whole)
    depth = tuple(0 if len(c) == 1 else d for c, d in zip(image.chunks, depth))
    dev = get_device(device)

    def block(b):
        return _apply_numpy(kernel, b, dtype=dtype, device=dev, check_nan=check_nan)

    return da.map_overlap(
        block,
        image,
        depth=depth,
        # interior block edges get their neighbours' data; the kernel pads the array's own
        # edges with its mode, except "wrap", whose halo comes from the other side
        boundary="periodic" if mode == "wrap" else "none",
        dtype=dtype,
        meta=np.empty((0,) * image.ndim, dtype=dtype),
    )


def each_plane(function, image, ndim, *args, **kwargs):
    """Apply a filter to each 2D plane (or 3D volume) of a stack on its own.

    ``function(sub, *args, **kwargs)`` runs on every ``ndim``-D sub-array over the last
    ``ndim`` axes of ``image``: the planes of a time series or a channel stack, whose leading
    axes are not space and must not be smoothed across. Give ``spacing`` for those ``ndim``
    axes only.

    Parameters
    ----------
    function : callable
        A function of :mod:`torchscope.filters` (or any that keeps the shape), e.g.
        :func:`gaussian`; a threshold is then computed per plane.
    image : array_like or dask array, at least ``ndim`` dimensions
    ndim : {2, 3}
        Dimensions of each sub-array: the last ``ndim`` axes of ``image``.
    *args, **kwargs
        Passed on to ``function``.

    Returns
    -------
    numpy.ndarray or dask array
        The results in ``image``'s shape (a lazy dask array for a dask input).

    Raises
    ------
    TypeError
        If ``function`` is not callable.
    ValueError
        If ``ndim`` is not 2 or 3, ``image`` has fewer than ``ndim`` dimensions or no plane (a
        leading axis of length 0), ``spacing`` is not the planes' own, or ``function`` changes
        a plane's shape.
    """
    if not callable(function):
        raise TypeError(f"function must be callable (e.g. torchscope.filters.gaussian), got "
                        f"{type(function).__name__}.")
    if not isinstance(ndim, numbers.Integral) or isinstance(ndim, bool) or ndim not in (2, 3):
        raise ValueError(f"ndim must be 2 or 3 (the axes of each plane or volume), got {ndim!r}.")
    ndim = int(ndim)
    data = image if is_dask(image) else np.asarray(image)
    if data.ndim < ndim:
        raise ValueError(f"image has shape {data.shape}: fewer than ndim={ndim} axes.")
    spacing = kwargs.get("spacing")
    if spacing is not None and np.ndim(spacing) == 1 and len(spacing) != ndim:
        raise ValueError(f"spacing={tuple(spacing)!r} has {len(spacing)} values; each_plane "
                         f"passes it to every {ndim}-D plane: give the last {ndim} axes' only.")
    lead = data.shape[:data.ndim - ndim]
    if 0 in lead:
        raise ValueError(f"image has shape {data.shape}: no plane to filter.")
    plane_shape = data.shape[data.ndim - ndim:]
    planes = []
    for index in np.ndindex(*lead):
        result = function(data[index], *args, **kwargs)
        if np.shape(result) != plane_shape:
            raise ValueError(f"function returned shape {np.shape(result)} for a plane of shape "
                             f"{plane_shape}; each_plane needs a function that keeps it (a "
                             "filter, not a measurement).")
        planes.append(result)
    if is_dask(data):
        import dask.array as da

        return da.stack(planes).reshape(data.shape)
    return np.stack(planes).reshape(data.shape)

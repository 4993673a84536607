"""Where each probe window sits in the object, and input checks shared by simulator and engines.

A position ``p = (py, px)`` (pixels from the object's centre) puts the probe's centre pixel
``(ny // 2, nx // 2)`` on the object pixel ``(Oy // 2 + py, Ox // 2 + px)``. The window's
top-left corner is then ``t = (Oy // 2 - ny // 2 + py, Ox // 2 - nx // 2 + px)``, split into a
whole-pixel part ``k = round(t)`` and a sub-pixel part ``f = t - k`` in [-0.5, 0.5].
"""

from numbers import Integral

import numpy as np

from torchscope.backend import as_array


def window_corners(positions, obj_shape, win_shape):
    """Top-left corners (P, 2) float of the windows in object pixels (numpy or torch)."""
    base = np.array([obj_shape[0] // 2 - win_shape[0] // 2, obj_shape[1] // 2 - win_shape[1] // 2],
                    dtype=np.float64)
    if isinstance(positions, np.ndarray):
        return positions + base
    from torchscope.backend import to_tensor

    return positions + to_tensor(base, device=positions.device, dtype=positions.dtype)


def check_windows_fit(positions, obj_shape, win_shape, *, name="positions"):
    """Raise a ValueError naming the first position whose window leaves the object."""
    corners = np.round(window_corners(np.asarray(positions, np.float64), obj_shape, win_shape))
    low = corners.min(axis=0)
    high = corners.max(axis=0) + np.asarray(win_shape)
    if np.all(low >= 0) and np.all(high <= np.asarray(obj_shape)):
        return
    bad = np.flatnonzero(np.any((corners < 0) | (corners + np.asarray(win_shape) > np.asarray(obj_shape)), axis=1))
    j = int(bad[0])
    raise ValueError(
        f"{name}: the {win_shape[0]}x{win_shape[1]} probe window at position {j} "
        f"{tuple(np.round(np.asarray(positions)[j], 3))} leaves the {obj_shape[0]}x{obj_shape[1]} object "
        f"({len(bad)} position(s) do); positions are (y, x) pixels from the object's centre, so "
        f"each must stay within half the object size minus half the probe size"
    )


def check_shape(shape, name="obj_shape"):
    """An object shape ``(Oy, Ox)`` of positive integers, as a tuple of ints."""
    dims = tuple(np.atleast_1d(shape))
    if len(dims) != 2 or not all(isinstance(s, Integral) and s > 0 for s in dims):
        raise ValueError(f"{name} must be (Oy, Ox) positive integers, got {shape!r}")
    return tuple(int(s) for s in dims)


def check_positions(positions, name="positions_px"):
    pos = as_array(positions, name)
    if pos.ndim != 2 or pos.shape[1] != 2 or pos.shape[0] < 1:
        raise ValueError(f"{name} must be an array of shape (P, 2) with (y, x) rows, got shape {pos.shape}")
    if pos.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be numeric, got dtype {pos.dtype}")
    pos = pos.astype(np.float64)
    if not np.all(np.isfinite(pos)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return pos


def check_probe(probe, name="probe"):
    """A probe as a (modes, ny, nx) complex128 array."""
    p = np.asarray(probe)
    if p.dtype.kind not in "iufc":
        raise TypeError(f"{name} must be a numeric (complex) array, got dtype {p.dtype}")
    if p.ndim == 2:
        p = p[None]
    if p.ndim != 3 or min(p.shape[1:]) < 4 or p.shape[0] < 1:
        raise ValueError(f"{name} must be (ny, nx) or (modes, ny, nx) with sides >= 4, got shape {np.shape(probe)}")
    p = p.astype(np.complex128)
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} holds NaN or infinite values")
    if not np.any(p):
        raise ValueError(f"{name} is zero everywhere")
    return p


def check_object(obj, name="obj"):
    o = np.asarray(obj)
    if o.dtype.kind not in "iufc":
        raise TypeError(f"{name} must be a numeric (complex) array, got dtype {o.dtype}")
    if o.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (complex) image, got shape {o.shape}")
    o = o.astype(np.complex128)
    if not np.all(np.isfinite(o)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return o

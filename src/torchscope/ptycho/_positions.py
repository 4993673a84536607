"""Scan patterns: raster grids with jitter, and Fermat spirals.

Positions are (y, x) in sample-plane pixels, measured from the object's centre.
"""

import math
from numbers import Integral, Real

import numpy as np

from torchscope.backend import check_int, check_real, check_rng

GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))


def _pair(name, value, *, integer=False, positive=True):
    vals = tuple(np.atleast_1d(value))
    if len(vals) == 1:
        vals = vals * 2
    kinds = Integral if integer else Real
    ok = len(vals) == 2 and all(isinstance(v, kinds) and not isinstance(v, bool) for v in vals)
    ok = ok and all(math.isfinite(v) and (v > 0 if positive else v >= 0) for v in vals)
    if not ok:
        what = "positive integers" if integer else ("positive numbers" if positive else "numbers >= 0")
        raise ValueError(f"{name} must be one or two {what}, got {value!r}")
    return tuple(int(v) if integer else float(v) for v in vals)


def _jitter(n, jitter, integer, rng):
    gen = check_rng(rng)
    jy, jx = jitter
    if integer:
        return np.stack([gen.integers(-math.floor(j), math.floor(j) + 1, size=n)
                         for j in (jy, jx)], axis=-1).astype(np.float64)
    return np.stack([gen.uniform(-j, j, size=n) for j in (jy, jx)], axis=-1)


def raster_positions(grid, step_px, *, jitter_px=0.0, integer=False, rng=None):
    """A raster grid of scan positions, centred on the object, with optional random jitter.

    Jitter breaks the periodicity that produces the raster-grid pathology of ptychography.

    Parameters
    ----------
    grid : int or (int, int)
        Number of positions along (y, x).
    step_px : float or (float, float)
        Step between neighbouring positions, in sample pixels.
    jitter_px : float or (float, float)
        Each position moves by an independent random amount, uniform in
        ``[-jitter_px, jitter_px]`` per axis.
    integer : bool
        Keep positions on whole pixels: the grid is rounded, and the jitter is drawn from the
        integers in ``[-jitter_px, jitter_px]``.
    rng : None, int or numpy.random.Generator
        Seed or generator for the jitter.

    Returns
    -------
    ndarray, (ny * nx, 2) float64
        Positions (y, x) in pixels from the object's centre, row by row.
    """
    gy, gx = _pair("grid", grid, integer=True)
    sy, sx = _pair("step_px", step_px)
    jitter = _pair("jitter_px", jitter_px, positive=False)
    y = (np.arange(gy) - (gy - 1) / 2.0) * sy
    x = (np.arange(gx) - (gx - 1) / 2.0) * sx
    pos = np.stack(np.meshgrid(y, x, indexing="ij"), axis=-1).reshape(-1, 2)
    if integer:
        pos = np.floor(pos + 0.5)  # halves up: numpy's round-half-to-even made uneven steps
    if any(jitter):
        pos = pos + _jitter(len(pos), jitter, integer, rng)
    return pos


def raster_grid(object_shape, probe_px, step_px, *, jitter_px=0.0):
    """The largest raster :func:`raster_positions` can scan over an object with the probe
    inside it: every window of ``probe_px`` pixels, at any jitter, within the object with a
    pixel to spare on each side.

    Parameters
    ----------
    object_shape : (int, int)
        The object's shape (y, x) in sample pixels.
    probe_px : int or (int, int)
        The probe's (window's) size in pixels.
    step_px, jitter_px : float or (float, float)
        As for :func:`raster_positions`.

    Returns
    -------
    (int, int)
        Positions along (y, x), at least 1 each: ``floor((size - probe - 2 jitter - 2) /
        step) + 1``.
    """
    shape = _pair("object_shape", object_shape, integer=True)
    probe = _pair("probe_px", probe_px, integer=True)
    step = _pair("step_px", step_px)
    jitter = _pair("jitter_px", jitter_px, positive=False)
    return tuple(max(int((size - n - 2 * j - 2) // s) + 1, 1)
                 for size, n, s, j in zip(shape, probe, step, jitter))


def fermat_spiral_positions(n, step_px, *, jitter_px=0.0, rng=None):
    """Scan positions on a Fermat (sunflower) spiral, which has no raster periodicity.

    Point ``k`` sits at radius ``c sqrt(k)`` and angle ``k`` times the golden angle, with
    ``c = step_px / sqrt(pi)`` so that every point covers an area of ``step_px**2`` on average
    (the same density as a raster with that step).

    Parameters
    ----------
    n : int
        Number of positions.
    step_px : float
        Mean spacing in sample pixels.
    jitter_px : float
        Optional uniform random jitter per axis, in pixels.
    rng : None, int or numpy.random.Generator
        Seed or generator for the jitter.

    Returns
    -------
    ndarray, (n, 2) float64
        Positions (y, x) in pixels from the object's centre, from the centre outwards.
    """
    n = check_int("n", n, 1, type_error=ValueError)
    step = check_real("step_px", step_px, 0, low_open=True, type_error=ValueError)
    jitter = _pair("jitter_px", jitter_px, positive=False)
    k = np.arange(int(n), dtype=np.float64)
    radius = step / math.sqrt(math.pi) * np.sqrt(k)
    angle = k * GOLDEN_ANGLE
    pos = np.stack((radius * np.sin(angle), radius * np.cos(angle)), axis=-1)
    if any(jitter):
        pos = pos + _jitter(len(pos), jitter, False, rng)
    return pos

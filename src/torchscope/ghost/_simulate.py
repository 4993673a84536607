"""The x-ray single-pixel measurement: masks with finite contrast and flaws, Poisson counting."""

import numpy as np

from torchscope.backend import check_real, check_rng

#: Masks simulated at a time: the float64 work arrays stay a few times this many masks, not
#: a few times the whole set (a 128 x 128 set of 16384 masks took 6-8 GB beyond its own 1 GB)
_CHUNK = 256


def check_patterns(patterns, name="patterns"):
    """Patterns as a real (M, h, w) array, in their own dtype; validated."""
    p = np.asarray(patterns)
    if p.dtype.kind not in "biuf":
        raise TypeError(f"{name} has dtype {p.dtype}; expected a real (M, n, n) array.")
    if p.ndim != 3 or p.shape[0] < 1:
        raise ValueError(f"{name} has shape {p.shape}; expected a stack (M, n, n) of masks.")
    if p.dtype.kind == "f" and not all(np.isfinite(p[i:i + _CHUNK]).all()
                                       for i in range(0, len(p), _CHUNK)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return p


def simulate_buckets(obj, patterns, *, modulation_depth=1.0, mask_error=0.0, blur=0.0,
                     photons=None, read_noise=0.0, rng=None):
    """Bucket-detector signals of an object under a set of masks, with the x-ray mask model.

    For a nominal mask ``p`` (1 = open, 0 = opaque, values in between allowed) the physical
    transmission is ``t = (1 - D_r (1 - blur(p))) * (1 + e)``: the opaque metal still passes a
    fraction ``1 - D_r`` (the paper's modulation depth ratio ``D_r = (D_max - D_min) / D_max``:
    0.75 for its Cu mask, 0.83 for its Au mask), sloped etched edges blur the mask, and uneven
    etching gives each pixel of each mask a transmission error ``e ~ N(0, mask_error**2)``
    (drawn once for the whole set, clipped so that ``t >= 0``). The bucket value is
    ``sum(t * obj)``; with ``photons`` it is a Poisson count of mean ``photons * sum(t * obj)``.
    Detector read noise ``N(0, read_noise**2)`` is added last.

    Patterns with negative values are differential (e.g. ``kind="differential"`` of
    :func:`hadamard_patterns`): ``p = p+ - p-`` with ``p+ = max(p, 0)`` and
    ``p- = max(-p, 0)`` measured as two physical masks (each with its own errors and noise),
    and the bucket is their difference.

    Parameters
    ----------
    obj : array_like, shape (..., n, n)
        Transmission of the object per mask pixel (usually in [0, 1]); a stack gives a stack of
        bucket vectors.
    patterns : array_like, shape (M, n, n)
        Nominal masks.
    modulation_depth : float, optional
        ``D_r`` in (0, 1]; 1 means perfectly opaque metal.
    mask_error : float, optional
        Relative standard deviation of the per-pixel transmission (e.g. 0.03 for 3 %).
    blur : float, optional
        Standard deviation of the Gaussian blur of the masks (sloped edges), in mask pixels.
    photons : float or None, optional
        Mean number of photons reaching the detector through one fully open mask pixel over
        an open object pixel (the dose per exposure). ``None``: noise-free intensities, in units
        of one open pixel.
    read_noise : float, optional
        Standard deviation of the Gaussian detector noise, in the units of the result (counts
        when ``photons`` is given).
    rng : None, int or numpy.random.Generator, optional
        Seed or generator for the mask errors and the noise; the same seed gives the same
        result.

    Returns
    -------
    numpy.ndarray of float64, shape (..., M)
        Bucket values: photon counts when ``photons`` is given, else intensities.
    """
    import scipy.ndimage as ndi

    p = check_patterns(patterns)
    o = np.asarray(obj)
    if o.dtype.kind not in "biuf":
        raise TypeError(f"obj has dtype {o.dtype}; expected a real (n, n) array.")
    if o.ndim < 2 or o.shape[-2:] != p.shape[1:]:
        raise ValueError(f"obj has shape {o.shape} but the masks are {p.shape[1:]}; the last two "
                         "axes of obj must match the mask size.")
    o = o.astype(np.float64, copy=False)
    if not np.isfinite(o).all():
        raise ValueError("obj contains NaN or infinite values.")
    depth = check_real("modulation_depth", modulation_depth, 0, 1, low_open=True)
    mask_error = check_real("mask_error", mask_error, 0)  # finite (high=None: open)
    blur = check_real("blur", blur, 0)
    read_noise = check_real("read_noise", read_noise, 0)
    photons = check_real("photons", photons, 0, low_open=True, allow_none=True)
    gen = check_rng(rng)

    m, h, w = p.shape
    flat_obj = o.reshape(*o.shape[:-2], h * w)

    def measure(sign):
        # chunks of masks in order: the random stream is drawn in the same order as at once
        mean = np.empty((*flat_obj.shape[:-1], m))
        for start in range(0, m, _CHUNK):
            mask = np.clip(sign * p[start:start + _CHUNK].astype(np.float64), 0.0, None)
            if blur > 0:
                mask = ndi.gaussian_filter(mask, (0, blur, blur), mode="nearest")
            t = 1.0 - depth * (1.0 - mask)
            if mask_error > 0:
                t *= np.clip(1.0 + mask_error * gen.standard_normal(t.shape), 0.0, None)
            mean[..., start:start + _CHUNK] = flat_obj @ t.reshape(len(t), h * w).T
        if photons is None:
            return mean
        return gen.poisson(np.clip(mean, 0.0, None) * photons).astype(np.float64)

    if p.min() < 0:
        buckets = measure(1.0) - measure(-1.0)
    else:
        buckets = measure(1.0)
    if read_noise > 0:
        buckets = buckets + read_noise * gen.standard_normal(buckets.shape)
    return buckets

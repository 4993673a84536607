"""Image quality of ghost images."""

import numpy as np


def cnr(image, object_mask, *, background_mask=None):
    """Contrast-to-noise ratio, equation (1) of He et al. (``papers/000``).

    ``CNR = (<G_1> - <G_0>) / sqrt(sigma_1**2 + sigma_0**2)``, where ``G_1`` and ``G_0`` are
    the image values at pixels where the object transmits (1) and does not (0), and
    ``sigma**2 = <G**2> - <G>**2`` their (population) variances.

    Parameters
    ----------
    image : array_like, shape (..., n, n)
        One image or a stack (e.g. the output of :func:`reconstruct`).
    object_mask : array_like of bool, shape (n, n)
        True where the object transmits (``G_1``).
    background_mask : array_like of bool, shape (n, n), optional
        The ``G_0`` pixels; default: every pixel outside ``object_mask``.

    Returns
    -------
    float or numpy.ndarray
        Dimensionless; one value per image of a stack. ``inf`` for a noiseless two-level image,
        0 for an image without contrast and noise (a constant one).
    """
    raw = np.asarray(image)
    if raw.ndim < 2:
        raise ValueError(f"image has shape {raw.shape}; expected an (n, n) image or a stack.")
    if raw.dtype.kind not in "biuf":
        raise TypeError(f"image has dtype {raw.dtype}; expected real values.")
    img = raw.astype(np.float64, copy=False)
    if not np.isfinite(img).all():
        raise ValueError("image contains NaN or infinite values.")
    obj = np.asarray(object_mask)
    if obj.dtype != bool:
        raise TypeError(f"object_mask must be a bool array, got dtype {obj.dtype}.")
    bg = ~obj if background_mask is None else np.asarray(background_mask)
    if bg.dtype != bool:
        raise TypeError(f"background_mask must be a bool array, got dtype {bg.dtype}.")
    if img.ndim < 2 or obj.shape != img.shape[-2:] or bg.shape != img.shape[-2:]:
        raise ValueError(f"image has shape {img.shape}; object_mask {obj.shape} and "
                         f"background_mask {bg.shape} must match its last two axes.")
    if not obj.any() or not bg.any():
        raise ValueError("object_mask and background_mask must each select at least one pixel.")
    g1, g0 = img[..., obj], img[..., bg]
    num = g1.mean(-1) - g0.mean(-1)
    den = np.sqrt(g1.var(-1) + g0.var(-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where((num == 0) & (den == 0), 0.0, num / den)
    return float(out) if out.ndim == 0 else out

"""The whole pipeline: pick a region, estimate the kernel there, deblur the whole image."""

import dataclasses
import numbers

import numpy as np

from torchscope.deblur._checks import (
    check_choice,
    check_image,
    check_int,
    float_dtype,
    to_gray,
    unit_range,
    working_range,
)
from torchscope.deblur._deconvolve import DECONVOLUTION_METHODS, deconvolve
from torchscope.deblur._estimate import METHODS, estimate_kernel
from torchscope.deblur._regions import SCORERS, score_regions


@dataclasses.dataclass(frozen=True)
class Deblurred:
    """Result of :func:`deblur`.

    Attributes
    ----------
    image : numpy.ndarray, the input's shape
        The deblurred image in the input's units, clipped to its range (the dtype's range
        for integers, [0, 1] for float images within [-0.5, 1.5], else the input's
        [min, max]).
    kernel : numpy.ndarray of float64, shape (kernel_size, kernel_size)
        The estimated kernel (sums to 1).
    region : tuple of int
        ``(row, col, height, width)`` of the region the kernel was estimated from.
    """

    image: np.ndarray
    kernel: np.ndarray
    region: tuple


def _check_region(region, shape, kernel_size):
    if not (isinstance(region, (tuple, list, np.ndarray)) and len(region) == 4
            and all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                    for v in region)):
        raise TypeError(f"region must be 'auto', 'whole' or four integers (row, col, height, "
                        f"width), got {region!r}.")
    row, col, h, w = (int(v) for v in region)
    if row < 0 or col < 0 or row + h > shape[0] or col + w > shape[1]:
        raise ValueError(f"region={tuple(region)} reaches outside the image of shape {shape}.")
    if min(h, w) < 2 * kernel_size:
        raise ValueError(f"region={tuple(region)} is too small for kernel_size={kernel_size}: "
                         f"height and width must be at least {2 * kernel_size} pixels.")
    return row, col, h, w


def deblur(image, kernel_size, *, region="auto", scorer="cnn", size=228, method="dark_channel",
           deconvolution="hyper_laplacian", rng=None, device=None):
    """Blind deblurring from one good region: estimate the kernel there, deconvolve everything.

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, 3)
        The blurred image (uniform blur). The kernel is estimated on its luminance; a colour
        image is deconvolved channel by channel.
    kernel_size : int
        Side of the square kernel in pixels, odd, at least as large as the blur.
    region : "auto", "whole" or (row, col, height, width), optional
        Where to estimate the kernel: ``"auto"`` takes the best ``size`` x ``size`` region
        of :func:`score_regions` with ``scorer`` (the whole image when it is smaller than
        ``size``); ``"whole"`` the whole image; or an explicit box in pixels.
    scorer : {"cnn", "variance", "edges", "random"}, optional
        Scorer of ``region="auto"``.
    size : int, optional
        Side of the scored regions (``region="auto"``).
    method : {"dark_channel", "l0"}, optional
        Kernel estimation, see :func:`estimate_kernel`.
    deconvolution : {"hyper_laplacian", "wiener", "richardson_lucy"}, optional
        Non-blind deconvolution of the whole image, see :func:`deconvolve`.
    rng : None, int or numpy.random.Generator, optional
        Seed of ``scorer="random"`` (the only scorer that takes one).
    device : None, str or torch.device, optional
        Where to compute (default: CUDA, then MPS, then the CPU).

    Returns
    -------
    Deblurred
        ``image``, ``kernel`` and ``region``.
    """
    img = check_image("image", image)
    kernel_size = check_int("kernel_size", kernel_size, 3, odd=True)
    check_choice("method", method, METHODS)
    check_choice("deconvolution", deconvolution, DECONVOLUTION_METHODS)
    shape = img.shape[:2]
    if isinstance(region, str):
        check_choice("region", region, ("auto", "whole"))
        if region == "auto":
            check_choice("scorer", scorer, SCORERS)
            size = check_int("size", size, 8)
            if size < 2 * kernel_size <= min(shape):  # checked before the scoring's cost
                raise ValueError(
                    f"size={size} regions are too small for kernel_size={kernel_size}: their "
                    f"sides must be at least {2 * kernel_size} pixels; use a larger size or "
                    "region='whole'.")
        if region == "whole" or size > min(shape):
            box = (0, 0) + tuple(shape)
        else:
            best = score_regions(img, size=size, scorer=scorer, rng=rng, device=device).top(1)
            box = tuple(int(v) for v in best.boxes[0])
        box = _check_region(box, shape, kernel_size)
    else:
        box = _check_region(region, shape, kernel_size)
    row, col, h, w = box
    gray = to_gray(working_range(img)[0])
    kernel = estimate_kernel(gray[row:row + h, col:col + w], kernel_size, method=method,
                             device=device)
    restored = deconvolve(img, kernel, method=deconvolution, device=device)
    _, offset, scale = unit_range(img)
    restored = np.clip(restored, offset, offset + scale).astype(float_dtype(img))
    return Deblurred(image=restored, kernel=kernel, region=box)

"""Input checks and intensity scaling shared by the deblur functions."""

import numpy as np

# the scalar checks live in the backend; re-exported for the deblur modules that import them here
from torchscope.backend import (  # noqa: F401
    as_array,
    check_choice,
    check_int,
    check_real,
    check_rng,
    is_double,
)

# luminance weights of ITU-R BT.709, as skimage.color.rgb2gray uses them
_LUMA = np.array([0.2125, 0.7154, 0.0721])


def as_real_array(name, value, ndims):
    """``value`` as a numpy array of a real dtype with ``ndim`` in ``ndims``, finite."""
    a = as_array(value, name)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} has dtype {a.dtype}; expected a real (bool, integer or float) "
                        "array.")
    if a.ndim not in ndims:
        raise ValueError(f"{name} has shape {a.shape}; expected {' or '.join(ndims.values())}.")
    if a.size == 0:
        raise ValueError(f"{name} is empty (shape {a.shape}).")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return a


def check_image(name, image, *, color=True):
    """A 2-D image, or a colour image (H, W, 3) when ``color``; returned as a numpy array."""
    kinds = {2: "a 2-D image (H, W)"}
    if color:
        kinds[3] = "a colour image (H, W, 3)"
    a = as_real_array(name, image, kinds)
    if a.ndim == 3 and a.shape[-1] != 3:
        raise ValueError(f"{name} has shape {a.shape}; a 3-D image must be colour (H, W, 3) "
                         "with the channels last.")
    return a


def check_kernel(name, kernel):
    """A 2-D blur kernel with a positive sum, as float64."""
    k = as_real_array(name, kernel, {2: "a 2-D kernel (kh, kw)"}).astype(np.float64)
    if not k.sum() > 0:
        raise ValueError(f"{name} sums to {k.sum():g}; a blur kernel must have a positive sum "
                         "(usually 1).")
    return k


def to_gray(image):
    """A colour (H, W, 3) image as luminance; a 2-D image unchanged."""
    if image.ndim == 3:
        return image.astype(np.float64) @ _LUMA
    return image


def unit_range(image):
    """The scale that maps ``image`` onto [0, 1], the range the default weights assume.

    Unsigned integer images are divided by their dtype's maximum (``uint8`` / 255, as
    ``skimage.img_as_float`` does), signed ones mapped from their dtype's ``[min, max]``, bools
    become 0/1, float images within [-0.5, 1.5] (a [0, 1] image with noise or ringing) stay as
    they are, and any other float image is mapped from ``[min, max]``. This is the range
    results are clipped to; :func:`working_range` is what the algorithms see.

    Returns
    -------
    scaled : numpy.ndarray of float64
    offset, scale : float
        ``image == scaled * scale + offset``.
    """
    a = np.asarray(image)
    if a.dtype == bool:
        return a.astype(np.float64), 0.0, 1.0
    if a.dtype.kind in "iu":
        info = np.iinfo(a.dtype)
        offset, scale = float(info.min), float(info.max) - float(info.min)
        return (a.astype(np.float64) - offset) / scale, offset, scale
    a = a.astype(np.float64)
    lo, hi = float(a.min()), float(a.max())
    if lo >= -0.5 and hi <= 1.5:
        return a, 0.0, 1.0
    scale = hi - lo if hi > lo else 1.0
    return (a - lo) / scale, lo, scale


#: An image whose white (its 99.9th percentile) lies below this after :func:`unit_range` is
#: scaled up to put it at 1 before estimation, deconvolution and scoring. Their default
#: weights are Pan et al.'s and Krishnan and Fergus', for images whose white is near 1; a
#: 12-bit camera's image stored as ``uint16`` reaches 1/16, and kernel estimation on a tenth
#: of the range returned a blob (its first latent image never left the blurred one). Only the
#: scale changes, not the offset: blur narrows an image's range (a blurred text page spans
#: 0.2 to 0.5 of it, its sharp page all of it), so stretching the range itself made the
#: latent image overshoot (the region evaluation lost 7 points of success that way).
MIN_WHITE = 0.5
_WHITE_PERCENTILE = 99.9


def working_range(image):
    """:func:`unit_range`, then for a dim image (white below ``MIN_WHITE``) a gain that puts
    its white at 1. Same returns as :func:`unit_range`: ``image == scaled * scale + offset``.
    Images whose white is at least ``MIN_WHITE`` are not changed, so results on them are as
    the authors' weights give; dimmer ones no longer depend on their exposure."""
    scaled, offset, scale = unit_range(image)
    white = float(np.percentile(scaled, _WHITE_PERCENTILE))
    if 0 < white < MIN_WHITE:
        scaled = scaled / white
        scale = scale * white
    return scaled, offset, scale


def float_dtype(image):
    """The float dtype of results for ``image``: float64 stays float64, the rest is float32."""
    return np.float64 if is_double(np.asarray(image).dtype) else np.float32

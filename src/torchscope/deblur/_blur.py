"""The blur model ``B = k * L + n``: convolution with a kernel plus Gaussian noise."""

import numpy as np

from torchscope.backend import check_rng, fft_convolve, get_device, to_numpy, to_tensor
from torchscope.deblur._checks import (
    check_choice,
    check_image,
    check_kernel,
    check_real,
    float_dtype,
)

BLUR_MODES = ("reflect", "nearest", "wrap", "same", "valid")


def blur(image, kernel, *, noise_sigma=0.0, rng=None, mode="reflect", device=None):
    """Blur an image with a kernel and add white Gaussian noise: ``B = k * L + n``.

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, 3)
        The sharp image ``L``; a colour image is blurred channel by channel.
    kernel : array_like, shape (kh, kw)
        The blur kernel ``k`` (centre at ``(kh // 2, kw // 2)``); not normalised here, so
        pass one that sums to 1 to keep the brightness.
    noise_sigma : float, optional
        Standard deviation of the noise ``n``, in the image's units (0.01 is 1 % of a [0, 1]
        image). The noise is drawn in numpy, so a seed gives the same noise on every device.
    rng : None, int or numpy.random.Generator, optional
        Seed or generator for the noise.
    mode : {"reflect", "nearest", "wrap", "same", "valid"}, optional
        What lies beyond the image's border: its mirror image (``"reflect"``, without
        repeating the edge pixel), the edge pixels (``"nearest"``), the opposite side
        (``"wrap"``) or zeros (``"same"``); these keep the shape. ``"valid"`` keeps only the
        pixels whose whole neighbourhood lies inside, shape ``(H - kh + 1, W - kw + 1)``.
    device : None, str or torch.device, optional
        Where to compute (default: CUDA, then MPS, then the CPU).

    Returns
    -------
    numpy.ndarray
        float64 for float64 input, float32 otherwise; not clipped.
    """
    img = check_image("image", image)
    k = check_kernel("kernel", kernel)
    sigma = check_real("noise_sigma", noise_sigma, 0.0)  # finite
    check_choice("mode", mode, BLUR_MODES)
    out_dtype = float_dtype(img)
    if mode == "valid" and (k.shape[0] > img.shape[0] or k.shape[1] > img.shape[1]):
        raise ValueError(f"mode='valid' needs the kernel {k.shape} to fit into the image "
                         f"{img.shape[:2]}.")
    if mode == "reflect" and (k.shape[0] // 2 >= img.shape[0] or k.shape[1] // 2 >= img.shape[1]):
        raise ValueError(f"mode='reflect' needs the image {img.shape[:2]} to be larger than half "
                         f"the kernel {k.shape}; use mode='wrap' or 'nearest'.")

    import torch

    dev = get_device(device)
    dtype = torch.float64 if out_dtype == np.float64 and dev.type != "mps" else torch.float32
    x = to_tensor(img, device=dev, dtype=dtype)
    if x.ndim == 3:
        x = x.permute(2, 0, 1)
    y = fft_convolve(x, to_tensor(k, device=dev, dtype=dtype), mode=mode)
    if y.ndim == 3:
        y = y.permute(1, 2, 0)
    out = to_numpy(y).astype(np.float64)
    if sigma > 0:
        out += check_rng(rng).normal(0.0, sigma, out.shape)
    return out.astype(out_dtype)

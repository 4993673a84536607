"""Non-blind deconvolution: hyper-Laplacian prior, Wiener filter, Richardson-Lucy.

All three work through the FFT on the image extended with
:func:`torchscope.backend.pad_periodic` (so the image's borders do not ring), on intensities
scaled to [0, 1], and return the result in the input's units, unclipped.
"""

import numpy as np

from torchscope.backend import (
    compute_dtype,
    fft_size,
    on_device,
    pad_periodic,
    psf2otf,
    to_numpy,
    to_tensor,
)
from torchscope.deblur._checks import (
    check_choice,
    check_image,
    check_int,
    check_kernel,
    check_real,
    float_dtype,
    working_range,
)

DECONVOLUTION_METHODS = ("hyper_laplacian", "wiener", "richardson_lucy")
_DEFAULT_BALANCE = {"hyper_laplacian": 5e-4, "wiener": 5e-3}
_DEFAULT_ITERATIONS = {"hyper_laplacian": 6, "richardson_lucy": 30}
_ALPHA = 2 / 3          # exponent of the hyper-Laplacian prior (Krishnan and Fergus)
_BETA_RATE = 2 * np.sqrt(2)


def _gst(v, lam, p, steps=3):
    """Generalised soft-thresholding (Zuo et al. 2013): argmin_w lam |w|^p + (w - v)^2 / 2."""
    import torch

    base = 2 * lam * (1 - p)
    tau = base ** (1 / (2 - p)) + lam * p * base ** ((p - 1) / (2 - p))
    mag = v.abs()
    w = mag
    for _ in range(steps):
        w = mag - lam * p * w.clamp_min(1e-12) ** (p - 1)
    return torch.where(mag > tau, torch.sign(v) * w, torch.zeros_like(v))


def _diff_otfs(shape, dtype, device):
    import torch

    dx = torch.tensor([[0.0, -1.0, 1.0]], dtype=dtype, device=device)  # forward differences
    return psf2otf(dx, shape), psf2otf(dx.T.contiguous(), shape)


def _hyper_laplacian(y, otf, shape, balance, iterations):
    """Krishnan and Fergus (NIPS 2009): half-quadratic splitting, |grad x|^(2/3) prior."""
    import torch

    fdx, fdy = _diff_otfs(shape, y.dtype, y.device)
    den_k = otf.real ** 2 + otf.imag ** 2
    den_d = fdx.real ** 2 + fdx.imag ** 2 + fdy.real ** 2 + fdy.imag ** 2
    num_k = otf.conj() * torch.fft.rfft2(y)
    x = y
    beta = 1.0
    for _ in range(iterations):
        fx = torch.fft.rfft2(x)
        gx = torch.fft.irfft2(fdx * fx, s=shape)
        gy = torch.fft.irfft2(fdy * fx, s=shape)
        wx, wy = _gst(gx, 1 / beta, _ALPHA), _gst(gy, 1 / beta, _ALPHA)
        c = beta * balance
        num = num_k + c * (fdx.conj() * torch.fft.rfft2(wx) + fdy.conj() * torch.fft.rfft2(wy))
        x = torch.fft.irfft2(num / (den_k + c * den_d), s=shape)
        beta *= _BETA_RATE
    return x


def _wiener(y, otf, shape, balance):
    import torch

    fdx, fdy = _diff_otfs(shape, y.dtype, y.device)
    den = otf.real ** 2 + otf.imag ** 2 + balance * (fdx.abs() ** 2 + fdy.abs() ** 2)
    return torch.fft.irfft2(otf.conj() * torch.fft.rfft2(y) / den, s=shape)


def _richardson_lucy(y, otf, shape, iterations):
    import torch

    eps = 1e-6
    y = y.clamp_min(eps)
    x = y
    for _ in range(iterations):
        estimate = torch.fft.irfft2(torch.fft.rfft2(x) * otf, s=shape).clamp_min(eps)
        x = x * torch.fft.irfft2(torch.fft.rfft2(y / estimate) * otf.conj(), s=shape)
    return x


@on_device
def deconvolve(image, kernel, *, method="hyper_laplacian", balance=None, iterations=None,
               device=None):
    """Deblur an image with a known kernel (non-blind deconvolution).

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, 3)
        The blurred image; a colour image is deconvolved channel by channel. Integer images
        are scaled by their dtype's maximum, float images beyond [-0.5, 1.5] from their
        [min, max], so that the default weights fit; the result is scaled back.
    kernel : array_like, shape (kh, kw)
        The blur kernel, centre at ``(kh // 2, kw // 2)``; normalised to sum 1 here.
    method : {"hyper_laplacian", "wiener", "richardson_lucy"}, optional
        ``"hyper_laplacian"``: Krishnan and Fergus (NIPS 2009), the sparse prior
        ``|grad x|**(2/3)`` by half-quadratic splitting, solving
        ``min_x ||k * x - y||^2 / 2 + balance * sum |grad x|^(2/3)``;
        ``"wiener"``: the regularised inverse filter
        ``conj(K) Y / (|K|^2 + balance |grad|^2)``; ``"richardson_lucy"``: the
        multiplicative maximum-likelihood iteration for Poisson noise.
    balance : float, optional
        Weight of the prior against the data term (``"hyper_laplacian"``: 5e-4, about right
        for 1 % noise; ``"wiener"``: 5e-3). Larger is smoother.
    iterations : int, optional
        ``"hyper_laplacian"``: continuation steps (6: the penalty grows from 1 to 181 by
        ``2 * sqrt(2)``); ``"richardson_lucy"``: iterations (30).
    device : None, str or torch.device, optional
        Where to compute (default: CUDA, then MPS, then the CPU).

    Returns
    -------
    numpy.ndarray, the image's shape
        float64 for float64 input, float32 otherwise; not clipped.
    """
    img = check_image("image", image)
    k = check_kernel("kernel", kernel)
    check_choice("method", method, DECONVOLUTION_METHODS)
    if balance is not None and method == "richardson_lucy":
        raise ValueError("balance is not an option of method='richardson_lucy'; use iterations.")
    if iterations is not None and method == "wiener":
        raise ValueError("iterations is not an option of method='wiener' (a direct filter).")
    if balance is None:
        balance = _DEFAULT_BALANCE.get(method)
    else:
        balance = check_real("balance", balance, 0.0, low_open=True)  # finite
    if iterations is None:
        iterations = _DEFAULT_ITERATIONS.get(method)
    else:
        iterations = check_int("iterations", iterations, 1)
    ny, nx = img.shape[:2]
    if k.shape[0] > ny or k.shape[1] > nx:
        raise ValueError(f"kernel of shape {k.shape} is larger than the image {img.shape[:2]}.")
    if method != "richardson_lucy" and min(ny, nx) < 2:
        # their priors are on the image's gradients, along both axes
        raise ValueError(f"image of shape {img.shape[:2]} is too small for method={method!r}: "
                         "each side must be at least 2 pixels.")

    import torch

    out_dtype = float_dtype(img)
    scaled, offset, scale = working_range(img)
    dtype = compute_dtype(out_dtype, device)
    y = to_tensor(scaled, device=device, dtype=dtype)
    y = y.permute(2, 0, 1) if y.ndim == 3 else y[None]
    shape = (fft_size(ny + k.shape[0]), fft_size(nx + k.shape[1]))
    y = pad_periodic(y, shape)
    kt = to_tensor(k / k.sum(), device=device, dtype=dtype)
    otf = psf2otf(kt, shape)
    with torch.no_grad():
        if method == "hyper_laplacian":
            x = _hyper_laplacian(y, otf, shape, balance, iterations)
        elif method == "wiener":
            x = _wiener(y, otf, shape, balance)
        else:
            x = _richardson_lucy(y, otf, shape, iterations)
    x = x[:, :ny, :nx]
    x = x.permute(1, 2, 0) if img.ndim == 3 else x[0]
    return (to_numpy(x).astype(np.float64) * scale + offset).astype(out_dtype)

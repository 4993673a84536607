"""Blind kernel estimation with the dark channel prior (Pan et al. 2016), batched in torch.

J. Pan, D. Sun, H. Pfister and M.-H. Yang, *Blind image deblurring using dark channel prior*,
CVPR 2016, with the L0 intensity-and-gradient prior of J. Pan, Z. Hu, Z. Su and M.-H. Yang,
*Deblurring text images via L0-regularized intensity and gradient prior*, CVPR 2014, as its
special case. The model is

    min_{I, k}  ||I * k - B||^2 + gamma ||k||^2 + mu ||grad I||_0 + lambda ||D(I)||_0

with ``D(I)`` the dark channel (the minimum over a 35 x 35 window around each pixel; with a
one-pixel window ``D(I) = I``, the L0 intensity prior). It is solved coarse to fine (image and
kernel scaled by sqrt(1/2) per level), alternating at each level, ``iterations`` times:

1. the latent image ``I`` for the current kernel, by half-quadratic splitting: the auxiliary
   variables for ``D(I)`` and ``grad I`` are hard-thresholded, and ``I`` is solved in the
   Fourier domain, with penalty weights doubled from small to large;
2. the kernel, from the gradients of ``I`` (the weak ones set to zero) and of ``B``, by
   conjugate gradients on the normal equations, then small entries and isolated specks
   (8-connected parts holding less than 10 % of the mass) removed.

Parameters and schedules follow the authors' MATLAB code (lambda = mu = 4e-3, each divided by
1.1 per iteration down to 1e-4; gamma = 2; penalty weights doubled; the 20 CG steps; the 1/20
final cut-off), except for the kernel step's cut-off (``kernel_cut``) and two cuts that make
it about 2.7 times faster. After each CG solve, entries below 10 % of the kernel's maximum
are dropped where the authors drop those below 5 %: a large kernel (30 to 55 px) spreads its
mass thinly, so the solve's noise passes a 5 % cut as a diffuse haze of specks around the
trajectory. The two speed cuts: the gradient penalty stops at 1e2 instead of 1e5 (beyond it
the latent image hardly changes), and each level alternates 3 times instead of 5
(``iterations=5`` restores it). On 28 synthetic cases (four photographs, kernels of 15 to 55
pixels, 1 % noise) the mean kernel similarity is 0.754 with the defaults, 0.717 with the
authors' 5 % cut and 0.726 with their cut and schedule, at 1.2, 1.3 and 3.4 CPU seconds per
case (``benchmarks/bench_deblur.py --schedules``; ``docs/deblur.md``). Other differences, none of
which changes the model: the image's FFT padding is
:func:`torchscope.backend.pad_periodic` instead of Liu and Jia's boundary extension; the
gradient images in the kernel step are zero-padded (linear rather than circular
correlation); images are resampled with torch's antialiased bilinear and kernels with bicubic
interpolation; pixels that are the minimum of some window are found with a max filter of the
dark channel (equivalent to the authors' index bookkeeping up to ties).

Everything runs on a batch of equally sized patches at once on a GPU. Per-patch quantities
(the gradient threshold, the start of the intensity penalty schedule) are kept per patch, and
a patch whose schedule has ended is frozen while others go on, so a batch gives each patch the
result it would get alone, up to rounding (torch's batched FFTs and vectorised complex
products round a little differently with the batch size, and hard thresholds can amplify
that). On the CPU the patches of a batch run one after another, in lockstep (a single patch's
arrays stay in the cache, which makes it faster on one thread than a batch), so there each
patch gets bit for bit the result it would get alone.
"""

import dataclasses
import math

import numpy as np

from torchscope.backend import (
    fft_size,
    get_device,
    otf2psf,
    pad_periodic,
    psf2otf,
    to_numpy,
    to_tensor,
)
from torchscope.deblur._checks import (
    as_real_array,
    check_choice,
    check_int,
    check_real,
    working_range,
)

METHODS = ("dark_channel", "l0")
# (weight of the L0 term on D(I), window of D in pixels at every level)
_PIXEL_PRIOR = {"dark_channel": (4e-3, 35), "l0": (4e-3, 1)}
_GRAD_WEIGHT = 4e-3
_MIN_WEIGHT = 1e-4
_WEIGHT_DECAY = 1.1
_KAPPA = 2.0              # growth of the intensity penalty per round
_KAPPA_GRAD = 2.0         # growth of the gradient penalty per step
_BETA_MAX = 1e2           # end of the gradient penalty schedule (the authors: 1e5)
_BETA_PIXEL_MAX = 8.0     # end of the intensity penalty schedule
_KERNEL_WEIGHT = 2.0      # gamma
_CG_STEPS = 20
_CG_TOL = 1e-5
#: The default ``kernel_cut``: entries below 10 % of the maximum are dropped after each CG
#: solve (the authors: 5 %; see the module's docstring)
KERNEL_CUT = 0.1
_SPECK_MASS = 0.1         # 8-connected parts lighter than this are dropped
_FINAL_CUT = 1 / 20       # the authors' k_thresh = 20
_SCALE_RATIO = math.sqrt(0.5)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """State of a kernel estimation, as yielded by :func:`iterate`.

    Attributes
    ----------
    level, levels : int
        Current pyramid level (1 = coarsest) and their number.
    iteration : int
        Iteration within the level (1 to ``iterations``).
    progress : float
        Fraction of the work done, in (0, 1].
    kernel : numpy.ndarray of float32, shape (k, k) or (N, k, k)
        Current kernel(s) at this level's size (``k`` grows to ``kernel_size``).
    latent : numpy.ndarray of float32, shape (h, w) or (N, h, w)
        Current latent (sharp) image(s) at this level's size, clipped to [0, 1].
    """

    level: int
    levels: int
    iteration: int
    progress: float
    kernel: np.ndarray
    latent: np.ndarray


# ------------------------------------------------------------------------------------ inputs
def _prepare(image, kernel_size, method, iterations, kernel_cut):
    img = as_real_array("image", image, {2: "a 2-D grayscale image (h, w)",
                                         3: "a stack of patches (N, h, w)"})
    kernel_size = check_int("kernel_size", kernel_size, 3, odd=True)
    check_choice("method", method, METHODS)
    iterations = check_int("iterations", iterations, 1)
    kernel_cut = check_real("kernel_cut", kernel_cut, 0, 1, high_open=True, type_error=ValueError)
    h, w = img.shape[-2:]
    if img.ndim == 3 and img.shape[-1] in (3, 4) and min(img.shape[:2]) >= 2 * kernel_size:
        raise ValueError(f"image of shape {img.shape} looks like a colour image; kernels are "
                         "estimated on grayscale images (h, w) or stacks of patches (N, h, w): "
                         "pass its luminance (skimage.color.rgb2gray), or use deblur(), which "
                         "does.")
    if min(h, w) < 2 * kernel_size:
        raise ValueError(f"image of shape {img.shape} is too small for kernel_size="
                         f"{kernel_size}: each side must be at least 2 * kernel_size = "
                         f"{2 * kernel_size} pixels.")
    if img.ndim == 3 and img.shape[0] == 0:
        raise ValueError("image is an empty stack of patches.")
    scaled, _, _ = working_range(img) if img.ndim == 2 else _working_range_stack(img)
    return scaled, kernel_size, iterations, kernel_cut


def _working_range_stack(stack):
    # one scale for the whole stack (patches of one image keep their relative contrast)
    scaled, offset, scale = working_range(stack.reshape(stack.shape[0], -1))
    return scaled.reshape(stack.shape), offset, scale


# --------------------------------------------------------------------------------- pyramid
def _levels(kernel_size):
    """Kernel sizes and image scale factors per level, coarsest first (the authors' rule)."""
    top = max(math.floor(math.log(5 / kernel_size) / math.log(_SCALE_RATIO)), 0)
    factors = [_SCALE_RATIO ** i for i in range(top + 1)]
    sizes = [math.ceil(kernel_size * f) for f in factors]
    sizes = [s + 1 - s % 2 for s in sizes]
    return list(zip(sizes, factors))[::-1]


def _downsample(y, factor):
    import torch.nn.functional as F

    if factor == 1:
        return y
    h, w = y.shape[-2:]
    size = (max(round(h * factor), 1), max(round(w * factor), 1))
    return F.interpolate(y[:, None], size=size, mode="bilinear", align_corners=False,
                         antialias=True)[:, 0]


def _initial_kernel(n, size, like):
    k = like.new_zeros((n, size, size))
    r = (size - 1) // 2 - 1  # the authors' start: two pixels left of and above the centre
    k[:, max(r, 0), max(r, 0):max(r, 0) + 2] = 0.5
    return k


def _fit_size(k, size):
    """Crop or zero-pad kernels to ``size``, one row/column at a time on the lighter side."""
    import torch

    while k.shape[-2] != size or k.shape[-1] != size:
        for axis in (-2, -1):
            n = k.shape[axis]
            if n == size:
                continue
            profile = k.sum(dim=-1 if axis == -2 else -2)  # (N, n)
            first_lighter = (profile[:, 0] < profile[:, -1]).view(-1, 1, 1)
            if n > size:  # drop the lighter end
                a, b = k.narrow(axis, 1, n - 1), k.narrow(axis, 0, n - 1)
            else:         # add a zero line (after the end when the first is lighter)
                zeros = k.narrow(axis, 0, 1) * 0
                a, b = torch.cat([k, zeros], dim=axis), torch.cat([zeros, k], dim=axis)
            k = torch.where(first_lighter, a, b)
    return k


def _upsample_kernel(k, size):
    import torch.nn.functional as F

    n = math.ceil(k.shape[-1] / _SCALE_RATIO)
    k = F.interpolate(k[:, None], size=(n, n), mode="bicubic", align_corners=False)[:, 0]
    k = _fit_size(k.clamp_min(0), size)
    return _normalise(k)


def _normalise(k, fallback=None):
    s = k.sum(dim=(-2, -1), keepdim=True)
    out = k / s.clamp_min(1e-30)
    if fallback is not None:
        out = out.where(s > 0, fallback)
    return out


# ------------------------------------------------------------------------- image statistics
def _otsu(x):
    """MATLAB's ``graythresh`` per row of ``x`` (values clipped to [0, 1], 256 levels)."""
    import torch

    n = x.shape[0]
    q = (x.clamp(0, 1) * 255).round().long().reshape(n, -1)
    hist = torch.zeros((n, 256), dtype=x.dtype, device=x.device)
    hist.scatter_add_(1, q, torch.ones_like(q, dtype=x.dtype))
    p = hist / hist.sum(dim=1, keepdim=True)
    levels = torch.arange(256, dtype=x.dtype, device=x.device)
    omega, mu = p.cumsum(1), (p * levels).cumsum(1)
    between = (mu[:, -1:] * omega - mu) ** 2 / (omega * (1 - omega))
    between = torch.nan_to_num(between, nan=-1.0, posinf=-1.0)
    best = between.amax(dim=1, keepdim=True)
    ties = (between == best) & (best >= 0)
    idx = (ties * levels).sum(1) / ties.sum(1).clamp_min(1)
    return idx / 255


def _gradients(x):
    """Forward differences along x and y on the (h - 1, w - 1) grid where both exist."""
    return x[..., 1:, 1:] - x[..., 1:, :-1], x[..., 1:, 1:] - x[..., :-1, 1:]


def _initial_threshold(y, kernel_size):
    """The authors' first gradient threshold: each of four orientation bins keeps at least
    ``20 * kernel_size`` pixels whose squared gradient magnitude is at or above it."""
    import torch

    gx, gy = _gradients(y)
    n = y.shape[0]
    pm = (gx ** 2 + gy ** 2).reshape(n, -1)
    angle = torch.atan(gy / gx).reshape(n, -1)  # NaN where both are 0: in no bin
    need = max(20 * kernel_size, 10)
    q = math.pi / 4
    edges = ((0, q), (q, 2 * q), (-q, 0), (-2 * q, -q))
    per_bin = []
    for lo, hi in edges:
        inside = (angle >= lo) & (angle < hi)
        ranked = torch.where(inside, pm, torch.full_like(pm, -1.0)).sort(dim=1, descending=True)
        if ranked.values.shape[1] < need:
            per_bin.append(torch.full((n,), -1.0, dtype=y.dtype, device=y.device))
        else:
            per_bin.append(ranked.values[:, need - 1])
    value = torch.stack(per_bin).amin(dim=0)
    step = 6e-5  # the authors' histogram grid
    return torch.where(value >= 0, torch.floor(value / step) * step, torch.zeros_like(value))


def _threshold_gradients(s, threshold):
    """Gradients of ``s`` with the weak ones zeroed; returns them and the next threshold."""
    import torch

    gx, gy = _gradients(s)
    pm = gx ** 2 + gy ** 2
    top = pm.amax(dim=(-2, -1))
    # when the threshold exceeds every gradient, the authors lower it by 0.81 until it does not
    short = (top < threshold) & (top > 0)
    steps = torch.ceil(torch.log(top / threshold) / math.log(0.81))
    threshold = torch.where(short, threshold * 0.81 ** steps, threshold)
    weak = pm < threshold.view(-1, 1, 1)
    return gx.masked_fill(weak, 0), gy.masked_fill(weak, 0), threshold / _WEIGHT_DECAY


# --------------------------------------------------------------------------- latent image
def _window_extreme(x, window, op, fill):
    """Minimum or maximum over a centred ``window`` x ``window`` square (clipped at the border).

    Separable, and per axis built from windows of doubling width (``log2(window) + 1``
    element-wise steps instead of ``window``).
    """
    import torch.nn.functional as F

    r = window // 2
    for dim, pad in ((-1, (r, r)), (-2, (0, 0, r, r))):
        n = x.shape[dim]
        m = F.pad(x, pad, value=fill)
        span = 1
        while 2 * span <= window:
            length = m.shape[dim] - span
            m = op(m.narrow(dim, 0, length), m.narrow(dim, span, length))
            span *= 2
        x = op(m.narrow(dim, 0, n), m.narrow(dim, window - span, n))
    return x


def _min_filter(x, window):
    import torch

    return _window_extreme(x, window, torch.minimum, math.inf)


def _max_filter(x, window):
    import torch

    return _window_extreme(x, window, torch.maximum, -math.inf)


def _grad_denominator(shape, dtype, device):
    """|F(dx)|^2 + |F(dy)|^2 for circular forward differences on ``shape`` (rfft layout)."""
    import torch

    ny, nx = shape
    fy = torch.fft.fftfreq(ny, device=device, dtype=dtype)[:, None]
    fx = torch.fft.rfftfreq(nx, device=device, dtype=dtype)[None, :]
    return 4 * torch.sin(math.pi * fx) ** 2 + 4 * torch.sin(math.pi * fy) ** 2


def _latent(blurred, otf, pixel_weight, window, grad_weight, beta_pixel0, den_grad):
    """Half-quadratic splitting for the latent image (the authors' ``L0Deblur_dark_chanel``).

    ``blurred`` (N, P, Q) is periodic (padded), ``otf`` the kernels' transfer functions,
    ``beta_pixel0`` (N,) the start of each patch's intensity-penalty schedule.
    """
    import torch

    shape = blurred.shape[-2:]
    normin1 = otf.conj() * torch.fft.rfft2(blurred)
    den_k = otf.real ** 2 + otf.imag ** 2
    s = blurred
    if pixel_weight == 0:
        beta_pixel = torch.zeros_like(beta_pixel0)
        rounds = 1
    else:
        beta_pixel = beta_pixel0
        ratio = (_BETA_PIXEL_MAX / beta_pixel0).clamp_min(1)
        rounds = int(torch.ceil(torch.log2(ratio)).max().item()) if torch.isfinite(
            beta_pixel0).any() else 0
    for _ in range(rounds):
        if pixel_weight == 0:
            active = torch.ones_like(beta_pixel, dtype=torch.bool)
            a, d0 = normin1, den_k
        else:
            active = beta_pixel < _BETA_PIXEL_MAX
            bp = torch.where(active, beta_pixel, torch.ones_like(beta_pixel)).view(-1, 1, 1)
            small = s ** 2 < pixel_weight / bp
            if window > 1:
                # a pixel is the minimum of some window exactly when the max filter of the
                # dark channel (over the same window) equals it
                is_min = _max_filter(_min_filter(s, window), window) == s
                small = small & is_min
            u = s * ~small
            a = normin1 + bp * torch.fft.rfft2(u)
            d0 = den_k + bp
        x = s
        beta = 2 * grad_weight
        while beta < _BETA_MAX:
            # g-step: keep the gradients whose squared magnitude reaches grad_weight / beta
            h = torch.roll(x, -1, dims=-1).sub_(x)
            v = torch.roll(x, -1, dims=-2).sub_(x)
            # beta where |grad|^2 >= grad_weight / beta, else 0 (float ops: no bool casts)
            keep = (h * h).add_(v * v).ge_(grad_weight / beta).mul_(beta)
            h.mul_(keep)
            v.mul_(keep)
            # I-step in the Fourier domain; div = beta (Dx^T h + Dy^T v)
            div = torch.roll(h, 1, dims=-1).sub_(h).add_(torch.roll(v, 1, dims=-2)).sub_(v)
            num = torch.fft.rfft2(div).add_(a)
            inv = (d0 + den_grad * beta).reciprocal_().unsqueeze(-1)
            torch.view_as_real(num).mul_(inv)  # a real denominator: no complex division
            x = torch.fft.irfft2(num, s=shape)
            beta *= _KAPPA_GRAD
            if grad_weight == 0:
                break
        s = torch.where(active.view(-1, 1, 1), x, s)
        beta_pixel = beta_pixel * _KAPPA
    return s


# --------------------------------------------------------------------------------- kernel
def _estimate_psf(bx, by, lx, ly, k_prev, cut):
    """Conjugate gradients on ``(Lx^T Lx + Ly^T Ly + gamma) k = Lx^T Bx + Ly^T By``, then
    the entries below ``cut`` times the maximum dropped."""
    import torch

    size = k_prev.shape[-1]
    h, w = bx.shape[-2:]
    shape = (fft_size(h + size), fft_size(w + size))
    flx, fly = torch.fft.rfft2(lx, s=shape), torch.fft.rfft2(ly, s=shape)
    fbx, fby = torch.fft.rfft2(bx, s=shape), torch.fft.rfft2(by, s=shape)
    m = flx.real ** 2 + flx.imag ** 2 + fly.real ** 2 + fly.imag ** 2
    # the right-hand side, a correlation: put the kernel centre at the grid's origin
    b = otf2psf(flx.conj() * fbx + fly.conj() * fby, shape, (size, size))

    def apply(x):
        return otf2psf(m * psf2otf(x, shape), shape, (size, size)) + _KERNEL_WEIGHT * x

    x = torch.full_like(k_prev, 1.0 / (size * size))
    r = b - apply(x)
    p = r
    rs = (r ** 2).sum(dim=(-2, -1))
    active = torch.ones_like(rs, dtype=torch.bool)
    for _ in range(_CG_STEPS):
        ap = apply(p)
        alpha = rs / (p * ap).sum(dim=(-2, -1)).clamp_min(1e-30)
        alpha = torch.where(active, alpha, torch.zeros_like(alpha)).view(-1, 1, 1)
        x = x + alpha * p
        r = r - alpha * ap
        rs_new = (r ** 2).sum(dim=(-2, -1))
        active = active & (rs_new.sqrt() >= _CG_TOL)
        if not bool(active.any()):
            break
        p = r + (rs_new / rs.clamp_min(1e-30)).view(-1, 1, 1) * p
        rs = torch.where(active, rs_new, rs)
    x = x.masked_fill(x < x.amax(dim=(-2, -1), keepdim=True) * cut, 0)
    return _normalise(x, fallback=k_prev)


def _remove_specks(k):
    """Zero the 8-connected parts of each kernel's support that hold < 10 % of its mass."""
    import torch
    import torch.nn.functional as F

    n, size = k.shape[0], k.shape[-1]
    support = k > 0
    ids = torch.arange(1, size * size + 1, dtype=k.dtype, device=k.device).view(1, size, size)
    labels = ids * support
    while True:  # every pixel takes the largest label of its 8-neighbourhood in the support
        grown = F.max_pool2d(labels[:, None], 3, stride=1, padding=1)[:, 0] * support
        if torch.equal(grown, labels):
            break
        labels = grown
    flat = labels.reshape(n, -1).long()
    mass = torch.zeros((n, size * size + 1), dtype=k.dtype, device=k.device)
    mass.scatter_add_(1, flat, k.reshape(n, -1))
    part_mass = mass.gather(1, flat).view_as(k)
    kept = k * (part_mass >= _SPECK_MASS)
    # if every part is light, keep the heaviest instead of nothing
    heaviest = mass[:, 1:].argmax(dim=1) + 1
    only = k * (flat == heaviest[:, None]).view_as(k)
    empty = kept.sum(dim=(-2, -1), keepdim=True) <= 0
    return _normalise(torch.where(empty, only, kept))


def _centre(k):
    """Shift each kernel by whole pixels so its centroid falls on the centre pixel."""
    import torch

    n, size = k.shape[0], k.shape[-1]
    coords = torch.arange(size, dtype=k.dtype, device=k.device)
    mass = k.sum(dim=(-2, -1)).clamp_min(1e-30)
    cy = (k.sum(dim=-1) * coords).sum(-1) / mass
    cx = (k.sum(dim=-2) * coords).sum(-1) / mass
    mid = (size - 1) / 2
    sy, sx = torch.round(mid - cy).long(), torch.round(mid - cx).long()
    iy = torch.arange(size, device=k.device).view(1, size, 1) - sy.view(n, 1, 1)
    ix = torch.arange(size, device=k.device).view(1, 1, size) - sx.view(n, 1, 1)
    inside = (iy >= 0) & (iy < size) & (ix >= 0) & (ix < size)
    flat = (iy.clamp(0, size - 1) * size + ix.clamp(0, size - 1)).reshape(n, -1)
    moved = k.reshape(n, -1).gather(1, flat).view_as(k)
    return moved * inside


# ------------------------------------------------------------------------------- the loop
def _run(y, kernel_size, method, iterations, kernel_cut):
    """The coarse-to-fine estimation on a batch ``y`` (N, h, w) in [0, 1]; yields states."""
    import torch

    pixel_weight, window = _PIXEL_PRIOR[method]
    grad_weight = _GRAD_WEIGHT
    levels = _levels(kernel_size)
    work = [f * f for _, f in levels]
    total, done = sum(work) * iterations, 0.0
    n = y.shape[0]
    k = threshold = None
    for index, (size, factor) in enumerate(levels):
        ys = _downsample(y, factor)
        if k is None:
            k = _initial_kernel(n, size, ys)
            threshold = _initial_threshold(ys, size)
        else:
            k = _upsample_kernel(k, size)
        h, w = ys.shape[-2:]
        shape = (fft_size(h + size - 1), fft_size(w + size - 1))
        padded = pad_periodic(ys, shape)
        bx, by = _gradients(ys)
        den_grad = _grad_denominator(shape, ys.dtype, ys.device)
        gray = _otsu(padded ** 2)
        level_threshold = threshold  # each level starts from the first level's threshold
        for it in range(iterations):
            if pixel_weight > 0:
                beta0 = torch.where(gray > 0, pixel_weight / gray.clamp_min(1e-30),
                                    torch.full_like(gray, math.inf))
            else:
                beta0 = torch.zeros_like(gray)
            latent = _latent(padded, psf2otf(k, shape), pixel_weight, window, grad_weight,
                             beta0, den_grad)[..., :h, :w]
            lx, ly, level_threshold = _threshold_gradients(latent, level_threshold)
            k_new = _estimate_psf(bx, by, lx, ly, k, kernel_cut)
            k = _remove_specks(k_new)
            if pixel_weight > 0:
                pixel_weight = max(pixel_weight / _WEIGHT_DECAY, _MIN_WEIGHT)
            if grad_weight > 0:
                grad_weight = max(grad_weight / _WEIGHT_DECAY, _MIN_WEIGHT)
            done += work[index]
            final = index == len(levels) - 1 and it == iterations - 1
            if final:
                k = _finish(_centre(k))
            yield index + 1, len(levels), it + 1, 1.0 if final else done / total, k, latent
        if index < len(levels) - 1:
            k = _normalise(_centre(k).clamp_min(0))


def _finish(k):
    k = k.clamp_min(0)
    k = k.masked_fill(k < k.amax(dim=(-2, -1), keepdim=True) * _FINAL_CUT, 0)
    return _normalise(k)


def iterate(image, kernel_size, *, method="dark_channel", iterations=3, kernel_cut=KERNEL_CUT,
            device=None):
    """Estimate blur kernels step by step: a generator of :class:`Snapshot` states.

    Takes the same arguments as :func:`estimate_kernel`; yields after every iteration of
    every pyramid level (``levels * iterations`` snapshots). The last snapshot's ``kernel``
    is :func:`estimate_kernel`'s result. Stop early by leaving the loop.

    Parameters
    ----------
    image, kernel_size, method, iterations, kernel_cut, device
        As for :func:`estimate_kernel`.

    Yields
    ------
    Snapshot
        ``level``, ``levels``, ``iteration``, ``progress`` (0 to 1, exactly 1 at the end),
        ``kernel`` and ``latent`` (the current estimates; stacks for a batch of patches).
    """
    y, kernel_size, iterations, kernel_cut = _prepare(image, kernel_size, method, iterations,
                                                      kernel_cut)
    dev = get_device(device)
    return _snapshots(y, kernel_size, method, iterations, kernel_cut, dev)


def _snapshots(y, kernel_size, method, iterations, kernel_cut, dev):
    import torch

    batch = y.ndim == 3
    t = to_tensor(y if batch else y[None], device=dev, dtype=torch.float32)
    # on the CPU one patch at a time (see the module notes), the runs advancing in lockstep
    step = 1 if dev.type == "cpu" else len(t)
    runs = [_run(t[i:i + step].clone(), kernel_size, method, iterations, kernel_cut)
            for i in range(0, len(t), step)]
    while True:
        # autograd is off only while a step computes, never across a yield: an abandoned
        # generator must not leave the consumer's thread (a reused worker thread) without it
        with torch.no_grad():
            states = [next(run, None) for run in runs]
            if any(state is None for state in states):  # the runs end together
                return
            level, levels, it, progress = states[0][:4]
            k = torch.cat([state[4] for state in states])
            latent = torch.cat([state[5] for state in states])
            kern, lat = to_numpy(k), to_numpy(latent.clamp(0, 1))
        yield Snapshot(level=level, levels=levels, iteration=it, progress=progress,
                       kernel=kern if batch else kern[0], latent=lat if batch else lat[0])


def estimate_kernel(image, kernel_size, *, method="dark_channel", iterations=3,
                    kernel_cut=KERNEL_CUT, device=None):
    """Estimate the blur kernel of a blurred image or of a batch of patches (blind).

    Pan et al.'s dark channel prior (CVPR 2016), coarse to fine; ``method="l0"`` shrinks the
    dark channel's window to one pixel, which is Pan et al.'s L0-regularised intensity and
    gradient prior (CVPR 2014, for text). See the module notes for the algorithm.

    Parameters
    ----------
    image : array_like, shape (h, w) or (N, h, w)
        A grayscale blurred image, or a stack of equally sized patches whose kernels are all
        estimated at once (on a GPU, in parallel). Integer images are scaled by their dtype's
        maximum; float images should be on a [0, 1] scale (the default weights assume it;
        those beyond [-0.5, 1.5] are mapped from their [min, max], a stack as a whole).
        Each side must be at least ``2 * kernel_size``.
    kernel_size : int
        Side of the square kernel in pixels, odd (it should be at least as large as the
        blur).
    method : {"dark_channel", "l0"}, optional
    iterations : int, optional
        Alternations of latent image and kernel per pyramid level (the authors use 5; 3 is
        about as accurate, see the module notes).
    kernel_cut : float, optional
        After each kernel solve, entries below this fraction of the kernel's maximum are
        dropped, in [0, 1) (the authors use 0.05; 0.1 suits large kernels better, see the
        module notes).
    device : None, str or torch.device, optional
        Where to compute (default: CUDA, then MPS, then the CPU). Computes in float32.

    Returns
    -------
    numpy.ndarray of float64, shape (kernel_size, kernel_size) or (N, kernel_size, kernel_size)
        Non-negative kernels summing to 1, each centred on its centroid.
    """
    last = None
    for last in iterate(image, kernel_size, method=method, iterations=iterations,
                        kernel_cut=kernel_cut, device=device):
        pass
    k = last.kernel.astype(np.float64)
    return k / k.sum(axis=(-2, -1), keepdims=True)

"""Quality measures: kernel similarity (Hu and Yang) and the error ratio (Levin et al.)."""

import numpy as np
import scipy.fft
import scipy.signal

from torchscope.deblur._checks import as_real_array, check_int, check_real

_KERNELS = {2: "a kernel (kh, kw)", 3: "a stack of kernels (N, kh, kw)"}


def kernel_similarity(k1, k2):
    """Similarity of two blur kernels (Hu and Yang), in [-1, 1]; 1 for equal kernels.

    ``S(k1, k2) = max_s sum_t k1(t) k2(t + s) / (||k1|| ||k2||)``: the normalised
    cross-correlation at its best shift ``s`` (Z. Hu and M.-H. Yang, *Learning good regions to
    deblur images*, IJCV 115(3), 2015). It does not change when either kernel is shifted,
    scaled by a positive factor or padded with zeros, so kernels of different sizes compare.

    Parameters
    ----------
    k1, k2 : array_like, shape (kh, kw) or (N, kh, kw)
        Kernels; the sizes of the two may differ. Stacks are compared pairwise (one kernel
        against a stack broadcasts).

    Returns
    -------
    float, or numpy.ndarray of float64 with shape (N,) for stacks

    Notes
    -----
    A one-pixel kernel scores ``max(k) / ||k||`` against any kernel ``k``; for compact
    kernels that is already high, so a similarity means little unless it beats this score.
    """
    a = as_real_array("k1", k1, _KERNELS).astype(np.float64)
    b = as_real_array("k2", k2, _KERNELS).astype(np.float64)
    stacked = a.ndim == 3 or b.ndim == 3
    a3, b3 = np.atleast_3d(a.T).T, np.atleast_3d(b.T).T  # (N, kh, kw) views
    if a3.shape[0] != b3.shape[0] and 1 not in (a3.shape[0], b3.shape[0]):
        raise ValueError(f"k1 holds {a3.shape[0]} kernels and k2 {b3.shape[0]}; stacks must "
                         "have the same length (or one of them a single kernel).")
    na = np.sqrt((a3 ** 2).sum(axis=(-2, -1)))
    nb = np.sqrt((b3 ** 2).sum(axis=(-2, -1)))
    for name, norm in (("k1", na), ("k2", nb)):
        if not (norm > 0).all():
            raise ValueError(f"{name} holds an all-zero kernel; its similarity is undefined.")
    corr = scipy.signal.fftconvolve(a3, b3[:, ::-1, ::-1], mode="full", axes=(-2, -1))
    s = corr.max(axis=(-2, -1)) / (na * nb)
    s = np.minimum(s, 1.0)  # rounding of the FFT can exceed the Cauchy-Schwarz bound by 1e-16
    return s if stacked else float(s[0])


def ssd_up_to_shift(image, reference, *, max_shift=15, step=0.25):
    """Smallest sum of squared differences between a shifted ``image`` and ``reference``.

    Levin et al.'s measure: the borders (``max_shift`` pixels) of ``reference`` are dropped,
    and ``image`` is sampled (bilinearly) at the remaining pixels shifted by every
    ``(dy, dx)`` on a grid of spacing ``step`` within ``[-max_shift, max_shift]``; the result
    is the smallest SSD over all these shifts. Exact over that grid: for each of the
    ``(1 / step)**2`` sub-pixel offsets, the SSD at all integer shifts comes from one
    FFT cross-correlation and box sums.

    Returns
    -------
    ssd : float
    shift : (float, float)
        The minimising (dy, dx).
    """
    a = np.asarray(image, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    ny, nx = a.shape
    c = max_shift
    # the SSD is computed as energy - 2 cross + sum r^2: remove a common offset first (the
    # differences, and bilinear samples of a constant, do not change), or an image far from
    # zero loses the differences to rounding
    offset = ref[c:ny - c, c:nx - c].mean()
    a, ref = a - offset, ref - offset
    r = ref[c:ny - c, c:nx - c]
    h, w = r.shape
    n_sub = round(1.0 / step)
    f = np.arange(n_sub) * step
    # image sampled at (y + fy, x + fx), for every sub-pixel offset; one extra edge row and
    # column feed the interpolation at the last pixel (only shifts beyond max_shift use them)
    ap = np.pad(a, ((0, 1), (0, 1)), mode="edge")
    wy, wx = f[:, None, None, None], f[None, :, None, None]
    a00, a01 = ap[None, None, :-1, :-1], ap[None, None, :-1, 1:]
    a10, a11 = ap[None, None, 1:, :-1], ap[None, None, 1:, 1:]
    samples = ((1 - wy) * ((1 - wx) * a00 + wx * a01) + wy * ((1 - wx) * a10 + wx * a11))
    samples = samples.reshape(n_sub * n_sub, ny, nx)

    shape = (_good(ny), _good(nx))
    spec = scipy.fft.rfft2(samples, s=shape)
    cross = scipy.fft.irfft2(spec * np.conj(scipy.fft.rfft2(r, s=shape)), s=shape)
    cross = cross[:, :2 * c + 1, :2 * c + 1]
    sq = np.pad(samples ** 2, ((0, 0), (1, 0), (1, 0))).cumsum(axis=1).cumsum(axis=2)
    energy = sq[:, h:, w:] - sq[:, :-h, w:] - sq[:, h:, :-w] + sq[:, :-h, :-w]
    ssd = energy[:, :2 * c + 1, :2 * c + 1] - 2 * cross + (r ** 2).sum()
    ssd = ssd.reshape(n_sub, n_sub, 2 * c + 1, 2 * c + 1)
    # shifts beyond max_shift (the integer part at +max_shift with a sub-pixel offset) are out
    ssd[1:, :, -1, :] = np.inf
    ssd[:, 1:, :, -1] = np.inf
    iy, ix, dy, dx = np.unravel_index(np.argmin(ssd), ssd.shape)
    best = float(ssd[iy, ix, dy, dx])
    # the three terms cancel to rounding where the images agree exactly: that is an SSD of 0
    rounding = _CANCELLATION * (float(energy[iy * n_sub + ix, dy, dx]) + float((r ** 2).sum()))
    return (best if best > rounding else 0.0), (dy - c + f[iy], dx - c + f[ix])


#: Relative size of the rounding left when the SSD's three terms cancel (about 50 float64 eps)
_CANCELLATION = 1e-14


def _good(n):
    return scipy.fft.next_fast_len(n, real=True)


def error_ratio(restored, restored_with_true_kernel, sharp, *, max_shift=15, step=0.25):
    """Levin et al.'s error ratio: how much worse a restoration is than with the true kernel.

    ``ER = SSD(restored, sharp) / SSD(restored_with_true_kernel, sharp)``, each SSD taken up to
    a shift (the smallest over sub-pixel shifts, see Notes), as in A. Levin, Y. Weiss,
    F. Durand and W. T. Freeman, *Understanding and evaluating blind deconvolution
    algorithms*, CVPR 2009. Both restorations must come from the same non-blind
    deconvolution (e.g. :func:`deconvolve` with the same method), one with the estimated
    kernel and one with the true kernel. A result counts as a success when ``ER <= 3``.

    Parameters
    ----------
    restored : array_like, shape (H, W)
        Deconvolved with the estimated kernel.
    restored_with_true_kernel : array_like, shape (H, W)
        Deconvolved with the true kernel.
    sharp : array_like, shape (H, W)
        The ground truth.
    max_shift : int, optional
        Largest shift searched, in pixels per axis (Levin et al.: 15); also the border left
        out of the comparison.
    step : float, optional
        Spacing of the shift grid in pixels (Levin et al.: 0.25); ``1 / step`` must be an
        integer.

    Returns
    -------
    float
        ``inf`` when the restoration with the true kernel is exact (zero error) and the other
        is not; 1.0 when both are exact.

    Notes
    -----
    The SSD of an image ``I`` against ``sharp`` is
    ``min_s sum_p (I(p + s) - sharp(p))**2`` over the pixels ``p`` at least ``max_shift``
    from the border, with ``I`` interpolated bilinearly and ``s`` on the grid of spacing
    ``step`` in ``[-max_shift, max_shift]**2``, which is what Levin et al.'s
    ``comp_upto_shift`` computes.
    """
    images = {}
    for name, value in (("restored", restored),
                        ("restored_with_true_kernel", restored_with_true_kernel),
                        ("sharp", sharp)):
        images[name] = as_real_array(name, value, {2: "a 2-D image (H, W)"})
    shapes = {name: a.shape for name, a in images.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"the three images must have one shape, got {shapes}.")
    max_shift = check_int("max_shift", max_shift, 0)
    step = check_real("step", step, 0.0, 1.0, low_open=True)
    if abs(1.0 / step - round(1.0 / step)) > 1e-9:
        raise ValueError(f"step={step}: 1 / step must be an integer (e.g. 1, 0.5, 0.25).")
    ny, nx = shapes["sharp"]
    if min(ny, nx) <= 2 * max_shift + 1:
        raise ValueError(f"images of shape {(ny, nx)} are too small for max_shift={max_shift}: "
                         f"each side must exceed 2 * max_shift + 1 = {2 * max_shift + 1}.")
    num, _ = ssd_up_to_shift(images["restored"], images["sharp"], max_shift=max_shift, step=step)
    den, _ = ssd_up_to_shift(images["restored_with_true_kernel"], images["sharp"],
                             max_shift=max_shift, step=step)
    if den == 0.0:
        return 1.0 if num == 0.0 else float("inf")
    return num / den

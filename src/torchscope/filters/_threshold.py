"""Binarization: automatic thresholds, the mask they give, and numpy's histogram on torch.

Every method derives one intensity from the image; :func:`threshold` marks the pixels above it.
The histogram-based methods (otsu, yen, triangle, isodata) use scikit-image's histogram: one bin
per integer value for integer images, 256 equal bins over ``[min, max]`` (numpy's binning) for
float images. Counting runs on the device; the arithmetic on the few hundred bins runs on the
host, with the same formulas and dtypes as scikit-image, so the values agree with
``skimage.filters.threshold_<method>(image)``. Li's method iterates on the pixels themselves.

Dask arrays are reduced block by block (one pass per histogram, one per iteration of Li), so
the values are exact for arrays larger than memory; only Li on a float image gathers the
distinct values of all blocks on the host (for its stopping tolerance). The mask of
:func:`threshold` stays lazy.
"""

import math
import numbers

import numpy as np

from torchscope.backend import check_int, compute_dtype, get_device, on_device, to_numpy, to_tensor
from torchscope.filters._core import apply, check_image, is_dask

THRESHOLD_METHODS = ("otsu", "li", "yen", "triangle", "isodata", "mean")
_NBINS = 256  # scikit-image's default for float images
_CPU_BLOCK = 1 << 16  # elements per block when counting on the CPU (the temporaries stay in cache)
_MAX_INTEGER_BINS = 1 << 16  # the integer mean comes from the histogram up to this value range


# --------------------------------------------------------------------------- public functions
def histogram(image, bins=256, *, device=None):
    """Histogram with ``bins`` equal bins over ``[image.min(), image.max()]``, as numpy's.

    Parameters
    ----------
    image : numpy.ndarray or dask.array.Array
        Bool, integer or real float image of any shape (flattened).
    bins : int
        Number of equal-width bins, >= 1.
    device : None, str or torch.device
        Where to count; ``None`` picks CUDA, then Apple MPS, then the CPU.

    Returns
    -------
    counts : numpy.ndarray of int64, shape (bins,)
        Pixels per bin. Every bin is half-open ``[edge_i, edge_i+1)`` except the last, which
        includes the maximum.
    bin_edges : numpy.ndarray, shape (bins + 1,)
        Edges in image units: float32 for float32 images, float64 otherwise (numpy's rule).

    Raises
    ------
    ValueError
        If the image holds NaN or infinite values, or the range is too narrow for ``bins``
        distinct edges.

    Notes
    -----
    Identical to ``numpy.histogram(image, bins)``, including its edge rule: a constant image
    spans ``[v - 0.5, v + 0.5]``, and values are placed by comparison with the exact edges
    (numpy's correction step). Bool images count as 0 and 1. Dask arrays are counted block by
    block.
    """
    image = check_image(image)
    bins = check_int("bins", bins, 1)
    return _on_pixels(_histogram, image, bins, device=device)


def threshold_value(image, method="otsu", *, device=None):
    """The threshold intensity of an automatic method (or a given number).

    Parameters
    ----------
    image : numpy.ndarray or dask.array.Array
        Grey-level image of any dimension (bool, integer or real float), treated as one set
        of values.
    method : str or float
        One of ``THRESHOLD_METHODS``: ``"otsu"`` (maximum between-class variance), ``"li"``
        (minimum cross entropy, iterative), ``"yen"`` (maximum correlation), ``"triangle"``
        (largest distance from the line between the histogram peak and its far end; for a
        bright foreground on a large dark background), ``"isodata"`` (the lowest value that is
        the mean of the two class means), ``"mean"`` (the mean intensity). A number is
        returned as it is (after checking it is finite).
    device : None, str or torch.device
        Where to compute; ``None`` picks CUDA, then Apple MPS, then the CPU.

    Returns
    -------
    float
        The threshold in image units; the foreground is ``image > value``.

    Raises
    ------
    ValueError
        For an unknown method, a non-finite number, NaN/infinite values in the image, or an
        integer image spanning more than 2**24 values (one histogram bin each; convert it to
        float).
    TypeError
        If ``method`` is neither a name nor a number.

    Notes
    -----
    Equal to ``skimage.filters.threshold_<method>(image)`` with its default arguments
    (histogram-based methods use one bin per integer value for integer images, and 256 bins
    for float and bool images); Li's and the mean agree to float rounding of the means. A constant
    image gives its value for every method (scikit-image's ``yen`` and ``isodata`` are
    undefined there on float images). Dask arrays are reduced block by block; Li on a float
    dask array also gathers its distinct values on the host.

    Examples
    --------
    >>> import numpy as np
    >>> from torchscope.filters import threshold_value
    >>> image = np.array([[10, 10, 200], [10, 200, 200]], dtype=np.uint8)
    >>> threshold_value(image, "otsu")
    10.0
    """
    image = check_image(image)
    number = _check_method(method)
    if number is not None:
        return number
    return _on_pixels(_method_value, image, method, device=device)


def threshold(image, method="otsu", *, device=None):
    """Binarize: the mask of pixels above an automatic threshold.

    Parameters
    ----------
    image : numpy.ndarray or dask.array.Array
        Grey-level image of any dimension (bool, integer or real float).
    method : str or float
        A name in ``THRESHOLD_METHODS`` or the threshold itself; see :func:`threshold_value`.
    device : None, str or torch.device
        Where to compute.

    Returns
    -------
    numpy.ndarray of bool, or a lazy dask.array.Array of bool
        ``image > threshold_value(image, method)``, compared in the image's own precision.
        For dask input the value is computed now (block by block) and the mask is lazy.

    Raises
    ------
    ValueError, TypeError
        As :func:`threshold_value`.
    """
    image = check_image(image)
    number = _check_method(method)
    if is_dask(image):
        value = number if number is not None else threshold_value(image, method, device=device)
        return apply(
            lambda t: _above(t, value), image, depth=(0,) * image.ndim, dtype=bool,
            device=device,
        )
    return _threshold_numpy(image, method, number, device=device)


@on_device
def _threshold_numpy(image, method, number, *, device):
    pixels = _Pixels(image, device)
    value = number if number is not None else _method_value(pixels, method)
    if number is not None:
        pixels.range()  # the NaN check
    if device.type == "cpu":
        # the tensor shares the array's memory, and numpy compares three times faster than torch
        return image > value
    return to_numpy(_above(pixels.tensor, value))


def _above(t, value):
    """``t > value`` as a bool tensor; integers are compared with ``floor(value)``, exactly."""
    import torch

    if t.dtype == torch.bool:  # (a bool block of a dask array: True is 1)
        t = t.view(torch.uint8)
    if not t.is_floating_point():
        value, info = math.floor(value), torch.iinfo(t.dtype)
        if not info.min <= value < info.max:  # beyond the dtype's range: all or nothing
            return torch.full(t.shape, value < info.min, dtype=torch.bool, device=t.device)
    # a comparison written as uint8 (0/1) is twice as fast on the CPU as one written as bool
    mask = torch.empty(t.shape, dtype=torch.uint8, device=t.device)
    return torch.gt(t, value, out=mask).view(torch.bool)


# --------------------------------------------------------------------------- argument checks
def _check_method(method):
    """``None`` for a method name, the float for a number; raises for anything else."""
    if isinstance(method, str):
        if method not in THRESHOLD_METHODS:
            raise ValueError(f"method={method!r} is not a threshold method; accepted: "
                             f"{THRESHOLD_METHODS} or a number.")
        return None
    if isinstance(method, numbers.Real) and not isinstance(method, bool):
        if not math.isfinite(method):
            raise ValueError(f"method={method!r}: a threshold given as a number must be finite.")
        return float(method)
    raise TypeError(
        f"method must be one of {THRESHOLD_METHODS} or a number, got {type(method).__name__}."
    )


# --------------------------------------------------------------------------- pixels and reductions
class _Pixels:
    """An image's values for reductions: one tensor on the device (numpy input), or the blocks
    of a dask array, each reduced on the device and combined on the host.
    """

    def __init__(self, image, device):
        self.dtype = np.dtype(image.dtype)
        self.size = image.size
        self.integer = self.dtype.kind in "biu"
        self.device = get_device(device)
        self._blocks = image.to_delayed().ravel() if is_dask(image) else None
        self.tensor = None if is_dask(image) else _numeric(to_tensor(image, device=self.device))
        self._range = None

    def reduce(self, func, combine=sum):
        """``func(tensor)`` (host values) on the whole image, or ``combine`` of it over blocks."""
        if self._blocks is None:
            return func(self.tensor)
        import dask

        parts = [dask.delayed(_reduce_block)(func, b, device=self.device) for b in self._blocks]
        return combine(dask.compute(*parts))

    def range(self):
        """``(min, max)`` as numpy scalars of the image dtype; raises on NaN or infinity."""
        if self._range is None:
            lo, hi = self.reduce(_min_max, lambda parts: (np.min([p[0] for p in parts]),
                                                           np.max([p[1] for p in parts])))
            if not (np.isfinite(lo) and np.isfinite(hi)):
                kind = "NaN" if np.isnan(lo) or np.isnan(hi) else "infinite values"
                raise ValueError(
                    f"image contains {kind}; thresholds and histograms need finite values. "
                    f"Replace them first, e.g. np.nan_to_num(image)."
                )
            cast = np.uint8 if self.dtype.kind == "b" else self.dtype
            self._range = (np.asarray(lo).astype(cast)[()], np.asarray(hi).astype(cast)[()])
        return self._range


def _on_pixels(func, image, *args, device):
    """``func(_Pixels(image), *args)``: numpy input on the device (with out-of-memory handling)."""
    if is_dask(image):
        return func(_Pixels(image, device), *args)
    return _on_device_pixels(func, image, *args, device=device)


@on_device
def _on_device_pixels(func, image, *args, device):
    return func(_Pixels(image, device), *args)


@on_device
def _reduce_block(func, block, *, device):
    return func(_numeric(to_tensor(block, device=device)))


def _numeric(t):
    """Bool counts as uint8 (0 and 1), as in numpy's histogram."""
    import torch

    return t.to(torch.uint8) if t.dtype == torch.bool else t


def _min_max(t):
    import torch

    lo, hi = to_numpy(torch.stack(torch.aminmax(t.reshape(-1))))  # NaN propagates
    return lo, hi


# --------------------------------------------------------------------------- histograms
def _histogram(pixels, bins):
    """numpy's ``histogram(image, bins)``: equal bins over the image's range."""
    lo, hi = pixels.range()
    first, last = (lo - 0.5, hi + 0.5) if lo == hi else (lo, hi)
    # numpy's bin dtype: the data's float type; integers are binned in float64
    bin_type = np.result_type(first, last, np.empty(0, np.uint8 if pixels.dtype.kind == "b"
                                                     else pixels.dtype))
    if bin_type.kind in "iub":
        bin_type = np.result_type(bin_type, float)
    edges = np.linspace(first, last, bins + 1, endpoint=True, dtype=bin_type)
    if np.any(edges[:-1] >= edges[1:]):
        raise ValueError(
            f"bins={bins} is too many for the range [{first}, {last}]: the edges are not "
            f"distinct in {bin_type}."
        )
    counts = pixels.reduce(lambda t: _count_uniform(t, edges))
    return counts, edges


def _count_uniform(t, edges):
    """Counts of ``t`` in the equal bins ``edges`` (numpy's rule), as a numpy int64 array.

    A first guess of each bin from the scaled value, then numpy's correction by comparison
    with the exact edges: down one bin below its lower edge, up one at or above its upper edge
    (the last bin includes the maximum). Runs in blocks that stay in cache on the CPU.
    """
    import torch

    nbins = len(edges) - 1
    dtype = compute_dtype(edges.dtype, t.device)  # float64 edges: float64 (but on Apple MPS)
    first, last = float(edges[0]), float(edges[-1])
    # lower[i] / upper[i]: edges of guess i; a guess of nbins (the maximum) falls in the last bin
    lower = to_tensor(edges, device=t.device, dtype=dtype)
    upper = to_tensor(np.concatenate([edges[1:-1], [np.inf, np.inf]]), device=t.device,
                      dtype=dtype)
    scale = nbins / (last - first)
    flat = t.reshape(-1)
    step = _CPU_BLOCK if t.device.type == "cpu" else flat.numel()
    guess = torch.empty(min(step, flat.numel()), dtype=dtype, device=t.device)
    index = torch.empty(guess.shape, dtype=torch.int32, device=t.device)
    edge = torch.empty_like(guess)
    flag = torch.empty_like(index)
    counts = torch.zeros(nbins + 1, dtype=torch.int64, device=t.device)
    for start in range(0, flat.numel(), step):
        x = flat[start : start + step].to(dtype)
        m = x.numel()
        g, i, e, f = guess[:m], index[:m], edge[:m], flag[:m]
        torch.sub(x, first, out=g).mul_(scale)  # (x - first) * nbins / (last - first)
        i.copy_(g.clamp_(0, nbins))
        i.sub_(torch.lt(x, torch.index_select(lower, 0, i, out=e), out=f))
        i.add_(torch.ge(x, torch.index_select(upper, 0, i, out=e), out=f))
        counts += torch.bincount(i, minlength=nbins + 1)
    counts = to_numpy(counts)
    counts[nbins - 1] += counts[nbins]
    return counts[:nbins]


# The most bins (distinct integer values) of an integer image's threshold histogram.
_MAX_THRESHOLD_BINS = 2**24


def _threshold_histogram(pixels):
    """scikit-image's histogram for thresholds: ``(counts, bin_centers)``.

    Integer images: one bin per value from min to max (centres are the values, int64).
    Float and bool images: numpy's 256 equal bins over [min, max] (centres in the image's float type).
    """
    lo, hi = pixels.range()
    if pixels.dtype.kind in "iu":  # bool images take the float path, as in scikit-image
        low, size = int(lo), int(hi) - int(lo) + 1
        if size > _MAX_THRESHOLD_BINS:
            raise ValueError(
                f"the integer image spans {size} values ({low} to {int(hi)}); thresholds of "
                f"integer images use one histogram bin per value (as scikit-image does), and more "
                f"than {_MAX_THRESHOLD_BINS} bins would take over "
                f"{_MAX_THRESHOLD_BINS * 8 // 2**20} MiB. Convert the image to float "
                "(image.astype(numpy.float32)) to threshold it on 256 equal bins."
            )
        counts = pixels.reduce(lambda t: _count_integers(t, low, size))
        return counts, np.arange(low, low + size)
    counts, edges = _histogram(pixels, _NBINS)
    return counts, (edges[:-1] + edges[1:]) / 2.0


def _count_integers(t, low, size):
    import torch

    values = t.reshape(-1)
    if low < 0 or values.dtype not in (torch.uint8, torch.int32, torch.int64):
        values = values.to(torch.int64) - low
        low = 0
    return to_numpy(torch.bincount(values, minlength=low + size)[low:])


# --------------------------------------------------------------------------- the methods
def _method_value(pixels, method):
    if method == "mean":
        return float(_mean(pixels))
    lo, hi = pixels.range()
    if lo == hi:  # a constant image: every method gives its value
        return float(lo)
    if method == "li":
        return float(_li(pixels))
    counts, centers = _threshold_histogram(pixels)
    return float(_FROM_HISTOGRAM[method](counts, centers))


def _mean(pixels):
    """numpy's ``mean``: float64 for integer images, the image's float type otherwise."""
    if pixels.integer:
        lo, hi = pixels.range()
        # 8- and 16-bit images: from the histogram (bool images have no integer histogram)
        if pixels.dtype.kind != "b" and int(hi) - int(lo) < _MAX_INTEGER_BINS:
            counts, values = _threshold_histogram(pixels)
            return np.float64(np.dot(counts, values.astype(np.float64)) / pixels.size)
        total = pixels.reduce(lambda t: int(t.sum()))  # exact: integers sum in int64
        return np.float64(total / pixels.size)
    total = pixels.reduce(lambda t: to_numpy(t.sum()).item())  # torch sums in cascades
    if not math.isfinite(total):
        pixels.range()  # raises, naming NaN or infinity
    return pixels.dtype.type(total / pixels.size)


def _otsu(counts, centers):
    counts = counts.astype(np.float32)
    weight1 = np.cumsum(counts)  # pixels at or below each bin
    weight2 = np.cumsum(counts[::-1])[::-1]  # at or above
    mean1 = np.cumsum(counts * centers) / weight1
    mean2 = (np.cumsum((counts * centers)[::-1]) / weight2[::-1])[::-1]
    # class 1 is bins 0..i, class 2 is bins i+1..end
    between = weight1[:-1] * weight2[1:] * (mean1[:-1] - mean2[1:]) ** 2
    return centers[np.argmax(between)]


def _yen(counts, centers):
    pmf = counts.astype(np.float32) / counts.astype(np.float32).sum()
    p1 = np.cumsum(pmf)
    p1_sq = np.cumsum(pmf**2)
    p2_sq = np.cumsum(pmf[::-1] ** 2)[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        criterion = np.log(((p1_sq[:-1] * p2_sq[1:]) ** -1) * (p1[:-1] * (1.0 - p1[:-1])) ** 2)
    return centers[np.argmax(criterion)]


def _isodata(counts, centers):
    counts = counts.astype(np.float32)
    below = np.cumsum(counts)  # pixels at or below each bin
    above = below[-1] - below  # strictly above
    intensity = np.cumsum(counts * centers)
    mean_below = intensity[:-1] / below[:-1]
    mean_above = (intensity[-1] - intensity[:-1]) / above[:-1]
    distance = (mean_below + mean_above) / 2.0 - centers[:-1]
    fixed = np.flatnonzero((distance >= 0) & (distance < centers[1] - centers[0]))
    if fixed.size:
        return centers[fixed[0]]
    # no bin within one width of its fixed point (possible for very sparse float histograms):
    # the last bin still below the mean of the class means
    return centers[np.flatnonzero(distance >= 0)[-1]]


def _triangle(counts, centers):
    nbins = len(counts)
    peak = int(np.argmax(counts))
    low, high = np.flatnonzero(counts)[[0, -1]]
    flip = peak - low < high - peak  # work on the longer tail
    if flip:
        counts = counts[::-1]
        low, peak = nbins - high - 1, nbins - peak - 1
    width = peak - low
    x = np.arange(width)
    height = counts[peak]
    norm = np.sqrt(height**2 + width**2)
    # distance (up to a constant) of each bin top from the line from (low, 0) to (peak, height)
    distance = height / norm * x - width / norm * counts[x + low]
    level = int(np.argmax(distance)) + low
    return centers[nbins - level - 1 if flip else level]


_FROM_HISTOGRAM = {"otsu": _otsu, "yen": _yen, "isodata": _isodata, "triangle": _triangle}


def _li(pixels):
    """Li's minimum cross entropy threshold, iterated as scikit-image does.

    The image is shifted to start at 0 (the method takes logarithms of class means). Integer
    images iterate on their integer histogram; float images on the pixels, stopping when the
    threshold moves by less than half the smallest gap between distinct values.
    """
    lo, _ = pixels.range()
    if pixels.integer:
        counts, values = _threshold_histogram(pixels)
        values = values - values[0]
        guess = np.float64(np.dot(counts, values.astype(np.float64)) / pixels.size)
        counts = counts.astype(np.float32)
        tolerance = 0.5

        def class_means(t):
            fore = values > t
            return (np.average(values[fore], weights=counts[fore]),
                    np.average(values[~fore], weights=counts[~fore]))

    else:
        split, total, tolerance = _li_statistics(pixels, lo)
        ftype, nan = pixels.dtype.type, pixels.dtype.type(np.nan)
        guess = ftype(total / pixels.size)

        def class_means(t):
            n_fore, s_fore = split(t)
            n_back, s_back = pixels.size - n_fore, total - s_fore
            return (ftype(s_fore / n_fore) if n_fore else nan,
                    ftype(s_back / n_back) if n_back else nan)

    def update(t):  # Li's next threshold, None where the background mean is 0
        mean_fore, mean_back = class_means(t)
        if mean_back == 0:
            return None
        with np.errstate(divide="ignore", invalid="ignore"):
            return (mean_back - mean_fore) / (np.log(mean_back) - np.log(mean_fore))

    return _li_iterate(guess, tolerance, update) + lo


def _li_iterate(guess, tolerance, update):
    """Li's fixed-point iteration ``t <- update(t)`` from ``guess`` until the threshold moves
    by at most ``tolerance``, or by at most one step of its floating-point type (or ``update``
    returns None). The second condition: a float32 threshold near 400 moves in steps of
    3.05e-5, and on a 64 x 1024 x 1024 float32 image (uniform values times 1000) it went back
    and forth between 397.91855 and 397.91858 for ever with a tolerance of 1.5e-5
    (scikit-image's loop has the same stopping rule)."""
    t_next, t_curr = guess, -2 * tolerance
    while abs(t_next - t_curr) > max(tolerance, np.spacing(np.abs(t_next))):
        t_curr = t_next
        t = update(t_curr)
        if t is None:
            break
        t_next = t
    return t_next


def _li_statistics(pixels, lo):
    """What Li's iteration needs of a float image shifted to ``image - lo``.

    Returns ``split(t) -> (count, sum)`` of the shifted values above ``t``, their total sum
    (float64), and the stopping tolerance: half the smallest gap between distinct values.
    In memory, the values are sorted once and every split is a binary search into their
    prefix sums. Dask arrays take one pass over the blocks per split, and merge the distinct
    values of all blocks on the host for the tolerance (memory grows with their number).
    """
    import torch

    lo = float(lo)
    wide = compute_dtype(np.float64, pixels.device)  # sums in float64 (but on Apple MPS)
    if pixels.tensor is not None:
        values = torch.sort((pixels.tensor - lo).reshape(-1)).values  # shifted in the image dtype
        prefix = torch.cumsum(values, 0, dtype=wide)
        steps = torch.diff(values)
        gap = to_numpy(steps[steps > 0].min())[()]
        total = prefix[-1].item()

        def split(t):
            key = torch.tensor([t], dtype=values.dtype, device=values.device)
            below = int(torch.searchsorted(values, key, right=True))
            return values.numel() - below, total - (prefix[below - 1].item() if below else 0.0)

        return split, total, gap / 2

    def distinct(t):
        return to_numpy(torch.unique(t - lo))

    def above(t, threshold):
        x = t - lo
        mask = x > float(threshold)
        return int(mask.sum()), torch.where(mask, x, 0).sum(dtype=wide).item()

    values = pixels.reduce(distinct, lambda parts: np.unique(np.concatenate(parts)))
    total = pixels.reduce(lambda t: (t - lo).sum(dtype=wide).item())

    def split(t):
        return pixels.reduce(lambda x: above(x, t), lambda parts: tuple(map(sum, zip(*parts))))

    return split, total, np.min(np.diff(values)) / 2

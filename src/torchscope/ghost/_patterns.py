"""Mask patterns: 2D Walsh-Hadamard patterns in several orders, and random speckle masks.

The 2D patterns are outer products of the rows of a Sylvester Hadamard matrix ``H_n``
(``H_1 = [1]``, ``H_2k = [[H_k, H_k], [H_k, -H_k]]``): pattern ``(u, v)`` is
``H_n[u][:, None] * H_n[v][None, :]``. Flattened row-major, pattern ``(u, v)`` is row
``u * n + v`` of the Sylvester matrix of size ``n**2``, so a fast Walsh-Hadamard transform of
length ``n**2`` inverts a full set (see :mod:`torchscope.ghost._transform`).
"""

import numbers

import numpy as np

from torchscope.backend import check_int, check_real, check_rng

ORDERS = ("natural", "sequency", "zigzag", "cake_cutting")
KINDS = ("binary", "differential")


def sylvester(n):
    """The Sylvester Hadamard matrix of order ``n`` (a power of two), as int8 +1/-1."""
    h = np.ones((1, 1), dtype=np.int8)
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def sign_changes(h):
    """Number of sign changes along each row of a +1/-1 matrix (the row's sequency)."""
    return np.count_nonzero(h[:, 1:] != h[:, :-1], axis=1)


def check_n(n):
    """Validate the side length of Hadamard masks; return it as int."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an integer power of two >= 4, got {type(n).__name__} {n!r}.")
    n = int(n)
    if n < 4 or n & (n - 1):
        raise ValueError(f"n={n}: Hadamard masks need a side length that is a power of two >= 4 "
                         "(4, 8, 16, 32, 64, ...).")
    return n


def pattern_indices(n, order):
    """Row-factor indices ``(u, v)`` (natural Hadamard order) of all ``n**2`` patterns in ``order``.

    Returns
    -------
    u, v : numpy.ndarray of int64, shape (n**2,)
    """
    if order not in ORDERS:
        raise ValueError(f"order={order!r}; accepted: {ORDERS}.")
    uu, vv = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    u, v = uu.ravel(), vv.ravel()
    if order == "natural":
        return u, v
    seq = sign_changes(sylvester(n))  # sequency of each natural row
    su, sv = seq[u], seq[v]
    if order == "sequency":  # row-major in the (sequency_u, sequency_v) plane
        key = np.lexsort((sv, su))
    else:
        d = su + sv  # anti-diagonal of the sequency plane
        # JPEG-like zigzag: along odd diagonals su grows, along even ones it falls
        zig = np.lexsort((np.where(d % 2 == 1, su, -su), d))
        if order == "zigzag":
            key = zig
        else:  # cake_cutting: pieces of the 2D pattern ascending, ties in zigzag order
            pieces = (su + 1) * (sv + 1)
            key = zig[np.argsort(pieces[zig], kind="stable")]
    return u[key], v[key]


def n_patterns(ratio, total):
    """Number of patterns for a sampling ``ratio`` of ``total`` (validated)."""
    ratio = check_real("ratio", ratio, 0, 1, low_open=True)
    return max(1, round(ratio * total))


def hadamard_patterns(n, *, ratio=1.0, order="zigzag", kind="binary"):
    """2D Walsh-Hadamard mask patterns.

    Parameters
    ----------
    n : int
        Side length of a mask in mask pixels; a power of two, at least 4 (the paper's masks are
        32 and 64).
    ratio : float, optional
        Sampling ratio ``M / n**2`` in (0, 1]: the first ``round(ratio * n**2)`` patterns of
        ``order`` are returned (18.75 % of 64 x 64 gives 768 patterns).
    order : {"zigzag", "natural", "sequency", "cake_cutting"}, optional
        ``"natural"``: Sylvester order, pattern ``k = u * n + v``. ``"sequency"``: the 1D Walsh
        rows by number of sign changes, row-major in the ``(s_u, s_v)`` plane. ``"zigzag"``
        (default): low spatial frequency first, along the anti-diagonals ``s_u + s_v`` of the
        sequency plane in JPEG zigzag. ``"cake_cutting"``: by the number of connected pieces of
        the pattern, ``(s_u + 1) * (s_v + 1)``, ascending (Yu et al. 2019), ties in zigzag order.
    kind : {"binary", "differential"}, optional
        ``"binary"``: 0/1 masks ``(1 + h) / 2``, one mask per Hadamard row, as etched in metal
        (1 = open). ``"differential"``: the +1/-1 rows ``h``, i.e. the difference of the
        complementary masks ``(1 + h) / 2`` and ``(1 - h) / 2`` (two exposures each).

    Returns
    -------
    numpy.ndarray of float32, shape (M, n, n)

    Notes
    -----
    Every order is a permutation of the same ``n**2`` patterns, and the first pattern is always
    the uniform one (open mask), which fixes the mean of the image.
    """
    n = check_n(n)
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}; accepted: {KINDS}.")
    m = n_patterns(ratio, n * n)
    u, v = pattern_indices(n, order)
    h = sylvester(n).astype(np.float32)
    p = h[u[:m], :, None] * h[v[:m], None, :]
    if kind == "binary":
        p = (p + 1.0) * 0.5
    return np.ascontiguousarray(p, dtype=np.float32)


def speckle_patterns(n, m, *, grain=1.0, rng=None):
    """Random binary "sandpaper" masks.

    A white Gaussian field is smoothed with a Gaussian of standard deviation ``grain / 2``
    pixels and thresholded at its median, so each mask is open on half of its pixels, with
    open and opaque features about ``grain`` pixels across.

    Parameters
    ----------
    n : int
        Side length of a mask in pixels (any integer >= 2).
    m : int
        Number of masks.
    grain : float, optional
        Typical feature size in pixels (>= 0); ``grain <= 1`` gives independent pixels.
    rng : None, int or numpy.random.Generator, optional
        Seed or generator; the same seed gives the same masks.

    Returns
    -------
    numpy.ndarray of float32, shape (m, n, n)
        0/1 masks.
    """
    import scipy.ndimage as ndi

    check_int("n", n, 2, type_error=ValueError)
    check_int("m", m, 1, type_error=ValueError)
    check_real("grain", grain, 0, np.inf, type_error=ValueError)
    gen = check_rng(rng)
    field = gen.standard_normal((int(m), int(n), int(n)))
    if grain > 1:
        field = ndi.gaussian_filter(field, (0, grain / 2, grain / 2), mode="wrap")
    med = np.median(field.reshape(int(m), -1), axis=1)[:, None, None]
    return (field > med).astype(np.float32)

"""CNR against the number of exposures, the paper's Fig. 2(j)."""

import dataclasses
import numbers

import numpy as np


@dataclasses.dataclass(frozen=True)
class CNRCurve:
    """Result of :func:`cnr_curve`.

    Attributes
    ----------
    counts : numpy.ndarray of int, shape (K,)
        Numbers of exposures (the first ``k`` patterns).
    methods : tuple of str, length L
    cnr : numpy.ndarray of float64, shape (L, K)
        ``cnr[i, j]``: CNR of ``methods[i]`` reconstructed from the first ``counts[j]`` exposures.
    """

    counts: np.ndarray
    methods: tuple
    cnr: np.ndarray


def cnr_curve(obj, patterns, *, methods=("gi", "dgi", "tv"), counts=None, object_mask=None,
              reconstruct_options=None, device=None, **simulate_options):
    """CNR of reconstructions from the first ``k`` exposures, for several ``k`` and methods.

    One measurement of the whole pattern sequence is simulated (:func:`simulate_buckets` with
    ``simulate_options``, so mask errors and noise are those of one experiment) and each
    method reconstructs from its first ``k`` buckets and masks, as when an experiment is
    stopped after ``k`` exposures.

    Parameters
    ----------
    obj : array_like, shape (n, n)
        Object transmission.
    patterns : array_like, shape (M, n, n)
        Nominal masks, in exposure order.
    methods : sequence of str, optional
        Methods of :func:`reconstruct`.
    counts : sequence of int, optional
        Numbers of exposures, each in ``[2, M]``; default: 8 values evenly spaced up to ``M``.
    object_mask : array_like of bool, shape (n, n), optional
        Pixels of the object (``G_1``); the rest is background. Default: ``obj`` above the
        midpoint of its range (a binary object).
    reconstruct_options : dict, optional
        Options passed to every :func:`reconstruct` call. ``modulation_depth`` defaults to the
        simulated one (the masks' ``D_r`` is taken as known).
    device : None, str or torch.device, optional
    **simulate_options
        ``modulation_depth``, ``mask_error``, ``blur``, ``photons``, ``read_noise``, ``rng`` of
        :func:`simulate_buckets`.

    Returns
    -------
    CNRCurve
    """
    from torchscope.ghost._metrics import cnr
    from torchscope.ghost._reconstruct import _OPTIONS, METHODS, reconstruct
    from torchscope.ghost._simulate import simulate_buckets

    p = np.asarray(patterns)
    if p.ndim != 3:
        raise ValueError(f"patterns has shape {p.shape}; expected a stack (M, n, n) of masks.")
    o = np.asarray(obj, dtype=np.float64)
    if o.shape != p.shape[1:]:
        raise ValueError(f"obj has shape {o.shape}; expected one object of the mask size "
                         f"{p.shape[1:]}.")
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    if not methods or any(m not in METHODS for m in methods):
        raise ValueError(f"methods={methods!r}; accepted: a non-empty sequence of {METHODS}.")
    m_total = p.shape[0]
    if counts is None:
        counts = np.unique(np.linspace(m_total / 8, m_total, 8).round().astype(int))
    counts = np.asarray(counts)
    if (counts.ndim != 1 or counts.size == 0 or counts.dtype.kind not in "iu"
            or (counts < 2).any() or (counts > m_total).any()):
        raise ValueError(f"counts={counts.tolist()!r}: expected integers in [2, {m_total}].")
    if object_mask is None:
        object_mask = o > 0.5 * (o.min() + o.max())
    mask = np.asarray(object_mask)
    if mask.dtype != bool or mask.shape != o.shape:
        raise ValueError("object_mask must be a bool array of the object's shape.")
    options = dict(reconstruct_options or {})
    unknown = sorted(set(options) - set().union(*(_OPTIONS[m] for m in methods)))
    if unknown:  # each method takes its own options; one that none of them takes is a typo
        raise TypeError(f"reconstruct_options {unknown} are options of none of the methods "
                        f"{tuple(methods)}.")
    depth = simulate_options.get("modulation_depth", 1.0)
    if isinstance(depth, numbers.Real):
        options.setdefault("modulation_depth", depth)

    buckets = simulate_buckets(o, p, **simulate_options)
    out = np.empty((len(methods), counts.size))
    for j, k in enumerate(counts):
        for i, method in enumerate(methods):
            # each method takes the options it knows (e.g. lam only for tv)
            opts = {key: val for key, val in options.items() if key in _OPTIONS[method]}
            img = reconstruct(buckets[:k], p[:k], method=method, device=device, **opts)
            out[i, j] = cnr(img, mask)
    return CNRCurve(counts=counts.astype(int), methods=methods, cnr=out)

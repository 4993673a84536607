"""Reconstructions from bucket signals: GI, DGI, pseudo-inverse and total-variation CS.

Every method works on a flattened system ``b = A x``: ``A`` is the ``(M, N)`` matrix of the
(effective) patterns, ``x`` the image with ``N = n * n`` pixels, ``b`` the buckets.

``pinv`` and ``tv`` first reduce the system to an orthonormal frame ``W x = c`` (``W`` with
orthonormal rows, ``W W^T = I``) that has the same least-squares solutions:

- Hadamard patterns (rows ``a_r + c_r h_k`` of a Sylvester matrix, always recognised exactly;
  ``basis="hadamard"`` requires them): ``W`` holds the measured rows ``h_k / sqrt(N)``, and
  ``W x`` is a fast Walsh-Hadamard transform (``O(N log N)``, no matrix).
- Any other patterns: a thin SVD ``A = U S V^T`` gives ``W = V_r^T``, ``c = S_r^{-1} U_r^T b``
  over the singular values above ``rcond * S_max``.

The pseudo-inverse image is ``W^T c`` (the minimum-norm least-squares solution).
"""

import dataclasses
import math
import numbers

import numpy as np

from torchscope.backend import (
    as_array,
    check_int,
    check_real,
    compute_dtype,
    get_device,
    to_numpy,
    to_tensor,
)
from torchscope.ghost._plan import get_plan, make_frame

METHODS = ("gi", "dgi", "pinv", "tv", "mwcnn")
_OPTIONS = {
    "gi": {"modulation_depth"},
    "dgi": {"modulation_depth"},
    "pinv": {"modulation_depth", "basis", "rcond"},
    "tv": {"modulation_depth", "basis", "rcond", "lam", "iterations"},
    "mwcnn": {"modulation_depth", "basis", "rcond", "model"},
}
_BASES = (None, "hadamard", "general")


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """State of an iterative reconstruction, as yielded by :func:`iterate`.

    Attributes
    ----------
    iteration : int
        Iterations done so far.
    image : numpy.ndarray of float32, shape (..., n, n)
        Current estimate.
    change : float
        Relative change of the estimate since the previous snapshot,
        ``||x_k - x_prev|| / ||x_k||`` (the largest over a batch).
    """

    iteration: int
    image: np.ndarray
    change: float


# ---------------------------------------------------------------------------------- inputs
def _check_pattern_array(patterns):
    p = np.asarray(patterns)
    if p.dtype.kind not in "biuf":
        raise TypeError(f"patterns has dtype {p.dtype}; expected a real (M, n, n) array.")
    if p.ndim != 3 or p.shape[0] < 1:
        raise ValueError(f"patterns has shape {p.shape}; expected a stack (M, n, n) of masks.")
    return p  # values (finite, not all zero) are checked once per pattern set, by its plan


def _prepare(buckets, patterns, method, options, device):
    """Validate; return ``(b, plan, depth, batch)`` with ``b`` a (B, M) tensor."""
    if method not in METHODS:
        raise ValueError(f"method={method!r}; accepted: {METHODS}.")
    unknown = set(options) - _OPTIONS[method]
    if unknown:
        raise TypeError(f"reconstruct(method={method!r}) got unknown option(s) "
                        f"{sorted(unknown)}; accepted: {sorted(_OPTIONS[method])}.")
    p = _check_pattern_array(patterns)
    b = as_array(buckets, "buckets")
    if b.dtype.kind not in "biuf":
        raise TypeError(f"buckets has dtype {b.dtype}; expected real values.")
    if b.ndim < 1 or b.shape[-1] != p.shape[0]:
        raise ValueError(f"buckets has shape {b.shape}; its last axis must have one value per "
                         f"pattern ({p.shape[0]}).")
    if not np.isfinite(b).all():
        raise ValueError("buckets contains NaN or infinite values.")
    plan = get_plan(p)
    depth = options.get("modulation_depth", 1.0)
    if isinstance(depth, str) and depth == "estimate":
        depth = _estimate_depth(b.reshape(-1, p.shape[0]), plan)
    elif isinstance(depth, bool) or not isinstance(depth, numbers.Real) or not 0 < depth <= 1:
        raise ValueError(f"modulation_depth={depth!r}: expected D_r in (0, 1] or 'estimate'.")
    dev = get_device(device)
    dtype = compute_dtype(np.result_type(b.dtype, p.dtype), dev)
    batch = b.shape[:-1]
    bt = to_tensor(b.reshape(-1, p.shape[0]), device=dev, dtype=dtype)
    return bt, plan, float(depth), batch


def _finish(x, batch, shape):
    return to_numpy(x.reshape(*batch, *shape), dtype=np.float32)


# ----------------------------------------------------------------- modulation depth
def _estimate_depth(b, plan):
    """``D_r`` from the open mask's bucket and the mean of the others (see the docs)."""
    if plan.differential:
        raise ValueError("modulation_depth='estimate' needs 0/1 (binary) masks: differential "
                         "buckets fix D_r only together with the scale of the object.")
    scale = np.maximum(np.abs(plan.lo), np.abs(plan.hi)).max() or 1.0
    open_ = np.abs(plan.lo - 1.0) <= 1e-6 * scale  # all-open masks: every pixel 1
    binary = ((np.abs(plan.lo) <= 1e-6 * scale) | open_) & (np.abs(plan.hi - 1) <= 1e-6 * scale)
    if not open_.any() or open_.all() or not binary.all():
        raise ValueError("modulation_depth='estimate' needs nominal 0/1 masks that include the "
                         "all-open mask (the first Hadamard pattern) and at least one other.")
    fill = plan.rowsum[~open_].mean() / plan.size  # mean open fraction of the other masks
    s = b[:, open_].mean(1).sum()  # pooled over a batch: D_r belongs to the masks
    other = b[:, ~open_].mean(1).sum()
    if not s > 0:
        raise ValueError("modulation_depth='estimate': the open mask's bucket is not positive.")
    depth = (1.0 - other / s) / (1.0 - fill)
    return float(np.clip(depth, 1e-3, 1.0))


def estimate_modulation_depth(buckets, patterns):
    """Modulation depth ``D_r`` of binary masks, estimated from the buckets themselves.

    The open mask (all pixels 1) transmits ``S = sum(x)`` whatever the metal; a nominal 0/1
    mask ``p_r`` transmits ``(1 - D_r) S + D_r p_r . x``. Averaged over the ``M - 1`` other
    masks, ``<B> = (1 - D_r) S + D_r <p> . x``; when the mean mask ``<p>`` is close to uniform
    with open fraction ``f`` (Hadamard masks: ``f = 1/2`` everywhere but one pixel),
    ``<p> . x = f S`` and

        ``D_r = (1 - <B> / B_open) / (1 - f)``.

    For binary Hadamard rows the only approximation is that one pixel: the relative error of
    ``D_r`` is ``(x_K[0, 0] - mean(x)) / ((M - 1) mean(x))`` with ``x_K`` the image projected on
    the measured rows, i.e. below 1 % for ``M = 768`` unless the corner pixel is far brighter
    than the mean. Zero-mean noise (Poisson, read noise, mask errors) averages out; a dark
    offset of the detector does not (subtract it first). A stack of bucket vectors is pooled.
    A closed form computed on the host, so it takes no ``device`` (the masks' plan, which
    ``reconstruct`` reuses, is built on the CPU).

    Parameters
    ----------
    buckets : array_like, shape (..., M)
    patterns : array_like, shape (M, n, n)
        Nominal 0/1 masks that include the all-open one.

    Returns
    -------
    float
        ``D_r`` in (0, 1].
    """
    p = _check_pattern_array(patterns)
    b = np.asarray(buckets, dtype=np.float64)
    if b.ndim < 1 or b.shape[-1] != p.shape[0]:
        raise ValueError(f"buckets has shape {b.shape}; its last axis must have one value per "
                         f"pattern ({p.shape[0]}).")
    if not np.isfinite(b).all():
        raise ValueError("buckets contains NaN or infinite values.")
    return _estimate_depth(b.reshape(-1, p.shape[0]), get_plan(p))


# ------------------------------------------------------------------------- linear methods
def _gi(b, plan, depth):
    m = b.shape[1]
    return plan.weighted_sum((b - b.mean(1, keepdim=True)) / m, depth)


def _dgi(b, plan, depth):
    m = b.shape[1]
    r = plan.total_transmission(depth, b.device, b.dtype)  # reference bucket of each mask
    r_mean = r.mean()
    if float(r_mean.abs()) <= 1e-12 * float(r.abs().amax() + 1e-30):
        raise ValueError("method='dgi' needs patterns whose total transmission has a non-zero "
                         "mean (the reference bucket); use 'gi' for zero-mean patterns.")
    return plan.weighted_sum((b - (b.mean(1, keepdim=True) / r_mean) * r[None]) / m, depth)


def _frame(b, plan, depth, options):
    basis = options.get("basis")
    if basis not in _BASES:
        raise ValueError(f"basis={basis!r}; accepted: {_BASES}.")
    return make_frame(plan, b, depth, basis, options.get("rcond", 1e-6))


# ------------------------------------------------------------------------------ TV solver
def _tv_steps(frame, lam, iterations, every):
    """Chambolle-Pock for ``min_x 1/2 ||W x - c||^2 + mu TV(x)``; yields (iteration, x, change).

    Buffers are allocated once and updated in place; the loop makes no host synchronisation
    except at the snapshots.
    """
    import torch

    x = frame.pinv()  # the pseudo-inverse: start there
    batch = x.shape[0]
    flat = x.reshape(batch, -1)
    lo = torch.quantile(flat, 0.01, dim=1)
    hi = torch.quantile(flat, 0.99, dim=1)
    contrast = torch.clamp(hi - lo, min=1e-12 * float(x.abs().amax()) + 1e-30)
    mu = (lam * contrast).view(batch, 1, 1)
    tau = sigma = 0.99 / math.sqrt(8.0)  # tau * sigma * ||grad||^2 < 1
    wc = x * tau
    shrink = tau / (1.0 + tau)
    x = x.clone()
    xbar = x.clone()
    d0 = torch.zeros_like(x)  # dual, vertical differences (last row stays 0)
    d1 = torch.zeros_like(x)  # dual, horizontal differences (last column stays 0)
    norm = torch.empty_like(x)
    div = torch.empty_like(x)
    last = x.clone()
    for it in range(1, iterations + 1):
        d0[:, :-1].add_(xbar[:, 1:] - xbar[:, :-1], alpha=sigma)
        d1[:, :, :-1].add_(xbar[:, :, 1:] - xbar[:, :, :-1], alpha=sigma)
        torch.hypot(d0, d1, out=norm)
        torch.maximum(norm, mu, out=norm).clamp_min_(1e-30)  # lam=0: 0 / 0 where flat
        torch.div(mu, norm, out=norm)
        d0.mul_(norm)
        d1.mul_(norm)
        # div = -grad^T dual (zero boundary)
        torch.add(d0, d1, out=div)
        div[:, 1:].sub_(d0[:, :-1])
        div[:, :, 1:].sub_(d1[:, :, :-1])
        z = torch.add(wc, div, alpha=tau).add_(x)
        # prox of the data term: (I + tau W^T W)^-1 = I - tau / (1 + tau) W^T W, as W W^T = I
        x_new = z.sub_(frame.project(z), alpha=shrink)
        torch.sub(x_new, x, out=xbar).add_(x_new)  # xbar = 2 x_new - x
        x = x_new
        if it % every == 0 or it == iterations:
            diff = torch.linalg.vector_norm((x - last).view(batch, -1), dim=1)
            ref = torch.clamp(torch.linalg.vector_norm(x.view(batch, -1), dim=1), min=1e-30)
            yield it, x, float((diff / ref).amax())
            last = x.clone()


# ---------------------------------------------------------------------------------- public
def iterate(buckets, patterns, *, method="tv", every=10, device=None, **options):
    """Run an iterative reconstruction step by step, yielding a :class:`Snapshot` every ``every``.

    The generator can be abandoned between yields (that is how the GUI stops it);
    :func:`reconstruct` runs the same generator to its end. Options are those of
    :func:`reconstruct` for the method (only ``"tv"`` is iterative).

    Parameters
    ----------
    buckets : array_like, shape (..., M)
    patterns : array_like, shape (M, n, n)
    method : {"tv"}, optional
    every : int, optional
        Iterations between snapshots (the last iteration always yields).
    device : None, str or torch.device, optional
    **options
        See :func:`reconstruct`.

    Yields
    ------
    Snapshot
    """
    if method != "tv":
        if method in METHODS:
            raise ValueError(f"method={method!r} is not iterative; iterate() runs 'tv'. Use "
                             "reconstruct() for it.")
        raise ValueError(f"method={method!r}; accepted: {METHODS}.")
    every = check_int("every", every, 1, type_error=ValueError)
    lam = check_real("lam", options.get("lam", 0.02), 0, np.inf, type_error=ValueError)
    iterations = check_int("iterations", options.get("iterations", 200), 1, type_error=ValueError)
    import torch

    with torch.no_grad():
        b, plan, depth, batch = _prepare(buckets, patterns, method, options, device)
        if b.shape[0] == 0:
            raise ValueError(f"buckets is an empty stack (shape {np.shape(buckets)}): nothing "
                             f"to reconstruct with method={method!r}.")
        frame = _frame(b, plan, depth, options)
    steps = _tv_steps(frame, lam, iterations, every)
    while True:
        # autograd is off only while a step computes, never across a yield: an abandoned
        # generator must not leave the consumer's thread (a reused worker thread) without it
        with torch.no_grad():
            step = next(steps, None)
            if step is None:
                return
            it, x, change = step
            # a copy: on the CPU the array would otherwise share memory with the solver's
            # estimate, which the next step reads (a caller editing its image would steer it)
            snapshot = Snapshot(it, _finish(x.clone(), batch, plan.shape), change)
        yield snapshot


def reconstruct(buckets, patterns, *, method="tv", device=None, **options):
    """Image from bucket signals and the patterns that made them.

    Parameters
    ----------
    buckets : array_like, shape (..., M)
        Bucket values, one per pattern (any units; a stack gives a stack of images).
    patterns : array_like, shape (M, n, n)
        The masks: 0/1 (binary), +1/-1 (differential) or any real values (measured
        transmission maps, speckle); they need not come from this module.
    method : {"tv", "gi", "dgi", "pinv", "mwcnn"}, optional
        ``"gi"``: second-order correlation ``<(B - <B>)(P - <P>)>`` over the patterns.
        ``"dgi"``: differential GI (Ferri et al., PRL 104, 253603, 2010),
        ``<B P> - <B> / <R> <R P>`` with ``R`` the total transmission of each mask.
        ``"pinv"``: minimum-norm least squares; a fast Walsh-Hadamard inverse when the patterns
        are Hadamard rows (any order, subset, binary, differential or with a modulation
        depth), an SVD otherwise.
        ``"tv"`` (default): total-variation compressive sensing (the TVAL3 model
        ``min_x 1/2 ||A x - b||^2_W + mu TV(x)``, isotropic TV), solved by Chambolle-Pock
        primal-dual iterations in the orthonormal frame of the measurement (see :func:`iterate`).
        ``"mwcnn"``: the paper's CH-MWCNN: the ``pinv`` image refined by a multi-level
        wavelet CNN (:func:`train_mwcnn`). Without ``model``, a network that ships with the
        package is chosen for the mask size, the order of the Hadamard rows and the sampling
        ratio (closest trained ratio); ``ValueError`` if none fits (e.g. 128 x 128 masks,
        speckle masks or a random subset of rows): train one with :func:`train_mwcnn`.
    device : None, str or torch.device, optional
        ``None``: CUDA, then Apple MPS, then the CPU.
    **options
        modulation_depth : float in (0, 1] or "estimate", default 1
            ``D_r`` of nominal masks: 0/1 patterns are taken as transmitting ``1 - D_r`` where
            they are 0 (differential ones as ``D_r * p``). All methods. ``"estimate"``: from
            the buckets, by :func:`estimate_modulation_depth` (0/1 masks including the open
            one), one value pooled over a stack. The buckets cannot tell ``D_r`` from the
            image's corner: the estimate puts the corner of the result at the image's mean,
            a blob there where the object's corner is far from it (docs/ghost.md); pass the
            known ``D_r`` when it is known.
        basis : {None, "hadamard", "general"}
            ``None`` detects Hadamard patterns exactly (once per pattern set: the analysis is
            cached, keyed by a fingerprint of the whole array); ``"hadamard"`` requires them
            (``ValueError`` otherwise); ``"general"`` forces the SVD path. ``pinv`` and ``tv``.
        rcond : float, default 1e-6
            Relative cut-off of singular values on the SVD path. ``pinv`` and ``tv``.
        lam : float, default 0.02
            TV weight, relative to the contrast of the pseudo-inverse image (its 1-99 %
            percentile range), so it does not depend on the units of the buckets. ``tv``.
        iterations : int, default 200
            Chambolle-Pock iterations. ``tv``.
        model : MWCNN, optional
            A network from :func:`train_mwcnn` or :func:`load_mwcnn` instead of a shipped one.
            ``mwcnn``. Pass ``modulation_depth`` too (known or ``"estimate"``): the network
            expects the pseudo-inverse of the true masks.

    Returns
    -------
    numpy.ndarray of float32, shape (..., n, n)
        The image, in the units of ``buckets`` per unit of pattern transmission (``gi`` and
        ``dgi`` are correlations: proportional to the object up to an offset).

    Raises
    ------
    ValueError
        For an unknown method, mismatched shapes or bad option values, or ``mwcnn`` without a
        fitting model.
    TypeError
        For an option the method does not take.
    """
    if method == "tv":
        snap = None
        for snap in iterate(buckets, patterns, method="tv", every=1 << 30, device=device,
                            **options):
            pass
        return snap.image
    import torch

    with torch.no_grad():
        b, plan, depth, batch = _prepare(buckets, patterns, method, options, device)
        if method == "gi":
            x = _gi(b, plan, depth)
        elif method == "dgi":
            x = _dgi(b, plan, depth)
        elif method == "mwcnn":
            x = _refine_mwcnn(b, plan, depth, options)
        else:
            x = _frame(b, plan, depth, options).pinv()
        return _finish(x, batch, plan.shape)


def _refine_mwcnn(b, plan, depth, options):
    from torchscope.ghost import _mwcnn

    if plan.shape[0] != plan.shape[1]:
        raise ValueError(f"method='mwcnn' needs square masks, got {plan.shape[0]} x "
                         f"{plan.shape[1]}.")
    model = options.get("model")
    if model is None:
        net = _mwcnn.shipped_model(plan, b.device)
    else:
        net = _mwcnn.user_model(model, plan.shape[0], b.device)
    frame = _frame(b, plan, depth, options)
    if b.shape[0] == 0:  # an empty stack: an empty stack of images, as the other methods give
        return frame.pinv()
    return _mwcnn.refine(net, frame.pinv(), frame.project)

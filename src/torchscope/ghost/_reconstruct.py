"""Reconstructions from bucket signals: GI, DGI, pseudo-inverse and total-variation CS.

Every method works on a flattened system ``b = A x``: ``A`` is the ``(M, N)`` matrix of the
(effective) patterns, ``x`` the image with ``N = n * n`` pixels, ``b`` the buckets.

``pinv`` and ``tv`` first reduce the system to an orthonormal frame ``W x = c`` (``W`` with
orthonormal rows, ``W W^T = I``) that has the same least-squares solutions:

- Hadamard patterns (rows ``a_r + c_r h_k`` of a Sylvester matrix, recognised exactly, or
  trusted with ``basis="hadamard"``): ``W`` holds the measured rows ``h_k / sqrt(N)``, and
  ``W x`` is a fast Walsh-Hadamard transform (``O(N log N)``, no matrix).
- Any other patterns: a thin SVD ``A = U S V^T`` gives ``W = V_r^T``, ``c = S_r^{-1} U_r^T b``
  over the singular values above ``rcond * S_max``.

The pseudo-inverse image is ``W^T c`` (the minimum-norm least-squares solution).
"""

import dataclasses
import math
import numbers

import numpy as np

from torchscope.backend import compute_dtype, get_device, to_numpy, to_tensor
from torchscope.ghost._simulate import check_patterns

METHODS = ("gi", "dgi", "pinv", "tv", "mwcnn")
_OPTIONS = {
    "gi": {"modulation_depth"},
    "dgi": {"modulation_depth"},
    "pinv": {"modulation_depth", "basis", "rcond"},
    "tv": {"modulation_depth", "basis", "rcond", "lam", "iterations"},
    "mwcnn": set(),
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
def _prepare(buckets, patterns, method, options, device):
    if method not in METHODS:
        raise ValueError(f"method={method!r}; accepted: {METHODS}.")
    if method == "mwcnn":
        raise NotImplementedError(
            "method='mwcnn' (the CH-MWCNN network of the paper) is not available yet: its "
            "trained weights do not ship in this version. Use 'tv', 'pinv', 'dgi' or 'gi'."
        )
    unknown = set(options) - _OPTIONS[method]
    if unknown:
        raise TypeError(f"reconstruct(method={method!r}) got unknown option(s) "
                        f"{sorted(unknown)}; accepted: {sorted(_OPTIONS[method])}.")
    p = check_patterns(patterns)
    b = np.asarray(buckets)
    if b.dtype.kind not in "biuf":
        raise TypeError(f"buckets has dtype {b.dtype}; expected real values.")
    if b.ndim < 1 or b.shape[-1] != p.shape[0]:
        raise ValueError(f"buckets has shape {b.shape}; its last axis must have one value per "
                         f"pattern ({p.shape[0]}).")
    if not np.isfinite(b).all():
        raise ValueError("buckets contains NaN or infinite values.")
    depth = options.get("modulation_depth", 1.0)
    if isinstance(depth, bool) or not isinstance(depth, numbers.Real) or not 0 < depth <= 1:
        raise ValueError(f"modulation_depth={depth!r}: expected D_r in (0, 1].")
    if depth != 1:
        # nominal 0/1 masks whose opaque parts transmit 1 - D_r; differential: D_r * p
        p = depth * p if (p < 0).any() else 1.0 - depth * (1.0 - p)
    dev = get_device(device)
    dtype = compute_dtype(np.result_type(b.dtype, np.asarray(patterns).dtype), dev)
    batch = b.shape[:-1]
    bt = to_tensor(b.reshape(-1, p.shape[0]), device=dev, dtype=dtype)
    pt = to_tensor(p.reshape(p.shape[0], -1), device=dev, dtype=dtype)
    return bt, pt, batch, p.shape[1:]


def _finish(x, batch, shape):
    return to_numpy(x.reshape(*batch, *shape), dtype=np.float32)


# ------------------------------------------------------------------------- linear methods
def _gi(b, p):
    m = p.shape[0]
    return (b - b.mean(1, keepdim=True)) @ (p - p.mean(0)) / m


def _dgi(b, p):
    m = p.shape[0]
    r = p.sum(1)  # reference bucket: total transmission of each mask
    r_mean = r.mean()
    if float(r_mean.abs()) <= 1e-12 * float(r.abs().amax() + 1e-30):
        raise ValueError("method='dgi' needs patterns whose total transmission has a non-zero "
                         "mean (the reference bucket); use 'gi' for zero-mean patterns.")
    return (b @ p - (b.mean(1, keepdim=True) / r_mean) * (r @ p)[None]) / m


class _Frame:
    """The orthonormal frame ``W x = c`` of a measurement (see the module docstring)."""

    def __init__(self, b, p, shape, basis, rcond):
        import torch

        self.size = p.shape[1]
        self.hadamard = None
        n = shape[0]
        if basis not in _BASES:
            raise ValueError(f"basis={basis!r}; accepted: {_BASES}.")
        if basis != "general" and shape[0] == shape[1]:
            from torchscope.ghost._transform import hadamard_rows

            rows = hadamard_rows(p, n, verify=basis is None)
            if rows is None and basis == "hadamard":
                raise ValueError("basis='hadamard' but the patterns are not (affine images of) "
                                 "rows of a Sylvester Hadamard matrix of this size.")
            if rows is not None:
                self._init_hadamard(b, *rows)
        if self.hadamard is None:
            if not 0 <= rcond < 1:
                raise ValueError(f"rcond={rcond!r}: expected a relative cut-off in [0, 1).")
            u, s, vh = torch.linalg.svd(p, full_matrices=False)
            keep = s > rcond * s[0]
            self.w = vh[keep]  # (r, N), orthonormal rows
            self.c = (b @ u[:, keep]) / s[keep]

    def _init_hadamard(self, b, k, a, c):
        import torch

        dc = k == 0
        if not bool(dc.any()) and bool((a.abs() > 1e-6 * c.abs().amax()).any()):
            return  # masks with an offset but no open (uniform) mask: solve it densely
        total = torch.zeros(b.shape[0], dtype=b.dtype, device=b.device)
        if bool(dc.any()):
            total = (b[:, dc] @ c[dc]) / (c[dc] ** 2).sum()
        resid = (b - a[None] * total[:, None]) * c[None]
        num = torch.zeros(b.shape[0], self.size, dtype=b.dtype, device=b.device)
        num.index_add_(1, k, resid)
        den = torch.zeros(self.size, dtype=b.dtype, device=b.device).index_add_(0, k, c * c)
        self.index = torch.nonzero(den > 0).squeeze(1)
        self.c = num[:, self.index] / den[self.index] / math.sqrt(self.size)
        self.hadamard = True

    def forward(self, x):
        """``W x`` for images flattened to (B, N)."""
        if self.hadamard:
            from torchscope.ghost._transform import fwht

            return fwht(x)[:, self.index] / math.sqrt(self.size)
        return x @ self.w.T

    def adjoint(self, y):
        """``W^T y`` for coefficients (B, r)."""
        if self.hadamard:
            import torch

            from torchscope.ghost._transform import fwht

            full = torch.zeros(y.shape[0], self.size, dtype=y.dtype, device=y.device)
            full[:, self.index] = y
            return fwht(full) / math.sqrt(self.size)
        return y @ self.w


# ------------------------------------------------------------------------------ TV solver
def _grad(x):
    import torch

    g = torch.zeros((x.shape[0], 2, *x.shape[1:]), dtype=x.dtype, device=x.device)
    g[:, 0, :-1] = x[:, 1:] - x[:, :-1]
    g[:, 1, :, :-1] = x[:, :, 1:] - x[:, :, :-1]
    return g


def _div(g):
    import torch

    d = torch.zeros((g.shape[0], *g.shape[2:]), dtype=g.dtype, device=g.device)
    d[:, :-1] += g[:, 0, :-1]
    d[:, 1:] -= g[:, 0, :-1]
    d[:, :, :-1] += g[:, 1, :, :-1]
    d[:, :, 1:] -= g[:, 1, :, :-1]
    return d


def _tv_steps(frame, shape, lam, iterations, every):
    """Chambolle-Pock for ``min_x 1/2 ||W x - c||^2 + mu TV(x)``; yields (iteration, x, change)."""
    import torch

    c = frame.c
    batch = c.shape[0]
    x = frame.adjoint(c)  # the pseudo-inverse: start there
    lo = torch.quantile(x, 0.01, dim=1)
    hi = torch.quantile(x, 0.99, dim=1)
    contrast = torch.clamp(hi - lo, min=1e-12 * float(x.abs().amax()) + 1e-30)
    mu = (lam * contrast).view(batch, 1, 1)
    x = x.view(batch, *shape)
    xbar = x.clone()
    dual = torch.zeros((batch, 2, *shape), dtype=x.dtype, device=x.device)
    tau = sigma = 0.99 / math.sqrt(8.0)  # tau * sigma * ||grad||^2 < 1
    wc = frame.adjoint(c).view(batch, *shape) * tau
    shrink = tau / (1.0 + tau)
    last = x.clone()
    for it in range(1, iterations + 1):
        dual = dual + sigma * _grad(xbar)
        norm = torch.sqrt((dual * dual).sum(1, keepdim=True))
        dual = dual / torch.clamp(norm / mu.unsqueeze(1), min=1.0)
        z = x + tau * _div(dual) + wc
        # prox of the data term: (I + tau W^T W)^-1 = I - tau / (1 + tau) W^T W, as W W^T = I
        x_new = z - shrink * frame.adjoint(frame.forward(z.view(batch, -1))).view(batch, *shape)
        xbar = 2.0 * x_new - x
        x = x_new
        if it % every == 0 or it == iterations:
            diff = torch.linalg.vector_norm((x - last).view(batch, -1), dim=1)
            ref = torch.clamp(torch.linalg.vector_norm(x.view(batch, -1), dim=1), min=1e-30)
            yield it, x, float((diff / ref).amax())
            last = x.clone()


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name}={value!r}: expected an integer >= {low}.")
    return int(value)


def _check_lam(lam):
    if isinstance(lam, bool) or not isinstance(lam, numbers.Real) or not lam >= 0:
        raise ValueError(f"lam={lam!r}: expected a regularisation weight >= 0.")
    return float(lam)


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
    every = _check_int("every", every, 1)
    lam = _check_lam(options.get("lam", 0.02))
    iterations = _check_int("iterations", options.get("iterations", 200), 1)
    import torch

    with torch.no_grad():
        b, p, batch, shape = _prepare(buckets, patterns, method, options, device)
        frame = _Frame(b, p, shape, options.get("basis"), options.get("rcond", 1e-6))
        for it, x, change in _tv_steps(frame, shape, lam, iterations, every):
            yield Snapshot(it, _finish(x, batch, shape), change)


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
        ``"mwcnn"``: not available yet (raises ``NotImplementedError``).
    device : None, str or torch.device, optional
        ``None``: CUDA, then Apple MPS, then the CPU.
    **options
        modulation_depth : float in (0, 1], default 1
            ``D_r`` of nominal masks: 0/1 patterns are taken as transmitting ``1 - D_r`` where
            they are 0 (differential ones as ``D_r * p``). All methods.
        basis : {None, "hadamard", "general"}
            ``None`` detects Hadamard patterns exactly; ``"hadamard"`` trusts it (skips the
            check); ``"general"`` forces the SVD path. ``pinv`` and ``tv``.
        rcond : float, default 1e-6
            Relative cut-off of singular values on the SVD path. ``pinv`` and ``tv``.
        lam : float, default 0.02
            TV weight, relative to the contrast of the pseudo-inverse image (its 1-99 %
            percentile range), so it does not depend on the units of the buckets. ``tv``.
        iterations : int, default 200
            Chambolle-Pock iterations. ``tv``.

    Returns
    -------
    numpy.ndarray of float32, shape (..., n, n)
        The image, in the units of ``buckets`` per unit of pattern transmission (``gi`` and
        ``dgi`` are correlations: proportional to the object up to an offset).

    Raises
    ------
    ValueError
        For an unknown method, mismatched shapes or bad option values.
    TypeError
        For an option the method does not take.
    NotImplementedError
        For ``method="mwcnn"``.
    """
    if method == "tv":
        snap = None
        for snap in iterate(buckets, patterns, method="tv", every=1 << 30, device=device,
                            **options):
            pass
        return snap.image
    import torch

    with torch.no_grad():
        b, p, batch, shape = _prepare(buckets, patterns, method, options, device)
        if method == "gi":
            x = _gi(b, p)
        elif method == "dgi":
            x = _dgi(b, p)
        else:
            frame = _Frame(b, p, shape, options.get("basis"), options.get("rcond", 1e-6))
            x = frame.adjoint(frame.c)
        return _finish(x, batch, shape)

"""Per-pattern-set plans: what a set of masks is (Hadamard rows or not), worked out once.

Recognising Hadamard rows and converting a large pattern stack to a tensor cost far more than
a reconstruction (tens of ms against well under one for 768 masks of 64 x 64), and a session
reconstructs many bucket vectors with the same masks. So the analysis of a pattern set is
cached, keyed by its shape, dtype and a *fingerprint of its full content*: the product of the
flattened patterns with a fixed random vector (one matrix-vector product, about 0.2 ms for
768 x 4096 float32). A cached plan is used only when the fingerprint of the new array equals
the stored one exactly, so editing any mask value in place (beyond float rounding of a row's
weighted sum) gives a new plan. The cache holds the last few pattern sets (LRU).

A plan describes the *nominal* masks ``p``. The effective masks of a known modulation depth
``D_r`` are an affine image ``alpha + beta * p`` (binary: ``1 - D_r + D_r p``; differential:
``D_r p``), applied analytically.

Hadamard plans need no pattern matrix at all: row ``r`` is ``a_r + c_r h_{k_r}`` with
``h_k = H[u] (x) H[v]`` (``k = u n + v``, ``H`` the ``n x n`` Sylvester matrix), so every
weighted sum of masks and every frame projection is an ``n x n`` coefficient image between two
``n x n`` matrix products, ``H C H`` (the 2D Walsh-Hadamard transform).
"""

import collections
import threading

import numpy as np

from torchscope.backend import check_real, to_numpy, to_tensor

_CACHE = collections.OrderedDict()
_CACHE_SIZE = 8
#: a plan keeps what depends on ``D_r`` for this many of the latest values (with
#: ``modulation_depth="estimate"`` every bucket vector may bring its own)
_DEPTHS_KEPT = 4
_ROWS = 256  # masks per block when a set is first examined (bounded float64 temporaries)
_LOCK = threading.Lock()
_FP_VECTORS = {}


def _fingerprint(p2):
    """Row-wise weighted sums of the flattened patterns with a fixed random permutation of the
    integers 1 to N as weights.

    Integer weights make the sums of 0/1 masks exact while they stay below 2**24 in float32
    (N <= 5792, so up to 64 x 64; always in float64): any single edit of such a set, a flipped
    pixel or an open pixel moved elsewhere, changes a sum by a non-zero integer and gives a new
    plan. (Random real weights missed moves between two pixels whose weights differed by less
    than the sum's rounding.) Combined edits can still cancel, and larger float32 sets round.

    Computed by torch on the CPU (zero-copy for float32/float64 input), not numpy: mixing
    numpy's OpenBLAS thread pool with torch's on a small CPU makes both spin (10+ ms).
    """
    import torch

    size = p2.shape[1]
    dt = torch.float32 if p2.dtype == np.float32 else torch.float64
    v = _FP_VECTORS.get((size, dt))
    if v is None:
        v = to_tensor(np.random.default_rng(20240603).permutation(size) + 1.0, device="cpu",
                      dtype=dt)
        _FP_VECTORS[(size, dt)] = v
    return to_numpy(to_tensor(p2, device="cpu", dtype=dt) @ v)


def get_plan(p):
    """The (cached) plan of a validated-shape pattern array ``p`` of shape (M, h, w)."""
    p2 = p.reshape(p.shape[0], -1)
    fp = _fingerprint(p2)
    key = (p.shape, p.dtype.str, fp.tobytes())
    with _LOCK:
        plan = _CACHE.get(key)
        if plan is not None:
            _CACHE.move_to_end(key)
            return plan
    if not np.isfinite(fp).all() and not np.isfinite(p2).all():
        raise ValueError("patterns contains NaN or infinite values.")
    plan = Plan(p)
    with _LOCK:
        _CACHE[key] = plan
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return plan


def clear_cache():
    """Forget every cached plan (tests use it to time the first call)."""
    with _LOCK:
        _CACHE.clear()


class Plan:
    """What is known about a nominal pattern set, independent of buckets and ``D_r``."""

    def __init__(self, p):
        m, h, w = p.shape
        self.m, self.shape, self.size = m, (h, w), h * w
        flat = p.reshape(m, -1)
        # per mask, in float64, a block of rows at a time (not a float64 copy of the set)
        self.rowsum = np.empty(m)  # total transmission of each nominal mask
        self.lo, self.hi = np.empty(m), np.empty(m)
        for start in range(0, m, _ROWS):
            block = flat[start:start + _ROWS].astype(np.float64)
            self.rowsum[start:start + _ROWS] = block.sum(1)
            self.lo[start:start + _ROWS], self.hi[start:start + _ROWS] = block.min(1), block.max(1)
        self.differential = bool((self.lo < 0).any())
        if not (self.lo.any() or self.hi.any()):
            raise ValueError("patterns are zero everywhere: no mask transmits anything.")
        self.hadamard = None
        if h == w:
            from torchscope.ghost._transform import hadamard_rows

            rows = hadamard_rows(to_tensor(np.ascontiguousarray(flat), device="cpu"), h,
                                 block=_ROWS)
            if rows is not None:
                self.hadamard = tuple(to_numpy(t) for t in rows)  # k, a, c
        # the dense matrix is kept (as a private copy) only for non-Hadamard sets
        self._dense = None if self.hadamard is not None else p.reshape(m, -1).copy()
        self._tensors = {}
        self._by_depth = collections.OrderedDict()  # D_r -> its entries, latest last

    # ------------------------------------------------------------------ effective masks
    def affine(self, depth):
        """``(alpha, beta)`` with effective masks ``alpha + beta * p``."""
        if depth == 1:
            return 0.0, 1.0
        return (0.0, depth) if self.differential else (1.0 - depth, depth)

    def cached(self, name, device, dtype, make, depth=None):
        """``make()``, made once per name, device and dtype, and per ``depth`` when given (of
        which the latest _DEPTHS_KEPT are kept)."""
        store = self._tensors
        if depth is not None:
            with _LOCK:
                store = self._by_depth.setdefault(depth, {})
                self._by_depth.move_to_end(depth)
                while len(self._by_depth) > _DEPTHS_KEPT:
                    self._by_depth.popitem(last=False)
        key = (name, str(device), dtype)
        if key not in store:  # (None is a value too: "no fast frame for these masks")
            store[key] = make()
        return store[key]

    def dense(self, device, dtype):
        """Nominal patterns as an (M, N) tensor."""
        def make():
            if self._dense is not None:
                return to_tensor(self._dense, device=device, dtype=dtype)
            k, a, c = self.hadamard_tensors(device, dtype)
            n = self.shape[0]
            h1 = self.walsh(device, dtype)
            rows = (h1[k // n][:, :, None] * h1[k % n][:, None, :]).reshape(self.m, -1)
            return a[:, None] + c[:, None] * rows
        return self.cached("dense", device, dtype, make)

    def walsh(self, device, dtype):
        """The ``n x n`` Sylvester matrix as a tensor."""
        from torchscope.ghost._patterns import sylvester

        return self.cached("walsh", device, dtype, lambda: to_tensor(
            sylvester(self.shape[0]), device=device, dtype=dtype))

    def hadamard_tensors(self, device, dtype):
        def make():
            k, a, c = self.hadamard
            return (to_tensor(k, device=device), to_tensor(a, device=device, dtype=dtype),
                    to_tensor(c, device=device, dtype=dtype))
        return self.cached("kac", device, dtype, make)

    def effective_hadamard(self, depth, device, dtype):
        """``(k, a', c')`` of the effective masks (constant rows: ``a' = 0``), cached."""
        alpha, beta = self.affine(depth)
        k, a, c = self.hadamard_tensors(device, dtype)
        if alpha == 0 and beta == 1:
            return k, a, c

        def make():
            const = k == 0
            a2 = (alpha + beta * a).masked_fill(const, 0.0)
            c2 = (beta * c).masked_fill(const, 0.0) + const.to(dtype) * (alpha + beta * c)
            return k, a2, c2
        return self.cached("effective", device, dtype, make, depth=depth)

    def h2(self, coef, device, dtype):
        """Unnormalised 2D Walsh-Hadamard transform ``H C H`` of (B, n, n) images."""
        h1 = self.walsh(device, dtype)
        return h1 @ coef @ h1

    # --------------------------------------------------------------------- linear maps
    def weighted_sum(self, wgt, depth):
        """``sum_r wgt[:, r] * t_r`` over the effective masks ``t_r``: (B, M) -> (B, h, w)."""
        import torch

        dev, dtype = wgt.device, wgt.dtype
        batch = wgt.shape[0]
        if self.hadamard is not None:
            k, a, c = self.effective_hadamard(depth, dev, dtype)
            coef = torch.zeros(batch, self.size, dtype=dtype, device=dev)
            coef.index_add_(1, k, wgt * c)
            n = self.shape[0]
            img = self.h2(coef.view(batch, n, n), dev, dtype)
            return img + (wgt @ a).view(batch, 1, 1)
        alpha, beta = self.affine(depth)
        img = (wgt @ self.dense(dev, dtype)) * beta
        if alpha:
            img = img + alpha * wgt.sum(1, keepdim=True)
        return img.view(batch, *self.shape)

    def total_transmission(self, depth, device, dtype):
        """``R_r``, the total transmission of each effective mask, as an (M,) tensor."""
        alpha, beta = self.affine(depth)
        return to_tensor(alpha * self.size + beta * self.rowsum, device=device, dtype=dtype)


class HadamardFrame:
    """``W x = c`` with ``W`` the measured rows ``h_k / sqrt(N)``: projections as ``H C H``."""

    @staticmethod
    def constants(plan, k, c, uniform):
        """What the frame needs of the masks alone (cached per plan, depth, device, dtype):
        the rows and weights of the ``uniform`` masks (a bool per row: uniform and
        transmitting), the divisor of each coefficient, the measured set."""
        import torch

        n = plan.shape[0]
        dc = torch.nonzero(uniform)[:, 0]
        c_dc = c[dc]
        den = torch.zeros(plan.size, dtype=c.dtype, device=c.device).index_add_(0, k, c * c)
        measured = den > 0
        return {"dc": dc if len(dc) else None, "c_dc": c_dc, "dc_norm": (c_dc ** 2).sum(),
                "den": torch.where(measured, den, torch.ones_like(den)),
                "mask": measured.to(c.dtype).view(n, n)}

    def __init__(self, plan, b, k, a, c, const):
        import torch

        self.plan = plan
        dev, dtype = b.device, b.dtype
        n = plan.shape[0]
        self.n, self.size = n, plan.size
        if const["dc"] is None:
            total = torch.zeros(b.shape[0], dtype=dtype, device=dev)
        else:
            total = (b.index_select(1, const["dc"]) @ const["c_dc"]) / const["dc_norm"]
        resid = (b - a[None] * total[:, None]) * c[None]
        num = torch.zeros(b.shape[0], self.size, dtype=dtype, device=dev)
        num.index_add_(1, k, resid)
        # q_k = estimated h_k . x for measured k, 0 elsewhere
        self.mask = const["mask"]
        self.coef = (num / const["den"]).view(-1, n, n)
        self.walsh = plan.walsh(dev, dtype)

    def pinv(self):
        """``W^T c``: the minimum-norm least-squares image, (B, n, n)."""
        h = self.walsh
        return h @ self.coef @ h / self.size

    def project(self, z):
        """``W^T W z`` for (B, n, n) images."""
        h = self.walsh
        return h @ ((h @ z @ h) * self.mask) @ h / self.size


class DenseFrame:
    """``W = V_r^T`` of a thin SVD of the effective masks."""

    def __init__(self, w, c, shape):
        self.w, self.c, self.shape = w, c, shape

    def pinv(self):
        return (self.c @ self.w).view(-1, *self.shape)

    def project(self, z):
        flat = z.reshape(z.shape[0], -1)
        return ((flat @ self.w.T) @ self.w).view(z.shape)


def make_frame(plan, b, depth, basis, rcond):
    """The orthonormal frame of the measurement ``b`` (a (B, M) tensor) for ``pinv``/``tv``."""
    import torch

    dev, dtype = b.device, b.dtype
    if basis == "hadamard" and plan.hadamard is None:
        raise ValueError("basis='hadamard' but the patterns are not (affine images of) rows of "
                         "a Sylvester Hadamard matrix of this size.")
    if basis != "general" and plan.hadamard is not None:
        k, a, c = plan.effective_hadamard(depth, dev, dtype)

        def usable():  # whether the masks allow the fast frame, and its constants
            tol = 1e-6 * c.abs().amax()
            uniform = (k == 0) & (c.abs() > tol)  # an all-zero (all-opaque) mask is no help
            if bool(uniform.any()) or not bool((a.abs() > tol).any()):
                return HadamardFrame.constants(plan, k, c, uniform)
            return None  # masks with an offset but no open (uniform) mask: solved densely

        const = plan.cached("hadamard frame", dev, dtype, usable, depth=depth)
        if const is not None:
            return HadamardFrame(plan, b, k, a, c, const)
    rcond = check_real("rcond", rcond, 0, 1, high_open=True)  # a relative cut-off

    def svd():
        alpha, beta = plan.affine(depth)
        p = alpha + beta * plan.dense(dev, dtype)
        u, s, vh = torch.linalg.svd(p, full_matrices=False)
        keep = s > rcond * s[0]
        return u[:, keep] / s[keep], vh[keep]

    proj, w = plan.cached(("svd", rcond), dev, dtype, svd, depth=depth)
    return DenseFrame(w, b @ proj, plan.shape)


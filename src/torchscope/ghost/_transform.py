"""Torch side of the Hadamard machinery: fast Walsh-Hadamard transform and basis detection."""

import numpy as np

from torchscope.backend import to_tensor
from torchscope.ghost._patterns import sylvester


def fwht(x):
    """Unnormalised fast Walsh-Hadamard transform along the last axis, natural (Sylvester) order.

    ``fwht(x) == x @ H`` for the Sylvester matrix ``H`` of size ``x.shape[-1]`` (a power of
    two); ``fwht(fwht(x)) == N * x``. Batched over leading axes, ``log2(N)`` vectorised stages.
    """
    import torch

    shape = x.shape
    size = shape[-1]
    y = x.reshape(-1, size)
    h = 1
    while h < size:
        y = y.view(-1, size // (2 * h), 2, h)
        y = torch.stack((y[:, :, 0] + y[:, :, 1], y[:, :, 0] - y[:, :, 1]), dim=2)
        h *= 2
    return y.reshape(shape)


def hadamard_rows(p, n, *, verify=True, block=256):
    """Recognise mask rows of the form ``a + c * h_k`` with ``h_k`` a row of the Sylvester matrix.

    Parameters
    ----------
    p : torch.Tensor, shape (M, n * n)
        Flattened patterns, of any float dtype: they are checked in float64, ``block`` rows
        at a time (a whole 128 x 128 set in float64 with its temporaries took about ten times
        its own memory).
    n : int
        Side length (must be a power of two for a match).
    verify : bool
        Check every row exactly (up to rounding); ``False`` trusts a user's ``basis`` hint:
        rows are only checked to take two values, and the row index is read off the pattern.

    Returns
    -------
    (k, a, c) of tensors of shape (M,), or None when the patterns are not of that form.
    Constant rows are ``k = 0`` with ``a = 0``, ``c`` = their value.
    """
    import torch

    if n < 2 or n & (n - 1):
        return None
    m, size = p.shape
    scale = max(float(p.amax()), -float(p.amin())) or 1.0
    tol = 1e-5 * scale
    bits = int(np.log2(size))
    powers = torch.tensor([1 << b for b in range(bits)], device=p.device)  # columns and bits
    h1 = to_tensor(sylvester(n), device=p.device, dtype=torch.float64) if verify else None
    parts = []
    for start in range(0, m, block):
        q = p[start:start + block].to(torch.float64)
        lo, hi = q.amin(1), q.amax(1)
        mid = 0.5 * (lo + hi)
        const = (hi - lo) <= tol
        h = torch.where(q >= mid[:, None], 1.0, -1.0).to(q.dtype)
        h[const] = 1.0
        # two levels per row: cheap, checked even when the basis is trusted
        dev = torch.minimum((q - lo[:, None]).abs(), (q - hi[:, None]).abs())
        if float(dev.amax()) > tol:
            return None
        del dev
        s0 = h[:, 0].clone()
        h = h * s0[:, None]
        k = ((h[:, powers] < 0).long() * powers).sum(1)
        if verify:
            rows = (h1[k // n][:, :, None] * h1[k % n][:, None, :]).reshape(len(q), size)
            if not torch.equal(rows, h):
                return None
        a = torch.where(const, torch.zeros_like(mid), mid)
        c = torch.where(const, lo, 0.5 * (hi - lo) * s0)
        parts.append((k, a, c))
    k, a, c = (torch.cat(t) for t in zip(*parts))
    return k, a, c

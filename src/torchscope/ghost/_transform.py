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


def hadamard_rows(p, n, *, verify=True):
    """Recognise mask rows of the form ``a + c * h_k`` with ``h_k`` a row of the Sylvester matrix.

    Parameters
    ----------
    p : torch.Tensor, shape (M, n * n)
        Flattened patterns.
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
    lo, hi = p.amin(1), p.amax(1)
    scale = float(p.abs().amax()) or 1.0
    tol = 1e-5 * scale
    mid = 0.5 * (lo + hi)
    const = (hi - lo) <= tol
    h = torch.where(p >= mid[:, None], 1.0, -1.0).to(p.dtype)
    h[const] = 1.0
    # two levels per row: cheap, checked even when the basis is trusted
    dev = torch.minimum((p - lo[:, None]).abs(), (p - hi[:, None]).abs())
    if float(dev.amax()) > tol:
        return None
    s0 = h[:, 0].clone()
    h = h * s0[:, None]
    bits = int(np.log2(size))
    powers = torch.tensor([1 << b for b in range(bits)], device=p.device)  # columns and bits
    k = ((h[:, powers] < 0).long() * powers).sum(1)
    if verify:
        h1 = to_tensor(sylvester(n), device=p.device, dtype=p.dtype)
        rows = (h1[k // n][:, :, None] * h1[k % n][:, None, :]).reshape(m, size)
        if not torch.equal(rows, h):
            return None
    a = torch.where(const, torch.zeros_like(mid), mid)
    c = torch.where(const, lo, 0.5 * (hi - lo) * s0)
    return k, a, c

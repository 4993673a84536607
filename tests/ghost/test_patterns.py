"""Hadamard and speckle patterns against analytic properties and scipy's labelling."""

import numpy as np
import pytest
import scipy.ndimage as ndi
from scipy.linalg import hadamard

from torchscope.ghost import ORDERS, hadamard_patterns, speckle_patterns
from torchscope.ghost._patterns import sign_changes


@pytest.mark.parametrize("n", [4, 8, 32])
def test_differential_rows_are_orthogonal(n):
    h = hadamard_patterns(n, kind="differential").reshape(n * n, -1).astype(np.float64)
    np.testing.assert_array_equal(h @ h.T, n * n * np.eye(n * n))


def test_natural_order_is_scipy_sylvester():
    h = hadamard_patterns(8, order="natural", kind="differential").reshape(64, 64)
    np.testing.assert_array_equal(h, hadamard(64))


@pytest.mark.parametrize("n", [8, 64])
def test_every_order_is_a_permutation_of_the_same_set(n):
    ref = hadamard_patterns(n, order="natural", kind="differential").reshape(n * n, -1)
    ref_keys = {r.tobytes() for r in (ref > 0)}
    assert len(ref_keys) == n * n
    for order in ORDERS:
        p = hadamard_patterns(n, order=order, kind="differential").reshape(n * n, -1)
        assert p.shape == (n * n, n * n) and p.dtype == np.float32
        assert {r.tobytes() for r in (p > 0)} == ref_keys, order
        assert (p[0] == 1).all(), f"{order}: the first pattern is not the open mask"


def _sequencies(p):
    # sequency of the row factor and of the column factor of a 2D +1/-1 pattern
    return sign_changes(p[:, :, 0].astype(np.int8)), sign_changes(p[:, 0, :].astype(np.int8))


def test_zigzag_is_low_frequency_first():
    p = hadamard_patterns(16, order="zigzag", kind="differential")
    su, sv = _sequencies(p)
    d = su + sv
    assert (np.diff(d) >= 0).all()  # anti-diagonals in increasing order
    assert list(zip(su[:6], sv[:6])) == [(0, 0), (0, 1), (1, 0), (2, 0), (1, 1), (0, 2)]
    m = 48  # a ratio subset takes exactly the lowest diagonals
    sub = hadamard_patterns(16, ratio=m / 256, order="zigzag", kind="differential")
    np.testing.assert_array_equal(sub, p[:m])


def test_sequency_order():
    p = hadamard_patterns(8, order="sequency", kind="differential")
    su, sv = _sequencies(p)
    np.testing.assert_array_equal(su, np.repeat(np.arange(8), 8))
    np.testing.assert_array_equal(sv, np.tile(np.arange(8), 8))


def test_cake_cutting_counts_connected_pieces():
    p = hadamard_patterns(8, order="cake_cutting", kind="differential")
    pieces = [ndi.label(q > 0)[1] + ndi.label(q < 0)[1] for q in p]  # 4-connectivity
    assert (np.diff(pieces) >= 0).all()
    assert pieces[0] == 1 and pieces[-1] == 64


def test_binary_and_differential_relation():
    b = hadamard_patterns(32, ratio=0.25, kind="binary")
    d = hadamard_patterns(32, ratio=0.25, kind="differential")
    assert set(np.unique(b)) == {0.0, 1.0}
    np.testing.assert_array_equal(d, 2 * b - 1)
    # the two complementary masks of a differential pair subtract to the +1/-1 row
    np.testing.assert_array_equal(b - (1 - b), d)


@pytest.mark.parametrize("n,ratio,m", [(64, 0.1875, 768), (32, 1.0, 1024), (4, 0.01, 1)])
def test_ratio_gives_pattern_count(n, ratio, m):
    assert hadamard_patterns(n, ratio=ratio).shape == (m, n, n)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"n": 6}, "power of two"),
        ({"n": 2}, "power of two"),
        ({"n": 8, "ratio": 0.0}, "ratio"),
        ({"n": 8, "ratio": 1.5}, "ratio"),
        ({"n": 8, "order": "hilbert"}, "order"),
        ({"n": 8, "kind": "ternary"}, "kind"),
    ],
)
def test_bad_arguments(kwargs, match):
    n = kwargs.pop("n")
    with pytest.raises(ValueError, match=match):
        hadamard_patterns(n, **kwargs)
    with pytest.raises(TypeError, match="n must be"):
        hadamard_patterns(8.0)


def test_speckle_patterns():
    p = speckle_patterns(32, 20, grain=4.0, rng=1)
    assert p.shape == (20, 32, 32) and p.dtype == np.float32
    assert set(np.unique(p)) == {0.0, 1.0}
    np.testing.assert_allclose(p.mean(axis=(1, 2)), 0.5, atol=1 / 1024)
    np.testing.assert_array_equal(p, speckle_patterns(32, 20, grain=4.0, rng=1))
    assert not np.array_equal(p, speckle_patterns(32, 20, grain=4.0, rng=2))
    # coarser grain: fewer open/closed transitions between neighbours
    fine = speckle_patterns(32, 20, grain=1.0, rng=1)
    edges = lambda q: np.abs(np.diff(q, axis=-1)).mean()
    assert edges(p) < 0.5 * edges(fine)
    with pytest.raises(ValueError, match="grain"):
        speckle_patterns(8, 2, grain=-1)


@pytest.mark.parametrize("kind", ["binary", "differential"])
def test_hadamard_rows_are_recognised_block_by_block(kind):
    # the rows are examined a block at a time (memory); the blocks must not change the answer,
    # and a single foreign row in the last block must still be caught
    import torch

    from torchscope.ghost._transform import hadamard_rows

    p = hadamard_patterns(16, ratio=0.5, order="zigzag", kind=kind).reshape(128, -1) * 0.8
    p[5] = p[5].max()  # a uniform (constant) mask among them
    whole = hadamard_rows(torch.from_numpy(p), 16, block=1000)
    # independent: row k of the Sylvester matrix, read off each mask's sign pattern
    h = hadamard(256)
    signs = np.where(p >= 0.5 * (p.min(1, keepdims=True) + p.max(1, keepdims=True)), 1, -1)
    match = np.abs(signs @ h.T) == 256
    found = [int(np.flatnonzero(r)[0]) for r in match]
    assert whole[0].tolist() == found
    for block in (1, 7, 64):
        parts = hadamard_rows(torch.from_numpy(p), 16, block=block)
        for a, b in zip(parts, whole):
            assert torch.equal(a, b)
    q = p.copy()
    q[-1, :3] = q[-1, 3:6]  # no longer a Hadamard row (three pixels changed)
    q[-1, 0] = 0.8 - q[-1, 0] if kind == "binary" else -q[-1, 0]
    assert hadamard_rows(torch.from_numpy(q), 16, block=7) is None

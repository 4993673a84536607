"""kernel_similarity (Hu and Yang) and error_ratio (Levin et al.) against their definitions."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, map_coordinates
from scipy.ndimage import shift as nd_shift

from torchscope.deblur import error_ratio, kernel_similarity, motion_kernel


def _brute_similarity(a, b):
    """max over all integer shifts of sum a(t) b(t + s) / (|a| |b|), by explicit loops."""
    ha, wa = a.shape
    hb, wb = b.shape
    big = np.zeros((ha + 2 * hb, wa + 2 * wb))
    big[hb:hb + ha, wb:wb + wa] = a
    best = -np.inf
    for dy in range(ha + hb + 1):
        for dx in range(wa + wb + 1):
            best = max(best, (big[dy:dy + hb, dx:dx + wb] * b).sum())
    return best / np.linalg.norm(a) / np.linalg.norm(b)


def test_similarity_matches_the_definition(rng):
    a, b = rng.random((7, 5)), rng.random((4, 6))
    assert kernel_similarity(a, b) == pytest.approx(_brute_similarity(a, b), rel=1e-10)


def test_similarity_invariances():
    k = motion_kernel(21, rng=1)
    other = motion_kernel(21, rng=2)
    assert kernel_similarity(k, k) == pytest.approx(1.0, abs=1e-12)
    padded = np.pad(k, ((3, 9), (5, 1)))                      # size padding
    shifted = np.roll(np.pad(k, 6), (4, -3), axis=(0, 1))     # shift (inside the padding)
    assert kernel_similarity(k, padded) == pytest.approx(1.0, abs=1e-12)
    assert kernel_similarity(shifted, k) == pytest.approx(1.0, abs=1e-12)
    s = kernel_similarity(k, other)
    assert kernel_similarity(7.5 * k, other) == pytest.approx(s, rel=1e-12)   # scale
    assert kernel_similarity(other, k) == pytest.approx(s, rel=1e-12)         # symmetry
    assert kernel_similarity(shifted, np.pad(other, 2)) == pytest.approx(s, rel=1e-12)
    assert 0 < s < 1


def test_single_pixel_scores_max_over_norm():
    k = motion_kernel(15, rng=4)
    assert kernel_similarity([[1.0]], k) == pytest.approx(k.max() / np.linalg.norm(k))


def test_similarity_of_stacks():
    ks = np.stack([motion_kernel(11, rng=i) for i in range(3)])
    ref = motion_kernel(11, rng=0)
    got = kernel_similarity(ks, ref)
    assert got.shape == (3,) and got[0] == pytest.approx(1.0)
    np.testing.assert_allclose(got, [kernel_similarity(k, ref) for k in ks])
    with pytest.raises(ValueError, match="same length"):
        kernel_similarity(ks, ks[:2])
    with pytest.raises(ValueError, match="all-zero"):
        kernel_similarity(np.zeros((3, 3)), ref)


def _brute_ssd(a, ref, cut, step):
    r = ref[cut:-cut, cut:-cut]
    yy, xx = np.mgrid[cut:ref.shape[0] - cut, cut:ref.shape[1] - cut].astype(float)
    best = np.inf
    for dy in np.arange(-cut, cut + 1e-9, step):
        for dx in np.arange(-cut, cut + 1e-9, step):
            moved = map_coordinates(a, [yy + dy, xx + dx], order=1)
            best = min(best, ((moved - r) ** 2).sum())
    return best


def test_error_ratio_is_levins_ssd_up_to_shift(rng):
    sharp = gaussian_filter(rng.random((36, 40)), 2)
    a = gaussian_filter(rng.random((36, 40)), 2)
    b = sharp + 0.05 * gaussian_filter(rng.random((36, 40)), 1)
    expected = _brute_ssd(a, sharp, 3, 0.25) / _brute_ssd(b, sharp, 3, 0.25)
    assert error_ratio(a, b, sharp, max_shift=3) == pytest.approx(expected, rel=1e-9)


def test_error_ratio_is_one_for_the_true_kernel_and_ignores_shifts(rng):
    sharp = gaussian_filter(rng.random((255, 255)), 3)
    restored = sharp + 0.01 * rng.standard_normal(sharp.shape)
    assert error_ratio(restored, restored, sharp) == 1.0
    # a restoration that is only shifted (here by whole pixels) has the same error
    moved = np.roll(restored, (2, -3), axis=(0, 1))
    assert error_ratio(moved, restored, sharp) == pytest.approx(1.0, rel=1e-9)
    # a worse restoration has a larger ratio
    assert error_ratio(sharp + 0.03 * rng.standard_normal(sharp.shape), restored, sharp) > 5


def test_error_ratio_finds_quarter_pixel_shifts(rng):
    base = gaussian_filter(rng.random((120, 120)), 4)
    sharp = base[10:-10, 10:-10]
    moved = nd_shift(base, (1.25, -0.75), order=1)[10:-10, 10:-10]
    exact = sharp + 1e-3
    # bilinear resampling of a smooth image: the best quarter-pixel shift undoes it closely
    assert error_ratio(moved, exact, sharp, max_shift=4) < 1.0


def test_error_ratio_does_not_depend_on_a_common_offset_and_is_inf_for_an_exact_reference(rng):
    sharp = gaussian_filter(rng.random((200, 200)), 2)
    a = sharp + 0.001 * rng.standard_normal(sharp.shape)
    b = sharp + 0.002 * rng.standard_normal(sharp.shape)
    base = error_ratio(a, b, sharp)
    assert 0.2 < base < 0.3  # about (0.001 / 0.002) ** 2
    for offset in (1e4, 1e5):  # the SSD's three terms once cancelled to rounding here (0.0)
        assert error_ratio(a + offset, b + offset, sharp + offset) == pytest.approx(base, rel=1e-6)
    # a restoration with the true kernel that is exact leaves no error: the ratio is inf
    assert error_ratio(a, sharp.copy(), sharp) == np.inf


def test_error_ratio_errors(rng):
    a = rng.random((40, 40))
    with pytest.raises(ValueError, match="one shape"):
        error_ratio(a, a, rng.random((40, 41)))
    with pytest.raises(ValueError, match="too small"):
        error_ratio(a, a, a, max_shift=20)
    with pytest.raises(ValueError, match="step"):
        error_ratio(a, a, a, max_shift=3, step=0.3)
    with pytest.raises(ValueError, match="restored"):
        error_ratio(a[None], a, a)

"""cnr_curve (the paper's Fig. 2(j)), modulation_depth='estimate', and the plan cache."""

import itertools

import numpy as np
import pytest

from torchscope.ghost import (
    CNRCurve,
    cnr_curve,
    estimate_modulation_depth,
    hadamard_patterns,
    reconstruct,
    simulate_buckets,
    speckle_patterns,
)


def _letters(n=32):
    """A binary object: a ring and a bar (not a training image of anything)."""
    yy, xx = np.mgrid[:n, :n] / n
    r2 = (yy - 0.4) ** 2 + (xx - 0.35) ** 2
    obj = ((r2 < 0.06) & (r2 > 0.02)).astype(float)
    obj[int(0.2 * n):int(0.85 * n), int(0.7 * n):int(0.8 * n)] = 1.0
    return obj


def test_cnr_curve_shapes_growth_and_seed():
    obj = _letters(32)
    p = hadamard_patterns(32, ratio=0.25)
    counts = [32, 64, 128, 256]
    opts = {"modulation_depth": 0.8, "mask_error": 0.03, "photons": 1000, "rng": 3}
    curve = cnr_curve(obj, p, counts=counts, **opts)
    assert isinstance(curve, CNRCurve)
    assert curve.methods == ("gi", "dgi", "tv")
    assert curve.cnr.shape == (3, 4)
    np.testing.assert_array_equal(curve.counts, counts)
    assert np.isfinite(curve.cnr).all()
    tv = curve.cnr[2]
    assert (np.diff(tv) > 0).all(), tv  # more exposures, better contrast
    assert tv[-1] > 2 * tv[0]
    assert tv[-1] > curve.cnr[0, -1]  # tv beats gi at full count
    again = cnr_curve(obj, p, counts=counts, **opts)
    np.testing.assert_array_equal(again.cnr, curve.cnr)
    other = cnr_curve(obj, p, counts=counts, **{**opts, "rng": 4})
    assert not np.array_equal(other.cnr, curve.cnr)


def test_cnr_curve_defaults_and_errors():
    obj = _letters(16)
    p = hadamard_patterns(16, ratio=0.5)
    # each method gets the options it takes (gi no rcond)
    curve = cnr_curve(obj, p, methods=["pinv", "gi"], reconstruct_options={"rcond": 1e-6})
    assert curve.methods == ("pinv", "gi") and curve.cnr.shape == (2, curve.counts.size)
    with pytest.raises(TypeError, match=r"\['iteration', 'lamda'\] are options of none"):
        cnr_curve(obj, p, methods=["tv"], reconstruct_options={"iteration": 1, "lamda": 5.0})
    assert curve.counts[-1] == 128 and curve.counts.size == 8
    with pytest.raises(ValueError, match="counts"):
        cnr_curve(obj, p, counts=[1, 500])
    with pytest.raises(ValueError, match="methods"):
        cnr_curve(obj, p, methods=("fbp",))
    with pytest.raises(ValueError, match="obj"):
        cnr_curve(obj[:8], p)


@pytest.mark.parametrize("depth", [0.6, 0.8, 0.95])
def test_modulation_depth_estimate(depth):
    # tolerance 0.02 absolute: the estimator's bias is (x_K[0,0] - mean x) / ((M - 1) mean x)
    # (below 0.3 % here) plus Poisson and mask-error noise
    obj = _letters(64) * 0.8 + 0.1
    p = hadamard_patterns(64, ratio=0.1875)
    b = simulate_buckets(obj, p, modulation_depth=depth, mask_error=0.03, photons=1000, rng=7)
    est = estimate_modulation_depth(b, p)
    assert abs(est - depth) < 0.02, est
    # reconstruct(modulation_depth="estimate") uses it: same image as with that value
    np.testing.assert_allclose(reconstruct(b, p, method="pinv", modulation_depth="estimate"),
                               reconstruct(b, p, method="pinv", modulation_depth=est),
                               rtol=1e-5, atol=1e-3)
    # and a better image than ignoring D_r
    truth = reconstruct(b, p, method="pinv", modulation_depth=depth)
    with_est = reconstruct(b, p, method="pinv", modulation_depth="estimate")
    ignored = reconstruct(b, p, method="pinv")
    assert np.abs(with_est - truth).mean() < 0.2 * np.abs(ignored - truth).mean()


def test_modulation_depth_estimate_needs_open_binary_masks():
    obj = _letters(16)
    diff = hadamard_patterns(16, ratio=0.5, kind="differential")
    with pytest.raises(ValueError, match="binary"):
        reconstruct(simulate_buckets(obj, diff), diff, modulation_depth="estimate")
    sp = speckle_patterns(16, 50, rng=0)  # no open mask
    with pytest.raises(ValueError, match="all-open"):
        estimate_modulation_depth(simulate_buckets(obj, sp), sp)
    with pytest.raises(ValueError, match="modulation_depth"):
        reconstruct(np.ones(50), sp, modulation_depth="guess")


def test_plan_cache_sees_in_place_edits():
    obj = _letters(16)
    p = hadamard_patterns(16, ratio=0.5)
    b = simulate_buckets(obj, p)
    fast = reconstruct(b, p, method="pinv")  # cached as Hadamard
    q = p.copy()
    q[5, 3, 7] = 1 - q[5, 3, 7]  # one flipped pixel: no longer Hadamard rows
    slow = reconstruct(b, q, method="pinv")
    expected = np.linalg.lstsq(q.reshape(len(q), -1).astype(np.float64), b, rcond=None)[0]
    np.testing.assert_allclose(slow.ravel(), expected, atol=1e-4)
    assert not np.allclose(slow, fast, atol=1e-4)
    with pytest.raises(ValueError, match="basis='hadamard'"):
        reconstruct(b, q, method="pinv", basis="hadamard")


def test_plan_cache_sees_an_open_pixel_moved_in_place():
    """The hardest single edit for a weighted-sum fingerprint: an open pixel of one mask moved,
    in place, to the pixel whose weight is nearest its own (random real weights let such moves
    through at 64 x 64: the stale Hadamard plan gave an image 0.33 off)."""
    from torchscope.ghost import _plan

    obj = _letters(64)
    p = hadamard_patterns(64, ratio=0.05)
    reconstruct(simulate_buckets(obj, p), p, method="pinv")  # cached as Hadamard
    v = next(w for (size, _), w in _plan._FP_VECTORS.items() if size == 64 * 64).numpy()
    row = p[5].reshape(-1)  # a view: edits go into p itself
    order = np.argsort(v)
    a, b = next((a, b) for a, b in itertools.pairwise(order) if row[a] != row[b])
    i, j = (a, b) if row[a] == 1 else (b, a)
    row[i], row[j] = 0.0, 1.0
    buckets = simulate_buckets(obj, p)
    moved = reconstruct(buckets, p, method="pinv")
    expected = np.linalg.lstsq(p.reshape(len(p), -1).astype(np.float64), buckets, rcond=None)[0]
    np.testing.assert_allclose(moved.ravel(), expected, atol=1e-4)

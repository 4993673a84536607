"""Reconstructions against known objects and analytic Hadamard results."""

import numpy as np
import pytest

from torchscope.ghost import (
    Snapshot,
    cnr,
    estimate_modulation_depth,
    hadamard_patterns,
    iterate,
    reconstruct,
    simulate_buckets,
    speckle_patterns,
)


def _shapes(n=32):
    """A piecewise-constant test object (not a training image of anything)."""
    yy, xx = np.mgrid[:n, :n] / n
    obj = np.zeros((n, n))
    obj[(yy - 0.3) ** 2 + (xx - 0.35) ** 2 < 0.04] = 1.0
    obj[int(0.6 * n):int(0.85 * n), int(0.5 * n):int(0.9 * n)] = 0.6
    return obj


def _psnr(x, ref):
    return 10 * np.log10(np.ptp(ref) ** 2 / np.mean((x - ref) ** 2))


def _fit(x, ref):  # best affine match (GI/DGI are defined up to scale and offset)
    return np.polyval(np.polyfit(x.ravel(), ref.ravel(), 1), x)


@pytest.mark.parametrize("order", ["natural", "zigzag", "cake_cutting"])
@pytest.mark.parametrize("kind", ["binary", "differential"])
def test_pinv_is_exact_at_full_sampling(order, kind, device):
    obj = _shapes(32)
    p = hadamard_patterns(32, order=order, kind=kind)
    x = reconstruct(simulate_buckets(obj, p), p, method="pinv", device=device)
    assert x.dtype == np.float32 and x.shape == (32, 32)
    np.testing.assert_allclose(x, obj, atol=1e-5)


def test_pinv_general_patterns_match_numpy_lstsq(rng):
    obj = _shapes(16)
    p = speckle_patterns(16, 100, grain=2, rng=1)
    b = simulate_buckets(obj, p)
    expected = np.linalg.lstsq(p.reshape(100, -1).astype(np.float64), b, rcond=None)[0]
    x = reconstruct(b, p, method="pinv")
    np.testing.assert_allclose(x.ravel(), expected, atol=1e-4)
    # forcing the general path on Hadamard data gives the same image as the fast path
    h = hadamard_patterns(16, ratio=0.3)
    bh = simulate_buckets(obj, h)
    np.testing.assert_allclose(reconstruct(bh, h, method="pinv", basis="general"),
                               reconstruct(bh, h, method="pinv"), atol=1e-4)


def test_pinv_with_known_modulation_depth():
    obj = _shapes(32)
    p = hadamard_patterns(32, ratio=1.0)
    b = simulate_buckets(obj, p, modulation_depth=0.75)
    x = reconstruct(b, p, method="pinv", modulation_depth=0.75)
    np.testing.assert_allclose(x, obj, atol=1e-5)


def test_gi_full_hadamard_analytic():
    # for the full binary Hadamard set, <(B - <B>)(P - <P>)> = (x - x[0] e_0) / 4 exactly
    obj = _shapes(16) + 0.1
    p = hadamard_patterns(16)
    gi = reconstruct(simulate_buckets(obj, p), p, method="gi")
    expected = obj / 4
    expected[0, 0] = 0
    np.testing.assert_allclose(gi, expected, atol=1e-5)


@pytest.mark.parametrize("method", ["gi", "dgi"])
def test_gi_dgi_proportional_to_object(method, device):
    obj = _shapes(32)
    p = hadamard_patterns(32)
    x = reconstruct(simulate_buckets(obj, p), p, method=method, device=device)
    r = np.corrcoef(x.ravel()[1:], obj.ravel()[1:])[0, 1]
    assert r > 0.999


@pytest.mark.parametrize("depth", [1.0, 0.8])
def test_dgi_matches_ferri_formula_when_mask_transmission_varies(depth):
    """Every other pattern set here has the same open fraction in each mask, where DGI and GI
    coincide. Random 0/1 masks with an open fraction drawn per mask from U(0.3, 0.7): DGI is
    Ferri et al. (PRL 104, 253603, 2010) as docs/ghost.md writes it, <B P> - <B>/<R> <R P>,
    averages over the M masks and R the total transmission of each mask, with the effective
    masks 1 - D_r + D_r p of a known modulation depth (docstring of reconstruct)."""
    gen = np.random.default_rng(11)
    n, m = 16, 400
    obj = gen.uniform(0, 1, (n, n))
    p = (gen.random((m, n, n)) < gen.uniform(0.3, 0.7, (m, 1, 1))).astype(np.float32)
    b = simulate_buckets(obj, p, modulation_depth=depth)
    t = 1 - depth + depth * p.reshape(m, -1).astype(np.float64)  # effective masks
    r = t.sum(1)  # reference bucket: total transmission of each mask
    assert np.ptp(r) > 0.3 * n * n * depth  # the fraction really varies from mask to mask
    expected = (b @ t / m - b.mean() / r.mean() * (r @ t) / m).reshape(n, n)
    gi_expected = ((b - b.mean()) @ t / m).reshape(n, n)
    dgi = reconstruct(b, p, method="dgi", modulation_depth=depth)
    gi = reconstruct(b, p, method="gi", modulation_depth=depth)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(dgi, expected, atol=1e-5 * scale)
    np.testing.assert_allclose(gi, gi_expected, atol=1e-5 * np.abs(gi_expected).max())
    # on the same data GI is clearly something else: the fluctuating total transmission
    # swamps it, which is what DGI removes
    assert np.abs(gi - dgi).max() > 5 * scale
    corr = [np.corrcoef(x.ravel(), obj.ravel())[0, 1] for x in (dgi, gi)]
    assert corr[0] > 0.7 and corr[0] > corr[1] + 0.4, corr


def test_tv_beats_gi_and_dgi_at_18_75_percent():
    obj = _shapes(32)
    p = hadamard_patterns(32, ratio=0.1875)
    b = simulate_buckets(obj, p)
    tv = reconstruct(b, p, method="tv")
    for method in ("gi", "dgi", "pinv"):
        other = _fit(reconstruct(b, p, method=method), obj)
        assert _psnr(tv, obj) > _psnr(other, obj) + 5, method
    mask = obj > 0.8
    assert cnr(tv, mask, background_mask=obj == 0) > 2 * cnr(
        reconstruct(b, p, method="gi"), mask, background_mask=obj == 0)


def test_tv_on_general_patterns_and_noise():
    obj = _shapes(16)
    p = speckle_patterns(16, 96, grain=2, rng=2)
    b = simulate_buckets(obj, p, photons=1000, rng=5)
    tv = reconstruct(b, p, method="tv", lam=0.05) / 1000
    gi = _fit(reconstruct(b, p, method="gi"), obj)
    assert _psnr(tv, obj) > _psnr(gi, obj)


def test_batches_give_stacks():
    obj = _shapes(16)
    p = hadamard_patterns(16, ratio=0.5)
    b = simulate_buckets(np.stack([obj, 2 * obj, obj.T]), p)
    for method in ("gi", "dgi", "pinv", "tv"):
        stack = reconstruct(b.reshape(3, 1, -1), p, method=method)
        assert stack.shape == (3, 1, 16, 16)
        one = reconstruct(b[2], p, method=method)
        np.testing.assert_allclose(stack[2, 0], one, rtol=1e-4, atol=1e-4)


def test_iterate_yields_snapshots_and_matches_reconstruct():
    obj = _shapes(16)
    p = hadamard_patterns(16, ratio=0.25)
    b = simulate_buckets(obj, p)
    snaps = list(iterate(b, p, every=10, iterations=45))
    assert [s.iteration for s in snaps] == [10, 20, 30, 40, 45]
    assert all(isinstance(s, Snapshot) and s.image.shape == (16, 16) for s in snaps)
    np.testing.assert_allclose(snaps[-1].image, reconstruct(b, p, iterations=45), atol=1e-6)
    assert snaps[-1].change < snaps[0].change


def test_inputs_not_modified():
    p = hadamard_patterns(16, ratio=0.5)
    b = simulate_buckets(_shapes(16), p)
    p0, b0 = p.copy(), b.copy()
    for method in ("gi", "dgi", "pinv", "tv"):
        reconstruct(b, p, method=method, modulation_depth=0.8)
    np.testing.assert_array_equal(p, p0)
    np.testing.assert_array_equal(b, b0)


def test_errors():
    p = hadamard_patterns(16, ratio=0.25)
    b = np.ones(64)
    with pytest.raises(ValueError, match="method='fbp'"):
        reconstruct(b, p, method="fbp")
    with pytest.raises(ValueError, match="no shipped model for 16 x 16"):
        reconstruct(b, p, method="mwcnn")
    with pytest.raises(ValueError, match="one value per pattern"):
        reconstruct(np.ones(63), p)
    with pytest.raises(TypeError, match="unknown option"):
        reconstruct(b, p, method="gi", lam=0.1)
    with pytest.raises(ValueError, match="lam"):
        reconstruct(b, p, lam=-1)
    with pytest.raises(ValueError, match="basis='hadamard'"):
        grey = np.random.default_rng(0).uniform(size=(64, 16, 16))
        reconstruct(b, grey, method="pinv", basis="hadamard")
    with pytest.raises(ValueError, match="not iterative"):
        next(iterate(b, p, method="gi"))
    for _ in range(2):  # checked by the plan, which is never cached for such a set
        with pytest.raises(ValueError, match="zero everywhere"):
            reconstruct(b, np.zeros_like(p))


@pytest.mark.parametrize("dark", ["complementary", "dark_frame"])
def test_an_all_opaque_mask_gives_the_least_squares_image_not_nan(dark):
    """An all-zero mask is a uniform Hadamard row with weight 0: it says nothing about the
    object's total (a negative-polarity etch, 1 - H, has it first; so does a dark frame put in
    place of the open mask). The fast frame divided by its zero weight: every pixel NaN."""
    obj = _shapes(32)
    p = hadamard_patterns(32, ratio=0.25)
    if dark == "complementary":
        p = 1 - p
    else:
        p = p.copy()
        p[0] = 0
    b = simulate_buckets(obj, p)
    expected = np.linalg.lstsq(p.reshape(len(p), -1).astype(np.float64), b, rcond=None)[0]
    for method in ("pinv", "tv", "mwcnn"):
        x = reconstruct(b, p, method=method)
        assert np.isfinite(x).all(), method
    np.testing.assert_allclose(reconstruct(b, p, method="pinv").ravel(), expected, atol=1e-5)


def test_edge_cases_of_options_and_stacks():
    p = hadamard_patterns(64, ratio=0.1875)
    b = simulate_buckets(_shapes(64), p)
    # lam=0 is TV without TV: the least-squares image it starts from (0 / 0 gave NaN)
    np.testing.assert_allclose(reconstruct(b, p, method="tv", lam=0),
                               reconstruct(b, p, method="pinv"), atol=1e-6)
    # an empty stack gives an empty stack of images with every linear method and mwcnn
    for method in ("gi", "pinv", "mwcnn"):
        assert reconstruct(np.zeros((0, len(p))), p, method=method).shape == (0, 64, 64)
    with pytest.raises(TypeError, match="rcond must be a real number"):
        reconstruct(b, p, method="pinv", basis="general", rcond="1e-3")
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match="NaN or infinite"):
            estimate_modulation_depth(np.where(np.arange(len(b)) == 0, bad, b), p)


def test_a_plan_keeps_what_depends_on_d_r_for_the_latest_values_only():
    from torchscope.ghost import _plan

    obj = _shapes(16)
    for p in (hadamard_patterns(16, ratio=0.5), speckle_patterns(16, 100, grain=2, rng=1)):
        depths = np.linspace(0.5, 0.95, 10)
        first = [reconstruct(simulate_buckets(obj, p, modulation_depth=d), p, method="pinv",
                             modulation_depth=d) for d in depths]
        plan = _plan.get_plan(p)
        assert list(plan._by_depth) == [float(d) for d in depths[-_plan._DEPTHS_KEPT:]]
        for d, x in zip(depths, first):  # made anew or reused: the same image
            b = simulate_buckets(obj, p, modulation_depth=d)
            np.testing.assert_array_equal(reconstruct(b, p, method="pinv", modulation_depth=d), x)
            masks = (1 - d + d * p.reshape(len(p), -1)).astype(np.float64)  # the effective ones
            expected = np.linalg.lstsq(masks, b, rcond=None)[0]
            np.testing.assert_allclose(x.ravel(), expected, atol=1e-4)


def test_cnr_equation_1():
    img = np.array([[1.0, 3.0], [0.0, 2.0]])
    mask = np.array([[True, True], [False, False]])
    # <G1> = 2, <G0> = 1, sigma1^2 = 1, sigma0^2 = 1
    assert cnr(img, mask) == pytest.approx(1 / np.sqrt(2))
    np.testing.assert_allclose(cnr(np.stack([img, 2 * img]), mask), [1 / np.sqrt(2)] * 2)
    with pytest.raises(TypeError, match="bool"):
        cnr(img, mask.astype(int))
    with pytest.raises(ValueError, match="at least one pixel"):
        cnr(img, np.ones((2, 2), bool))


def test_an_abandoned_iteration_leaves_autograd_on():
    # a napari worker abandons the generator on Stop; the thread is reused for other work
    import torch

    p = hadamard_patterns(16, ratio=0.5)
    steps = iterate(np.ones(len(p)), p, every=1, iterations=50)
    next(steps)
    assert torch.is_grad_enabled()

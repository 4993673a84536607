"""The measurement model: exact noise-free values, modulation depth, Poisson statistics, seeds."""

import numpy as np
import pytest

from torchscope.ghost import hadamard_patterns, simulate_buckets, speckle_patterns


@pytest.fixture
def obj(rng):
    return rng.uniform(0, 1, (16, 16))


def test_noise_free_is_the_dot_product(obj):
    p = hadamard_patterns(16, ratio=0.5)
    b = simulate_buckets(obj, p)
    np.testing.assert_allclose(b, p.reshape(len(p), -1).astype(np.float64) @ obj.ravel(),
                               rtol=1e-12)


def test_modulation_depth(obj):
    p = speckle_patterns(16, 30, grain=2, rng=0)
    b = simulate_buckets(obj, p, modulation_depth=0.75)
    t = 0.25 + 0.75 * p  # opaque pixels still transmit 1 - D_r
    np.testing.assert_allclose(b, t.reshape(30, -1) @ obj.ravel(), rtol=1e-12)


def test_differential_is_difference_of_complementary_masks(obj):
    d = hadamard_patterns(16, ratio=0.25, kind="differential")
    b = simulate_buckets(obj, d, modulation_depth=0.8)
    np.testing.assert_allclose(b, 0.8 * d.reshape(len(d), -1).astype(float) @ obj.ravel(), rtol=1e-9,
                               atol=1e-9)


def test_stack_of_objects(obj):
    p = hadamard_patterns(16, ratio=0.25)
    stack = np.stack([obj, 2 * obj])
    b = simulate_buckets(stack, p)
    assert b.shape == (2, 64)
    np.testing.assert_allclose(b[1], 2 * b[0])


def test_poisson_mean_and_variance():
    p = np.ones((4000, 4, 4))  # open masks: mean photons * sum(obj)
    obj = np.full((4, 4), 0.5)
    b = simulate_buckets(obj, p, photons=10.0, rng=3)
    assert np.all(b == np.round(b))
    assert abs(b.mean() - 80) < 4 * np.sqrt(80 / 4000)
    assert abs(b.var() / 80 - 1) < 0.1


def test_read_noise_and_mask_error_statistics():
    p = np.ones((20000, 4, 4))
    obj = np.ones((4, 4))
    b = simulate_buckets(obj, p, read_noise=2.0, rng=4)
    assert abs(b.mean() - 16) < 0.1 and abs(b.std() - 2.0) < 0.05
    b = simulate_buckets(obj, p, mask_error=0.1, rng=4)  # 16 independent pixel errors
    assert abs(b.std() - 0.1 * 4) < 0.02


def test_blur_keeps_the_total_of_open_masks_and_smooths_edges(obj):
    p = hadamard_patterns(16, ratio=1.0)
    blurred = simulate_buckets(np.ones((16, 16)), p, blur=1.0)
    sharp = simulate_buckets(np.ones((16, 16)), p)
    assert blurred[0] == pytest.approx(256)
    np.testing.assert_allclose(blurred.sum(), sharp.sum(), rtol=0.05)


@pytest.mark.parametrize("sigma", [1.0, 1.5])
@pytest.mark.parametrize("depth", [1.0, 0.8])
def test_blur_is_the_gaussian_point_spread(sigma, depth):
    """``blur`` is the standard deviation of a Gaussian blur of the masks, in mask pixels: a
    mask with one open pixel at distance d from a one-pixel object lets through the 2-D
    Gaussian density exp(-d^2 / (2 sigma^2)) / (2 pi sigma^2) (the sampled kernel sums to
    the continuous one to ~1e-5 for sigma >= 1), and opaque metal 1 - D_r besides."""
    n, centre = 32, 16
    offsets = [(0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (-2, 1), (2, -3), (-3, -3), (0, 4)]
    p = np.zeros((len(offsets), n, n))
    for k, (dy, dx) in enumerate(offsets):
        p[k, centre + dy, centre + dx] = 1
    obj = np.zeros((n, n))
    obj[centre, centre] = 1
    b = simulate_buckets(obj, p, blur=sigma, modulation_depth=depth)
    d2 = np.array([dy ** 2 + dx ** 2 for dy, dx in offsets], float)
    psf = np.exp(-d2 / (2 * sigma ** 2)) / (2 * np.pi * sigma ** 2)
    np.testing.assert_allclose(b, 1 - depth + depth * psf, rtol=1e-4, atol=1e-9)
    # and symmetric: the object and the open pixel swapped give the same bucket
    moved = np.zeros((n, n))
    moved[centre + 2, centre - 3] = 1
    one = np.zeros((1, n, n))
    one[0, centre, centre] = 1
    assert simulate_buckets(moved, one, blur=sigma, modulation_depth=depth)[0] == \
        pytest.approx(b[offsets.index((2, -3))], rel=1e-9)


def test_same_seed_same_result(obj):
    p = hadamard_patterns(16, ratio=0.25)
    kw = {"modulation_depth": 0.8, "mask_error": 0.03, "blur": 0.5, "photons": 100, "read_noise": 1.0}
    a = simulate_buckets(obj, p, rng=7, **kw)
    np.testing.assert_array_equal(a, simulate_buckets(obj, p, rng=7, **kw))
    assert not np.array_equal(a, simulate_buckets(obj, p, rng=8, **kw))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"modulation_depth": 0.0}, "modulation_depth"),
        ({"modulation_depth": 1.2}, "modulation_depth"),
        ({"mask_error": -0.1}, "mask_error"),
        ({"photons": 0}, "photons"),
        ({"read_noise": -1}, "read_noise"),
    ],
)
def test_bad_arguments(obj, kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate_buckets(obj, hadamard_patterns(16, ratio=0.1), **kwargs)


def test_shape_mismatch(obj):
    with pytest.raises(ValueError, match="mask size"):
        simulate_buckets(obj, hadamard_patterns(8))


@pytest.mark.parametrize("kind", ["binary", "differential"])
def test_masks_simulated_in_chunks_draw_the_same_stream(kind, monkeypatch):
    # the masks are simulated _CHUNK at a time (memory): the mask errors and counts must be
    # those of one pass over the whole set (the random stream drawn in the same order)
    from torchscope.ghost import _simulate

    P = hadamard_patterns(16, ratio=0.7, kind=kind).astype(np.float32)
    obj = np.random.default_rng(2).random((3, 16, 16))
    noisy = {"mask_error": 0.05, "photons": 500, "read_noise": 1.0, "blur": 0.3,
             "modulation_depth": 0.8}
    monkeypatch.setattr(_simulate, "_CHUNK", 10_000)
    once = simulate_buckets(obj, P, rng=4, **noisy), simulate_buckets(obj, P)
    monkeypatch.setattr(_simulate, "_CHUNK", 7)
    np.testing.assert_array_equal(simulate_buckets(obj, P, rng=4, **noisy), once[0])
    np.testing.assert_allclose(simulate_buckets(obj, P), once[1], rtol=1e-12)

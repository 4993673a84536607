"""Linear filters against scipy.ndimage / scikit-image on the same call."""

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.filters as skf

import torchscope.filters._linear as linear
from torchscope.filters import (
    difference_of_gaussians,
    gaussian,
    laplace,
    laplacian_of_gaussian,
    sobel,
)

MODES = ("reflect", "nearest", "mirror", "wrap", "constant")
SHAPES = ((23, 41), (9, 12, 14))
FILTERS = {  # name: (torchscope call, oracle on float64)
    "gaussian": (
        lambda x, **kw: gaussian(x, 1.7, **kw),
        lambda x, mode="nearest": ndi.gaussian_filter(x, 1.7, mode=mode),
    ),
    "difference_of_gaussians": (
        lambda x, **kw: difference_of_gaussians(x, 1.2, **kw),
        lambda x, mode="nearest": skf.difference_of_gaussians(x, 1.2, mode=mode),
    ),
    "laplace": (
        lambda x, **kw: laplace(x, **kw),
        lambda x, mode="reflect": ndi.convolve(x, _laplace_kernel(x.ndim), mode=mode),
    ),
    "laplacian_of_gaussian": (
        lambda x, **kw: laplacian_of_gaussian(x, 1.3, **kw),
        lambda x, mode="reflect": -ndi.gaussian_laplace(x, 1.3, mode=mode),
    ),
    "sobel": (
        lambda x, **kw: sobel(x, **kw),
        lambda x, mode="reflect": skf.sobel(x, mode=mode),
    ),
}


def _laplace_kernel(ndim):
    """The lecture's Laplace kernel in nD: 2 * ndim at the centre, -1 at the face neighbours."""
    kernel = -ndi.generate_binary_structure(ndim, 1).astype(float)
    kernel[(1,) * ndim] = 2 * ndim
    return kernel


def _close(actual, expected, dtype=np.float32):
    """Equal to float32 (or float64) accuracy, relative to the scale of the values."""
    scale = max(1.0, float(np.max(np.abs(expected))))
    tol = 2e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tol * scale)


# --------------------------------------------------------------------------- against the oracles
@pytest.mark.parametrize("name", FILTERS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_oracle_every_mode(name, mode, shape, rng):
    ours, oracle = FILTERS[name]
    x = rng.random(shape)
    expected = oracle(x, mode=mode)
    _close(ours(x, mode=mode, device="cpu"), expected, np.float64)
    _close(ours(x.astype(np.float32), mode=mode, device="cpu"), expected)


@pytest.mark.parametrize("name", FILTERS)
def test_on_every_device(name, device, rng):
    ours, oracle = FILTERS[name]
    x = rng.random((31, 17)).astype(np.float32)
    _close(ours(x, device=device), oracle(x.astype(np.float64)))


def test_gaussian_matches_skimage_preserve_range(rng):
    x = rng.random((20, 30)).astype(np.float32) * 1000
    expected = skf.gaussian(x, 2.0, preserve_range=True)
    _close(gaussian(x, 2.0), expected.astype(np.float64))


def test_gaussian_per_axis_sigma_and_truncate(rng):
    x = rng.random((12, 15, 18))
    for sigma, truncate in [((0.8, 2.5, 0.0), 4.0), (1.5, 2.0), ((3.0, 0.3, 1.0), 3.5)]:
        expected = ndi.gaussian_filter(x, sigma, truncate=truncate, mode="nearest")
        _close(gaussian(x, sigma, truncate=truncate), expected, np.float64)


def test_gaussian_sigma_zero_is_a_float_copy(rng):
    x = rng.integers(0, 255, (5, 6), dtype=np.uint8)
    out = gaussian(x, 0)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, x)


def test_large_sigma_longer_than_the_axis(rng):
    x = rng.random((6, 40))
    for mode in MODES:
        _close(gaussian(x, 9.0, mode=mode), ndi.gaussian_filter(x, 9.0, mode=mode), np.float64)


def test_difference_of_gaussians_explicit_high_sigma(rng):
    x = rng.random((10, 20, 24))
    expected = skf.difference_of_gaussians(x, (0.5, 1.0, 1.0), (1.0, 3.0, 2.5))
    _close(difference_of_gaussians(x, (0.5, 1.0, 1.0), (1.0, 3.0, 2.5)), expected, np.float64)


@pytest.mark.parametrize("axis", [0, 1, 2, (0, 2), [2, 1]])
def test_sobel_axis_matches_skimage(axis, rng):
    x = rng.random((8, 11, 13))
    _close(sobel(x, axis=axis), skf.sobel(x, axis=axis), np.float64)


def test_sobel_negative_axis_counts_from_the_end(rng):
    x = rng.random((8, 11))
    np.testing.assert_array_equal(sobel(x, axis=-1), sobel(x, axis=1))


def test_sobel_derivative_sign_and_1d(rng):
    ramp = np.tile(np.arange(10.0), (4, 1))  # increases along axis 1
    assert np.all(sobel(ramp, axis=1)[:, 1:-1] > 0)
    x = rng.random(25)
    _close(sobel(x), skf.sobel(x), np.float64)  # 1-D: the signed derivative, as scikit-image


def test_laplace_matches_skimage(rng):
    for shape in [(17, 19), (6, 7, 8), (30,)]:
        x = rng.random(shape)
        _close(laplace(x), skf.laplace(x), np.float64)


def test_laplacian_of_gaussian_sign_bright_blob_is_positive():
    image = np.zeros((41, 41))
    image[18:23, 18:23] = 1.0
    response = laplacian_of_gaussian(image, 2.0)
    assert response[20, 20] > 0
    assert response[20, 20] == response.max()


# --------------------------------------------------------------------------- units and anisotropy
def test_laplacian_of_gaussian_with_spacing_is_round_in_space():
    """The same physical curvature along z and along x gives the same response (the
    second derivatives were per pixel: z, 4 times coarser, weighed 16 times)."""
    spacing = (2.0, 0.5, 0.5)
    z, _, x = np.meshgrid(*(np.arange(n) * s for n, s in zip((16, 64, 64), spacing)),
                          indexing="ij")
    along_z = laplacian_of_gaussian((z - 16) ** 2, 2.0, spacing=spacing)[8, 32, 32]
    along_x = laplacian_of_gaussian((x - 16) ** 2, 2.0, spacing=spacing)[8, 32, 32]
    assert along_z == pytest.approx(-2.0, rel=0.01)  # -(d2/dz2) of (z - 16)^2
    assert along_x == pytest.approx(along_z, rel=0.005)


def test_spacing_makes_sigma_physical(rng):
    x = rng.random((8, 20, 20)).astype(np.float32)
    spacing = (2.0, 0.5, 0.5)
    sigma_px = (0.5, 2.0, 2.0)  # 1.0 physical unit per axis
    _close(gaussian(x, 1.0, spacing=spacing), ndi.gaussian_filter(x.astype(float), sigma_px,
                                                                  mode="nearest"))
    # the Laplacian per physical unit: each axis's second derivative over spacing**2
    per_unit = sum(ndi.gaussian_filter(x.astype(float), sigma_px, order=[2 * (a == axis)
                                                                         for a in range(3)])
                   / spacing[axis] ** 2 for axis in range(3))
    _close(laplacian_of_gaussian(x, 1.0, spacing=spacing), -per_unit)
    _close(difference_of_gaussians(x, 1.0, 2.0, spacing=spacing),
           skf.difference_of_gaussians(x.astype(float), sigma_px, np.multiply(sigma_px, 2)))


def test_isotropic_spacing_scales_sigma(rng):
    x = rng.random((15, 16))
    np.testing.assert_allclose(gaussian(x, 3.0, spacing=(1.5, 1.5)), gaussian(x, 2.0),
                               rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float32, bool])
def test_result_is_float32_and_not_rescaled(dtype, rng):
    x = (rng.random((14, 15)) * (1 if dtype is bool else 200)).astype(dtype)
    for name, (ours, oracle) in FILTERS.items():
        out = ours(x)
        assert out.dtype == np.float32, name
        _close(out, oracle(x.astype(np.float64)))


def test_float64_stays_float64(rng):
    x = rng.random((10, 12))
    for name, (ours, oracle) in FILTERS.items():
        out = ours(x)
        assert out.dtype == np.float64, name
        _close(out, oracle(x), np.float64)


# --------------------------------------------------------------------------- edge cases
def test_constant_image():
    x = np.full((9, 10, 11), 3.5, dtype=np.float32)
    for mode in MODES:
        if mode != "constant":
            np.testing.assert_allclose(gaussian(x, 2.0, mode=mode), 3.5, rtol=1e-6)
            np.testing.assert_allclose(difference_of_gaussians(x, 1.0, mode=mode), 0, atol=1e-5)
            np.testing.assert_allclose(laplace(x, mode=mode), 0, atol=1e-5)
            np.testing.assert_allclose(sobel(x, mode=mode), 0, atol=1e-5)
            # the truncated kernel does not sum to exactly 0 (nor does scipy's)
            expected = -ndi.gaussian_laplace(x.astype(float), 1.5, mode=mode)
            np.testing.assert_allclose(laplacian_of_gaussian(x, 1.5, mode=mode), expected,
                                       atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 17), (6, 1, 7), (1,), (5, 1)])
@pytest.mark.parametrize("mode", MODES)
def test_one_pixel_wide_axis(shape, mode, rng):
    x = rng.random(shape)
    for ours, oracle in FILTERS.values():
        _close(ours(x, mode=mode), oracle(x, mode=mode), np.float64)


def test_many_blocks_on_the_cpu(monkeypatch, rng):
    """Tiny blocks: every block path (rows, columns, borders) against the oracles."""
    monkeypatch.setattr(linear, "_CPU_BLOCK", 64)
    for shape in [(23, 41), (9, 12, 14), (70,)]:
        x = rng.random(shape)
        for mode in MODES:
            for ours, oracle in FILTERS.values():
                _close(ours(x, mode=mode), oracle(x, mode=mode), np.float64)


def test_one_block_as_on_a_gpu(monkeypatch, rng):
    """The whole array in one block (what other devices do)."""
    monkeypatch.setattr(linear, "_CPU_BLOCK", 1 << 40)
    x = rng.random((9, 12, 14))
    for ours, oracle in FILTERS.values():
        _close(ours(x, mode="mirror"), oracle(x, mode="mirror"), np.float64)


def test_nan_is_an_error(rng):
    x = rng.random((10, 10))
    x[3, 4] = np.nan
    for ours, _ in FILTERS.values():
        with pytest.raises(ValueError, match="NaN"):
            ours(x)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x: gaussian(x, -1.0), "sigma"),
        (lambda x: gaussian(x, np.nan), "sigma"),
        (lambda x: gaussian(x, (1.0, 2.0, 3.0)), "sigma"),
        (lambda x: gaussian(x, 1.0, spacing=(1.0, 0.0)), "spacing"),
        (lambda x: gaussian(x, 1.0, spacing=(1.0,)), "spacing"),
        (lambda x: gaussian(x, 1.0, mode="edge"), "mode"),
        (lambda x: gaussian(x, 1.0, truncate=0), "truncate"),
        (lambda x: gaussian(x, 1.0, truncate="4"), "truncate"),
        (lambda x: difference_of_gaussians(x, 2.0, 1.0), "high_sigma"),
        (lambda x: difference_of_gaussians(x, -2.0), "low_sigma"),
        (lambda x: difference_of_gaussians(x, 1.0, (2.0, -1.0)), "high_sigma"),
        (lambda x: laplacian_of_gaussian(x, 0.0), "sigma"),
        (lambda x: laplacian_of_gaussian(x, (1.0, 0.0)), "sigma"),
        (lambda x: laplace(x, mode="grid-wrap"), "mode"),
        (lambda x: sobel(x, axis=2), "axis"),
        (lambda x: sobel(x, axis=(0, 0)), "axis"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(call, match, rng):
    with pytest.raises(ValueError, match=match):
        call(rng.random((6, 7)))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x: gaussian(x, None), "sigma"),
        (lambda x: sobel(x, axis=1.0), "axis"),
        (lambda x: sobel(x, axis="x"), "axis"),
        (lambda x: laplace(x.astype(complex)), "dtype"),
    ],
)
def test_bad_types_raise_type_error_naming_them(call, match, rng):
    with pytest.raises(TypeError, match=match):
        call(rng.random((6, 7)))


def test_inputs_are_not_modified(rng):
    for dtype in (np.float32, np.float64, np.uint8):
        x = (rng.random((12, 13)) * 100).astype(dtype)
        before = x.copy()
        for name, (ours, _) in FILTERS.items():
            ours(x)
            np.testing.assert_array_equal(x, before, err_msg=name)


# --------------------------------------------------------------------------- dask
@pytest.mark.parametrize("mode", ["nearest", "wrap"])
def test_dask_is_lazy_and_equals_numpy(mode, rng):
    for shape, chunks in [((30, 41), (8, 9)), ((10, 12, 14), (4, 5, 6))]:
        x = rng.random(shape).astype(np.float32)
        lazy_input = da.from_array(x, chunks=chunks)
        for name, (ours, _) in FILTERS.items():
            lazy = ours(lazy_input, mode=mode)
            assert isinstance(lazy, da.Array), name
            assert lazy.dtype == np.float32 and lazy.shape == x.shape
            np.testing.assert_allclose(lazy.compute(), ours(x, mode=mode), rtol=0, atol=1e-6,
                                       err_msg=name)


def test_dask_with_sigma_larger_than_chunks(rng):
    x = rng.random((40, 30))
    lazy = gaussian(da.from_array(x, chunks=(5, 6)), 4.0)
    _close(lazy.compute(), ndi.gaussian_filter(x, 4.0, mode="nearest"), np.float64)

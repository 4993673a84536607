"""Thresholds and the histogram against scikit-image and numpy on the same call."""

import dask.array as da
import numpy as np
import pytest
import skimage.filters as skf

import torchscope.filters._threshold as thresholding
from torchscope.filters import THRESHOLD_METHODS, histogram, threshold, threshold_value

HISTOGRAM_METHODS = ("otsu", "yen", "triangle", "isodata")  # bit-identical to scikit-image


def _images():
    rng = np.random.default_rng(7)
    bimodal = np.concatenate([rng.normal(60, 10, 1200), rng.normal(170, 20, 800)])
    return {
        "bimodal uint8": np.clip(bimodal, 0, 255).astype(np.uint8).reshape(40, 50),
        "bimodal float32": (bimodal / 255).astype(np.float32).reshape(40, 50),
        "skewed float64": rng.lognormal(0.0, 1.0, (30, 40)),
        "skewed uint16": rng.gamma(2.0, 400.0, (30, 33)).astype(np.uint16),
        "signed int16": rng.normal(0, 800, (25, 30)).astype(np.int16),
        "uniform float32 3D": rng.random((8, 9, 10), dtype=np.float32),
        "few levels float32": rng.integers(0, 5, (20, 20)).astype(np.float32) * 0.25,
        "bright spots on dark": np.where(rng.random((40, 40)) < 0.05, 200, 10).astype(np.uint8)
        + rng.integers(0, 5, (40, 40), dtype=np.uint8),
        "two values": np.array([[0.0, 1.0]], dtype=np.float32),
    }


IMAGES = _images()


def _skimage(image, method):
    return getattr(skf, f"threshold_{method}")(image)


# --------------------------------------------------------------------------- against scikit-image
@pytest.mark.parametrize("method", HISTOGRAM_METHODS)
@pytest.mark.parametrize("name", IMAGES)
def test_histogram_methods_equal_skimage(name, method):
    image = IMAGES[name]
    value = threshold_value(image, method)
    assert isinstance(value, float)
    assert value == _skimage(image, method)
    np.testing.assert_array_equal(threshold(image, method), image > _skimage(image, method))


@pytest.mark.parametrize("method", ["li", "mean"])
@pytest.mark.parametrize("name", IMAGES)
def test_li_and_mean_equal_skimage_to_float_rounding(name, method):
    image = IMAGES[name]
    value = threshold_value(image, method)
    expected = _skimage(image, method)
    eps = float(np.finfo(image.dtype if image.dtype.kind == "f" else np.float64).eps)
    assert value == pytest.approx(float(expected), rel=8 * eps, abs=8 * eps)
    np.testing.assert_array_equal(threshold(image, method), image > value)


@pytest.mark.parametrize("method", THRESHOLD_METHODS)
def test_every_method_on_every_device(method, device):
    image = IMAGES["bimodal float32"]
    value = threshold_value(image, method, device=device)
    assert value == pytest.approx(float(_skimage(image, method)), rel=1e-6)
    np.testing.assert_array_equal(threshold(image, method, device=device), image > value)


def test_signature_of_the_contract_works_positionally():
    image = IMAGES["bimodal uint8"]
    assert threshold_value(image) == threshold_value(image, "otsu") == skf.threshold_otsu(image)
    assert set(THRESHOLD_METHODS) == {"otsu", "li", "yen", "triangle", "isodata", "mean"}


# --------------------------------------------------------------------------- numbers and dtypes
def test_a_number_is_the_threshold():
    image = IMAGES["skewed float64"]
    assert threshold_value(image, 1.5) == 1.5
    assert threshold_value(image, np.float32(0.25)) == 0.25
    np.testing.assert_array_equal(threshold(image, 1.5), image > 1.5)


def test_integer_image_with_a_fractional_threshold():
    image = IMAGES["signed int16"]
    for value in (-100.5, 0.0, 37.2, 1e9, -1e9):
        np.testing.assert_array_equal(threshold(image, value), image > value)


def test_mean_of_a_wide_integer_range():
    image = np.random.default_rng(3).integers(-2**30, 2**30, (40, 50)).astype(np.int32)
    assert threshold_value(image, "mean") == pytest.approx(skf.threshold_mean(image), rel=1e-15)


def test_device_comparison_of_integers_with_any_number():
    """The mask as computed on a device (here: on dask blocks), beyond the dtype's range too."""
    image = IMAGES["bimodal uint8"]
    lazy = da.from_array(image, chunks=(13, 17))
    for value in (-3.5, 0.0, 99.99, 100.0, 254.5, 255.0, 1e9):
        np.testing.assert_array_equal(threshold(lazy, value).compute(), image > value)


def test_bool_image_counts_as_zero_and_one():
    image = IMAGES["uniform float32 3D"] > 0.3
    np.testing.assert_array_equal(threshold(image), image)
    np.testing.assert_array_equal(histogram(image, 4)[0], np.histogram(image.view(np.uint8), 4)[0])


@pytest.mark.filterwarnings("ignore:Converting input from bool")
@pytest.mark.parametrize("method", HISTOGRAM_METHODS + ("mean",))
def test_bool_image_equals_skimage(method):
    # scikit-image bins bool images like floats (256 bins over [0, 1]), not one bin per value:
    # triangle then gives 1.5/256, and the mask is the image itself, where a 0/1 uint8 image
    # would give 1 and an empty mask
    image = IMAGES["uniform float32 3D"] > 0.7
    assert threshold_value(image, method) == pytest.approx(float(_skimage(image, method)), abs=1e-12)
    np.testing.assert_array_equal(threshold(image, method), image)


def test_integer_image_with_too_wide_a_range_is_refused():
    image = np.array([[0, 2**30]], dtype=np.int32)
    with pytest.raises(ValueError, match="astype"):
        threshold_value(image, "otsu")
    assert threshold_value(image.astype(np.float32), "otsu") == float(_skimage(image.astype(np.float32), "otsu"))


def test_mask_is_bool_of_the_image_shape():
    image = IMAGES["uniform float32 3D"]
    mask = threshold(image, "li")
    assert mask.dtype == bool and mask.shape == image.shape


# --------------------------------------------------------------------------- edge cases
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_constant_image_gives_its_value(dtype):
    image = np.full((6, 7), 3, dtype=dtype)
    for method in THRESHOLD_METHODS:
        assert threshold_value(image, method) == 3.0
        assert not threshold(image, method).any()
    for method in ("otsu", "li", "triangle", "mean"):  # scikit-image agrees (all, for uint8)
        assert _skimage(image, method) == 3
    if dtype == np.uint8:
        assert _skimage(image, "yen") == _skimage(image, "isodata") == 3


def test_nan_and_infinity_are_errors():
    image = IMAGES["bimodal float32"].copy()
    image[3, 4] = np.nan
    for method in (*THRESHOLD_METHODS, 0.5):
        with pytest.raises(ValueError, match="NaN"):
            threshold(image, method)
    with pytest.raises(ValueError, match="NaN"):
        histogram(image)
    image[3, 4] = np.inf
    for method in THRESHOLD_METHODS:
        with pytest.raises(ValueError, match="infinite"):
            threshold_value(image, method)


@pytest.mark.parametrize(
    "method, error, match",
    [
        ("otsu2", ValueError, "method"),
        (np.nan, ValueError, "method"),
        (np.inf, ValueError, "method"),
        (None, TypeError, "method"),
        (True, TypeError, "method"),
        (["otsu"], TypeError, "method"),
    ],
)
def test_bad_method(method, error, match):
    with pytest.raises(error, match=match):
        threshold_value(IMAGES["bimodal uint8"], method)
    with pytest.raises(error, match=match):
        threshold(IMAGES["bimodal uint8"], method)


def test_bad_image_type():
    with pytest.raises(TypeError, match="dtype"):
        threshold(np.ones((3, 3), dtype=complex))


def test_inputs_are_not_modified():
    for image in IMAGES.values():
        before = image.copy()
        for method in THRESHOLD_METHODS:
            threshold(image, method)
        histogram(image)
        np.testing.assert_array_equal(image, before)


# --------------------------------------------------------------------------- histogram
@pytest.mark.parametrize("bins", [1, 7, 256, 1000])
@pytest.mark.parametrize("name", IMAGES)
def test_histogram_equals_numpy(name, bins):
    image = IMAGES[name]
    counts, edges = histogram(image, bins)
    expected_counts, expected_edges = np.histogram(image, bins)
    np.testing.assert_array_equal(counts, expected_counts)
    np.testing.assert_array_equal(edges, expected_edges)
    assert edges.dtype == expected_edges.dtype and counts.dtype == np.int64


def test_histogram_values_on_the_edges(rng):
    """Values that sit exactly on bin edges: numpy's correction step decides, as here."""
    for image, bins in [
        (np.arange(256, dtype=np.float32).reshape(16, 16), 10),
        (np.linspace(0, 1, 1001, dtype=np.float32), 10),
        (np.linspace(-3, 7, 4097), 256),
        (rng.integers(0, 6, 500).astype(np.float32) / 3, 5),
        (np.float32(1e4) + rng.random(1000, dtype=np.float32), 256),  # few ulps per bin
    ]:
        counts, edges = histogram(image, bins)
        expected = np.histogram(image, bins)
        np.testing.assert_array_equal(counts, expected[0])
        np.testing.assert_array_equal(edges, expected[1])


@pytest.mark.parametrize("block", [5, 1 << 40])  # many blocks; one block, as on a GPU
def test_histogram_block_sizes(block, monkeypatch):
    monkeypatch.setattr(thresholding, "_CPU_BLOCK", block)
    for image in IMAGES.values():
        np.testing.assert_array_equal(histogram(image, 50)[0], np.histogram(image, 50)[0])


def test_histogram_of_a_constant_image():
    for image in (np.full((4, 5), 7, np.uint8), np.full(9, -2.5, np.float32)):
        counts, edges = histogram(image, 5)
        expected = np.histogram(image, 5)
        np.testing.assert_array_equal(counts, expected[0])
        np.testing.assert_array_equal(edges, expected[1])


def test_histogram_too_many_bins_for_the_range():
    image = np.float32(1e4) + np.arange(10, dtype=np.float32) * np.float32(1e-3)
    with pytest.raises(ValueError):
        np.histogram(image, 256)
    with pytest.raises(ValueError, match="bins"):
        histogram(image, 256)


@pytest.mark.parametrize("bins, error", [(0, ValueError), (2.5, TypeError), ("auto", TypeError)])
def test_histogram_bad_bins(bins, error):
    with pytest.raises(error, match="bins"):
        histogram(IMAGES["bimodal uint8"], bins)


def test_histogram_on_every_device(device):
    image = IMAGES["skewed float64"].astype(np.float32)
    counts, _ = histogram(image, device=device)
    np.testing.assert_array_equal(counts, np.histogram(image, 256)[0])


# --------------------------------------------------------------------------- dask
@pytest.mark.parametrize("name", ["bimodal uint8", "skewed float64", "uniform float32 3D",
                                  "signed int16"])
def test_dask_equals_numpy(name):
    image = IMAGES[name]
    lazy = da.from_array(image, chunks=tuple(max(1, s // 3) for s in image.shape))
    assert lazy.npartitions > 3
    for method in THRESHOLD_METHODS:
        value = threshold_value(lazy, method)
        if method in HISTOGRAM_METHODS:
            assert value == threshold_value(image, method)
        else:  # sums taken block by block: equal to float rounding
            eps = float(np.finfo(image.dtype if image.dtype.kind == "f" else np.float64).eps)
            assert value == pytest.approx(threshold_value(image, method), rel=8 * eps)
        mask = threshold(lazy, method)
        assert isinstance(mask, da.Array) and mask.dtype == bool
        np.testing.assert_array_equal(mask.compute(), image > value)
    counts, edges = histogram(lazy, 64)
    np.testing.assert_array_equal(counts, np.histogram(image, 64)[0])
    np.testing.assert_array_equal(edges, np.histogram(image, 64)[1])


def test_dask_bool_image_equals_numpy(rng):
    """Each bool block reached the comparison as torch.bool (torch.iinfo refused it): every
    threshold of a bool dask array failed, and so did the dock's Threshold on a large mask."""
    image = rng.random((40, 30)) > 0.6
    lazy = da.from_array(image, chunks=(17, 11))
    for method in [*THRESHOLD_METHODS, 0.5, -1.0, 1.0]:
        expected = threshold(image, method)
        np.testing.assert_array_equal(threshold(lazy, method).compute(), expected)
    np.testing.assert_array_equal(threshold(lazy, 0.5).compute(), image)  # True is 1


def test_dask_nan_is_an_error():
    image = IMAGES["bimodal float32"].copy()
    image[-1, -1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        threshold_value(da.from_array(image, chunks=10), "otsu")


def test_li_stops_when_the_threshold_moves_by_one_float_step():
    # a 64 x 1024 x 1024 float32 image (uniform values x 1000) made Li's iteration go back and
    # forth between two neighbouring float32 thresholds, 3.05e-5 apart, for ever: the
    # tolerance (half the smallest gap between distinct values, 1.5e-5) is finer than float32
    # near 400. Such a two-cycle must end
    from torchscope.filters._threshold import _li_iterate

    a = np.float32(397.91855)
    b = np.nextafter(a, np.float32(np.inf))
    calls = []

    def update(t):
        calls.append(t)
        assert len(calls) < 50, "the iteration did not stop"
        return b if t == a else a

    assert _li_iterate(a, np.float32(1.5e-5), update) in (a, b) and len(calls) <= 2
    # a tolerance coarser than the type's step still decides alone
    assert _li_iterate(np.float64(10.0), 0.5, lambda t: t / 2 + 2.5) == pytest.approx(5.0, abs=1)

"""Rank filters and local statistics against scipy.ndimage / scikit-image."""

import threading

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.filters
import torch

from torchscope import filters
from torchscope.filters import _network, footprint
from torchscope.filters._core import MODES

# name -> (oracle(image, fp, mode), exact?)
ORACLES = {
    "median": (lambda x, fp, mode: ndi.median_filter(x, footprint=fp, mode=mode), True),
    "minimum": (lambda x, fp, mode: ndi.minimum_filter(x, footprint=fp, mode=mode), True),
    "maximum": (lambda x, fp, mode: ndi.maximum_filter(x, footprint=fp, mode=mode), True),
    "mean": (
        lambda x, fp, mode: ndi.correlate(x.astype(np.float64), fp / fp.sum(), mode=mode),
        False,
    ),
    "variance": (
        lambda x, fp, mode: ndi.generic_filter(
            x.astype(np.float64), np.var, footprint=fp, mode=mode
        ),
        False,
    ),
    "std": (
        lambda x, fp, mode: ndi.generic_filter(
            x.astype(np.float64), np.std, footprint=fp, mode=mode
        ),
        False,
    ),
}
NAMES = list(ORACLES)
RANK = ["median", "minimum", "maximum"]
STATS = ["mean", "variance", "std"]


def check(name, image, radius, *, spacing=None, mode="nearest", device=None):
    """Compare one call with its oracle (exact, or to the accuracy of the result's dtype)."""
    got = getattr(filters, name)(image, radius, spacing=spacing, mode=mode, device=device)
    oracle, exact = ORACLES[name]
    want = oracle(image, footprint(radius, image.ndim, spacing=spacing), mode)
    assert got.shape == image.shape
    if exact:
        assert got.dtype == image.dtype
        np.testing.assert_array_equal(got, want)
    else:
        float64 = image.dtype == np.float64
        assert got.dtype == (np.float64 if float64 else np.float32)
        scale = max(1.0, float(np.abs(want).max()))
        tol = 1e-12 if float64 else 2e-6
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale)
    return got


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NAMES)
def test_2d_every_mode(name, mode, rng):
    image = rng.random((19, 23)).astype(np.float32)
    for radius in (1, 2, 3.5):
        check(name, image, radius, mode=mode)


@pytest.mark.parametrize("mode", ["nearest", "reflect", "wrap", "constant"])
@pytest.mark.parametrize("name", NAMES)
def test_3d(name, mode, rng):
    image = rng.random((7, 9, 11)).astype(np.float32)
    check(name, image, 2, mode=mode)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "shape, radius, spacing",
    [
        ((15, 17), 3.0, (1.5, 0.5)),  # an ellipse of 2 x 6 pixels
        ((6, 13, 12), 2.4, (2.0, 0.6, 0.6)),  # a typical anisotropic stack
        ((8, 9, 10), (0.0, 2.0, 2.0), None),  # a disc in every plane
    ],
)
def test_anisotropic(name, shape, radius, spacing, rng):
    image = rng.random(shape).astype(np.float32)
    check(name, image, radius, spacing=spacing, mode="reflect")


def test_physical_radius_is_the_ellipsoid_in_pixels(rng):
    image = rng.random((10, 12, 14)).astype(np.float32)
    spacing = (2.0, 0.5, 0.5)
    # 2 physical units = 1 pixel along z, 4 pixels in plane
    direct = filters.median(image, 2.0, spacing=spacing)
    assert np.array_equal(direct, filters.median(image, (1, 4, 4)))


@pytest.mark.parametrize("dtype", [bool, np.uint8, np.uint16, np.int16, np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_dtypes(name, dtype, rng):
    if dtype is bool:
        image = rng.random((16, 18)) > 0.5
    else:
        top = 60000 if dtype == np.uint16 else 100
        image = (rng.random((16, 18)) * top).astype(dtype)
    check(name, image, 2)


def test_median_of_bool_is_majority(rng):
    image = rng.random((20, 20)) > 0.5
    fp = footprint(1, 2)
    want = ndi.correlate(image.astype(int), fp.astype(int), mode="nearest") >= 3
    assert np.array_equal(filters.median(image, 1), want)


def test_median_is_skimage_median(rng):
    image = (rng.random((24, 20)) * 255).astype(np.uint8)
    for mode in ("nearest", "reflect"):
        want = skimage.filters.median(image, footprint(2, 2), mode=mode)
        assert np.array_equal(filters.median(image, 2, mode=mode), want)


@pytest.mark.parametrize(
    "shape, radius", [((25, 26), 1), ((25, 26), 3), ((25, 26), 4.5), ((9, 10, 11), (1, 3, 2))]
)
def test_median_with_many_ties(shape, radius, rng):
    """Few distinct values: the median network must not lose a tie."""
    for levels in (2, 3):
        check("median", rng.integers(0, levels, shape).astype(np.uint8), radius, mode="reflect")


@pytest.mark.parametrize("name", RANK)
def test_larger_radius(name, rng):
    image = rng.random((30, 31)).astype(np.float32)
    check(name, image, 6, mode="mirror")


def test_variance_with_a_large_offset(rng):
    # float32 data, 1000 + noise: E[x^2] - E[x]^2 in float32 would lose every digit
    image = (1000 + rng.standard_normal((40, 40))).astype(np.float32)
    got = filters.variance(image, 3)
    want = ORACLES["variance"][0](image, footprint(3, 2), "nearest")
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(filters.std(image, 3), np.sqrt(want), rtol=1e-5)
    # and with two levels, where a global reference alone would not help
    steps = image + np.where(np.arange(40) < 20, 0, 5000).astype(np.float32)
    got = filters.variance(steps, 2)
    want = ORACLES["variance"][0](steps, footprint(2, 2), "nearest")
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6 * want.max())


# --------------------------------------------------------------------------- edge cases
@pytest.mark.parametrize("name", NAMES)
def test_constant_image(name):
    image = np.full((9, 10, 11), 7.5, dtype=np.float32)
    got = getattr(filters, name)(image, 2, mode="constant" if name in RANK else "reflect")
    if name in RANK:  # zeros come in from the border with mode="constant"
        inner = got[2:-2, 2:-2, 2:-2]
        assert np.all(inner == 7.5)
    else:
        want = 7.5 if name == "mean" else 0.0
        np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NAMES)
def test_one_pixel_wide_axis(name, mode, rng):
    for shape in [(1, 17), (13, 1), (1, 1), (6, 1, 7)]:
        check(name, rng.random(shape).astype(np.float32), 2, mode=mode)


@pytest.mark.parametrize("name", NAMES)
def test_radius_zero_is_the_identity(name, rng):
    image = (rng.random((8, 9)) * 100).astype(np.uint8)
    got = getattr(filters, name)(image, 0)
    if name in ("variance", "std"):
        assert np.array_equal(got, np.zeros(image.shape, np.float32))
    else:
        assert np.array_equal(got, image) and got is not image


def test_1d(rng):
    image = rng.random(50).astype(np.float32)
    for name in NAMES:
        check(name, image, 3, mode="reflect")


@pytest.mark.parametrize("name", NAMES)
def test_nan_is_an_error(name):
    image = np.ones((5, 5), dtype=np.float32)
    image[2, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        getattr(filters, name)(image, 1)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "kwargs, error, word",
    [
        ({"radius": -1}, ValueError, "radius"),
        ({"radius": np.inf}, ValueError, "radius"),
        ({"radius": (1, 2, 3)}, ValueError, "radius"),
        ({"radius": "2"}, TypeError, "radius"),
        ({"radius": None}, TypeError, "radius"),
        ({"radius": 2, "spacing": (1, 0)}, ValueError, "spacing"),
        ({"radius": 2, "spacing": (1, -1)}, ValueError, "spacing"),
        ({"radius": 2, "spacing": (1, 1, 1)}, ValueError, "spacing"),
        ({"radius": 2, "spacing": "1"}, TypeError, "spacing"),
        ({"radius": 2, "mode": "edge"}, ValueError, "mode"),
    ],
)
def test_bad_arguments_name_the_argument(name, kwargs, error, word):
    with pytest.raises(error, match=word):
        getattr(filters, name)(np.zeros((5, 5), np.float32), **kwargs)


@pytest.mark.parametrize("name", NAMES)
def test_bad_images(name):
    with pytest.raises(TypeError, match="image"):
        getattr(filters, name)(np.zeros((4, 4), complex), 1)
    with pytest.raises(ValueError, match="image"):
        getattr(filters, name)(np.zeros((0, 4)), 1)


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        filters.median(np.zeros((4, 4)), 1, None)


@pytest.mark.parametrize("name", NAMES)
def test_input_is_not_modified(name, rng):
    for image in (
        rng.random((12, 13)),  # float64: shares memory with the tensor inside
        rng.random((12, 13)).astype(np.float32),
        (rng.random((12, 13)) * 9).astype(np.uint8),
    ):
        image.flags.writeable = True
        before = image.copy()
        for radius in (0, 2):
            getattr(filters, name)(image, radius, mode="constant")
        assert np.array_equal(image, before)


# --------------------------------------------------------------------------- dask, devices
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NAMES)
def test_dask_is_lazy_and_equal(name, mode, rng):
    image = rng.random((23, 26, 12)).astype(np.float32)
    lazy_in = da.from_array(image, chunks=(8, 7, 12))
    lazy = getattr(filters, name)(lazy_in, 2, mode=mode)
    assert isinstance(lazy, da.Array)
    assert lazy.dtype == getattr(filters, name)(image[:3, :3, :3], 1).dtype
    got = lazy.compute()
    want = getattr(filters, name)(image, 2, mode=mode)
    if name in RANK:
        assert np.array_equal(got, want)
    else:
        # the blocks see other data, so sums may round differently
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_dask_with_chunks_smaller_than_the_radius(rng):
    image = rng.random((20, 21)).astype(np.float32)
    lazy = filters.median(da.from_array(image, chunks=2), 3, mode="reflect")
    assert np.array_equal(lazy.compute(), filters.median(image, 3, mode="reflect"))


@pytest.mark.parametrize("name", NAMES)
def test_device(name, device, rng):
    image = rng.random((12, 14, 9)).astype(np.float32)
    check(name, image, 2, mode="reflect", device=device)


@pytest.mark.parametrize("mode", ["wrap", "reflect", "nearest"])
@pytest.mark.parametrize("sizes", [(1000, 1 << 20), (100, 100), (1, 1)])
def test_tiles_do_not_change_the_result(sizes, mode, rng, monkeypatch):
    """However the work is tiled (one slab, slabs along axis 0, tiles along axes 0 and 1;
    a tile's rows beyond a border are gathered after all its axes are cut)."""
    image = rng.random((9, 14, 17)).astype(np.float32)
    want = {name: getattr(filters, name)(image, 2, mode=mode) for name in NAMES}
    monkeypatch.setattr(_network, "TILE_BYTES", sizes[0])
    monkeypatch.setattr(_network, "MEMORY_BYTES", sizes[1])
    for name in NAMES:
        assert np.array_equal(getattr(filters, name)(image, 2, mode=mode), want[name])


def test_concurrent_calls_agree_and_leave_torch_threads_alone(rng, monkeypatch):
    """Filters called from several threads at once (a napari worker and the console, dask's
    threads) give the right results and do not change torch's thread count anywhere."""
    monkeypatch.setattr(_network, "TILE_BYTES", 2000)  # many tiles: long enough to overlap
    image = rng.random((60, 70)).astype(np.float32)
    want = ORACLES["median"][0](image, footprint(2, 2), "nearest")
    before = torch.get_num_threads()
    results, seen = [], []

    def call():
        results.append(filters.median(image, 2))
        seen.append(torch.get_num_threads())

    def fresh():  # first torch call of a new thread while others filter
        seen.append(torch.get_num_threads())

    threads = [threading.Thread(target=call) for _ in range(3)]
    threads += [threading.Thread(target=fresh) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert torch.get_num_threads() == before
    assert seen == [before] * 8
    assert len(results) == 3
    for got in results:
        assert np.array_equal(got, want)


def test_single_threaded_torch(rng, monkeypatch):
    monkeypatch.setattr(_network, "TILE_BYTES", 2000)
    image = rng.random((40, 50)).astype(np.float32)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        got = filters.minimum(image, 3)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(got, ORACLES["minimum"][0](image, footprint(3, 2), "nearest"))


@pytest.mark.parametrize("shape, radius", [((23, 31), 3), ((9, 11, 13), 2), ((1, 40), 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8, bool])
@pytest.mark.parametrize("mode", ["nearest", "reflect", "wrap"])
def test_sorted_median_for_large_footprints(shape, radius, dtype, mode, rng, monkeypatch):
    """Large footprints take the median by sorting; it equals scipy's exactly."""
    from torchscope.filters import _rank

    monkeypatch.setattr(_rank, "MEDIAN_NETWORK_MAX", 0)
    monkeypatch.setattr(_rank, "SORT_ELEMENTS", 500)  # several tiles
    image = (rng.random(shape) * 200).astype(dtype)
    fp = footprint(radius, len(shape))
    got = filters.median(image, radius, mode=mode)
    assert got.dtype == image.dtype
    assert np.array_equal(got, ndi.median_filter(image, footprint=fp, mode=mode))

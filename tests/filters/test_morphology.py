"""Grey and binary morphology against scikit-image (``skimage.morphology``, default mode)."""

import dask.array as da
import numpy as np
import pytest
import skimage.morphology

from torchscope import filters
from torchscope.filters import footprint
from torchscope.filters._core import MODES

NAMES = ["erosion", "dilation", "opening", "closing", "white_tophat", "black_tophat"]
DTYPES = [bool, np.uint8, np.uint16, np.int32, np.float32, np.float64]


def random_image(rng, shape, dtype):
    if dtype is bool:
        return rng.random(shape) > 0.6
    top = {np.uint8: 255, np.uint16: 65535}.get(dtype, 1000)
    image = rng.random(shape) * top
    if np.dtype(dtype).kind == "i":
        image -= top / 2
    return image.astype(dtype)


def check(name, image, radius, *, spacing=None, mode="reflect", device=None):
    """One call against scikit-image: same values, same dtype."""
    got = getattr(filters, name)(image, radius, spacing=spacing, mode=mode, device=device)
    fp = footprint(radius, image.ndim, spacing=spacing)
    want = getattr(skimage.morphology, name)(image, fp, mode=mode)
    assert got.dtype == want.dtype == image.dtype
    np.testing.assert_array_equal(got, want)
    return got


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_2d(name, dtype, rng):
    image = random_image(rng, (21, 24), dtype)
    for radius in (1, 3, 4.5):
        check(name, image, radius)


@pytest.mark.parametrize("dtype", [bool, np.uint8, np.float32])
@pytest.mark.parametrize("name", NAMES)
def test_3d(name, dtype, rng):
    check(name, random_image(rng, (8, 10, 11), dtype), 2)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NAMES)
def test_every_mode(name, mode, rng):
    check(name, random_image(rng, (13, 15), np.float32), 2, mode=mode)
    check(name, random_image(rng, (13, 15), bool), 2, mode=mode)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "shape, radius, spacing",
    [((16, 14), 3.0, (1.5, 0.5)), ((6, 13, 12), 2.4, (2.0, 0.6, 0.6))],
)
def test_anisotropic(name, shape, radius, spacing, rng):
    check(name, random_image(rng, shape, np.uint16), radius, spacing=spacing)


@pytest.mark.parametrize("mode", MODES)
def test_erosion_and_dilation_are_the_minimum_and_maximum_filters(mode, rng):
    image = random_image(rng, (12, 13, 9), np.float32)
    assert np.array_equal(
        filters.erosion(image, 2, mode=mode), filters.minimum(image, 2, mode=mode)
    )
    assert np.array_equal(
        filters.dilation(image, 2, mode=mode), filters.maximum(image, 2, mode=mode)
    )


def test_order_properties(rng):
    image = random_image(rng, (30, 30), np.float32)
    opened, closed = filters.opening(image, 3), filters.closing(image, 3)
    assert np.all(filters.erosion(image, 3) <= opened)
    assert np.all(opened <= image) and np.all(image <= closed)
    assert np.all(closed <= filters.dilation(image, 3))
    assert np.all(filters.white_tophat(image, 3) >= 0)
    assert np.all(filters.black_tophat(image, 3) >= 0)


def test_tophat_keeps_small_spots_and_removes_the_background():
    y, x = np.mgrid[:40, :40]
    background = (x + y).astype(np.float32)  # a ramp: no structure smaller than a disc
    image = background.copy()
    image[10, 10] += 50
    image[30:32, 25:27] += 20
    top = filters.white_tophat(image, 4)
    assert top[10, 10] == pytest.approx(50, abs=2)
    assert np.all(top[30:32, 25:27] > 15)
    # away from the border, where reflection makes a ridge of the ramp's top edge
    assert np.all(filters.white_tophat(background, 4)[8:-8, 8:-8] == 0)


# --------------------------------------------------------------------------- edge cases
@pytest.mark.parametrize("name", NAMES)
def test_constant_image(name):
    image = np.full((9, 10), 42, dtype=np.uint8)
    tophat = name.endswith("tophat")
    got = getattr(filters, name)(image, 3)
    assert np.array_equal(got, np.zeros_like(image) if tophat else image)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NAMES)
def test_one_pixel_wide_axis(name, mode, rng):
    for shape in [(1, 17), (13, 1), (5, 1, 6)]:
        check(name, random_image(rng, shape, np.float32), 2, mode=mode)


@pytest.mark.parametrize("name", NAMES)
def test_radius_zero_is_the_identity(name, rng):
    image = random_image(rng, (8, 9), np.uint8)
    got = getattr(filters, name)(image, 0)
    want = np.zeros_like(image) if name.endswith("tophat") else image
    assert np.array_equal(got, want) and got is not image


@pytest.mark.parametrize("name", NAMES)
def test_nan_is_an_error(name):
    image = np.zeros((6, 6))
    image[0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        getattr(filters, name)(image, 1)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "kwargs, error, word",
    [
        ({"radius": -2}, ValueError, "radius"),
        ({"radius": [1, 2, 3]}, ValueError, "radius"),
        ({"radius": "3"}, TypeError, "radius"),
        ({"radius": 1, "spacing": (0, 1)}, ValueError, "spacing"),
        ({"radius": 1, "spacing": (1,)}, ValueError, "spacing"),
        ({"radius": 1, "mode": "max"}, ValueError, "mode"),
    ],
)
def test_bad_arguments_name_the_argument(name, kwargs, error, word):
    with pytest.raises(error, match=word):
        getattr(filters, name)(np.zeros((6, 6), np.uint8), **kwargs)


@pytest.mark.parametrize("name", NAMES)
def test_input_is_not_modified(name, rng):
    for dtype in (bool, np.uint8, np.float64):
        image = random_image(rng, (11, 12), dtype)
        before = image.copy()
        for radius in (0, 2):
            getattr(filters, name)(image, radius)
        assert np.array_equal(image, before)


# --------------------------------------------------------------------------- dask, devices
@pytest.mark.parametrize("mode", ["reflect", "wrap", "constant"])
@pytest.mark.parametrize("name", NAMES)
def test_dask_is_lazy_and_equal(name, mode, rng):
    # opening and friends chain two filters: the blocks need twice the radius of overlap
    image = random_image(rng, (26, 23, 7), np.float32)
    lazy = getattr(filters, name)(da.from_array(image, chunks=(9, 8, 7)), 2, mode=mode)
    assert isinstance(lazy, da.Array) and lazy.dtype == image.dtype
    assert np.array_equal(lazy.compute(), getattr(filters, name)(image, 2, mode=mode))


def test_dask_bool(rng):
    image = random_image(rng, (30, 31), bool)
    lazy = filters.closing(da.from_array(image, chunks=7), 3)
    assert lazy.dtype == bool
    assert np.array_equal(lazy.compute(), filters.closing(image, 3))


@pytest.mark.parametrize("name", NAMES)
def test_device(name, device, rng):
    check(name, random_image(rng, (10, 12, 9), np.float32), 2, device=device)
    check(name, random_image(rng, (10, 12, 9), bool), 2, device=device)

"""The pieces of ``torchscope.filters._core`` the rank and morphology filters stand on."""

import itertools

import numpy as np
import pytest
import skimage.morphology
import torch

from torchscope.filters import footprint
from torchscope.filters._core import MODES, pad

# scipy.ndimage's border modes under numpy's names
NUMPY_MODES = {
    "reflect": "symmetric",
    "mirror": "reflect",
    "nearest": "edge",
    "wrap": "wrap",
    "constant": "constant",
}


def ellipsoid(radius_pixels):
    """Independent construction: every offset, tested one by one."""
    half = [int(np.floor(r + 1e-9)) for r in radius_pixels]
    out = np.zeros([2 * h + 1 for h in half], dtype=bool)
    for index in itertools.product(*(range(2 * h + 1) for h in half)):
        d = [i - h for i, h in zip(index, half)]
        total = 0.0
        for di, r in zip(d, radius_pixels):
            if r == 0:
                total += 0.0 if di == 0 else np.inf
            else:
                total += (di / r) ** 2
        out[index] = total <= 1 + 1e-9
    return out


@pytest.mark.parametrize("radius", [0, 1, 2, 3, 5, 8])
def test_footprint_is_skimage_disk_and_ball(radius):
    assert np.array_equal(footprint(radius, 2), skimage.morphology.disk(radius).astype(bool))
    assert np.array_equal(footprint(radius, 3), skimage.morphology.ball(radius).astype(bool))


@pytest.mark.parametrize(
    "radius, ndim, spacing, pixels",
    [
        (2.5, 2, None, (2.5, 2.5)),
        ((1, 3), 2, None, (1, 3)),
        (3, 2, (1.0, 0.5), (3, 6)),
        (3.0, 3, (2.0, 1.0, 1.0), (1.5, 3, 3)),
        (1.2, 3, (0.4, 0.3, 0.3), (3, 4, 4)),
        ((0, 2, 2), 3, None, (0, 2, 2)),
        (2, 1, None, (2,)),
    ],
)
def test_footprint_in_physical_units_is_the_ellipsoid(radius, ndim, spacing, pixels):
    fp = footprint(radius, ndim, spacing=spacing)
    assert fp.dtype == bool
    assert np.array_equal(fp, ellipsoid(pixels))
    # centrally symmetric, with the centre: an odd number of offsets
    assert np.array_equal(fp, fp[(slice(None, None, -1),) * ndim])
    assert fp[tuple(s // 2 for s in fp.shape)]


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"radius": -1, "ndim": 2}, ValueError, "radius"),
        ({"radius": np.nan, "ndim": 2}, ValueError, "radius"),
        ({"radius": (1, 2, 3), "ndim": 2}, ValueError, "radius"),
        ({"radius": "big", "ndim": 2}, TypeError, "radius"),
        ({"radius": 2, "ndim": 2, "spacing": (0, 1)}, ValueError, "spacing"),
        ({"radius": 2, "ndim": 2, "spacing": (1,)}, ValueError, "spacing"),
        ({"radius": 2, "ndim": 2, "spacing": "x"}, TypeError, "spacing"),
    ],
)
def test_footprint_rejects_bad_arguments(kwargs, error, name):
    with pytest.raises(error, match=name):
        footprint(**kwargs)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n", [1, 2, 5])
def test_pad_matches_numpy(mode, n):
    x = np.arange(1, n + 1, dtype=np.float32)
    for before, after in [(0, 0), (1, 2), (n, n), (2 * n + 1, 3)]:
        got = pad(torch.from_numpy(x), [(before, after)], mode).numpy()
        assert np.array_equal(got, np.pad(x, (before, after), mode=NUMPY_MODES[mode]))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [bool, np.uint8, np.int32, np.float64])
def test_pad_nd_keeps_dtype(mode, dtype, rng):
    x = (rng.random((3, 4, 5)) * 100).astype(dtype)
    widths = [(1, 2), (0, 3), (2, 2)]
    got = pad(torch.from_numpy(x), widths, mode)
    assert got.dtype == torch.from_numpy(x).dtype
    assert np.array_equal(got.numpy(), np.pad(x, widths, mode=NUMPY_MODES[mode]))


@pytest.mark.parametrize("ndim", [2, 3])
def test_each_plane_filters_every_plane_on_its_own(ndim):
    import dask.array as da
    from scipy import ndimage

    import torchscope.filters as F

    rng = np.random.default_rng(4)
    series = rng.random((3, 2, 9, 16, 18)).astype(np.float32)
    spacing = (2.0, 0.5, 0.25)[-ndim:]
    out = F.each_plane(F.gaussian, series, ndim, 1.0, spacing=spacing, device="cpu")
    assert out.shape == series.shape and out.dtype == np.float32
    sigma = tuple(1.0 / s for s in spacing)
    lead = series.shape[:-ndim]
    for index in [(0,) * len(lead), tuple(n - 1 for n in lead)]:
        np.testing.assert_allclose(out[index], ndimage.gaussian_filter(
            series[index].astype(np.float64), sigma, mode="nearest", truncate=4.0), atol=1e-5)
    lazy = F.each_plane(F.threshold, da.from_array(series, chunks=(1, 1, 9, 8, 18)), ndim, "otsu")
    assert isinstance(lazy, da.Array)
    expected = np.stack([F.threshold(p, "otsu") for p in series.reshape(-1, *series.shape[-ndim:])])
    np.testing.assert_array_equal(lazy.compute(), expected.reshape(series.shape))


def test_each_plane_refuses_bad_ndim():
    import torchscope.filters as F

    with pytest.raises(ValueError, match="ndim"):
        F.each_plane(F.gaussian, np.zeros((4, 4)), 4, 1.0)
    with pytest.raises(ValueError, match="fewer than ndim=3"):
        F.each_plane(F.gaussian, np.zeros((4, 4)), 3, 1.0)
    with pytest.raises(ValueError, match="no plane"):
        F.each_plane(F.gaussian, np.zeros((0, 4, 4)), 2, 1.0)


def test_each_plane_names_what_is_wrong():
    import torchscope.filters as F

    stack = np.random.default_rng(0).random((3, 16, 20))
    with pytest.raises(TypeError, match="function must be callable"):
        F.each_plane("gaussian", stack, 2, 1.0)
    with pytest.raises(ValueError, match="ndim must be 2 or 3"):
        F.each_plane(F.gaussian, stack, 2.0, 1.0)
    with pytest.raises(ValueError, match="the last 2 axes' only"):
        F.each_plane(F.gaussian, stack, 2, 1.0, spacing=(1.0, 0.5, 0.5))
    with pytest.raises(ValueError, match=r"returned shape \(20, 16\)"):
        F.each_plane(lambda p: p.T, stack, 2)  # a plane-changing function was scrambled
    with pytest.raises(ValueError, match=r"returned shape \(\)"):
        F.each_plane(F.threshold_value, stack, 2)

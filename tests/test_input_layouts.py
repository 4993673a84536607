"""Public functions accept the array layouts napari users hand over, with unchanged results.

napari layers and the readers behind them (memory maps of raw or TIFF files, dask chunks, views
of a stack at the current slice, transposed or flipped views, files written on big-endian
machines) give arrays that are read-only, strided, Fortran-ordered, byte-swapped or unaligned,
and images that are uint8/uint16 rather than float. Every test here computes a function once on
an ordinary C-contiguous, writeable, native array and once on the same values in an odd
layout, and asserts that the results agree (to float32 rounding: same dtype, same values) and
that the result's dtype is the one the native input gives.

Everything is tiny: the module runs in a few seconds on one CPU thread.
"""

import dataclasses

import numpy as np
import pytest

import torchscope.filters as F
from torchscope import deblur, ghost, ptycho


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Torch on one thread (see tests/conftest.py): these are many tiny calls."""


# ----------------------------------------------------------------------------------- layouts
#: Every layout; those that mean nothing for a dtype are left out by :func:`layouts_for`.
LAYOUTS = (
    "readonly",     # a.setflags(write=False): napari layer data, np.broadcast_to, memmaps
    "memmap",       # np.memmap(..., mode="r") of a raw file
    "strided",      # big[::2, ::2]: a downsampled view
    "reversed",     # negative strides: a flipped view (torch.from_numpy refuses these)
    "transposed",   # a permuted view of a C-contiguous array (2-D: a.T)
    "fortran",      # np.asfortranarray
    "stack_slice",  # stack[:, k]: a plane of a 3-D stack along its middle axis
    "bigendian",    # a.astype(">f8") etc.: data written on a big-endian machine
    "unaligned",    # data at an odd byte offset in a buffer (file headers of odd length)
    "combined",     # big-endian, read-only, Fortran-ordered stack slice
)


def layouts_for(*dtypes):
    """The layouts that differ from a plain copy for arrays of every one of ``dtypes``."""
    single_byte = any(np.dtype(d).itemsize == 1 for d in dtypes)
    skip = {"bigendian", "unaligned"} if single_byte else set()
    return [name for name in LAYOUTS if name not in skip]


def relayout(a, layout, tmp_path):
    """An array with the values of ``a`` (C-contiguous, native) in ``layout``.

    The dtype is ``a``'s, except for the big-endian layouts (same kind and size, byte order
    ``>``). Memory around a view is filled with other values, so reading the wrong elements
    changes the result.
    """
    a = np.asarray(a)
    assert a.flags.c_contiguous and a.dtype.isnative
    nd = a.ndim
    if layout == "readonly":
        out = a.copy()
        out.setflags(write=False)
    elif layout == "memmap":
        path = tmp_path / f"layout_{len(list(tmp_path.iterdir()))}.raw"
        a.tofile(path)
        out = np.memmap(path, dtype=a.dtype, mode="r", shape=a.shape)
    elif layout == "strided":
        big = np.zeros(tuple(2 * s + 1 for s in a.shape), a.dtype)
        big[...] = np.flip(np.resize(a, big.shape))  # other values between the samples
        out = big[(slice(1, None, 2),) * nd]
        out[...] = a
    elif layout == "reversed":
        out = np.flip(np.flip(a).copy())
    elif layout == "transposed":
        perm = tuple(range(1, nd)) + (0,)  # cyclic: 2-D gives a.T of a C array
        out = np.ascontiguousarray(a.transpose(perm)).transpose(np.argsort(perm))
    elif layout == "fortran":
        out = np.asfortranarray(a)
    elif layout == "stack_slice":
        stack = np.zeros(a.shape[:1] + (3,) + a.shape[1:], a.dtype)
        stack[:, 0] = np.flip(a)
        stack[:, 2] = np.flip(a)
        stack[:, 1] = a
        out = stack[:, 1]
    elif layout == "bigendian":
        out = a.astype(a.dtype.newbyteorder(">"))
    elif layout == "unaligned":
        buf = np.zeros(a.nbytes + 1, np.uint8)
        out = buf[1:].view(a.dtype).reshape(a.shape)
        out[...] = a
    elif layout == "combined":
        big = a.dtype.newbyteorder(">")
        stack = np.zeros(a.shape[:1] + (3,) + a.shape[1:], big, order="F")
        stack[:, 0] = np.flip(a)
        stack[:, 2] = np.flip(a)
        stack[:, 1] = a
        out = stack[:, 1]
        out.setflags(write=False)
    else:
        raise ValueError(layout)
    np.testing.assert_array_equal(out, a)
    return out


def test_layouts_are_what_they_claim(tmp_path):
    a = np.arange(4 * 6 * 5, dtype=np.float64).reshape(4, 6, 5)
    got = {name: relayout(a, name, tmp_path) for name in LAYOUTS}
    assert not got["readonly"].flags.writeable
    assert not got["memmap"].flags.writeable and isinstance(got["memmap"], np.memmap)
    assert not got["combined"].flags.writeable
    for name in ("strided", "reversed", "transposed", "stack_slice", "combined"):
        assert not got[name].flags.c_contiguous and not got[name].flags.f_contiguous, name
    assert any(s < 0 for s in got["reversed"].strides)
    assert got["fortran"].flags.f_contiguous and not got["fortran"].flags.c_contiguous
    assert not got["bigendian"].dtype.isnative and not got["combined"].dtype.isnative
    assert not got["unaligned"].flags.aligned


def _cases(items):
    """``pytest.param`` per tuple in ``items``, with a readable id."""
    return [pytest.param(*item, id="-".join(map(str, item))) for item in items]


# ----------------------------------------------------------------------------------- results
SKIP_FIELDS = {"state", "options", "metadata", "geometry", "scorer"}


def _native(dtype):
    return np.dtype(dtype).newbyteorder("=")


def assert_same(got, want, *, rtol=1e-5, atol=None, what="result"):
    """``got`` (from an odd layout) equals ``want`` (from the plain array): same dtype (up to
    byte order), same shape, values equal to ``rtol`` with ``atol`` relative to the data scale
    (default ``1e-6 * max|want|``); integer and bool results exactly."""
    if dataclasses.is_dataclass(want):
        assert type(got) is type(want), what
        for f in dataclasses.fields(want):
            if f.name not in SKIP_FIELDS:
                assert_same(getattr(got, f.name), getattr(want, f.name), rtol=rtol, atol=atol,
                            what=f"{what}.{f.name}")
        return
    if want is None or isinstance(want, (int, str)):
        assert got == want, what
        return
    if isinstance(want, float):
        assert isinstance(got, float), f"{what}: {type(got).__name__}, expected float"
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    assert _native(got.dtype) == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    if want.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    if atol is None:
        finite = np.abs(want[np.isfinite(want)])
        atol = 1e-6 * (float(finite.max()) if finite.size else 1.0)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)


def _image(dtype, shape=(24, 24), seed=0):
    """A C-contiguous test image with structure: in [0, 1] for floats, the dtype's full range
    for integers."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.arange(n) / max(shape) for n in shape], indexing="ij")
    smooth = 0.5 + 0.3 * np.sin(7 * grids[-2]) * np.cos(5 * grids[-1])
    if len(shape) > 2:
        smooth = smooth * (0.8 + 0.2 * np.cos(3 * grids[0]))
    a = np.clip(smooth + 0.1 * rng.standard_normal(shape), 0, 1)
    if np.dtype(dtype).kind in "iu":
        a = np.round(a * np.iinfo(dtype).max)
    return np.ascontiguousarray(a.astype(dtype))


# ----------------------------------------------------------------------------------- filters
FILTERS = {
    "gaussian": lambda x: F.gaussian(x, 1.5),
    "median": lambda x: F.median(x, 2),
    "erosion": lambda x: F.erosion(x, 2),
    "white_tophat": lambda x: F.white_tophat(x, 2),
    "threshold_otsu": lambda x: F.threshold(x, "otsu"),
}
FILTER_IMAGES = {  # case: (dtype, shape)
    "2d_float64": (np.float64, (24, 20)),
    "3d_float64": (np.float64, (5, 12, 14)),
    "2d_float32": (np.float32, (24, 20)),
    "2d_uint8": (np.uint8, (24, 20)),
    "3d_uint16": (np.uint16, (5, 12, 14)),
}
FILTER_CASES = _cases(
    [(name, case, layout) for name in sorted(FILTERS)
     for case, (dtype, _) in FILTER_IMAGES.items() for layout in layouts_for(dtype)])


@pytest.mark.parametrize("name, case, layout", FILTER_CASES)
def test_filters(name, case, layout, tmp_path):
    dtype, shape = FILTER_IMAGES[case]
    image = _image(dtype, shape)
    want = FILTERS[name](image)
    got = FILTERS[name](relayout(image, layout, tmp_path))
    assert_same(got, want)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("name", ["gaussian", "median", "erosion", "white_tophat"])
def test_filters_on_integer_images_equal_the_float_image(name, dtype):
    """Integer images are filtered without rescaling: as float32 copies of the same values
    (rank filters and morphology keep the integer dtype)."""
    image = _image(dtype, (20, 22), seed=3)
    got = FILTERS[name](image)
    want = FILTERS[name](image.astype(np.float32))
    if name == "gaussian":
        assert got.dtype == np.float32
        assert_same(got, want)
    else:
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want.astype(dtype))


# ------------------------------------------------------------------------------------- ghost
def _ghost_problem(n=32, ratio=0.1875):
    patterns = np.ascontiguousarray(ghost.hadamard_patterns(n, ratio=ratio), dtype=np.float64)
    obj = _image(np.float64, (n, n))
    buckets = ghost.simulate_buckets(obj, patterns, modulation_depth=0.8)
    return obj, patterns, np.ascontiguousarray(np.stack([buckets, 0.5 * buckets[::-1]]))


@pytest.mark.parametrize("layout", layouts_for(np.float64))
def test_ghost_simulate_buckets(layout, tmp_path):
    obj, patterns, _ = _ghost_problem()
    options = {"modulation_depth": 0.8, "mask_error": 0.03, "blur": 0.5, "rng": 0}
    want = ghost.simulate_buckets(obj, patterns, **options)
    got = ghost.simulate_buckets(relayout(obj, layout, tmp_path),
                                 relayout(patterns, layout, tmp_path), **options)
    assert_same(got, want)


@pytest.mark.parametrize("layout", layouts_for(np.float64))
@pytest.mark.parametrize("method", ["pinv", "tv"])
def test_ghost_reconstruct(method, layout, tmp_path):
    _, patterns, buckets = _ghost_problem()
    options = {"iterations": 10} if method == "tv" else {}
    want = ghost.reconstruct(buckets, patterns, method=method, modulation_depth=0.8, **options)
    got = ghost.reconstruct(relayout(buckets, layout, tmp_path),
                            relayout(patterns, layout, tmp_path), method=method,
                            modulation_depth=0.8, **options)
    assert_same(got, want)


# ------------------------------------------------------------------------------------ ptycho
def _ptycho_problem():
    """A 48 x 48 complex128 object, a 16 x 16 probe, 16 sub-pixel positions (float64)."""
    yy, xx = np.mgrid[:48, :48] / 48
    obj = (0.7 + 0.3 * np.cos(5 * yy) * np.sin(3 * xx)) * np.exp(1j * np.sin(4 * xx + 2 * yy))
    probe = ptycho.make_probe(16, diameter_px=9, edge_px=2, quadratic_phase_rad=1.0)
    positions = ptycho.raster_positions(4, 4.0, jitter_px=0.7, rng=1)
    return (np.ascontiguousarray(obj, np.complex128), np.ascontiguousarray(probe, np.complex128),
            np.ascontiguousarray(positions, np.float64))


@pytest.mark.parametrize("layout", layouts_for(np.complex128))
def test_ptycho_simulate(layout, tmp_path):
    obj, probe, positions = _ptycho_problem()
    want = ptycho.simulate(obj, probe, positions)
    got = ptycho.simulate(relayout(obj, layout, tmp_path), relayout(probe, layout, tmp_path),
                          relayout(positions, layout, tmp_path))
    assert_same(got, want)


@pytest.mark.parametrize("layout", _cases([(layout,) for layout in layouts_for(np.complex128)]))
def test_ptycho_reconstruct(layout, tmp_path):
    obj, probe, positions = _ptycho_problem()
    data = ptycho.simulate(obj, probe, positions, photons=1e5, rng=0)
    valid = np.ones(data.patterns.shape[1:], bool)
    valid[0, :] = False
    data = dataclasses.replace(data, mask=valid)
    assert data.patterns.dtype == np.float32 and data.patterns.flags.c_contiguous
    start_obj = np.ascontiguousarray(0.9 * obj)
    start_probe = np.ascontiguousarray(1.1 * probe)
    options = {"iterations": 3, "batch_size": 4, "seed": 0, "position_refinement": "adam",
               "refine_start": 0}
    want = ptycho.reconstruct(data, probe=start_probe, obj=start_obj, **options)
    odd = ptycho.PtychoData(
        patterns=relayout(data.patterns, layout, tmp_path),
        positions_px=relayout(data.positions_px, layout, tmp_path),
        geometry=data.geometry, mask=relayout(valid, layout, tmp_path))
    got = ptycho.reconstruct(odd, probe=relayout(start_probe, layout, tmp_path),
                             obj=relayout(start_obj, layout, tmp_path), **options)
    assert_same(got, want)


@pytest.mark.parametrize("layout", layouts_for(np.complex128))
def test_ptycho_object_error(layout, tmp_path):
    obj, probe, positions = _ptycho_problem()
    reconstructed = np.ascontiguousarray(np.exp(0.3j) * np.roll(obj, 1, axis=1) * 1.2)
    reconstructed += 0.02 * np.random.default_rng(0).standard_normal(obj.shape)
    roi = np.ascontiguousarray(ptycho.lit_region(probe, positions, obj.shape))
    want = ptycho.object_error(reconstructed, obj, roi, upsample=10)
    got = ptycho.object_error(relayout(reconstructed, layout, tmp_path),
                              relayout(obj, layout, tmp_path),
                              relayout(roi, layout, tmp_path), upsample=10)
    assert_same(got, want)


# ------------------------------------------------------------------------------------ deblur
def _kernel():
    return np.ascontiguousarray(deblur.motion_kernel(7, rng=0), np.float64)


DEBLUR_IMAGES = {  # case: (dtype, shape)
    "gray_float64": (np.float64, (40, 36)),
    "gray_float32": (np.float32, (40, 36)),
    "colour_float64": (np.float64, (40, 36, 3)),
    "gray_uint8": (np.uint8, (40, 36)),
    "gray_uint16": (np.uint16, (40, 36)),
    "colour_uint8": (np.uint8, (40, 36, 3)),
}
DEBLUR_CASES = [(case, layout) for case, (dtype, _) in DEBLUR_IMAGES.items()
                for layout in layouts_for(dtype)]


def _deblur_image(case):
    dtype, shape = DEBLUR_IMAGES[case]
    image = _image(np.float64, shape[:2])
    if len(shape) == 3:  # colour: three different channels
        image = np.stack([image, np.flip(image), 1 - image], axis=-1)
    if np.dtype(dtype).kind in "iu":
        image = np.round(image * np.iinfo(dtype).max)
    return np.ascontiguousarray(image.astype(dtype))


@pytest.mark.parametrize("case, layout", _cases(DEBLUR_CASES))
def test_deblur_blur(case, layout, tmp_path):
    image, kernel = _deblur_image(case), _kernel()
    want = deblur.blur(image, kernel, noise_sigma=0.01, rng=0)
    got = deblur.blur(relayout(image, layout, tmp_path), relayout(kernel, layout, tmp_path),
                      noise_sigma=0.01, rng=0)
    assert_same(got, want)


@pytest.mark.parametrize("case, layout", _cases(DEBLUR_CASES))
def test_deblur_deconvolve(case, layout, tmp_path):
    image, kernel = _deblur_image(case), _kernel()
    want = deblur.deconvolve(image, kernel, method="wiener")
    got = deblur.deconvolve(relayout(image, layout, tmp_path),
                            relayout(kernel, layout, tmp_path), method="wiener")
    assert_same(got, want)


@pytest.mark.parametrize("case, layout", DEBLUR_CASES)
def test_deblur_score_regions(case, layout, tmp_path):
    image = _deblur_image(case)
    want = deblur.score_regions(image, size=16, stride=8, scorer="variance")
    got = deblur.score_regions(relayout(image, layout, tmp_path), size=16, stride=8,
                               scorer="variance")
    assert_same(got, want)


@pytest.mark.parametrize("layout", layouts_for(np.float64))
def test_deblur_kernel_similarity(layout, tmp_path):
    k1, k2 = _kernel(), np.ascontiguousarray(deblur.motion_kernel(9, rng=1), np.float64)
    stack = np.ascontiguousarray(np.stack([k1, np.flip(k1), k1.T]))
    want_one = deblur.kernel_similarity(k1, k2)
    want_stack = deblur.kernel_similarity(stack, k1)
    got_one = deblur.kernel_similarity(relayout(k1, layout, tmp_path),
                                       relayout(k2, layout, tmp_path))
    got_stack = deblur.kernel_similarity(relayout(stack, layout, tmp_path),
                                         relayout(k1, layout, tmp_path))
    assert_same(got_one, want_one, what="one kernel")
    assert_same(got_stack, want_stack, what="stack")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_deblur_integer_images_equal_the_float_image(dtype):
    """Integer images: ``blur`` works in the image's units (as a float32 copy of the same
    values); ``deconvolve`` and ``score_regions`` scale by the dtype's maximum, so they equal
    the float image ``image / max`` (``deconvolve``: times ``max``)."""
    image, kernel = _deblur_image("gray_uint8"), _kernel()
    if dtype == np.uint16:
        image = image.astype(np.uint16) * 257  # the same image over uint16's range
    top = float(np.iinfo(dtype).max)
    unit32 = (image / top).astype(np.float32)
    unit64 = image / top
    assert_same(deblur.blur(image, kernel), deblur.blur(image.astype(np.float32), kernel))
    restored = deblur.deconvolve(image, kernel, method="wiener")
    assert restored.dtype == np.float32
    assert_same(restored / top, deblur.deconvolve(unit32, kernel, method="wiener"),
                rtol=1e-4, atol=1e-5)
    assert_same(deblur.score_regions(image, size=16, stride=8, scorer="variance"),
                deblur.score_regions(unit64, size=16, stride=8, scorer="variance"))

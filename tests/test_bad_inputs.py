"""Bad inputs a user could plausibly pass by mistake get a clear error, not a traceback.

The project's promise: a public function given bad input raises ``ValueError`` or
``TypeError`` (or a documented subclass) whose message names the offending argument or the
problem -- never an internal error from torch, numpy or scipy (``RuntimeError``,
``IndexError``, ``ZeroDivisionError``, a numpy message that names no argument, ...), and
never a silent NaN result.

Every case calls one public function on a tiny, otherwise valid problem (the problems of
``tests/test_inputs_unchanged.py``) with one thing wrong: NaN or infinite values, an empty
array, too few or too many dimensions, an image smaller than the kernel, a negative, zero,
infinite or non-integer size, mismatched shapes, complex data where real data are needed, a
string or None where an array is expected. Cases already covered by the per-module tests
(``grep -rn pytest.raises tests/``) are not repeated. Where a function documents that it
accepts an input (nD images for the filters, ``radius=0`` as the identity, an empty stack of
bucket vectors for the direct ghost methods, ``iterations=0`` for ``ptycho.iterate``, an
empty array for ``normalise_slice``), no error is asserted.

Where the library does not keep the promise yet, the case is marked
``xfail(strict=True, raises=...)`` with what happens now; the ``raises`` pins the present
failure, so a case that starts failing differently is reported.

Everything is tiny: the module runs in a few seconds on one CPU thread.
"""

import dataclasses
import functools

import numpy as np
import pytest

import torchscope.filters as F
from torchscope import alzheimer as az
from torchscope import deblur, ghost, ptycho

BAD = (ValueError, TypeError)
#: What ``pytest.raises`` raises when nothing was raised: the xfail of a silent result.
NOT_RAISED = pytest.fail.Exception


# the silent results of the xfail cases warn on the way (NaN arithmetic, a complex cast)
pytestmark = [pytest.mark.filterwarnings("ignore::RuntimeWarning"),
              pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")]


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Torch on one thread (see tests/conftest.py): these are many tiny calls."""


# ----------------------------------------------------------------------------------- helpers
def case(id, call, match, error=BAD, *, xfail=None, raises=None):
    """A ``pytest.param`` for :func:`_expect_error`; ``xfail`` (a reason) marks a known failure
    of the promise, ``raises`` what it raises now (``NOT_RAISED`` for a silent result, an
    ``AssertionError`` for an accepted type whose message does not match)."""
    marks = ()
    if xfail is not None:
        marks = (pytest.mark.xfail(strict=True, reason=xfail, raises=raises),)
    return pytest.param(call, error, match, id=id, marks=marks)


def _expect_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def _with(a, index, value):
    """A copy of ``a`` with one element (flat ``index``) set to ``value``."""
    out = np.array(a, copy=True)
    out.flat[index] = value
    return out


RAGGED = [[0.1, 0.2], [0.3]]  # rows of different lengths: not an array


# ----------------------------------------------------------------------------------- filters
@functools.cache
def _img():
    return np.random.default_rng(0).random((16, 16))


FILTER_CALLS = {
    "gaussian": lambda x: F.gaussian(x, 1.0),
    "difference_of_gaussians": lambda x: F.difference_of_gaussians(x, 1.0, 2.0),
    "laplace": lambda x: F.laplace(x),
    "sobel": lambda x: F.sobel(x),
    "mean": lambda x: F.mean(x, 1),
    "std": lambda x: F.std(x, 1),
    "dilation": lambda x: F.dilation(x, 1),
    "white_tophat": lambda x: F.white_tophat(x, 1),
    "threshold": lambda x: F.threshold(x, "otsu"),
    "threshold_value": lambda x: F.threshold_value(x, "li"),
    "histogram": lambda x: F.histogram(x, 16),
}
# NaN is covered for every filter (tests/filters); infinities for seven of them
INF_ONLY = ["difference_of_gaussians", "laplace", "mean", "std", "dilation", "white_tophat",
            "threshold_value"]
# the rank filters' empty and complex images are covered in tests/filters/test_rank.py
NOT_RANK = ["gaussian", "difference_of_gaussians", "laplace", "sobel", "dilation",
            "white_tophat", "threshold", "threshold_value", "histogram"]

FILTER_CASES = (
    [case(f"{n}-inf", lambda f=FILTER_CALLS[n]: f(_with(_img(), 37, np.inf)), "infinite")
     for n in INF_ONLY]
    + [case(f"{n}-neg_inf", lambda f=FILTER_CALLS[n]: f(_with(_img(), 37, -np.inf)),
            "infinite") for n in INF_ONLY]
    + [case(f"{n}-empty", lambda f=FILTER_CALLS[n]: f(np.zeros((0, 5))), "image is empty")
       for n in NOT_RANK]
    + [case(f"{n}-complex", lambda f=FILTER_CALLS[n]: f(_img() + 1j * _img()),
            "image has dtype complex", TypeError) for n in NOT_RANK]
    + [case(f"{n}-None", lambda f=FILTER_CALLS[n]: f(None), "image has dtype object", TypeError)
       for n in ["gaussian", "sobel", "mean", "dilation", "histogram"]]
    + [case(f"{n}-filename", lambda f=FILTER_CALLS[n]: f("cells.tif"), "image has dtype",
            TypeError) for n in ["gaussian", "laplace", "std", "white_tophat", "threshold"]]
    + [case(f"{n}-scalar", lambda f=FILTER_CALLS[n]: f(np.float64(3.0)), "image must have",
            ValueError) for n in ["gaussian", "sobel", "mean", "dilation", "threshold_value"]]
    + [
        case("gaussian-ragged_list", lambda: F.gaussian(RAGGED, 1.0), "image"),
        # scalar options
        case("gaussian-sigma_inf", lambda: F.gaussian(_img(), np.inf), "sigma", ValueError),
        case("gaussian-sigma_complex", lambda: F.gaussian(_img(), 1j), "sigma", TypeError),
        case("gaussian-sigma_string", lambda: F.gaussian(_img(), "1.5"), "sigma", TypeError),
        case("gaussian-sigma_per_axis_negative", lambda: F.gaussian(_img(), (1.0, -1.0)),
             "sigma", ValueError),
        case("difference_of_gaussians-low_sigma_inf",
             lambda: F.difference_of_gaussians(_img(), np.inf), "low_sigma", ValueError),
        case("difference_of_gaussians-high_sigma_string",
             lambda: F.difference_of_gaussians(_img(), 1.0, "2"), "high_sigma", TypeError),
        case("laplacian_of_gaussian-sigma_negative",
             lambda: F.laplacian_of_gaussian(_img(), -1.0), "sigma", ValueError),
        case("laplacian_of_gaussian-sigma_None",
             lambda: F.laplacian_of_gaussian(_img(), None), "sigma", TypeError),
        case("mean-radius_nan", lambda: F.mean(_img(), np.nan), "radius", ValueError),
        case("std-radius_negative", lambda: F.std(_img(), -3), "radius", ValueError),
        case("sobel-axis_negative_out_of_range", lambda: F.sobel(_img(), axis=-3), "axis",
             ValueError),
        case("sobel-axis_3d_on_2d", lambda: F.sobel(_img(), axis=(0, 1, 2)), "axis"),
        case("histogram-bins_negative", lambda: F.histogram(_img(), -3), "bins", ValueError),
        case("gaussian-spacing_negative", lambda: F.gaussian(_img(), 1.0, spacing=(1.0, -1.0)),
             "spacing", ValueError),
        case("dilation-spacing_nan", lambda: F.dilation(_img(), 2, spacing=(1.0, np.nan)),
             "spacing", ValueError),
        # footprint is public (torchscope.filters.footprint)
        case("footprint-ndim_float", lambda: F.footprint(1, 2.5), "ndim", TypeError),
        case("footprint-ndim_None", lambda: F.footprint(1, None), "ndim", TypeError),
        case("footprint-ndim_negative", lambda: F.footprint(1, -1), "ndim", ValueError),
    ]
)


@pytest.mark.parametrize("call, error, match", FILTER_CASES)
def test_filters(call, error, match):
    _expect_error(call, error, match)


# ------------------------------------------------------------------------------------- ghost
@functools.cache
def _ghost():
    """16 x 16 Hadamard masks at ratio 0.25 (64 patterns), an object, its buckets, a mask."""
    patterns = ghost.hadamard_patterns(16, ratio=0.25)
    obj = np.random.default_rng(1).random((16, 16))
    buckets = ghost.simulate_buckets(obj, patterns)
    return obj, patterns, buckets, obj > 0.5


def _sim(obj=None, patterns=None, **kw):
    o, p, _, _ = _ghost()
    return ghost.simulate_buckets(o if obj is None else obj, p if patterns is None else patterns,
                                  **kw)


def _rec(buckets=None, patterns=None, method="tv", **kw):
    _, p, b, _ = _ghost()
    if method == "tv":
        kw.setdefault("iterations", 5)
    return ghost.reconstruct(b if buckets is None else buckets,
                             p if patterns is None else patterns, method=method, **kw)


DIRECT = ["gi", "dgi", "pinv", "tv"]

GHOST_CASES = [
    # hadamard_patterns: ratio outside (0, 1] (0 and 1.5 are in tests/ghost/test_patterns.py)
    case("hadamard_patterns-ratio_negative", lambda: ghost.hadamard_patterns(16, ratio=-0.5),
         "ratio", ValueError),
    case("hadamard_patterns-ratio_nan", lambda: ghost.hadamard_patterns(16, ratio=np.nan),
         "ratio", ValueError),
    case("hadamard_patterns-ratio_inf", lambda: ghost.hadamard_patterns(16, ratio=np.inf),
         "ratio", ValueError),
    case("hadamard_patterns-ratio_string", lambda: ghost.hadamard_patterns(16, ratio="0.5"),
         "ratio", TypeError),
    case("hadamard_patterns-n_zero", lambda: ghost.hadamard_patterns(0), "n=0", ValueError),
    case("hadamard_patterns-n_negative", lambda: ghost.hadamard_patterns(-8), "n=-8",
         ValueError),
    case("hadamard_patterns-n_None", lambda: ghost.hadamard_patterns(None), "n must",
         TypeError),
    case("hadamard_patterns-n_string", lambda: ghost.hadamard_patterns("16"), "n must",
         TypeError),
    # simulate_buckets: obj
    case("simulate_buckets-obj_nan", lambda: _sim(obj=_with(_ghost()[0], 40, np.nan)), "obj",
         ValueError),
    case("simulate_buckets-obj_inf", lambda: _sim(obj=_with(_ghost()[0], 40, np.inf)), "obj",
         ValueError),
    case("simulate_buckets-obj_1d", lambda: _sim(obj=_ghost()[0].ravel()), "obj", ValueError),
    case("simulate_buckets-obj_complex", lambda: _sim(obj=_ghost()[0] + 0j), "obj has dtype",
         TypeError),
    case("simulate_buckets-obj_None", lambda: _sim(obj=np.array(None)), "obj has dtype",
         TypeError),
    case("simulate_buckets-obj_filename", lambda: _sim(obj="object.tif"), "obj has dtype",
         TypeError),
    case("simulate_buckets-obj_0x0", lambda: _sim(obj=np.zeros((0, 0))), "obj has shape",
         ValueError),
    # simulate_buckets: patterns
    case("simulate_buckets-patterns_nan", lambda: _sim(patterns=_with(_ghost()[1], 5, np.nan)),
         "patterns contains NaN", ValueError),
    case("simulate_buckets-patterns_one_mask_2d", lambda: _sim(patterns=_ghost()[1][0]),
         "patterns has shape", ValueError),
    case("simulate_buckets-patterns_4d", lambda: _sim(patterns=_ghost()[1][None]),
         "patterns has shape", ValueError),
    case("simulate_buckets-patterns_empty", lambda: _sim(patterns=_ghost()[1][:0]),
         "patterns has shape", ValueError),
    case("simulate_buckets-patterns_complex", lambda: _sim(patterns=_ghost()[1] + 0j),
         "patterns has dtype", TypeError),
    case("simulate_buckets-patterns_None", lambda: _sim(patterns=np.array(None)),
         "patterns has dtype", TypeError),
    # simulate_buckets: options
    case("simulate_buckets-modulation_depth_nan", lambda: _sim(modulation_depth=np.nan),
         "modulation_depth", ValueError),
    case("simulate_buckets-blur_negative", lambda: _sim(blur=-1.0), "blur", ValueError),
    case("simulate_buckets-blur_nan", lambda: _sim(blur=np.nan), "blur", ValueError),
    case("simulate_buckets-photons_negative", lambda: _sim(photons=-1), "photons", ValueError),
    case("simulate_buckets-photons_nan", lambda: _sim(photons=np.nan), "photons", ValueError),
    case("simulate_buckets-photons_inf", lambda: _sim(photons=np.inf, rng=0), "photons",
         ValueError),
    case("simulate_buckets-rng_string", lambda: _sim(mask_error=0.03, rng="seed"), "rng"),
    # reconstruct: buckets and patterns
    *[case(f"reconstruct[{m}]-buckets_nan", lambda m=m: _rec(_with(_ghost()[2], 3, np.nan),
                                                              method=m), "buckets", ValueError)
      for m in DIRECT],
    *[case(f"reconstruct[{m}]-buckets_count", lambda m=m: _rec(_ghost()[2][:-1], method=m),
           "one value per pattern", ValueError) for m in ["gi", "tv"]],
    *[case(f"reconstruct[{m}]-patterns_count", lambda m=m: _rec(patterns=_ghost()[1][:-1],
                                                                method=m),
           "one value per pattern", ValueError) for m in ["dgi", "pinv"]],
    case("reconstruct-buckets_inf", lambda: _rec(_with(_ghost()[2], 0, -np.inf)), "buckets",
         ValueError),
    case("reconstruct-buckets_complex", lambda: _rec(_ghost()[2] + 0j), "buckets has dtype",
         TypeError),
    case("reconstruct-buckets_None", lambda: _rec(np.array(None)),
         "buckets has dtype", TypeError),
    case("reconstruct-buckets_scalar", lambda: _rec(np.float64(1.0)), "buckets has shape",
         ValueError),
    case("reconstruct-buckets_ragged_list", lambda: _rec(RAGGED, method="gi"), "buckets"),
    case("reconstruct-both_empty", lambda: _rec(_ghost()[2][:0], _ghost()[1][:0]),
         "patterns has shape", ValueError),
    case("reconstruct-patterns_nan", lambda: _rec(patterns=_with(_ghost()[1], 9, np.inf),
                                                  method="pinv"),
         "patterns contains NaN", ValueError),
    case("reconstruct-patterns_flattened_2d",
         lambda: _rec(patterns=_ghost()[1].reshape(64, -1), method="gi"),
         "patterns has shape", ValueError),
    case("reconstruct-patterns_complex", lambda: _rec(patterns=_ghost()[1] + 0j),
         "patterns has dtype", TypeError),
    case("reconstruct-patterns_string", lambda: _rec(patterns="masks.tif"),
         "patterns has dtype", TypeError),
    *[case(f"reconstruct[{m}]-patterns_all_zero",
           lambda m=m: _rec(patterns=np.zeros_like(_ghost()[1]), method=m), "patterns",
           ValueError) for m in ["pinv", "tv"]],
    # reconstruct: options
    case("reconstruct-iterations_zero", lambda: _rec(iterations=0), "iterations", ValueError),
    case("reconstruct-iterations_negative", lambda: _rec(iterations=-5), "iterations",
         ValueError),
    case("reconstruct-modulation_depth_negative",
         lambda: _rec(method="pinv", modulation_depth=-0.5), "modulation_depth", ValueError),
    case("reconstruct-lam_nan", lambda: _rec(lam=np.nan), "lam", ValueError),
    case("reconstruct-rcond_negative",
         lambda: _rec(method="pinv", basis="general", rcond=-1.0), "rcond", ValueError),
    case("reconstruct-method_None", lambda: _rec(method=None), "method", ValueError),
    # cnr
    case("cnr-image_nan", lambda: ghost.cnr(_with(_ghost()[0], 7, np.nan), _ghost()[3]),
         "image", ValueError),
    case("cnr-image_inf", lambda: ghost.cnr(_with(_ghost()[0], 7, np.inf), _ghost()[3]),
         "image", ValueError),
    case("cnr-image_complex", lambda: ghost.cnr(_ghost()[0] + 1j, _ghost()[3]), "image",
         TypeError),
    case("cnr-image_1d", lambda: ghost.cnr(_ghost()[0].ravel(), _ghost()[3].ravel()),
         "image has shape", ValueError),
    case("cnr-image_None", lambda: ghost.cnr(None, _ghost()[3]), "image has shape",
         ValueError),
    case("cnr-image_filename", lambda: ghost.cnr("scan.tif", _ghost()[3]), "image"),
    case("cnr-object_mask_shape", lambda: ghost.cnr(_ghost()[0], _ghost()[3][:8]),
         "object_mask", ValueError),
    case("cnr-background_mask_shape",
         lambda: ghost.cnr(_ghost()[0], _ghost()[3], background_mask=_ghost()[3][:, :8]),
         "background_mask", ValueError),
    case("cnr-background_mask_float",
         lambda: ghost.cnr(_ghost()[0], _ghost()[3], background_mask=np.ones((16, 16))),
         "background_mask must be a bool", TypeError),
    case("cnr-object_mask_None", lambda: ghost.cnr(_ghost()[0], None), "object_mask",
         TypeError),
    case("cnr-image_empty", lambda: ghost.cnr(np.zeros((0, 0)), np.zeros((0, 0), bool)),
         "select at least one pixel", ValueError),
]


@pytest.mark.parametrize("call, error, match", GHOST_CASES)
def test_ghost(call, error, match):
    _expect_error(call, error, match)


def test_ghost_reconstruct_tv_of_an_empty_stack_is_like_the_direct_methods():
    buckets = _ghost()[2]
    empty = np.zeros((0, buckets.size))
    for method in ("gi", "dgi", "pinv"):  # documented stacks (..., M): an empty one is empty
        assert _rec(empty, method=method).shape == (0, 16, 16)
    try:
        image = _rec(empty, method="tv")
    except ValueError as e:  # refusing it is fine too, if the message says why
        assert "buckets" in str(e)
    else:
        assert image.shape == (0, 16, 16)


def test_ghost_cnr_of_a_constant_image_is_not_nan():
    _, _, _, mask = _ghost()
    try:
        value = ghost.cnr(np.full((16, 16), 0.5), mask)
    except ValueError as e:
        assert "image" in str(e)
    else:
        assert not np.isnan(value), "cnr of a constant image is nan"


# ------------------------------------------------------------------------------------ ptycho
@functools.cache
def _ptycho():
    """A 48 x 48 complex object, a 16 x 16 probe, a 4 x 4 raster scan and its data set."""
    yy, xx = np.mgrid[:48, :48] / 48
    obj = (0.7 + 0.3 * np.cos(5 * yy) * np.sin(3 * xx)) * np.exp(1j * np.sin(4 * xx + 2 * yy))
    probe = ptycho.make_probe(16, diameter_px=9, edge_px=2)
    positions = ptycho.raster_positions(4, 4.0)
    data = ptycho.simulate(obj, probe, positions, photons=1e5, rng=0)
    roi = ptycho.lit_region(probe, positions, obj.shape)
    return obj, probe, positions, data, roi


def _simulate(obj=None, probe=None, positions=None, **kw):
    o, p, pos, _, _ = _ptycho()
    return ptycho.simulate(o if obj is None else obj, p if probe is None else probe,
                           pos if positions is None else positions, **kw)


def _data(**fields):
    """A PtychoData built from the valid one with ``fields`` replaced."""
    d = _ptycho()[3]
    kw = {"patterns": d.patterns, "positions_px": d.positions_px, "geometry": d.geometry}
    kw.update(fields)
    return ptycho.PtychoData(**kw)


def _recon(data=None, **kw):
    kw.setdefault("iterations", 1)
    return ptycho.reconstruct(_ptycho()[3] if data is None else data, **kw)


def _bad_data(**fields):
    """The valid data set with ``fields`` replaced, bypassing ``__post_init__`` (as a caller
    editing a PtychoData in place would)."""
    d = dataclasses.replace(_ptycho()[3])
    for name, value in fields.items():
        object.__setattr__(d, name, value)
    return d


def _nan_patterns():
    return _with(_ptycho()[3].patterns, 7 * 256 + 8 * 16 + 8, np.nan)


def _oe(reconstructed=None, truth=None, roi=None, **kw):
    o = _ptycho()[0]
    kw.setdefault("upsample", 10)
    return ptycho.object_error(o if reconstructed is None else reconstructed,
                               o if truth is None else truth, roi, **kw)


def _reg(reference=None, moving=None, **kw):
    rng = np.random.default_rng(2)
    ref = rng.random((20, 20))
    mov = np.roll(ref, 2, axis=0)
    return ptycho.register_subpixel(ref if reference is None else reference,
                                    mov if moving is None else moving, **kw)


PTYCHO_CASES = [
    # make_probe
    case("make_probe-shape_zero", lambda: ptycho.make_probe(0), "shape", ValueError),
    case("make_probe-shape_None", lambda: ptycho.make_probe(None), "shape"),
    case("make_probe-shape_string", lambda: ptycho.make_probe("16"), "shape"),
    case("make_probe-shape_float", lambda: ptycho.make_probe(16.5), "shape"),
    case("make_probe-shape_3d", lambda: ptycho.make_probe((16, 16, 16)), "shape"),
    case("make_probe-diameter_zero", lambda: ptycho.make_probe(16, diameter_px=0),
         "diameter_px", ValueError),
    case("make_probe-diameter_inf", lambda: ptycho.make_probe(16, diameter_px=np.inf),
         "diameter_px", ValueError),
    case("make_probe-edge_negative", lambda: ptycho.make_probe(16, edge_px=-1), "edge_px",
         ValueError),
    case("make_probe-quadratic_phase_nan",
         lambda: ptycho.make_probe(16, quadratic_phase_rad=np.nan), "quadratic_phase_rad",
         ValueError),
    case("make_probe-stop_fraction_negative",
         lambda: ptycho.make_probe(16, kind="zone_plate", stop_fraction=-0.1), "stop_fraction",
         ValueError),
    case("make_probe-modes_negative", lambda: ptycho.make_probe(16, modes=-1), "modes",
         ValueError),
    case("make_probe-modes_float", lambda: ptycho.make_probe(16, modes=1.5), "modes"),
    case("make_probe-occupancies_too_few",
         lambda: ptycho.make_probe(16, modes=2, occupancies=(1.0,)), "occupancies", ValueError),
    case("make_probe-occupancies_nan",
         lambda: ptycho.make_probe(16, modes=2, occupancies=(1.0, np.nan)), "occupancies",
         ValueError),
    # raster_positions
    case("raster_positions-grid_negative", lambda: ptycho.raster_positions(-1, 4.0), "grid"),
    case("raster_positions-grid_float", lambda: ptycho.raster_positions(2.5, 4.0), "grid"),
    case("raster_positions-grid_None", lambda: ptycho.raster_positions(None, 4.0), "grid"),
    case("raster_positions-grid_3_axes", lambda: ptycho.raster_positions((2, 2, 2), 4.0),
         "grid"),
    case("raster_positions-step_zero", lambda: ptycho.raster_positions(3, 0.0), "step_px"),
    case("raster_positions-step_nan", lambda: ptycho.raster_positions(3, np.nan), "step_px"),
    case("raster_positions-step_inf", lambda: ptycho.raster_positions(3, np.inf), "step_px"),
    case("raster_positions-step_string", lambda: ptycho.raster_positions(3, "4"), "step_px"),
    case("raster_positions-jitter_nan",
         lambda: ptycho.raster_positions(3, 4.0, jitter_px=np.nan), "jitter_px"),
    case("raster_positions-rng_string",
         lambda: ptycho.raster_positions(3, 4.0, jitter_px=1.0, rng="seed"), "rng"),
    # simulate
    case("simulate-obj_nan", lambda: _simulate(obj=_with(_ptycho()[0], 100, np.nan)),
         "obj holds NaN", ValueError),
    case("simulate-obj_inf", lambda: _simulate(obj=_with(_ptycho()[0], 100, np.inf)),
         "obj holds NaN", ValueError),
    case("simulate-obj_1d", lambda: _simulate(obj=_ptycho()[0].ravel()), "obj must be a 2-D",
         ValueError),
    case("simulate-obj_None", lambda: _simulate(obj=np.array(None)), "obj", TypeError),
    case("simulate-obj_string", lambda: _simulate(obj="object.tif"), "obj", TypeError),
    case("simulate-obj_empty", lambda: _simulate(obj=np.zeros((0, 0), complex)),
         "0x0 object", ValueError),
    case("simulate-obj_smaller_than_probe",
         lambda: _simulate(obj=_ptycho()[0][:8, :8], positions=[[0.0, 0.0]]), "8x8 object",
         ValueError),
    case("simulate-probe_1d", lambda: _simulate(probe=_ptycho()[1].ravel()), "probe",
         ValueError),
    case("simulate-probe_4d", lambda: _simulate(probe=_ptycho()[1][None, None]), "probe",
         ValueError),
    case("simulate-probe_no_modes", lambda: _simulate(probe=np.zeros((0, 16, 16), complex)),
         "probe", ValueError),
    case("simulate-probe_inf", lambda: _simulate(probe=_with(_ptycho()[1], 5, np.inf)),
         "probe holds NaN", ValueError),
    case("simulate-probe_zero", lambda: _simulate(probe=np.zeros((16, 16), complex)),
         "probe is zero", ValueError),
    case("simulate-probe_None", lambda: _simulate(probe=np.array(None)), "probe", TypeError),
    case("simulate-positions_nan", lambda: _simulate(positions=_with(_ptycho()[2], 3, np.nan)),
         "positions holds NaN", ValueError),
    case("simulate-positions_inf", lambda: _simulate(positions=_with(_ptycho()[2], 3, np.inf)),
         "positions holds NaN", ValueError),
    case("simulate-positions_empty", lambda: _simulate(positions=np.zeros((0, 2))),
         "positions must be", ValueError),
    case("simulate-positions_3_columns", lambda: _simulate(positions=np.zeros((4, 3))),
         "positions must be", ValueError),
    case("simulate-positions_complex", lambda: _simulate(positions=_ptycho()[2] + 0j),
         "positions", TypeError),
    case("simulate-positions_None", lambda: _simulate(positions=np.array(None)), "positions"),
    case("simulate-positions_ragged_list",
         lambda: _simulate(positions=[[0.0, 0.0], [1.0]]), "positions"),
    case("simulate-photons_nan", lambda: _simulate(photons=np.nan), "photons", ValueError),
    case("simulate-photons_inf", lambda: _simulate(photons=np.inf), "photons", ValueError),
    case("simulate-geometry_string", lambda: _simulate(geometry="TwinMic"), "geometry",
         TypeError),
    case("simulate-rng_string", lambda: _simulate(photons=1e4, rng="seed"), "rng"),
    # PtychoData
    case("PtychoData-positions_count", lambda: _data(positions_px=_ptycho()[2][:-1]),
         "positions_px", ValueError),
    case("PtychoData-patterns_one_pattern_2d", lambda: _data(patterns=_ptycho()[3].patterns[0]),
         "patterns must be", ValueError),
    case("PtychoData-patterns_4d", lambda: _data(patterns=_ptycho()[3].patterns[None]),
         "patterns must be", ValueError),
    case("PtychoData-patterns_None", lambda: _data(patterns=None), "patterns", ValueError),
    case("PtychoData-positions_3_columns",
         lambda: _data(positions_px=np.zeros((16, 3))), "positions_px", ValueError),
    case("PtychoData-mask_shape", lambda: _data(mask=np.ones((8, 8), bool)), "mask",
         ValueError),
    case("PtychoData-geometry_None", lambda: _data(geometry=None), "geometry", TypeError),
    case("PtychoData-geometry_detector_shape",
         lambda: _data(geometry=ptycho.Geometry(energy_ev=700.0, detector_shape=(32, 32))),
         "detector_shape", ValueError),
    case("PtychoData-patterns_nan", lambda: _data(patterns=_nan_patterns()), "patterns",
         ValueError),
    case("PtychoData-patterns_complex",
         lambda: _data(patterns=_ptycho()[3].patterns.astype(np.complex64)), "patterns",
         TypeError),
    case("PtychoData-positions_nan",
         lambda: _data(positions_px=_with(_ptycho()[2], 3, np.nan)), "positions_px",
         ValueError),
    case("PtychoData-positions_strings",
         lambda: _data(positions_px=np.array([["a", "b"]] * 16)), "positions_px"),
    case("PtychoData-no_patterns",
         lambda: _data(patterns=_ptycho()[3].patterns[:0], positions_px=_ptycho()[2][:0]),
         "patterns", ValueError),
    # reconstruct
    case("reconstruct-iterations_zero", lambda: _recon(iterations=0), "iterations",
         ValueError),
    case("reconstruct-iterations_negative", lambda: _recon(iterations=-3), "iterations",
         ValueError),
    case("reconstruct-iterations_float", lambda: _recon(iterations=2.5), "iterations"),
    case("reconstruct-iterations_string", lambda: _recon(iterations="3"), "iterations"),
    case("reconstruct-iterations_None", lambda: _recon(iterations=None), "iterations"),
    case("reconstruct-probe_size", lambda: _recon(probe=ptycho.make_probe(24)),
         "probe has shape", ValueError),
    case("reconstruct-probe_1d", lambda: _recon(probe=_ptycho()[1].ravel()), "probe",
         ValueError),
    case("reconstruct-probe_nan", lambda: _recon(probe=_with(_ptycho()[1], 3, np.nan)),
         "probe holds NaN", ValueError),
    case("reconstruct-probe_zero", lambda: _recon(probe=np.zeros((16, 16), complex)),
         "probe is zero", ValueError),
    case("reconstruct-probe_string", lambda: _recon(probe="disk"), "probe", TypeError),
    case("reconstruct-obj_1d", lambda: _recon(obj=np.ones(48 * 48, complex)), "obj",
         ValueError),
    case("reconstruct-obj_too_small", lambda: _recon(obj=np.ones((8, 8), complex)),
         "8x8 object", ValueError),
    case("reconstruct-obj_inf", lambda: _recon(obj=np.full((48, 48), np.inf + 0j)),
         "obj holds NaN", ValueError),
    case("reconstruct-obj_string", lambda: _recon(obj="ones"), "obj", TypeError),
    case("reconstruct-obj_shape_1_axis", lambda: _recon(obj_shape=(48,)), "obj_shape",
         ValueError),
    case("reconstruct-obj_shape_negative", lambda: _recon(obj_shape=(-48, 48)), "obj_shape",
         ValueError),
    case("reconstruct-modes_zero", lambda: _recon(modes=0), "modes", ValueError),
    case("reconstruct-engine_None", lambda: _recon(engine=None), "engine", ValueError),
    case("reconstruct-alpha_probe_nan", lambda: _recon(alpha_probe=np.nan), "alpha_probe",
         ValueError),
    case("reconstruct-beta_zero", lambda: _recon(beta=0.0), "beta", ValueError),
    case("reconstruct-refine_start_negative",
         lambda: _recon(position_refinement="adam", refine_start=-1), "refine_start",
         ValueError),
    case("reconstruct-orthogonalize_every_zero", lambda: _recon(orthogonalize_every=0),
         "orthogonalize_every", ValueError),
    case("reconstruct-start_string", lambda: _recon(start="last"), "start", TypeError),
    case("reconstruct-data_filename", lambda: ptycho.reconstruct("scan.cxi", iterations=1),
         "data", TypeError),
    case("reconstruct-unknown_option", lambda: _recon(learning_rate=0.1), "learning_rate",
         TypeError),
    case("reconstruct-patterns_nan_default_probe",
         lambda: _recon(_bad_data(patterns=_nan_patterns())), "patterns", ValueError),
    case("reconstruct-patterns_nan_given_probe",
         lambda: _recon(_bad_data(patterns=_nan_patterns()), probe=_ptycho()[1], batch_size=4),
         "patterns", ValueError),
    case("reconstruct-positions_nan",
         lambda: _recon(_bad_data(positions_px=_with(_ptycho()[2], 3, np.nan)),
                        probe=_ptycho()[1]),
         "positions", ValueError),
    case("reconstruct-no_patterns_given_probe",
         lambda: _recon(_bad_data(patterns=_ptycho()[3].patterns[:0],
                                  positions_px=_ptycho()[2][:0]),
                        probe=_ptycho()[1], obj_shape=(48, 48)),
         "patterns", ValueError),
    case("reconstruct-mask_selects_nothing",
         lambda: _recon(_bad_data(mask=np.zeros((16, 16), bool)), probe=_ptycho()[1],
                        batch_size=4),
         "mask", ValueError),
    # object_error (roi shape, empty roi and a NaN reconstruction are in test_ptycho_metrics)
    case("object_error-truth_nan", lambda: _oe(truth=_with(_ptycho()[0], 5, np.nan)),
         "truth holds NaN", ValueError),
    case("object_error-reconstructed_inf",
         lambda: _oe(reconstructed=_with(_ptycho()[0], 5, np.inf)), "reconstructed holds NaN",
         ValueError),
    case("object_error-reconstructed_1d", lambda: _oe(reconstructed=_ptycho()[0].ravel()),
         "reconstructed must be a 2-D", ValueError),
    case("object_error-truth_1d", lambda: _oe(truth=_ptycho()[0].ravel()),
         "truth must be a 2-D", ValueError),
    case("object_error-reconstructed_stack", lambda: _oe(reconstructed=_ptycho()[0][None]),
         "reconstructed must be a 2-D", ValueError),
    case("object_error-reconstructed_None", lambda: _oe(reconstructed=np.array(None)),
         "reconstructed", TypeError),
    case("object_error-reconstructed_string", lambda: _oe(reconstructed="object.npy"),
         "reconstructed", TypeError),
    case("object_error-roi_string", lambda: _oe(roi="lit"), "roi", ValueError),
    case("object_error-reconstructed_empty",
         lambda: _oe(reconstructed=np.zeros((0, 0), complex)), "reconstructed", ValueError),
    case("object_error-truth_all_zero", lambda: _oe(truth=np.zeros((48, 48), complex)),
         "truth", ValueError),
    case("object_error-upsample_zero", lambda: _oe(upsample=0), "upsample", ValueError),
    case("object_error-upsample_negative", lambda: _oe(upsample=-1), "upsample", ValueError),
    case("object_error-upsample_float", lambda: _oe(upsample=2.5), "upsample"),
    case("object_error-upsample_None", lambda: _oe(upsample=None), "upsample", TypeError),
    # lit_region (fraction is in test_ptycho_metrics)
    case("lit_region-shape_1_axis",
         lambda: ptycho.lit_region(_ptycho()[1], _ptycho()[2], (48,)), "shape", ValueError),
    case("lit_region-positions_1_column",
         lambda: ptycho.lit_region(_ptycho()[1], _ptycho()[2][:, :1], (48, 48)), "positions",
         ValueError),
    # register_subpixel
    case("register_subpixel-shape_mismatch", lambda: _reg(moving=np.zeros((10, 20))),
         "same image shape", ValueError),
    case("register_subpixel-batch_mismatch",
         lambda: _reg(np.zeros((3, 20, 20)), np.zeros((2, 20, 20))), "do not broadcast",
         ValueError),
    case("register_subpixel-reference_nan",
         lambda: _reg(reference=_with(np.ones((20, 20)), 7, np.nan)), "reference holds NaN",
         ValueError),
    case("register_subpixel-moving_inf",
         lambda: _reg(moving=_with(np.ones((20, 20)), 7, np.inf)), "moving holds NaN",
         ValueError),
    case("register_subpixel-nan_fourier",
         lambda: _reg(reference=_with(np.ones((20, 20)), 7, np.nan), space="fourier"),
         "reference holds NaN", ValueError),
    case("register_subpixel-1d", lambda: _reg(np.ones(400), np.ones(400)), "reference must be",
         ValueError),
    case("register_subpixel-empty", lambda: _reg(np.zeros((0, 0)), np.zeros((0, 0))),
         "reference must be", ValueError),
    case("register_subpixel-reference_None", lambda: _reg(reference=np.array(None)),
         "reference"),
    case("register_subpixel-strings", lambda: _reg(np.array([["a"]]), np.array([["b"]])),
         "reference has dtype", TypeError),
    case("register_subpixel-upsample_zero", lambda: _reg(upsample=0), "upsample", ValueError),
    case("register_subpixel-upsample_float", lambda: _reg(upsample=1.5), "upsample"),
    case("register_subpixel-normalization_string_none",
         lambda: _reg(normalization="none"), "normalization", ValueError),
    case("register_subpixel-space", lambda: _reg(space="k"), "space", ValueError),
]


@pytest.mark.parametrize("call, error, match", PTYCHO_CASES)
def test_ptycho(call, error, match):
    _expect_error(call, error, match)


# ------------------------------------------------------------------------------------ deblur
@functools.cache
def _deblur():
    """A 7 x 7 motion kernel and a 64 x 64 image blurred by it."""
    kernel = deblur.motion_kernel(7, rng=0)
    image = deblur.blur(np.random.default_rng(3).random((64, 64)), kernel)
    return image, kernel


def _dimg():
    return _deblur()[0]


def _k():
    return _deblur()[1]


def _a40(seed=4):
    return np.random.default_rng(seed).random((40, 40))


def _er(restored=None, true=None, sharp=None, **kw):
    kw.setdefault("max_shift", 3)
    return deblur.error_ratio(_a40() if restored is None else restored,
                              _a40(5) if true is None else true,
                              _a40(6) if sharp is None else sharp, **kw)


TINY = np.random.default_rng(7).random((3, 3))
BOX31 = np.ones((31, 31)) / 31**2

DEBLUR_CASES = [
    # motion_kernel (10, 1, 257, 11.0 and True are in tests/deblur/test_motion.py)
    case("motion_kernel-size_zero", lambda: deblur.motion_kernel(0), "size", ValueError),
    case("motion_kernel-size_negative", lambda: deblur.motion_kernel(-3), "size", ValueError),
    case("motion_kernel-size_None", lambda: deblur.motion_kernel(None), "size", TypeError),
    case("motion_kernel-size_string", lambda: deblur.motion_kernel("7"), "size", TypeError),
    case("motion_kernel-rng_string", lambda: deblur.motion_kernel(7, rng="seed"), "rng"),
    # blur
    case("blur-image_nan", lambda: deblur.blur(_with(_dimg(), 9, np.nan), _k()),
         "image contains NaN", ValueError),
    case("blur-image_inf", lambda: deblur.blur(_with(_dimg(), 9, np.inf), _k()),
         "image contains NaN", ValueError),
    case("blur-image_empty", lambda: deblur.blur(np.zeros((0, 5)), _k()), "image is empty",
         ValueError),
    case("blur-image_1d", lambda: deblur.blur(_dimg().ravel(), _k()), "image has shape",
         ValueError),
    case("blur-image_4d", lambda: deblur.blur(np.zeros((2, 20, 20, 3)), _k()),
         "image has shape", ValueError),
    case("blur-image_complex", lambda: deblur.blur(_dimg() + 0j, _k()), "image has dtype",
         TypeError),
    case("blur-image_None", lambda: deblur.blur(None, _k()), "image has dtype", TypeError),
    case("blur-image_filename", lambda: deblur.blur("photo.png", _k()), "image has dtype",
         TypeError),
    case("blur-image_ragged_list", lambda: deblur.blur(RAGGED, _k()), "image"),
    case("blur-kernel_nan", lambda: deblur.blur(_dimg(), _with(_k(), 3, np.nan)),
         "kernel contains NaN", ValueError),
    case("blur-kernel_1d", lambda: deblur.blur(_dimg(), np.ones(5) / 5), "kernel has shape",
         ValueError),
    case("blur-kernel_3d", lambda: deblur.blur(_dimg(), _k()[None]), "kernel has shape",
         ValueError),
    case("blur-kernel_empty", lambda: deblur.blur(_dimg(), np.zeros((0, 3))),
         "kernel is empty", ValueError),
    case("blur-kernel_complex", lambda: deblur.blur(_dimg(), _k() + 0j), "kernel has dtype",
         TypeError),
    case("blur-kernel_None", lambda: deblur.blur(_dimg(), None), "kernel has dtype",
         TypeError),
    case("blur-kernel_larger_than_image", lambda: deblur.blur(TINY, BOX31), "kernel",
         ValueError),
    case("blur-kernel_larger_than_image_valid", lambda: deblur.blur(TINY, BOX31, mode="valid"),
         "kernel", ValueError),
    case("blur-kernel_larger_than_image_wrap", lambda: deblur.blur(TINY, BOX31, mode="wrap"),
         "kernel", ValueError),
    case("blur-noise_sigma_nan", lambda: deblur.blur(_dimg(), _k(), noise_sigma=np.nan),
         "noise_sigma", ValueError),
    case("blur-noise_sigma_inf", lambda: deblur.blur(_dimg(), _k(), noise_sigma=np.inf, rng=0),
         "noise_sigma", ValueError),
    case("blur-colour_4_channels", lambda: deblur.blur(np.zeros((16, 16, 4)), _k()),
         "image has shape", ValueError),
    # kernel_similarity (different stack lengths and all-zero kernels are in test_deblur_metrics)
    case("kernel_similarity-k1_nan", lambda: deblur.kernel_similarity(_with(_k(), 3, np.nan),
                                                                       _k()),
         "k1 contains NaN", ValueError),
    case("kernel_similarity-k2_inf", lambda: deblur.kernel_similarity(_k(),
                                                                       _with(_k(), 3, np.inf)),
         "k2 contains NaN", ValueError),
    case("kernel_similarity-k1_1d", lambda: deblur.kernel_similarity(np.ones(5), _k()),
         "k1 has shape", ValueError),
    case("kernel_similarity-k1_4d", lambda: deblur.kernel_similarity(_k()[None, None], _k()),
         "k1 has shape", ValueError),
    case("kernel_similarity-k2_empty", lambda: deblur.kernel_similarity(_k(), np.zeros((0, 3))),
         "k2 is empty", ValueError),
    case("kernel_similarity-k1_empty_stack",
         lambda: deblur.kernel_similarity(np.zeros((0, 7, 7)), _k()), "k1 is empty",
         ValueError),
    case("kernel_similarity-k1_complex", lambda: deblur.kernel_similarity(_k() + 0j, _k()),
         "k1 has dtype", TypeError),
    case("kernel_similarity-k2_None", lambda: deblur.kernel_similarity(_k(), None),
         "k2 has dtype", TypeError),
    # error_ratio (shapes, too small for max_shift, step=0.3, a stack are in test_deblur_metrics)
    case("error_ratio-restored_nan", lambda: _er(restored=_with(_a40(), 5, np.nan)),
         "restored contains NaN", ValueError),
    case("error_ratio-true_nan", lambda: _er(true=_with(_a40(), 5, np.nan)),
         "restored_with_true_kernel contains NaN", ValueError),
    case("error_ratio-sharp_inf", lambda: _er(sharp=_with(_a40(), 5, np.inf)),
         "sharp contains NaN", ValueError),
    case("error_ratio-1d", lambda: _er(_a40().ravel(), _a40().ravel(), _a40().ravel()),
         "restored has shape", ValueError),
    case("error_ratio-colour", lambda: _er(np.zeros((40, 40, 3)), np.zeros((40, 40, 3)),
                                           np.zeros((40, 40, 3))),
         "restored has shape", ValueError),
    case("error_ratio-empty", lambda: _er(np.zeros((0, 0)), np.zeros((0, 0)), np.zeros((0, 0)),
                                          max_shift=0),
         "restored is empty", ValueError),
    case("error_ratio-complex", lambda: _er(restored=_a40() + 0j), "restored has dtype",
         TypeError),
    case("error_ratio-sharp_None", lambda: _er(sharp=np.array(None)), "sharp has dtype",
         TypeError),
    case("error_ratio-max_shift_negative", lambda: _er(max_shift=-1), "max_shift", ValueError),
    case("error_ratio-max_shift_float", lambda: _er(max_shift=2.5), "max_shift", TypeError),
    case("error_ratio-step_zero", lambda: _er(step=0), "step", ValueError),
    case("error_ratio-step_negative", lambda: _er(step=-0.25), "step", ValueError),
    case("error_ratio-step_nan", lambda: _er(step=np.nan), "step", ValueError),
    # estimate_kernel (8, 33, "tv", a 4-D stack and iterations=0 of iterate are in test_estimate)
    case("estimate_kernel-3x3_image_kernel_31", lambda: deblur.estimate_kernel(TINY, 31),
         "too small", ValueError),
    case("estimate_kernel-image_nan", lambda: deblur.estimate_kernel(_with(_dimg(), 9, np.nan),
                                                                     7),
         "image contains NaN", ValueError),
    case("estimate_kernel-image_inf", lambda: deblur.estimate_kernel(_with(_dimg(), 9, np.inf),
                                                                     7),
         "image contains NaN", ValueError),
    case("estimate_kernel-image_empty", lambda: deblur.estimate_kernel(np.zeros((0, 64)), 7),
         "image is empty", ValueError),
    case("estimate_kernel-no_patches", lambda: deblur.estimate_kernel(np.zeros((0, 64, 64)), 7),
         "image is empty", ValueError),
    case("estimate_kernel-image_1d", lambda: deblur.estimate_kernel(np.zeros(100), 7),
         "image has shape", ValueError),
    case("estimate_kernel-image_complex", lambda: deblur.estimate_kernel(_dimg() + 0j, 7),
         "image has dtype", TypeError),
    case("estimate_kernel-image_None", lambda: deblur.estimate_kernel(None, 7),
         "image has dtype", TypeError),
    case("estimate_kernel-image_filename", lambda: deblur.estimate_kernel("photo.png", 7),
         "image has dtype", TypeError),
    case("estimate_kernel-colour_image", lambda: deblur.estimate_kernel(np.zeros((64, 64, 3)),
                                                                        7),
         "image", ValueError),
    case("estimate_kernel-kernel_size_zero", lambda: deblur.estimate_kernel(_dimg(), 0),
         "kernel_size", ValueError),
    case("estimate_kernel-kernel_size_negative", lambda: deblur.estimate_kernel(_dimg(), -7),
         "kernel_size", ValueError),
    case("estimate_kernel-kernel_size_one", lambda: deblur.estimate_kernel(_dimg(), 1),
         "kernel_size", ValueError),
    case("estimate_kernel-kernel_size_None", lambda: deblur.estimate_kernel(_dimg(), None),
         "kernel_size", TypeError),
    case("estimate_kernel-kernel_size_float", lambda: deblur.estimate_kernel(_dimg(), 7.0),
         "kernel_size", TypeError),
    case("estimate_kernel-iterations_zero",
         lambda: deblur.estimate_kernel(_dimg(), 7, iterations=0), "iterations", ValueError),
    case("estimate_kernel-iterations_negative",
         lambda: deblur.estimate_kernel(_dimg(), 7, iterations=-1), "iterations", ValueError),
    # deconvolve (method, balance, iterations, a 31 x 3 kernel are in test_blur_deconvolve)
    case("deconvolve-3x3_image_kernel_31", lambda: deblur.deconvolve(TINY, BOX31),
         "larger than the image", ValueError),
    case("deconvolve-image_nan", lambda: deblur.deconvolve(_with(_dimg(), 9, np.nan), _k()),
         "image contains NaN", ValueError),
    case("deconvolve-image_inf", lambda: deblur.deconvolve(_with(_dimg(), 9, -np.inf), _k()),
         "image contains NaN", ValueError),
    case("deconvolve-image_empty", lambda: deblur.deconvolve(np.zeros((0, 64)), _k()),
         "image is empty", ValueError),
    case("deconvolve-image_1d", lambda: deblur.deconvolve(np.zeros(100), _k()),
         "image has shape", ValueError),
    case("deconvolve-image_4d", lambda: deblur.deconvolve(np.zeros((2, 64, 64, 3)), _k()),
         "image has shape", ValueError),
    case("deconvolve-image_complex", lambda: deblur.deconvolve(_dimg() + 0j, _k()),
         "image has dtype", TypeError),
    case("deconvolve-image_None", lambda: deblur.deconvolve(None, _k()), "image has dtype",
         TypeError),
    case("deconvolve-kernel_None", lambda: deblur.deconvolve(_dimg(), None), "kernel has dtype",
         TypeError),
    case("deconvolve-kernel_nan", lambda: deblur.deconvolve(_dimg(), _with(_k(), 3, np.nan)),
         "kernel contains NaN", ValueError),
    case("deconvolve-kernel_zero", lambda: deblur.deconvolve(_dimg(), np.zeros((7, 7))),
         "kernel sums to 0", ValueError),
    case("deconvolve-kernel_negative_sum", lambda: deblur.deconvolve(_dimg(), -_k()),
         "kernel sums to", ValueError),
    case("deconvolve-kernel_1d", lambda: deblur.deconvolve(_dimg(), np.ones(5)),
         "kernel has shape", ValueError),
    case("deconvolve-kernel_3d", lambda: deblur.deconvolve(_dimg(), _k()[None]),
         "kernel has shape", ValueError),
    case("deconvolve-kernel_complex", lambda: deblur.deconvolve(_dimg(), _k() + 0j),
         "kernel has dtype", TypeError),
    case("deconvolve-balance_negative", lambda: deblur.deconvolve(_dimg(), _k(), balance=-1),
         "balance", ValueError),
    case("deconvolve-balance_nan", lambda: deblur.deconvolve(_dimg(), _k(), balance=np.nan),
         "balance", ValueError),
    *[case(f"deconvolve[{m}]-balance_inf",
           lambda m=m: deblur.deconvolve(_dimg(), _k(), method=m, balance=np.inf), "balance",
           ValueError) for m in ["hyper_laplacian", "wiener"]],
    case("deconvolve-iterations_negative",
         lambda: deblur.deconvolve(_dimg(), _k(), method="richardson_lucy", iterations=-1),
         "iterations", ValueError),
    case("deconvolve-iterations_float", lambda: deblur.deconvolve(_dimg(), _k(), iterations=2.5),
         "iterations", TypeError),
    *[case(f"deconvolve[{m}]-one_row_image",
           lambda m=m: deblur.deconvolve(np.random.default_rng(8).random((1, 64)),
                                         np.ones((1, 3)), method=m),
           "image", ValueError) for m in ["hyper_laplacian", "wiener"]],
    case("deconvolve-colour_4_channels",
         lambda: deblur.deconvolve(np.zeros((64, 64, 4)), _k()), "image has shape", ValueError),
    # score_regions (size=228 on a 200-px image, scorer, stride=0, weights, rng and a
    # channels-first image are in test_regions)
    case("score_regions-2x2_image_size_228_cnn", lambda: deblur.score_regions(np.zeros((2, 2))),
         "size=228", ValueError),
    case("score_regions-2x2_image_size_228_variance",
         lambda: deblur.score_regions(np.zeros((2, 2)), scorer="variance"), "size=228",
         ValueError),
    case("score_regions-image_nan",
         lambda: deblur.score_regions(_with(_dimg(), 9, np.nan), size=32, scorer="variance"),
         "image contains NaN", ValueError),
    case("score_regions-image_inf",
         lambda: deblur.score_regions(_with(_dimg(), 9, np.inf), size=32, scorer="edges"),
         "image contains NaN", ValueError),
    case("score_regions-image_empty",
         lambda: deblur.score_regions(np.zeros((0, 64)), size=32, scorer="variance"),
         "image is empty", ValueError),
    case("score_regions-image_1d",
         lambda: deblur.score_regions(np.zeros(100), size=32, scorer="variance"),
         "image has shape", ValueError),
    case("score_regions-image_4d",
         lambda: deblur.score_regions(np.zeros((2, 64, 64, 3)), size=32, scorer="variance"),
         "image has shape", ValueError),
    case("score_regions-image_complex",
         lambda: deblur.score_regions(_dimg() + 0j, size=32, scorer="variance"),
         "image has dtype", TypeError),
    case("score_regions-image_None",
         lambda: deblur.score_regions(None, size=32, scorer="variance"), "image has dtype",
         TypeError),
    case("score_regions-size_zero",
         lambda: deblur.score_regions(_dimg(), size=0, scorer="variance"), "size", ValueError),
    case("score_regions-size_negative",
         lambda: deblur.score_regions(_dimg(), size=-32, scorer="variance"), "size",
         ValueError),
    case("score_regions-size_float",
         lambda: deblur.score_regions(_dimg(), size=32.5, scorer="variance"), "size",
         TypeError),
    case("score_regions-size_None",
         lambda: deblur.score_regions(_dimg(), size=None, scorer="variance"), "size",
         TypeError),
    case("score_regions-stride_negative",
         lambda: deblur.score_regions(_dimg(), size=32, stride=-1, scorer="variance"),
         "stride", ValueError),
    case("score_regions-stride_float",
         lambda: deblur.score_regions(_dimg(), size=32, stride=1.5, scorer="variance"),
         "stride", TypeError),
    case("score_regions-scorer_None",
         lambda: deblur.score_regions(_dimg(), size=32, scorer=None), "scorer", ValueError),
    # deblur (region outside/too small/3 values/"best", deconvolution, kernel_size=4 are in
    # test_pipeline)
    case("deblur-3x3_image_kernel_31", lambda: deblur.deblur(TINY, 31, region="whole"),
         "too small for kernel_size=31", ValueError),
    case("deblur-3x3_image_kernel_31_auto", lambda: deblur.deblur(TINY, 31, scorer="variance"),
         "too small for kernel_size=31", ValueError),
    case("deblur-image_nan", lambda: deblur.deblur(_with(_dimg(), 9, np.nan), 7, region="whole"),
         "image contains NaN", ValueError),
    case("deblur-image_inf", lambda: deblur.deblur(_with(_dimg(), 9, np.inf), 7,
                                                   scorer="variance", size=32),
         "image contains NaN", ValueError),
    case("deblur-image_empty", lambda: deblur.deblur(np.zeros((0, 64)), 7, region="whole"),
         "image is empty", ValueError),
    case("deblur-image_1d", lambda: deblur.deblur(np.zeros(100), 7, region="whole"),
         "image has shape", ValueError),
    case("deblur-image_4d", lambda: deblur.deblur(np.zeros((2, 64, 64, 3)), 7, region="whole"),
         "image has shape", ValueError),
    case("deblur-image_complex", lambda: deblur.deblur(_dimg() + 0j, 7, region="whole"),
         "image has dtype", TypeError),
    case("deblur-image_None", lambda: deblur.deblur(None, 7, region="whole"),
         "image has dtype", TypeError),
    case("deblur-kernel_size_zero", lambda: deblur.deblur(_dimg(), 0, region="whole"),
         "kernel_size", ValueError),
    case("deblur-kernel_size_negative", lambda: deblur.deblur(_dimg(), -7, region="whole"),
         "kernel_size", ValueError),
    case("deblur-kernel_size_None", lambda: deblur.deblur(_dimg(), None, region="whole"),
         "kernel_size", TypeError),
    case("deblur-region_negative", lambda: deblur.deblur(_dimg(), 7, region=(-5, 0, 40, 40)),
         "region", ValueError),
    case("deblur-region_zero_height", lambda: deblur.deblur(_dimg(), 7, region=(0, 0, 0, 40)),
         "region", ValueError),
    case("deblur-region_float", lambda: deblur.deblur(_dimg(), 7, region=(0.5, 0, 40, 40)),
         "region", TypeError),
    case("deblur-region_nan", lambda: deblur.deblur(_dimg(), 7, region=(np.nan, 0, 40, 40)),
         "region", TypeError),
    case("deblur-region_None", lambda: deblur.deblur(_dimg(), 7, region=None), "region",
         TypeError),
    # the region size's own message: "kernel_size must ..." would not do
    case("deblur-size_zero", lambda: deblur.deblur(_dimg(), 7, size=0, scorer="variance"),
         r"(?<!kernel_)size must", ValueError),
    case("deblur-size_negative", lambda: deblur.deblur(_dimg(), 7, size=-5, scorer="variance"),
         r"(?<!kernel_)size must", ValueError),
    case("deblur-scorer", lambda: deblur.deblur(_dimg(), 7, scorer="gabor", size=32),
         "scorer", ValueError),
    case("deblur-method", lambda: deblur.deblur(_dimg(), 7, method="tv", region="whole"),
         "method", ValueError),
]


@pytest.mark.parametrize("call, error, match", DEBLUR_CASES)
def test_deblur(call, error, match):
    _expect_error(call, error, match)


# --------------------------------------------------------------------------------- alzheimer
@functools.cache
def _volume():
    return np.random.default_rng(9).random((12, 14, 10)) * 1000


@functools.cache
def _model():
    """The shipped demo model (176 x 208 slices): loads in a fraction of a second."""
    return az.load_model(az.demo_model_path(), device="cpu")


def _slice():
    return np.random.default_rng(10).random(tuple(_model().config["shape"])).astype(np.float32)


def _nan_in_slice_3():
    v = _volume().copy()
    v[4, 5, 3] = np.nan
    return v


ALZHEIMER_CASES = [
    # extract_slice
    case("extract_slice-volume_2d", lambda: az.extract_slice(_volume()[:, :, 0], index=0),
         "volume must be 3-D", ValueError),
    case("extract_slice-volume_1d", lambda: az.extract_slice(_volume().ravel(), axis=0, index=0),
         "volume must be 3-D", ValueError),
    case("extract_slice-volume_4d_not_singleton",
         lambda: az.extract_slice(np.stack([_volume()] * 2, -1), index=3), "volume must be 3-D",
         ValueError),
    case("extract_slice-volume_5d", lambda: az.extract_slice(_volume()[None, ..., None], index=3),
         "volume must be 3-D", ValueError),
    case("extract_slice-volume_None", lambda: az.extract_slice(None, index=3), "volume"),
    case("extract_slice-volume_filename", lambda: az.extract_slice("OAS1_0001.hdr", index=3),
         "volume"),
    case("extract_slice-axis_out_of_range", lambda: az.extract_slice(_volume(), axis=3, index=3),
         "axis", ValueError),
    case("extract_slice-axis_negative", lambda: az.extract_slice(_volume(), axis=-4, index=3),
         "axis", ValueError),
    case("extract_slice-axis_float", lambda: az.extract_slice(_volume(), axis=1.0, index=3),
         "axis", TypeError),
    case("extract_slice-axis_None", lambda: az.extract_slice(_volume(), axis=None, index=3),
         "axis", TypeError),
    case("extract_slice-index_out_of_range", lambda: az.extract_slice(_volume(), index=10),
         "index", ValueError),
    case("extract_slice-index_negative", lambda: az.extract_slice(_volume(), index=-11),
         "index", ValueError),
    case("extract_slice-default_index_small_volume", lambda: az.extract_slice(_volume()),
         "index=105", ValueError),
    case("extract_slice-index_float", lambda: az.extract_slice(_volume(), index=3.5), "index",
         TypeError),
    case("extract_slice-index_string", lambda: az.extract_slice(_volume(), index="3"), "index",
         TypeError),
    case("extract_slice-no_slices", lambda: az.extract_slice(np.zeros((12, 14, 0)), index=0),
         "index", ValueError),
    case("extract_slice-volume_nan", lambda: az.extract_slice(_nan_in_slice_3(), index=3),
         "volume", ValueError),
    case("extract_slice-volume_complex", lambda: az.extract_slice(_volume() + 0j, index=3),
         "volume", TypeError),
    case("extract_slice-volume_empty", lambda: az.extract_slice(np.zeros((0, 14, 10)), index=3),
         "volume", ValueError),
    # normalise_slice (documented for any real array: an empty or 1-D one is accepted)
    case("normalise_slice-nan", lambda: az.normalise_slice(_with(_volume()[:, :, 0], 3, np.nan)),
         "image holds NaN", ValueError),
    case("normalise_slice-inf", lambda: az.normalise_slice(_with(_volume()[:, :, 0], 3, np.inf)),
         "image holds NaN", ValueError),
    case("normalise_slice-neg_inf",
         lambda: az.normalise_slice(_with(_volume()[:, :, 0], 3, -np.inf)), "image holds NaN",
         ValueError),
    case("normalise_slice-complex", lambda: az.normalise_slice(_volume()[:, :, 0] + 1j),
         "image has dtype", TypeError),
    case("normalise_slice-None", lambda: az.normalise_slice(None), "image has dtype",
         TypeError),
    case("normalise_slice-filename", lambda: az.normalise_slice("slice.png"), "image has dtype",
         TypeError),
    case("normalise_slice-ragged_list", lambda: az.normalise_slice(RAGGED), "image"),
    # predict (a wrong slice shape, a non-model are in tests/alzheimer/test_train.py)
    case("predict-slice_nan", lambda: az.predict(_model(), _with(_slice(), 5, np.nan)),
         "slice_or_slices hold NaN", ValueError),
    case("predict-slice_inf", lambda: az.predict(_model(), _with(_slice(), 5, np.inf)),
         "slice_or_slices hold NaN", ValueError),
    case("predict-slice_1d", lambda: az.predict(_model(), _slice().ravel()),
         "slice_or_slices must be", ValueError),
    case("predict-slice_4d", lambda: az.predict(_model(), _slice()[None, None]),
         "slice_or_slices must be", ValueError),
    case("predict-slice_empty_2d", lambda: az.predict(_model(), np.zeros((0, 0))),
         "slice_or_slices are", ValueError),
    case("predict-slice_transposed", lambda: az.predict(_model(), _slice().T),
         "slice_or_slices are", ValueError),
    case("predict-slice_complex", lambda: az.predict(_model(), _slice() + 0j),
         "slice_or_slices must be real", TypeError),
    case("predict-slice_None", lambda: az.predict(_model(), None),
         "slice_or_slices must be real", TypeError),
    case("predict-slice_filename", lambda: az.predict(_model(), "slice.png"),
         "slice_or_slices must be real", TypeError),
    case("predict-model_None", lambda: az.predict(None, _slice()), "model", TypeError),
    case("predict-batch_size_zero", lambda: az.predict(_model(), _slice(), batch_size=0),
         "batch_size", ValueError),
    case("predict-batch_size_negative", lambda: az.predict(_model(), _slice(), batch_size=-1),
         "batch_size", ValueError),
    case("predict-batch_size_float", lambda: az.predict(_model(), _slice(), batch_size=2.5),
         "batch_size"),
    case("predict-batch_size_None", lambda: az.predict(_model(), _slice(), batch_size=None),
         "batch_size"),
]


@pytest.mark.parametrize("call, error, match", ALZHEIMER_CASES)
def test_alzheimer(call, error, match):
    _expect_error(call, error, match)


def test_alzheimer_predict_of_an_empty_stack_is_empty_or_refused():
    empty = np.zeros((0, *_model().config["shape"]), np.float32)
    try:
        p = az.predict(_model(), empty)
    except ValueError as e:
        if "slice_or_slices" not in str(e):
            raise
    else:
        assert isinstance(p, np.ndarray) and p.shape == (0,)

"""CXI and PtyLab files: round trips, files written by hand in each layout, switches, errors.

The hand-written files use h5py directly, not :func:`torchscope.ptycho.save`, and the expected
positions are computed here from the physical constants (scipy.constants), so the reader is
checked against the file conventions, not against its own writer.
"""

import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy import constants

from torchscope.ptycho import Geometry, PtychoData, Result, Snapshot, load, save

ENERGY_EV = 710.0
DISTANCE_M = 0.35
PIXEL_M = 30e-6


def _sample_pixel(shape):
    """lambda z / (N delta_D) per axis, from CODATA constants."""
    wavelength = constants.h * constants.c / (ENERGY_EV * constants.e)
    return np.array([wavelength * DISTANCE_M / (n * PIXEL_M) for n in shape])


@pytest.fixture
def scan(rng):
    """A jittered 4 x 5 raster in pixels (y, x), not centred on zero, and 20 frames of 24 x 32."""
    yy, xx = np.meshgrid(np.arange(4) * 6.0, np.arange(5) * 6.0, indexing="ij")
    positions = (
        np.stack([yy.ravel(), xx.ravel()], axis=1) + rng.uniform(-1, 1, (20, 2)) + [3.0, -7.0]
    )
    patterns = rng.poisson(50, (20, 24, 32)).astype(np.float32)
    return positions, patterns


def _geometry(shape):
    return Geometry(
        energy_ev=ENERGY_EV,
        detector_distance_m=DISTANCE_M,
        detector_pixel_m=PIXEL_M,
        detector_shape=shape,
    )


def _centred(positions):
    return positions - (positions.min(0) + positions.max(0)) / 2


def _write_cxi(
    path, patterns, translation, *, data_at="detector", energy=None, units=None, mask=None
):
    """A CXI file as beamline writers make it (data in the detector group, linked from data_1)."""
    with h5py.File(path, "w") as f:
        f["cxi_version"] = 150
        det = f.create_group("entry_1/instrument_1/detector_1")
        det["data"] = patterns
        det["distance"] = DISTANCE_M
        det["x_pixel_size"] = PIXEL_M
        det["y_pixel_size"] = PIXEL_M
        if mask is not None:
            det["mask"] = mask
        f["entry_1/instrument_1/source_1/energy"] = (
            ENERGY_EV * constants.e if energy is None else energy
        )
        if units:
            f["entry_1/instrument_1/source_1/energy"].attrs["units"] = units
        f["entry_1/sample_1/geometry_1/translation"] = translation
        if data_at == "data_1":
            f["entry_1/data_1/data"] = h5py.SoftLink("/entry_1/instrument_1/detector_1/data")


# --------------------------------------------------------------------------- round trips
def test_data_round_trip(tmp_path, scan, rng):
    positions, patterns = scan
    geometry = _geometry(patterns.shape[1:])
    mask = rng.random(patterns.shape[1:]) > 0.05
    metadata = {"seed": 3, "gain": np.float32(1.5), "frames": np.int64(7)}
    data = PtychoData(patterns, positions, geometry, mask=mask, metadata=metadata)
    path = save(tmp_path / "data.cxi", data)

    back = load(path)
    assert isinstance(back, PtychoData)
    np.testing.assert_array_equal(back.patterns, patterns)
    # The file's zero (the object centre) is kept: positions come back as they were.
    np.testing.assert_allclose(back.positions_px, positions, rtol=1e-12)
    np.testing.assert_array_equal(back.mask, mask)
    assert back.geometry.detector_shape == geometry.detector_shape
    for name in ("energy_ev", "wavelength_m", "detector_distance_m", "detector_pixel_m"):
        assert getattr(back.geometry, name) == pytest.approx(getattr(geometry, name), rel=1e-12)
    assert back.metadata["seed"] == 3 and back.metadata["format"] == "cxi"
    assert (back.metadata["gain"], back.metadata["frames"]) == (1.5, 7)  # numbers, not repr text
    assert not list(tmp_path.glob("*.part"))


def test_data_file_follows_cxi_conventions(tmp_path, scan):
    """What save writes, read with h5py: joules, metres, sample translations (x, y, z)."""
    positions, patterns = scan
    geometry = _geometry(patterns.shape[1:])
    mask = np.ones(patterns.shape[1:], bool)
    mask[3, 4] = False
    save(tmp_path / "data.cxi", PtychoData(patterns, positions, geometry, mask=mask))
    with h5py.File(tmp_path / "data.cxi") as f:
        assert f["entry_1/instrument_1/source_1/energy"][()] == pytest.approx(
            ENERGY_EV * constants.e
        )
        translation = f["entry_1/sample_1/geometry_1/translation"][()]
        np.testing.assert_array_equal(f["entry_1/data_1/data"][()], patterns)
        cxi_mask = f["entry_1/instrument_1/detector_1/mask"][()]
    py, px = _sample_pixel(patterns.shape[1:])
    np.testing.assert_allclose(translation[:, 0], -positions[:, 1] * px, rtol=1e-9)
    np.testing.assert_allclose(translation[:, 1], -positions[:, 0] * py, rtol=1e-9)
    np.testing.assert_array_equal(translation[:, 2], 0)
    assert cxi_mask[3, 4] != 0 and cxi_mask.sum() == cxi_mask[3, 4]  # non-zero = invalid


@pytest.mark.parametrize("with_geometry", [True, False])
def test_result_round_trip(tmp_path, rng, with_geometry):
    obj = (rng.random((50, 60)) * np.exp(1j * rng.random((50, 60)))).astype(np.complex64)
    probe = (rng.random((3, 24, 24)) + 1j * rng.random((3, 24, 24))).astype(np.complex64)
    result = Result(
        iteration=7,
        obj=obj,
        probe_modes=probe,
        positions_px=rng.normal(0, 9, (12, 2)),
        error=0.02,
        occupancies=np.array([0.6, 0.25, 0.15]),
        errors=np.linspace(0.3, 0.02, 7),
        options={"engine": "rpie", "alpha_obj": 0.5},
    )
    geometry = _geometry((24, 24))
    save(tmp_path / "r.cxi", result, geometry=geometry if with_geometry else None)

    back = load(tmp_path / "r.cxi")
    assert isinstance(back, Result)
    np.testing.assert_array_equal(back.obj, obj)
    np.testing.assert_array_equal(back.probe_modes, probe)
    np.testing.assert_array_equal(back.positions_px, result.positions_px)
    np.testing.assert_array_equal(back.errors, result.errors)
    np.testing.assert_array_equal(back.occupancies, result.occupancies)
    assert (back.iteration, back.error, back.options) == (7, 0.02, result.options)
    if with_geometry:  # the refined positions are also CXI translations, readable as such
        with h5py.File(tmp_path / "r.cxi") as f:
            translation = f["entry_1/sample_1/geometry_1/translation"][()]
        py, px = _sample_pixel((24, 24))
        np.testing.assert_allclose(
            translation[:, :2], -result.positions_px[:, ::-1] * [px, py], rtol=1e-9
        )


def test_snapshot_saves_as_result_without_history(tmp_path, rng):
    snap = Snapshot(
        iteration=3,
        obj=np.ones((30, 30), np.complex64),
        probe_modes=np.ones((1, 16, 16), np.complex64),
        positions_px=np.zeros((4, 2)),
        error=0.5,
    )
    save(tmp_path / "s.cxi", snap)
    back = load(tmp_path / "s.cxi")
    assert isinstance(back, Result) and back.iteration == 3 and back.errors.size == 0
    assert back.occupancies is None


# --------------------------------------------------------------------------- CXI by hand
@pytest.mark.parametrize("data_at", ["detector", "data_1"])
def test_hand_written_cxi(tmp_path, scan, data_at):
    positions, patterns = scan
    py, px = _sample_pixel(patterns.shape[1:])
    translation = np.stack([-positions[:, 1] * px, -positions[:, 0] * py, np.zeros(20)], axis=1)
    mask = np.zeros(patterns.shape[1:], np.uint32)
    mask[0, :3] = 0x2  # saturated: a CXI flag other than 'invalid' also excludes the pixel
    _write_cxi(tmp_path / "a.cxi", patterns, translation, data_at=data_at, mask=mask)

    data = load(tmp_path / "a.cxi")
    np.testing.assert_array_equal(data.patterns, patterns)
    assert data.geometry.energy_ev == pytest.approx(ENERGY_EV, rel=1e-12)
    assert data.geometry.sample_pixel_yx_m == pytest.approx((py, px), rel=1e-9)
    # Foreign files: positions from the centre of the scan's bounding box...
    np.testing.assert_allclose(data.positions_px, _centred(positions), rtol=1e-9, atol=1e-9)
    # ...unless the file's zero is asked for.
    np.testing.assert_allclose(
        load(tmp_path / "a.cxi", origin="file").positions_px, positions, rtol=1e-9
    )
    assert data.mask.sum() == mask.size - 3 and not data.mask[0, :3].any()


def test_mask_per_frame_is_reduced(tmp_path, scan):
    _positions, patterns = scan
    mask = np.zeros(patterns.shape, np.uint8)
    mask[3, 5, 6] = 1  # invalid in one frame only: excluded everywhere
    _write_cxi(tmp_path / "m.cxi", patterns, np.zeros((20, 3)), mask=mask)
    valid = load(tmp_path / "m.cxi").mask
    assert valid.shape == patterns.shape[1:] and not valid[5, 6] and valid.sum() == valid.size - 1


def test_position_switches(tmp_path, scan):
    positions, patterns = scan
    py, px = _sample_pixel(patterns.shape[1:])
    # A writer that stores probe positions (y, x) rather than sample translations (x, y).
    probe_yx = np.stack([positions[:, 0] * py, positions[:, 1] * px, np.zeros(20)], axis=1)
    _write_cxi(tmp_path / "b.cxi", patterns, probe_yx)

    def read(**switches):
        return load(tmp_path / "b.cxi", origin="file", **switches).positions_px

    np.testing.assert_allclose(read(position_sign=1, position_order="yx"), positions, rtol=1e-9)
    np.testing.assert_allclose(read(position_order="yx"), -positions, rtol=1e-9)
    swapped = read(position_sign=1)  # x and y exchanged, each scaled by the other axis' pixel
    np.testing.assert_allclose(swapped, positions[:, ::-1] * [px / py, py / px], rtol=1e-9)
    np.testing.assert_allclose(
        read(position_sign=(1, -1), position_order="yx"), positions * [1, -1], rtol=1e-9
    )


def test_translations_written_as_3_by_p_and_raster_data(tmp_path, scan):
    """PyNX writes translations as (3, P); NXcxi_ptycho rasters are (ny, nx, fy, fx)."""
    positions, patterns = scan
    py, px = _sample_pixel(patterns.shape[1:])
    translation = np.stack([-positions[:, 1] * px, -positions[:, 0] * py, np.zeros(20)])
    _write_cxi(tmp_path / "c.cxi", patterns.reshape(4, 5, 24, 32), translation)
    data = load(tmp_path / "c.cxi", origin="file")
    np.testing.assert_array_equal(data.patterns, patterns)
    np.testing.assert_allclose(data.positions_px, positions, rtol=1e-9)


def test_units_attributes_and_fft_shifted_frames(tmp_path, scan):
    positions, patterns = scan
    py, px = _sample_pixel(patterns.shape[1:])
    translation = np.stack([-positions[:, 1] * px, -positions[:, 0] * py, np.zeros(20)], axis=1)
    shifted = np.fft.ifftshift(patterns, axes=(-2, -1))
    _write_cxi(tmp_path / "d.cxi", shifted, translation * 1e6, energy=ENERGY_EV / 1e3, units="keV")
    with h5py.File(tmp_path / "d.cxi", "a") as f:
        f["entry_1/instrument_1/detector_1/data"].attrs["is_fft_shifted"] = True
        f["entry_1/sample_1/geometry_1/translation"].attrs["units"] = "um"
        det = f["entry_1/instrument_1/detector_1"]
        del det["distance"]
        det["distance"] = DISTANCE_M * 1e3
        det["distance"].attrs["units"] = "mm"
    data = load(tmp_path / "d.cxi", origin="file")
    np.testing.assert_array_equal(data.patterns, patterns)
    assert data.geometry.energy_ev == pytest.approx(ENERGY_EV, rel=1e-12)
    assert data.geometry.detector_distance_m == pytest.approx(DISTANCE_M, rel=1e-12)
    np.testing.assert_allclose(data.positions_px, positions, rtol=1e-9)


# --------------------------------------------------------------------------- PtyLab
def _write_ptylab(path, patterns, encoder, *, wavelength, zo, dxd, orientation=None, drop=()):
    """The PtyLab layout: scalars as one-element arrays, encoder (P, 2) = (y, x) in metres."""
    fields = {
        "ptychogram": patterns,
        "encoder": encoder,
        "wavelength": [wavelength],
        "zo": [zo],
        "dxd": [dxd],
        "Nd": [patterns.shape[-1]],
    }
    with h5py.File(path, "w") as f:
        for key, value in fields.items():
            if key not in drop:
                f.create_dataset(key, data=np.asarray(value))
        if orientation is not None:
            f["orientation"] = orientation


def test_hand_written_ptylab(tmp_path, rng):
    patterns = rng.poisson(20, (6, 32, 32)).astype(np.float32)
    wavelength, zo, dxd = 632.8e-9, 0.05, 72e-6
    dxo = wavelength * zo / (32 * dxd)  # PtyLab's dxp = wavelength zo / Ld
    pixel_positions = rng.uniform(-20, 20, (6, 2))
    _write_ptylab(
        tmp_path / "p.h5", patterns, pixel_positions * dxo, wavelength=wavelength, zo=zo, dxd=dxd
    )
    data = load(tmp_path / "p.h5", origin="file")
    assert data.metadata["format"] == "ptylab"
    np.testing.assert_array_equal(data.patterns, patterns)
    np.testing.assert_allclose(data.positions_px, pixel_positions, rtol=1e-9)
    assert data.geometry.sample_pixel_m == pytest.approx(dxo, rel=1e-12)
    np.testing.assert_allclose(
        load(tmp_path / "p.h5").positions_px, _centred(pixel_positions), rtol=1e-9, atol=1e-9
    )


@pytest.mark.parametrize("code", range(8))
def test_ptylab_orientation(tmp_path, rng, code):
    frames = rng.random((2, 8, 8)).astype(np.float32)
    _write_ptylab(
        tmp_path / "o.h5",
        frames,
        np.zeros((2, 2)),
        wavelength=1e-9,
        zo=1.0,
        dxd=1e-4,
        orientation=code,
    )
    expected = frames.transpose(0, 2, 1) if code >= 4 else frames  # ptypy: transpose first,
    if code in (1, 3, 5, 7):
        expected = expected[:, :, ::-1]  # then flip columns
    if code in (2, 3, 6, 7):
        expected = expected[:, ::-1, :]  # and rows
    np.testing.assert_array_equal(load(tmp_path / "o.h5").patterns, expected)


@pytest.mark.slow
def test_file_written_by_ptylab(tmp_path):
    """PtyLab's own simulation file, read by PtyLab and by us: same frames, same patch corners."""
    pytest.importorskip("PtyLab")
    from PtyLab.ExperimentalData.ExperimentalData import ExperimentalData
    from PtyLab.io.generateSimulationData import generate_simu_hdf5
    from PtyLab.Reconstruction.Reconstruction import calculate_pixel_positions

    generate_simu_hdf5(tmp_path / "simu.hdf5")
    theirs = ExperimentalData(tmp_path / "simu.hdf5", operationMode="CPM")
    ours = load(tmp_path / "simu.hdf5", origin="file")
    np.testing.assert_array_equal(ours.patterns, theirs.ptychogram)
    dxo = theirs.wavelength * theirs.zo / theirs.Ld
    assert ours.geometry.sample_pixel_m == pytest.approx(dxo, rel=1e-6)
    no, np_ = 1536, theirs.Nd
    corners = calculate_pixel_positions(theirs.encoder, dxo, no, np_, asint=True)
    # Our positions are the probe centre from the object centre: the patch's upper-left corner
    # in an No x No object is centre + position - Np / 2.
    np.testing.assert_array_equal(np.round(ours.positions_px) + no // 2 - np_ // 2, corners)


# --------------------------------------------------------------------------- errors
def test_missing_file_and_not_hdf5(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load(tmp_path / "absent.cxi")
    (tmp_path / "text.cxi").write_text("not an HDF5 file")
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        load(tmp_path / "text.cxi")


def test_truncated_file(tmp_path, scan):
    positions, patterns = scan
    geometry = _geometry(patterns.shape[1:])
    save(tmp_path / "t.cxi", PtychoData(patterns, positions, geometry))
    content = (tmp_path / "t.cxi").read_bytes()
    (tmp_path / "t.cxi").write_bytes(content[: len(content) // 2])
    with pytest.raises(ValueError, match="t.cxi"):
        load(tmp_path / "t.cxi")


def test_other_hdf5_is_refused(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["images"] = np.zeros((3, 4, 4))
    with pytest.raises(ValueError, match="neither a CXI file .* nor a PtyLab file"):
        load(tmp_path / "other.h5")


@pytest.mark.parametrize(
    "remove, message",
    [
        ("entry_1/sample_1/geometry_1/translation", "no scan positions.*geometry_1/translation"),
        ("entry_1/instrument_1/detector_1/data", "no diffraction data.*detector_1/data"),
        ("entry_1/instrument_1/detector_1/distance", "no detector distance.*detector_1/distance"),
        ("entry_1/instrument_1/source_1/energy", "no photon energy.*source_1/energy"),
    ],
)
def test_incomplete_cxi_names_what_is_missing(tmp_path, scan, remove, message):
    _positions, patterns = scan
    _write_cxi(tmp_path / "e.cxi", patterns, np.zeros((20, 3)))
    with h5py.File(tmp_path / "e.cxi", "a") as f:
        del f[remove]
    with pytest.raises(ValueError, match=message):
        load(tmp_path / "e.cxi")


def test_bad_values_in_cxi(tmp_path, scan):
    _, patterns = scan
    _write_cxi(tmp_path / "w.cxi", patterns, np.zeros((19, 3)))
    with pytest.raises(ValueError, match=r"shape \(19, 3\); expected \(20, 3\)"):
        load(tmp_path / "w.cxi")
    _write_cxi(tmp_path / "ev.cxi", patterns, np.zeros((20, 3)), energy=ENERGY_EV)  # eV, no units
    with pytest.raises(ValueError, match="not in joules"):
        load(tmp_path / "ev.cxi")
    _write_cxi(tmp_path / "c.cxi", patterns.astype(np.complex64), np.zeros((20, 3)))
    with pytest.raises(ValueError, match="complex64, not intensities"):
        load(tmp_path / "c.cxi")


def test_incomplete_ptylab_names_what_is_missing(tmp_path):
    _write_ptylab(
        tmp_path / "m.h5",
        np.zeros((2, 8, 8)),
        np.zeros((2, 2)),
        wavelength=1e-9,
        zo=1.0,
        dxd=1e-4,
        drop=("dxd", "zo"),
    )
    with pytest.raises(ValueError, match="missing: dxd, zo"):
        load(tmp_path / "m.h5")
    _write_ptylab(
        tmp_path / "n.h5",
        np.zeros((2, 8, 8)),
        np.zeros((2, 2)),
        wavelength=1e-9,
        zo=1.0,
        dxd=1e-4,
        drop=("ptychogram",),
    )
    with pytest.raises(ValueError, match="missing: ptychogram"):
        load(tmp_path / "n.h5")


def test_kind_mismatch_and_bad_options(tmp_path, scan):
    _positions, patterns = scan
    _write_cxi(tmp_path / "k.cxi", patterns, np.zeros((20, 3)))
    with pytest.raises(ValueError, match="no reconstruction"):
        load(tmp_path / "k.cxi", kind="result")
    for option, value in [
        ("kind", "everything"),
        ("position_sign", 2),
        ("position_order", "zx"),
        ("origin", "corner"),
    ]:
        with pytest.raises(ValueError, match=option):
            load(tmp_path / "k.cxi", **{option: value})
    with pytest.raises(TypeError, match="PtychoData, Result or Snapshot"):
        save(tmp_path / "x.cxi", patterns)


# --------------------------------------------------------------------------- physics


def test_cxi_file_fits_as_well_as_the_simulation(tmp_path, one_torch_thread):
    """A CXI file in the CXI convention (sample translations x, y, far from zero) reconstructs
    as well as the simulated data it holds; read with x and y swapped, it does not.

    (A flipped sign cannot be seen in the data: far-field patterns do not change when the exit
    waves are conjugated and inverted, so -positions fit with the twin object O*(-r). Only the
    object's orientation tells the sign; hence the explicit ``position_sign``.)
    """
    from scipy import ndimage

    from torchscope.ptycho import make_probe, raster_positions, reconstruct, simulate

    rng = np.random.default_rng(3)
    amp = 0.6 + 0.4 * ndimage.gaussian_filter(rng.random((64, 64)), 2) / 0.6
    phase = 6.0 * (ndimage.gaussian_filter(rng.random((64, 64)), 2) - 0.5)
    probe = make_probe(16, kind="disk", diameter_px=9, quadratic_phase_rad=2.0)
    positions = raster_positions(7, 4, jitter_px=1.0, rng=1)
    simulated = simulate(amp * np.exp(1j * phase), probe, positions, rng=2)
    py, px = _sample_pixel((16, 16))
    stage = np.array([1e-3, 2e-3, 0.0])  # stage coordinates: the scan is far from zero
    translation = np.stack([-positions[:, 1] * px, -positions[:, 0] * py, np.zeros(49)], 1)
    _write_cxi(tmp_path / "scan.cxi", simulated.patterns, translation + stage)

    def misfit(data):
        return reconstruct(data, iterations=60, seed=0, device="cpu").errors[-1]

    reference = misfit(simulated)
    assert misfit(load(tmp_path / "scan.cxi")) < 1.5 * reference
    assert misfit(load(tmp_path / "scan.cxi", position_order="yx")) > 3 * reference


# --------------------------------------------------------------------------- malformed files
# Each file is well formed but for one data set or attribute; load must refuse it with a
# ValueError naming the file and what is wrong there, not let a TypeError, IndexError or
# AttributeError escape from h5py or numpy, nor read it wrongly.
_SOURCE = "entry_1/instrument_1/source_1"
_TRANSLATION = "entry_1/sample_1/geometry_1/translation"
_RESULTS = "entry_1/process_1/results"


def _replace(path, value):
    def edit(f):
        del f[path]
        f[path] = value

    return edit


def _make_group(path):
    def edit(f):
        del f[path]
        f.create_group(path)

    return edit


def _set_attr(path, name, value):
    def edit(f):
        f[path].attrs[name] = value

    return edit


def _raises_naming(path, *names):
    """pytest.raises for a ValueError whose message names the file and each of ``names``."""
    pattern = ".*".join(re.escape(str(n)) for n in (path.name, *names))
    return pytest.raises(ValueError, match=pattern)


@pytest.mark.parametrize(
    "edit, names",
    [
        (_replace(f"{_SOURCE}/energy", 1.1e-16 + 0j), (f"{_SOURCE}/energy", "one real number")),
        (
            _replace(_TRANSLATION, np.zeros(20, dtype=[("x", "f8"), ("y", "f8"), ("z", "f8")])),
            (_TRANSLATION, "real numbers", "compound"),
        ),
        (_replace(_TRANSLATION, np.array([b"a"] * 20)), (_TRANSLATION, "real numbers", "text")),
        (
            _set_attr("entry_1", "torchscope_metadata", "[1, 2]"),
            ("torchscope_metadata", "/entry_1", "JSON object", "list"),
        ),
        (
            _set_attr("entry_1", "torchscope_metadata", "{not json"),
            ("torchscope_metadata", "/entry_1", "JSON object"),
        ),
        (
            _set_attr("entry_1/instrument_1/detector_1/data", "is_fft_shifted", "maybe"),
            ("is_fft_shifted", "detector_1/data", "true or false", "maybe"),
        ),
        (
            _set_attr("entry_1/instrument_1/detector_1/data", "is_fft_shifted", 2),
            ("is_fft_shifted", "detector_1/data", "true or false"),
        ),
        (
            _replace("entry_1/instrument_1/detector_1/mask", np.array([b"x"] * 4)),
            ("detector_1/mask", "real numbers", "text"),
        ),
    ],
    ids=[
        "complex_energy",
        "compound_translation",
        "text_translation",
        "metadata_list",
        "metadata_not_json",
        "fft_shifted_text",
        "fft_shifted_2",
        "text_mask",
    ],
)
def test_malformed_cxi_data_names_file_and_data_set(tmp_path, scan, edit, names):
    _positions, patterns = scan
    path = tmp_path / "bad.cxi"
    _write_cxi(path, patterns, np.zeros((20, 3)), mask=np.zeros(patterns.shape[1:], np.uint8))
    with h5py.File(path, "a") as f:
        f["entry_1"].attrs["torchscope_metadata"] = '{"seed": 1}'
        edit(f)
    with _raises_naming(path, *names):
        load(path)


@pytest.mark.parametrize(
    "text, shifted",
    [
        ("false", False),
        ("FALSE", False),
        (b"false", False),
        ("0", False),
        (" False ", False),
        ("true", True),
        (b"True", True),
        ("1", True),
        (np.int8(1), True),
        (np.array([True]), True),
    ],
)
def test_is_fft_shifted_text_is_read_as_it_says(tmp_path, scan, text, shifted):
    """The attribute as text ("false", b"True", "0", ...) means what it says: "false" must not
    count as true (a non-empty string) and fft-shift the frames."""
    _positions, patterns = scan
    frames = {}
    for name, value in (("text", text), ("boolean", shifted)):
        _write_cxi(tmp_path / f"{name}.cxi", patterns, np.zeros((20, 3)))
        with h5py.File(tmp_path / f"{name}.cxi", "a") as f:
            f["entry_1/instrument_1/detector_1/data"].attrs["is_fft_shifted"] = value
        frames[name] = load(tmp_path / f"{name}.cxi").patterns
    np.testing.assert_array_equal(frames["text"], frames["boolean"])
    expected = np.fft.fftshift(patterns, axes=(-2, -1)) if shifted else patterns
    np.testing.assert_array_equal(frames["text"], expected)


@pytest.fixture
def result_file(tmp_path, rng):
    result = Result(
        iteration=3,
        obj=np.ones((16, 16), np.complex64),
        probe_modes=np.ones((1, 8, 8), np.complex64),
        positions_px=rng.uniform(-2, 2, (5, 2)),
        error=0.1,
        occupancies=np.ones(1),
        errors=np.array([0.3, 0.2, 0.1]),
        options={"engine": "epie"},
    )
    return save(tmp_path / "rec.cxi", result)


@pytest.mark.parametrize(
    "edit, names",
    [
        (_make_group("entry_1/image_1/title"), ("/entry_1/image_1/title", "data set", "group")),
        (_make_group("entry_1/image_1/data"), ("no object data", "/entry_1/image_1/data", "group")),
        (lambda f: f.__delitem__("entry_1/image_1/data"), ("no object data", "image_1/data")),
        (_make_group("entry_1/image_2/data"), ("no probe data", "/entry_1/image_2/data", "group")),
        (
            _replace("entry_1/image_1/data", np.array([b"x"] * 4)),
            ("the object", "image_1/data", "complex numbers", "text"),
        ),
        (_replace(f"{_RESULTS}/iteration", [1, 2]), (f"{_RESULTS}/iteration", "whole number")),
        (_replace(f"{_RESULTS}/iteration", 2.5), (f"{_RESULTS}/iteration", "whole number")),
        (_replace(f"{_RESULTS}/iteration", -1), (f"{_RESULTS}/iteration", ">= 0")),
        (_replace(f"{_RESULTS}/error", "abc"), (f"{_RESULTS}/error", "one real number", "text")),
        (_replace(f"{_RESULTS}/errors", "abc"), (f"{_RESULTS}/errors", "real numbers", "text")),
        (_make_group(f"{_RESULTS}/errors"), (f"{_RESULTS}/errors", "data set", "group")),
        (
            _replace(f"{_RESULTS}/positions_px", np.array([b"a"] * 10)),
            (f"{_RESULTS}/positions_px", "real numbers", "text"),
        ),
        (
            _replace(f"{_RESULTS}/positions_px", np.zeros((5, 3))),
            (f"{_RESULTS}/positions_px", "(P, 2)"),
        ),
        (
            _replace("entry_1/image_2/occupancies", "abc"),
            ("image_2/occupancies", "real numbers", "text"),
        ),
        (
            _replace("entry_1/process_1/configuration/options", "[1, 2]"),
            ("configuration/options", "JSON object", "list"),
        ),
        (
            _replace("entry_1/process_1/configuration/options", [1.0, 2.0]),
            ("configuration/options", "must be text"),
        ),
    ],
    ids=[
        "title_is_group",
        "object_data_is_group",
        "object_data_missing",
        "probe_data_is_group",
        "object_is_text",
        "iteration_array",
        "iteration_fraction",
        "iteration_negative",
        "error_text",
        "errors_text",
        "errors_is_group",
        "positions_text",
        "positions_shape",
        "occupancies_text",
        "options_list",
        "options_numbers",
    ],
)
def test_malformed_result_names_file_and_data_set(result_file, edit, names):
    path = Path(result_file)
    assert load(path).iteration == 3  # the file as written loads
    with h5py.File(path, "a") as f:
        edit(f)
    with _raises_naming(path, *names):
        load(path)


def test_result_missing_object_data_is_not_called_missing_diffraction_data(result_file):
    with h5py.File(result_file, "a") as f:
        del f["entry_1/image_1/data"]
    with pytest.raises(ValueError) as info:
        load(result_file)
    assert "diffraction" not in str(info.value)


@pytest.mark.parametrize(
    "extra, names",
    [
        ({"orientation": np.zeros(0)}, ("/orientation", "one whole number", "shape (0,)")),
        ({"orientation": "a"}, ("/orientation", "one whole number", "text")),
        ({"orientation": 1.5}, ("/orientation", "whole number", "1.5")),
        ({"entrancePupilDiameter": np.zeros(0)}, ("/entrancePupilDiameter", "one real number")),
        ({"entrancePupilDiameter": "a"}, ("/entrancePupilDiameter", "one real number", "text")),
        ({"encoder": np.array([b"a"] * 4)}, ("/encoder", "real numbers", "text")),
        ({"ptychogram": np.array([b"a"] * 4)}, ("ptychogram", "real numbers", "text")),
    ],
    ids=[
        "empty_orientation",
        "text_orientation",
        "fractional_orientation",
        "empty_pupil",
        "text_pupil",
        "text_encoder",
        "text_ptychogram",
    ],
)
def test_malformed_ptylab_names_file_and_data_set(tmp_path, extra, names):
    path = tmp_path / "bad.h5"
    _write_ptylab(path, np.zeros((2, 8, 8)), np.zeros((2, 2)), wavelength=1e-9, zo=1.0, dxd=1e-4)
    with h5py.File(path, "a") as f:
        for key, value in extra.items():
            if key in f:
                del f[key]
            f[key] = value
    with _raises_naming(path, *names):
        load(path)


def test_unforeseen_parse_errors_become_value_errors_naming_the_file(tmp_path, scan, monkeypatch):
    """The last resort: a TypeError or IndexError from parsing an array the readers do not check
    still reaches the caller as a ValueError naming the file; an AttributeError or KeyError (a
    bug of the reader itself) is not disguised as a malformed file."""
    from torchscope.ptycho import _io

    _positions, patterns = scan
    path = tmp_path / "odd.cxi"
    _write_cxi(path, patterns, np.zeros((20, 3)))
    for error in (TypeError, IndexError, KeyError, AttributeError):

        def broken(self, shape, error=error):
            raise error("odd layout")

        monkeypatch.setattr(_io._Reader, "cxi_mask", broken)
        if error in (TypeError, IndexError):
            with _raises_naming(path, error.__name__, "odd layout"):
                load(path)
        else:
            with pytest.raises(error, match="odd layout"):
                load(path)

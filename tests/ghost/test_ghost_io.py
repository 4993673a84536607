"""Measurement files (.npz) and pattern stacks (TIFF): round trips, foreign files, clear errors."""

import json
import zipfile

import numpy as np
import pytest
import tifffile

from torchscope import ghost
from torchscope.ghost._io import is_measurement_file, is_pattern_stack


@pytest.fixture
def data(rng):
    p = ghost.hadamard_patterns(16, ratio=0.25)
    b = rng.poisson(100.0, size=(3, len(p))).astype(np.float64)
    return b, p


def test_measurement_round_trip(tmp_path, data):
    b, p = data
    meta = {"modulation_depth": np.float64(0.8), "photons": 1000, "note": "µm", "list": [1, 2]}
    path = ghost.save_measurement(tmp_path / "m.npz", b, p, metadata=meta)
    assert path == tmp_path / "m.npz" and path.exists()
    m = ghost.load_measurement(path)
    assert isinstance(m, ghost.Measurement)
    np.testing.assert_array_equal(m.buckets, b)
    np.testing.assert_array_equal(m.patterns, p)
    assert m.buckets.dtype == np.float64 and m.patterns.dtype == np.float32
    assert m.metadata == {"modulation_depth": 0.8, "photons": 1000, "note": "µm", "list": [1, 2]}
    assert is_measurement_file(path)


def test_file_is_plain_npz_without_pickle(tmp_path, data):
    b, p = data
    path = ghost.save_measurement(tmp_path / "m", b[0], p)  # no extension added
    assert path.name == "m"
    with np.load(path, allow_pickle=False) as f:  # any numpy reads it, without pickle
        np.testing.assert_array_equal(f["buckets"], b[0])
        assert json.loads(str(f["metadata"])) == {}
    assert ghost.load_measurement(path).metadata == {}


def test_reconstruction_from_a_loaded_file_is_the_same(tmp_path):
    obj = ghost.sample_object("gear", 32)
    p = ghost.hadamard_patterns(32, ratio=0.5)
    b = ghost.simulate_buckets(obj, p, modulation_depth=0.8, photons=500, rng=1)
    m = ghost.load_measurement(ghost.save_measurement(tmp_path / "g.npz", b, p))
    np.testing.assert_array_equal(ghost.reconstruct(m.buckets, m.patterns, method="pinv"),
                                  ghost.reconstruct(b, p, method="pinv"))


def test_foreign_measurement_uint8_masks_and_int_counts(tmp_path, rng):
    """A file written by someone else: 0/255 masks as uint8 and integer counts, no metadata."""
    p = ghost.hadamard_patterns(8)
    counts = rng.poisson(50, size=len(p)).astype(np.int64)
    np.savez(tmp_path / "theirs.npz", buckets=counts, patterns=(p * 255).astype(np.uint8))
    m = ghost.load_measurement(tmp_path / "theirs.npz")
    np.testing.assert_array_equal(m.patterns, p)  # 0/255 read as 0/1 masks
    np.testing.assert_array_equal(m.buckets, counts)
    assert m.metadata == {}
    raw = ghost.load_measurement(tmp_path / "theirs.npz", normalize=False)
    assert raw.patterns.max() == 255


def test_save_refuses_mismatched_shapes_and_bad_metadata(tmp_path, data):
    b, p = data
    with pytest.raises(ValueError, match=r"M mismatch"):
        ghost.save_measurement(tmp_path / "x.npz", b[:, :-1], p)
    with pytest.raises(ValueError, match=r"patterns has shape \(64, 16\)"):
        ghost.save_measurement(tmp_path / "x.npz", b, p[:, 0])
    with pytest.raises(TypeError, match="metadata must hold JSON types"):
        ghost.save_measurement(tmp_path / "x.npz", b, p, metadata={"f": object()})
    with pytest.raises(TypeError, match="metadata must be a dict"):
        ghost.save_measurement(tmp_path / "x.npz", b, p, metadata=[1])
    with pytest.raises(ValueError, match="NaN"):
        ghost.save_measurement(tmp_path / "x.npz", np.full(len(p), np.nan), p)
    assert not (tmp_path / "x.npz").exists()


def test_load_names_what_is_wrong(tmp_path, data):
    b, p = data
    with pytest.raises(FileNotFoundError):
        ghost.load_measurement(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"not an \.npz file \(numpy's zip archive"):
        ghost.load_measurement(tmp_path / "junk.npz")  # not numpy's guess at pickled data
    np.savez(tmp_path / "nop.npz", buckets=b)
    with pytest.raises(ValueError, match=r"no 'patterns' array.*\['buckets'\]"):
        ghost.load_measurement(tmp_path / "nop.npz")
    np.savez(tmp_path / "mis.npz", buckets=b[:, :10], patterns=p)
    with pytest.raises(ValueError, match=r"'buckets' has shape \(3, 10\) but there are 64"):
        ghost.load_measurement(tmp_path / "mis.npz")
    np.savez(tmp_path / "obj.npz", buckets=np.array([{"a": 1}], dtype=object), patterns=p)
    with pytest.raises(ValueError, match="numeric arrays only"):
        ghost.load_measurement(tmp_path / "obj.npz")
    np.savez(tmp_path / "meta.npz", buckets=b, patterns=p, metadata=np.array("[1, 2]"))
    with pytest.raises(ValueError, match="must be a JSON object"):
        ghost.load_measurement(tmp_path / "meta.npz")
    np.savez(tmp_path / "bad.npz", buckets=b, patterns=p, metadata=np.array("{oops"))
    with pytest.raises(ValueError, match="not valid JSON"):
        ghost.load_measurement(tmp_path / "bad.npz")


def test_truncated_file(tmp_path, data):
    b, p = data
    path = ghost.save_measurement(tmp_path / "m.npz", b, p)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match=str(path.name)):
        ghost.load_measurement(path)
    assert not is_measurement_file(path)


def test_files_of_the_wrong_dtype_are_bad_files(tmp_path, data):
    """A caller's complex array is a TypeError; the same inside a file is a bad file."""
    b, p = data
    np.savez(tmp_path / "complex.npz", buckets=b.astype(complex), patterns=p)
    with pytest.raises(ValueError, match="complex.npz: 'buckets' has dtype complex128"):
        ghost.load_measurement(tmp_path / "complex.npz")
    np.savez(tmp_path / "text.npz", buckets=b, patterns=np.full(p.shape, "x"))
    with pytest.raises(ValueError, match="text.npz: 'patterns' has dtype <U1"):
        ghost.load_measurement(tmp_path / "text.npz")
    tifffile.imwrite(tmp_path / "complex.tif", (p + 1j).astype(np.complex64))
    with pytest.raises(ValueError, match="complex.tif: patterns has dtype complex64"):
        ghost.load_patterns(tmp_path / "complex.tif")
    with pytest.raises(TypeError, match="buckets has dtype complex128"):
        ghost.save_measurement(tmp_path / "m.npz", b.astype(complex), p)


def test_a_npy_file_named_npz(tmp_path, data):
    np.save(tmp_path / "array.npy", data[1])
    (tmp_path / "array.npy").rename(tmp_path / "array.npz")
    with pytest.raises(ValueError, match="array.npz: a single .npy array"):  # was a TypeError
        ghost.load_measurement(tmp_path / "array.npz")


@pytest.mark.parametrize("kind", ["binary", "differential", "grey"])
def test_pattern_stack_round_trip(tmp_path, kind, rng):
    if kind == "grey":
        p = rng.uniform(0.2, 1.0, size=(3, 8, 8)).astype(np.float32)  # 3 pages: not RGB
    else:
        p = ghost.hadamard_patterns(8, ratio=0.5, kind=kind)
    path = ghost.save_patterns(tmp_path / "p.tif", p, metadata={"order": "zigzag"})
    np.testing.assert_array_equal(ghost.load_patterns(path), p)
    assert is_pattern_stack(path)
    with tifffile.TiffFile(path) as tif:  # readable by any TIFF reader, M pages
        assert len(tif.pages) == len(p)
        assert tif.shaped_metadata[0]["order"] == "zigzag"


def test_foreign_tiff_of_0_255_masks(tmp_path):
    p = ghost.hadamard_patterns(16, ratio=0.3, order="sequency")
    tifffile.imwrite(tmp_path / "masks.tif", (p * 255).astype(np.uint8), imagej=True)
    np.testing.assert_array_equal(ghost.load_patterns(tmp_path / "masks.tif"), p)
    assert is_pattern_stack(tmp_path / "masks.tif")  # recognised by content: Hadamard rows


def test_other_tiffs_are_not_pattern_stacks(tmp_path, rng):
    tifffile.imwrite(tmp_path / "image.tif", rng.integers(0, 255, (64, 64), dtype=np.uint8))
    tifffile.imwrite(tmp_path / "binary.tif", (rng.random((6, 16, 16)) > 0.5).astype(np.uint8))
    tifffile.imwrite(tmp_path / "stack.tif", rng.random((4, 16, 16)).astype(np.float32),
                     photometric="minisblack")
    (tmp_path / "junk.tif").write_bytes(b"II*\x00garbage")
    tifffile.imwrite(tmp_path / "blank.tif", np.zeros((2, 64, 64), np.uint8))  # no pattern in
    tifffile.imwrite(tmp_path / "white.tif", np.full((1, 256, 256), 255, np.uint8))  # either
    for name in ("image", "binary", "stack", "junk", "blank", "white"):
        assert not is_pattern_stack(tmp_path / f"{name}.tif"), name
    # the open mask beside Hadamard patterns is still a pattern stack
    assert is_pattern_stack(ghost.save_patterns(tmp_path / "h.tif", ghost.hadamard_patterns(8)[:2]))


def test_a_truncated_pattern_stack_is_refused(tmp_path):
    """tifffile reads what it can of a cut file (only warnings): the first page came back as the
    whole stack."""
    path = ghost.save_patterns(tmp_path / "p.tif", ghost.hadamard_patterns(16, ratio=0.25))
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="written with shape .64, 16, 16. but holds"):
        ghost.load_patterns(path)


def test_load_patterns_errors(tmp_path, rng):
    (tmp_path / "junk.tif").write_bytes(b"nothing")
    with pytest.raises(ValueError, match="not a readable TIFF"):
        ghost.load_patterns(tmp_path / "junk.tif")
    tifffile.imwrite(tmp_path / "rgb.tif", rng.integers(0, 255, (2, 8, 8, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="RGB"):
        ghost.load_patterns(tmp_path / "rgb.tif")
    single = ghost.hadamard_patterns(8)[3]
    tifffile.imwrite(tmp_path / "one.tif", single)
    assert ghost.load_patterns(tmp_path / "one.tif").shape == (1, 8, 8)
    with pytest.raises(ValueError, match="reserved"):
        ghost.save_patterns(tmp_path / "p.tif", single[None], metadata={"shape": 1})


def test_npz_table_of_contents_only(tmp_path):
    with zipfile.ZipFile(tmp_path / "other.npz", "w") as z:
        z.writestr("x.npy", b"")
    assert not is_measurement_file(tmp_path / "other.npz")
    assert not is_measurement_file(tmp_path / "missing.npz")

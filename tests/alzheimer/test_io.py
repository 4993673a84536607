"""load_volume and extract_slice: Analyze pairs and NIfTI via nibabel, slices scaled to [0, 1]."""

import nibabel as nib
import numpy as np
import pytest
from alz_helpers import write_analyze

from torchscope import alzheimer as az


@pytest.mark.parametrize("endianness", [">", "<"])
@pytest.mark.parametrize("open_with", [".hdr", ".img"])
def test_analyze_pair_squeezes_oasis_trailing_axis(tmp_path, rng, endianness, open_with):
    vol = rng.integers(0, 3000, size=(11, 13, 7)).astype(np.int16)
    hdr = tmp_path / "OAS1_0001_MR1_mpr_n4_anon_111_t88_masked_gfc.hdr"
    write_analyze(hdr, vol, endianness)
    assert nib.load(str(hdr)).shape == (11, 13, 7, 1)  # as OASIS-1 stores them
    out, spacing = az.load_volume(hdr.with_suffix(open_with), return_spacing=True)
    assert out.shape == (11, 13, 7) and out.dtype == np.float32
    np.testing.assert_array_equal(out, vol.astype(np.float32))
    assert spacing == (1.0, 1.0, 1.0)


def test_nifti_gz_and_spacing(tmp_path, rng):
    vol = rng.standard_normal((9, 10, 6)).astype(np.float32)
    img = nib.Nifti1Image(vol, np.diag([0.9, 1.1, 2.0, 1.0]))
    path = tmp_path / "t1.nii.gz"
    nib.save(img, str(path))
    out, spacing = az.load_volume(path, return_spacing=True)
    np.testing.assert_allclose(out, vol)
    np.testing.assert_allclose(spacing, (0.9, 1.1, 2.0), rtol=1e-6)


def test_load_volume_refuses_other_files(tmp_path):
    with pytest.raises(ValueError, match="path="):
        az.load_volume(tmp_path / "image.png")
    with pytest.raises(FileNotFoundError):
        az.load_volume(tmp_path / "missing.nii")
    # damaged files named like volumes gave nibabel's ImageFileError (neither ValueError nor
    # OSError: the napari reader's callers could not catch it)
    good = tmp_path / "good.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), good)
    files = {"empty.nii": b"", "text.nii": b"not an image" * 40,
             "cut.nii.gz": good.read_bytes()[: good.stat().st_size // 2]}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=f"{name}' is not a readable"):
            az.load_volume(tmp_path / name)
    header_only = tmp_path / "lonely.hdr"  # an Analyze header without its image file
    nib.save(nib.AnalyzeImage(np.zeros((4, 4, 4), np.float32), np.eye(4)), header_only)
    (tmp_path / "lonely.img").unlink()
    with pytest.raises(FileNotFoundError):
        az.load_volume(header_only)
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.complex64), np.eye(4)),
             tmp_path / "complex.nii")
    with pytest.raises(ValueError, match="complex64 voxels"):  # its imaginary part was dropped
        az.load_volume(tmp_path / "complex.nii")


def test_extract_slice_takes_the_given_index_and_scales_to_unit_range(rng):
    vol = rng.uniform(100, 900, size=(6, 8, 10))
    s = az.extract_slice(vol, axis=2, index=7)
    raw = vol[:, :, 7]
    np.testing.assert_allclose(s, (raw - raw.min()) / (raw.max() - raw.min()), rtol=1e-5,
                               atol=1e-6)
    assert s.min() == 0 and s.max() == 1 and s.dtype == np.float32
    s0 = az.extract_slice(vol[..., None], axis=0, index=-1)  # trailing axis, negative index
    assert s0.shape == (8, 10)
    np.testing.assert_allclose(s0, az.normalise_slice(vol[5]))
    assert not np.shares_memory(s, vol)


def test_extract_slice_defaults_are_the_papers_106th_axial_slice():
    vol = np.zeros((176, 208, 176), np.float32)
    vol[:, :, 105] = np.arange(208)[None, :]
    s = az.extract_slice(vol)
    assert s.shape == (176, 208)
    assert s.max() == 1.0  # slice 105 is the only non-constant one


def test_extract_slice_constant_and_bad_input():
    assert np.all(az.extract_slice(np.full((4, 4, 4), 7.0), index=1) == 0)
    with pytest.raises(ValueError, match="index=9"):
        az.extract_slice(np.zeros((4, 4, 4)), index=9)
    with pytest.raises(ValueError, match="axis=3"):
        az.extract_slice(np.zeros((4, 4, 4)), axis=3, index=0)
    with pytest.raises(ValueError, match="3-D"):
        az.extract_slice(np.zeros((4, 4)), index=0)
    with pytest.raises(ValueError, match="NaN"):
        az.extract_slice(np.full((4, 4, 4), np.nan), index=0)

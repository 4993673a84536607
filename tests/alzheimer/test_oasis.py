"""load_oasis on files written in OASIS-1's exact layout and formats."""

import numpy as np
import pytest
from alz_helpers import oasis_path, write_analyze, write_csv

from torchscope import alzheimer as az

SHAPE = (12, 14, 10)  # small volumes; the loader reads whatever grid the files have
INDEX = 6


def _volume(rng, level):
    v = rng.integers(0, 200, size=SHAPE).astype(np.int16)
    v[3:9, 4:10, INDEX] += level  # something that differs between scans
    return v


@pytest.fixture
def oasis_root(tmp_path, rng):
    """Five sessions of four subjects, decoys, and the clinical table as OASIS-1 has them.

    - OAS1_0001 (CDR 0) and its reliability re-scan OAS1_0001_MR2 (a row of its own with the
      clinical values blank except Delay, so they come from the first session);
    - OAS1_0002 (CDR 0.5), OAS1_0003 (CDR 1) in disc2;
    - OAS1_0004: a young adult, no CDR, must be left out and reported;
    - OAS1_0005: image but no row in the table;
    - unmasked and segmentation images beside the masked ones, which must be ignored.
    """
    root = tmp_path / "oasis"
    volumes = {}
    for scan, disc, level in [("OAS1_0001_MR1", 1, 100), ("OAS1_0001_MR2", 1, 300),
                              ("OAS1_0002_MR1", 1, 500), ("OAS1_0003_MR1", 2, 700),
                              ("OAS1_0004_MR1", 2, 900), ("OAS1_0005_MR1", 2, 1100)]:
        vol = _volume(rng, level)
        volumes[scan] = vol
        write_analyze(oasis_path(root, scan, disc), vol)
        write_analyze(oasis_path(root, scan, disc, "t88_gfc"), vol + 5000)  # unmasked decoy
        seg = oasis_path(root, scan, disc).parent.parent.parent / "FSL_SEG" / (
            f"{scan}_mpr_n4_anon_111_t88_masked_gfc_fseg.hdr")
        write_analyze(seg, np.ones(SHAPE))
    write_csv(root / "oasis_cross-sectional.csv", [
        {"ID": "OAS1_0001_MR1", "M/F": "F", "Hand": "R", "Age": "74", "Educ": "2", "SES": "3",
         "MMSE": "29", "CDR": "0", "eTIV": "1344", "nWBV": "0.743", "ASF": "1.306",
         "Delay": "N/A"},
        {"ID": "OAS1_0001_MR2", "M/F": "F", "Hand": "R", "Age": "74", "Delay": "21"},
        {"ID": "OAS1_0002_MR1", "M/F": "M", "Hand": "R", "Age": "80", "Educ": "4", "SES": "1",
         "MMSE": "26", "CDR": "0.5", "eTIV": "1502", "nWBV": "0.701", "ASF": "1.168",
         "Delay": "N/A"},
        {"ID": "OAS1_0003_MR1", "M/F": "F", "Hand": "R", "Age": "88", "Educ": "3", "SES": "2",
         "MMSE": "20", "CDR": "1", "eTIV": "1400", "nWBV": "0.690", "ASF": "1.254",
         "Delay": "N/A"},
        {"ID": "OAS1_0004_MR1", "M/F": "M", "Hand": "R", "Age": "21", "eTIV": "1650",
         "nWBV": "0.830", "ASF": "1.064", "Delay": "N/A"},
        {"ID": "OAS1_0099_MR1", "M/F": "M", "Hand": "R", "Age": "70", "CDR": "0"},  # no image
    ])
    return root, volumes


def test_loader_follows_the_papers_protocol(oasis_root):
    root, volumes = oasis_root
    c = az.load_oasis(root, axis=2, index=INDEX)
    assert list(c.ids) == ["OAS1_0001_MR1", "OAS1_0001_MR2", "OAS1_0002_MR1", "OAS1_0003_MR1"]
    assert list(c.subjects) == ["OAS1_0001", "OAS1_0001", "OAS1_0002", "OAS1_0003"]
    assert list(c.labels) == [0, 0, 1, 1]
    np.testing.assert_array_equal(c.cdr, [0, 0, 0.5, 1])
    np.testing.assert_array_equal(c.age, [74, 74, 80, 88])
    assert list(c.sex) == ["F", "F", "M", "F"]
    # the masked image, its slice INDEX along axis 2, scaled to [0, 1] (computed here by hand)
    for row, scan in enumerate(c.ids):
        raw = volumes[scan][:, :, INDEX].astype(np.float64)
        expected = (raw - raw.min()) / (raw.max() - raw.min())
        np.testing.assert_allclose(c.slices[row], expected, rtol=1e-6, atol=1e-6)
    # the re-scan takes missing clinical values from its subject's first session
    np.testing.assert_array_equal(c.clinical["MMSE"], [29, 29, 26, 20])
    np.testing.assert_array_equal(c.clinical["nWBV"], [0.743, 0.743, 0.701, 0.690])
    assert np.isnan(c.clinical["Delay"][0]) and c.clinical["Delay"][1] == 21
    excluded = dict(c.excluded)
    assert excluded == {"OAS1_0004_MR1": "no CDR", "OAS1_0005_MR1": "not in the clinical table"}
    assert "no CDR" in c.summary()


def test_rescans_can_be_dropped_and_a_csv_given_explicitly(oasis_root, tmp_path):
    root, _ = oasis_root
    csv_path = tmp_path / "elsewhere.csv"
    csv_path.write_text((root / "oasis_cross-sectional.csv").read_text())
    (root / "oasis_cross-sectional.csv").unlink()
    c = az.load_oasis(root, csv_path, index=INDEX, rescans=False)
    assert list(c.ids) == ["OAS1_0001_MR1", "OAS1_0002_MR1", "OAS1_0003_MR1"]
    assert ("OAS1_0001_MR2", "re-scan of OAS1_0001_MR1 (rescans=False)") in c.excluded


def test_rescans_never_cross_a_split(oasis_root):
    root, _ = oasis_root
    c = az.load_oasis(root, index=INDEX)
    for seed in range(20):
        split = az.subject_split(c, test=0.34, val=0.5, seed=seed)
        where = {}
        for name in ("train", "val", "test"):
            for scan, subject in zip(getattr(split, name).ids, getattr(split, name).subjects):
                where.setdefault(subject, set()).add(name)
        assert all(len(parts) == 1 for parts in where.values()), where
        assert sum(len(getattr(split, n)) for n in ("train", "val", "test")) == len(c)


def test_loader_errors_name_the_argument(tmp_path, oasis_root):
    with pytest.raises(ValueError, match="root="):
        az.load_oasis(tmp_path / "nothing")
    empty = tmp_path / "empty"
    empty.mkdir()
    write_csv(empty / "oasis_cross-sectional.csv", [])
    with pytest.raises(ValueError, match="t88_masked_gfc"):
        az.load_oasis(empty)
    root, _ = oasis_root
    (root / "oasis_cross-sectional.csv").unlink()
    with pytest.raises(ValueError, match="clinical_csv="):
        az.load_oasis(root)
    with pytest.raises(ValueError, match="clinical_csv="):
        az.load_oasis(root, tmp_path / "x.csv", index=INDEX)  # no such file
    write_csv(root / "oasis_cross-sectional.csv", [{"ID": "OAS1_0001_MR1", "CDR": "0"}])
    with pytest.raises(ValueError, match="index=99"):
        az.load_oasis(root, index=99)


def test_unreadable_image_is_reported_not_fatal(oasis_root):
    root, _ = oasis_root
    img = oasis_path(root, "OAS1_0002_MR1").with_suffix(".img")
    img.write_bytes(img.read_bytes()[:10])  # truncated
    c = az.load_oasis(root, index=INDEX)
    assert "OAS1_0002_MR1" not in c.ids
    assert dict(c.excluded)["OAS1_0002_MR1"].startswith("unreadable")

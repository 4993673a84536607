"""phantom_cohort: OASIS-like, written in OASIS-1's layout, and without shortcuts."""

import csv

import numpy as np
import pytest

from torchscope import alzheimer as az


@pytest.fixture(scope="module")
def cohort():
    return az.phantom_cohort(60, seed=11)


def _auc(labels, values):
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(labels, values)


def test_cohort_contents(cohort):
    assert len(cohort) == 60 and cohort.slices.shape == (60, 176, 208)
    assert cohort.labels.sum() == 30
    assert cohort.slices.min() == 0 and np.all(cohort.slices.max((1, 2)) == 1)
    sev = cohort.clinical["severity"]
    assert np.all(sev[cohort.labels == 0] == 0)
    assert np.all((sev[cohort.labels == 1] >= 0.3) & (sev[cohort.labels == 1] <= 1.0))
    assert set(cohort.cdr[cohort.labels == 1]) <= {0.5, 1.0, 2.0}
    assert np.all(cohort.cdr[cohort.labels == 0] == 0)
    assert np.all((cohort.age >= 60) & (cohort.age <= 96))
    # nWBV is measured on the 3-D phantom: more atrophy in either region, less brain
    levels = np.stack([cohort.clinical["atrophy"], cohort.clinical["cortical_atrophy"]], 1)
    design = np.column_stack([levels, np.ones(len(cohort))])
    coef, *_ = np.linalg.lstsq(design, cohort.clinical["nWBV"], rcond=None)
    fit = design @ coef
    r2 = 1 - np.var(cohort.clinical["nWBV"] - fit) / np.var(cohort.clinical["nWBV"])
    assert coef[0] < 0 and coef[1] < 0 and r2 > 0.95
    # the subject's own cortical atrophy does not depend on the label; the ventricles' does
    from torchscope.alzheimer._phantom import CORTEX_SHARE

    cortex_own = cohort.clinical["cortical_atrophy"] - CORTEX_SHARE * sev
    assert abs(_auc(cohort.labels, cortex_own) - 0.5) < 0.2
    assert _auc(cohort.labels, cohort.clinical["atrophy"]) > 0.9
    assert cohort.source["index"] == 105 and cohort.source["seed"] == 11


def test_same_seed_same_cohort():
    a = az.phantom_cohort(3, seed=5)
    b = az.phantom_cohort(3, seed=5)
    np.testing.assert_array_equal(a.slices, b.slices)
    np.testing.assert_array_equal(a.clinical["nWBV"], b.clinical["nWBV"])
    c = az.phantom_cohort(3, seed=6)
    assert not np.array_equal(a.slices, c.slices)


def test_written_oasis_layout_reads_back_identically(tmp_path):
    memory = az.phantom_cohort(2, seed=3, rescans=1)
    disk = az.phantom_cohort(2, seed=3, rescans=1, out_dir=tmp_path)
    hdrs = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.hdr"))
    assert hdrs == [
        f"disc1/{s}/PROCESSED/MPRAGE/T88_111/{s}_mpr_n4_anon_111_t88_masked_gfc.hdr"
        for s in ("OAS1_0001_MR1", "OAS1_0002_MR1", "OAS1_0002_MR2")
    ] or hdrs == [
        f"disc1/{s}/PROCESSED/MPRAGE/T88_111/{s}_mpr_n4_anon_111_t88_masked_gfc.hdr"
        for s in ("OAS1_0001_MR1", "OAS1_0001_MR2", "OAS1_0002_MR1")
    ]
    with open(tmp_path / "oasis_cross-sectional.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["ID", "M/F", "Hand", "Age", "Educ", "SES", "MMSE", "CDR", "eTIV",
                       "nWBV", "ASF", "Delay"]
    import nibabel as nib

    img = nib.load(str(tmp_path / hdrs[0]))
    assert img.shape == (176, 208, 176, 1) and img.get_data_dtype() == np.dtype(">i2")
    loaded = az.load_oasis(tmp_path)
    assert list(loaded.ids) == list(memory.ids) == list(disk.ids)
    assert len(set(loaded.subjects)) == 2 and not loaded.excluded
    # the slice of the written volume = the slice rendered alone (the slab shortcut is exact)
    np.testing.assert_array_equal(loaded.slices, memory.slices)
    np.testing.assert_array_equal(loaded.labels, memory.labels)
    np.testing.assert_allclose(loaded.clinical["nWBV"], memory.clinical["nWBV"])
    rescan = next(i for i, s in enumerate(loaded.ids) if s.endswith("MR2"))
    assert loaded.clinical["Delay"][rescan] > 0
    # a re-scan is the same anatomy under a new nuisance: similar but not equal slices
    first = list(loaded.ids).index(loaded.ids[rescan].replace("MR2", "MR1"))
    assert not np.array_equal(loaded.slices[rescan], loaded.slices[first])
    assert np.corrcoef(loaded.slices[rescan].ravel(), loaded.slices[first].ravel())[0, 1] > 0.8


def test_no_rim_or_intensity_shortcut(cohort):
    s, y = cohort.slices, cohort.labels
    brain = s > 0
    # the frame of the image is empty background in every scan, whatever the class
    assert not brain[:, :2].any() and not brain[:, -2:].any()
    assert not brain[:, :, :2].any() and not brain[:, :, -2:].any()
    # the brain outline (masked area) and the tissue intensity scale do not give the class away
    area = brain.sum((1, 2))
    bright = np.array([np.percentile(x[b], 99) for x, b in zip(s, brain)])
    for name, feature in (("masked area", area), ("99th percentile", bright)):
        assert abs(_auc(y, feature) - 0.5) < 0.2, name
    # the disease is there: the fraction of CSF-dark pixels inside the brain separates classes
    dark = np.array([np.mean(x[b] < 0.45) for x, b in zip(s, brain)])
    assert _auc(y, dark) > 0.9


def _subject_cv_balanced_accuracy(x, y, groups, folds=5):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GroupKFold

    pred = np.zeros_like(y)
    for train, test in GroupKFold(folds).split(x, y, groups):
        model = LogisticRegression(C=0.1, max_iter=2000).fit(x[train], y[train])
        pred[test] = model.predict(x[test])
    return balanced_accuracy_score(y, pred)


def test_random_labels_stay_at_chance_true_labels_do_not(cohort):
    # a linear classifier on 8x-downsampled slices, cross-validated by subject
    x = cohort.slices.reshape(len(cohort), 22, 8, 26, 8).mean((2, 4)).reshape(len(cohort), -1)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    rng = np.random.default_rng(0)
    random_scores = [
        _subject_cv_balanced_accuracy(x, rng.permutation(cohort.labels), cohort.subjects)
        for _ in range(5)
    ]
    assert abs(np.mean(random_scores) - 0.5) < 0.1, random_scores
    assert _subject_cv_balanced_accuracy(x, cohort.labels, cohort.subjects) > 0.75


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_subjects"):
        az.phantom_cohort(1)
    with pytest.raises(ValueError, match="severity"):
        az.phantom_cohort(4, severity=(0.8, 0.2))
    with pytest.raises(ValueError, match="rescans"):
        az.phantom_cohort(4, rescans=5)
    with pytest.raises(ValueError, match="index="):
        az.phantom_cohort(4, index=300)

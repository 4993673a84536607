"""Helpers for the torchscope.alzheimer tests: a tiny synthetic cohort, OASIS-1-layout writers."""

import csv
from pathlib import Path

import numpy as np

OASIS_HEADER = ["ID", "M/F", "Hand", "Age", "Educ", "SES", "MMSE", "CDR", "eTIV", "nWBV",
                "ASF", "Delay"]


def tiny_cohort(n_subjects=24, shape=(32, 40), seed=0, labels=None, rescans=0):
    """Slices of a bright ellipse with a dark 'ventricle' that is larger for label 1.

    Built by hand (not by phantom_cohort), so training tests do not depend on the phantom.
    """
    from torchscope.alzheimer import Cohort

    rng = np.random.default_rng(seed)
    if labels is None:
        labels = rng.permutation(np.arange(n_subjects) % 2)
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    ids, subjects, slices, lab, age, sex, nwbv = [], [], [], [], [], [], []
    for i in range(n_subjects):
        sessions = 2 if i < rescans else 1
        a = rng.uniform(60, 90)
        s = "F" if rng.uniform() < 0.5 else "M"
        for session in range(1, sessions + 1):
            r = 3 + 4 * labels[i] + rng.uniform(-1, 1)
            cy, cx = h / 2 + rng.uniform(-1, 1), w / 2 + rng.uniform(-1, 1)
            brain = ((yy - cy) / (0.4 * h)) ** 2 + ((xx - cx) / (0.4 * w)) ** 2 <= 1
            vent = (yy - cy) ** 2 + (xx - cx) ** 2 <= r ** 2
            img = brain * (0.8 - 0.5 * vent) + 0.03 * rng.standard_normal(shape) * brain
            img = (img - img.min()) / (img.max() - img.min())
            ids.append(f"OAS1_{i + 1:04d}_MR{session}")
            subjects.append(f"OAS1_{i + 1:04d}")
            slices.append(img.astype(np.float32))
            lab.append(labels[i])
            age.append(a)
            sex.append(s)
            nwbv.append(0.8 - 0.05 * labels[i] + 0.01 * rng.standard_normal())
    lab = np.array(lab, dtype=np.int64)
    return Cohort(
        ids=np.array(ids), subjects=np.array(subjects), slices=np.stack(slices),
        labels=lab, cdr=lab * 0.5, age=np.array(age), sex=np.array(sex),
        clinical={"nWBV": np.array(nwbv)}, source={"generator": "tiny_cohort"},
    )


def write_analyze(path_hdr, volume, endianness=">"):
    """An Analyze 7.5 pair (.hdr + .img) of int16, X x Y x Z x 1, as OASIS-1 ships them."""
    import nibabel as nib

    header = nib.AnalyzeHeader(endianness=endianness)
    header.set_data_dtype(np.int16)
    img = nib.AnalyzeImage(np.asarray(volume, np.int16)[..., None], None, header=header)
    img.header.set_zooms((1.0, 1.0, 1.0, 1.0))
    Path(path_hdr).parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path_hdr))


def oasis_path(root, scan, disc=1, suffix="t88_masked_gfc"):
    return (Path(root) / f"disc{disc}" / scan / "PROCESSED" / "MPRAGE" / "T88_111"
            / f"{scan}_mpr_n4_anon_111_{suffix}.hdr")


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(OASIS_HEADER)
        for row in rows:
            w.writerow([row.get(k, "") for k in OASIS_HEADER])

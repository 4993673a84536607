"""Subject-level train / validation / test splits, stratified by label, sex and age."""

import dataclasses
import numbers

import numpy as np

from torchscope.backend import check_real, check_rng


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """A cohort divided by subject: no subject (re-scans included) is in two parts.

    Attributes
    ----------
    train, val, test : Cohort
        The parts. ``val`` steers early stopping and model selection; ``test`` is only for
        the final evaluation.
    seed : int or None
        The seed that drew the split.
    """

    train: object
    val: object
    test: object
    seed: object = None

    def __post_init__(self):
        check_disjoint(self)

    def __repr__(self):
        return (f"Split(train={len(self.train)} scans / {self.train.n_subjects} subjects, "
                f"val={len(self.val)} / {self.val.n_subjects}, "
                f"test={len(self.test)} / {self.test.n_subjects})")


def check_disjoint(split):
    """Raise ``ValueError`` if a subject appears in two parts of ``split``."""
    parts = {"train": split.train, "val": split.val, "test": split.test}
    seen = {}
    for name, part in parts.items():
        for subject in np.unique(part.subjects):
            if subject in seen:
                raise ValueError(
                    f"subject {subject!r} is in both {seen[subject]!r} and {name!r}: splits must "
                    "be by subject (re-scans included)."
                )
            seen[subject] = name


def _strata(labels, sex, age):
    """One stratum key per subject: label, sex, and the age tercile within the label."""
    keys = []
    terciles = {}
    for label in np.unique(labels):
        a = age[(labels == label) & np.isfinite(age)]
        terciles[label] = np.quantile(a, [1 / 3, 2 / 3]) if len(a) >= 3 else None
    for label, s, a in zip(labels, sex, age):
        t = terciles[label]
        band = -1 if (t is None or not np.isfinite(a)) else int(np.searchsorted(t, a, "right"))
        keys.append((int(label), str(s), band))
    return keys


def _systematic(n, count, rng):
    """``count`` of ``n`` positions, spread evenly along them (random phase)."""
    picked = np.zeros(n, bool)
    if count:
        picked[np.floor((np.arange(count) + rng.uniform()) * n / count).astype(int)] = True
    return picked


def _share(fraction, n):
    """Subjects for a part: the rounded share, at least one when the fraction is not 0."""
    return 0 if fraction == 0 else max(1, round(fraction * n))


def subject_split(cohort, *, test=0.3, val=0.2, seed=None):
    """Split a cohort by subject into train, validation and test parts.

    Subjects, not scans, are assigned: a subject's re-scans go wherever the subject goes.
    The assignment is stratified: subjects are ordered by label, sex and age tercile (within
    the label), shuffled within each stratum, and every part takes its share spread evenly
    along that order, so each part has close to the cohort's proportions of each stratum.

    Parameters
    ----------
    cohort : Cohort
    test : float, optional
        Fraction of subjects held out for testing (paper: 60 of 200 = 0.3), rounded to a
        whole number of subjects (at least one unless 0).
    val : float, optional
        Fraction of the remaining (non-test) subjects used for validation (paper: 28 of
        140 = 0.2), rounded likewise.
    seed : int, numpy.random.Generator or None
        Draws the split; the same seed gives the same split.

    Returns
    -------
    Split
    """
    test = check_real("test", test, 0, 1, high_open=True, type_error=ValueError)
    val = check_real("val", val, 0, 1, high_open=True, type_error=ValueError)
    rng = check_rng(seed, "seed")
    subjects, first = np.unique(cohort.subjects, return_index=True)
    labels = np.empty(len(subjects), int)
    for i, s in enumerate(subjects):
        rows_labels = np.unique(cohort.labels[cohort.subjects == s])
        # a subject whose scans disagree (not in OASIS-1) counts as positive
        labels[i] = rows_labels.max()
    if len(subjects) < 3:
        raise ValueError(
            f"cohort has {len(subjects)} subject(s); a train/validation/test split needs >= 3."
        )
    keys = _strata(labels, cohort.sex[first], cohort.age[first])
    shuffle = rng.permutation(len(subjects))
    order = sorted(range(len(subjects)), key=lambda i: (keys[i], shuffle[i]))
    order = np.array(order)

    n = len(subjects)
    n_test = _share(test, n)
    n_val = _share(val, n - n_test)
    if n - n_test - n_val < 1:
        raise ValueError(
            f"cohort of {n} subjects is too small for test={test}, val={val}: no training "
            "subjects would be left."
        )
    is_test = np.zeros(n, bool)
    is_test[order[_systematic(n, n_test, rng)]] = True
    rest = order[~is_test[order]]
    is_val = np.zeros(n, bool)
    is_val[rest[_systematic(len(rest), n_val, rng)]] = True
    part = np.where(is_test, 2, np.where(is_val, 1, 0))
    assignment = dict(zip(subjects, part))
    row_part = np.array([assignment[s] for s in cohort.subjects])
    seed_value = seed if isinstance(seed, (numbers.Integral, type(None))) else None
    return Split(
        train=cohort.subset(np.flatnonzero(row_part == 0)),
        val=cohort.subset(np.flatnonzero(row_part == 1)),
        test=cohort.subset(np.flatnonzero(row_part == 2)),
        seed=seed_value,
    )

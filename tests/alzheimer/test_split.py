"""subject_split: no subject in two parts, stratified by label, sex and age, reproducible."""

import dataclasses

import numpy as np
import pytest
from alz_helpers import tiny_cohort

from torchscope import alzheimer as az


def _cohort(n, seed, rescans=0):
    c = tiny_cohort(n, shape=(8, 8), seed=seed, rescans=rescans)
    rng = np.random.default_rng(seed)
    # a strong age and sex imbalance between classes, so stratification has work to do
    age = np.where(c.labels == 1, rng.uniform(70, 95, len(c)), rng.uniform(55, 80, len(c)))
    sex = np.where(rng.uniform(size=len(c)) < np.where(c.labels == 1, 0.7, 0.3), "F", "M")
    # re-scans share their subject's age and sex
    first = {s: i for i, s in reversed(list(enumerate(c.subjects)))}
    idx = np.array([first[s] for s in c.subjects])
    return dataclasses.replace(c, age=age[idx], sex=sex[idx])


def test_papers_sizes_and_no_subject_crosses():
    c = _cohort(200, 0, rescans=20)
    split = az.subject_split(c, test=0.3, val=0.2, seed=1)
    assert (split.test.n_subjects, split.val.n_subjects, split.train.n_subjects) == (60, 28, 112)
    parts = [set(p.subjects) for p in (split.train, split.val, split.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sum(len(p) for p in (split.train, split.val, split.test)) == len(c)
    # every re-scan sits with its subject's first scan
    for p in (split.train, split.val, split.test):
        for scan in p.ids[np.char.endswith(p.ids.astype(str), "_MR2")]:
            assert scan.replace("_MR2", "_MR1") in p.ids


@pytest.mark.parametrize("seed", range(5))
def test_stratified_by_label_sex_and_age(seed):
    c = _cohort(200, seed)
    split = az.subject_split(c, seed=seed)
    for part in (split.train, split.val, split.test):
        n = len(part)
        # each stratum (label x sex) within 2 subjects of its share of the whole cohort
        for label in (0, 1):
            for sex in ("F", "M"):
                share = np.mean((c.labels == label) & (c.sex == sex))
                got = np.sum((part.labels == label) & (part.sex == sex))
                assert abs(got - share * n) <= 2.5, (label, sex, got, share * n)
        for label in (0, 1):
            assert abs(np.mean(part.age[part.labels == label])
                       - np.mean(c.age[c.labels == label])) < 3.0


def test_unstratified_draw_would_fail_the_check():
    """The check above can fail: a plain random subject split misses it for some seed."""
    c = _cohort(200, 0)
    worst = 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        test = rng.permutation(200)[:60]
        part = c.subset(test)
        share = np.mean((c.labels == 1) & (c.sex == "F"))
        worst = max(worst, abs(np.sum((part.labels == 1) & (part.sex == "F")) - share * 60))
    assert worst > 2.5


def test_same_seed_same_split_other_seed_other_split():
    c = _cohort(60, 3)
    a, b = az.subject_split(c, seed=7), az.subject_split(c, seed=7)
    assert list(a.test.ids) == list(b.test.ids) and list(a.val.ids) == list(b.val.ids)
    assert list(az.subject_split(c, seed=8).test.ids) != list(a.test.ids)


def test_split_refuses_a_subject_in_two_parts():
    c = _cohort(12, 0)
    with pytest.raises(ValueError, match="OAS1_0001"):
        az.Split(train=c.subset([0, 1, 2]), val=c.subset([0]), test=c.subset([5]))


def test_bad_fractions_and_tiny_cohorts():
    c = _cohort(12, 0)
    with pytest.raises(ValueError, match="test"):
        az.subject_split(c, test=1.2)
    with pytest.raises(ValueError, match="val"):
        az.subject_split(c, val=-0.1)
    with pytest.raises(ValueError, match="subject"):
        az.subject_split(c.subset([0, 1]))

"""The leakage demonstration, the lazy namespace and the shipped demo model."""

import hashlib
import re

import numpy as np
import pytest

import torchscope.alzheimer as az


def test_split_by_slice_leaks_split_by_subject_does_not():
    demo = az.leakage_demo(40, slices_per_subject=4, seed=1)
    assert demo.by_slice > 0.9  # random labels "predicted": neighbouring slices of the subject
    assert demo.by_subject < 0.8  # a new subject's random label cannot be predicted
    assert demo.by_slice - demo.by_subject > 0.2
    assert "split by subject" in str(demo)


def test_every_public_name_resolves():
    missing = [name for name in az.__all__ if getattr(az, name, None) is None]
    assert not missing
    for name in ("load_volume", "extract_slice", "load_oasis", "phantom_cohort",
                 "subject_split", "train", "evaluate", "predict", "save_model", "load_model",
                 "feature_maps", "occlusion_map"):
        assert name in az.__all__
    with pytest.raises(AttributeError, match="no_such"):
        az.no_such  # noqa: B018


def test_shipped_demo_model_matches_its_card():
    path = az.demo_model_path()
    card = path.with_suffix(".md").read_text()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest in card, "the model card's sha256 is not the shipped file's"
    assert re.search(r"not a diagnostic device", card, re.IGNORECASE)
    assert path.stat().st_size < 25e6
    model = az.load_model(path)
    assert tuple(model.config["shape"]) == (176, 208)
    cohort = az.phantom_cohort(6, seed=2024)
    p = az.predict(model, cohort.slices)
    assert p.shape == (6,) and np.all((p >= 0) & (p <= 1))

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


def test_familiarity_tells_training_like_slices_from_others():
    from torchscope.alzheimer._inference import FAMILIARITY_MARGIN_DB

    # the shipped demo model on a fresh phantom cohort (never trained on) against slices no
    # brain MRI gives: uniform grey, noise, a slice shifted sideways, an empty slice (which
    # reconstructs almost perfectly, yet gets P(AD) near 1)
    model = az.load_model(az.demo_model_path())
    history = model.history
    validation = history["ae_val_psnr"][history["best"]["autoencoder_epoch"] - 1]
    slices = az.phantom_cohort(6, seed=2024).slices
    psnr, reported, familiar = az.familiarity(model, slices)
    assert reported == pytest.approx(validation)
    assert psnr.shape == (6,) and familiar.all()
    assert np.all(np.abs(psnr - validation) < 3.0)  # as well as the validation slices
    # independently: 10 log10(1 / MSE) of the autoencoder's own reconstruction
    mse = np.mean((az.reconstruct(model, slices[0]) - slices[0]) ** 2)
    assert psnr[0] == pytest.approx(10 * np.log10(1 / mse), abs=1e-4)
    # a reconstruction already computed gives the same answer without a second pass
    given = az.familiarity(model, slices[0], reconstruction=az.reconstruct(model, slices[0]))
    assert given == (pytest.approx(psnr[0], abs=1e-5), reported, True)  # (batched: float32)
    with pytest.raises(ValueError, match="reconstruction has shape"):
        az.familiarity(model, slices[0], reconstruction=slices[:2])
    with pytest.raises(ValueError, match="reconstruction hold NaN"):
        az.familiarity(model, slices[0], reconstruction=np.full(slices[0].shape, np.nan))
    with pytest.raises(ValueError, match="reconstruction"):
        az.familiarity(model, slices[0], reconstruction=5 * slices[0])  # not in [0, 1]
    with pytest.raises(ValueError, match="slice_or_slices are"):
        az.familiarity(model, slices[0][:100])
    rng = np.random.default_rng(0)
    strange = [np.full(slices[0].shape, 0.5), rng.random(slices[0].shape),
               np.roll(slices[0], 30, axis=1)]
    for image in strange:
        p, v, ok = az.familiarity(model, image)
        assert isinstance(ok, bool) and not ok and p < v - FAMILIARITY_MARGIN_DB
    p, v, ok = az.familiarity(model, np.zeros(slices[0].shape))
    assert p > v and not ok  # no contrast: no brain

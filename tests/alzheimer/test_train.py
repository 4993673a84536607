"""Training: a tiny run, no leakage of test data into normalisation or selection, stop,
reproducibility, save/load, feature maps and occlusion maps."""

import dataclasses
import json

import numpy as np
import pytest
from alz_helpers import tiny_cohort

from torchscope import alzheimer as az

FAST = {"epochs_ae": 3, "epochs_clf": 4, "epochs_finetune": 2, "batch_size": 4, "patience": 50}


@pytest.fixture(scope="module")
def split():
    return az.subject_split(tiny_cohort(24, shape=(32, 40), seed=0), test=0.25, val=0.25,
                            seed=0)


@pytest.fixture(scope="module")
def trained(split):
    return az.train(split, seed=0, device="cpu", **FAST)


def test_tiny_training_run(trained, split):
    h = trained.history
    assert len(h["ae_train_loss"]) == 3 and len(h["ae_val_psnr"]) == 3
    assert h["clf_stage"] == ["classifier_frozen"] * 4 + ["classifier_finetune"] * 2
    assert h["ae_train_loss"][-1] < h["ae_train_loss"][0]  # it learns
    assert not h["stopped"]
    p = az.predict(trained, split.test.slices)
    assert p.shape == (len(split.test),) and np.all((p >= 0) & (p <= 1))
    assert isinstance(az.predict(trained, split.test.slices[0]), float)
    r = az.reconstruct(trained, split.test.slices)
    assert r.shape == split.test.slices.shape and r.min() >= 0 and r.max() <= 1
    cfg = trained.config
    json.dumps(cfg)  # the config is plain JSON
    assert cfg["train_subjects"] == sorted(set(split.train.subjects))
    assert not set(cfg["train_subjects"]) & set(split.test.subjects)
    assert trained.baseline is not None and trained.baseline["features"] == ["nWBV", "Age"]


def test_the_classifier_learns_the_label_on_a_fresh_cohort(trained):
    """The fast run separates the classes on subjects it never saw: a cohort generated anew
    (another seed, 200 subjects so the AUC is not a coin toss of a few cases). Measured
    (2026): ROC-AUC 0.91-0.94 over ten fresh cohorts; training on inverted labels gave 0.18."""
    from sklearn.metrics import roc_auc_score

    fresh = tiny_cohort(200, shape=(32, 40), seed=101)
    p = az.predict(trained, fresh.slices)
    assert roc_auc_score(fresh.labels, p) > 0.8


def test_train_predict_save_load_on_every_device(split, device, tmp_path):
    t = az.train(split, seed=0, device=device, epochs_ae=1, epochs_clf=2, epochs_finetune=1)
    assert t.device.type == device
    p = az.predict(t, split.test.slices)
    assert p.shape == (len(split.test),) and np.all((p >= 0) & (p <= 1))
    loaded = az.load_model(az.save_model(tmp_path / "m.safetensors", t), device=device)
    np.testing.assert_allclose(az.predict(loaded, split.test.slices), p, rtol=1e-6, atol=1e-7)
    # a model on one device predicts on another without being moved
    on_cpu = az.predict(t, split.test.slices, device="cpu")
    np.testing.assert_allclose(on_cpu, p, rtol=1e-4, atol=1e-5)
    assert t.device.type == device


def test_normalisation_uses_training_slices_only(split):
    # make validation and test slices very different: stats over all data would move a lot
    bright = dataclasses.replace(split.test, slices=np.ones_like(split.test.slices))
    dark = dataclasses.replace(split.val, slices=np.zeros_like(split.val.slices))
    odd = az.Split(train=split.train, val=dark, test=bright)
    t = az.train(odd, seed=1, device="cpu", epochs_ae=1, epochs_clf=1, epochs_finetune=0)
    train_px = split.train.slices.astype(np.float64)
    assert t.config["mean"] == pytest.approx(train_px.mean(), rel=1e-9)
    assert t.config["std"] == pytest.approx(train_px.std(), rel=1e-9)
    everything = np.concatenate([split.train.slices, dark.slices, bright.slices])
    assert abs(t.config["mean"] - everything.mean()) > 0.05  # the check can tell them apart


def test_predict_applies_the_stored_training_normalisation(trained, split):
    import torch

    x = split.test.slices
    manual = (x - trained.config["mean"]) / trained.config["std"]
    with torch.no_grad():
        logits = trained.classifier(torch.from_numpy(manual[:, None].astype(np.float32)))
    np.testing.assert_allclose(az.predict(trained, x), torch.sigmoid(logits).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_same_seed_same_model_and_global_rng_untouched(split):
    import torch

    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = az.train(split, seed=5, device="cpu", epochs_ae=1, epochs_clf=2, epochs_finetune=1)
    after = torch.rand(3)
    with torch.no_grad():  # a caller without autograd (a worker thread) changes nothing
        b = az.train(split, seed=5, device="cpu", epochs_ae=1, epochs_clf=2, epochs_finetune=1)
    assert torch.equal(before, after)  # training did not consume torch's global random state
    for (ka, va), (kb, vb) in zip(a.classifier.state_dict().items(),
                                  b.classifier.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka
    c = az.train(split, seed=6, device="cpu", epochs_ae=1, epochs_clf=2, epochs_finetune=1)
    assert not torch.equal(a.classifier.head[1].weight, c.classifier.head[1].weight)


def test_model_selection_never_sees_the_test_subjects(split):
    """Scrambling the test part changes nothing in training: it is not looked at."""
    rng = np.random.default_rng(0)
    scrambled = dataclasses.replace(
        split.test, slices=rng.uniform(size=split.test.slices.shape).astype(np.float32),
        labels=1 - split.test.labels)
    a = az.train(split, seed=2, device="cpu", **FAST)
    b = az.train(az.Split(split.train, split.val, scrambled), seed=2, device="cpu", **FAST)
    assert a.history["clf_val_loss"] == b.history["clf_val_loss"]
    np.testing.assert_array_equal(az.predict(a, split.val.slices), az.predict(b, split.val.slices))


def test_callback_sees_every_epoch_and_can_stop(split):
    seen = []

    def callback(progress):
        seen.append((progress.stage, progress.epoch))
        return not (progress.stage == "autoencoder" and progress.epoch == 2)

    t = az.train(split, seed=0, device="cpu", epochs_ae=5, epochs_clf=3, callback=callback)
    assert seen == [("autoencoder", 1), ("autoencoder", 2)]
    assert t.history["stopped"] and len(t.history["ae_train_loss"]) == 2
    assert t.history["clf_stage"] == []


def test_iterate_train_generator_and_send_stop(split):
    gen = az.iterate_train(split, seed=0, device="cpu", epochs_ae=2, epochs_clf=5,
                           epochs_finetune=2, patience=50)
    stages = [next(gen).stage]
    stages.append(gen.send(None).stage)
    p = gen.send(None)  # first frozen epoch
    assert p.stage == "classifier_frozen" and p.epoch == 1 and 0 <= p.val_score <= 1
    done = gen.send(True)  # stop
    assert done.stage == "done" and done.trained.history["stopped"]
    assert stages == ["autoencoder", "autoencoder"]
    with pytest.raises(StopIteration):
        next(gen)


def test_early_stopping_on_validation(split):
    t = az.train(split, seed=0, device="cpu", epochs_ae=1, epochs_clf=200, epochs_finetune=0,
                 patience=3, lr_clf=1e-2)
    losses = t.history["clf_val_loss"]
    assert len(losses) < 200
    best = int(np.argmin(losses))
    assert len(losses) - 1 - best == 3  # stopped 3 epochs after the best
    assert t.history["best"]["classifier"]["epoch"] == best + 1


def test_save_load_round_trip_gives_identical_predictions(trained, split, tmp_path):
    path = az.save_model(tmp_path / "m.safetensors", trained)
    raw = path.read_bytes()
    assert b"pickle" not in raw[:2000] and raw[8:9] == b"{"  # a safetensors JSON header
    loaded = az.load_model(path, device="cpu")
    np.testing.assert_array_equal(az.predict(loaded, split.test.slices),
                                  az.predict(trained, split.test.slices))
    np.testing.assert_array_equal(az.reconstruct(loaded, split.test.slices),
                                  az.reconstruct(trained, split.test.slices))
    assert loaded.config == trained.config and loaded.baseline == trained.baseline
    assert loaded.history["ae_val_psnr"] == trained.history["ae_val_psnr"]
    with pytest.raises(ValueError, match="not a torchscope.alzheimer model"):
        from safetensors.numpy import save_file
        save_file({"x": np.zeros(2)}, str(tmp_path / "other.safetensors"))
        az.load_model(tmp_path / "other.safetensors")


def test_load_model_names_the_file_when_it_is_damaged(trained, tmp_path):
    """A truncated file, a configuration without its widths and missing tensors raised
    safetensors', json's and torch's own errors (SafetensorError, KeyError, RuntimeError)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = az.save_model(tmp_path / "m.safetensors", trained)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="cut.safetensors.*not a safetensors file"):
        az.load_model(cut)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safetensors API
    config = json.loads(meta["config"])
    del config["widths"]
    save_file(tensors, str(tmp_path / "config.safetensors"),
              metadata={**meta, "config": json.dumps(config)})
    with pytest.raises(ValueError, match="config.safetensors.*cannot be built.*widths"):
        az.load_model(tmp_path / "config.safetensors")
    partial = {k: v for k, v in tensors.items() if not k.startswith("classifier.head")}
    save_file(partial, str(tmp_path / "partial.safetensors"), metadata=meta)
    with pytest.raises(ValueError, match="partial.safetensors.*classifier.*head"):
        az.load_model(tmp_path / "partial.safetensors")


def test_feature_maps_shapes(trained, split):
    maps = az.feature_maps(trained, split.test.slices[0])
    c1, c2, c3 = trained.config["widths"]
    assert {k: v.shape for k, v in maps.items()} == {
        "conv1": (c1, 32, 40), "conv2": (c2, 16, 20), "conv3": (c3, 8, 10),
        "conv4": (c2, 8, 10), "conv5": (c1, 16, 20), "conv6": (1, 32, 40)}
    assert all(v.dtype == np.float32 for v in maps.values())
    assert (maps["conv1"] >= 0).all()  # after ReLU
    np.testing.assert_allclose(maps["conv6"][0], az.reconstruct(trained, split.test.slices[0]),
                               rtol=1e-5, atol=1e-6)
    clf_maps = az.feature_maps(trained, split.test.slices[0], layers=["conv3"],
                               network="classifier")
    assert list(clf_maps) == ["conv3"] and clf_maps["conv3"].shape == (c3, 8, 10)
    with pytest.raises(ValueError, match="conv4"):
        az.feature_maps(trained, split.test.slices[0], layers=["conv4"], network="classifier")


def test_occlusion_map(trained, split):
    s = split.test.slices[0]
    m = az.occlusion_map(trained, s, patch=8, stride=4)
    assert m.shape == s.shape and m.dtype == np.float32
    assert np.all(np.abs(m) <= 1)
    # a map by hand for one square at the corner: probability drop when it is filled
    p0 = az.predict(trained, s)
    occluded = s.copy()
    occluded[:8, :8] = trained.config["mean"]
    corner_only = az.occlusion_map(trained, s, patch=8, stride=8)
    assert corner_only[0, 0] == pytest.approx(p0 - az.predict(trained, occluded), abs=1e-6)
    logit = az.occlusion_map(trained, s, patch=8, stride=8, units="logit")

    def log_odds(p):
        return np.log(p / (1 - p))

    assert logit[0, 0] == pytest.approx(log_odds(p0) - log_odds(az.predict(trained, occluded)),
                                        abs=1e-3)
    with pytest.raises(ValueError, match="stride"):
        az.occlusion_map(trained, s, patch=4, stride=8)


@pytest.mark.parametrize("fill,units", [(None, "probability"), (0.0, "probability"),
                                        (1.0, "logit")])
def test_occlusion_map_matches_brute_force(trained, split, fill, units):
    """The whole map against a loop over every square with the public predict: each
    patch x patch square on the stride grid (here it tiles the 32 x 40 slice exactly) is set
    to fill (default the training mean), and a pixel gets the mean, over the squares covering
    it, of score(intact) - score(occluded); logit units use log-odds."""
    s = split.test.slices[1]
    patch, stride = 8, 4
    value = trained.config["mean"] if fill is None else fill

    def score(x):
        q = np.asarray(az.predict(trained, x), np.float64)
        return q if units == "probability" else np.log(q / (1 - q))

    s0 = score(s)
    total, count = np.zeros(s.shape), np.zeros(s.shape)
    for i in range(0, 32 - patch + 1, stride):
        for j in range(0, 40 - patch + 1, stride):
            occluded = s.copy()
            occluded[i:i + patch, j:j + patch] = value
            total[i:i + patch, j:j + patch] += s0 - score(occluded)
            count[i:i + patch, j:j + patch] += 1
    expected = total / count
    got = az.occlusion_map(trained, s, patch=patch, stride=stride, fill=fill, units=units)
    assert np.ptp(expected) > 1e-3  # the map is not flat: it can tell boxes apart
    tol = 1e-5 if units == "probability" else 1e-3
    np.testing.assert_allclose(got, expected, atol=tol * max(1.0, np.abs(expected).max()))


def test_input_checks(trained, split):
    with pytest.raises(ValueError, match=r"\(32, 40\)"):
        az.predict(trained, np.zeros((30, 40)))
    with pytest.raises(TypeError, match="Trained"):
        az.predict("model.safetensors", split.test.slices)
    with pytest.raises(TypeError, match="Cohort or a Split"):
        az.train(split.test.slices)
    odd = dataclasses.replace(split.train, slices=split.train.slices[:, :30, :38])
    odd_val = dataclasses.replace(split.val, slices=split.val.slices[:, :30, :38])
    with pytest.raises(ValueError, match="multiples of 4"):
        az.train(az.Split(odd, odd_val, split.test), epochs_ae=1)
    one_class = split.train.subset(np.flatnonzero(split.train.labels == 0))
    with pytest.raises(ValueError, match="one class"):
        az.train(az.Split(one_class, split.val, split.test), epochs_ae=1)


def test_evaluate_reports_model_and_baseline(trained, split):
    from sklearn.linear_model import LogisticRegression

    m = az.evaluate(trained, split.test)
    np.testing.assert_allclose(m.probabilities, az.predict(trained, split.test.slices))
    np.testing.assert_array_equal(m.labels, split.test.labels)
    assert m.n == len(split.test) and m.confusion.sum() == len(split.test)
    # the baseline: a logistic regression on nWBV and age fitted on the training subjects only
    x_train = np.stack([split.train.clinical["nWBV"], split.train.age], 1)
    mean, std = x_train.mean(0), x_train.std(0)
    ref = LogisticRegression(tol=1e-10, max_iter=10000).fit((x_train - mean) / std,
                                                            split.train.labels)
    x_test = np.stack([split.test.clinical["nWBV"], split.test.age], 1)
    np.testing.assert_allclose(m.baseline.probabilities,
                               ref.predict_proba((x_test - mean) / std)[:, 1], atol=1e-6)
    assert "nWBV+age" in str(m)
    assert set(m.as_dict()) >= {"accuracy", "balanced_accuracy", "f1", "sensitivity",
                                "specificity", "roc_auc", "confusion", "baseline"}
    no_csv = dataclasses.replace(split.test, clinical={})
    assert az.evaluate(trained, no_csv).baseline is None


def test_evaluate_warns_on_training_subjects(trained, split):
    with pytest.warns(UserWarning, match="trained or validated on"):
        az.evaluate(trained, split.train)


def test_slices_outside_the_unit_range_are_refused(trained, split):
    """A raw uint8 slice (0 to 255) was classified with certainty, the opposite of the same
    slice scaled to [0, 1]: the networks only know scaled slices."""
    s = split.test.slices[0]
    assert 0.0 <= az.predict(trained, s) <= 1.0
    for raw in ((s * 255).astype(np.uint8), s * 1000.0, s - 0.5):
        for call in (az.predict, az.reconstruct):
            with pytest.raises(ValueError, match=r"scaled to \[0, 1\]: use normalise_slice"):
                call(trained, raw)
    assert az.predict(trained, az.normalise_slice((s * 255).astype(np.uint8))) == pytest.approx(
        az.predict(trained, s), abs=0.02)
    with pytest.raises(ValueError, match=r"Cohort: slices hold values from 0 to 255"):
        dataclasses.replace(split.test, slices=(split.test.slices * 255).astype(np.uint8))


def test_a_model_without_classifier_epochs_saves_standard_json(split, tmp_path):
    untrained = az.train(split, seed=0, device="cpu", epochs_ae=1, epochs_clf=0,
                         epochs_finetune=0, batch_size=4)
    assert untrained.history["best"]["classifier"]["val_loss"] is None  # not inf
    path = tmp_path / "m.safetensors"
    az.save_model(path, untrained)
    header_size = int.from_bytes(path.read_bytes()[:8], "little")
    header = path.read_bytes()[8:8 + header_size].decode()

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    for key in ("config", "history", "baseline"):  # strict parsers refuse Infinity and NaN
        json.loads(json.loads(header)["__metadata__"][key], parse_constant=refuse)


def test_clear_errors_for_seeds_subsets_and_slice_counts(split):
    cohort = split.train
    assert len(cohort.subset([])) == 0  # an empty list is a float array to numpy
    with pytest.raises(ValueError, match="seed must be an integer >= 0 or None, got -3"):
        az.phantom_cohort(4, seed=-3)
    with pytest.raises(ValueError, match="seed must be an integer in"):
        az.train(split, seed=-1, device="cpu", **FAST)
    with pytest.raises(ValueError, match="seed must be an integer in"):  # not torch's overflow
        az.train(split, seed=2 ** 64, device="cpu", **FAST)
    with pytest.raises(TypeError, match="seed must be an integer"):
        az.train(split, seed=1.5, device="cpu", **FAST)
    with pytest.raises(ValueError, match="seed must be a non-negative integer seed"):
        az.subject_split(cohort, seed=-1)
    with pytest.raises(ValueError, match="leaves the phantom's 176 axial slices"):
        az.leakage_demo(3, slices_per_subject=200)
    with pytest.raises(ValueError, match="fill must be a finite value"):
        az.occlusion_map(az.load_model(az.demo_model_path()), az.phantom_cohort(
            3, seed=5).slices[0], patch=88, stride=88, fill=float("nan"))
    # scaled in float64: float32 first lost the contrast of large integers
    np.testing.assert_array_equal(
        az.normalise_slice(np.array([[10**8, 10**8 + 3]], np.int64)), [[0.0, 1.0]])

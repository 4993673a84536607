"""The scorer network, the dataset builder and a tiny run of the training script."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from torchscope.deblur import _dataset, score_regions

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_deblur_scorer.py"


def _script():
    spec = importlib.util.spec_from_file_location("train_deblur_scorer", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_network_shape_and_head():
    import torch

    from torchscope.deblur._scorer import RegionScorer, feature_size

    assert feature_size(228) == 8  # 228 -> 114 -> 57 -> 29 -> 15 -> 8
    net = RegionScorer(width=4, patch_size=228).eval()
    blocks = [len(stage) for stage in net.stages]
    assert blocks == [3, 4, 6, 3]  # ResNet34's stages
    assert not any(isinstance(m, (torch.nn.MaxPool2d, torch.nn.AvgPool2d,
                                  torch.nn.AdaptiveAvgPool2d)) for m in net.modules())
    with torch.no_grad():
        out = net(torch.rand(2, 1, 228, 228))
    assert out.shape == (2,)
    with pytest.raises(ValueError, match="228 x 228"):
        net(torch.rand(1, 1, 200, 200))


def test_split_is_by_source_and_labels_are_guarded():
    split = _dataset.split_sources([f"s{i}" for i in range(20)], seed=1)
    assert set(split.values()) == {"train", "val", "test"}
    assert split == _dataset.split_sources([f"s{i}" for i in range(20)][::-1], seed=1)
    kernel = np.zeros((9, 9))
    kernel[4, 2:7] = [0.1, 0.2, 0.4, 0.2, 0.1]  # compact: the trivial score is high
    trivial = kernel.max() / np.linalg.norm(kernel)
    assert trivial > 0.75
    gen = np.random.default_rng(0)
    k = _dataset.random_kernel(gen, (11, 15), max_trivial=0.6)
    assert k.shape[0] in (11, 13, 15) and k.max() / np.linalg.norm(k) <= 0.6


def _tiny_sources():
    gen = np.random.default_rng(0)
    images = {}
    for i in range(3):
        image = np.full((96, 96), 0.5)
        for _ in range(8):
            r, c = gen.integers(0, 80, 2)
            image[r:r + 24, c:c + 24] = gen.random()
        images[f"shapes{i}"] = image
    return images


def _tiny_build(out, **options):
    """The tiny set: 3 blurred 96 x 96 images, 4 windows of 64 x 64 each."""
    options = {"kernels_per_crop": 1, "crops_per_source": 1, "crop": 96, "size": 64,
               "stride": 32, "kernel_sizes": (7, 9), "iterations": 1, "device": "cpu",
               "log": lambda *a: None, **options}
    return _dataset.build(out, sources=_tiny_sources(), **options)


def _shard_arrays(folder):
    shards = {}
    for path in sorted(Path(folder).glob("*.npz")):
        with np.load(path) as z:
            shards[path.name] = {key: z[key] for key in z.files}
    return shards


def test_tiny_build_and_training_run(tmp_path):
    data = tmp_path / "set"
    _tiny_build(data)
    shards = _dataset.load(data)
    assert len(shards) == 3
    assert {s["split"] for s in shards} == {"train", "val", "test"}
    for s in shards:
        assert s["boxes"].shape == (4, 4) and s["labels"].dtype == bool
        good = (s["similarity"] > 0.75) & (s["similarity"] >= s["trivial"] + 0.1)
        np.testing.assert_array_equal(s["labels"], good)
    config = json.loads((data / "dataset.json").read_text())
    assert config["size"] == 64 and set(config["split"]) == set(_tiny_sources())
    # building again resumes: nothing is recomputed
    before = {p.name: p.stat().st_mtime_ns for p in data.glob("*.npz")}
    _tiny_build(data)
    assert before == {p.name: p.stat().st_mtime_ns for p in data.glob("*.npz")}

    out = tmp_path / "scorer.safetensors"
    card = _script().main(["--data", str(data), "--out", str(out), "--epochs", "1",
                           "--max-steps", "2", "--width", "4", "--batch-size", "2",
                           "--device", "cpu"])
    assert out.is_file() and out.with_suffix(".md").is_file()
    assert card["training"]["epochs_run"] == 1 and card["sha256"]
    assert card["shards"] == sorted(p.stem for p in data.glob("*.npz"))
    assert ", ".join(card["shards"]) in out.with_suffix(".md").read_text()
    assert {"within_image_auc", "top_similarity_gain"} <= set(card["test"])
    again = _script().main(["--data", str(data), "--out", str(out), "--evaluate-only",
                            "--device", "cpu"])
    assert again["test"] == pytest.approx(card["test"], nan_ok=True)
    # fine-tuning from those weights with the within-image ranking term
    tuned = tmp_path / "tuned.safetensors"
    card = _script().main(["--data", str(data), "--out", str(tuned), "--epochs", "1",
                           "--max-steps", "1", "--batch-size", "4", "--group", "2",
                           "--rank-weight", "1", "--init", str(out),
                           "--select", "within_image_auc", "--device", "cpu"])
    assert card["training"]["init"] == str(out) and card["training"]["rank_weight"] == 1.0
    assert tuned.is_file()
    regions = score_regions(np.random.default_rng(1).random((100, 120)), size=64, stride=16,
                            weights=out, device="cpu")
    assert regions.boxes.shape == (12, 4)
    assert ((regions.scores > 0) & (regions.scores < 1)).all()
    with pytest.raises(ValueError, match="size=64"):
        score_regions(np.zeros((100, 120)), size=50, weights=out)


def test_evaluation_separates_pooled_and_within_image_ranking(monkeypatch):
    script = _script()
    gen = np.random.default_rng(0)
    shards = []
    for offset in (0.0, 0.5):  # a hard image (all windows poor) and an easier one
        sims = offset + 0.5 * gen.random(20)
        shards.append({"split": "test", "boxes": np.zeros((20, 4), int), "similarity": sims,
                       "labels": sims > 0.75})
    sims = np.concatenate([s["similarity"] for s in shards])
    labels = sims > 0.75

    def run(scores):
        monkeypatch.setattr(script, "_scores", lambda *a: np.asarray(scores, float))
        return script.evaluate(None, shards, "test", "cpu")

    perfect = run(sims)
    assert perfect["auc"] == 1.0 and perfect["within_image_auc"] == 1.0
    assert perfect["precision_at_1"] == 1.0 and perfect["images_with_both"] == 1
    gains = [s["similarity"].max() - s["similarity"].mean() for s in shards]
    assert perfect["top_similarity_gain"] == pytest.approx(np.mean(gains))
    # scores that only tell the images apart: pooled AUC high, within the image reversed
    image_only = np.concatenate([-sims[:20], 10 - sims[20:]])
    result = run(image_only)
    assert result["auc"] > 0.7 and result["within_image_auc"] == 0.0
    assert result["precision_at_1"] == float(labels[20:][np.argmin(sims[20:])])
    worst = [s["similarity"].min() - s["similarity"].mean() for s in shards]
    assert result["top_similarity_gain"] == pytest.approx(np.mean(worst))


def test_smoothed_similarity_by_hand():
    script = _script()
    # a 3 x 2 grid of windows (stride 20), listed in another order than the grid's
    grid = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    cells = [(2, 1), (0, 0), (1, 0), (0, 1), (2, 0), (1, 1)]
    boxes = np.array([[20 * r, 20 * c, 228, 228] for r, c in cells])
    sims = np.array([grid[r, c] for r, c in cells])
    # radius 1: the mean over the 3 x 3 square around each window, cut at the border
    expected = {(0, 0): 1.5, (0, 1): 1.5, (1, 0): 2.5, (1, 1): 2.5, (2, 0): 3.5, (2, 1): 3.5}
    np.testing.assert_allclose(script.smoothed_similarity(boxes, sims, 1),
                               [expected[cell] for cell in cells])
    np.testing.assert_allclose(script.smoothed_similarity(boxes, sims, 0), sims)


def test_neighbour_choice_leaves_the_window_out():
    script = _script()
    grid = np.full((3, 3), 0.9)
    grid[1, 1] = 0.1  # the best neighbourhood, the worst window
    boxes = np.array([[20 * r, 20 * c, 228, 228] for r in range(3) for c in range(3)])
    shard = {"split": "val", "boxes": boxes, "similarity": grid.reshape(-1)}
    other = {"split": "train", "boxes": boxes, "similarity": np.zeros(9)}
    result = script.neighbour_choice([shard, other], "val")
    assert result["images"] == 1 and result["good"] == 0.0
    assert result["gain"] == pytest.approx(0.1 - grid.mean())
    assert result["random"] == pytest.approx(8 / 9)


def test_rank_loss_and_grouped_batches_by_hand():
    import torch

    script = _script()
    logits = torch.tensor([2.0, 0.0, 1.0, 5.0])
    sims = torch.tensor([0.9, 0.5, 0.52, 0.1])
    image = torch.tensor([0, 0, 0, 1])
    # pairs of image 0 with similarities more than 0.05 apart: (0 over 1), (0 over 2)
    expected = (np.log1p(np.exp(-2.0)) + np.log1p(np.exp(-1.0))) / 2
    assert float(script.rank_loss(logits, sims, image)) == pytest.approx(expected)
    assert float(script.rank_loss(logits, sims, torch.arange(4))) == 0.0  # no pair
    logits.requires_grad_(True)
    script.rank_loss(logits, sims, image).backward()
    assert logits.grad[0] < 0 < logits.grad[1] and logits.grad[3] == 0

    items = [(i, j) for i in range(3) for j in range(10)]
    batches = script._grouped_batches(items, np.random.default_rng(0), 8, 4)
    seen = [item for batch in batches for item in batch]
    assert len(seen) == len(set(seen)) == 3 * 8  # 2 whole groups of 4 per image
    for batch in batches:
        assert len(batch) <= 8
        for k in range(0, len(batch), 4):
            assert len({i for i, _ in batch[k:k + 4]}) == 1
    # every batch has pairs for the ranking term (random similarities: no ties)
    similarity = torch.rand(3, 10, dtype=torch.float64)
    for batch in batches:
        index = torch.tensor(batch)
        loss = script.rank_loss(torch.zeros(len(batch)), similarity[index[:, 0], index[:, 1]],
                                index[:, 0], margin=0.0)
        assert float(loss) == pytest.approx(np.log(2.0))  # softplus(0) over >= 1 pair
    with pytest.raises(SystemExit):
        script.main(["--data", "x", "--rank-weight", "1", "--group", "1"])


def _no_estimation(*args, **kwargs):
    raise AssertionError("a kernel was estimated")


def test_shards_rebuild_from_label_files_without_estimation(tmp_path, monkeypatch):
    data, labels = tmp_path / "set", tmp_path / "labels"
    _tiny_build(data, labels_dir=labels)
    first = _shard_arrays(data)
    files = sorted(labels.glob("*.json"))
    assert [f.stem for f in files] == [Path(n).stem for n in first]
    record = json.loads(files[0].read_text())
    assert record["config"]["iterations"] == 1 and record["windows"] == 4
    assert len(record["similarity"]) == 4 and files[0].stat().st_size < 2000

    monkeypatch.setattr(_dataset, "estimate_kernel", _no_estimation)
    # a shard built before without a label file gets one, read from the shard
    files[0].unlink()
    _tiny_build(data, labels_dir=labels)
    assert json.loads(files[0].read_text()) == {
        **record, "estimated_with": f"unknown: written from the shard {files[0].stem}.npz"}
    # the shards come back from the label files alone, identical
    for path in data.glob("*.npz"):
        path.unlink()
    _tiny_build(data, labels_dir=labels)
    again = _shard_arrays(data)
    assert again.keys() == first.keys()
    for name, shard in first.items():
        assert again[name].keys() == shard.keys()
        for key, value in shard.items():
            np.testing.assert_array_equal(again[name][key], value, err_msg=f"{name}: {key}")
            assert again[name][key].dtype == value.dtype


def test_labelled_only_rebuilds_the_labelled_shards_and_skips_the_rest(tmp_path, monkeypatch):
    data, labels = tmp_path / "set", tmp_path / "labels"
    _tiny_build(data, labels_dir=labels)
    first = _shard_arrays(data)
    dropped = min(labels.glob("*.json"))
    dropped.unlink()
    monkeypatch.setattr(_dataset, "estimate_kernel", _no_estimation)
    again = tmp_path / "again"
    _tiny_build(again, labels_dir=labels, labelled_only=True)
    rebuilt = _shard_arrays(again)
    assert set(rebuilt) == set(first) - {f"{dropped.stem}.npz"}
    for name, shard in rebuilt.items():
        np.testing.assert_array_equal(shard["similarity"], first[name]["similarity"])
    assert not dropped.exists()  # nothing estimated, no label file written
    with pytest.raises(ValueError, match="needs labels_dir"):
        _tiny_build(tmp_path / "none", labelled_only=True)


def test_regenerate_gives_each_shard_from_its_label_file_alone(tmp_path, monkeypatch):
    data, labels = tmp_path / "set", tmp_path / "labels"
    _tiny_build(data, labels_dir=labels)
    shards = _shard_arrays(data)
    monkeypatch.setattr(_dataset, "estimate_kernel", _no_estimation)
    sources = _tiny_sources()
    for path in sorted(labels.glob("*.json")):
        record = json.loads(path.read_text())
        again = _dataset.regenerate(path, image=sources[record["source"]])
        shard = shards[f"{path.stem}.npz"]
        for key in ("blurred", "kernel", "boxes", "similarity", "labels"):
            np.testing.assert_array_equal(again[key], shard[key], err_msg=f"{path.stem}: {key}")
        assert again["blurred"].dtype == np.float16 and again["source"] == record["source"]
    # another source image is not the labelled one
    with pytest.raises(ValueError, match="blurred image sha256"):
        _dataset.regenerate(path, image=np.rot90(sources[record["source"]]))
    (tmp_path / "not.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a scorer label file"):
        _dataset.regenerate(tmp_path / "not.json")


def test_trivial_score_may_differ_in_its_last_digits(tmp_path, monkeypatch):
    # another CPU rounds the kernel's norm differently: 21 of the committed label files hold
    # a trivial score 3e-17 to 1.1e-16 off the one this machine regenerates (an audit, on an
    # AVX2 machine); such labels must still rebuild, a really different score must not
    data, labels = tmp_path / "set", tmp_path / "labels"
    _tiny_build(data, labels_dir=labels)
    monkeypatch.setattr(_dataset, "estimate_kernel", _no_estimation)
    sources = _tiny_sources()
    path = min(labels.glob("*.json"))
    record = json.loads(path.read_text())
    nudged = float(np.nextafter(record["trivial"], 1.0))
    path.write_text(json.dumps({**record, "trivial": nudged}))
    again = _dataset.regenerate(path, image=sources[record["source"]])
    assert again["trivial"] == nudged  # the labelling's own value
    path.write_text(json.dumps({**record, "trivial": record["trivial"] + 1e-6}))
    with pytest.raises(ValueError, match="trivial score"):
        _dataset.regenerate(path, image=sources[record["source"]])


def test_label_file_of_another_image_is_refused(tmp_path, monkeypatch):
    data, labels = tmp_path / "set", tmp_path / "labels"
    _tiny_build(data, labels_dir=labels)
    path = sorted(labels.glob("*.json"))[1]
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "blurred_sha256": "0" * 64}))
    for shard in data.glob("*.npz"):
        shard.unlink()
    monkeypatch.setattr(_dataset, "estimate_kernel", _no_estimation)
    with pytest.raises(ValueError, match="sha256.*another numpy, torch or blur version"):
        _tiny_build(data, labels_dir=labels)


def test_label_files_of_other_settings_are_refused(tmp_path, monkeypatch):
    labels = tmp_path / "labels"
    _tiny_build(tmp_path / "set", labels_dir=labels)
    monkeypatch.setattr(_dataset, "estimate_kernel", _no_estimation)
    with pytest.raises(ValueError, match=r"differing keys: threshold \(labels 0.75, build 0.8\)"):
        _tiny_build(tmp_path / "other", labels_dir=labels, threshold=0.8)
    with pytest.raises(ValueError, match="differing keys: seed .*, stride"):  # shards there too
        _tiny_build(tmp_path / "set", labels_dir=labels, seed=1, stride=16)


def test_label_files_record_the_kernel_cut(tmp_path, monkeypatch):
    labels = tmp_path / "labels"
    _tiny_build(tmp_path / "set", labels_dir=labels, kernel_cut=0.2)
    files = sorted(labels.glob("*.json"))
    assert {json.loads(f.read_text())["config"]["kernel_cut"] for f in files} == {0.2}
    monkeypatch.setattr(_dataset, "estimate_kernel", _no_estimation)
    with pytest.raises(ValueError, match=r"differing keys: kernel_cut \(labels 0.2, build 0.1\)"):
        _tiny_build(tmp_path / "other", labels_dir=labels)
    # files from before the key existed were made with the authors' 0.05
    for f in files:
        record = json.loads(f.read_text())
        del record["config"]["kernel_cut"]
        f.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"kernel_cut \(labels 0.05, build 0.2\)"):
        _tiny_build(tmp_path / "other", labels_dir=labels, kernel_cut=0.2)
    _tiny_build(tmp_path / "other", labels_dir=labels, kernel_cut=0.05)  # no estimation
    assert len(list((tmp_path / "other").glob("*.npz"))) == len(files)


def test_the_training_script_passes_the_kernel_cut_to_the_build(monkeypatch):
    seen = []

    def build(argv):
        seen.append(argv)
        raise SystemExit(0)

    monkeypatch.setattr(_dataset, "main", build)
    for given, forwarded in ((["--kernel-cut", "0"], ["--kernel-cut", "0.0"]),
                             (["--kernel-cut", "0.05"], ["--kernel-cut", "0.05"]), ([], [])):
        with pytest.raises(SystemExit):
            _script().main(["--data", "d", "--build", *given])
        assert seen[-1] == ["d", *forwarded]


def test_a_folder_of_shards_of_other_settings_is_refused(tmp_path, monkeypatch):
    data = tmp_path / "set"
    _tiny_build(data)
    monkeypatch.setattr(_dataset, "estimate_kernel", _no_estimation)
    with pytest.raises(ValueError, match=r"shards built with other settings; differing keys: "
                                         r"threshold \(shards there 0.75, build 0.8\)"):
        _tiny_build(data, threshold=0.8)
    _tiny_build(data)  # the same settings resume, estimating nothing


def test_load_refuses_other_files(tmp_path):
    import torch
    from safetensors.torch import save_file

    from torchscope.deblur._scorer import load_scorer

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ValueError, match="not a region-scorer file"):
        load_scorer(path)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(b"\x08" + bytes(20))
    with pytest.raises(ValueError, match="cut.safetensors.*not a safetensors file"):
        load_scorer(cut)
    with pytest.raises(ValueError, match="is a folder"):
        load_scorer(tmp_path)
    from torchscope.deblur._scorer import FORMAT

    save_file({"w": torch.zeros(2)}, str(tmp_path / "width.safetensors"),
              metadata={"format": FORMAT, "width": "-8", "patch_size": "228"})
    with pytest.raises(ValueError, match="width.safetensors.*cannot be built"):  # torch's
        load_scorer(tmp_path / "width.safetensors")  # RuntimeError escaped


def test_cnn_scores_reads_a_weight_file_once_per_version(tmp_path, monkeypatch):
    import os

    import torch

    from torchscope.deblur import _scorer

    boxes = np.array([[0, 0, 64, 64], [16, 32, 64, 64]])
    image = np.random.default_rng(0).random((96, 96)).astype(np.float32)
    path = tmp_path / "mine.safetensors"

    def write(seed):
        torch.manual_seed(seed)
        _scorer.save_weights(_scorer.RegionScorer(width=4, patch_size=64), path)

    loads = []
    real = _scorer.load_scorer
    monkeypatch.setattr(_scorer, "load_scorer", lambda *a, **k: loads.append(a) or real(*a, **k))
    write(0)
    first = _scorer.cnn_scores(image, boxes, weights=path, device="cpu")
    again = _scorer.cnn_scores(image, boxes, weights=path, device="cpu")
    np.testing.assert_array_equal(first, again)
    assert len(loads) == 1
    write(1)  # a new version of the file (its time stamp moved on) is read again
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
    other = _scorer.cnn_scores(image, boxes, weights=path, device="cpu")
    assert len(loads) == 2 and not np.allclose(other, first)

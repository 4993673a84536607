"""scripts/evaluate_deblur_regions.py: the set, one tiny evaluation, the summary, the guard."""

import json

import numpy as np
import pytest
from skimage import data, transform

from torchscope.deblur import (
    _dataset,
    blur,
    deconvolve,
    error_ratio,
    estimate_kernel,
    kernel_similarity,
    score_regions,
)


@pytest.fixture(scope="module")
def ev(repo_script):
    return repo_script("evaluate_deblur_regions")


@pytest.fixture(scope="module")
def tiny_cases(ev):
    sharp = transform.resize(data.camera() / 255.0, (160, 160), anti_aliasing=True)
    cases, skipped = ev.build_cases({"small": sharp, "smaller": sharp[:100, :100]}, crop=128,
                                    kernels=2, kernel_sizes=(7, 11), forbidden=set(), log=None)
    return cases, skipped


def test_cases_are_seeded_per_source_and_noisy(ev, tiny_cases):
    cases, skipped = tiny_cases
    assert skipped == ["smaller"] and [c.name for c in cases] == ["small_k0", "small_k1"]
    sharp = transform.resize(data.camera() / 255.0, (160, 160), anti_aliasing=True)
    again, _ = ev.build_cases({"other": sharp[::-1], "small": sharp}, crop=128, kernels=2,
                              kernel_sizes=(7, 11), forbidden=set(), log=None)
    for a, b in zip(cases, again[2:]):  # another source before it changes nothing
        np.testing.assert_array_equal(a.blurred, b.blurred)
    for case in cases:
        size = case.kernel.shape[0]
        assert case.sharp.shape == case.blurred.shape == (128, 128)
        assert size % 2 == 1 and 7 <= size <= 11 and case.kernel.sum() == pytest.approx(1)
        noise = case.blurred - blur(case.sharp, case.kernel)
        assert noise.std() == pytest.approx(0.01, rel=0.1)


def test_tiny_evaluation_matches_the_public_functions(ev, tiny_cases):
    cases, _ = tiny_cases
    methods = ("variance", "edges", "random", "whole", "oracle")
    records = ev.evaluate(cases, methods, size=64, stride=32, device="cpu", log=None)
    for case, record in zip(cases, records):
        res = record["results"]
        assert list(res) == list(methods) and record["kernel_size"] == case.kernel.shape[0]
        # the true kernel through the same deconvolution: exactly the reference restoration
        assert res["oracle"]["ratio"] == 1.0
        assert res["oracle"]["similarity"] == pytest.approx(1.0)
        assert res["whole"]["box"] == (0, 0, 128, 128)
        for scorer in ("variance", "edges"):
            best = score_regions(case.blurred, size=64, stride=32, scorer=scorer).top(1)
            assert res[scorer]["box"] == tuple(best.boxes[0])
        random = score_regions(case.blurred, size=64, stride=32, scorer="random", rng=case.seed)
        assert res["random"]["box"] == tuple(random.top(1).boxes[0])
        # each ratio and similarity again, one method at a time with the public functions
        reference = deconvolve(case.blurred, case.kernel, device="cpu")
        for method in ("variance", "whole"):
            r, c, h, w = res[method]["box"]
            kernel = estimate_kernel(case.blurred[r:r + h, c:c + w], case.kernel.shape[0],
                                     device="cpu")
            restored = deconvolve(case.blurred, kernel, device="cpu")
            assert res[method]["ratio"] == pytest.approx(
                error_ratio(restored, reference, case.sharp), rel=1e-9)
            assert res[method]["similarity"] == pytest.approx(
                kernel_similarity(kernel, case.kernel), rel=1e-9)
            assert res[method]["estimate_s"] > 0


def _records(ratios, sources=None, seconds=None, kernel_sizes=None):
    n = len(next(iter(ratios.values())))
    sources = sources or ["s"] * n
    kernel_sizes = kernel_sizes or [11] * n
    seconds = seconds or {}
    return [{"source": src, "kernel_size": kernel_sizes[i], "results": {
        m: {"ratio": r[i], "similarity": 0.5 + 0.1 * i, "choice_s": seconds.get(m, (0, 0))[0],
            "estimate_s": seconds.get(m, (0, 0))[1]} for m, r in ratios.items()}}
            for i, src in enumerate(sources)]


def test_summary_arithmetic_by_hand(ev):
    ratios = {"edges": [0.9, 2.5, 3.0, 3.5, 7.0],
              "random": [1.5, 4.0, 6.0, 8.0, 9.0],
              "whole": [1.0, 1.2, 2.0, 9.0, 9.0]}
    seconds = {"edges": (0.5, 1.5), "random": (0.0, 2.0), "whole": (0.0, 6.0)}
    records = _records(ratios, seconds=seconds, kernel_sizes=[27, 55, 11, 29, 13])
    summary = ev.summarize(records, list(ratios))
    edges = summary["methods"]["edges"]
    assert edges["success"] == 3 / 5  # 3.0 counts as a success
    assert summary["small_kernel_cases"] == 3  # 27, 11 and 13 px
    assert edges["success_small_kernels"] == 2 / 3 and edges["success_large_kernels"] == 1 / 2
    assert summary["methods"]["whole"]["success_large_kernels"] == 0.5
    assert edges["curve"] == {"1": 1 / 5, "2": 1 / 5, "3": 3 / 5, "4": 4 / 5, "5": 4 / 5}
    assert edges["median_ratio"] == 3.0 and edges["median_similarity"] == pytest.approx(0.7)
    assert (edges["choice_s"], edges["estimate_s"], edges["cost_s"]) == (0.5, 1.5, 2.0)
    rows = {(c["method"], c["against"]): c for c in summary["comparisons"]}
    assert set(rows) == {("edges", "random"), ("edges", "whole"), ("random", "whole")}
    assert rows["edges", "random"]["points"] == pytest.approx(100 * (3 / 5 - 1 / 5))
    assert rows["edges", "whole"]["points"] == pytest.approx(0.0)
    assert rows["edges", "whole"]["times_cheaper"] == pytest.approx(3.0)
    assert rows["random", "whole"]["times_cheaper"] == pytest.approx(3.0)
    # one source: the bootstrap over sources has nothing to vary
    assert rows["edges", "random"]["ci95"] == pytest.approx([40.0, 40.0])
    text = ev.format_summary(summary)
    assert "| edges | 20 % | 20 % | 60 % | 80 % | 80 % | 67 % | 50 % | 3.00 | 0.700 |" in text
    assert "| random | 0 % | 20 % | 20 % | 40 % | 40 % | 33 % | 0 % |" in text
    assert "3.00x cheaper" in text


def test_summary_splits_the_median_similarity_by_kernel_size(ev):
    ratios = {"edges": [1.0] * 5}
    records = _records(ratios, kernel_sizes=[11, 13, 55, 55, 27])  # similarities 0.5 ... 0.9
    edges = ev.summarize(records, ["edges"])["methods"]["edges"]
    assert edges["median_similarity_small_kernels"] == pytest.approx(0.6)  # 0.5, 0.6, 0.9
    assert edges["median_similarity_large_kernels"] == pytest.approx(0.75)  # 0.7, 0.8
    text = ev.format_summary(ev.summarize(records, ["edges"]))
    assert "| 0.700 | 0.600 | 0.750 |" in text
    one = ev.summarize(_records(ratios, kernel_sizes=[11] * 5), ["edges"])
    assert one["methods"]["edges"]["median_similarity_large_kernels"] is None
    assert "| n/a |" in ev.format_summary(one)


def test_bootstrap_interval_spans_the_sources(ev):
    # source a: edges wins both cases, source b: edges loses both
    ratios = {"edges": [1.0, 1.0, 9.0, 9.0], "random": [9.0, 9.0, 1.0, 1.0]}
    records = _records(ratios, sources=["a", "a", "b", "b"])
    (row,) = ev.summarize(records, list(ratios))["comparisons"]
    assert row["points"] == 0.0 and row["ci95"] == [-100.0, 100.0]


def test_the_set_never_holds_a_training_source(ev, tmp_path):
    forbidden = ev.training_sources()
    split = _dataset.split_sources(_dataset.sharp_sources(), seed=0)
    assert forbidden == {name for name, part in split.items() if part != "test"}
    assert not set(ev.default_sources(3)) & forbidden
    with pytest.raises(ValueError, match="astronaut"):
        ev.build_cases(["camera", "astronaut"], log=None)
    # an alias (skimage's cat is chelsea, a validation source) is caught by content
    with pytest.raises(ValueError, match="'kitty' is the training source 'chelsea'"):
        ev.build_cases({"kitty": _dataset.load_source("chelsea")}, log=None)
    # the split recorded beside the weights, or in a dataset folder, is kept out as well
    card = {"camera": "train", "text1000": "val", "text4": "test"}
    (tmp_path / "w.md").write_text(f"# card\n\n- Split by sharp source image: "
                                   f"{json.dumps(card)}.\n")
    assert {"camera", "text1000"} <= ev.training_sources(weights=tmp_path / "w.safetensors")
    assert "text4" not in ev.training_sources(weights=tmp_path / "w.safetensors")
    (tmp_path / "dataset.json").write_text(json.dumps({"split": {"text1001": "train"}}))
    assert "text1001" in ev.training_sources(dataset=tmp_path)


def test_the_photographs_are_new_grayscale_images(ev):
    shapes = {"ascent": (512, 512), "aero": (512, 512), "grace_hopper": (600, 512),
              "china": (427, 640), "flower": (427, 640)}
    assert set(ev.PHOTOS) == set(shapes) and set(ev.DEFAULT_PHOTOS) <= set(ev.default_sources(0))
    photos = {name: ev.load_photo(name) for name in ev.PHOTOS}
    for name, image in photos.items():
        assert image.shape == shapes[name] and image.dtype == np.float64
        assert 0.0 <= image.min() < 0.1 and 0.85 < image.max() <= 1.0 and image.std() > 0.1
    # none is a training source under another name, and the default ones fill the crop
    cases, skipped = ev.build_cases(list(ev.PHOTOS), kernels=1, log=None)
    assert [c.source for c in cases] == list(ev.DEFAULT_PHOTOS)
    assert skipped == ["china", "flower"]


def test_command_line(ev, tmp_path, capsys):
    out, png = tmp_path / "e.json", tmp_path / "e.png"
    ev.main(["--sources", "text1000", "--crop", "128", "--kernels", "1", "--kernel-sizes", "7",
             "9", "--size", "64", "--stride", "32", "--methods", "edges,whole,oracle",
             "--json", str(out), "--plot", str(png)])
    printed = capsys.readouterr().out
    assert "| oracle | 100 % |" in printed and "edges vs whole" in printed
    result = json.loads(out.read_text())
    assert result["summary"]["cases"] == 1 and result["records"][0]["source"] == "text1000"
    assert png.stat().st_size > 0
    with pytest.raises(SystemExit):
        ev.main(["--methods", "cnn", "--weights", str(tmp_path / "none.safetensors")])
    with pytest.raises(SystemExit):
        ev.main(["--methods", "sharpness"])

"""score_regions: the grid of boxes, the heatmap, the heuristic scorers, clear errors."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from torchscope.deblur import Regions, score_regions


@pytest.mark.parametrize("scorer", ["variance", "edges", "random"])
def test_box_geometry_and_heatmap(rng, scorer):
    image = rng.random((300, 350))
    kwargs = {"rng": 0} if scorer == "random" else {}
    regions = score_regions(image, size=228, stride=20, scorer=scorer, **kwargs)
    assert isinstance(regions, Regions) and regions.scorer == scorer
    rows, cols = np.arange(0, 300 - 228 + 1, 20), np.arange(0, 350 - 228 + 1, 20)
    assert len(rows) == 4 and len(cols) == 7
    expected = np.array([(r, c, 228, 228) for r in rows for c in cols])
    np.testing.assert_array_equal(regions.boxes, expected)
    assert regions.boxes.dtype == np.int64 and regions.scores.shape == (28,)
    heat = regions.heatmap
    assert heat.shape == (300, 350) and heat.dtype == np.float32
    # each pixel: the mean score of the boxes containing it; NaN beyond the last box
    for y, x in [(0, 0), (150, 175), (227, 300), (299, 349), (290, 100)]:
        inside = [(r <= y < r + 228) and (c <= x < c + 228) for r, c, _, _ in regions.boxes]
        if any(inside):
            assert heat[y, x] == pytest.approx(regions.scores[inside].mean(), rel=1e-5)
        else:
            assert np.isnan(heat[y, x])
    assert np.isnan(heat[-12:, :]).all() and np.isfinite(heat[:288, :348]).all()


def test_stride_and_size_fit_exactly():
    regions = score_regions(np.zeros((100, 60)), size=40, stride=20, scorer="variance")
    np.testing.assert_array_equal(regions.boxes[:, :2], [[0, 0], [0, 20], [20, 0], [20, 20],
                                                         [40, 0], [40, 20], [60, 0], [60, 20]])
    assert np.isfinite(regions.heatmap).all()  # the grid reaches every border here
    gaps = score_regions(np.zeros((100, 60)), size=20, stride=40, scorer="variance")
    assert np.isnan(gaps.heatmap[20:40]).all() and np.isfinite(gaps.heatmap[:20, :20]).all()


def test_variance_and_edges_prefer_structure_to_flat_noise(rng):
    image = 0.5 + 0.01 * rng.standard_normal((256, 512))
    # a field of large blurred blobs on the right half
    blobs = gaussian_filter((rng.random((256, 256)) > 0.5).astype(float), 6)
    image[:, 256:] += 0.8 * (blobs - blobs.mean())
    for scorer in ("variance", "edges"):
        best = score_regions(image, size=128, stride=32, scorer=scorer).top(1)
        assert best.boxes[0, 1] >= 256, scorer


def test_variance_penalises_saturation():
    gen = np.random.default_rng(0)
    image = gen.random((64, 128)) * 0.5
    image[:, 64:] = np.where(gen.random((64, 64)) > 0.5, 1.0, 0.0)  # clipped highlights
    scores = score_regions(image, size=64, stride=64, scorer="variance").scores
    saturated = (image[:, 64:] >= 0.99).mean()
    assert scores[1] == pytest.approx(image[:, 64:].var() * (1 - saturated), rel=1e-9)
    assert scores[0] == pytest.approx(image[:, :64].var(), rel=1e-9)


def test_random_is_seeded_and_top_sorts(rng):
    image = rng.random((100, 100))
    a = score_regions(image, size=50, stride=10, scorer="random", rng=3)
    b = score_regions(image, size=50, stride=10, scorer="random", rng=3)
    np.testing.assert_array_equal(a.scores, b.scores)
    top = a.top(5)
    assert top.scores.tolist() == sorted(a.scores, reverse=True)[:5]
    assert top.boxes[0].tolist() == a.boxes[np.argmax(a.scores)].tolist()


def test_random_scores_depend_on_the_seed(rng):
    """"random" is a seeded baseline of uniform scores: another seed gives other scores, one
    generator passed twice goes on drawing, and the scores spread evenly over their range."""
    image = rng.random((100, 100))
    scores = [score_regions(image, size=20, stride=4, scorer="random", rng=seed).scores
              for seed in (3, 4, 5)]
    for i in range(3):
        for j in range(i):
            assert np.mean(scores[i] == scores[j]) < 0.01, (i, j)
    gen = np.random.default_rng(3)
    first = score_regions(image, size=20, stride=4, scorer="random", rng=gen).scores
    second = score_regions(image, size=20, stride=4, scorer="random", rng=gen).scores
    assert np.mean(first == second) < 0.01
    s = scores[0]
    assert len(s) == 441 and len(np.unique(s)) == 441
    # uniform (the docstring gives no range, so scaled to it): each tenth holds about 44
    # of the 441 (outside 20-70 is more than 3.5 sigma away)
    counts = np.histogram((s - s.min()) / np.ptp(s), bins=10, range=(0, 1))[0]
    assert counts.min() > 20 and counts.max() < 70, counts


def test_colour_and_integer_input(rng):
    rgb = (rng.random((80, 90, 3)) * 255).astype(np.uint8)
    gray = rgb.astype(float) @ [0.2125, 0.7154, 0.0721] / 255
    got = score_regions(rgb, size=40, stride=10, scorer="variance").scores
    np.testing.assert_allclose(got, score_regions(gray, size=40, stride=10,
                                                  scorer="variance").scores)


def test_cnn_without_weights_names_the_file_and_the_script(monkeypatch, tmp_path, rng):
    from torchscope.deblur import _scorer

    monkeypatch.setattr(_scorer, "WEIGHTS_DIR", tmp_path / "weights")
    with pytest.raises(FileNotFoundError) as info:
        score_regions(rng.random((230, 230)), scorer="cnn")
    message = str(info.value)
    assert "region_scorer.safetensors" in message and "train_deblur_scorer.py" in message
    with pytest.raises(FileNotFoundError, match="nothing.safetensors"):
        score_regions(rng.random((230, 230)), weights=tmp_path / "nothing.safetensors")


def test_errors(rng):
    image = rng.random((100, 120))
    with pytest.raises(ValueError, match="size=228.*at most 100 pixels"):
        score_regions(image, scorer="variance")
    # an image smaller than the smallest region: no advice to use a size below 8
    with pytest.raises(ValueError, match="too small to score"):
        score_regions(image[:3, :3], size=8, scorer="variance")
    with pytest.raises(ValueError, match="scorer"):
        score_regions(image, size=50, scorer="gabor")
    with pytest.raises(ValueError, match="stride"):
        score_regions(image, size=50, stride=0, scorer="variance")
    with pytest.raises(ValueError, match="weights"):
        score_regions(image, size=50, scorer="edges", weights="w.safetensors")
    with pytest.raises(ValueError, match="rng"):
        score_regions(image, size=50, scorer="edges", rng=1)
    with pytest.raises(ValueError, match="colour"):
        score_regions(rng.random((4, 100, 100)), size=50, scorer="edges")


# ------------------------------------------------------------------ non-maximum suppression
def _regions(boxes, scores):
    boxes, scores = np.asarray(boxes, dtype=np.int64), np.asarray(scores, dtype=np.float64)
    return Regions(boxes=boxes, scores=scores, heatmap=np.zeros((1, 1), np.float32),
                   scorer="test")


def test_box_iou_by_hand():
    from torchscope.deblur._regions import box_iou

    a = [(0, 0, 10, 10)]
    b = [(0, 5, 10, 10),   # half shifted: 50 shared of 150
         (5, 5, 10, 10),   # quarter: 25 of 175
         (0, 10, 10, 10),  # touching: no shared pixel
         (2, 2, 4, 4),     # inside: 16 of 100
         (0, 0, 10, 10)]   # itself
    np.testing.assert_allclose(box_iou(a, b), [[1 / 3, 1 / 7, 0, 0.16, 1]])
    assert box_iou(b, b).shape == (5, 5)
    np.testing.assert_allclose(box_iou(b, b), box_iou(b, b).T)


def test_box_iou_matches_pixel_masks(rng):
    from torchscope.deblur._regions import box_iou

    boxes = np.concatenate([rng.integers(0, 30, (12, 2)), rng.integers(1, 20, (12, 2))], 1)
    masks = np.zeros((12, 50, 50), bool)
    for m, (r, c, h, w) in zip(masks, boxes):
        m[r:r + h, c:c + w] = True
    expected = np.array([[(p & q).sum() / (p | q).sum() for q in masks] for p in masks])
    np.testing.assert_allclose(box_iou(boxes, boxes), expected, rtol=1e-12)


def test_top_with_overlap_by_hand():
    # D (best) overlaps A by 1/7 and B by 1/3; C touches nothing
    regions = _regions([(0, 0, 10, 10), (0, 5, 10, 10), (0, 20, 10, 10), (5, 5, 10, 10)],
                       [0.9, 0.8, 0.7, 0.95])
    assert regions.top(4).scores.tolist() == [0.95, 0.9, 0.8, 0.7]
    assert regions.top(4, overlap=0.2).scores.tolist() == [0.95, 0.9, 0.7]
    assert regions.top(4, overlap=0.1).scores.tolist() == [0.95, 0.7]
    assert regions.top(4, overlap=1.0).scores.tolist() == [0.95, 0.9, 0.8, 0.7]
    assert regions.top(2, overlap=0.2).boxes.tolist() == [[5, 5, 10, 10], [0, 0, 10, 10]]
    assert regions.top(4, overlap=0.0).boxes.tolist() == [[5, 5, 10, 10], [0, 20, 10, 10]]


def _brute_force_nms(boxes, scores, overlap, k):
    def iou(p, q):
        rows = max(0, min(p[0] + p[2], q[0] + q[2]) - max(p[0], q[0]))
        cols = max(0, min(p[1] + p[3], q[1] + q[3]) - max(p[1], q[1]))
        inter = rows * cols
        return inter / (p[2] * p[3] + q[2] * q[3] - inter)

    kept = []
    for i in sorted(range(len(scores)), key=lambda j: (-scores[j], j)):
        if len(kept) < k and all(iou(boxes[i], boxes[j]) <= overlap for j in kept):
            kept.append(i)
    return kept


@pytest.mark.parametrize("overlap", [0.0, 0.3, 0.5])
def test_top_with_overlap_matches_brute_force(rng, overlap):
    regions = score_regions(rng.random((200, 260)), size=64, stride=12, scorer="random", rng=7)
    top = regions.top(8, overlap=overlap)
    kept = _brute_force_nms(regions.boxes.tolist(), regions.scores.tolist(), overlap, 8)
    np.testing.assert_array_equal(top.boxes, regions.boxes[kept])
    np.testing.assert_array_equal(top.scores, regions.scores[kept])
    assert top.boxes[0].tolist() == regions.top(1).boxes[0].tolist()
    assert top.heatmap is regions.heatmap


def test_top_overlap_errors():
    regions = _regions([(0, 0, 4, 4)], [1.0])
    with pytest.raises(ValueError, match="overlap"):
        regions.top(1, overlap=1.5)
    with pytest.raises(TypeError, match="overlap"):
        regions.top(1, overlap="0.3")
    assert len(regions.top(5, overlap=0.3).scores) == 1  # fewer than k exist

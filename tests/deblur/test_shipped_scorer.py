"""The shipped region scorer: its model card, and its ranking of held-out windows.

The held-out windows are regenerated from the committed label files
(``data/deblur_scorer_labels``) of the sources in the scorer's test split: blurred images it
never saw in training or model choice, labelled by kernel estimation, not by the network.
"""

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from torchscope.deblur import _dataset, score_regions
from torchscope.deblur._scorer import cnn_scores, default_weights, load_scorer

LABELS = Path(__file__).resolve().parents[2] / "data" / "deblur_scorer_labels"


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here runs torch on one thread (see tests/conftest.py)."""


def _card():
    return default_weights().with_suffix(".md").read_text()


def _card_split():
    line = next(ln for ln in _card().splitlines() if ln.startswith("- Split by sharp source"))
    return json.loads(line.split(": ", 1)[1].rstrip("."))


def test_shipped_weights_have_a_card_a_matching_hash_and_a_split_by_source():
    path = default_weights()
    assert path.is_file() and path.stat().st_size < 8e6
    assert hashlib.sha256(path.read_bytes()).hexdigest() in _card()
    split = _card_split()
    # the card's split is the one the dataset module makes from its sources
    assert split == _dataset.split_sources(_dataset.sharp_sources(), seed=0)
    assert {"train", "val", "test"} == set(split.values())
    shards = re.search(r"- Blurred images \(\d+, windows in every split\): (.*)\.$", _card(),
                       re.MULTILINE).group(1).split(", ")
    assert all(shard.rsplit("_c", 1)[0] in split for shard in shards)
    model = load_scorer()
    assert model.patch_size == 228 and not model.training


def _held_out(round_):
    """The blurred images of the test split's sources in kernel round ``round_``."""
    test = {name for name, part in _card_split().items() if part == "test"}
    files = [f for f in sorted(LABELS.glob(f"*_k{round_}.json"))
             if f.stem.rsplit("_c", 1)[0] in test]
    return [_dataset.regenerate(f) for f in files]


def test_shipped_scorer_ranks_held_out_windows_well_above_chance():
    images = _held_out(0)
    assert len(images) >= 5
    scores = [cnn_scores(im["blurred"].astype(np.float32), im["boxes"], device="cpu")
              for im in images]
    labels = np.concatenate([im["labels"] for im in images])
    assert 0.05 < labels.mean() < 0.95  # both classes, else the AUC says nothing
    auc = roc_auc_score(labels, np.concatenate(scores))
    assert auc > 0.6, auc
    # score_regions with the cnn gives the same scores on the same grid
    first = images[0]
    regions = score_regions(first["blurred"].astype(np.float32), size=228, stride=20,
                            scorer="cnn", device="cpu")
    np.testing.assert_array_equal(regions.boxes, first["boxes"])
    np.testing.assert_allclose(regions.scores, scores[0], rtol=1e-5, atol=1e-6)
    assert ((regions.scores >= 0) & (regions.scores <= 1)).all()
    assert np.isfinite(regions.heatmap).all()  # a 448 px image is covered by the grid


def test_cnn_scores_do_not_depend_on_the_batch():
    image = _held_out(0)[0]
    blurred, boxes = image["blurred"].astype(np.float32), image["boxes"][:12]
    one = cnn_scores(blurred, boxes, device="cpu", batch_size=1)
    many = cnn_scores(blurred, boxes, device="cpu", batch_size=12)
    np.testing.assert_allclose(one, many, rtol=1e-4, atol=1e-6)

"""Scoring the square regions of an image by how well they would let a blur kernel be found.

Regions are the ``size`` x ``size`` windows on a grid of step ``stride`` (the paper: 228 and
20). Scorers:

``"cnn"``
    The paper's classifier (a ResNet34 with strided convolutions instead of pooling, see
    :mod:`torchscope.deblur._scorer`): the probability that the kernel estimated from the
    region is close to the true one.
``"variance"``
    Fergus et al. (SIGGRAPH 2006) pick a region of large variance without saturation: the
    variance of the intensities times the fraction of pixels below 99 % of the range.
``"edges"``
    Xu and Jia (ECCV 2010): the usefulness of edges
    ``r(x) = ||sum_{N(x)} grad B|| / (sum_{N(x)} ||grad B|| + 0.5)`` over a 5 x 5 window
    ``N(x)`` is small where gradients cancel (thin or repeated structures, flat noise) and
    close to 1 at edges wider than the blur; the score is the mean of
    ``r(x) ||grad B(x)||`` over the region (intensities in [0, 1]).
``"random"``
    Uniform random scores (a seeded baseline).
"""

import dataclasses

import numpy as np

from torchscope.deblur._checks import (
    check_choice,
    check_image,
    check_int,
    check_real,
    check_rng,
    to_gray,
    working_range,
)

SCORERS = ("cnn", "variance", "edges", "random")
_EDGE_WINDOW = 5
_SATURATED = 0.99


@dataclasses.dataclass(frozen=True)
class Regions:
    """Scored square regions of an image, as returned by :func:`score_regions`.

    Attributes
    ----------
    boxes : numpy.ndarray of int64, shape (N, 4)
        ``(row, col, height, width)`` of each region, in pixels, row by row.
    scores : numpy.ndarray of float64, shape (N,)
        Higher is better.
    heatmap : numpy.ndarray of float32, shape (H, W)
        Each pixel's mean score over the regions that contain it; NaN where none does (the
        bottom and right margins narrower than ``stride`` when the grid does not reach the
        border).
    scorer : str
    """

    boxes: np.ndarray
    scores: np.ndarray
    heatmap: np.ndarray
    scorer: str

    def top(self, k=1, *, overlap=None):
        """The ``k`` best regions, best first, as a new :class:`Regions` (same heatmap).

        Parameters
        ----------
        k : int, optional
            How many regions to return (fewer when fewer exist or survive ``overlap``).
        overlap : float in [0, 1], optional
            Non-maximum suppression: the largest intersection over union (:func:`box_iou`)
            allowed between two returned regions. Going down the ranking, a region is skipped
            when it overlaps a region already chosen by more than this (0 keeps only disjoint
            regions, 1 keeps all). ``None`` (default): no suppression, the ``k`` best as
            scored, which on a fine grid are often shifted copies of one another.

        Notes
        -----
        Ties keep the grid order (row by row). The best region is the same with or without
        suppression.
        """
        k = check_int("k", k, 1)
        order = np.argsort(-self.scores, kind="stable")
        if overlap is not None:
            overlap = check_real("overlap", overlap, 0.0, 1.0)
            order = _suppress(self.boxes, order, overlap, k)
        order = order[:k]
        return Regions(self.boxes[order], self.scores[order], self.heatmap, self.scorer)


def box_iou(a, b):
    """Intersection over union of every box of ``a`` with every box of ``b``.

    Parameters
    ----------
    a, b : array_like, shape (N, 4) and (M, 4)
        Boxes ``(row, col, height, width)`` in pixels; a box covers the pixels
        ``row <= y < row + height``, ``col <= x < col + width``.

    Returns
    -------
    numpy.ndarray of float64, shape (N, M)
        Shared pixels over the pixels of either box, in [0, 1] (0 for boxes that only touch).
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(1, -1, 4)
    lo = np.maximum(a[..., :2], b[..., :2])
    hi = np.minimum(a[..., :2] + a[..., 2:], b[..., :2] + b[..., 2:])
    inter = np.clip(hi - lo, 0, None).prod(axis=-1)
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _suppress(boxes, order, overlap, k):
    """Greedy non-maximum suppression: indices from ``order`` (best first), each kept unless
    its IoU with a kept one exceeds ``overlap``; stops after ``k``."""
    keep = []
    rest = np.asarray(order)
    while rest.size and len(keep) < k:
        best, rest = rest[0], rest[1:]
        keep.append(best)
        rest = rest[box_iou(boxes[best], boxes[rest])[0] <= overlap]
    return np.asarray(keep, dtype=np.int64)


def grid_boxes(shape, size, stride):
    """The ``(row, col, size, size)`` boxes of a grid over an image of ``shape``."""
    rows = np.arange(0, shape[0] - size + 1, stride)
    cols = np.arange(0, shape[1] - size + 1, stride)
    r, c = np.meshgrid(rows, cols, indexing="ij")
    n = r.size
    return np.stack([r.ravel(), c.ravel(), np.full(n, size), np.full(n, size)], axis=1)


def _box_means(values, boxes):
    """Mean of ``values`` over each box, from an integral image (float64)."""
    s = np.pad(values.astype(np.float64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    r0, c0, h, w = boxes.T
    total = s[r0 + h, c0 + w] - s[r0, c0 + w] - s[r0 + h, c0] + s[r0, c0]
    return total / (h * w)


def _heatmap(shape, boxes, scores):
    """Mean score of the boxes covering each pixel (difference arrays, then prefix sums)."""
    acc = np.zeros((shape[0] + 1, shape[1] + 1))
    cnt = np.zeros_like(acc)
    r0, c0, h, w = boxes.T
    for grid, val in ((acc, scores), (cnt, np.ones_like(scores))):
        np.add.at(grid, (r0, c0), val)
        np.add.at(grid, (r0 + h, c0), -val)
        np.add.at(grid, (r0, c0 + w), -val)
        np.add.at(grid, (r0 + h, c0 + w), val)
    acc = acc.cumsum(0).cumsum(1)[:-1, :-1]
    cnt = np.rint(cnt.cumsum(0).cumsum(1)[:-1, :-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        heat = np.where(cnt > 0, acc / cnt, np.nan)
    return heat.astype(np.float32)


def variance_scores(gray, boxes):
    """Fergus et al.: variance times the fraction of unsaturated pixels, per box."""
    mean = _box_means(gray, boxes)
    var = np.maximum(_box_means(gray ** 2, boxes) - mean ** 2, 0.0)
    saturated = _box_means(gray >= _SATURATED, boxes)
    return var * (1.0 - saturated)


def edge_usefulness(gray, window=_EDGE_WINDOW):
    """Xu and Jia's ``r(x)`` and the gradient magnitude, per pixel."""
    from scipy.ndimage import uniform_filter

    gy, gx = np.gradient(gray)
    mag = np.hypot(gx, gy)
    area = window * window
    sx = uniform_filter(gx, window, mode="nearest") * area
    sy = uniform_filter(gy, window, mode="nearest") * area
    sm = uniform_filter(mag, window, mode="nearest") * area
    return np.hypot(sx, sy) / (sm + 0.5), mag


def edge_scores(gray, boxes):
    """Mean of ``r(x) * ||grad B(x)||`` per box."""
    r, mag = edge_usefulness(gray)
    return _box_means(r * mag, boxes)


def score_regions(image, *, size=228, stride=20, scorer="cnn", weights=None, rng=None,
                  device=None):
    """Score the square regions of an image by how well a blur kernel can be estimated there.

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, 3)
        The blurred image (colour is reduced to luminance). Integer images are scaled by
        their dtype's maximum, float images beyond [-0.5, 1.5] from their [min, max].
    size : int, optional
        Side of the square regions in pixels (the paper: 228, the input size of the
        ``"cnn"`` scorer).
    stride : int, optional
        Step of the grid of regions in pixels (the paper: 20). Regions start at
        ``0, stride, 2 * stride, ...`` while they fit in the image.
    scorer : {"cnn", "variance", "edges", "random"}, optional
        See the module notes. ``"cnn"`` needs trained weights: those shipped in
        ``torchscope/deblur/weights/`` (built by ``scripts/train_deblur_scorer.py``), or
        ``weights``.
    weights : str or path-like, optional
        A ``.safetensors`` file written by ``scripts/train_deblur_scorer.py``, instead of the
        shipped weights (``"cnn"`` only).
    rng : None, int or numpy.random.Generator, optional
        Seed or generator of the ``"random"`` scorer.
    device : None, str or torch.device, optional
        Where the ``"cnn"`` scorer runs (default: CUDA, then MPS, then the CPU).

    Returns
    -------
    Regions
        ``boxes`` (N, 4) as (row, col, height, width), ``scores`` (N,), ``heatmap`` (H, W).

    Raises
    ------
    FileNotFoundError
        ``scorer="cnn"`` without weights: the message names the missing file and the script
        that builds it.
    """
    img = check_image("image", image)
    size = check_int("size", size, 8)
    stride = check_int("stride", stride, 1)
    check_choice("scorer", scorer, SCORERS)
    if weights is not None and scorer != "cnn":
        raise ValueError(f"weights is an option of scorer='cnn', not of scorer={scorer!r}.")
    if rng is not None and scorer != "random":
        raise ValueError(f"rng is an option of scorer='random', not of scorer={scorer!r}.")
    shape = img.shape[:2]
    if size > min(shape):
        advice = (f"use a size of at most {min(shape)} pixels" if min(shape) >= 8 else
                  "regions have at least 8 pixels a side, so the image is too small to score")
        raise ValueError(f"size={size} does not fit into the image of shape {shape}; {advice}.")
    gray = to_gray(working_range(img)[0])
    boxes = grid_boxes(shape, size, stride)
    if scorer == "variance":
        scores = variance_scores(gray, boxes)
    elif scorer == "edges":
        scores = edge_scores(gray, boxes)
    elif scorer == "random":
        scores = check_rng(rng).random(len(boxes))
    else:
        from torchscope.deblur._scorer import cnn_scores

        scores = cnn_scores(gray, boxes, weights=weights, device=device)
    scores = np.asarray(scores, dtype=np.float64)
    return Regions(boxes=boxes.astype(np.int64), scores=scores,
                   heatmap=_heatmap(shape, boxes, scores), scorer=scorer)

"""deblur: region choice, kernel and the deblurred image; clear errors."""

import numpy as np
import pytest
from test_estimate import strong_edges

from torchscope.deblur import (
    Deblurred,
    blur,
    deblur,
    estimate_kernel,
    kernel_similarity,
    motion_kernel,
)


def _scene():
    # structure on the left only; the right half is flat with noise
    sharp = np.full((96, 192), 0.5)
    sharp[:, :96] = strong_edges(96, seed=3)
    k = motion_kernel(9, rng=7)
    return sharp, k, blur(sharp, k, noise_sigma=0.005, rng=1)


def test_auto_region_estimates_and_deblurs():
    sharp, k, blurred = _scene()
    result = deblur(blurred, 9, scorer="edges", size=64, device="cpu")
    assert isinstance(result, Deblurred)
    _, col, h, w = result.region
    assert (h, w) == (64, 64) and col + w <= 110  # the structured half
    assert kernel_similarity(result.kernel, k) > 0.85
    assert result.image.shape == sharp.shape and result.image.dtype == np.float64
    assert 0 <= result.image.min() and result.image.max() <= 1  # a [0, 1] image, clipped
    inner = (slice(12, -12), slice(12, 84))
    err_restored = np.abs(result.image - sharp)[inner].mean()
    err_blurred = np.abs(blurred - sharp)[inner].mean()
    assert err_restored < 0.7 * err_blurred


def test_explicit_and_whole_regions(rng):
    image = (rng.random((40, 50)) * 255).astype(np.uint8)
    whole = deblur(image, 5, region="whole", device="cpu")
    assert whole.region == (0, 0, 40, 50)
    assert whole.image.dtype == np.float32 and whole.image.max() <= 255
    box = deblur(image, 5, region=(2, 3, 20, 30), device="cpu")
    assert box.region == (2, 3, 20, 30) and box.kernel.shape == (5, 5)
    # "auto" on an image smaller than the region size falls back to the whole image
    assert deblur(image, 5, scorer="variance", device="cpu").region == (0, 0, 40, 50)


def test_explicit_region_estimates_the_kernel_of_that_region():
    """Two scenes side by side, each blurred by its own motion kernel: a box inside the left
    half gives the left kernel, a box inside the right half the right one."""
    n = 96
    a, b = motion_kernel(9, rng=7), motion_kernel(9, rng=8)
    left = blur(strong_edges(n, seed=3), a, noise_sigma=0.005, rng=1)
    right = blur(strong_edges(n, seed=4), b, noise_sigma=0.005, rng=2)
    image = np.concatenate([left, right], 1)
    assert kernel_similarity(a, b) < 0.7  # the two kernels are told apart
    for box, own, other in [((3, 2, 90, 92), a, b), ((1, n + 3, 94, 93), b, a)]:
        result = deblur(image, 9, region=box, deconvolution="wiener", device="cpu")
        assert result.region == box
        near, far = kernel_similarity(result.kernel, own), kernel_similarity(result.kernel, other)
        assert near > 0.85 and near > far + 0.15, (box, near, far)


def test_errors(rng):
    image = rng.random((60, 60))
    with pytest.raises(ValueError, match="outside"):
        deblur(image, 5, region=(50, 0, 20, 20))
    with pytest.raises(ValueError, match="too small"):
        deblur(image, 9, region=(0, 0, 10, 40))
    with pytest.raises(TypeError, match="region"):
        deblur(image, 5, region=(0, 0, 20))
    with pytest.raises(ValueError, match="region"):
        deblur(image, 5, region="best")
    with pytest.raises(ValueError, match="deconvolution"):
        deblur(image, 5, deconvolution="tv")
    with pytest.raises(ValueError, match="kernel_size"):
        deblur(image, 4)
    # the auto region's size, not a box the user never gave, is named (before any scoring)
    with pytest.raises(ValueError, match="size=228 regions are too small for kernel_size=121"):
        deblur(rng.random((300, 300)), 121, scorer="variance")
    with pytest.raises(ValueError, match="looks like a colour image"):
        estimate_kernel(rng.random((60, 60, 3)), 5)
    with pytest.raises(ValueError, match="rng is an option of scorer='random'"):
        deblur(rng.random((300, 300)), 5, scorer="variance", size=64, rng=1)


def test_random_region_is_seeded(rng):
    image = rng.random((200, 200))
    boxes = {deblur(image, 5, scorer="random", size=64, rng=3, deconvolution="wiener").region
             for _ in range(2)}
    assert len(boxes) == 1

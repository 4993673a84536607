"""Blind kernel estimation: recovery of a known kernel, batches, the generator, errors."""

import itertools

import numpy as np
import pytest

from torchscope.deblur import (
    Snapshot,
    blur,
    estimate_kernel,
    iterate,
    kernel_similarity,
    motion_kernel,
)


def strong_edges(n, seed):
    """A piecewise-constant image of overlapping rectangles: large, sharp edges everywhere."""
    gen = np.random.default_rng(seed)
    image = np.full((n, n), 0.5)
    for _ in range(12):
        r, c = gen.integers(0, n - 8, 2)
        h, w = gen.integers(8, n // 2, 2)
        image[r:r + h, c:c + w] = gen.uniform(0, 1)
    return image


def blurred_patch(n, kernel, seed, noise=0.005):
    # blur a larger image and keep its inside: the patch's borders see real neighbours
    return blur(strong_edges(n + 40, seed), kernel, noise_sigma=noise, rng=seed)[20:-20, 20:-20]


@pytest.mark.parametrize("method", ["dark_channel", "l0"])
def test_recovers_a_known_kernel_on_strong_edges(device, method):
    k = motion_kernel(9, rng=101)
    estimate = estimate_kernel(blurred_patch(96, k, seed=1), 9, method=method, device=device)
    assert estimate.shape == (9, 9) and estimate.dtype == np.float64
    assert (estimate >= 0).all() and estimate.sum() == pytest.approx(1.0)
    similarity = kernel_similarity(estimate, k)
    trivial = k.max() / np.linalg.norm(k)
    # Pan et al.'s estimate on piecewise-constant images is close to the truth; the bound
    # also clears the one-pixel kernel's score by far
    assert similarity > 0.9 and similarity > trivial + 0.3


def test_batch_equals_one_by_one(device):
    k = motion_kernel(7, rng=3)
    patches = np.stack([blurred_patch(72, k, seed=s) for s in range(3)])
    together = estimate_kernel(patches, 7, device=device)
    assert together.shape == (3, 7, 7)
    for patch, est in zip(patches, together):
        alone = estimate_kernel(patch, 7, device=device)
        if device == "cpu":  # bit for bit (the CPU runs the patches one by one, in lockstep)
            np.testing.assert_array_equal(est, alone)
        else:  # GPU libraries may round a batch differently; hard thresholds amplify that
            assert kernel_similarity(est, alone) > 0.95


def test_iterate_yields_the_coarse_to_fine_states():
    k = motion_kernel(11, rng=4)
    patch = blurred_patch(64, k, seed=2)
    snaps = list(iterate(patch, 11, iterations=2, device="cpu"))
    assert all(isinstance(s, Snapshot) for s in snaps)
    levels = snaps[0].levels
    # the authors' pyramid: kernel sizes ceil(11 * sqrt(1/2)**i), made odd, down to 5 pixels
    assert levels == 3 and len(snaps) == levels * 2
    assert [s.kernel.shape[0] for s in snaps[::2]] == [7, 9, 11]
    progress = [s.progress for s in snaps]
    assert progress == sorted(progress) and progress[-1] == 1.0  # exactly: a widget may test it
    assert snaps[-1].latent.shape == patch.shape
    np.testing.assert_allclose(snaps[-1].kernel, estimate_kernel(patch, 11, iterations=2,
                                                                 device="cpu"), atol=1e-6)


def test_an_abandoned_iteration_leaves_autograd_on():
    # a napari worker abandons the generator on Stop; its thread is reused for other work
    import torch

    steps = iterate(blurred_patch(64, motion_kernel(11, rng=4), seed=2), 11, device="cpu")
    next(steps)
    assert torch.is_grad_enabled()


def test_errors(rng):
    image = rng.random((64, 64))
    with pytest.raises(ValueError, match="kernel_size"):
        estimate_kernel(image, 8)
    with pytest.raises(ValueError, match="too small"):
        estimate_kernel(image, 33)
    with pytest.raises(ValueError, match="method"):
        estimate_kernel(image, 9, method="tv")
    with pytest.raises(ValueError, match="image"):
        estimate_kernel(rng.random((2, 2, 64, 64)), 9)
    with pytest.raises(ValueError, match="iterations"):
        iterate(image, 9, iterations=0)  # checked when called, not when first iterated
    for cut in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError, match="kernel_cut"):
            iterate(image, 9, kernel_cut=cut)


def test_the_kernel_step_drops_entries_below_the_cut():
    import torch

    from torchscope.deblur import _estimate

    gen = torch.Generator().manual_seed(0)
    latent = torch.rand((2, 48, 48), generator=gen, dtype=torch.float64)
    k = torch.tensor(motion_kernel(9, rng=3))
    blurred = torch.stack([torch.nn.functional.conv2d(x[None, None], k.flip(0, 1)[None, None],
                                                      padding=4)[0, 0] for x in latent])
    lx, ly = _estimate._gradients(latent)
    bx, by = _estimate._gradients(blurred)
    start = torch.full((2, 9, 9), 1 / 81.0, dtype=torch.float64)
    supports = []
    for cut in (0.0, 0.05, 0.1, 0.3):
        est = _estimate._estimate_psf(bx, by, lx, ly, start, cut)
        assert est.sum(dim=(-2, -1)).tolist() == pytest.approx([1.0, 1.0])
        top = est.amax(dim=(-2, -1), keepdim=True).expand_as(est)
        assert bool((est[est > 0] >= cut * top[est > 0]).all())
        # noise-free data: the 20 conjugate-gradient steps find the kernel
        assert float(kernel_similarity(est[0].numpy(), k.numpy())) > 0.95
        supports.append(est > 0)
    # the same solve, cut ever higher: nested supports, and a haze around the kernel that
    # only a cut removes
    for wider, narrower in itertools.pairwise(supports):
        assert bool((wider | ~narrower).all())
    assert int(supports[0][0].sum()) > int((k > 0).sum()) >= int(supports[-1][0].sum())

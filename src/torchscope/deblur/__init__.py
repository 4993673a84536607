"""Blind deblurring from good regions: blur kernels, kernel estimation, region scoring.

After Yang, Wu and Sun, *Select good regions for deblurring based on convolutional neural
networks* (``papers/001``): not every region of a blurred image helps to estimate the blur
kernel. Square regions (228 x 228, stride 20) are scored by how well a kernel can be
estimated from them, the best region gives the kernel, and the kernel deblurs the whole image.

Blur
    :func:`motion_kernel` (random camera-shake kernels, Boracchi and Foi 2012),
    :func:`blur` (``B = k * L + n``).
Kernel estimation and deconvolution
    :func:`estimate_kernel` (blind; Pan et al. 2016's dark channel prior, or their 2014 L0
    intensity-and-gradient prior; coarse to fine; one image or a batch of patches at once),
    :func:`iterate` (the same as a generator of :class:`Snapshot` states),
    :func:`deconvolve` (non-blind: ``"hyper_laplacian"``, ``"wiener"``,
    ``"richardson_lucy"``).
Regions
    :func:`score_regions` (scorers ``"cnn"``, ``"variance"``, ``"edges"``, ``"random"``;
    returns :class:`Regions`), :func:`deblur` (the whole pipeline; returns
    :class:`Deblurred`).
Quality
    :func:`kernel_similarity` (Hu and Yang), :func:`error_ratio` (Levin et al. 2009).

Conventions: numpy arrays in and out; images (H, W) grayscale or (H, W, 3) colour, intensities
in [0, 1] for float images (integer images are scaled by their dtype's maximum); kernels
(kh, kw) with their centre at ``(kh // 2, kw // 2)``; boxes ``(row, col, height, width)`` in
pixels; options keyword-only; ``device=None`` picks CUDA, then MPS, then the CPU; random
functions take ``rng`` (a seed or a ``numpy.random.Generator``).

Importing this module does not import torch; the first computation does.
"""

from torchscope.backend import lazy_namespace

_SUBMODULES = {
    "motion_kernel": "_motion",
    "blur": "_blur",
    "BLUR_MODES": "_blur",
    "kernel_similarity": "_metrics",
    "error_ratio": "_metrics",
    "estimate_kernel": "_estimate",
    "iterate": "_estimate",
    "Snapshot": "_estimate",
    "METHODS": "_estimate",
    "deconvolve": "_deconvolve",
    "DECONVOLUTION_METHODS": "_deconvolve",
    "score_regions": "_regions",
    "Regions": "_regions",
    "SCORERS": "_regions",
    "deblur": "_pipeline",
    "Deblurred": "_pipeline",
}

__getattr__, __dir__, __all__ = lazy_namespace(__name__, _SUBMODULES)

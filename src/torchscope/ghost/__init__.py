"""Computational (x-ray) ghost imaging: Hadamard masks, bucket signals and reconstructions.

After He et al., *Deep learning based high-resolution incoherent x-ray imaging with a
single-pixel detector* (``papers/000``): a set of etched 0/1 masks is moved through the beam
one by one, a single-pixel "bucket" detector records the total intensity transmitted by mask
and object, and an image is computed from the bucket values and the known masks.

Masks
    :func:`hadamard_patterns` (Sylvester Hadamard, orders ``"natural"``, ``"sequency"``,
    ``"zigzag"``, ``"cake_cutting"``; binary or differential), :func:`speckle_patterns`
    (random "sandpaper" masks).
Measurement
    :func:`simulate_buckets`: the x-ray model (modulation depth, per-pixel transmission
    errors, sloped edges, Poisson counting, read noise).
Reconstruction
    :func:`reconstruct` (``"gi"``, ``"dgi"``, ``"pinv"``, ``"tv"``, ``"mwcnn"``), :func:`iterate`
    (the iterative TV solver as a generator of snapshots, see :class:`Snapshot`).
    :func:`estimate_modulation_depth` (also ``modulation_depth="estimate"``).
The network
    :class:`MWCNN` (a multi-level wavelet CNN on the pseudo-inverse image; weights ship with the
    package), :func:`train_mwcnn` (a generator of :class:`TrainingProgress`, for your own
    pattern set), :func:`save_mwcnn`, :func:`load_mwcnn` (safetensors, no pickle).
Files and samples
    :func:`save_measurement`, :func:`load_measurement` (``.npz``: buckets, patterns, metadata;
    see :class:`Measurement`), :func:`save_patterns`, :func:`load_patterns` (TIFF stacks),
    :func:`sample_object` (the paper's "CAS" letters, 14-tooth gear, semi-cylinder and column;
    names in ``SAMPLE_OBJECTS``).
Quality
    :func:`cnr`, the contrast-to-noise ratio of the paper's equation (1); :func:`cnr_curve`
    (CNR against the number of exposures, see :class:`CNRCurve`).

Conventions: numpy arrays in and out; patterns are ``(M, n, n)`` stacks; buckets ``(..., M)``
give images ``(..., n, n)``; options are keyword-only; ``device=None`` picks CUDA, then MPS,
then the CPU; random functions take ``rng`` (a seed or a ``numpy.random.Generator``).

Importing this module does not import torch; the first reconstruction does.
"""

from torchscope.backend import lazy_namespace

_SUBMODULES = {
    "hadamard_patterns": "_patterns",
    "speckle_patterns": "_patterns",
    "ORDERS": "_patterns",
    "KINDS": "_patterns",
    "simulate_buckets": "_simulate",
    "reconstruct": "_reconstruct",
    "iterate": "_reconstruct",
    "Snapshot": "_reconstruct",
    "METHODS": "_reconstruct",
    "cnr": "_metrics",
    "cnr_curve": "_curve",
    "CNRCurve": "_curve",
    "estimate_modulation_depth": "_reconstruct",
    "train_mwcnn": "_training",
    "TrainingProgress": "_training",
    "MWCNN": "_mwcnn",
    "load_mwcnn": "_mwcnn",
    "save_mwcnn": "_mwcnn",
    "Measurement": "_io",
    "save_measurement": "_io",
    "load_measurement": "_io",
    "save_patterns": "_io",
    "load_patterns": "_io",
    "sample_object": "_samples",
    "SAMPLE_OBJECTS": "_samples",
}

__getattr__, __dir__, __all__ = lazy_namespace(__name__, _SUBMODULES)

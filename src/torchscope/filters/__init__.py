"""Filters, thresholds and morphology for 2D and 3D images (nD where natural), on torch.

The microscopy toolbox of the lecture in ``papers/002``, grouped as it groups them:

Denoising
    :func:`gaussian`, :func:`median`, :func:`mean`, :func:`minimum`, :func:`maximum`,
    :func:`variance`, :func:`std`
Background removal
    :func:`white_tophat`, :func:`black_tophat`, :func:`difference_of_gaussians`
Edges
    :func:`sobel`, :func:`laplace`, :func:`laplacian_of_gaussian`
Binarization
    :func:`threshold`, :func:`threshold_value`, :func:`histogram`
Morphology
    :func:`erosion`, :func:`dilation`, :func:`opening`, :func:`closing`
Stacks
    :func:`each_plane`: any of them on each 2D plane (or 3D volume) of a time series or
    channel stack, not across its leading axes

Conventions shared by every function:

- ``sigma`` and ``radius`` are in pixels, or in physical units when ``spacing`` (the voxel size
  per axis, e.g. a napari layer's ``scale``) is given; an anisotropic stack is then filtered
  with a kernel that is round in space. Footprints are discs/balls, the ellipsoids that
  ``spacing`` implies, identical to scikit-image's ``disk``/``ball`` when isotropic.
- Results agree with scikit-image / scipy.ndimage on the same call (same border handling, same
  footprint, same dtype rules): smoothing and edge filters return float (float64 input stays
  float64, everything else gives float32); rank filters and grey morphology keep the dtype; bool
  stays bool through morphology; :func:`threshold` returns a bool mask.
- numpy arrays in, numpy arrays out; dask arrays in, lazy dask arrays out (computed chunk by
  chunk with the overlap the kernel needs, identical to the in-memory result).
- ``device=None`` picks CUDA, then Apple MPS, then the CPU (see :mod:`torchscope.backend`).
- NaN in the input raises ``ValueError``; inputs are never modified.

Importing this module does not import torch; the first call does.
"""

from torchscope.backend import lazy_namespace

_SUBMODULES = {
    "gaussian": "_linear",
    "difference_of_gaussians": "_linear",
    "laplace": "_linear",
    "laplacian_of_gaussian": "_linear",
    "sobel": "_linear",
    "mean": "_rank",
    "median": "_rank",
    "minimum": "_rank",
    "maximum": "_rank",
    "variance": "_rank",
    "std": "_rank",
    "erosion": "_morphology",
    "dilation": "_morphology",
    "opening": "_morphology",
    "closing": "_morphology",
    "white_tophat": "_morphology",
    "black_tophat": "_morphology",
    "threshold": "_threshold",
    "threshold_value": "_threshold",
    "histogram": "_threshold",
    "THRESHOLD_METHODS": "_threshold",
    "footprint": "_core",
    "each_plane": "_core",
}

__getattr__, __dir__, __all__ = lazy_namespace(__name__, _SUBMODULES)

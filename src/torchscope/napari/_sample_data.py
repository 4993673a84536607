"""Sample data: synthetic fluorescence images of nuclei, generated (nothing is downloaded).

:func:`make_nuclei` draws ellipsoidal nuclei with a chromatin-like texture in physical units,
blurs them with an anisotropic point spread function, adds uneven illumination and, in 3D, a
loss of signal with depth, and records photons with Poisson shot noise, Gaussian read noise and
a camera offset, as a 16-bit camera does. The same seed gives the same image.

The napari ``sample_data`` contributions are :func:`nuclei_2d` (384 x 384 pixels of 0.5 µm) and
:func:`nuclei_3d` (40 x 160 x 160 voxels of 2.0 x 0.5 x 0.5 µm: an anisotropic stack of a cube
of 80 µm).
"""

import numpy as np
from scipy import ndimage

UNIT = "µm"


def make_nuclei(
    shape,
    spacing,
    *,
    n_nuclei,
    radius=(3.5, 6.0),
    psf_sigma=None,
    photons=100.0,
    read_noise=3.0,
    offset=100,
    seed=0,
):
    """A synthetic fluorescence image of nuclei.

    Parameters
    ----------
    shape : tuple of int
        Pixels per axis (2D or 3D; the last two axes are y, x).
    spacing : tuple of float
        Pixel size per axis in µm.
    n_nuclei : int
        How many nuclei to place (fewer when they do not fit without overlapping much).
    radius : (float, float)
        Range of the semi-axes of the nuclei, in µm.
    psf_sigma : tuple of float, optional
        Standard deviation of the Gaussian point spread function per axis, in µm. Default
        0.25 µm laterally and 0.8 µm axially (in 3D).
    photons : float
        Expected photon count of the brightest nucleus.
    read_noise : float
        Standard deviation of the camera's Gaussian read noise, in counts.
    offset : int
        Camera offset, in counts.
    seed : int
        Seed of the random generator.

    Returns
    -------
    numpy.ndarray of uint16
    """
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in shape)
    spacing = np.asarray(spacing, dtype=float)
    ndim = len(shape)
    if psf_sigma is None:
        psf_sigma = (0.8,) * (ndim - 2) + (0.25, 0.25)
    extent = np.asarray(shape) * spacing

    # Place nuclei (centres and semi-axes in µm), rejecting heavy overlaps.
    centres, semi_axes = [], []
    for _ in range(50 * n_nuclei):
        if len(centres) == n_nuclei:
            break
        centre = rng.uniform(0, extent)
        axes = rng.uniform(*radius, size=ndim)
        if all(
            np.linalg.norm(centre - c) > 0.8 * (axes.mean() + a.mean())
            for c, a in zip(centres, semi_axes)
        ):
            centres.append(centre)
            semi_axes.append(axes)

    signal = np.zeros(shape, dtype=np.float32)
    for centre, axes in zip(centres, semi_axes):
        lo = np.maximum(np.floor((centre - axes.max()) / spacing).astype(int), 0)
        hi = np.minimum(np.ceil((centre + axes.max()) / spacing).astype(int) + 1, shape)
        grids = list(
            np.meshgrid(
                *(np.arange(a, b) * s - c for a, b, s, c in zip(lo, hi, spacing, centre)),
                indexing="ij",
            )
        )
        angle = rng.uniform(0, np.pi)  # orientation in the y-x plane
        cos, sin = np.cos(angle), np.sin(angle)
        y, x = grids[-2], grids[-1]
        grids[-2], grids[-1] = cos * y - sin * x, sin * y + cos * x
        r = np.sqrt(sum((g / a) ** 2 for g, a in zip(grids, axes)))
        nucleus = rng.uniform(0.5, 1.0) * np.clip((1 - r) / 0.1, 0, 1)
        region = tuple(slice(a, b) for a, b in zip(lo, hi))
        signal[region] = np.maximum(signal[region], nucleus)

    # Chromatin texture: smooth noise of about 1 µm.
    texture = ndimage.gaussian_filter(rng.standard_normal(shape), 1.0 / spacing)
    signal *= np.clip(1 + 0.25 * texture / texture.std(), 0, None).astype(np.float32)
    signal = ndimage.gaussian_filter(signal, np.asarray(psf_sigma) / spacing)

    # Uneven illumination (a broad off-centre bump and a gradient), and attenuation with depth.
    u = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape[-2:]), indexing="ij")
    illumination = 0.12 + 0.25 * np.exp(-((u[0] - 0.3) ** 2 + (u[1] + 0.4) ** 2) / 0.6)
    illumination = illumination + 0.05 * u[1]
    if ndim == 3:
        depth = np.exp(-np.arange(shape[0]) * spacing[0] / (2 * extent[0]))[:, None, None]
        signal = signal * depth
    expected = photons * (signal + illumination)

    counts = rng.poisson(expected) + rng.normal(offset, read_noise, size=shape)
    return np.clip(np.round(counts), 0, np.iinfo(np.uint16).max).astype(np.uint16)


def _layer(data, spacing, name, axis_labels):
    return [
        (
            data,
            {
                "name": name,
                "scale": tuple(spacing),
                "units": (UNIT,) * len(spacing),
                "axis_labels": axis_labels,
            },
            "image",
        )
    ]


def nuclei_2d():
    """napari sample: 2D fluorescence-like image of nuclei, 384 x 384 pixels of 0.5 µm."""
    spacing = (0.5, 0.5)
    data = make_nuclei((384, 384), spacing, n_nuclei=70, seed=2)
    return _layer(data, spacing, "nuclei 2D", ("y", "x"))


def nuclei_3d():
    """napari sample: anisotropic 3D stack of nuclei, 40 x 160 x 160 voxels of 2 x 0.5 x 0.5 µm."""
    spacing = (2.0, 0.5, 0.5)
    data = make_nuclei((40, 160, 160), spacing, n_nuclei=150, seed=3)
    return _layer(data, spacing, "nuclei 3D", ("z", "y", "x"))

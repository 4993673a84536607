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


# --------------------------------------------------------------------------- ptycho (issue 4)
def make_ptycho_object(size=192):
    """The ptychography test object: amplitude 0.6 + 0.4 camera, phase pi (astronaut - 0.5).

    Both images are scikit-image's bundled ones (no download), resized to ``size`` x ``size``
    and scaled to [0, 1]. Returns the complex transmission (complex64).
    """
    from skimage import color, data, transform

    def unit(image):
        image = transform.resize(image, (size, size), anti_aliasing=True)
        return (image - image.min()) / np.ptp(image)

    amplitude = 0.6 + 0.4 * unit(data.camera())
    phase = np.pi * (unit(color.rgb2gray(data.astronaut())) - 0.5)
    return (amplitude * np.exp(1j * phase)).astype(np.complex64)


def ptycho_simulated():
    """napari sample: a simulated far-field ptychography scan, ready for the Ptychography dock.

    A 192 x 192 object (:func:`make_ptycho_object`), a 64 x 64 probe (a 40 px soft disk with
    2.5 rad of quadratic phase at its rim), a 10 x 10 raster with 10 px steps and +-2 px integer
    jitter, 10^6 photons per pattern with Poisson noise, at 1020 eV, 0.75 m and 20 µm detector
    pixels (seed 0). Layers: the true amplitude and phase (hidden, for comparison), the
    patterns (which carry the dataset) and the scan positions, in nm from the object centre.
    """
    from torchscope import ptycho
    from torchscope.napari._ptycho import data_layers, pixel_nm

    obj = make_ptycho_object(192)
    probe = ptycho.make_probe(64, kind="disk", diameter_px=40, quadratic_phase_rad=2.5)
    positions = ptycho.raster_positions(10, 10, jitter_px=2, integer=True, rng=0)
    data = ptycho.simulate(obj, probe, positions, photons=1e6, rng=0)
    call = (
        "torchscope.ptycho.simulate(obj, torchscope.ptycho.make_probe(64, kind='disk', "
        "diameter_px=40, quadratic_phase_rad=2.5), torchscope.ptycho.raster_positions(10, 10, "
        "jitter_px=2, integer=True, rng=0), photons=1e6, rng=0)"
        "  # obj = torchscope.napari._sample_data.make_ptycho_object(192)"
    )
    scale = pixel_nm(data.geometry)
    truth = {
        "scale": scale,
        "translate": tuple(-(n // 2) * s for n, s in zip(obj.shape, scale)),
        "units": ("nm", "nm"),
    }
    return [
        (
            np.abs(obj),
            {"name": "true amplitude", "colormap": "gray", "visible": False, **truth},
            "image",
        ),
        (
            np.angle(obj),
            {"name": "true phase", "colormap": "twilight_shifted", "visible": False, **truth},
            "image",
        ),
        *data_layers(data, "simulated", call=call),
    ]


# ------------------------------------------------------------------------------- ghost (issue 3)
# The paper's test objects as 64 x 64 transmission maps (torchscope.ghost.sample_object), with
# their pixel size in µm, and a simulated measurement of the semi-cylinder in the paper's Au-mask
# setting (64 x 64 masks of 10 µm, 18.75 % sampling, D_r 0.83, 3 % mask error, 1000 photons).


def _ghost_object(name, n=64):
    from torchscope.ghost import SAMPLE_OBJECTS, sample_object

    spacing = SAMPLE_OBJECTS[name].field_of_view / n
    call = f"torchscope.ghost.sample_object({name!r}, {n})"
    return (
        sample_object(name, n),
        {
            "name": SAMPLE_OBJECTS[name].title,
            "scale": (spacing, spacing),
            "units": (UNIT, UNIT),
            "axis_labels": ("y", "x"),
            "colormap": "gray",
            "metadata": {"torchscope": {"call": call, "spacing": spacing}},
        },
        "image",
    )


def ghost_cas():
    """napari sample: the stencilled letters "CAS", 64 x 64 pixels of 75 µm."""
    return [_ghost_object("cas")]


def ghost_gear():
    """napari sample: a 14-tooth gear 1.5 mm across, 64 x 64 pixels of 30 µm."""
    return [_ghost_object("gear")]


def ghost_cylinder():
    """napari sample: semi-cylinder and column with a 10 µm gap, 64 x 64 pixels of 10 µm."""
    return [_ghost_object("cylinder")]


#: The simulated measurement of :func:`ghost_measurement`.
GHOST_SETTING = {"ratio": 0.1875, "modulation_depth": 0.83, "mask_error": 0.03,
                 "photons": 1000.0, "rng": 0}


def ghost_measurement():
    """napari sample: the semi-cylinder and a simulated measurement of it (768 Hadamard masks).

    Two layers: the object, and the measurement (its patterns, buckets in the metadata) that
    the Ghost imaging dock reconstructs with source "measured data".
    """
    from torchscope import ghost
    from torchscope.napari._readers import ghost_measurement_layer

    obj = _ghost_object("cylinder")
    setting = dict(GHOST_SETTING)
    patterns = ghost.hadamard_patterns(64, ratio=setting.pop("ratio"))
    buckets = ghost.simulate_buckets(obj[0], patterns, **setting)
    meta = {**GHOST_SETTING, "spacing": obj[1]["scale"][0], "object": "cylinder",
            "patterns": "torchscope.ghost.hadamard_patterns(64, ratio=0.1875)"}
    data, kwargs, kind = ghost_measurement_layer(
        ghost.Measurement(buckets, patterns, meta), name="measurement (semi-cylinder)")
    return [obj, (data, kwargs, kind)]


# --------------------------------------------------------------------------- alzheimer (issue 6)
#: Seed of the phantom MRI sample (subjects that the demo model was not trained on).
PHANTOM_MRI_SEED = 20240601


def phantom_mri():
    """napari sample: two phantom T1 MRI volumes on OASIS-1's grid, a control and an AD subject.

    Generated by ``torchscope.alzheimer.phantom_cohort(2, severity=(1.0, 1.0), seed=...,
    out_dir=...)`` from nilearn's MNI152 template (nothing is downloaded), written in OASIS-1's
    Analyze format to a temporary folder and read back with ``load_volume``: 176 x 208 x 176
    voxels of 1 mm, axial along axis 2. Takes a few seconds (two whole volumes).
    """
    import tempfile
    from pathlib import Path

    from torchscope.alzheimer import load_volume, phantom_cohort

    layers = []
    with tempfile.TemporaryDirectory() as folder:
        cohort = phantom_cohort(2, severity=(1.0, 1.0), seed=PHANTOM_MRI_SEED, out_dir=folder)
        for scan, label, cdr in zip(cohort.ids, cohort.labels, cohort.cdr):
            [path] = Path(folder).rglob(f"{scan}_*t88_masked_gfc.hdr")
            volume, spacing = load_volume(path, return_spacing=True)
            group = f"AD, CDR {cdr:g}" if label else "healthy, CDR 0"
            layers.append(
                (
                    volume,
                    {
                        "name": f"phantom {scan} ({group})",
                        "scale": spacing,
                        "units": ("mm",) * volume.ndim,
                        "metadata": {"torchscope": {"source": cohort.source, "label": int(label),
                                                    "cdr": float(cdr)}},
                    },
                    "image",
                )
            )
    return layers


# --------------------------------------------------------------------------- deblur (issue 5)
#: Seed of the motion kernel of the blurred camera sample.
DEBLUR_SEED = 5
#: Side of that kernel in pixels, and the noise added after blurring (intensities in [0, 1]).
DEBLUR_KERNEL_SIZE, DEBLUR_NOISE = 19, 0.01


def _motion_blurred(sharp, name, source):
    """``sharp`` (in [0, 1]; grey or colour) blurred by the samples' seeded motion kernel, and
    that kernel as a second layer right of the image's bottom corner (at the image's pixel
    size; the deblur dock draws its estimate right of the top corner). ``source`` is the
    Python expression of ``sharp``, for the recorded call."""
    from torchscope.deblur import blur, motion_kernel

    kernel = motion_kernel(DEBLUR_KERNEL_SIZE, rng=DEBLUR_SEED)
    blurred = blur(sharp, kernel, noise_sigma=DEBLUR_NOISE, rng=DEBLUR_SEED)
    call = (f"kernel = torchscope.deblur.motion_kernel({DEBLUR_KERNEL_SIZE}, rng={DEBLUR_SEED})\n"
            f"image = torchscope.deblur.blur({source}, kernel, "
            f"noise_sigma={DEBLUR_NOISE}, rng={DEBLUR_SEED})")
    meta = {"torchscope": {"call": call}}
    return [
        (blurred.astype(np.float32), {"name": name, "rgb": sharp.ndim == 3, "metadata": meta},
         "image"),
        (kernel.astype(np.float32), {"name": "true kernel", "colormap": "inferno",
                                     "translate": (float(sharp.shape[0] - kernel.shape[0]),
                                                   sharp.shape[1] + 4.0),
                                     "metadata": meta}, "image"),
    ]


def deblur_camera():
    """napari sample: scikit-image's ``camera`` (512 x 512, bundled) blurred by a random motion.

    ``k = torchscope.deblur.motion_kernel(19, rng=5)``, then
    ``torchscope.deblur.blur(camera / 255, k, noise_sigma=0.01, rng=5)``; the true kernel is a
    second layer (drawn right of the image's bottom corner, at the image's pixel size; the deblur
    dock draws its estimate right of the top corner).
    """
    from skimage import data

    return _motion_blurred(data.camera().astype(np.float32) / 255, "camera, motion-blurred",
                           "skimage.data.camera() / 255")


def deblur_astronaut():
    """napari sample: scikit-image's ``astronaut`` (512 x 512 x 3, bundled), in colour, blurred
    by the same random motion as :func:`deblur_camera` (each channel; the true kernel is a
    second layer). The dock estimates the kernel on its luminance and deblurs it in colour."""
    from skimage import data

    return _motion_blurred(data.astronaut().astype(np.float32) / 255, "astronaut, motion-blurred",
                           "skimage.data.astronaut() / 255")


def deblur_clock():
    """napari sample: scikit-image's ``clock``, a real photograph blurred by a horizontal camera
    motion (300 x 400, uint8, bundled with scikit-image; the true kernel is unknown)."""
    from skimage import data

    return [(data.clock(), {"name": "clock (real motion blur)",
                            "metadata": {"torchscope": {"call": "skimage.data.clock()"}}},
             "image")]

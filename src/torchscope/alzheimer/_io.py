"""MRI volumes in and single slices out: Analyze (.hdr/.img) and NIfTI files via nibabel."""

import numbers
from pathlib import Path

import numpy as np

from torchscope.backend import as_array

_SUFFIXES = (".hdr", ".img", ".nii", ".nii.gz", ".hdr.gz", ".img.gz")


def _squeeze_trailing(array):
    """Drop singleton axes after the third (OASIS stores volumes as 176 x 208 x 176 x 1)."""
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return array


def load_volume(path, *, return_spacing=False):
    """Read an MRI volume from an Analyze pair (.hdr/.img) or a NIfTI file (.nii, .nii.gz).

    Parameters
    ----------
    path : str or path-like
        The ``.hdr`` or the ``.img`` of an Analyze 7.5 pair (OASIS-1's format), or a NIfTI-1/2
        file. Read with nibabel; the header's scale factor, if any, is applied.
    return_spacing : bool, optional
        Also return the voxel size per axis (mm, from the header's ``pixdim``).

    Returns
    -------
    volume : numpy.ndarray of float32
        The image with trailing singleton axes beyond the third removed (OASIS-1 files are
        176 x 208 x 176 x 1 and come back 176 x 208 x 176). The array's axes are the file's
        voxel axes; no reorientation is done (OASIS-1's axial axis is axis 2).
    spacing : tuple of float
        Only with ``return_spacing=True``: voxel size (mm) of each returned axis.

    Raises
    ------
    FileNotFoundError
        No file at ``path`` (or an Analyze header without its image).
    ValueError
        Another suffix, a file nibabel cannot read (empty, truncated, not an image), complex
        voxels, or fewer than two dimensions; the message names the file.
    """
    import nibabel as nib

    p = Path(path)
    name = p.name.lower()
    if not name.endswith(_SUFFIXES):
        raise ValueError(
            f"path={str(path)!r} is not an Analyze (.hdr/.img) or NIfTI (.nii, .nii.gz) file."
        )
    if not p.exists():
        raise FileNotFoundError(f"path={str(path)!r} does not exist.")
    try:
        img = nib.load(str(p))
        data = np.asarray(img.dataobj)
    except FileNotFoundError:  # (an Analyze header without its image file)
        raise
    except (nib.filebasedimages.ImageFileError, OSError, EOFError, ValueError) as err:
        raise ValueError(f"path={str(path)!r} is not a readable Analyze or NIfTI image "
                         f"({type(err).__name__}: {err}).") from None
    if data.dtype.kind not in "biuf":
        raise ValueError(f"path={str(path)!r} holds {data.dtype} voxels; a brain MRI volume is "
                         "real-valued.")
    volume = _squeeze_trailing(data.astype(np.float32))
    if volume.ndim < 2:
        raise ValueError(f"path={str(path)!r} holds a {volume.ndim}-D image, not a volume.")
    if not return_spacing:
        return volume
    zooms = tuple(float(z) for z in img.header.get_zooms()[: volume.ndim])
    zooms = tuple(z if z > 0 else 1.0 for z in zooms)
    return volume, zooms


#: How far beyond [0, 1] a slice may reach (rounding of a scaled image) before it is refused
UNIT_TOLERANCE = 1e-3


def check_unit_range(slices, name="slices"):
    """Refuse slices outside [0, 1]: the networks were trained on slices scaled so (a raw
    uint8 slice, 0 to 255, classified as healthy with certainty what the same slice scaled to
    [0, 1] classified as AD with 0.9)."""
    if np.size(slices) == 0:
        return
    lo, hi = float(np.min(slices)), float(np.max(slices))
    if lo < -UNIT_TOLERANCE or hi > 1 + UNIT_TOLERANCE:
        raise ValueError(
            f"{name} hold values from {lo:g} to {hi:g}; the models take slices scaled to [0, 1]: "
            "use normalise_slice() (or extract_slice(), which scales the slice it reads).")


def normalise_slice(image):
    """Scale an image linearly to [0, 1] (minimum to 0, maximum to 1; constant images give 0).

    Parameters
    ----------
    image : array_like, real
        A 2-D slice (or any array: the scaling uses its global minimum and maximum).

    Returns
    -------
    numpy.ndarray of float32
    """
    return _normalise(image, "image")


def _normalise(image, name):
    """:func:`normalise_slice`, with errors naming ``name`` (the caller's argument)."""
    a = as_array(image, name)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} has dtype {a.dtype}; a real-valued {name} is needed.")
    # in float64 until scaled: float32 first lost the contrast of large integers (1e8 + 3)
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or infinite values.")
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if hi <= lo:
        return np.zeros(a.shape, np.float32)
    return ((a - lo) / (hi - lo)).astype(np.float32)


def _check_axis_index(shape, axis, index, name="volume"):
    if not isinstance(axis, numbers.Integral) or isinstance(axis, bool):
        raise TypeError(f"axis must be an integer, got {axis!r}.")
    if not -len(shape) <= axis < len(shape):
        raise ValueError(f"axis={axis} is out of range for a {len(shape)}-D {name}.")
    axis = int(axis) % len(shape)
    if not isinstance(index, numbers.Integral) or isinstance(index, bool):
        raise TypeError(f"index must be an integer, got {index!r}.")
    n = shape[axis]
    if not -n <= index < n:
        raise ValueError(
            f"index={index} is out of range: the {name} has {n} slices along axis {axis} "
            f"(shape {tuple(shape)})."
        )
    return axis, int(index) % n


def extract_slice(volume, *, axis=2, index=105):
    """One slice of a volume, scaled to [0, 1] as in the paper.

    Parameters
    ----------
    volume : array_like, shape (X, Y, Z) or (X, Y, Z, 1)
        An MRI volume (for example from :func:`load_volume`). A trailing singleton axis is
        dropped.
    axis : int, optional
        The axis to slice across. OASIS-1's atlas-registered volumes (176 x 208 x 176) are
        axial along axis 2 (the default).
    index : int, optional
        0-based slice index. The default 105 is the paper's "106th" (middle axial) slice.

    Returns
    -------
    numpy.ndarray of float32, 2-D
        The slice, linearly scaled so its minimum is 0 and its maximum 1.
    """
    v = np.asarray(volume)
    v = _squeeze_trailing(v)
    if v.ndim != 3:
        raise ValueError(
            f"volume must be 3-D (or 3-D with a trailing singleton axis), got shape {v.shape}."
        )
    axis, index = _check_axis_index(v.shape, axis, index)
    if v.size == 0:
        raise ValueError(f"volume is empty (shape {v.shape}).")
    return _normalise(np.take(v, index, axis=axis), "volume")

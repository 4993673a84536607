"""Grey (and binary) morphology with disc/ball footprints.

Erosion is the minimum over the footprint and dilation the maximum (the footprints are
symmetric, so no mirroring is involved); both run on the min/max engine of
:mod:`torchscope.filters._rank`. Opening, closing and the top-hats chain them. The dtype is kept
throughout, bool included (scikit-image 0.26 applies ``erosion`` and friends to bool images in
place of the deprecated ``binary_*`` functions).
"""

from torchscope.filters import _core, _network
from torchscope.filters._rank import footprint_filter, half_size, prepare


def _erode(t, fp, mode):
    return footprint_filter(t, fp, _network.MIN, mode)


def _dilate(t, fp, mode):
    return footprint_filter(t, fp, _network.MAX, mode)


def _open(t, fp, mode):
    return _dilate(_erode(t, fp, mode), fp, mode)


def _close(t, fp, mode):
    return _erode(_dilate(t, fp, mode), fp, mode)


def _difference(a, b):
    """``a - b`` for ``a >= b``; for bool, ``a xor b`` (as scikit-image does)."""
    import torch

    return a ^ b if a.dtype == torch.bool else a - b


def _white_tophat(t, fp, mode):
    return _difference(t, _open(t, fp, mode))


def _black_tophat(t, fp, mode):
    return _difference(_close(t, fp, mode), t)


def _morphology(kernel, image, radius, spacing, mode, device, stages):
    """Run ``kernel(t, fp, mode)``, made of ``stages`` min/max filters, on a numpy/dask image."""
    image, fp = prepare(image, radius, spacing, mode)
    depth = tuple(stages * h for h in half_size(fp))
    return _core.apply(
        lambda t: kernel(t, fp, mode),
        image,
        depth=depth,
        dtype=image.dtype,
        device=device,
        mode=mode,
    )


def erosion(image, radius, *, spacing=None, mode="reflect", device=None):
    """Grey erosion: the minimum over a disc/ball footprint.

    Shrinks bright objects and grows dark ones; on a bool mask, removes every pixel whose
    footprint touches the background.

    Parameters
    ----------
    image : numpy.ndarray or dask.array.Array
        2D, 3D or nD image: bool, integer or float, without NaN.
    radius : float or sequence of float
        Radius of the disc/ball footprint in pixels, or in the unit of ``spacing`` when that
        is given; one value per axis gives an ellipsoid. For an integer radius in pixels the
        footprint is ``skimage.morphology.disk(radius)`` (2D) or ``ball(radius)`` (3D); see
        :func:`torchscope.filters.footprint`. 0 is the identity.
    spacing : sequence of float, optional
        Voxel size per axis (e.g. a napari layer's ``scale``), in the unit of ``radius``.
    mode : {"reflect", "nearest", "mirror", "wrap", "constant"}, optional
        How the image is extended beyond its border, as in ``scipy.ndimage`` ("constant" pads
        with 0). The default is scikit-image's.
    device : None, str or torch.device, optional
        Where to compute: ``None`` picks CUDA, then Apple MPS, then the CPU.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        Same shape and dtype as ``image``, bool included (lazy for dask input).

    Raises
    ------
    ValueError
        NaN in ``image``; a negative or non-finite ``radius``, a ``spacing`` that is not
        positive, or either with the wrong number of values; an unknown ``mode``.
    TypeError
        A complex or non-numeric ``image``; a ``radius`` or ``spacing`` that is not a number.

    Notes
    -----
    The result equals ``skimage.morphology.erosion(image, fp, mode=mode)``
    with ``fp = footprint(radius, image.ndim, spacing=spacing)``.
    """
    return _morphology(_erode, image, radius, spacing, mode, device, 1)


def dilation(image, radius, *, spacing=None, mode="reflect", device=None):
    """Grey dilation: the maximum over a disc/ball footprint.

    Grows bright objects and shrinks dark ones; on a bool mask, adds every pixel whose
    footprint touches an object.

    Parameters
    ----------
    image : numpy.ndarray or dask.array.Array
        2D, 3D or nD image: bool, integer or float, without NaN.
    radius : float or sequence of float
        Radius of the disc/ball footprint in pixels, or in the unit of ``spacing`` when that
        is given; one value per axis gives an ellipsoid. For an integer radius in pixels the
        footprint is ``skimage.morphology.disk(radius)`` (2D) or ``ball(radius)`` (3D); see
        :func:`torchscope.filters.footprint`. 0 is the identity.
    spacing : sequence of float, optional
        Voxel size per axis (e.g. a napari layer's ``scale``), in the unit of ``radius``.
    mode : {"reflect", "nearest", "mirror", "wrap", "constant"}, optional
        How the image is extended beyond its border, as in ``scipy.ndimage`` ("constant" pads
        with 0). The default is scikit-image's.
    device : None, str or torch.device, optional
        Where to compute: ``None`` picks CUDA, then Apple MPS, then the CPU.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        Same shape and dtype as ``image``, bool included (lazy for dask input).

    Raises
    ------
    ValueError
        NaN in ``image``; a negative or non-finite ``radius``, a ``spacing`` that is not
        positive, or either with the wrong number of values; an unknown ``mode``.
    TypeError
        A complex or non-numeric ``image``; a ``radius`` or ``spacing`` that is not a number.

    Notes
    -----
    The result equals ``skimage.morphology.dilation(image, fp, mode=mode)``
    with ``fp = footprint(radius, image.ndim, spacing=spacing)``.
    """
    return _morphology(_dilate, image, radius, spacing, mode, device, 1)


def opening(image, radius, *, spacing=None, mode="reflect", device=None):
    """Morphological opening: an erosion followed by a dilation.

    Removes bright details smaller than the footprint (salt noise, thin protrusions) and keeps
    the shape of larger objects.

    Parameters
    ----------
    image : numpy.ndarray or dask.array.Array
        2D, 3D or nD image: bool, integer or float, without NaN.
    radius : float or sequence of float
        Radius of the disc/ball footprint in pixels, or in the unit of ``spacing`` when that
        is given; one value per axis gives an ellipsoid. For an integer radius in pixels the
        footprint is ``skimage.morphology.disk(radius)`` (2D) or ``ball(radius)`` (3D); see
        :func:`torchscope.filters.footprint`. 0 is the identity.
    spacing : sequence of float, optional
        Voxel size per axis (e.g. a napari layer's ``scale``), in the unit of ``radius``.
    mode : {"reflect", "nearest", "mirror", "wrap", "constant"}, optional
        How the image is extended beyond its border, as in ``scipy.ndimage`` ("constant" pads
        with 0). The default is scikit-image's.
    device : None, str or torch.device, optional
        Where to compute: ``None`` picks CUDA, then Apple MPS, then the CPU.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        Same shape and dtype as ``image``, bool included (lazy for dask input).

    Raises
    ------
    ValueError
        NaN in ``image``; a negative or non-finite ``radius``, a ``spacing`` that is not
        positive, or either with the wrong number of values; an unknown ``mode``.
    TypeError
        A complex or non-numeric ``image``; a ``radius`` or ``spacing`` that is not a number.

    Notes
    -----
    The result equals ``skimage.morphology.opening(image, fp, mode=mode)``
    with ``fp = footprint(radius, image.ndim, spacing=spacing)``.
    """
    return _morphology(_open, image, radius, spacing, mode, device, 2)


def closing(image, radius, *, spacing=None, mode="reflect", device=None):
    """Morphological closing: a dilation followed by an erosion.

    Fills dark details smaller than the footprint (pepper noise, small holes, thin gaps).

    Parameters
    ----------
    image : numpy.ndarray or dask.array.Array
        2D, 3D or nD image: bool, integer or float, without NaN.
    radius : float or sequence of float
        Radius of the disc/ball footprint in pixels, or in the unit of ``spacing`` when that
        is given; one value per axis gives an ellipsoid. For an integer radius in pixels the
        footprint is ``skimage.morphology.disk(radius)`` (2D) or ``ball(radius)`` (3D); see
        :func:`torchscope.filters.footprint`. 0 is the identity.
    spacing : sequence of float, optional
        Voxel size per axis (e.g. a napari layer's ``scale``), in the unit of ``radius``.
    mode : {"reflect", "nearest", "mirror", "wrap", "constant"}, optional
        How the image is extended beyond its border, as in ``scipy.ndimage`` ("constant" pads
        with 0). The default is scikit-image's.
    device : None, str or torch.device, optional
        Where to compute: ``None`` picks CUDA, then Apple MPS, then the CPU.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        Same shape and dtype as ``image``, bool included (lazy for dask input).

    Raises
    ------
    ValueError
        NaN in ``image``; a negative or non-finite ``radius``, a ``spacing`` that is not
        positive, or either with the wrong number of values; an unknown ``mode``.
    TypeError
        A complex or non-numeric ``image``; a ``radius`` or ``spacing`` that is not a number.

    Notes
    -----
    The result equals ``skimage.morphology.closing(image, fp, mode=mode)``
    with ``fp = footprint(radius, image.ndim, spacing=spacing)``.
    """
    return _morphology(_close, image, radius, spacing, mode, device, 2)


def white_tophat(image, radius, *, spacing=None, mode="reflect", device=None):
    """White top-hat: the image minus its opening.

    Keeps bright objects smaller than the footprint and removes the background that varies
    more slowly (uneven illumination). For bool images the difference is ``image ^ opened``.

    Parameters
    ----------
    image : numpy.ndarray or dask.array.Array
        2D, 3D or nD image: bool, integer or float, without NaN.
    radius : float or sequence of float
        Radius of the disc/ball footprint in pixels, or in the unit of ``spacing`` when that
        is given; one value per axis gives an ellipsoid. For an integer radius in pixels the
        footprint is ``skimage.morphology.disk(radius)`` (2D) or ``ball(radius)`` (3D); see
        :func:`torchscope.filters.footprint`. 0 is the identity.
    spacing : sequence of float, optional
        Voxel size per axis (e.g. a napari layer's ``scale``), in the unit of ``radius``.
    mode : {"reflect", "nearest", "mirror", "wrap", "constant"}, optional
        How the image is extended beyond its border, as in ``scipy.ndimage`` ("constant" pads
        with 0). The default is scikit-image's.
    device : None, str or torch.device, optional
        Where to compute: ``None`` picks CUDA, then Apple MPS, then the CPU.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        Same shape and dtype as ``image``, bool included (lazy for dask input).

    Raises
    ------
    ValueError
        NaN in ``image``; a negative or non-finite ``radius``, a ``spacing`` that is not
        positive, or either with the wrong number of values; an unknown ``mode``.
    TypeError
        A complex or non-numeric ``image``; a ``radius`` or ``spacing`` that is not a number.

    Notes
    -----
    The result equals ``skimage.morphology.white_tophat(image, fp, mode=mode)``
    with ``fp = footprint(radius, image.ndim, spacing=spacing)``.
    """
    return _morphology(_white_tophat, image, radius, spacing, mode, device, 2)


def black_tophat(image, radius, *, spacing=None, mode="reflect", device=None):
    """Black top-hat: the closing of the image minus the image.

    Keeps dark objects smaller than the footprint (as bright values) and removes the
    background. For bool images the difference is ``closed ^ image``.

    Parameters
    ----------
    image : numpy.ndarray or dask.array.Array
        2D, 3D or nD image: bool, integer or float, without NaN.
    radius : float or sequence of float
        Radius of the disc/ball footprint in pixels, or in the unit of ``spacing`` when that
        is given; one value per axis gives an ellipsoid. For an integer radius in pixels the
        footprint is ``skimage.morphology.disk(radius)`` (2D) or ``ball(radius)`` (3D); see
        :func:`torchscope.filters.footprint`. 0 is the identity.
    spacing : sequence of float, optional
        Voxel size per axis (e.g. a napari layer's ``scale``), in the unit of ``radius``.
    mode : {"reflect", "nearest", "mirror", "wrap", "constant"}, optional
        How the image is extended beyond its border, as in ``scipy.ndimage`` ("constant" pads
        with 0). The default is scikit-image's.
    device : None, str or torch.device, optional
        Where to compute: ``None`` picks CUDA, then Apple MPS, then the CPU.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        Same shape and dtype as ``image``, bool included (lazy for dask input).

    Raises
    ------
    ValueError
        NaN in ``image``; a negative or non-finite ``radius``, a ``spacing`` that is not
        positive, or either with the wrong number of values; an unknown ``mode``.
    TypeError
        A complex or non-numeric ``image``; a ``radius`` or ``spacing`` that is not a number.

    Notes
    -----
    The result equals ``skimage.morphology.black_tophat(image, fp, mode=mode)``
    with ``fp = footprint(radius, image.ndim, spacing=spacing)``.
    """
    return _morphology(_black_tophat, image, radius, spacing, mode, device, 2)

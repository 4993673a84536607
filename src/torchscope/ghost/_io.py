"""Files: measured data as ``.npz`` (buckets, patterns, metadata) and pattern stacks as TIFF.

A measurement file is a NumPy ``.npz`` archive with the arrays ``buckets`` (``(..., M)``) and
``patterns`` (``(M, h, w)``), and optionally ``metadata``: a JSON object stored as a 0-d string
array, so the file loads with ``allow_pickle=False`` (nothing in it can run code). Any tool can
write one: ``numpy.savez(path, buckets=b, patterns=p)`` is a valid measurement.

A pattern stack is a TIFF of ``M`` pages of ``h x w`` masks. :func:`save_patterns` marks its
files in the TIFF image description (tifffile's JSON "shaped" metadata with
``"torchscope": "ghost.patterns"``), which is how the napari reader recognises them.

Binary masks kept as 8- or 16-bit images (0/255, 0/65535) are read back as 0/1 masks (see
:func:`load_patterns`), since the reconstructions take 0 as "opaque" and 1 as "open".
"""

import dataclasses
import json
import os
import zipfile
from pathlib import Path

import numpy as np

#: Value of the ``"torchscope"`` key that marks files written by this module.
MEASUREMENT_FORMAT = "ghost.measurement"
PATTERNS_FORMAT = "ghost.patterns"
FORMAT_VERSION = 1
_KEYS = ("buckets", "patterns")


@dataclasses.dataclass(frozen=True, eq=False)
class Measurement:
    """A single-pixel measurement, as :func:`load_measurement` returns it.

    Attributes
    ----------
    buckets : numpy.ndarray of float64, shape (..., M)
        Bucket values, one per pattern (a stack of bucket vectors for several objects).
    patterns : numpy.ndarray of float32, shape (M, h, w)
        The masks, in exposure order.
    metadata : dict
        Whatever was stored with the data (JSON types), e.g. ``{"modulation_depth": 0.8}``;
        empty when the file has none.
    """

    buckets: np.ndarray
    patterns: np.ndarray
    metadata: dict


# ------------------------------------------------------------------------------ checks
def _check_patterns(patterns, where="patterns", dtype_error=TypeError):
    """``patterns`` as an array, checked; ``dtype_error`` is ValueError for a file's content
    (a caller's array of the wrong type is a TypeError, a file's is a bad file)."""
    p = np.asarray(patterns)
    if p.dtype.kind not in "biuf":
        raise dtype_error(f"{where} has dtype {p.dtype}; expected real numbers (M, h, w).")
    if p.ndim != 3 or 0 in p.shape:
        raise ValueError(f"{where} has shape {p.shape}; expected a non-empty stack (M, h, w) of "
                         "masks.")
    if p.dtype.kind == "f" and not np.isfinite(p).all():
        raise ValueError(f"{where} contains NaN or infinite values.")
    return p


def _check_buckets(buckets, m, where="buckets", dtype_error=TypeError):
    b = np.asarray(buckets)
    if b.dtype.kind not in "biuf":
        raise dtype_error(f"{where} has dtype {b.dtype}; expected real numbers (..., M).")
    if b.ndim < 1 or b.shape[-1] != m:
        raise ValueError(f"{where} has shape {b.shape} but there are {m} patterns: the last axis "
                         "of buckets must have one value per pattern (M mismatch).")
    if b.dtype.kind == "f" and not np.isfinite(b).all():
        raise ValueError(f"{where} contains NaN or infinite values.")
    return b


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON serialisable")


def _metadata_json(metadata):
    if metadata is None:
        return "{}"
    if not isinstance(metadata, dict) or not all(isinstance(k, str) for k in metadata):
        raise TypeError(f"metadata must be a dict with str keys, got {type(metadata).__name__}.")
    try:
        return json.dumps(metadata, default=_json_default, allow_nan=True)
    except (TypeError, ValueError) as error:
        raise TypeError(f"metadata must hold JSON types (numbers, strings, lists, dicts): "
                        f"{error}.") from None


def _normalized(p):
    """Integer/bool stacks with exactly two levels ``{0, v}`` become 0/1; all as float32."""
    if p.dtype.kind in "biu":
        levels = np.unique(p)
        if levels.size == 2 and levels[0] == 0 and levels[1] > 0:
            return (p != 0).astype(np.float32)
    return p.astype(np.float32)


# ------------------------------------------------------------------------- measurements
def save_measurement(path, buckets, patterns, *, metadata=None):
    """Write buckets, patterns and metadata to a ``.npz`` measurement file.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write, used as given (no extension is added; ``.npz`` is customary).
    buckets : array_like, shape (..., M)
        Bucket values (counts or intensities; any real dtype, stored as given).
    patterns : array_like, shape (M, h, w)
        The masks in exposure order (stored in their dtype: 0/1 ``uint8`` masks stay small).
    metadata : dict, optional
        JSON-serialisable description (NumPy scalars and arrays are converted), e.g. the
        modulation depth, the dose, the pixel size in µm. Read back by :func:`load_measurement`.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ValueError
        When the shapes do not fit (``buckets.shape[-1]`` must equal the number of patterns).
    TypeError
        For non-numeric arrays or metadata that JSON cannot hold.
    """
    p = _check_patterns(patterns)
    b = _check_buckets(buckets, p.shape[0])
    text = _metadata_json(metadata)
    path = Path(os.fspath(path))
    with open(path, "wb") as handle:  # an open file: numpy adds no ".npz" of its own
        np.savez_compressed(
            handle,
            buckets=b,
            patterns=p,
            metadata=np.array(text),
            torchscope=np.array(MEASUREMENT_FORMAT),
            version=np.array(FORMAT_VERSION),
        )
    return path


def _open_npz(path):
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        if not zipfile.is_zipfile(path):  # numpy then guesses at .npy or pickled data
            raise ValueError(f"{path}: not an .npz file (numpy's zip archive of arrays)."
                             ) from None
        raise ValueError(f"{path}: not a readable .npz measurement file ({error}).") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):  # a single .npy array, whatever its name
        raise ValueError(f"{path}: a single .npy array, not an .npz archive of buckets and "  # noqa: TRY004
                         "patterns (numpy.savez writes one).")
    return archive


def is_measurement_file(path):
    """True when ``path`` is a ``.npz`` archive holding ``buckets`` and ``patterns`` arrays.

    Only the archive's table of contents is read.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = {name.removesuffix(".npy") for name in archive.namelist()}
    except (OSError, zipfile.BadZipFile, ValueError):
        return False
    return all(key in names for key in _KEYS)


def load_measurement(path, *, normalize=True):
    """Read a measurement file written by :func:`save_measurement` or by any other tool.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npz`` archive with arrays ``buckets`` (``(..., M)``) and ``patterns``
        (``(M, h, w)``) and optionally ``metadata`` (a JSON object as a string). Object arrays
        are refused (the file is opened with ``allow_pickle=False``).
    normalize : bool, optional
        Integer or bool patterns with exactly two values ``{0, v}`` (binary masks kept as
        images: 0/255, 0/65535) are returned as 0/1 (default). ``False``: the values as stored.

    Returns
    -------
    Measurement
        ``buckets`` as float64, ``patterns`` as float32, ``metadata`` as a dict.

    Raises
    ------
    FileNotFoundError
        When there is no such file.
    ValueError
        For a file that is not an ``.npz`` archive, lacks ``buckets`` or ``patterns``, holds
        pickled objects, metadata that is not a JSON object, arrays that are not real numbers,
        or arrays whose shapes do not fit.
    """
    with _open_npz(path) as archive:
        missing = [key for key in _KEYS if key not in archive.files]
        if missing:
            raise ValueError(
                f"{path}: no {' or '.join(repr(k) for k in missing)} array in the file (it "
                f"holds {sorted(archive.files)}). A measurement needs 'buckets' (..., M) and "
                "'patterns' (M, h, w), e.g. numpy.savez(path, buckets=b, patterns=p).")
        try:
            arrays = {key: archive[key] for key in (*_KEYS, "metadata") if key in archive.files}
        except ValueError as error:  # object arrays need pickle
            raise ValueError(f"{path}: {error}; measurement files hold numeric arrays only."
                             ) from None
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise ValueError(f"{path}: the file is damaged ({error}).") from None
    p = _check_patterns(arrays["patterns"], where=f"{path}: 'patterns'", dtype_error=ValueError)
    b = _check_buckets(arrays["buckets"], p.shape[0], where=f"{path}: 'buckets'",
                       dtype_error=ValueError)
    metadata = {}
    if "metadata" in arrays:
        text = arrays["metadata"]
        if text.ndim != 0 or text.dtype.kind != "U":
            raise ValueError(f"{path}: 'metadata' must be a JSON string (a 0-d str array), got "
                             f"dtype {text.dtype} and shape {text.shape}.")
        try:
            metadata = json.loads(str(text))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: 'metadata' is not valid JSON ({error}).") from None
        if not isinstance(metadata, dict):
            raise ValueError(f"{path}: 'metadata' must be a JSON object, got "
                             f"{type(metadata).__name__}.")
    patterns = _normalized(p) if normalize else p.astype(np.float32)
    return Measurement(buckets=b.astype(np.float64), patterns=patterns, metadata=metadata)


# ------------------------------------------------------------------------ pattern stacks
def save_patterns(path, patterns, *, metadata=None):
    """Write a pattern stack as a multi-page TIFF, marked as a torchscope pattern stack.

    0/1 masks are stored as ``uint8`` 0/1, +1/-1 (differential) ones as ``int8``, anything
    else as ``float32``; pages are zlib-compressed.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write (``.tif``/``.tiff``).
    patterns : array_like, shape (M, h, w)
    metadata : dict, optional
        JSON-serialisable extras stored in the TIFF description (e.g. ``{"order": "zigzag"}``).

    Returns
    -------
    pathlib.Path
    """
    import tifffile

    p = _check_patterns(patterns)
    extra = json.loads(_metadata_json(metadata))
    reserved = {"shape", "torchscope", "version"} & set(extra)
    if reserved:
        raise ValueError(f"metadata keys {sorted(reserved)} are reserved by the file format.")
    values = np.unique(p)
    if np.isin(values, (0, 1)).all():
        data = p.astype(np.uint8)
    elif np.isin(values, (-1, 0, 1)).all():
        data = p.astype(np.int8)
    else:
        data = p.astype(np.float32)
    path = Path(os.fspath(path))
    tifffile.imwrite(path, data, compression="zlib", photometric="minisblack",
                     metadata={"torchscope": PATTERNS_FORMAT, "version": FORMAT_VERSION, **extra})
    return path


def _tiff_marker(tif):
    """The shaped-metadata dict of a TIFF written by :func:`save_patterns`, or None."""
    for meta in tif.shaped_metadata or ():
        if isinstance(meta, dict) and meta.get("torchscope") == PATTERNS_FORMAT:
            return meta
    return None


def _is_hadamard_stack(p):
    """True when every page is a two-level 2D Walsh-Hadamard pattern (any scale and order)."""
    from torchscope.ghost._patterns import sylvester

    m, h, w = p.shape
    if h != w or h < 4 or h & (h - 1) or m > 2 * h * h:  # 2 n^2: complementary pairs
        return False
    lo = p.min(axis=(1, 2), keepdims=True)
    hi = p.max(axis=(1, 2), keepdims=True)
    if np.count_nonzero(hi == lo) > min(2, m - 1):  # the open mask (and its complement) only,
        return False  # beside at least one pattern: a blank stack is no Hadamard set
    span = np.where(hi == lo, 1, hi - lo)
    s = np.where(hi == lo, 1.0, 2.0 * (p - lo) / span - 1.0)  # +-1 where two-level
    if not np.isin(s, (-1.0, 1.0)).all():
        return False
    rows = s[:, :, 0] * s[:, :1, 0]  # first column, sign of the corner removed
    cols = s[:, 0, :] * s[:, :1, 0]
    if not np.array_equal(s * s[:, :1, :1], rows[:, :, None] * cols[:, None, :]):
        return False
    known = {r.tobytes() for r in sylvester(h).astype(np.float64)}
    return all(r.tobytes() in known for r in np.concatenate([rows, cols]).astype(np.float64))


def is_pattern_stack(path):
    """True when ``path`` is a TIFF pattern stack: marked by :func:`save_patterns`, or a stack
    of two-level 2D Walsh-Hadamard patterns (binary or +1/-1, any order, square power of two).

    Unmarked TIFFs are only read when they are small 3D stacks (at most 64 MiB).
    """
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            if _tiff_marker(tif) is not None:
                return True
            series = tif.series[0]
            shape, dtype = series.shape, np.dtype(series.dtype)
            if len(shape) != 3 or dtype.kind not in "biuf" or series.size * dtype.itemsize > 2**26:
                return False
            data = series.asarray()
    except Exception:  # noqa: BLE001 - any unreadable file is simply not a pattern stack
        return False
    return _is_hadamard_stack(data.astype(np.float64))


def load_patterns(path, *, normalize=True):
    """Read a pattern stack from a TIFF file (written by :func:`save_patterns` or any tool).

    Parameters
    ----------
    path : str or os.PathLike
        A TIFF of ``M`` grayscale pages of ``h x w`` masks (one page reads as ``M = 1``).
    normalize : bool, optional
        Integer or bool stacks with exactly two values ``{0, v}`` (binary masks kept as images:
        0/255, 0/65535) are returned as 0/1 (default); ``False`` returns the stored values.

    Returns
    -------
    numpy.ndarray of float32, shape (M, h, w)

    Raises
    ------
    ValueError
        For a file that is not a readable TIFF, or whose pages are not grayscale 2D masks.
    """
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            data = tif.series[0].asarray()
            saved = _tiff_marker(tif)
    except FileNotFoundError:
        raise
    except Exception as error:  # noqa: BLE001 - tifffile raises many kinds for a bad file
        raise ValueError(f"{path}: not a readable TIFF pattern stack ({error}).") from None
    if saved is not None and "shape" in saved and data.size != np.prod(saved["shape"]):
        raise ValueError(f"{path}: the file was written with shape {tuple(saved['shape'])} but "
                         f"holds {data.shape}: it is truncated or damaged.")
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise ValueError(f"{path}: the TIFF holds an array of shape {data.shape}; a pattern stack "
                         "is M grayscale pages (M, h, w) (RGB or multi-channel pages are not "
                         "masks).")
    p = _check_patterns(data, where=f"{path}: patterns", dtype_error=ValueError)
    return _normalized(p) if normalize else p.astype(np.float32)


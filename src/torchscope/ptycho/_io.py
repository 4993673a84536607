"""Reading and writing ptychography files: CXI (NXcxi_ptycho) and PtyLab HDF5.

:func:`load` reads measured data (a :class:`PtychoData`) from a CXI file or a PtyLab HDF5 file,
and reconstructions (a :class:`Result`) from the CXI files that :func:`save` writes. The format
is recognised from the content, not from the file name.

Conventions
-----------
Patterns
    Diffraction patterns are kept as a detector records them, with the direct beam (zero
    spatial frequency) in the middle, at index ``(ny // 2, nx // 2)``; this is how CXI and
    PtyLab files store them. A CXI data set whose ``is_fft_shifted`` attribute is true (zero
    frequency at ``[0, 0]``) is centred with ``numpy.fft.fftshift``. A PtyLab ``orientation``
    (the ptypy codes 0 to 7: flips and transposition of the frames) is applied as PtyLab applies
    it. Intensities are returned as float32.
Positions
    :class:`PtychoData` holds the probe positions on the object, (y, x) in sample-plane pixels
    from the object centre. Files hold translations in metres, and writers disagree on their
    sign and column order:

    - CXI (``/entry_1/sample_1/geometry_1/translation``): one row (x, y, z) per pattern, the
      translation of the *sample*; moving the sample by +t moves the beam by -t over it, so the
      default ``position_sign`` is -1 and ``position_order`` is ``"xy"``. Some writers store the
      probe position instead (``position_sign=1``); arrays written as (3, P) are transposed.
    - PtyLab (``encoder``): one row (y, x) per pattern, the probe position on the object
      (PtyLab puts the probe's upper-left corner at ``round(encoder / dxo) + No // 2 - Np // 2``),
      so the defaults are ``position_sign=1`` and ``position_order="yx"``.

    Metres become pixels through :attr:`Geometry.sample_pixel_yx_m` (lambda z / (N delta_D)).
    Scans recorded in stage coordinates are far from zero, so by default (``origin="auto"``)
    the positions are measured from the centre of the scan's bounding box; files written by
    :func:`save` record that their zero is the object centre and keep it.
Masks
    CXI masks mark invalid pixels with non-zero values (CXI_PIXEL_IS_INVALID and the other
    flags); :attr:`PtychoData.mask` is True where pixels are valid. A mask per frame is reduced
    to one mask: a pixel is valid when it is valid in every frame.
Units
    CXI stores SI units: energy in joules, lengths in metres. A ``units`` attribute of eV/keV
    or mm/µm/nm is honoured.

Layout written by :func:`save`
------------------------------
Data::

    /cxi_version                                   160
    /entry_1/instrument_1/source_1/energy          photon energy (J)
    /entry_1/instrument_1/detector_1/data          patterns (P, ny, nx) float32, centred
    /entry_1/instrument_1/detector_1/distance      (m)
    /entry_1/instrument_1/detector_1/x_pixel_size  (m), and y_pixel_size
    /entry_1/instrument_1/detector_1/mask          uint32, 1 = invalid (only with a mask)
    /entry_1/sample_1/geometry_1/translation       (P, 3) x, y, z sample translation (m), = -probe position
    /entry_1/data_1/data, /entry_1/data_1/translation   links to the above

Result (a reconstruction, :class:`Result` or :class:`Snapshot`), with the geometry above when
it is known (``geometry=``), and the refined positions as translations::

    /entry_1/image_1/data           object, complex64 (Oy, Ox); title "object"
    /entry_1/image_2/data           probe modes, complex64 (modes, ny, nx); title "probe"
    /entry_1/image_2/occupancies    power fraction of each mode
    /entry_1/process_1/results/positions_px   (P, 2) y, x pixels from the object centre
    /entry_1/process_1/results/errors         error after each iteration
    /entry_1/process_1/results/iteration, error
    /entry_1/process_1/configuration/options  the reconstruction options, as JSON

Arrays are stored row-major with row 0 at the top, as they are displayed.
"""

import json
import math
import os
from pathlib import Path

import numpy as np

from torchscope.ptycho._data import Geometry, PtychoData, Result, Snapshot

#: Joules per electronvolt (exact, SI 2019).
EV_J = 1.602176634e-19
CXI_VERSION = 160

_ENTRY = "/entry_1"
_DATA_PATHS = ("/entry_1/data_1/data", "/entry_1/instrument_1/detector_1/data")
_TRANSLATION_PATHS = (
    "/entry_1/sample_1/geometry_1/translation",
    "/entry_1/data_1/translation",
    "/entry_1/instrument_1/detector_1/translation",
)
_ENERGY_PATHS = (
    "/entry_1/instrument_1/source_1/energy",
    "/entry_1/instrument_1/beam_1/incident_energy",
)
_WAVELENGTH_PATHS = (
    "/entry_1/instrument_1/source_1/wavelength",
    "/entry_1/instrument_1/beam_1/incident_wavelength",
)
_DETECTOR = "/entry_1/instrument_1/detector_1"
_RESULTS = "/entry_1/process_1/results"
_OPTIONS = "/entry_1/process_1/configuration/options"
#: Attribute on the translation data set: its zero is the object centre (files written here).
_ORIGIN_ATTR = "torchscope_origin"
_METADATA_ATTR = "torchscope_metadata"

_PTYLAB_REQUIRED = ("ptychogram", "encoder", "wavelength", "dxd", "zo")

_LENGTH_UNITS = {"m": 1.0, "mm": 1e-3, "um": 1e-6, "µm": 1e-6, "micron": 1e-6, "nm": 1e-9}
_ENERGY_UNITS = {"j": 1.0, "ev": EV_J, "kev": 1e3 * EV_J}

_KINDS = ("auto", "data", "result")
_ORIGINS = ("auto", "scan", "file")


# --------------------------------------------------------------------------- public
def load(path, *, kind="auto", position_sign=None, position_order=None, origin="auto"):
    """Read ptychography data or a reconstruction from a CXI or PtyLab HDF5 file.

    Parameters
    ----------
    path : str or path-like
        A CXI file (``/entry_1/...``) or a PtyLab HDF5 file (``ptychogram``, ``encoder``,
        ``wavelength``, ``dxd``, ``zo`` at the root). The format is recognised from the content.
    kind : {"auto", "data", "result"}
        What to read. ``"auto"`` gives the reconstruction when the file holds one (a file
        written by :func:`save` from a :class:`Result`) and the measured data otherwise.
    position_sign : {-1, 1} or (int, int), optional
        Probe position = ``position_sign`` x translation, per axis (y, x) when a pair is given.
        Default: -1 for CXI (sample translations), 1 for PtyLab (probe positions).
    position_order : {"xy", "yx"}, optional
        The order of the first two columns of the translations. Default: ``"xy"`` for CXI,
        ``"yx"`` for PtyLab.
    origin : {"auto", "scan", "file"}
        Where positions are measured from: ``"scan"``, the centre of the scan's bounding box;
        ``"file"``, the file's zero; ``"auto"``, the file's zero for files written by
        :func:`save` (their zero is the object centre), the scan centre otherwise.

        The three position options apply to measured data; a reconstruction's positions are
        read as :func:`save` wrote them (pixels from the object centre).

    Returns
    -------
    PtychoData or Result
        ``metadata["source"]`` of the data is the file path, ``metadata["format"]`` is
        ``"cxi"`` or ``"ptylab"``.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When the file is not HDF5, is corrupt, or lacks a data set it needs (the message names
        it), or when an option is not one of those accepted.
    """
    import h5py

    if kind not in _KINDS:
        raise ValueError(f"load: kind must be one of {_KINDS}, got {kind!r}")
    if origin not in _ORIGINS:
        raise ValueError(f"load: origin must be one of {_ORIGINS}, got {origin!r}")
    sign = _check_sign(position_sign)
    if position_order is not None and position_order not in ("xy", "yx"):
        raise ValueError(f"load: position_order must be 'xy' or 'yx', got {position_order!r}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"load: no such file: {path}")
    try:
        file = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"load: {path} is not a readable HDF5 file ({error})") from error
    try:
        with file:
            reader = _Reader(file, path)
            if any(key in file for key in _PTYLAB_REQUIRED):
                if kind == "result":
                    raise ValueError(
                        f"load: {path} is a PtyLab data file; it holds no reconstruction"
                    )
                return reader.ptylab(1.0 if sign is None else sign, position_order or "yx", origin)
            if _ENTRY not in file:
                raise ValueError(
                    f"load: {path} is neither a CXI file (no /entry_1 group) nor a PtyLab file "
                    f"(no /ptychogram); its top level holds {sorted(file.keys())}"
                )
            has_result = reader.find_image("object") is not None
            if kind == "result" or (kind == "auto" and has_result):
                return reader.cxi_result()
            return reader.cxi_data(-1.0 if sign is None else sign, position_order or "xy", origin)
    except OSError as error:  # a data set that cannot be read: a truncated or damaged file
        raise ValueError(
            f"load: {path} could not be read, the file may be damaged ({error})"
        ) from error
    except (TypeError, IndexError) as error:
        # Last resort: the readers check what they read and name it; an array of a dtype or
        # shape they do not foresee still gives a ValueError naming the file. (KeyError and
        # AttributeError are left alone: from here they would be bugs of this module.)
        raise ValueError(
            f"load: {path}: unexpected content, the file is malformed "
            f"({type(error).__name__}: {error})"
        ) from error


def save(path, data_or_result, *, geometry=None):
    """Write ptychography data or a reconstruction to a CXI file.

    The layout is described in the module documentation (``torchscope.ptycho._io``); the file
    is written next to ``path`` first and moved into place, so a failed write leaves no
    half-written file.

    Parameters
    ----------
    path : str or path-like
        Destination, conventionally ending in ``.cxi``. An existing file is replaced.
    data_or_result : PtychoData, Result or Snapshot
        Measured data, or a reconstruction (a :class:`Snapshot` is written as a result with
        no error history).
    geometry : Geometry, optional
        For a reconstruction: the experiment's geometry, written as in a data file so that the
        positions are also stored as translations in metres. Ignored for :class:`PtychoData`,
        which carries its own.

    Returns
    -------
    str
        The path written.
    """
    import h5py

    if not isinstance(data_or_result, (PtychoData, Snapshot)):
        raise TypeError(
            "save: data_or_result must be a PtychoData, Result or Snapshot, got "
            f"{type(data_or_result).__name__}"
        )
    if geometry is not None and not isinstance(geometry, Geometry):
        raise TypeError(f"save: geometry must be a Geometry or None, got {type(geometry).__name__}")
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    try:
        with h5py.File(tmp, "w") as file:
            file.create_dataset("cxi_version", data=CXI_VERSION)
            entry = file.create_group(_ENTRY)
            entry.attrs["NX_class"] = "NXentry"
            from torchscope import __version__

            entry.create_dataset("program_name", data=f"torchscope {__version__}")
            if isinstance(data_or_result, PtychoData):
                _write_data(file, data_or_result)
            else:
                _write_result(file, data_or_result, geometry)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return str(path)


def file_kind(path):
    """What :func:`load` would read from ``path``: ``"data"``, ``"result"`` or None.

    None for anything that is not a ptychography file (another HDF5 file, not HDF5, missing),
    without raising: for file readers that must not claim other ``.h5`` files. Only the file's
    structure is looked at, not its arrays.
    """
    import h5py

    try:
        with h5py.File(path, "r") as file:
            if all(key in file for key in _PTYLAB_REQUIRED):
                return "data"
            if _ENTRY not in file:
                return None
            reader = _Reader(file, path)
            if reader.find_image("object") is not None and reader.find_image("probe") is not None:
                return "result"
            if reader.get(*_DATA_PATHS) is not None and reader.get(*_TRANSLATION_PATHS) is not None:
                return "data"
    except Exception:  # noqa: BLE001 - anything unreadable is simply not ours
        return None
    return None


def read_geometry(path, detector_shape):
    """The geometry a CXI file records (energy, distance, pixel size), or None without one.

    For reconstructions, which :func:`load` returns without their geometry (a
    :class:`Result` has no place for it); ``detector_shape`` is the probe's shape.
    """
    import h5py

    try:
        with h5py.File(path, "r") as file:
            return _Reader(file, path).cxi_geometry(tuple(detector_shape))
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- reading
class _Reader:
    """Reads one open HDF5 file; every error names the file and the missing data set."""

    def __init__(self, file, path):
        self.file = file
        self.path = path

    def fail(self, message):
        return ValueError(f"load: {self.path}: {message}")

    def node(self, name):
        """The node at ``name`` (data set, group, ...), or None when absent or a dangling link."""
        try:
            return self.file.get(name)
        except (KeyError, OSError):
            return None

    def get(self, *paths):
        """The first of ``paths`` that is a data set, or None."""
        import h5py

        for name in paths:
            node = self.node(name)
            if isinstance(node, h5py.Dataset):
                return node
        return None

    def require(self, *paths, what):
        node = self.get(*paths)
        if node is None:
            wrong = [
                f"{name} is {_kind_of(node)}"
                for name in paths
                if (node := self.node(name)) is not None
            ]
            raise self.fail(
                f"no {what}: expected a data set at {' or '.join(paths)}"
                + (f" ({', '.join(wrong)})" if wrong else "")
            )
        return node

    def optional(self, name, what):
        """The data set at ``name``, None when there is nothing there; anything else is refused."""
        import h5py

        node = self.node(name)
        if node is None or isinstance(node, h5py.Dataset):
            return node
        raise self.fail(f"{what} at {name} must be a data set, got {_kind_of(node)}")

    def numbers(self, node, what, *, dtype=np.float64, complex_ok=False, bool_ok=False):
        """The array at ``node`` as ``dtype``, refusing text, compound and (unless allowed)
        complex or boolean data."""
        if not _is_real(node.dtype, complex_ok=complex_ok, bool_ok=bool_ok):
            expected = "complex numbers" if complex_ok else "real numbers"
            raise self.fail(
                f"{what} at {node.name} must be {expected}, got {_dtype_text(node.dtype)}"
            )
        return np.asarray(node[()], dtype=dtype)

    def number(self, node, what, *, expected="one real number"):
        """The one real number at ``node`` (an array of one element is accepted)."""
        value = np.asarray(node[()])
        if value.size != 1 or not _is_real(value.dtype):
            raise self.fail(
                f"{what} at {node.name} must be {expected}, got {_dtype_text(value.dtype)} "
                f"of shape {value.shape}"
            )
        return float(value.reshape(()))

    def whole_number(self, node, what):
        value = self.number(node, what, expected="one whole number")
        if not value.is_integer():
            raise self.fail(f"{what} at {node.name} must be a whole number, got {value!r}")
        return int(value)

    def text(self, node, what):
        """The text at ``node`` (a string, or an array of one string)."""
        value = np.asarray(node[()])
        if value.size != 1 or value.dtype.kind not in "SUO":
            raise self.fail(
                f"{what} at {node.name} must be text, got {_dtype_text(value.dtype)} "
                f"of shape {value.shape}"
            )
        value = value.reshape(()).item()
        if isinstance(value, bytes):
            try:
                return value.decode()
            except UnicodeDecodeError as error:
                raise self.fail(f"{what} at {node.name} is not UTF-8 text ({error})") from error
        if not isinstance(value, str):
            raise self.fail(f"{what} at {node.name} must be text, got {type(value).__name__}")
        return value

    def flag(self, node, name):
        """The boolean attribute ``name`` of ``node`` (False when absent): a boolean, 0 or 1, or
        the text true/false/1/0 in any case."""
        value = node.attrs.get(name, False)
        array = np.asarray(value)
        if array.size == 1:
            item = array.reshape(()).item()
            if isinstance(item, bytes):
                item = item.decode(errors="replace")
            if isinstance(item, str):
                item = {"true": True, "1": True, "false": False, "0": False}.get(
                    item.strip().lower(), item
                )
            if isinstance(item, (bool, int, float)) and item in (0, 1):
                return bool(item)
        raise self.fail(
            f"the attribute {name} of {node.name} must be true or false (a boolean, 0 or 1, or "
            f"the text 'true' or 'false'), got {value!r}"
        )

    def scalar(self, node, what):
        value = self.number(node, what)
        if not (math.isfinite(value) and value > 0):
            raise self.fail(f"{what} at {node.name} must be a positive number, got {value!r}")
        return value

    def length(self, node, what):
        value = self.scalar(node, what)
        unit = _unit(node)
        if unit is None:
            return value
        if unit.lower() not in _LENGTH_UNITS:
            raise self.fail(
                f"{what} at {node.name} has units {unit!r}; expected one of {sorted(_LENGTH_UNITS)}"
            )
        return value * _LENGTH_UNITS[unit.lower()]

    # ----------------------------------------------------------------------- CXI
    def cxi_geometry(self, shape):
        energy = self.get(*_ENERGY_PATHS)
        if energy is not None:
            energy_j = self.scalar(energy, "photon energy")
            unit = _unit(energy)
            if unit is not None:
                if unit.lower() not in _ENERGY_UNITS:
                    raise self.fail(
                        f"photon energy at {energy.name} has units {unit!r}; expected J, eV or keV"
                    )
                energy_j *= _ENERGY_UNITS[unit.lower()]
            elif energy_j > 1e-12:  # above 6 MeV: not joules
                raise self.fail(
                    f"photon energy at {energy.name} is {energy_j:g}, which is not in joules as CXI "
                    "requires (1 keV = 1.602e-16 J); add a 'units' attribute (eV, keV) or fix the file"
                )
            energy_ev, wavelength_m = energy_j / EV_J, None
        else:
            wavelength = self.get(*_WAVELENGTH_PATHS)
            if wavelength is None:
                raise self.fail(
                    "no photon energy: expected a data set at "
                    f"{' or '.join(_ENERGY_PATHS + _WAVELENGTH_PATHS)}"
                )
            energy_ev, wavelength_m = None, self.length(wavelength, "wavelength")
        distance = self.length(
            self.require(f"{_DETECTOR}/distance", what="detector distance"), "detector distance"
        )
        pixels = [
            self.length(node, name)
            for name in ("x_pixel_size", "y_pixel_size")
            if (node := self.get(f"{_DETECTOR}/{name}")) is not None
        ]
        if not pixels:
            raise self.fail(
                f"no detector pixel size: expected a data set at {_DETECTOR}/x_pixel_size "
                f"or {_DETECTOR}/y_pixel_size"
            )
        if not math.isclose(min(pixels), max(pixels), rel_tol=1e-6):
            raise self.fail(
                f"the detector pixels are not square (x {pixels[0]:g} m, y {pixels[1]:g} m); "
                "only square pixels are supported"
            )
        return Geometry(
            energy_ev=energy_ev,
            wavelength_m=wavelength_m,
            detector_distance_m=distance,
            detector_pixel_m=pixels[0],
            detector_shape=shape,
        )

    def cxi_translations(self, n, sign, order, origin, geometry):
        node = self.require(*_TRANSLATION_PATHS, what="scan positions (translations)")
        positions = self.positions_from_metres(node, n, sign, order, geometry)
        keep = origin == "file" or (origin == "auto" and _ORIGIN_ATTR in node.attrs)
        return positions if keep else _centre_scan(positions), node.name

    def positions_from_metres(self, node, n, sign, order, geometry):
        t = self.numbers(node, "positions")
        if t.ndim > 2:  # a raster (npts_y, npts_x, 3)
            t = t.reshape(-1, t.shape[-1])
        if t.ndim == 2 and t.shape[0] != n and t.shape[1] == n and t.shape[0] in (2, 3):
            t = t.T  # written as (3, P)
        if t.ndim != 2 or t.shape[0] != n or t.shape[1] not in (2, 3):
            raise self.fail(
                f"positions at {node.name} have shape {t.shape}; expected ({n}, 3) or ({n}, 2) "
                f"for {n} patterns"
            )
        if not np.isfinite(t).all():
            raise self.fail(f"positions at {node.name} contain non-finite values")
        scale = _LENGTH_UNITS.get((_unit(node) or "m").lower())
        if scale is None:
            raise self.fail(f"positions at {node.name} have units {_unit(node)!r}; expected metres")
        yx = t[:, :2] if order == "yx" else t[:, 1::-1]
        return (
            yx * scale * np.asarray(sign, dtype=np.float64) / np.asarray(geometry.sample_pixel_yx_m)
        )

    def cxi_patterns(self):
        node = self.require(*_DATA_PATHS, what="diffraction data")
        if not np.issubdtype(node.dtype, np.integer) and not np.issubdtype(node.dtype, np.floating):
            raise self.fail(
                f"the data at {node.name} are {node.dtype}, not intensities (a reconstruction "
                "written by another program?)"
            )
        patterns = np.asarray(node[()], dtype=np.float32)
        if patterns.ndim == 4:  # a raster (npts_y, npts_x, ny, nx)
            patterns = patterns.reshape(-1, *patterns.shape[2:])
        if patterns.ndim != 3 or patterns.shape[0] < 1:
            raise self.fail(
                f"diffraction data at {node.name} have shape {patterns.shape}; expected (P, ny, nx)"
            )
        if self.flag(node, "is_fft_shifted"):
            patterns = np.fft.fftshift(patterns, axes=(-2, -1))
        return patterns, node.name

    def cxi_mask(self, shape):
        node = self.get(f"{_DETECTOR}/mask", "/entry_1/data_1/mask")
        if node is None:
            return None
        invalid = self.numbers(node, "the mask", dtype=None, bool_ok=True) != 0
        if invalid.ndim == 3:
            invalid = invalid.any(axis=0)
        if invalid.shape != shape:
            raise self.fail(
                f"the mask at {node.name} has shape {invalid.shape}; the frames are {shape}"
            )
        return ~invalid

    def metadata(self, fmt, **extra):
        entry = self.file.get(_ENTRY)
        metadata = {}
        if entry is not None and _METADATA_ATTR in entry.attrs:
            text = np.asarray(entry.attrs[_METADATA_ATTR])
            text = text.reshape(()).item() if text.size == 1 else text
            try:
                metadata = json.loads(text)
            except (TypeError, ValueError) as error:
                raise self.fail(
                    f"the attribute {_METADATA_ATTR} of {_ENTRY} must be a JSON object, "
                    f"got {_short(text)} ({error})"
                ) from error
            if not isinstance(metadata, dict):
                raise self.fail(
                    f"the attribute {_METADATA_ATTR} of {_ENTRY} must be a JSON object, "
                    f"got a JSON {type(metadata).__name__}: {_short(text)}"
                )
        metadata.update(source=str(self.path), format=fmt, **extra)
        return metadata

    def cxi_data(self, sign, order, origin):
        patterns, data_path = self.cxi_patterns()
        geometry = self.cxi_geometry(patterns.shape[1:])
        positions, translation_path = self.cxi_translations(
            len(patterns), sign, order, origin, geometry
        )
        return PtychoData(
            patterns,
            positions,
            geometry,
            mask=self.cxi_mask(patterns.shape[1:]),
            metadata=self.metadata("cxi", data_path=data_path, translation_path=translation_path),
        )

    def find_image(self, title):
        """The ``/entry_1/image_N`` group whose ``title`` is ``title``, or None."""
        import h5py

        entry = self.file.get(_ENTRY)
        if not isinstance(entry, h5py.Group):
            return None
        for name in sorted(entry):
            if not name.startswith("image_"):
                continue
            group = entry.get(name)
            if not isinstance(group, h5py.Group) or "title" not in group:
                continue
            node = self.optional(f"{group.name}/title", "the image title")
            if node is not None and self.text(node, "the image title").strip().lower() == title:
                return group
        return None

    def cxi_result(self):
        obj_group, probe_group = self.find_image("object"), self.find_image("probe")
        if obj_group is None or probe_group is None:
            missing = " and ".join(
                t for t, g in (("object", obj_group), ("probe", probe_group)) if g is None
            )
            raise self.fail(
                f"no reconstruction: no /entry_1/image_N group titled {missing} "
                "(files written by torchscope.ptycho.save from a Result have them)"
            )
        obj, probe = (
            self.numbers(
                self.require(f"{group.name}/data", what=f"{title} data"),
                f"the {title}",
                dtype=None,
                complex_ok=True,
            )
            for title, group in (("object", obj_group), ("probe", probe_group))
        )
        if obj.ndim == 3 and obj.shape[0] == 1:
            obj = obj[0]
        if probe.ndim == 2:
            probe = probe[None]
        if obj.ndim != 2 or probe.ndim != 3:
            raise self.fail(
                f"the object must be 2D and the probe (modes, ny, nx), got {obj.shape} and {probe.shape}"
            )
        obj, probe = obj.astype(np.complex64), probe.astype(np.complex64)
        occupancies = self.optional(f"{probe_group.name}/occupancies", "the mode occupancies")
        if occupancies is not None:
            occupancies = self.numbers(occupancies, "the mode occupancies").ravel()

        node = self.require(f"{_RESULTS}/positions_px", what="positions")
        positions = self.numbers(node, "the positions")
        if positions.ndim != 2 or positions.shape[1] != 2:
            raise self.fail(
                f"the positions at {node.name} must be (P, 2), got shape {positions.shape}"
            )
        errors = self.optional(f"{_RESULTS}/errors", "the errors")
        errors = np.zeros(0) if errors is None else self.numbers(errors, "the errors").ravel()

        node = self.optional(f"{_RESULTS}/iteration", "the iteration")
        iteration = len(errors) if node is None else self.whole_number(node, "the iteration")
        if iteration < 0:
            raise self.fail(f"the iteration at {node.name} must be >= 0, got {iteration}")
        node = self.optional(f"{_RESULTS}/error", "the error")
        if node is not None:
            error = self.number(node, "the error")
        else:
            error = float(errors[-1]) if len(errors) else float("nan")
        options_node = self.optional(_OPTIONS, "the options")
        options = {}
        if options_node is not None:
            text = self.text(options_node, "the options")
            try:
                options = json.loads(text)
            except ValueError as error:
                raise self.fail(
                    f"the options at {_OPTIONS} are not valid JSON ({error})"
                ) from error
            if not isinstance(options, dict):
                raise self.fail(
                    f"the options at {_OPTIONS} must be a JSON object, "
                    f"got a JSON {type(options).__name__}"
                )
        return Result(
            iteration=iteration,
            obj=obj,
            probe_modes=probe,
            positions_px=positions,
            error=error,
            occupancies=occupancies,
            errors=errors,
            options=options,
        )

    # ----------------------------------------------------------------------- PtyLab
    def ptylab(self, sign, order, origin):
        missing = [key for key in _PTYLAB_REQUIRED if self.get(key) is None]
        if missing:
            raise self.fail(
                f"a PtyLab file needs the data sets {', '.join(_PTYLAB_REQUIRED)}; "
                f"missing: {', '.join(missing)}"
            )
        patterns = self.numbers(self.file["ptychogram"], "ptychogram", dtype=np.float32)
        if patterns.ndim == 2:
            patterns = patterns[None]
        if patterns.ndim != 3:
            raise self.fail(f"ptychogram has shape {patterns.shape}; expected (P, Nd, Nd)")
        orientation = self.optional("/orientation", "orientation")
        if orientation is not None:
            code = self.whole_number(orientation, "orientation (a ptypy code 0 to 7)")
            patterns = _orient(patterns, code, self)
        geometry = Geometry(
            wavelength_m=self.scalar(self.file["wavelength"], "wavelength"),
            detector_distance_m=self.scalar(self.file["zo"], "zo (sample-detector distance)"),
            detector_pixel_m=self.scalar(self.file["dxd"], "dxd (detector pixel size)"),
            detector_shape=patterns.shape[1:],
        )
        positions = self.positions_from_metres(
            self.file["encoder"], len(patterns), sign, order, geometry
        )
        if origin != "file":
            positions = _centre_scan(positions)
        extra = {}
        pupil = self.optional("/entrancePupilDiameter", "entrancePupilDiameter")
        if pupil is not None:
            extra["entrance_pupil_diameter_m"] = self.number(pupil, "entrancePupilDiameter")
        return PtychoData(
            patterns,
            positions,
            geometry,
            metadata=self.metadata(
                "ptylab", data_path="/ptychogram", translation_path="/encoder", **extra
            ),
        )


def _orient(patterns, code, reader):
    """PtyLab's (ptypy's) orientation codes: 4 transposes, then 1 flips columns, 2 flips rows."""
    if not 0 <= code <= 7:
        raise reader.fail(f"orientation must be 0 to 7 (the ptypy codes), got {code}")
    if code & 4:
        patterns = patterns.transpose(0, 2, 1)
    if code & 1:
        patterns = patterns[:, :, ::-1]
    if code & 2:
        patterns = patterns[:, ::-1, :]
    return np.ascontiguousarray(patterns)


def _centre_scan(positions):
    """Positions measured from the centre of their bounding box."""
    return positions - (positions.min(axis=0) + positions.max(axis=0)) / 2


def _is_real(dtype, *, complex_ok=False, bool_ok=False):
    """Whether ``dtype`` holds plain numbers: integers or floats (or complex, or booleans)."""
    return (
        np.issubdtype(dtype, np.integer)
        or np.issubdtype(dtype, np.floating)
        or (complex_ok and np.issubdtype(dtype, np.complexfloating))
        or (bool_ok and np.issubdtype(dtype, np.bool_))
    )


def _dtype_text(dtype):
    """A data type in words, for error messages."""
    if dtype.names:
        return f"compound data (fields {', '.join(dtype.names)})"
    if dtype.kind in "SUO":
        return "text" if dtype.kind in "SU" else "objects or variable-length text"
    return str(dtype)


def _kind_of(node):
    """What an HDF5 node is, in words: "a group", "a data set", ..."""
    import h5py

    if isinstance(node, h5py.Group):
        return "a group"
    if isinstance(node, h5py.Dataset):
        return "a data set"
    return f"a {type(node).__name__}"


def _short(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unit(node):
    unit = node.attrs.get("units")
    if unit is None:
        return None
    unit = unit.decode() if isinstance(unit, bytes) else str(unit)
    return unit.strip() or None


def _check_sign(sign):
    if sign is None:
        return None
    values = np.atleast_1d(np.asarray(sign))
    if values.shape not in ((1,), (2,)) or not np.isin(values, (-1, 1)).all():
        raise ValueError(
            f"load: position_sign must be -1, 1 or a (y, x) pair of them, got {sign!r}"
        )
    return values.astype(np.float64)


# --------------------------------------------------------------------------- writing
def _set(group, name, value, units=None, **attrs):
    node = group.create_dataset(name, data=value)
    if units:
        node.attrs["units"] = units
    for key, val in attrs.items():
        node.attrs[key] = val
    return node


def _write_geometry(file, geometry):
    source = file.require_group("/entry_1/instrument_1/source_1")
    _set(source, "energy", geometry.energy_ev * EV_J, "J")
    _set(source, "wavelength", geometry.wavelength_m, "m")
    detector = file.require_group(_DETECTOR)
    _set(detector, "distance", geometry.detector_distance_m, "m")
    _set(detector, "x_pixel_size", geometry.detector_pixel_m, "m")
    _set(detector, "y_pixel_size", geometry.detector_pixel_m, "m")


def _write_translations(file, positions_px, geometry):
    """Probe positions (y, x) in pixels -> CXI sample translations (x, y, z) in metres."""
    yx_m = np.asarray(positions_px, dtype=np.float64) * np.asarray(geometry.sample_pixel_yx_m)
    xyz = np.zeros((len(yx_m), 3))
    xyz[:, 0], xyz[:, 1] = -yx_m[:, 1], -yx_m[:, 0]
    geometry_1 = file.require_group("/entry_1/sample_1/geometry_1")
    node = _set(geometry_1, "translation", xyz, "m")
    node.attrs[_ORIGIN_ATTR] = "object centre"
    node.attrs["note"] = "sample translation (x, y, z); the probe position is its negative"
    return node


def _json(value):
    def plain(v):  # numpy arrays and scalars as their Python values; anything else as text
        return v.tolist() if isinstance(v, (np.ndarray, np.generic)) else repr(v)

    return json.dumps(value, default=plain)


def _write_data(file, data):
    import h5py

    _write_geometry(file, data.geometry)
    detector = file[_DETECTOR]
    patterns = np.asarray(data.patterns, dtype=np.float32)
    node = detector.create_dataset(
        "data", data=patterns, chunks=(1, *patterns.shape[1:]), compression="gzip", shuffle=True
    )
    node.attrs["is_fft_shifted"] = False
    node.attrs["note"] = "diffraction intensities, zero frequency at (ny // 2, nx // 2)"
    if data.mask is not None:
        _set(
            detector, "mask", np.where(data.mask, 0, 1).astype(np.uint32), note="non-zero: invalid"
        )
    _write_translations(file, data.positions_px, data.geometry)
    detector["translation"] = h5py.SoftLink("/entry_1/sample_1/geometry_1/translation")
    data_1 = file.create_group("/entry_1/data_1")
    data_1["data"] = h5py.SoftLink(f"{_DETECTOR}/data")
    data_1["translation"] = h5py.SoftLink("/entry_1/sample_1/geometry_1/translation")
    if data.metadata:
        file[_ENTRY].attrs[_METADATA_ATTR] = _json(data.metadata)


def _write_result(file, result, geometry):
    obj = np.asarray(result.obj, dtype=np.complex64)
    probe = np.asarray(result.probe_modes, dtype=np.complex64)
    if probe.ndim == 2:
        probe = probe[None]
    if obj.ndim != 2 or probe.ndim != 3:
        raise ValueError(
            f"save: the object must be 2D and the probe modes (modes, ny, nx), got {obj.shape} and {probe.shape}"
        )
    positions = np.asarray(result.positions_px, dtype=np.float64)
    for index, (title, array) in enumerate((("object", obj), ("probe", probe)), start=1):
        image = file.create_group(f"/entry_1/image_{index}")
        image.attrs["NX_class"] = "NXdata"
        image.create_dataset("title", data=title)
        node = image.create_dataset("data", data=array)
        node.attrs["axes"] = "y:x" if array.ndim == 2 else "mode:y:x"
        image.create_dataset("data_space", data="real")
        image.create_dataset(
            "data_type", data="complex transmission" if title == "object" else "complex amplitude"
        )
        if geometry is not None:
            py, px = geometry.sample_pixel_yx_m
            _set(image, "x_pixel_size", px, "m")
            _set(image, "y_pixel_size", py, "m")
            _set(image, "image_size", [px * array.shape[-1], py * array.shape[-2]], "m")
    if result.occupancies is not None:
        file["/entry_1/image_2"].create_dataset(
            "occupancies", data=np.asarray(result.occupancies, dtype=np.float64)
        )
    if geometry is not None:
        _write_geometry(file, geometry)
        _write_translations(file, positions, geometry)
    results = file.require_group(_RESULTS)
    file["/entry_1/process_1"].create_dataset("program", data="torchscope.ptycho")
    _set(
        results,
        "positions_px",
        positions,
        note="probe positions (y, x), pixels from the object centre",
    )
    errors = np.asarray(getattr(result, "errors", np.zeros(0)), dtype=np.float64)
    _set(results, "errors", errors, note="error after each iteration")
    results.create_dataset("iteration", data=int(result.iteration))
    results.create_dataset("error", data=float(result.error))
    configuration = file.require_group("/entry_1/process_1/configuration")
    configuration.create_dataset("options", data=_json(getattr(result, "options", {}) or {}))

"""napari reader contributions: measured data files opened as layers.

One section per science module. Each reader is ``get_reader(path) -> callable | None`` as npe2
expects: it returns ``None`` for paths it cannot read (so napari tries other readers), and the
returned function gives a list of layer data tuples. Heavy imports happen inside the functions.
"""


# --------------------------------------------------------------------------- alzheimer (issue 6)
# MRI volumes: NIfTI files and Analyze 7.5 pairs (the format of OASIS-1), read by
# torchscope.alzheimer.load_volume with the voxel size (mm) from the header as the layer's scale.
MRI_SUFFIXES = (".nii", ".nii.gz", ".hdr", ".img")


def _mri_path(path):
    """``path`` as a Path when the MRI reader takes it, else None.

    ``.hdr`` and ``.img`` are also the suffixes of other formats (Radiance HDR images, raw disk
    images), so either half of an Analyze pair is taken only when the other half is beside it.
    """
    from pathlib import Path

    if not isinstance(path, (str, Path)):
        return None
    p = Path(path)
    name = p.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return p
    if name.endswith((".hdr", ".img")):
        partner = ".img" if name.endswith(".hdr") else ".hdr"
        if any(p.with_name(p.name[:-4] + s).is_file() for s in (partner, partner.upper())):
            return p
    return None


def _analyze_pair_key(p):
    """One key for both halves of an Analyze pair (so dropping both opens one layer)."""
    name = p.name.lower()
    return str(p)[:-4].lower() if name.endswith((".hdr", ".img")) else str(p)


def get_mri_reader(path):
    """npe2 reader for MRI volumes: ``.nii``, ``.nii.gz`` and Analyze ``.hdr``/``.img`` pairs.

    Returns :func:`read_mri` when every path is one of those, else None.
    """
    paths = path if isinstance(path, (list, tuple)) else [path]
    if not paths or any(_mri_path(p) is None for p in paths):
        return None
    return read_mri


def read_mri(path):
    """Read MRI volumes as napari image layers, one per file (or per Analyze pair).

    Each layer's ``scale`` is the voxel size from the file's header (mm, as
    ``torchscope.alzheimer.load_volume(path, return_spacing=True)`` gives it) and its
    ``metadata["torchscope"]["call"]`` the call that reads it from the console. OASIS-1's
    trailing singleton axis (176 x 208 x 176 x 1) is dropped.
    """
    from torchscope.alzheimer import load_volume

    paths = path if isinstance(path, (list, tuple)) else [path]
    layers, seen = [], set()
    for p in map(_mri_path, paths):
        key = _analyze_pair_key(p)
        if key in seen:
            continue
        seen.add(key)
        volume, spacing = load_volume(p, return_spacing=True)
        name = p.name
        for suffix in MRI_SUFFIXES:
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
                break
        call = f"torchscope.alzheimer.load_volume({str(p)!r}, return_spacing=True)"
        meta = {"torchscope": {"source": str(p), "spacing": spacing, "call": call}}
        layers.append(
            (
                volume,
                {
                    "name": name,
                    "scale": spacing,
                    "units": ("mm",) * volume.ndim,
                    "metadata": meta,
                },
                "image",
            )
        )
    return layers


# --------------------------------------------------------------------------- ptycho (issue 4)
# Ptychography files: CXI (.cxi, and CXI files named .h5/.hdf5) and PtyLab HDF5 (.h5/.hdf5),
# read by torchscope.ptycho.load. Other HDF5 files are left to other readers: the file's
# structure is looked at first (torchscope.ptycho._io.file_kind), and None returned when it is
# not ptychography.
PTYCHO_SUFFIXES = (".cxi", ".h5", ".hdf5")


def get_ptycho_reader(path):
    """npe2 reader for ptychography data and reconstructions (``.cxi``, ``.h5``, ``.hdf5``).

    Returns :func:`read_ptycho` when every path is a ptychography file, else None.
    """
    from pathlib import Path

    from torchscope.ptycho._io import file_kind

    paths = path if isinstance(path, (list, tuple)) else [path]
    if not paths or not all(isinstance(p, (str, Path)) for p in paths):
        return None
    if any(not str(p).lower().endswith(PTYCHO_SUFFIXES) or file_kind(p) is None for p in paths):
        return None
    return read_ptycho


def read_ptycho(path):
    """Read ptychography files as layers.

    Measured data give the diffraction patterns (an image stack whose
    ``metadata["ptycho_data"]`` is the :class:`torchscope.ptycho.PtychoData`, which the
    ptychography dock reconstructs) and the scan positions (points, in nm from the object
    centre). A reconstruction gives the object amplitude and phase, the probe modes and the
    positions, as the dock shows them.
    """
    from pathlib import Path

    from torchscope.napari._ptycho import data_layers, snapshot_layers
    from torchscope.ptycho import PtychoData, load
    from torchscope.ptycho._io import read_geometry

    paths = path if isinstance(path, (list, tuple)) else [path]
    layers = []
    for p in map(Path, paths):
        call = f"torchscope.ptycho.load({str(p)!r})"
        loaded = load(p)
        if isinstance(loaded, PtychoData):
            layers += data_layers(loaded, p.stem, call=call, parameters={"path": str(p)},
                                  input=str(p))
            continue
        geometry = read_geometry(p, loaded.probe_modes.shape[-2:])
        record = {"function": "torchscope.ptycho.load", "source": str(p), "call": call}
        layers += snapshot_layers(loaded, geometry, p.stem, record=record)
    return layers



# ------------------------------------------------------------------------------- ghost (issue 3)
# Single-pixel measurements (.npz: buckets, patterns, metadata) and TIFF pattern stacks, read by
# torchscope.ghost.load_measurement / load_patterns. A measurement opens as one image layer: the
# patterns (M, n, n), with the buckets in layer.metadata[GHOST_MEASUREMENT] (the ghost dock
# reconstructs from it; the ghost writer saves it back).

#: ``layer.metadata`` key of a measurement layer: ``{"buckets", "metadata", "path"}``.
GHOST_MEASUREMENT = "ghost_measurement"


def _single_path(path, suffixes):
    from pathlib import Path

    if isinstance(path, (list, tuple)) or not isinstance(path, (str, Path)):
        return None
    return Path(path) if str(path).lower().endswith(suffixes) else None


def get_ghost_measurement_reader(path):
    """npe2 reader for ``.npz`` measurements: only archives holding ``buckets`` and
    ``patterns`` arrays (other ``.npz`` files return None)."""
    from torchscope.ghost._io import is_measurement_file

    p = _single_path(path, (".npz",))
    return read_ghost_measurement if p is not None and is_measurement_file(p) else None


def ghost_measurement_layer(measurement, path=None, name=None):
    """The layer data tuple of a :class:`torchscope.ghost.Measurement`: its patterns as an
    image (M, n, n), its buckets and metadata in ``metadata[GHOST_MEASUREMENT]``. A
    ``"spacing"`` (µm) in the file's metadata becomes the layer's pixel size."""
    from pathlib import Path

    meta = measurement.metadata
    name = name or f"measurement {Path(path).stem if path else ''}".strip()
    kwargs = {
        "name": name,
        "colormap": "gray",
        "metadata": {
            GHOST_MEASUREMENT: {"buckets": measurement.buckets, "metadata": meta,
                                "path": None if path is None else str(path)},
            "torchscope": {"source": None if path is None else str(path),
                           "call": None if path is None else
                           f"torchscope.ghost.load_measurement({str(path)!r})"},
        },
        "axis_labels": ("pattern", "y", "x"),
    }
    spacing = meta.get("spacing")
    if isinstance(spacing, (int, float)) and spacing > 0:
        kwargs.update(scale=(1.0, float(spacing), float(spacing)), units=("pixel", "µm", "µm"))
    return (measurement.patterns, kwargs, "image")


def read_ghost_measurement(path):
    """Read a ``.npz`` measurement as one image layer of its patterns (buckets in metadata)."""
    from torchscope.ghost import load_measurement

    return [ghost_measurement_layer(load_measurement(path), path)]


def get_ghost_patterns_reader(path):
    """npe2 reader for TIFF pattern stacks: files marked by ``save_patterns``, or stacks of
    Walsh-Hadamard patterns; any other TIFF returns None (napari's own reader opens it)."""
    from torchscope.ghost._io import is_pattern_stack

    p = _single_path(path, (".tif", ".tiff"))
    return read_ghost_patterns if p is not None and is_pattern_stack(p) else None


def read_ghost_patterns(path):
    """Read a TIFF pattern stack as an image layer (M, n, n), masks as 0/1 where binary."""
    from pathlib import Path

    from torchscope.ghost import load_patterns

    call = f"torchscope.ghost.load_patterns({str(path)!r})"
    meta = {"torchscope": {"source": str(path), "call": call}}
    kwargs = {"name": f"patterns {Path(path).stem}", "colormap": "gray", "metadata": meta,
              "axis_labels": ("pattern", "y", "x")}
    return [(load_patterns(path), kwargs, "image")]

"""napari writer contributions: layers saved in the science modules' file formats.

One section per science module. Each writer is ``write(path, data, meta) -> list[str]`` (single
layer) or ``write(path, layer_data) -> list[str]`` (several layers) as npe2 expects.
"""


# --------------------------------------------------------------------------- ptycho (issue 4)
def write_ptycho_cxi(path, data, meta):
    """Save a ptychography layer as CXI (:func:`torchscope.ptycho.save`).

    The layer must be one the ptychography dock or reader made: a reconstruction's object or
    probe layer (``metadata["ptycho_result"]``: the object, probe modes, positions and error
    history, with the geometry) or a patterns layer (``metadata["ptycho_data"]``: the measured
    data). Returns the paths written.
    """
    from torchscope.napari._ptycho import DATA_KEY, GEOMETRY_KEY, RESULT_KEY
    from torchscope.ptycho import save

    metadata = meta.get("metadata", {}) or {}
    if RESULT_KEY in metadata:
        return [save(path, metadata[RESULT_KEY], geometry=metadata.get(GEOMETRY_KEY))]
    if DATA_KEY in metadata:
        return [save(path, metadata[DATA_KEY])]
    raise ValueError(
        f"{meta.get('name', 'this layer')!r} is not a ptychography layer: save the object, probe "
        "or patterns layer of a reconstruction or of a ptychography file as CXI."
    )


# ------------------------------------------------------------------------------- ghost (issue 3)
def write_ghost_measurement(path, data, meta):
    """npe2 writer: a measurement layer (patterns with buckets in its metadata, as the ghost
    reader and dock make them) saved as ``.npz`` by ``torchscope.ghost.save_measurement``."""
    from torchscope.ghost import save_measurement
    from torchscope.napari._readers import GHOST_MEASUREMENT

    record = (meta.get("metadata") or {}).get(GHOST_MEASUREMENT)
    if record is None:
        name = meta.get("name", "this layer")
        raise ValueError(f"{name!r} is not a ghost-imaging measurement (no bucket signals in its "
                         "metadata): open a .npz measurement, or save one from the Ghost "
                         "imaging dock.")
    return [str(save_measurement(path, record["buckets"], data,
                                 metadata=record.get("metadata") or {}))]

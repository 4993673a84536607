"""napari reader contributions: measured data files opened as layers.

One section per science module. Each reader is ``get_reader(path) -> callable | None`` as npe2
expects: it returns ``None`` for paths it cannot read (so napari tries other readers), and the
returned function gives a list of layer data tuples. Heavy imports happen inside the functions.
"""

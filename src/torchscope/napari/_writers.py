"""napari writer contributions: layers saved in the science modules' file formats.

One section per science module. Each writer is ``write(path, data, meta) -> list[str]`` (single
layer) or ``write(path, layer_data) -> list[str]`` (several layers) as npe2 expects.
"""

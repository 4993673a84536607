"""napari-torchscope: computational imaging for napari on one PyTorch backend.

Science modules (import them by name; none of them imports napari or Qt):

``torchscope.backend``
    Device choice, array <-> tensor conversion, the dtype policy, GPU memory handling.
``torchscope.filters``
    Filters, thresholds and morphology on 2D and 3D images, in pixels or physical units.

Importing :mod:`torchscope` imports neither torch nor napari; torch is loaded the first time a
function computes.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]

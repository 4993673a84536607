"""The napari side of torchscope: docks, sample data and the demo launcher.

napari finds everything here through the manifest ``napari.yaml``; nothing needs importing by
hand. The modules:

``_filters``
    The docks for :mod:`torchscope.filters`: one per operation and one per lecture group
    (Denoising, Background removal, Edges, Binarization, Morphology), all made by
    ``FilterWidget`` from the table ``OPERATIONS``.
``_ghost``, ``_ptycho``, ``_deblur``, ``_alzheimer``
    The docks of the other science modules (ghost imaging and its CNR curve; live
    ptychography; the deblur region overlay; MRI slice classification and training).
``_readers``, ``_writers``
    File contributions: ghost-imaging ``.npz``/TIFF, ptychography CXI/PtyLab HDF5, MRI volumes.
``_workers``
    Run/Stop/progress controls driving a napari thread worker, block-by-block computation, and
    output layers that copy the input's geometry and record the call that made them.
``_sample_data``
    Synthetic fluorescence images of nuclei (2D and an anisotropic 3D stack), and examples for
    every other module.
``_demo``
    ``torchscope-demo``: napari with every dock and the samples; ``--screenshot`` for headless use.

This package imports napari and Qt; the science modules never import it. Importing it does not
import torch: that happens when a dock is created or run.
"""

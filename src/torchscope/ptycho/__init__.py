"""Far-field transmission ptychography: virtual experiments, (M-)ePIE / (M-)rPIE, position refinement.

After Guzzi et al., *SciComPty* (PeerJ Comput. Sci. 2022, ``papers/003``).

Data model
    :class:`Geometry` (energy or wavelength, detector distance, pixel and shape, in SI units),
    :class:`PtychoData` (centred diffraction patterns and positions in sample pixels from the
    object centre), :class:`Snapshot`, :class:`Result`.
Virtual experiments
    :func:`make_probe`, :func:`raster_positions` (:func:`raster_grid`: the largest one that
    keeps the probe inside an object), :func:`fermat_spiral_positions`,
    :func:`simulate`.
Reconstruction
    :func:`iterate` (a generator of snapshots), :func:`reconstruct` (runs it to the end);
    engines ``"epie"``, ``"rpie"`` with any number of probe modes (M-ePIE / M-rPIE);
    position refinement ``"adam"`` or ``"fixed_gain"``; :class:`DivergenceError` (a
    ``FloatingPointError``) when a run produces NaN or infinite values.
Quality
    :func:`object_error` (NRMSE after subpixel registration and removal of global phase, scale
    and phase ramp) on the region :func:`lit_region` finds, :func:`register_subpixel`
    (batched DFT-upsampled cross-correlation).
Files
    :func:`load` and :func:`save`: CXI (NXcxi_ptycho) and PtyLab HDF5.

Importing this module does not import torch; the first computation does.
"""

from torchscope.backend import lazy_namespace

_SUBMODULES = {
    "Geometry": "_data",
    "PtychoData": "_data",
    "Snapshot": "_data",
    "Result": "_data",
    "make_probe": "_probe",
    "raster_positions": "_positions",
    "raster_grid": "_positions",
    "fermat_spiral_positions": "_positions",
    "simulate": "_simulate",
    "iterate": "_engines",
    "reconstruct": "_engines",
    "ENGINES": "_engines",
    "DivergenceError": "_engines",
    "object_error": "_metrics",
    "lit_region": "_metrics",
    "register_subpixel": "_metrics",
    "load": "_io",
    "save": "_io",
}

__getattr__, __dir__, __all__ = lazy_namespace(__name__, _SUBMODULES)

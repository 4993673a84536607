"""The data model of ptychography: geometry, measured data, snapshots and results.

Plain numpy dataclasses, shared by the simulator, the engines, the file readers and writers and
the napari widget. Nothing here imports torch.
"""

import math
from dataclasses import dataclass, field

import numpy as np

#: Planck constant times the speed of light, in eV m (CODATA 2018): wavelength = HC / energy.
HC_EV_M = 1.239841984e-6


@dataclass(frozen=True)
class Geometry:
    """Far-field transmission geometry.

    Give the photon energy (``energy_ev``) or the wavelength (``wavelength_m``), not both.

    Parameters
    ----------
    energy_ev : float, optional
        Photon energy in electronvolts.
    wavelength_m : float, optional
        Wavelength in metres.
    detector_distance_m : float
        Sample-to-detector distance z, in metres.
    detector_pixel_m : float
        Detector pixel pitch delta_D, in metres.
    detector_shape : (int, int)
        Detector (diffraction pattern) shape (ny, nx), in pixels.

    Attributes
    ----------
    sample_pixel_m : float
        Pixel size in the sample plane, lambda z / (N delta_D), in metres (square detectors).
    sample_pixel_yx_m : (float, float)
        The same per axis, lambda z / (N_axis delta_D).
    """

    energy_ev: float | None = None
    wavelength_m: float | None = None
    detector_distance_m: float = 1.0
    detector_pixel_m: float = 75e-6
    detector_shape: tuple[int, int] = (64, 64)

    def __post_init__(self):
        if (self.energy_ev is None) == (self.wavelength_m is None):
            raise ValueError(
                "Geometry: give exactly one of energy_ev or wavelength_m, "
                f"got energy_ev={self.energy_ev!r}, wavelength_m={self.wavelength_m!r}"
            )
        for name in ("energy_ev", "wavelength_m"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"Geometry: {name} must be a positive number, got {value!r}")
        for name in ("detector_distance_m", "detector_pixel_m"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"Geometry: {name} must be a positive number (metres), got {value!r}")
        shape = tuple(int(n) for n in np.atleast_1d(self.detector_shape))
        if len(shape) == 1:
            shape = shape * 2
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(
                f"Geometry: detector_shape must be (ny, nx) with positive sizes, got {self.detector_shape!r}"
            )
        object.__setattr__(self, "detector_shape", shape)
        if self.wavelength_m is None:
            object.__setattr__(self, "wavelength_m", HC_EV_M / float(self.energy_ev))
        else:
            object.__setattr__(self, "energy_ev", HC_EV_M / float(self.wavelength_m))

    @property
    def sample_pixel_yx_m(self) -> tuple[float, float]:
        lz = self.wavelength_m * self.detector_distance_m
        return tuple(lz / (n * self.detector_pixel_m) for n in self.detector_shape)

    @property
    def sample_pixel_m(self) -> float:
        py, px = self.sample_pixel_yx_m
        if not math.isclose(py, px, rel_tol=1e-12):
            raise ValueError(
                f"Geometry.sample_pixel_m: the detector is not square ({self.detector_shape}); "
                "use sample_pixel_yx_m"
            )
        return px


@dataclass
class PtychoData:
    """Measured (or simulated) far-field ptychography data.

    Parameters
    ----------
    patterns : ndarray, (P, ny, nx) float
        Diffraction intensities (photon counts), centred: zero frequency in the middle.
    positions_px : ndarray, (P, 2) float
        Scan positions (y, x) in sample-plane pixels, measured from the object's centre.
    geometry : Geometry
    mask : ndarray, (ny, nx) bool, optional
        True where detector pixels are valid.
    metadata : dict
        Free-form information (source file, simulation parameters, ...).
    """

    patterns: np.ndarray
    positions_px: np.ndarray
    geometry: Geometry
    mask: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        patterns = np.asarray(self.patterns)
        if patterns.ndim != 3:
            raise ValueError(f"PtychoData: patterns must be (P, ny, nx), got shape {patterns.shape}")
        if patterns.dtype.kind not in "biuf":
            raise TypeError(f"PtychoData: patterns must be real intensities, got dtype {patterns.dtype}")
        if patterns.shape[0] == 0:
            raise ValueError("PtychoData: no patterns (P = 0)")
        if not np.isfinite(patterns).all():
            raise ValueError("PtychoData: patterns hold NaN or infinite values")
        try:
            positions = np.asarray(self.positions_px, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("PtychoData: positions_px must be (P, 2) numbers") from None
        if not np.isfinite(positions).all():
            raise ValueError("PtychoData: positions_px hold NaN or infinite values")
        if positions.shape != (patterns.shape[0], 2):
            raise ValueError(
                f"PtychoData: positions_px must be (P, 2) = ({patterns.shape[0]}, 2) for "
                f"{patterns.shape[0]} patterns, got shape {positions.shape}"
            )
        if not isinstance(self.geometry, Geometry):
            raise TypeError(f"PtychoData: geometry must be a Geometry, got {type(self.geometry).__name__}")
        if tuple(self.geometry.detector_shape) != tuple(patterns.shape[1:]):
            raise ValueError(
                f"PtychoData: geometry.detector_shape {self.geometry.detector_shape} differs from "
                f"the patterns' shape {patterns.shape[1:]}"
            )
        if self.mask is not None:
            mask = np.asarray(self.mask, dtype=bool)
            if mask.shape != patterns.shape[1:]:
                raise ValueError(f"PtychoData: mask shape {mask.shape} differs from the patterns' {patterns.shape[1:]}")
            if not mask.any():
                raise ValueError("PtychoData: mask selects no detector pixel")
            self.mask = mask
        self.patterns = patterns
        self.positions_px = positions

    @property
    def n_positions(self) -> int:
        return self.patterns.shape[0]


@dataclass
class Snapshot:
    """The state of a reconstruction after ``iteration`` iterations.

    Attributes
    ----------
    iteration : int
    obj : ndarray, complex64 (Oy, Ox)
        The object's complex transmission.
    probe_modes : ndarray, complex64 (modes, ny, nx)
        Orthogonal probe modes, strongest first.
    positions_px : ndarray, (P, 2) float
        Current (refined) positions (y, x), pixels from the object centre.
    error : float
        The data error of this iteration (normalised amplitude misfit).
    occupancies : ndarray, (modes,) float
        Fraction of the total probe power in each mode.
    state : dict or None
        The engine's internal state (host copies), for continuing with ``start=`` exactly
        where this snapshot was taken; not part of the public data.
    """

    iteration: int
    obj: np.ndarray
    probe_modes: np.ndarray
    positions_px: np.ndarray
    error: float
    occupancies: np.ndarray | None = None
    state: dict | None = field(default=None, repr=False, compare=False)


@dataclass
class Result(Snapshot):
    """The final snapshot of a reconstruction, with the error of every iteration.

    Attributes
    ----------
    errors : ndarray, (iterations,) float
        The error after each iteration.
    options : dict
        The options the reconstruction ran with (engine, alphas, ...), for reproducibility.
    """

    errors: np.ndarray = field(default_factory=lambda: np.zeros(0))
    options: dict = field(default_factory=dict)

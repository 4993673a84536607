"""Virtual far-field ptychography experiments (the paper's equations 1-4)."""

import numpy as np

from torchscope.backend import check_real, check_rng, get_device
from torchscope.ptycho._data import Geometry, PtychoData
from torchscope.ptycho._frames import (
    check_object,
    check_positions,
    check_probe,
    check_windows_fit,
    window_corners,
)

#: The geometry used when none is given: TwinMic (Elettra) at 1020 eV, as in the paper.
DEFAULT_ENERGY_EV = 1020.0
DEFAULT_DISTANCE_M = 0.75
DEFAULT_PIXEL_M = 20e-6
_CHUNK = 64


def _intensities(obj, probe, positions, device):
    """Noise-free patterns (P, ny, nx), centred, from the exact sub-pixel forward model.

    The probe modes are translated by the sub-pixel part of each position with the Fourier shift
    theorem (exact for a probe that vanishes at its array's edges); the object window is cut at
    the whole-pixel part.
    """
    import torch

    from torchscope.backend import shift_ramps, to_numpy, to_tensor

    dev = get_device(device)
    real = torch.float64 if dev.type != "mps" else torch.float32
    cplx = torch.complex128 if real == torch.float64 else torch.complex64
    _, ny, nx = probe.shape
    o = to_tensor(obj, device=dev, dtype=cplx)
    p = to_tensor(probe, device=dev, dtype=cplx)
    corners = window_corners(positions, obj.shape, (ny, nx))
    whole = np.round(corners)
    frac = to_tensor(corners - whole, device=dev, dtype=real)
    whole = to_tensor(whole.astype(np.int64), device=dev)
    spectrum = torch.fft.fft2(p)
    ar_y = torch.arange(ny, device=dev)
    ar_x = torch.arange(nx, device=dev)
    out = np.empty((len(positions), ny, nx))  # filled chunk by chunk (no list to concatenate)
    for s in range(0, len(positions), _CHUNK):
        k = whole[s:s + _CHUNK]
        rows = (k[:, 0, None] + ar_y)[:, :, None]
        cols = (k[:, 1, None] + ar_x)[:, None, :]
        crops = o[rows, cols]  # (B, ny, nx)
        ry, rx = shift_ramps(frac[s:s + _CHUNK], (ny, nx), dtype=cplx)
        shifted = torch.fft.ifft2(spectrum[None] * (ry[:, None, :, None] * rx[:, None, None, :]))
        far = torch.fft.fft2(shifted * crops[:, None], norm="ortho")
        inten = (far.real.square() + far.imag.square()).sum(1)
        out[s:s + _CHUNK] = to_numpy(torch.fft.fftshift(inten, dim=(-2, -1)))
    return out


def simulate(obj, probe, positions, *, photons=None, geometry=None, rng=None, device=None):
    """Simulate a far-field transmission ptychography data set.

    Each pattern is ``I_j = sum_p |F{P_p(r - r_j) O(r)}|^2`` (the paper's equation 4): the probe
    modes ``P_p`` translated to position ``r_j`` (sub-pixel positions are exact: the probe is
    shifted with the Fourier shift theorem), times the object window, propagated to the far field
    by a unitary FFT, summed incoherently over the modes, and counted with Poisson noise.

    Parameters
    ----------
    obj : ndarray, (Oy, Ox) complex
        Complex transmission of the object (a real array is a pure amplitude object).
    probe : ndarray, (ny, nx) or (modes, ny, nx) complex
        Probe (modes), for instance from :func:`make_probe`. Its shape is the detector shape.
    positions : ndarray, (P, 2) float
        Scan positions (y, x) in sample pixels from the object's centre. Every probe window must
        lie inside the object.
    photons : float, optional
        Mean number of photons per diffraction pattern; the patterns are scaled to it and drawn
        from a Poisson distribution. ``None``: noise-free intensities with the probe as given.
    geometry : Geometry, optional
        The experiment's geometry (its ``detector_shape`` must equal the probe's shape).
        Default: 1020 eV, 0.75 m, 20 um pixels (TwinMic at Elettra, as in the paper).
    rng : None, int or numpy.random.Generator
        Seed or generator for the Poisson noise (drawn on the host: the same seed gives the same
        patterns on every device).
    device : None, str or torch.device
        Where the forward model runs; see :func:`torchscope.backend.get_device`.

    Returns
    -------
    PtychoData
        Centred patterns (float32 photon counts), the positions as given, the geometry, and
        ``metadata`` with ``"photons"``, ``"scale"`` (the factor applied to the noise-free
        intensities: the probe in photon units is ``probe * sqrt(scale)``) and ``"simulated"``.
    """
    o = check_object(obj, "obj")
    p = check_probe(probe, "probe")
    pos = check_positions(positions, "positions")
    check_windows_fit(pos, o.shape, p.shape[1:], name="positions")
    check_real("photons", photons, 0, low_open=True, allow_none=True, type_error=ValueError)
    if geometry is None:
        geometry = Geometry(energy_ev=DEFAULT_ENERGY_EV, detector_distance_m=DEFAULT_DISTANCE_M,
                            detector_pixel_m=DEFAULT_PIXEL_M, detector_shape=p.shape[1:])
    elif not isinstance(geometry, Geometry):
        raise TypeError(f"geometry must be a Geometry, got {type(geometry).__name__}")
    elif tuple(geometry.detector_shape) != tuple(p.shape[1:]):
        raise ValueError(
            f"geometry.detector_shape {geometry.detector_shape} differs from the probe's shape {p.shape[1:]}"
        )

    inten = _intensities(o, p, pos, device)
    scale = 1.0
    if photons is None:
        patterns = inten.astype(np.float32)
    else:
        scale = float(photons) / float(inten.sum(axis=(1, 2)).mean())
        gen = check_rng(rng)
        # chunk by chunk into the float32 result: the same draws, in the same order, as one
        # call over all patterns, without its float64 and int64 full-size copies
        patterns = np.empty(inten.shape, dtype=np.float32)
        for start in range(0, len(inten), _CHUNK):
            patterns[start:start + _CHUNK] = gen.poisson(inten[start:start + _CHUNK] * scale)
    meta = {"simulated": True, "photons": photons, "scale": scale, "modes": p.shape[0]}
    return PtychoData(patterns=patterns, positions_px=pos, geometry=geometry, metadata=meta)

"""Illumination (probe) models for virtual experiments, and orthogonal probe modes."""

import math
from numbers import Integral

import numpy as np

from torchscope.backend import check_choice, check_int, check_real

KINDS = ("disk", "gaussian", "zone_plate")


def _check_shape(shape):
    dims = tuple(np.atleast_1d(shape))
    if len(dims) == 1:
        dims = dims * 2
    if len(dims) != 2 or not all(isinstance(n, Integral) and not isinstance(n, bool) and n >= 4 for n in dims):
        raise ValueError(f"shape must be (ny, nx) with integer sizes of at least 4 pixels, got {shape!r}")
    return int(dims[0]), int(dims[1])


def _grid(shape):
    """Pixel coordinates (y, x) relative to the array centre (index n // 2)."""
    ny, nx = shape
    y = np.arange(ny, dtype=np.float64) - ny // 2
    x = np.arange(nx, dtype=np.float64) - nx // 2
    return y[:, None], x[None, :]


def _soft_disk(r, radius, edge):
    if edge <= 0:
        return (r <= radius).astype(np.float64)
    # a tanh edge whose 10 %-90 % width is ``edge`` pixels
    a = edge / (2 * math.atanh(0.8))
    return 0.5 * (1.0 + np.tanh((radius - r) / a))


def _check_occupancies(occupancies, modes):
    if occupancies is None:
        w = 0.5 ** np.arange(modes, dtype=np.float64)
    else:
        w = np.asarray(occupancies, dtype=np.float64).reshape(-1)
        if w.shape != (modes,) or not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise ValueError(
                f"occupancies must be {modes} positive numbers (one per mode), got {occupancies!r}"
            )
    return w / w.sum()


def _mode_factors(y, x, count):
    """Low-order polynomials 1, x, y, xy, x^2, y^2, ... (Hermite-Gauss-like modes of a beam)."""
    terms = [np.ones_like(y * x), x + 0 * y, y + 0 * x, x * y, x * x + 0 * y, y * y + 0 * x]
    k = 3
    while len(terms) < count:
        for i in range(k + 1):
            terms.append(x ** (k - i) * y ** i)
        k += 1
    return terms[:count]


def make_probe(shape, *, kind="disk", diameter_px=None, edge_px=2.0, quadratic_phase_rad=0.0,
               stop_fraction=0.3, modes=1, occupancies=None):
    """A probe (illumination) for virtual ptychography experiments.

    Parameters
    ----------
    shape : int or (int, int)
        Probe array shape (ny, nx) in sample pixels; the same as the detector shape.
    kind : {"disk", "gaussian", "zone_plate"}
        ``"disk"``: a pinhole-like flat disk with a soft edge. ``"gaussian"``: a Gaussian beam.
        ``"zone_plate"``: the defocused spot of a zone plate (an annular pupil with a central
        stop, defocused so that its geometric spot has the given diameter): a bright ring with
        fine fringes, as at soft-X-ray beamlines.
    diameter_px : float, optional
        Disk diameter, Gaussian full width at half maximum, or zone-plate spot diameter, in
        pixels. Default: 5/8 of the smaller side (40 px for 64).
    edge_px : float
        Width (10 %-90 %) of the disk's soft edge in pixels; 0 gives a hard edge.
    quadratic_phase_rad : float
        A quadratic (defocus-like) phase, in radians, reached at radius ``diameter_px / 2``
        (disk and gaussian).
    stop_fraction : float
        Zone plate: central stop diameter as a fraction of the pupil diameter, in [0, 1).
    modes : int
        Number of mutually incoherent probe modes. Modes beyond the first are the first one
        times low-order polynomials (x, y, xy, ...), made exactly orthogonal (Gram-Schmidt),
        like the Hermite-Gauss modes of a partially coherent beam.
    occupancies : sequence of float, optional
        Power fraction of each mode (normalised to sum 1). Default: proportional to
        1, 1/2, 1/4, ...

    Returns
    -------
    ndarray, complex64
        ``(ny, nx)`` for one mode, ``(modes, ny, nx)`` otherwise, strongest mode first. The
        total power (sum of squared magnitudes over all modes) is 1; :func:`simulate` scales it
        to the photon count. The probe's centre is pixel ``(ny // 2, nx // 2)``.
    """
    ny, nx = _check_shape(shape)
    check_choice("kind", kind, KINDS)
    diameter = check_real("diameter_px", diameter_px, 0, low_open=True, allow_none=True,
                          type_error=ValueError)
    if diameter is None:
        diameter = 5.0 * min(ny, nx) / 8.0
    edge = check_real("edge_px", edge_px, 0, type_error=ValueError)
    curvature = check_real("quadratic_phase_rad", quadratic_phase_rad, type_error=ValueError)
    stop = check_real("stop_fraction", stop_fraction, 0, 1, high_open=True, type_error=ValueError)
    modes = check_int("modes", modes, 1, type_error=ValueError)
    weights = _check_occupancies(occupancies, modes)

    y, x = _grid((ny, nx))
    r = np.hypot(y, x)
    radius = diameter / 2.0
    if kind == "disk":
        field = _soft_disk(r, radius, edge) * np.exp(1j * curvature * (r / radius) ** 2)
    elif kind == "gaussian":
        sigma = diameter / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        field = np.exp(-(r ** 2) / (2 * sigma ** 2)) * np.exp(1j * curvature * (r / radius) ** 2)
    else:
        # pupil in the detector (frequency) plane: outer radius a quarter of the band, so the
        # spot is sampled twice over; defocus phase phi_rim (rho / rho_max)^2 sends the rim rays
        # phi_rim / (pi rho_max) pixels off axis, which sets the spot radius
        fy = np.fft.fftshift(np.fft.fftfreq(ny))[:, None]
        fx = np.fft.fftshift(np.fft.fftfreq(nx))[None, :]
        rho = np.hypot(fy, fx)
        rho_max = 0.25
        pupil = ((rho <= rho_max) & (rho >= stop * rho_max)).astype(np.float64)
        defocus = math.pi * rho_max * radius
        pupil = pupil * np.exp(1j * defocus * (rho / rho_max) ** 2)
        field = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(pupil)))
        if curvature:
            field = field * np.exp(1j * curvature * (r / radius) ** 2)

    field = field / math.sqrt(np.sum(np.abs(field) ** 2))
    stack = []
    for factor in _mode_factors(y / radius, x / radius, int(modes)):
        m = field * factor
        for prev in stack:  # Gram-Schmidt: exactly orthogonal, unit power
            m = m - np.vdot(prev, m) * prev
        m = m / math.sqrt(np.sum(np.abs(m) ** 2))
        stack.append(m)
    out = np.stack([math.sqrt(w) * m for w, m in zip(weights, stack)]).astype(np.complex64)
    return out[0] if modes == 1 else out


def orthogonalize_modes(modes):
    """Orthogonal probe modes spanning the same incoherent sum, strongest first.

    The eigenvectors of the modes' Gram matrix (the coherent-mode decomposition of the mixed
    state): the incoherent intensity sum and the total power are unchanged.

    Parameters
    ----------
    modes : torch.Tensor, (M, ny, nx) complex

    Returns
    -------
    modes : torch.Tensor, (M, ny, nx) complex
        Mutually orthogonal, sorted by decreasing power.
    occupancies : torch.Tensor, (M,) real
        Power fraction of each mode (sums to 1).
    """
    import torch

    m = modes.shape[0]
    flat = modes.reshape(m, -1)
    if m > 1:
        gram = flat.conj() @ flat.T  # (M, M) Hermitian
        _, vectors = torch.linalg.eigh(gram.to(torch.complex128))
        vectors = vectors.to(flat.dtype).flip(-1)  # strongest first
        flat = vectors.T @ flat
    power = flat.real.square().sum(-1) + flat.imag.square().sum(-1)
    return flat.reshape(modes.shape), power / power.sum()

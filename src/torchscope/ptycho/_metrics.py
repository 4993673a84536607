"""Quality of a reconstruction: object error after removing what ptychography cannot determine."""

import functools
import math

import numpy as np

from torchscope.backend import check_int, check_real, register_subpixel
from torchscope.ptycho._frames import (
    check_object,
    check_positions,
    check_probe,
    check_shape,
    window_corners,
)

__all__ = ["lit_region", "object_error", "register_subpixel"]


def _centre_crop(a, shape):
    sy = a.shape[0] // 2 - shape[0] // 2
    sx = a.shape[1] // 2 - shape[1] // 2
    return a[sy:sy + shape[0], sx:sx + shape[1]]


def lit_region(probe, positions, shape, *, fraction=0.5):
    """The part of the object lit to at least ``fraction`` of the maximum total illumination.

    Parameters
    ----------
    probe : ndarray, (ny, nx) or (modes, ny, nx) complex
    positions : ndarray, (P, 2)
        Positions (y, x) in pixels from the object's centre (rounded to whole pixels here).
    shape : (int, int)
        Object shape.
    fraction : float
        Threshold relative to the maximum of ``sum_j sum_p |P_p(r - r_j)|^2``, in (0, 1].

    Returns
    -------
    ndarray, bool, ``shape``
    """
    p = check_probe(probe)
    pos = check_positions(positions, "positions")
    check_real("fraction", fraction, 0, 1, low_open=True, type_error=ValueError)
    shape = check_shape(shape, "shape")
    power = np.sum(np.abs(p) ** 2, axis=0)
    ny, nx = power.shape
    total = np.zeros(shape)
    for cy, cx in np.round(window_corners(pos, shape, (ny, nx))).astype(int):
        y0, x0 = max(cy, 0), max(cx, 0)
        y1, x1 = min(cy + ny, shape[0]), min(cx + nx, shape[1])
        if y1 > y0 and x1 > x0:
            total[y0:y1, x0:x1] += power[y0 - cy:y1 - cy, x0 - cx:x1 - cx]
    if not total.max() > 0:
        raise ValueError(f"no window lights the object of shape {shape}: the positions lie "
                         "outside it, or the probe is zero.")
    return total >= fraction * total.max()


def _translate(image, shift):
    """``image`` translated by ``shift`` pixels: the whole-pixel part by rolling, the sub-pixel
    rest by the Fourier shift theorem on a reflect-padded copy (so the image's edges, which are
    not periodic, do not ring into the comparison region)."""
    whole = np.round(shift).astype(int)
    out = np.roll(image, tuple(whole), axis=(0, 1))
    rest = shift - whole
    if not np.any(rest):
        return out
    pad = 16
    padded = np.pad(out, pad, mode="reflect")
    ky = np.fft.fftfreq(padded.shape[0])[:, None]
    kx = np.fft.fftfreq(padded.shape[1])[None, :]
    moved = np.fft.ifft2(np.fft.fft2(padded) * np.exp(-2j * math.pi * (ky * rest[0] + kx * rest[1])))
    return moved[pad:-pad, pad:-pad]


def _ramp_frequency(rec, tru, w, upsample, device):
    """Frequency (cycles per image, per axis) of the linear phase ramp that best matches ``rec``
    to ``tru`` (weights ``w``).

    The peak of ``|sum_x z(x) exp(2 pi i x d / N)|`` over continuous ``d``, with
    ``z = tru conj(rec) w``: the DFT-upsampling search of the registration, run on ``z``
    handed over as a spectrum indexed from the image centre.
    """
    import torch

    from torchscope.backend import get_device, register_spectra, to_numpy, to_tensor

    dev = get_device(device)
    z = to_tensor(np.fft.ifftshift(tru * np.conj(rec) * w), device=dev,
                  dtype=torch.complex64 if dev.type == "mps" else torch.complex128)
    # the ramp's phase error at the edge is pi / upsample_ramp: search finer than for shifts
    d = register_spectra(z[None], torch.ones_like(z)[None], upsample=max(10 * upsample, 10),
                         normalization=None, coarse_upsample=10)[0]
    return to_numpy(d)


def _apply_ramp(image, d):
    y = np.arange(image.shape[0])[:, None] - image.shape[0] // 2
    x = np.arange(image.shape[1])[None, :] - image.shape[1] // 2
    return image * np.exp(-2j * math.pi * (y * d[0] / image.shape[0] + x * d[1] / image.shape[1]))


def _shift_candidates(reference, moving, upsample, device, count=4, separation=3):
    """Sub-pixel shifts registering ``moving`` onto ``reference`` at the ``count`` strongest
    peaks of their cross-correlation that lie at least ``separation`` pixels apart (per axis):
    (count, 2), strongest first."""
    import torch

    from torchscope.backend import get_device, register_spectra, to_numpy, to_tensor

    ref_f, mov_f = np.fft.fft2(reference), np.fft.fft2(moving)
    power = np.abs(np.fft.ifft2(ref_f * np.conj(mov_f)))
    ny, nx = power.shape
    starts = []
    for _ in range(min(count, power.size)):
        py, px = np.unravel_index(np.argmax(power), power.shape)
        starts.append((py - ny if py > ny // 2 else py, px - nx if px > nx // 2 else px))
        rows = np.arange(py - separation, py + separation + 1) % ny
        cols = np.arange(px - separation, px + separation + 1) % nx
        power[np.ix_(rows, cols)] = -1.0
    dev = get_device(device)
    cdtype = torch.complex64 if dev.type == "mps" else torch.complex128
    k = len(starts)
    shifts = register_spectra(
        to_tensor(ref_f, device=dev, dtype=cdtype).expand(k, ny, nx),
        to_tensor(mov_f, device=dev, dtype=cdtype).expand(k, ny, nx), upsample=upsample,
        normalization=None, start=to_tensor(starts, device=dev, dtype=torch.float64))
    return to_numpy(shifts, np.float64)


#: Rounds of (shift, then ramp) refinement at most (see object_error)
_REFITS = 5


def object_error(reconstructed, truth, roi=None, *, upsample=100, device=None):
    """Normalised RMS error of a reconstructed object against the truth.

    Ptychography determines the object only up to a global complex factor (amplitude scale and
    phase), a linear phase ramp (traded against a translation of the probe's far field) and a
    translation (traded against the positions). All three are removed before comparing:

    1. the phase ramp: the peak of the upsampled Fourier transform of
       ``truth * conj(reconstructed)`` inside ``roi`` (the DFT-upsampling search of the
       registration, run on the product);
    2. the translation: the four strongest peaks of the cross-correlation of the truth inside
       ``roi`` with the reconstruction, each registered to sub-pixel precision, the ramp found
       once more on each (with the reconstruction whole and cut to ``roi``); the one with the
       smallest error below is refined by minimising it (Nelder-Mead) and applied as a
       Fourier shift, and the ramp found again there, in turn while the error falls (over a
       small region a sub-pixel shift and a ramp can stand in for each other);
    3. the complex factor: the least-squares one inside ``roi``.

    Then ``NRMSE = sqrt(sum_roi |truth - c reconstructed|^2 / sum_roi |truth|^2)``.

    Parameters
    ----------
    reconstructed, truth : ndarray, 2-D complex
        Objects with the same centre convention (position (0, 0) at pixel ``(Oy // 2, Ox // 2)``);
        if their shapes differ both are cropped to the common central part.
    roi : ndarray of bool, optional
        Where to compare, in ``truth``'s shape (see :func:`lit_region`). Default: everywhere.
    upsample : int
        Precision of the registration and ramp search, ``1 / upsample`` pixel (or cycle).
    device : None, str or torch.device
        Where the registrations run.

    Returns
    -------
    float
    """
    upsample = check_int("upsample", upsample, 1)
    rec = check_object(reconstructed, "reconstructed")
    tru = check_object(truth, "truth")
    for name, a in (("reconstructed", rec), ("truth", tru)):
        if a.size == 0:
            raise ValueError(f"{name} is empty")
    if roi is None:
        mask = np.ones(tru.shape, dtype=bool)
    else:
        mask = np.asarray(roi, dtype=bool)
        if mask.shape != tru.shape:
            raise ValueError(f"roi has shape {mask.shape}, truth {tru.shape}; they must match")
    if not mask.any():
        raise ValueError("roi selects no pixel")
    common = (min(rec.shape[0], tru.shape[0]), min(rec.shape[1], tru.shape[1]))
    rec, tru, mask = _centre_crop(rec, common), _centre_crop(tru, common), _centre_crop(mask, common)
    if not mask.any():
        raise ValueError("roi lies outside the part the two objects share")
    if not np.any(tru[mask]):
        raise ValueError("truth is zero everywhere inside roi: there is nothing to compare")
    w = mask.astype(np.float64)

    # Start: the phase ramp (it decorrelates complex images, so it would spoil a registration;
    # a small misregistration barely moves the ramp's spectral peak), then the translation by
    # cross-correlation (only the truth is masked: masking both would pull the peak towards
    # zero shift). Cross-correlation maximises sum_roi truth conj(shifted), which is the least-
    # squares fit only if the shifted image's energy inside roi does not change with the shift,
    # so the shift is then refined on the error itself (Nelder-Mead, to 1 / upsample pixel).
    rec = _apply_ramp(rec, _ramp_frequency(rec, tru, w, upsample, device))

    def error_at(image, shift):
        moved = _translate(image, shift)
        r, t = moved[mask], tru[mask]
        c = np.vdot(r, t) / max(np.vdot(r, r).real, 1e-300)
        return math.sqrt(np.sum(np.abs(t - c * r) ** 2) / max(np.sum(np.abs(t) ** 2), 1e-300))

    # the translation: each of the cross-correlation's strongest peaks, refined to sub-pixel
    # precision, with the ramp found once more on the registered image (a ramp commutes with
    # translations up to a constant phase, so it is applied before translating); the one with
    # the smallest error is kept (on an object with repeated features, a coin in a row of
    # coins, a neighbouring repeat can correlate more strongly than the true position).
    # Both are correlated without their means over roi: the constant part (an amplitude near
    # one, say) would correlate into a broad plateau shaped by roi, whose top need not be where
    # the details match.
    # The reconstruction is correlated whole and also inside roi alone: outside roi it may
    # hold anything (an object weaker than the truth, since object and probe trade a scale,
    # beside an unscanned part at the start's value: the whole correlation then peaks where
    # roi straddles that part's edge, far off); inside roi alone the peak leans towards zero
    # shift, but it is a start the refinement moves on.
    truth_c, rec_c = (tru - tru[mask].mean()) * w, rec - rec[mask].mean()
    candidates = np.concatenate([_shift_candidates(truth_c, moving, upsample, device)
                                 for moving in (rec_c, rec_c * w)])

    def ramped(image, shift):  # the ramp found again on ``image`` registered by ``shift``
        return _apply_ramp(image, _ramp_frequency(_translate(image, shift), tru, w, upsample,
                                                  device))

    trials = []
    for shift in candidates:
        image = ramped(rec, shift)
        trials.append((error_at(image, shift), tuple(shift), image))
    err, shift, rec = min(trials, key=lambda trial: trial[0])
    shift = np.array(shift)

    from scipy.optimize import minimize

    # the shift refined on the error itself, then the ramp found again at that shift, in
    # turn while the error falls: over a small region a sub-pixel shift and a phase ramp can
    # stand in for each other, and the ramp found at the first shift held the error at 0.048
    # for an exact translation of a smooth object (3 x 3 scan; 0.004 in turn)
    step = 0.25
    for _ in range(_REFITS):
        simplex = np.array([shift, shift + [step, 0.0], shift + [0.0, step]])
        best = minimize(functools.partial(error_at, rec), shift, method="Nelder-Mead",
                        options={"initial_simplex": simplex, "xatol": 1.0 / upsample,
                                 "fatol": 1e-9})
        if best.fun < err:
            shift, err = best.x, float(best.fun)
        refit = ramped(rec, shift)
        refit_err = error_at(refit, shift)
        if not refit_err < err * (1 - 1e-3):
            break
        rec, err = refit, refit_err
    return float(err)

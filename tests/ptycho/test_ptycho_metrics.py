"""object_error removes exactly what ptychography cannot determine, and nothing else."""

import numpy as np
import pytest
from skimage import data

from torchscope import ptycho


@pytest.fixture(scope="module")
def truth():
    cam = data.camera()[::4, ::4].astype(np.float64) / 255.0  # 128 x 128
    coins = data.coins()[:256:2, :256:2].astype(np.float64) / 255.0
    return (0.6 + 0.4 * cam) * np.exp(1j * np.pi * (coins - 0.5))


@pytest.fixture(scope="module")
def roi():
    mask = np.zeros((128, 128), bool)
    mask[24:-24, 24:-24] = True
    return mask


def test_zero_for_what_ptychography_cannot_see(truth, roi):
    yy, xx = np.mgrid[:128, :128]
    ambiguous = 2.3 * np.exp(1j * 1.1) * truth * np.exp(1j * (0.021 * yy - 0.034 * xx))
    assert ptycho.object_error(ambiguous, truth, roi) < 2e-3
    # a whole-pixel translation (cut from a larger object) is registered away
    big = np.pad(truth, 8, mode="reflect")
    moved = big[8 + 3:8 + 3 + 128, 8 - 2:8 - 2 + 128]
    mask = np.zeros_like(roi)
    mask[32:-32, 32:-32] = True
    assert ptycho.object_error(moved, truth, mask) < 1e-6


def _scanned_copy(truth, *, inner, outer, rng, scale=1.0):
    """A reconstruction of a square scan: ``scale`` times the truth translated by (-1, 2) px
    inside ``[outer:-outer]`` on both axes, flat 1 (the start's value) outside, a global phase
    and 1 % noise. Returns it, the compared region ``[inner:-inner]``, and the NRMSE that the
    noise alone gives there."""
    n = truth.shape[0]
    roi = np.zeros(truth.shape, bool)
    roi[inner:n - inner, inner:n - inner] = True
    scanned = np.zeros_like(roi)
    scanned[outer:n - outer, outer:n - outer] = True
    big = np.pad(truth, 8, mode="reflect")
    moved = big[8 + 1:8 + 1 + n, 8 - 2:8 - 2 + n]  # truth translated by (-1, 2) px
    noise = 0.01 * rng.standard_normal(truth.shape)
    rec = np.where(scanned, scale * moved, 1.0) * np.exp(0.4j) + noise
    expected = np.sqrt(np.sum(noise[roi] ** 2) / np.sum(np.abs(scale * truth[roi]) ** 2))
    return rec, roi, expected


def test_registers_a_reconstruction_that_is_flat_outside_the_scan(rng):
    """A reconstruction is the object only where it was scanned (here flat 1 elsewhere); on
    an object with a large constant part and repeated features (coins), the plain cross-
    correlation's peak is a broad plateau shaped by the masks, some 30 px off."""
    amp = data.coins()[::2, ::2][:128, :128].astype(np.float64) / 255.0
    truth = (0.5 + 0.5 * amp) * np.exp(0.5j * amp)
    rec, roi, expected = _scanned_copy(truth, inner=40, outer=32, rng=rng)
    assert ptycho.object_error(rec, truth, roi) == pytest.approx(expected, rel=0.1)


def test_registers_a_reconstruction_scaled_against_its_unscanned_part(rng):
    """Object and probe trade a scale factor, so a reconstruction's object may be three times
    weaker than the truth inside the scan while its unscanned part keeps the start's value 1.
    The whole cross-correlation then peaks where the compared region straddles that flat part's
    edge (the truth has large-scale structure), far from the true shift (a 3-mode low-dose
    reconstruction gave 0.84 for an error of 0.18 so)."""
    cam = data.camera()[::2, ::2].astype(np.float64) / 255.0
    ast = data.astronaut()[::2, ::2] @ [0.2125, 0.7154, 0.0721] / 255.0
    truth = (0.6 + 0.4 * cam) * np.exp(1j * np.pi * (ast - 0.5))  # 256 x 256
    rec, roi, expected = _scanned_copy(truth, inner=80, outer=64, rng=rng, scale=0.3)
    assert ptycho.object_error(rec, truth, roi) == pytest.approx(expected, rel=0.1)


def test_shift_and_ramp_are_fitted_together_on_a_small_region(rng):
    """Over a small region (a 3 x 3 scan) a sub-pixel shift and a phase ramp of a smooth object
    stand in for each other: with the ramp found once, at the first shift, an exact
    translation scored 0.048."""
    from scipy.ndimage import fourier_shift

    f = np.fft.fftfreq(128)
    blur = np.exp(-0.5 * (f[:, None] ** 2 + f[None, :] ** 2) * (2 * np.pi * 3) ** 2)

    def smooth():
        field = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal((128, 128))) * blur))
        return field / np.abs(field).max()

    truth = (0.8 + 0.2 * smooth()) * np.exp(2j * smooth())  # smooth and periodic
    moved = np.fft.ifft2(fourier_shift(np.fft.fft2(truth), (1.5, 2.5)))  # exact translation
    roi = ptycho.lit_region(ptycho.make_probe(32, diameter_px=19),
                            ptycho.raster_positions(3, 8), truth.shape)
    assert ptycho.object_error(moved, truth, roi) < 0.01


def test_measures_real_differences(truth, roi, rng):
    noise = 0.03 * (rng.standard_normal(truth.shape) + 1j * rng.standard_normal(truth.shape))
    expected = np.sqrt(np.sum(np.abs(noise[roi]) ** 2) / np.sum(np.abs(truth[roi]) ** 2))
    assert ptycho.object_error(truth + noise, truth, roi) == pytest.approx(expected, rel=0.05)
    blurred = (truth + np.roll(truth, 1, 0) + np.roll(truth, 1, 1) + np.roll(truth, (1, 1), (0, 1))) / 4
    assert ptycho.object_error(blurred, truth, roi) > 0.1


def test_different_shapes_compare_the_common_centre(truth, roi):
    padded = np.pad(truth, ((10, 10), (6, 6)), constant_values=1.0)
    assert ptycho.object_error(padded, truth, roi) < 1e-6
    assert ptycho.object_error(truth[10:-10, 6:-6], padded) < 1e-6


def test_lit_region():
    probe = np.zeros((8, 8), complex)
    probe[2:6, 2:6] = 1.0
    mask = ptycho.lit_region(probe, [[0.0, 0.0], [0.0, 2.0]], (20, 20))
    assert mask.dtype == bool and mask.shape == (20, 20)
    # windows start at 10 - 4 = 6 (and 8 along x): lit rows 8-11, columns 8-13, twice in 10-11
    assert np.count_nonzero(mask) == 4 * 6
    assert mask[8:12, 8:14].all()
    only_max = ptycho.lit_region(probe, [[0.0, 0.0], [0.0, 2.0]], (20, 20), fraction=1.0)
    assert np.count_nonzero(only_max) == 4 * 2


def test_errors(truth, roi):
    with pytest.raises(ValueError, match="roi has shape"):
        ptycho.object_error(truth, truth, roi[:-1])
    with pytest.raises(ValueError, match="roi selects no pixel"):
        ptycho.object_error(truth, truth, np.zeros_like(roi))
    with pytest.raises(ValueError, match="reconstructed holds NaN"):
        ptycho.object_error(np.full_like(truth, np.nan), truth)
    with pytest.raises(ValueError, match="fraction"):
        ptycho.lit_region(np.ones((4, 4)), [[0.0, 0.0]], (8, 8), fraction=0)

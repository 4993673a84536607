"""Sub-pixel registration (torchscope.backend.register_subpixel) against scikit-image and truth."""

import numpy as np
import pytest
import torch
from skimage import data
from skimage.registration import phase_cross_correlation

from torchscope.backend import register_cross_power, register_spectra, register_subpixel
from torchscope.backend._fft import fourier_shift


def _shifted_pairs(rng, count, size=48, complex_=False):
    """Crops of a natural image and exact (periodic, band-limited) sub-pixel translations."""
    image = data.camera().astype(np.float64) / 255.0
    refs, movs, shifts = [], [], []
    for _ in range(count):
        y, x = rng.integers(0, image.shape[0] - size, 2)
        ref = image[y:y + size, x:x + size]
        if complex_:
            ref = ref * np.exp(1j * np.pi * image[x:x + size, y:y + size])
        shift = rng.uniform(-4, 4, 2)
        mov = fourier_shift(torch.from_numpy(ref), torch.from_numpy(-shift)).numpy()
        refs.append(ref)
        movs.append(mov if complex_ else mov.real)
        shifts.append(shift)
    return np.array(refs), np.array(movs), np.array(shifts)


@pytest.mark.parametrize("normalization", ["phase", None])
@pytest.mark.parametrize("upsample", [1, 10, 100])
def test_matches_scikit_image(rng, device, upsample, normalization):
    refs, movs, _ = _shifted_pairs(rng, 12)
    ours = register_subpixel(refs, movs, upsample=upsample, normalization=normalization, device=device)
    theirs = np.array([
        phase_cross_correlation(a, b, upsample_factor=upsample, normalization=normalization)[0]
        for a, b in zip(refs, movs)
    ])
    assert ours.shape == (12, 2) and ours.dtype == np.float64
    np.testing.assert_allclose(ours, theirs, atol=1.0 / upsample + 1e-9)


def test_recovers_known_subpixel_shifts_of_complex_images(rng, device):
    refs, movs, shifts = _shifted_pairs(rng, 8, complex_=True)
    found = register_subpixel(refs, movs, upsample=100, device=device)
    # shifting the moving image by the result registers it: the result is the applied shift
    np.testing.assert_allclose(found, shifts, atol=0.011)


def test_batch_axes_and_broadcasting(rng):
    refs, movs, _ = _shifted_pairs(rng, 6)
    flat = register_subpixel(refs, movs, upsample=20)
    nested = register_subpixel(refs.reshape(2, 3, 48, 48), movs.reshape(2, 3, 48, 48), upsample=20)
    assert nested.shape == (2, 3, 2)
    np.testing.assert_array_equal(nested.reshape(6, 2), flat)
    one = register_subpixel(refs[0], movs, upsample=20)  # one reference against many
    np.testing.assert_array_equal(one[0], flat[0])
    assert register_subpixel(refs[0], movs[0], upsample=20).shape == (2,)


def test_fourier_space_input_equals_real_space(rng):
    refs, movs, _ = _shifted_pairs(rng, 4)
    real = register_subpixel(refs, movs, upsample=50)
    fourier = register_subpixel(np.fft.fft2(refs), np.fft.fft2(movs), upsample=50, space="fourier")
    np.testing.assert_allclose(real, fourier, atol=1e-9)


def test_two_stage_search_and_start_agree_with_one_stage(rng):
    refs, movs, _ = _shifted_pairs(rng, 10)
    a = torch.fft.fft2(torch.from_numpy(refs))
    b = torch.fft.fft2(torch.from_numpy(movs))
    one = register_spectra(a, b, upsample=100, normalization=None)
    two = register_spectra(a, b, upsample=100, normalization=None, coarse_upsample=10)
    assert torch.allclose(one, two, atol=0.0101)
    # small shifts: searching around zero instead of the whole-pixel peak gives the same
    refs, _, _ = _shifted_pairs(rng, 10)
    small = fourier_shift(torch.from_numpy(refs), torch.full((10, 2), 0.3, dtype=torch.float64)).real
    a, b = torch.fft.fft2(small), torch.fft.fft2(torch.from_numpy(refs))
    around = register_spectra(a, b, upsample=100, normalization=None, start=torch.zeros(10, 2))
    full = register_spectra(a, b, upsample=100, normalization=None)
    assert torch.allclose(around, full, atol=1e-6)
    zero = register_spectra(a, b, upsample=100, normalization=None, start="zero")
    assert torch.allclose(zero, full, atol=1e-6)
    # parabolic interpolation of the peak: a continuous estimate, finer than the grid
    coarse = register_spectra(a, b, upsample=10, normalization=None, start="zero", interpolate=True)
    assert torch.allclose(coarse, torch.full_like(coarse, 0.3), atol=0.01)
    assert torch.allclose(full, torch.full_like(full, 0.3), atol=0.011)


@pytest.mark.parametrize("normalization", ["phase", None])
def test_cross_power_spectra_give_the_known_shifts_and_stay_unchanged(rng, normalization):
    # the caller forms ref * conj(mov) itself (the ptychography engine does so in place)
    refs, movs, shifts = _shifted_pairs(rng, 8, complex_=True)  # exact translations
    a = torch.fft.fft2(torch.from_numpy(refs))
    b = torch.fft.fft2(torch.from_numpy(movs))
    product = a * b.conj()
    kept = product.clone()
    found = register_cross_power(product, upsample=100, normalization=normalization)
    np.testing.assert_allclose(found.numpy(), shifts, atol=0.011)
    assert torch.equal(product, kept)
    # start="zero" with interpolation, as the engine calls it, on shifts below a pixel
    small = fourier_shift(torch.from_numpy(refs), torch.full((8, 2), -0.2, dtype=torch.float64))
    product = torch.fft.fft2(small) * torch.fft.fft2(torch.from_numpy(refs)).conj()
    found = register_cross_power(product, upsample=4, normalization=normalization, start="zero",
                                 interpolate=True)
    np.testing.assert_allclose(found.numpy(), -0.2, atol=0.05)


def test_clear_errors():
    a = np.zeros((8, 8))
    with pytest.raises(ValueError, match="same image shape"):
        register_subpixel(a, np.zeros((8, 9)))
    with pytest.raises(ValueError, match="upsample"):
        register_subpixel(a, a, upsample=0)
    with pytest.raises(ValueError, match="upsample"):
        register_subpixel(a, a, upsample=2.5)
    with pytest.raises(ValueError, match="normalization"):
        register_subpixel(a, a, normalization="amplitude")
    with pytest.raises(ValueError, match="space"):
        register_subpixel(a, a, space="k")
    b = a.copy()
    b[2, 2] = np.nan
    with pytest.raises(ValueError, match="moving holds NaN"):
        register_subpixel(a, b)
    with pytest.raises(ValueError, match="batch"):
        register_subpixel(np.zeros((2, 8, 8)), np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match=r"\(\.\.\., ny, nx\)"):
        register_subpixel(np.zeros(8), np.zeros(8))


def test_a_single_row_registers_along_its_length_only():
    signal = np.exp(-0.5 * ((np.arange(64) - 30.0) / 3.0) ** 2)
    moved = np.exp(-0.5 * ((np.arange(64) - 32.5) / 3.0) ** 2)
    found = register_subpixel(signal[None, None], moved[None, None], upsample=20)
    assert found.shape == (1, 2)
    assert found[0, 0] == 0.0
    assert found[0, 1] == pytest.approx(-2.5, abs=0.05)

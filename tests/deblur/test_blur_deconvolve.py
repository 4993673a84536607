"""blur (the forward model) against scipy, and non-blind deconvolution of a known blur."""

import numpy as np
import pytest
from scipy import ndimage
from skimage import data

from torchscope.deblur import blur, deconvolve, motion_kernel


@pytest.mark.parametrize("mode, nd_mode", [("reflect", "mirror"), ("nearest", "nearest"),
                                           ("wrap", "wrap"), ("same", "constant")])
def test_blur_is_convolution(device, rng, mode, nd_mode):
    image = rng.random((40, 50))
    k = motion_kernel(11, rng=0)
    expected = ndimage.convolve(image, k, mode=nd_mode)
    got = blur(image, k, mode=mode, device=device)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, atol=1e-5 if device == "mps" else 1e-12)


def test_blur_valid_colour_noise(rng):
    image = rng.random((30, 34, 3)).astype(np.float32)
    k = motion_kernel(7, rng=1)
    valid = blur(image[..., 0], k, mode="valid", device="cpu")
    assert valid.shape == (24, 28) and valid.dtype == np.float32
    full = ndimage.convolve(image[..., 0].astype(np.float64), k)
    np.testing.assert_allclose(valid, full[3:-3, 3:-3], atol=1e-5)
    colour = blur(image, k, device="cpu")
    for c in range(3):
        np.testing.assert_allclose(colour[..., c], blur(image[..., c], k, device="cpu"),
                                   atol=1e-6)
    flat = np.full((200, 200), 0.5)
    noisy = blur(flat, k, noise_sigma=0.02, rng=7, device="cpu")
    assert noisy.std() == pytest.approx(0.02, rel=0.05)
    np.testing.assert_array_equal(noisy, blur(flat, k, noise_sigma=0.02, rng=7, device="cpu"))


def test_blur_errors(rng):
    image = rng.random((20, 20))
    with pytest.raises(ValueError, match="mode"):
        blur(image, np.ones((3, 3)) / 9, mode="full")
    with pytest.raises(ValueError, match="kernel sums to"):
        blur(image, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="noise_sigma"):
        blur(image, np.ones((3, 3)) / 9, noise_sigma=-1)
    with pytest.raises(ValueError, match="colour"):
        blur(rng.random((5, 20, 20)), np.ones((3, 3)) / 9)
    with pytest.raises(TypeError, match="image"):
        blur(np.array([["a"]]), np.ones((3, 3)))


def _psnr(x, ref, border=20):
    err = (np.clip(x, 0, 1) - ref)[border:-border, border:-border]
    return 10 * np.log10(1.0 / np.mean(err ** 2))


@pytest.mark.parametrize("method, gain", [("hyper_laplacian", 6.0), ("wiener", 3.0),
                                          ("richardson_lucy", 4.0)])
def test_deconvolution_of_a_known_blur(device, method, gain):
    sharp = data.camera()[120:376, 120:376] / 255.0
    k = motion_kernel(15, rng=5)
    blurred = blur(sharp, k, noise_sigma=0.005, rng=0)
    restored = deconvolve(blurred, k, method=method, device=device)
    assert restored.shape == sharp.shape and restored.dtype == np.float64
    # a clear gain in PSNR over the blurred image (dB)
    assert _psnr(restored, sharp) > _psnr(blurred, sharp) + gain


def test_deconvolve_colour_uint8_and_units():
    sharp = data.astronaut()[100:228, 100:228]
    k = motion_kernel(9, rng=2)
    blurred = np.stack([blur(sharp[..., c], k) for c in range(3)], axis=-1)
    blurred8 = np.clip(np.rint(blurred), 0, 255).astype(np.uint8)
    restored = deconvolve(blurred8, k, method="wiener", device="cpu")
    assert restored.shape == sharp.shape and restored.dtype == np.float32
    # back in the input's units (0-255), closer to the sharp image than the blurred one
    err_r = np.abs(restored - sharp)[15:-15, 15:-15].mean()
    err_b = np.abs(blurred8.astype(float) - sharp)[15:-15, 15:-15].mean()
    assert 1 < restored.mean() / 100 < 2 and err_r < 0.8 * err_b


def test_deconvolve_errors(rng):
    image = rng.random((30, 30))
    k = np.ones((3, 3)) / 9
    with pytest.raises(ValueError, match="method"):
        deconvolve(image, k, method="tv")
    with pytest.raises(ValueError, match="balance"):
        deconvolve(image, k, method="richardson_lucy", balance=0.1)
    with pytest.raises(ValueError, match="iterations"):
        deconvolve(image, k, method="wiener", iterations=3)
    with pytest.raises(ValueError, match="balance"):
        deconvolve(image, k, balance=0)
    with pytest.raises(ValueError, match="larger than the image"):
        deconvolve(image, np.ones((31, 3)))

"""Results do not depend on how bright an image is stored: dim images, 12-bit data in uint16,
signed integers."""

import numpy as np
import pytest
from skimage import data

from torchscope import deblur
from torchscope.deblur._checks import MIN_WHITE, unit_range, working_range


@pytest.fixture(scope="module")
def blurred():
    kernel = deblur.motion_kernel(15, rng=1)
    image = deblur.blur(data.camera() / 255.0, kernel, noise_sigma=0.01, rng=0)
    return image, kernel


def test_working_range_scales_only_dim_images(rng):
    image = rng.random((64, 64))
    for normal in (image, 0.4 * image + 0.3):  # white near 1; a blurred page: 0.3 to 0.7
        scaled, offset, scale = working_range(normal)
        np.testing.assert_array_equal(scaled, normal)  # as the authors' weights expect
        assert (offset, scale) == (0.0, 1.0)
    for dim in (0.4 * image, 0.05 * image + 0.01, (image * 4095).astype(np.uint16)):
        scaled, offset, scale = working_range(dim)
        np.testing.assert_allclose(scaled * scale + offset, dim, rtol=1e-12, atol=1e-9)
        assert np.percentile(scaled, 99.9) == pytest.approx(1.0)  # its white at 1
        assert offset == 0.0  # a gain, not a stretch of the range (blur narrows that)
    assert MIN_WHITE <= 0.5


def test_kernel_estimation_does_not_depend_on_exposure(blurred):
    image, kernel = blurred
    patch = image[100:228, 150:278]
    full = deblur.kernel_similarity(deblur.estimate_kernel(patch, 15), kernel)
    dim = deblur.estimate_kernel(0.1 * patch, 15)
    dimmer = deblur.estimate_kernel(0.02 * patch, 15)
    np.testing.assert_allclose(dim, dimmer, atol=1e-6)
    # before the gain a tenth of the range gave a blob (similarity 0.64) in 0.04 s
    assert deblur.kernel_similarity(dim, kernel) > min(0.8, full - 0.05)
    twelve_bit = (np.clip(patch, 0, 1) * 4095).round().astype(np.uint16)
    assert deblur.kernel_similarity(deblur.estimate_kernel(twelve_bit, 15), kernel) > 0.7


def test_deconvolution_of_twelve_bit_data_keeps_its_quality(blurred):
    _, kernel = blurred
    sharp = data.camera()[:160, :160] / 255.0
    image = deblur.blur(sharp, kernel)
    twelve_bit = (np.clip(image, 0, 1) * 4095).round().astype(np.uint16)
    for method in ("hyper_laplacian", "wiener", "richardson_lucy"):
        as_float = deblur.deconvolve(twelve_bit / 4095.0, kernel, method=method)
        as_ints = deblur.deconvolve(twelve_bit, kernel, method=method) / 4095.0
        inner = np.s_[20:-20, 20:-20]
        err_float = np.sqrt(np.mean((as_float - sharp)[inner] ** 2))
        err_ints = np.sqrt(np.mean((as_ints - sharp)[inner] ** 2))
        assert err_ints < 1.1 * err_float, (method, err_ints, err_float)


def test_signed_integer_images_keep_their_negative_values(blurred):
    image, _ = blurred
    signed = (np.clip(image[:256, :256], 0, 1) * 20000 - 10000).round().astype(np.int16)
    offset, scale = unit_range(signed)[1:]
    assert (offset, offset + scale) == (-32768.0, 32767.0)  # the dtype's range
    result = deblur.deblur(signed, 15, region=(0, 0, 160, 160))
    assert result.image.min() < -5000 and result.image.max() > 5000
    assert np.mean(result.image == 0) < 0.01  # the negative half used to be clipped to 0
    assert abs(result.image.mean() - signed.mean()) < 0.05 * np.ptp(signed)

"""The FFT helpers the deblur module added to torchscope.backend."""

import numpy as np
import pytest
import scipy.signal
import torch

from torchscope.backend import fft_convolve, fft_size, otf2psf, pad_periodic, psf2otf


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("kernel_shape", [(5, 7), (6, 5)])
def test_fft_convolve_matches_scipy(rng, mode, kernel_shape):
    image, kernel = rng.random((2, 23, 31)), rng.random(kernel_shape)
    got = fft_convolve(torch.from_numpy(image), torch.from_numpy(kernel), mode=mode).numpy()
    if mode == "same":  # centred on the kernel's centre pixel (kh // 2, kw // 2)
        full = scipy.signal.fftconvolve(image, kernel[None], mode="full", axes=(-2, -1))
        kh, kw = kernel_shape
        expected = full[:, kh // 2:kh // 2 + 23, kw // 2:kw // 2 + 31]
        if kh % 2 and kw % 2:  # odd sides: scipy's "same" is the same window
            np.testing.assert_allclose(expected, scipy.signal.fftconvolve(
                image, kernel[None], mode="same", axes=(-2, -1)), atol=1e-12)
    else:
        expected = scipy.signal.fftconvolve(image, kernel[None], mode=mode, axes=(-2, -1))
    np.testing.assert_allclose(got, expected, atol=1e-12)
    with pytest.raises(ValueError, match="mode"):
        fft_convolve(torch.from_numpy(image), torch.from_numpy(kernel), mode="mirror")


def test_psf2otf_roundtrip_and_circular_convolution(rng):
    kernel = torch.from_numpy(rng.random((5, 7)))
    otf = psf2otf(kernel, (16, 20))
    assert otf.shape == (16, 11)
    torch.testing.assert_close(otf2psf(otf, (16, 20), (5, 7)), kernel)
    assert otf[0, 0].real.item() == pytest.approx(kernel.sum().item())
    image = torch.from_numpy(rng.random((16, 20)))
    circular = torch.fft.irfft2(torch.fft.rfft2(image) * otf, s=(16, 20))
    torch.testing.assert_close(circular, fft_convolve(image, kernel, mode="wrap"))
    with pytest.raises(ValueError, match="does not fit"):
        psf2otf(kernel, (4, 20))


def test_pad_periodic_is_smooth_across_the_wrap():
    y, x = np.mgrid[0:40, 0:50]
    image = torch.from_numpy(np.sin(y / 7.0) + 0.02 * x)  # no periodic continuation
    padded = pad_periodic(image, (64, 75))
    assert padded.shape == (64, 75)
    torch.testing.assert_close(padded[:40, :50], image)
    # neighbour differences, including across the wrap-around, stay as small as inside
    inside = max(image.diff(dim=0).abs().max(), image.diff(dim=1).abs().max()).item()
    jumps = [torch.roll(padded, -1, dims=d) - padded for d in (0, 1)]
    assert max(j.abs().max().item() for j in jumps) < 2 * inside
    with pytest.raises(ValueError, match="smaller"):
        pad_periodic(image, (30, 75))


def test_fft_size():
    assert [fft_size(n) for n in (1, 7, 11, 13, 97, 282, 1000)] == [1, 8, 12, 15, 100, 288, 1000]

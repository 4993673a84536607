"""fft_convolve against the definition, computed directly (no FFT), for odd and even kernels."""

import numpy as np
import pytest
import torch

from torchscope.backend import fft_convolve, to_numpy, to_tensor


def _direct(image, kernel, extend):
    """``out[i, j] = sum_ab k[a, b] x[i - a + kh // 2, j - b + kw // 2]``, ``x`` continued
    beyond the border by ``extend`` (indices -> indices)."""
    ny, nx = image.shape
    kh, kw = kernel.shape
    out = np.zeros_like(image)
    for i in range(ny):
        for j in range(nx):
            for a in range(kh):
                for b in range(kw):
                    y, x = extend(i - a + kh // 2, ny), extend(j - b + kw // 2, nx)
                    out[i, j] += kernel[a, b] * image[y, x]
    return out


def _reflect(i, n):  # numpy.pad's "reflect": the edge pixel is not repeated
    period = 2 * n - 2
    i = abs(i) % period
    return period - i if i >= n else i


EXTEND = {
    "wrap": lambda i, n: i % n,
    "nearest": lambda i, n: min(max(i, 0), n - 1),
    "reflect": _reflect,
}


@pytest.mark.parametrize("mode", sorted(EXTEND))
@pytest.mark.parametrize("shape", [(3, 3), (2, 2), (4, 3), (2, 5), (1, 4)])
def test_fft_convolve_is_the_definition_for_odd_and_even_kernels(mode, shape):
    """Even sides once came out one pixel off with "reflect" and "nearest" (the padding was
    put on the wrong side of the kernel's centre), so deblur.blur's default disagreed with
    its own deconvolution."""
    rng = np.random.default_rng(sum(shape))
    image, kernel = rng.random((9, 11)), rng.random(shape)
    got = to_numpy(fft_convolve(to_tensor(image), to_tensor(kernel), mode=mode))
    np.testing.assert_allclose(got, _direct(image, kernel, EXTEND[mode]), atol=1e-12)


def test_fft_convolve_batches_over_leading_axes():
    rng = np.random.default_rng(0)
    images, kernel = rng.random((3, 8, 8)), rng.random((2, 4))
    batch = fft_convolve(torch.as_tensor(images), torch.as_tensor(kernel), mode="reflect")
    for image, out in zip(images, batch):
        np.testing.assert_allclose(out.numpy(), _direct(image, kernel, EXTEND["reflect"]),
                                   atol=1e-12)


def test_to_numpy_and_to_tensor_edge_cases():
    # conjugate and negative views, and bfloat16, which numpy lacks, used to raise
    np.testing.assert_array_equal(to_numpy(torch.ones(3, dtype=torch.complex64).conj()),
                                  np.ones(3) - 0j)
    z = torch.tensor([1 + 2j]).conj()
    np.testing.assert_array_equal(to_numpy(z.imag), [-2.0])
    assert to_numpy(torch.ones(2, dtype=torch.bfloat16)).dtype == np.float32
    # a 0-d input stays 0-d (it came back with shape (1,))
    assert to_tensor(np.array(3.0)).shape == () and to_tensor(5).shape == ()


def test_check_rng_refuses_bools_and_negative_seeds():
    from torchscope.backend import check_rng

    with pytest.raises(TypeError, match="rng must be None, a non-negative integer seed"):
        check_rng(True)  # was taken as seed 1
    with pytest.raises(ValueError, match="rng must be a non-negative integer seed, got -1"):
        check_rng(-1)
    a, b = check_rng(np.int64(3)).random(2), check_rng(3).random(2)
    np.testing.assert_array_equal(a, b)

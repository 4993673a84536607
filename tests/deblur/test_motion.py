"""motion_kernel: random camera-shake kernels (Boracchi and Foi trajectories)."""

import numpy as np
import pytest

from torchscope.deblur import motion_kernel


@pytest.mark.parametrize("size", [11, 25, 55])
def test_kernel_properties(size):
    for seed in range(5):
        k = motion_kernel(size, rng=seed)
        assert k.shape == (size, size) and k.dtype == np.float64
        assert (k >= 0).all()
        assert k.sum() == pytest.approx(1.0, abs=1e-12)
        # the trajectory's bounding box is centred and spans 60 to 100 % of size - 3
        rows, cols = np.nonzero(k > 0)
        extent = max(np.ptp(rows), np.ptp(cols))
        assert 0.6 * (size - 3) - 1 <= extent <= size - 1
        assert abs((rows.min() + rows.max()) / 2 - (size - 1) / 2) <= 1
        assert abs((cols.min() + cols.max()) / 2 - (size - 1) / 2) <= 1
        # a camera-shake path, not a dot: more than a handful of pixels carry the weight
        assert np.count_nonzero(k > 0.01 * k.max()) > size // 2


def test_seeded_and_varied():
    np.testing.assert_array_equal(motion_kernel(21, rng=3), motion_kernel(21, rng=3))
    gen = np.random.default_rng(0)
    a, b = motion_kernel(21, rng=gen), motion_kernel(21, rng=gen)
    assert not np.allclose(a, b)


@pytest.mark.parametrize("size, error", [(10, ValueError), (1, ValueError), (257, ValueError),
                                         (11.0, TypeError), (True, TypeError)])
def test_bad_size(size, error):
    with pytest.raises(error, match="size"):
        motion_kernel(size)

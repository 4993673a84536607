"""Every filter on a dask array: lazy, and identical to the in-memory result.

Chunks are chosen smaller than the kernels' reach and axes shorter than it, so blocks must borrow
from neighbours (and from neighbours' neighbours) and edge blocks must pad like the whole array.
"""

import dask.array as da
import numpy as np
import pytest

import torchscope.filters as F

SPACING = (2.0, 0.5, 0.75)

CALLS = {
    "gaussian": lambda f, x: f(x, 1.5, spacing=SPACING),
    "difference_of_gaussians": lambda f, x: f(x, 1.0, 2.0, spacing=SPACING),
    "laplace": lambda f, x: f(x),
    "laplacian_of_gaussian": lambda f, x: f(x, 1.5, spacing=SPACING),
    "sobel": lambda f, x: f(x),
    "mean": lambda f, x: f(x, 1.5, spacing=SPACING),
    "median": lambda f, x: f(x, 1.5, spacing=SPACING),
    "minimum": lambda f, x: f(x, 1.5, spacing=SPACING),
    "maximum": lambda f, x: f(x, 1.5, spacing=SPACING),
    "variance": lambda f, x: f(x, 1.5, spacing=SPACING),
    "std": lambda f, x: f(x, 1.5, spacing=SPACING),
    "erosion": lambda f, x: f(x, 1.5, spacing=SPACING),
    "dilation": lambda f, x: f(x, 1.5, spacing=SPACING),
    "opening": lambda f, x: f(x, 1.5, spacing=SPACING),
    "closing": lambda f, x: f(x, 1.5, spacing=SPACING),
    "white_tophat": lambda f, x: f(x, 1.5, spacing=SPACING),
    "black_tophat": lambda f, x: f(x, 1.5, spacing=SPACING),
    "threshold": lambda f, x: f(x, "otsu"),
}


@pytest.fixture
def stack(rng):
    # axis 0 is shorter than a gaussian's reach at sigma 1.5 px... and chunked in 2s
    return rng.random((5, 23, 19)).astype(np.float32)


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("chunks", [(2, 6, 5), (5, 4, 19), (1, 23, 7)])
def test_dask_result_equals_numpy_result(name, chunks, stack):
    function = getattr(F, name)
    lazy = CALLS[name](function, da.from_array(stack, chunks=chunks))
    assert isinstance(lazy, da.Array), "dask in must give dask out"
    eager = CALLS[name](function, stack)
    result = lazy.compute()
    assert result.dtype == eager.dtype
    assert result.shape == eager.shape
    # the same arithmetic on the same neighbourhoods: equal to float32 rounding at most
    np.testing.assert_allclose(result, eager, rtol=1e-6, atol=1e-6)


def test_dask_stays_lazy_until_computed(stack):
    calls = []

    def counted(block):
        if block.size:  # dask probes functions with empty arrays to infer the output type
            calls.append(block.shape)
        return block

    lazy = da.from_array(stack, chunks=(2, 6, 5)).map_blocks(counted, dtype=stack.dtype)
    F.gaussian(lazy, 1.0)
    F.erosion(lazy, 1.0)
    assert calls == []


def test_nan_in_a_dask_block_raises_on_compute(stack):
    bad = stack.copy()
    bad[4, 20, 3] = np.nan
    lazy = F.gaussian(da.from_array(bad, chunks=(2, 6, 5)), 1.0)
    with pytest.raises(ValueError, match="NaN"):
        lazy.compute()

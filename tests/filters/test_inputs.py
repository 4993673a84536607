"""Inputs every filter must refuse with a clear error rather than a wrong result."""

import numpy as np
import pytest

import torchscope.filters as F

ALL = {
    "gaussian": lambda x: F.gaussian(x, 1.0),
    "median": lambda x: F.median(x, 1),
    "maximum": lambda x: F.maximum(x, 1),
    "variance": lambda x: F.variance(x, 1),
    "erosion": lambda x: F.erosion(x, 1),
    "sobel": lambda x: F.sobel(x),
    "laplacian_of_gaussian": lambda x: F.laplacian_of_gaussian(x, 1.0),
}


@pytest.mark.parametrize("name", sorted(ALL))
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_values_are_refused(name, bad):
    image = np.ones((16, 16), np.float32)
    image[5, 7] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        ALL[name](image)


def test_uint64_beyond_int64_is_refused():
    image = np.array([[1, 2**63 + 5, 3]], np.uint64)
    with pytest.raises(ValueError, match="uint64"):
        F.maximum(image, 1)


def test_uint64_within_int64_is_filtered_exactly():
    image = np.array([[1, 2**40 + 5, 3]], np.uint64)
    np.testing.assert_array_equal(F.maximum(image, 1), [[2**40 + 5] * 3])

"""compute_blocks: block-by-block computation of a lazy dask array, with progress."""

import dask.array as da
import numpy as np
import pytest

from torchscope.backend import compute_blocks


def test_blocks_fill_the_whole_result_in_order(rng):
    x = rng.random((10, 13, 7))
    lazy = da.from_array(x, chunks=(4, 5, 7)) * 2 + 1
    gen = compute_blocks(lazy)
    progress = []
    while True:
        try:
            progress.append(next(gen))
        except StopIteration as stop:
            result = stop.value
            break
    total = 3 * 3 * 1
    assert progress == [(i, total) for i in range(1, total + 1)]
    np.testing.assert_array_equal(result, x * 2 + 1)


def test_stopping_early_computes_only_the_blocks_asked_for(rng):
    x = rng.random((8, 8))
    computed = []

    def mark(block, block_info=None):
        computed.append(block_info[0]["chunk-location"])
        return block

    lazy = da.from_array(x, chunks=4).map_blocks(mark, dtype=x.dtype)
    out = np.zeros_like(x)
    gen = compute_blocks(lazy, out=out)
    assert next(gen) == (1, 4)
    gen.close()
    assert computed == [(0, 0)]
    np.testing.assert_array_equal(out[:4, :4], x[:4, :4])
    assert not out[4:].any()


def test_out_shape_is_checked():
    with pytest.raises(ValueError, match="out has shape"):
        next(compute_blocks(da.zeros((4, 4), chunks=2), out=np.zeros((3, 4))))

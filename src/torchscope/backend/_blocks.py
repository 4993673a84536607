"""Compute a lazy dask array block by block, so that callers can show progress and stop."""

import numpy as np


def compute_blocks(lazy, out=None):
    """Compute a dask array one block at a time, as a generator.

    Yields ``(blocks_done, blocks_total)`` after each block, so that a GUI can move a progress
    bar and stop between blocks (close the generator, or stop iterating). When it is exhausted,
    the generator returns the filled numpy array (``StopIteration.value``; napari's
    ``thread_worker`` passes it to ``returned``).

    Parameters
    ----------
    lazy : dask.array.Array
        The array to compute, of any shape and dtype.
    out : numpy.ndarray, optional
        Where to write the result (shape and dtype of ``lazy``); a new array by default.

    Returns
    -------
    numpy.ndarray
        The filled ``out`` (or the new array), of the shape of ``lazy``: the generator's return
        value, once every block is done.

    Yields
    ------
    blocks_done, blocks_total : int
        The number of blocks computed so far (1 to ``blocks_total``) and the number of blocks of
        ``lazy`` in all.

    Raises
    ------
    ValueError
        If ``out`` does not have the shape of ``lazy`` (on the first ``next``, as for any
        generator).
    """
    if out is None:
        out = np.empty(lazy.shape, dtype=lazy.dtype)
    elif out.shape != lazy.shape:
        raise ValueError(f"out has shape {out.shape}, the result has shape {lazy.shape}.")
    starts = [np.concatenate([[0], np.cumsum(c)]) for c in lazy.chunks]
    total = int(np.prod(lazy.numblocks))
    for done, index in enumerate(np.ndindex(*lazy.numblocks), start=1):
        region = tuple(slice(s[i], s[i + 1]) for s, i in zip(starts, index))
        out[region] = lazy.blocks[index].compute()
        yield done, total
    return out

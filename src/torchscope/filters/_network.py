"""Rank and sum filters as networks of elementwise operations on shifted copies of an image.

The minimum, maximum, median or sum over a footprint is a combination, by elementwise
``torch.minimum``/``torch.maximum``/``torch.add``, of copies of the (padded) image shifted by the
footprint's offsets. A :class:`Network` records such a combination as a graph whose nodes are
identified *up to translation*: ``min(x[i], x[i + 1])`` is one node whether it is needed at
offset 0 or 3, computed once (per tile of the image) and read at several offsets. Sharing then
comes for free: rows of a disc with the same width share their running minimum, identical slices
of a ball share their 2D minimum, rows of a median footprint share their sorted runs.

Two builders make networks, and one function runs them:

- :func:`reduce_footprint`: min, max or sum over a convex, symmetric footprint, decomposed
  recursively into slices along axis 0, down to runs along the last axis; a run of width ``n``
  costs ``log2(n)`` operations (min/max by doubling with a final overlapping step, sums by the
  binary decomposition of ``n``).
- :func:`median_footprint`: the median of the footprint's values, as a selection network: each row
  (run along the last axis) is sorted by Batcher's odd-even merge sort, the sorted rows are merged,
  smallest first, and after each merge the values that provably lie below or above the median
  are replaced by -inf/+inf, which removes the comparators they would need.
- :func:`evaluate` runs a network on an image tile by tile (each tile padded on its own), so
  that the intermediate results stay small, writing each node into a reused buffer.

No operation depends on the data, so the same network runs on every device and dtype (bool
included); there is no per-element Python and no host synchronisation.
"""

import functools
import heapq
import itertools

import numpy as np

#: Operations: elementwise ``torch.minimum``, ``torch.maximum``, ``torch.add``.
MIN, MAX, ADD = "min", "max", "add"

# Markers for values known to be +inf / -inf in a selection network (see median_footprint).
_POS_INF, _NEG_INF = "+inf", "-inf"

#: Bytes per buffer (an intermediate result for one tile) in :func:`evaluate`, on the CPU and on
#: other devices, and the most all buffers together should take where a tile can be made small
#: enough.
TILE_BYTES, GPU_TILE_BYTES = 4 << 20, 256 << 20
MEMORY_BYTES, GPU_MEMORY_BYTES = 256 << 20, 2 << 30


class Network:
    """A graph of elementwise operations on shifted copies of one input array.

    A *reference* to a value is ``(node, offset)``: the array ``node`` read at ``offset`` (a tuple
    of pixel offsets, one per axis). Node 0 is the input; node ``i > 0`` is ``steps[i - 1]``,
    ``(op, a, b)`` with ``a``, ``b`` references whose offsets are relative to the node's own
    origin. Two combinations that differ only by a translation are the same node.

    Parameters
    ----------
    ndim : int
        Number of axes of the arrays.
    """

    def __init__(self, ndim):
        self.ndim = ndim
        self.steps = []
        self._ids = {}

    def input(self, offset):
        """A reference to the input at ``offset``."""
        return (0, tuple(int(o) for o in offset))

    def combine(self, op, a, b):
        """A reference to ``op(a, b)`` (``op`` one of ``"min"``, ``"max"``, ``"add"``)."""
        origin = tuple(min(i, j) for i, j in zip(a[1], b[1]))
        a = (a[0], tuple(i - o for i, o in zip(a[1], origin)))
        b = (b[0], tuple(i - o for i, o in zip(b[1], origin)))
        key = (op, *sorted((a, b)))  # every op is commutative
        node = self._ids.get(key)
        if node is None:
            self.steps.append(key)
            node = self._ids[key] = len(self.steps)
        return (node, origin)

    def fold(self, op, refs):
        """``op`` over a non-empty sequence of references, as a chain."""
        return functools.reduce(lambda a, b: self.combine(op, a, b), refs)


def shift(ref, axis, by):
    """The reference ``ref`` moved by ``by`` pixels along ``axis``."""
    node, offset = ref
    offset = list(offset)
    offset[axis] += by
    return (node, tuple(offset))


# --------------------------------------------------------------------------- min, max, sum
def reduce_run(net, op, start, length):
    """``op`` over ``length`` consecutive input offsets along the last axis, from ``start``."""
    last = net.ndim - 1
    block, size = net.input(start), 1  # block = op over [start, start + size)
    if op == ADD:
        # binary decomposition of the length: blocks of 1, 2, 4, ... never overlap
        blocks = {1: block}
        while 2 * size <= length:
            block = net.combine(op, block, shift(block, last, size))
            size *= 2
            blocks[size] = block
        total, covered = None, 0
        for size in sorted(blocks, reverse=True):
            if length - covered >= size:
                part = shift(blocks[size], last, covered)
                total = part if total is None else net.combine(op, total, part)
                covered += size
        return total
    # min and max are idempotent: doubling, then one overlapping step
    while 2 * size <= length:
        block = net.combine(op, block, shift(block, last, size))
        size *= 2
    if size < length:
        block = net.combine(op, block, shift(block, last, length - size))
    return block


def _centre_out(n):
    """Indices ``0..n-1`` from the centre outwards (nested footprints share prefixes)."""
    c = n // 2
    order = [c]
    for d in range(1, c + 1):
        order += [c - d, c + d]
    return [i for i in order if 0 <= i < n]


def reduce_footprint(net, fp, op, index=()):
    """A reference to ``op`` over the offsets of a convex, symmetric footprint.

    Parameters
    ----------
    net : Network
    fp : numpy.ndarray of bool
        The footprint, or (in the recursion) its slice at leading indices ``index``. Every run
        along the last axis must be contiguous.
    op : {"min", "max", "add"}
    index : tuple of int
        Indices of ``fp`` along the leading axes of the full footprint.

    Returns
    -------
    tuple
        The reference; offsets are footprint indices, so for an input padded by the footprint's
        half-size the result at offset ``index`` is centred.
    """
    if fp.ndim == 1:
        on = np.flatnonzero(fp)
        if on.size != on[-1] - on[0] + 1:
            raise ValueError("footprint rows must be contiguous runs (a convex footprint).")
        return reduce_run(net, op, index + (int(on[0]),), int(on.size))
    parts = [
        reduce_footprint(net, fp[k], op, index + (k,))
        for k in _centre_out(fp.shape[0])
        if fp[k].any()
    ]
    return net.fold(op, parts)


# --------------------------------------------------------------------------- median
def _compare(net, wires, i, j):
    """Comparator on wires ``i < j``: the smaller value to ``i``, the larger to ``j``."""
    a, b = wires[i], wires[j]
    if a == _NEG_INF or b == _POS_INF:
        return
    if a == _POS_INF or b == _NEG_INF:
        wires[i], wires[j] = b, a
        return
    wires[i], wires[j] = net.combine(MIN, a, b), net.combine(MAX, a, b)


def _odd_even_merge(net, wires, lo, n, r):
    """Batcher's odd-even merge of ``wires[lo:lo+n]`` (two sorted halves, ``n`` a power of 2)."""
    step = 2 * r
    if step < n:
        _odd_even_merge(net, wires, lo, n, step)
        _odd_even_merge(net, wires, lo + r, n, step)
        for i in range(lo + r, lo + n - r, step):
            _compare(net, wires, i, i + r)
    else:
        _compare(net, wires, lo, lo + r)


def _merge(net, a, b, rank, total):
    """Merge two sorted lists of wires, then drop what cannot be the value of ``rank``.

    The lists are padded with +inf to a common power-of-two length (comparators with a known
    infinity cost nothing). In the merged list ``c`` of length ``n``, ``c[i]`` has ``i`` values
    of the whole set at or below it and ``n - 1 - i`` at or above it: for ``i > rank`` it is at
    or above the value of rank ``rank`` among ``total``, and for ``i < n - total + rank`` at or
    below it, so replacing it by +inf (-inf) keeps that value. Those wires are never compared
    again.
    """
    size = 1
    while size < max(len(a), len(b)):
        size *= 2
    wires = a + [_POS_INF] * (size - len(a)) + b + [_POS_INF] * (size - len(b))
    _odd_even_merge(net, wires, 0, 2 * size, 1)
    n = len(a) + len(b)
    below = n - total + rank
    return [_NEG_INF if i < below else _POS_INF if i > rank else w for i, w in enumerate(wires[:n])]


def _sort(net, wires, rank, total):
    """Batcher's odd-even merge sort of a list of wires (see :func:`_merge`)."""
    if len(wires) <= 1:
        return list(wires)
    half = len(wires) // 2
    return _merge(
        net,
        _sort(net, wires[:half], rank, total),
        _sort(net, wires[half:], rank, total),
        rank,
        total,
    )


def median_footprint(net, fp):
    """A reference to the median over the offsets of a footprint with an odd number of them.

    Each row of the footprint (offsets that differ only along the last axis) is sorted; rows of
    equal width are the same node, so they are sorted once. The sorted rows are then merged,
    the two shortest first, keeping only what can still be the median.
    """
    offsets = np.argwhere(fp)
    total = len(offsets)
    rank = total // 2
    rows = {}
    for offset in offsets:
        rows.setdefault(tuple(offset[:-1]), []).append(net.input(offset))
    heap = [(len(r), i, _sort(net, r, rank, total)) for i, r in enumerate(rows.values())]
    heapq.heapify(heap)
    counter = len(heap)
    while len(heap) > 1:
        _, _, a = heapq.heappop(heap)
        _, _, b = heapq.heappop(heap)
        merged = _merge(net, a, b, rank, total)
        heapq.heappush(heap, (len(merged), counter, merged))
        counter += 1
    return heap[0][2][rank]


# --------------------------------------------------------------------------- evaluation
def _schedule(net, root):
    """The steps ``root`` needs, in order, with a buffer slot for each (reused after last use)."""
    needed, stack = set(), [root[0]]
    while stack:
        node = stack.pop()
        if node and node not in needed:
            needed.add(node)
            _, a, b = net.steps[node - 1]
            stack += [a[0], b[0]]
    order = sorted(needed)  # children are made before their parents
    last_use = {}
    for node in order:
        _, a, b = net.steps[node - 1]
        last_use[a[0]] = last_use[b[0]] = node
    slots, free, count = {}, [], 0
    for node in order:
        # take the output slot before freeing the inputs: an output must not alias a shifted input
        if free:
            slots[node] = free.pop()
        else:
            slots[node], count = count, count + 1
        _, a, b = net.steps[node - 1]
        for child in {a[0], b[0]}:
            if child and last_use[child] == node:
                free.append(slots[child])
    return order, slots, count


def _tile_shape(shape, halo, itemsize, count, device_type):
    """Shape of the output tiles :func:`evaluate` works on.

    Each of the ``count`` buffers (one tile plus its halo) holds about ``TILE_BYTES`` on the CPU
    (``GPU_TILE_BYTES`` elsewhere), and at least twice the halo's rows, so that recomputing the
    halo costs at most as much as the tile; all of them together at most ``MEMORY_BYTES``
    (``GPU_MEMORY_BYTES``) where tiles can be made small enough. The leading axes are split, the
    first one first, never the last.
    """
    cpu = device_type == "cpu"
    target = TILE_BYTES if cpu else GPU_TILE_BYTES
    cap = (MEMORY_BYTES if cpu else GPU_MEMORY_BYTES) // count
    tile = list(shape)
    for axis in range(len(shape) - 1):
        # bytes per unit of length along this axis: the rest of the tile, with its halo
        rest = [t + h for a, (t, h) in enumerate(zip(tile, halo)) if a != axis]
        unit = itemsize * int(np.prod(rest))
        fit = cap // unit
        rows = max(min(target // unit, fit), min(2 * halo[axis], fit)) - halo[axis]
        if rows >= 1:
            parts = -(-shape[axis] // rows)
            tile[axis] = -(-shape[axis] // parts)
            break
        tile[axis] = 1
    return tile


def evaluate(net, root, image, halo, load):
    """Compute the value ``root`` of a network on an image.

    The work is split into tiles along the leading axes (see :func:`_tile_shape`), so that
    intermediate results stay small (in cache on the CPU) and memory stays bounded however many
    values the network keeps alive. Each node is written into a buffer that is reused once its
    last reader has run.

    The tiles run one after the other in the calling thread; each operation uses torch's own
    intra-op threads. (Running tiles in worker threads with ``torch.set_num_threads(1)`` was
    tried and removed: that setting leaks into threads that start meanwhile, napari's and
    dask's among them.)

    Parameters
    ----------
    net : Network
    root : tuple
        Reference to the result, as returned by a builder.
    image : torch.Tensor
        The input; the result has its shape, dtype and device.
    halo : sequence of int
        How far the network reaches beyond a tile, per axis: ``root`` read at its offset in an
        input tile of ``n + halo`` pixels gives ``n`` output pixels.
    load : callable
        ``load(region)`` returns the input tile for the output ``region`` (a tuple of slices,
        one per axis): the padded image from ``start`` to ``stop + halo`` along each axis.

    Returns
    -------
    torch.Tensor
    """
    shape = tuple(image.shape)
    if image.numel() == 0:
        return image.clone()
    schedule, slots, count = _schedule(net, root)
    tile = _tile_shape(shape, halo, image.element_size(), max(count, 1), image.device.type)
    size = int(np.prod([t + h for t, h in zip(tile, halo)]))
    out = image.new_empty(shape)
    buffers = [image.new_empty(size) for _ in range(count)]
    for corner in itertools.product(*(range(0, n, t) for n, t in zip(shape, tile))):
        region = tuple(slice(c, min(c + t, n)) for c, t, n in zip(corner, tile, shape))
        _evaluate_tile(net, schedule, slots, root, load(region), out, region, buffers)
    return out


def _evaluate_tile(net, schedule, slots, root, tile, out, region, buffers):
    """Run the network on one input ``tile``, for the output ``out[region]``."""
    import torch

    ops = {MIN: torch.minimum, MAX: torch.maximum, ADD: torch.add}
    origin = root[1]
    block = tuple(r.stop - r.start for r in region)
    values = {0: tile}
    direct = False
    for node in schedule:
        op, (na, oa), (nb, ob) = net.steps[node - 1]
        a, b = values[na], values[nb]
        extent = [min(sa - i, sb - j) for sa, sb, i, j in zip(a.shape, b.shape, oa, ob)]
        # the last step (the root) writes straight into the output when it can
        direct = node == root[0] and not any(origin) and tuple(extent) == block
        if direct:
            result = out[region]
        else:
            result = buffers[slots[node]][: int(np.prod(extent))].view(extent)
        ops[op](
            a[tuple(slice(i, i + e) for i, e in zip(oa, extent))],
            b[tuple(slice(j, j + e) for j, e in zip(ob, extent))],
            out=result,
        )
        values[node] = result
    if not direct:
        out[region] = values[root[0]][tuple(slice(o, o + n) for o, n in zip(origin, block))]

"""The worker plumbing shared by the docks, without a viewer where none is needed."""

import math

import numpy as np
import pytest

from torchscope.napari._workers import block_chunks, format_call


def n_blocks(shape, chunks):
    return math.prod(math.ceil(n / c) for n, c in zip(shape, chunks))


@pytest.mark.parametrize("shape", [(512, 512), (2048, 2048), (64, 256, 256), (5,)])
def test_small_arrays_are_one_block(shape):
    assert block_chunks(shape) == shape


@pytest.mark.parametrize("shape", [(4096, 4096), (256, 256, 256), (1000, 100, 100), (20, 2**20)])
def test_large_arrays_are_8_to_16_blocks(shape):
    chunks = block_chunks(shape)
    assert 8 <= n_blocks(shape, chunks) <= 16
    assert all(c >= min(32, n) for c, n in zip(chunks, shape))


def test_chunks_are_not_split_below_the_minimum():
    shape = (40, 40, 40)
    chunks = block_chunks(shape, single_block_size=10, n_blocks=1000, min_chunk=16)
    assert all(c >= 16 for c in chunks)
    assert n_blocks(shape, chunks) == 8


def test_format_call_is_python():
    call = format_call(
        "np.clip", [1.5, None], {"a_max": 3.0, "out": None, "casting": "unsafe"}, image="x"
    )
    assert call == "np.clip(x, 1.5, a_max=3.0, casting='unsafe')"
    x = np.arange(5.0)
    np.testing.assert_array_equal(eval(call, {"np": np, "x": x}), np.clip(x, 1.5, 3.0))


def test_workers_use_the_torch_thread_count_of_the_gui_thread(qtbot):
    """torch's intra-op thread count belongs to each OS thread and napari's pool reuses its
    threads; a dock's worker must run with the count the GUI thread has when it starts (what
    the console set), also on a thread the pool made under another count."""
    import torch

    from torchscope.napari._workers import RunControls

    def report():
        yield 1, 1
        return torch.get_num_threads()

    controls = RunControls()
    before = torch.get_num_threads()
    seen = []
    try:
        for threads in (1, 2, 1):
            torch.set_num_threads(threads)
            with qtbot.waitCallback(timeout=30_000) as done:
                controls.start(report, returned=lambda n, done=done: (seen.append(n), done()))
            qtbot.waitUntil(lambda: not controls.running, timeout=30_000)
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 2, 1]


def test_progress_after_the_dock_was_deleted_is_ignored(qtbot):
    """Closing the viewer while a job runs deletes the dock's Qt widgets; the stopped worker
    still reports, and its callbacks raised "wrapped C/C++ object ... has been deleted"."""
    from qtpy import sip

    from torchscope.napari._workers import RunControls

    controls = RunControls()
    controls._on_yielded((1, 4))
    assert (controls.progress.value, controls.progress.max) == (1, 4)
    sip.delete(controls.progress.native)
    sip.delete(controls.run_button.native)
    controls._on_yielded((2, 4))  # no exception
    controls._on_finished()
    assert controls.worker is None


def _world(layer, index):
    return np.asarray(layer.data_to_world(index), dtype=float)


@pytest.mark.parametrize("ndim", [2, 3, 4])
def test_plane_geometry_puts_every_pixel_where_the_input_has_it(ndim):
    # a 2D input with every kind of transform; an output stack (..., y, x) of results on it
    from napari.layers import Image

    from torchscope.napari._workers import plane_geometry

    source = Image(np.zeros((20, 30)), scale=(0.5, 2.0), translate=(3.0, -7.0), rotate=35.0,
                   shear=[0.4], affine=[[1.1, 0.2, 4.0], [-0.3, 0.9, 1.0], [0, 0, 1]],
                   axis_labels=("y", "x"), units=("um", "um"))
    out = Image(np.zeros((2,) * (ndim - 2) + (20, 30)), **plane_geometry(source, ndim))
    rng = np.random.default_rng(0)
    for y, x in rng.uniform(0, 20, (5, 2)):
        lead = tuple(rng.integers(0, 2, ndim - 2))
        np.testing.assert_allclose(_world(out, lead + (y, x))[-2:], _world(source, (y, x)),
                                   atol=1e-9)
    assert tuple(out.axis_labels[-2:]) == ("y", "x") and out.units[-1] == source.units[-1]


def test_plane_geometry_of_a_volume_keeps_in_plane_transforms_only():
    from napari.layers import Image

    from torchscope.napari._workers import plane_geometry

    c, s = np.cos(0.4), np.sin(0.4)
    in_plane = Image(np.zeros((6, 20, 30)), scale=(3.0, 0.5, 0.7), translate=(1.0, 2.0, 3.0),
                     rotate=[[1, 0, 0], [0, c, -s], [0, s, c]])
    out = Image(np.zeros((20, 30)), **plane_geometry(in_plane, 2))
    for z in (0.0, 4.0):  # the plane's placement does not depend on the slice
        np.testing.assert_allclose(_world(out, (5.0, 9.0)), _world(in_plane, (z, 5.0, 9.0))[-2:],
                                   atol=1e-9)
    # a shear or affine that makes z depend on y keeps the plane where it is: kept
    for transform in ({"shear": [0.5, 0.0, 0.4]},
                      {"affine": [[1, 0.3, 0, 0], [0, 1, 0.4, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}):
        coupled = Image(np.zeros((6, 20, 30)), scale=(3.0, 0.5, 0.7), **transform)
        out = Image(np.zeros((20, 30)), **plane_geometry(coupled, 2))
        for z in (0.0, 4.0):
            np.testing.assert_allclose(_world(out, (5.0, 9.0)),
                                       _world(coupled, (z, 5.0, 9.0))[-2:], atol=1e-9)
    # a rotation that tilts the plane (about an in-plane axis) has no 2D restriction
    tilted = Image(np.zeros((6, 20, 30)), rotate=[[c, -s, 0], [s, c, 0], [0, 0, 1]])
    assert "rotate" not in plane_geometry(tilted, 2)


def test_plane_geometry_takes_a_lower_triangular_shear():
    # napari keeps a lower triangular shear as a whole matrix (an upper one as a vector)
    from napari.layers import Image

    from torchscope.napari._workers import plane_geometry

    source = Image(np.zeros((20, 30)), shear=[[1, 0], [0.3, 1]], rotate=20.0, scale=(2.0, 3.0))
    for ndim in (2, 3):
        out = Image(np.zeros((2,) * (ndim - 2) + (20, 30)), **plane_geometry(source, ndim))
        np.testing.assert_allclose(_world(out, (1,) * (ndim - 2) + (5.0, 7.0))[-2:],
                                   _world(source, (5.0, 7.0)), atol=1e-9)

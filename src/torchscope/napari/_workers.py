"""Running long work off the GUI thread, and turning results into layers.

Shared by every torchscope dock:

- :class:`RunControls`: Run and Stop buttons and a progress bar that drive one napari
  ``thread_worker`` at a time. The work is a generator that yields ``(done, total)``; Stop takes
  effect at the next yield. Errors reach the user as a napari notification.
- :func:`compute_in_blocks`: the generator for a filter call: the function runs lazily on a dask
  view of the image and the result is computed block by block
  (:func:`torchscope.backend.compute_blocks`), so the progress bar moves and Stop works;
  :func:`compute_per_plane` the same for each 2D plane or 3D volume of a stack.
- :func:`format_call`, :func:`spatial_properties`, :func:`add_or_update_layer`: output layers
  that carry the input's geometry and the exact call that made them.

Nothing here imports torch or a science module at import time.
"""

import contextlib
import logging
import math
import sys
from dataclasses import dataclass

import numpy as np
from magicgui.widgets import Container, ProgressBar, PushButton
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info

_log = logging.getLogger(__name__)

#: Arrays with at most this many elements are computed as one block; larger ones are split.
SINGLE_BLOCK_SIZE = 2**22
#: How many blocks a large array is split into (at least; a power of two).
N_BLOCKS = 8
#: Chunks are not split below this length along any axis.
MIN_CHUNK = 32


# --------------------------------------------------------------------------- computing
def block_chunks(shape, *, single_block_size=None, n_blocks=None, min_chunk=None):
    """Chunk shape for computing an array of ``shape`` block by block.

    The whole array is one block when it has at most ``single_block_size`` elements. Otherwise
    the longest chunk axis is halved until there are at least ``n_blocks`` blocks (axes are not
    split below ``min_chunk``), which gives 8 to 16 blocks for the defaults.

    Parameters
    ----------
    shape : tuple of int
    single_block_size, n_blocks, min_chunk : int, optional
        Default to the module constants :data:`SINGLE_BLOCK_SIZE`, :data:`N_BLOCKS` and
        :data:`MIN_CHUNK`.

    Returns
    -------
    tuple of int
    """
    single_block_size = SINGLE_BLOCK_SIZE if single_block_size is None else single_block_size
    n_blocks = N_BLOCKS if n_blocks is None else n_blocks
    min_chunk = MIN_CHUNK if min_chunk is None else min_chunk
    chunks = [int(n) for n in shape]
    if math.prod(chunks) <= single_block_size:
        return tuple(chunks)

    def count(chunks):
        return math.prod(math.ceil(n / c) for n, c in zip(shape, chunks))

    while count(chunks) < n_blocks:
        axis = int(np.argmax(chunks))
        if chunks[axis] < 2 * min_chunk:
            break
        chunks[axis] = math.ceil(chunks[axis] / 2)
    return tuple(chunks)


def compute_per_plane(function, data, ndim, args=(), kwargs=None):
    """Run ``function(plane, *args, **kwargs)`` on every ``ndim``-D sub-array over the last
    ``ndim`` axes of ``data`` (each 2D plane or 3D volume of a time series or channel stack),
    one after another, each block by block (:func:`compute_in_blocks`).

    A generator for a thread worker: yields ``(planes_done, planes_total)`` and returns the
    results stacked in ``data``'s shape (the functions keep the shape) as a numpy array.
    """
    lead = tuple(data.shape[:-ndim]) if ndim < data.ndim else ()
    total = math.prod(lead)
    out = None
    yield 0, total
    for done, index in enumerate(np.ndindex(*lead), start=1):
        part = compute_in_blocks(function, data[index], args, kwargs)
        try:
            while True:
                next(part)
        except StopIteration as stop:
            result = np.asarray(stop.value)
        if out is None:
            out = np.empty(data.shape, dtype=result.dtype)
        out[index] = result
        yield done, total
    return out


def compute_in_blocks(function, data, args=(), kwargs=None):
    """Run ``function(image, *args, **kwargs)`` lazily and compute the result block by block.

    A generator for a thread worker: yields ``(blocks_done, blocks_total)`` and returns the
    result as a numpy array. A numpy input that is one block (see :func:`block_chunks`) is
    passed as it is; a larger one is wrapped in a dask array chunked by :func:`block_chunks`; a
    dask input keeps its chunks. The function must take dask arrays and return a lazy dask
    array (every function of :mod:`torchscope.filters` does).
    """
    import dask.array as da

    from torchscope.backend import compute_blocks

    kwargs = kwargs or {}
    if not isinstance(data, da.Array):
        data = np.asarray(data)
        chunks = block_chunks(data.shape)
        if chunks == data.shape:
            result = function(data, *args, **kwargs)
            yield 1, 1
            return result
        data = da.from_array(data, chunks=chunks)
    lazy = function(data, *args, **kwargs)
    result = yield from compute_blocks(lazy)
    return result


@dataclass(frozen=True)
class Failed:
    """What a guarded generator returns instead of raising (see :func:`_guarded`)."""

    error: Exception


def _guarded(torch_threads, generator_function, *args, **kwargs):
    """Run a generator, returning :class:`Failed` instead of raising.

    A worker's ``errored`` signal would also reach napari's own handler (a notification with a
    traceback), and superqt's generator loop drops a ``RuntimeError`` (what torch raises)
    silently; returning the error as a value lets the main thread report it once, plainly.
    ``torch_threads`` (unless None) is first given to ``torch.set_num_threads`` in this thread.
    """
    try:
        if torch_threads is not None:
            import torch

            torch.set_num_threads(torch_threads)
        return (yield from generator_function(*args, **kwargs))
    except Exception as error:  # noqa: BLE001 - reported to the user in the main thread
        return Failed(error)


def guarded_worker(generator_function, *args, **kwargs):
    """A napari thread worker (not started) for ``generator_function(*args, **kwargs)``, run
    through :func:`_guarded` with this thread's torch thread count.

    torch's intra-op thread count belongs to each OS thread, and napari's thread pool reuses
    its threads: without this, a worker keeps whatever count its thread had when the pool made
    it, so ``torch.set_num_threads`` in the console would not reach the docks, and a dock's
    result could differ in the last digits from the same call replayed in the console.
    """
    torch = sys.modules.get("torch")  # not imported: every thread starts with the default
    threads = None if torch is None else torch.get_num_threads()
    return create_worker(_guarded, threads, generator_function, *args, _start_thread=False,
                         **kwargs)


class RunControls(Container):
    """Run and Stop buttons with a progress bar, for one background job at a time.

    Connect ``run_button.changed`` to a handler that collects the parameters and calls
    :meth:`start`. Stop asks the worker to quit; the generator stops at its next yield, the
    ``returned`` callback is not called and no layer is written.
    """

    def __init__(self, **kwargs):
        self.run_button = PushButton(text="Run", name="run")
        self.stop_button = PushButton(text="Stop", name="stop", enabled=False)
        self.progress = ProgressBar(value=0, min=0, max=1, name="progress", label="progress")
        buttons = Container(
            widgets=[self.run_button, self.stop_button], layout="horizontal", labels=False
        )
        buttons.margins = (0, 0, 0, 0)
        super().__init__(widgets=[buttons, self.progress], labels=False, **kwargs)
        self.margins = (0, 0, 0, 0)
        self.label = ""  # no label in a form: the buttons speak for themselves
        self.stop_button.changed.connect(self.stop)
        self.worker = None

    @property
    def running(self):
        """True while a job runs."""
        return self.worker is not None

    def start(self, generator_function, *args, returned, description="", failed=None,
              finished=None, **kwargs):
        """Run ``generator_function(*args, **kwargs)`` in a napari thread worker.

        The generator yields ``(done, total)`` to move the progress bar. ``returned`` is called
        in the main thread with the generator's return value when it ran to the end; an
        exception is shown as an error notification prefixed by ``description``, then passed
        to ``failed`` when given (a dock's status line, which would otherwise go on saying
        what the job was doing). ``finished``, when given, is called in the main thread when
        the worker ends, however it ends.

        Returns
        -------
        napari.qt.threading.GeneratorWorker
            Already started.
        """
        if self.running:
            raise RuntimeError("A job is already running; stop it first.")

        def on_returned(value):
            if isinstance(value, Failed):
                _log.debug("%s failed", description, exc_info=value.error)
                show_error(f"{description} failed: {value.error}")
                if failed is not None:
                    failed(value.error)
            else:
                returned(value)

        worker = guarded_worker(generator_function, *args, **kwargs)
        worker.yielded.connect(self._on_yielded)
        worker.returned.connect(on_returned)
        worker.aborted.connect(lambda: show_info(f"{description} stopped; nothing was written."))
        worker.finished.connect(self._on_finished)
        if finished is not None:  # connected before the start: a quick job cannot miss it
            worker.finished.connect(finished)
        self.worker = worker
        self.progress.value = 0
        self.run_button.enabled = False
        self.stop_button.enabled = True
        worker.start()
        return worker

    def stop(self):
        """Ask the running job to stop at its next yield."""
        if self.worker is not None:
            self.worker.quit()
            self.stop_button.enabled = False

    def _on_yielded(self, progress):
        done, total = progress
        with _unless_closed():
            self.progress.max = max(int(total), 1)
            self.progress.value = int(done)

    def _on_finished(self):
        self.worker = None
        with _unless_closed():
            self.run_button.enabled = True
            self.stop_button.enabled = False


def dock_closed(widget):
    """Whether a dock's Qt widgets are gone (the viewer was closed while its job ran): a
    stopped worker still delivers the signals queued before it stopped, and those must
    neither touch the dock nor add layers to the closed viewer."""
    try:
        widget.native.objectName()
    except RuntimeError as error:
        if "has been deleted" not in str(error):
            raise
        return True
    return False


@contextlib.contextmanager
def _unless_closed():
    """Skip a dock update whose Qt widgets are gone: the viewer was closed while a job ran
    (its stopped worker still reports; Qt raised "wrapped C/C++ object ... has been deleted")."""
    try:
        yield
    except RuntimeError as error:
        if "has been deleted" not in str(error):
            raise


# --------------------------------------------------------------------------- results to layers
def follow_layer_list(viewer, callback):
    """Call ``callback`` whenever layers are added, removed, reordered or renamed.

    What a dock's layer choices need when it is used outside ``add_dock_widget`` too (napari
    connects ``reset_choices`` itself only for docked widgets).
    """
    events = viewer.layers.events
    for event in (events.inserted, events.removed, events.reordered, events.renamed):
        event.connect(callback)


def format_call(function, args=(), kwargs=None, *, image="image"):
    """Python source of a call, e.g. ``torchscope.filters.gaussian(image, 2.0, device='cpu')``.

    ``function`` is the dotted name. Trailing ``None`` positional arguments and ``None`` keyword
    arguments are left out (they are the defaults). Values must have a ``repr`` that evaluates
    to themselves (Python numbers, strings, tuples).
    """
    args = list(args)
    while args and args[-1] is None:
        args.pop()
    parts = [image, *map(repr, args)]
    parts += [f"{key}={value!r}" for key, value in (kwargs or {}).items() if value is not None]
    return f"{function}({', '.join(parts)})"


def call_record(function, call, *, parameters, device, input, **extra):
    """``layer.metadata["torchscope"]`` of an output layer: the function, its parameters, the
    device that ran it, the package version, the input layer's name and ``call``, the Python
    lines that reproduce the layer from the console; ``extra`` entries are added."""
    import torchscope

    return {"function": function, "parameters": parameters, "device": device,
            "version": torchscope.__version__, "input": input, "call": call, **extra}


def spatial_properties(layer):
    """The geometry an output layer copies from its input: scale, translate, axis labels,
    units, and rotate, shear and affine where they are not the identity (without them a
    rotated input's result was drawn unrotated, off the input)."""
    props = {
        "scale": tuple(layer.scale),
        "translate": tuple(layer.translate),
        "axis_labels": tuple(layer.axis_labels),
        "units": tuple(layer.units),
    }
    transforms = {"rotate": np.asarray(layer.rotate, dtype=float),
                  "shear": np.asarray(layer.shear, dtype=float),
                  "affine": np.asarray(layer.affine.affine_matrix, dtype=float)}
    identity = _identity_transforms(len(props["scale"]))
    props.update({key: value for key, value in transforms.items()
                  if not np.allclose(value, identity[key])})
    return props


def _identity_transforms(ndim):
    """napari's rotate, shear and affine that do nothing, in ``ndim`` dimensions."""
    return {"rotate": np.eye(ndim), "shear": np.zeros(ndim * (ndim - 1) // 2),
            "affine": np.eye(ndim + 1)}


def _shear_matrix(shear, k):
    """A layer's ``shear`` as a k x k matrix: napari gives the upper triangle of an upper
    triangular shear matrix as a vector (by rows), and a lower triangular one whole."""
    shear = np.asarray(shear, dtype=float)
    if shear.ndim == 2:
        return shear
    upper = np.eye(k)
    upper[np.triu_indices(k, 1)] = shear
    return upper


def _shear_value(matrix):
    """A shear matrix as napari takes it: the vector of an upper triangular one, else whole."""
    if np.allclose(np.tril(matrix, -1), 0):
        return matrix[np.triu_indices(len(matrix), 1)]
    return matrix


def with_leading_axes(props, lead, labels=None):
    """Geometry ``props`` (of :func:`spatial_properties`) for an output with ``lead`` new
    leading axes (a stack of results): unit scale, no offset, no rotation on them; the
    rotate, shear and affine of the other axes embedded."""
    k = len(props["scale"])
    ndim = k + lead
    labels = tuple(labels) if labels is not None else tuple(f"axis {i}" for i in range(lead))
    out = {
        "scale": (1.0,) * lead + tuple(props["scale"]),
        "translate": (0.0,) * lead + tuple(props["translate"]),
        "axis_labels": labels + tuple(props["axis_labels"]),
        "units": ("pixel",) * lead + tuple(props["units"]),
    }

    def widen(block):
        full = np.eye(ndim)
        full[lead:, lead:] = block
        return full

    if "rotate" in props:
        out["rotate"] = widen(props["rotate"])
    if "shear" in props:
        out["shear"] = _shear_value(widen(_shear_matrix(props["shear"], k)))
    if "affine" in props:
        affine = np.asarray(props["affine"], dtype=float)
        full = np.eye(ndim + 1)
        full[lead:, lead:] = affine
        out["affine"] = full
    return out


def plane_geometry(layer, ndim):
    """The geometry of an output whose last two axes lie on ``layer``'s last two and whose
    other ``ndim - 2`` axes are new (a stack of results: unit scale, no offset).

    :func:`spatial_properties` of those two axes: scale, translate, axis labels, units, and
    rotate, shear and affine where they are not the identity, embedded in ``ndim``
    dimensions. A transform that mixes the plane with ``layer``'s other axes (a volume
    rotated about an in-plane axis) has no such restriction; it is left out there.
    """
    props = spatial_properties(layer)
    k = len(props["scale"])
    plane = {key: tuple(props[key][-2:]) for key in ("scale", "translate", "axis_labels",
                                                      "units")}

    def block(matrix):  # the last two axes' block of a k x k matrix; None if the plane's
        # world coordinates depend on the other axes (those depending on the plane's do not
        # move it: the block of a product of such matrices is the product of their blocks)
        m = np.asarray(matrix, dtype=float)
        if not np.allclose(m[k - 2:, :k - 2], 0):
            return None
        return m[k - 2:, k - 2:]

    if "rotate" in props and (rotate := block(props["rotate"])) is not None:
        plane["rotate"] = rotate
    if "shear" in props and (shear := block(_shear_matrix(props["shear"], k))) is not None:
        plane["shear"] = _shear_value(shear)
    if "affine" in props:
        affine = np.asarray(props["affine"], dtype=float)
        if (linear := block(affine[:k, :k])) is not None:
            plane["affine"] = np.eye(3)
            plane["affine"][:2, :2] = linear
            plane["affine"][:2, 2] = affine[k - 2:k, k]
    return with_leading_axes(plane, ndim - 2)


def resampled_geometry(props, origin, step=None):
    """Geometry ``props`` (of :func:`spatial_properties`) for an output whose pixel ``i``
    lies at the input's data coordinates ``origin + step * i`` (per axis; ``step`` 1 by
    default): a slice at ``origin``, or a map pooled by ``step``. The shift goes through the
    input's scale, shear and rotation (adding it to ``translate`` in pixel units placed
    the output off a rotated input)."""
    from napari.utils.transforms import Affine

    linear = Affine(scale=props["scale"], **{key: props[key] for key in ("rotate", "shear")
                                             if key in props})
    shift = np.asarray(linear(np.asarray(origin, dtype=float)), dtype=float)
    step = np.ones(len(props["scale"])) if step is None else np.asarray(step, dtype=float)
    return dict(props, scale=tuple(np.asarray(props["scale"], dtype=float) * step),
                translate=tuple(np.asarray(props["translate"], dtype=float) + shift))


def add_or_update_layer(viewer, layer, data, kwargs, layer_type):
    """Put ``data`` into ``layer`` when it is still in the viewer and fits, else add a new layer.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    layer : napari.layers.Layer or None
        The layer written by a previous run (updated in place), or None.
    data : numpy.ndarray
    kwargs : dict
        Layer keyword arguments (name, metadata, scale, ...). On update, the name is kept.
    layer_type : {"image", "labels"}

    Returns
    -------
    napari.layers.Layer
    """
    from napari.layers import Image, Labels

    layer_class = Labels if layer_type == "labels" else Image
    # an RGB layer's ndim leaves out its colour axis: compare the data's, and the rgb flag
    fits = (isinstance(layer, layer_class) and layer in viewer.layers
            and np.ndim(layer.data) == np.ndim(data)
            and bool(getattr(layer, "rgb", False)) == bool(kwargs.get("rgb", False)))
    if fits:
        layer.data = data
        for key, value in kwargs.items():
            if key not in ("name", "colormap", "rgb"):
                setattr(layer, key, value)
        for key, value in _identity_transforms(layer.ndim).items():
            if key not in kwargs:  # the input has lost that transform since the last run
                setattr(layer, key, value)
        if layer_type == "image":
            layer.reset_contrast_limits()
        return layer
    add = viewer.add_labels if layer_type == "labels" else viewer.add_image
    if layer_type == "labels":
        kwargs = {k: v for k, v in kwargs.items() if k != "colormap"}
    return add(data, **kwargs)

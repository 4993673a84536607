"""Docks for :mod:`torchscope.ghost`: simulate or load a single-pixel measurement, reconstruct,
compare by CNR; and the CNR-vs-exposures curve of the paper's Fig. 2(j).

:class:`GhostWidget` ("Ghost imaging")
    The measurement comes from an object layer (simulated with Hadamard, speckle or the user's
    own masks, a modulation depth ``D_r``, a per-pixel mask error, sloped edges and a Poisson
    dose) or from measured data (a layer opened from a ``.npz`` measurement file, or a file
    chosen in the dock). One Run reconstructs it with every chosen method; each result is a
    new layer ``"<method>(<input>)"`` and the viewer switches to grid view, so they sit side by
    side. Marking object (label 1) and background (label 2) in a Labels layer shows the CNR of
    every result (the paper's equation (1), :func:`torchscope.ghost.cnr`), updated as the user
    paints. The CH-MWCNN can be trained on the dock's own mask set (``train_mwcnn``), with
    progress and Stop like every long job.
:class:`CNRCurveWidget` ("Ghost CNR curve")
    CNR against the number of exposures for chosen methods, from one simulated experiment
    (:func:`torchscope.ghost.cnr_curve`), drawn in the dock.

Everything a dock computes is a call of the public :mod:`torchscope.ghost` API, run in a thread
worker (progress bar, Stop); results are new layers carrying the input's geometry and, in
``layer.metadata["torchscope"]["call"]``, the Python lines that reproduce them. torch is imported
when a job runs, not when napari reads the manifest.
"""

from functools import partial
from pathlib import Path

import napari.viewer
import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    PushButton,
    Select,
    SpinBox,
)
from napari.layers import Image, Labels
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer

from torchscope.napari._readers import GHOST_MEASUREMENT, ghost_measurement_layer
from torchscope.napari._workers import (
    RunControls,
    add_or_update_layer,
    call_record,
    follow_layer_list,
    format_call,
    plane_geometry,
)

MODULE = "torchscope.ghost"
SIMULATE, MEASURED = "simulate", "measured"
#: Mask sets a simulation can use: (text, value).
MASKS = (
    ("Hadamard, binary 0/1", "binary"),
    ("Hadamard, differential +1/-1", "differential"),
    ("speckle (sandpaper)", "speckle"),
    ("a patterns layer", "layer"),
)
#: Label values of the marks layer: object (G_1) and background (G_0) of the CNR.
OBJECT_LABEL, BACKGROUND_LABEL = 1, 2
DEFAULT_METHODS = ("dgi", "tv")
TV_SNAPSHOT_EVERY = 10


# ----------------------------------------------------------------------------- helpers
def _methods():
    from torchscope.ghost import METHODS

    return list(METHODS)


def _grid(viewer):
    """The viewer's grid model (``viewer.canvas.grid`` since napari 0.9, else ``viewer.grid``)."""
    canvas = getattr(viewer, "canvas", None)
    return canvas.grid if canvas is not None and hasattr(canvas, "grid") else viewer.grid


def _is_measurement(layer):
    return isinstance(layer, Image) and GHOST_MEASUREMENT in layer.metadata


def _pixel_size(layer):
    """The layer's pixel size in µm when its units say so (for saved metadata), else None."""
    units = {f"{u:~P}" for u in layer.units[-2:]}
    scale = {float(s) for s in layer.scale[-2:]}
    if units == {"µm"} and len(scale) == 1:
        return scale.pop()
    return None


class _Progress(tuple):
    """``(done, total)`` for :class:`RunControls`, carrying the training loss as ``.loss``."""

    loss = None


# ----------------------------------------------------------------------------- the jobs
def make_patterns(patterns_spec):
    """The masks of ``patterns_spec``: ``(function name in torchscope.ghost, args, kwargs)``,
    or an array (returned as it is)."""
    from torchscope import ghost

    if isinstance(patterns_spec, np.ndarray):
        return patterns_spec
    name, args, kwargs = patterns_spec
    return getattr(ghost, name)(*args, **kwargs)


def measure(obj, patterns_spec, simulation):
    """Make the patterns and simulate the buckets of ``obj``; returns ``(buckets, patterns)``."""
    from torchscope import ghost

    patterns = make_patterns(patterns_spec)
    return ghost.simulate_buckets(obj, patterns, **simulation), patterns


def reconstruction_job(methods, options, device, *, buckets=None, patterns=None, obj=None,
                       patterns_spec=None, simulation=None):
    """Generator for a worker: (simulate, then) reconstruct with each method.

    Yields ``(done, total)``; returns ``{"buckets", "patterns", "images": {method: array}}``.
    TV runs through :func:`torchscope.ghost.iterate`, so Stop ends it between snapshots.
    """
    from torchscope import ghost

    steps = {m: max(1, options[m].get("iterations", 200) // TV_SNAPSHOT_EVERY)
             if m == "tv" else 1 for m in methods}
    total = 1 + sum(steps.values())
    if simulation is not None:
        buckets, patterns = measure(obj, patterns_spec, simulation)
    done = 1
    yield done, total
    images = {}
    for method in methods:
        if method == "tv":
            snap = None
            for snap in ghost.iterate(buckets, patterns, method="tv", every=TV_SNAPSHOT_EVERY,
                                      device=device, **options[method]):
                yield done + snap.iteration // TV_SNAPSHOT_EVERY, total
            images[method] = snap.image
        else:
            images[method] = ghost.reconstruct(buckets, patterns, method=method, device=device,
                                               **options[method])
        done += steps[method]
        yield done, total
    return {"buckets": buckets, "patterns": patterns, "images": images}


def curve_job(obj, patterns_spec, methods, counts, simulation, device):
    """Generator for a worker: :func:`torchscope.ghost.cnr_curve` one number of exposures at a
    time (the same seed gives the same simulated experiment each time, so the result equals
    one call with all ``counts``). Yields ``(done, total)``; returns a ``CNRCurve``."""
    from torchscope import ghost

    patterns = make_patterns(patterns_spec)
    columns = []
    for j, k in enumerate(counts):
        part = ghost.cnr_curve(obj, patterns, methods=methods, counts=[int(k)], device=device,
                               **simulation)
        columns.append(part.cnr[:, 0])
        yield j + 1, len(counts)
    return ghost.CNRCurve(counts=np.asarray(counts, dtype=int), methods=tuple(methods),
                          cnr=np.stack(columns, axis=1))


def training_job(patterns, steps, batch_size, seed, device, stages=1):
    """Generator for a worker: :func:`torchscope.ghost.train_mwcnn`; yields ``(step, steps)``
    with the loss as ``.loss``; returns the model."""
    from torchscope import ghost

    gen = ghost.train_mwcnn(patterns, steps=steps, batch_size=batch_size, seed=seed,
                            device=device, stages=stages)
    while True:
        try:
            progress = next(gen)
        except StopIteration as stop:
            return stop.value
        out = _Progress((progress[0], progress[1]))
        out.loss = float(progress[2])
        yield out


# ------------------------------------------------------------------------ the measurement
def _integer_max(layer):
    """What an integer object layer is divided by to be a transmission (its type's maximum),
    or None for a float layer."""
    dtype = np.dtype(layer.data.dtype)
    return int(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else None


class SimulationForm:
    """The simulation parameters both docks share (widgets, and the calls they make)."""

    def __init__(self, viewer):
        from torchscope.ghost import ORDERS

        self._viewer = viewer
        self.object = ComboBox(name="object", choices=self._objects, nullable=False,
                               tooltip="A 2D image of the object's transmission (0 opaque, 1 "
                               "open), n x n with n a power of two for Hadamard masks.")
        self.masks = ComboBox(name="masks", choices=MASKS, value="binary",
                              tooltip="Hadamard masks as etched in metal (binary), "
                              "complementary pairs (differential), random sandpaper masks, "
                              "or your own masks from a 3D layer (M, n, n).")
        self.patterns = ComboBox(name="patterns", choices=self._pattern_layers, nullable=True,
                                 tooltip="A stack (M, n, n) of masks, e.g. a TIFF pattern stack.")
        self.order = ComboBox(name="order", choices=ORDERS, value="zigzag",
                              tooltip="Order of the Hadamard patterns (which are measured "
                              "first): zigzag is low spatial frequency first.")
        self.ratio = _float("ratio", 0.1875, 0.0001, 1.0, 0.0625, 4, label="sampling ratio",
                            tooltip="Number of masks over the number of pixels, M / n². "
                            "0.1875 is the paper's 18.75 %.")
        self.modulation_depth = _float(
            "modulation_depth", 0.8, 0.001, 1.0, 0.01, 3, label="D_r",
            tooltip="Modulation depth of the masks, (D_max - D_min) / D_max: opaque metal still "
            "passes 1 - D_r (the paper: 0.75 Cu, 0.83 Au).")
        self.photons = _float("photons", 1000.0, 0.0, 1e9, 100.0, 1, label="dose (photons)",
                              tooltip="Mean photons per open mask pixel over an open object "
                              "pixel, per exposure (Poisson). 0: no noise.")
        self.photons.native.setSpecialValueText("no noise")
        self.mask_error = _float("mask_error", 3.0, 0.0, 50.0, 0.5, 2, label="mask error (%)",
                                 tooltip="Relative per-pixel transmission error of the "
                                 "masks (uneven etching), fixed for the whole set.")
        self.blur = _float("blur", 0.0, 0.0, 10.0, 0.1, 2, label="edge blur (px)",
                           tooltip="Sloped mask edges: Gaussian blur of the masks, in "
                           "mask pixels.")
        self.seed = SpinBox(name="seed", value=0, min=0, max=2**31 - 1,
                            tooltip="Seed of the mask errors and noise (and speckle masks).")
        self.masks.changed.connect(self._update_visible)
        self.widgets = [self.object, self.masks, self.patterns, self.order, self.ratio,
                        self.modulation_depth, self.photons, self.mask_error, self.blur,
                        self.seed]
        self._update_visible()

    def _objects(self, _widget=None):
        return [(layer.name, layer) for layer in self._viewer.layers
                if isinstance(layer, Image) and layer.ndim == 2 and not layer.rgb]

    def _pattern_layers(self, _widget=None):
        return [(layer.name, layer) for layer in self._viewer.layers
                if isinstance(layer, Image) and layer.ndim == 3 and not layer.rgb]

    def _update_visible(self, *_):
        kind = self.masks.value
        self.patterns.visible = kind == "layer"
        self.order.visible = kind in ("binary", "differential")
        self.ratio.visible = kind != "layer"

    def set_visible(self, visible):
        for widget in self.widgets:
            widget.visible = visible
        if visible:
            self._update_visible()

    def object_array(self):
        layer = self.object.value
        if layer is None:
            raise ValueError("Choose an object layer (a 2D image of the object's transmission).")
        obj = np.asarray(layer.data).astype(np.float64)
        if (divisor := _integer_max(layer)) is not None:  # as skimage's img_as_float: 0 to 1
            obj /= divisor
        if obj.ndim != 2:
            raise ValueError(f"Object {layer.name!r} has shape {obj.shape}; choose a 2D image "
                             "of the object's transmission.")
        if obj.shape[0] != obj.shape[1]:
            raise ValueError(f"Object {layer.name!r} is {obj.shape[0]} x {obj.shape[1]} pixels; "
                             "masks are square: crop or resize it to n x n (n = 32, 64, ...).")
        if not np.isfinite(obj).all():
            raise ValueError(f"Object {layer.name!r} contains NaN or infinite values.")
        low, high = float(obj.min()), float(obj.max())
        if low < -1e-6 or high > 1 + 1e-6:
            raise ValueError(
                f"Object {layer.name!r} holds values from {low:.4g} to {high:.4g}; the object "
                "is a transmission map from 0 to 1 (integer layers are divided by their type's "
                "maximum): rescale it, e.g. divide it by its maximum.")
        return layer, obj

    def object_line(self, layer):
        """The console line that makes :meth:`object_array`'s ``obj`` from ``layer``."""
        line = f"obj = viewer.layers[{layer.name!r}].data"
        divisor = _integer_max(layer)
        return line if divisor is None else f"{line} / {divisor}"

    def patterns_spec(self, n):
        """``(spec, call)``: what :func:`measure` takes, and the Python line that makes it."""
        kind = self.masks.value
        if kind == "layer":
            layer = self.patterns.value
            if layer is None:
                raise ValueError("Choose a patterns layer (a stack of masks (M, n, n)).")
            p = np.asarray(layer.data, dtype=np.float32)
            if p.shape[1:] != (n, n):
                raise ValueError(f"Patterns {layer.name!r} are {p.shape[1]} x {p.shape[2]}; the "
                                 f"object is {n} x {n}.")
            return p, f"patterns = viewer.layers[{layer.name!r}].data"
        if kind == "speckle":
            m = max(1, round(self.ratio.value * n * n))
            args, kwargs = (n, m), {"rng": int(self.seed.value) + 1}
            name = "speckle_patterns"
        else:
            args = (n,)
            kwargs = {"ratio": float(self.ratio.value), "order": self.order.value, "kind": kind}
            name = "hadamard_patterns"
        call = format_call(f"{MODULE}.{name}", args[1:], kwargs, image=str(args[0]))
        return (name, args, kwargs), f"patterns = {call}"

    def simulation(self):
        photons = float(self.photons.value)
        return {
            "modulation_depth": float(self.modulation_depth.value),
            "mask_error": float(self.mask_error.value) / 100.0,
            "blur": float(self.blur.value),
            "photons": photons if photons > 0 else None,
            "rng": int(self.seed.value),
        }


def _float(name, value, minimum, maximum, step, decimals=2, **kwargs):
    """A FloatSpinBox showing ``decimals`` decimals (magicgui's default of 2 would round
    e.g. the paper's 0.1875 to 0.19)."""
    widget = FloatSpinBox(name=name, min=minimum, max=maximum, step=step, **kwargs)
    widget.native.setDecimals(decimals)
    widget.value = value
    return widget


def _device_widget():
    from torchscope.backend import available_devices

    return ComboBox(name="device", choices=[("auto", None), *((d, d) for d in available_devices())],
                    tooltip="Where torch computes: auto picks CUDA, then Apple MPS, then the CPU.")


def _methods_widget():
    methods = _methods()
    widget = Select(name="methods", choices=methods,
                    value=[m for m in DEFAULT_METHODS if m in methods],
                    tooltip="Reconstructions to run (several: hold Ctrl or Shift). gi: "
                    "correlation; dgi: differential GI; pinv: least squares; tv: total-variation "
                    "compressive sensing (TVAL3 model); mwcnn: the paper's CH-MWCNN network.")
    rows = widget.native.sizeHintForRow(0) if widget.native.count() else 18
    widget.native.setFixedHeight(len(methods) * max(rows, 16) + 6)  # every method visible
    return widget


def _heading(text):
    return Label(value=f"<b>{text}</b>", name=f"heading_{text.split()[0].lower()}", label=" ")


# ------------------------------------------------------------------------- the main dock
class GhostWidget(Container):
    """The "Ghost imaging" dock: measure (simulate or load), reconstruct, compare by CNR.

    Children (``widget.<name>.value``): ``source``; the simulation's ``object``, ``masks``,
    ``patterns``, ``order``, ``ratio``, ``modulation_depth``, ``photons``, ``mask_error``,
    ``blur``, ``seed``; the measured data's ``measurement`` and ``open_file``; ``methods``,
    ``estimate_depth``, ``lam``, ``iterations``, ``model``, ``device``, ``grid``, ``controls``;
    ``marks``, ``cnr``; ``save_file``; training: ``steps``, ``batch_size``, ``passes``,
    ``train_controls``, ``model_file``, ``save_model``.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        from torchscope import ghost

        self._viewer = napari_viewer
        self._form = SimulationForm(napari_viewer)
        self._outputs = {}  # (input name, method) -> layer written for that input
        self._current = None  # input name of the last run
        self._last = None  # (buckets, patterns, metadata) of the last run
        self._marks_layer = None
        self._cnr_pending = False
        self.cnr_values = {}
        self._models = []  # (text, model) trained or loaded here
        self._model_files = {}  # id(model) -> the file a loaded model came from
        self._model_lines = {}  # id(model) -> the console lines that train a model made here

        self._source = ComboBox(name="source", choices=[
            ("simulate from an object layer", SIMULATE), ("measured data", MEASURED)],
            tooltip="Simulate the measurement of an object, or reconstruct measured buckets.")
        self._measurement = ComboBox(name="measurement", choices=self._measurements,
                                     nullable=True,
                                     tooltip="A measurement layer: opened from a .npz file "
                                     "(buckets and patterns) or loaded below.")
        self._open = FileEdit(name="open_file", label="open file", mode="r",
                              filter="Measurements (*.npz)",
                              tooltip="A .npz file with arrays 'buckets' (..., M) and "
                              "'patterns' (M, n, n) (torchscope.ghost.save_measurement).")
        self._methods = _methods_widget()
        self._estimate = CheckBox(name="estimate_depth",
                                  text="estimate the modulation depth from the buckets",
                                  value=False,
                                  tooltip="Reconstruct with D_r estimated from the buckets "
                                  "(binary masks with the open one) instead of the value "
                                  "above.")
        self._lam = _float("lam", 0.02, 0.0, 10.0, 0.005, 4, label="TV weight",
                           tooltip="tv: weight of the total variation, relative to the "
                           "image's contrast.")
        self._iterations = SpinBox(name="iterations", label="TV iterations", value=200, min=1,
                                   max=1_000_000, step=50)
        self._model = ComboBox(name="model", label="mwcnn model", choices=self._model_choices,
                               tooltip="mwcnn: the network shipped for the mask size and order, "
                               "or one trained or loaded in this dock.")
        self._device = _device_widget()
        self._grid = CheckBox(name="grid", text="grid view", value=True,
                              tooltip="Show the layers side by side after a run.")
        self._controls = RunControls(name="controls")
        self._marks = ComboBox(name="marks", choices=self._labels_layers, nullable=True,
                               tooltip=f"A Labels layer: paint the object with label "
                               f"{OBJECT_LABEL} and the background with {BACKGROUND_LABEL}.")
        self._marks_from_object = PushButton(name="marks_from_object",
                                             text="Marks from the object",
                                             tooltip="New marks layer: label 1 where the object "
                                             "transmits (top 10 % of its range), 2 where it "
                                             "does not (bottom 10 %).")
        self._new_marks = PushButton(name="new_marks", text="Empty marks layer")
        self._cnr = Label(name="cnr", value="", label=" ")
        self._save = FileEdit(name="save_file", label="save measurement", mode="w",
                              filter="Measurements (*.npz)",
                              tooltip="Save the last run's buckets and patterns as .npz.")
        self._steps = SpinBox(name="steps", label="training steps", value=500, min=1,
                              max=1_000_000, step=100)
        self._batch = SpinBox(name="batch_size", label="batch size", value=8, min=1, max=1024)
        self._passes = SpinBox(name="passes", label="passes", value=1, min=1, max=4,
                               tooltip="Passes through the network, with the measured part of "
                               "the image put back between them (the shipped network makes "
                               "2); each pass costs the time of one.")
        self._train_controls = RunControls(name="train_controls")
        self._train_controls.run_button.text = "Train"
        self._model_file = FileEdit(name="model_file", label="load model", mode="r",
                                    filter="Models (*.safetensors)")
        self._save_model = FileEdit(name="save_model", label="save model", mode="w",
                                    filter="Models (*.safetensors)")
        trainable = "train_mwcnn" in dir(ghost)
        training = [_heading("CH-MWCNN training on these masks"), self._steps, self._batch,
                    self._passes, self._train_controls, self._model_file, self._save_model]
        for widget in training:
            widget.visible = trainable
        buttons = Container(widgets=[self._marks_from_object, self._new_marks],
                            layout="horizontal", labels=False)
        buttons.margins = (0, 0, 0, 0)
        super().__init__(widgets=[
            _heading("Measurement"), self._source, *self._form.widgets, self._measurement,
            self._open,
            _heading("Reconstruction"), self._methods, self._estimate, self._lam,
            self._iterations, self._model, self._device, self._grid, self._controls,
            _heading("CNR"), self._marks, buttons, self._cnr,
            self._save, *training,
        ])
        self._source.changed.connect(self._on_source_changed)
        self._controls.run_button.changed.connect(self.run)
        self._train_controls.run_button.changed.connect(self.train)
        self._open.changed.connect(self._on_open)
        self._save.changed.connect(self._on_save)
        self._model_file.changed.connect(self._on_model_file)
        self._save_model.changed.connect(self._on_save_model)
        self._marks.changed.connect(self._on_marks_changed)
        self._marks_from_object.changed.connect(self.marks_from_object)
        self._new_marks.changed.connect(self.new_marks)
        self._measurement.changed.connect(self._on_measurement_changed)
        follow_layer_list(napari_viewer, self.reset_choices)
        napari_viewer.layers.events.removed.connect(self._update_cnr)
        self._on_source_changed()
        self._on_marks_changed()

    # ----------------------------------------------------------------------- choices
    def _measurements(self, _widget=None):
        return [(layer.name, layer) for layer in self._viewer.layers if _is_measurement(layer)]

    def _labels_layers(self, _widget=None):
        return [(layer.name, layer) for layer in self._viewer.layers
                if isinstance(layer, Labels)]

    def _model_choices(self, _widget=None):
        return [("shipped", None), *self._models]

    def _on_source_changed(self, *_):
        simulate = self._source.value == SIMULATE
        self._form.set_visible(simulate)
        self._measurement.visible = not simulate
        self._open.visible = not simulate
        self._marks_from_object.enabled = simulate

    def _on_measurement_changed(self, *_):
        layer = self._measurement.value
        if layer is None:
            return
        depth = layer.metadata[GHOST_MEASUREMENT].get("metadata", {}).get("modulation_depth")
        if isinstance(depth, (int, float)) and 0 < depth <= 1:
            self._form.modulation_depth.value = float(depth)

    # ----------------------------------------------------------------------- state
    @property
    def worker(self):
        """The running reconstruction worker, or None."""
        return self._controls.worker

    @property
    def train_worker(self):
        """The running training worker, or None."""
        return self._train_controls.worker

    @property
    def outputs(self):
        """``{method: layer}`` written by the last run and still in the viewer."""
        return {m: layer for (name, m), layer in self._outputs.items()
                if name == self._current and layer in self._viewer.layers}

    # ----------------------------------------------------------------------- running
    def _options(self, methods):
        depth = "estimate" if self._estimate.value else float(self._form.modulation_depth.value)
        options = {}
        for method in methods:
            opts = {"modulation_depth": depth}
            if method == "tv":
                opts.update(lam=float(self._lam.value), iterations=int(self._iterations.value))
            if method == "mwcnn" and self._model.value is not None:
                opts["model"] = self._model.value
            options[method] = opts
        return options

    def _job(self):
        from torchscope.backend import device_name

        methods = [m for m in _methods() if m in (self._methods.value or ())]
        if not methods:
            raise ValueError("Choose at least one reconstruction method.")
        device = device_name(self._device.value)
        job = {"methods": methods, "options": self._options(methods), "device": device}
        if self._source.value == SIMULATE:
            layer, obj = self._form.object_array()
            spec, patterns_line = self._form.patterns_spec(obj.shape[0])
            simulation = self._form.simulation()
            buckets_line = "buckets = " + format_call(f"{MODULE}.simulate_buckets", (),
                                                      simulation, image="obj, patterns")
            job.update(layer=layer, input=layer.name, obj=obj, patterns_spec=spec,
                       simulation=simulation,
                       lines=[self._form.object_line(layer), patterns_line,
                              buckets_line])
        else:
            layer = self._measurement.value
            if layer is None:
                raise ValueError("Choose a measurement layer, or open a .npz measurement file.")
            record = layer.metadata[GHOST_MEASUREMENT]
            path = record.get("path")
            lines = ([f"m = {MODULE}.load_measurement({path!r})",
                      "buckets, patterns = m.buckets, m.patterns"] if path else
                     [f"layer = viewer.layers[{layer.name!r}]",
                      f"buckets = layer.metadata[{GHOST_MEASUREMENT!r}]['buckets']",
                      "patterns = layer.data"])
            job.update(layer=layer, input=layer.name, buckets=np.asarray(record["buckets"]),
                       patterns=np.asarray(layer.data), lines=lines)
        return job

    def run(self):
        """Start the measurement and the reconstructions (what Run does).

        Returns the started worker, or None when the input was refused (the reason is shown as
        a notification).
        """
        try:
            job = self._job()
        except (TypeError, ValueError) as error:
            show_error(str(error))
            return None
        keys = ("buckets", "patterns", "obj", "patterns_spec", "simulation")
        return self._controls.start(
            reconstruction_job, job["methods"], job["options"], job["device"],
            **{k: job[k] for k in keys if k in job},
            returned=partial(self._write, job),
            description=f"Ghost imaging of {job['input']}",
        )

    def stop(self):
        """Ask the running job to stop at its next snapshot (what Stop does)."""
        self._controls.stop()

    def _record(self, job, method):
        opts = dict(job["options"][method])
        model = opts.pop("model", None)
        call = format_call(f"{MODULE}.reconstruct", (),
                           {"method": method, **opts, "device": job["device"]},
                           image="buckets, patterns")
        lines = list(job["lines"])
        if model is not None:
            call = call[:-1] + ", model=model)"
            path = self._model_files.get(id(model))
            if path is not None:
                lines.append(f"model = {MODULE}.load_mwcnn({path!r})")
            else:  # trained here: its training replayed
                lines += self._model_lines.get(id(model), [])
        record = call_record(f"{MODULE}.reconstruct", "\n".join([*lines, f"image = {call}"]),
                             parameters=opts, device=job["device"], input=job["input"],
                             method=method)
        if model is not None:
            record["model"] = dict(getattr(model, "config", {}))
        return record

    def _write(self, job, result):
        """Main thread: one layer per method, the grid view, the CNR."""
        source = job["layer"]
        self._current = job["input"]
        for method, image in result["images"].items():
            kwargs = {
                "name": f"{method}({job['input']})",
                "metadata": {"torchscope": self._record(job, method)},
                "colormap": "gray",
                **plane_geometry(source, image.ndim),
            }
            key = (job["input"], method)
            self._outputs[key] = add_or_update_layer(self._viewer, self._outputs.get(key),
                                                     image, kwargs, "image")
        meta = {"modulation_depth": job["options"][job["methods"][0]]["modulation_depth"]}
        if "simulation" in job:
            meta = {**job["simulation"], "patterns": job["lines"][1].removeprefix("patterns = "),
                    "object": job["input"]}
            spacing = _pixel_size(source)
            if spacing is not None:
                meta["spacing"] = spacing
        self._last = (result["buckets"], result["patterns"], meta)
        if self._grid.value and not _grid(self._viewer).enabled:
            _grid(self._viewer).enabled = True
            self._viewer.reset_view()
        self._update_cnr()

    # ----------------------------------------------------------------------- marks, CNR
    def _marks_geometry(self):
        if self._source.value == SIMULATE and self._form.object.value is not None:
            return self._form.object.value
        return self._measurement.value

    def marks_from_object(self, *_):
        """Add a marks layer from the object: 1 where it transmits, 2 where it does not."""
        try:
            layer, obj = self._form.object_array()
        except ValueError as error:
            show_error(str(error))
            return None
        lo, hi = float(obj.min()), float(obj.max())
        if hi <= lo:
            show_error(f"Object {layer.name!r} is uniform: nothing to mark.")
            return None
        marks = np.zeros(obj.shape, dtype=np.uint8)
        marks[obj >= lo + 0.9 * (hi - lo)] = OBJECT_LABEL
        marks[obj <= lo + 0.1 * (hi - lo)] = BACKGROUND_LABEL
        call = "\n".join([
            self._form.object_line(layer), "lo, hi = obj.min(), obj.max()",
            (f"marks = ({OBJECT_LABEL} * (obj >= lo + 0.9 * (hi - lo)) + {BACKGROUND_LABEL} * "
             "(obj <= lo + 0.1 * (hi - lo))).astype('uint8')")])
        record = call_record("marks from the object", call, parameters={"object": 0.9,
                                                                        "background": 0.1},
                             device=None, input=layer.name)
        return self._add_marks(marks, layer, {"torchscope": record})

    def new_marks(self, *_):
        """Add an empty marks layer the size of the current input, to paint 1 and 2 in."""
        layer = self._marks_geometry()
        if layer is None:
            show_error("Choose an object or a measurement first: the marks take its size.")
            return None
        shape = tuple(layer.data.shape[-2:])
        return self._add_marks(np.zeros(shape, dtype=np.uint8), layer)

    def _add_marks(self, marks, layer, metadata=None):
        labels = self._viewer.add_labels(marks, name=f"marks({layer.name})", opacity=0.5,
                                         metadata=metadata or {}, **plane_geometry(layer, 2))
        labels.selected_label = OBJECT_LABEL
        self._marks.value = labels
        return labels

    def _on_marks_changed(self, *_):
        old, new = self._marks_layer, self._marks.value
        if old is not new:
            if old is not None:
                for event in (old.events.paint, old.events.data):
                    event.disconnect(self._schedule_cnr)
            if new is not None:
                for event in (new.events.paint, new.events.data):
                    event.connect(self._schedule_cnr)
            self._marks_layer = new
        self._update_cnr()

    def _schedule_cnr(self, *_):
        """Update the CNR once the current edit is done (napari emits ``paint`` for a
        programmatic edit before it writes the data); several edits give one update."""
        if not self._cnr_pending:
            self._cnr_pending = True
            QTimer.singleShot(0, self._update_cnr)

    def _update_cnr(self, *_):
        """Recompute the CNR of every result from the marks layer (main thread, cheap)."""
        from torchscope.ghost import cnr

        self._cnr_pending = False
        self.cnr_values = {}
        marks = self._marks.value
        outputs = self.outputs
        if marks is None or marks not in self._viewer.layers:
            self._cnr.value = ("Mark the object (label 1) and the background (label 2) in a "
                               "Labels layer to see the CNR." if outputs else "")
            return
        data = np.asarray(marks.data)
        obj, background = data == OBJECT_LABEL, data == BACKGROUND_LABEL
        if not obj.any() or not background.any():
            self._cnr.value = (f"{marks.name}: paint label {OBJECT_LABEL} (object) and label "
                               f"{BACKGROUND_LABEL} (background).")
            return
        lines = []
        for layer in outputs.values():
            image = np.asarray(layer.data)
            if image.shape[-2:] != data.shape:
                lines.append(f"{layer.name}: marks are {data.shape}, image {image.shape[-2:]}")
                continue
            value = cnr(image, obj, background_mask=background)
            self.cnr_values[layer.name] = value
            shown = (f"{value:.3g}" if np.ndim(value) == 0 else
                     ", ".join(f"{v:.3g}" for v in np.ravel(value)[:8]))
            lines.append(f"{layer.name}: CNR {shown}")
            layer.metadata["torchscope"]["cnr"] = {"value": np.asarray(value).tolist(),
                                                   "marks": marks.name}
        self._cnr.value = "\n".join(lines)

    # ----------------------------------------------------------------------- files
    def _on_open(self, *_):
        path = self._open.value
        if path is None or not Path(path).is_file():
            return
        from torchscope.ghost import load_measurement

        try:
            measurement = load_measurement(path)
        except (OSError, TypeError, ValueError) as error:
            show_error(f"Cannot open {path}: {error}")
            return
        data, kwargs, _ = ghost_measurement_layer(measurement, path)
        layer = self._viewer.add_image(data, **kwargs)
        self._measurement.value = layer

    def _on_save(self, *_):
        path = self._save.value
        if path is None or not str(path) or Path(path).is_dir():
            return
        if self._last is None:
            show_error("Nothing to save yet: run a simulation first.")
            return
        from torchscope.ghost import save_measurement

        if not Path(path).suffix:  # the reader claims .npz files: a bare name gets the suffix
            path = Path(path).with_suffix(".npz")
        buckets, patterns, meta = self._last
        try:
            save_measurement(path, buckets, patterns, metadata=meta)
        except (OSError, TypeError, ValueError) as error:
            show_error(f"Cannot save {path}: {error}")
            return
        show_info(f"Saved the measurement to {path}.")

    # ----------------------------------------------------------------------- training
    def _training_patterns(self):
        """The masks to train on, and the console line that makes them (``patterns = ...``)."""
        if self._source.value == SIMULATE:
            _, obj = self._form.object_array()
            spec, line = self._form.patterns_spec(obj.shape[0])
            return make_patterns(spec), line
        layer = self._measurement.value
        if layer is None:
            raise ValueError("Choose a measurement layer: the network learns its patterns.")
        return np.asarray(layer.data), f"patterns = viewer.layers[{layer.name!r}].data"

    def train(self):
        """Train the CH-MWCNN on the current mask set (what Train does); returns the worker."""
        from torchscope.backend import device_name

        try:
            patterns, patterns_line = self._training_patterns()
        except (TypeError, ValueError) as error:
            show_error(str(error))
            return None
        steps, batch = int(self._steps.value), int(self._batch.value)
        seed, passes = int(self._form.seed.value), int(self._passes.value)
        device = device_name(self._device.value)
        text = f"trained here: {steps} steps on {len(patterns)} masks of {patterns.shape[1]}²"
        if passes > 1:
            text += f", {passes} passes"
        # the console lines that train the same network (deterministic on a CPU with the same
        # torch thread count): what the records of its reconstructions start from
        train = format_call(f"{MODULE}.train_mwcnn", (), {
            "steps": steps, "batch_size": batch, "seed": seed, "device": device,
            "stages": passes}, image="training_patterns")
        lines = ["training_" + patterns_line, f"training = {train}", "while True:",
                 "    try:", "        next(training)", "    except StopIteration as done:",
                 "        model = done.value", "        break"]
        worker = self._train_controls.start(
            training_job, patterns, steps, batch, seed, device, passes,
            returned=partial(self._on_trained, text, lines),
            description="CH-MWCNN training",
        )
        worker.yielded.connect(self._on_training_step)
        return worker

    def _on_training_step(self, progress):
        if getattr(progress, "loss", None) is not None:
            self._train_controls.progress.label = f"loss {progress.loss:.3g}"

    def _on_trained(self, text, lines, model):
        self._models.append((text, model))
        self._model_lines[id(model)] = lines
        self._model.reset_choices()
        self._model.value = model
        show_info(f"CH-MWCNN {text}; it is now the mwcnn model of this dock.")

    def _on_model_file(self, *_):
        path = self._model_file.value
        if path is None or not Path(path).is_file():
            return
        from torchscope import ghost

        try:
            model = ghost.load_mwcnn(path, device="cpu")
        except (OSError, TypeError, ValueError) as error:
            show_error(f"Cannot load {path}: {error}")
            return
        self._model_files[id(model)] = str(path)
        self._on_trained(f"loaded: {Path(path).name}", [], model)

    def _on_save_model(self, *_):
        path = self._save_model.value
        if path is None or not str(path) or Path(path).is_dir():
            return
        if self._model.value is None:
            show_error("Choose a trained or loaded model to save (the shipped ones ship).")
            return
        from torchscope import ghost

        try:
            ghost.save_mwcnn(path, self._model.value)
        except (OSError, TypeError, ValueError) as error:
            show_error(f"Cannot save {path}: {error}")
            return
        show_info(f"Saved the model to {path}.")


# ------------------------------------------------------------------------ the curve dock
class CNRCurveWidget(Container):
    """The "Ghost CNR curve" dock: CNR against the number of exposures (the paper's Fig. 2(j)).

    One experiment is simulated with the whole mask sequence and each chosen method
    reconstructs from its first ``k`` exposures, for ``points`` values of ``k`` up to the number
    of masks (:func:`torchscope.ghost.cnr_curve`). The object's own pixels define object and
    background (above / below the middle of its range). The result is ``widget.curve`` (a
    ``CNRCurve``) and the plot in the dock.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        self._viewer = napari_viewer
        self._form = SimulationForm(napari_viewer)
        self._form.ratio.label = "sampling ratio (last point)"
        self._form.ratio.value = 1.0
        self._methods = _methods_widget()
        self._methods.value = [m for m in ("gi", "dgi", "tv") if m in self._methods.choices]
        self._points = SpinBox(name="points", label="points", value=8, min=2, max=64,
                               tooltip="Numbers of exposures: evenly spaced up to the number "
                               "of masks.")
        self._device = _device_widget()
        self._keep = CheckBox(name="keep", text="keep the earlier curves", value=False,
                              tooltip="Draw the next curves over the ones shown "
                              "(e.g. speckle against Hadamard masks, as in the paper's Fig. "
                              "2(j)).")
        self._controls = RunControls(name="controls")
        self.curve = None
        self.curves = []  # (legend suffix, CNRCurve) of every curve shown
        self._canvas, self._figure = self._make_canvas()
        widgets = [*self._form.widgets, self._methods, self._points, self._device, self._keep,
                   self._controls]
        self._table = Label(name="table", value="", label=" ")
        if self._canvas is None:
            self._table.value = "Install matplotlib to see the plot."
        widgets.append(self._table)
        super().__init__(widgets=widgets)
        if self._canvas is not None:
            self.native.layout().addWidget(self._canvas)
        self._controls.run_button.changed.connect(self.run)
        follow_layer_list(napari_viewer, self.reset_choices)

    def _make_canvas(self):
        try:
            from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
            from matplotlib.figure import Figure
        except ImportError:
            return None, None
        from napari.utils.theme import get_theme

        theme = get_theme(self._viewer.theme)
        self._colors = {"background": str(theme.background), "text": str(theme.text),
                        "grid": str(theme.primary)}
        figure = Figure(figsize=(4, 3), facecolor=self._colors["background"],
                        layout="constrained")
        canvas = FigureCanvasQTAgg(figure)
        canvas.setMinimumHeight(260)
        self._draw_axes(figure)
        return canvas, figure

    def _draw_axes(self, figure):
        figure.clear()
        ax = figure.add_subplot()
        ax.set_facecolor(self._colors["background"])
        for spine in ax.spines.values():
            spine.set_color(self._colors["text"])
        ax.tick_params(colors=self._colors["text"])
        ax.xaxis.label.set_color(self._colors["text"])
        ax.yaxis.label.set_color(self._colors["text"])
        ax.set_xlabel("number of exposures")
        ax.set_ylabel("CNR")
        ax.grid(True, color=self._colors["grid"], linewidth=0.5)
        return ax

    @property
    def worker(self):
        """The running worker, or None."""
        return self._controls.worker

    def counts(self, m):
        """The numbers of exposures for ``m`` masks: ``points`` values evenly spaced up to m."""
        points = int(self._points.value)
        counts = np.unique(np.linspace(m / points, m, points).round().astype(int))
        return counts[counts >= 2]

    def _job(self):
        from torchscope.backend import device_name

        methods = [m for m in _methods() if m in (self._methods.value or ())]
        if not methods:
            raise ValueError("Choose at least one reconstruction method.")
        layer, obj = self._form.object_array()
        spec, patterns_line = self._form.patterns_spec(obj.shape[0])
        m = len(spec) if isinstance(spec, np.ndarray) else self._mask_count(spec, obj.shape[0])
        counts = self.counts(m)
        if counts.size == 0:
            raise ValueError(f"{m} masks: at least 2 are needed for a curve.")
        simulation = self._form.simulation()
        return {"layer": layer, "obj": obj, "spec": spec, "methods": methods, "counts": counts,
                "simulation": simulation, "device": device_name(self._device.value),
                "patterns_line": patterns_line}

    @staticmethod
    def _mask_count(spec, n):
        name, args, kwargs = spec
        if name == "speckle_patterns":
            return args[1]
        return max(1, round(kwargs["ratio"] * n * n))

    def run(self):
        """Start the curve (what Run does); returns the worker or None."""
        try:
            job = self._job()
        except (TypeError, ValueError) as error:
            show_error(str(error))
            return None
        return self._controls.start(
            curve_job, job["obj"], job["spec"], job["methods"], job["counts"],
            job["simulation"], job["device"],
            returned=partial(self._show, job),
            description=f"CNR curve of {job['layer'].name}",
        )

    def stop(self):
        """Ask the running curve to stop after the current number of exposures."""
        self._controls.stop()

    def _show(self, job, curve):
        self.curve = curve
        masks = {v: t for t, v in MASKS}[self._form.masks.value]
        suffix = f"{masks.split(',')[0].split(' (')[0].lower()}, {job['layer'].name}"
        self.curves = [*self.curves, (suffix, curve)] if self._keep.value else [(suffix, curve)]
        header = "exposures: " + ", ".join(str(k) for k in curve.counts)
        rows = [f"{m}: " + ", ".join(f"{v:.2f}" for v in row)
                for m, row in zip(curve.methods, curve.cnr)]
        self._table.value = "\n".join([suffix, header, *rows])
        if self._figure is None:
            return
        ax = self._draw_axes(self._figure)
        several = len(self.curves) > 1
        for suffix, shown in self.curves:
            for method, row in zip(shown.methods, shown.cnr):
                label = f"{method} ({suffix})" if several else method
                ax.plot(shown.counts, row, marker="o", markersize=3, label=label)
        if not several:
            ax.set_title(suffix, color=self._colors["text"])
        legend = ax.legend(facecolor=self._colors["background"], edgecolor=self._colors["grid"],
                           fontsize="small")
        for text in legend.get_texts():
            text.set_color(self._colors["text"])
        self._canvas.draw_idle()

"""Docks for :mod:`torchscope.alzheimer`: classify one MRI slice, and train a model.

:class:`ClassifyWidget`
    Picks an MRI layer (a 3D volume or a 2D slice), a slice (axis and index; the viewer moves
    to it) and a model (the shipped demo, or a file written by ``save_model``), then, in a
    thread worker: the probability of AD or MCI (shown in the dock and recorded in the output
    layers' metadata), the autoencoder's reconstruction and its absolute error, the feature
    maps of one convolution block as a stack, and an occlusion-sensitivity overlay (red where a
    region pushes the decision towards AD, blue towards healthy, transparent where it does not
    matter). The output layers sit exactly on the slice: for a volume they are one voxel thick
    along the slicing axis, with the input's scale, translate, axis labels and units.
:class:`TrainWidget`
    Builds a cohort (a generated phantom cohort, or an OASIS-1 folder), trains the autoencoder
    and the classifier (:func:`torchscope.alzheimer.iterate_train`) with progress, live loss
    curves and Stop (training ends early with the best weights so far), then shows the test
    subjects' metrics and confusion matrix, and saves the model.

Research software, not a diagnostic device. torch, matplotlib and the science module's heavy
parts are imported when a dock is created or run, not when napari reads the manifest.
"""

import dataclasses
import inspect
import weakref
from functools import partial
from pathlib import Path

import napari.viewer
import numpy as np
from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    PushButton,
    SpinBox,
)
from napari.layers import Image
from napari.utils.notifications import show_error, show_info

from torchscope.napari._workers import (
    RunControls,
    add_or_update_layer,
    call_record,
    dock_closed,
    follow_layer_list,
    format_call,
    resampled_geometry,
    spatial_properties,
    with_leading_axes,
)

MODULE = "torchscope.alzheimer"
DEMO = "demo"
FILE = "file"
NOT_DIAGNOSTIC = "Research software, not a diagnostic device."
#: The convolution blocks whose activations the dock can show: (text, (network, layer)).
FEATURE_CHOICES = [
    *((f"autoencoder {name}", ("autoencoder", name)) for name in
      ("conv1", "conv2", "conv3", "conv4", "conv5", "conv6")),
    *((f"classifier {name}", ("classifier", name)) for name in ("conv1", "conv2", "conv3")),
]


def _slice_defaults():
    """``extract_slice``'s default axis and index (OASIS-1's axial slice 105, the paper's)."""
    from torchscope.alzheimer import extract_slice

    parameters = inspect.signature(extract_slice).parameters
    return parameters["axis"].default, parameters["index"].default


def _train_defaults():
    """``iterate_train``'s default epochs per stage (the dock starts from them)."""
    from torchscope.alzheimer import iterate_train

    parameters = inspect.signature(iterate_train).parameters
    return {k: parameters[k].default for k in ("epochs_ae", "epochs_clf", "epochs_finetune")}


def _device_choices():
    from torchscope.backend import available_devices

    return [("auto", None), *((d, d) for d in available_devices())]


def _occlusion_colormap():
    """Blue (towards healthy) - transparent (no effect) - red (towards AD)."""
    from napari.utils.colormaps import Colormap

    return Colormap(
        colors=[[0.1, 0.35, 1.0, 1.0], [0.1, 0.35, 1.0, 0.0], [1.0, 0.15, 0.05, 0.0],
                [1.0, 0.15, 0.05, 1.0]],
        controls=[0.0, 0.5, 0.5, 1.0],
        name="occlusion (blue: healthy, red: AD)",
    )


# --------------------------------------------------------------------------- classify
def _classify(job):
    """The classification job (a thread worker's generator): yields (step, steps)."""
    import torchscope.alzheimer as az

    device, steps = job["device"], 6
    model = az.load_model(job["model_path"], device=device)
    yield 1, steps
    if job["axis"] is None:
        slice_ = az.normalise_slice(job["data"])
    else:
        slice_ = az.extract_slice(job["data"], axis=job["axis"], index=job["index"])
    yield 2, steps
    probability = az.predict(model, slice_, device=device)
    yield 3, steps
    reconstruction = az.reconstruct(model, slice_, device=device)
    familiarity = az.familiarity(model, slice_, reconstruction=reconstruction)
    yield 4, steps
    network, layer = job["features"]
    maps = az.feature_maps(model, slice_, layers=[layer], network=network, device=device)[layer]
    yield 5, steps
    occlusion = az.occlusion_map(
        model, slice_, patch=job["patch"], stride=job["stride"], device=device
    )
    yield 6, steps
    return {
        "slice": slice_,
        "probability": probability,
        "reconstruction": reconstruction,
        "error": np.abs(slice_ - reconstruction),
        "features": maps,
        "occlusion": occlusion,
        "familiarity": familiarity,
    }


class ClassifyWidget(Container):
    """Classify one MRI slice with a trained model, and show why.

    Children (``widget.<name>.value`` reads and sets them): ``image`` (the MRI layer),
    ``axis`` and ``slice_index`` (the slice, for a volume), ``model`` (demo or file) and
    ``model_file``, ``features`` (which convolution block to show), ``patch`` and ``stride``
    (occlusion, pixels), ``device``, ``controls`` (Run, Stop, progress) and ``result``.
    After a run, :attr:`probability` holds the probability of AD or MCI.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        self._viewer = napari_viewer
        self._outputs = weakref.WeakKeyDictionary()  # input layer -> {name: output layer}
        self._syncing = False
        self.probability = None
        self.familiar = None  # whether the last slice resembles the training slices
        self._default_axis, self._default_index = _slice_defaults()

        self._image = ComboBox(name="image", label="MRI", choices=self._layer_choices)
        self._axis = ComboBox(
            name="axis",
            label="slice axis",
            choices=self._axis_choices,
            tooltip="The axis to slice across (OASIS-1's atlas volumes are axial along 2).",
        )
        self._index = SpinBox(
            name="slice_index",
            label="slice",
            min=0,
            max=0,
            tooltip="0-based slice index; the viewer moves to it (and follows the slider).",
        )
        self._model = ComboBox(
            name="model",
            choices=[("demo (trained on phantoms)", DEMO), ("saved model file", FILE)],
            tooltip="The shipped demo model, trained on a synthetic cohort (see its model "
            "card), or a file written by the Train dock or torchscope.alzheimer.save_model.",
        )
        self._model_file = FileEdit(
            name="model_file", label="model file", mode="r", filter="*.safetensors",
            nullable=True, visible=False,
        )
        self._features = ComboBox(
            name="features",
            label="feature maps",
            choices=FEATURE_CHOICES,
            tooltip="Which convolution block's activations to show as a stack (the paper's "
            "Fig. 3): the autoencoder's, or the fine-tuned classifier's encoder.",
        )
        self._patch = SpinBox(
            name="patch", label="occlusion patch (px)", value=16, min=1, max=256,
            tooltip="Side of the square hidden at each position.",
        )
        self._stride = SpinBox(
            name="stride", label="occlusion stride (px)", value=8, min=1, max=256,
            tooltip="Step between occluded squares (at most the patch).",
        )
        self._device = ComboBox(
            name="device", choices=_device_choices(),
            tooltip="Where torch computes: auto picks CUDA, then Apple MPS, then the CPU.",
        )
        self._controls = RunControls(name="controls")
        self._result = Label(name="result", value="")
        note = Label(name="note", value=NOT_DIAGNOSTIC)
        super().__init__(
            widgets=[
                self._image, self._axis, self._index, self._model, self._model_file,
                self._features, self._patch, self._stride, self._device, self._controls,
                _unlabelled(self._result, note),
            ]
        )
        _wrapping(self._result, lines=8)
        note.native.setStyleSheet("color: gray; font-size: small")
        self._controls.run_button.changed.connect(self.run)
        self._image.changed.connect(self._on_image_changed)
        self._axis.changed.connect(self._on_axis_changed)
        self._index.changed.connect(self.show_slice)
        self._model.changed.connect(self._on_model_changed)
        follow_layer_list(napari_viewer, self._on_layers_changed)
        napari_viewer.dims.events.current_step.connect(self._on_dims_changed)
        self._on_image_changed()

    # ----------------------------------------------------------------------- choices
    def _layer_choices(self, _widget=None):
        return [
            (layer.name, layer)
            for layer in self._viewer.layers
            if isinstance(layer, Image)
            and layer.ndim in (2, 3)
            and not layer.rgb
            and not layer.multiscale
            and not _is_output(layer)
        ]

    def _axis_choices(self, _widget=None):
        layer = self._image.value
        if layer is None or layer.ndim != 3:
            return [("-", None)]
        choices = []
        for i, (label, n) in enumerate(zip(layer.axis_labels, layer.data.shape)):
            named = "" if label.lstrip("-").isdigit() else f" {label}"  # napari's default: -1
            choices.append((f"{i}{named} ({n} slices)", i))
        return choices

    # ----------------------------------------------------------------------- state
    @property
    def worker(self):
        """The running thread worker, or None."""
        return self._controls.worker

    @property
    def result(self):
        """The label showing the probability of the last run."""
        return self._result

    def _on_layers_changed(self, *_):
        current = self._image.value
        self._image.reset_choices()
        if self._image.value is not current:
            self._on_image_changed()

    def _on_image_changed(self, *_):
        layer = self._image.value
        volume = layer is not None and layer.ndim == 3
        self._axis.visible = self._index.visible = volume
        self._axis.reset_choices()
        if volume and self._default_axis in self._axis.choices:
            self._axis.value = self._default_axis
        self._on_axis_changed()

    def _on_axis_changed(self, *_):
        layer, axis = self._image.value, self._axis.value
        if layer is None or layer.ndim != 3 or axis is None:
            return
        n = layer.data.shape[axis]
        self._syncing = True
        try:
            self._index.max = n - 1
            self._index.value = self._default_index if self._default_index < n else n // 2
        finally:
            self._syncing = False
        self.show_slice()

    def _on_model_changed(self, *_):
        self._model_file.visible = self._model.value == FILE

    def _world_axis(self, layer, axis):
        """The viewer axis that data ``axis`` of ``layer`` runs along, or None when the
        layer's rotation, shear or affine tilts it against every viewer axis (then napari
        cannot show that slice face-on, and the dock does not move the slider)."""
        origin = np.asarray(layer.data_to_world(np.zeros(layer.ndim)), dtype=float)
        # the linear part of data -> world: column j is how data axis j moves in the world
        linear = np.stack([np.asarray(layer.data_to_world(unit), dtype=float) - origin
                           for unit in np.eye(layer.ndim)], axis=1)
        moves = np.abs(linear) > 1e-9 * np.abs(linear).max(axis=0)  # per column
        moved = np.flatnonzero(moves[:, axis])
        # along one world axis only, and no other data axis along that one
        if len(moved) != 1 or np.count_nonzero(moves[moved[0]]) != 1:
            return None
        # A layer's axes are the viewer's last ``layer.ndim`` axes.
        return self._viewer.dims.ndim - layer.ndim + int(moved[0])

    def show_slice(self, *_):
        """Move the viewer to the chosen slice: slicing axis off screen, its slider there."""
        layer, axis = self._image.value, self._axis.value
        if self._syncing or layer is None or layer.ndim != 3 or axis is None:
            return
        dims = self._viewer.dims
        world_axis = self._world_axis(layer, axis)
        if world_axis is None:
            return
        self._syncing = True
        try:
            if dims.ndisplay == 2 and world_axis in dims.displayed:
                # the other axes in their natural order: keeping the current one showed the
                # same slice transposed or not, depending on the axes chosen before
                order = sorted(a for a in dims.order if a != world_axis)
                dims.order = (world_axis, *order)
            position = np.zeros(layer.ndim)
            position[axis] = self._index.value
            dims.set_point(world_axis,
                           layer.data_to_world(position)[world_axis - dims.ndim + layer.ndim])
        finally:
            self._syncing = False

    def _on_dims_changed(self, *_):
        """The slider moved: follow it when it moves along the chosen axis."""
        layer, axis = self._image.value, self._axis.value
        if self._syncing or layer is None or layer.ndim != 3 or axis is None:
            return
        dims = self._viewer.dims
        world_axis = self._world_axis(layer, axis)
        if world_axis is None or world_axis in dims.displayed:
            return
        index = int(np.round(layer.world_to_data(dims.point)[axis]))
        if 0 <= index < layer.data.shape[axis] and index != self._index.value:
            self._syncing = True
            try:
                self._index.value = index
            finally:
                self._syncing = False

    # ----------------------------------------------------------------------- running
    def run(self):
        """Classify the chosen slice (what Run does).

        Returns the started worker, or None when the input was refused (the reason is shown
        as a notification).
        """
        try:
            job = self._job()
        except (TypeError, ValueError, FileNotFoundError) as error:
            show_error(str(error))
            return None
        self.show_slice()
        self.probability = self.familiar = None
        self._result.value = ""  # no stale result while (or if) this run fails
        return self._controls.start(
            _classify, job, returned=partial(self._write, job),
            description=f"Classifying {job['layer'].name}",
        )

    def stop(self):
        """Ask the running job to stop between steps (what Stop does)."""
        self._controls.stop()

    def _job(self):
        from torchscope.alzheimer import demo_model_path
        from torchscope.backend import device_name

        layer = self._image.value
        if layer is None:
            raise ValueError("Classify: choose an MRI layer (a 3D volume or a 2D slice).")
        if self._model.value == DEMO:
            model_path = demo_model_path()
        else:
            model_path = self._model_file.value
            if model_path is None or not Path(model_path).is_file():
                raise ValueError("Classify: choose a model file (.safetensors from save_model).")
        if self._stride.value > self._patch.value:
            raise ValueError(
                f"occlusion stride ({self._stride.value} px) must not exceed the patch "
                f"({self._patch.value} px): pixels would be missed."
            )
        volume = layer.ndim == 3
        return {
            "layer": layer,
            "data": np.asarray(layer.data),
            "axis": self._axis.value if volume else None,
            "index": int(self._index.value) if volume else None,
            "model_path": str(model_path),
            "demo": self._model.value == DEMO,
            "features": self._features.value,
            "patch": int(self._patch.value),
            "stride": int(self._stride.value),
            "device": device_name(self._device.value),
        }

    def _calls(self, job):
        """The console lines that reproduce a run, given ``image = layer.data``."""
        device = job["device"]
        model = (
            f"{MODULE}.load_model({MODULE}.demo_model_path(), device={device!r})"
            if job["demo"]
            else f"{MODULE}.load_model({job['model_path']!r}, device={device!r})"
        )
        if job["axis"] is None:
            slice_ = f"{MODULE}.normalise_slice(image)"
        else:
            slice_ = format_call(
                f"{MODULE}.extract_slice", (), {"axis": job["axis"], "index": job["index"]}
            )
        network, block = job["features"]
        on_slice = "model, slice_"
        return {
            "model": f"model = {model}",
            "slice": f"slice_ = {slice_}",
            "probability": format_call(f"{MODULE}.predict", (), {"device": device},
                                       image=on_slice),
            "reconstruction": format_call(f"{MODULE}.reconstruct", (), {"device": device},
                                          image=on_slice),
            "error": "numpy.abs(slice_ - "
            + format_call(f"{MODULE}.reconstruct", (), {"device": device}, image=on_slice)
            + ")",
            "features": format_call(
                f"{MODULE}.feature_maps", (),
                {"layers": [block], "network": network, "device": device}, image=on_slice,
            ) + f"[{block!r}]",
            "occlusion": format_call(
                f"{MODULE}.occlusion_map", (),
                {"patch": job["patch"], "stride": job["stride"], "device": device},
                image=on_slice,
            ),
        }

    def _write(self, job, result):
        """Main thread: the probability in the dock, and the output layers on the slice."""
        layer = job["layer"]
        p = result["probability"]
        self.probability = p
        calls = self._calls(job)
        where = "" if job["axis"] is None else f", axis {job['axis']}, slice {job['index']}"
        model = "demo model" if job["demo"] else Path(job["model_path"]).name
        psnr, validation, familiar = result["familiarity"]
        self.familiar = familiar
        check = (f"autoencoder reconstruction {psnr:.1f} dB (validation {validation:.1f} dB)"
                 if np.isfinite(validation) else f"autoencoder reconstruction {psnr:.1f} dB")
        warning = "" if familiar else (
            "<br><b style='color: orange'>This slice is unlike the model's training slices "
            "(the autoencoder reconstructs it far worse than its validation slices): the "
            "probability may mean little.</b>")
        self._result.value = (
            f"<b style='font-size: large'>P(AD or MCI) = {p:.3f}</b><br>"
            f"{layer.name}{where}; {model}; {check}{warning}<br><small>Overlay: red regions "
            "push towards AD, blue towards healthy. Reconstruction, |error| and feature maps "
            "are hidden layers.</small>"
        )
        parameters = {"model": "demo" if job["demo"] else job["model_path"],
                      "axis": job["axis"], "index": job["index"]}
        geometry = _slice_geometry(layer, job["axis"], job["index"])
        network, block = job["features"]
        outputs = self._outputs.setdefault(layer, {})
        specs = [
            ("reconstruction", result["reconstruction"], f"reconstruction({layer.name})",
             {"colormap": "gray", "contrast_limits": (0.0, 1.0)}, False),
            ("error", result["error"], f"|error|({layer.name})",
             {"colormap": "magma"}, False),
            ("features", result["features"], f"{network} {block}({layer.name})",
             {"colormap": "viridis"}, False),
            ("occlusion", result["occlusion"], f"occlusion({layer.name})",
             _occlusion_display(result["occlusion"]), True),
        ]
        for kind, data, name, display, visible in specs:
            if kind == "features":
                data, placement = _stack_on_slice(data, result["slice"].shape, geometry,
                                                  job["axis"])
            else:
                data, placement = _on_slice(data, geometry, job["axis"])
            meta = call_record(f"{MODULE}.{_FUNCTIONS[kind]}", calls[kind],
                               parameters=parameters, device=job["device"], input=layer.name,
                               **parameters, probability=p,
                               setup=[calls["model"], calls["slice"]],
                               predict=calls["probability"])
            kwargs = {"name": name, "metadata": {"torchscope": meta}, **placement, **display}
            previous = outputs.get(name)
            out = add_or_update_layer(self._viewer, previous, data, kwargs, "image")
            if kind == "occlusion":
                out.contrast_limits = display["contrast_limits"]
            if out is not previous:
                out.visible = visible
            outputs[name] = out
        self.show_slice()


_FUNCTIONS = {
    "reconstruction": "reconstruct",
    "error": "reconstruct",
    "features": "feature_maps",
    "occlusion": "occlusion_map",
}


def _wrapping(label, lines):
    """A label that wraps its text, with room for ``lines`` lines, from the top."""
    from qtpy.QtCore import Qt

    label.native.setWordWrap(True)
    label.native.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    label.native.setMinimumHeight(lines * label.native.fontMetrics().lineSpacing())


def _unlabelled(*widgets):
    """Widgets spanning the dock's width (no label column)."""
    box = Container(widgets=widgets, labels=False)
    box.margins = (0, 0, 0, 0)
    return box


def _is_output(layer):
    """True for a layer this dock wrote (so it is not offered as an MRI input)."""
    record = layer.metadata.get("torchscope", {}) if isinstance(layer.metadata, dict) else {}
    return str(record.get("function", "")).startswith(MODULE + ".") and "probability" in record


def _slice_geometry(layer, axis, index):
    """The input's geometry, moved onto slice ``index`` along ``axis`` (through the input's
    rotation and shear, so a transformed volume's slice stays where the volume has it)."""
    geometry = spatial_properties(layer)
    if axis is not None:
        origin = np.zeros(len(geometry["scale"]))
        origin[axis] = index
        geometry = resampled_geometry(geometry, origin)
    return geometry


def _on_slice(image, geometry, axis):
    """A 2D result placed on the slice: one voxel thick along ``axis`` for a volume."""
    data = image if axis is None else np.expand_dims(image, axis)
    return data, dict(geometry)


def _stack_on_slice(maps, shape, geometry, axis):
    """Feature maps ``(channels, h, w)`` as a stack over the slice of ``shape``.

    A map pooled by ``f`` gets ``f`` times the pixel size, and its pixel centres sit at the
    centres of the ``f x f`` input pixels they summarise. The channel is a new leading axis.
    """
    ndim = len(geometry["scale"])
    plane = [a for a in range(ndim) if a != axis]
    origin, step = np.zeros(ndim), np.ones(ndim)
    for a, n, m in zip(plane, shape, maps.shape[1:]):
        step[a] = n / m
        origin[a] = (step[a] - 1) / 2
    data = maps if axis is None else np.expand_dims(maps, axis + 1)
    return data, with_leading_axes(resampled_geometry(geometry, origin, step), 1,
                                   labels=("channel",))


def _occlusion_display(occlusion):
    limit = float(np.max(np.abs(occlusion))) or 1e-6
    return {
        "colormap": _occlusion_colormap(),
        "contrast_limits": (-limit, limit),
        "blending": "translucent",
        "opacity": 0.8,
    }


# --------------------------------------------------------------------------- train
PHANTOM = "phantom"
OASIS = "oasis"
_STAGE_TITLES = {
    "autoencoder": "autoencoder",
    "classifier_frozen": "classifier (encoder frozen)",
    "classifier_finetune": "classifier (fine-tuning)",
}


def _train(job):
    """The training job (a thread worker's generator).

    Yields ``(done, total, snapshot)``: ``snapshot`` is None or a
    :class:`torchscope.alzheimer.TrainProgress`. A true value sent into the generator
    (``worker.send(True)``, what Stop does) ends training early with the best weights so far;
    sent before training started, it ends the job with nothing trained (returns None).
    """
    import torchscope.alzheimer as az

    options = job["train"]
    stages = {
        "autoencoder": 0,
        "classifier_frozen": options["epochs_ae"],
        "classifier_finetune": options["epochs_ae"] + options["epochs_clf"],
    }
    total = 2 + sum(options[k] for k in ("epochs_ae", "epochs_clf", "epochs_finetune"))
    stop = yield 0, total, None
    if job["source"] == PHANTOM:
        cohort = az.phantom_cohort(**job["cohort"])
    else:
        cohort = az.load_oasis(**job["cohort"])
    stop = (yield 1, total, cohort) or stop
    if stop:
        return None
    training = az.iterate_train(cohort, **options)
    progress = next(training)
    while progress.stage != "done":
        done = 1 + stages[progress.stage] + progress.epoch
        # training goes on appending to its history while the main thread draws this snapshot
        frozen = {k: list(v) if isinstance(v, list) else v for k, v in progress.history.items()}
        stop = yield done, total, dataclasses.replace(progress, history=frozen)
        progress = training.send(bool(stop))
    trained = progress.trained
    try:
        metrics = az.evaluate(trained, trained.split.test, device=options["device"])
    except ValueError as error:  # e.g. a test part too small to score
        metrics = error
    yield total, total, None
    return trained, metrics


class _TrainControls(RunControls):
    """Run/Stop/progress for training: the job yields ``(done, total, snapshot)``, and Stop
    asks training to end early (keeping the best weights so far) rather than abandoning it."""

    def __init__(self, on_snapshot, **kwargs):
        super().__init__(**kwargs)
        self._on_snapshot = on_snapshot
        self.run_button.text = "Train"

    def stop(self):
        if self.worker is not None:
            self.worker.send(True)
            self.stop_button.enabled = False

    def _on_yielded(self, item):
        done, total, snapshot = item
        super()._on_yielded((done, total))
        if snapshot is not None and not dock_closed(self):
            self._on_snapshot(snapshot)


class TrainWidget(Container):
    """Train the autoencoder and classifier on a cohort; see the metrics; save the model.

    Children: ``source`` (phantom or OASIS folder), ``folder`` and ``clinical_csv`` (OASIS),
    ``n_subjects``, ``severity_low``, ``severity_high`` and ``cohort_seed`` (phantom),
    ``epochs_ae``, ``epochs_clf``, ``epochs_finetune``, ``seed``, ``device``, ``controls``
    (Train, Stop, progress), ``status``, the loss/confusion figure (:attr:`canvas`) and
    ``save_button``. After training, :attr:`trained` and :attr:`metrics` hold the results,
    :attr:`cohort` the cohort and :attr:`calls` the console lines that reproduce the run.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        self._viewer = napari_viewer
        self.trained = None
        self.metrics = None
        self.cohort = None
        self.calls = None

        self._source = ComboBox(
            name="source",
            choices=[("phantom cohort (generated)", PHANTOM), ("OASIS-1 folder", OASIS)],
            tooltip="A synthetic cohort built from nilearn's MNI152 template, or the unpacked "
            "OASIS-1 discs (*_t88_masked_gfc.hdr and oasis_cross-sectional.csv).",
        )
        self._folder = FileEdit(name="folder", label="OASIS folder", mode="d", visible=False)
        self._csv = FileEdit(
            name="clinical_csv", label="clinical CSV", mode="r", filter="*.csv",
            nullable=True, visible=False,
            tooltip="oasis_cross-sectional.csv; empty: the first clinical CSV under the folder.",
        )
        self._n_subjects = SpinBox(name="n_subjects", label="subjects", value=200, min=4,
                                   max=5000)
        self._severity_low = FloatSpinBox(
            name="severity_low", label="severity from", value=0.3, min=0.0, max=5.0, step=0.1,
            tooltip="Disease severity of the AD class is drawn uniformly from this range "
            "(1: 6 mm of ventricle enlargement, 1.5 mm of cortical thinning, 3 mm of "
            "hippocampal shrinkage on top of ageing).",
        )
        self._severity_high = FloatSpinBox(
            name="severity_high", label="severity to", value=1.0, min=0.0, max=5.0, step=0.1
        )
        self._cohort_seed = SpinBox(name="cohort_seed", label="cohort seed", value=0, min=0,
                                    max=2**31 - 1)
        epochs = _train_defaults()
        tip = ("Maximum epochs of the stage; it ends earlier when the validation loss stops "
               "improving (early stopping).")
        self._epochs_ae = SpinBox(name="epochs_ae", label="epochs autoencoder", min=0,
                                  max=10000, value=epochs["epochs_ae"], tooltip=tip)
        self._epochs_clf = SpinBox(name="epochs_clf", label="epochs classifier", min=0,
                                   max=10000, value=epochs["epochs_clf"], tooltip=tip)
        self._epochs_finetune = SpinBox(name="epochs_finetune", label="epochs fine-tuning",
                                        min=0, max=10000, value=epochs["epochs_finetune"],
                                        tooltip=tip)
        self._seed = SpinBox(
            name="seed", label="training seed", value=0, min=0, max=2**31 - 1,
            tooltip="Seeds the subject split, the initial weights, shuffling and dropout.",
        )
        self._device = ComboBox(name="device", choices=_device_choices())
        self._controls = _TrainControls(self._on_snapshot, name="controls")
        self._status = Label(name="status", value="")
        self._save = PushButton(name="save_button", text="Save model…", enabled=False)
        self._metrics = Label(name="metrics", value="")
        note = Label(name="note", value=NOT_DIAGNOSTIC)
        super().__init__(
            widgets=[
                self._source, self._folder, self._csv, self._n_subjects, self._severity_low,
                self._severity_high, self._cohort_seed, self._epochs_ae, self._epochs_clf,
                self._epochs_finetune, self._seed, self._device, self._controls,
                _unlabelled(self._status),
                _unlabelled(self._metrics, self._save, note),
            ]
        )
        self.canvas = _LossFigure(napari_viewer)
        layout = self.native.layout()
        layout.insertWidget(layout.count() - 1, self.canvas.widget)  # above the last row
        _wrapping(self._status, lines=6)
        note.native.setStyleSheet("color: gray; font-size: small")
        self._source.changed.connect(self._on_source_changed)
        self._controls.run_button.changed.connect(self.run)
        self._save.changed.connect(self._save_dialog)

    @property
    def worker(self):
        """The running thread worker, or None."""
        return self._controls.worker

    @property
    def status(self):
        """The label showing the training's progress and test figures."""
        return self._status

    @property
    def save_button(self):
        """Save model… (enabled once a model is trained)."""
        return self._save

    def _on_source_changed(self, *_):
        phantom = self._source.value == PHANTOM
        self._folder.visible = self._csv.visible = not phantom
        for widget in (self._n_subjects, self._severity_low, self._severity_high,
                       self._cohort_seed):
            widget.visible = phantom

    # ----------------------------------------------------------------------- running
    def run(self):
        """Build the cohort and train (what Train does); returns the worker or None."""
        try:
            job = self._job()
        except (TypeError, ValueError) as error:
            show_error(str(error))
            return None
        self.trained = self.metrics = self.cohort = None
        self.calls = job["calls"]
        self._save.enabled = False
        self._metrics.value = ""
        self.canvas.clear()
        self._status.value = "building the cohort…"
        return self._controls.start(
            _train, job, returned=self._finished, description="Training",
            failed=lambda error: setattr(self._status, "value", f"training failed: {error}"),
        )

    def stop(self):
        """End training early, keeping the best weights so far (what Stop does)."""
        self._controls.stop()

    def _job(self):
        from torchscope.backend import device_name

        if self._source.value == PHANTOM:
            low, high = self._severity_low.value, self._severity_high.value
            if low > high:
                raise ValueError(f"severity: from ({low}) must not exceed to ({high}).")
            cohort = {
                "n_subjects": int(self._n_subjects.value),
                "severity": (float(low), float(high)),
                "seed": int(self._cohort_seed.value),
            }
            call = format_call(
                f"{MODULE}.phantom_cohort", (),
                {"severity": cohort["severity"], "seed": cohort["seed"]},
                image=str(cohort["n_subjects"]),
            )
        else:
            folder = self._folder.value
            if not str(self._folder.line_edit.value).strip() or not Path(folder).is_dir():
                raise ValueError("Train: choose the OASIS-1 folder (the unpacked discs).")
            csv = self._csv.value
            cohort = {"root": str(folder),
                      "clinical_csv": None if csv is None else str(csv)}
            call = format_call(f"{MODULE}.load_oasis", (cohort["clinical_csv"],), None,
                               image=repr(cohort["root"]))
        options = {
            "epochs_ae": int(self._epochs_ae.value),
            "epochs_clf": int(self._epochs_clf.value),
            "epochs_finetune": int(self._epochs_finetune.value),
            "seed": int(self._seed.value),
            "device": device_name(self._device.value),
        }
        return {
            "source": self._source.value,
            "cohort": cohort,
            "train": options,
            "calls": [
                f"cohort = {call}",
                "trained = " + format_call(f"{MODULE}.train", (), options, image="cohort"),
                "metrics = " + format_call(f"{MODULE}.evaluate", (),
                                           {"device": options["device"]},
                                           image="trained, trained.split.test"),
            ],
        }

    def _on_snapshot(self, snapshot):
        from torchscope.alzheimer import Cohort

        if isinstance(snapshot, Cohort):
            self.cohort = snapshot
            n, subjects = len(snapshot), len(np.unique(snapshot.subjects))
            ad = int(np.sum(snapshot.labels))
            self._status.value = (
                f"cohort: {n} scans of {subjects} subjects ({ad} AD/MCI, {n - ad} healthy); "
                "training…"
            )
            return
        score = (
            f"val PSNR {snapshot.val_score:.1f} dB" if snapshot.stage == "autoencoder"
            else f"val balanced accuracy {snapshot.val_score:.2f}"
        )
        self._status.value = (
            f"{_STAGE_TITLES[snapshot.stage]}: epoch {snapshot.epoch}/{snapshot.epochs}, "
            f"val loss {snapshot.val_loss:.4g}, {score} ({snapshot.elapsed:.0f} s)"
        )
        self.canvas.plot_history(snapshot.history)

    def _finished(self, value):
        if value is None:
            self._status.value = "stopped before training; nothing was trained."
            return
        trained, metrics = value
        self.trained = trained
        self._save.enabled = True
        history = trained.history
        best = history["best"]["classifier"]
        stopped = "stopped early by Stop; " if history.get("stopped") else ""
        seconds = history["seconds"]["total"]
        self.canvas.plot_history(history)
        if isinstance(metrics, Exception):
            self.metrics = None
            self._status.value = (f"trained in {seconds:.0f} s ({stopped}best classifier: "
                                  f"{_best(best)}); no test metrics: {metrics}")
            return
        self.metrics = metrics
        self.canvas.plot_confusion(metrics.confusion)
        self._metrics.value = _metrics_table(metrics)
        subjects = len(np.unique(trained.split.test.subjects))
        self._status.value = (
            f"trained in {seconds:.0f} s ({stopped}best classifier: {_best(best)}). "
            f"Test ({metrics.n} scans of {subjects} held-out subjects): "
            f"balanced accuracy {metrics.balanced_accuracy:.3f}, ROC-AUC "
            f"{metrics.roc_auc:.3f}."
        )
        show_info(f"Training done: test balanced accuracy {metrics.balanced_accuracy:.3f}.")

    # ----------------------------------------------------------------------- saving
    def _save_dialog(self, *_):
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(
            self.native, "Save the trained model", "alzheimer_model.safetensors",
            "safetensors (*.safetensors)",
        )
        if path:
            self.save(path)

    def save(self, path):
        """Write the trained model with :func:`torchscope.alzheimer.save_model`."""
        from torchscope.alzheimer import save_model

        if self.trained is None:
            show_error("Save: train a model first.")
            return None
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".safetensors")
        try:
            written = save_model(path, self.trained)
        except OSError as error:
            show_error(f"Saving the model failed: {error}")
            return None
        show_info(f"Model saved to {written}; the Classify dock reads it as a model file.")
        return written


def _best(best):
    """Where the selected classifier comes from, in words."""
    if best["stage"] not in _STAGE_TITLES:
        return "untrained (no classifier epoch ran)"
    return f"{_STAGE_TITLES[best['stage']]}, epoch {best['epoch']}"


class _LossFigure:
    """The dock's figure: loss curves of both networks, the classifier's validation balanced
    accuracy, and the test subjects' confusion matrix; in the viewer's theme colours.

    Without matplotlib, :attr:`widget` is a label saying so and nothing is drawn.
    """

    def __init__(self, viewer):
        try:
            from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
            from matplotlib.figure import Figure
        except ImportError:
            from qtpy.QtWidgets import QLabel

            self.figure = None
            self.widget = QLabel("Install matplotlib to see the loss curves.")
            return
        from napari.utils.theme import get_theme

        theme = get_theme(viewer.theme)
        self.colors = {"background": str(theme.background), "text": str(theme.text)}
        self.figure = Figure(figsize=(4.2, 4.4), layout="constrained",
                             facecolor=self.colors["background"])
        self.widget = FigureCanvasQTAgg(self.figure)
        self.widget.setMinimumHeight(380)
        grid = self.figure.add_gridspec(2, 2)
        self.ax_ae = self.figure.add_subplot(grid[0, 0])
        self.ax_clf = self.figure.add_subplot(grid[0, 1])
        self.ax_score = self.figure.add_subplot(grid[1, 0])
        self.ax_confusion = self.figure.add_subplot(grid[1, 1])
        self.clear()

    def _axes(self, ax, title, xlabel="epoch"):
        from matplotlib.ticker import MaxNLocator

        ax.clear()
        ax.set_facecolor(self.colors["background"])
        for spine in ax.spines.values():
            spine.set_color(self.colors["text"])
        ax.tick_params(colors=self.colors["text"], labelsize=6)
        ax.set_title(title, fontsize=8, color=self.colors["text"])
        ax.set_xlabel(xlabel, fontsize=7, color=self.colors["text"])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))

    def clear(self):
        """Empty axes (a new training starts)."""
        if self.figure is None:
            return
        self.plot_history(None)
        self._axes(self.ax_confusion, "test confusion", "predicted")
        self.ax_confusion.set_axis_off()
        self.widget.draw_idle()

    def plot_history(self, history):
        """Training and validation losses per epoch (the fine-tuning epochs shaded)."""
        if self.figure is None:
            return
        panels = ((self.ax_ae, ("ae_train_loss", "ae_val_loss"), "autoencoder loss (MSE)"),
                  (self.ax_clf, ("clf_train_loss", "clf_val_loss"), "classifier loss (BCE)"),
                  (self.ax_score, (None, "clf_val_balanced_accuracy"),
                   "val. balanced accuracy"))
        for ax, (train_key, val_key), title in panels:
            self._axes(ax, title)
            val = history[val_key] if history else []
            if not len(val):
                continue
            epochs = np.arange(1, len(val) + 1)
            if train_key is not None:
                ax.plot(epochs, history[train_key], color="tab:blue", lw=1, label="train")
            ax.plot(epochs, val, color="tab:orange", lw=1, label="validation")
            stages = history.get("clf_stage", []) if ax is not self.ax_ae else []
            if "classifier_finetune" in stages:
                start = stages.index("classifier_finetune") + 0.5
                ax.axvspan(start, len(stages) + 0.5, color=self.colors["text"], alpha=0.12,
                           lw=0, zorder=0, label="fine-tuning")
            if ax is self.ax_score:
                ax.set_ylim(-0.02, 1.02)
            else:
                ax.legend(fontsize=6, frameon=False, labelcolor=self.colors["text"])
        self.widget.draw_idle()

    def plot_confusion(self, confusion):
        """The test subjects' confusion matrix (rows: true class, columns: predicted)."""
        if self.figure is None:
            return
        ax = self.ax_confusion
        self._axes(ax, "test confusion", "predicted")
        matrix = np.asarray(confusion)
        ax.imshow(matrix, cmap="Blues", vmin=0, vmax=max(int(matrix.max()), 1))
        for (i, j), count in np.ndenumerate(matrix):
            colour = "white" if count > matrix.max() / 2 else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=colour, fontsize=9)
        ax.set_xticks([0, 1], ["HC", "AD"], fontsize=7)
        ax.set_yticks([0, 1], ["HC", "AD"], fontsize=7)
        ax.set_ylabel("true", fontsize=7, color=self.colors["text"])
        self.widget.draw_idle()


def _metrics_table(metrics):
    """The test figures as an HTML table, beside the nWBV + age baseline when there is one."""
    rows = [("accuracy", "accuracy"), ("balanced accuracy", "balanced_accuracy"),
            ("F1", "f1"), ("sensitivity", "sensitivity"), ("specificity", "specificity"),
            ("ROC-AUC", "roc_auc")]
    baseline = metrics.baseline
    head = ("<tr><th></th><th>&nbsp;model</th>"
            + ("<th>&nbsp;&nbsp;nWBV + age</th>" if baseline else "") + "</tr>")
    body = ""
    for label, key in rows:
        body += f"<tr><td>{label}</td><td align='right'>{getattr(metrics, key):.3f}</td>"
        if baseline is not None:
            body += f"<td align='right'>{getattr(baseline, key):.3f}</td>"
        body += "</tr>"
    return f"<table cellspacing='0' cellpadding='3'>{head}{body}</table>"

"""Docks for :mod:`torchscope.filters`: filters, thresholds and morphology.

One widget class, :class:`FilterWidget`, driven by the table :data:`OPERATIONS`, makes every
dock: one per operation (for the menus) and one per lecture group with an operation dropdown
(Denoising, Background removal, Edges, Binarization, Morphology). A widget reads a layer and
its parameters, calls the public function of :mod:`torchscope.filters` in a thread worker
(block by block, with progress and Stop) and writes a new layer named ``"<operation>(<input>)"``
(or updates the one it wrote before for the same operation and input). The output layer carries
the input's ``scale``, ``translate``, ``axis_labels`` and ``units``, and
``layer.metadata["torchscope"]["call"]`` is the Python call that reproduces it from the console,
given ``image = viewer.layers["<input>"].data``.

torch and :mod:`torchscope.filters` are imported when a widget is created or run, not when
napari reads the manifest.
"""

import weakref
from dataclasses import dataclass, field
from functools import partial

import napari.viewer
from magicgui.widgets import ComboBox, Container, FloatSpinBox
from napari.layers import Image, Labels
from napari.utils.notifications import show_error

from torchscope.napari._workers import (
    RunControls,
    add_or_update_layer,
    call_record,
    compute_in_blocks,
    compute_per_plane,
    follow_layer_list,
    format_call,
    spatial_properties,
)

MODULE = "torchscope.filters"


# --------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Parameter:
    """One parameter of an operation, and how its widget looks.

    Parameters of the same name in one dock share one widget, so they must be defined once
    (the constants below) and reused.
    """

    name: str
    default: object
    tooltip: str
    #: "float" (a spin box) or "choice" (a dropdown; ``choices(layer)`` lists ``(text, value)``)
    kind: str = "float"
    minimum: float = 0.0
    maximum: float = 1000.0
    step: float = 0.5
    #: A length: in pixels, or in physical units when the widget's units say so.
    length: bool = True
    #: Passed by keyword (otherwise positionally, in table order).
    keyword: bool = False
    choices: object = None
    #: For a spin box: the text shown at the minimum, which then means None (the default).
    auto_text: str | None = None
    #: ``(name, value)``: the widget is enabled only while that parameter has that value.
    enabled_if: tuple | None = None


@dataclass(frozen=True)
class Operation:
    """A function of :mod:`torchscope.filters` as a dock shows it."""

    name: str
    title: str
    group: str
    parameters: tuple = ()
    #: Takes ``spacing`` (lengths in physical units).
    spacing: bool = True
    #: Also takes Labels layers (as well as Image layers).
    labels: bool = False
    #: ``values -> (args, kwargs)``; by default positional and keyword parameters in order.
    arguments: object = field(default=None, compare=False)

    def call_arguments(self, values):
        if self.arguments is not None:
            return self.arguments(values)
        args = [values[p.name] for p in self.parameters if not p.keyword]
        kwargs = {p.name: values[p.name] for p in self.parameters if p.keyword}
        return args, kwargs


def _axis_choices(layer):
    axes = [("magnitude (all axes)", None)]
    if layer is not None:
        axes += [(f"{i}: {label}", i) for i, label in enumerate(layer.axis_labels)]
    return axes


def _threshold_methods(layer):
    from torchscope.filters import THRESHOLD_METHODS

    return [*THRESHOLD_METHODS, "manual"]


def _threshold_arguments(values):
    method = values["value"] if values["method"] == "manual" else values["method"]
    return [method], {}


SIGMA = Parameter("sigma", 1.0, "Standard deviation of the Gaussian kernel.", step=0.25)
RADIUS = Parameter("radius", 1.0, "Radius of the disc (2D) or ball (3D) footprint.")
LOW_SIGMA = Parameter(
    "low_sigma", 1.0, "Standard deviation of the narrower Gaussian (kept detail).", step=0.25
)
HIGH_SIGMA = Parameter(
    "high_sigma",
    0.0,
    "Standard deviation of the wider Gaussian (removed background).",
    step=0.25,
    auto_text="auto (1.6 × low)",
)
AXIS = Parameter(
    "axis",
    None,
    "Gradient along one axis, or the magnitude over all axes.",
    kind="choice",
    choices=_axis_choices,
    length=False,
    keyword=True,
)
METHOD = Parameter(
    "method",
    "otsu",
    "Automatic threshold method, or 'manual' to use the value below.",
    kind="choice",
    choices=_threshold_methods,
    length=False,
)
VALUE = Parameter(
    "value",
    0.0,
    "Manual threshold: pixels above it are foreground.",
    minimum=-1e12,
    maximum=1e12,
    step=1.0,
    length=False,
    enabled_if=("method", "manual"),
)

GROUPS = {
    "denoising": "Denoising",
    "background": "Background removal",
    "edges": "Edges",
    "binarization": "Binarization",
    "morphology": "Morphology",
}

OPERATIONS = {
    op.name: op
    for op in [
        Operation("gaussian", "Gaussian", "denoising", (SIGMA,)),
        Operation("median", "Median", "denoising", (RADIUS,)),
        Operation("mean", "Mean", "denoising", (RADIUS,)),
        Operation("minimum", "Minimum", "denoising", (RADIUS,)),
        Operation("maximum", "Maximum", "denoising", (RADIUS,)),
        Operation("variance", "Variance", "denoising", (RADIUS,)),
        Operation("std", "Standard deviation", "denoising", (RADIUS,)),
        Operation("white_tophat", "White top-hat", "background", (RADIUS,)),
        Operation("black_tophat", "Black top-hat", "background", (RADIUS,)),
        Operation(
            "difference_of_gaussians",
            "Difference of Gaussians",
            "background",
            (LOW_SIGMA, HIGH_SIGMA),
        ),
        Operation("sobel", "Sobel", "edges", (AXIS,), spacing=False),
        Operation("laplace", "Laplace", "edges", spacing=False),
        Operation("laplacian_of_gaussian", "Laplacian of Gaussian", "edges", (SIGMA,)),
        Operation(
            "threshold",
            "Threshold",
            "binarization",
            (METHOD, VALUE),
            spacing=False,
            arguments=_threshold_arguments,
        ),
        Operation("erosion", "Erosion", "morphology", (RADIUS,), labels=True),
        Operation("dilation", "Dilation", "morphology", (RADIUS,), labels=True),
        Operation("opening", "Opening", "morphology", (RADIUS,), labels=True),
        Operation("closing", "Closing", "morphology", (RADIUS,), labels=True),
    ]
}


def group_operations(group):
    """Names of the operations of a lecture group, in table order."""
    return tuple(name for name, op in OPERATIONS.items() if op.group == group)


# --------------------------------------------------------------------------- the widget
PIXELS = "pixels"
PHYSICAL = "physical units (layer scale)"
#: What "apply to" offers: all axes at once, or each plane / volume of the last axes.
ALL_AXES, EACH_PLANE, EACH_VOLUME = None, 2, 3


def _apply_to_choices(layer):
    choices = [("all axes", ALL_AXES)]
    ndim = 0 if layer is None else layer.ndim
    if ndim > 2:
        choices.append(("each 2D plane (last 2 axes)", EACH_PLANE))
    if ndim > 3:
        choices.append(("each 3D volume (last 3 axes)", EACH_VOLUME))
    return choices


class FilterWidget(Container):
    """A dock for one or several operations of :mod:`torchscope.filters`.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
    operations : sequence of str, optional
        Names in :data:`OPERATIONS`; several give an operation dropdown. Subclasses set the
        class attribute ``operations`` instead (napari creates docks from the viewer alone).

    Children (``widget.<name>.value`` reads and sets them): ``operation``, ``image`` (the
    input layer), one per parameter (``sigma``, ``radius``, ...), ``units``, ``device`` and
    ``controls`` (Run, Stop, progress).
    """

    operations: tuple = ()

    def __init__(self, napari_viewer: napari.viewer.Viewer, operations=None):
        from torchscope.backend import available_devices

        names = tuple(operations or self.operations)
        unknown = [n for n in names if n not in OPERATIONS]
        if not names or unknown:
            raise ValueError(f"operations={names!r}: choose from {tuple(OPERATIONS)}.")
        self._viewer = napari_viewer
        self._ops = [OPERATIONS[n] for n in names]
        self._outputs = weakref.WeakKeyDictionary()  # input layer -> {operation: output layer}

        self._operation = ComboBox(
            name="operation",
            choices=[(op.title, op.name) for op in self._ops],
            visible=len(self._ops) > 1,
        )
        self._image = ComboBox(
            name="image", label="input", choices=self._layer_choices, nullable=False
        )
        self._parameters = {}  # name -> (Parameter, widget), shared across operations
        for op in self._ops:
            for param in op.parameters:
                if param.name not in self._parameters:
                    self._parameters[param.name] = (param, self._parameter_widget(param))
        self._apply_to = ComboBox(
            name="apply_to",
            label="apply to",
            choices=lambda _: _apply_to_choices(self._image.value),
            tooltip="Filter across all axes of the layer, or each 2D plane (or 3D volume) of "
            "its last axes on its own: for a time series or a channel stack, where the "
            "leading axes are not space.",
        )
        self._units = ComboBox(
            name="units",
            choices=[PIXELS, PHYSICAL],
            tooltip="Lengths in pixels, or in the input layer's physical units (its scale, "
            "so that an anisotropic stack gets a kernel that is round in space).",
        )
        self._device = ComboBox(
            name="device",
            choices=[("auto", None), *((d, d) for d in available_devices())],
            tooltip="Where torch computes: auto picks CUDA, then Apple MPS, then the CPU.",
        )
        self._controls = RunControls(name="controls")
        super().__init__(
            widgets=[
                self._operation,
                self._image,
                *(widget for _, widget in self._parameters.values()),
                self._apply_to,
                self._units,
                self._device,
                self._controls,
            ]
        )
        self._controls.run_button.changed.connect(self.run)
        self._operation.changed.connect(self._on_operation_changed)
        self._image.changed.connect(self._on_image_changed)
        self._units.changed.connect(self._update_labels)
        self._apply_to.changed.connect(self._update_labels)
        for param, widget in self._parameters.values():
            if param.enabled_if is not None:
                other = self._parameters[param.enabled_if[0]][1]
                other.changed.connect(partial(self._update_enabled, param, widget))
                self._update_enabled(param, widget)
        follow_layer_list(napari_viewer, self.reset_choices)
        self._on_operation_changed()
        self._on_image_changed()

    # ----------------------------------------------------------------------- building
    def _parameter_widget(self, param):
        options = {"name": param.name, "label": param.name.replace("_", " ")}
        options["tooltip"] = param.tooltip
        if param.kind == "choice":
            widget = ComboBox(choices=lambda _: param.choices(self._image.value), **options)
            if param.default in widget.choices:
                widget.value = param.default
            return widget
        widget = FloatSpinBox(
            value=param.default,
            min=param.minimum,
            max=param.maximum,
            step=param.step,
            **options,
        )
        if param.auto_text is not None:
            widget.native.setSpecialValueText(param.auto_text)
        return widget

    def _layer_choices(self, _widget=None):
        kinds = (Image, Labels) if self.operation_spec.labels else (Image,)
        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, kinds)]

    # ----------------------------------------------------------------------- state
    @property
    def operation_spec(self):
        """The :class:`Operation` selected now."""
        return OPERATIONS[self._operation.value]

    def parameter_values(self):
        """The current operation's parameters, as the function takes them."""
        values = {}
        for param in self.operation_spec.parameters:
            widget = self._parameters[param.name][1]
            value = widget.value
            if param.auto_text is not None and value == widget.min:
                value = None
            values[param.name] = value
        return values

    def _on_operation_changed(self):
        op = self.operation_spec
        for param, widget in self._parameters.values():
            widget.visible = param in op.parameters
        self._units.visible = op.spacing
        self._image.reset_choices()
        self._update_labels()

    def _on_image_changed(self):
        for _, widget in self._parameters.values():
            if isinstance(widget, ComboBox):
                widget.reset_choices()
        wanted = self._apply_to.value
        self._apply_to.reset_choices()
        if wanted is not None and wanted not in self._apply_to.choices:
            # "each 3D volume" on a layer with 3 axes: each plane is the nearest choice
            self._apply_to.value = max(self._apply_to.choices, key=lambda v: v or 0)
        self._apply_to.visible = len(self._apply_to.choices) > 1
        self._update_labels()

    def _planes(self, layer):
        """The "apply to" choice for ``layer``: None (all axes), or 2 or 3 (each plane or
        volume of its last axes, fewer than it has)."""
        planes = self._apply_to.value
        return planes if planes is not None and planes < layer.ndim else ALL_AXES

    def _update_enabled(self, param, widget, *_):
        other, value = param.enabled_if
        widget.enabled = self._parameters[other][1].value == value

    def _update_labels(self):
        """Show the unit of each length: px, or the input layer's unit."""
        unit = "px"
        layer = self._image.value
        if self.operation_spec.spacing and self._units.value == PHYSICAL and layer is not None:
            planes = self._planes(layer)
            units = {f"{u:~P}" for u in (layer.units if planes is None
                                         else layer.units[-planes:])}
            unit = units.pop() if len(units) == 1 else "layer units"
        for param, widget in self._parameters.values():
            if param.length:
                widget.label = f"{param.name.replace('_', ' ')} ({unit})"

    # ----------------------------------------------------------------------- running
    def run(self):
        """Start the selected operation on the selected layer (what Run does).

        Returns the started worker, or None when the input was refused (the reason is shown
        as a notification).
        """
        try:
            job = self._job()
        except (TypeError, ValueError) as error:
            show_error(str(error))
            return None
        per_plane = () if job["planes"] is None else (job["planes"],)
        return self._controls.start(
            compute_in_blocks if job["planes"] is None else compute_per_plane,
            job["function"],
            job["layer"].data,
            *per_plane,
            job["args"],
            job["kwargs"],
            returned=partial(self._write, job),
            description=f"{job['op'].title} of {job['layer'].name}",
        )

    def stop(self):
        """Ask the running job to stop between blocks (what Stop does)."""
        self._controls.stop()

    @property
    def worker(self):
        """The running thread worker, or None."""
        return self._controls.worker

    def _job(self):
        import torchscope.filters
        from torchscope.backend import device_name

        op = self.operation_spec
        layer = self._image.value
        if layer is None:
            raise ValueError(f"{op.title}: choose an input layer.")
        if getattr(layer, "rgb", False):
            raise ValueError(
                f"{layer.name!r} is an RGB image; split it into channels first "
                "(right-click the layer: Split RGB)."
            )
        if layer.multiscale:
            raise ValueError(f"{layer.name!r} is multiscale; multiscale data are not supported.")
        values = self.parameter_values()
        args, kwargs = op.call_arguments(values)
        planes = self._planes(layer)
        if planes is not None and kwargs.get("axis") is not None:
            # the layer's axis, counted within each plane (or volume)
            lead = layer.ndim - planes
            if kwargs["axis"] < lead:
                raise ValueError(
                    f"{op.title}: axis {kwargs['axis']} ({layer.axis_labels[kwargs['axis']]}) is "
                    f"not an axis of each plane; choose one of the last {planes} axes, or apply "
                    "to all axes.")
            kwargs["axis"] -= lead
        spacing = None
        if op.spacing:
            if self._units.value == PHYSICAL:
                scale = layer.scale if planes is None else layer.scale[-planes:]
                spacing = tuple(float(s) for s in scale)
            kwargs["spacing"] = spacing
        kwargs["device"] = device_name(self._device.value)
        return {
            "op": op,
            "layer": layer,
            "function": getattr(torchscope.filters, op.name),
            "args": args,
            "kwargs": kwargs,
            "values": values,
            "spacing": spacing,
            "planes": planes,
        }

    def _write(self, job, result):
        """Main thread: put the result into this widget's output layer for that input."""
        op, layer = job["op"], job["layer"]
        if job["planes"] is None:
            call = format_call(f"{MODULE}.{op.name}", job["args"], job["kwargs"])
        else:  # each plane (or volume) on its own
            call = format_call(f"{MODULE}.each_plane", (job["planes"], *job["args"]),
                               job["kwargs"], image=f"{MODULE}.{op.name}, image")
        record = call_record(f"{MODULE}.{op.name}", call, parameters=job["values"],
                             device=job["kwargs"]["device"], input=layer.name,
                             spacing=job["spacing"], planes=job["planes"])
        kwargs = {
            "name": f"{op.name}({layer.name})",
            "metadata": {"torchscope": record},
            **spatial_properties(layer),
        }
        if isinstance(layer, Labels) or result.dtype == bool:
            layer_type = "labels"
        else:
            layer_type = "image"
            if isinstance(layer, Image):
                kwargs["colormap"] = layer.colormap
        outputs = self._outputs.setdefault(layer, {})
        outputs[op.name] = add_or_update_layer(
            self._viewer, outputs.get(op.name), result, kwargs, layer_type
        )


# --------------------------------------------------------------------------- the docks
def _dock(class_name, operations, doc):
    return type(
        class_name,
        (FilterWidget,),
        {"operations": operations, "__doc__": doc, "__module__": __name__},
    )


def _group_dock(class_name, group):
    return _dock(class_name, group_operations(group), f"The {GROUPS[group]} dock.")


def _operation_dock(class_name, name):
    return _dock(class_name, (name,), f"The {OPERATIONS[name].title} dock.")


DenoisingWidget = _group_dock("DenoisingWidget", "denoising")
BackgroundWidget = _group_dock("BackgroundWidget", "background")
EdgesWidget = _group_dock("EdgesWidget", "edges")
BinarizationWidget = _group_dock("BinarizationWidget", "binarization")
MorphologyWidget = _group_dock("MorphologyWidget", "morphology")

GaussianWidget = _operation_dock("GaussianWidget", "gaussian")
MedianWidget = _operation_dock("MedianWidget", "median")
MeanWidget = _operation_dock("MeanWidget", "mean")
MinimumWidget = _operation_dock("MinimumWidget", "minimum")
MaximumWidget = _operation_dock("MaximumWidget", "maximum")
VarianceWidget = _operation_dock("VarianceWidget", "variance")
StdWidget = _operation_dock("StdWidget", "std")
WhiteTophatWidget = _operation_dock("WhiteTophatWidget", "white_tophat")
BlackTophatWidget = _operation_dock("BlackTophatWidget", "black_tophat")
DifferenceOfGaussiansWidget = _operation_dock(
    "DifferenceOfGaussiansWidget", "difference_of_gaussians"
)
SobelWidget = _operation_dock("SobelWidget", "sobel")
LaplaceWidget = _operation_dock("LaplaceWidget", "laplace")
LaplacianOfGaussianWidget = _operation_dock("LaplacianOfGaussianWidget", "laplacian_of_gaussian")
ThresholdWidget = _operation_dock("ThresholdWidget", "threshold")
ErosionWidget = _operation_dock("ErosionWidget", "erosion")
DilationWidget = _operation_dock("DilationWidget", "dilation")
OpeningWidget = _operation_dock("OpeningWidget", "opening")
ClosingWidget = _operation_dock("ClosingWidget", "closing")

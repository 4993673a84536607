"""Dock for :mod:`torchscope.deblur`: score regions, estimate the blur kernel from the best one
(or from a rectangle the user moved or drew), deconvolve the whole image.

:class:`DeblurWidget` ("Deblur from good regions")
    On a 2D image layer (an RGB layer is reduced to its luminance with
    ``skimage.color.rgb2gray``), Run writes four layers:

    - ``"score heatmap (<input>)"``: each pixel's mean region score
      (:func:`torchscope.deblur.score_regions`), over the image, same geometry;
    - ``"regions (<input>)"``: the ``top k`` regions as rectangles with their scores as text
      (a Shapes layer in the image's pixel frame). They are distinct regions: going down the
      ranking, a region that overlaps a better one by more than ``max overlap`` (intersection
      over union, default 0.3; ``Regions.top(k, overlap=...)``) is skipped, so a fine stride
      does not fill the top k with shifted copies of the best region (1 shows the k best as
      scored);
    - ``"kernel (<input>)"``: the kernel estimated from the best region
      (:func:`torchscope.deblur.estimate_kernel`), drawn at the image's pixel size just right of
      the image;
    - ``"deblurred (<input>)"``: :func:`torchscope.deblur.deconvolve` of the whole image (of
      its three colour channels, each with the kernel, for an RGB layer, as
      :func:`torchscope.deblur.deblur` does; the result is an RGB layer).

    Move a rectangle, or draw one, in the regions layer, select it and press "Re-estimate from
    selected rectangle": the kernel and the deblurred image are computed again from that box.

Each long step runs in a thread worker (progress bar, Stop). Every output layer carries the input's
scale and units and, in ``layer.metadata["torchscope"]["call"]``, the Python lines that reproduce
it. torch is imported when a job runs, not when napari reads the manifest.
"""

import napari.viewer
import numpy as np
from magicgui.widgets import ComboBox, Container, FloatSpinBox, PushButton, SpinBox
from napari.layers import Image
from napari.utils.notifications import show_error

from torchscope.napari._workers import (
    RunControls,
    add_or_update_layer,
    call_record,
    dock_closed,
    format_call,
    plane_geometry,
    resampled_geometry,
)

MODULE = "torchscope.deblur"
SCORERS = ("variance", "edges", "random", "cnn")
METHODS = ("dark_channel", "l0")
DECONVOLUTIONS = ("hyper_laplacian", "wiener", "richardson_lucy")
#: Share of the progress bar given to scoring (the rest: kernel estimation, then deconvolution).
_SCORE_STEPS, _ESTIMATE_STEPS, _DECONVOLVE_STEPS = 10, 80, 10
_TOTAL = _SCORE_STEPS + _ESTIMATE_STEPS + _DECONVOLVE_STEPS


def _gray(layer):
    """The layer's data as a 2D array and the line that makes it; ValueError when not 2D."""
    data = np.asarray(layer.data)
    if data.ndim != (3 if layer.rgb else 2):
        kind = "RGB " if layer.rgb else ""
        raise ValueError(f"{kind}layer {layer.name!r} has {data.ndim} dimensions of shape "
                         f"{data.shape}; the deblur dock takes a 2D grey or RGB image.")
    if layer.rgb:
        from skimage.color import rgb2gray

        return rgb2gray(data[..., :3]), ("import skimage.color\n"
                                         "image = skimage.color.rgb2gray(layer.data[..., :3])")
    return data, "image = layer.data"


def box_to_rectangle(box):
    """A ``(row, col, height, width)`` pixel box as napari rectangle corners around its pixels."""
    row, col, height, width = (float(v) for v in box)
    return np.array([[row - 0.5, col - 0.5], [row + height - 0.5, col + width - 0.5]])


def rectangle_to_box(vertices, shape):
    """The pixel box ``(row, col, height, width)`` covered by a rectangle, clipped to ``shape``."""
    vertices = np.asarray(vertices, dtype=float)
    lo = np.rint(vertices.min(axis=0) + 0.5).astype(int)
    hi = np.rint(vertices.max(axis=0) + 0.5).astype(int)
    lo = np.clip(lo, 0, shape)
    hi = np.clip(hi, 0, shape)
    return int(lo[0]), int(lo[1]), int(hi[0] - lo[0]), int(hi[1] - lo[1])


# --------------------------------------------------------------------------- jobs (worker thread)
def _deconvolved(layer):
    """What the deblurred layer deconvolves, and the line that names it: an RGB layer's colour
    channels (:func:`torchscope.deblur.deconvolve` takes them one by one), else the image."""
    if layer.rgb:
        return np.asarray(layer.data)[..., :3], "layer.data[..., :3]"
    return None, "image"


def _estimate_and_deconvolve(image, box, options, done, target=None):
    """Yield progress while estimating the kernel on ``box`` of ``image`` and deconvolving
    ``target`` (default: ``image``); return both."""
    from torchscope import deblur

    row, col, height, width = box
    last = None
    for last in deblur.iterate(image[row:row + height, col:col + width], options["kernel_size"],
                               method=options["method"], device=options["device"]):
        yield done + round(_ESTIMATE_STEPS * last.progress), _TOTAL
    kernel = last.kernel.astype(np.float64)
    kernel /= kernel.sum()  # as estimate_kernel returns it
    restored = deblur.deconvolve(image if target is None else target, kernel,
                                 method=options["deconvolution"], device=options["device"])
    yield _TOTAL, _TOTAL
    return kernel, restored


def _score_options(options):
    """The options of ``score_regions`` among the dock's (``rng`` only where it is used)."""
    keys = ("size", "stride", "scorer") + (("rng",) if options["scorer"] == "random" else ())
    return {key: options[key] for key in keys}


def full_job(image, options, target=None):
    """Score regions, then estimate from the best one and deconvolve ``target`` (default:
    ``image``; a worker generator)."""
    from torchscope import deblur

    yield 0, _TOTAL
    regions = deblur.score_regions(image, **_score_options(options), device=options["device"])
    yield _SCORE_STEPS, _TOTAL
    top = regions.top(options["top_k"], overlap=options["overlap"])
    box = tuple(int(v) for v in top.boxes[0])
    kernel, restored = yield from _estimate_and_deconvolve(image, box, options, _SCORE_STEPS,
                                                           target)
    return {"regions": regions, "top": top, "box": box, "kernel": kernel, "image": restored}


def region_job(image, box, options, target=None):
    """Estimate from a given box and deconvolve ``target`` (a worker generator)."""
    yield 0, _TOTAL
    kernel, restored = yield from _estimate_and_deconvolve(image, box, options, _SCORE_STEPS,
                                                           target)
    return {"box": box, "kernel": kernel, "image": restored}


# --------------------------------------------------------------------------- the dock
class DeblurWidget(Container):
    """Blind deblurring from good regions, with the scored regions drawn over the image."""

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        from torchscope.backend import available_devices
        from torchscope.deblur._scorer import default_weights

        self._viewer = napari_viewer
        self._runs = []  # (input layer, {kind: layer}) per image deblurred: each its own layers
        self._source = None  # the image layer of the last run
        self.image = ComboBox(name="image", label="image", choices=self._images)
        self.scorer = ComboBox(
            name="scorer", choices=SCORERS,
            value="cnn" if default_weights().is_file() else "variance",
            tooltip="How regions are scored: 'cnn' is the trained network (228 px regions), "
                    "'variance' and 'edges' are heuristics, 'random' a baseline.")
        self.size = SpinBox(name="size", label="region size (px)", value=228, min=8, max=4096,
                            tooltip="Side of the scored square regions (the paper: 228).")
        self.stride = SpinBox(name="stride", label="stride (px)", value=20, min=1, max=4096)
        self.seed = SpinBox(name="seed", value=0, min=0, max=2**31 - 1,
                            tooltip="Seed of the 'random' scorer (the same seed draws the "
                                    "same scores).")
        self.top_k = SpinBox(name="top_k", label="top k", value=5, min=1, max=100,
                             tooltip="How many of the best regions are drawn.")
        self.overlap = FloatSpinBox(
            name="overlap", label="max overlap (IoU)", value=0.3, min=0.0, max=1.0, step=0.05,
            tooltip="Regions overlapping a better one by more than this (intersection over "
                    "union) are not drawn; 1 draws the k best as scored.")
        self.kernel_size = SpinBox(name="kernel_size", label="kernel size (px)", value=25, min=3,
                                   max=255, step=2, tooltip="Odd; at least the blur's extent.")
        self.method = ComboBox(name="method", choices=METHODS, value="dark_channel")
        self.deconvolution = ComboBox(name="deconvolution", choices=DECONVOLUTIONS,
                                      value="hyper_laplacian")
        self.device = ComboBox(name="device",
                               choices=[("auto", None), *((d, d) for d in available_devices())])
        self.controls = RunControls(name="controls")
        self.reestimate_button = PushButton(name="reestimate",
                                            text="Re-estimate from selected rectangle")
        super().__init__(widgets=[self.image, self.scorer, self.size, self.stride, self.seed,
                                  self.top_k, self.overlap, self.kernel_size, self.method,
                                  self.deconvolution, self.device, self.controls,
                                  self.reestimate_button])
        self.scorer.changed.connect(self._show_seed)
        self._show_seed()
        self.controls.run_button.changed.connect(self.run)
        self.reestimate_button.changed.connect(self.reestimate)
        napari_viewer.layers.events.inserted.connect(self.image.reset_choices)
        napari_viewer.layers.events.removed.connect(self.image.reset_choices)

    def _show_seed(self, *_):
        self.seed.visible = self.scorer.value == "random"

    @property
    def _outputs(self):
        """``{kind: layer}`` of the current input (the last run's); the other images' stay."""
        return next((outputs for source, outputs in self._runs if source is self._source), {})

    def _images(self, _widget=None):
        produced = {id(out) for _, outputs in self._runs for out in outputs.values()}
        return [layer for layer in self._viewer.layers
                if isinstance(layer, Image) and id(layer) not in produced]

    @property
    def worker(self):
        """The running thread worker, or None."""
        return self.controls.worker

    def stop(self):
        self.controls.stop()

    def _options(self):
        from torchscope.backend import device_name

        kernel_size = int(self.kernel_size.value)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel size must be odd, got {kernel_size}.")
        return {"scorer": self.scorer.value, "size": int(self.size.value),
                "stride": int(self.stride.value), "rng": int(self.seed.value),
                "top_k": int(self.top_k.value),
                "overlap": float(self.overlap.value),
                "kernel_size": kernel_size, "method": self.method.value,
                "deconvolution": self.deconvolution.value,
                "device": device_name(self.device.value)}

    # ----------------------------------------------------------------- starting jobs
    def run(self, *_):
        """Score, estimate from the best region, deconvolve: a new worker (None if refused)."""
        layer = self.image.value
        try:
            if layer is None:
                raise ValueError("choose an image layer first.")
            if self.controls.running:
                raise ValueError("a job is running; wait for it or stop it first.")
            image, line = _gray(layer)
            if np.ptp(image) == 0:
                raise ValueError(f"{layer.name!r} is uniform: it holds no edge to estimate a "
                                 "blur from.")
            options = self._options()
        except ValueError as error:
            show_error(f"Deblur: {error}")
            return None
        target, target_line = _deconvolved(layer)
        return self._start(full_job, image, options, target, returned=lambda r: self._write(
            layer, image, line, target_line, options, r))

    def reestimate(self, *_):
        """Estimate from the selected rectangle of the regions layer and deconvolve again."""
        shapes = self._outputs.get("regions")
        layer = self._source
        try:
            if self.controls.running:
                raise ValueError("a job is running; wait for it or stop it first.")
            if shapes is None or shapes not in self._viewer.layers or layer is None:
                raise ValueError("run first: there is no regions layer to take a rectangle from.")
            if layer not in self._viewer.layers:
                raise ValueError(f"the image {layer.name!r} was removed from the viewer; run on "
                                 "an image in the viewer.")
            selected = sorted(shapes.selected_data)
            if len(selected) != 1:
                raise ValueError(f"select exactly one rectangle in {shapes.name!r} "
                                 f"({len(selected)} selected).")
            image, line = _gray(layer)
            options = self._options()
            box = rectangle_to_box(shapes.data[selected[0]], image.shape)
            if min(box[2:]) < 2 * options["kernel_size"]:
                raise ValueError(f"the rectangle {box[2]} x {box[3]} px (inside the image) is "
                                 f"too small: each side must be at least 2 x kernel size = "
                                 f"{2 * options['kernel_size']} px.")
        except ValueError as error:
            show_error(f"Deblur: {error}")
            return None
        target, target_line = _deconvolved(layer)
        return self._start(region_job, image, box, options, target, returned=lambda r: self._write(
            layer, image, line, target_line, options, r))

    def _start(self, job, *args, returned):
        """Start ``job`` in the controls' worker; Re-estimate waits while it runs."""

        def done():
            if not dock_closed(self):
                self.reestimate_button.enabled = True

        worker = self.controls.start(job, *args, description="Deblur", returned=returned,
                                     finished=done)
        self.reestimate_button.enabled = False
        return worker

    # ----------------------------------------------------------------- writing layers (main thread)
    def _write(self, layer, image, line, target_line, options, result):
        if not any(source is layer for source, _ in self._runs):  # its own layers
            self._runs.append((layer, {}))
        self._source = layer
        geometry = plane_geometry(layer, 2)  # (a 2D or RGB layer)
        device = options["device"]
        name = layer.name
        line = f"layer = viewer.layers[{name!r}]\n{line}"  # the input, as the console gets it

        def record(function, parameters, call, **extra):
            return {"torchscope": call_record(f"{MODULE}.{function}", "\n".join(call),
                                              parameters=parameters, device=device,
                                              input=name, **extra)}

        if "regions" in result:
            parameters = _score_options(options)
            score = format_call(MODULE + ".score_regions", (), parameters | {"device": device})
            call = [line, f"regions = {score}"]
            self._write_heatmap(name, result["regions"].heatmap, geometry, record(
                "score_regions", parameters, call + ["heatmap = regions.heatmap"]))
            top = {"top_k": options["top_k"], "overlap": options["overlap"]}
            self._write_regions(name, result["top"], geometry, record(
                "score_regions", parameters | top, call + [
                    f"top = regions.top({options['top_k']}, overlap={options['overlap']!r})"],
                boxes=result["top"].boxes.tolist()))
        row, col, height, width = result["box"]
        crop = f"image[{row}:{row + height}, {col}:{col + width}]"
        estimated = {"kernel_size": options["kernel_size"], "method": options["method"]}
        estimate = format_call(MODULE + ".estimate_kernel", (options["kernel_size"],),
                               {"method": options["method"], "device": device}, image=crop)
        kernel_call = [line, f"kernel = {estimate}"]
        # right of the image's top corner, at its pixel size (through its rotation and shear)
        kernel_geometry = resampled_geometry(geometry, (0, image.shape[1] + 4))
        self._outputs["kernel"] = add_or_update_layer(
            self._viewer, self._outputs.get("kernel"), result["kernel"].astype(np.float32),
            {"name": f"kernel ({name})", "colormap": "inferno", **kernel_geometry,
             "metadata": record("estimate_kernel", estimated, kernel_call, box=result["box"])},
            "image")
        deconv = format_call(MODULE + ".deconvolve", (),
                             {"method": options["deconvolution"], "device": device},
                             image=f"{target_line}, kernel")
        self._outputs["deblurred"] = add_or_update_layer(
            self._viewer, self._outputs.get("deblurred"), result["image"],
            {"name": f"deblurred ({name})", **({"rgb": True} if layer.rgb else {"colormap": "gray"}),
             **geometry,
             "metadata": record("deconvolve", estimated | {
                 "deconvolution": options["deconvolution"]}, kernel_call + [
                     f"deblurred = {deconv}"], box=result["box"])},
            "image")
        # ringing overshoots the input's range: show the result on the input's display range
        self._outputs["deblurred"].contrast_limits = tuple(layer.contrast_limits)
        self._raise_overlay()
        self.image.reset_choices()

    def _raise_overlay(self):
        """Keep the heatmap, then the rectangles, above the deblurred image; select the
        rectangles' layer, ready for moving one."""
        layers = self._viewer.layers
        for kind in ("heatmap", "regions"):
            layer = self._outputs.get(kind)
            if layer is not None and layer in layers:
                layers.move(layers.index(layer), len(layers))
        regions = self._outputs.get("regions")
        if regions is not None and regions in layers:
            layers.selection.active = regions

    def _write_heatmap(self, name, heatmap, geometry, metadata):
        finite = heatmap[np.isfinite(heatmap)]
        limits = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if limits[0] == limits[1]:
            limits = (limits[0], limits[0] + 1.0)
        layer = add_or_update_layer(
            self._viewer, self._outputs.get("heatmap"), heatmap,
            {"name": f"score heatmap ({name})", "colormap": "viridis", "opacity": 0.45,
             **geometry, "metadata": metadata}, "image")
        layer.contrast_limits = limits
        self._outputs["heatmap"] = layer

    def _write_regions(self, name, top, geometry, metadata):
        old = self._outputs.get("regions")
        if old is not None and old in self._viewer.layers:
            self._viewer.layers.remove(old)
        rectangles = [box_to_rectangle(box) for box in top.boxes]
        scale = float(np.min(geometry["scale"]))
        self._outputs["regions"] = self._viewer.add_shapes(
            rectangles, shape_type="rectangle", name=f"regions ({name})",
            edge_color="red", face_color="transparent", edge_width=2 * scale,
            features={"score": top.scores, "rank": np.arange(1, len(top.scores) + 1)},
            text={"string": "#{rank}: {score:.3g}", "color": "red", "anchor": "upper_left",
                  "size": 10},
            metadata=metadata,
            **geometry)

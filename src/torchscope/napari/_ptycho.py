"""The ptychography dock: a virtual experiment or a file in, live object and probe layers out.

:class:`PtychoWidget` reconstructs a dataset, a diffraction-pattern layer that carries its
:class:`torchscope.ptycho.PtychoData` in ``layer.metadata["ptycho_data"]``. Such layers come
from the reader (``.cxi`` and PtyLab ``.h5``/``.hdf5`` files, or the dock's Open button), from
the sample data, or from the dock's virtual experiment: an amplitude and a phase image layer
become a complex object that :func:`torchscope.ptycho.simulate` scans with a probe.

The reconstruction runs :func:`torchscope.ptycho.iterate` in a napari thread worker. Every few
iterations the main thread updates four layers (object amplitude, object phase, the probe modes
as a stack, the positions as points that move as they are refined) and an error-vs-iteration
plot. Pause holds the worker at its next snapshot, Stop ends it there, Continue starts again
from the last snapshot (its object, probe modes and positions), and Save writes the last
snapshot with its error history as a CXI file (:func:`torchscope.ptycho.save`).

World coordinates: the sample plane, in nanometres (pixels when the geometry is unknown), with
the object's centre at the origin: the amplitude layer and the positions are there (the
positions of :class:`~torchscope.ptycho.PtychoData` are measured from the object's centre), the
phase layer to the right of the amplitude and the probe modes (a stack: one mode per slider
step) to the right of the phase, so that all three show at once. Pattern layers are drawn on
the sample-pixel grid, centred on the origin, only to share the viewer's units.

Layers made here record the call that reproduces them in ``layer.metadata["torchscope"]``; the object layers also carry the last snapshot as a
:class:`~torchscope.ptycho.Result` in ``layer.metadata["ptycho_result"]`` (what the CXI writer
saves).

torch and :mod:`torchscope.ptycho` are imported when the dock is created or computes, not when
napari reads the manifest.
"""

import re
import time
import weakref
from functools import partial
from pathlib import Path

import napari.viewer
import numpy as np
from magicgui.widgets import (
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    SpinBox,
)
from napari.layers import Image, Layer
from napari.utils.notifications import show_error, show_info

from torchscope.napari._workers import (
    Failed,
    call_record,
    dock_closed,
    follow_layer_list,
    guarded_worker,
)

MODULE = "torchscope.ptycho"
#: Metadata keys of the layers that carry ptychography objects.
DATA_KEY = "ptycho_data"
RESULT_KEY = "ptycho_result"
GEOMETRY_KEY = "ptycho_geometry"
#: Gap between the side-by-side layers (amplitude, phase, probe modes), in pixels.
GAP_PX = 8
#: The worker yields at most this often (s): the viewer redraws at most 5 times a second, and
#: the snapshots between are only recorded in the error history.
MIN_YIELD_INTERVAL_S = 0.2
NO_REFINEMENT = "none"


# --------------------------------------------------------------------------- layers (no Qt)
def pixel_nm(geometry):
    """The sample-plane pixel (y, x) in nanometres, or (1, 1) without a geometry."""
    if geometry is None:
        return (1.0, 1.0)
    return tuple(float(p) * 1e9 for p in geometry.sample_pixel_yx_m)


def _units(geometry):
    return ("nm", "nm") if geometry is not None else ("pixel", "pixel")


def _robust_limits(image):
    """Contrast limits from the 0.5 and 99.5 percentiles: the few wild pixels at the edge of
    the scanned area do not wash out the rest."""
    low, high = np.percentile(image, (0.5, 99.5))
    return (float(low), float(high) if high > low else float(low) + 1.0)


def _centred(shape, scale):
    """The translate that puts pixel ``n // 2`` of each axis at the world origin."""
    return tuple(-(n // 2) * s for n, s in zip(shape, scale))


def data_layers(data, name, *, call=None, function=f"{MODULE}.load", parameters=None,
                device=None, input=None):
    """Layer data tuples for measured data: the patterns (carrying the data) and the scan.

    Parameters
    ----------
    data : torchscope.ptycho.PtychoData
    name : str
        Prefix of the layer names.
    call : str, optional
        The Python call that made ``data``, recorded in the metadata.
    function : str
        The function that made ``data``, recorded in the metadata.
    parameters, device, input : optional
        The rest of the record (see ``call_record``).
    """
    scale = pixel_nm(data.geometry)
    record = call_record(function, call, parameters=parameters or {}, device=device,
                         input=input)
    patterns = data.patterns
    high = float(np.percentile(patterns, 99.9)) if patterns.size else 1.0
    return [
        (
            patterns,
            {
                "name": f"{name} patterns",
                "colormap": "magma",
                "gamma": 0.3,
                "contrast_limits": (0.0, max(high, 1e-12)),
                # Shown on the sample-pixel grid, centred, so that they share the viewer's
                # units with the object (their own axes are spatial frequencies).
                "scale": (1.0, *scale),
                "translate": (0.0, *_centred(patterns.shape[1:], scale)),
                "units": ("pixel", *_units(data.geometry)),
                "metadata": {DATA_KEY: data, "torchscope": record},
            },
            "image",
        ),
        (
            np.asarray(data.positions_px),
            {
                "name": f"{name} scan",
                "scale": scale,
                "units": _units(data.geometry),
                "size": 2.0,
                "face_color": "#ffd54f",
                "border_width": 0,
                "metadata": {"torchscope": record},
            },
            "points",
        ),
    ]


def snapshot_layers(snapshot, geometry, name, *, record=None, result=None):
    """Layer data tuples for a reconstruction state: object amplitude and phase, probe modes,
    positions. ``result`` (default: ``snapshot``) is what the object layers carry for the writer.
    """
    scale = pixel_nm(geometry)
    units = _units(geometry)
    obj = np.asarray(snapshot.obj)
    probe = np.asarray(snapshot.probe_modes)
    if probe.ndim == 2:
        probe = probe[None]
    _oy, ox = obj.shape
    # The amplitude's centre (index n // 2, where positions are measured from) at the world
    # origin; the phase to its right, then the probe modes.
    translate = _centred(obj.shape, scale)
    phase_translate = (translate[0], translate[1] + (ox + GAP_PX) * scale[1])
    probe_x = translate[1] + 2 * (ox + GAP_PX) * scale[1]
    probe_translate = (0.0, _centred(probe.shape[-2:], scale)[0], probe_x)
    metadata = {
        "torchscope": dict(record or {}, iteration=int(snapshot.iteration)),
        RESULT_KEY: result if result is not None else snapshot,
        GEOMETRY_KEY: geometry,
    }
    common = {"scale": scale, "units": units, "metadata": metadata}
    occupancies = getattr(snapshot, "occupancies", None)
    probe_meta = dict(metadata)
    if occupancies is not None:
        probe_meta["occupancies"] = np.asarray(occupancies).tolist()
    amplitude, phase = np.abs(obj).astype(np.float32), np.angle(obj).astype(np.float32)
    return [
        (
            amplitude,
            {
                "name": f"{name} amplitude",
                "colormap": "gray",
                "translate": translate,
                "contrast_limits": _robust_limits(amplitude),
                **common,
            },
            "image",
        ),
        (
            phase,
            {
                "name": f"{name} phase",
                "colormap": "twilight_shifted",
                "translate": phase_translate,
                "contrast_limits": _robust_limits(phase),
                **common,
            },
            "image",
        ),
        (
            np.abs(probe).astype(np.float32),
            {
                "contrast_limits": (0.0, float(np.abs(probe).max()) or 1.0),
                "name": f"{name} probe",
                "colormap": "inferno",
                "scale": (1.0, *scale),
                "translate": probe_translate,
                "units": ("pixel", *units),
                "metadata": probe_meta,
            },
            "image",
        ),
        (
            np.asarray(snapshot.positions_px, dtype=np.float64),
            {
                "name": f"{name} positions",
                "scale": scale,
                "units": units,
                "size": 2.0,
                "face_color": "#4dd0e1",
                "border_width": 0,
                "metadata": {"torchscope": metadata["torchscope"]},
            },
            "points",
        ),
    ]


def _update_layer(layer, data, kwargs):
    """Live update: new data and metadata; geometry only when it changed (each set redraws)."""
    old = layer.data
    if not isinstance(layer, Image) and np.array_equal(old, data):
        layer.metadata = kwargs["metadata"]  # positions not refined: nothing to redraw
        return
    if isinstance(layer, Image) and old.shape == data.shape and old.dtype == data.dtype:
        old[...] = data  # in place: no new-data bookkeeping (dims, extent) in the viewer
        layer.refresh()
    else:
        layer.data = data
    layer.metadata = kwargs["metadata"]
    for key in ("scale", "translate"):
        if key in kwargs and not np.allclose(getattr(layer, key), kwargs[key]):
            setattr(layer, key, kwargs[key])
    if isinstance(layer, Image):
        layer.contrast_limits = kwargs["contrast_limits"]


# --------------------------------------------------------------------------- worker bodies
def simulate_dataset(amplitude, phase, *, geometry, probe, scan, photons, seed, device):
    """The virtual experiment (runs in the worker): returns the simulated PtychoData.

    ``amplitude`` and ``phase`` are the object's |O| and arg(O) (either may be None: 1 and 0).
    ``probe`` are the keyword arguments of ``make_probe`` besides the shape; ``scan`` those of
    ``raster_positions``.
    """
    from torchscope import ptycho

    if amplitude is None and phase is None:
        raise ValueError("Virtual experiment: choose an amplitude layer, a phase layer or both.")
    shape = (amplitude if amplitude is not None else phase).shape
    amp = np.ones(shape) if amplitude is None else np.asarray(amplitude, dtype=np.float64)
    arg = np.zeros(shape) if phase is None else np.asarray(phase, dtype=np.float64)
    if amp.shape != arg.shape:
        raise ValueError(
            f"Virtual experiment: the amplitude {amp.shape} and phase {arg.shape} layers differ in shape."
        )
    obj = (amp * np.exp(1j * arg)).astype(np.complex64)
    rng = np.random.default_rng(seed)
    probe_modes = ptycho.make_probe(geometry.detector_shape, **probe)
    positions = ptycho.raster_positions(
        scan["grid"], scan["step_px"], jitter_px=scan["jitter_px"], rng=rng
    )
    data = ptycho.simulate(
        obj, probe_modes, positions, geometry=geometry, photons=photons, rng=rng, device=device
    )
    return data
    yield  # a generator, so that errors come back as values (see _workers._guarded)


def reconstruct_snapshots(data, options, iterations, start=None):
    """Run ``iterate`` for ``iterations`` more iterations from ``start`` (runs in the worker).

    Yields ``(snapshot, history)``, where ``history`` lists every ``(iteration, error)`` the
    engine reported in this run; snapshots that come faster than one per
    :data:`MIN_YIELD_INTERVAL_S` are only recorded in the history (the last one always yields),
    so a fast engine does not flood the viewer with layer updates.
    """
    from torchscope import ptycho

    history = []
    last_yield = -np.inf
    pending = None
    for snapshot in ptycho.iterate(data, start=start, iterations=iterations, **options):
        history.append((int(snapshot.iteration), float(snapshot.error)))
        pending = snapshot
        if time.monotonic() - last_yield >= MIN_YIELD_INTERVAL_S:
            yield snapshot, list(history)
            last_yield, pending = time.monotonic(), None
    if pending is not None:
        yield pending, list(history)
    return len(history)


# --------------------------------------------------------------------------- the error plot
def nice_ticks(low, high, *, log=False, count=5):
    """Tick values covering [low, high]: 1-2-5 steps, per decade on a log axis."""
    if log:
        lo, hi = np.floor(np.log10(low)), np.ceil(np.log10(high))
        if hi - lo > 2:  # decades only
            step = max(1, int(np.ceil((hi - lo) / count)))
            return [10.0**k for k in np.arange(lo, hi + 1, step)]
        ticks = [m * 10.0**k for k in np.arange(lo, hi + 1) for m in (1, 2, 5)]
        inside = [t for t in ticks if low <= t <= high]
        return inside if len(inside) >= 2 else [low, high]
    span = max(high - low, 1e-12)
    raw = span / count
    step = min(
        (m * 10.0 ** np.floor(np.log10(raw)) for m in (1, 2, 5, 10)),
        key=lambda s: abs(s - raw) if s >= raw else np.inf,
    )
    return list(np.arange(np.ceil(low / step) * step, high + step / 2, step))


def _tick_label(value):
    return f"{value:.3g}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.0e}"


class ErrorPlot:
    """Error vs iteration on a log scale: a small plot drawn with QPainter (cheap to redraw at
    every snapshot, unlike a plotting library), in the viewer's theme colours."""

    def __init__(self, viewer):
        from qtpy.QtWidgets import QWidget

        colors = _theme_colors(viewer)
        plot = self

        class Canvas(QWidget):
            def paintEvent(self, event):
                plot._paint(self)

        self.canvas = Canvas()
        self.canvas.setMinimumHeight(160)
        self.canvas.setToolTip("Error (normalised amplitude misfit) after each snapshot")
        self.colors = colors
        self.iterations, self.errors = [], []

    def set_history(self, history):
        """Show ``history``, a list of (iteration, error)."""
        self.iterations = [int(i) for i, _ in history]
        self.errors = [float(e) for _, e in history]
        self.canvas.update()

    def _paint(self, widget):
        from qtpy.QtCore import QPointF, QRectF, Qt
        from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF

        painter = QPainter(widget)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        text, line = QColor(self.colors["text"]), QColor(self.colors["highlight"])
        grid = QColor(text)
        grid.setAlpha(50)
        w, h = widget.width(), widget.height()
        left, right, top, bottom = 52, 10, 8, 30
        area = QRectF(left, top, max(w - left - right, 10), max(h - top - bottom, 10))
        points = [(i, e) for i, e in zip(self.iterations, self.errors) if e > 0 and np.isfinite(e)]
        font = painter.font()
        font.setPointSizeF(max(font.pointSizeF() * 0.85, 6))
        painter.setFont(font)
        painter.setPen(QPen(text))
        painter.drawText(
            QRectF(left, h - 16, area.width(), 16), Qt.AlignmentFlag.AlignCenter, "iteration"
        )
        if not points:
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, "error vs iteration")
            painter.end()
            return
        x0, x1 = 0.0, float(max(max(i for i, _ in points), 1))
        e_lo, e_hi = min(e for _, e in points), max(e for _, e in points)
        if e_hi <= e_lo * 1.05:
            e_lo, e_hi = e_lo / 1.1, e_hi * 1.1
        y0, y1 = np.log10(e_lo) - 0.02, np.log10(e_hi) + 0.02

        def to_px(i, e):
            return QPointF(
                area.left() + (i - x0) / (x1 - x0) * area.width(),
                area.bottom() - (np.log10(e) - y0) / (y1 - y0) * area.height(),
            )

        for value in nice_ticks(10**y0, 10**y1, log=True):
            y = to_px(x0, value).y()
            painter.setPen(QPen(grid))
            painter.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
            painter.setPen(QPen(text))
            painter.drawText(
                QRectF(0, y - 8, left - 4, 16),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                _tick_label(value),
            )
        for value in nice_ticks(x0, x1):
            x = to_px(value, 10**y0).x()
            painter.setPen(QPen(grid))
            painter.drawLine(QPointF(x, area.top()), QPointF(x, area.bottom()))
            painter.setPen(QPen(text))
            painter.drawText(
                QRectF(x - 30, area.bottom() + 2, 60, 14),
                Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                f"{value:g}",
            )
        painter.setPen(QPen(text))
        painter.drawRect(area)
        painter.drawText(
            area.adjusted(6, 2, 0, 0),
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop,
            "error  ",
        )
        pen = QPen(line)
        pen.setWidthF(1.6)
        painter.setPen(pen)
        painter.drawPolyline(QPolygonF([to_px(i, e) for i, e in points]))
        painter.setBrush(line)
        painter.drawEllipse(to_px(*points[-1]), 2.5, 2.5)
        painter.end()


def _theme_colors(viewer):
    """Text, accent and background colours of the viewer's theme."""
    try:
        from napari.utils.theme import get_theme

        theme = get_theme(viewer.theme)
        return {
            "background": theme.foreground.as_hex(),
            "text": theme.text.as_hex(),
            "highlight": theme.current.as_hex(),
        }
    except Exception:  # noqa: BLE001 - a custom theme without these fields: plain colours
        return {"background": "#262930", "text": "#f0f1f2", "highlight": "#4dd0e1"}


# --------------------------------------------------------------------------- the dock
class PtychoWidget(Container):
    """The ptychography dock.

    Children (``widget.<name>.value`` reads and sets them): ``dataset`` (a patterns layer
    carrying a PtychoData); the virtual experiment ``amplitude``, ``phase``, ``phase_range``,
    ``energy_ev``, ``distance_m``, ``detector_pixel_um``, ``detector_px``, ``probe_kind``,
    ``probe_diameter_px``, ``probe_modes``, ``step_px``, ``jitter_px``, ``photons``, ``seed``;
    the reconstruction ``engine``, ``modes``, ``alpha_obj``, ``alpha_probe``, ``beta``,
    ``gamma``, ``iterations``, ``every``, ``refinement``, ``finish``, ``device``. Methods do
    what the buttons do: :meth:`open_file`, :meth:`simulate`, :meth:`run`, :meth:`pause`,
    :meth:`stop`, :meth:`resume` (Continue), :meth:`save`.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        from torchscope.backend import available_devices

        self._viewer = napari_viewer
        self.worker = None  # the running reconstruction or simulation
        self.last_snapshot = None
        self.history = []  # (iteration, error) of the finished runs of this reconstruction
        self._current_history = []  # the same, with the running one
        self._run_data = None  # the PtychoData the last snapshot belongs to
        self._run_options = None
        self._run_first = 0  # the iteration the current run started from
        self._start_call = self._shown_call = None  # replays of those snapshots (records)
        self._outputs = weakref.WeakKeyDictionary()  # patterns layer -> {role: layer}

        # ----------------------------------------------------------------- data
        self.dataset = ComboBox(
            name="dataset",
            label="dataset",
            choices=self._dataset_choices,
            nullable=True,
            tooltip="Diffraction patterns to reconstruct: a layer opened from a .cxi or PtyLab "
            ".h5 file, a sample, or a virtual experiment below.",
        )
        self.open_button = PushButton(text="Open file…", name="open")

        # ----------------------------------------------------------------- virtual experiment
        image = partial(ComboBox, choices=self._image_choices, nullable=True)
        self.amplitude = image(name="amplitude", tooltip="|O|, used as it is (None: 1).")
        self.phase = image(name="phase", tooltip="Scaled to phase range (None: 0).")
        self.phase_range = FloatSpinBox(
            name="phase_range",
            label="phase range (rad)",
            value=float(np.pi),
            min=0.0,
            max=20.0,
            step=0.1,
            tooltip="The phase image, min-max normalised, spans this many radians.",
        )
        self.energy_ev = FloatSpinBox(
            name="energy_ev", label="energy (eV)", value=1020.0, min=1.0, max=1e6, step=10.0
        )
        self.distance_m = FloatSpinBox(
            name="distance_m", label="distance (m)", value=0.75, min=1e-4, max=100.0, step=0.05
        )
        self.detector_pixel_um = FloatSpinBox(
            name="detector_pixel_um",
            label="detector pixel (µm)",
            value=20.0,
            min=0.1,
            max=1000.0,
            step=1.0,
        )
        self.detector_px = SpinBox(
            name="detector_px",
            label="detector (px)",
            value=64,
            min=8,
            max=2048,
            step=8,
            tooltip="Patterns (and probe) are N x N.",
        )
        self.probe_kind = ComboBox(
            name="probe_kind", label="probe", choices=["disk", "gaussian", "zone_plate"]
        )
        self.probe_diameter_px = FloatSpinBox(
            name="probe_diameter_px",
            label="probe size (px)",
            value=32.0,
            min=2.0,
            max=2048.0,
            step=1.0,
        )
        self.probe_phase = FloatSpinBox(
            name="probe_phase",
            label="probe curvature (rad)",
            value=2.5,
            min=-50.0,
            max=50.0,
            step=0.5,
            tooltip="Quadratic phase at the probe's rim (disk, gaussian).",
        )
        self.probe_modes = SpinBox(name="probe_modes", label="probe modes", value=1, min=1, max=8)
        self.step_px = FloatSpinBox(
            name="step_px", label="step (px)", value=8.0, min=0.5, max=512.0, step=0.5
        )
        self.jitter_px = FloatSpinBox(
            name="jitter_px", label="jitter (px)", value=1.0, min=0.0, max=64.0, step=0.5
        )
        self.photons = FloatSpinBox(
            name="photons",
            label="photons / pattern",
            value=1e6,
            min=0.0,
            max=1e12,
            step=1e5,
            tooltip="Poisson noise at this many photons per pattern; 0: none.",
        )
        self.sim_seed = SpinBox(
            name="sim_seed",
            label="seed",
            value=0,
            min=0,
            max=2**31 - 1,
            tooltip="Seed of the jitter and the Poisson noise.",
        )
        self.simulate_button = PushButton(text="Simulate", name="simulate_button")
        simulation = Container(
            widgets=[
                self.amplitude,
                self.phase,
                self.phase_range,
                self.energy_ev,
                self.distance_m,
                self.detector_pixel_um,
                self.detector_px,
                self.probe_kind,
                self.probe_diameter_px,
                self.probe_phase,
                self.probe_modes,
                self.step_px,
                self.jitter_px,
                self.photons,
                self.sim_seed,
                self.simulate_button,
            ]
        )

        # ----------------------------------------------------------------- reconstruction
        from torchscope.ptycho._engines import DEFAULTS, ENGINES

        self._defaults = DEFAULTS
        self.engine = ComboBox(
            name="engine",
            choices=list(ENGINES),
            value="rpie",
            tooltip="rPIE (M-rPIE with modes) or ePIE (M-ePIE): beta = gamma = 1.",
        )
        self.modes = SpinBox(
            name="modes",
            value=1,
            min=1,
            max=8,
            tooltip="Probe modes (M-ePIE / M-rPIE for more than one).",
        )
        fraction = partial(FloatSpinBox, min=0.0, max=2.0, step=0.05)
        self.alpha_obj = fraction(
            name="alpha_obj", label="alpha object", tooltip="Object update rate alpha_O, in (0, 2]."
        )
        self.alpha_probe = fraction(
            name="alpha_probe",
            label="alpha probe",
            tooltip="Probe update rate alpha_P, in [0, 2] (0: fixed probe).",
        )
        self.beta = fraction(
            name="beta",
            max=1.0,
            tooltip="rPIE regularisation of the probe update, in (0, 1] (1: ePIE).",
        )
        self.gamma = fraction(
            name="gamma",
            max=1.0,
            tooltip="rPIE regularisation of the object update, in (0, 1] (1: ePIE).",
        )
        self.iterations = SpinBox(
            name="iterations",
            value=100,
            min=1,
            max=100_000,
            tooltip="Iterations per Run (and per Continue).",
        )
        self.every = SpinBox(
            name="every",
            label="update every",
            value=5,
            min=1,
            max=1000,
            tooltip="Iterations between snapshots (layer and plot updates).",
        )
        self.refinement = ComboBox(
            name="refinement",
            label="position refinement",
            choices=[NO_REFINEMENT, "adam", "fixed_gain"],
            tooltip="Correct the scan positions (from iteration 10 of a run).",
        )
        self.finish = ComboBox(
            name="finish",
            choices=[("automatic", "auto"), ("halved rates", None), ("L-BFGS", "lbfgs")],
            value="auto",
            tooltip="How the run ends once the batches have grown: PIE with update rates halved "
            "whenever the error stalls (safe at any dose), or L-BFGS on object and probe "
            "together (converges much further on well-exposed data; at a few photons per "
            "pixel it fits the noise). Automatic: L-BFGS with several probe modes, halved "
            "rates with one. Not with position refinement.",
        )
        self.seed = SpinBox(
            name="seed",
            value=0,
            min=0,
            max=2**31 - 1,
            tooltip="Seed of the reconstruction's batches and visiting order.",
        )
        self.device = ComboBox(
            name="device",
            choices=[("auto", None), *((d, d) for d in available_devices())],
            tooltip="Where torch computes: auto picks CUDA, then Apple MPS, then the CPU.",
        )
        self._on_engine_changed()

        # ----------------------------------------------------------------- controls
        self.run_button = PushButton(text="Run", name="run")
        self.pause_button = PushButton(text="Pause", name="pause", enabled=False)
        self.stop_button = PushButton(text="Stop", name="stop", enabled=False)
        self.continue_button = PushButton(
            text="Continue",
            name="continue",
            enabled=False,
            tooltip="Run more iterations from the last snapshot.",
        )
        self.save_button = PushButton(text="Save result…", name="save", enabled=False)
        buttons = Container(
            widgets=[self.run_button, self.pause_button, self.stop_button, self.continue_button],
            layout="horizontal",
            labels=False,
        )
        buttons.margins = (0, 0, 0, 0)
        self.progress = ProgressBar(value=0, min=0, max=1, name="progress", label="progress")
        self.status = Label(name="status", value="")
        self.plot = ErrorPlot(napari_viewer)

        super().__init__(
            widgets=[
                self.dataset,
                self.open_button,
                self.engine,
                self.modes,
                self.alpha_obj,
                self.alpha_probe,
                self.beta,
                self.gamma,
                self.iterations,
                self.every,
                self.refinement,
                self.finish,
                self.seed,
                self.device,
                buttons,
                self.progress,
                self.status,
                self.save_button,
            ]
        )
        self._add_native(simulation, after=self.open_button)
        self.native.layout().addWidget(self.plot.canvas)

        self.open_button.changed.connect(self._open_dialog)
        self.simulate_button.changed.connect(self.simulate)
        self.run_button.changed.connect(self.run)
        self.pause_button.changed.connect(self.pause)
        self.stop_button.changed.connect(self.stop)
        self.continue_button.changed.connect(self.resume)
        self.save_button.changed.connect(self._save_dialog)
        self.dataset.changed.connect(self._on_dataset_changed)
        self.engine.changed.connect(self._on_engine_changed)
        self.refinement.changed.connect(self._on_refinement_changed)
        follow_layer_list(napari_viewer, self.reset_choices)

    def _add_native(self, container, *, after):
        """Put ``container`` in a collapsible box ("Virtual experiment") below ``after``."""
        from superqt import QCollapsible

        box = QCollapsible("Virtual experiment")
        box.addWidget(container.native)
        box.collapse(animate=False)
        self._simulation_box = box
        self._simulation = container
        layout = self.native.layout()
        layout.insertWidget(layout.indexOf(after.native) + 1, box)

    # ----------------------------------------------------------------------- choices
    def reset_choices(self, *_):
        """Refresh the layer lists (the virtual experiment's too: it sits in its own box)."""
        super().reset_choices()
        self._simulation.reset_choices()

    def _dataset_choices(self, _widget=None):
        return [
            (layer.name, layer)
            for layer in self._viewer.layers
            if isinstance(layer, Image) and DATA_KEY in layer.metadata
        ]

    def _image_choices(self, _widget=None):
        return [
            (layer.name, layer)
            for layer in self._viewer.layers
            if isinstance(layer, Image)
            and DATA_KEY not in layer.metadata
            and RESULT_KEY not in layer.metadata
            and layer.ndim == 2
            and not layer.rgb
        ]

    def _on_engine_changed(self, *_):
        """The engine's default parameters; ePIE has beta = gamma = 1 by definition."""
        defaults = self._defaults[self.engine.value]
        for name in ("alpha_obj", "alpha_probe", "beta", "gamma"):
            getattr(self, name).value = defaults[name]
        self.beta.enabled = self.gamma.enabled = self.engine.value != "epie"

    def _on_refinement_changed(self, *_):
        """The L-BFGS finish keeps the positions fixed: not with refinement."""
        self.finish.enabled = self.refinement.value == NO_REFINEMENT

    def _on_dataset_changed(self, *_):
        # Continue belongs to the data the last snapshot came from.
        self.continue_button.enabled = (
            self.worker is None and self.last_snapshot is not None and self._same_data()
        )

    def _same_data(self):
        layer = self.dataset.value
        return layer is not None and layer.metadata.get(DATA_KEY) is self._run_data

    # ----------------------------------------------------------------------- data
    def _open_dialog(self):
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(
            self.native, "Open ptychography data", "", "Ptychography (*.cxi *.h5 *.hdf5)"
        )
        if path:
            self.open_file(path)

    def open_file(self, path):
        """Open a CXI or PtyLab file with the torchscope reader; select its patterns layer."""
        try:
            layers = self._viewer.open(path, plugin="napari-torchscope")
        except Exception as error:  # noqa: BLE001 - shown to the user
            show_error(f"Could not open {path}: {error}")
            return []
        for layer in layers:
            if DATA_KEY in layer.metadata:
                self.dataset.value = layer
        return layers

    def simulation_job(self):
        """The virtual experiment's arguments, from the widgets (raises ValueError)."""
        from torchscope.backend import device_name
        from torchscope.ptycho import Geometry, raster_grid

        amplitude_layer, phase_layer = self.amplitude.value, self.phase.value
        if amplitude_layer is None and phase_layer is None:
            raise ValueError(
                "Virtual experiment: choose an amplitude layer, a phase layer or both."
            )
        amplitude = None if amplitude_layer is None else np.asarray(amplitude_layer.data, float)
        phase = None
        if phase_layer is not None:
            values = np.asarray(phase_layer.data, dtype=float)
            span = np.ptp(values)
            phase = (
                self.phase_range.value * ((values - values.min()) / span - 0.5)
                if span
                else 0 * values
            )
        shape = (amplitude if amplitude is not None else phase).shape
        if amplitude is not None and phase is not None and amplitude.shape != phase.shape:
            raise ValueError(f"Virtual experiment: the amplitude {amplitude.shape} and phase "
                             f"{phase.shape} layers differ in shape.")
        n = int(self.detector_px.value)
        if min(shape) <= n:
            raise ValueError(
                f"Virtual experiment: the object ({shape[0]} x {shape[1]}) must be larger than "
                f"the detector ({n} x {n} px), the probe's extent."
            )
        geometry = Geometry(
            energy_ev=self.energy_ev.value,
            detector_distance_m=self.distance_m.value,
            detector_pixel_m=self.detector_pixel_um.value * 1e-6,
            detector_shape=(n, n),
        )
        step, jitter = float(self.step_px.value), float(self.jitter_px.value)
        grid = raster_grid(shape, n, step, jitter_px=jitter)  # the probe stays inside
        probe = {
            "kind": self.probe_kind.value,
            "diameter_px": float(self.probe_diameter_px.value),
            "quadratic_phase_rad": float(self.probe_phase.value),
            "modes": int(self.probe_modes.value),
        }
        photons = float(self.photons.value) or None
        # The console lines that build the same object from the layers.
        # (in float64, as above: float32 layers gave an object differing in its last bits,
        # which flipped a few of the seeded Poisson counts)
        code = ["import numpy"]
        code.append(
            f"amp = numpy.asarray(viewer.layers[{amplitude_layer.name!r}].data, float)"
            if amplitude_layer is not None
            else "amp = 1.0"
        )
        if phase is not None:
            code.append(f"p = numpy.asarray(viewer.layers[{phase_layer.name!r}].data, float)")
            code.append(f"ph = {self.phase_range.value!r} * ((p - p.min()) / numpy.ptp(p) - 0.5)"
                        if span else "ph = 0 * p")  # a flat layer: no phase, but its shape
        else:
            code.append("ph = 0.0")
        code.append("obj = amp * numpy.exp(1j * ph)")
        return {
            "amplitude": amplitude,
            "phase": phase,
            "geometry": geometry,
            "probe": probe,
            "scan": {"grid": grid, "step_px": step, "jitter_px": jitter},
            "photons": photons,
            "seed": int(self.sim_seed.value),
            "device": device_name(self.device.value),
            "names": (getattr(amplitude_layer, "name", None), getattr(phase_layer, "name", None)),
            "object_code": code,
        }

    def simulate(self):
        """Run the virtual experiment (what Simulate does); returns the started worker or None."""
        if self.worker is not None:
            show_error("Ptychography: wait for the running job, or stop it.")
            return None
        try:
            job = self.simulation_job()
        except (TypeError, ValueError) as error:
            show_error(str(error))
            return None
        names, object_code = job.pop("names"), job.pop("object_code")
        kwargs = {k: job[k] for k in ("geometry", "probe", "scan", "photons", "seed", "device")}
        worker = guarded_worker(simulate_dataset, job["amplitude"], job["phase"], **kwargs)
        worker.returned.connect(partial(self._simulated, names, object_code, kwargs))
        worker.finished.connect(self._finished)
        self._start(worker, reconstruction=False)
        return worker

    def _simulated(self, names, object_code, kwargs, value):
        if isinstance(value, Failed):
            show_error(f"Virtual experiment failed: {value.error}")
            return
        if dock_closed(self):  # the viewer was closed meanwhile
            return
        data = value
        data.metadata.setdefault("simulation", {k: v for k, v in kwargs.items() if k != "geometry"})
        label = "+".join(n for n in names if n) or "object"
        g, scan = kwargs["geometry"], kwargs["scan"]
        probe = ", ".join(f"{k}={v!r}" for k, v in kwargs["probe"].items())
        geometry = (
            f"{MODULE}.Geometry(energy_ev={g.energy_ev!r}, detector_distance_m="
            f"{g.detector_distance_m!r}, detector_pixel_m={g.detector_pixel_m!r}, "
            f"detector_shape={g.detector_shape!r})"
        )
        call = "; ".join(
            [
                *object_code,
                f"rng = numpy.random.default_rng({kwargs['seed']})",
                (
                    f"{MODULE}.simulate(obj, {MODULE}.make_probe({g.detector_shape!r}, {probe}), "
                    f"{MODULE}.raster_positions({scan['grid']!r}, {scan['step_px']!r}, "
                    f"jitter_px={scan['jitter_px']!r}, rng=rng), photons={kwargs['photons']!r}, "
                    f"geometry={geometry}, rng=rng, device={kwargs['device']!r})"
                ),
            ]
        )
        added = []
        g = kwargs["geometry"]
        parameters = {"energy_ev": g.energy_ev, "detector_distance_m": g.detector_distance_m,
                      "detector_pixel_m": g.detector_pixel_m,
                      "detector_shape": g.detector_shape, "probe": kwargs["probe"],
                      "scan": kwargs["scan"], "photons": kwargs["photons"],
                      "seed": kwargs["seed"]}
        layers = data_layers(data, f"simulated {label}", call=call, function=f"{MODULE}.simulate",
                             parameters=parameters, device=kwargs["device"], input=label)
        for data_, meta, kind in layers:
            added.append(self._viewer.add_layer(Layer.create(data_, meta, kind)))
        self.dataset.reset_choices()
        self.dataset.value = added[0]

    # ----------------------------------------------------------------------- reconstruction
    def reconstruction_options(self):
        """The options of ``iterate`` set in the dock."""
        from torchscope.backend import device_name

        refinement = self.refinement.value
        rpie = self.engine.value != "epie"
        return {
            "engine": self.engine.value,
            "modes": int(self.modes.value),
            "alpha_obj": float(self.alpha_obj.value),
            "alpha_probe": float(self.alpha_probe.value),
            "beta": float(self.beta.value) if rpie else None,
            "gamma": float(self.gamma.value) if rpie else None,
            "position_refinement": None if refinement == NO_REFINEMENT else refinement,
            "finish": self.finish.value if refinement == NO_REFINEMENT else None,
            "every": int(self.every.value),
            "seed": int(self.seed.value),
            "device": device_name(self.device.value),
        }

    def run(self):
        """Reconstruct the selected dataset from scratch (what Run does)."""
        layer = self.dataset.value
        if layer is None or DATA_KEY not in layer.metadata:
            show_error("Ptychography: choose a dataset (open a file, load a sample or simulate).")
            return None
        self.history, self._current_history = [], []
        self.last_snapshot = None
        return self._reconstruct(layer, self.reconstruction_options(), start=None)

    def resume(self):
        """Run ``iterations`` more iterations from the last snapshot (what Continue does).

        The object, probe modes and positions of the last snapshot are the starting point; the
        settings are the dock's current ones (to change alphas or turn on refinement midway).
        """
        if self.last_snapshot is None or not self._same_data():
            show_error("Ptychography: nothing to continue for this dataset; press Run.")
            return None
        return self._reconstruct(
            self.dataset.value, self.reconstruction_options(), start=self.last_snapshot
        )

    def _reconstruct(self, layer, options, *, start):
        if self.worker is not None:
            show_error("Ptychography: a job is running; stop it first.")
            return None
        data = layer.metadata[DATA_KEY]
        self._run_data, self._run_options = data, options
        iterations = int(self.iterations.value)
        worker = guarded_worker(reconstruct_snapshots, data, options, iterations, start)
        first = self._run_first = 0 if start is None else int(start.iteration)
        # the expression that replays the snapshot this run goes on from (Continue)
        self._start_call = None if start is None else self._shown_call
        self.progress.min, self.progress.max, self.progress.value = first, first + iterations, first
        worker.yielded.connect(partial(self._show, layer))
        worker.returned.connect(self._returned)
        worker.aborted.connect(self._stopped)
        worker.paused.connect(partial(self._pause_text, "Resume"))
        worker.resumed.connect(partial(self._pause_text, "Pause"))
        worker.finished.connect(self._finished)
        layer.visible = False  # the patterns would cover the live object
        self._start(worker, reconstruction=True)
        return worker

    def _start(self, worker, *, reconstruction):
        self.worker = worker
        for button in (self.run_button, self.continue_button, self.simulate_button):
            button.enabled = False
        self.pause_button.enabled = self.stop_button.enabled = reconstruction
        self.pause_button.text = "Pause"
        worker.start()

    def _pause_text(self, text):
        if not dock_closed(self):  # a pause that took effect as the viewer closed
            self.pause_button.text = text

    def pause(self):
        """Pause the running reconstruction at its next snapshot, or resume it (Pause/Resume)."""
        if self.worker is not None and hasattr(self.worker, "toggle_pause"):
            self.worker.toggle_pause()

    def stop(self):
        """Stop the running reconstruction at its next snapshot (what Stop does)."""
        if self.worker is not None:
            self.worker.quit()  # also ends a paused worker
            self.stop_button.enabled = self.pause_button.enabled = False

    def _record(self, data_layer, options, iteration):
        """How the layers were made: the console call that gives the same snapshot."""
        import inspect

        from torchscope import ptycho

        # None is left out where it is the default (finish=None is not: halved rates)
        defaults = {k: p.default for k, p in inspect.signature(ptycho.iterate).parameters.items()}
        args = ", ".join(f"{k}={v!r}" for k, v in options.items()
                         if k != "every" and (v is not None or defaults.get(k) is not None))
        call = f"{MODULE}.reconstruct(data, iterations={iteration - self._run_first}, {args}"
        if self._run_first:  # the run it went on from, replayed in place
            call += f", start={self._start_call})"
        else:
            call += ")"
        self._shown_call = call  # what a Continue from this snapshot starts from
        return call_record(
            f"{MODULE}.iterate",
            f"data = viewer.layers[{data_layer.name!r}].metadata[{DATA_KEY!r}]; {call}",
            parameters=options, device=options["device"], input=data_layer.name)

    def _show(self, data_layer, payload):
        """Main thread: a snapshot arrived; update the layers, the plot and the progress."""
        if dock_closed(self):  # a snapshot queued before the viewer was closed
            return
        snapshot, history = payload
        self.last_snapshot = snapshot
        merged = self.history + history  # earlier runs (Run, then Continue) and this one
        self._current_history = merged
        geometry = self._run_data.geometry
        record = self._record(data_layer, self._run_options, int(snapshot.iteration))
        # "x patterns" gives "x amplitude", ...; napari's copy "x patterns [1]" "x [1] ..."
        name = re.sub(r" patterns( \[\d+\])?$", r"\1", data_layer.name)
        result = self.result(history=merged)
        outputs = self._outputs.setdefault(data_layer, {})
        roles = ("amplitude", "phase", "probe", "positions")
        for role, (data, kwargs, kind) in zip(
            roles, snapshot_layers(snapshot, geometry, name, record=record, result=result)
        ):
            layer = outputs.get(role)
            if layer is not None and layer in self._viewer.layers and layer.ndim == np.ndim(data):
                _update_layer(layer, data, kwargs)
            else:
                outputs[role] = self._viewer.add_layer(Layer.create(data, kwargs, kind))
        self.save_button.enabled = True  # the last snapshot can be saved at any time
        self.plot.set_history(merged)
        self.progress.value = min(int(snapshot.iteration), self.progress.max)
        state = snapshot.state or {}
        phase = " (L-BFGS finish)" if state.get("lbfgs") is not None else ""
        self.status.value = f"iteration {snapshot.iteration}{phase}, error {snapshot.error:.4g}"

    def result(self, history=None):
        """The last snapshot as a :class:`~torchscope.ptycho.Result` with its error history."""
        from torchscope.ptycho import Result

        snap = self.last_snapshot
        if snap is None:
            return None
        history = self._current_history if history is None else history
        return Result(
            iteration=snap.iteration,
            obj=snap.obj,
            probe_modes=snap.probe_modes,
            positions_px=snap.positions_px,
            error=snap.error,
            occupancies=snap.occupancies,
            errors=np.array([e for _, e in history], dtype=np.float64),
            options=dict(self._run_options or {}, history_iterations=[i for i, _ in history]),
        )

    def _returned(self, value):
        if isinstance(value, Failed):
            show_error(f"Ptychography reconstruction failed: {value.error}")
        self.history = self._current_history

    def _stopped(self):
        self.history = self._current_history
        it = None if self.last_snapshot is None else self.last_snapshot.iteration
        show_info(f"Ptychography stopped at iteration {it}; Continue goes on from there.")

    def _finished(self):
        self.worker = None
        if dock_closed(self):
            return
        self.run_button.enabled = self.simulate_button.enabled = True
        self.pause_button.enabled = self.stop_button.enabled = False
        self.pause_button.text = "Pause"
        self.save_button.enabled = self.last_snapshot is not None
        self._on_dataset_changed()

    # ----------------------------------------------------------------------- saving
    def _save_dialog(self):
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(self.native, "Save reconstruction", "", "CXI (*.cxi)")
        if path:
            self.save(path)

    def save(self, path):
        """Write the last snapshot and its error history to ``path`` (CXI)."""
        from torchscope.ptycho import save

        result = self.result()
        if result is None:
            show_error("Ptychography: nothing to save yet; run a reconstruction.")
            return None
        if not Path(path).suffix:  # the reader claims .cxi files: a bare name gets the suffix
            path = Path(path).with_suffix(".cxi")
        try:
            written = save(path, result, geometry=self._run_data.geometry)
        except Exception as error:  # noqa: BLE001 - shown to the user
            show_error(f"Could not save {path}: {error}")
            return None
        show_info(f"Saved the reconstruction (iteration {result.iteration}) to {written}")
        return written

"""The ghost-imaging docks, readers, writer and samples in a real viewer.

Every expected result is computed with the public torchscope.ghost API, as a console user would
write it; never with the dock's own argument building.
"""

import time

import napari
import numpy as np
import pytest
import tifffile
from napari.layers import Labels

from torchscope import ghost
from torchscope.napari._ghost import CNRCurveWidget, GhostWidget
from torchscope.napari._readers import (
    GHOST_MEASUREMENT,
    get_ghost_measurement_reader,
    get_ghost_patterns_reader,
)
from torchscope.napari._writers import write_ghost_measurement

PLUGIN = "napari-torchscope"
GEOMETRY = {"scale": (30.0, 30.0), "translate": (5.0, -2.0), "units": ("µm", "µm"),
            "axis_labels": ("y", "x")}
SETTING = {"modulation_depth": 0.8, "mask_error": 0.03, "blur": 0.0, "photons": 1000.0, "rng": 0}


@pytest.fixture
def gear(viewer):
    return viewer.add_image(ghost.sample_object("gear", 32), name="gear", **GEOMETRY)


def run(widget, wait_until_done, **values):
    for name, value in values.items():
        getattr(widget, name).value = value
    worker = widget.run()
    assert worker is not None
    wait_until_done(widget, timeout=60_000)


def console_measurement(obj, ratio=0.25):
    p = ghost.hadamard_patterns(obj.shape[0], ratio=ratio, order="zigzag", kind="binary")
    return ghost.simulate_buckets(obj, p, **SETTING), p


def pinv_and_tv(b, p, *, lam):
    """The console's pinv and tv images (D_r 0.8, 40 TV iterations), as the dock runs them."""
    return {"pinv": ghost.reconstruct(b, p, method="pinv", modulation_depth=0.8),
            "tv": ghost.reconstruct(b, p, method="tv", modulation_depth=0.8, iterations=40,
                                    lam=lam)}


def test_simulate_and_reconstruct_with_two_methods(viewer, gear, wait_until_done):
    original = gear.data.copy()
    widget = GhostWidget(viewer)
    run(widget, wait_until_done, object=gear, ratio=0.25, methods=["pinv", "tv"], iterations=40)
    expected = pinv_and_tv(*console_measurement(original), lam=0.02)
    for method, image in expected.items():
        layer = viewer.layers[f"{method}(gear)"]
        np.testing.assert_allclose(layer.data, image, rtol=1e-6, atol=1e-6 * abs(image).max())
        np.testing.assert_array_equal(layer.scale, GEOMETRY["scale"])
        np.testing.assert_array_equal(layer.translate, GEOMETRY["translate"])
        assert {f"{u:~P}" for u in layer.units} == {"µm"}
        # the recorded lines reproduce the layer from the console
        namespace = {"viewer": viewer, "torchscope": __import__("torchscope")}
        exec(layer.metadata["torchscope"]["call"], namespace)  # noqa: S102
        np.testing.assert_array_equal(namespace["image"], layer.data)
    grid = viewer.canvas.grid if hasattr(viewer, "canvas") else viewer.grid
    assert grid.enabled  # side by side
    np.testing.assert_array_equal(gear.data, original)  # the input is untouched
    assert set(widget.outputs) == {"pinv", "tv"}


def test_mask_error_blur_and_lam_on_anisotropic_pixels(viewer, wait_until_done):
    """mask error (in %), edge blur and TV weight away from their defaults, on pixels of
    30 x 20 with axis labels: the results are the console's with these values, on the
    object's geometry."""
    geometry = {"scale": (30.0, 20.0), "translate": (5.0, -2.0), "units": ("µm", "µm"),
                "axis_labels": ("row", "col")}
    obj = viewer.add_image(ghost.sample_object("gear", 32), name="gear", **geometry)
    original = obj.data.copy()
    widget = GhostWidget(viewer)
    run(widget, wait_until_done, object=obj, ratio=0.25, methods=["pinv", "tv"],
        iterations=40, mask_error=1.0, blur=0.5, lam=0.1)
    p = ghost.hadamard_patterns(32, ratio=0.25, order="zigzag", kind="binary")
    b = ghost.simulate_buckets(original, p, modulation_depth=0.8, mask_error=0.01, blur=0.5,
                               photons=1000.0, rng=0)
    expected = pinv_and_tv(b, p, lam=0.1)
    for method, image in expected.items():
        layer = viewer.layers[f"{method}(gear)"]
        np.testing.assert_allclose(layer.data, image, rtol=1e-6, atol=1e-6 * abs(image).max())
        np.testing.assert_array_equal(layer.scale, geometry["scale"])
        np.testing.assert_array_equal(layer.translate, geometry["translate"])
        assert tuple(layer.axis_labels) == geometry["axis_labels"]
    np.testing.assert_array_equal(obj.data, original)


def test_results_and_marks_lie_on_a_rotated_sheared_object(viewer, wait_until_done):
    # every output pixel is drawn where the object's pixel is (rotate, shear and affine
    # were dropped: the results were drawn away from the object)
    obj = viewer.add_image(ghost.sample_object("gear", 32), name="gear", rotate=30.0,
                           shear=[0.2], affine=[[1.0, 0.1, 3.0], [0.0, 0.9, -2.0], [0, 0, 1]],
                           **GEOMETRY)
    widget = GhostWidget(viewer)
    run(widget, wait_until_done, object=obj, ratio=0.25, methods=["pinv"])
    marks = widget.marks_from_object()
    for layer in (viewer.layers["pinv(gear)"], marks):
        for index in ((0.0, 0.0), (10.0, 20.0), (31.0, 5.5)):
            np.testing.assert_allclose(layer.data_to_world(index), obj.data_to_world(index),
                                       atol=1e-9)
    # the object straightened, run again: the updated result drops the old transforms
    obj.rotate, obj.shear, obj.affine = 0.0, [0.0], np.eye(3)
    run(widget, wait_until_done, object=obj, ratio=0.25, methods=["pinv"])
    result = viewer.layers["pinv(gear)"]
    np.testing.assert_allclose(result.data_to_world((10.0, 20.0)), obj.data_to_world((10.0, 20.0)),
                               atol=1e-9)


def test_cnr_from_a_labels_layer(viewer, gear, qtbot, wait_until_done):
    widget = GhostWidget(viewer)
    run(widget, wait_until_done, object=gear, ratio=0.25, methods=["gi", "pinv"])
    assert "Mark the object" in widget.cnr.value
    rng = np.random.default_rng(3)
    marks = rng.integers(0, 3, size=gear.data.shape).astype(np.uint8)  # any painting
    labels = viewer.add_labels(marks.copy(), name="my marks")
    widget.marks.value = labels
    for method in ("gi", "pinv"):
        layer = viewer.layers[f"{method}(gear)"]
        expected = ghost.cnr(layer.data, marks == 1, background_mask=marks == 2)
        assert widget.cnr_values[layer.name] == pytest.approx(expected, rel=1e-12)
        assert f"{layer.name}: CNR {expected:.3g}" in widget.cnr.value
    # painting updates the values
    rows, cols = np.nonzero(marks != 1)
    labels.data_setitem((rows[:40], cols[:40]), 1)  # as a brush stroke writes it
    new = np.asarray(labels.data).copy()
    assert not np.array_equal(new, marks)
    layer = viewer.layers["pinv(gear)"]
    expected = ghost.cnr(layer.data, new == 1, background_mask=new == 2)
    qtbot.waitUntil(lambda: widget.cnr_values[layer.name] == pytest.approx(expected, rel=1e-12),
                    timeout=5_000)
    # marks made from the simulated object: the paper's G_1 (transmission 1) and G_0 (0)
    made = widget.marks_from_object()
    assert isinstance(made, Labels) and widget.marks.value is made
    np.testing.assert_array_equal(made.scale, GEOMETRY["scale"])
    obj = gear.data
    assert set(np.unique(made.data[obj == 1.0])) == {1}  # fully open pixels: object
    assert set(np.unique(made.data[obj == 0.0])) == {2}  # opaque pixels: background
    expected = ghost.cnr(layer.data, obj >= 0.9, background_mask=obj <= 0.1)
    assert widget.cnr_values[layer.name] == pytest.approx(expected)
    # the marks' record rebuilds them from the object in the console (they had none)
    namespace = {"viewer": viewer}
    exec(made.metadata["torchscope"]["call"], namespace)  # noqa: S102 - the recorded call
    np.testing.assert_array_equal(namespace["marks"], made.data)


def test_stop_really_stops_a_long_tv_run(viewer, qtbot, notifications):
    viewer.add_image(ghost.sample_object("cas", 64), name="cas")
    widget = GhostWidget(viewer)
    widget.methods.value = ["tv"]
    widget.iterations.value = 1_000_000  # hours on a CPU
    widget.run()
    qtbot.waitUntil(lambda: widget.controls.progress.value >= 2, timeout=60_000)
    started = time.perf_counter()
    widget.stop()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=30_000)
    assert time.perf_counter() - started < 10
    assert widget.controls.progress.value < widget.controls.progress.max
    assert "tv(cas)" not in viewer.layers
    assert any("stopped" in str(n.message) for n in notifications())


def test_reader_opens_a_saved_measurement_and_the_dock_reconstructs_it(
        viewer, tmp_path, wait_until_done):
    obj = ghost.sample_object("cylinder", 32)
    b, p = console_measurement(obj, ratio=0.5)
    path = ghost.save_measurement(tmp_path / "cyl.npz", b, p,
                                  metadata={"modulation_depth": 0.8, "spacing": 20.0})
    assert get_ghost_measurement_reader(str(path)) is not None
    [layer] = viewer.open(path, plugin=PLUGIN)
    np.testing.assert_array_equal(layer.data, p)
    np.testing.assert_array_equal(layer.metadata[GHOST_MEASUREMENT]["buckets"], b)
    np.testing.assert_array_equal(layer.scale, (1.0, 20.0, 20.0))
    widget = GhostWidget(viewer)
    widget.source.value = "measured"
    widget.measurement.value = layer
    widget.modulation_depth.value = 0.5  # overwritten by the file's metadata below
    widget.measurement.value = None
    widget.measurement.value = layer
    assert widget.modulation_depth.value == 0.8
    run(widget, wait_until_done, methods=["pinv", "dgi"])
    for method in ("pinv", "dgi"):
        out = viewer.layers[f"{method}({layer.name})"]
        np.testing.assert_array_equal(out.data, ghost.reconstruct(b, p, method=method,
                                                                  modulation_depth=0.8))
        np.testing.assert_array_equal(out.scale, (20.0, 20.0))
        assert f"load_measurement({str(path)!r})" in out.metadata["torchscope"]["call"]
    # the same file chosen in the dock's file picker
    widget.open_file.value = path
    opened = widget.measurement.value
    assert opened is not layer and opened in viewer.layers
    np.testing.assert_array_equal(opened.metadata[GHOST_MEASUREMENT]["buckets"], b)


def test_save_the_simulated_measurement_and_write_it_back(viewer, gear, tmp_path,
                                                          wait_until_done):
    widget = GhostWidget(viewer)
    run(widget, wait_until_done, object=gear, ratio=0.25, methods=["pinv"])
    widget.save_file.value = tmp_path / "sim"  # a bare name gets the reader's suffix
    m = ghost.load_measurement(tmp_path / "sim.npz")
    b, p = console_measurement(gear.data)
    np.testing.assert_array_equal(m.buckets, b)
    np.testing.assert_array_equal(m.patterns, p)
    assert m.metadata["modulation_depth"] == 0.8 and m.metadata["spacing"] == 30.0
    # the napari writer saves a measurement layer (read back by the reader) as .npz
    [layer] = viewer.open(tmp_path / "sim.npz", plugin=PLUGIN)
    written = napari.save_layers(str(tmp_path / "again.npz"), [layer], plugin=PLUGIN)
    assert written == [str(tmp_path / "again.npz")]
    again = ghost.load_measurement(written[0])
    np.testing.assert_array_equal(again.buckets, b)
    np.testing.assert_array_equal(again.patterns, p)
    assert again.metadata == m.metadata
    with pytest.raises(ValueError, match="not a ghost-imaging measurement"):
        write_ghost_measurement(str(tmp_path / "x.npz"), gear.data,
                                {"metadata": {}, "name": "gear"})


def test_pattern_tiff_reader_claims_only_pattern_stacks(viewer, tmp_path, rng,
                                                        wait_until_done):
    p = ghost.hadamard_patterns(16, ratio=0.5)
    ghost.save_patterns(tmp_path / "p.tif", p)
    tifffile.imwrite(tmp_path / "photo.tif", rng.integers(0, 255, (3, 16, 16), dtype=np.uint8),
                     photometric="minisblack")
    assert get_ghost_patterns_reader(str(tmp_path / "photo.tif")) is None
    assert get_ghost_patterns_reader(str(tmp_path / "p.npz")) is None
    [layer] = viewer.open(tmp_path / "p.tif", plugin=PLUGIN)
    np.testing.assert_array_equal(layer.data, p)
    # a patterns layer is a mask set for simulations
    obj = viewer.add_image(ghost.sample_object("cas", 16), name="cas16")
    widget = GhostWidget(viewer)
    widget.masks.value = "layer"
    widget.patterns.value = layer
    widget.object.value = obj
    run(widget, wait_until_done, methods=["pinv"])
    b = ghost.simulate_buckets(obj.data, p, **SETTING)
    np.testing.assert_array_equal(viewer.layers["pinv(cas16)"].data,
                                  ghost.reconstruct(b, p, method="pinv", modulation_depth=0.8))


def test_refused_inputs_are_notifications(viewer, notifications):
    viewer.add_image(np.zeros((20, 30)), name="wide")
    widget = GhostWidget(viewer)
    assert widget.run() is None
    assert any("20 x 30" in str(n.message) for n in notifications())
    widget.source.value = "measured"
    assert widget.run() is None
    assert any("measurement layer" in str(n.message) for n in notifications())
    # an object with NaN: refused by Run and by "marks from the object" (which made an
    # empty marks layer), before any job starts
    nan = ghost.sample_object("gear", 32)
    nan[3, 4] = np.nan
    widget.source.value = "simulate"
    widget.object.value = viewer.add_image(nan, name="nan")
    layers = len(viewer.layers)
    assert widget.run() is None and widget.worker is None
    assert widget.marks_from_object() is None and len(viewer.layers) == layers
    assert sum("'nan' contains NaN" in str(n.message) for n in notifications()) == 2
    # a float object beyond [0, 1] is no transmission map: refused, not simulated with a
    # dose thousands of times the one asked for
    widget.object.value = viewer.add_image(ghost.sample_object("gear", 32) * 800, name="bright")
    assert widget.run() is None
    assert any("'bright' holds values from 0 to 800" in str(n.message) for n in notifications())


def test_an_integer_object_is_a_transmission_from_0_to_1(viewer, wait_until_done):
    # a uint16 layer is divided by 65535 (as skimage's img_as_float), and the record says so
    obj = ghost.sample_object("gear", 32)
    layer = viewer.add_image(np.round(obj * 65535).astype(np.uint16), name="gear16")
    widget = GhostWidget(viewer)
    run(widget, wait_until_done, object=layer, ratio=0.25, methods=["pinv", "tv"],
        iterations=40)
    b, p = console_measurement(np.round(obj * 65535) / 65535)
    expected = pinv_and_tv(b, p, lam=0.02)
    for method, image in expected.items():
        output = viewer.layers[f"{method}(gear16)"]
        np.testing.assert_allclose(output.data, image, rtol=1e-6, atol=1e-6 * abs(image).max())
        record = output.metadata["torchscope"]["call"]
        assert "obj = viewer.layers['gear16'].data / 65535" in record
        namespace = {"viewer": viewer, "torchscope": __import__("torchscope")}
        exec(record, namespace)  # noqa: S102
        np.testing.assert_array_equal(namespace["image"], output.data)


def test_cnr_curve_dock_equals_cnr_curve(viewer, qtbot, wait_until_done):
    obj = ghost.sample_object("cas", 32)
    layer = viewer.add_image(obj, name="cas")
    widget = CNRCurveWidget(viewer)
    widget.object.value = layer
    widget.ratio.value = 1.0
    widget.methods.value = ["gi", "dgi"]
    widget.points.value = 4
    widget.run()
    wait_until_done(widget, timeout=60_000)
    p = ghost.hadamard_patterns(32)
    expected = ghost.cnr_curve(obj, p, methods=("gi", "dgi"), counts=[256, 512, 768, 1024],
                               **SETTING)
    np.testing.assert_array_equal(widget.curve.counts, expected.counts)
    np.testing.assert_allclose(widget.curve.cnr, expected.cnr, rtol=1e-10)
    if widget._figure is not None:  # the plot: one line per method
        [ax] = widget._figure.axes
        assert [line.get_label() for line in ax.get_lines()] == ["gi", "dgi"]
        np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), expected.cnr[1])
    # speckle masks drawn over the Hadamard curves (the paper's Fig. 2(j))
    widget.keep.value = True
    widget.masks.value = "speckle"
    widget.methods.value = ["gi"]
    widget.run()
    wait_until_done(widget, timeout=60_000)
    speckle = ghost.speckle_patterns(32, 1024, rng=1)
    again = ghost.cnr_curve(obj, speckle, methods=("gi",), counts=[256, 512, 768, 1024],
                            **SETTING)
    np.testing.assert_allclose(widget.curve.cnr, again.cnr, rtol=1e-10)
    assert len(widget.curves) == 2
    if widget._figure is not None:
        [ax] = widget._figure.axes
        assert len(ax.get_lines()) == 3


def test_docks_and_samples_open_through_napari(viewer):
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Ghost imaging")
    assert isinstance(widget, GhostWidget)
    _, curve = viewer.window.add_plugin_dock_widget(PLUGIN, "Ghost CNR curve")
    assert isinstance(curve, CNRCurveWidget)
    [gear] = viewer.open_sample(PLUGIN, "ghost_gear")
    np.testing.assert_array_equal(gear.data, ghost.sample_object("gear"))
    np.testing.assert_array_equal(gear.scale, (30.0, 30.0))
    [cyl] = viewer.open_sample(PLUGIN, "ghost_cylinder")
    np.testing.assert_array_equal(cyl.scale, (10.0, 10.0))  # the paper's 10 µm Au-mask pixels
    _, meas = viewer.open_sample(PLUGIN, "ghost_measurement")
    assert meas.data.shape == (768, 64, 64)
    assert meas.metadata[GHOST_MEASUREMENT]["buckets"].shape == (768,)
    assert [c for c in widget.measurement.choices if c is not None] == [meas]


def test_training_on_the_dock_masks(viewer, gear, qtbot, wait_until_done, tmp_path):
    widget = GhostWidget(viewer)
    widget.object.value = gear
    widget.ratio.value = 0.25
    widget.steps.value = 2
    widget.batch_size.value = 2
    widget.passes.value = 2
    worker = widget.train()
    assert worker is not None
    qtbot.waitUntil(lambda: widget.train_worker is None, timeout=120_000)
    model = widget.model.value
    assert model is not None and model.stages == 2
    run(widget, wait_until_done, methods=["mwcnn"])
    b, p = console_measurement(gear.data)
    expected = ghost.reconstruct(b, p, method="mwcnn", modulation_depth=0.8, model=model)
    np.testing.assert_allclose(viewer.layers["mwcnn(gear)"].data, expected, rtol=1e-5,
                               atol=1e-5 * abs(expected).max())
    # the record trains the same network again in the console (it named a 'model' the
    # console did not have); training on the CPU is deterministic
    namespace = {"viewer": viewer, "torchscope": __import__("torchscope")}
    exec(viewer.layers["mwcnn(gear)"].metadata["torchscope"]["call"], namespace)  # noqa: S102
    np.testing.assert_allclose(namespace["image"], viewer.layers["mwcnn(gear)"].data, rtol=1e-5,
                               atol=1e-5 * abs(expected).max())
    # saved, loaded back from the file: the record names the file the console loads
    widget.save_model.value = tmp_path / "mine.safetensors"
    widget.model_file.value = tmp_path / "mine.safetensors"
    loaded = widget.model.value
    assert loaded is not model
    run(widget, wait_until_done, methods=["mwcnn"])
    layer = viewer.layers["mwcnn(gear)"]
    assert f"load_mwcnn({str(tmp_path / 'mine.safetensors')!r})" in layer.metadata["torchscope"]["call"]
    namespace = {"viewer": viewer, "torchscope": __import__("torchscope")}
    exec(layer.metadata["torchscope"]["call"], namespace)  # noqa: S102
    np.testing.assert_allclose(namespace["image"], layer.data, rtol=1e-5,
                               atol=1e-5 * abs(expected).max())
    np.testing.assert_allclose(layer.data, expected, rtol=1e-5, atol=1e-5 * abs(expected).max())

"""The filter docks in a real viewer: Run, wait for the worker, compare with the console call.

Every expected result below is the public function called as a console user would write it (or
scipy, for the physical-units check), never the widget's own argument building.
"""

import numpy as np
import pytest
from napari.layers import Image, Labels
from napari.utils.notifications import NotificationSeverity
from scipy import ndimage

import torchscope
import torchscope.filters as F
from torchscope.napari import _workers
from torchscope.napari._filters import (
    GROUPS,
    OPERATIONS,
    PHYSICAL,
    FilterWidget,
    GaussianWidget,
    MedianWidget,
    group_operations,
)

GEOMETRY = {
    "scale": (2.0, 0.5, 0.25),
    "translate": (10.0, -3.0, 4.5),
    "axis_labels": ("z", "y", "x"),
    "units": ("µm", "µm", "µm"),
}

# operation -> (what the user sets in the dock, the console call that must give the same layer)
CASES = {
    "gaussian": ({"sigma": 1.5}, lambda im: F.gaussian(im, 1.5)),
    "median": ({"radius": 2.0}, lambda im: F.median(im, 2.0)),
    "mean": ({"radius": 1.5}, lambda im: F.mean(im, 1.5)),
    "minimum": ({"radius": 1.0}, lambda im: F.minimum(im, 1.0)),
    "maximum": ({"radius": 1.0}, lambda im: F.maximum(im, 1.0)),
    "variance": ({"radius": 2.0}, lambda im: F.variance(im, 2.0)),
    "std": ({"radius": 2.0}, lambda im: F.std(im, 2.0)),
    "white_tophat": ({"radius": 3.0}, lambda im: F.white_tophat(im, 3.0)),
    "black_tophat": ({"radius": 3.0}, lambda im: F.black_tophat(im, 3.0)),
    "difference_of_gaussians": (
        {"low_sigma": 1.0, "high_sigma": 2.5},
        lambda im: F.difference_of_gaussians(im, 1.0, 2.5),
    ),
    "sobel": ({"axis": 2}, lambda im: F.sobel(im, axis=2)),
    "laplace": ({}, lambda im: F.laplace(im)),
    "laplacian_of_gaussian": ({"sigma": 1.0}, lambda im: F.laplacian_of_gaussian(im, 1.0)),
    "threshold": ({"method": "li"}, lambda im: F.threshold(im, "li")),
    "erosion": ({"radius": 1.0}, lambda im: F.erosion(im, 1.0)),
    "dilation": ({"radius": 1.0}, lambda im: F.dilation(im, 1.0)),
    "opening": ({"radius": 2.0}, lambda im: F.opening(im, 2.0)),
    "closing": ({"radius": 2.0}, lambda im: F.closing(im, 2.0)),
}


def set_values(widget, values):
    for name, value in values.items():
        getattr(widget, name).value = value


def assert_same(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(actual, expected)


def test_cases_cover_every_operation():
    assert set(CASES) == set(OPERATIONS)


@pytest.mark.parametrize("group", GROUPS)
def test_group_dock_reproduces_the_console_call(viewer, stack, wait_until_done, group):
    layer = viewer.add_image(stack, name="blobs", **GEOMETRY)
    original = stack.copy()
    widget = FilterWidget(viewer, group_operations(group))
    for name in group_operations(group):
        values, console_call = CASES[name]
        widget.operation.value = name
        widget.image.value = layer
        set_values(widget, values)
        assert widget.run() is not None
        wait_until_done(widget)

        output = viewer.layers[f"{name}({layer.name})"]
        expected = console_call(stack)
        assert isinstance(output, Labels if expected.dtype == bool else Image), name
        assert_same(output.data, expected)
        np.testing.assert_array_equal(output.scale, GEOMETRY["scale"])
        np.testing.assert_array_equal(output.translate, GEOMETRY["translate"])
        assert tuple(output.axis_labels) == GEOMETRY["axis_labels"]
        assert tuple(output.units) == tuple(layer.units)

        record = output.metadata["torchscope"]
        assert record["function"] == f"torchscope.filters.{name}"
        assert record["device"] == "cpu"
        assert record["version"] == torchscope.__version__
        assert record["input"] == "blobs"
        reproduced = eval(record["call"], {"torchscope": torchscope, "image": layer.data})
        assert_same(output.data, reproduced)
    np.testing.assert_array_equal(layer.data, original)  # the input is never changed


def test_each_plane_or_volume_of_a_time_series_on_its_own(viewer, stack, wait_until_done):
    # (t, z, y, x): a time series is not smoothed across time; lengths in physical units use
    # the spatial axes' scale; a threshold is computed per volume
    series = np.stack([stack, 2.0 * stack + 1.0, stack[:, ::-1]])
    geometry = {"scale": (60.0, *GEOMETRY["scale"]), "translate": (0.0, *GEOMETRY["translate"]),
                "axis_labels": ("t", *GEOMETRY["axis_labels"]), "units": ("s", "µm", "µm", "µm")}
    layer = viewer.add_image(series, name="series", **geometry)
    widget = FilterWidget(viewer, ("gaussian", "threshold"))
    widget.image.value = layer
    assert not widget.apply_to.native.isHidden()
    assert list(widget.apply_to.choices) == [None, 2, 3]
    cases = [("gaussian", {"sigma": 1.0, "units": PHYSICAL, "apply_to": 3},
              [F.gaussian(v, 1.0, spacing=GEOMETRY["scale"]) for v in series]),
             ("threshold", {"method": "otsu", "apply_to": 2},
              [[F.threshold(p, "otsu") for p in v] for v in series])]
    for name, values, expected in cases:
        widget.operation.value = name
        set_values(widget, values)
        if name == "gaussian":  # the length's unit is the planes' (not time's seconds)
            assert widget.sigma.label == "sigma (µm)"
        assert widget.run() is not None
        wait_until_done(widget)
        output = viewer.layers[f"{name}(series)"]
        assert_same(output.data, np.asarray(expected))
        np.testing.assert_array_equal(output.scale, geometry["scale"])
        record = output.metadata["torchscope"]
        assert record["planes"] == values["apply_to"]
        assert "each_plane" in record["call"]
        assert_same(output.data, eval(record["call"], {"torchscope": torchscope,
                                                       "image": layer.data}))
    # across all axes (the default) time is smoothed too: not the same
    widget.operation.value = "gaussian"
    set_values(widget, {"sigma": 1.0, "units": "pixels", "apply_to": None})
    widget.run()
    wait_until_done(widget)
    assert_same(viewer.layers["gaussian(series)"].data, F.gaussian(series, 1.0))
    # Sobel along one of the layer's axes, per plane: the same axis of the layer (it was
    # taken as that index within the plane); a leading axis is refused
    edges = FilterWidget(viewer, ("sobel",))
    edges.image.value = layer
    set_values(edges, {"axis": 2, "apply_to": 2})
    edges.run()
    wait_until_done(edges)
    assert_same(viewer.layers["sobel(series)"].data,
                 [[F.sobel(p, axis=0) for p in v] for v in series])  # y of each (y, x) plane
    set_values(edges, {"axis": 1})
    assert edges.run() is None and edges.worker is None
    # per volume, then a 3D layer: per plane, the nearest choice (not all axes); a 2D layer
    # has nothing to choose
    widget.apply_to.value = 3
    widget.image.value = viewer.add_image(stack, name="volume")
    assert widget.apply_to.value == 2
    widget.image.value = viewer.add_image(stack[0], name="plane")
    assert widget.apply_to.native.isHidden()


def test_a_rotated_sheared_input_is_overlaid_exactly(viewer, stack, wait_until_done):
    """Only scale and translate were copied: a rotated input's result was drawn unrotated."""
    layer = viewer.add_image(stack, name="tilted", rotate=(0, 0, 30), shear=(0.1, 0, 0),
                             **GEOMETRY)
    widget = GaussianWidget(viewer)
    widget.image.value = layer
    widget.run()
    wait_until_done(widget)
    output = viewer.layers["gaussian(tilted)"]
    for point in ((0, 0, 0), (3, 17, 29)):
        np.testing.assert_allclose(output.data_to_world(point), layer.data_to_world(point))


def test_physical_units_pass_the_layer_scale(viewer, stack, wait_until_done):
    viewer.add_image(stack, name="blobs", **GEOMETRY)
    widget = GaussianWidget(viewer)
    widget.sigma.value = 1.0
    widget.units.value = PHYSICAL
    assert widget.sigma.label == "sigma (µm)"
    widget.run()
    wait_until_done(widget)

    output = viewer.layers["gaussian(blobs)"]
    record = output.metadata["torchscope"]
    assert record["spacing"] == GEOMETRY["scale"]
    assert record["call"] == (
        "torchscope.filters.gaussian(image, 1.0, spacing=(2.0, 0.5, 0.25), device='cpu')"
    )
    # 1 µm is 0.5, 2 and 4 pixels along z, y, x.
    expected = ndimage.gaussian_filter(stack, sigma=(0.5, 2.0, 4.0), mode="nearest")
    np.testing.assert_allclose(output.data, expected, rtol=1e-4, atol=1e-5)


def test_rerun_updates_the_layer_it_wrote(viewer, stack, wait_until_done):
    layer = viewer.add_image(stack, name="blobs")
    widget = GaussianWidget(viewer)
    widget.run()
    wait_until_done(widget)
    first = viewer.layers["gaussian(blobs)"]

    widget.sigma.value = 3.0
    widget.run()
    wait_until_done(widget)
    assert len(viewer.layers) == 2
    assert viewer.layers["gaussian(blobs)"] is first
    assert first.metadata["torchscope"]["parameters"] == {"sigma": 3.0}
    assert_same(first.data, F.gaussian(stack, 3.0))

    # Another dock writes its own layer; so does the same dock on another input.
    other = GaussianWidget(viewer)
    other.run()
    wait_until_done(other)
    assert [lyr.name for lyr in viewer.layers] == [
        "blobs",
        "gaussian(blobs)",
        "gaussian(blobs) [1]",
    ]
    layer2 = viewer.add_image(stack[::-1].copy(), name="flipped")
    widget.image.value = layer2
    widget.run()
    wait_until_done(widget)
    assert "gaussian(flipped)" in viewer.layers
    assert layer.data is stack


def test_masks_are_labels_and_morphology_takes_labels(viewer, stack, wait_until_done):
    viewer.add_image(stack, name="blobs")
    threshold = FilterWidget(viewer, ["threshold"])
    threshold.method.value = "manual"
    threshold.value.value = 0.5
    threshold.run()
    wait_until_done(threshold)
    mask = viewer.layers["threshold(blobs)"]
    assert isinstance(mask, Labels)
    np.testing.assert_array_equal(mask.data, stack > 0.5)
    assert mask.metadata["torchscope"]["call"] == (
        "torchscope.filters.threshold(image, 0.5, device='cpu')"
    )

    labels = viewer.add_labels((stack > 0.3).astype(np.int32) * 7, name="cells")
    morphology = FilterWidget(viewer, group_operations("morphology"))
    assert mask in morphology.image.choices and labels in morphology.image.choices
    assert labels not in threshold.image.choices  # thresholds take images only
    morphology.operation.value = "opening"
    morphology.image.value = labels
    morphology.radius.value = 1.0
    morphology.run()
    wait_until_done(morphology)
    opened = viewer.layers["opening(cells)"]
    assert isinstance(opened, Labels)
    assert opened.data.dtype == np.int32
    np.testing.assert_array_equal(opened.data, F.opening(labels.data, 1.0))


@pytest.fixture
def small_blocks(monkeypatch):
    """Split even the small test images into blocks (of at least 4 pixels per axis)."""
    monkeypatch.setattr(_workers, "SINGLE_BLOCK_SIZE", 1000)
    monkeypatch.setattr(_workers, "MIN_CHUNK", 4)


def test_block_by_block_equals_the_whole_image(viewer, stack, wait_until_done, small_blocks):
    viewer.add_image(stack, name="blobs")
    widget = GaussianWidget(viewer)
    widget.sigma.value = 2.0
    widget.run()
    wait_until_done(widget)
    assert widget.controls.progress.max >= _workers.N_BLOCKS  # it was split into blocks
    assert_same(viewer.layers["gaussian(blobs)"].data, F.gaussian(stack, 2.0))


def test_threshold_by_blocks_uses_one_global_value(viewer, stack, wait_until_done, small_blocks):
    viewer.add_image(stack, name="blobs")
    widget = FilterWidget(viewer, ["threshold"])
    widget.method.value = "otsu"
    widget.run()
    wait_until_done(widget)
    assert widget.controls.progress.max >= _workers.N_BLOCKS
    assert_same(viewer.layers["threshold(blobs)"].data, F.threshold(stack, "otsu"))


def test_stop_quits_between_blocks_and_writes_nothing(viewer, qtbot, monkeypatch):
    monkeypatch.setattr(_workers, "SINGLE_BLOCK_SIZE", 2**12)
    monkeypatch.setattr(_workers, "N_BLOCKS", 64)
    monkeypatch.setattr(_workers, "MIN_CHUNK", 8)
    image = np.random.default_rng(0).random((32, 128, 128), dtype=np.float32)
    viewer.add_image(image, name="noise")
    widget = MedianWidget(viewer)
    widget.radius.value = 2.0

    progress = []
    worker = widget.run()
    aborted = []
    worker.aborted.connect(lambda: aborted.append(True))

    def press_stop(step):
        progress.append(step)
        if len(progress) == 1:
            widget.controls.stop_button.native.click()

    worker.yielded.connect(press_stop)
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: widget.worker is None)

    assert aborted == [True]
    done, total = progress[-1]
    assert total >= 64 and done < total
    assert "median(noise)" not in viewer.layers
    assert widget.controls.run_button.enabled and not widget.controls.stop_button.enabled


def test_no_input_layer_is_a_notification(viewer, notifications):
    widget = GaussianWidget(viewer)
    assert widget.run() is None
    [note] = notifications()
    assert note.severity == NotificationSeverity.ERROR
    assert "choose an input layer" in note.message


def test_rgb_input_is_refused_with_a_notification(viewer, notifications):
    viewer.add_image(np.zeros((8, 8, 3), dtype=np.uint8), name="photo", rgb=True)
    widget = GaussianWidget(viewer)
    assert widget.run() is None
    assert "RGB" in notifications()[-1].message


def test_errors_in_the_worker_are_notifications(viewer, stack, wait_until_done, notifications):
    stack[3, 4, 5] = np.nan  # the filters refuse NaN with a ValueError
    viewer.add_image(stack, name="holes")
    widget = GaussianWidget(viewer)
    assert widget.run() is not None
    wait_until_done(widget)
    errors = [n for n in notifications() if n.severity == NotificationSeverity.ERROR]
    assert len(errors) == 1
    assert errors[0].message.startswith("Gaussian of holes failed:")
    assert "NaN" in errors[0].message or "nan" in errors[0].message
    assert "gaussian(holes)" not in viewer.layers
    assert widget.controls.run_button.enabled


def test_bad_parameter_is_a_notification(viewer, stack, wait_until_done, notifications):
    viewer.add_image(stack, name="blobs")
    widget = FilterWidget(viewer, group_operations("background"))
    widget.operation.value = "difference_of_gaussians"
    widget.low_sigma.value = 3.0
    widget.high_sigma.value = 1.0  # narrower than low_sigma: refused by the function
    widget.run()
    wait_until_done(widget)
    errors = [n for n in notifications() if n.severity == NotificationSeverity.ERROR]
    assert len(errors) == 1 and "high_sigma" in errors[0].message
    assert "difference_of_gaussians(blobs)" not in viewer.layers


def test_dock_shows_the_parameters_of_the_chosen_operation(viewer):
    viewer.add_image(np.zeros((4, 5, 6), dtype=np.float32), name="img")
    dock = FilterWidget(viewer, group_operations("denoising"))

    def shown(name):
        return getattr(dock, name).native.isVisibleTo(dock.native)

    assert dock.operation.value == "gaussian"
    assert shown("operation") and shown("sigma") and not shown("radius")
    dock.operation.value = "median"
    assert shown("radius") and not shown("sigma")
    assert shown("units")

    edges = FilterWidget(viewer, group_operations("edges"))
    edges.operation.value = "sobel"
    assert not edges.units.native.isVisibleTo(edges.native)  # sobel has no physical size
    assert edges.axis.choices == (None, 0, 1, 2)

    single = GaussianWidget(viewer)
    assert not single.operation.native.isVisibleTo(single.native)
    assert single.device.choices[0] is None  # "auto"
    assert "cpu" in single.device.choices


def test_difference_of_gaussians_auto_high_sigma(viewer):
    viewer.add_image(np.zeros((4, 5), dtype=np.float32), name="img")
    dock = FilterWidget(viewer, ["difference_of_gaussians"])
    assert dock.parameter_values() == {"low_sigma": 1.0, "high_sigma": None}
    dock.high_sigma.value = 2.0
    assert dock.parameter_values() == {"low_sigma": 1.0, "high_sigma": 2.0}

"""The deblur dock in a real viewer: layers, geometry, re-estimation from a rectangle, Stop, errors."""

import time

import numpy as np
import pytest
from skimage import data, transform

import torchscope
from torchscope import deblur
from torchscope.napari._deblur import DeblurWidget, box_to_rectangle, rectangle_to_box

PLUGIN = "napari-torchscope"
SCALE = (0.5, 0.5)
KERNEL_SIZE = 9


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here runs torch on one thread (see tests/conftest.py)."""


@pytest.fixture
def blurred():
    sharp = transform.resize(data.camera() / 255.0, (160, 160), anti_aliasing=True)
    kernel = deblur.motion_kernel(7, rng=3)
    return deblur.blur(sharp, kernel, noise_sigma=0.005, rng=3).astype(np.float32)


@pytest.fixture
def widget(viewer, blurred):
    viewer.add_image(blurred, name="blurred", scale=SCALE, translate=(3.0, -2.0))
    w = DeblurWidget(viewer)
    w.scorer.value = "variance"
    w.size.value = 64
    w.stride.value = 16
    w.top_k.value = 3
    w.kernel_size.value = KERNEL_SIZE
    w.device.value = "cpu"
    return w


def test_box_and_rectangle_round_trip():
    box = (16, 32, 64, 48)
    assert rectangle_to_box(box_to_rectangle(box), (160, 160)) == box
    assert rectangle_to_box(box_to_rectangle((150, -5, 40, 30)), (160, 160)) == (150, 0, 10, 25)


def test_run_writes_the_four_layers_on_the_input_geometry(viewer, widget, blurred,
                                                          wait_until_done):
    # the layer holds ``blurred`` itself: expectations come from a copy taken before the run,
    # so that a run writing into its input cannot go unseen
    original = blurred.copy()
    widget.run()
    wait_until_done(widget, timeout=120_000)
    np.testing.assert_array_equal(viewer.layers["blurred"].data, original)
    names = [layer.name for layer in viewer.layers]
    for name in ("score heatmap (blurred)", "regions (blurred)", "kernel (blurred)",
                 "deblurred (blurred)"):
        assert name in names
        np.testing.assert_array_equal(viewer.layers[name].scale, SCALE)
        assert "torchscope.deblur." in viewer.layers[name].metadata["torchscope"]["call"]
    expected = deblur.score_regions(original, size=64, stride=16,
                                    scorer="variance").top(3, overlap=0.3)
    heat = viewer.layers["score heatmap (blurred)"]
    np.testing.assert_array_equal(heat.translate, (3.0, -2.0))
    np.testing.assert_array_equal(heat.data, expected.heatmap)
    shapes = viewer.layers["regions (blurred)"]
    np.testing.assert_array_equal(shapes.translate, (3.0, -2.0))
    assert len(shapes.data) == 3
    boxes = [rectangle_to_box(v, original.shape) for v in shapes.data]
    assert boxes == [tuple(b) for b in expected.boxes.tolist()]
    np.testing.assert_allclose(shapes.features["score"], expected.scores)
    kernel = viewer.layers["kernel (blurred)"].data
    row, col, h, w = expected.boxes[0]
    np.testing.assert_allclose(
        kernel, deblur.estimate_kernel(original[row:row + h, col:col + w], KERNEL_SIZE,
                                       device="cpu"), atol=1e-6)
    restored = viewer.layers["deblurred (blurred)"]
    namespace = {"torchscope": torchscope, "viewer": viewer}  # as in the console
    exec(restored.metadata["torchscope"]["call"], namespace)  # noqa: S102 - the recorded call
    np.testing.assert_allclose(restored.data, namespace["deblurred"], atol=1e-5)
    np.testing.assert_array_equal(restored.translate, (3.0, -2.0))


def test_method_deconvolution_and_overlap_on_anisotropic_pixels(viewer, blurred,
                                                                wait_until_done):
    """method, deconvolution and max overlap away from their defaults, on pixels of 30 x 20
    with axis labels: each output is the console's with these values, on the input's
    geometry, and the input is untouched."""
    geometry = {"scale": (30.0, 20.0), "translate": (5.0, -2.0), "axis_labels": ("row", "col")}
    original = blurred.copy()
    layer = viewer.add_image(blurred, name="aniso", **geometry)
    widget = DeblurWidget(viewer)
    widget.image.value = layer
    for name, value in {"scorer": "variance", "size": 64, "stride": 16, "top_k": 3,
                        "kernel_size": KERNEL_SIZE, "device": "cpu", "overlap": 1.0,
                        "method": "l0", "deconvolution": "wiener"}.items():
        getattr(widget, name).value = value
    widget.run()
    wait_until_done(widget, timeout=120_000)
    np.testing.assert_array_equal(layer.data, original)

    regions = deblur.score_regions(original, size=64, stride=16, scorer="variance")
    top = regions.top(3, overlap=1.0)
    assert top.boxes.tolist() != regions.top(3, overlap=0.3).boxes.tolist()  # 1.0 matters
    shapes = viewer.layers["regions (aniso)"]
    assert [rectangle_to_box(v, original.shape) for v in shapes.data] == [
        tuple(b) for b in top.boxes.tolist()]
    row, col, h, w = top.boxes[0]
    kernel = deblur.estimate_kernel(original[row:row + h, col:col + w], KERNEL_SIZE,
                                    method="l0", device="cpu")
    np.testing.assert_allclose(viewer.layers["kernel (aniso)"].data, kernel, atol=1e-6)
    np.testing.assert_allclose(viewer.layers["deblurred (aniso)"].data,
                               deblur.deconvolve(original, kernel, method="wiener", device="cpu"),
                               atol=1e-5)
    for kind in ("score heatmap", "regions", "kernel", "deblurred"):
        out = viewer.layers[f"{kind} (aniso)"]
        np.testing.assert_array_equal(out.scale, geometry["scale"])
        assert tuple(out.axis_labels) == geometry["axis_labels"]
        # the kernel sits right of the image, 4 pixels of the image's width away
        shift = (0.0, 20.0 * (original.shape[1] + 4)) if kind == "kernel" else (0.0, 0.0)
        np.testing.assert_allclose(out.translate, np.add(geometry["translate"], shift))


def test_every_output_replays_from_its_record_with_the_random_scorer(viewer, widget,
                                                                     wait_until_done):
    """The random scorer drew new scores at each replay (no seed was passed or recorded), and
    the records named neither function, device (auto) nor version."""
    assert widget.seed.native.isHidden()
    widget.scorer.value = "random"
    assert not widget.seed.native.isHidden()  # shown for this scorer only
    widget.seed.value = 7
    widget.device.value = None  # auto: the record names the device that ran
    widget.run()
    wait_until_done(widget, timeout=120_000)
    replays = {"score heatmap (blurred)": "heatmap", "kernel (blurred)": "kernel",
               "deblurred (blurred)": "deblurred"}
    for name, variable in replays.items():
        record = viewer.layers[name].metadata["torchscope"]
        assert record["device"] == "cpu" and record["input"] == "blurred"
        assert record["version"] == torchscope.__version__
        assert record["function"].startswith("torchscope.deblur.")
        namespace = {"torchscope": torchscope, "viewer": viewer}  # as in the console
        exec(record["call"], namespace)  # noqa: S102 - the recorded call
        np.testing.assert_allclose(viewer.layers[name].data, namespace[variable], atol=1e-5)
    record = viewer.layers["regions (blurred)"].metadata["torchscope"]
    assert record["parameters"]["rng"] == 7
    namespace = {"torchscope": torchscope, "viewer": viewer}  # as in the console
    exec(record["call"], namespace)  # noqa: S102 - the recorded call
    assert namespace["top"].boxes.tolist() == record["boxes"]
    other = deblur.score_regions(viewer.layers["blurred"].data, size=64, stride=16,
                                 scorer="random", rng=8)
    assert not np.array_equal(other.heatmap, viewer.layers["score heatmap (blurred)"].data)


def test_reestimate_from_a_moved_rectangle(viewer, widget, blurred, wait_until_done):
    widget.run()
    wait_until_done(widget, timeout=120_000)
    shapes = viewer.layers["regions (blurred)"]
    box = (90, 10, 70, 66)  # not a grid box: the kernel must come from this rectangle
    data = list(shapes.data)
    data[1] = box_to_rectangle(box)
    shapes.data = data
    shapes.selected_data = {1}
    widget.reestimate()
    wait_until_done(widget, timeout=120_000)
    row, col, h, w = box
    expected = deblur.estimate_kernel(blurred[row:row + h, col:col + w], KERNEL_SIZE,
                                      device="cpu")
    layer = viewer.layers["kernel (blurred)"]
    np.testing.assert_allclose(layer.data, expected, atol=1e-6)
    assert "image[90:160, 10:76]" in layer.metadata["torchscope"]["call"]
    assert tuple(layer.metadata["torchscope"]["box"]) == box


def test_outputs_on_a_rotated_image(viewer, blurred, wait_until_done):
    # every output on the image's pixels, and the kernel right of its top corner at its pixel
    # size, through the rotation (the kernel was shifted in the unrotated frame, off the image)
    image = viewer.add_image(blurred, name="tilted", rotate=30.0, scale=(2.0, 1.5),
                             translate=(5.0, -4.0))
    widget = DeblurWidget(viewer)
    widget.image.value = image
    widget.scorer.value, widget.size.value, widget.stride.value = "variance", 64, 32
    widget.kernel_size.value, widget.device.value = KERNEL_SIZE, "cpu"
    widget.run()
    wait_until_done(widget, timeout=120_000)
    for name in ("score heatmap (tilted)", "deblurred (tilted)"):
        np.testing.assert_allclose(viewer.layers[name].data_to_world((10.0, 20.0)),
                                   image.data_to_world((10.0, 20.0)), atol=1e-9)
    kernel = viewer.layers["kernel (tilted)"]
    for index in ((0.0, 0.0), (3.0, 5.0)):
        np.testing.assert_allclose(
            kernel.data_to_world(index),
            image.data_to_world((index[0], index[1] + blurred.shape[1] + 4)), atol=1e-9)


def test_a_second_image_gets_its_own_layers(viewer, widget, blurred, wait_until_done):
    """Outputs were kept per kind only: a run on another image wrote into the first image's
    heatmap, kernel and deblurred layers (with their names) and lost its results."""
    widget.run()
    wait_until_done(widget, timeout=120_000)
    first = viewer.layers["deblurred (blurred)"].data.copy()
    viewer.add_image(blurred[::-1].copy(), name="flipped")
    widget.image.value = viewer.layers["flipped"]
    widget.run()
    wait_until_done(widget, timeout=120_000)
    names = [layer.name for layer in viewer.layers]
    for kind in ("score heatmap", "regions", "kernel", "deblurred"):
        assert f"{kind} (blurred)" in names and f"{kind} (flipped)" in names
    np.testing.assert_array_equal(viewer.layers["deblurred (blurred)"].data, first)
    np.testing.assert_array_equal(viewer.layers["deblurred (blurred)"].scale, SCALE)
    np.testing.assert_array_equal(viewer.layers["deblurred (flipped)"].scale, (1.0, 1.0))
    # outputs are never offered as inputs; running the first image again updates its layers
    assert [layer.name for layer in widget.image.choices] == ["blurred", "flipped"]
    widget.image.value = viewer.layers["blurred"]
    widget.run()
    wait_until_done(widget, timeout=120_000)
    assert len(viewer.layers) == 10


def test_reestimate_without_a_selection_is_a_notification(viewer, widget, notifications):
    assert widget.reestimate() is None
    assert any("run first" in str(n.message) for n in notifications())


def test_stop_stops(viewer, widget, blurred, qtbot, notifications):
    # a job of several seconds (kernel estimation on a 480 x 480 region), so that Stop comes
    # while it runs
    viewer.add_image(np.tile(blurred, (3, 3)), name="large", scale=SCALE)
    widget.image.value = viewer.layers["large"]
    widget.size.value = 480
    widget.kernel_size.value = 31
    worker = widget.run()
    qtbot.waitUntil(lambda: widget.controls.progress.value > 10, timeout=60_000)
    started = time.perf_counter()
    widget.stop()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=30_000)
    assert worker.abort_requested
    assert time.perf_counter() - started < 10
    assert "deblurred (large)" not in viewer.layers
    assert "kernel (large)" not in viewer.layers
    assert any("stopped" in str(n.message) for n in notifications())


def test_cnn_without_weights_is_a_notification(viewer, widget, wait_until_done, notifications,
                                               monkeypatch):
    from torchscope.deblur import _scorer

    def missing(*args, **kwargs):  # the shipped weights may exist later: make them absent
        raise FileNotFoundError("no weights: run scripts/train_deblur_scorer.py")

    monkeypatch.setattr(_scorer, "cnn_scores", missing)
    widget.scorer.value = "cnn"
    widget.run()
    wait_until_done(widget)
    messages = [str(n.message) for n in notifications()]
    assert any("Deblur failed" in m and "weights" in m for m in messages)
    assert "deblurred (blurred)" not in viewer.layers


def test_rgb_is_scored_on_luminance_and_deblurred_in_colour(viewer, widget, blurred,
                                                            wait_until_done):
    from skimage.color import rgb2gray

    rgb = np.stack([blurred, 0.5 * blurred, np.flipud(blurred)], axis=-1)
    viewer.add_image(rgb, name="rgb", rgb=True)
    widget.image.value = viewer.layers["rgb"]
    widget.run()
    wait_until_done(widget, timeout=120_000)
    gray = rgb2gray(rgb)
    expected = deblur.score_regions(gray, size=64, stride=16, scorer="variance")
    np.testing.assert_array_equal(viewer.layers["score heatmap (rgb)"].data, expected.heatmap)
    # the kernel comes from the luminance; the colour image is deconvolved with it, as
    # deblur.deblur does (channel by channel, in one working range)
    kernel = viewer.layers["kernel (rgb)"].data.astype(np.float64)
    restored = viewer.layers["deblurred (rgb)"]
    assert restored.rgb and restored.data.shape == rgb.shape
    np.testing.assert_allclose(restored.data, deblur.deconvolve(rgb, kernel, device="cpu"),
                               atol=1e-4)
    assert not np.allclose(restored.data[..., 0], restored.data[..., 2], atol=0.05)
    namespace = {"torchscope": torchscope, "viewer": viewer}  # as in the console
    exec(restored.metadata["torchscope"]["call"], namespace)  # noqa: S102 - the recorded call
    np.testing.assert_allclose(restored.data, namespace["deblurred"], atol=1e-5)
    # Re-estimate from the best rectangle writes into the same colour layer
    shapes = viewer.layers["regions (rgb)"]
    shapes.selected_data = {0}
    widget.reestimate()
    wait_until_done(widget, timeout=120_000)
    assert viewer.layers["deblurred (rgb)"] is restored and restored.rgb
    assert [layer.name for layer in viewer.layers].count("deblurred (rgb)") == 1


def test_a_uniform_image_is_refused(viewer, notifications):
    widget = DeblurWidget(viewer)
    widget.image.value = viewer.add_image(np.full((300, 300), 0.4, np.float32), name="flat")
    assert widget.run() is None and widget.worker is None
    assert any("'flat' is uniform" in str(n.message) for n in notifications())


@pytest.mark.parametrize("shape, rgb", [((4, 40, 40), False), ((4, 40, 40, 3), True)])
def test_stacks_are_refused_before_a_job_starts(viewer, notifications, shape, rgb):
    widget = DeblurWidget(viewer)
    viewer.add_image(np.zeros(shape, np.float32), name="stack", rgb=rgb)
    widget.image.value = viewer.layers["stack"]
    assert widget.run() is None and widget.worker is None
    assert any("2D grey or RGB" in str(n.message) and str(shape) in str(n.message)
               for n in notifications())


def test_reestimate_waits_for_the_running_job(viewer, widget, notifications, wait_until_done):
    widget.run()
    wait_until_done(widget, timeout=120_000)
    viewer.layers["regions (blurred)"].selected_data = {0}
    assert widget.reestimate_button.enabled
    worker = widget.run()
    assert worker is not None and not widget.reestimate_button.enabled
    assert widget.reestimate() is None  # refused with a notification, not a traceback
    assert widget.run() is None
    assert sum("a job is running" in str(n.message) for n in notifications()) == 2
    wait_until_done(widget, timeout=120_000)
    assert widget.reestimate_button.enabled
    # the image removed: Re-estimate says so instead of computing from a layer no longer shown
    viewer.layers.remove(viewer.layers["blurred"])
    assert widget.reestimate() is None
    assert any("'blurred' was removed" in str(n.message) for n in notifications())


def test_dock_and_samples_open_through_napari(viewer):
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Deblur from good regions")
    assert isinstance(widget, DeblurWidget)
    blurred, kernel = viewer.open_sample(PLUGIN, "deblur_camera")
    assert blurred.data.shape == (512, 512)
    np.testing.assert_allclose(kernel.data.sum(), 1.0, rtol=1e-5)
    [clock] = viewer.open_sample(PLUGIN, "deblur_clock")
    assert clock.data.shape == (300, 400)
    # the colour sample: an RGB layer, blurred per channel by the same seeded kernel
    colour, kernel2 = viewer.open_sample(PLUGIN, "deblur_astronaut")
    assert colour.rgb and colour.data.shape == (512, 512, 3)
    np.testing.assert_array_equal(kernel2.data, kernel.data)
    namespace = {"torchscope": torchscope, "skimage": __import__("skimage.data")}
    exec(colour.metadata["torchscope"]["call"], namespace)  # noqa: S102 - the recorded call
    np.testing.assert_allclose(colour.data, namespace["image"], atol=1e-6)
    red = deblur.blur(data.astronaut()[..., 0] / 255, kernel.data.astype(np.float64))
    assert np.abs(colour.data[..., 0] - red).std() < 0.02  # that channel, up to the 1 % noise


def test_default_scorer_is_the_shipped_cnn(viewer, wait_until_done):
    from torchscope.deblur._scorer import default_weights

    assert default_weights().is_file()
    sharp = data.camera()[100:400, 120:420] / 255.0  # camera: in the scorer's test split
    image = deblur.blur(sharp, deblur.motion_kernel(13, rng=5), noise_sigma=0.01,
                        rng=5).astype(np.float32)
    viewer.add_image(image, name="photo")
    widget = DeblurWidget(viewer)
    assert widget.scorer.value == "cnn" and widget.size.value == 228
    widget.kernel_size.value = 13
    widget.device.value = "cpu"
    widget.run()
    wait_until_done(widget, timeout=120_000)
    expected = deblur.score_regions(image, size=228, stride=20, scorer="cnn", device="cpu")
    np.testing.assert_allclose(viewer.layers["score heatmap (photo)"].data, expected.heatmap,
                               rtol=1e-5, atol=1e-6)
    boxes = [rectangle_to_box(v, image.shape) for v in viewer.layers["regions (photo)"].data]
    assert boxes[0] == tuple(expected.top(1).boxes[0].tolist())
    assert viewer.layers["deblurred (photo)"].data.shape == image.shape


def test_without_shipped_weights_the_dock_starts_on_variance(viewer, monkeypatch, tmp_path):
    from torchscope.deblur import _scorer

    monkeypatch.setattr(_scorer, "WEIGHTS_DIR", tmp_path / "none")
    assert DeblurWidget(viewer).scorer.value == "variance"

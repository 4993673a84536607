"""The Alzheimer's docks, MRI reader and phantom sample in a real viewer.

Expected values come from the public API called as a console user would
(``torchscope.alzheimer.predict`` on ``extract_slice`` of the same data), from nibabel (the
voxel sizes written into the files) and from the volume's own geometry, never from the
widget's code.
"""

import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from napari.layers import Image

import torchscope.alzheimer as az
from torchscope.napari._alzheimer import ClassifyWidget, TrainWidget
from torchscope.napari._readers import get_mri_reader

PLUGIN = "napari-torchscope"


# --------------------------------------------------------------------------- reader
@pytest.fixture
def volume():
    rng = np.random.default_rng(3)
    return rng.integers(0, 1000, size=(12, 14, 10)).astype(np.int16)


def test_reader_opens_nifti_with_its_voxel_size(viewer, tmp_path, volume):
    zooms = (1.5, 0.75, 2.0)
    image = nib.Nifti1Image(volume, np.diag([*zooms, 1.0]))
    image.header.set_zooms(zooms)
    path = tmp_path / "brain.nii.gz"
    nib.save(image, path)
    [layer] = viewer.open(path, plugin=PLUGIN)
    assert isinstance(layer, Image) and layer.name == "brain"
    np.testing.assert_array_equal(layer.data, volume)
    np.testing.assert_allclose(layer.scale, zooms)
    assert {f"{u:~P}" for u in layer.units} == {"mm"}


@pytest.mark.parametrize("suffix", [".hdr", ".img"])
def test_reader_opens_an_analyze_pair_as_oasis_writes_it(viewer, tmp_path, volume, suffix):
    # OASIS-1: big-endian int16 Analyze 7.5 pairs, 4-D with a trailing singleton axis.
    zooms = (1.0, 1.25, 0.5, 1.0)
    header = nib.AnalyzeHeader(endianness=">")
    header.set_data_dtype(np.int16)
    image = nib.AnalyzeImage(volume[..., None], np.diag([*zooms[:3], 1.0]), header)
    image.header.set_zooms(zooms)
    nib.save(image, tmp_path / "OAS1_0001_MR1_t88_masked_gfc.hdr")
    assert (tmp_path / "OAS1_0001_MR1_t88_masked_gfc.img").is_file()
    [layer] = viewer.open(tmp_path / f"OAS1_0001_MR1_t88_masked_gfc{suffix}", plugin=PLUGIN)
    np.testing.assert_array_equal(layer.data, volume)  # trailing axis dropped
    np.testing.assert_allclose(layer.scale, zooms[:3])
    assert layer.metadata["torchscope"]["call"].startswith("torchscope.alzheimer.load_volume(")


def test_reader_declines_what_it_cannot_read(tmp_path, volume):
    lone = tmp_path / "sky.hdr"  # a Radiance HDR image has no .img beside it
    lone.write_bytes(b"#?RADIANCE\n")
    assert get_mri_reader(str(lone)) is None
    assert get_mri_reader(str(tmp_path / "image.tif")) is None
    nib.save(nib.AnalyzeImage(volume, np.eye(4)), tmp_path / "pair.hdr")
    # both halves of one pair dropped together: one layer
    reader = get_mri_reader([str(tmp_path / "pair.hdr"), str(tmp_path / "pair.img")])
    assert len(reader([str(tmp_path / "pair.hdr"), str(tmp_path / "pair.img")])) == 1


# --------------------------------------------------------------------------- classify
@pytest.fixture(scope="module")
def phantom_sample():
    """The phantom sample's two volumes (generated once: whole volumes take seconds)."""
    from torchscope.napari._sample_data import phantom_mri

    return phantom_mri()


def wait(qtbot, widget, timeout=120_000):
    qtbot.waitUntil(lambda: widget.worker is None, timeout=timeout)


def test_phantom_sample_opens_through_napari(viewer, phantom_sample, monkeypatch):
    import torchscope.napari._sample_data as samples

    monkeypatch.setattr(samples, "phantom_mri", lambda: phantom_sample)  # generated above
    layers = viewer.open_sample(PLUGIN, "phantom_mri")
    assert len(layers) == 2
    labels = sorted(layer.metadata["torchscope"]["label"] for layer in layers)
    assert labels == [0, 1]  # a control and an AD subject
    for layer in layers:
        assert layer.data.shape == (176, 208, 176)  # OASIS-1's grid
        np.testing.assert_allclose(layer.scale, (1.0, 1.0, 1.0))
        brain = layer.data > 0
        assert 0.1 < brain.mean() < 0.6  # a masked brain, not an empty or full box


def test_classify_a_phantom_volume_with_the_demo_model(viewer, qtbot, phantom_sample):
    data = next(s for s in phantom_sample if s[1]["metadata"]["torchscope"]["label"])[0]
    geometry = {"scale": (1.0, 1.2, 0.8), "translate": (-5.0, 3.0, 10.0)}
    volume = viewer.add_image(data, name="AD phantom", **geometry)
    widget = ClassifyWidget(viewer)
    viewer.window.add_dock_widget(widget)
    assert widget.image.value is volume
    # extract_slice's defaults: OASIS-1's axial axis 2, slice 105 (the paper's 106th)
    assert (widget.axis.value, widget.slice_index.value) == (2, 105)
    widget.slice_index.value = 98
    widget.patch.value, widget.stride.value = 32, 16  # fewer forward passes than the default
    dims = viewer.dims
    assert 2 not in dims.displayed  # the slicing axis is the slider
    assert dims.current_step[2] == 98
    assert dims.point[2] == pytest.approx(10.0 + 98 * 0.8)

    assert widget.run() is not None
    wait(qtbot, widget)
    model = az.load_model(az.demo_model_path())
    expected = az.predict(model, az.extract_slice(data, axis=2, index=98))
    assert widget.probability == pytest.approx(expected, abs=1e-6)
    assert f"{expected:.3f}" in widget.result.value

    names = ("reconstruction", "|error|", "autoencoder conv1", "occlusion")
    outputs = {name: viewer.layers[f"{name}(AD phantom)"] for name in names}
    for name, layer in outputs.items():
        record = layer.metadata["torchscope"]
        assert record["probability"] == pytest.approx(expected, abs=1e-6)
        assert "extract_slice(image, axis=2, index=98)" in record["setup"][1]
        if name == "autoencoder conv1":
            assert layer.data.shape[1:] == (176, 208, 1)
            np.testing.assert_allclose(layer.scale, (1.0, *geometry["scale"]))
            continue
        assert layer.data.shape == (176, 208, 1)  # the slice, one voxel thick along axis 2
        np.testing.assert_allclose(layer.scale, geometry["scale"])
        np.testing.assert_allclose(layer.translate, (-5.0, 3.0, 10.0 + 98 * 0.8))
    slice_ = az.extract_slice(data, axis=2, index=98)
    recon = az.reconstruct(model, slice_)
    np.testing.assert_allclose(outputs["reconstruction"].data[..., 0], recon, atol=1e-6)
    np.testing.assert_allclose(outputs["|error|"].data[..., 0], np.abs(slice_ - recon),
                               atol=1e-6)
    occlusion = outputs["occlusion"]
    assert occlusion.visible and occlusion.opacity < 1  # an overlay over the slice
    assert occlusion.contrast_limits[0] == pytest.approx(-occlusion.contrast_limits[1])
    assert "occlusion_map(model, slice_, patch=32, stride=16" in occlusion.metadata[
        "torchscope"]["call"]
    # the map itself is the console's with the patch and stride set above (not the defaults)
    np.testing.assert_allclose(occlusion.data[..., 0],
                               az.occlusion_map(model, slice_, patch=32, stride=16), atol=1e-5)
    # the viewer still shows slice 98 along the volume's axis 2 after the new channel axis
    world = dims.ndim - 3 + 2
    assert world not in dims.displayed and dims.point[world] == pytest.approx(10.0 + 98 * 0.8)
    # moving the slider moves the dock's slice
    dims.set_point(world, 10.0 + 60 * 0.8)
    assert widget.slice_index.value == 60


@pytest.mark.parametrize("tilted", [False, True])
def test_outputs_lie_on_the_slice_of_a_rotated_volume(viewer, qtbot, phantom_sample, tilted):
    # a volume rotated about the slicing axis (in the slice's plane), or tilted about another
    # axis (as a scanner's header affine may place it): every output voxel is drawn where the
    # volume's voxel is (the slice offset and the feature maps' pooling were added to the
    # translate in pixel units, off a rotated volume), and the slider stays on the slice
    data = phantom_sample[0][0]
    c, s = np.cos(0.5), np.sin(0.5)
    rotate = ([[1, 0, 0], [0, c, -s], [0, s, c]] if tilted
              else [[c, -s, 0], [s, c, 0], [0, 0, 1]])
    volume = viewer.add_image(data, name="mri", scale=(1.0, 1.2, 0.8),
                              translate=(-5.0, 3.0, 10.0), rotate=rotate, shear=[0.1, 0, 0])
    widget = ClassifyWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.slice_index.value = 98
    widget.patch.value, widget.stride.value = 32, 32
    assert widget.run() is not None
    wait(qtbot, widget)
    assert widget.slice_index.value == 98
    for name in ("reconstruction", "occlusion"):
        layer = viewer.layers[f"{name}(mri)"]
        for i, j in ((0, 0), (40, 50), (175, 207)):
            np.testing.assert_allclose(layer.data_to_world((i, j, 0)),
                                       volume.data_to_world((i, j, 98)), atol=1e-9)
    features = viewer.layers["autoencoder conv1(mri)"]
    f = 176 / features.data.shape[1]  # the pooling factor: map pixel i covers f input pixels
    for i, j in ((0, 0), (10, 20)):
        centre = (f * i + (f - 1) / 2, f * j + (f - 1) / 2, 98)
        np.testing.assert_allclose(features.data_to_world((3, i, j, 0))[1:],
                                   volume.data_to_world(centre), atol=1e-9)


def test_choosing_an_axis_shows_its_slice_the_same_way_every_time(viewer):
    """The other axes kept their current order: the same slice came out transposed or not
    depending on the axes chosen before."""
    viewer.add_image(np.zeros((30, 40, 36), np.float32), name="vol")
    widget = ClassifyWidget(viewer)
    shown = {}
    for axis in (0, 1, 0, 2, 1, 2):
        widget.axis.value = axis
        shown.setdefault(axis, set()).add(tuple(viewer.dims.displayed))
    assert shown == {0: {(1, 2)}, 1: {(0, 2)}, 2: {(0, 1)}}


def test_classify_a_2d_slice_with_a_saved_model(viewer, qtbot, tmp_path):
    model = az.load_model(az.demo_model_path())
    path = az.save_model(tmp_path / "mine.safetensors", model)  # as a user saves one
    slice_ = az.phantom_cohort(2, seed=9).slices[0] * 700.0  # any range: scaled to [0, 1]
    viewer.add_image(slice_, name="slice", scale=(0.5, 0.5))
    widget = ClassifyWidget(viewer)
    assert not widget.axis.visible and not widget.slice_index.visible
    widget.model.value = "file"
    widget.model_file.value = path
    widget.features.value = ("classifier", "conv2")
    widget.patch.value = widget.stride.value = 44  # few forward passes
    widget.run()
    wait(qtbot, widget)
    expected = az.predict(model, az.normalise_slice(slice_))
    assert widget.probability == pytest.approx(expected, abs=1e-6)
    psnr, validation, familiar = az.familiarity(model, az.normalise_slice(slice_))
    assert familiar and widget.familiar
    assert f"autoencoder reconstruction {psnr:.1f} dB (validation {validation:.1f} dB)" in \
        widget.result.value and "unlike" not in widget.result.value
    layer = viewer.layers["occlusion(slice)"]
    assert layer.data.shape == slice_.shape
    np.testing.assert_allclose(layer.scale, (0.5, 0.5))
    assert layer.metadata["torchscope"]["model"] == str(path)
    features = viewer.layers["classifier conv2(slice)"]
    assert features.data.shape[1:] == (88, 104)  # half resolution: pixels twice as large
    np.testing.assert_allclose(features.scale, (1.0, 1.0, 1.0))
    np.testing.assert_allclose(features.translate, (0.0, 0.25, 0.25))
    np.testing.assert_allclose(
        features.data,
        az.feature_maps(model, az.normalise_slice(slice_), layers="conv2",
                        network="classifier")["conv2"],
        atol=1e-5,
    )


def test_a_slice_unlike_the_training_slices_is_flagged(viewer, qtbot):
    # a sideways-shifted slice: the model still gives a probability, but the dock says the
    # slice is unlike its training slices (the autoencoder reconstructs it far worse)
    slice_ = np.roll(az.phantom_cohort(2, seed=9).slices[0], 30, axis=1)
    viewer.add_image(slice_, name="shifted")
    widget = ClassifyWidget(viewer)
    widget.patch.value = widget.stride.value = 88
    widget.run()
    wait(qtbot, widget)
    assert widget.familiar is False
    assert "unlike the model's training slices" in widget.result.value
    assert 0.0 <= widget.probability <= 1.0


def test_classify_refuses_a_missing_model_file(viewer, notifications):
    viewer.add_image(np.zeros((8, 8), np.float32), name="slice")
    widget = ClassifyWidget(viewer)
    widget.model.value = "file"
    assert widget.run() is None
    assert any("model file" in str(n.message) for n in notifications())


# --------------------------------------------------------------------------- train
def tiny_training(widget, epochs=(2, 1, 1)):
    widget.source.value = "phantom"
    widget.n_subjects.value = 10
    widget.cohort_seed.value = 5
    widget.epochs_ae.value, widget.epochs_clf.value, widget.epochs_finetune.value = epochs


def test_train_on_a_tiny_phantom_cohort_then_save(viewer, qtbot, tmp_path):
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget)
    tiny_training(widget)
    assert widget.run() is not None
    wait(qtbot, widget)
    trained, metrics = widget.trained, widget.metrics
    assert trained is not None and metrics is not None
    history = trained.history
    assert len(history["ae_train_loss"]) == 2 and len(history["clf_train_loss"]) == 2
    # the live plot shows the losses (train and validation of both networks)
    [ae_train, ae_val] = widget.canvas.ax_ae.lines
    np.testing.assert_allclose(ae_train.get_ydata(), history["ae_train_loss"])
    np.testing.assert_allclose(ae_val.get_ydata(), history["ae_val_loss"])
    assert len(widget.canvas.ax_clf.lines) == 2
    # the test metrics are those of the held-out subjects
    assert set(trained.split.test.subjects).isdisjoint(trained.split.train.subjects)
    np.testing.assert_array_equal(metrics.confusion, az.evaluate(trained,
                                                                trained.split.test).confusion)
    assert widget.canvas.ax_confusion.images  # the confusion matrix is drawn
    # the recorded console lines give the same model and figures (same seeds, same device)
    namespace = {"torchscope": __import__("torchscope.alzheimer")}
    for line in widget.calls:
        exec(line, namespace)  # noqa: S102 - running the recorded lines is the test
    np.testing.assert_allclose(namespace["metrics"].probabilities, metrics.probabilities,
                               atol=1e-6)
    # save, and load it back
    assert widget.save_button.enabled
    written = widget.save(tmp_path / "model")
    assert written.suffix == ".safetensors"
    loaded = az.load_model(written)
    slices = trained.split.test.slices
    np.testing.assert_allclose(az.predict(loaded, slices), az.predict(trained, slices),
                               atol=1e-6)


def test_stop_ends_training_early(viewer, qtbot):
    widget = TrainWidget(viewer)
    tiny_training(widget, epochs=(10_000, 10_000, 10_000))
    widget.run()
    qtbot.waitUntil(lambda: "epoch" in widget.status.value, timeout=60_000)  # training
    widget.stop()
    wait(qtbot, widget, timeout=60_000)
    history = widget.trained.history
    assert history["stopped"]
    assert 1 <= len(history["ae_train_loss"]) < 10_000
    assert history["clf_train_loss"] == []  # the later stages were skipped
    assert widget.save_button.enabled  # the best weights so far can be saved


def test_closing_the_viewer_while_training_is_quiet(viewer, qtbot):
    # epochs reported after the dock's Qt widgets are gone must not touch them (pytest-qt
    # fails the test on an exception raised in a slot)
    from qtpy.QtCore import QThreadPool
    from qtpy.QtWidgets import QApplication

    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget)
    tiny_training(widget, epochs=(10_000, 10_000, 10_000))
    widget.run()
    qtbot.waitUntil(lambda: "epoch" in widget.status.value, timeout=60_000)
    viewer.close()
    assert QThreadPool.globalInstance().waitForDone(120_000)
    for _ in range(50):
        QApplication.processEvents()


def test_a_failed_training_says_so_in_the_status_line(viewer, qtbot, notifications):
    """The status went on saying "training…" after the failure's notification had gone."""
    widget = TrainWidget(viewer)
    tiny_training(widget)
    widget.n_subjects.value = 4  # the training subjects come out all of one class
    widget.run()
    wait(qtbot, widget, timeout=60_000)
    assert widget.trained is None
    assert widget.status.value.startswith("training failed: ")
    assert any("Training failed" in record.message for record in notifications())


def test_docks_open_from_the_classify_menu(viewer):
    from napari._app_model import get_app_model

    menus = get_app_model().menus
    [submenu] = [item.submenu for item in menus.get_menu("napari/layers/classify")
                 if getattr(item, "submenu", "").startswith("napari-torchscope.")]
    commands = [item.command.id for item in menus.get_menu(submenu)]
    assert commands == ["napari-torchscope.alzheimer_classify", "napari-torchscope.alzheimer_train"]
    _, classify = viewer.window.add_plugin_dock_widget(PLUGIN, "Classify MRI slice")
    _, train = viewer.window.add_plugin_dock_widget(PLUGIN, "Train MRI classifier")
    assert isinstance(classify, ClassifyWidget) and isinstance(train, TrainWidget)


def test_module_napari_loads_does_not_import_torch():
    code = (
        "import sys, torchscope.napari._alzheimer, torchscope.napari._readers, "
        "torchscope.napari._sample_data\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

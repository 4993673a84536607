"""The ptychography dock in a real viewer: simulate, run, live layers, stop, continue, files.

Small problems (a 48 x 48 object, 16 x 16 patterns, 16 to 25 positions) keep every run short.
Expected values come from the public API called as a console user would (``ptycho.simulate``,
``ptycho.reconstruct``, ``ptycho.load``), never from the widget's own helpers.
"""

import h5py
import numpy as np
import pytest
from napari.layers import Image, Points
from scipy import ndimage

import torchscope
from torchscope import ptycho
from torchscope.napari._ptycho import DATA_KEY, RESULT_KEY, PtychoWidget
from torchscope.napari._readers import get_ptycho_reader
from torchscope.napari._writers import write_ptycho_cxi

WIN = 16


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here runs torch on one thread (see tests/conftest.py)."""


def _smooth(rng, shape):
    return ndimage.gaussian_filter(rng.random(shape), 2.0)


@pytest.fixture
def truth(rng):
    """A smooth complex object, 48 x 48."""
    amp = 0.6 + 0.4 * _smooth(rng, (48, 48)) / 0.6
    phase = 2.0 * (_smooth(rng, (48, 48)) - 0.5)
    return amp, phase


@pytest.fixture
def data(truth):
    amp, phase = truth
    probe = ptycho.make_probe(WIN, kind="disk", diameter_px=9, quadratic_phase_rad=2.0)
    positions = ptycho.raster_positions(5, 5, jitter_px=0.7, rng=1)
    return ptycho.simulate(amp * np.exp(1j * phase), probe, positions, photons=1e6, rng=2)


@pytest.fixture
def widget(viewer):
    w = PtychoWidget(viewer)
    viewer.window.add_dock_widget(w, name="Ptychography")
    return w


def _add_dataset(viewer, widget, data, name="demo"):
    layer = viewer.add_image(data.patterns, name=f"{name} patterns", metadata={DATA_KEY: data})
    widget.dataset.reset_choices()
    widget.dataset.value = layer
    return layer


def _set(widget, **values):
    for name, value in values.items():
        getattr(widget, name).value = value


def _outputs(viewer, prefix):
    names = ("amplitude", "phase", "probe", "positions")
    return [viewer.layers[f"{prefix} {n}"] for n in names]


def _console_options(widget):
    """The dock's settings as the keyword arguments a console user passes to reconstruct()."""
    return {
        "engine": widget.engine.value,
        "modes": widget.modes.value,
        "alpha_obj": widget.alpha_obj.value,
        "alpha_probe": widget.alpha_probe.value,
        "beta": widget.beta.value,
        "gamma": widget.gamma.value,
        "seed": widget.seed.value,
        "device": "cpu",
    }


# --------------------------------------------------------------------------- virtual experiment
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_simulate_from_two_layers(viewer, widget, truth, wait_until_done, dtype):
    # float32 layers: the recorded lines computed the object in float32 (the dock in
    # float64), which flipped a few seeded Poisson counts of the replay
    amp, phase = (np.asarray(t, dtype).astype(float) for t in truth)  # what the layers hold
    viewer.add_image(amp.astype(dtype), name="amp")
    viewer.add_image(phase.astype(dtype), name="ph")
    widget.reset_choices()
    _set(
        widget,
        amplitude=viewer.layers["amp"],
        phase=viewer.layers["ph"],
        phase_range=1.5,
        detector_px=WIN,
        probe_kind="gaussian",
        probe_diameter_px=8.0,
        probe_phase=1.0,
        probe_modes=2,
        step_px=6.0,
        jitter_px=0.5,
        photons=1e5,
        sim_seed=4,
        device="cpu",
    )
    assert widget.simulate() is not None
    wait_until_done(widget)

    layer = widget.dataset.value
    assert isinstance(layer, Image) and layer.name == "simulated amp+ph patterns"
    made = layer.metadata[DATA_KEY]
    # Independently: phase min-max scaled to the range, the probe, a raster that fits.
    obj = amp * np.exp(1j * 1.5 * ((phase - phase.min()) / np.ptp(phase) - 0.5))
    rng = np.random.default_rng(4)
    probe = ptycho.make_probe(
        WIN, kind="gaussian", diameter_px=8.0, quadratic_phase_rad=1.0, modes=2
    )
    grid = round(np.sqrt(len(made.positions_px)))  # the dock fits as many 6 px steps as it can
    assert grid >= 4 and np.abs(made.positions_px).max() + WIN / 2 <= 24
    positions = ptycho.raster_positions(grid, 6.0, jitter_px=0.5, rng=rng)
    expected = ptycho.simulate(obj, probe, positions, photons=1e5, geometry=made.geometry, rng=rng)
    np.testing.assert_allclose(made.positions_px, expected.positions_px)
    np.testing.assert_allclose(made.patterns, expected.patterns)
    # The recorded console lines give the same data.
    *setup, call = layer.metadata["torchscope"]["call"].split("; ")
    namespace = {"viewer": viewer, "torchscope": torchscope}
    exec("\n".join(setup), namespace)  # noqa: S102 - the recorded console call is under test
    np.testing.assert_array_equal(namespace["obj"], obj)  # the dock's object, in float64
    np.testing.assert_array_equal(eval(call, namespace).patterns, made.patterns)
    assert made.geometry.energy_ev == widget.energy_ev.value
    assert isinstance(viewer.layers["simulated amp+ph scan"], Points)


def test_simulation_refuses_an_object_smaller_than_the_probe(viewer, widget, notifications):
    viewer.add_image(np.ones((10, 10)), name="tiny")
    widget.reset_choices()
    _set(widget, amplitude=viewer.layers["tiny"], detector_px=WIN)
    assert widget.simulate() is None
    assert any("larger than the detector" in str(n.message) for n in notifications())
    # amplitude and phase of different shapes: refused before a job starts
    viewer.add_image(np.ones((48, 48)), name="amp")
    viewer.add_image(np.ones((48, 40)), name="ph")
    widget.reset_choices()
    _set(widget, amplitude=viewer.layers["amp"], phase=viewer.layers["ph"])
    assert widget.simulate() is None and widget.worker is None
    assert any(str(n.message) == "Virtual experiment: the amplitude (48, 48) and phase (48, 40) "
               "layers differ in shape." for n in notifications())


# --------------------------------------------------------------------------- live reconstruction
def test_run_shows_live_layers_and_matches_the_console(viewer, widget, data, wait_until_done):
    source = _add_dataset(viewer, widget, data)
    _set(widget, iterations=6, every=2, device="cpu", seed=3)
    widget.run()
    wait_until_done(widget)

    amplitude, phase, probe, points = _outputs(viewer, "demo")
    assert not source.visible  # hidden so that the object shows
    assert isinstance(points, Points) and points.data.shape == (25, 2)
    assert probe.data.shape == (1, WIN, WIN)
    result = amplitude.metadata[RESULT_KEY]
    assert result.iteration == 6 == widget.last_snapshot.iteration
    assert [i for i, _ in widget.history] == [2, 4, 6]
    assert widget.plot.iterations == [2, 4, 6]
    expected = ptycho.reconstruct(data, iterations=6, **_console_options(widget))
    np.testing.assert_allclose(np.abs(result.obj), np.abs(expected.obj), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(amplitude.data, np.abs(expected.obj), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(phase.data, np.angle(expected.obj), atol=1e-4)
    np.testing.assert_allclose([e for _, e in widget.history], expected.errors[1::2], rtol=1e-4)
    # Geometry: nm per pixel, the object's centre (index n // 2) at the origin, points on it.
    py, px = (p * 1e9 for p in data.geometry.sample_pixel_yx_m)
    np.testing.assert_allclose(amplitude.scale, (py, px))
    oy, ox = amplitude.data.shape
    np.testing.assert_allclose(amplitude.translate, (-(oy // 2) * py, -(ox // 2) * px))
    assert phase.translate[1] >= (ox - ox // 2) * px  # the phase beside the amplitude
    assert probe.translate[2] >= phase.translate[1] + ox * px  # and the probe beside the phase
    np.testing.assert_allclose(points.scale, (py, px))
    # The recorded call, run as in napari's console, gives the same object.
    setup, call = amplitude.metadata["torchscope"]["call"].split("; ", 1)
    namespace = {"viewer": viewer, "torchscope": torchscope}
    exec(setup, namespace)  # noqa: S102 - the recorded console call is the thing under test
    np.testing.assert_allclose(eval(call, namespace).obj, result.obj, rtol=1e-4, atol=1e-5)


def test_update_rates_set_in_the_dock_reach_the_engine(viewer, widget, data, wait_until_done):
    """alpha_obj, alpha_probe, beta and gamma away from their defaults (and from each other):
    a field ignored or passed as another gives a different object and probe."""
    _add_dataset(viewer, widget, data)
    _set(widget, iterations=4, every=2, device="cpu", seed=3,
         alpha_obj=0.7, alpha_probe=0.4, beta=0.8, gamma=0.25)
    widget.run()
    wait_until_done(widget)
    expected = ptycho.reconstruct(data, iterations=4, engine="rpie", modes=1, alpha_obj=0.7,
                                  alpha_probe=0.4, beta=0.8, gamma=0.25, seed=3, device="cpu")
    snap = widget.last_snapshot
    assert snap.iteration == 4
    np.testing.assert_allclose(snap.obj, expected.obj, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(snap.probe_modes, expected.probe_modes, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(viewer.layers["demo amplitude"].data, np.abs(expected.obj),
                               rtol=1e-4, atol=1e-5)


def test_layers_update_while_running(viewer, widget, data, qtbot, wait_until_done):
    _add_dataset(viewer, widget, data)
    _set(widget, iterations=100_000, every=1, device="cpu")
    widget.run()
    qtbot.waitUntil(lambda: "demo amplitude" in viewer.layers, timeout=20_000)
    amplitude = viewer.layers["demo amplitude"]
    points = viewer.layers["demo positions"]
    seen = {}  # iteration shown -> amplitude shown, sampled while the worker runs

    def sample():
        seen[amplitude.metadata["torchscope"]["iteration"]] = amplitude.data.copy()
        return len(seen) >= 3

    qtbot.waitUntil(sample, timeout=30_000)
    assert widget.worker is not None  # live: still running
    widget.stop()
    wait_until_done(widget)
    assert viewer.layers["demo amplitude"] is amplitude  # updated, not re-added
    assert viewer.layers["demo positions"] is points
    first, last = min(seen), max(seen)
    assert not np.array_equal(seen[first], seen[last])
    np.testing.assert_array_equal(amplitude.data, np.abs(widget.last_snapshot.obj))
    assert widget.progress.value == widget.last_snapshot.iteration
    assert widget.status.value.startswith(f"iteration {widget.last_snapshot.iteration},")
    assert widget.plot.iterations[-1] == widget.last_snapshot.iteration


def test_points_move_with_position_refinement(viewer, widget, data, wait_until_done):
    rng = np.random.default_rng(5)
    wrong = ptycho.PtychoData(
        data.patterns, data.positions_px + rng.normal(0, 1.0, (25, 2)), data.geometry
    )
    _add_dataset(viewer, widget, wrong)
    _set(widget, iterations=20, every=5, refinement="adam", device="cpu")
    widget.run()
    wait_until_done(widget)
    points = viewer.layers["demo positions"]
    moved = np.abs(points.data - wrong.positions_px).max()
    assert moved > 0.01  # refinement runs from iteration 10 on
    np.testing.assert_allclose(points.data, widget.last_snapshot.positions_px)
    # Without refinement the points stay where the data put them.
    widget.refinement.value = "none"
    widget.run()
    wait_until_done(widget)
    np.testing.assert_allclose(points.data, wrong.positions_px)


def test_lbfgs_finish_runs_as_in_the_console(viewer, widget, data, wait_until_done):
    _add_dataset(viewer, widget, data)
    _set(widget, iterations=40, every=20, finish="lbfgs", device="cpu", seed=1)
    widget.run()
    wait_until_done(widget)
    result = widget.last_snapshot
    assert result.state["lbfgs"] is not None  # the finish took over within the 40 iterations
    expected = ptycho.reconstruct(data, iterations=40, finish="lbfgs", **_console_options(widget))
    np.testing.assert_allclose(result.obj, expected.obj, rtol=1e-4, atol=1e-5)
    assert "finish='lbfgs'" in viewer.layers["demo amplitude"].metadata["torchscope"]["call"]
    assert widget.status.value.startswith("iteration 40 (L-BFGS finish), error")
    # position refinement keeps the halved rates: the finish is switched off with it
    widget.refinement.value = "adam"
    assert not widget.finish.enabled
    assert widget.reconstruction_options()["finish"] is None
    widget.refinement.value = "none"
    assert widget.finish.enabled and widget.reconstruction_options()["finish"] == "lbfgs"


@pytest.mark.parametrize("finish", [None, "auto"])
def test_finish_choice_of_a_two_mode_run_is_replayed(viewer, widget, data, wait_until_done,
                                                     finish):
    # the default "automatic" finish is L-BFGS with two modes; "halved rates" (None) must
    # then be written out in the recorded call, or replaying it would take the default
    assert widget.finish.value == "auto"
    _add_dataset(viewer, widget, data)
    _set(widget, iterations=80, every=80, modes=2, finish=finish, device="cpu", seed=1)
    widget.run()
    wait_until_done(widget)
    assert (widget.last_snapshot.state["lbfgs"] is not None) == (finish == "auto")
    call = viewer.layers["demo amplitude"].metadata["torchscope"]["call"]
    assert f"finish={finish!r}" in call
    namespace = {"torchscope": torchscope, "viewer": viewer}
    exec(call.replace("torchscope.ptycho.reconstruct", "result = torchscope.ptycho.reconstruct"),  # noqa: S102
         namespace)
    np.testing.assert_allclose(namespace["result"].obj, widget.last_snapshot.obj, rtol=1e-4,
                               atol=1e-5)


def test_a_second_dataset_of_the_same_name_gets_its_own_layer_names(viewer, widget, data,
                                                                    wait_until_done):
    _add_dataset(viewer, widget, data)
    second = _add_dataset(viewer, widget, data)  # napari names it "demo patterns [1]"
    assert second.name == "demo patterns [1]"
    _set(widget, iterations=2, every=2, device="cpu")
    widget.run()
    wait_until_done(widget)
    assert {"demo [1] amplitude", "demo [1] phase", "demo [1] probe",
            "demo [1] positions"} <= {layer.name for layer in viewer.layers}


@pytest.mark.parametrize("paused", [False, True])
def test_closing_the_viewer_mid_run_is_quiet(viewer, widget, data, qtbot, paused):
    # snapshots queued before the worker stopped arrive after the dock's Qt widgets are gone:
    # they must neither touch the dock nor add layers to the closed viewer (pytest-qt fails
    # the test on an exception raised in a slot)
    from qtpy.QtCore import QThreadPool
    from qtpy.QtWidgets import QApplication

    _add_dataset(viewer, widget, data)
    _set(widget, iterations=100_000, every=1, device="cpu")
    widget.run()
    qtbot.waitUntil(lambda: widget.last_snapshot is not None, timeout=30_000)
    if paused:
        widget.pause()
    layers = len(viewer.layers)
    viewer.close()
    assert QThreadPool.globalInstance().waitForDone(60_000)
    for _ in range(50):
        QApplication.processEvents()
    assert widget.worker is None
    assert len(viewer.layers) <= layers


def test_pause_stop_then_continue_from_the_last_snapshot(
    viewer, widget, data, qtbot, wait_until_done
):
    _add_dataset(viewer, widget, data)
    _set(widget, iterations=100_000, every=1, device="cpu")
    widget.run()
    qtbot.waitUntil(
        lambda: widget.last_snapshot is not None and widget.last_snapshot.iteration >= 3,
        timeout=20_000,
    )
    # Pause holds the worker at a snapshot; pressing it again resumes.
    with qtbot.waitSignal(widget.worker.paused, timeout=10_000):
        widget.pause()
    assert widget.pause_button.text == "Resume"
    qtbot.wait(100)
    held = widget.last_snapshot.iteration
    qtbot.wait(300)
    assert widget.last_snapshot.iteration == held
    with qtbot.waitSignal(widget.worker.resumed, timeout=10_000):
        widget.pause()
    qtbot.waitUntil(lambda: widget.last_snapshot.iteration > held, timeout=10_000)
    assert widget.pause_button.text == "Pause"
    # Stop ends it at the next snapshot.
    widget.stop()
    wait_until_done(widget)
    stopped = widget.last_snapshot
    assert stopped.iteration < 100_000
    qtbot.wait(300)
    assert widget.last_snapshot is stopped  # nothing runs any more
    assert widget.continue_button.enabled

    _set(widget, iterations=4, every=2)
    before = len(widget.history)
    widget.resume()
    wait_until_done(widget)
    assert widget.last_snapshot.iteration == stopped.iteration + 4
    its = [i for i, _ in widget.history]
    # The history goes on where it stopped: the next snapshots are the stop's + 2 and + 4.
    assert its[before - 1] == stopped.iteration
    assert its[before:] == [stopped.iteration + 2, stopped.iteration + 4]
    options = {**_console_options(widget), "seed": widget.seed.value}
    expected = ptycho.reconstruct(data, iterations=4, start=stopped, **options)
    np.testing.assert_allclose(
        np.abs(widget.last_snapshot.obj), np.abs(expected.obj), rtol=1e-4, atol=1e-5
    )
    # the continued run's record runs on its own in the console: it replays the stopped run
    # (it named a 'previous' the console did not have)
    call = viewer.layers["demo amplitude"].metadata["torchscope"]["call"]
    assert f"start=torchscope.ptycho.reconstruct(data, iterations={stopped.iteration}," in call
    namespace = {"viewer": viewer, "torchscope": torchscope}
    replay = call.replace("; torchscope.ptycho.reconstruct",
                          "; result = torchscope.ptycho.reconstruct", 1)
    exec(replay, namespace)  # noqa: S102 - the recorded call is under test
    np.testing.assert_allclose(namespace["result"].obj, widget.last_snapshot.obj, rtol=1e-4,
                               atol=1e-5)


def test_run_without_dataset_is_refused(widget, notifications):
    assert widget.run() is None
    assert any("choose a dataset" in str(n.message) for n in notifications())


# --------------------------------------------------------------------------- files
def test_reader_opens_cxi_and_the_dock_reconstructs_it(
    viewer, widget, data, tmp_path, wait_until_done
):
    ptycho.save(tmp_path / "demo.cxi", data)
    assert get_ptycho_reader(str(tmp_path / "demo.cxi")) is not None
    layers = widget.open_file(str(tmp_path / "demo.cxi"))
    patterns = viewer.layers["demo patterns"]
    assert patterns in layers and widget.dataset.value is patterns
    loaded = patterns.metadata[DATA_KEY]
    np.testing.assert_array_equal(loaded.patterns, data.patterns)
    np.testing.assert_allclose(loaded.positions_px, data.positions_px, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(viewer.layers["demo scan"].data, data.positions_px, atol=1e-12)

    _set(widget, iterations=4, every=2, device="cpu")
    widget.run()
    wait_until_done(widget)
    assert widget.last_snapshot.iteration == 4
    assert np.isfinite(viewer.layers["demo amplitude"].data).all()


def test_reader_claims_ptychography_files_only(tmp_path, data):
    with h5py.File(tmp_path / "ptylab.h5", "w") as f:  # PtyLab's layout
        f["ptychogram"] = data.patterns
        f["encoder"] = data.positions_px * data.geometry.sample_pixel_m
        f["wavelength"] = [data.geometry.wavelength_m]
        f["zo"] = [data.geometry.detector_distance_m]
        f["dxd"] = [data.geometry.detector_pixel_m]
    reader = get_ptycho_reader(str(tmp_path / "ptylab.h5"))
    layers = reader(str(tmp_path / "ptylab.h5"))
    np.testing.assert_array_equal(layers[0][0], data.patterns)
    assert layers[0][1]["name"] == "ptylab patterns" and DATA_KEY in layers[0][1]["metadata"]
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["images"] = np.zeros((2, 4, 4))
    (tmp_path / "text.cxi").write_text("not HDF5")
    assert get_ptycho_reader(str(tmp_path / "other.h5")) is None
    assert get_ptycho_reader(str(tmp_path / "text.cxi")) is None
    assert get_ptycho_reader(str(tmp_path / "missing.cxi")) is None


def test_save_writes_a_readable_cxi(viewer, widget, data, tmp_path, wait_until_done):
    _add_dataset(viewer, widget, data)
    _set(widget, iterations=4, every=1, modes=2, device="cpu")
    widget.run()
    wait_until_done(widget)
    assert widget.save_button.enabled
    path = widget.save(tmp_path / "result")  # a bare name gets the reader's suffix
    assert str(path) == str(tmp_path / "result.cxi")
    back = ptycho.load(path)
    snap = widget.last_snapshot
    assert isinstance(back, ptycho.Result) and back.iteration == 4
    np.testing.assert_array_equal(back.obj, snap.obj)
    np.testing.assert_array_equal(back.probe_modes, snap.probe_modes)
    np.testing.assert_array_equal(back.positions_px, snap.positions_px)
    np.testing.assert_allclose(back.errors, [e for _, e in widget.history])
    assert back.options["engine"] == "rpie" and back.options["modes"] == 2
    # The same file through the napari writer contribution, from the object layer...
    amplitude = viewer.layers["demo amplitude"]
    written = write_ptycho_cxi(
        str(tmp_path / "w.cxi"), amplitude.data, amplitude.as_layer_data_tuple()[1]
    )
    again = ptycho.load(written[0])
    np.testing.assert_array_equal(again.obj, snap.obj)
    np.testing.assert_array_equal(again.probe_modes, snap.probe_modes)
    np.testing.assert_array_equal(again.positions_px, snap.positions_px)
    np.testing.assert_allclose(again.errors, [e for _, e in widget.history])
    # ...and the reader shows it as layers again, where the object was.
    viewer.open(str(tmp_path / "w.cxi"), plugin="napari-torchscope")
    reopened = viewer.layers["w amplitude"]
    np.testing.assert_allclose(reopened.data, np.abs(snap.obj))
    np.testing.assert_allclose(reopened.scale, amplitude.scale)
    np.testing.assert_allclose(reopened.translate, amplitude.translate)
    with pytest.raises(ValueError, match="not a ptychography layer"):
        write_ptycho_cxi(str(tmp_path / "x.cxi"), np.zeros((4, 4)), {"name": "plain"})


def test_sample_data_is_a_dataset_the_dock_takes(viewer, widget):
    viewer.open_sample("napari-torchscope", "ptycho_simulated")
    widget.reset_choices()
    layer = viewer.layers["simulated patterns"]
    assert layer in widget.dataset.choices
    made = layer.metadata[DATA_KEY]
    assert made.patterns.shape == (100, 64, 64) and made.metadata["photons"] == 1e6

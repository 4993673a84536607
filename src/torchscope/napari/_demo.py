"""``torchscope-demo``: napari with every torchscope dock and the sample data loaded.

::

    torchscope-demo                          # open napari and work
    torchscope-demo --screenshot demo.png    # run an example, save the whole window, exit
    torchscope-demo --screenshot seg.png --example segment

``--screenshot`` needs a display but no screen: it works under ``xvfb-run -a``.
"""

import argparse
import sys
import time

import numpy as np

PLUGIN = "napari-torchscope"
#: Display names of the group docks (napari.yaml), docked as tabs on the right.
DOCKS = ("Denoising", "Background removal", "Edges", "Binarization", "Morphology")
SAMPLES = ("nuclei_2d", "nuclei_3d")
WINDOW_SIZE = (1500, 900)
PHYSICAL = "physical units (layer scale)"


def main(argv=None):
    """Run the demo; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="torchscope-demo",
        description="Open napari with every napari-torchscope dock and the sample data.",
    )
    parser.add_argument(
        "--screenshot",
        metavar="PATH",
        help="run the example, save a screenshot of the whole window to PATH (PNG) and exit",
    )
    parser.add_argument(
        "--example",
        choices=sorted(EXAMPLES),
        default="denoise",
        help="what --screenshot shows: denoise (a Gaussian of 1 µm on the anisotropic 3D "
        "stack, input and result side by side; the default) or segment (background removal, "
        "Otsu threshold and opening on the 2D image)",
    )
    parser.add_argument("--no-samples", action="store_true", help="do not load the sample data")
    args = parser.parse_args(argv)

    import napari

    viewer = napari.Viewer(title="napari-torchscope")
    if not args.no_samples:
        for key in SAMPLES:
            viewer.open_sample(PLUGIN, key)
    docks = {
        name: viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=True) for name in DOCKS
    }
    _process_events(0.1)
    docks[DOCKS[0]][0].raise_()  # the first tab in front

    if args.screenshot is None:
        napari.run()
        return 0
    try:
        viewer.window.resize(*WINDOW_SIZE)
        if not args.no_samples:
            EXAMPLES[args.example](viewer, docks)
        _process_events(0.5)
        viewer.screenshot(args.screenshot, canvas_only=False, flash=False)
    finally:
        viewer.close()
    return 0


def _denoise(viewer, docks):
    """A Gaussian of 1 µm on the 3D stack; input and result side by side."""
    dock, widget = docks["Denoising"]
    stack = viewer.layers["nuclei 3D"]
    viewer.layers["nuclei 2D"].visible = False
    _run(widget, operation="gaussian", image=stack, sigma=1.0, units=PHYSICAL)
    dock.raise_()
    viewer.layers.selection.active = stack
    viewer.dims.set_point(0, stack.data.shape[0] // 2 * stack.scale[0])
    viewer.grid.shape = (1, -1)
    viewer.grid.enabled = True
    # Zoom on the stack (reset_view fits every layer, the hidden 2D sample too).
    viewer.reset_view()
    everything, own = viewer.layers.extent.world[:, -2:], stack.extent.world[:, -2:]
    viewer.camera.zoom *= np.ptp(everything, axis=0).max() / np.ptp(own, axis=0).max()
    viewer.camera.center = tuple(own.mean(axis=0))


def _segment(viewer, docks):
    """Nuclei of the 2D image: white top-hat of 8 µm, Otsu threshold, opening of 2 pixels."""
    image = viewer.layers["nuclei 2D"]
    viewer.layers["nuclei 3D"].visible = False
    _run(
        docks["Background removal"][1],
        operation="white_tophat",
        image=image,
        radius=8.0,
        units=PHYSICAL,
    )
    tophat = viewer.layers[f"white_tophat({image.name})"]
    _run(docks["Binarization"][1], image=tophat, method="otsu")
    mask = viewer.layers[f"threshold({tophat.name})"]
    _run(docks["Morphology"][1], operation="opening", image=mask, radius=2.0)
    tophat.visible = mask.visible = False
    docks["Morphology"][0].raise_()
    viewer.reset_view()


EXAMPLES = {"denoise": _denoise, "segment": _segment}


def _run(widget, timeout=120, **values):
    """Set a dock's values (``operation`` first), press Run and wait for the result."""
    if "operation" in values:
        widget.operation.value = values.pop("operation")
    for name, value in values.items():
        getattr(widget, name).value = value
    if widget.run() is None:
        raise RuntimeError(f"the example could not run {widget.operation.value}")
    deadline = time.monotonic() + timeout
    while widget.worker is not None:
        if time.monotonic() > deadline:
            widget.stop()
            raise TimeoutError(f"the example did not finish in {timeout} s")
        _process_events(0.02)


def _process_events(seconds):
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + seconds
    while True:
        QApplication.processEvents()
        if time.monotonic() >= end:
            return
        time.sleep(0.01)


if __name__ == "__main__":
    sys.exit(main())

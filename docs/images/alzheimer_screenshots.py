"""Screenshots of the Alzheimer's docks for docs/alzheimer.md ("napari widgets").

    xvfb-run -a python docs/images/alzheimer_screenshots.py docs/images

Opens the phantom MRI sample, classifies the AD volume and the control with the shipped demo
model (Classify dock, default settings), then trains on a phantom cohort of 60 subjects with
30/30/15 epochs (Train dock), torch on one thread. Writes napari-alzheimer-classify.png,
napari-alzheimer-layers.png and napari-alzheimer-train.png, and prints the figures the captions
quote.
"""

import sys
import time
from pathlib import Path

import napari
import numpy as np
from _screenshots import pump, wait  # this folder's helpers

PLUGIN = "napari-torchscope"


def main(out, n_subjects=60, epochs=(30, 30, 15)):
    import torch

    torch.set_num_threads(1)
    out = Path(out)
    viewer = napari.Viewer(title="napari-torchscope")
    viewer.window.resize(1500, 950)
    start = time.monotonic()
    layers = viewer.open_sample(PLUGIN, "phantom_mri")
    print(f"sample: {time.monotonic() - start:.1f} s")
    ad = next(layer for layer in layers if layer.metadata["torchscope"]["label"] == 1)
    control = next(layer for layer in layers if layer is not ad)

    # Classify the AD volume: the occlusion overlay over slice 105
    for layer in layers:
        layer.visible = layer is ad
    dock, classify = viewer.window.add_plugin_dock_widget(PLUGIN, "Classify MRI slice")
    classify.image.value = ad
    classify.run()
    seconds = wait(classify)
    print(f"classify {ad.name}: {seconds:.1f} s, P = {classify.probability:.4f}")
    viewer.reset_view()
    viewer.layers.selection.active = viewer.layers[f"occlusion({ad.name})"]
    pump(1.0)
    viewer.screenshot(str(out / "napari-alzheimer-classify.png"), canvas_only=False, flash=False)

    # The hidden layers side by side: slice, reconstruction, |error|, one conv1 feature map
    shown = [ad, *(viewer.layers[f"{name}({ad.name})"]
                   for name in ("reconstruction", "|error|", "autoencoder conv1"))]
    for layer in viewer.layers:
        layer.visible = layer in shown
    features = shown[-1]
    brain = ad.data[..., 105] > 0
    channel = int(np.argmax([c[..., 0][brain].std() for c in features.data]))
    viewer.dims.set_current_step(0, channel)
    print(f"feature channel shown: {channel}")
    viewer.canvas.grid.enabled = True
    viewer.canvas.grid.shape = (2, 2)
    viewer.layers.selection.active = features
    viewer.reset_view()
    pump(1.0)
    viewer.screenshot(str(out / "napari-alzheimer-layers.png"), canvas_only=False, flash=False)
    viewer.canvas.grid.enabled = False

    # Classify the control; it stays on screen under the Train dock
    classify.image.value = control
    classify.run()
    seconds = wait(classify)
    print(f"classify {control.name}: {seconds:.1f} s, P = {classify.probability:.4f}")
    for layer in viewer.layers:
        layer.visible = layer is control or layer.name == f"occlusion({control.name})"
    viewer.layers.selection.active = control
    viewer.reset_view()

    # Train on a phantom cohort
    viewer.window.remove_dock_widget(dock)
    _, train = viewer.window.add_plugin_dock_widget(PLUGIN, "Train MRI classifier")
    train.n_subjects.value = n_subjects
    train.epochs_ae.value, train.epochs_clf.value, train.epochs_finetune.value = epochs
    viewer.window.resize(1500, 1150)
    train.run()
    seconds = wait(train)
    print(f"train: {seconds:.1f} s")
    print(train.status.value)
    print(train.metrics)
    pump(1.0)
    viewer.screenshot(str(out / "napari-alzheimer-train.png"), canvas_only=False, flash=False)
    viewer.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/images")

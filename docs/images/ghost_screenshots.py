"""Screenshots of the ghost-imaging docks for docs/ghost.md (needs a display: use Xvfb).

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/images/ghost_screenshots.py docs/images

``napari-ghost.png``: the 14-tooth gear sample (64 x 64, 30 µm pixels) simulated with 768 zigzag
binary Hadamard masks (18.75 %), D_r 0.8, 3 % mask error, 1000 photons, seed 0; reconstructed
by gi, pinv, tv and mwcnn; marks from the object; grid view. ``napari-ghost-curve.png``: the "CAS"
sample at 32 x 32 (the paper's Cu mask: 150 µm pixels, D_r 0.75), CNR against the number of
exposures for speckle masks (gi), then Hadamard masks (gi, tv) drawn over it, as in Fig. 2(j).
"""

import sys

import napari
from _screenshots import pump, wait  # this folder's helpers

from torchscope import ghost

PLUGIN = "napari-torchscope"


def main(out):
    viewer = napari.Viewer(title="napari-torchscope: ghost imaging")
    viewer.window.resize(1500, 950)
    [gear] = viewer.open_sample(PLUGIN, "ghost_gear")
    dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Ghost imaging")
    widget.object.value = gear
    widget.methods.value = ["gi", "pinv", "tv", "mwcnn"]
    widget.run()
    wait(widget)
    widget.marks_from_object()
    viewer.layers.selection.active = viewer.layers["tv(14-tooth gear)"]
    pump(1.0)
    viewer.screenshot(f"{out}/napari-ghost.png", canvas_only=False, flash=False)
    print(widget.cnr.value)

    viewer.layers.clear()
    viewer.window.remove_dock_widget(dock)
    viewer.canvas.grid.enabled = False
    cas = viewer.add_image(ghost.sample_object("cas", 32), name="CAS 32x32", scale=(150, 150),
                           units=("µm", "µm"), colormap="gray")
    _, curve = viewer.window.add_plugin_dock_widget(PLUGIN, "Ghost CNR curve")
    curve.object.value = cas
    curve.ratio.value = 1.0
    curve.modulation_depth.value = 0.75
    curve.points.value = 8
    for masks, methods, keep in (("speckle", ["gi"], False), ("binary", ["gi", "tv"], True)):
        curve.masks.value = masks
        curve.methods.value = methods
        curve.keep.value = keep
        curve.run()
        wait(curve)
        print(masks, curve.curve)
    pump(0.5)
    viewer.reset_view()
    pump(0.5)
    viewer.screenshot(f"{out}/napari-ghost-curve.png", canvas_only=False, flash=False)
    viewer.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")

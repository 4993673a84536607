"""Screenshot of the deblur dock for docs/deblur.md (needs a display: use Xvfb).

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/images/deblur_screenshots.py docs/images

``napari-deblur.png``: the "Deblur, camera with a random motion blur" sample (scikit-image's
``camera``, in the scorer's test split, blurred by a 19 px kernel with 1 % noise), scored by the
shipped ``cnn`` scorer with the dock's defaults (228 px regions, stride 20, top 5 with at most
0.3 overlap, kernel size 25, dark channel, hyper-Laplacian), torch on one thread on the CPU.
Prints the run's wall-clock seconds and the similarity of the estimated kernel to the true one.

``napari-deblur-rgb.png``: the same with the "Deblur, astronaut in colour" sample (the same
kernel and noise on each channel of scikit-image's ``astronaut``), the heatmap hidden: the
kernel is estimated on the luminance and the deblurred layer is in colour.
"""

import sys
import time

import napari
import torch
from _screenshots import pump, wait  # this folder's helpers

from torchscope import deblur

PLUGIN = "napari-torchscope"


def main(out, sample="deblur_camera", name="napari-deblur.png"):
    torch.set_num_threads(1)
    viewer = napari.Viewer(title="napari-torchscope: deblur from good regions")
    viewer.window.resize(1500, 950)
    blurred, true_kernel = viewer.open_sample(PLUGIN, sample)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Deblur from good regions")
    widget.image.value = blurred
    widget.device.value = "cpu"
    assert widget.scorer.value == "cnn", "no shipped scorer weights"
    start = time.perf_counter()
    widget.run()
    wait(widget)
    seconds = time.perf_counter() - start
    kernel = viewer.layers[f"kernel ({blurred.name})"].data
    print(f"run: {seconds:.1f} s; kernel similarity to the true kernel: "
          f"{deblur.kernel_similarity(kernel, true_kernel.data):.3f}")
    viewer.layers.selection.active = viewer.layers[f"regions ({blurred.name})"]
    if blurred.rgb:  # the colour result under the rectangles, not the heatmap
        viewer.layers[f"score heatmap ({blurred.name})"].visible = False
    viewer.reset_view()
    pump(1.0)
    viewer.screenshot(f"{out}/{name}", canvas_only=False, flash=False)
    viewer.close()


if __name__ == "__main__":
    folder = sys.argv[1] if len(sys.argv) > 1 else "."
    main(folder)
    main(folder, "deblur_astronaut", "napari-deblur-rgb.png")

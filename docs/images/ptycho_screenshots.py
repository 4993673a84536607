"""Screenshot of the ptychography dock mid-run for docs/ptycho.md (needs a display: use Xvfb).

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/images/ptycho_screenshots.py docs/images

``napari-ptycho.png``: the object of the "Ptychography (simulated far-field scan)" sample
(192 x 192, ``make_ptycho_object``) scanned as in that sample (a 40 px disk probe with 2.5 rad
of quadratic phase, a 10 x 10 raster, 10 px steps, +-2 px integer jitter, 10^6 photons per
pattern, seed 0) but with a three-mode probe (occupancies 0.6, 0.25, 0.15); the dock
reconstructs it with three modes and the L-BFGS finish, torch on one thread on the CPU, and is
paused once a snapshot past iteration ``PAUSE_AT`` has arrived: object amplitude and phase, the
probe modes, the scan positions and the error curve, mid-run. Prints the iteration shown, its
data error, occupancies and object error, and the seconds to get there.
"""

import sys
import time

import napari
import torch
from _screenshots import pump, wait  # this folder's helpers

from torchscope import ptycho
from torchscope.napari._ptycho import data_layers
from torchscope.napari._sample_data import make_ptycho_object

PLUGIN = "napari-torchscope"
PAUSE_AT = 150


def main(out):
    torch.set_num_threads(1)
    viewer = napari.Viewer(title="napari-torchscope: ptychography")
    viewer.window.resize(1500, 950)
    obj = make_ptycho_object(192)
    probe = ptycho.make_probe(64, kind="disk", diameter_px=40, quadratic_phase_rad=2.5, modes=3,
                              occupancies=(0.6, 0.25, 0.15))
    positions = ptycho.raster_positions(10, 10, jitter_px=2, integer=True, rng=0)
    data = ptycho.simulate(obj, probe, positions, photons=1e6, rng=0)
    call = ("torchscope.ptycho.simulate(obj, torchscope.ptycho.make_probe(64, kind='disk', "
            "diameter_px=40, quadratic_phase_rad=2.5, modes=3, occupancies=(0.6, 0.25, 0.15)), "
            "torchscope.ptycho.raster_positions(10, 10, jitter_px=2, integer=True, rng=0), "
            "photons=1e6, rng=0)  # obj = torchscope.napari._sample_data.make_ptycho_object(192)")
    layers = [getattr(viewer, f"add_{kind}")(values, **kwargs)
              for values, kwargs, kind in data_layers(data, "three-mode", call=call,
                                                      function="torchscope.ptycho.simulate")]
    layer = layers[0]
    layer.visible = False
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Ptychography")
    widget.dataset.reset_choices()
    widget.dataset.value = layer
    for name, value in {"modes": 3, "finish": "lbfgs", "iterations": 200, "every": 10,
                        "device": "cpu"}.items():
        getattr(widget, name).value = value
    start = time.perf_counter()
    widget.run()
    while widget.last_snapshot is None or widget.last_snapshot.iteration < PAUSE_AT:
        pump(0.05)
    widget.pause()
    seconds = time.perf_counter() - start
    pump(1.5)
    snap = widget.last_snapshot
    roi = ptycho.lit_region(probe, positions, obj.shape)
    print(f"paused at iteration {snap.iteration} after {seconds:.1f} s; data error "
          f"{snap.error:.4f}; occupancies {', '.join(f'{o:.3f}' for o in snap.occupancies)}; "
          f"object NRMSE {ptycho.object_error(snap.obj, obj, roi):.4f}")
    viewer.dims.current_step = (0, *viewer.dims.current_step[1:])  # the strongest mode
    viewer.reset_view()
    pump(1.0)
    viewer.screenshot(f"{out}/napari-ptycho.png", canvas_only=False, flash=False)
    widget.stop()
    wait(widget)
    viewer.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")

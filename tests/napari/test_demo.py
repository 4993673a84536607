"""torchscope-demo --screenshot renders the whole window with the docks at work, then exits."""

import subprocess
import sys

from skimage import io


def test_demo_screenshot(tmp_path):
    # The demo runs in its own process, on the display pytest-xvfb started for the session.
    path = tmp_path / "demo.png"
    code = (
        "from torchscope.napari._demo import main; "
        f"raise SystemExit(main(['--screenshot', {str(path)!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr[-3000:]
    image = io.imread(path)
    assert image.ndim == 3 and image.shape[0] > 400 and image.shape[1] > 600
    rgb = image[..., :3].astype(float)
    assert rgb.std() > 10 and rgb.max() > 200  # not black, not blank
    h, w = rgb.shape[:2]
    canvas = rgb[2 * h // 5 : 3 * h // 5, 2 * w // 5 : 3 * w // 5]  # middle of the window
    assert canvas.std() > 5, "the canvas shows no data"

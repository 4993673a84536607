"""torchscope.deblur imports without torch, and its lazy table resolves."""

import subprocess
import sys

import pytest


def test_import_loads_no_torch(tmp_path):
    code = ("import sys, torchscope.deblur as d\nassert d.__all__\ndir(d)\n"
            "d.motion_kernel(11, rng=0)\nd.kernel_similarity([[1.0]], [[1.0]])\n"
            "assert 'torch' not in sys.modules, 'torch loaded'\n"
            "bad = {'napari', 'qtpy', 'magicgui', 'torchscope.filters', 'torchscope.ghost'}\n"
            "assert not bad & set(sys.modules), bad & set(sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr


def test_public_names_resolve():
    import torchscope.deblur as d

    for name in d.__all__:
        getattr(d, name)
    with pytest.raises(AttributeError, match="no_such"):
        d.no_such  # noqa: B018

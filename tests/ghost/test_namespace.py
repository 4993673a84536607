"""torchscope.ghost imports without torch, and its lazy table resolves."""

import subprocess
import sys

import pytest


def test_import_loads_no_torch(tmp_path):
    code = ("import sys, torchscope.ghost as g\nassert g.__all__\ndir(g)\n"
            "g.hadamard_patterns(8)\nassert 'torch' not in sys.modules\n"
            "assert not {'napari', 'qtpy', 'torchscope.filters'} & set(sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_public_names_resolve():
    import torchscope.ghost as g

    for name in g.__all__:
        getattr(g, name)
    with pytest.raises(AttributeError, match="no_such"):
        g.no_such  # noqa: B018

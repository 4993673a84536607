"""Import costs: napari reads every plugin at start-up, so importing torchscope must stay cheap.

- ``import torchscope, torchscope.backend, torchscope.filters`` loads neither torch nor any GUI
  package (napari, magicgui, Qt): science modules run headless and load torch lazily.
- ``import torchscope.napari`` and the modules that the manifest points to (widgets, readers,
  sample data) do not load torch: torch loads when a function computes.
- The first filter call does load torch (the lazy loading actually works).

Each check runs in a fresh interpreter, since this test process has torch loaded already.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUI = ["napari", "magicgui", "qtpy", "PyQt6", "PyQt5", "PySide6", "PySide2", "superqt", "vispy"]
TORCH = ["torch"]


def _loaded_after(code, tmp_path):
    """Run ``code`` in a fresh interpreter; return the top-level packages it left in sys.modules."""
    script = (
        code
        + "\nimport json, sys\n"
        + "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the repository root: import the installed package
        timeout=300,
    )
    assert proc.returncode == 0, f"{code!r} failed:\n{proc.stderr}"
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


SCIENCE = [
    name
    for name in ("filters", "ghost", "ptycho", "deblur", "alzheimer")
    if (ROOT / "src" / "torchscope" / name / "__init__.py").exists()
]


def test_science_imports_load_neither_torch_nor_gui(tmp_path):
    modules = ", ".join(["torchscope", "torchscope.backend", *(f"torchscope.{m}" for m in SCIENCE)])
    loaded = _loaded_after(f"import {modules}", tmp_path)
    heavy = sorted(loaded & set(TORCH + GUI))
    assert not heavy, f"importing {modules} loaded {heavy}"


@pytest.mark.parametrize("module", SCIENCE)
def test_science_namespace_loads_no_torch(module, tmp_path):
    # dir() and the public list must not trigger the lazy imports either; and a science
    # module never imports another one (ARCHITECTURE.md: what two share lives in backend)
    others = [f"torchscope.{m}" for m in SCIENCE if m != module]
    code = (
        f"import sys, torchscope.{module} as m\nassert m.__all__\ndir(m)\n"
        f"assert 'torch' not in sys.modules, 'the namespace loaded torch'\n"
        f"for name in m.__all__:\n    getattr(m, name)\n"
        f"bad = set({others!r}) & set(sys.modules)\nassert not bad, bad"
    )
    loaded = _loaded_after(code, tmp_path)
    assert not loaded & set(GUI), f"torchscope.{module}'s public names loaded {loaded & set(GUI)}"


def test_napari_side_loads_no_torch(tmp_path):
    loaded = _loaded_after("import torchscope.napari", tmp_path)
    assert "torch" not in loaded, "import torchscope.napari loaded torch"


def _manifest_modules():
    import yaml

    manifest = ROOT / "napari.yaml"
    if not manifest.exists():
        return []
    raw = yaml.safe_load(manifest.read_text())
    commands = (raw.get("contributions") or {}).get("commands") or []
    return sorted({c["python_name"].split(":")[0] for c in commands if c.get("python_name")})


_NO_MANIFEST = pytest.param(None, marks=pytest.mark.skip(reason="napari.yaml names no modules yet"))


@pytest.mark.parametrize("module", _manifest_modules() or [_NO_MANIFEST])
def test_manifest_modules_load_no_torch(module, tmp_path):
    loaded = _loaded_after(f"import {module}", tmp_path)
    assert "torch" not in loaded, (
        f"import {module} (named in napari.yaml) loaded torch; import torch inside the "
        "function that computes, or go through torchscope.filters' lazy attributes"
    )


def test_filter_call_loads_torch_lazily(tmp_path):
    code = """
import sys
import numpy as np
import torchscope.filters
assert "torch" not in sys.modules, "torch loaded before any call"
gaussian = torchscope.filters.gaussian
image = np.arange(64, dtype=np.float32).reshape(8, 8)
out = gaussian(image, 1.0)
assert "torch" in sys.modules, "a filter computed without torch?"
assert isinstance(out, np.ndarray) and out.shape == image.shape, (type(out), getattr(out, "shape", None))
assert np.isfinite(out).all()
"""
    assert "torch" in _loaded_after(code, tmp_path)


@pytest.mark.parametrize("module", SCIENCE)
def test_lazy_table_resolves(module):
    """Every public name of a science module resolves (catches typos in the lazy table)."""
    import importlib

    namespace = importlib.import_module(f"torchscope.{module}")
    missing = []
    for name in namespace.__all__:
        try:
            getattr(namespace, name)
        except Exception as exc:  # noqa: BLE001 - report every unresolvable name at once
            missing.append(f"{name}: {type(exc).__name__}: {exc}")
    assert not missing, "unresolvable public names:\n" + "\n".join(missing)
    with pytest.raises(AttributeError, match="no_such_name"):
        namespace.no_such_name  # noqa: B018

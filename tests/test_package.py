"""The package as napari and pip see it: the manifest, its symlink, and a wheel built from here.

(a) ``napari.yaml`` at the repository root is a valid npe2 manifest, the package's
    ``src/torchscope/napari.yaml`` is a relative symlink to it, and every ``python_name`` in it
    resolves to a callable (this catches typos that napari would only report when a menu is used).
(b) A wheel built offline from the repository holds the manifest as a real file with the same
    content, every module and data file of the package, the napari entry point, and no Qt binding
    among the runtime requirements.
(c) That wheel, installed on its own (``pip install --no-deps --target``), is discovered by npe2
    through its entry point and passes ``npe2 validate --imports napari-torchscope``.
"""

import email
import importlib
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "napari.yaml"
PKG = ROOT / "src" / "torchscope"
PKG_MANIFEST = PKG / "napari.yaml"
DIST_NAME = "napari-torchscope"

# Files of these kinds under src/torchscope must all ship in the wheel (code, the manifest, and
# later the weights and their model cards).
SHIPPED_SUFFIXES = {".py", ".pyi", ".yaml", ".safetensors", ".md", ".json", ".typed"}
QT_BINDINGS = {"pyqt5", "pyqt6", "pyside2", "pyside6"}
WHERE = (
    "import importlib.metadata as m, torchscope\n"
    "print(m.distribution('napari-torchscope').locate_file(''))\n"
    "print(torchscope.__file__)\n"
)


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _resolve(python_name):
    """Import ``"pkg.module:attr.sub"`` and return the object, as npe2 does."""
    module_name, _, attr_path = python_name.partition(":")
    obj = importlib.import_module(module_name)
    for part in attr_path.split("."):
        obj = getattr(obj, part)
    return obj


def _walk(node, key):
    """Every value stored under ``key`` anywhere in a nested dict/list structure."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from _walk(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, key)


# --------------------------------------------------------------------------------------------
# (a) the manifest in the repository


def test_manifest_is_valid_npe2():
    from npe2 import PluginManifest

    pm = PluginManifest.from_file(MANIFEST)
    assert pm.name == DIST_NAME == _pyproject()["project"]["name"]
    assert pm.contributions.commands, "the manifest declares no commands"


def test_package_manifest_is_relative_symlink_to_root_manifest():
    assert PKG_MANIFEST.is_symlink(), f"{PKG_MANIFEST} must be a symlink to ../../napari.yaml"
    target = os.readlink(PKG_MANIFEST)
    assert not os.path.isabs(target), f"symlink target {target!r} must be relative"
    assert MANIFEST.is_file(), f"{MANIFEST} is missing: the symlink dangles"
    assert PKG_MANIFEST.resolve() == MANIFEST.resolve()
    assert PKG_MANIFEST.read_bytes() == MANIFEST.read_bytes()


def test_manifest_python_names_resolve_to_callables():
    from npe2 import PluginManifest

    pm = PluginManifest.from_file(MANIFEST)
    problems = []
    for cmd in pm.contributions.commands or []:
        if not cmd.python_name:
            continue
        try:
            obj = _resolve(cmd.python_name)
        except Exception as exc:  # noqa: BLE001 - report every broken entry at once
            problems.append(f"{cmd.id}: {cmd.python_name}: {type(exc).__name__}: {exc}")
            continue
        if not callable(obj):
            problems.append(f"{cmd.id}: {cmd.python_name} is not callable ({type(obj)})")
    assert not problems, "broken python_name entries:\n" + "\n".join(problems)


def test_manifest_references_declared_commands_and_submenus():
    raw = yaml.safe_load(MANIFEST.read_text())
    contributions = raw.get("contributions") or {}
    commands = {c["id"] for c in contributions.get("commands") or []}
    submenus = {s["id"] for s in contributions.get("submenus") or []}
    unknown = sorted({c for c in _walk(contributions, "command") if isinstance(c, str)} - commands)
    assert not unknown, f"contributions refer to undeclared commands: {unknown}"
    unknown_sub = sorted(
        {s for s in _walk(contributions.get("menus") or {}, "submenu") if isinstance(s, str)}
        - submenus
    )
    assert not unknown_sub, f"menus refer to undeclared submenus: {unknown_sub}"


def test_pyproject_entry_points_resolve():
    project = _pyproject()["project"]
    eps = project["entry-points"]["napari.manifest"]
    assert eps == {DIST_NAME: "torchscope:napari.yaml"}
    for name, target in project.get("scripts", {}).items():
        assert callable(_resolve(target)), f"console script {name} -> {target} is not callable"


# --------------------------------------------------------------------------------------------
# (b) and (c): a wheel built from the repository


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """Build the wheel once, offline (``--no-isolation``: the build backend must be installed)."""
    for module, why in [
        ("build", "the 'build' package is not installed (it is in the test extra)"),
        (
            "hatchling",
            (
                "hatchling is not installed; it is needed to build the wheel offline "
                "(python -m build --no-isolation) and belongs in the test extra"
            ),
        ),
    ]:
        if importlib.util.find_spec(module) is None:
            pytest.skip(why)
    outdir = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(outdir),
            str(ROOT),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"wheel build failed:\n{proc.stdout}\n{proc.stderr}"
    wheels = list(outdir.glob("*.whl"))
    assert len(wheels) == 1, f"expected one wheel, got {wheels}"
    return wheels[0]


@pytest.mark.slow
def test_wheel_contents(wheel):
    with zipfile.ZipFile(wheel) as zf:
        infos = {info.filename: info for info in zf.infolist()}
        names = set(infos)

        # The manifest is a real file (not a symlink entry) with the root file's content.
        assert "torchscope/napari.yaml" in names, "the manifest is missing from the wheel"
        mode = infos["torchscope/napari.yaml"].external_attr >> 16
        assert mode & 0o170000 != 0o120000, "the manifest is stored as a symlink"
        assert zf.read("torchscope/napari.yaml") == MANIFEST.read_bytes()

        # Every module and data file of the package ships.
        expected = {
            "torchscope/" + p.relative_to(PKG).as_posix()
            for p in PKG.rglob("*")
            if p.is_file() and p.suffix in SHIPPED_SUFFIXES and "__pycache__" not in p.parts
        }
        for must in (
            "__init__.py",
            "backend/__init__.py",
            "filters/__init__.py",
            "napari/__init__.py",
        ):
            expected.add(f"torchscope/{must}")
        missing = sorted(expected - names)
        assert not missing, f"files missing from the wheel: {missing}"
        assert not [n for n in names if n.endswith(".pyc")], "compiled files in the wheel"

        dist_info = [n for n in names if re.match(r"napari_torchscope-[^/]+\.dist-info/", n)]
        assert dist_info, f"no napari_torchscope-*.dist-info in the wheel: {sorted(names)[:20]}"
        prefix = dist_info[0].split("/")[0]

        entry_points = zf.read(f"{prefix}/entry_points.txt").decode()
        assert re.search(
            r"^\[napari\.manifest\]\s*\n\s*napari-torchscope\s*=\s*torchscope:napari\.yaml\s*$",
            entry_points,
            re.MULTILINE,
        ), entry_points

        meta = email.message_from_bytes(zf.read(f"{prefix}/METADATA"))
        assert meta["Name"] == DIST_NAME
        assert "Framework :: napari" in meta.get_all("Classifier", [])
        runtime = [r for r in meta.get_all("Requires-Dist", []) if "extra ==" not in r]
        qt = [
            r
            for r in runtime
            if re.split(r"[\s\[<>=!~;(]", r, maxsplit=1)[0].lower() in QT_BINDINGS
        ]
        assert not qt, f"Qt bindings among the runtime requirements: {qt}"


@pytest.mark.slow
def test_wheel_is_discovered_by_npe2(wheel, tmp_path):
    target = tmp_path / "site"
    cwd = tmp_path / "cwd"  # not the repository, so nothing resolves from the source tree
    cwd.mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(wheel),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"pip install --target failed:\n{proc.stdout}\n{proc.stderr}"

    env = dict(os.environ, PYTHONPATH=str(target), PYTHONNOUSERSITE="1")
    # The wheel's copy must win over the editable install of the development environment.
    where = subprocess.run(
        [sys.executable, "-c", WHERE],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )
    assert where.returncode == 0, where.stderr
    dist_location, module_file = where.stdout.split()
    assert Path(dist_location).resolve() == target.resolve(), where.stdout
    assert Path(module_file).resolve().is_relative_to(target.resolve()), where.stdout

    proc = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "--imports", DIST_NAME],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"npe2 validate failed:\n{output}"
    assert "✔" in output, output

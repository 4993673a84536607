"""napari.yaml against the table of operations, and the docks and samples opened through napari."""

import importlib
import subprocess
import sys

import numpy as np
import pytest
from npe2 import PluginManifest

from torchscope.napari._filters import GROUPS, OPERATIONS, FilterWidget, group_operations

PLUGIN = "napari-torchscope"
# Lecture group -> napari's contributable menu that holds its submenu.
MENU_OF_GROUP = {
    "denoising": "napari/layers/filter",
    "background": "napari/layers/filter",
    "edges": "napari/layers/filter",
    "binarization": "napari/layers/segment",
    "morphology": "napari/layers/segment",
}


@pytest.fixture(scope="module")
def manifest():
    return PluginManifest.from_distribution(PLUGIN)  # as installed, through its entry point


def _command_classes(manifest):
    """command id -> the object its python_name points to (imported as npe2 does)."""
    out = {}
    for command in manifest.contributions.commands:
        module, _, name = command.python_name.partition(":")
        out[command.id] = getattr(importlib.import_module(module), name)
    return out


def test_one_widget_per_operation_and_per_group(manifest):
    classes = _command_classes(manifest)
    filter_commands = {
        c.id for c in manifest.contributions.commands
        if c.python_name.startswith("torchscope.napari._filters:")
    }
    widgets = {
        w.display_name: classes[w.command]
        for w in manifest.contributions.widgets
        if w.command in filter_commands
    }
    assert all(issubclass(cls, FilterWidget) for cls in widgets.values())
    expected = {OPERATIONS[name].title: (name,) for name in OPERATIONS}
    expected.update({GROUPS[g]: group_operations(g) for g in GROUPS})
    assert {name: cls.operations for name, cls in widgets.items()} == expected


def test_menus_follow_the_lecture_groups(manifest):
    classes = _command_classes(manifest)
    menus = manifest.contributions.menus
    labels = {s.id: s.label for s in manifest.contributions.submenus}
    for group, menu in MENU_OF_GROUP.items():
        [submenu] = [
            item.submenu
            for item in menus[menu]
            if getattr(item, "submenu", None) and labels[item.submenu] == GROUPS[group]
        ]
        docks = [classes[item.command].operations for item in menus[submenu]]
        assert docks[0] == group_operations(group)  # the group dock first, then one per operation
        assert sorted(docks[1:]) == sorted((name,) for name in group_operations(group))


def test_docks_open_through_napari(viewer):
    for name in GROUPS.values():
        _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=True)
        assert isinstance(widget, FilterWidget)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Laplacian of Gaussian")
    assert widget.operations == ("laplacian_of_gaussian",)


@pytest.mark.parametrize(
    ("key", "shape", "scale"),
    [("nuclei_2d", (384, 384), (0.5, 0.5)), ("nuclei_3d", (40, 160, 160), (2.0, 0.5, 0.5))],
)
def test_sample_data_load_through_napari(viewer, key, shape, scale):
    [layer] = viewer.open_sample(PLUGIN, key)
    assert layer.data.shape == shape and layer.data.dtype == np.uint16
    np.testing.assert_array_equal(layer.scale, scale)
    assert {f"{u:~P}" for u in layer.units} == {"µm"}
    # fluorescence-like: a camera offset, bright objects on a dimmer, noisy background
    data = layer.data.astype(float)
    assert 80 < np.percentile(data, 1) < np.median(data) < np.percentile(data, 99.5)
    assert np.percentile(data, 99.5) > 1.5 * np.median(data)
    [again] = viewer.open_sample(PLUGIN, key)
    np.testing.assert_array_equal(again.data, layer.data)  # generated, deterministically


def test_modules_napari_loads_do_not_import_torch():
    code = (
        "import sys, torchscope.napari._filters, torchscope.napari._sample_data, "
        "torchscope.napari._workers\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert 'torchscope.filters._core' not in sys.modules, 'filters imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

"""Fixtures for the napari docks: a real viewer (napari's ``make_napari_viewer``) under Xvfb."""

import numpy as np
import pytest


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


@pytest.fixture
def notifications():
    """A function returning the napari notifications dispatched since the test started."""
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)
    return lambda: notification_manager.records[start:]


@pytest.fixture
def wait_until_done(qtbot):
    """A function that waits until a widget's worker has finished (its layers are written)."""

    def wait(widget, timeout=30_000):
        qtbot.waitUntil(lambda: widget.worker is None, timeout=timeout)

    return wait


@pytest.fixture
def stack():
    """A small 3D float32 image with structure: two smooth blobs plus noise."""
    rng = np.random.default_rng(7)
    z, y, x = np.meshgrid(*(np.linspace(-1, 1, n) for n in (8, 40, 36)), indexing="ij")
    blobs = np.exp(-((z - 0.2) ** 2 + (y + 0.3) ** 2 + (x - 0.1) ** 2) / 0.1)
    blobs += 0.7 * np.exp(-((z + 0.3) ** 2 + (y - 0.4) ** 2 + (x + 0.4) ** 2) / 0.05)
    return (blobs + 0.1 * rng.standard_normal(blobs.shape)).astype(np.float32)

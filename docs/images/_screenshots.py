"""Helpers shared by the screenshot scripts in this folder: let Qt draw, wait for a dock's run."""

import time

from qtpy.QtWidgets import QApplication


def pump(seconds=0.3):
    """Process Qt events for ``seconds`` (layers, progress bars and docks redraw)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.01)


def wait(widget, timeout=3600):
    """Wait until ``widget``'s thread worker has finished; returns the seconds it took."""
    start = time.monotonic()
    while widget.worker is not None:
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{type(widget).__name__} did not finish in {timeout} s")
        pump(0.05)
    seconds = time.monotonic() - start
    pump(0.5)
    return seconds

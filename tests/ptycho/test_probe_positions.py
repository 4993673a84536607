"""Probes (shapes, power, soft edges, phase, orthogonal modes) and scan patterns."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from torchscope import ptycho
from torchscope.ptycho._probe import orthogonalize_modes


def test_import_loads_no_torch_and_names_resolve(tmp_path):
    code = ("import sys, torchscope.ptycho as p\nassert p.__all__\ndir(p)\n"
            "p.raster_positions(3, 5.0)\np.make_probe(16)\nassert 'torch' not in sys.modules\n"
            "assert not {'napari', 'qtpy', 'torchscope.ghost', 'torchscope.filters'} & set(sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    for name in ptycho.__all__:
        getattr(ptycho, name)


@pytest.mark.parametrize("kind", ["disk", "gaussian", "zone_plate"])
def test_probe_shape_power_and_centre(kind):
    p = ptycho.make_probe((48, 64), kind=kind, diameter_px=20)
    assert p.shape == (48, 64) and p.dtype == np.complex64
    assert np.sum(np.abs(p) ** 2) == pytest.approx(1.0, rel=1e-5)
    power = np.abs(p) ** 2
    cy = np.sum(power * np.arange(48)[:, None]) / power.sum()
    cx = np.sum(power * np.arange(64)[None, :]) / power.sum()
    assert cy == pytest.approx(24, abs=0.6) and cx == pytest.approx(32, abs=0.6)
    # most of the power lies within the nominal spot (zone plate: within 1.5 diameters)
    r = np.hypot(*np.meshgrid(np.arange(48) - 24, np.arange(64) - 32, indexing="ij"))
    inside = power[r <= (15 if kind == "zone_plate" else 12)].sum()
    assert inside > 0.75


def test_disk_edge_and_quadratic_phase():
    p = ptycho.make_probe(64, kind="disk", diameter_px=40, edge_px=4.0, quadratic_phase_rad=2.5)
    amp = np.abs(p[32]) / np.abs(p[32, 32])
    # the 10 %-90 % edge is 4 px wide and centred on the radius 20
    x = np.arange(64) - 32
    right = amp[32:]
    x10 = np.interp(0.1, right[::-1], x[32:][::-1])
    x90 = np.interp(0.9, right[::-1], x[32:][::-1])
    assert x10 - x90 == pytest.approx(4.0, abs=0.3)
    assert (x10 + x90) / 2 == pytest.approx(20.0, abs=0.3)
    # quadratic phase: 2.5 rad at the rim, 2.5 / 4 at half the radius
    phase = np.angle(p[32] * np.conj(p[32, 32]))
    assert phase[32 + 10] == pytest.approx(2.5 / 4, abs=1e-4)
    assert phase[32 + 20] == pytest.approx(2.5, abs=1e-4)
    hard = ptycho.make_probe(64, kind="disk", diameter_px=40, edge_px=0)
    assert np.count_nonzero(hard) == np.count_nonzero(np.hypot(*np.meshgrid(x, x)) <= 20)


@pytest.mark.parametrize("kind", ["disk", "zone_plate"])
def test_modes_are_orthogonal_with_the_requested_occupancies(kind):
    modes = ptycho.make_probe(32, kind=kind, diameter_px=16, modes=3, occupancies=(6, 2.5, 1.5))
    assert modes.shape == (3, 32, 32)
    flat = modes.reshape(3, -1).astype(np.complex128)
    gram = flat.conj() @ flat.T
    np.testing.assert_allclose(np.diag(gram).real, [0.6, 0.25, 0.15], rtol=1e-5)
    off = gram - np.diag(np.diag(gram))
    assert np.abs(off).max() < 1e-6
    default = ptycho.make_probe(32, modes=4)
    power = np.sum(np.abs(default) ** 2, axis=(1, 2))
    np.testing.assert_allclose(power, np.array([8, 4, 2, 1]) / 15, rtol=1e-5)


def test_orthogonalize_modes_keeps_the_incoherent_sum(rng):
    modes = torch.as_tensor(rng.normal(size=(3, 16, 16)) + 1j * rng.normal(size=(3, 16, 16)))
    ortho, occ = orthogonalize_modes(modes)
    flat = ortho.reshape(3, -1)
    gram = (flat.conj() @ flat.T).numpy()
    assert np.abs(gram - np.diag(np.diag(gram))).max() < 1e-9
    power = np.diag(gram).real
    assert np.all(np.diff(power) <= 0)  # strongest first
    np.testing.assert_allclose(occ.numpy(), power / power.sum())
    before = (modes.abs() ** 2).sum(0)
    after = (ortho.abs() ** 2).sum(0)
    torch.testing.assert_close(after, before)


def test_probe_errors():
    with pytest.raises(ValueError, match="kind"):
        ptycho.make_probe(32, kind="square")
    with pytest.raises(ValueError, match="shape"):
        ptycho.make_probe((32, 2))
    with pytest.raises(ValueError, match="diameter_px"):
        ptycho.make_probe(32, diameter_px=-3)
    with pytest.raises(ValueError, match="occupancies"):
        ptycho.make_probe(32, modes=2, occupancies=(1.0, 0.0))
    with pytest.raises(ValueError, match="modes"):
        ptycho.make_probe(32, modes=0)
    with pytest.raises(ValueError, match="stop_fraction"):
        ptycho.make_probe(32, kind="zone_plate", stop_fraction=1.0)


def test_raster_positions_grid_jitter_and_integers():
    pos = ptycho.raster_positions((3, 4), (10.0, 5.0))
    assert pos.shape == (12, 2)
    np.testing.assert_allclose(pos.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.unique(pos[:, 0]), [-10, 0, 10])
    np.testing.assert_allclose(np.unique(pos[:, 1]), [-7.5, -2.5, 2.5, 7.5])
    jit = ptycho.raster_positions(10, 10, jitter_px=2, rng=1)
    delta = jit - ptycho.raster_positions(10, 10)
    assert np.abs(delta).max() <= 2 and np.abs(delta).max() > 1.5
    np.testing.assert_array_equal(jit, ptycho.raster_positions(10, 10, jitter_px=2, rng=1))
    whole = ptycho.raster_positions(10, 10, jitter_px=2, integer=True, rng=1)
    assert np.all(whole == np.round(whole))
    assert set(np.unique(whole - np.round(ptycho.raster_positions(10, 10)))) <= {-2, -1, 0, 1, 2}
    # whole pixels keep the step asked for, also where the grid falls on half pixels (numpy's
    # rounding of halves to even made steps of 6, 4, 6 for 5 px)
    for grid, step in ((4, 5), (4, 3), (2, 3), (5, 7)):
        rows = np.unique(ptycho.raster_positions(grid, step, integer=True)[:, 0])
        np.testing.assert_array_equal(np.diff(rows), step)


@pytest.mark.parametrize("shape, probe, step, jitter", [
    ((48, 48), 16, 6.0, 0.5), ((100, 70), (20, 12), (7.0, 5.0), (2.0, 0.0)), ((30, 30), 28, 4.0, 0)])
def test_raster_grid_is_the_largest_that_keeps_the_probe_inside(shape, probe, step, jitter):
    # every window, at the largest jitter, lies inside the object with a pixel to spare; one
    # more position along an axis would not (unless the grid is the minimum, 1)
    def fits(grid):
        extent = np.array([(g - 1) * s for g, s in zip(grid, np.broadcast_to(step, 2))])
        need = extent + np.broadcast_to(probe, 2) + 2 * np.broadcast_to(jitter, 2) + 2
        return bool(np.all(need <= np.array(shape)))

    grid = ptycho.raster_grid(shape, probe, step, jitter_px=jitter)
    assert all(g >= 1 for g in grid)
    assert fits(grid) or grid == (1, 1)
    for axis in (0, 1):
        more = list(grid)
        more[axis] += 1
        assert not fits(more)
    pos = ptycho.raster_positions(grid, step, jitter_px=jitter, rng=0)
    half = np.array(np.broadcast_to(probe, 2)) / 2
    centre = np.array(shape) // 2
    assert np.all(pos + centre - half >= 1 - 1e-9) or grid == (1, 1)
    assert np.all(pos + centre + half <= np.array(shape) - 1 + 1e-9) or grid == (1, 1)
    with pytest.raises(ValueError, match="probe_px"):
        ptycho.raster_grid(shape, 0, step)


def test_fermat_spiral_density():
    pos = ptycho.fermat_spiral_positions(400, 6.0)
    assert pos.shape == (400, 2)
    r = np.hypot(*pos.T)
    # a disk of radius R holds about pi R^2 / step^2 points
    inner = np.count_nonzero(r <= 50.0)
    assert inner == pytest.approx(np.pi * 50.0 ** 2 / 36.0, rel=0.05)
    # no two points closer than half the step
    d = np.hypot(*(pos[:, None] - pos[None]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    assert d.min() > 3.0


def test_position_errors():
    with pytest.raises(ValueError, match="grid"):
        ptycho.raster_positions(0, 5.0)
    with pytest.raises(ValueError, match="step_px"):
        ptycho.raster_positions(3, -1.0)
    with pytest.raises(ValueError, match="jitter_px"):
        ptycho.raster_positions(3, 1.0, jitter_px=-1)
    with pytest.raises(ValueError, match="n must"):
        ptycho.fermat_spiral_positions(0, 5.0)
    with pytest.raises(ValueError, match="step_px must be a real number"):
        ptycho.fermat_spiral_positions(5, (5, 7))  # one spacing, not a pair

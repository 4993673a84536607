"""The virtual experiment: centring, energy, photons, sub-pixel positions, errors."""

import numpy as np
import pytest

from torchscope import ptycho


def _object(rng, shape=(64, 64)):
    return (0.5 + 0.5 * rng.random(shape)) * np.exp(1j * rng.uniform(-1, 1, shape))


def test_patterns_are_centred_and_conserve_energy(rng, device):
    probe = ptycho.make_probe(32, kind="gaussian", diameter_px=10)
    flat = ptycho.simulate(np.ones((48, 48)), probe, np.zeros((1, 2)), device=device)
    p = flat.patterns[0]
    assert p.shape == (32, 32) and p.dtype == np.float32
    # a flat object and a real, centred Gaussian probe: the zero frequency is in the middle
    assert np.unravel_index(np.argmax(p), p.shape) == (16, 16)
    obj = _object(rng)
    pos = ptycho.raster_positions(3, 8.0)
    data = ptycho.simulate(obj, probe, pos, device=device)
    # unitary propagation: each pattern holds the exit wave's energy
    for j, (y, x) in enumerate(np.round(pos).astype(int) + 32 - 16):
        exit_wave = probe * obj[y:y + 32, x:x + 32]
        assert data.patterns[j].sum() == pytest.approx(np.sum(np.abs(exit_wave) ** 2), rel=1e-5)
    assert isinstance(data, ptycho.PtychoData)
    assert data.geometry.detector_shape == (32, 32)
    np.testing.assert_array_equal(data.positions_px, pos)


def test_modes_add_incoherently(rng):
    modes = ptycho.make_probe(32, diameter_px=14, modes=2, occupancies=(0.7, 0.3))
    obj, pos = _object(rng), ptycho.raster_positions(2, 6.0)
    both = ptycho.simulate(obj, modes, pos).patterns
    each = [ptycho.simulate(obj, m, pos).patterns for m in modes]
    np.testing.assert_allclose(both, each[0] + each[1], rtol=1e-4, atol=1e-9)


def test_subpixel_position_equals_translated_object(rng):
    # a band-limited, periodic object translated by a sub-pixel amount (Fourier shift) must give
    # the patterns of the original object seen from the opposite sub-pixel position
    n = 96
    spectrum = np.zeros((n, n), complex)
    spectrum[:12, :12] = rng.normal(size=(12, 12)) + 1j * rng.normal(size=(12, 12))
    obj = np.exp(1j * np.real(np.fft.ifft2(spectrum)) * 40)
    shift = np.array([0.37, -0.62])
    f = np.fft.fftfreq(n)
    moved = np.fft.ifft2(np.fft.fft2(obj) * np.exp(-2j * np.pi * (f[:, None] * shift[0] + f[None] * shift[1])))
    probe = ptycho.make_probe(32, diameter_px=14, edge_px=3)
    pos = np.array([[0.0, 0.0], [5.0, -3.0]])
    a = ptycho.simulate(moved, probe, pos).patterns
    b = ptycho.simulate(obj, probe, pos - shift).patterns
    np.testing.assert_allclose(a, b, rtol=0, atol=2e-4 * a.max())
    # and a whole-pixel position is a plain window of the object
    c = ptycho.simulate(obj, probe, pos + [1.0, 2.0]).patterns
    d = ptycho.simulate(np.roll(obj, (-1, -2), axis=(0, 1)), probe, pos).patterns
    np.testing.assert_allclose(c, d, rtol=1e-5, atol=1e-7 * c.max())


def test_photons_and_seeded_poisson_noise(rng):
    probe = ptycho.make_probe(32, diameter_px=14)
    obj, pos = _object(rng), ptycho.raster_positions(3, 6.0)
    a = ptycho.simulate(obj, probe, pos, photons=1e5, rng=7)
    b = ptycho.simulate(obj, probe, pos, photons=1e5, rng=7)
    c = ptycho.simulate(obj, probe, pos, photons=1e5, rng=8)
    np.testing.assert_array_equal(a.patterns, b.patterns)
    assert not np.array_equal(a.patterns, c.patterns)
    assert np.all(a.patterns == np.round(a.patterns))
    assert a.patterns.sum(axis=(1, 2)).mean() == pytest.approx(1e5, rel=0.01)
    clean = ptycho.simulate(obj, probe, pos).patterns * a.metadata["scale"]
    # Poisson: the variance of the counts equals their mean
    resid = (a.patterns - clean)[clean > 50]
    assert np.var(resid) / np.mean(clean[clean > 50]) == pytest.approx(1.0, abs=0.1)


def test_simulate_errors(rng):
    probe = ptycho.make_probe(32)
    obj = _object(rng)
    with pytest.raises(ValueError, match="leaves the 64x64 object"):
        ptycho.simulate(obj, probe, [[20.0, 0.0]])
    with pytest.raises(ValueError, match="photons"):
        ptycho.simulate(obj, probe, [[0.0, 0.0]], photons=-1)
    with pytest.raises(ValueError, match=r"positions must be an array of shape \(P, 2\)"):
        ptycho.simulate(obj, probe, [0.0, 0.0])
    with pytest.raises(ValueError, match="detector_shape"):
        geometry = ptycho.Geometry(energy_ev=700.0, detector_shape=(16, 16))
        ptycho.simulate(obj, probe, [[0.0, 0.0]], geometry=geometry)
    with pytest.raises(ValueError, match="obj must be a 2-D"):
        ptycho.simulate(obj[None], probe, [[0.0, 0.0]])
    with pytest.raises(ValueError, match="probe holds NaN"):
        ptycho.simulate(obj, np.full((32, 32), np.nan), [[0.0, 0.0]])


def test_chunks_do_not_change_the_patterns(monkeypatch):
    # the patterns are computed and counted _CHUNK positions at a time (memory): the Poisson
    # draws must be those of one call over all patterns, in the same order
    from torchscope.ptycho import _simulate

    rng = np.random.default_rng(1)
    obj = np.exp(1j * rng.uniform(0, 1, (48, 48))).astype(np.complex64)
    probe = ptycho.make_probe(16, diameter_px=8, edge_px=2, modes=2)
    pos = ptycho.raster_positions(5, 3.0, jitter_px=0.7, rng=2)
    monkeypatch.setattr(_simulate, "_CHUNK", 10_000)
    once = ptycho.simulate(obj, probe, pos, photons=1e5, rng=3).patterns
    clean = ptycho.simulate(obj, probe, pos).patterns
    monkeypatch.setattr(_simulate, "_CHUNK", 4)
    np.testing.assert_array_equal(ptycho.simulate(obj, probe, pos, photons=1e5, rng=3).patterns,
                                  once)
    np.testing.assert_array_equal(ptycho.simulate(obj, probe, pos).patterns, clean)

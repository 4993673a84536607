"""The engines: the paper's update rules, recovery of known truth, refinement, snapshots, errors.

Small problems only (a 72 x 72 object, 24 x 24 probe, 25 positions), so the module runs in a
few seconds.
"""

import dataclasses

import numpy as np
import pytest
from skimage import data

from torchscope import ptycho
from torchscope.ptycho import _engines


def _smooth_object(rng, n=72):
    """A band-limited complex object with amplitude in [0.6, 1] and phase in about [-1, 1]."""
    def smooth():
        spectrum = np.zeros((n, n), complex)
        spectrum[:10, :10] = rng.normal(size=(10, 10)) + 1j * rng.normal(size=(10, 10))
        field = np.real(np.fft.ifft2(spectrum))
        return (field - field.min()) / (field.max() - field.min())
    return (0.6 + 0.4 * smooth()) * np.exp(1j * (2 * smooth() - 1))


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(3)
    obj = _smooth_object(rng)
    probe = ptycho.make_probe(24, diameter_px=14, edge_px=3, quadratic_phase_rad=1.5)
    pos = ptycho.raster_positions(5, 4.0, jitter_px=1, integer=True, rng=1)
    data = ptycho.simulate(obj, probe, pos)
    roi = ptycho.lit_region(probe, pos, obj.shape)
    return obj, probe, pos, data, roi


def _reference_mrpie(data, probe, obj, orders, alpha_obj, alpha_probe, beta, gamma):
    """Sequential M-rPIE, written from the paper's equations 5-7 in numpy (complex128)."""
    amps = np.sqrt(np.fft.ifftshift(data.patterns.astype(np.float64), axes=(-2, -1)))
    P = np.array(probe, dtype=np.complex128).reshape(-1, *data.patterns.shape[1:])
    O = np.array(obj, dtype=np.complex128)
    n = P.shape[1]
    corner = np.round(data.positions_px + (np.array(O.shape) // 2 - n // 2)).astype(int)
    for order in orders:
        for j in order:
            y, x = corner[j]
            o = O[y:y + n, x:x + n].copy()
            psi = P * o
            far = np.fft.fft2(psi, norm="ortho")
            inten = np.sum(np.abs(far) ** 2, axis=0)
            corrected = far * amps[j] / np.sqrt(inten + 1e-30)                      # eq. 7
            dpsi = np.fft.ifft2(corrected, norm="ortho") - psi
            o2 = np.abs(o) ** 2
            new_P = P + alpha_probe * dpsi * o.conj() / (beta * o2.max() + (1 - beta) * o2)  # eq. 5
            w = np.sum(np.abs(P) ** 2, axis=0)
            O[y:y + n, x:x + n] = o + alpha_obj * np.sum(dpsi * P.conj(), axis=0) / (
                gamma * w.max() + (1 - gamma) * w)                                  # eq. 6
            P = new_P
    return O, P


def _visits(monkeypatch):
    """Record the order in which the engine visits single positions."""
    seen = []
    original = _engines._Engine._batch

    def spy(self, g, refine):
        seen.extend(int(i) for i in self.batches[g].cpu())
        return original(self, g, refine)

    monkeypatch.setattr(_engines._Engine, "_batch", spy)
    return seen


@pytest.mark.parametrize("beta, gamma", [(0.7, 0.3), (1.0, 1.0)])
def test_sequential_engine_is_the_papers_equations(problem, monkeypatch, beta, gamma):
    obj, _, pos, data, _ = problem
    modes = ptycho.make_probe(24, diameter_px=12, modes=2, occupancies=(0.8, 0.2))
    start = 0.8 * modes * np.sqrt(np.mean(data.patterns.sum(axis=(1, 2))))
    seen = _visits(monkeypatch)
    result = ptycho.reconstruct(data, iterations=3, engine="rpie", beta=beta, gamma=gamma,
                                alpha_obj=0.9, alpha_probe=0.8, batch_size=1, probe=start,
                                obj=np.ones_like(obj), seed=4, device="cpu")
    orders = [seen[i:i + len(pos)] for i in range(0, 3 * len(pos), len(pos))]
    assert all(sorted(o) == list(range(len(pos))) for o in orders)
    assert orders[0] != orders[1]  # a new random order each iteration
    O, P = _reference_mrpie(data, start, np.ones_like(obj), orders, 0.9, 0.8, beta, gamma)
    np.testing.assert_allclose(result.obj, O, rtol=0, atol=2e-4 * np.abs(O).max())
    # the snapshot's modes are orthogonalised: compare the (mode-mixing invariant) coherence
    # matrix sum_p P_p P_p^H
    def rho(m):
        flat = m.reshape(len(m), -1)
        return flat.T @ flat.conj()

    np.testing.assert_allclose(rho(result.probe_modes), rho(P), rtol=0, atol=2e-4 * np.abs(rho(P)).max())


def test_rpie_with_beta_gamma_one_is_epie(problem):
    data = problem[3]
    common = {"iterations": 4, "modes": 2, "seed": 1, "device": "cpu"}
    for batch_size in (1, None):
        a = ptycho.reconstruct(data, engine="epie", batch_size=batch_size, **common)
        b = ptycho.reconstruct(data, engine="rpie", beta=1.0, gamma=1.0, batch_size=batch_size, **common)
        np.testing.assert_array_equal(a.obj, b.obj)
        np.testing.assert_array_equal(a.probe_modes, b.probe_modes)
        assert a.options["beta"] == a.options["gamma"] == 1.0


@pytest.mark.parametrize("engine", ["rpie", "epie"])
def test_recovers_the_truth(problem, engine, device):
    obj, probe, _, data, roi = problem
    result = ptycho.reconstruct(data, iterations=150, engine=engine, seed=0, device=device)
    assert ptycho.object_error(result.obj, obj, roi) < 0.05
    assert result.errors[-1] < 0.2 * result.errors[0]
    # the probe too, up to the global factor that object and probe trade
    p, q = result.probe_modes[0], probe
    c = np.vdot(p, q) / np.vdot(p, p)
    assert np.linalg.norm(q - c * p) / np.linalg.norm(q) < 0.1


def test_long_runs_settle_instead_of_underflowing():
    """The halved rates went on halving at every stall until they underflowed float32 and
    the run failed (iteration 1415 of this problem); Continue then failed at once."""
    rng = np.random.default_rng(0)
    amp = 0.6 + 0.4 * rng.random((48, 48))
    probe = ptycho.make_probe(16, kind="disk", diameter_px=9.0, quadratic_phase_rad=2.5)
    pos = ptycho.raster_positions(5, 6.0, jitter_px=1.0, rng=0)
    data = ptycho.simulate(amp.astype(np.complex64), probe, pos, photons=1e6, rng=0)
    result = ptycho.reconstruct(data, iterations=2000, seed=0, device="cpu")
    assert result.state["step_scale"] == _engines.AUTO_MIN_STEP
    assert np.isfinite(result.obj).all() and np.all(np.diff(result.errors[-500:]) <= 1e-7)
    more = ptycho.reconstruct(data, start=result, iterations=5, device="cpu")
    assert more.iteration == 2005


def test_divergence_with_several_modes_is_a_divergence_error():
    """With several modes the probe's orthogonalisation met the NaN first: torch's eigh raised
    its own LinAlgError instead of the documented DivergenceError."""
    obj = np.exp(1j * np.random.default_rng(0).uniform(0, 1, (128, 128)))
    probe = ptycho.make_probe(32, diameter_px=16, quadratic_phase_rad=2.0)
    pos = ptycho.raster_positions(6, 6, jitter_px=1.5, rng=0)
    data = ptycho.simulate(obj, probe, pos, photons=1e6, rng=0)
    for batch_size, every in ((36, 60), (1, 1)):
        with pytest.raises(_engines.DivergenceError, match="diverged"):
            for _ in ptycho.iterate(data, iterations=120, every=every, modes=3,
                                    batch_size=batch_size, alpha_obj=2, alpha_probe=2,
                                    beta=0.01, gamma=0.01, seed=0):
                pass


def test_continuing_from_a_snapshot_with_other_probe_modes_uses_them(problem):
    """The snapshot's internal state brought back its own probe whenever the shapes matched:
    a known probe swapped into the snapshot had no effect (the object and positions were
    honoured)."""
    _, probe, _, data, _ = problem
    first = ptycho.reconstruct(data, iterations=10, seed=0)
    mine = (3.0 * probe)[None].astype(np.complex64)
    held = ptycho.reconstruct(data, iterations=1, seed=0, alpha_probe=0,
                              start=dataclasses.replace(first, probe_modes=mine))
    np.testing.assert_allclose(held.probe_modes, mine, rtol=1e-5, atol=1e-6)


def test_a_continuation_reports_the_refinement_start_it_keeps(problem):
    """A continuation with the same refinement keeps the first run's start (its Adam state
    and schedule), but its options said refine_start=<the value passed>."""
    data = problem[3]
    first = ptycho.reconstruct(data, iterations=5, seed=0, position_refinement="adam",
                               refine_start=20)
    more = ptycho.reconstruct(data, iterations=5, seed=0, position_refinement="adam",
                              refine_start=0, start=first)
    assert more.options["refine_start"] == 15  # iteration 20 of the first run, 15 from here
    np.testing.assert_array_equal(more.positions_px, first.positions_px)  # not started yet


def test_masked_pixels_have_no_influence(problem):
    """A beamstop over the central 3 x 3 pixels, behind which the file holds zeros (or
    anything): the default start probe took its power from every pixel, so zeros there
    starved it (object error 0.28 where the same data with the true values gave 0.02)."""
    obj, _, _, data, roi = problem
    mask = np.ones(data.patterns.shape[1:], bool)
    c = data.patterns.shape[1] // 2
    mask[c - 1:c + 2, c - 1:c + 2] = False
    results = []
    for fill in (None, 0.0, 1e9):
        patterns = data.patterns.copy()
        if fill is not None:
            patterns[:, ~mask] = fill
        masked = dataclasses.replace(data, patterns=patterns, mask=mask)
        results.append(ptycho.reconstruct(masked, iterations=150, seed=0).obj)
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])
    assert ptycho.object_error(results[0], obj, roi) < 0.05


def _textured_three_mode_problem(grid=5, step=4.0, photons=None):
    """A textured object (a smooth one probes the beam's mutual coherence over too short
    separations to tell the modes apart: many mode sets then fit the data equally well), a
    3-mode probe (occupancies 0.6, 0.25, 0.15) and a raster scan."""
    cam = data.camera()[::4, ::4][16:112, 16:112] / 255.0
    ast = data.astronaut()[::4, ::4, 1][16:112, 16:112] / 255.0
    obj = (0.6 + 0.4 * cam) * np.exp(2j * (ast - 0.5))
    modes = ptycho.make_probe(24, diameter_px=14, edge_px=3, quadratic_phase_rad=1.5, modes=3,
                              occupancies=(0.6, 0.25, 0.15))
    pos = ptycho.raster_positions(grid, step, jitter_px=1, integer=True, rng=2)
    measured = ptycho.simulate(obj, modes, pos, photons=photons, rng=0)
    return obj, measured, ptycho.lit_region(modes, pos, obj.shape)


def test_recovers_mode_occupancies():
    _, measured, _ = _textured_three_mode_problem()
    result = ptycho.reconstruct(measured, iterations=150, modes=3, seed=0)
    np.testing.assert_allclose(result.occupancies, [0.6, 0.25, 0.15], atol=0.05)
    flat = result.probe_modes.reshape(3, -1).astype(np.complex128)
    gram = flat.conj() @ flat.T
    assert np.abs(gram - np.diag(np.diag(gram))).max() < 1e-4 * np.abs(gram).max()


@pytest.mark.parametrize("refinement", ["adam", "fixed_gain"])
def test_position_refinement_recovers_known_offsets(problem, refinement):
    _, _, pos, data, _ = problem
    offsets = np.random.default_rng(8).normal(0, 1.2, pos.shape)
    offsets -= offsets.mean(0)  # a common translation is not observable
    wrong = ptycho.PtychoData(data.patterns, pos + offsets, data.geometry)

    def rms(p):
        e = p - pos
        e -= e.mean(0)
        return np.sqrt(np.mean(np.sum(e ** 2, axis=1)))

    result = ptycho.reconstruct(wrong, iterations=150, position_refinement=refinement, seed=0)
    # Adam (the paper's scheme) converges; the constant-gain baseline more slowly
    limit = 0.25 if refinement == "adam" else 0.75
    assert rms(result.positions_px) < limit * rms(wrong.positions_px)
    still = ptycho.reconstruct(wrong, iterations=20, seed=0)
    np.testing.assert_array_equal(still.positions_px, wrong.positions_px)


def test_momentum_accelerates_batched_iterations(problem):
    # the heavy-ball momentum on the object: with the same batches, the same number of
    # iterations gets closer to the truth than the plain equations
    obj, _, _, data, roi = problem
    common = {"iterations": 25, "batch_size": 5, "seed": 0}
    plain = ptycho.reconstruct(data, **common)
    assert plain.options["momentum"] == 0.0  # a given batch_size: the plain equations
    fast = ptycho.reconstruct(data, momentum=0.5, **common)
    assert ptycho.object_error(fast.obj, obj, roi) < ptycho.object_error(plain.obj, obj, roi)
    assert fast.errors[-1] < plain.errors[-1]


def test_automatic_schedule_settles(problem):
    # with all positions in one batch, a stalled data error halves the update rates: the
    # estimates settle (here on noisy data, where going on would fit the noise)
    obj, probe, pos, _, _ = problem
    noisy = ptycho.simulate(obj, probe, pos, photons=1e4, rng=0)
    assert ptycho.reconstruct(noisy, iterations=1).options["momentum"] == _engines.AUTO_MOMENTUM
    snaps = {s.iteration: s.obj for s in ptycho.iterate(noisy, iterations=120, every=20, seed=0)}
    change = {i: np.linalg.norm(snaps[i] - snaps[i - 20]) for i in (40, 100, 120)}
    assert change[120] < 0.5 * change[100]  # geometrically smaller steps
    assert change[120] < 1e-2 * change[40]


def test_lbfgs_gradient_is_the_misfits_derivative(problem):
    # the finish's gradient against central differences of its own misfit, along random
    # directions of object and probe together; sub-pixel positions (the Fourier-shifted
    # windows and their adjoint), two modes and a detector mask included
    from torchscope.ptycho._lbfgs import LBFGSFinish

    torch = pytest.importorskip("torch")
    obj, _, pos, _, _ = problem
    shifted = pos + np.random.default_rng(4).uniform(-0.5, 0.5, pos.shape)
    two = ptycho.make_probe(24, diameter_px=14, edge_px=3, modes=2, occupancies=(0.7, 0.3))
    measured = ptycho.simulate(obj, two, shifted)
    mask = np.ones(measured.patterns.shape[1:], bool)
    mask[10:13, 3:8] = False
    measured = ptycho.PtychoData(measured.patterns, shifted, measured.geometry, mask=mask)
    engine, _ = _engines._prepare(measured, engine="rpie", **_engines._with_defaults(
        {"modes": 2, "finish": "lbfgs", "seed": 0, "device": "cpu"}))
    for _ in range(3):  # away from the flat start
        engine.step()
    finish = LBFGSFinish(engine)
    start = (engine.obj.clone(), engine.probe.clone())
    gen = torch.Generator().manual_seed(0)
    x = (start[0] * finish.w_obj, start[1] * finish.w_probe)  # the variables L-BFGS moves
    for _ in range(3):
        # each part of the direction as large as its variable's typical entry, steps of 1e-3 of
        # that: float32 rounding and curvature then stay within 1 % (measured over directions
        # and thread counts), where a wrong sub-pixel adjoint is off by 50 % to 1000 %
        d = [torch.randn(t.shape, generator=gen, dtype=t.dtype) * t.abs().square().mean().sqrt()
             for t in x]
        h = 1e-3
        values = []
        for t in (h, -h):
            finish._move(start, d, t)
            values.append(finish._evaluate()[0])
        numeric = (values[0] - values[1]) / (2 * h)
        analytic = 2 * sum(float(torch.vdot(g.reshape(-1), dd.reshape(-1)).real)
                           for g, dd in zip(finish.grad, d))
        assert numeric == pytest.approx(analytic, rel=0.03)


def test_lbfgs_finish_goes_further_than_halved_rates(device):
    # three probe modes: with the halved rates the estimates settle short of the truth; the
    # L-BFGS finish takes over at the first stall with few batches, lowers the misfit at every
    # iteration (its line search accepts no step that raises it) and gets closer to the truth
    obj, measured, roi = _textured_three_mode_problem(grid=6, step=5.0, photons=1e6)
    # (on a GPU too: the errors of PIE and L-BFGS iterations are stacked together)
    common = {"iterations": 150, "modes": 3, "seed": 0, "device": device}
    halved = ptycho.reconstruct(measured, finish=None, **common)
    lbfgs = ptycho.reconstruct(measured, finish="lbfgs", **common)
    assert halved.state["lbfgs"] is None and lbfgs.options["finish"] == "lbfgs"
    # the default ("auto") takes the finish with several modes: the same run to the bit
    auto = ptycho.reconstruct(measured, **common)
    assert auto.options["finish"] == "lbfgs"
    np.testing.assert_array_equal(auto.obj, lbfgs.obj)
    first = next(s.iteration for s in ptycho.iterate(measured, finish="lbfgs", **common)
                 if s.state["lbfgs"] is not None)
    assert 10 < first < 100
    assert np.all(np.diff(lbfgs.errors[first - 1:]) <= 0)
    assert ptycho.object_error(lbfgs.obj, obj, roi) < 0.7 * ptycho.object_error(halved.obj, obj, roi)
    assert lbfgs.errors[-1] < halved.errors[-1]
    np.testing.assert_allclose(lbfgs.occupancies, [0.6, 0.25, 0.15], atol=0.05)


def test_automatic_finish_is_lbfgs_only_with_several_modes_and_the_automatic_schedule():
    rng = np.random.default_rng(3)
    obj = _smooth_object(rng)
    probe = ptycho.make_probe(16, diameter_px=10, edge_px=2, quadratic_phase_rad=1.0)
    data = ptycho.simulate(obj, probe, ptycho.raster_positions(4, 4.0, jitter_px=1, rng=1))
    common = {"iterations": 1, "seed": 0, "device": "cpu"}
    cases = [({"modes": 1}, None), ({"modes": 2}, "lbfgs"), ({"modes": 3}, "lbfgs"),
             ({"modes": 2, "batch_size": 4}, None),
             ({"modes": 2, "position_refinement": "adam"}, None),
             ({"modes": 2, "finish": None}, None), ({"modes": 1, "finish": "lbfgs"}, "lbfgs")]
    for options, expected in cases:
        assert ptycho.reconstruct(data, **common, **options).options["finish"] == expected, options
    with pytest.raises(ValueError, match="finish"):
        ptycho.reconstruct(data, modes=2, finish="auto ", **common)


def test_refinement_grows_the_batches_but_keeps_several(monkeypatch):
    # 100 positions start in AUTO_REFINE_BATCHES batches with refinement (AUTO_BATCHES without);
    # the schedule may merge them while the error stalls, but with refinement never into fewer
    # than AUTO_REFINE_MIN_BATCHES; without it, into one
    rng = np.random.default_rng(5)
    obj = _smooth_object(rng)
    probe = ptycho.make_probe(16, diameter_px=10, edge_px=2, quadratic_phase_rad=1.0)
    pos = ptycho.raster_positions(10, 2.0, jitter_px=1, integer=True, rng=2)
    data = ptycho.simulate(obj, probe, pos)
    wrong = ptycho.PtychoData(data.patterns, pos + rng.normal(0, 0.7, pos.shape), data.geometry)
    sizes = []
    original = _engines._Engine.set_batch_size

    def spy(self, batch_size, groups=None):
        sizes.append(batch_size)
        return original(self, batch_size, groups)

    monkeypatch.setattr(_engines._Engine, "set_batch_size", spy)
    ptycho.reconstruct(wrong, iterations=300, position_refinement="adam", seed=0)
    counts = [int(np.ceil(100 / b)) for b in sizes]
    assert counts[0] == _engines.AUTO_REFINE_BATCHES == 10 and len(counts) > 1  # it grew
    assert min(counts) == _engines.AUTO_REFINE_MIN_BATCHES
    sizes.clear()
    ptycho.reconstruct(wrong, iterations=150, seed=0)
    assert int(np.ceil(100 / sizes[0])) == _engines.AUTO_BATCHES == 20
    assert sizes[-1] == 100


def _groups_by_all_pairs(positions, win, batch_size, seed):
    """The batching rule written plainly, with every pair of positions compared."""
    n = len(positions)
    count = int(np.ceil(n / batch_size))
    overlap = np.all(np.abs(positions[:, None] - positions[None]) < np.asarray(win), axis=-1)
    np.fill_diagonal(overlap, False)
    group = np.full(n, -1)
    for j in np.random.default_rng(seed).permutation(n):
        cost = []
        for g in range(count):
            size = int(np.sum(group == g))
            clashes = int(np.sum(overlap[j] & (group == g)))
            cost.append((size >= batch_size, clashes, size, g))
        group[j] = min(cost)[3]
    batches = [np.flatnonzero(group == g) for g in range(count) if np.any(group == g)]
    return batches, [not overlap[np.ix_(b, b)].any() for b in batches]


@pytest.mark.parametrize("case", ["spiral", "raster", "far apart"])
def test_batches_follow_the_rule_with_neighbour_lists(case):
    # the engine finds overlapping windows with a k-d tree instead of comparing all pairs
    # (thousands of positions took seconds and gigabytes); the batches must not change
    if case == "spiral":
        pos, win = ptycho.fermat_spiral_positions(150, 6.0, jitter_px=0.5, rng=1), (24.0, 20.0)
    elif case == "raster":  # windows that just touch (distance == window) do not overlap
        pos, win = ptycho.raster_positions((7, 9), 8.0).astype(float), (8.0, 16.0)
    else:
        pos, win = np.array([[0.0, 0.0], [30.0, 0.0], [0.0, 30.0]]), (8.0, 8.0)
    n = len(pos)
    for count in (1, 2, 5, 13):
        size = int(np.ceil(n / count))
        got = _engines._groups(pos, win, size, seed=3)
        want = _groups_by_all_pairs(pos, win, size, seed=3)
        assert len(got[0]) == len(want[0])
        for a, b in zip(got[0], want[0]):
            np.testing.assert_array_equal(a, b)
        assert list(got[1]) == want[1]
    assert _engines._groups(pos, win, n, seed=0)[1] == [case == "far apart"]


@pytest.mark.parametrize(("refinement", "modes"), [(None, 1), ("adam", 1), (None, 2)])
def test_ramps_formed_per_batch_give_the_same_run(problem, refinement, modes, monkeypatch):
    # beyond RAMP_BYTES (large scans) the engine keeps only the separable factors of the
    # sub-pixel ramps and forms each batch's when it runs; the iterations must not change
    # (two modes: the L-BFGS finish, which reads the ramps too)
    _, _, pos, data, _ = problem
    rng = np.random.default_rng(9)
    moved = ptycho.PtychoData(data.patterns, pos + rng.uniform(-0.5, 0.5, pos.shape),
                              data.geometry)
    options = {"iterations": 25 if modes == 1 else 60, "seed": 0, "modes": modes,
               "position_refinement": refinement, "refine_start": 5, "device": "cpu"}
    kept = ptycho.reconstruct(moved, **options)
    assert kept.options["finish"] == ("lbfgs" if modes == 2 else None)
    monkeypatch.setattr(_engines, "RAMP_BYTES", 0)
    formed = ptycho.reconstruct(moved, **options)
    np.testing.assert_array_equal(formed.obj, kept.obj)
    np.testing.assert_array_equal(formed.probe_modes, kept.probe_modes)
    np.testing.assert_array_equal(formed.positions_px, kept.positions_px)


def test_snapshots_results_and_continuation(problem):
    data = problem[3]
    snaps = list(ptycho.iterate(data, iterations=7, every=3, seed=2))
    assert [s.iteration for s in snaps] == [3, 6, 7]
    s = snaps[-1]
    assert isinstance(s, ptycho.Snapshot)
    assert s.obj.dtype == np.complex64 and s.probe_modes.shape == (1, 24, 24)
    assert s.positions_px.shape == (25, 2) and np.isfinite(s.error)
    np.testing.assert_allclose(s.occupancies, [1.0])
    # the generator can be abandoned between snapshots
    gen = ptycho.iterate(data, every=2)
    first = next(gen)
    gen.close()
    assert first.iteration == 2
    # reconstruct = the same computation run to the end, with every iteration's error
    result = ptycho.reconstruct(data, iterations=7, seed=2)
    assert isinstance(result, ptycho.Result) and len(result.errors) == 7
    np.testing.assert_array_equal(result.obj, s.obj)
    assert result.error == result.errors[-1] == pytest.approx(s.error)
    assert result.options["engine"] == "rpie" and result.options["iterations"] == 7
    # continue from a snapshot: the iteration count goes on, the error keeps falling
    more = ptycho.reconstruct(data, iterations=5, start=result, seed=2)
    assert more.iteration == 12
    assert more.error < result.error


@pytest.mark.parametrize("options", [
    # the automatic schedule and its momentum: on this noisy data the batches grow after
    # the stop (4 -> 9 -> 25 positions by iteration 40), then the rates are halved
    {"modes": 2, "finish": None},
    {"position_refinement": "adam", "refine_start": 3},  # Adam's moments, shifted positions
    {"modes": 2, "finish": "lbfgs"},  # L-BFGS's remembered steps and gradient
])
def test_continuation_computes_what_the_uninterrupted_run_does(problem, options):
    obj, probe, pos, data, _ = problem
    if "position_refinement" in options:
        offsets = np.random.default_rng(8).normal(0, 1.0, pos.shape)
        data = ptycho.PtychoData(data.patterns, pos + offsets, data.geometry)
    else:
        data = ptycho.simulate(obj, probe, pos, photons=1e3, rng=0)
    common = {"seed": 4, "device": "cpu", **options}
    lbfgs = options.get("finish") == "lbfgs"
    stop = 32 if lbfgs else 25  # (the finish starts at iteration 24 here)
    whole = ptycho.reconstruct(data, iterations=60, **common)
    first = ptycho.reconstruct(data, iterations=stop, **common)
    rest = ptycho.reconstruct(data, iterations=60 - stop, start=first, **common)
    assert rest.iteration == 60
    if lbfgs:  # the finish had begun before the stop
        assert first.state["lbfgs"] is not None and len(first.state["lbfgs"]["pairs"]) > 1
    elif "modes" in options:
        assert first.state["batch_size"] < rest.state["batch_size"] == 25
        assert rest.state["step_scale"] < 1
    np.testing.assert_array_equal(rest.obj, whole.obj)
    np.testing.assert_array_equal(rest.probe_modes, whole.probe_modes)
    np.testing.assert_array_equal(rest.positions_px, whole.positions_px)
    np.testing.assert_array_equal(np.concatenate([first.errors, rest.errors]), whole.errors)
    # the snapshot's state is not consumed: a second continuation from it is the same run
    again = ptycho.reconstruct(data, iterations=60 - stop, start=first, **common)
    np.testing.assert_array_equal(again.obj, whole.obj)
    np.testing.assert_array_equal(again.positions_px, whole.positions_px)
    # without the state (a snapshot made elsewhere, e.g. read from a file) it starts afresh:
    # the small first batches and a new momentum, so the run differs
    bare = dataclasses.replace(first, state=None)
    fresh = ptycho.reconstruct(data, iterations=60 - stop, start=bare, **common)
    assert fresh.iteration == 60
    assert not np.array_equal(fresh.obj, whole.obj)


@pytest.mark.parametrize("subpixel", [False, True])
def test_cuda_graphs_replay_what_the_batches_compute(problem, monkeypatch, subpixel):
    """The experimental CUDA-graph path (CUDA_GRAPHS) computes what the eager batches do."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    obj, probe, pos, data, _ = problem
    if subpixel:  # the windows' Fourier shifts are replayed too
        data = ptycho.simulate(obj, probe, pos + [0.3, -0.4])
    options = _engines._with_defaults({"modes": 2, "batch_size": 4, "momentum": 0.5,
                                       "orthogonalize_every": 2, "seed": 5, "device": "cuda"})
    runs = {}
    for graphs in (False, True):
        monkeypatch.setattr(_engines, "CUDA_GRAPHS", graphs)
        engine, _ = _engines._prepare(data, engine="rpie", **options)
        errors = [float(engine.step()) for _ in range(6)]  # eager, capture, then 4 replays
        runs[graphs] = (engine.obj.cpu().numpy(), engine.probe.cpu().numpy(), errors, engine)
    assert runs[False][3].graphs is None
    assert len(runs[True][3].graphs) == len(runs[True][3].batches)  # every batch replayed
    obj, probe, errors, _ = runs[True]
    # the same kernels; only the order of atomic additions may differ
    np.testing.assert_allclose(obj, runs[False][0], rtol=0, atol=1e-4 * np.abs(obj).max())
    np.testing.assert_allclose(probe, runs[False][1], rtol=0, atol=1e-4 * np.abs(probe).max())
    np.testing.assert_allclose(errors, runs[False][2], rtol=1e-4)


def test_divergence_stops_with_a_clear_error(problem):
    data = problem[3]
    with pytest.raises(_engines.DivergenceError, match="diverged by iteration 3: NaN"):
        ptycho.reconstruct(data, iterations=3, obj=np.zeros((72, 72)), batch_size=1)
    gen = ptycho.iterate(data, obj=np.zeros((72, 72)), every=1)
    with pytest.raises(FloatingPointError, match="diverged by iteration 1"):
        next(gen)


def test_clear_errors(problem):
    data = problem[3]
    with pytest.raises(ValueError, match="engine must be one of"):
        ptycho.reconstruct(data, engine="dm")
    with pytest.raises(ValueError, match="engine='epie' has beta=1"):
        ptycho.reconstruct(data, engine="epie", beta=0.5)
    with pytest.raises(ValueError, match="gamma must be in"):
        ptycho.reconstruct(data, gamma=0.0)
    with pytest.raises(ValueError, match="alpha_obj"):
        ptycho.reconstruct(data, alpha_obj=3.0)
    with pytest.raises(ValueError, match="position_refinement"):
        ptycho.reconstruct(data, position_refinement="powell")
    with pytest.raises(ValueError, match="batch_size"):
        ptycho.reconstruct(data, batch_size=0)
    with pytest.raises(ValueError, match="modes=1"):
        ptycho.reconstruct(data, probe=ptycho.make_probe(24, modes=2), modes=1)
    with pytest.raises(ValueError, match="leaves the 40x40 object"):
        ptycho.reconstruct(data, obj_shape=(40, 40))
    with pytest.raises(TypeError, match="PtychoData"):
        ptycho.reconstruct(data.patterns)
    with pytest.raises(ValueError, match="patterns are zero everywhere"):  # not "probe is zero"
        ptycho.reconstruct(dataclasses.replace(data, patterns=np.zeros_like(data.patterns)))
    with pytest.raises(ValueError, match="seed must be an integer in"):  # not torch's overflow
        ptycho.reconstruct(data, iterations=1, seed=2 ** 64)
    with pytest.raises(ValueError, match="no window lights the object"):  # not all True
        ptycho.lit_region(problem[1], problem[2] + 500, problem[0].shape)
    stray = np.array(data.positions_px, float)
    stray[4] = (1e5, 1e5)  # numpy was asked for 298 GiB
    with pytest.raises(ValueError, match="automatic object would be 200"):
        ptycho.reconstruct(dataclasses.replace(data, positions_px=stray), iterations=1)
    with pytest.raises(TypeError, match="every"):
        ptycho.reconstruct(data, every=2)
    with pytest.raises(ValueError, match="finish"):
        ptycho.reconstruct(data, finish="bfgs")
    with pytest.raises(ValueError, match=r"batch_size=None and position_refinement=None"):
        ptycho.reconstruct(data, finish="lbfgs", batch_size=5)
    with pytest.raises(ValueError, match=r"position_refinement='adam'"):
        ptycho.reconstruct(data, finish="lbfgs", position_refinement="adam")
    with pytest.raises(ValueError, match="refine_step"):
        ptycho.reconstruct(data, position_refinement="adam", refine_step=-1.0)
    for bad in (1.0, -0.1, True, "0.5"):
        with pytest.raises(ValueError, match=r"momentum must be (a real number )?in \[0, 1\) or None"):
            ptycho.reconstruct(data, momentum=bad)

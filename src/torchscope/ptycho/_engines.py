"""Reconstruction engines: (M-)ePIE and (M-)rPIE with Adam / fixed-gain position refinement.

The update rules are the paper's equations 5-7 (Guzzi et al. 2022, ``papers/003``), for one or
more mutually incoherent probe modes::

    psi'_p = F^-1{ sqrt(I_j) F{psi_p} / sqrt(sum_n |F{psi_n}|^2) }                       (7)
    P'_p   = P_p + alpha_P (psi'_p - P_p o_j) o_j^* / (beta max|o_j|^2 + (1 - beta)|o_j|^2)       (5)
    o'_j   = o_j + alpha_O sum_p (psi'_p - P_p o_j) P_p^* /
                   (gamma max(sum_p |P_p|^2) + (1 - gamma) sum_p |P_p|^2)                 (6)

``beta = gamma = 1`` is M-ePIE (Thibault & Menzel 2013); ``engine="epie"`` fixes them to 1.

Batches. Classic PIE visits the positions one at a time (``batch_size=1``: exactly the rules
above, in a random order each iteration). On a CPU the per-position overhead of ~25 small tensor
operations costs more than the arithmetic, so by default positions are visited in batches
(mini-batches) built so that their probe windows overlap as little as possible. Within a batch
all exit waves are formed from the same object and probe; then

- each position's object update is equation 6 itself, computed in parallel. Where windows of one
  batch do not overlap this is exactly what the sequential engine does. Where they do, the
  denominator becomes ``max(S, gamma max W + (1 - gamma) S)`` with ``S`` the windows' summed
  illumination ``sum_j sum_p |P_p|^2``: overlapping corrections are averaged, not added;
- the probe update is equation 5 with numerator and denominator summed over the batch: a
  weighted mean of the per-position corrections (for ``batch_size=1`` it is equation 5).

``batch_size=None`` schedules the batches: 20 at first (at least 4 positions each), half as
many whenever the data error stalls (less than 1 % better over 10 iterations), and once all
positions form one batch, update rates halved whenever it stalls again: fast early
convergence, then noise averaged out instead of fitted. ``finish="lbfgs"`` ends the schedule
differently: at the first stall with at most 10 batches, object and probe modes are refined
together by L-BFGS on the same amplitude misfit (``_lbfgs``); that is the default
(``finish="auto"``) with several probe modes. With position refinement the schedule starts
with 10 batches and keeps at least 5 (and the update rates). With the automatic schedule,
while there is more than one batch, the object also takes a heavy-ball momentum step after
each iteration (``momentum``; the momentum of Maiden, Johnson & Li's mPIE, 2017).

Sub-pixel positions. The engines work in the probe's frame: the object window is cut at the
whole-pixel part of the position and translated by the sub-pixel rest with the Fourier shift
theorem, and each object update is translated back before it is added. (A translation of the
whole exit wave changes only the phase of its far field, so this is the same model as a
Fourier-shifted probe.) Positions on whole pixels skip the shifts.

Position refinement (the paper's Adam scheme): after each position's update, the shift between
the object window before and after the update (cross-correlation upsampled by DFT matrix
products, Guizar-Sicairos et al. 2008) is the error signal ``g_j``. ``"adam"`` feeds it, per
position, into Adam (one state per position, ``m_hat / (sqrt(v_hat) + eps)``); ``"fixed_gain"``
moves each position by ``gain * g_j`` (the constant-gain feedback of Zhang et al. 2013). All of
it runs batched on the device; positions reach the host only in snapshots.
"""

import dataclasses
import math

import numpy as np

from torchscope.backend import (
    check_choice,
    check_int,
    check_real,
    device_name,
    get_device,
    to_numpy,
    to_tensor,
)
from torchscope.ptycho._data import PtychoData, Result, Snapshot
from torchscope.ptycho._frames import check_object, check_probe, check_shape, window_corners

ENGINES = ("epie", "rpie")
REFINEMENTS = (None, "adam", "fixed_gain")
FINISHES = ("auto", None, "lbfgs")

#: Default parameters per engine (any of them can be given explicitly).
DEFAULTS = {
    "epie": {"alpha_obj": 1.0, "alpha_probe": 1.0, "beta": 1.0, "gamma": 1.0},
    "rpie": {"alpha_obj": 1.0, "alpha_probe": 1.0, "beta": 0.5, "gamma": 0.1},
}
#: Default step of the position refinement: Adam's learning rate (pixels per iteration) and the
#: fixed gain (a dimensionless multiple of the measured shift). Adam's 0.5 (0.1 before
#: 2026-12-06): on the benchmark's problem with 8 seeds of 2.7 px RMS errors it brings every
#: position within 0.25 px (0.1 left a scan corner that started 7.5 px off at 6.4 px), with
#: the same object error; on a second object (coins and moon) the median error is 0.056 px
#: instead of 0.063 from 2.7 px, 0.072 instead of 0.140 from 4 px.
REFINE_STEP = {"adam": 0.5, "fixed_gain": 2.0}
_ADAM_BETAS = (0.9, 0.999)
_ADAM_EPS = 1e-8
#: The refinement's registration: the cross-correlation of a window and its update, upsampled
#: this many times within +-0.75 px of zero shift, its peak then interpolated (a parabola through
#: the peak sample and its neighbours), which gives a continuous estimate.
_REGISTRATION_UPSAMPLE = 4
#: At most this many bytes of spectra are queued before they are registered.
REGISTRATION_CHUNK_BYTES = 64 * 2 ** 20
#: The sub-pixel Fourier ramps of all positions (and their conjugates) are kept up to this
#: many bytes; beyond it (large scans) only their separable factors are, and each batch's
#: ramps are formed when it runs (10000 positions of 128 x 128 held 2.5 GB of ramps).
RAMP_BYTES = 256 * 2 ** 20
#: The automatic batch schedule (``batch_size=None``, see ``_Engine._grow_batches``): the
#: positions start in AUTO_BATCHES batches of at least AUTO_MIN_BATCH_SIZE positions
#: (near-sequential rPIE, with object and probe both taking nearly the whole correction, tends
#: to overshoot); a data error that improves by less than AUTO_STALL over AUTO_WINDOW
#: iterations halves the number of batches; with one batch left, it halves the update rates.
AUTO_BATCHES = 20
AUTO_MIN_BATCH_SIZE = 4
#: With position refinement the positions start in AUTO_REFINE_BATCHES batches, and the schedule
#: stops growing the batches before fewer than AUTO_REFINE_MIN_BATCHES are left (and never
#: halves the update rates): a position is only observable while the updates of its window are
#: mostly its own. Starting with 10 batches instead of 20 (2026-12-07, the benchmark's problem,
#: 6 seeds of 2.7 px RMS errors): positions within 0.25 px on all 6 either way (median RMS
#: 0.041 instead of 0.036 px), object NRMSE median 0.047 instead of 0.049, and the small,
#: slow batches of the start are left sooner; 5 batches leave a position 8 px off on one seed.
AUTO_REFINE_BATCHES = 10
AUTO_REFINE_MIN_BATCHES = 5
AUTO_WINDOW = 10
AUTO_STALL = 0.01
#: The halved rates stop there (2**-24, float32's resolution: smaller steps change nothing).
#: Halving on went on until the rates underflowed float32 and the run failed (after about
#: 1400 iterations of a small problem, or Continue pressed some 15 times in the dock).
AUTO_MIN_STEP = 2.0 ** -24
#: The object's momentum with the automatic schedule (``momentum=None``): after each iteration
#: with more than one batch, the object moves on by AUTO_MOMENTUM times its velocity (the
#: decaying sum of its last changes).
AUTO_MOMENTUM = 0.5
#: ``finish="lbfgs"``: the automatic schedule hands over to L-BFGS (see ``_lbfgs``) at the first
#: stall with at most this many batches left (on the benchmark's 100 positions, where 10
#: batches would become 5).
AUTO_LBFGS_BATCHES = 10
#: ``finish="auto"`` (the default) chooses the L-BFGS finish for this many probe modes or more,
#: halved rates below. With several modes the halved rates settle far from the truth (the
#: benchmark's three-mode problem: object error 0.042-0.073 over 8 seeds, against 0.027-0.039
#: with the finish); with one they settle close to it and never let the error grow at low dose
#: (where the finish fits noise: see ``docs/ptycho.md``).
AUTO_FINISH_MODES = 2
#: Experimental, CUDA only, runs without position refinement: replay each batch's kernels as a
#: CUDA graph (run eagerly on the batch's first visit, captured on its second, replayed from
#: then on; dropped whenever the batches or the update rates change). On a GPU the small
#: batches are bound by kernel launches (one H200, 2026-12-04: one mode as fast as one CPU
#: thread); whether graphs help is yet to be measured, so it is off by default
#: (``benchmarks/bench_ptycho.py --cuda-graphs`` switches it on).
CUDA_GRAPHS = False


class DivergenceError(FloatingPointError):
    """A reconstruction produced NaN or infinite values."""


def _resolve_options(engine, alpha_obj, alpha_probe, beta, gamma):
    check_choice("engine", engine, ENGINES)
    d = DEFAULTS[engine]
    if engine == "epie":
        for name, value in (("beta", beta), ("gamma", gamma)):
            if value is not None and value != 1:
                raise ValueError(
                    f"engine='epie' has {name}=1 by definition, got {name}={value!r}; "
                    "use engine='rpie' to regularise"
                )
    opts = {
        "alpha_obj": d["alpha_obj"] if alpha_obj is None else alpha_obj,
        "alpha_probe": d["alpha_probe"] if alpha_probe is None else alpha_probe,
        "beta": d["beta"] if beta is None else beta,
        "gamma": d["gamma"] if gamma is None else gamma,
    }
    for name, high, low_open in (("alpha_obj", 2, True), ("alpha_probe", 2, False),
                                 ("beta", 1, True), ("gamma", 1, True)):
        opts[name] = check_real(name, opts[name], 0, high, low_open=low_open,
                                type_error=ValueError)
    return opts


# ------------------------------------------------------------------------------- set-up


#: The automatic object's largest size in pixels (16384 x 16384, 2 GiB as complex64); beyond
#: it ``obj_shape=`` must say so (one stray position, 1e5 px off, asked numpy for 298 GiB)
AUTO_OBJ_MAX_PIXELS = 2 ** 28


def _auto_obj_shape(positions, win, margin):
    reach = np.abs(positions).max(axis=0)
    shape = tuple(int(2 * math.ceil(reach[a] + win[a] / 2.0 + margin)) for a in range(2))
    if shape[0] * shape[1] > AUTO_OBJ_MAX_PIXELS:
        far = int(np.argmax(np.abs(positions).max(axis=1)))
        raise ValueError(
            f"the positions reach {reach.max():.0f} px from the object's centre (position {far}: "
            f"{tuple(float(v) for v in positions[far])}), so the automatic object would be "
            f"{shape[0]} x {shape[1]} px; check the positions (units, a stray value), or pass "
            "obj_shape= (or obj=) for an object that large.")
    return shape


def _default_probe(amplitudes, win, mask=None):
    """A flat soft disk of half the window's width, with the data's mean power.

    With a detector ``mask`` (valid pixels, in the layout of ``amplitudes``: zero frequency at
    [0, 0]) only the valid pixels count: the power is the one for which the disk's far field
    (the model's first prediction, the object starting flat) carries the data's mean power
    on them. A beamstop behind which the file holds zeros, or anything else, then neither
    starves nor steers the start.
    """
    from torchscope.ptycho._probe import make_probe

    disk = make_probe(win, kind="disk", diameter_px=min(win) / 2.0, edge_px=2.0).astype(np.complex128)
    intensity = amplitudes.astype(np.float64) ** 2
    if mask is None:
        return disk * math.sqrt(float(np.mean(np.sum(intensity, axis=(1, 2)))))
    far = np.abs(np.fft.fft2(disk)) ** 2
    seen = float(far[mask].sum() / far.sum())
    valid = float(np.mean(np.sum(intensity * mask, axis=(1, 2))))
    return disk * math.sqrt(valid / max(seen, 1e-12))


def _add_modes(probe, modes):
    """Extra starting modes: the first mode times x, y, xy, ..., with 10 %, 5 %, ... of its power."""
    from torchscope.ptycho._probe import _mode_factors

    m0, ny, nx = probe.shape
    if m0 >= modes:
        return probe
    y = (np.arange(ny) - ny // 2)[:, None] / (ny / 4.0)
    x = (np.arange(nx) - nx // 2)[None, :] / (nx / 4.0)
    power0 = np.sum(np.abs(probe[0]) ** 2)
    extra = []
    for k, factor in enumerate(_mode_factors(y, x, modes)[m0:]):
        m = probe[0] * factor
        m = m * math.sqrt(0.1 * 0.5 ** k * power0 / max(np.sum(np.abs(m) ** 2), 1e-30))
        extra.append(m)
    return np.concatenate([probe, np.stack(extra)])


def _overlapping_pairs(positions, win):
    """The pairs ``(a, b)``, ``a < b``, of positions whose windows overlap: closer than the
    window along both axes. A k-d tree in the window's units finds the candidates (distance
    at most 1 in the max norm), the exact test keeps the overlapping ones: O(n log n) where
    all pairs would take O(n^2) memory and time."""
    from scipy.spatial import cKDTree

    if len(positions) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = cKDTree(positions / win).query_pairs(1.0, p=np.inf, output_type="ndarray")
    close = np.all(np.abs(positions[pairs[:, 0]] - positions[pairs[:, 1]]) < win, axis=1)
    return pairs[close]


def _groups(positions, win, batch_size, seed):
    """Split positions into batches whose windows overlap as little as possible (greedy).

    Returns a list of index arrays and, per batch, whether its windows are mutually disjoint.
    Each position in a random order joins the batch that holds the fewest positions whose
    windows overlap its own, the smallest such batch on a tie, a full one only when all are.
    """
    n = len(positions)
    count = max(1, math.ceil(n / batch_size))
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    if count == n:
        return [np.array([j]) for j in order], [True] * n
    win = np.asarray(win, dtype=np.float64)
    pairs = _overlapping_pairs(np.asarray(positions, dtype=np.float64), win)
    if count == 1:
        return [np.arange(n)], [len(pairs) == 0]
    # each position's overlapping neighbours, as slices of one array (CSR)
    both = np.concatenate([pairs, pairs[:, ::-1]])
    both = both[np.argsort(both[:, 0], kind="stable")]
    starts = np.searchsorted(both[:, 0], np.arange(n + 1))
    neighbours = both[:, 1]
    group = np.full(n, -1)
    sizes = np.zeros(count, dtype=int)
    full = np.zeros(count, dtype=int)
    for j in order:
        near = group[neighbours[starts[j]:starts[j + 1]]]
        overlaps = np.bincount(near[near >= 0], minlength=count)
        g = int(np.argmin(overlaps * (n + 1) + sizes + full))
        group[j] = g
        sizes[g] += 1
        if sizes[g] >= batch_size:
            full[g] = 10 * n * n
    same = group[pairs[:, 0]] == group[pairs[:, 1]]
    clashing = np.zeros(count, dtype=bool)
    clashing[group[pairs[same, 0]]] = True
    batches, disjoint = [], []
    for g in range(count):
        members = np.flatnonzero(group == g)
        if len(members):
            batches.append(members)
            disjoint.append(not clashing[g])
    return batches, disjoint


def _power_sum(z, dim, scratch, out=None):
    """``sum(|z|^2, dim)`` for complex ``z``: the squares of the real and imaginary parts in
    one contiguous pass (into ``scratch``, a complex tensor of z's shape), their sum over
    ``dim``, then real + imaginary part (the reductions of ``z.abs()`` or of strided real views
    take two to four times as long on a CPU)."""
    import torch

    torch.square(torch.view_as_real(z), out=torch.view_as_real(scratch))
    s = scratch.select(dim, 0) if z.shape[dim] == 1 else scratch.sum(dim)
    return torch.add(s.real, s.imag, out=out)


# ---------------------------------------------------------------------------------- engine

class _Engine:
    """One reconstruction's tensors and its iteration (a sweep over all positions)."""

    def __init__(self, data, *, opts, modes, probe, obj, obj_shape, positions, refinement,
                 refine_step, refine_start, batch_size, momentum, orthogonalize_every, seed,
                 device, finish=None):
        import torch

        self.torch = torch
        self.dev = get_device(device)
        dev = self.dev
        self.opts = opts
        n_pos, ny, nx = data.patterns.shape
        self.win = (ny, nx)
        self.n_pos = n_pos
        self.refinement = refinement
        self.refine_step = refine_step
        self.refine_start = refine_start
        self.orthogonalize_every = orthogonalize_every
        self.real = torch.float32
        self.cplx = torch.complex64

        patterns = np.clip(np.asarray(data.patterns, dtype=np.float32), 0, None)
        amps = np.sqrt(np.fft.ifftshift(patterns, axes=(-2, -1)))
        self.amp = to_tensor(amps, device=dev)
        self.mask = None
        if data.mask is not None:
            self.mask = to_tensor(np.fft.ifftshift(np.asarray(data.mask, bool)), device=dev)
            self.amp = self.amp * self.mask
        self.amp_norm = self.amp.square().sum()

        if probe is None:
            if not bool(self.amp.any()):
                raise ValueError("the patterns are zero everywhere (on the valid pixels): there "
                                 "is nothing to reconstruct.")
            probe = _default_probe(amps, (ny, nx), None if self.mask is None else
                                   to_numpy(self.mask))
        probe = _add_modes(check_probe(probe), modes)
        if probe.shape[1:] != (ny, nx):
            raise ValueError(f"probe has shape {probe.shape[1:]}, the patterns {(ny, nx)}")
        margin = 4.0 if refinement else 1.0
        if obj is not None:
            obj_arr = check_object(obj)
        else:
            shape = obj_shape if obj_shape is not None else _auto_obj_shape(positions, (ny, nx), margin)
            obj_arr = np.ones(shape, dtype=np.complex64)
        self.obj_shape = obj_arr.shape
        self.obj = to_tensor(obj_arr, device=dev, dtype=self.cplx).contiguous()
        self.probe = to_tensor(probe, device=dev, dtype=self.cplx)
        if self.probe.shape[0] > 1:
            from torchscope.ptycho._probe import orthogonalize_modes

            self.probe, _ = orthogonalize_modes(self.probe)

        corners = window_corners(positions, self.obj_shape, (ny, nx))
        lim = np.array(self.obj_shape, dtype=np.float64) - np.array((ny, nx))
        if np.any(np.round(corners) < 0) or np.any(np.round(corners) > lim):
            from torchscope.ptycho._frames import check_windows_fit

            check_windows_fit(positions, self.obj_shape, (ny, nx), name="positions_px")
        self.pos_dtype = torch.float64 if dev.type != "mps" else torch.float32
        self.positions = to_tensor(positions, device=dev, dtype=self.pos_dtype)
        self.base = to_tensor(window_corners(np.zeros(2), self.obj_shape, (ny, nx)),
                              device=dev, dtype=self.pos_dtype)
        self.corner_max = to_tensor(lim, device=dev, dtype=self.pos_dtype)
        self.subpixel = bool(np.any(positions != np.round(positions))) or refinement is not None

        self.seed = seed
        self.auto_batches = batch_size is None
        self.min_batches = 1 if refinement is None else AUTO_REFINE_MIN_BATCHES
        self.history = []  # data error per iteration (host floats; the automatic schedule)
        self.phase_start = 0
        self.step_scale = 1.0
        if momentum is None:
            momentum = AUTO_MOMENTUM if batch_size is None else 0.0
        self.momentum = momentum
        self.velocity = None  # the object's (momentum > 0)
        self.obj_before = None
        self.finish = finish
        self.lbfgs = None  # the L-BFGS finish, once it has started
        itemsize = torch.empty((), dtype=self.cplx).element_size()
        self.separable_ramps = 2 * n_pos * ny * nx * itemsize > RAMP_BYTES
        self.ramp_memo = (None, None, None)  # (batch, ramps, conjugates) in separable mode
        # (graphs replay fixed buffers: not with ramps formed per batch)
        use_graphs = (CUDA_GRAPHS and dev.type == "cuda" and refinement is None
                      and not self.separable_ramps)
        self.graphs = {} if use_graphs else None  # batch -> (CUDA graph, its error tensor)
        self.graph_stream = None
        self.warm = set()  # batches run eagerly once since the graphs were dropped
        if batch_size is None:
            count = AUTO_BATCHES if refinement is None else AUTO_REFINE_BATCHES
            batch_size = min(n_pos, max(AUTO_MIN_BATCH_SIZE, math.ceil(n_pos / count)))
        self.set_batch_size(batch_size)
        # windows as a strided view of the object: windows[ky, kx] is the window whose top-left
        # pixel is (ky, kx); on the CPU scatter-adds go through it (index_put_ accumulates
        # serially there, so overlapping windows are summed correctly), elsewhere through flat
        # indices with index_add_
        oy, ox = self.obj_shape
        self.windows = self.obj.as_strided((oy - ny + 1, ox - nx + 1, ny, nx), (ox, 1, ox, 1))
        self.strided_scatter = dev.type == "cpu"
        self.offsets = (torch.arange(ny, device=dev)[:, None] * ox + torch.arange(nx, device=dev)).reshape(-1)
        self.gen = torch.Generator().manual_seed(0 if seed is None else int(seed))
        if refinement is not None:
            self.shift_signal = torch.zeros(n_pos, 2, device=dev, dtype=self.pos_dtype)
            self.adam_m = torch.zeros_like(self.shift_signal)
            self.adam_v = torch.zeros_like(self.shift_signal)
            self.adam_t = 0
        self.ramps = None  # buffers of the sub-pixel Fourier ramps (see _geometry)
        self.reg_spec = self.reg_solo = None  # the registration's queue of spectra
        self.reg_batches = []
        self.reg_count = 0
        self.iteration = 0

    def _grow_batches(self):
        """The automatic schedule: larger batches while the data error stalls, then, with one
        batch left, smaller update rates.

        A data error that improved by less than AUTO_STALL over the last AUTO_WINDOW
        iterations halves the number of batches (each update then averages more patterns: the
        mini-batch analogue of a smaller step). With a single batch left the iteration is
        deterministic; at low dose it would go on fitting the noise, so from then on the same
        test halves the update rates (and the momentum stops): the steps that remain add up
        to a bounded change, and the estimates settle instead of drifting into the noise.
        With ``finish="lbfgs"``, the first stall with at most AUTO_LBFGS_BATCHES batches hands
        over to L-BFGS instead (``_lbfgs``), for the rest of the run."""
        history = self.history
        if len(history) > self.phase_start + AUTO_WINDOW and \
                history[-1] > (1.0 - AUTO_STALL) * history[-1 - AUTO_WINDOW]:
            current = math.ceil(self.n_pos / self.batch_size)
            count = max(1, current // 2)
            if self.finish == "lbfgs" and current <= AUTO_LBFGS_BATCHES:
                from torchscope.ptycho._lbfgs import LBFGSFinish

                self.lbfgs = LBFGSFinish(self)
                self._drop_graphs()
            elif self.batch_size >= self.n_pos:
                if self.step_scale > AUTO_MIN_STEP:  # settled: the rates stay there
                    self.step_scale *= 0.5
                    self._drop_graphs()  # the rates are constants in the graphs
            elif count >= self.min_batches:
                self.set_batch_size(math.ceil(self.n_pos / count))
            self.phase_start = len(history)

    def set_batch_size(self, batch_size, groups=None):
        """Group the positions into batches of ``batch_size`` whose windows overlap least (or
        as ``groups``, a (batches, disjoint) pair that an earlier run made)."""
        torch = self.torch
        ny, nx = self.win
        gap = 8.0 if self.refinement else 0.0  # refined positions may drift towards each other
        if groups is None:
            positions = to_numpy(self.positions)
            groups = _groups(positions, (ny + gap, nx + gap), batch_size, self.seed)
        batches, disjoint = groups
        self.groups = groups
        self.batch_size = batch_size
        self.batches = [to_tensor(b, device=self.dev) for b in batches]
        self.batch_amp = [self.amp[b] for b in self.batches]  # patterns in batch order
        # all positions in batch order; batch g is the slice bounds[g] of it
        self.batch_order = torch.cat(self.batches)
        ends = np.cumsum([len(b) for b in batches])
        self.bounds = [(int(e - len(b)), int(e)) for b, e in zip(batches, ends)]
        self.workspaces = {}
        self.disjoint = disjoint
        self._positions_moved()
        self._drop_graphs()

    def _drop_graphs(self):
        if self.graphs is not None:
            self.graphs = {}
            self.warm = set()

    def _positions_moved(self):
        self.geometry_all = None
        self.geometry_cache = [None] * len(self.batches)
        self.ramp_memo = (None, None, None)

    # -- one batch -------------------------------------------------------------------
    def _geometry(self, g):
        """Whole-pixel corners and sub-pixel Fourier ramps of batch ``g`` (cached until the
        positions move). They are computed for all positions at once (with refinement, a
        handful of operations per iteration instead of per batch)."""
        cached = self.geometry_cache[g]
        if cached is not None:
            return cached
        torch = self.torch
        if self.geometry_all is None:
            from torchscope.backend import shift_ramps

            corner = self.positions[self.batch_order] + self.base
            whole = torch.round(corner)
            kyx = whole.to(torch.int64)
            ramps = None
            if self.subpixel:
                # the window seen by the probe is the object translated by -frac (into the
                # same buffers every time: with refinement this runs every iteration)
                ry, rx = shift_ramps((whole - corner).to(self.real), self.win, dtype=self.cplx)
            if self.subpixel and self.separable_ramps:
                ramps = (ry, rx)
            elif self.subpixel:
                if self.ramps is None:
                    self.ramps = (torch.empty(self.n_pos, *self.win, device=self.dev, dtype=self.cplx),
                                  torch.empty(self.n_pos, *self.win, device=self.dev, dtype=self.cplx))
                ramp = torch.mul(ry[:, :, None], rx[:, None, :], out=self.ramps[0])
                ramps = (ramp, torch.conj_physical(ramp, out=self.ramps[1]))
            self.geometry_all = (kyx, ramps)
        kyx, ramps = self.geometry_all
        start, end = self.bounds[g]
        ky, kx = kyx[start:end].unbind(-1)
        ramp = ramp_c = None
        if ramps is not None and self.separable_ramps:
            # formed for this batch alone, once per visit (_window and _batch both ask)
            if self.ramp_memo[0] != g:
                ramp = torch.mul(ramps[0][start:end, :, None], ramps[1][start:end, None, :])
                self.ramp_memo = (g, ramp, torch.conj_physical(ramp))
            return ky, kx, self.ramp_memo[1], self.ramp_memo[2]
        if ramps is not None:
            ramp, ramp_c = ramps[0][start:end], ramps[1][start:end]
        cached = (ky, kx, ramp, ramp_c)
        self.geometry_cache[g] = cached
        return cached

    def _scatter_add(self, target, ky, kx, values):
        """Add ``values`` (K, ny, nx) into the windows (ky, kx) of ``target`` (Oy, Ox)."""
        if self.strided_scatter:
            target.as_strided(self.windows.shape, self.windows.stride()).index_put_(
                (ky, kx), values, accumulate=True)
        else:
            flat = ((ky * self.obj_shape[1] + kx)[:, None] + self.offsets).reshape(-1)
            target.view(-1).index_add_(0, flat, values.reshape(-1))

    def _workspace(self, k):
        """Buffers for a batch of ``k`` windows, reused from batch to batch: on CPUs, fresh
        multi-megabyte temporaries cost page faults on every allocation, as much as the
        arithmetic itself."""
        ws = self.workspaces.get(k)
        if ws is None:
            torch = self.torch
            m, (ny, nx) = self.probe.shape[0], self.win
            c = {"device": self.dev, "dtype": self.cplx}
            r = {"device": self.dev, "dtype": self.real}
            ws = {
                "crop": torch.empty(k, ny, nx, **c),
                "upd": torch.empty(k, ny, nx, **c),
                "wave": torch.empty(k, m, ny, nx, **c),  # exit waves, then products
                "probe": torch.empty(m, ny, nx, **c),
                "ratio": torch.empty(k, ny, nx, **r),
                "power": torch.empty(k, ny, nx, **r),
                "den": torch.empty(k, ny, nx, **r),
                "total": torch.empty(self.obj_shape, **r),
            }
            if self.subpixel:
                ws["upd_spec"] = torch.empty(k, ny, nx, **c)
            self.workspaces[k] = ws
        return ws

    def _window(self, g, ws, spec_out=None):
        """The object windows of batch ``g`` as the probe sees them: cut at their whole-pixel
        corners (into ``ws["crop"]``) and translated by the sub-pixel rest (their spectrum
        written to ``spec_out`` when given: the refinement's registration queue)."""
        torch = self.torch
        ky, kx, ramp, _ = self._geometry(g)
        crop = torch.ops.aten.index.Tensor_out(self.windows, [ky, kx], out=ws["crop"])
        if not self.subpixel:
            return crop
        spec = torch.fft.fft2(crop)
        spec = spec.mul_(ramp) if spec_out is None else torch.mul(spec, ramp, out=spec_out)
        return torch.fft.ifft2(spec)

    def _exit_corrections(self, g, win, ws):
        """Equation 7 for batch ``g``: ``psi' - psi`` (K, M, ny, nx) for the windows ``win``
        and the current probe modes; the batch's squared amplitude misfit goes to
        ``err_parts``."""
        torch = self.torch
        wave = torch.mul(self.probe, win[:, None], out=ws["wave"])  # (K, M, ny, nx)
        # the transforms write fresh tensors: with out= they compute into a temporary and copy
        far = torch.fft.fft2(wave, norm="ortho")
        inten = _power_sum(far, 1, ws["wave"], out=ws["ratio"]).add_(1e-30)  # sum_p |F{psi_p}|^2
        # equation 7: F{psi'} - F{psi} = F{psi} (sqrt(I_meas / I) - 1)
        ratio = inten.rsqrt_().mul_(self.batch_amp[g]).sub_(1.0)
        if self.mask is not None:
            ratio.mul_(self.mask)
        delta = far.mul_(ratio[:, None])
        flat = delta.view(-1)  # summed over the modes, |delta|^2 = (sqrt(I_meas) - sqrt(I))^2
        self.err_parts.append(torch.vdot(flat, flat).real)
        return torch.fft.ifft2(delta, norm="ortho")

    def _batch(self, g, refine):
        torch = self.torch
        o = self.opts
        idx = self.batches[g]
        k = len(idx)
        ws = self._workspace(k)
        ky, kx, _, ramp_c = self._geometry(g)
        spec_out = None
        if refine:
            # the spectra of the windows and of their own updates go straight into the
            # registration's queue (see _register)
            spec_out, solo_out = self._registration_slots(g)
        win = self._window(g, ws, spec_out)
        probe = self.probe
        m = probe.shape[0]
        diff = self._exit_corrections(g, win, ws)  # psi' - psi

        # probe update (eq. 5) from the windows before their update: sum_j psi_j o_j^* and
        # sum_j |o_j|^2 (vecdot conjugates its first argument)
        p_num = torch.linalg.vecdot(win[:, None], diff, dim=0)
        p_den = _power_sum(win, 0, ws["upd"])
        # object update (eq. 6), in the probe's frame
        if m == 1:
            o_num = torch.mul(diff[:, 0], probe[0].conj(), out=ws["upd"])
        else:
            o_num = torch.sum(torch.mul(diff, probe.conj(), out=ws["wave"]), 1, out=ws["upd"])
        power = _power_sum(probe, 0, ws["probe"])  # sum_p |P_p|^2
        gamma = o["gamma"]
        alpha_obj = o["alpha_obj"] * self.step_scale
        peak = power.max()
        solo_spec = None
        if self.disjoint[g] or k == 1 or refine:
            # equation 6's denominator for one window
            den_one = peak if gamma == 1.0 else power.mul(1.0 - gamma).add_(peak, alpha=gamma)
        if self.disjoint[g] or k == 1:
            # equation 6 as it stands: no window of this batch overlaps another
            upd = o_num.mul_(alpha_obj / den_one)
        else:
            if refine:
                # the registration needs each window's own update as equation 6 gives it,
                # not its share of the batch's average
                # (the crop's buffer is free: with refinement the probe sees the shifted win)
                solo = torch.mul(o_num, alpha_obj / den_one, out=ws["crop"])
                solo_spec = torch.fft.fft2(solo, out=solo_out)
            # overlapping windows: where their summed illumination S exceeds what equation 6
            # divides by, divide by S instead (the corrections of the windows are averaged
            # rather than added, so together they never overshoot):
            # den = max(S, gamma peak + (1 - gamma) S) = (1 - gamma) S + gamma max(S, peak)
            total = ws["total"].zero_()
            self._scatter_add(total, ky, kx, power.expand(k, *power.shape))
            local = torch.ops.aten.index.Tensor_out(
                total.as_strided(self.windows.shape, self.windows.stride()), [ky, kx], out=ws["power"])
            den = torch.clamp(local, min=peak, out=ws["den"]).mul_(gamma / alpha_obj)
            if gamma != 1.0:
                den.add_(local, alpha=(1.0 - gamma) / alpha_obj)
            upd = o_num.mul_(den.reciprocal_())  # alpha_obj / den
        if self.subpixel:
            if refine and solo_spec is None:
                # the window's own update is the update: its spectrum serves both
                solo_spec = torch.fft.fft2(upd, out=solo_out)
                upd_spec = torch.mul(solo_spec, ramp_c, out=ws["upd_spec"])
            else:
                upd_spec = torch.fft.fft2(upd).mul_(ramp_c)
            upd = torch.fft.ifft2(upd_spec)
        self._scatter_add(self.obj, ky, kx, upd)
        beta = o["beta"]
        # equation 5 with numerator and denominator summed over the batch (for one window,
        # equation 5 itself); the common probe takes the weighted mean of the corrections
        p_peak = p_den.max()
        den = p_peak if beta == 1.0 else p_den.mul(1.0 - beta).add_(p_peak, alpha=beta)
        probe.addcdiv_(p_num, den, value=o["alpha_probe"] * self.step_scale)  # in place: the
        # probe keeps its storage (CUDA graphs read it there)

    def _batch_graph(self, g):
        """Batch ``g`` through a CUDA graph (see CUDA_GRAPHS): eagerly on its first visit (on
        the engine's own stream, the one it is captured on: it creates the FFT plans, library
        workspaces and buffers the capture will use), captured on the second, replayed on
        every visit after. The graph reads and writes the object, the probe and the batch's
        workspace where they are; its error value is a tensor of its own. A replay relies on
        torch's cuFFT plan cache keeping the plans it was captured with."""
        torch = self.torch
        with torch.cuda.device(self.dev):
            entry = self.graphs.get(g)
            if entry is None:
                if self.graph_stream is None:
                    self.graph_stream = torch.cuda.Stream(self.dev)
                stream, current = self.graph_stream, torch.cuda.current_stream(self.dev)
                if g not in self.warm:
                    self.warm.add(g)
                    stream.wait_stream(current)
                    with torch.cuda.stream(stream):
                        self._batch(g, False)
                    current.wait_stream(stream)
                    return
                parts, self.err_parts = self.err_parts, []
                try:
                    graph = torch.cuda.CUDAGraph()
                    # records the kernels, runs none of them
                    with torch.cuda.graph(graph, stream=stream, capture_error_mode="thread_local"):
                        self._batch(g, False)
                    entry = self.graphs[g] = (graph, self.err_parts[0])
                finally:
                    self.err_parts = parts
            graph, error = entry
            graph.replay()
        self.err_parts.append(error)

    # -- one iteration ---------------------------------------------------------------
    def step(self):
        torch = self.torch
        self.err_parts = []
        if self.auto_batches and self.lbfgs is None:
            self._grow_batches()
        if self.lbfgs is not None:
            error = self.lbfgs.step()
            self.iteration += 1
            self.history.append(float(error))
            return error
        refine = self.refinement is not None and self.iteration >= self.refine_start
        order = torch.randperm(len(self.batches), generator=self.gen).tolist()
        # momentum accompanies the mini-batches; with all positions in one batch the
        # iteration is deterministic, and the automatic schedule lets it settle instead
        momentum = self.momentum and self.batch_size < self.n_pos
        if momentum:
            if self.obj_before is None:
                self.obj_before = torch.empty_like(self.obj)
            self.obj_before.copy_(self.obj)
        for g in order:
            if self.graphs is None:
                self._batch(g, refine)
            else:
                self._batch_graph(g)
        if refine:
            self._register()
        if momentum:
            self._momentum_step()
        if refine:
            self._move_positions()
            self._positions_moved()
        self.iteration += 1
        if self.probe.shape[0] > 1 and self.iteration % self.orthogonalize_every == 0:
            self.probe.copy_(self._orthogonal_modes()[0])
        error = torch.sqrt(torch.stack(self.err_parts).sum() / self.amp_norm)
        if self.auto_batches:
            self.history.append(float(error))  # one host synchronisation per iteration
        return error

    def _momentum_step(self):
        """Heavy-ball momentum on the object, once per iteration (mPIE's momentum, Maiden,
        Johnson & Li 2017): ``v <- eta v + (O_new - O_old)``, ``O_new <- O_new + eta v``.
        Along directions that the iterations keep correcting the same way (the slowly
        converging low spatial frequencies), the steps add up to about ``1 / (1 - eta)``
        times one step, while the alternating parts (the noise of single batches) cancel."""
        eta = self.momentum
        change = self.obj_before.neg_().add_(self.obj)  # the buffer now holds O_new - O_old
        if self.velocity is None:
            self.velocity = change.clone()
        else:
            self.velocity.mul_(eta).add_(change)
        self.obj.add_(self.velocity, alpha=eta)

    def _registration_slots(self, g):
        """Where batch ``g`` puts the spectra of its windows and of their own updates: rows
        of the registration's queue (registered, and emptied, first if it is full)."""
        torch = self.torch
        k = len(self.batches[g])
        if self.reg_spec is None or self.reg_count + k > self.reg_spec.shape[0]:
            self._register()
            ny, nx = self.win
            itemsize = torch.empty((), dtype=self.cplx).element_size()
            rows = max(k, min(self.n_pos, REGISTRATION_CHUNK_BYTES // (2 * ny * nx * itemsize)))
            if self.reg_spec is None or rows > self.reg_spec.shape[0]:
                self.reg_spec = torch.empty(rows, ny, nx, device=self.dev, dtype=self.cplx)
                self.reg_solo = torch.empty_like(self.reg_spec)
        rows = slice(self.reg_count, self.reg_count + k)
        self.reg_batches.append(self.batches[g])
        self.reg_count += k
        return self.reg_spec[rows], self.reg_solo[rows]

    def _register(self):
        """The error signal of the refinement: the shift between each queued window and the
        window after its own update (the paper's XCORR_A) -> ``shift_signal``.

        The spectra of all batches of a sweep (or of REGISTRATION_CHUNK_BYTES of them) are
        registered together, each window against its own update: the same shifts as batch
        by batch, with a few dozen operations per sweep instead of per batch."""
        if not self.reg_count:
            return
        torch = self.torch
        from torchscope.backend import register_cross_power

        spec = self.reg_spec[:self.reg_count]
        after = self.reg_solo[:self.reg_count].add_(spec)  # the window after its update
        # the cross-power spectra, in place (no fresh multi-megabyte tensor per iteration)
        product = after.mul_(spec.conj())
        shift = register_cross_power(product, upsample=_REGISTRATION_UPSAMPLE,
                                     normalization=None, start="zero", interpolate=True)
        self.shift_signal[torch.cat(self.reg_batches)] = shift.to(self.pos_dtype)
        self.reg_batches = []
        self.reg_count = 0

    def _move_positions(self):
        torch = self.torch
        g = self.shift_signal
        if self.refinement == "adam":
            b1, b2 = _ADAM_BETAS
            self.adam_t += 1
            self.adam_m.mul_(b1).add_(g, alpha=1 - b1)
            self.adam_v.mul_(b2).addcmul_(g, g, value=1 - b2)
            m_hat = self.adam_m / (1 - b1 ** self.adam_t)
            v_hat = self.adam_v / (1 - b2 ** self.adam_t)
            step = self.refine_step * m_hat / (torch.sqrt(v_hat) + _ADAM_EPS)
        else:
            step = self.refine_step * g
        # a common translation of all positions is not observable: keep their mean fixed
        step = step - step.mean(0)
        corner = self.positions - step + self.base
        corner = torch.minimum(torch.clamp(corner, min=0.0), self.corner_max)
        self.positions = corner - self.base

    def state(self):
        """What a continuation needs besides object, probe modes and positions to go on as if
        it had never stopped (host copies; see :meth:`restore`)."""
        def host(t):
            return None if t is None else to_numpy(t, copy=True)

        state = {
            "probe": host(self.probe), "seed": self.seed, "generator": host(self.gen.get_state()),
            "auto_batches": self.auto_batches, "batch_size": self.batch_size,
            "groups": self.groups, "history": list(self.history),
            "phase_start": self.phase_start, "step_scale": self.step_scale,
            "velocity": host(self.velocity),
            "refinement": self.refinement, "refine_start": self.refine_start,
            "lbfgs": None if self.lbfgs is None else self.lbfgs.state(),
        }
        if self.refinement == "adam":
            state["adam"] = (host(self.adam_m), host(self.adam_v), self.adam_t)
        return state

    def restore(self, state, given_modes=None):
        """Take up the parts of ``state`` (from :meth:`state`) that fit this run's options: the
        unorthogonalised probe when the modes are the same (and ``given_modes``, the snapshot's
        ``probe_modes`` as handed back, are still what it reported), the automatic schedule's progress
        when both runs use it, the object's velocity when both use momentum, the refinement's
        start and Adam's moments when the refinement is the same, and the random order of the
        batches when the seed is the same. With the same options, the continuation computes
        exactly what the uninterrupted run would have."""
        from torchscope.ptycho._probe import orthogonalize_modes

        def own(array, dtype):  # a copy: the engine updates its tensors in place, and the
            t = to_tensor(array, device=self.dev, dtype=dtype)  # state stays reusable
            return t.clone() if t.device.type == "cpu" else t  # (elsewhere a copy already)

        if state["probe"].shape == tuple(self.probe.shape):
            # the state's unorthogonalised probe, unless the caller changed the snapshot's
            # modes (a known probe swapped in: it was silently replaced by the old one)
            kept = own(state["probe"], self.cplx)
            reported = to_numpy(orthogonalize_modes(kept)[0], np.complex64)
            if given_modes is None or np.array_equal(reported, given_modes):
                self.probe = kept
                self._drop_graphs()
        if self.auto_batches and state["auto_batches"] and \
                (self.refinement is None) == (state["refinement"] is None):
            self.set_batch_size(state["batch_size"], state["groups"])
            self.history = list(state["history"])
            self.phase_start = state["phase_start"]
            self.step_scale = state["step_scale"]
            lbfgs = state.get("lbfgs")
            if lbfgs is not None and self.finish == "lbfgs" and \
                    lbfgs["grad"][0].shape == tuple(self.obj.shape) and \
                    lbfgs["grad"][1].shape == tuple(self.probe.shape):
                from torchscope.ptycho._lbfgs import LBFGSFinish

                self.lbfgs = LBFGSFinish(self, lbfgs)
        velocity = state["velocity"]
        if self.momentum and velocity is not None and velocity.shape == tuple(self.obj.shape):
            self.velocity = own(velocity, self.cplx)
        if self.refinement is not None and self.refinement == state["refinement"]:
            self.refine_start = state["refine_start"]
            if "adam" in state:
                m, v, self.adam_t = state["adam"]
                self.adam_m, self.adam_v = own(m, self.pos_dtype), own(v, self.pos_dtype)
        if self.seed == state["seed"]:
            self.gen.set_state(to_tensor(state["generator"], device="cpu"))

    def _diverged(self):
        return DivergenceError(
            f"the reconstruction diverged by iteration {self.iteration}: NaN or infinite values "
            "in the object or probe. Lower alpha_obj / alpha_probe, use engine='rpie' with "
            "smaller beta / gamma, or check the data (scale, mask, positions)."
        )

    def _orthogonal_modes(self):
        """``orthogonalize_modes`` of the probe; a probe that holds NaN or inf (eigh does not
        converge on it: torch raised its own LinAlgError) is the divergence it is."""
        from torchscope.ptycho._probe import orthogonalize_modes

        try:
            return orthogonalize_modes(self.probe)
        except self.torch.linalg.LinAlgError:
            raise self._diverged() from None

    def snapshot(self, error):
        torch = self.torch
        modes, occ = self._orthogonal_modes()
        if not (math.isfinite(error) and bool(torch.isfinite(self.obj).all())
                and bool(torch.isfinite(modes).all())):
            raise self._diverged()
        return Snapshot(
            iteration=self.iteration,
            obj=to_numpy(self.obj, np.complex64, copy=True),
            probe_modes=to_numpy(modes, np.complex64, copy=True),
            positions_px=to_numpy(self.positions, np.float64, copy=True),
            error=float(error),
            occupancies=to_numpy(occ, np.float64, copy=True),
            state=self.state(),
        )


# ------------------------------------------------------------------------------ public API

def _prepare(data, *, engine, modes, alpha_obj, alpha_probe, beta, gamma, probe, obj, obj_shape,
             position_refinement, refine_step, refine_start, batch_size, momentum,
             orthogonalize_every, start, seed, device, finish="auto"):
    if not isinstance(data, PtychoData):
        raise TypeError(f"data must be a PtychoData, got {type(data).__name__}")
    data = dataclasses.replace(data)  # checked again: its fields may have been edited since
    opts = _resolve_options(engine, alpha_obj, alpha_probe, beta, gamma)
    check_choice("position_refinement", position_refinement, REFINEMENTS)
    check_choice("finish", finish, FINISHES)
    if refine_step is None and position_refinement is not None:
        refine_step = REFINE_STEP[position_refinement]
    refine_step = check_real("refine_step", refine_step, 0, low_open=True, allow_none=True,
                             type_error=ValueError)
    refine_start = check_int("refine_start", refine_start, 0, type_error=ValueError)
    batch_size = check_int("batch_size", batch_size, 1, allow_none=True, type_error=ValueError)
    if finish not in ("auto", None) and (batch_size is not None
                                         or position_refinement is not None):
        raise ValueError(
            f"finish={finish!r} ends the automatic batch schedule with fixed positions: it needs "
            f"batch_size=None and position_refinement=None (got batch_size={batch_size!r}, "
            f"position_refinement={position_refinement!r})"
        )
    momentum = check_real("momentum", momentum, 0, 1, high_open=True, allow_none=True,
                          type_error=ValueError)
    orthogonalize_every = check_int("orthogonalize_every", orthogonalize_every, 1,
                                    type_error=ValueError)
    seed = check_int("seed", seed, 0, 2 ** 63 - 1, allow_none=True, type_error=ValueError)
    positions = np.ascontiguousarray(data.positions_px, dtype=np.float64)
    iteration0 = 0
    if start is not None:
        if not isinstance(start, Snapshot):
            raise TypeError(f"start must be a Snapshot or Result, got {type(start).__name__}")
        if probe is not None or obj is not None:
            raise ValueError("give either start= or probe=/obj=, not both")
        probe, obj, iteration0 = start.probe_modes, start.obj, int(start.iteration)
        positions = np.ascontiguousarray(start.positions_px, dtype=np.float64)
        if positions.shape != data.positions_px.shape:
            raise ValueError(
                f"start has {positions.shape[0]} positions, the data {data.positions_px.shape[0]}"
            )
    given_modes = None if probe is None else check_probe(probe).shape[0]
    if modes is None:
        modes = given_modes or 1
    modes = check_int("modes", modes, 1, type_error=ValueError)
    if given_modes is not None and given_modes > modes:
        raise ValueError(f"probe has {given_modes} modes but modes={modes}; pass modes={given_modes}")
    if finish == "auto":  # L-BFGS where PIE stalls trading modes (see AUTO_FINISH_MODES)
        finish = ("lbfgs" if modes >= AUTO_FINISH_MODES and batch_size is None
                  and position_refinement is None else None)
    if obj_shape is not None:
        if obj is not None:
            raise ValueError("give either obj= or obj_shape=, not both")
        obj_shape = check_shape(obj_shape)
    engine_obj = _Engine(
        data, opts=opts, modes=modes, probe=probe, obj=obj, obj_shape=obj_shape,
        positions=positions, refinement=position_refinement, refine_step=refine_step,
        refine_start=refine_start, batch_size=batch_size, momentum=momentum,
        orthogonalize_every=orthogonalize_every, seed=seed, device=device, finish=finish,
    )
    engine_obj.iteration = iteration0
    engine_obj.refine_start = iteration0 + refine_start
    if start is not None and start.state is not None:
        engine_obj.restore(start.state, given_modes=np.asarray(start.probe_modes))
    # the refinement's start as it holds: a continuation with the same refinement keeps the
    # first run's (restore), which the options once misreported as the value passed
    refine_start = max(engine_obj.refine_start - iteration0, 0)
    options = dict(engine=engine, modes=modes, **opts, position_refinement=position_refinement,
                   refine_step=refine_step, refine_start=refine_start, batch_size=batch_size,
                   momentum=engine_obj.momentum, orthogonalize_every=orthogonalize_every,
                   finish=finish, seed=seed, device=device_name(engine_obj.dev),
                   obj_shape=engine_obj.obj_shape)
    return engine_obj, options


def _run(engine_obj, iterations, every, history):
    import torch

    pending = []
    done = 0
    while iterations is None or done < iterations:
        pending.append(engine_obj.step())
        done += 1
        if done % every == 0 or done == iterations:
            errors = to_numpy(torch.stack(pending), np.float64)
            pending = []
            history.extend(errors.tolist())
            yield engine_obj.snapshot(errors[-1])


def iterate(data, *, engine="rpie", modes=None, alpha_obj=None, alpha_probe=None, beta=None,
            gamma=None, position_refinement=None, refine_step=None, refine_start=10, probe=None,
            obj=None, obj_shape=None, start=None, iterations=None, batch_size=None,
            momentum=None, orthogonalize_every=5, finish="auto", every=1, seed=None, device=None):
    """Reconstruct object and probe step by step: a generator of :class:`Snapshot`.

    The generator can be abandoned between snapshots (that is how the napari widget stops it);
    :func:`reconstruct` runs it to the end.

    Parameters
    ----------
    data : PtychoData
        Centred diffraction patterns and scan positions (pixels from the object's centre).
    engine : {"rpie", "epie"}
        ``"rpie"``: M-rPIE, the paper's equations 5-7. ``"epie"``: M-ePIE (``beta = gamma = 1``).
        With ``modes=1`` these are rPIE and ePIE.
    modes : int, optional
        Number of mutually incoherent probe modes. Default: the number of modes of ``probe`` (or
        ``start``), else 1. Extra modes start as the first mode times x, y, xy, ... with a few
        per cent of its power.
    alpha_obj, alpha_probe : float, optional
        Update rates alpha_O in (0, 2] and alpha_P in [0, 2] (0 keeps the probe fixed).
        Default 1 for both engines.
    beta, gamma : float, optional
        rPIE regularisation of the probe (beta) and object (gamma) updates, in (0, 1]: 1 is the
        ePIE step ``1 / max``; smaller values weight the update towards bright regions. Default
        for ``"rpie"``: beta 0.5, gamma 0.1 (Maiden et al. 2017's object value).
    position_refinement : {None, "adam", "fixed_gain"}
        Correct the scan positions from iteration ``refine_start`` on, with the shift between
        each object window and its update as the error signal: per-position Adam (the paper's
        scheme) or a constant gain (Zhang et al. 2013).
    refine_step : float, optional
        Adam's learning rate in pixels per iteration (default 0.5), or the fixed gain (default 2).
    refine_start : int
        Iterations before positions start to move (the object must take shape first).
    probe : ndarray, (ny, nx) or (modes, ny, nx) complex, optional
        Starting probe. Default: a flat disk half the window wide with the data's mean power.
    obj : ndarray, (Oy, Ox) complex, optional
        Starting object (its centre is position (0, 0)). Default: ones, of ``obj_shape``.
    obj_shape : (int, int), optional
        Shape of the object when ``obj`` is not given. Default: just large enough for all
        windows (plus a margin for refinement).
    start : Snapshot or Result, optional
        Continue from a previous snapshot: its object, probe modes and positions, its iteration
        count, and the engine's state at that point (the automatic schedule's progress, the
        momentum, the refinement's Adam moments, the random order of the batches) where the
        options allow, so that with the same options the continuation computes what the run
        would have computed without the stop.
    iterations : int, optional
        Stop after this many iterations (the last one always yields). ``None``: run until the
        caller stops.
    batch_size : int, optional
        Positions updated together (see the module notes); 1 is classic sequential PIE.
        Default: the automatic schedule (20 batches of at least 4 positions, fewer whenever
        the error stalls, then halved update rates; with position refinement 10 batches at
        first, at least 5, and no halved rates).
    momentum : float, optional
        The object's heavy-ball momentum per iteration, in [0, 1) (0: none, the plain
        equations), applied while the positions are split into several batches. Default: 0.5
        with the automatic schedule (``batch_size=None``), 0 with a given ``batch_size``.
    orthogonalize_every : int
        Orthogonalise the probe modes every this many iterations (and in every snapshot).
    finish : {"auto", None, "lbfgs"}
        How the automatic schedule ends. ``None``: with all positions in one batch, update
        rates halved whenever the error stalls. ``"lbfgs"``: at the first stall with at most
        10 batches left, object and probe modes are refined together by L-BFGS on the
        amplitude misfit, preconditioned by rPIE's denominators (``alpha_obj`` and
        ``alpha_probe`` no longer scale the steps; ``alpha_probe=0`` keeps the probe fixed).
        It converges much further on well-exposed data, several probe modes above all; at low
        dose (a few photons per pixel) it goes on to fit the noise, so the error may rise
        again. Needs ``batch_size=None`` and no position refinement. ``"auto"`` (default):
        ``"lbfgs"`` with two or more probe modes (where the halved rates stall far from the
        truth), ``None`` with one mode, a given ``batch_size`` or position refinement; the
        result's ``options`` record which.
    every : int
        Iterations between snapshots.
    seed : int, optional
        Seed of the batch composition and the random visiting order. ``None`` (the default):
        the batches are composed at random, so two runs differ; pass an integer to repeat a
        run (the napari dock always does).
    device : None, str or torch.device
        See :func:`torchscope.backend.get_device`.

    Yields
    ------
    Snapshot
        ``iteration``, ``obj``, ``probe_modes`` (orthogonal, strongest first), ``positions_px``,
        ``error`` (the normalised amplitude misfit ``sqrt(sum (sqrt(I) - |Psi|)^2 / sum I)`` of
        the last iteration, with the estimates of the moment each pattern was used) and
        ``occupancies``.

    Raises
    ------
    DivergenceError
        (a ``FloatingPointError``) if NaN or infinite values appear; checked at every snapshot,
        before anything is yielded.
    """
    every = check_int("every", every, 1, type_error=ValueError)
    iterations = check_int("iterations", iterations, 0, allow_none=True, type_error=ValueError)
    engine_obj, _ = _prepare(
        data, engine=engine, modes=modes, alpha_obj=alpha_obj, alpha_probe=alpha_probe,
        beta=beta, gamma=gamma, probe=probe, obj=obj, obj_shape=obj_shape,
        position_refinement=position_refinement, refine_step=refine_step,
        refine_start=refine_start, batch_size=batch_size, momentum=momentum,
        orthogonalize_every=orthogonalize_every, start=start, seed=seed, device=device,
        finish=finish,
    )
    yield from _run(engine_obj, iterations, every, [])


def reconstruct(data, *, iterations=100, engine="rpie", **options):
    """Run :func:`iterate` for ``iterations`` iterations and return the final :class:`Result`.

    Parameters
    ----------
    data : PtychoData
        The measurement (see :func:`iterate`).
    iterations : int, optional
        Iterations to run (at least 1).
    engine : {"epie", "rpie"}, optional
        As for :func:`iterate`.
    **options
        The other keyword options of :func:`iterate` (``modes``, ``alpha_obj``, ``alpha_probe``,
        ``beta``, ``gamma``, ``position_refinement``, ``finish``, ``start``, ``seed``,
        ``device``, ...), except ``every``.

    Returns
    -------
    Result
        The last snapshot, ``errors`` (the error of every iteration of this call: a run
        continued with ``start=`` counts on in ``iteration``, its ``errors`` start again) and
        ``options`` (all parameters, defaults resolved, for reproducibility).
    """
    iterations = check_int("iterations", iterations, 1, type_error=ValueError)
    if "every" in options:
        raise TypeError("reconstruct() takes no 'every'; use iterate() for intermediate snapshots")
    engine_obj, opts = _prepare(data, engine=engine, **_with_defaults(options))
    history = []
    last = None
    for last in _run(engine_obj, iterations, iterations, history):
        pass
    opts["iterations"] = iterations
    return Result(**vars(last), errors=np.asarray(history), options=opts)


def _with_defaults(options):
    known = {"modes": None, "alpha_obj": None, "alpha_probe": None, "beta": None, "gamma": None,
             "position_refinement": None, "refine_step": None, "refine_start": 10, "probe": None,
             "obj": None, "obj_shape": None, "start": None, "batch_size": None,
             "momentum": None, "orthogonalize_every": 5, "finish": "auto", "seed": None,
             "device": None}
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(f"reconstruct() got unexpected keyword argument(s) {unknown}")
    known.update(options)
    return known

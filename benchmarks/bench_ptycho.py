"""Speed and quality of ``torchscope.ptycho`` against PtyLab and pty-chi on the issue's problem.

The problem (issue 4): a 256 x 256 complex object, amplitude ``0.6 + 0.4 camera`` and phase
``pi (astronaut - 0.5)`` (scikit-image's bundled images, 2 x 2 block means of the 512 x 512
originals, astronaut as luminance); a 64 x 64 probe, a 40 px disk with a 4 px soft edge and a
2.5 rad quadratic phase at its rim; a 10 x 10 raster with 10 px steps and +-2 px integer
jitter (100 positions, about 75 % overlap); far field; 1e6 photons per pattern, Poisson noise.
Quality is the object NRMSE (``torchscope.ptycho.object_error``: after sub-pixel registration
and removal of the global complex factor and phase ramp) on the region lit to at least half the
maximum (``lit_region``). Every code starts from the same probe (a flat 32 px disk with the
data's mean power) and a flat object of ones.

Cases
    - ePIE / rPIE with one mode, 200 iterations: seconds per iteration and NRMSE, ours and the
      peers (PtyLab ePIE; pty-chi rPIE and LSQ-ML), one thread each; each peer code runs in a
      child process of its own (``peer_processes``), one case at a time;
    - 3-mode data (occupancies 0.60, 0.25, 0.15) reconstructed with 3 modes: time (also as a
      multiple of PtyLab's one-mode ePIE time in this run), NRMSE and the recovered
      occupancies;
    - position refinement: the positions handed to the engine carry a Gaussian error of 2.7 px
      RMS (2-D); RMS error after the run (the mean offset removed: a common translation is
      not observable), and the time per iteration with and without refinement (without it
      both with the automatic batch schedule and with fixed batches the size of the
      refinement's first ones);
    - 1e4 photons per pattern: NRMSE every 10 iterations; the largest rise between two
      checkpoints (the issue asks that the error never grows).

Time per iteration is the wall time of the whole run divided by the number of iterations (for
torchscope that includes the set-up and the final snapshot); with ``--rounds N`` every case
runs N times, one round of all cases after another, and the median is reported (ratios are
taken between medians). The four position-refinement runs are timed side by side instead, 10
iterations of one, then of the next (``run_interleaved``), and their ratios are the median of
the ratios within each round: the machine's speed drifts too much between runs made one after
the other. Timings taken while other work
loads the machine are provisional.

Usage::

    python benchmarks/bench_ptycho.py                    # 1 thread, CPU, 200 iterations
    python benchmarks/bench_ptycho.py --quick            # smoke test: few iterations
    python benchmarks/bench_ptycho.py --rounds 3         # median time of 3 rounds of every case
    python benchmarks/bench_ptycho.py --seeds 6          # quality figures on 6 seeds of the problem
    python benchmarks/bench_ptycho.py --device cuda --no-peers
    python benchmarks/bench_ptycho.py --speed-only --no-peers    # 1- and 3-mode times only
"""

import argparse
import contextlib
import io
import logging
import os
import platform
import sys
import tempfile
import time
import types
import warnings

import numpy as np


def _block_mean(image):
    h, w = image.shape[0] // 2, image.shape[1] // 2
    return image[:2 * h, :2 * w].reshape(h, 2, w, 2).mean(axis=(1, 3))


def problem(*, photons=1e6, modes=1, occupancies=None, seed=0):
    """The issue's benchmark problem: (object, probe, positions, data, roi)."""
    from skimage import data

    from torchscope import ptycho

    cam = _block_mean(data.camera().astype(np.float64) / 255.0)
    ast = _block_mean(data.astronaut().astype(np.float64) @ [0.2125, 0.7154, 0.0721] / 255.0)
    obj = (0.6 + 0.4 * cam) * np.exp(1j * np.pi * (ast - 0.5))
    probe = ptycho.make_probe(64, kind="disk", diameter_px=40, edge_px=4,
                              quadratic_phase_rad=2.5, modes=modes, occupancies=occupancies)
    pos = ptycho.raster_positions(10, 10, jitter_px=2, integer=True, rng=seed)
    measured = ptycho.simulate(obj, probe, pos, photons=photons, rng=seed)
    roi = ptycho.lit_region(probe, pos, obj.shape, fraction=0.5)
    return obj, probe, pos, measured, roi


def start_probe(measured):
    """The common starting probe: a flat 32 px soft disk with the data's mean power."""
    from torchscope import ptycho

    power = measured.patterns.sum(axis=(1, 2)).mean()
    return (ptycho.make_probe(64, kind="disk", diameter_px=32, edge_px=2) * np.sqrt(power)).astype(np.complex64)


def rms_position_error(found, truth):
    e = np.asarray(found) - truth
    e = e - e.mean(axis=0)
    return float(np.sqrt(np.mean(np.sum(e ** 2, axis=1))))


# ------------------------------------------------------------------------------- torchscope
def common_options(measured, device):
    """What every torchscope run of the benchmark shares: start, object size, seed, device."""
    return {"probe": start_probe(measured), "obj_shape": (256, 256), "seed": 0, "device": device}


def _wait(device):
    """Let the device finish its queued work (a timer must not stop before the GPU does)."""
    if device != "cpu":
        import torch

        torch.cuda.synchronize()


def run_ours(measured, iterations, device, **options):
    from torchscope import ptycho

    t0 = time.perf_counter()
    result = ptycho.reconstruct(measured, iterations=iterations,
                                **common_options(measured, device), **options)
    _wait(device)
    return result, (time.perf_counter() - t0) / iterations


def run_interleaved(measured, iterations, device, cases, block=10):
    """Run the reconstructions ``cases`` ({key: options}) side by side: ``block`` iterations
    of one, then of the next, and so on (``iterate`` with ``every=block``). The speed of this
    shared 2-core virtual machine drifts by up to 2 x over seconds, which moves the ratio of two
    runs made one after the other by +-20 %; blocks of a fraction of a second hit every case
    with the same drift, and are long enough that each case finds its own data in the caches.
    Returns {key: (result, seconds per iteration)}."""
    from torchscope import ptycho

    runs = {key: ptycho.iterate(measured, iterations=iterations, every=block,
                                **common_options(measured, device), **options)
            for key, options in cases.items()}
    seconds = dict.fromkeys(runs, 0.0)
    last = {}
    while runs:
        for key in list(runs):
            t0 = time.perf_counter()
            try:
                last[key] = next(runs[key])
            except StopIteration:
                del runs[key]
            _wait(device)
            seconds[key] += time.perf_counter() - t0
    return {key: (last[key], seconds[key] / iterations) for key in cases}


def error_curve(measured, truth, roi, iterations, every, device, **options):
    from torchscope import ptycho

    curve = []
    for snap in ptycho.iterate(measured, iterations=iterations, every=every,
                               **common_options(measured, device), **options):
        curve.append((snap.iteration, ptycho.object_error(snap.obj, truth, roi)))
    return curve


def wrong_positions(pos, seed=7):
    """The refinement case's starting positions: a Gaussian error of exactly 2.7 px RMS."""
    error = np.random.default_rng(seed).normal(size=pos.shape)
    error -= error.mean(axis=0)
    error *= 2.7 / rms_position_error(pos + error, pos)
    return pos + error


def quality_over_seeds(seeds, iterations, device):
    """The quality figures on ``seeds`` variants of the problem (raster jitter, Poisson noise and
    the refinement's position errors drawn from each seed; the objects and the probe are the
    same): NRMSE of ePIE, rPIE and 3 modes, each rPIE case also with the L-BFGS finish, the
    occupancies' largest error (of either 3-mode run), Adam's final RMS position error and its
    worst position, and the low-dose run's largest rise (without and with the finish)."""
    from torchscope import ptycho

    print("| seed | ePIE | rPIE | rPIE + L-BFGS | 3 modes | 3 modes + L-BFGS | occupancies, "
          "largest error | Adam: RMS (worst) px | 1e4 photons: largest rise | same, + L-BFGS |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    table = []
    for seed in range(seeds):
        obj, _, pos, measured, roi = problem(seed=seed)
        nrmse = [ptycho.object_error(run_ours(measured, iterations, device, **o)[0].obj, obj, roi)
                 for o in ({"engine": "epie"}, {"engine": "rpie"},
                           {"engine": "rpie", "finish": "lbfgs"})]
        obj3, _, _, measured3, roi3 = problem(modes=3, occupancies=(0.6, 0.25, 0.15), seed=seed)
        three = [run_ours(measured3, iterations, device, engine="rpie", modes=3, finish=f)[0]
                 for f in (None, "lbfgs")]
        occ = max(float(np.max(np.abs(r.occupancies - [0.6, 0.25, 0.15]))) for r in three)
        wrong = ptycho.PtychoData(measured.patterns, wrong_positions(pos, 7 + seed),
                                  measured.geometry)
        ra = run_ours(wrong, iterations, device, engine="rpie", position_refinement="adam")[0]
        d = ra.positions_px - pos
        d = d - d.mean(axis=0)
        worst = float(np.sqrt(np.max(np.sum(d ** 2, axis=1))))
        obj4, _, _, measured4, roi4 = problem(photons=1e4, seed=seed)
        every = 10 if iterations >= 20 else 2
        rises = []
        for finish in (None, "lbfgs"):
            curve = [e for _, e in error_curve(measured4, obj4, roi4, iterations, every, device,
                                               engine="rpie", finish=finish)]
            rises.append(float(np.max(np.diff(curve))))
        values = (*nrmse, *(ptycho.object_error(r.obj, obj3, roi3) for r in three), occ,
                  rms_position_error(ra.positions_px, pos), worst, *rises)
        table.append(values)
        print(f"| {seed} | " + " | ".join(f"{v:.4f}" for v in values[:5]) + f" | {occ:.3f} | "
              f"{values[6]:.3f} ({worst:.2f}) | {rises[0]:+.1e} | {rises[1]:+.1e} |", flush=True)
    t = np.array(table)
    print("| median | " + " | ".join(f"{np.median(t[:, i]):.4f}" for i in range(5))
          + f" | {np.median(t[:, 5]):.3f} | {np.median(t[:, 6]):.3f} | | |")
    print()
    print(f"targets met on {seeds} seeds: ePIE <= 0.05: {int(np.sum(t[:, 0] <= 0.05))}, "
          f"rPIE <= 0.05: {int(np.sum(t[:, 1] <= 0.05))} (+ L-BFGS: {int(np.sum(t[:, 2] <= 0.05))}), "
          f"3 modes <= 0.045: {int(np.sum(t[:, 3] <= 0.045))} (+ L-BFGS: "
          f"{int(np.sum(t[:, 4] <= 0.045))}), occupancies within 0.05: {int(np.sum(t[:, 5] <= 0.05))}, "
          f"Adam <= 0.25 px: {int(np.sum(t[:, 6] <= 0.25))}, never grows: "
          f"{int(np.sum(t[:, 8] <= 0))} (+ L-BFGS: {int(np.sum(t[:, 9] <= 0))})")
    return t


# ----------------------------------------------------------------------------------- peers
def run_ptylab(measured, iterations, engine="ePIE"):
    """PtyLab's own engine on the same data (written to a PtyLab HDF5 file), no monitor."""
    import h5py
    import PtyLab
    from PtyLab import Engines

    logging.disable(logging.WARNING)
    g = measured.geometry
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.hdf5")
        with h5py.File(path, "w") as f:
            f["ptychogram"] = measured.patterns
            f["encoder"] = measured.positions_px * g.sample_pixel_m  # (y, x) in metres
            f["wavelength"] = g.wavelength_m
            f["dxd"] = g.detector_pixel_m
            f["zo"] = g.detector_distance_m
        with contextlib.redirect_stdout(io.StringIO()):  # PtyLab prints while it reads
            exp, rec, params, mon, _ = PtyLab.easyInitialize(
                path, engine=getattr(Engines, engine), operationMode="CPM", dummyMonitor=True)
    params.gpuSwitch = False
    params.positionOrder = "random"
    params.propagatorType = "Fraunhofer"
    rec.probe = start_probe(measured).reshape(1, 1, 1, 1, 64, 64)
    rec.object = np.ones((1, 1, 1, 1, rec.No, rec.No), np.complex64)
    eng = getattr(Engines, engine)(rec, exp, params, mon)
    eng.numIterations = iterations
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # tqdm progress bars
            t0 = time.perf_counter()
            eng.reconstruct()
            dt = (time.perf_counter() - t0) / iterations
    finally:
        logging.disable(logging.NOTSET)
    return np.asarray(rec.object).reshape(rec.No, rec.No), dt


def _stub_torchvision():
    """pty-chi imports ``torchvision.transforms.GaussianBlur`` at import time; torchvision is
    broken next to the CPU build of torch here, and the features used below never call it."""
    if "torchvision" in sys.modules and hasattr(sys.modules["torchvision"], "transforms"):
        return
    tv = types.ModuleType("torchvision")
    tvt = types.ModuleType("torchvision.transforms")

    class GaussianBlur:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("torchvision is stubbed in this benchmark")

    tvt.GaussianBlur = GaussianBlur
    tv.transforms = tvt
    sys.modules["torchvision"] = tv
    sys.modules["torchvision.transforms"] = tvt


def run_ptychi(measured, iterations, engine="RPIE"):
    """pty-chi's engine on the same data with its default options (a batch of 100 positions,
    its default step sizes), on the CPU."""
    import torch

    _stub_torchvision()
    from ptychi import api
    from ptychi.api.task import PtychographyTask

    logging.getLogger("ptychi").setLevel(logging.ERROR)
    opts = getattr(api, f"{engine}Options")()
    opts.data_options.data = torch.as_tensor(measured.patterns)
    opts.data_options.wavelength_m = measured.geometry.wavelength_m
    opts.object_options.initial_guess = torch.ones([1, 256, 256], dtype=torch.complex64)
    opts.object_options.pixel_size_m = measured.geometry.sample_pixel_m
    opts.object_options.optimizable = True
    opts.probe_options.initial_guess = torch.as_tensor(start_probe(measured))[None, None]
    opts.probe_options.optimizable = True
    opts.probe_position_options.position_x_px = torch.as_tensor(measured.positions_px[:, 1], dtype=torch.float32)
    opts.probe_position_options.position_y_px = torch.as_tensor(measured.positions_px[:, 0], dtype=torch.float32)
    opts.probe_position_options.optimizable = False
    opts.reconstructor_options.num_epochs = iterations
    opts.reconstructor_options.default_device = api.Devices.CPU
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task = PtychographyTask(opts)
        t0 = time.perf_counter()
        task.run()
        dt = (time.perf_counter() - t0) / iterations
    return task.get_data_to_cpu("object", as_numpy=True)[0], dt


def _child_threads(threads):
    import torch

    torch.set_num_threads(threads)


def peer_processes(names, threads):
    """One child process per peer code, with ``threads`` torch threads: the peers run there,
    not in this process. After PtyLab and pty-chi had run in this process our refinement runs
    took 5 to 10 % longer each time (the C allocator's state is the likely cause), so in-process
    peers would tax whichever code happens to run after them."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    spawn = multiprocessing.get_context("spawn")
    return {name: ProcessPoolExecutor(1, mp_context=spawn, initializer=_child_threads,
                                      initargs=(threads,)) for name in names}


# ------------------------------------------------------------------------------------ main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true", help="smoke test: 6 iterations, 2 for peers")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every timed case this many times, in turn, and report the median "
                         "time and the range (the results are the same every round)")
    ap.add_argument("--cuda-graphs", action="store_true",
                    help="replay the batches as CUDA graphs (experimental: "
                         "torchscope.ptycho._engines.CUDA_GRAPHS; runs without refinement)")
    ap.add_argument("--speed-only", action="store_true",
                    help="only the one- and three-mode cases, with and without the L-BFGS "
                         "finish (no refinement, no low dose): the GPU-over-CPU comparison in a "
                         "few seconds of device time")
    ap.add_argument("--seeds", type=int, default=0,
                    help="instead of the timings: the quality figures on this many seeds of "
                         "the problem (jitter, noise and position errors; seed 0 is the default)")
    args = ap.parse_args(argv)

    import torch

    from torchscope import ptycho
    from torchscope.ptycho._engines import AUTO_MOMENTUM, AUTO_REFINE_BATCHES

    torch.set_num_threads(args.threads)
    if args.cuda_graphs:
        from torchscope.ptycho import _engines

        _engines.CUDA_GRAPHS = True
    its = 6 if args.quick else args.iterations
    peer_its = 2 if args.quick else its
    graphs = " with CUDA graphs" if args.cuda_graphs and args.device.startswith("cuda") else ""
    print(f"torchscope.ptycho on {args.device}{graphs}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), {os.cpu_count()} CPU(s), "
          f"{platform.processor() or platform.machine()}, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    # the errors of a 200-iteration run depend on the FFT's rounding, which differs with the
    # instruction set MKL picks (rPIE seed 0: 0.0197 with AVX-512, 0.0229 with AVX2)
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}, MKL_ENABLE_INSTRUCTIONS="
          f"{os.environ.get('MKL_ENABLE_INSTRUCTIONS', '(unset)')}")
    print(f"256 x 256 object, 64 x 64 probe, 10 x 10 raster (10 px, +-2 px jitter), "
          f"{its} iterations (peers {peer_its})")
    print()
    if args.seeds:
        return quality_over_seeds(args.seeds, its, args.device)

    obj, _, pos, measured, roi = problem()
    rows = []

    def row(code, case, seconds, nrmse, note=""):
        rows.append((code, case, seconds, nrmse, note))
        print(f"| {code} | {case} | {seconds:.4f} | {nrmse:.4f} | {note} |", flush=True)

    print("| code | case | s / iteration | NRMSE | notes |")
    print("|---|---|---:|---:|---|")

    obj3, _, _, measured3, roi3 = problem(modes=3, occupancies=(0.6, 0.25, 0.15))
    wrong = ptycho.PtychoData(measured.patterns, wrong_positions(pos), measured.geometry)
    start_rms = rms_position_error(wrong.positions_px, pos)

    # every case: (key, runner); all run once per round, in turn, so that a change of the
    # machine's speed hits all of them alike; the reported time is the median over rounds
    cases = [(("torchscope", engine), lambda e=engine: run_ours(measured, its, args.device,
                                                                 engine=e))
             for engine in ("epie", "rpie")]
    peers = {} if args.no_peers else peer_processes(("PtyLab", "pty-chi"), args.threads)
    if peers:
        cases += [((name, engine),
                   lambda n=name, r=runner, e=engine: peers[n].submit(r, measured, peer_its, e).result())
                  for name, runner, engine in (("PtyLab", run_ptylab, "ePIE"),
                                               ("pty-chi", run_ptychi, "RPIE"),
                                               ("pty-chi", run_ptychi, "LSQML"))]
    # rPIE with the L-BFGS finish (finish="lbfgs"), one mode and three
    cases.append((("torchscope", "rpie+lbfgs"),
                  lambda: run_ours(measured, its, args.device, engine="rpie", finish="lbfgs")))
    for finish in (None, "lbfgs"):
        cases.append((("torchscope", "3 modes", finish),
                      lambda f=finish: run_ours(measured3, its, args.device, engine="rpie",
                                                modes=3, finish=f)))
    # with refinement the automatic schedule starts with AUTO_REFINE_BATCHES batches and keeps
    # at least AUTO_REFINE_MIN_BATCHES; the run without refinement is timed both with its own
    # schedule (what a user gets) and with fixed batches of the refinement's first size and the
    # same momentum. These four run interleaved, 10 iterations at a time (their ratios are the
    # figure; see run_interleaved)
    first = -(-len(pos) // AUTO_REFINE_BATCHES)  # the refinement's first batch size
    refinement_runs = () if args.speed_only else (
        (None, None), (None, first), ("adam", None), ("fixed_gain", None))
    refinement_cases = {
        ("refinement", refinement, batch): {
            "engine": "rpie", "position_refinement": refinement, "batch_size": batch,
            "momentum": None if batch is None else AUTO_MOMENTUM}
        for refinement, batch in refinement_runs}
    times, results = {}, {}
    for _ in range(args.rounds):
        for key, (result, dt) in run_interleaved(wrong, its, args.device, refinement_cases).items():
            results[key] = result
            times.setdefault(key, []).append(dt)
        for key, runner in cases:
            if key in results and results[key] is None:
                continue  # a peer that is not installed
            try:
                results[key], dt = runner()
            except ImportError as exc:
                print(f"note: skipped {key[0]} {key[1]}: {exc}")
                results[key] = None
                continue
            times.setdefault(key, []).append(dt)
    for pool in peers.values():
        pool.shutdown()
    t = {key: float(np.median(v)) for key, v in times.items()}
    spread = {key: (min(v), max(v)) for key, v in times.items()}

    def seconds(key):
        lo, hi = spread[key]
        return "" if args.rounds == 1 else f"; {len(times[key])} rounds: {lo:.4f} to {hi:.4f} s"

    for engine in ("epie", "rpie"):
        key = ("torchscope", engine)
        row("torchscope", f"{engine}, 1 mode", t[key],
            ptycho.object_error(results[key].obj, obj, roi), seconds(key).lstrip("; "))
    peer_time = {}
    for key in [k for k, _ in cases if k[0] in ("PtyLab", "pty-chi")]:
        if results.get(key) is None:
            continue
        name, engine = key
        peer_time[key] = dt = t[key]
        ref = t["torchscope", "epie" if engine == "ePIE" else "rpie"]
        note = f"{dt / ref:.1f} x torchscope's {'epie' if engine == 'ePIE' else 'rpie'} time"
        rec = results[key]
        if np.all(np.isfinite(rec)):
            row(name, f"{engine}, 1 mode", dt, ptycho.object_error(rec, obj, roi), note + seconds(key))
        else:
            row(name, f"{engine}, 1 mode", dt, float("nan"), note + "; diverged (NaN)" + seconds(key))

    key = ("torchscope", "rpie+lbfgs")
    row("torchscope", "rpie + L-BFGS finish, 1 mode", t[key],
        ptycho.object_error(results[key].obj, obj, roi),
        f"{t[key] / t['torchscope', 'rpie']:.2f} x the rpie time" + seconds(key))
    for finish in (None, "lbfgs"):
        key = ("torchscope", "3 modes", finish)
        result, dt = results[key], t[key]
        occ = ", ".join(f"{o:.3f}" for o in result.occupancies)
        note = (f"occupancies {occ} (true 0.600, 0.250, 0.150); "
                f"{dt / t['torchscope', 'rpie']:.2f} x the 1-mode rpie time")
        if ("PtyLab", "ePIE") in peer_time:
            note += f", {dt / peer_time['PtyLab', 'ePIE']:.2f} x PtyLab's 1-mode ePIE time"
        case = "rpie" + (" + L-BFGS finish" if finish else "") + ", 3 modes (3-mode data)"
        row("torchscope", case, dt, ptycho.object_error(result.obj, obj3, roi3),
            note + seconds(key))

    def ratio(key, base):  # the median over rounds of the ratio within each round
        each = np.array(times[key]) / np.array(times[base])
        text = f"{np.median(each):.2f}"
        return text if len(each) == 1 else text + " (" + ", ".join(f"{r:.2f}" for r in each) + ")"

    for refinement, batch in refinement_runs:
        key = ("refinement", refinement, batch)
        result, dt = results[key], t[key]
        note = f"positions {start_rms:.2f} -> {rms_position_error(result.positions_px, pos):.3f} px RMS"
        if refinement is not None:
            note += (f"; {ratio(key, ('refinement', None, None))} x the time without "
                     f"refinement (automatic batches), {ratio(key, ('refinement', None, first))} x "
                     f"with fixed batches of {first} (interleaved runs; per round in brackets)")
        case = f"rpie, refinement {refinement}" + ("" if batch is None else f", batch_size={batch}")
        row("torchscope", case, dt, ptycho.object_error(result.obj, obj, roi), note + seconds(key))

    if args.speed_only:
        return rows
    # low dose: the error must not grow
    obj4, _, _, measured4, roi4 = problem(photons=1e4)
    every = 2 if args.quick else 10
    print()
    for finish in (None, "lbfgs"):
        curve = error_curve(measured4, obj4, roi4, its, every, args.device, engine="rpie",
                            finish=finish)
        values = np.array([e for _, e in curve])
        rise = float(np.max(np.diff(values))) if len(values) > 1 else 0.0
        name = "rpie" + (" + L-BFGS finish" if finish else "")
        print(f"1e4 photons, {name}: NRMSE every {every} iterations: "
              + " ".join(f"{e:.4f}" for _, e in curve))
        print(f"largest rise between checkpoints: {rise:+.2e} (never grows: {rise <= 0})")
    return rows


if __name__ == "__main__":
    main()

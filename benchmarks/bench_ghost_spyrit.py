"""torchscope.ghost side by side with SPyRiT on the same single-pixel data.

Setting (issue 3): 64 x 64 masks, 18.75 % sampling (the first 768 zigzag binary Hadamard
patterns), modulation depth D_r = 0.8, 3 % per-pixel mask transmission error, Poisson dose of
1000 photons per open pixel. Two objects: a 64 x 64 crop of ``skimage.data.camera()`` (rows
80-143, columns 200-263, scaled to [0, 1]; PSNR) and the stencilled "CAS" of
``torchscope.ghost.sample_object`` (PSNR and the paper's CNR, object = transmission >= 0.9,
background <= 0.1). Both are measured once by ``torchscope.ghost.simulate_buckets`` (seed 0);
every method reconstructs those same buckets, knowing D_r and the dose.

SPyRiT (PyPI ``spyrit``, LGPL; its import of torchvision is stubbed out here, as the CPU torch
build cannot load torchvision) measures Hadamard rows ``m = H x`` with +1/-1 rows ``H``. The
same 768 rows are given to its ``HadamSplit2d`` operator through an order matrix built from our
patterns (the script checks that its ``H`` equals our patterns, row by row), and binary-mask
buckets become ``m`` by the affine map the masks imply: a mask ``(1 + h) / 2`` with depth
``D_r`` transmits ``(1 - D_r / 2) + (D_r / 2) h``, and the open mask measures ``sum(x)``, so
``m_k = (b_k - (1 - D_r / 2) b_0) / (D_r / 2)``. That step is timed as part of SPyRiT's call.

- ``spyrit pinv``: ``spyrit.core.inverse.PseudoInverse`` (its fast Walsh-Hadamard inverse).
- ``spyrit DC``: denoised completion (``TikhonovMeasurementPriorDiag.forward``, the linear part
  of its ``DCNet``), which needs an image covariance prior in the Hadamard domain. SPyRiT's
  tutorials download one computed on ImageNet; nothing is downloaded here, so the prior is
  estimated from ``--prior-crops`` random 64 x 64 crops (scales 1 and 1/2) of scikit-image's
  bundled photographs, never the camera image, and the mean crop is the prior mean. The noise
  variance is the Poisson variance of ``m`` (computed from the buckets). Building the prior
  is a one-off cost, reported apart. SPyRiT has no total-variation solver; its learned
  denoisers need trained weights (a download).
- ``torchscope pinv``, ``tv`` (defaults: ``lam=0.02``, 200 iterations), and ``mwcnn`` when the
  package ships a model for this setting.

Time per image: one warm-up call each, then ``--repeat`` rounds in which every method is timed
once in turn (so that a change of the machine's load affects all alike); the median per method.
All in this one process; the load average is printed.

Usage::

    python benchmarks/bench_ghost_spyrit.py --threads 1
    python benchmarks/bench_ghost_spyrit.py --quick        # a smoke run
"""

import argparse
import os
import platform
import statistics
import sys
import time
import types

import numpy as np

# bundled scikit-image photographs used for SPyRiT's covariance prior (no camera: it is a test image)
PRIOR_SOURCES = ("astronaut", "brick", "cat", "cell", "chelsea", "coffee", "grass", "gravel",
                 "hubble_deep_field", "immunohistochemistry", "page", "retina", "rocket", "text")


def import_spyrit():
    """Import SPyRiT's core modules, with a stub for torchvision when it cannot be imported."""
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 - the CPU torch build raises RuntimeError here
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        tv = types.ModuleType("torchvision")
        transforms = types.ModuleType("torchvision.transforms")
        v2 = types.ModuleType("torchvision.transforms.v2")
        tv.__path__, transforms.__path__ = [], []
        tv.transforms, transforms.v2 = transforms, v2
        sys.modules.update({"torchvision": tv, "torchvision.transforms": transforms,
                            "torchvision.transforms.v2": v2})
    from spyrit.core import inverse, meas
    from spyrit.core import torch as spytorch

    return meas, inverse, spytorch


def psnr(x, ref):
    return 10 * np.log10(1.0 / np.mean((np.asarray(x, np.float64) - ref) ** 2))


def timed(calls, repeat):
    """Median ms per call of each of ``calls`` (a dict), timed in turn, round after round, so
    that a change of the machine's load affects every method alike."""
    for call in calls.values():
        call()  # warm-up
    times = {name: [] for name in calls}
    for _ in range(repeat):
        for name, call in calls.items():
            t0 = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - t0)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def order_matrix(patterns, walsh):
    """SPyRiT order matrix selecting our patterns, in our order, from its Walsh basis."""
    n = walsh.shape[0]
    row_of = {r.tobytes(): i for i, r in enumerate(walsh.astype(np.int8))}
    h = (2 * patterns - 1).astype(np.int8)  # +1/-1 rows
    order = np.zeros((n, n))
    for k, hk in enumerate(h):
        a, b = hk[:, 0] * hk[0, 0], hk[0, :] * hk[0, 0]  # the two 1D Walsh factors
        i, j = row_of[a.tobytes()], row_of[b.tobytes()]
        order[i, j] = len(h) - k  # highest first
    return order


def prior_crops(count, n, rng):
    """``count`` random n x n gray crops in [0, 1] of the bundled photographs (scales 1, 1/2)."""
    from skimage import data
    from skimage.color import rgb2gray
    from skimage.transform import rescale

    pool = []
    for name in PRIOR_SOURCES:
        img = np.asarray(getattr(data, name)(), dtype=np.float64)
        if img.ndim == 3:
            img = rgb2gray(img[..., :3])
        img = (img - img.min()) / max(np.ptp(img), 1e-12)
        pool += [img, rescale(img, 0.5, anti_aliasing=True)]
    pool = [p for p in pool if min(p.shape) > n]
    crops = np.empty((count, n, n))
    for c in range(count):
        img = pool[rng.integers(len(pool))]
        y, x = rng.integers(0, img.shape[0] - n), rng.integers(0, img.shape[1] - n)
        crops[c] = img[y:y + n, x:x + n]
    return crops


def covariance_prior(count, walsh, indices, m_count, chunk=2000):
    """SPyRiT's prior: covariance of the Hadamard coefficients of ``count`` crops, in its
    measurement order (measured rows first), and the mean crop.

    ``TikhonovMeasurementPriorDiag`` reads only the columns of the measured rows (the diagonal
    and ``Sigma[:, :M]``), so only those are computed; the rest of the N x N matrix stays 0.
    """
    import torch

    n = walsh.shape[0]
    rng = np.random.default_rng(1)
    w = torch.from_numpy(walsh).double()
    total = torch.zeros(n * n, dtype=torch.float64)
    cross = torch.zeros(n * n, m_count, dtype=torch.float64)
    mean_crop = np.zeros((n, n))
    for start in range(0, count, chunk):
        crops = prior_crops(min(chunk, count - start), n, rng)
        coef = torch.einsum("ij,cjk,lk->cil", w, torch.from_numpy(crops), w)
        coef = coef.reshape(len(crops), -1)[:, indices]
        total += coef.sum(0)
        cross += coef.T @ coef[:, :m_count]
        mean_crop += crops.sum(0)
    mean = total / count
    sigma = torch.zeros(n * n, n * n, dtype=torch.float32)
    sigma[:, :m_count] = ((cross - count * mean[:, None] * mean[None, :m_count])
                          / (count - 1)).float()
    return sigma, torch.from_numpy(mean_crop / count).float()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--prior-crops", type=int, default=20000)
    ap.add_argument("--quick", action="store_true", help="3 repeats, 4000 prior crops, 50 TV "
                    "iterations: checks that everything runs, figures are not for the record")
    args = ap.parse_args(argv)
    tv_iterations = 200
    if args.quick:
        args.repeat, args.prior_crops, tv_iterations = 3, 4000, 50

    import torch
    from skimage import data

    from torchscope import ghost

    if args.threads:
        torch.set_num_threads(args.threads)
    meas, inverse, spytorch = import_spyrit()
    import spyrit

    n, depth, dose = 64, 0.8, 1000.0
    p = ghost.hadamard_patterns(n, ratio=0.1875)
    m_count = len(p)
    objects = {
        "camera": data.camera()[80:144, 200:264].astype(np.float64) / 255.0,
        "CAS": ghost.sample_object("cas", n).astype(np.float64),
    }
    buckets = {name: ghost.simulate_buckets(obj, p, modulation_depth=depth, mask_error=0.03,
                                            photons=dose, rng=0)
               for name, obj in objects.items()}
    version = getattr(spyrit, "__version__", None)
    if version is None:
        from importlib.metadata import version as dist_version

        version = dist_version("spyrit")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torchscope.ghost vs SPyRiT {version}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), {os.cpu_count()} CPU(s), "
          f"{platform.processor() or platform.machine()}, load average {load:.1f}")
    print(f"64 x 64, {m_count} zigzag binary Hadamard masks (18.75 %), D_r {depth}, 3 % mask "
          f"error, {dose:g} photons; median of {args.repeat}" + (" (--quick)" if args.quick
                                                                 else ""))

    # ---- SPyRiT operators on exactly our patterns
    walsh = spytorch.walsh_matrix(n).numpy()
    order = torch.from_numpy(order_matrix(p, walsh)).float()
    op = meas.HadamSplit2d(n, m_count, order=order)
    same = np.array_equal(op.H.numpy(), (2 * p - 1).reshape(m_count, -1))
    print(f"SPyRiT's H equals our 768 patterns, row by row: {'yes' if same else 'NO'}")
    if not same:
        raise SystemExit("pattern mismatch: the comparison would not be on the same data")
    pinv_op = inverse.PseudoInverse(op)

    t0 = time.perf_counter()
    sigma, x0 = covariance_prior(args.prior_crops, walsh, op.indices.long(), m_count)
    tikho = inverse.TikhonovMeasurementPriorDiag(op, sigma)
    prior_s = time.perf_counter() - t0
    print(f"SPyRiT DC prior: covariance of {args.prior_crops} crops, built in {prior_s:.1f} s "
          "(once)")
    print()

    half = depth / 2

    def spyrit_m(b):
        b = torch.as_tensor(b, dtype=torch.float32)
        m = (b - (1 - half) * b[0]) / half
        m[0] = b[0]
        return m

    def spyrit_pinv(b):
        with torch.no_grad():
            return pinv_op(spyrit_m(b)).reshape(n, n)

    def spyrit_dc(b):
        with torch.no_grad():
            bt = torch.as_tensor(b, dtype=torch.float32)
            var = (bt + (1 - half) ** 2 * bt[0]) / half**2
            var[0] = bt[0]
            m = spyrit_m(b) / dose
            return tikho(m[None], x0[None], (var / dose**2)[None])[0].reshape(n, n) * dose

    rows = [("spyrit pinv", lambda b: spyrit_pinv(b).numpy()),
            ("spyrit DC", lambda b: spyrit_dc(b).numpy())]
    ours = {"pinv": {}, "tv": {"iterations": tv_iterations}, "mwcnn": {}}
    for method, opts in ours.items():
        def call(b, method=method, opts=opts):
            return ghost.reconstruct(b, p, method=method, modulation_depth=depth, device="cpu",
                                     **opts)
        try:
            call(buckets["camera"])
        except (ValueError, NotImplementedError) as error:
            print(f"note: torchscope {method} skipped: {error}")
            continue
        label = f"torchscope {method}" + (f" ({tv_iterations} it.)" if method == "tv" else "")
        rows.append((label, call))

    cas = objects["CAS"]
    obj_mask, bg_mask = cas >= 0.9, cas <= 0.1
    print("| method | ms per image | PSNR camera dB | PSNR CAS dB | CNR CAS |")
    print("|---|---:|---:|---:|---:|")
    results = timed({label: (lambda call=call: call(buckets["camera"])) for label, call in rows},
                    args.repeat)
    for label, call in rows:
        ms = results[label]
        img = {name: np.asarray(call(b), np.float64) / dose for name, b in buckets.items()}
        print(f"| {label} | {ms:.3f} | {psnr(img['camera'], objects['camera']):.2f} | "
              f"{psnr(img['CAS'], cas):.2f} | "
              f"{ghost.cnr(img['CAS'], obj_mask, background_mask=bg_mask):.2f} |")
    print()
    print("time ratios (SPyRiT / torchscope; > 1: torchscope is faster)")
    tv_label = next(k for k in results if k.startswith("torchscope tv"))
    pairs = [("spyrit pinv", "torchscope pinv"), ("spyrit DC", "torchscope pinv"),
             ("spyrit DC", tv_label)]
    if "torchscope mwcnn" in results:
        pairs.append(("spyrit DC", "torchscope mwcnn"))
    for a, b in pairs:
        print(f"  {a} / {b}: {results[a] / results[b]:.2f}")


if __name__ == "__main__":
    main()

"""Speed and quality of ``torchscope.ghost`` reconstructions on the issue's setting.

Setting (issue 3): 64 x 64 masks, 18.75 % sampling (768 zigzag binary Hadamard patterns),
modulation depth D_r = 0.8, 3 % per-pixel mask transmission error, Poisson dose of 1000
photons per open pixel. The object is a 64 x 64 crop of ``skimage.data.camera()`` (bundled,
offline), rows 80-143, columns 200-263, scaled to [0, 1].

Time per image: one warm-up call (it builds and caches the plan of the pattern set; that first
call is reported too), then the median of ``--repeat`` calls, all in this one process. Quality:
PSNR (peak = 1, the object's range) of ``tv`` and ``pinv`` against the object, with ideal
masks (no noise, D_r = 1) and with the imperfect ones above (reconstructed with the known D_r).

Usage::

    python benchmarks/bench_ghost.py                     # torch's default threads
    python benchmarks/bench_ghost.py --threads 1 --repeat 50
    python benchmarks/bench_ghost.py --device cuda
"""

import argparse
import os
import platform
import statistics
import time

import numpy as np


def _psnr(x, ref):
    return 10 * np.log10(1.0 / np.mean((np.asarray(x, np.float64) - ref) ** 2))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tv-iterations", type=int, default=200)
    args = ap.parse_args(argv)

    import torch
    from skimage import data

    from torchscope import ghost
    from torchscope.ghost._plan import clear_cache

    if args.threads:
        torch.set_num_threads(args.threads)
    obj = data.camera()[80:144, 200:264].astype(np.float64) / 255.0
    p = ghost.hadamard_patterns(64, ratio=0.1875)
    depth = 0.8
    b = ghost.simulate_buckets(obj, p, modulation_depth=depth, mask_error=0.03, photons=1000,
                               rng=0)
    print(f"torchscope.ghost on {args.device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), {os.cpu_count()} CPU(s), "
          f"{platform.processor() or platform.machine()}")
    print(f"64 x 64, {len(p)} zigzag binary Hadamard masks (18.75 %), D_r {depth}, 3 % mask "
          f"error, 1000 photons; median of {args.repeat}")
    print()
    print("| method | ms per image | first call ms (plan) |")
    print("|---|---|---|")
    cases = [("pinv", {}), ("gi", {}), ("dgi", {}), ("tv", {"iterations": args.tv_iterations})]
    for method, opts in cases:
        def call():
            return ghost.reconstruct(b, p, method=method, modulation_depth=depth,
                                     device=args.device, **opts)
        clear_cache()
        t0 = time.perf_counter()
        call()
        first = time.perf_counter() - t0
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
        name = method if method != "tv" else f"tv ({args.tv_iterations} it.)"
        print(f"| {name} | {1e3 * statistics.median(times):.3f} | {1e3 * first:.1f} |")

    print()
    print("| PSNR dB (camera crop) | pinv | tv |")
    print("|---|---|---|")
    ideal = ghost.simulate_buckets(obj, p)
    for label, buckets, d in (("ideal masks", ideal, 1.0), ("D_r 0.8, 3 %, 1000 ph", b, depth)):
        scale = 1.0 if buckets is ideal else 1000.0
        row = [label]
        for method in ("pinv", "tv"):
            opts = {"iterations": args.tv_iterations} if method == "tv" else {}
            x = ghost.reconstruct(buckets, p, method=method, modulation_depth=d,
                                  device=args.device, **opts) / scale
            row.append(f"{_psnr(x, obj):.2f}")
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()

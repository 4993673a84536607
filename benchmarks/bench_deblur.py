"""Speed of ``torchscope.deblur``: the figures issue 5 names.

- ``error_ratio`` of a 255 x 255 pair (Levin et al.'s SSD up to shift over the full
  +-15 pixel, quarter-pixel grid), target <= 0.3 s on the CPU;
- ``estimate_kernel`` on one 228 x 228 patch with torch on one thread, target <= 2 s, for
  kernel sizes 31 and 55;
- batched throughput: ``--batch`` patches of 228 x 228 estimated in one call, in patches per
  second, against the same patches one by one;
- with ``--schedules``: the accuracy of the default solver (schedule and the kernel step's
  10 % cut-off) against the same with the authors' 5 % cut-off and against the authors'
  schedule (Pan et al.'s MATLAB code: gradient penalty up to 1e5, 5 iterations per level, 5 %),
  as mean and median kernel similarity over 28 cases (four bundled photographs, two windows
  each, 3 or 4 kernel sizes from 15 to 55, 1 % noise) and the mean CPU time per case.

Input: crops of ``skimage.data.camera()`` (bundled, offline) blurred with seeded
``motion_kernel``\\ s and 1 % Gaussian noise. Times are the median of ``--repeat`` calls after
one warm-up; wall-clock time, and (on the CPU) the process's CPU time, which a busy machine
inflates less.

Usage::

    python benchmarks/bench_deblur.py                      # torch on 1 thread, CPU
    python benchmarks/bench_deblur.py --quick              # small and fast (a smoke test)
    python benchmarks/bench_deblur.py --device cuda --batch 64
    python benchmarks/bench_deblur.py --schedules          # accuracy of the schedule (minutes)
"""

import argparse
import os
import platform
import statistics
import time

import numpy as np


def _timed(fn, repeat):
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=16, help="patches per batched call")
    ap.add_argument("--schedules", action="store_true",
                    help="only compare the default schedule with the authors' (accuracy)")
    args = ap.parse_args(argv)
    if args.schedules:
        return compare_schedules(args)

    import torch
    from skimage import data

    from torchscope import deblur

    torch.set_num_threads(args.threads)
    repeat = 1 if args.quick else args.repeat
    patch = 96 if args.quick else 228
    sizes = (9,) if args.quick else (31, 55)
    batch = min(args.batch, 2) if args.quick else args.batch
    camera = data.camera() / 255.0
    print(f"torchscope.deblur on {args.device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), {os.cpu_count()} CPU(s), "
          f"{platform.processor() or platform.machine()}; median of {repeat}")
    print()
    print("| case | wall s | CPU s | note |")
    print("|---|---:|---:|---|")

    # error ratio, 255 x 255
    gen = np.random.default_rng(0)
    sharp = camera[100:355, 100:355]
    a = sharp + 0.02 * gen.standard_normal(sharp.shape)
    b = sharp + 0.01 * gen.standard_normal(sharp.shape)
    wall, cpu, er = _timed(lambda: deblur.error_ratio(a, b, sharp), repeat)
    print(f"| error_ratio 255x255 | {wall:.3f} | {cpu:.3f} | ER {er:.2f} (target <= 0.3 s) |")

    # one patch
    def blurred_patches(k, count):
        out = []
        for i in range(count):
            r, c = 40 + (23 * i) % 150, 60 + (37 * i) % 150
            crop = camera[r:r + patch + 60, c:c + patch + 60]
            blurred = deblur.blur(crop, k, noise_sigma=0.01, rng=i, mode="wrap")
            out.append(blurred[30:-30, 30:-30])
        return np.stack(out)

    for size in sizes:
        k = deblur.motion_kernel(size, rng=size)
        one = blurred_patches(k, 1)[0]
        wall, cpu, est = _timed(
            lambda one=one, size=size: deblur.estimate_kernel(one, size, device=args.device),
            repeat)
        sim = deblur.kernel_similarity(est, k)
        print(f"| estimate_kernel {patch}x{patch}, kernel {size} | {wall:.2f} | {cpu:.2f} | "
              f"similarity {sim:.2f} (target <= 2 s) |")

    # batched throughput
    size = sizes[0]
    k = deblur.motion_kernel(size, rng=size)
    stack = blurred_patches(k, batch)
    wall_b, cpu_b, _ = _timed(lambda: deblur.estimate_kernel(stack, size, device=args.device),
                              1 if args.quick else max(1, repeat // 2))
    t0, c0 = time.perf_counter(), time.process_time()
    for p in stack:
        deblur.estimate_kernel(p, size, device=args.device)
    wall_1, cpu_1 = time.perf_counter() - t0, time.process_time() - c0
    print(f"| estimate_kernel batch of {batch}, kernel {size} | {wall_b:.2f} | {cpu_b:.2f} | "
          f"patches/s (wall, CPU): {batch / wall_b:.2f}, {batch / cpu_b:.2f} batched; "
          f"{batch / wall_1:.2f}, {batch / cpu_1:.2f} one by one |")


def _schedule_cases():
    """(image name, window origin, kernel size, seed): the 28 cases of ``--schedules``."""
    first = {"camera": (60, 120), "astronaut": (40, 150), "coins": (20, 60),
             "coffee": (60, 200)}
    second = {"camera": (200, 200), "astronaut": (200, 20), "coins": (10, 90),
              "coffee": (100, 300)}
    cases = []
    for i, name in enumerate(first):
        cases += [(name, first[name], k, 10 * i + j) for j, k in enumerate((21, 31, 45))]
    for i, name in enumerate(second):
        cases += [(name, second[name], k, 100 + 10 * i + j)
                  for j, k in enumerate((15, 27, 39, 55))]
    return cases


def compare_schedules(args):
    import torch
    from skimage import color, data

    from torchscope import deblur
    from torchscope.deblur import _estimate

    torch.set_num_threads(args.threads)
    images = {"camera": data.camera() / 255.0, "astronaut": color.rgb2gray(data.astronaut()),
              "coins": data.coins() / 255.0, "coffee": color.rgb2gray(data.coffee())}
    inputs = []
    for name, (r, c), size, seed in _schedule_cases():
        k = deblur.motion_kernel(size, rng=seed)
        crop = images[name][r:r + 288, c:c + 288]
        blurred = deblur.blur(crop, k, noise_sigma=0.01, rng=seed, mode="wrap")[30:258, 30:258]
        inputs.append((blurred, k))
    default_beta_max = _estimate._BETA_MAX
    print(f"{len(inputs)} cases, 228 x 228, torch {torch.get_num_threads()} thread(s)")
    print()
    print("| schedule | kernel cut | mean similarity | median | kernels <= 27 px: mean | "
          "> 27 px: mean | mean CPU s per case |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    small = np.array([k.shape[0] <= 27 for _, k in inputs])
    for label, beta_max, iterations, cut in (
            ("default (1e2, 3 per level)", default_beta_max, 3, _estimate.KERNEL_CUT),
            ("default (1e2, 3 per level)", default_beta_max, 3, 0.05),
            ("authors (1e5, 5 per level)", 1e5, 5, 0.05)):
        _estimate._BETA_MAX = beta_max  # a private constant, set here for the comparison
        sims, cpu = [], []
        try:
            for blurred, k in inputs:
                c0 = time.process_time()
                est = deblur.estimate_kernel(blurred, k.shape[0], iterations=iterations,
                                             kernel_cut=cut, device=args.device)
                cpu.append(time.process_time() - c0)
                sims.append(deblur.kernel_similarity(est, k))
        finally:
            _estimate._BETA_MAX = default_beta_max
        sims = np.array(sims)
        print(f"| {label} | {100 * cut:.0f} % | {np.mean(sims):.3f} | {np.median(sims):.3f} | "
              f"{np.mean(sims[small]):.3f} | {np.mean(sims[~small]):.3f} | {np.mean(cpu):.2f} |")


if __name__ == "__main__":
    main()

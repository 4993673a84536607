"""Speed of ``torchscope.filters`` against scikit-image, on the same input, in one process.

For every case the two calls run on the same array: one warm-up each, then ``--repeat`` rounds
that alternate between them (so background load hits both alike); the table reports the median
wall time of each, their ratio (torchscope / peer: <= 1.0 means torchscope is at least as fast)
and the largest absolute difference of the two results (so the table also shows they agree).

Usage::

    python benchmarks/bench_filters.py                       # 2048 x 2048 and 256^3 float32
    python benchmarks/bench_filters.py --quick --repeat 1    # small sizes: a smoke run
    python benchmarks/bench_filters.py --device cuda --markdown docs/benchmarks-gpu.md
    python benchmarks/bench_filters.py --only gaussian threshold --threads 1

scikit-image and scipy run single-threaded; torch uses ``--threads`` CPU threads (default: its
own default). On a machine shared with other busy processes, torch's threads wait for each
other whenever one of them is descheduled, and its times swing by factors of ten: compare with
``--threads 1`` there (the script says so when the load average is high). Cases whose
torchscope function does not exist yet are skipped with a note.
"""

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

SHAPES = ((2048, 2048), (256, 256, 256))
QUICK_SHAPES = ((256, 256), (32, 32, 32))


@dataclass(frozen=True)
class Case:
    """One row per shape: ``ours(filters, image, device)`` against ``peer(image)``."""

    name: str
    function: str  # the torchscope.filters function it needs
    ours: Callable
    peer: Callable


def _footprint(radius, ndim):
    from skimage.morphology import ball, disk

    return disk(radius) if ndim == 2 else ball(radius)


def _cases():
    import scipy.ndimage as ndi
    import skimage.filters as skf
    import skimage.morphology as skm

    return [
        Case("gaussian sigma 3", "gaussian",
             lambda f, x, d: f.gaussian(x, 3, device=d),
             lambda x: skf.gaussian(x, 3, preserve_range=True)),
        Case("median radius 2", "median",
             lambda f, x, d: f.median(x, 2, device=d),
             lambda x: skf.median(x, _footprint(2, x.ndim))),
        Case("erosion radius 3", "erosion",
             lambda f, x, d: f.erosion(x, 3, device=d),
             lambda x: skm.erosion(x, _footprint(3, x.ndim))),
        Case("white_tophat radius 5", "white_tophat",
             lambda f, x, d: f.white_tophat(x, 5, device=d),
             lambda x: skm.white_tophat(x, _footprint(5, x.ndim))),
        Case("difference_of_gaussians sigma 2", "difference_of_gaussians",
             lambda f, x, d: f.difference_of_gaussians(x, 2, device=d),
             lambda x: skf.difference_of_gaussians(x, 2)),
        Case("threshold otsu", "threshold",
             lambda f, x, d: f.threshold(x, "otsu", device=d),
             lambda x: x > skf.threshold_otsu(x)),
        # the other linear filters, against their scikit-image / scipy equivalents
        Case("sobel", "sobel",
             lambda f, x, d: f.sobel(x, device=d),
             lambda x: skf.sobel(x)),
        Case("laplace", "laplace",
             lambda f, x, d: f.laplace(x, device=d),
             lambda x: skf.laplace(x)),
        Case("laplacian_of_gaussian sigma 2", "laplacian_of_gaussian",
             lambda f, x, d: f.laplacian_of_gaussian(x, 2, device=d),
             lambda x: -ndi.gaussian_laplace(x, 2)),
    ]


def _time(calls, repeat):
    """Median wall time (s) of each call, alternating them; and each one's last result."""
    results = [call() for call in calls]  # warm-up (and the results to compare)
    times = [[] for _ in calls]
    for _ in range(repeat):
        for call, spent in zip(calls, times):
            start = time.perf_counter()
            call()
            spent.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times], results


def run(shapes, repeat, device, only=None, out=print):
    """Run every case on every shape; returns the table rows (and prints progress notes)."""
    from torchscope import filters

    rng = np.random.default_rng(0)
    rows = []
    for case in _cases():
        if only and not any(word in case.name for word in only):
            continue
        try:
            getattr(filters, case.function)
        except (AttributeError, ImportError) as exc:
            out(f"note: skipped {case.name!r}: torchscope.filters.{case.function} is not "
                f"available yet ({type(exc).__name__}).")
            continue
        for shape in shapes:
            image = rng.random(shape, dtype=np.float32)
            (ours, peer), (a, b) = _time(
                [partial(case.ours, filters, image, device), partial(case.peer, image)], repeat
            )
            diff = float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
            rows.append((case.name, "x".join(map(str, shape)), ours * 1e3, peer * 1e3,
                         ours / peer, diff))
            out(f"  {case.name:34s} {rows[-1][1]:>12s}  ratio {ours / peer:5.2f}")
    return rows


def markdown(rows):
    lines = [
        "| case | shape | torchscope ms | peer ms | ratio | max abs diff |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, shape, ours, peer, ratio, diff in rows:
        lines.append(f"| {name} | {shape} | {ours:.1f} | {peer:.1f} | {ratio:.2f} | {diff:.2g} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="torch device for torchscope (default cpu)")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds per case (default 5)")
    parser.add_argument("--quick", action="store_true",
                        help=f"small sizes {QUICK_SHAPES} for a smoke run")
    parser.add_argument("--threads", type=int, help="torch CPU threads (torch.set_num_threads)")
    parser.add_argument("--only", nargs="+", metavar="WORD",
                        help="run only the cases whose name contains one of these words")
    parser.add_argument("--markdown", metavar="PATH", help="also write the table to this file")
    args = parser.parse_args(argv)

    import scipy
    import skimage
    import torch

    from torchscope.backend import device_name

    if args.threads:
        torch.set_num_threads(args.threads)
    device = device_name(args.device)
    header = (
        f"torchscope on {device} (torch {torch.__version__}, {torch.get_num_threads()} CPU "
        f"threads) vs scikit-image {skimage.__version__} / scipy {scipy.__version__} "
        f"(single-threaded); {platform.processor() or platform.machine()}, median of "
        f"{args.repeat} rounds"
    )
    print(header, flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if torch.get_num_threads() > 1 and load >= 1.0:
        print(f"note: load average {load:.1f} on {os.cpu_count()} cores: other processes use "
              f"the CPU, and torch's {torch.get_num_threads()} threads stall when a core is "
              f"taken; use --threads 1 for stable numbers.", flush=True)
    rows = run(QUICK_SHAPES if args.quick else SHAPES, args.repeat, device, args.only,
               out=lambda line: print(line, flush=True))
    table = markdown(rows)
    print()
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(f"{header}\n\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

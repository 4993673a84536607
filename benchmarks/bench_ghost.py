"""Speed and quality of ``torchscope.ghost`` reconstructions on the issue's setting.

Setting (issue 3): 64 x 64 masks, 18.75 % sampling (768 zigzag binary Hadamard patterns),
modulation depth D_r = 0.8, 3 % per-pixel mask transmission error, Poisson dose of 1000
photons per open pixel. The timing object is a 64 x 64 crop of ``skimage.data.camera()``
(bundled, offline), rows 80-143, columns 200-263, scaled to [0, 1].

Time per image: one warm-up call (it builds and caches the plan of the pattern set, and for
``mwcnn`` loads the shipped weights; that first call is reported too), then the median of
``--repeat`` calls, all in this one process. ``mwcnn, stack of 32``: 32 bucket vectors in one
call, time divided by 32 (8 with ``--quick``).

Quality: PSNR (peak = 1, the object's range) against the object, with ideal masks (no noise,
D_r = 1), with perfect masks at the same dose (D_r = 1, no error, 1000 photons), and with the
imperfect masks above (reconstructed with the known D_r). The ``mwcnn`` figures use only
images the network never saw in training (``torchscope.ghost._training.held_out_images``:
camera, moon, coins, clock; binary: the horse silhouette, a thresholded Shepp-Logan phantom),
plus the sample objects of ``torchscope.ghost._samples`` (CAS, gear, cylinder) for the CNR:
``G_1`` the pixels of transmission 1, ``G_0`` those of transmission 0.

Usage::

    python benchmarks/bench_ghost.py                     # torch's default threads
    python benchmarks/bench_ghost.py --threads 1 --repeat 50
    python benchmarks/bench_ghost.py --device cuda
    python benchmarks/bench_ghost.py --quick             # a few seconds: smoke test
    python benchmarks/bench_ghost.py --figure docs/images/ghost-mwcnn.png   # the docs picture
"""

import argparse
import os
import platform
import statistics
import time

import numpy as np

SETTING = {"modulation_depth": 0.8, "mask_error": 0.03, "photons": 1000}
PERFECT = {"photons": 1000}


def _psnr(x, ref):
    return 10 * np.log10(1.0 / np.mean((np.asarray(x, np.float64) - ref) ** 2))


def _median_ms(call, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def _binary_objects(n, quick):
    from torchscope.ghost._training import held_out_images

    held = held_out_images(n)
    objs = {k: v for k, v in held.items() if k.startswith("binary_")}
    try:
        from torchscope.ghost._samples import sample_object
    except ImportError:  # the sample objects are not part of this checkout
        sample_object = None
    if sample_object is not None:
        for name in ("cas", "gear", "cylinder"):
            objs[f"sample_{name}"] = np.asarray(sample_object(name, n), dtype=np.float64)
    if quick:
        objs = dict(list(objs.items())[:1] + list(objs.items())[-1:])
    return objs


def mwcnn_figures(p, device, tv_iterations, quick):
    """Print the issue's ``mwcnn`` quality figures; return them as a dict."""
    from torchscope import ghost
    from torchscope.ghost._training import held_out_images

    n = p.shape[1]
    natural = {k: v for k, v in held_out_images(n).items() if not k.startswith("binary_")}
    if quick:
        natural = {k: natural[k] for k in ("camera_crop", "moon_crop")}
    depth = SETTING["modulation_depth"]

    def run(objs, sim):
        stack = np.stack(list(objs.values()))
        b = ghost.simulate_buckets(stack, p, rng=1, **sim)
        d = sim.get("modulation_depth", 1.0)
        out = {}
        for method in ("pinv", "tv", "mwcnn"):
            opts = {"iterations": tv_iterations} if method == "tv" else {}
            out[method] = ghost.reconstruct(b, p, method=method, modulation_depth=d,
                                            device=device, **opts) / sim["photons"]
        return out

    print()
    print(f"PSNR dB on held-out natural images ({n} x {n}, {len(p)} masks, D_r {depth}, 3 % "
          "error, 1000 photons; and with perfect masks at the same dose)")
    print()
    print("| image | pinv | tv | mwcnn | mwcnn - tv | mwcnn, perfect masks | tv, perfect masks |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    imp, per = run(natural, SETTING), run(natural, PERFECT)
    psnr = {lab: {m: np.array([_psnr(x[i], o) for i, o in enumerate(natural.values())])
                  for m, x in rec.items()} for lab, rec in (("imp", imp), ("per", per))}
    for i, name in enumerate(natural):
        a, b = psnr["imp"], psnr["per"]
        print(f"| {name} | {a['pinv'][i]:.2f} | {a['tv'][i]:.2f} | {a['mwcnn'][i]:.2f} | "
              f"{a['mwcnn'][i] - a['tv'][i]:+.2f} | {b['mwcnn'][i]:.2f} | {b['tv'][i]:.2f} |")
    a, b = psnr["imp"], psnr["per"]
    gain = a["mwcnn"].mean() - a["tv"].mean()
    cost = b["mwcnn"].mean() - a["mwcnn"].mean()
    print(f"| **mean** | {a['pinv'].mean():.2f} | {a['tv'].mean():.2f} | {a['mwcnn'].mean():.2f} | "
          f"**{gain:+.2f}** | {b['mwcnn'].mean():.2f} | {b['tv'].mean():.2f} |")

    binary = _binary_objects(n, quick)
    rec = run(binary, SETTING)
    print()
    print(f"CNR on binary objects ({n} x {n}, same setting; G_1: transmission 1, G_0: 0)")
    print()
    print("| object | pinv | tv | mwcnn | mwcnn / tv |")
    print("|---|---:|---:|---:|---:|")
    ratios = []
    for i, (name, obj) in enumerate(binary.items()):
        one, zero = obj >= 0.999, obj <= 0.001
        c = {m: ghost.cnr(x[i], one, background_mask=zero) for m, x in rec.items()}
        ratios.append(c["mwcnn"] / c["tv"])
        print(f"| {name} | {c['pinv']:.2f} | {c['tv']:.2f} | {c['mwcnn']:.2f} | "
              f"{ratios[-1]:.2f} |")
    geo = float(np.exp(np.mean(np.log(ratios))))
    print(f"| **geometric mean** | | | | **{geo:.2f}** |")
    print()
    print(f"Targets: mwcnn - tv >= +2 dB: {gain:+.2f} dB ({'met' if gain >= 2 else 'NOT met'}); "
          f"CNR mwcnn / tv >= 1.4: {geo:.2f} ({'met' if geo >= 1.4 else 'NOT met'}); cost of "
          f"mask imperfection for mwcnn <= 1 dB: {cost:.2f} dB "
          f"({'met' if cost <= 1 else 'NOT met'}; tv: "
          f"{b['tv'].mean() - a['tv'].mean():.2f} dB).")
    return {"psnr_gain": gain, "cnr_ratio": geo, "imperfection_cost": cost}


def figure(path, p, device, tv_iterations):
    """Object, pinv, tv and mwcnn side by side for held-out and sample objects (a PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from torchscope import ghost
    from torchscope.ghost._training import held_out_images

    n = p.shape[1]
    held = held_out_images(n)
    objs = {k: held[k] for k in ("camera_crop", "moon_crop", "coins_crop", "binary_horse")}
    objs.update((k, v) for k, v in _binary_objects(n, False).items() if k.startswith("sample_"))
    stack = np.stack(list(objs.values()))
    b = ghost.simulate_buckets(stack, p, rng=1, **SETTING)
    d = SETTING["modulation_depth"]
    rec = {m: ghost.reconstruct(b, p, method=m, modulation_depth=d, device=device,
                                **({"iterations": tv_iterations} if m == "tv" else {})) / 1000
           for m in ("pinv", "tv", "mwcnn")}
    fig, axes = plt.subplots(len(objs), 4, figsize=(6.4, 1.65 * len(objs)))
    for i, (name, obj) in enumerate(objs.items()):
        binary = name.startswith(("binary_", "sample_"))
        panels = [("object", obj)] + [(m, x[i]) for m, x in rec.items()]
        for j, (title, img) in enumerate(panels):
            ax = axes[i, j]
            ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(name.replace("binary_", "").replace("sample_", ""), fontsize=8)
                label = title
            elif binary:
                label = f"{title} CNR {ghost.cnr(img, obj >= 0.999, background_mask=obj <= 0.001):.2f}"
            else:
                label = f"{title} {_psnr(img, obj):.2f} dB"
            ax.set_title(label, fontsize=7)
    fig.suptitle(f"{n} x {n}, {len(p)} masks (18.75 %), D_r 0.8, 3 % mask error, 1000 photons",
                 fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"figure written to {path}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tv-iterations", type=int, default=200)
    ap.add_argument("--figure", default=None, help="also write the comparison picture here")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 1 repeat, 1 thread unless --threads, a stack of 8, two "
                    "natural and two binary held-out objects")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeat = 1
        args.threads = args.threads or 1

    import torch
    from skimage import data

    from torchscope import ghost
    from torchscope.ghost._plan import clear_cache

    if args.threads:
        torch.set_num_threads(args.threads)
    obj = data.camera()[80:144, 200:264].astype(np.float64) / 255.0
    p = ghost.hadamard_patterns(64, ratio=0.1875)
    depth = SETTING["modulation_depth"]
    b = ghost.simulate_buckets(obj, p, rng=0, **SETTING)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torchscope.ghost on {args.device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), {os.cpu_count()} CPU(s), "
          f"{platform.processor() or platform.machine()}, load average {load:.1f}")
    print(f"64 x 64, {len(p)} zigzag binary Hadamard masks (18.75 %), D_r {depth}, 3 % mask "
          f"error, 1000 photons; median of {args.repeat}")
    print()
    print("| method | ms per image | first call ms (plan, weights) |")
    print("|---|---|---|")
    stack = ghost.simulate_buckets(np.stack([obj] * (8 if args.quick else 32)), p, rng=1,
                                   **SETTING)
    cases = [("pinv", b, {}), ("gi", b, {}), ("dgi", b, {}),
             ("tv", b, {"iterations": args.tv_iterations}), ("mwcnn", b, {}),
             ("mwcnn", stack, {})]
    for method, buckets, opts in cases:
        def call(buckets=buckets, method=method, opts=opts):
            return ghost.reconstruct(buckets, p, method=method, modulation_depth=depth,
                                     device=args.device, **opts)
        clear_cache()
        t0 = time.perf_counter()
        call()
        first = time.perf_counter() - t0
        per = len(buckets) if buckets.ndim == 2 else 1
        ms = _median_ms(call, args.repeat) / per
        name = {"tv": f"tv ({args.tv_iterations} it.)"}.get(method, method)
        if per > 1:
            name = f"{name}, stack of {per} (per image)"
        print(f"| {name} | {ms:.3f} | {1e3 * first:.1f} |")

    print()
    print("| PSNR dB (camera crop) | pinv | tv | mwcnn |")
    print("|---|---|---|---|")
    cases = (("ideal masks", ghost.simulate_buckets(obj, p), 1.0, 1.0),
             ("perfect masks, 1000 ph", ghost.simulate_buckets(obj, p, rng=0, **PERFECT), 1.0,
              1000.0),
             ("D_r 0.8, 3 %, 1000 ph", b, depth, 1000.0))
    for label, buckets, d, scale in cases:
        row = [label]
        for method in ("pinv", "tv", "mwcnn"):
            opts = {"iterations": args.tv_iterations} if method == "tv" else {}
            x = ghost.reconstruct(buckets, p, method=method, modulation_depth=d,
                                  device=args.device, **opts) / scale
            row.append(f"{_psnr(x, obj):.2f}")
        print("| " + " | ".join(row) + " |")

    mwcnn_figures(p, args.device, args.tv_iterations, args.quick)
    if args.figure:
        figure(args.figure, p, args.device, args.tv_iterations)


if __name__ == "__main__":
    main()

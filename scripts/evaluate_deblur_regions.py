"""Evaluate region choice for blind deblurring on a Sun-like synthetic set (issue 5).

The paper's comparison (``papers/001``, section 4.4, Fig. 8), after Sun et al.'s set of sharp
images x blur kernels: every sharp image is blurred by several random camera-shake kernels
plus 1 % Gaussian noise; each method picks the region the kernel is estimated from, the
kernel deblurs the whole image, and Levin et al.'s error ratio ranks the result.

Set (never used in training)
    One ``crop`` x ``crop`` window (default 480, at a seeded random position) of each sharp
    source that is large enough, blurred by ``kernels`` kernels from
    :func:`torchscope.deblur.motion_kernel` (odd sizes 11 to 55 drawn with the seed; nearly
    one-pixel kernels drawn again, as in the training set), plus noise of standard deviation
    0.01. Sources: the ``test`` split of the scorer's training set
    (``split_sources(sharp_sources(), seed=0)``: camera, coins, text4, text5; coins, 303 x 384,
    is smaller than the crop and skipped) and text pages rendered by
    ``_dataset.text_page(seed)`` with seeds 1000 and up, and three photographs that other
    installed packages bundle (:data:`DEFAULT_PHOTOS`: PyWavelets' ascent and aero,
    matplotlib's grace_hopper). scikit-image's other offline images (page, text,
    microaneurysms, checkerboard: all smaller than 228 x 228 on a side; clock is really
    blurred) do not fit. The script refuses any source of the train or validation
    split, by name and by content (an alias such as ``cat`` for ``chelsea`` is caught), also
    of the split recorded in the weights' model card or in ``--dataset DIR/dataset.json``.
Methods
    ``cnn``, ``variance``, ``edges``, ``random``: the best 228 x 228 window (stride 20) of
    :func:`torchscope.deblur.score_regions` with that scorer (``random``: seeded per case);
    ``whole``: the whole image; ``oracle``: the true kernel (a check: its error ratio is 1).
Per case
    The kernel is estimated (:func:`torchscope.deblur.estimate_kernel`, dark channel, the
    true kernel's size) from each method's region, the windows of all window methods in one
    batch (each distinct window once); the whole blurred image is deconvolved
    (:func:`torchscope.deblur.deconvolve`, hyper-Laplacian, not clipped) with each estimate
    and with the true kernel; the error ratio (:func:`torchscope.deblur.error_ratio`: SSD up
    to shift, borders of 15 px dropped) and the kernel similarity to the truth are recorded.
    Seconds: the region choice (``score_regions``) and the estimation, separately; a batch's
    estimation time is shared equally among its distinct windows.
Summary
    Per method: the success rate (error ratio <= 3), the cumulative curve at ratios 1 to 5,
    the median kernel similarity, the mean seconds; then each window method against
    ``random`` (points of success rate) and against ``whole`` (points, and how many times
    cheaper), with 95 % intervals from a bootstrap over the sharp sources.

Usage::

    python scripts/evaluate_deblur_regions.py --methods variance,edges,random,whole
    python scripts/evaluate_deblur_regions.py --quick          # a smoke run, under a minute
    python scripts/evaluate_deblur_regions.py --json out.json --plot curves.png --threads 1

``cnn`` (in the default methods) uses the shipped weights or ``--weights FILE``.
"""

import argparse
import dataclasses
import hashlib
import json
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from torchscope.deblur import (
    _dataset,
    blur,
    deconvolve,
    estimate_kernel,
    kernel_similarity,
    score_regions,
)
from torchscope.deblur._metrics import ssd_up_to_shift

WINDOW_METHODS = ("cnn", "variance", "edges", "random")
METHODS = WINDOW_METHODS + ("whole", "oracle")
DEFAULT_METHODS = ("cnn", "variance", "edges", "random", "whole")
RATIOS = (1, 2, 3, 4, 5)
SUCCESS = 3.0
SMALL_KERNEL = 27  # Levin et al.'s eight kernels (Sun et al.'s set) are 13 to 27 px
FIRST_PAGE = 1000  # text pages of the training set are text0, text1, ...


# ------------------------------------------------------------------------------ the set
def training_sources(*, weights=None, dataset=None):
    """Names of the sources the scorer was trained or selected on (train and val splits).

    The split of ``split_sources(sharp_sources(), seed=0)``, and the one recorded in the
    model card beside ``weights`` (``.md``) or in ``dataset/dataset.json`` when given.
    """
    splits = [_dataset.split_sources(_dataset.sharp_sources(), seed=0)]
    card = Path(weights).with_suffix(".md") if weights is not None else None
    if card is not None and card.is_file():
        prefix = "- Split by sharp source image: "  # the line scripts/train_deblur_scorer.py writes
        for line in card.read_text().splitlines():
            if line.startswith(prefix):
                splits.append(json.loads(line[len(prefix):].rstrip(".")) or {})
    if dataset is not None:
        splits.append(json.loads((Path(dataset) / "dataset.json").read_text())["split"])
    return {name for split in splits for name, part in split.items() if part != "test"}


#: Photographs bundled with other packages this one installs, none of them a source of the
#: scorer's training set: name -> the package that bundles it. PyWavelets' ``ascent`` (people on
#: a stairway) and ``aero`` (an aerial view), 512 x 512; matplotlib's ``grace_hopper`` (a
#: portrait), 512 x 600; scikit-learn's ``china`` and ``flower``, 427 x 640 (smaller than the
#: default crop: by name only, with ``--crop`` <= 427).
PHOTOS = {
    "ascent": "pywt", "aero": "pywt", "grace_hopper": "matplotlib",
    "china": "sklearn", "flower": "sklearn",
}
#: The photographs of the default set (those as large as the default crop)
DEFAULT_PHOTOS = ("ascent", "aero", "grace_hopper")


def load_photo(name):
    """One of :data:`PHOTOS` as float64 grayscale in [0, 1]."""
    package = PHOTOS[name]
    if package == "pywt":
        import pywt.data

        image = getattr(pywt.data, name)()
    elif package == "matplotlib":
        from matplotlib import cbook
        from PIL import Image

        with cbook.get_sample_data(f"{name}.jpg") as file:
            image = np.asarray(Image.open(file).convert("RGB"))
    else:
        from sklearn.datasets import load_sample_image

        image = load_sample_image(f"{name}.jpg")
    return _dataset.as_gray_unit(image)


def load_source(name):
    """A sharp source by name: one of :data:`PHOTOS`, or any name of
    :func:`torchscope.deblur._dataset.load_source`."""
    return load_photo(name) if name in PHOTOS else _dataset.load_source(name)


def default_sources(pages=5):
    """The test split's sources, the photographs of :data:`DEFAULT_PHOTOS` and ``pages`` text
    pages with seeds from 1000."""
    split = _dataset.split_sources(_dataset.sharp_sources(), seed=0)
    test = [name for name in sorted(split) if split[name] == "test"]
    return test + list(DEFAULT_PHOTOS) + [f"text{FIRST_PAGE + i}" for i in range(pages)]


def _fingerprint(image):
    return image.shape, hashlib.sha1(np.ascontiguousarray(image, np.float64)).hexdigest()


def check_sources(images, forbidden):
    """Raise ValueError when a source is, by name or by content (the whole image), one of
    ``forbidden``; forbidden names that ``load_source`` does not know are checked by name."""
    clash = sorted(set(images) & set(forbidden))
    if clash:
        raise ValueError(f"sources {clash} belong to the scorer's train or validation split; "
                         "the evaluation set must never have been seen in training.")
    seen = {}
    for name in sorted(forbidden):
        try:
            seen[_fingerprint(_dataset.load_source(name))] = name
        except (AttributeError, ValueError):  # a custom source of some other build
            continue
    for name, image in images.items():
        if _fingerprint(image) in seen:
            raise ValueError(f"source {name!r} is the training source "
                             f"{seen[_fingerprint(image)]!r} under another name.")


@dataclasses.dataclass
class Case:
    """One blurred image of the set."""

    name: str
    source: str
    sharp: np.ndarray
    kernel: np.ndarray
    blurred: np.ndarray
    seed: int


def build_cases(sources, *, crop=480, kernels=6, kernel_sizes=(11, 55), noise_sigma=0.01,
                seed=0, forbidden=None, log=print):
    """The evaluation set: ``kernels`` blurred versions of one ``crop`` window per source.

    ``sources`` is a list of names (:func:`load_source`) or a dict
    of name -> sharp 2-D image in [0, 1]. ``forbidden`` (default :func:`training_sources`)
    is checked first. Each source's cases depend only on its name and ``seed``. Returns
    ``(cases, skipped)``; ``log`` (None: quiet) gets a line per skipped source.
    """
    log = log or (lambda line: None)
    images = dict(sources) if isinstance(sources, dict) else {
        name: load_source(name) for name in sources}
    check_sources(images, training_sources() if forbidden is None else forbidden)
    cases, skipped = [], []
    for name, image in images.items():
        if min(image.shape) < crop:
            skipped.append(name)
            log(f"skip {name}: {image.shape} is smaller than the crop {crop}")
            continue
        gen = np.random.default_rng([seed, zlib.crc32(name.encode())])
        row = int(gen.integers(0, image.shape[0] - crop + 1))
        col = int(gen.integers(0, image.shape[1] - crop + 1))
        sharp = image[row:row + crop, col:col + crop]
        for i in range(kernels):
            kernel = _dataset.random_kernel(gen, kernel_sizes)
            blurred = blur(sharp, kernel, noise_sigma=noise_sigma, rng=gen)
            cases.append(Case(f"{name}_k{i}", name, sharp, kernel, blurred,
                              int(gen.integers(2**31))))
    return cases, skipped


# ------------------------------------------------------------------------------ one case
def _ratio(ssd, ssd_true):
    """``error_ratio`` from the two SSDs (the same conventions for a zero denominator)."""
    if ssd_true == 0.0:
        return 1.0 if ssd == 0.0 else float("inf")
    return ssd / ssd_true


def evaluate_case(case, methods, *, size=228, stride=20, weights=None, iterations=3,
                  deconvolution="hyper_laplacian", device=None):
    """Choose a region per method, estimate, deconvolve, score: ``{method: result}``.

    Each result holds ``box`` (row, col, height, width), ``ratio`` (error ratio),
    ``similarity`` (to the true kernel), ``choice_s`` and ``estimate_s`` (seconds).
    """
    blurred, k_size = case.blurred, case.kernel.shape[0]
    out = {}
    for method in methods:
        if method in WINDOW_METHODS:
            t0 = time.perf_counter()
            regions = score_regions(blurred, size=size, stride=stride, scorer=method,
                                    weights=weights if method == "cnn" else None,
                                    rng=case.seed if method == "random" else None,
                                    device=device)
            box = tuple(int(v) for v in regions.top(1).boxes[0])
            out[method] = {"box": box, "choice_s": time.perf_counter() - t0}
        elif method == "whole":
            out[method] = {"box": (0, 0) + blurred.shape, "choice_s": 0.0}
        elif method == "oracle":
            out[method] = {"box": None, "choice_s": 0.0, "estimate_s": 0.0,
                           "kernel": case.kernel}
        else:
            raise ValueError(f"unknown method {method!r}; accepted: {METHODS}.")

    windows = sorted({r["box"] for m, r in out.items() if m in WINDOW_METHODS})
    if windows:  # every distinct window once, all in one batch
        patches = np.stack([blurred[r:r + h, c:c + w] for r, c, h, w in windows])
        t0 = time.perf_counter()
        est = estimate_kernel(patches, k_size, iterations=iterations, device=device)
        share = (time.perf_counter() - t0) / len(windows)
        for method, result in out.items():
            if method in WINDOW_METHODS:
                result.update(kernel=est[windows.index(result["box"])], estimate_s=share)
    if "whole" in out:
        t0 = time.perf_counter()
        kernel = estimate_kernel(blurred, k_size, iterations=iterations, device=device)
        out["whole"].update(kernel=kernel, estimate_s=time.perf_counter() - t0)

    def restore(kernel):
        return deconvolve(blurred, kernel, method=deconvolution, device=device)

    ssd_true, _ = ssd_up_to_shift(restore(case.kernel), case.sharp)
    for result in out.values():
        kernel = result.pop("kernel")
        ssd, _ = ssd_up_to_shift(restore(kernel), case.sharp)
        result["ratio"] = _ratio(ssd, ssd_true)
        result["similarity"] = float(kernel_similarity(kernel, case.kernel))
    return out


def evaluate(cases, methods=DEFAULT_METHODS, *, log=print, **options):
    """:func:`evaluate_case` over ``cases``: one record per case (dict); ``log`` (None: quiet)
    gets a line per case."""
    log = log or (lambda line: None)
    records = []
    for i, case in enumerate(cases):
        results = evaluate_case(case, methods, **options)
        records.append({"case": case.name, "source": case.source,
                        "kernel_size": int(case.kernel.shape[0]), "results": results})
        log(f"[{i + 1}/{len(cases)}] {case.name} (kernel {case.kernel.shape[0]}): " + ", ".join(
            f"{m} {r['ratio']:.2f}" for m, r in results.items()))
    return records


# ------------------------------------------------------------------------------ summary
def _column(records, method, key):
    return np.array([r["results"][method][key] for r in records], dtype=np.float64)


def _success_diff_ci(records, a, b, n_boot=2000, seed=0):
    """95 % interval of success(a) - success(b) in points, bootstrapping the sharp sources."""
    sources = sorted({r["source"] for r in records})
    diff = 100.0 * ((_column(records, a, "ratio") <= SUCCESS).astype(float)
                    - (_column(records, b, "ratio") <= SUCCESS))
    owner = np.array([sources.index(r["source"]) for r in records])
    sums = np.bincount(owner, diff, len(sources))
    counts = np.bincount(owner, minlength=len(sources))
    pick = np.random.default_rng(seed).integers(0, len(sources), (n_boot, len(sources)))
    boot = sums[pick].sum(1) / counts[pick].sum(1)
    return [float(v) for v in np.percentile(boot, [2.5, 97.5])]


def _rate(success):
    return float(success.mean()) if success.size else None


def _median(values):
    return float(np.median(values)) if len(values) else None


def summarize(records, methods):
    """Per-method figures and the comparisons the issue asks for (a JSON-able dict)."""
    table = {}
    small = np.array([r["kernel_size"] <= SMALL_KERNEL for r in records], dtype=bool)
    for m in methods:
        ratio, similarity = _column(records, m, "ratio"), _column(records, m, "similarity")
        choice, estimate = _column(records, m, "choice_s"), _column(records, m, "estimate_s")
        table[m] = {"n": len(ratio), "success": float(np.mean(ratio <= SUCCESS)),
                    "success_small_kernels": _rate(ratio[small] <= SUCCESS),
                    "success_large_kernels": _rate(ratio[~small] <= SUCCESS),
                    "curve": {str(r): float(np.mean(ratio <= r)) for r in RATIOS},
                    "median_ratio": float(np.median(ratio)),
                    "median_similarity": float(np.median(similarity)),
                    "median_similarity_small_kernels": _median(similarity[small]),
                    "median_similarity_large_kernels": _median(similarity[~small]),
                    "choice_s": float(choice.mean()), "estimate_s": float(estimate.mean()),
                    "cost_s": float((choice + estimate).mean())}
    comparisons = []
    for m in (m for m in methods if m in WINDOW_METHODS):
        for ref in ("random", "whole"):
            if ref not in methods or ref == m:
                continue
            row = {"method": m, "against": ref,
                   "points": 100.0 * (table[m]["success"] - table[ref]["success"]),
                   "ci95": _success_diff_ci(records, m, ref)}
            if ref == "whole":
                row["times_cheaper"] = table[ref]["cost_s"] / table[m]["cost_s"]
            comparisons.append(row)
    return {"methods": table, "comparisons": comparisons,
            "sources": sorted({r["source"] for r in records}), "cases": len(records),
            "small_kernel_cases": int(small.sum())}


def _percent(value):
    return "n/a" if value is None else f"{100 * value:.0f} %"


def _similarity(value):
    return "n/a" if value is None else f"{value:.3f}"


def format_summary(summary):
    sources = ", ".join(summary["sources"])
    n_small = summary["small_kernel_cases"]
    head = (f"{summary['cases']} cases from {len(summary['sources'])} sources ({sources}); "
            f"{n_small} with kernels <= {SMALL_KERNEL} px, {summary['cases'] - n_small} larger")
    lines = [head, "",
             "| method | " + " | ".join(
                 f"ER <= {r}" + (" (success)" if r == SUCCESS else "") for r in RATIOS)
             + f" | success, kernels <= {SMALL_KERNEL} px | > {SMALL_KERNEL} px | median ER "
             f"| median similarity | same, kernels <= {SMALL_KERNEL} px | > {SMALL_KERNEL} px "
             "| choice s | estimate s | total s |",
             "|---|" + "---:|" * (len(RATIOS) + 9)]
    for m, t in summary["methods"].items():
        curve = " | ".join(_percent(t["curve"][str(r)]) for r in RATIOS)
        lines.append(f"| {m} | {curve} | {_percent(t['success_small_kernels'])} | "
                     f"{_percent(t['success_large_kernels'])} | {t['median_ratio']:.2f} | "
                     f"{t['median_similarity']:.3f} | "
                     f"{_similarity(t['median_similarity_small_kernels'])} | "
                     f"{_similarity(t['median_similarity_large_kernels'])} | {t['choice_s']:.2f} | "
                     f"{t['estimate_s']:.2f} | {t['cost_s']:.2f} |")
    lines.append("")
    for c in summary["comparisons"]:
        lo, hi = c["ci95"]
        text = (f"{c['method']} vs {c['against']}: {c['points']:+.1f} points of success "
                f"(95 % source-bootstrap interval {lo:+.1f} to {hi:+.1f})")
        if "times_cheaper" in c:
            text += f", {c['times_cheaper']:.2f}x cheaper (choice + estimation)"
        lines.append(text)
    return "\n".join(lines)


def plot_curves(records, methods, path):
    """The cumulative error-ratio curves (the paper's Fig. 8) as a png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.linspace(1, 5, 161)
    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=120)
    for m in methods:
        ratio = _column(records, m, "ratio")
        ax.plot(x, [np.mean(ratio <= v) for v in x], label=m)
    ax.axvline(SUCCESS, color="0.6", lw=0.8, ls="--")
    ax.set(xlabel="error ratio", ylabel="fraction of cases with a ratio <= x",
           ylim=(0, 1.02), title=f"{len(records)} blurred images")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ------------------------------------------------------------------------------ command line
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                    help=f"comma-separated, from {','.join(METHODS)}")
    ap.add_argument("--weights", default=None, help="scorer .safetensors (default: shipped)")
    ap.add_argument("--dataset", default=None,
                    help="the scorer's dataset folder: its split is also kept out")
    ap.add_argument("--sources", default=None, help="comma-separated (default: see above)")
    ap.add_argument("--pages", type=int, default=5, help="text pages with seeds 1000, ...")
    ap.add_argument("--kernels", type=int, default=6, help="kernels per source")
    ap.add_argument("--kernel-sizes", type=int, nargs=2, default=(11, 55))
    ap.add_argument("--crop", type=int, default=480)
    ap.add_argument("--size", type=int, default=228)
    ap.add_argument("--stride", type=int, default=20)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 2 sources, 2 kernels of 11 to 21 px, 256 px crops")
    ap.add_argument("--json", default=None, help="write config, cases and summary here")
    ap.add_argument("--plot", default=None, help="write the cumulative curves here (png)")
    ap.add_argument("--summarize", default=None, metavar="JSON",
                    help="only summarize (and --plot) the records of an earlier --json file")
    args = ap.parse_args(argv)
    if args.summarize:
        saved = json.loads(Path(args.summarize).read_text())
        records = saved["records"]
        _report(records, list(records[0]["results"]), args, saved["config"], saved["skipped"])
        return
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        ap.error(f"--methods: unknown {unknown}; accepted: {','.join(METHODS)}")
    if args.quick:
        args.pages, args.kernels, args.kernel_sizes, args.crop = 1, 2, (11, 21), 256
    weights = None
    if "cnn" in methods:
        from torchscope.deblur._scorer import default_weights

        weights = Path(args.weights) if args.weights else default_weights()
        if not weights.is_file():
            ap.error(f"--methods has cnn but there are no weights at {weights}: pass --weights "
                     "FILE or leave cnn out (e.g. --methods variance,edges,random,whole).")
    sources = args.sources.split(",") if args.sources else default_sources(args.pages)
    if args.quick and not args.sources:
        sources = [sources[0], sources[-1]]
    forbidden = training_sources(weights=weights, dataset=args.dataset)
    cases, skipped = build_cases(sources, crop=args.crop, kernels=args.kernels,
                                 kernel_sizes=tuple(args.kernel_sizes), noise_sigma=args.noise,
                                 seed=args.seed, forbidden=forbidden)
    if not cases:
        sys.exit("no source is as large as the crop; lower --crop.")
    t0 = time.perf_counter()
    records = evaluate(cases, methods, size=args.size, stride=args.stride,
                       weights=args.weights, iterations=args.iterations, device=args.device)
    config = {k: v for k, v in vars(args).items() if k not in ("json", "plot", "summarize")}
    config["seconds"] = round(time.perf_counter() - t0, 1)
    _report(records, methods, args, config, skipped)


def _report(records, methods, args, config, skipped):
    summary = summarize(records, methods)
    print(format_summary(summary))
    if "seconds" in config:
        print(f"\n{config['seconds']:.0f} s in all (evaluation, wall clock)")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"config": config, "skipped": skipped, "summary": summary, "records": records},
            indent=1, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))
    if args.plot:
        plot_curves(records, methods, args.plot)


if __name__ == "__main__":
    main()

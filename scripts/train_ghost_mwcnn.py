"""Rebuild the shipped ``mwcnn`` weights of ``torchscope.ghost`` from scratch, with model cards.

One network serves 32 x 32 and 64 x 64 masks at sampling ratios from 6.25 % to 50 % of the
zigzag-ordered Hadamard rows (binary or differential masks). It is trained by
``torchscope.ghost.train_mwcnn`` on synthetic objects (see ``_training.py``: held-out sources are
never trained on) and evaluated here on the held-out images with the issue's setting.

Usage (about 30-45 minutes on one core of the project's 2-core CPU)::

    nice -n 10 .venv/bin/python scripts/train_ghost_mwcnn.py > /tmp/train_mwcnn.log 2>&1
    .venv/bin/python scripts/train_ghost_mwcnn.py --steps 200 --out /tmp/mwcnn_try   # a quick try
    .venv/bin/python scripts/train_ghost_mwcnn.py --evaluate-only      # re-measure the card

The same seed, thread count and torch version give the same weights on the CPU.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # numpy's BLAS must not fight torch's threads
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import datetime
import hashlib
import json
import pathlib
import platform
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_OUT = str(ROOT / "src/torchscope/ghost/weights")
NAME = "mwcnn_hadamard_zigzag"
SIZES = (32, 64)
RATIOS = (0.0625, 0.125, 0.1875, 0.25, 0.375, 0.5)
# share of steps per ratio (18.75 %, the paper's setting, weighted up); 64 x 64 gets 70 %
RATIO_SHARE = (0.12, 0.16, 0.30, 0.16, 0.14, 0.12)
SIZE_SHARE = {32: 0.3, 64: 0.7}
SETTING = {"modulation_depth": 0.8, "mask_error": 0.03, "photons": 1000}
TRAINED = "- Trained on"
# training options that make two runs' data the same kind (compared for fine-tuned networks)
_RECIPE = ("mix", "modulation_depth", "mask_error", "blur", "photons", "perfect_fraction",
           "noiseless_fraction", "group", "pattern_sets", "weights")
THEN = "- Then: "


def _psnr(x, ref):
    return float(10 * np.log10(1.0 / np.mean((np.asarray(x, np.float64) - ref) ** 2)))


def evaluate(model, *, seed=1):
    """Held-out metrics: {size: {ratio: {setting: {method: {image: value}}}}}."""
    from torchscope import ghost
    from torchscope.ghost._training import held_out_images

    out = {}
    for n in SIZES:
        images = held_out_images(n)
        names = list(images)
        objs = np.stack([images[k] for k in names])
        out[n] = {}
        for ratio in RATIOS:
            p = ghost.hadamard_patterns(n, ratio=ratio)
            res = {}
            for label, sim in (("D_r 0.8, 3 % error, 1000 photons", SETTING),
                               ("perfect masks, 1000 photons", {"photons": 1000})):
                b = ghost.simulate_buckets(objs, p, rng=seed, **sim)
                depth = sim.get("modulation_depth", 1.0)
                rec = {}
                for method in ("pinv", "tv", "mwcnn"):
                    opts = {"model": model} if method == "mwcnn" else {}
                    rec[method] = ghost.reconstruct(b, p, method=method, modulation_depth=depth,
                                                    device="cpu", **opts) / sim["photons"]
                metrics = {}
                for method, x in rec.items():
                    m = {}
                    for i, k in enumerate(names):
                        if k.startswith("binary_"):
                            m[k] = float(ghost.cnr(x[i], images[k] > 0.5))
                        else:
                            m[k] = _psnr(x[i], images[k])
                    metrics[method] = m
                res[label] = metrics
            out[n][ratio] = res
    return out


def _summary_rows(metrics):
    rows = []
    for n, by_ratio in metrics.items():
        for ratio, by_setting in by_ratio.items():
            for label, by_method in by_setting.items():
                row = {"n": n, "ratio": ratio, "setting": label}
                for method, vals in by_method.items():
                    nat = [v for k, v in vals.items() if not k.startswith("binary_")]
                    binr = [v for k, v in vals.items() if k.startswith("binary_")]
                    row[f"{method}_psnr"] = float(np.mean(nat))
                    row[f"{method}_cnr"] = float(np.mean(binr))
                rows.append(row)
    return rows


def write_card(path, model, sha, metrics, command, trained):
    from torchscope.ghost._training import (
        HELD_OUT_LETTERS,
        HELD_OUT_SOURCES,
        TRAINING_SOURCES,
    )

    cfg = model.config
    tr = cfg["training"]
    nparams = sum(p.numel() for p in model.parameters())
    lines = [
        f"# Model card: `{path.with_suffix('.safetensors').name}`",
        "",
        "The network of `torchscope.ghost.reconstruct(..., method=\"mwcnn\")` (issue 3, after",
        "He et al., `papers/000`, CH-MWCNN): the pseudo-inverse image of zigzag-ordered Hadamard",
        "masks refined by a multi-level wavelet CNN.",
        "",
        "## Architecture",
        "",
        (f"MWCNN (Liu et al. 2018) in plain torch, {nparams:,} parameters (float32): channels "
         f"{cfg['channels']} at levels 0-{len(cfg['channels']) - 1} (orthonormal Haar DWT down, "
         f"IWT up, skip connections by sum), {cfg['convs']} 3 x 3 convolutions + ReLU per block, "
         "residual output (the last convolution starts at zero). Input: the `pinv` image "
         "normalised by its own mean and standard deviation; output mapped back with them, so "
         "any bucket units work."
         + ("" if cfg.get("stages", 1) == 1 else
            f" The network runs {cfg['stages']} times with the same weights; between two "
            "passes the part of the image the masks measure is pulled back to the measurement "
            "(data consistency `x - w (W^T W x - pinv)`, learnt w = "
            f"{[round(float(w), 3) for w in model.consistency.detach()]}).")),
        "",
        "## Scope",
        "",
        f"- mask sizes: {cfg['sizes']}; orders: {cfg['orders']} (binary or differential masks);",
        (f"- sampling ratios trained: {cfg['ratios']} (others are served by the same network; "
         "outside this range `reconstruct` warns);"),
        "- pass the masks' modulation depth (`modulation_depth=`, known or `\"estimate\"`).",
        "",
        "## Training data and recipe",
        "",
        (f"- Objects (share per batch {tr['mix']}): crops of scikit-image's bundled photographs "
         f"{list(TRAINING_SOURCES)} at scales 1, 1/2, 1/4 with flips, rotations, gamma; dead "
         "leaves; 1/f^beta random fields; binary shapes (ellipses, bars, rings, lobed stars, "
         f"gaps); letters and digits without {' '.join(HELD_OUT_LETTERS)} (Pillow's built-in "
         "font). Random inversion, transmission levels and soft edges."),
        (f"- **Held out by source (never trained on):** scikit-image `{'`, `'.join(HELD_OUT_SOURCES)}`, "
         f"the letters {', '.join(HELD_OUT_LETTERS)}, and every sample object of "
         "`torchscope.ghost` (the \"CAS\" letters, the gear, the semi-cylinder with the column), "
         "which no training source draws. Generic shapes of the same kinds are trained on: "
         "lobed stars with 3 to 11 square or round lobes (never a 14-tooth gear with a bore), "
         "two blocks with a narrow gap, other letters."),
        (f"- Measurement (`simulate_buckets`): per group of {tr['group']} batches one mask set "
         f"with D_r uniform in {tr['modulation_depth']}, per-pixel transmission error "
         f"uniform in {tr['mask_error']}, edge blur uniform in {tr['blur']} px on half of the "
         f"sets; {tr['perfect_fraction']:.0%} of the sets flawless; Poisson dose per object "
         f"log-uniform in {tr['photons']} photons per open pixel, {tr['noiseless_fraction']:.0%} "
         "noise-free."),
        (f"- Pattern sets: {len(tr['pattern_sets'])} (sizes x ratios), step shares "
         f"{[round(w, 3) for w in tr['weights']]}."),
        (f"- {tr['optimizer']}; loss: {tr['loss']}; learning rate {tr['lr']}; batch "
         f"{tr['batch_size']}; **{tr['steps']} steps; seed {tr['seed']}**."),
    ]
    commands = [command]
    first = tr.get("started_from")
    while first:  # the networks this one was fine-tuned from, latest first
        ftr = first.get("training", {})
        same = all(ftr.get(k) == tr.get(k) for k in _RECIPE)
        lines.append(
            f"- Started from a network of {first.get('stages', 1)} pass(es), trained "
            + ("with the same recipe of objects, measurements and pattern sets" if same else
               "with another recipe (see its config in the file's metadata)")
            + f": learning rate {ftr.get('lr')}; batch {ftr.get('batch_size')}; "
            f"{ftr.get('steps')} steps; seed {ftr.get('seed')}"
            + (" (its command is listed below, before this run's)." if ftr.get("command") else "."))
        if ftr.get("command"):
            commands.insert(0, ftr["command"])
        first = ftr.get("started_from")
    lines += [
        trained,
        "",
        "## Rebuild",
        "",
        "```bash",
        *commands,
        "```",
        "",
        f"sha256 of the weight file: `{sha}`",
        "",
        "## Metrics on held-out images",
        "",
        ("Simulated with `simulate_buckets(..., rng=1)`; reconstructed with the known D_r. PSNR "
         "(peak 1) is the mean over the natural held-out images (crops and reductions of camera, "
         "moon, coins, clock); CNR (paper's equation 1) the mean over the binary ones (horse "
         "silhouette, thresholded Shepp-Logan phantom). `tv` has its defaults (lam 0.02, 200 "
         "iterations)."),
        "",
        "| n | ratio | masks | pinv dB | tv dB | mwcnn dB | pinv CNR | tv CNR | mwcnn CNR |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    if not metrics:
        lines[-4:] = ["Not measured yet: `scripts/train_ghost_mwcnn.py --evaluate-only`."]
    else:
        for r in _summary_rows(metrics):
            lines.append(f"| {r['n']} | {r['ratio']:.4g} | {r['setting']} | {r['pinv_psnr']:.2f} | "
                         f"{r['tv_psnr']:.2f} | {r['mwcnn_psnr']:.2f} | {r['pinv_cnr']:.2f} | "
                         f"{r['tv_cnr']:.2f} | {r['mwcnn_cnr']:.2f} |")
        lines += ["", "Per image (64 x 64, 18.75 %, D_r 0.8, 3 % error, 1000 photons):", "",
                  "| image | pinv | tv | mwcnn |", "|---|---:|---:|---:|"]
        per = metrics[64][0.1875]["D_r 0.8, 3 % error, 1000 photons"]
        for k in per["pinv"]:
            unit = "CNR" if k.startswith("binary_") else "dB"
            lines.append(f"| {k} ({unit}) | {per['pinv'][k]:.2f} | {per['tv'][k]:.2f} | "
                         f"{per['mwcnn'][k]:.2f} |")
    lines += [
        "",
        "## Limitations",
        "",
        ("- Only simulated measurements were used for training (the x-ray model of "
         "`simulate_buckets`); flaws of real masks beyond it (e.g. a dark offset of the "
         "detector) are not learnt."),
        ("- It needs the masks' modulation depth: with a wrong `D_r` the pseudo-inverse carries "
         "a low-frequency error that the network was never shown."),
        ("- Zigzag order and 32 x 32 / 64 x 64 masks only (`reconstruct` refuses others); train "
         "your own with `train_mwcnn` for other sets."),
        ("- It smooths fine texture that the measurement does not resolve (see the moon crop); "
         "on binary objects TV reaches a higher CNR at the higher sampling ratios (table above)."),
        "",
        f"Written {datetime.date.today().isoformat()} by `scripts/train_ghost_mwcnn.py`.",
        "",
    ]
    path.write_text("\n".join(lines))


def _pattern_sets():
    from torchscope import ghost

    sets, shares = [], []
    for n in SIZES:
        for ratio, share in zip(RATIOS, RATIO_SHARE):
            sets.append(ghost.hadamard_patterns(n, ratio=ratio))
            shares.append(SIZE_SHARE[n] * share)
    return sets, shares


def _steps_in(args, channels, minutes, start, warm=50, timed=300):
    """Steps of this run's settings that fit in ``minutes`` (timed on a throw-away run)."""
    from torchscope import ghost

    sets, shares = _pattern_sets()
    gen = ghost.train_mwcnn(sets, steps=10 ** 9, batch_size=args.batch_size, seed=args.seed,
                            device=args.device, weights=shares, channels=channels, lr=args.lr,
                            workers=args.workers, model=start, stages=args.stages)
    for prog in gen:
        if prog.step == warm:
            t0 = time.perf_counter()
        if prog.step == warm + timed:
            rate = timed / (time.perf_counter() - t0)
            break
    gen.close()
    steps = int(rate * minutes * 60)
    print(f"timing: {rate:.1f} steps/s -> {steps} steps in {minutes} min", flush=True)
    return steps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=7000)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu",
                    help="where to train (cpu, cuda, ...); the card's figures are measured on the cpu")
    ap.add_argument("--channels", default="16,32,64,128",
                    help="feature maps per wavelet level, comma-separated (the shipped network's)")
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam's initial learning rate")
    ap.add_argument("--stages", type=int, default=None,
                    help="passes of the network with data consistency between them (default: "
                         "1, or those of --init)")
    ap.add_argument("--init", default=None,
                    help="start from this weight file instead of random weights (fine-tuning; "
                         "--channels is then ignored, --stages makes a cascade of it)")
    ap.add_argument("--workers", type=int, default=0,
                    help="processes simulating the measurements ahead (the result does not "
                         "depend on it; use them to keep a GPU busy)")
    ap.add_argument("--minutes", type=float, default=None,
                    help="instead of --steps: time 300 steps first, then train for as many "
                         "steps as fit in this many minutes (the card records the count)")
    ap.add_argument("--no-evaluate", action="store_true",
                    help="save the weights and a card without metrics (measure them later "
                         "with --evaluate-only, e.g. on the CPU after training on a GPU)")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--evaluate-only", action="store_true",
                    help="load the weight file in --out and rewrite its model card")
    args = ap.parse_args(argv)

    import torch

    from torchscope import ghost

    torch.set_num_threads(args.threads)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{NAME}.safetensors"
    card = out / f"{NAME}.md"
    channels = tuple(int(c) for c in args.channels.split(","))
    start = None
    if args.init is not None and not args.evaluate_only:
        start = ghost.load_mwcnn(args.init, device=args.device)
    if args.minutes is not None and not args.evaluate_only:
        args.steps = _steps_in(args, channels, args.minutes, start)
    command = ("nice -n 10 .venv/bin/python scripts/train_ghost_mwcnn.py "
               f"--steps {args.steps} --batch-size {args.batch_size} --seed {args.seed} "
               f"--threads {args.threads}")
    for flag, value, default in (("--device", args.device, "cpu"),
                                 ("--workers", args.workers, 0),
                                 ("--channels", args.channels if args.init is None else None,
                                  "16,32,64,128"),
                                 ("--lr", args.lr, 1e-3),
                                 ("--stages", args.stages, None),
                                 ("--init", args.init, None),
                                 ("--out", args.out, DEFAULT_OUT)):
        if value is not None and value != default:
            command += f" {flag} {value}"

    if args.evaluate_only:
        model = ghost.load_mwcnn(weights, device="cpu")
        command = model.config["training"].get("command", command)  # how it was made
        # the training time is not in the weight file (it would change its hash): keep the card's
        old = card.read_text().splitlines() if card.is_file() else []
        kept = [line for line in old if line.startswith((TRAINED, THEN))]
        trained = "\n".join(kept) or f"{TRAINED} (training time not recorded)."
    else:
        sets, shares = _pattern_sets()
        t0 = time.perf_counter()
        gen = ghost.train_mwcnn(sets, steps=args.steps, batch_size=args.batch_size,
                                seed=args.seed, device=args.device, weights=shares,
                                channels=channels, lr=args.lr, workers=args.workers,
                                model=start, stages=args.stages)
        avg = None
        while True:
            try:
                prog = next(gen)
            except StopIteration as stop:
                model = stop.value
                break
            avg = prog.loss if avg is None else 0.98 * avg + 0.02 * prog.loss
            if prog.step % 100 == 0 or prog.step == prog.steps:
                el = time.perf_counter() - t0
                print(f"step {prog.step}/{prog.steps} loss {avg:.4f} "
                      f"{el / 60:.1f} min, eta {el / prog.step * (prog.steps - prog.step) / 60:.1f} "
                      "min", flush=True)
        seconds = time.perf_counter() - t0
        model = model.cpu()
        if args.device == "cpu":
            where = f"{platform.machine()} CPU, {args.threads} torch thread(s)"
        else:
            name = (torch.cuda.get_device_name(args.device) if args.device.startswith("cuda")
                    else args.device)
            where = f"{name} ({args.device})"
        if args.workers:
            where += f", {args.workers} worker processes simulating the measurements"
        trained = (f"{TRAINED} {where}, torch {torch.__version__}, in {seconds / 60:.1f} min "
                   f"of wall-clock time (load average {os.getloadavg()[0]:.1f} at the end, "
                   f"{os.cpu_count()} CPUs).")
        if args.init is not None:  # how the starting network was made, from its card
            first = pathlib.Path(args.init).with_suffix(".md")
            old = first.read_text().splitlines() if first.is_file() else []
            kept = [x for x in old if x.startswith((TRAINED, THEN))]
            if kept:
                trained = "\n".join([*kept, f"{THEN}{trained[2:]}"])
        model.config["training"]["threads"] = args.threads
        model.config["training"]["command"] = command
        ghost.save_mwcnn(weights, model)
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    print(f"weights {weights} ({weights.stat().st_size / 1e6:.2f} MB) sha256 {sha}", flush=True)
    if args.no_evaluate:
        write_card(card, model, sha, None, command, trained)
        print(f"model card without metrics {card}", flush=True)
        return 0
    t0 = time.perf_counter()
    metrics = evaluate(model)
    print(f"evaluation {time.perf_counter() - t0:.0f} s", flush=True)
    for r in _summary_rows(metrics):
        print(json.dumps(r))
    write_card(card, model, sha, metrics, command, trained)
    print(f"model card {card}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

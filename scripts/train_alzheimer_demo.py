"""Rebuild the shipped Alzheimer demo model and its model card from scratch.

    nice -n 10 python scripts/train_alzheimer_demo.py            # ~10 minutes on one CPU core

Writes ``src/torchscope/alzheimer/weights/demo_phantom.safetensors`` and ``demo_phantom.md``:
the paper's autoencoder + classifier trained on a phantom cohort (``phantom_cohort``, seeded),
split by subject, evaluated on its held-out test subjects. The weights are stored as float16
(to keep the file small); the figures in the card are measured with exactly those weights.

It is a demonstration of the software on synthetic data, not a diagnostic device.
"""

import argparse
import datetime
import hashlib
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "torchscope" / "alzheimer" / "weights" / "demo_phantom.safetensors"


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def card(path, trained, metrics, psnr, args, seconds, n_params, cohort, split):
    import torch

    cfg = trained.config
    recipe = cfg["recipe"]
    h = trained.history
    b = metrics.baseline
    (tn, fp), (fn, tp) = metrics.confusion
    lines = [
        "# demo_phantom: a phantom-trained demo of the single-slice Alzheimer classifier",
        "",
        ("**This is a demonstration model trained on synthetic images. It is NOT a diagnostic "
        "device, has never seen a real patient, and must not be used on real scans to make "
        "any decision about anyone.** It exists so that the napari widgets and the examples "
        "have a model to run. Train your own on OASIS-1 (see `docs/alzheimer.md`) for research."),
        "",
        "## What it is",
        "",
        ("The architecture of Yagis et al. (papers/004), in plain torch "
        "(`torchscope.alzheimer._networks`):"),
        "",
        (f"- input: one axial slice {cfg['shape'][0]} x {cfg['shape'][1]} (OASIS-1 grid, "
        "slice 105 = the paper's 106th), scaled to [0, 1], then standardised with the training "
        f"mean {cfg['mean']:.5f} and SD {cfg['std']:.5f};"),
        (f"- autoencoder: encoder of three 3x3 conv + batch-norm + ReLU blocks with "
        f"{cfg['widths'][0]}, {cfg['widths'][1]}, {cfg['widths'][2]} channels and 2x2 max-pools "
        "after the first two; decoder of two such blocks each followed by 2x2 nearest "
        "up-sampling, then a 3x3 conv to one channel and a sigmoid;"),
        (f"- classifier: the same encoder, flatten, dense {cfg['dense'][0]} (ReLU, dropout "
        f"{cfg['dropout']}), dense {cfg['dense'][1]} (ReLU), dense 1 (logit; sigmoid = "
        "probability of AD/MCI);"),
        (f"- parameters: autoencoder {n_params['autoencoder']:,}, classifier "
        f"{n_params['classifier']:,}; stored as float16 in safetensors (no pickle), config as "
        "JSON in the file's header."),
        "",
        "## Data",
        "",
        (f"`phantom_cohort({args.subjects}, seed={args.seed})`: {len(cohort)} synthetic "
        f"subjects ({int(cohort.labels.sum())} with disease of severity 0.3-1, the rest "
        "controls) built from nilearn's bundled MNI152 2009a T1 template: ventricle "
        "enlargement, hippocampal shrinkage and some cortical thinning on top of age-related "
        "atrophy and of each subject's own cortical atrophy (either class), and per-scan "
        "nuisance (small affine, elastic deformation, bias field, gain, "
        "Rician noise) shared by both classes. "
        f"Split by subject with `subject_split(seed={args.seed})`: {len(split.train)} training, "
        f"{len(split.val)} validation, {len(split.test)} test subjects."),
        "",
        "## Recipe",
        "",
        (f"`train(split, seed={recipe['seed']})` on {recipe['device']}, torch "
        f"{torch.__version__}, {args.threads} thread(s):"),
        (f"autoencoder up to {recipe['epochs_ae']} epochs, Adam lr {recipe['lr_ae']:g} "
        f"(betas {recipe['betas'][0]}/{recipe['betas'][1]}), MSE, batch {recipe['batch_size']}; "
        f"classifier with the encoder frozen up to {recipe['epochs_clf']} epochs (Adam lr "
        f"{recipe['lr_clf']:g}), then fine-tuned up to {recipe['epochs_finetune']} epochs (lr "
        f"{recipe['lr_finetune']:g}); class-weighted binary cross-entropy; early stopping "
        f"(patience {recipe['patience']}) and model selection on the validation subjects. "
        f"Epochs run: autoencoder {len(h['ae_train_loss'])} "
        f"(best {h['best']['autoencoder_epoch']}), "
        f"classifier {len(h['clf_train_loss'])} (selected: {h['best']['classifier']['stage']} "
        f"epoch {h['best']['classifier']['epoch']}). Training took {seconds:.0f} s."),
        "",
        f"## Figures on the {metrics.n} held-out test subjects (phantom)",
        "",
        "| | model | nWBV + age baseline |",
        "|---|---:|---:|",
    ]
    for label, key in (("accuracy", "accuracy"), ("balanced accuracy", "balanced_accuracy"),
                       ("F1", "f1"), ("sensitivity", "sensitivity"),
                       ("specificity", "specificity"), ("ROC-AUC", "roc_auc")):
        base = f"{getattr(b, key):.3f}" if b is not None else "n/a"
        lines.append(f"| {label} | {getattr(metrics, key):.3f} | {base} |")
    lines += [
        "",
        (f"Confusion matrix (rows true control / AD, columns predicted): [[{tn}, {fp}], "
        f"[{fn}, {tp}]]. Autoencoder PSNR on the test slices: {psnr:.2f} dB."),
        "",
        ("These figures say how well the model separates the phantom's two classes, nothing "
        "about real patients. On the phantom, whole-brain volume and age (the baseline) are "
        "informative but not sufficient, by design: each subject's own cortical atrophy "
        "blurs nWBV, while the disease shows in the ventricles the slice cuts."),
        "",
        "## File",
        "",
        f"- `{path.name}`: {path.stat().st_size:,} bytes, sha256 `{_sha256(path)}`",
        (f"- rebuilt by `python scripts/train_alzheimer_demo.py --seed {args.seed} --subjects "
        f"{args.subjects} --threads {args.threads}` ({datetime.date.today().isoformat()}, "
        f"Python {platform.python_version()}, {platform.machine()}); the same seed gives the "
        "same weights on the same machine and library versions."),
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--subjects", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)

    import torch

    from torchscope import alzheimer as az
    from torchscope.alzheimer._networks import count_parameters

    torch.set_num_threads(args.threads)
    cohort = az.phantom_cohort(args.subjects, seed=args.seed)
    split = az.subject_split(cohort, seed=args.seed)

    def progress(p):
        print(f"{p.stage:20s} {p.epoch:3d}/{p.epochs}  train {p.train_loss:.5f}  val "
              f"{p.val_loss:.5f}  score {p.val_score:.3f}  {p.elapsed:5.0f} s", flush=True)

    t0 = time.perf_counter()
    trained = az.train(split, seed=args.seed, device="cpu", callback=progress)
    seconds = time.perf_counter() - t0
    # ship float16 weights, and measure exactly what ships
    az.save_model(args.out, trained, dtype="float16")
    shipped = az.load_model(args.out, device="cpu")
    metrics = az.evaluate(shipped, split.test)
    recon = az.reconstruct(shipped, split.test.slices)
    mse = ((recon - split.test.slices) ** 2).reshape(len(recon), -1).mean(1)
    psnr = float(np.mean(10 * np.log10(1 / mse)))
    n_params = {"autoencoder": count_parameters(shipped.autoencoder),
                "classifier": count_parameters(shipped.classifier)}
    text = card(args.out, shipped, metrics, psnr, args, seconds, n_params, cohort, split)
    args.out.with_suffix(".md").write_text(text)
    print(metrics)
    print(f"PSNR {psnr:.2f} dB; wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

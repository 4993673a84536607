"""The figures of issue 6 on the phantom cohort: PSNR, balanced accuracy, random labels, time.

Protocol (the paper's, on ``torchscope.alzheimer.phantom_cohort``): one phantom cohort of
``--subjects`` subjects (half with disease of severity 0.3-1, seed ``--cohort-seed``),
``--splits`` subject-level splits (70 % / 30 %, 20 % of the first part for validation: 112 /
28 / 60 subjects for 200), and for each split the whole training (autoencoder on the training
subjects, classifier frozen then fine-tuned, early stopping on validation) followed by the test
figures on the held-out subjects:

- the autoencoder's PSNR on the held-out test slices (mean over slices of 10 log10(1 / MSE),
  slices in [0, 1]);
- balanced accuracy, accuracy, F1, ROC-AUC of the classifier, and of the nWBV + age
  logistic-regression baseline;
- the same training with the labels shuffled between subjects (random labels): its test
  balanced accuracy should be chance (0.5);
- training time per split (wall clock, this process) and the time to generate the cohort;
- the leakage demonstration (random labels, split by slice versus by subject; 1-nearest-
  neighbour on 60 subjects x 10 slices, and with ``--leakage-network`` also the network on
  40 subjects x 10 slices, with a shorter training: 10 autoencoder and 40 frozen-classifier
  epochs, no fine-tuning).

Usage::

    nice -n 10 python benchmarks/bench_alzheimer.py --threads 1          # the full figures
    python benchmarks/bench_alzheimer.py --quick                           # a smoke test
    python benchmarks/bench_alzheimer.py --threads 1 --ae-lr-comparison 300   # lr 1e-4 vs 1e-3
"""

import argparse
import dataclasses
import json
import math
import os
import platform
import statistics
import time

import numpy as np


def _load():
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def _mean_sd(values, digits=3):
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} +- {sd:.{digits}f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 24 subjects, 2 splits, a few epochs")
    ap.add_argument("--subjects", type=int, default=200)
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--cohort-seed", type=int, default=2024)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-random-labels", action="store_true")
    ap.add_argument("--leakage-network", action="store_true",
                    help="also run the leakage demonstration with the network (slow)")
    ap.add_argument("--ae-lr-comparison", type=float, default=None, metavar="SECONDS",
                    help="only compare the autoencoder at lr 1e-4 (the paper's) and 1e-3 (the "
                         "default), batch 2, each for this many seconds on split 0")
    ap.add_argument("--json", default=None, help="write all numbers to this file")
    args = ap.parse_args(argv)

    import torch

    from torchscope import alzheimer as az

    if args.threads:
        torch.set_num_threads(args.threads)
    options = {}
    if args.quick:
        args.subjects, args.splits = 24, 2
        options = {"epochs_ae": 2, "epochs_clf": 3, "epochs_finetune": 1}

    print(f"torchscope.alzheimer on {args.device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), {os.cpu_count()} CPU(s), "
          f"{platform.processor() or platform.machine()}; load average at start "
          f"{_load()[0]:.1f}")
    t0 = time.perf_counter()
    cohort = az.phantom_cohort(args.subjects, seed=args.cohort_seed)
    t_cohort = time.perf_counter() - t0
    print(f"phantom cohort: {args.subjects} subjects, severity 0.3-1, seed {args.cohort_seed}: "
          f"{t_cohort:.1f} s (the first call also builds the anatomy from the template)")

    if args.ae_lr_comparison:
        split = az.subject_split(cohort, seed=0)
        for lr in (1e-4, 1e-3):
            t0 = time.perf_counter()
            trained = az.train(split, seed=0, device=args.device, lr_ae=lr, batch_size=2,
                               epochs_ae=10_000, patience=10_000, epochs_clf=0,
                               epochs_finetune=0,
                               callback=lambda p: p.elapsed < args.ae_lr_comparison)
            recon = az.reconstruct(trained, split.test.slices)
            mse = ((recon - split.test.slices) ** 2).reshape(len(recon), -1).mean(1)
            print(f"autoencoder lr {lr:g}, batch 2, {time.perf_counter() - t0:.0f} s: "
                  f"{len(trained.history['ae_train_loss'])} epochs, test PSNR "
                  f"{np.mean(10 * np.log10(1 / mse)):.2f} dB; load {_load()[0]:.1f}", flush=True)
        return

    rng = np.random.default_rng(args.cohort_seed)
    subjects = np.unique(cohort.subjects)
    shuffled = dict(zip(subjects, rng.permutation(
        [cohort.labels[cohort.subjects == s][0] for s in subjects])))
    random_labels = np.array([shuffled[s] for s in cohort.subjects])
    random_cohort = dataclasses.replace(cohort, labels=random_labels, cdr=random_labels * 0.5)

    rows = []
    for k in range(args.splits):
        split = az.subject_split(cohort, seed=k)
        t0 = time.perf_counter()
        trained = az.train(split, seed=k, device=args.device, **options)
        t_train = time.perf_counter() - t0
        m = az.evaluate(trained, split.test)
        recon = az.reconstruct(trained, split.test.slices)
        mse = ((recon - split.test.slices) ** 2).reshape(len(recon), -1).mean(1)
        row = {
            "split": k, "train_s": t_train, "psnr_test": float(np.mean(10 * np.log10(1 / mse))),
            "psnr_val": max(trained.history["ae_val_psnr"], default=float("nan")),
            "ae_epochs": len(trained.history["ae_train_loss"]),
            "clf_epochs": len(trained.history["clf_train_loss"]),
            "selected": trained.history["best"]["classifier"]["stage"],
            **{f"model_{key}": value for key, value in m.as_dict().items()
               if key != "baseline"},
            **{f"baseline_{key}": value for key, value in
               (m.baseline.as_dict().items() if m.baseline else [])},
        }
        if not args.no_random_labels:
            rsplit = az.subject_split(random_cohort, seed=k)
            t0 = time.perf_counter()
            rtrained = az.train(rsplit, seed=k, device=args.device, **options)
            row["random_train_s"] = time.perf_counter() - t0
            row["random_balanced_accuracy"] = az.evaluate(rtrained, rsplit.test).balanced_accuracy
        rows.append(row)
        print(f"split {k}: train {t_train:.0f} s ({row['ae_epochs']} AE + {row['clf_epochs']} "
              f"classifier epochs), test PSNR {row['psnr_test']:.2f} dB, balanced accuracy "
              f"{row['model_balanced_accuracy']:.3f} (baseline "
              f"{row.get('baseline_balanced_accuracy', float('nan')):.3f}), random labels "
              f"{row.get('random_balanced_accuracy', float('nan')):.3f}; load "
              f"{_load()[0]:.1f}", flush=True)

    def col(key):
        return [r[key] for r in rows if key in r]

    print()
    print(f"| figure ({args.splits} subject-level splits of {args.subjects} subjects; "
          f"test = {rows[0]['model_n']} subjects) | mean +- SD |")
    print("|---|---:|")
    print(f"| autoencoder PSNR, held-out test slices (dB) | {_mean_sd(col('psnr_test'), 2)} |")
    print(f"| balanced accuracy | {_mean_sd(col('model_balanced_accuracy'))} |")
    print(f"| accuracy | {_mean_sd(col('model_accuracy'))} |")
    print(f"| F1 | {_mean_sd(col('model_f1'))} |")
    print(f"| ROC-AUC | {_mean_sd(col('model_roc_auc'))} |")
    print(f"| baseline nWBV + age, balanced accuracy | "
          f"{_mean_sd(col('baseline_balanced_accuracy'))} |")
    if not args.no_random_labels:
        print(f"| random labels, balanced accuracy | {_mean_sd(col('random_balanced_accuracy'))} |")
    print(f"| training time per split, both stages (s) | {_mean_sd(col('train_s'), 0)} |")
    print(f"| minimum / maximum of balanced accuracy | "
          f"{min(col('model_balanced_accuracy')):.3f} / "
          f"{max(col('model_balanced_accuracy')):.3f} |")
    print(f"| cohort generation (s) | {t_cohort:.1f} |")

    t0 = time.perf_counter()
    n_leak = 24 if args.quick else 60
    leak = az.leakage_demo(n_leak, slices_per_subject=10, seed=0)
    print()
    print(leak, f"({time.perf_counter() - t0:.0f} s)")
    results = {"rows": rows, "cohort_s": t_cohort, "leakage_nearest": dataclasses.asdict(leak),
               "threads": torch.get_num_threads(), "load_end": _load()}
    if args.leakage_network:
        # a shorter training: 10 slices per subject make every epoch 10 times longer
        leak_options = options or {"epochs_ae": 10, "epochs_clf": 40, "epochs_finetune": 0}
        t0 = time.perf_counter()
        net = az.leakage_demo(40, slices_per_subject=10, classifier="network", seed=0,
                              device=args.device, **leak_options)
        print(net, f"({time.perf_counter() - t0:.0f} s)")
        results["leakage_network"] = dataclasses.asdict(net)
    print(f"load average at the end {_load()[0]:.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=float)


if __name__ == "__main__":
    main()

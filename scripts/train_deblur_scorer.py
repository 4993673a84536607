"""Train the deblur region scorer and write its shipped weights and model card.

Rebuilds ``src/torchscope/deblur/weights/region_scorer.safetensors`` (and the ``.md`` model
card beside it) from scratch:

1. the training set, with ``--build`` (or beforehand with
   ``python -m torchscope.deblur._dataset DATA``): synthetic blurred images, every 228 x 228
   window labelled by whether a kernel estimated from it alone is close to the truth (with
   ``--labels DIR``, e.g. ``data/deblur_scorer_labels``, shards whose label files are there
   are regenerated without estimating any kernel);
2. training: the paper's recipe (binary cross-entropy, SGD with momentum 0.9, learning rate
   1e-3, batch 32, 20 epochs), with random flips and quarter turns (a window and its kernel
   turned together keep their label), on the ``train`` split; the epoch with the best
   validation AUC is kept;
3. evaluation on the ``test`` split (never seen in training or model choice): ROC AUC of the
   windows, and precision@1 (how often the best-scored window of a blurred image is good).

Usage::

    python scripts/train_deblur_scorer.py --data /tmp/deblur_set --build
    python scripts/train_deblur_scorer.py --data /tmp/deblur_set --build --kernel-cut 0.05 \
        --labels data/deblur_scorer_labels      # shards from committed labels, no estimation
    python scripts/train_deblur_scorer.py --data /tmp/deblur_set --epochs 20 --device cuda
    python scripts/train_deblur_scorer.py --data D --epochs 1 --max-steps 2 --width 4 \
        --out w.safetensors
    python scripts/train_deblur_scorer.py --data /tmp/deblur_set --evaluate-only  # shipped
"""

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _windows(shards, split):
    """(shard index, box index) of every window in ``split``."""
    return [(i, j) for i, s in enumerate(shards) if s["split"] == split
            for j in range(len(s["boxes"]))]


def _batch(shards, items, gen=None):
    import torch

    x, y = [], []
    for i, j in items:
        s = shards[i]
        r, c, h, w = s["boxes"][j]
        patch = s["blurred"][r:r + h, c:c + w].astype(np.float32)
        if gen is not None:  # the label survives flips and quarter turns of window and kernel
            patch = np.rot90(patch, int(gen.integers(4)))
            if gen.random() < 0.5:
                patch = patch[:, ::-1]
        x.append(np.ascontiguousarray(patch))
        y.append(float(s["labels"][j]))
    return torch.from_numpy(np.stack(x))[:, None], torch.tensor(y)


def _grouped_batches(items, gen, batch_size, group):
    """Batches of ``batch_size // group`` groups of ``group`` windows of one blurred image each
    (for the within-image ranking term), in a random order. An image's windows beyond a whole
    number of groups sit out the epoch (others each epoch: the windows are shuffled first)."""
    by_shard = {}
    for item in items:
        by_shard.setdefault(item[0], []).append(item)
    groups = []
    for windows in by_shard.values():
        windows = [windows[k] for k in gen.permutation(len(windows))]
        groups += [windows[k:k + group] for k in range(0, len(windows) - group + 1, group)]
    groups = [groups[k] for k in gen.permutation(len(groups))]
    per = max(1, batch_size // group)
    return [[item for g in groups[k:k + per] for item in g]
            for k in range(0, len(groups), per)]


def rank_loss(logits, similarity, image, margin=0.05):
    """Within-image pairwise ranking: the mean of ``softplus(l_j - l_i)`` (``l`` the logits)
    over the pairs of windows (i, j) of the same blurred image whose kernel similarities differ
    by more than ``margin`` (i the better one); 0 when a batch has no such pair."""
    import torch

    pairs = (image[:, None] == image[None, :]) & (
        similarity[:, None] - similarity[None, :] > margin)
    if not bool(pairs.any()):
        return logits.sum() * 0.0
    return torch.nn.functional.softplus(logits[None, :] - logits[:, None])[pairs].mean()


def _neighbourhood_sums(boxes, values, radius):
    """Per window: the sum of ``values`` over the windows within ``radius`` grid steps (a
    square, cut at the border) and how many windows that is."""
    from scipy import ndimage as ndi

    rows, cols = np.unique(boxes[:, 0]), np.unique(boxes[:, 1])
    r, c = np.searchsorted(rows, boxes[:, 0]), np.searchsorted(cols, boxes[:, 1])
    total = np.zeros((len(rows), len(cols)))
    count = np.zeros_like(total)
    total[r, c], count[r, c] = values, 1.0
    size = 2 * radius + 1
    sums = ndi.uniform_filter(total, size, mode="constant") * size * size
    counts = ndi.uniform_filter(count, size, mode="constant") * size * size
    return sums[r, c], np.rint(counts[r, c])


def smoothed_similarity(boxes, similarity, radius):
    """Each window's similarity averaged with its neighbours on the window grid (those within
    ``radius`` grid steps, a square; fewer at the border): the similarity expected from the
    window's neighbourhood, less noisy than one estimate (neighbouring windows' estimates
    differ by chance as much as by content)."""
    sums, counts = _neighbourhood_sums(boxes, similarity, radius)
    return sums / np.maximum(counts, 1)


def neighbour_choice(shards, split):
    """What choosing a window by its neighbours' labels gains: a bound on what any scorer of
    window content can expect when neighbouring windows look alike.

    In each image of ``split`` the window whose (up to 8) grid neighbours have the highest mean
    kernel similarity is chosen, the window's own estimate left out. Returns the mean over
    images of its similarity minus the image's mean (``gain``; a random choice: 0), the
    fraction of images where it exceeds 0.75 (``good``) and the mean fraction of windows that
    do (``random``, what a random choice gets).
    """
    gains, good, random = [], [], []
    for shard in shards:
        if shard["split"] != split:
            continue
        sims = shard["similarity"].astype(float)
        sums, counts = _neighbourhood_sums(shard["boxes"], sims, 1)
        neighbours = (sums - sims) / np.maximum(counts - 1, 1)  # the 3 x 3 square without it
        pick = int(np.argmax(neighbours))
        gains.append(sims[pick] - sims.mean())
        good.append(sims[pick] > 0.75)
        random.append(float(np.mean(sims > 0.75)))
    return {"images": len(gains), "gain": float(np.mean(gains)), "good": float(np.mean(good)),
            "random": float(np.mean(random))}


def _scores(model, shards, items, device, batch_size):
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(items), batch_size):
            x, _ = _batch(shards, items[start:start + batch_size])
            out.append(torch.sigmoid(model(x.to(device))).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def evaluate(model, shards, split, device, batch_size=64):
    """How the scores of ``split``'s windows rank them.

    ``auc``: ROC AUC over all windows pooled (it also rewards telling images with a large
    kernel, where hardly any window is good, from the others); ``precision_at_1``: how often
    the best-scored window of an image is good (images with a good window); what choosing a
    region needs is the ranking *within* an image: ``within_image_auc``, the mean AUC over the
    images with both good and bad windows, and ``top_similarity_gain``, the mean over images of
    the best-scored window's kernel similarity minus the image's mean similarity (what a
    random choice gains on average: 0).
    """
    from sklearn.metrics import roc_auc_score

    items = _windows(shards, split)
    if not items:
        return {"windows": 0}
    scores = _scores(model, shards, items, device, batch_size)
    labels = np.array([shards[i]["labels"][j] for i, j in items], dtype=bool)
    sims = np.array([shards[i]["similarity"][j] for i, j in items], dtype=float)
    result = {"windows": len(items), "good_fraction": float(labels.mean())}
    result["auc"] = (float(roc_auc_score(labels, scores))
                     if 0 < labels.sum() < len(labels) else float("nan"))
    shard_of = np.array([i for i, _ in items])
    hits, images, within, gains = 0, 0, [], []
    for i in np.unique(shard_of):
        mask = shard_of == i
        top = np.argmax(scores[mask])
        gains.append(sims[mask][top] - sims[mask].mean())
        if labels[mask].any():  # only images with at least one good window count
            images += 1
            hits += bool(labels[mask][top])
            if not labels[mask].all():
                within.append(roc_auc_score(labels[mask], scores[mask]))
    result["precision_at_1"] = hits / images if images else float("nan")
    result["images_with_a_good_window"] = images
    result["within_image_auc"] = float(np.mean(within)) if within else float("nan")
    result["images_with_both"] = len(within)
    result["top_similarity_gain"] = float(np.mean(gains))
    return result


def train(args, log=print):
    import torch

    from torchscope.backend import get_device
    from torchscope.deblur import _dataset
    from torchscope.deblur._scorer import RegionScorer, save_weights, sha256

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = np.random.default_rng(args.seed)
    device = get_device(args.device)
    shards = _dataset.load(args.data)
    info = json.loads((Path(args.data) / "dataset.json").read_text())
    patch = int(info["size"])
    if args.smooth:
        for shard in shards:
            shard["smoothed"] = smoothed_similarity(shard["boxes"], shard["similarity"],
                                                    args.smooth)
    train_items = _windows(shards, "train")
    if not train_items:
        raise SystemExit(f"{args.data} holds no windows of the train split.")
    labels = np.array([shards[i]["labels"][j] for i, j in train_items], dtype=float)
    positives = labels.sum()
    pos_weight = (len(labels) - positives) / max(positives, 1.0)
    log(f"{len(shards)} blurred images, {len(train_items)} training windows "
        f"({labels.mean():.1%} good), device {device}")

    model = RegionScorer(width=args.width, patch_size=patch)
    if args.init:
        from torchscope.deblur._scorer import load_scorer

        model = load_scorer(args.init, device="cpu").train()
        if model.patch_size != patch:
            raise SystemExit(f"--init {args.init} takes {model.patch_size} px windows, the set "
                             f"has {patch} px.")
    model = model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9,
                          weight_decay=args.weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, device=device))
    best, best_state, step, history = -1.0, None, 0, []
    t_start = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        if args.rank_weight:
            batches = _grouped_batches(train_items, gen, args.batch_size, args.group)
        else:
            order = gen.permutation(len(train_items))
            batches = [[train_items[k] for k in order[start:start + args.batch_size]]
                       for start in range(0, len(order), args.batch_size)]
        losses = []
        for items in batches:
            x, y = _batch(shards, items, gen)
            if len(items) < 2:  # batch norm needs two samples
                continue
            logits = model(x.to(device))
            loss = loss_fn(logits, y.to(device))
            if args.rank_weight:
                key = "smoothed" if args.smooth else "similarity"
                sims = torch.tensor([shards[i][key][j] for i, j in items],
                                    dtype=logits.dtype, device=device)
                image = torch.tensor([i for i, _ in items], device=device)
                loss = loss + args.rank_weight * rank_loss(logits, sims, image)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            step += 1
            if args.max_steps and step >= args.max_steps:
                break
        val = evaluate(model, shards, "val", device)
        auc = val.get(args.select, float("nan"))
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)) if losses else None,
                        "val": val})
        log(f"epoch {epoch + 1}: loss {history[-1]['loss']}, val {val}")
        if best_state is None or (np.isfinite(auc) and auc > best):
            best = auc if np.isfinite(auc) else best
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if args.max_steps and step >= args.max_steps:
            break
    model.load_state_dict(best_state)
    test = evaluate(model, shards, "test", device)
    seconds = time.perf_counter() - t_start
    log(f"test {test}")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_weights(model, out, seed=args.seed, test_auc=test.get("auc"),
                 test_precision_at_1=test.get("precision_at_1"))
    card = {
        "architecture": f"ResNet34 topology (3, 4, 6, 3 basic blocks), strided convolutions "
                        f"instead of pooling, flatten + linear head, width {model.width}, "
                        f"input {patch} x {patch}",
        "parameters": sum(p.numel() for p in model.parameters()),
        "data": {k: v for k, v in info.items() if k != "split"},
        "split": info.get("split"),
        "shards": [s["name"] for s in shards],
        "training": {"epochs_run": len(history), "batch_size": args.batch_size, "lr": args.lr,
                     "momentum": 0.9, "weight_decay": args.weight_decay, "seed": args.seed,
                     "init": args.init, "rank_weight": args.rank_weight, "group": args.group,
                     "smooth": args.smooth,
                     "select": args.select,
                     "pos_weight": pos_weight, "seconds": round(seconds, 1),
                     "device": str(device), "torch": torch.__version__,
                     "python": platform.python_version()},
        "history": history,
        "test": test,
        "sha256": sha256(out),
        "date": datetime.date.today().isoformat(),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
    }
    out.with_suffix(".md").write_text(_card_markdown(card))
    return card


def _card_markdown(card):
    lines = ["# Deblur region scorer (model card)", "",
             ("Written by `scripts/train_deblur_scorer.py`; every figure below was measured by "
              "that run."), "",
             (f"- Architecture: {card['architecture']} ({card['parameters']} parameters), one "
              "logit; the probability that a kernel estimated from the window is good."),
             f"- Data: `torchscope.deblur._dataset` with {json.dumps(card['data'])}.",
             f"- Split by sharp source image: {json.dumps(card['split'])}.",
             (f"- Blurred images ({len(card['shards'])}, windows in every split): "
              f"{', '.join(card['shards'])}."),
             f"- Training: {json.dumps(card['training'])}.",
             f"- Test split: {json.dumps(card['test'])}.",
             f"- SHA-256 of the weights: `{card['sha256']}`.",
             f"- Command: `{card['command']}` ({card['date']}).", "",
             "## History", "", "| epoch | loss | validation |", "|---|---|---|"]
    for h in card["history"]:
        lines.append(f"| {h['epoch']} | {h['loss']} | {json.dumps(h['val'])} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    from torchscope.deblur._scorer import default_weights

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="dataset folder (see --build)")
    ap.add_argument("--build", action="store_true",
                    help="build (or resume) the dataset in --data first")
    ap.add_argument("--labels", default=None, metavar="DIR",
                    help="with --build: rebuild missing shards from the label files in DIR "
                         "without estimation, and write label files for new shards there")
    ap.add_argument("--labelled-only", action="store_true",
                    help="with --build --labels: only the shards that have a label file (no "
                         "estimation; for a set whose labelling is not finished)")
    ap.add_argument("--kernel-cut", type=float, default=None,
                    help="with --build: the estimator's kernel_cut for the labels (default: "
                         "its default; the committed label files were made with 0.05)")
    ap.add_argument("--out", default=str(default_weights()))
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--init", default=None, metavar="FILE",
                    help="start from these weights (fine-tuning) instead of random ones")
    ap.add_argument("--rank-weight", type=float, default=0.0,
                    help="add this weight times a within-image pairwise ranking loss on the "
                         "kernel similarities (0: the paper's cross-entropy alone)")
    ap.add_argument("--smooth", type=int, default=0, metavar="R",
                    help="with --rank-weight: rank by the similarity averaged over the windows "
                         "within R grid steps (0: each window's own)")
    ap.add_argument("--group", type=int, default=8,
                    help="with --rank-weight: windows of one image per group in a batch")
    ap.add_argument("--select", default="auc",
                    choices=("auc", "within_image_auc", "top_similarity_gain"),
                    help="validation metric that picks the epoch kept")
    ap.add_argument("--evaluate-only", action="store_true",
                    help="train nothing: print the metrics of the weights at --out on the "
                         "validation and test splits of --data")
    args = ap.parse_args(argv)
    if args.rank_weight and args.group < 2:
        ap.error("--rank-weight needs --group 2 or more (pairs of windows of one image).")
    if args.build:
        from torchscope.deblur import _dataset

        _dataset.main([args.data] + (["--device", args.device] if args.device else [])
                      + ([] if args.kernel_cut is None else ["--kernel-cut", str(args.kernel_cut)])
                      + (["--labels", args.labels] if args.labels else [])
                      + (["--labelled-only"] if args.labelled_only else []))
    if args.evaluate_only:
        return evaluate_weights(args)
    return train(args)


def evaluate_weights(args, log=print):
    """The metrics of the weights at ``args.out`` on ``args.data``'s val and test splits."""
    import torch

    from torchscope.backend import get_device
    from torchscope.deblur import _dataset
    from torchscope.deblur._scorer import load_scorer

    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    model = load_scorer(args.out, device=device)
    shards = _dataset.load(args.data)
    result = {split: evaluate(model, shards, split, device) for split in ("val", "test")}
    for split, metrics in result.items():
        log(f"{split}: {json.dumps(metrics)}")
    for split in ("train", "val", "test"):
        log(f"{split}, chosen by the neighbours' labels: "
            f"{json.dumps(neighbour_choice(shards, split))}")
    return result


if __name__ == "__main__":
    main()

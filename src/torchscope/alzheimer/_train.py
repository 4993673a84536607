"""Training without leakage: the autoencoder, then the classifier (frozen encoder, then fine-tuned).

Rules the code enforces:

- the data are split by subject (:func:`subject_split`; a :class:`Split` refuses a subject in
  two parts);
- the normalisation statistics (mean and SD of the slices' pixels) come from the training
  subjects only and are stored with the model;
- the autoencoder is pre-trained on the training subjects only;
- early stopping and model selection look at the validation subjects only; the test subjects
  are not touched here at all.
"""

import dataclasses
import math
import time

import numpy as np
import torch
from torch import nn

from torchscope.alzheimer import _networks
from torchscope.alzheimer._cohort import Cohort
from torchscope.alzheimer._split import Split, subject_split
from torchscope.backend import (
    check_int,
    check_real,
    device_name,
    get_device,
    to_numpy,
    to_tensor,
)

STAGES = ("autoencoder", "classifier_frozen", "classifier_finetune")


@dataclasses.dataclass(eq=False)
class Trained:
    """A trained model: the autoencoder, the classifier and how they were made.

    Attributes
    ----------
    autoencoder : torch.nn.Module
        Encoder + decoder (:class:`~torchscope.alzheimer._networks.Autoencoder`), eval mode.
    classifier : torch.nn.Module
        Encoder + dense head giving a logit (:class:`~torchscope.alzheimer._networks.Classifier`),
        eval mode.
    history : dict
        Per-epoch losses and validation figures of each stage (lists), the selected epochs,
        timings, and whether training was stopped early by the caller.
    config : dict
        JSON-able: architecture (``widths``, ``dense``, ``dropout``, input ``shape``), the
        normalisation (``mean``, ``std`` of the training pixels), the recipe (epochs, learning
        rates, batch size, patience, seed, device) and the training / validation subject ids.
    baseline : dict or None
        The logistic regression on standardised nWBV and age, fitted on the training subjects
        (``features``, ``mean``, ``std``, ``coef``, ``intercept``), when the training cohort
        has both columns.
    split : Split or None
        The split used, when training made it or was given it (not saved by :func:`save_model`).
    """

    autoencoder: object
    classifier: object
    history: dict
    config: dict
    baseline: object = None
    split: object = None

    @property
    def device(self):
        return next(self.classifier.parameters()).device

    def __repr__(self):
        c = self.config
        return (f"Trained(shape={tuple(c['shape'])}, widths={tuple(c['widths'])}, "
                f"train subjects={len(c.get('train_subjects', []))}, device={self.device})")


@dataclasses.dataclass(frozen=True)
class TrainProgress:
    """One snapshot of training, as yielded by :func:`iterate_train` after every epoch.

    Attributes
    ----------
    stage : str
        ``"autoencoder"``, ``"classifier_frozen"``, ``"classifier_finetune"``, or ``"done"``
        (the last snapshot, which carries ``trained``).
    epoch, epochs : int
        Epochs done in this stage, and the stage's maximum.
    train_loss, val_loss : float
        This epoch's mean training loss and validation loss (MSE for the autoencoder, class-
        weighted binary cross-entropy for the classifier).
    val_score : float
        Validation PSNR (dB) for the autoencoder, validation balanced accuracy for the
        classifier.
    elapsed : float
        Seconds since training started.
    history : dict
        The history so far (the same lists as ``Trained.history``; do not modify).
    trained : Trained or None
        Only in the ``"done"`` snapshot.
    """

    stage: str
    epoch: int
    epochs: int
    train_loss: float
    val_loss: float
    val_score: float
    elapsed: float
    history: dict
    trained: object = None


# ----------------------------------------------------------------------------------- helpers
def normalisation(slices):
    """Mean and SD of all pixels of ``slices`` (the training slices), as Python floats."""
    x = np.asarray(slices, dtype=np.float64)
    mean, std = float(x.mean()), float(x.std())
    return mean, (std if std > 0 else 1.0)


def _tensor(slices, mean, std, device):
    """Slices (N, H, W) standardised with ``mean`` and ``std``, as an (N, 1, H, W) float32
    tensor on ``device``: the networks' input, in training and inference alike."""
    x = (np.asarray(slices, np.float32) - np.float32(mean)) / np.float32(std)
    return to_tensor(x[:, None], device=device)


def psnr(reconstruction, target):
    """Mean over images of 10 log10(1 / MSE) (images in [0, 1], so the peak is 1): dB."""
    mse = ((reconstruction - target) ** 2).flatten(1).mean(1).clamp_min(1e-12)
    return float((10 * torch.log10(1.0 / mse)).mean())


def balanced_accuracy(labels, scores, threshold=0.0):
    labels = np.asarray(labels)
    pred = np.asarray(scores) >= threshold
    rates = [np.mean(pred[labels == c] == bool(c)) for c in (0, 1) if np.any(labels == c)]
    return float(np.mean(rates)) if rates else float("nan")


def _batches(n, batch_size, generator):
    order = torch.randperm(n, generator=generator)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _as_split(data, test, val, seed):
    if isinstance(data, Split):
        return data
    if isinstance(data, Cohort):
        return subject_split(data, test=test, val=val, seed=seed)
    raise TypeError(
        f"cohort_or_split must be a Cohort or a Split, got {type(data).__name__}."
    )


def _check_split(split):
    shapes = {p.slices.shape[1:] for p in (split.train, split.val) if len(p)}
    if len(shapes) != 1:
        raise ValueError(f"train and validation slices differ in shape: {sorted(shapes)}.")
    shape = shapes.pop()
    if shape[0] % 4 or shape[1] % 4:
        raise ValueError(
            f"slices are {shape}; the networks pool twice by 2, so both sides must be "
            "multiples of 4 (OASIS-1's 176 x 208 is)."
        )
    for name in ("train", "val"):
        part = getattr(split, name)
        if len(part) == 0:
            raise ValueError(f"the {name} part of the split is empty.")
    if len(np.unique(split.train.labels)) < 2:
        raise ValueError("the training subjects are all of one class; a classifier needs both.")
    return shape


def logistic_regression(x, y, *, C=1.0, iterations=100):
    """L2-penalised logistic regression by Newton's method (scikit-learn's default model).

    Minimises ``0.5 ||w||^2 + C sum_i log(1 + exp(-s_i (x_i . w + b)))`` with ``s_i = +-1``;
    the intercept ``b`` is not penalised, as in ``sklearn.linear_model.LogisticRegression()``.

    Returns
    -------
    (numpy.ndarray, float)
        Coefficients ``w`` and intercept ``b``.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    a = np.hstack([x, np.ones((len(x), 1))])
    penalty = np.ones(a.shape[1])
    penalty[-1] = 0.0
    theta = np.zeros(a.shape[1])
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(a @ theta)))
        grad = penalty * theta + C * a.T @ (p - y)
        hess = C * (a.T * (p * (1 - p))) @ a + np.diag(penalty)
        step = np.linalg.solve(hess + 1e-12 * np.eye(len(theta)), grad)
        theta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return theta[:-1], float(theta[-1])


def fit_baseline(cohort):
    """Logistic regression of the label on standardised nWBV and age (training subjects).

    Returns None when the cohort lacks either column or has missing values."""
    nwbv = cohort.clinical.get("nWBV")
    if nwbv is None or nwbv.dtype.kind != "f":
        return None
    x = np.stack([nwbv, cohort.age], 1)
    if not np.isfinite(x).all() or len(np.unique(cohort.labels)) < 2:
        return None
    mean, std = x.mean(0), x.std(0)
    std[std == 0] = 1
    coef, intercept = logistic_regression((x - mean) / std, cohort.labels)
    return {"features": ["nWBV", "Age"], "mean": mean.tolist(), "std": std.tolist(),
            "coef": coef.tolist(), "intercept": intercept}


# ---------------------------------------------------------------------------------- training
def iterate_train(cohort_or_split, *, epochs_ae=100, epochs_clf=60, epochs_finetune=30,
                  batch_size=2, batch_size_clf=8, lr_ae=1e-3, lr_clf=1e-3, lr_finetune=1e-4,
                  patience=15, widths=_networks.WIDTHS, test=0.3, val=0.2, seed=None,
                  device=None):
    """Train step by step: a generator of :class:`TrainProgress`, one per epoch.

    The same computation as :func:`train` (see there for the parameters), for callers that
    show progress (the napari widget runs it in a ``thread_worker``). The last snapshot has
    ``stage == "done"`` and carries the :class:`Trained` model. To stop early, send a true
    value into the generator (``gen.send(True)``, or napari's ``worker.send(True)``): the
    current stage ends, later stages are skipped, and the ``"done"`` snapshot follows with the
    best weights found so far (``history["stopped"]`` is then true).

    Parameters
    ----------
    cohort_or_split, epochs_ae, epochs_clf, epochs_finetune, batch_size, batch_size_clf, \
lr_ae, lr_clf, lr_finetune, patience, widths, test, val, seed, device
        As for :func:`train`.

    Yields
    ------
    TrainProgress
        One per epoch (``stage``, ``epoch``, ``epochs``, ``train_loss``, ``val_loss``,
        ``val_score``, ``elapsed``, ``history``); the last has ``stage == "done"`` and the
        model in ``trained``.
    """
    epochs_ae = check_int("epochs_ae", epochs_ae, 0, type_error=ValueError)
    epochs_clf = check_int("epochs_clf", epochs_clf, 0, type_error=ValueError)
    epochs_finetune = check_int("epochs_finetune", epochs_finetune, 0, type_error=ValueError)
    batch_size = check_int("batch_size", batch_size, 1, type_error=ValueError)
    batch_size_clf = check_int("batch_size_clf", batch_size_clf, 1, type_error=ValueError)
    patience = check_int("patience", patience, 1, type_error=ValueError)
    lrs = {k: check_real(k, v, 0, np.inf, low_open=True, type_error=ValueError) for k, v in
           (("lr_ae", lr_ae), ("lr_clf", lr_clf), ("lr_finetune", lr_finetune))}
    widths = tuple(check_int("widths", w, 1, type_error=ValueError) for w in widths)
    if len(widths) != 3:
        raise ValueError(f"widths must be three channel counts, got {widths!r}.")
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0] >> 1)
    seed = check_int("seed", seed, 0, 2 ** 63 - 1)  # (torch's generators take 64 bits)
    split = _as_split(cohort_or_split, test, val, seed)
    shape = _check_split(split)
    dev = get_device(device)

    mean, std = normalisation(split.train.slices)
    config = {
        "format": "torchscope.alzheimer/1",
        "widths": list(widths), "dense": list(_networks.DENSE), "dropout": _networks.DROPOUT,
        "shape": list(shape), "mean": mean, "std": std,
        "positive_class": "AD or MCI (CDR >= 0.5)",
        "recipe": {"epochs_ae": epochs_ae, "epochs_clf": epochs_clf,
                   "epochs_finetune": epochs_finetune, "batch_size": batch_size,
                   "batch_size_clf": batch_size_clf,
                   "lr_ae": lrs["lr_ae"], "lr_clf": lrs["lr_clf"],
                   "lr_finetune": lrs["lr_finetune"], "betas": [0.9, 0.999],
                   "patience": patience, "seed": seed, "device": device_name(dev)},
        "train_subjects": sorted(np.unique(split.train.subjects).tolist()),
        "val_subjects": sorted(np.unique(split.val.subjects).tolist()),
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ae, clf = _networks.build(config)
    with torch.no_grad():  # start the output at the training mean (logit), not at 0.5
        ae.decoder.conv6.bias.fill_(math.log(max(mean, 1e-3) / max(1 - mean, 1e-3)))
    ae.to(dev)
    clf.to(dev)
    gen = torch.Generator().manual_seed(seed)  # shuffling
    drop_gen = torch.Generator(device=dev).manual_seed(seed + 1)
    for m in clf.modules():
        if isinstance(m, _networks.SeededDropout):
            m.generator = drop_gen

    x_train = _tensor(split.train.slices, mean, std, dev)
    x_val = _tensor(split.val.slices, mean, std, dev)
    t_train = to_tensor(split.train.slices[:, None], device=dev)
    t_val = to_tensor(split.val.slices[:, None], device=dev)
    y_train = to_tensor(split.train.labels, device=dev, dtype=torch.float32)
    y_val = to_tensor(split.val.labels, device=dev, dtype=torch.float32)

    history = {"ae_train_loss": [], "ae_val_loss": [], "ae_val_psnr": [],
               "clf_train_loss": [], "clf_val_loss": [], "clf_val_balanced_accuracy": [],
               "clf_stage": [], "best": {}, "seconds": {}, "stopped": False}
    start = time.perf_counter()
    stop = False

    def evaluate_in_chunks(fn, x, chunk=32):
        with torch.no_grad():
            return torch.cat([fn(x[i:i + chunk]) for i in range(0, len(x), chunk)])

    # ---------------------------------------------------------------- 1. the autoencoder
    t0 = time.perf_counter()
    opt = torch.optim.Adam(ae.parameters(), lr=lrs["lr_ae"], betas=(0.9, 0.999))
    best, best_loss, waited = _state(ae), math.inf, 0
    best_epoch = 0
    for epoch in range(1, epochs_ae + 1):
        ae.train()
        total = 0.0
        with torch.enable_grad():  # also when called under no_grad (e.g. a worker thread)
            for idx in _batches(len(x_train), batch_size, gen):
                idx = idx.to(dev)
                opt.zero_grad(set_to_none=True)
                loss = nn.functional.mse_loss(ae(x_train[idx]), t_train[idx])
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
        ae.eval()
        recon = evaluate_in_chunks(ae, x_val)
        val_loss = float(nn.functional.mse_loss(recon, t_val))
        val_psnr = psnr(recon, t_val)
        history["ae_train_loss"].append(total / len(x_train))
        history["ae_val_loss"].append(val_loss)
        history["ae_val_psnr"].append(val_psnr)
        if val_loss < best_loss:
            best, best_loss, waited, best_epoch = _state(ae), val_loss, 0, epoch
        else:
            waited += 1
        stop = bool((yield TrainProgress("autoencoder", epoch, epochs_ae, total / len(x_train),
                                         val_loss, val_psnr, time.perf_counter() - start,
                                         history)))
        if stop or waited >= patience:
            break
    ae.load_state_dict(best)
    ae.eval()
    history["best"]["autoencoder_epoch"] = best_epoch
    history["seconds"]["autoencoder"] = time.perf_counter() - t0

    # ------------------------------------------------------------------ 2. the classifier
    clf.encoder.load_state_dict(ae.encoder.state_dict())
    n_pos = float(y_train.sum())
    pos_weight = torch.tensor((len(y_train) - n_pos) / max(n_pos, 1.0), device=dev)

    def bce(logits, y):
        return nn.functional.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight)

    best_clf, best_loss, best_where = _state(clf), math.inf, ("none", 0)
    stages = (("classifier_frozen", epochs_clf, lrs["lr_clf"]),
              ("classifier_finetune", epochs_finetune, lrs["lr_finetune"]))
    for stage, epochs, lr in stages:
        if stop:
            break
        t0 = time.perf_counter()
        frozen = stage == "classifier_frozen"
        if not frozen:
            clf.load_state_dict(best_clf)  # fine-tune from the best frozen-stage model
        for p in clf.encoder.parameters():
            p.requires_grad_(not frozen)
        params = [p for p in clf.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999))
        if frozen:  # the frozen encoder (BN in eval mode) gives fixed features: compute them once
            clf.encoder.eval()
            f_train = evaluate_in_chunks(clf.encoder, x_train)
            f_val = evaluate_in_chunks(clf.encoder, x_val)
        waited = 0
        for epoch in range(1, epochs + 1):
            clf.train()
            # the encoder's batch-norm statistics stay the autoencoder's (frozen stage: all of
            # the encoder is fixed; fine-tuning: its weights train, its statistics do not,
            # which keeps small batches stable); eval mode changes nothing else in it
            clf.encoder.eval()
            total = 0.0
            with torch.enable_grad():
                for idx in _batches(len(x_train), batch_size_clf, gen):
                    idx = idx.to(dev)
                    opt.zero_grad(set_to_none=True)
                    logits = clf.head(f_train[idx])[:, 0] if frozen else clf(x_train[idx])
                    loss = bce(logits, y_train[idx])
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * len(idx)
            clf.eval()
            with torch.no_grad():
                logits = (clf.head(f_val)[:, 0] if frozen
                          else evaluate_in_chunks(clf, x_val))
            val_loss = float(bce(logits, y_val))
            val_bacc = balanced_accuracy(split.val.labels, to_numpy(logits))
            history["clf_train_loss"].append(total / len(x_train))
            history["clf_val_loss"].append(val_loss)
            history["clf_val_balanced_accuracy"].append(val_bacc)
            history["clf_stage"].append(stage)
            if val_loss < best_loss:
                best_clf, best_loss, waited = _state(clf), val_loss, 0
                best_where = (stage, epoch)
            else:
                waited += 1
            stop = bool((yield TrainProgress(stage, epoch, epochs, total / len(x_train),
                                             val_loss, val_bacc, time.perf_counter() - start,
                                             history)))
            if stop or waited >= patience:
                break
        history["seconds"][stage] = time.perf_counter() - t0
    clf.load_state_dict(best_clf)
    for p in clf.parameters():
        p.requires_grad_(True)
    clf.eval()
    for m in clf.modules():
        if isinstance(m, _networks.SeededDropout):
            m.generator = None
    # None when no classifier epoch ran (inf is not JSON, and the header of a saved model is)
    history["best"]["classifier"] = {"stage": best_where[0], "epoch": best_where[1],
                                     "val_loss": best_loss if math.isfinite(best_loss) else None}
    history["stopped"] = stop
    history["seconds"]["total"] = time.perf_counter() - start
    trained = Trained(autoencoder=ae, classifier=clf, history=history, config=config,
                      baseline=fit_baseline(split.train), split=split)
    yield TrainProgress("done", 0, 0, math.nan, math.nan, math.nan,
                        time.perf_counter() - start, history, trained)


def train(cohort_or_split, *, epochs_ae=100, epochs_clf=60, epochs_finetune=30, batch_size=2,
          batch_size_clf=8, lr_ae=1e-3, lr_clf=1e-3, lr_finetune=1e-4, patience=15,
          widths=_networks.WIDTHS, test=0.3, val=0.2, seed=None, device=None, callback=None):
    """Train the autoencoder and the classifier of the paper, without leakage.

    1. Split by subject (if a :class:`Cohort` is given: :func:`subject_split` with ``test``,
       ``val`` and ``seed``). The test subjects are not used here at all.
    2. Normalisation: mean and SD of the training slices' pixels (stored in the model).
    3. The autoencoder on the training subjects: MSE, Adam (``lr_ae``, betas 0.9/0.999),
       early stopping on the validation MSE; the best validation epoch is kept.
    4. The classifier (the autoencoder's encoder + dense head): first the encoder frozen
       (``lr_clf``), then everything fine-tuned (``lr_finetune``; the encoder's batch-norm
       statistics stay the autoencoder's), class-weighted binary cross-entropy, early
       stopping on the validation loss; the epoch with the lowest validation loss over both
       stages is kept.

    The defaults fit the whole protocol (200 subjects) into about ten minutes of one CPU core.
    They differ from the paper (Keras, GPU, 3.2 h) where that budget demands it: the paper's
    autoencoder ran up to 400 epochs of batch 32 at lr 1e-4; here up to 100 epochs of batch 2
    at lr 1e-3 (more, larger Adam steps in the same time; ``lr_ae=1e-4, batch_size=32,
    epochs_ae=400`` gives the paper's recipe).

    Parameters
    ----------
    cohort_or_split : Cohort or Split
    epochs_ae, epochs_clf, epochs_finetune : int, optional
        Maximum epochs of each stage (each may stop earlier, after ``patience`` epochs
        without a better validation loss). The paper ran up to 400 of each on a GPU.
    batch_size : int, optional
        Mini-batch size of the autoencoder (the paper: 32; small batches give more Adam steps
        per epoch on a small cohort).
    batch_size_clf : int, optional
        Mini-batch size of the classifier stages.
    lr_ae, lr_clf, lr_finetune : float, optional
        Adam learning rates (paper: 1e-4 for the autoencoder, 1e-3 for the classifier; it
        does not give one for fine-tuning).
    patience : int, optional
        Early-stopping patience, epochs.
    widths : (int, int, int), optional
        Channels of the three encoder blocks (the last is the latent depth).
    test, val : float, optional
        Split fractions, when a Cohort is given (see :func:`subject_split`).
    seed : int, optional
        Seeds the split, the initial weights, the shuffling and the dropout (without touching
        torch's global random state). The same seed gives the same model on the same device.
        ``None`` draws one (recorded in ``config["recipe"]["seed"]``).
    device : None, str or torch.device
        Where to train (``None``: CUDA, then MPS, then CPU).
    callback : callable, optional
        Called with each :class:`TrainProgress` (after every epoch). If it returns ``False``,
        training stops early and the best weights so far are kept.

    Returns
    -------
    Trained
    """
    gen = iterate_train(cohort_or_split, epochs_ae=epochs_ae, epochs_clf=epochs_clf,
                        epochs_finetune=epochs_finetune, batch_size=batch_size,
                        batch_size_clf=batch_size_clf, lr_ae=lr_ae,
                        lr_clf=lr_clf, lr_finetune=lr_finetune, patience=patience,
                        widths=widths, test=test, val=val, seed=seed, device=device)
    progress = next(gen)
    while progress.stage != "done":
        stop = callback is not None and callback(progress) is False
        progress = gen.send(stop)
    return progress.trained

"""Why splits must be by subject: random labels, split by slice versus by subject.

Every subject of a phantom cohort contributes several neighbouring axial slices, and gets a
random label (a coin toss, unrelated to its anatomy). Nothing can predict such labels for a
new subject, so an honest test gives chance (balanced accuracy 0.5). Split by slice, the
neighbours of a test slice (1 mm away, nearly the same image) sit in the training set with
the same label, and the classifier "predicts" random labels far above chance: it recognises
subjects, not disease. That is the leakage that inflates many published single-slice results.
"""

import dataclasses

import numpy as np

from torchscope.alzheimer._cohort import _cohort_from_rows
from torchscope.alzheimer._io import normalise_slice
from torchscope.alzheimer._split import subject_split
from torchscope.backend import check_int


@dataclasses.dataclass(frozen=True)
class LeakageDemo:
    """Result of :func:`leakage_demo`.

    Attributes
    ----------
    by_slice : float
        Balanced accuracy on the test slices when slices are split at random (leaky).
    by_subject : float
        Balanced accuracy on the test subjects when subjects are split (honest).
    classifier : str
    n_subjects, slices_per_subject : int
    seed : int or None
    """

    by_slice: float
    by_subject: float
    classifier: str
    n_subjects: int
    slices_per_subject: int
    seed: object

    def __str__(self):
        return (f"random labels, {self.n_subjects} subjects x {self.slices_per_subject} slices, "
                f"{self.classifier}: balanced accuracy split by slice {self.by_slice:.3f} "
                f"(leaky), split by subject {self.by_subject:.3f} (honest; chance is 0.5)")


def multi_slice_cohort(n_subjects, *, slices_per_subject=10, index=105, seed=None):
    """A phantom cohort with ``slices_per_subject`` neighbouring axial slices per subject.

    Rows are slices (ids ``OAS1_xxxx_MR1#z<index>``), subjects their subject ids; labels are
    the phantom's (use :func:`leakage_demo` for random ones).
    """
    from torchscope.alzheimer import _phantom

    anat = _phantom._anatomy()
    sessions = _phantom._subjects(int(n_subjects), (0.3, 1.0), seed, 0.5, 0)
    slices_per_subject = check_int("slices_per_subject", slices_per_subject, 1,
                                   type_error=ValueError)
    first = index - slices_per_subject // 2
    zs = list(range(first, first + slices_per_subject))
    depth = _phantom.GRID[2]
    if zs[0] < 0 or zs[-1] >= depth:
        raise ValueError(f"slices_per_subject={slices_per_subject} around index {index} "
                         f"leaves the phantom's {depth} axial slices (z {zs[0]} to {zs[-1]}).")
    rows, slices = [], []
    for s in sessions:
        s["nWBV"] = float(np.round(_phantom._brain_fraction(anat, s["regions"]), 3))
        images = _phantom._render(anat, _phantom._scan(s["seed"], s["regions"]), zs)
        for z, image in zip(zs, images):
            row = {k: s[k] for k in ("M/F", "Age", "CDR", "nWBV")}
            rows.append((f"{s['ID']}#z{z}", s["subject"], row))
            slices.append(normalise_slice(image))
    return _cohort_from_rows(rows, np.stack(slices), [], {
        "generator": "multi_slice_cohort", "seed": seed, "axis": 2, "slices": zs})


def _nearest_neighbour(split):
    """Balanced accuracy of 1-nearest-neighbour on the pixels (training normalisation), on test."""
    from torchscope.alzheimer._metrics import binary_metrics

    train = split.train.slices.reshape(len(split.train), -1).astype(np.float64)
    mean, std = train.mean(), train.std()
    a = (train - mean) / std
    b = (split.test.slices.reshape(len(split.test), -1) - mean) / std
    d = (b ** 2).sum(1)[:, None] - 2 * b @ a.T + (a ** 2).sum(1)[None, :]
    pred = split.train.labels[np.argmin(d, axis=1)]
    return binary_metrics(split.test.labels, pred.astype(float)).balanced_accuracy


def leakage_demo(n_subjects=40, *, slices_per_subject=10, classifier="nearest", seed=0,
                 device=None, **train_options):
    """Train on random labels twice, splitting by slice and by subject, and compare.

    Parameters
    ----------
    n_subjects : int, optional
        Phantom subjects (each gets a random label, half of them 1).
    slices_per_subject : int, optional
        Neighbouring axial slices per subject (around slice 105, 1 mm apart).
    classifier : {"nearest", "network"}, optional
        ``"nearest"``: 1-nearest-neighbour on the pixels (seconds, no torch). ``"network"``:
        the paper's autoencoder + classifier through :func:`train` (minutes).
    seed : int, optional
        Seeds the cohort, the random labels, the splits and the training.
    device : None, str or torch.device
        For ``classifier="network"``.
    **train_options
        Passed to :func:`train` (e.g. ``epochs_ae=10``).

    Returns
    -------
    LeakageDemo
    """
    if classifier not in ("nearest", "network"):
        raise ValueError(f"classifier must be 'nearest' or 'network', got {classifier!r}.")
    if slices_per_subject < 2:
        raise ValueError(f"slices_per_subject must be >= 2, got {slices_per_subject!r}.")
    cohort = multi_slice_cohort(n_subjects, slices_per_subject=slices_per_subject, seed=seed)
    rng = np.random.default_rng(seed)
    subjects = np.unique(cohort.subjects)
    coin = dict(zip(subjects, rng.permutation(np.arange(len(subjects)) % 2)))
    labels = np.array([coin[s] for s in cohort.subjects], dtype=np.int64)
    # random labels, and no clinical columns a baseline could use
    random = dataclasses.replace(cohort, labels=labels, cdr=labels * 0.5, clinical={})
    # split by slice = every slice treated as a subject of its own (the mistake)
    per_slice = dataclasses.replace(random, subjects=random.ids.copy())
    results = {}
    for name, data in (("by_slice", per_slice), ("by_subject", random)):
        split = subject_split(data, seed=seed)
        if classifier == "nearest":
            results[name] = _nearest_neighbour(split)
        else:
            from torchscope.alzheimer._metrics import evaluate
            from torchscope.alzheimer._train import train

            trained = train(split, seed=seed, device=device, **train_options)
            results[name] = evaluate(trained, split.test).balanced_accuracy
    return LeakageDemo(by_slice=float(results["by_slice"]),
                       by_subject=float(results["by_subject"]), classifier=classifier,
                       n_subjects=int(n_subjects), slices_per_subject=int(slices_per_subject),
                       seed=seed)

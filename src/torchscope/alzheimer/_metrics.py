"""Test-set figures: accuracy, balanced accuracy, F1, sensitivity, specificity, ROC-AUC, and the
nWBV + age logistic-regression baseline."""

import dataclasses
import warnings

import numpy as np


@dataclasses.dataclass(frozen=True)
class Metrics:
    """Classification figures on one cohort (positive class: AD or MCI, CDR >= 0.5).

    Attributes
    ----------
    n : int
        Scans evaluated.
    accuracy, balanced_accuracy, f1, sensitivity, specificity, roc_auc : float
        Sensitivity is the true-positive rate, specificity the true-negative rate, balanced
        accuracy their mean. ROC-AUC is NaN when only one class is present; F1, sensitivity
        or specificity are NaN when undefined (no positives predicted or present, ...).
    confusion : numpy.ndarray of int, shape (2, 2)
        Rows: true class (0 healthy, 1 AD/MCI); columns: predicted class.
    threshold : float
        Probability at or above which a scan is called positive.
    probabilities, labels : numpy.ndarray
        Per scan, in the cohort's order.
    baseline : Metrics or None
        The same figures for the logistic regression on nWBV and age fitted on the training
        subjects, when the model has one and the cohort has both columns. A network that does
        not beat it adds nothing.
    """

    n: int
    accuracy: float
    balanced_accuracy: float
    f1: float
    sensitivity: float
    specificity: float
    roc_auc: float
    confusion: np.ndarray
    threshold: float
    probabilities: np.ndarray
    labels: np.ndarray
    baseline: object = None

    def as_dict(self):
        """The scalar figures and the confusion matrix as plain Python values (JSON-able)."""
        out = {k: getattr(self, k) for k in ("n", "accuracy", "balanced_accuracy", "f1",
                                             "sensitivity", "specificity", "roc_auc",
                                             "threshold")}
        out["confusion"] = self.confusion.tolist()
        if self.baseline is not None:
            out["baseline"] = self.baseline.as_dict()
        return out

    def __str__(self):
        rows = [("accuracy", "accuracy"), ("balanced accuracy", "balanced_accuracy"),
                ("F1", "f1"), ("sensitivity", "sensitivity"), ("specificity", "specificity"),
                ("ROC-AUC", "roc_auc")]
        head = f"{'':18s} {'model':>8s}" + (f" {'nWBV+age':>9s}" if self.baseline else "")
        lines = [f"{self.n} scans, threshold {self.threshold:g}", head]
        for label, key in rows:
            line = f"{label:18s} {getattr(self, key):8.3f}"
            if self.baseline is not None:
                line += f" {getattr(self.baseline, key):9.3f}"
            lines.append(line)
        (tn, fp), (fn, tp) = self.confusion
        lines.append(f"confusion (rows true HC/AD, columns predicted): [[{tn} {fp}] [{fn} {tp}]]")
        return "\n".join(lines)


def roc_auc(labels, scores):
    """Area under the ROC curve (the Mann-Whitney U statistic, ties counted as 1/2)."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), np.float64)
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _ratio(a, b):
    return float(a / b) if b else float("nan")


def binary_metrics(labels, probabilities, *, threshold=0.5):
    """:class:`Metrics` of probabilities against 0/1 labels."""
    y = np.asarray(labels).astype(np.int64)
    p = np.asarray(probabilities, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and probabilities {p.shape} must be equal 1-D shapes.")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1.")
    pred = (p >= threshold).astype(np.int64)
    tp = int(np.sum((pred == 1) & (y == 1)))
    tn = int(np.sum((pred == 0) & (y == 0)))
    fp = int(np.sum((pred == 1) & (y == 0)))
    fn = int(np.sum((pred == 0) & (y == 1)))
    sens, spec = _ratio(tp, tp + fn), _ratio(tn, tn + fp)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    rates = [r for r in (sens, spec) if not np.isnan(r)]
    return Metrics(
        n=len(y), accuracy=_ratio(tp + tn, len(y)),
        balanced_accuracy=float(np.mean(rates)) if rates else float("nan"),
        f1=f1, sensitivity=sens, specificity=spec, roc_auc=roc_auc(y, p),
        confusion=np.array([[tn, fp], [fn, tp]]), threshold=float(threshold),
        probabilities=p, labels=y,
    )


def baseline_probabilities(baseline, cohort):
    """Probabilities of the nWBV + age logistic regression for a cohort (None if it lacks them)."""
    if baseline is None:
        return None
    columns = []
    for feature in baseline["features"]:
        column = cohort.age if feature == "Age" else cohort.clinical.get(feature)
        if column is None or column.dtype.kind != "f" or not np.isfinite(column).all():
            return None
        columns.append(column)
    x = (np.stack(columns, 1) - np.asarray(baseline["mean"])) / np.asarray(baseline["std"])
    z = x @ np.asarray(baseline["coef"]) + baseline["intercept"]
    return 1 / (1 + np.exp(-z))


def evaluate(trained, cohort, *, threshold=0.5, device=None):
    """The model's figures on a cohort of held-out subjects.

    Parameters
    ----------
    trained : Trained
    cohort : Cohort
        Subjects the model has not seen (for a model from :func:`train` on a :class:`Split`:
        ``split.test``). Subjects the model was trained or validated on raise a warning.
    threshold : float, optional
        Probability at or above which a scan counts as AD/MCI.
    device : None, str or torch.device

    Returns
    -------
    Metrics
        With ``baseline`` when the model has the nWBV + age regression and the cohort has
        both columns.
    """
    from torchscope.alzheimer._cohort import Cohort
    from torchscope.alzheimer._inference import predict

    if not isinstance(cohort, Cohort):
        raise TypeError(f"cohort must be a Cohort, got {type(cohort).__name__}.")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}.")
    if len(cohort) == 0:
        raise ValueError("cohort is empty.")
    config = trained.config
    seen = set(config.get("train_subjects", [])) | set(config.get("val_subjects", []))
    overlap = sorted(seen & set(cohort.subjects.tolist()))
    if overlap:
        warnings.warn(
            f"{len(overlap)} subject(s) of this cohort have the ids of subjects the model was "
            f"trained or validated on (e.g. {overlap[0]}): unless they are other people with "
            "the same ids (a new phantom cohort), these figures are not a test.",
            stacklevel=2,
        )
    p = predict(trained, cohort.slices, device=device)
    metrics = binary_metrics(cohort.labels, p, threshold=threshold)
    pb = baseline_probabilities(trained.baseline, cohort)
    if pb is not None:
        metrics = dataclasses.replace(
            metrics, baseline=binary_metrics(cohort.labels, pb, threshold=threshold))
    return metrics

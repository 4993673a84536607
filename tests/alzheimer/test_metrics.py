"""evaluate's figures against scikit-learn on known inputs; the nWBV + age baseline."""

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression

from torchscope.alzheimer._metrics import binary_metrics, roc_auc
from torchscope.alzheimer._train import logistic_regression


@pytest.mark.parametrize("seed", range(6))
def test_binary_metrics_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(10, 80))
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    # rounded scores: many ties, some exactly at the threshold
    p = np.round(np.clip(0.5 + 0.3 * (y - 0.5) + 0.3 * rng.standard_normal(n), 0, 1), 1)
    m = binary_metrics(y, p, threshold=0.5)
    pred = (p >= 0.5).astype(int)
    assert m.accuracy == pytest.approx(skm.accuracy_score(y, pred))
    assert m.balanced_accuracy == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m.f1 == pytest.approx(skm.f1_score(y, pred))
    assert m.sensitivity == pytest.approx(skm.recall_score(y, pred))
    assert m.specificity == pytest.approx(skm.recall_score(1 - y, 1 - pred))
    assert m.roc_auc == pytest.approx(skm.roc_auc_score(y, p))
    np.testing.assert_array_equal(m.confusion, skm.confusion_matrix(y, pred, labels=[0, 1]))
    assert m.n == n


def test_known_small_case_by_hand():
    y = np.array([0, 0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.7, 0.2])
    m = binary_metrics(y, p)
    # TN=2 FP=1 FN=1 TP=1
    assert m.confusion.tolist() == [[2, 1], [1, 1]]
    assert m.accuracy == pytest.approx(3 / 5)
    assert m.sensitivity == pytest.approx(1 / 2) and m.specificity == pytest.approx(2 / 3)
    assert m.balanced_accuracy == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert m.f1 == pytest.approx(2 * 1 / (2 * 1 + 1 + 1))
    # pairs (pos, neg): 0.7 beats all 3; 0.2 beats 0.1 only -> 4 of 6
    assert m.roc_auc == pytest.approx(4 / 6)


def test_undefined_figures_are_nan():
    assert np.isnan(roc_auc([1, 1, 1], [0.2, 0.3, 0.9]))
    m = binary_metrics(np.array([0, 0]), np.array([0.1, 0.2]))
    assert np.isnan(m.sensitivity) and m.specificity == 1 and m.balanced_accuracy == 1
    with pytest.raises(ValueError, match="0 or 1"):
        binary_metrics(np.array([0, 2]), np.array([0.1, 0.2]))


@pytest.mark.parametrize("seed", range(4))
def test_baseline_regression_matches_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((60, 2))
    y = (x @ [1.5, -0.7] + 0.3 + rng.standard_normal(60) > 0).astype(int)
    w, b = logistic_regression(x, y)
    ref = LogisticRegression(C=1.0, tol=1e-10, max_iter=10000).fit(x, y)
    np.testing.assert_allclose(w, ref.coef_[0], rtol=1e-5, atol=1e-6)
    assert b == pytest.approx(ref.intercept_[0], rel=1e-5, abs=1e-6)

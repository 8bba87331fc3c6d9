"""learn.metrics: metrics equal scikit-learn's on the same predictions."""
import numpy as np
import pytest
from scipy.stats import norm

sk = pytest.importorskip("sklearn.metrics")

from learn import metrics as lev  # noqa: E402


@pytest.fixture
def preds():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    score = np.clip(0.3 * y + rng.normal(0.35, 0.25, 500), 0, 1).round(2)  # ties on purpose
    return y, score


def test_classification_metrics_equal_sklearn(preds):
    y, p = preds
    pred = (p >= 0.5).astype(int)
    assert lev.accuracy(y, pred) == pytest.approx(sk.accuracy_score(y, pred))
    np.testing.assert_array_equal(lev.confusion_matrix(y, pred), sk.confusion_matrix(y, pred))
    fpr, tpr, thr = lev.roc_curve(y, p)
    sfpr, stpr, sthr = sk.roc_curve(y, p, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sfpr)
    np.testing.assert_allclose(tpr, stpr)
    np.testing.assert_allclose(thr[1:], sthr[1:])
    assert lev.auc(fpr, tpr) == pytest.approx(sk.roc_auc_score(y, p), abs=1e-12)


def test_regression_metrics_and_coverage():
    rng = np.random.default_rng(1)
    n = rng.uniform(3, 4.5, 400)
    pred = n + rng.normal(0.02, 0.1, 400)
    m = lev.regression_metrics(n, pred)
    assert m["mse"] == pytest.approx(sk.mean_squared_error(n, pred))
    assert m["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(n, pred)))
    assert m["mae"] == pytest.approx(sk.mean_absolute_error(n, pred))
    assert m["bias"] == pytest.approx(np.mean(pred - n))
    # Gaussian errors with the true std: coverage close to the nominal levels
    big = rng.normal(0, 1, 200_000)
    cov = lev.coverage(np.zeros_like(big), big, np.ones_like(big))
    assert cov["0.68"] == pytest.approx(0.68, abs=0.005) and cov["0.95"] == pytest.approx(0.95, abs=0.003)
    assert norm.ppf(0.975) == pytest.approx(1.96, abs=1e-3)


def test_per_simulation_means_and_study_table():
    v = np.array([1.0, 3.0, 10.0, 20.0, 30.0])
    idx = np.array([0, 0, 1, 1, 1])
    np.testing.assert_allclose(lev.per_simulation(v, idx), [2.0, 20.0])
    # the study's holdout table: 2113/287 Kolmogorov, 812/1588 Burgers -> 77% accuracy
    cm = np.array([[2113, 287], [812, 1588]])
    t = lev.study_table(cm)
    assert "| kolmogorov | 2113 | 287 | 0.880 |" in t and "| burgers | 812 | 1588 | 0.662 |" in t
    assert np.trace(cm) / cm.sum() == pytest.approx(0.771, abs=1e-3)


def test_saturated_probabilities_keep_their_ranking():
    # logits far beyond float64's sigmoid range: P is exactly 0 or 1 for every image, but the
    # margins still rank them; the tie-broken score gives the margins' AUC, and where P does
    # not saturate it orders exactly as P
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 200)
    margin = 1000.0 + y + rng.normal(0, 0.8, 200)
    p = lev.softmax(np.c_[np.zeros(200), margin])[:, 1]
    assert np.all(p == 1.0)
    fpr, tpr, _ = lev.roc_curve(y, lev.ranking_score(p, margin))
    assert lev.auc(fpr, tpr) == pytest.approx(sk.roc_auc_score(y, margin), abs=1e-12)
    assert lev.auc(*lev.roc_curve(y, p)[:2]) == pytest.approx(0.5)
    q = rng.uniform(0, 1, 200).round(2)  # ties in P broken by a second score, others kept
    r = lev.ranking_score(q, rng.normal(size=200))
    assert np.all(np.diff(q[np.argsort(r, kind="stable")]) >= 0)
    s = lev.classification_scores(y, p, lev.ranking_score(p, margin))
    assert s["auc"] == pytest.approx(sk.roc_auc_score(y, margin), abs=1e-12) and s["accuracy"] == np.mean(y == 1)

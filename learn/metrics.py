"""Metrics of predictions: pure functions of arrays (checked against scikit-learn in the tests).

Classification: :func:`accuracy`, :func:`confusion_matrix` and the study's table,
:func:`roc_curve` and :func:`auc`, with :func:`ranking_score` to keep a saturated
classifier's ranking. Regression: :func:`regression_metrics` and the :func:`coverage` of
predicted Gaussian intervals. :func:`per_simulation` averages per-image values over the
images of each simulation; :func:`classification_scores` and :func:`regression_scores`
collect every metric of one level (per image or per simulation); :func:`headline` picks
the numbers a summary shows.

Examples
--------
>>> accuracy([0, 1, 1, 0], [0, 1, 0, 0])
0.75
>>> fpr, tpr, _ = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
>>> auc(fpr, tpr)
0.75
>>> per_simulation(np.array([1.0, 3.0, 10.0]), np.array([0, 0, 1])).tolist()
[2.0, 10.0]
"""
from __future__ import annotations

import math

import numpy as np

from .transforms import CLASS_NAMES


def accuracy(y_true, y_pred) -> float:
    """Fraction of equal labels."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean(y_true == y_pred)) if y_true.size else float("nan")


def confusion_matrix(y_true, y_pred, n_classes: int = 2) -> np.ndarray:
    """Counts ``C[i, j]`` of true class ``i`` predicted as ``j`` (int64, (n_classes, n_classes))."""
    c = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(c, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return c


def study_table(cm: np.ndarray, class_names=CLASS_NAMES) -> str:
    """A confusion matrix in the study's form (rows: true class; columns: predicted).

    Returns
    -------
    str
        Markdown table, e.g. ``| kolmogorov | 2113 | 287 |`` for the study's Kolmogorov row.
    """
    head = "| true \\ predicted | " + " | ".join(class_names) + " | accuracy |"
    rows = [head, "|" + "---|" * (len(class_names) + 2)]
    for i, name in enumerate(class_names):
        tot = cm[i].sum()
        acc = f"{cm[i, i] / tot:.3f}" if tot else "-"
        rows.append(f"| {name} | " + " | ".join(str(int(v)) for v in cm[i]) + f" | {acc} |")
    return "\n".join(rows)


def roc_curve(y_true, score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Receiver operating characteristic of a score for the positive class 1.

    Parameters
    ----------
    y_true : array_like of {0, 1}
    score : array_like of float
        Higher means more likely class 1.

    Returns
    -------
    fpr, tpr : ndarray
        False and true positive rates at every distinct threshold, from (0, 0) to (1, 1).
    thresholds : ndarray
        ``score >= threshold`` is called positive; the first is ``inf``.
    """
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(score, np.float64)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # last index of each distinct score
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    npos, nneg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    return (np.r_[0.0, fp / nneg], np.r_[0.0, tp / npos], np.r_[np.inf, s[last]])


def auc(x, y) -> float:
    """Area under a curve by the trapezoid rule (e.g. ROC: ``auc(fpr, tpr)``)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def regression_metrics(y_true, y_pred) -> dict:
    """MSE, RMSE, bias (mean of prediction minus truth) and MAE, in the units of ``y``."""
    err = np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)
    mse = float(np.mean(err ** 2))
    return {"mse": mse, "rmse": math.sqrt(mse), "bias": float(err.mean()), "mae": float(np.abs(err).mean())}


def coverage(y_true, mean, std, levels=(0.68, 0.95)) -> dict:
    """Fraction of true values inside the central Gaussian interval of each level.

    Returns
    -------
    dict
        ``{"0.68": fraction inside mean ± z std, ...}`` with ``z`` the Gaussian quantile
        of the level (0.994 for 68%, 1.960 for 95%). A calibrated model gives the level.
    """
    from scipy.stats import norm

    z = np.abs(np.asarray(y_true, np.float64) - np.asarray(mean, np.float64)) / np.asarray(std, np.float64)
    return {f"{lv:g}": float(np.mean(z <= norm.ppf(0.5 + lv / 2))) for lv in levels}


def per_simulation(values: np.ndarray, sim_index: np.ndarray) -> np.ndarray:
    """Mean of per-image values over each simulation (rows ordered by simulation index)."""
    values = np.asarray(values, np.float64)
    k = int(sim_index.max()) + 1 if sim_index.size else 0
    count = np.bincount(sim_index, minlength=k)
    sums = np.stack([np.bincount(sim_index, weights=v, minlength=k) for v in values.reshape(len(values), -1).T], -1)
    return (sums / np.maximum(count, 1)[:, None]).reshape((k,) + values.shape[1:])


def ranking_score(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Dense ranks of ``primary``, ties broken by ``secondary`` (for ROC curves).

    A confident classifier's probabilities saturate at exactly 0 or 1 on data far from its
    training set, and its ROC curve on them collapses to the diagonal although its logits
    still rank the images; breaking those ties by the logit margin keeps the ranking and
    leaves every unsaturated comparison as it was.
    """
    primary, secondary = np.asarray(primary, np.float64), np.asarray(secondary, np.float64)
    order = np.lexsort((secondary, primary))
    p, q = primary[order], secondary[order]
    new = np.r_[True, (p[1:] != p[:-1]) | (q[1:] != q[:-1])]
    ranks = np.empty(len(order))
    ranks[order] = np.cumsum(new)
    return ranks


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (float64; the maximum is subtracted first, so it never overflows)."""
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)



def classification_scores(y: np.ndarray, p: np.ndarray, rank: np.ndarray | None = None) -> dict:
    """Accuracy, confusion matrix, study table and ROC AUC of P(class 1) against 0/1 labels.

    ``rank`` (default ``p``) orders the images for the ROC curve: any score increasing
    with P(class 1), e.g. :func:`ranking_score` of ``p`` and the logit margin.
    """
    pred = (p >= 0.5).astype(int)
    cm = confusion_matrix(y, pred)
    fpr, tpr, _ = roc_curve(y, p if rank is None else rank)
    both = len(np.unique(y)) == 2
    return {"accuracy": accuracy(y, pred), "confusion": cm.tolist(), "table": study_table(cm),
            "auc": auc(fpr, tpr) if both else None, "n": int(len(y))}


def regression_scores(n: np.ndarray, pred: np.ndarray, std: np.ndarray | None = None) -> dict:
    """Regression metrics (and coverage when a predicted std is given)."""
    out = regression_metrics(n, pred)
    out["n"] = int(len(n))
    if std is not None:
        out["coverage"] = coverage(n, pred, std)
    return out


HEADLINE = {"classify": ("accuracy", "auc"), "regress": ("rmse", "bias")}


def headline(metrics: dict) -> dict:
    """The headline numbers of a metrics record: ``{"per_image.accuracy": ..., ...}``."""
    keys = HEADLINE.get(metrics.get("mode"), ())
    return {f"{lvl}.{k}": metrics[lvl][k] for lvl in ("per_image", "per_sim") for k in keys
            if metrics.get(lvl, {}).get(k) is not None}


def drop_against(metrics: dict, reference: dict) -> dict:
    """Headline metrics minus the reference's (negative accuracy change = a drop)."""
    a, b = headline(metrics), headline(reference)
    return {k: a[k] - b[k] for k in a if k in b}



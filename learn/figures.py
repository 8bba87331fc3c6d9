"""Figures of a run (PNG, written atomically): learning curves and the scores of a data set.

* :func:`plot_curves`: loss and metric per epoch, training and validation (``curves.png``);
* :func:`write_figures`: per scored data set, the confusion matrix and ROC curves
  (``classification.png``), P(Burgers) against the true ``n`` of a sweep (``sweep.png``),
  or predicted against true ``n`` (``regression.png``).

Matplotlib is imported on first use, with the non-interactive Agg backend.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from turbsim.atomic import atomic_path

from .metrics import auc, roc_curve
from .transforms import CLASS_N, CLASS_NAMES


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    """Write a figure to ``path`` as PNG (atomically) and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    _plt().close(fig)


def plot_curves(history: list[dict], task: str, path: Path) -> None:
    """Learning curves: loss and metric (accuracy, or RMSE of n) per epoch.

    Parameters
    ----------
    history : list of dict
        One record per epoch: ``epoch``, ``train_loss``, ``train_metric``, ``val_loss``,
        ``val_metric`` (the validation entries may be None).
    task : {"classify", "regress"}
        Names the metric.
    path : Path
        PNG file to write.
    """
    plt = _plt()
    ep = [h["epoch"] for h in history]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    metric = "accuracy" if task == "classify" else "RMSE of n"
    for i, (key, label) in enumerate((("loss", "loss"), ("metric", metric))):
        ax[i].plot(ep, [h[f"train_{key}"] for h in history], "o-", label="train")
        val = [h[f"val_{key}"] for h in history]
        if any(v is not None and np.isfinite(v) for v in val):
            ax[i].plot(ep, val, "s-", label="validation")
        ax[i].set_xlabel("epoch")
        ax[i].set_ylabel(label)
        ax[i].legend()
    fig.tight_layout()
    _save(fig, path)


def write_figures(metrics: dict, arrays: dict, outdir: Path) -> list[str]:
    """The figures of one scored data set (PNG files in ``outdir``).

    Parameters
    ----------
    metrics : dict
        The data set's metrics (:func:`learn.evaluate.score`); ``mode`` picks the figure.
    arrays : dict
        The predictions and truths behind them (:func:`learn.evaluate.score`).
    outdir : Path
        Existing folder to write into.

    Returns
    -------
    list of str
        Names of the files written.
    """
    plt = _plt()
    names = []
    mode, idx = metrics["mode"], arrays["sim_index"]
    if mode == "classify":
        fig, ax = plt.subplots(1, 2, figsize=(9, 4))
        cm = np.asarray(metrics["per_image"]["confusion"])
        ax[0].imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax[0].text(j, i, str(v), ha="center", va="center")
        ax[0].set_xticks([0, 1], CLASS_NAMES)
        ax[0].set_yticks([0, 1], CLASS_NAMES)
        ax[0].set_xlabel("predicted")
        ax[0].set_ylabel("true")
        ax[0].set_title(f"per image: accuracy {metrics['per_image']['accuracy']:.3f}")
        for lvl, y, p in (("per image", arrays["klass"][idx], arrays["rank"]),
                          ("per simulation", arrays["klass"], arrays["rank_sim"])):
            fpr, tpr, _ = roc_curve(y, p)
            ax[1].plot(fpr, tpr, label=f"{lvl} (AUC {auc(fpr, tpr):.3f})")
        ax[1].plot([0, 1], [0, 1], "k:")
        ax[1].set_xlabel(f"false positive rate ({CLASS_NAMES[0]} called {CLASS_NAMES[1]})")
        ax[1].set_ylabel("true positive rate")
        ax[1].legend()
        fig.tight_layout()
        _save(fig, outdir / "classification.png")
        names.append("classification.png")
    elif mode == "sweep":
        fig, ax = plt.subplots(figsize=(5.5, 4))
        ax.plot(arrays["n_true"][idx], arrays["p_burgers"], ".", alpha=0.15, ms=3, label="images")
        ax.plot(arrays["n_true"], arrays["p_sim"], "o", label="simulations (mean)")
        for n, lab in zip(CLASS_N, CLASS_NAMES):
            ax.axvline(n, color="k", ls=":")
            ax.text(n, 1.02, lab.capitalize(), ha="center", fontsize=8)
        ax.set_xlabel("true n")
        ax.set_ylabel("P(Burgers)")
        ax.legend()
        fig.tight_layout()
        _save(fig, outdir / "sweep.png")
        names.append("sweep.png")
    else:
        fig, ax = plt.subplots(figsize=(5, 5))
        n_img = arrays["n_true"][idx]
        if "n_std" in arrays:
            ax.errorbar(n_img, arrays["n_pred"], yerr=arrays["n_std"], fmt=".", alpha=0.15, ms=3, label="images")
        else:
            ax.plot(n_img, arrays["n_pred"], ".", alpha=0.15, ms=3, label="images")
        ax.plot(arrays["n_true"], arrays["n_sim"], "o", label="simulations (mean)")
        lo, hi = float(arrays["n_true"].min()), float(arrays["n_true"].max())
        ax.plot([lo, hi], [lo, hi], "k:")
        ax.set_xlabel("true n")
        ax.set_ylabel("predicted n")
        ax.set_title(f"RMSE {metrics['per_image']['rmse']:.3f} per image, {metrics['per_sim']['rmse']:.3f} per sim")
        ax.legend()
        fig.tight_layout()
        _save(fig, outdir / "regression.png")
        names.append("regression.png")
    return names


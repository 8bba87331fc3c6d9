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



# --------------------------------------------------------------------------------------
# explanations (learn.explain, learn.embed, learn.baselines, learn.transfer)
# --------------------------------------------------------------------------------------
def _extent(side_pc: float | None, size: int):
    """imshow extent and axis label: in pc when the image side is known, else in pixels."""
    if side_pc:
        return (0.0, side_pc, 0.0, side_pc), "[pc]"
    return (0, size, 0, size), "[px]"


def plot_saliency_maps(images: np.ndarray, maps: dict, labels: list[str], path: Path, *,
                       side_pc: float | None = None) -> None:
    """Images beside their saliency maps, one row per image, one column per method.

    Parameters
    ----------
    images : ndarray, shape (M, S, S)
        Normalised log10 column density.
    maps : dict
        ``{method name: ndarray (M, S, S)}`` signed saliency.
    labels : list of str
        One per row.
    path : Path
        PNG to write.
    side_pc : float, optional
        Image side [pc] (axes in pixels otherwise).
    """
    plt = _plt()
    m, s = len(images), images.shape[-1]
    cols = 1 + len(maps)
    fig, axes = plt.subplots(m, cols, figsize=(2.2 * cols + 1.2, 2.1 * m + 1.4), squeeze=False,
                             layout="constrained")
    extent, unit = _extent(side_pc, s)
    lim = float(np.percentile(np.abs(images), 99.5)) or 1.0
    for i in range(m):
        im = axes[i, 0].imshow(images[i], origin="lower", extent=extent, cmap="viridis", vmin=-lim, vmax=lim)
        axes[i, 0].set_ylabel(labels[i] + f"\ny {unit}", fontsize=8)
        for j, (name, sal) in enumerate(maps.items(), start=1):
            v = float(np.percentile(np.abs(sal[i]), 99.5)) or 1.0
            sm = axes[i, j].imshow(sal[i] / v, origin="lower", extent=extent, cmap="RdBu_r", vmin=-1, vmax=1)
            axes[i, j].set_yticks([])
            if i == 0:
                axes[i, j].set_title(name, fontsize=9)
        if i == 0:
            axes[i, 0].set_title("image", fontsize=9)
    for j in range(cols):
        axes[-1, j].set_xlabel(f"x {unit}", fontsize=8)
        for i in range(m - 1):
            axes[i, j].set_xticks([])
    for ax in axes.ravel():
        ax.tick_params(labelsize=7)
    fig.colorbar(im, ax=axes[-1, 0], location="bottom", shrink=0.9, label="normalised log10 Σ")
    if maps:
        fig.colorbar(sm, ax=axes[-1, 1:].tolist(), location="bottom", shrink=0.6,
                     label="saliency / its 99.5th percentile of |value| (red raises the output)")
    fig.suptitle("Saliency maps", fontsize=11)
    _save(fig, path)


def _plain_ticks(axis) -> None:
    """Ticks at 1, 2, 5 x powers of ten labelled as plain numbers on a logarithmic axis."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FormatStrFormatter("%g"))
    axis.set_minor_formatter(NullFormatter())


def _scale_axis(ax, side_pc: float | None, image_px: int | None = None) -> None:
    """A top axis giving the scale ``L / k`` of a wavenumber axis [pc, or px]."""
    side = side_pc or image_px
    if not side:
        return
    unit = "pc" if side_pc else "px"
    top = ax.secondary_xaxis("top", functions=(lambda k: side / np.maximum(k, 1e-9),
                                               lambda l: side / np.maximum(l, 1e-9)))
    top.set_xlabel(f"scale L / k [{unit}]")
    _plain_ticks(top.xaxis)


def plot_saliency_spectra(curves: list, path: Path, *, side_pc: float | None = None,
                          image_px: int | None = None) -> None:
    """Share of the power per wavenumber shell of the maps (solid) and the saliency (dashed), per group.

    Parameters
    ----------
    curves : list of (name, k, maps fraction, saliency fraction)
        :func:`learn.occlusion.mean_spectrum` of the images and of their saliency.
    path : Path
    side_pc : float, optional
        Image side [pc], for a top axis of scales.
    image_px : int, optional
        Image side [px], for that axis when ``side_pc`` is unknown.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, (name, k, f_map, f_sal) in enumerate(curves):
        c = f"C{i}"
        ax.loglog(k, np.where(f_map > 0, f_map, np.nan), "-", color=c, label=f"{name}: maps")
        ax.loglog(k, np.where(f_sal > 0, f_sal, np.nan), "--", color=c, label=f"{name}: saliency")
    ax.set_xlabel("wavenumber k [cycles per image side]")
    ax.set_ylabel("share of the power per shell")
    _plain_ticks(ax.xaxis)
    _scale_axis(ax, side_pc, image_px)
    ax.set_title("Where the maps hold their variance, where the network is sensitive", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def _band_label(lo: float, hi: float) -> str:
    return f"{lo:.3g}-{hi:.3g}" if np.isfinite(hi) else f"≥{lo:.3g}"


def plot_band_occlusion(result: dict, path: Path, *, side_pc: float | None = None) -> None:
    """Scores with one wavenumber band removed (bars) against the untouched inputs (lines).

    Parameters
    ----------
    result : dict
        :func:`learn.occlusion.band_occlusion`.
    path : Path
    side_pc : float, optional
        Image side [pc]: the bands are also labelled by their scales.
    """
    plt = _plt()
    bands, metric = result["bands"], result["metric"]
    x = np.arange(len(bands))
    labels = []
    for b in bands:
        lab = "k " + _band_label(b["k_lo"], b["k_hi"])
        if side_pc:
            hi_scale = side_pc / b["k_lo"]
            lo_scale = side_pc / b["k_hi"] if np.isfinite(b["k_hi"]) else 0.0
            lab += f"\n{lo_scale:.2g}-{hi_scale:.2g} pc"
        labels.append(lab)
    fig, ax = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 1.3]})
    for j, (lvl, name) in enumerate((("per_image", "per image"), ("per_sim", "per simulation"))):
        ax[0].bar(x + (j - 0.5) * 0.38, [b[lvl] for b in bands], 0.38, color=f"C{j}", label=f"band removed, {name}")
        ax[0].axhline(result["reference"][lvl], color=f"C{j}", ls="--", label=f"untouched, {name}")
    ax[0].set_xticks(x, labels, fontsize=8)
    ax[0].set_xlabel("band removed [cycles per image side]")
    ax[0].set_ylabel("accuracy" if metric == "accuracy" else "RMSE of n")
    if metric == "accuracy":
        ax[0].set_ylim(0, 1.05)
        ax[0].axhline(0.5, color="k", ls=":", lw=0.8, label="chance")
    elif "no_skill" in result:
        ax[0].axhline(result["no_skill"]["per_image"], color="k", ls=":", lw=0.8, label="always the mean n")
    ax[0].legend(fontsize=7)
    ax[0].set_title("Band occlusion", fontsize=10)
    ax[1].bar(x, [b["variance_fraction"] for b in bands], color="0.5")
    ax[1].set_xticks(x, ["k " + _band_label(b["k_lo"], b["k_hi"]) for b in bands], fontsize=7, rotation=45)
    ax[1].set_ylabel("share of the images' variance")
    ax[1].set_title("Power in each band", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_embeddings(panels: list, path: Path, *, colour: np.ndarray, by: str, title: str = "t-SNE") -> None:
    """2-D embeddings side by side, points coloured by class or by ``n``.

    Parameters
    ----------
    panels : list of (title, ndarray (M, 2))
    path : Path
    colour : ndarray, shape (M,)
        Class (0/1) or ``n`` of every point.
    by : {"class", "n"}
    title : str
    """
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels) + 0.8, 4.6), squeeze=False)
    for ax, (name, emb) in zip(axes[0], panels):
        if by == "class":
            for c in (0, 1):
                sel = colour == c
                ax.scatter(emb[sel, 0], emb[sel, 1], s=5, alpha=0.6, color=f"C{c}", label=CLASS_NAMES[c])
            ax.legend(fontsize=8, markerscale=2)
        else:
            sc = ax.scatter(emb[:, 0], emb[:, 1], s=5, alpha=0.7, c=colour, cmap="viridis")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("t-SNE 1 (arbitrary units)")
        ax.set_ylabel("t-SNE 2 (arbitrary units)")
    if by == "n":
        fig.colorbar(sc, ax=axes[0].tolist(), label="true n")
    fig.suptitle(title, fontsize=11)
    _save(fig, path)


def plot_roc_comparison(curves: list, path: Path, *, title: str = "ROC") -> None:
    """Several ROC curves on one plot.

    Parameters
    ----------
    curves : list of (label, labels 0/1, score)
        Scores grow with the evidence for class 1 (Burgers).
    path : Path
    title : str
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for i, (label, y, score) in enumerate(curves):
        fpr, tpr, _ = roc_curve(y, score)
        ax.plot(fpr, tpr, color=f"C{i // 2}", ls="-" if i % 2 == 0 else "--",
                label=f"{label} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel(f"false positive rate ({CLASS_NAMES[0]} called {CLASS_NAMES[1]})")
    ax.set_ylabel(f"true positive rate ({CLASS_NAMES[1]} called {CLASS_NAMES[1]})")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    _save(fig, path)


def plot_regression_panels(panels: list, path: Path) -> None:
    """Predicted against true ``n``, one panel per method (images and per-simulation means).

    Parameters
    ----------
    panels : list of (title, n_true per image, n_pred per image, n_true per sim, n_pred per sim)
    path : Path
    """
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.6), squeeze=False)
    for ax, (name, t_img, p_img, t_sim, p_sim) in zip(axes[0], panels):
        ax.plot(t_img, p_img, ".", alpha=0.15, ms=3, label="images")
        ax.plot(t_sim, p_sim, "o", ms=4, label="simulations (mean)")
        lo, hi = float(np.min(t_sim)), float(np.max(t_sim))
        ax.plot([lo, hi], [lo, hi], "k:")
        rmse_i = float(np.sqrt(np.mean((np.asarray(p_img) - t_img) ** 2)))
        rmse_s = float(np.sqrt(np.mean((np.asarray(p_sim) - t_sim) ** 2)))
        ax.set_title(f"{name}\nRMSE {rmse_i:.3f} per image, {rmse_s:.3f} per sim", fontsize=9)
        ax.set_xlabel("true n")
        ax.set_ylabel("predicted n")
        ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def plot_learning_curves(sizes, panels: dict, path: Path, *, title: str = "Transfer learning") -> None:
    """Scores against the number of training simulations per class, one line per training arm.

    Parameters
    ----------
    sizes : sequence of int
        Training simulations per class.
    panels : dict
        ``{y-axis label: {arm label: [score per size]}}``, one panel each (None where an
        arm was not run).
    path : Path
    title : str
    """
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.4), squeeze=False, layout="constrained")
    for ax, (ylabel, arms) in zip(axes[0], panels.items()):
        lo = 1.0
        for i, (label, vals) in enumerate(arms.items()):
            v = np.array([np.nan if x is None else x for x in vals], float)
            ax.plot(sizes, v, "o-", color=f"C{i}", label=label)
            lo = min(lo, float(np.nanmin(v)) if np.isfinite(v).any() else lo)
        if "accuracy" in ylabel:  # the whole way down to chance: one simulation does not look like a cliff
            ax.set_ylim(max(0.0, min(0.5, lo - 0.02)), 1.01)
            ax.axhline(0.5, color="k", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_xticks(list(sizes), [str(s) for s in sizes])
        ax.minorticks_off()
        ax.set_xlabel("training simulations per class")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)

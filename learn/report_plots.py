"""The figures of the study report, drawn from arrays (no files read here).

Each function returns a matplotlib figure on the Agg canvas (:func:`turbsim.figures.new_figure`:
no pyplot, no global state); :func:`png_bytes` renders one to PNG bytes for embedding.

* :func:`example_maps`: one log column-density map per class, axes in pc, one colour bar;
* :func:`class_spectra`: the classes' mean power spectra of log10 Σ against k [1/pc];
* :func:`roc_figure`: every method's ROC curve on one plot, per image and per simulation;
* :func:`learning_curves`: loss and metric per epoch on the train and test splits;
* :func:`regression_scatter`: predicted against true n, one panel per method;
* :func:`sweep_figure`: a classifier's P(Burgers) per simulation against n.
"""
from __future__ import annotations

import io

import numpy as np

from turbsim import spectra
from turbsim.figures import LOG_SIGMA_LABEL, new_figure, plot_map

from .metrics import auc, roc_curve
from .transforms import CLASS_N

LINESTYLES = ("-", "--", "-.", ":")


def png_bytes(fig, dpi: int = 90) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def example_maps(maps: list[tuple[str, np.ndarray, float]], box_pc: float, *, axis: int = 2,
                 time_myr: float | None = None):
    """One map per class side by side, on one colour scale.

    Parameters
    ----------
    maps : list of (label, log_sigma, n)
        Class name, its map ``log10 Σ`` [g/cm^2] (N, N) and its spectral index.
    box_pc : float
        Box side [pc].
    axis : {0, 1, 2}
        Projection axis (names the plot axes).
    time_myr : float, optional
        Time of the maps [Myr].
    """
    fig, axes = new_figure(len(maps), width=4.6, height=3.9)
    lo = min(float(m.min()) for _, m, _ in maps)
    hi = max(float(m.max()) for _, m, _ in maps)
    for ax, (label, m, n) in zip(axes, maps):
        plot_map(ax, m, box_pc, n=n, axis=axis, time_myr=time_myr, prefix=label, vmin=lo, vmax=hi,
                 label=LOG_SIGMA_LABEL)
    return fig


def mean_log_spectrum(log_maps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and spread of the power spectra of maps (each minus its mean).

    Parameters
    ----------
    log_maps : ndarray, shape (M, N, N)
        ``log10 Σ`` maps.

    Returns
    -------
    k : ndarray
        Wavenumbers 1 .. N/2 in units of the fundamental ``2 pi / L``.
    mean, std : ndarray
        Mean and standard deviation over the maps of ``log10`` of the power per mode
        [(dex)^2].
    """
    rows = []
    for m in np.asarray(log_maps, np.float64):
        k, p = spectra.power_spectrum(m - m.mean())
        rows.append(p)
    k = np.asarray(k)
    sel = (k >= 1) & (k <= log_maps.shape[-1] // 2)
    lp = np.log10(np.maximum(np.asarray(rows)[:, sel], 1e-300))
    return k[sel], lp.mean(0), lp.std(0)


def class_spectra(groups: list[tuple[str, np.ndarray]], box_pc: float):
    """The classes' mean power spectra of log10 Σ, with their spread over maps.

    Parameters
    ----------
    groups : list of (label, log_maps)
        A class (or band of n) and its maps ``log10 Σ`` (M, N, N).
    box_pc : float
        Box side [pc]: the abscissa is ``k / L`` [1/pc].
    """
    fig, (ax,) = new_figure(1, width=6.0, height=4.2)
    for i, (label, maps) in enumerate(groups):
        k, mean, std = mean_log_spectrum(maps)
        kk = k / box_pc
        ax.plot(kk, 10 ** mean, LINESTYLES[i % 4], label=f"{label} ({len(maps)} maps)")
        ax.fill_between(kk, 10 ** (mean - std), 10 ** (mean + std), alpha=0.2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"wavenumber $k/L$ [pc$^{-1}$]")
    ax.set_ylabel(r"power of $\log_{10}\Sigma$ per mode [dex$^2$]")
    ax.legend()
    return fig


def roc_figure(curves: list[tuple[str, dict]], title: str = ""):
    """Every method's ROC curve on one plot, per image (left) and per simulation (right).

    Parameters
    ----------
    curves : list of (label, levels)
        ``levels`` maps ``"per image"`` / ``"per simulation"`` to ``(y, rank)``: the 0/1
        truths and a score ranking them (higher: more Burgers).
    title : str
        Title of the figure.
    """
    fig, axes = new_figure(2, width=4.8, height=4.4)
    for j, lvl in enumerate(("per image", "per simulation")):
        ax = axes[j]
        for i, (label, levels) in enumerate(curves):
            if lvl not in levels:
                continue
            y, rank = levels[lvl]
            fpr, tpr, _ = roc_curve(y, rank)
            ax.plot(fpr, tpr, LINESTYLES[(i // 10) % 4], label=f"{label} (AUC {auc(fpr, tpr):.3f})")
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set_xlabel("false positive rate (Kolmogorov called Burgers)")
        ax.set_ylabel("true positive rate (Burgers called Burgers)")
        ax.set_title(lvl)
        ax.legend(fontsize=7, loc="lower right")
    if title:
        fig.suptitle(title)
    return fig


def learning_curves(history: list[dict], task: str, title: str = ""):
    """Loss and metric per epoch on the train split and on the test split (validation).

    Parameters
    ----------
    history : list of dict
        Rows of ``history.csv``: ``epoch``, ``train_loss``, ``train_metric``, ``val_loss``,
        ``val_metric`` (the ``val_`` entries are the test split's).
    task : {"classify", "regress"}
    title : str
    """
    fig, axes = new_figure(2, width=4.6, height=3.6)
    metric = "accuracy per image" if task == "classify" else "RMSE of n per image"
    ep = [h["epoch"] for h in history]
    for ax, key, label in ((axes[0], "loss", "loss"), (axes[1], "metric", metric)):
        ax.plot(ep, [h[f"train_{key}"] for h in history], "o-", ms=3, label="train split (augmented images)")
        val = [h.get(f"val_{key}") for h in history]
        if any(v is not None and np.isfinite(v) for v in val):
            ax.plot(ep, [np.nan if v is None else v for v in val], "s-", ms=3, label="test split")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def regression_scatter(panels: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]):
    """Predicted against true n, one panel per method.

    Parameters
    ----------
    panels : list of (label, n_image, pred_image, n_sim, pred_sim)
        Truth and prediction per image and per simulation (mean of its images).
    """
    fig, axes = new_figure(len(panels), width=3.9, height=3.9)
    for ax, (label, n_img, p_img, n_sim, p_sim) in zip(axes, panels):
        ax.plot(n_img, p_img, ".", alpha=0.2, ms=3, label="images")
        ax.plot(n_sim, p_sim, "o", ms=4, label="simulations (mean)")
        lo, hi = float(np.min(n_sim)), float(np.max(n_sim))
        ax.plot([lo, hi], [lo, hi], "k:", lw=0.8)
        rmse = float(np.sqrt(np.mean((np.asarray(p_sim) - n_sim) ** 2)))
        ax.set_title(f"{label}\nRMSE per simulation {rmse:.3f}", fontsize=9)
        ax.set_xlabel("true n")
        ax.set_ylabel("predicted n")
        ax.legend(fontsize=7)
    return fig


def sweep_figure(curves: list[tuple[str, np.ndarray, np.ndarray]]):
    """A binary classifier's P(Burgers) per simulation against the simulation's n.

    Parameters
    ----------
    curves : list of (label, n, p_sim)
    """
    fig, (ax,) = new_figure(1, width=6.0, height=4.2)
    for i, (label, n, p) in enumerate(curves):
        order = np.argsort(n)
        ax.plot(np.asarray(n)[order], np.asarray(p)[order], "o" + LINESTYLES[i % 4], ms=3, lw=0.8, label=label)
    for n, name in zip(CLASS_N, ("Kolmogorov", "Burgers")):
        ax.axvline(n, color="k", ls=":", lw=0.8)
        ax.text(n, 1.03, name, ha="center", fontsize=8)
    ax.set_ylim(-0.02, 1.08)
    ax.set_xlabel("true n of the simulation")
    ax.set_ylabel("P(Burgers), mean over the simulation's images")
    ax.legend(fontsize=8)
    return fig

"""Which scales carry the answer: spectra of images and saliency, band-stop filters, band occlusion.

The mean power spectrum of a set of images (:func:`mean_spectrum`: where the maps hold
their variance, or where a network is sensitive when the images are saliency maps); a
Fourier band-stop on the normalised images (:func:`band_stop`); and band occlusion
(:func:`band_occlusion`): the drop in accuracy (or the rise in RMSE of n) when one band of
wavenumbers is removed from every input, band by band, per image and per simulation. A
band the network does not use costs nothing; one it relies on costs much.

Wavenumbers ``k`` are in units of the image's fundamental, ``2 pi / L`` with ``L`` the
image side: ``k`` cycles per image side, a scale of ``L / k``.

Examples
--------
>>> x = np.cos(2 * np.pi * 3 * np.arange(16) / 16)[None, :, None] * np.ones((1, 16, 16))
>>> float(np.abs(band_stop(x, 2, 4)).max()) < 1e-12   # k = 3 removed: nothing left
True
>>> bool(np.allclose(band_stop(x, 4, 8), x))          # another band: unchanged
True
"""
from __future__ import annotations

import logging

import numpy as np

from turbsim import spectra
from turbsim.console import progress as progress_bar

from .baselines import band_edges
from .metrics import classification_scores, per_simulation, regression_scores, softmax

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------
# spectra and band-stop filters
# --------------------------------------------------------------------------------------
def mean_spectrum(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean shell power spectrum of images, normalised to sum 1 over the shells ``k >= 1``.

    Parameters
    ----------
    images : ndarray, shape (M, S, S)
        Periodic or not (read as periodic); each image's mean is left out.

    Returns
    -------
    k : ndarray, shape (K,)
        Shells ``1 .. K`` [cycles per image side] (:func:`turbsim.spectra.power_spectrum`).
    fraction : ndarray, shape (K,)
        Share of the images' variance in each shell (the mean over images of the shell
        power, divided by its sum): spectra of quantities in different units on one axis.

    Examples
    --------
    >>> x = np.cos(2 * np.pi * 5 * np.arange(32) / 32)[None, None, :] * np.ones((2, 32, 32))
    >>> k, f = mean_spectrum(x)
    >>> int(k[np.argmax(f)]), round(float(f.max()), 12)
    (5, 1.0)
    """
    total = None
    for img in np.asarray(images, np.float64):
        k, p = spectra.power_spectrum(img - img.mean(), kind="shell")
        total = p if total is None else total + p
    total = total[1:]
    return k[1:], total / max(total.sum(), 1e-300)


def median_wavenumber(k: np.ndarray, fraction: np.ndarray) -> float:
    """The wavenumber below which half of a spectrum's power lies (interpolated between shells).

    Examples
    --------
    >>> median_wavenumber(np.array([1.0, 2.0, 3.0, 4.0]), np.full(4, 0.25))
    2.0
    """
    c = np.cumsum(fraction) / max(float(np.sum(fraction)), 1e-300)
    i = int(np.searchsorted(c, 0.5))
    if i == 0:
        return float(k[0])
    lo = c[i - 1]
    return float(k[i - 1] + (k[i] - k[i - 1]) * (0.5 - lo) / max(c[i] - lo, 1e-300))


def band_stop(images: np.ndarray, k_lo: float, k_hi: float) -> np.ndarray:
    """Images with every Fourier mode of ``k_lo <= |k| < k_hi`` removed.

    Parameters
    ----------
    images : ndarray, shape (M, S, S)
        Normalised images, read as periodic.
    k_lo, k_hi : float
        The band [cycles per image side]; ``k_lo >= 1`` keeps each image's mean.

    Returns
    -------
    ndarray, float32, shape (M, S, S)
        Not renormalised: the images lose the band's variance and keep every other mode.
    """
    images = np.asarray(images, np.float64)
    s0, s1 = images.shape[-2:]
    k0, k1 = np.fft.fftfreq(s0) * s0, np.fft.fftfreq(s1) * s1
    kk = np.hypot(k0[:, None], k1[None, :])
    keep = ~((kk >= k_lo) & (kk < k_hi))
    return np.fft.ifft2(np.fft.fft2(images) * keep).real.astype(np.float32)


def occlusion_bands(size: int, n_bands: int | None = None) -> np.ndarray:
    """Band edges for :func:`band_occlusion`: logarithmic from ``k = 1`` to ``size/2``.

    The default is octaves (``round(log2(size/2))`` bands). The last band is open above,
    taking the corner modes of the square (``|k|`` up to ``size/sqrt(2)``).

    Returns
    -------
    ndarray, shape (n_bands + 1,)
        Edges [cycles per image side], the last one ``inf``.

    Examples
    --------
    >>> occlusion_bands(64).round(6).tolist()
    [1.0, 2.0, 4.0, 8.0, 16.0, inf]
    """
    n_bands = n_bands or max(1, int(round(np.log2(size / 2))))
    edges = band_edges(size, n_bands)
    edges[-1] = np.inf
    return edges


def _scores(task: str, out: np.ndarray, sim_index: np.ndarray, truth: np.ndarray, n_scale: float,
            n_mean: float) -> dict:
    """Per-image and per-simulation scores of raw outputs: accuracy and AUC, or RMSE of n."""
    if task == "classify":
        p = softmax(out)[:, 1]
        return {"per_image": classification_scores(truth[sim_index], p),
                "per_sim": classification_scores(truth, per_simulation(p, sim_index))}
    n_pred = out[:, 0].astype(np.float64) * n_scale + n_mean
    return {"per_image": regression_scores(truth[sim_index], n_pred),
            "per_sim": regression_scores(truth, per_simulation(n_pred, sim_index))}


def band_occlusion(predict_fn, images: np.ndarray, sim_index: np.ndarray, truth: np.ndarray, *, task: str,
                   edges: np.ndarray | None = None, n_scale: float = 1.0, n_mean: float = 0.0,
                   progress: bool = False) -> dict:
    """Scores of a model on images with one wavenumber band removed, band by band.

    Parameters
    ----------
    predict_fn : callable
        ``predict_fn(images) -> raw outputs (M, n_out)`` (e.g. :meth:`learn.rundir.Run.predict`).
    images : ndarray, shape (M, S, S)
        Normalised images.
    sim_index : ndarray of int, shape (M,)
        Simulation (0..k-1) of every image.
    truth : ndarray, shape (k,)
        Class (0/1) or ``n`` of every simulation.
    task : {"classify", "regress"}
    edges : ndarray, optional
        Band edges [cycles per image side] (default :func:`occlusion_bands`).
    n_scale, n_mean : float
        Regression: ``n = output * n_scale + n_mean`` (the target scaler).
    progress : bool

    Returns
    -------
    dict
        ``edges``; ``metric`` ("accuracy" or "rmse"); ``reference`` (scores of the
        untouched images, per level); ``bands``: one record per band with ``k_lo``,
        ``k_hi``, ``variance_fraction`` (the band's mean share of the images' variance),
        ``per_image`` and ``per_sim`` (the metric with the band removed) and
        ``change_per_image``, ``change_per_sim`` (occluded minus reference: negative for
        an accuracy drop, positive for an RMSE rise); ``max_abs_image_change`` (largest
        pixel change the band-stop made, 0 for a band without power); for regression
        ``no_skill``, the RMSE of always answering the mean ``n`` (per level).
    """
    images = np.asarray(images, np.float32)
    edges = occlusion_bands(images.shape[-1]) if edges is None else np.asarray(edges, np.float64)
    metric = "accuracy" if task == "classify" else "rmse"
    ref = _scores(task, predict_fn(images), sim_index, truth, n_scale, n_mean)
    var = np.maximum(images.var(axis=(1, 2)), 1e-30)
    out = {"edges": edges.tolist(), "metric": metric,
           "reference": {lvl: ref[lvl][metric] for lvl in ("per_image", "per_sim")}, "bands": []}
    if task == "classify":
        out["reference"].update({f"{lvl}_auc": ref[lvl]["auc"] for lvl in ("per_image", "per_sim")})
    else:  # the RMSE of always answering the mean n
        out["no_skill"] = {"per_image": float(np.std(truth[sim_index])), "per_sim": float(np.std(truth))}
    for lo, hi in progress_bar(list(zip(edges[:-1], edges[1:])), desc="band occlusion", unit="band",
                               disable=not progress, leave=False, min_time=2):
        cut = band_stop(images, lo, hi)
        sc = _scores(task, predict_fn(cut), sim_index, truth, n_scale, n_mean)
        rec = {"k_lo": float(lo), "k_hi": float(hi),
               "variance_fraction": float(np.mean(np.maximum(var - cut.var(axis=(1, 2)), 0.0) / var)),
               "max_abs_image_change": float(np.abs(cut - images).max()) if len(images) else 0.0}
        for lvl in ("per_image", "per_sim"):
            rec[lvl] = sc[lvl][metric]
            rec[f"change_{lvl}"] = sc[lvl][metric] - ref[lvl][metric]
            if task == "classify":
                rec[f"{lvl}_auc"] = sc[lvl]["auc"]
        out["bands"].append(rec)
    return out

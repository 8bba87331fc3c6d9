"""Classical baselines on the same images and splits as the networks.

* ``"spectrum"``: the 2D power spectrum of each normalised log column-density image,
  averaged in ``n_bins`` logarithmic bins of wavenumber between the fundamental and the
  Nyquist wavenumber of the image, log10 of the power as features, then a logistic
  regression (classification) or a ridge regression (regression of ``n``), both after
  standardising the features.
* ``"stats"``: the spectrum bins plus statistics a power spectrum is blind to, with the
  same linear models: the one-point distribution of the image (standard deviation,
  skewness, excess kurtosis, quantiles about the mean) and, in ``N_BANDS`` logarithmic
  annuli of wavenumber, the log mean modulus of the band-passed image (a first-order
  scattering coefficient), its log kurtosis (intermittency of the band) and the
  correlations between the moduli of different bands (how structures at one scale sit
  on those at another: shocks and filaments couple scales, a Gaussian field does not).
  It measures how much information beyond the spectrum the images hold for a
  linear reader.
* ``"hog"``: histogram-of-oriented-gradients features (:func:`skimage.feature.hog`),
  then a support-vector machine (RBF :class:`~sklearn.svm.SVC` / :class:`~sklearn.svm.SVR`).

Features are built from exactly the images the networks see (the study's 48 per
simulation, same normalisation), trained on the train split and scored with the same
per-image and per-simulation metrics (:mod:`learn.metrics`).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from turbsim import observe, spectra
from turbsim.console import progress as progress_bar

from .data import MapSet, load_split
from .metrics import classification_scores, headline, per_simulation, regression_scores
from .transforms import Normaliser, eval_set, fit_normaliser, targets

log = logging.getLogger(__name__)

KINDS = ("spectrum", "stats", "hog")
N_BANDS = 6
"""Wavenumber bands of the ``"stats"`` baseline."""
TINY = 1e-150
QUANTILES = (1, 5, 25, 50, 75, 95, 99)
"""Quantiles [%] of the one-point distribution in the ``"stats"`` baseline."""
FEATURE_BLOCK = 512
"""Images whose features are computed at once (a multiple of the ``"stats"`` filter chunk)."""


def spectrum_features(images: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """Log10 power in logarithmic wavenumber bins of each image.

    Parameters
    ----------
    images : ndarray, shape (M, S, S)
        Images (dimensionless, e.g. normalised log10 Σ).
    n_bins : int
        Number of bins between ``k = 1`` and ``k = S/2`` (wavenumbers in units of
        ``2 pi / S`` pixels).

    Returns
    -------
    ndarray, float64, shape (M, n_bins)
        log10 of the mean power per Fourier mode in each bin (the shell spectra of
        :func:`turbsim.spectra.power_spectrum`, averaged over the shells of the bin).
    """
    images = np.asarray(images, np.float64)
    s = images.shape[-1]
    edges = np.logspace(0, np.log10(s / 2), n_bins + 1)
    edges[-1] += 1e-9
    k, _ = spectra.power_spectrum(images[0])
    which = np.digitize(k, edges) - 1  # bin of every integer shell
    use = (which >= 0) & (which < n_bins)
    feats = np.empty((len(images), n_bins))
    for i, img in enumerate(images):
        _, p = spectra.power_spectrum(img - img.mean())
        good = use & np.isfinite(p)
        sums = np.bincount(which[good], weights=p[good], minlength=n_bins)
        cnt = np.bincount(which[good], minlength=n_bins)
        feats[i] = np.log10(np.maximum(sums / np.maximum(cnt, 1), 1e-30))
    return feats


def _bands(s: int, n_bands: int) -> np.ndarray:
    """Boolean masks (n_bands, s, s) of logarithmic annuli ``1 <= |k| < s/2`` of an s x s FFT."""
    k = np.fft.fftfreq(s) * s
    kk = np.hypot(k[:, None], k[None, :])
    edges = np.logspace(0, np.log10(s / 2), n_bands + 1)
    edges[-1] += 1e-9
    return np.stack([(kk >= a) & (kk < b) for a, b in zip(edges[:-1], edges[1:])])


def statistics_features(images: np.ndarray, n_bins: int = 10, n_bands: int = N_BANDS,
                        chunk: int = 64) -> np.ndarray:
    """Power spectrum plus one-point and multi-scale non-Gaussian statistics of each image.

    Parameters
    ----------
    images : ndarray, shape (M, S, S)
        Images (dimensionless, e.g. normalised log10 Σ), treated as periodic.
    n_bins : int
        Spectrum bins (:func:`spectrum_features`).
    n_bands : int
        Logarithmic wavenumber bands between ``k = 1`` and ``k = S/2`` (units of
        ``2 pi / S`` pixels) for the band statistics.
    chunk : int
        Images filtered at once (memory ~ ``chunk * n_bands * S^2 * 16`` bytes).

    Returns
    -------
    ndarray, float64, shape (M, n_bins + 3 + len(QUANTILES) + 2 n_bands + n_bands (n_bands - 1) / 2)
        Spectrum bins; standard deviation, skewness, excess kurtosis and quantiles minus
        the mean of the pixel values; per band, log mean modulus and log kurtosis of the
        band-passed image; per pair of bands, the correlation coefficient of their moduli.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> statistics_features(rng.normal(size=(2, 32, 32)), n_bins=4, n_bands=3).shape
    (2, 23)
    """
    images = np.asarray(images, np.float64)
    m, s = len(images), images.shape[-1]
    bands = _bands(s, n_bands)
    pairs = np.triu_indices(n_bands, 1)
    flat = images.reshape(m, -1)
    mu, sd = flat.mean(1), flat.std(1)
    z = (flat - mu[:, None]) / np.maximum(sd, TINY)[:, None]
    onept = np.c_[sd, (z ** 3).mean(1), (z ** 4).mean(1) - 3.0,
                  np.percentile(flat, QUANTILES, axis=1).T - mu[:, None]]
    multi = np.empty((m, 2 * n_bands + len(pairs[0])))
    for a in range(0, m, chunk):
        f = np.fft.fft2(images[a:a + chunk])
        bp = np.fft.ifft2(f[:, None] * bands[None]).real.reshape(len(f), n_bands, -1)
        amp = np.abs(bp)
        var = np.maximum((bp ** 2).mean(2), TINY)  # a band without power (a flat image) stays finite
        kurt = np.maximum((bp ** 4).mean(2), TINY) / var ** 2
        amp_z = (amp - amp.mean(2, keepdims=True)) / np.maximum(amp.std(2, keepdims=True), TINY)
        corr = np.einsum("mis,mjs->mij", amp_z, amp_z) / amp.shape[2]
        multi[a:a + chunk] = np.c_[np.log(np.maximum(amp.mean(2), TINY)), np.log(kurt), corr[:, pairs[0], pairs[1]]]
    return np.c_[spectrum_features(images, n_bins), onept, multi]


def hog_features(images: np.ndarray, pixels_per_cell: int | None = None) -> np.ndarray:
    """HOG descriptors of each image (9 orientations, 2x2 cells per block).

    ``pixels_per_cell`` defaults to ``S / 8`` (an 8x8 grid of cells per image).
    """
    from skimage.feature import hog

    s = images.shape[-1]
    ppc = pixels_per_cell or max(2, s // 8)
    return np.stack([hog(img, orientations=9, pixels_per_cell=(ppc, ppc), cells_per_block=(2, 2),
                         feature_vector=True) for img in np.asarray(images, np.float64)])


def features(kind: str, images: np.ndarray, n_bins: int = 10, *, progress: bool = False,
             desc: str = "features") -> np.ndarray:
    """Features of a baseline kind (:data:`KINDS`).

    Parameters
    ----------
    kind : {"spectrum", "stats", "hog"}
    images : ndarray, shape (M, S, S)
        Normalised images.
    n_bins : int
        Spectrum bins.
    progress : bool
        Show a progress bar in images (:func:`turbsim.console.progress`).
    desc : str
        Label of the bar.

    Returns
    -------
    ndarray, float64, shape (M, F)
        One row per image, computed :data:`FEATURE_BLOCK` images at a time.
    """
    if kind not in KINDS:
        raise ValueError(f"baseline kind = {kind!r} is not one of {', '.join(KINDS)}")
    images = np.asarray(images)
    with progress_bar(total=len(images), desc=desc, unit="img", disable=not progress, leave=False) as bar:
        blocks = []
        for a in range(0, len(images), FEATURE_BLOCK):
            blocks.append(_features(kind, images[a:a + FEATURE_BLOCK], n_bins))
            bar.update(len(blocks[-1]))
    return np.concatenate(blocks) if blocks else np.zeros((0, 0))


def _features(kind: str, images: np.ndarray, n_bins: int) -> np.ndarray:
    if kind == "spectrum":
        return spectrum_features(images, n_bins)
    if kind == "stats":
        return statistics_features(images, n_bins)
    return hog_features(images)


def make_estimator(kind: str, task: str):
    """The scikit-learn pipeline of a baseline: standardise, then the model."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, SVR

    if kind in ("spectrum", "stats"):
        est = LogisticRegression(C=10.0, max_iter=2000) if task == "classify" else Ridge(alpha=1e-3)
    elif kind == "hog":
        est = SVC(C=1.0) if task == "classify" else SVR(C=1.0, epsilon=0.01)
    else:
        raise ValueError(f"baseline kind = {kind!r} is not one of {', '.join(KINDS)}")
    return make_pipeline(StandardScaler(), est)


def run_baseline(kind: str, data_path, *, task: str, normalisation: str = "global", splits=("test",),
                 allow_holdout: bool = False, max_train_images: int | None = 20000, seed: int = 0,
                 n_bins: int = 10, others=(), full_maps: bool = False, progress: bool = False) -> dict:
    """Train a baseline on the train split of an ensemble and score it on other splits.

    Parameters
    ----------
    kind : {"spectrum", "stats", "hog"}
    data_path : path-like
        Ensemble ``.h5`` file.
    task : {"classify", "regress"}
    normalisation : {"global", "per_image"}
        As for the networks (the normaliser is fitted on the train split).
    splits : tuple of str
        Splits to score.
    allow_holdout : bool
        Needed to score the holdout split.
    max_train_images : int, optional
        Random subset of training images (HOG + SVM scales quadratically), None for all.
    seed : int
        Seed of that subset.
    n_bins : int
        Spectrum bins.
    others : sequence of path-like
        Other data to score the same fitted baseline on: ensembles (their test split) or
        RAMSES ``.npz`` map files; maps of another size are resampled to the training maps'
        scale first (:func:`learn.transforms.resample_maps`), as for the networks.

    Returns
    -------
    dict
        ``{split: metrics}`` and ``{file name: metrics}`` for ``others`` (same layout as
        :func:`learn.evaluate.score`) plus ``"kind"``.
    full_maps : bool
        Use the whole maps (periodic, one image per map) instead of the study's quadrant
        images, as a network trained without quadrants or crops sees them.
    progress : bool
        Show progress bars of the feature computation.
    """
    train = load_split(data_path, "train")
    y_sim = targets(train.labels, task, train.source)
    size = train.maps.shape[-1] if full_maps else train.maps.shape[-1] // 2
    norm = (fit_normaliser("global", observe.log_column(train.maps)) if normalisation == "global"
            else Normaliser("per_image"))
    x, idx = eval_set(train.maps, norm, size, full_maps=full_maps)
    if max_train_images and len(x) > max_train_images:
        pick = np.sort(np.random.default_rng(seed).choice(len(x), max_train_images, replace=False))
        x, idx = x[pick], idx[pick]
    est = make_estimator(kind, task).fit(features(kind, x, n_bins, progress=progress, desc=f"baseline {kind}"),
                                         y_sim[idx])
    out = {"kind": kind, "normalisation": normalisation, "n_train_images": int(len(x)),
           "images": "full maps" if full_maps else "quadrants", "n_bins": n_bins}
    for split in splits:
        out[split] = _score(est, kind, task, load_split(data_path, split, allow_holdout=allow_holdout),
                            norm, size, n_bins, full_maps, progress)
        log.info("baseline %s on %s: %s", kind, split, headline(out[split]))
    for other in others:
        name = Path(other).name
        out[name] = _score(est, kind, task, load_split(other, "test"), norm, size, n_bins, full_maps, progress)
        log.info("baseline %s on %s: %s", kind, name, headline(out[name]))
    return out


def _score(est, kind: str, task: str, ms: MapSet, norm: Normaliser, size: int, n_bins: int,
           full_maps: bool, progress: bool = False) -> dict:
    """Per-image and per-simulation scores of a fitted baseline on a set of maps."""
    xs, sidx = eval_set(ms.maps, norm, size, full_maps=full_maps)
    f = features(kind, xs, n_bins, progress=progress, desc=f"baseline {kind}")
    n_true, klass = np.asarray(ms.labels["n"], np.float64), np.asarray(ms.labels["klass"])
    if task == "classify":
        model = est[-1]
        score = (est.predict_proba(f)[:, 1] if hasattr(model, "predict_proba") and kind != "hog"
                 else 1.0 / (1.0 + np.exp(-est.decision_function(f))))
        return {"mode": "classify", "per_image": classification_scores(klass[sidx], score),
                "per_sim": classification_scores(klass, per_simulation(score, sidx))}
    pred = est.predict(f)
    return {"mode": "regress", "per_image": regression_scores(n_true[sidx], pred),
            "per_sim": regression_scores(n_true, per_simulation(pred, sidx))}

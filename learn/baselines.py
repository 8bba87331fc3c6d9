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
from dataclasses import dataclass
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
    edges = band_edges(s, n_bins)
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


def band_edges(s: int, n_bands: int) -> np.ndarray:
    """Edges of ``n_bands`` logarithmic wavenumber bands from ``k = 1`` to ``k = s/2``.

    Wavenumbers in units of the image's fundamental ``2 pi / s`` pixels^-1 (``s`` pixels a
    side). Returns ``n_bands + 1`` increasing edges, the last one ``s/2``.

    Examples
    --------
    >>> band_edges(32, 4).round(9).tolist()
    [1.0, 2.0, 4.0, 8.0, 16.0]
    """
    if n_bands < 1:
        raise ValueError(f"n_bands = {n_bands} must be >= 1")
    return np.logspace(0, np.log10(s / 2), n_bands + 1)


def band_masks(s: int, n_bands: int, *, corners: bool = False) -> np.ndarray:
    """Boolean masks ``(n_bands, s, s)`` of logarithmic annuli of an s x s FFT (``numpy.fft.fft2`` layout).

    Band ``i`` holds the modes with ``edges[i] <= |k| < edges[i+1]`` (:func:`band_edges`;
    the last band includes ``|k| = s/2``). With ``corners`` the last band also takes the
    modes beyond ``s/2`` in the corners of the square (``|k|`` up to ``s/sqrt(2)``), so the
    bands cover every mode but the mean.
    """
    k = np.fft.fftfreq(s) * s
    kk = np.hypot(k[:, None], k[None, :])
    edges = band_edges(s, n_bands)
    edges[-1] = np.inf if corners else edges[-1] + 1e-9
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
    bands = band_masks(s, n_bands)
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


HOG_ORIENTATIONS = 8
"""Orientation bins of the HOG features (the study's 8)."""
HOG_CELLS = 12
"""Cells along each side of an image in the HOG features (the study's 12)."""


def hog_grid(size: int, cells: int = HOG_CELLS) -> tuple[int, int]:
    """Pixels per HOG cell and cells a side for images of ``size`` pixels: ``size // cells``
    pixels (at least 2), as many whole cells as fit.

    Examples
    --------
    >>> hog_grid(64), hog_grid(32), hog_grid(8)
    ((5, 12), (2, 16), (2, 4))
    """
    ppc = max(2, size // cells)
    return ppc, size // ppc


def hog_label(size: int, cells: int = HOG_CELLS, orientations: int = HOG_ORIENTATIONS) -> str:
    """What the HOG features of images of ``size`` pixels are, e.g. ``"12 x 12 cells of 5 px, 8 orientations"``."""
    ppc, n = hog_grid(size, cells)
    return f"{n} x {n} cells of {ppc} px, {orientations} orientations"


def hog_features(images: np.ndarray, *, orientations: int = HOG_ORIENTATIONS, cells: int = HOG_CELLS,
                 cells_per_block: int = 2) -> np.ndarray:
    """HOG descriptors of each image (:func:`skimage.feature.hog`), the study's 12 cells and 8 orientations.

    Parameters
    ----------
    images : ndarray, shape (M, S, S)
        Images (dimensionless, e.g. normalised log10 Σ).
    orientations : int
        Orientation bins of the gradient histograms (unsigned, 0-180 degrees).
    cells : int
        Cells along each side: ``S // cells`` pixels per cell (at least 2, so an image of
        fewer than ``2 * cells`` pixels gets ``S // 2`` cells; the last ``S mod cells``
        rows and columns fall outside the grid, as in scikit-image).
    cells_per_block : int
        Cells along each side of a normalisation block (L2-Hys).

    Returns
    -------
    ndarray, float64, shape (M, F)
        ``F = (c - b + 1)^2 * b^2 * orientations`` with ``c`` cells and ``b`` cells per
        block a side. Deterministic (no randomness).

    Examples
    --------
    >>> hog_features(np.random.default_rng(0).normal(size=(2, 64, 64))).shape  # 12 cells of 5 px
    (2, 3872)
    >>> hog_features(np.zeros((1, 8, 8))).shape  # 4 cells of 2 px
    (1, 288)
    """
    from skimage.feature import hog

    images = np.asarray(images, np.float64)
    s = images.shape[-1]
    ppc, _ = hog_grid(s, cells)
    if s // ppc < cells_per_block:
        raise ValueError(f"images of {s} px give {s // ppc} HOG cells of {ppc} px a side, fewer than a block "
                         f"({cells_per_block} cells)")
    return np.stack([hog(img, orientations=orientations, pixels_per_cell=(ppc, ppc),
                         cells_per_block=(cells_per_block, cells_per_block), feature_vector=True)
                     for img in images])


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


@dataclass
class FittedBaseline:
    """A baseline fitted on the train split, with what it needs to read other maps.

    Attributes
    ----------
    kind : {"spectrum", "stats", "hog"}
    task : {"classify", "regress"}
    estimator : sklearn pipeline
        Standardisation and model (:func:`make_estimator`), fitted.
    normaliser : learn.transforms.Normaliser
    image_size : int
        Side of its images [pixels]; maps are resampled to ``2 * image_size`` (or to
        ``image_size`` with ``full_maps``) first, as for the networks.
    n_bins : int
        Spectrum bins.
    full_maps : bool
        Whole maps (one image per map) instead of the study's quadrant images.
    n_train_images : int
    """

    kind: str
    task: str
    estimator: object
    normaliser: Normaliser
    image_size: int
    n_bins: int
    full_maps: bool
    n_train_images: int

    def outputs(self, ms: MapSet, *, progress: bool = False) -> dict:
        """Per-image outputs on a set of maps, with the truths.

        Returns
        -------
        dict
            ``sim_index`` (simulation of each image), ``n_true`` and ``klass`` (per
            simulation); classification: ``score``, a number in (0, 1) that grows with
            the evidence for Burgers (the logistic model's P(Burgers), the SVM's decision
            function through a logistic, which keeps its ranking); regression: ``n_pred``.
        """
        xs, sidx = eval_set(ms.maps, self.normaliser, self.image_size, full_maps=self.full_maps)
        f = features(self.kind, xs, self.n_bins, progress=progress, desc=f"baseline {self.kind}")
        out = {"sim_index": sidx, "n_true": np.asarray(ms.labels["n"], np.float64),
               "klass": np.asarray(ms.labels["klass"])}
        est = self.estimator
        if self.task == "classify":
            out["score"] = (est.predict_proba(f)[:, 1] if hasattr(est[-1], "predict_proba") and self.kind != "hog"
                            else 1.0 / (1.0 + np.exp(-est.decision_function(f))))
        else:
            out["n_pred"] = est.predict(f)
        return out

    def score(self, ms: MapSet, *, progress: bool = False) -> dict:
        """Per-image and per-simulation scores on a set of maps (layout of :func:`learn.evaluate.score`)."""
        o = self.outputs(ms, progress=progress)
        sidx, klass, n_true = o["sim_index"], o["klass"], o["n_true"]
        if self.task == "classify":
            return {"mode": "classify", "per_image": classification_scores(klass[sidx], o["score"]),
                    "per_sim": classification_scores(klass, per_simulation(o["score"], sidx))}
        return {"mode": "regress", "per_image": regression_scores(n_true[sidx], o["n_pred"]),
                "per_sim": regression_scores(n_true, per_simulation(o["n_pred"], sidx))}


def fit_baseline(kind: str, train: MapSet, *, task: str, normaliser: Normaliser, image_size: int,
                 full_maps: bool = False, max_train_images: int | None = 20000, seed: int = 0, n_bins: int = 10,
                 progress: bool = False) -> FittedBaseline:
    """Fit a baseline on the evaluation images of the training maps.

    Parameters
    ----------
    kind : {"spectrum", "stats", "hog"}
    train : learn.data.MapSet
        Training maps [g/cm^2] and labels.
    task : {"classify", "regress"}
    normaliser : learn.transforms.Normaliser
        Normalisation of the log10 images (e.g. a network run's own).
    image_size : int
        Image side [pixels] (maps are resampled to twice it, or to it with ``full_maps``).
    full_maps : bool
        Whole maps instead of quadrants.
    max_train_images : int, optional
        Random subset of training images (HOG + SVM scales quadratically), None for all.
    seed : int
        Seed of that subset.
    n_bins : int
        Spectrum bins.
    progress : bool
        Show a progress bar of the features.

    Returns
    -------
    FittedBaseline
    """
    y_sim = targets(train.labels, task, train.source)
    x, idx = eval_set(train.maps, normaliser, image_size, full_maps=full_maps)
    if max_train_images and len(x) > max_train_images:
        pick = np.sort(np.random.default_rng(seed).choice(len(x), max_train_images, replace=False))
        x, idx = x[pick], idx[pick]
    est = make_estimator(kind, task).fit(features(kind, x, n_bins, progress=progress, desc=f"baseline {kind}"),
                                         y_sim[idx])
    return FittedBaseline(kind, task, est, normaliser, image_size, n_bins, full_maps, int(len(x)))


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
    full_maps : bool
        Use the whole maps (periodic, one image per map) instead of the study's quadrant
        images, as a network trained without quadrants or crops sees them.
    progress : bool
        Show progress bars of the feature computation.

    Returns
    -------
    dict
        ``{split: metrics}`` and ``{file name: metrics}`` for ``others`` (same layout as
        :func:`learn.evaluate.score`) plus ``"kind"``.
    """
    train = load_split(data_path, "train")
    size = train.maps.shape[-1] if full_maps else train.maps.shape[-1] // 2
    norm = (fit_normaliser("global", observe.log_column(train.maps)) if normalisation == "global"
            else Normaliser("per_image"))
    fitted = fit_baseline(kind, train, task=task, normaliser=norm, image_size=size, full_maps=full_maps,
                          max_train_images=max_train_images, seed=seed, n_bins=n_bins, progress=progress)
    out = {"kind": kind, "normalisation": normalisation, "n_train_images": fitted.n_train_images,
           "images": "full maps" if full_maps else "quadrants", "n_bins": n_bins}
    for split in splits:
        out[split] = fitted.score(load_split(data_path, split, allow_holdout=allow_holdout), progress=progress)
        log.info("baseline %s on %s: %s", kind, split, headline(out[split]))
    for other in others:
        name = Path(other).name
        out[name] = fitted.score(load_split(other, "test"), progress=progress)
        log.info("baseline %s on %s: %s", kind, name, headline(out[name]))
    return out


def hog_section(run, train: MapSet, scored, folder: Path, *, max_train_images: int = 4000, seed: int = 0,
                progress: bool = False):
    """HOG + SVM's ROC beside the network's (classification), or HOG + SVR's predicted n (regression).

    The HOG baseline is fitted on the run's own images of ``train`` (its normaliser, image
    size and cuts) and scored on the run's scored images.

    Parameters
    ----------
    run : learn.rundir.Run
    train : MapSet
        The training maps (the run's train split).
    scored : learn.explain.Scored
        The run's evaluation images, outputs and truths (:func:`learn.explain.score_images`).
    folder : Path
        Section folder: ``roc.png`` (classification) or ``regression.png``.
    max_train_images : int
        Random subset of training images for the SVM/SVR.
    seed : int
    progress : bool

    Returns
    -------
    learn.sections.Section
        data: per method and level the AUC and accuracy (or RMSE and bias), and the ROC
        points (or per-simulation predictions) to redraw the figure.
    """
    from .metrics import ranking_score, roc_curve, softmax
    from .sections import Figure, Section, Table, small_split_note
    from . import figures

    folder.mkdir(parents=True, exist_ok=True)
    task = run.config.task
    fitted = fit_baseline("hog", train, task=task, normaliser=run.normaliser, image_size=run.image_size,
                          full_maps=run.full_maps, max_train_images=max_train_images, seed=seed, progress=progress)
    f = features("hog", scored.images, progress=progress, desc="baseline hog")
    sidx, truth = scored.sim_index, scored.truth_sim
    note = small_split_note(scored.n_sims)
    setup = (f"HOG features ({hog_label(run.image_size)}) of the network's own images, an RBF "
             f"{'SVM' if task == 'classify' else 'SVR'} fitted on {fitted.n_train_images} images of the train split, "
             f"scored on {scored.source}")
    if task == "classify":
        hog_img = 1.0 / (1.0 + np.exp(-fitted.estimator.decision_function(f)))
        p_net = softmax(scored.outputs)[:, 1]
        margin = scored.outputs[:, 1].astype(np.float64) - scored.outputs[:, 0]
        levels = {"per image": (truth[sidx], ranking_score(p_net, margin), hog_img, p_net),
                  "per simulation": (truth, ranking_score(per_simulation(p_net, sidx), per_simulation(margin, sidx)),
                                     per_simulation(hog_img, sidx), per_simulation(p_net, sidx))}
        curves, rows, data = [], [], {"methods": {}}
        for lvl, (y, r_net, s_hog, p) in levels.items():
            curves += [(f"{run.config.model}, {lvl}", y, r_net), (f"HOG + SVM, {lvl}", y, s_hog)]
            for method, score, prob in ((run.config.model, r_net, p), ("HOG + SVM", s_hog, s_hog)):
                sc = classification_scores(y, prob, score)
                fpr, tpr, _ = roc_curve(y, score)
                data["methods"].setdefault(method, {})[lvl] = {"auc": sc["auc"], "accuracy": sc["accuracy"],
                                                               "fpr": fpr, "tpr": tpr}
                rows.append([method, lvl, round(sc["accuracy"], 4), None if sc["auc"] is None else round(sc["auc"], 4)])
        figures.plot_roc_comparison([(lab, y, s) for lab, y, s in curves], folder / "roc.png",
                                    title=f"ROC on {scored.source}")
        d = data["methods"]
        text = (f"{setup}. Per image, HOG + SVM reaches AUC {d['HOG + SVM']['per image']['auc']:.3f} and accuracy "
                f"{d['HOG + SVM']['per image']['accuracy']:.3f}, the network AUC "
                f"{d[run.config.model]['per image']['auc']:.3f} and accuracy "
                f"{d[run.config.model]['per image']['accuracy']:.3f}; per simulation "
                f"{d['HOG + SVM']['per simulation']['auc']:.3f} against "
                f"{d[run.config.model]['per simulation']['auc']:.3f} "
                f"(AUC).")
        if d["HOG + SVM"]["per image"]["auc"] is not None and d["HOG + SVM"]["per image"]["auc"] < 0.6:
            text += (" HOG + SVM is near chance: its descriptor is a map of local, contrast-normalised histograms of "
                     "gradient orientations, tied to positions that carry nothing in statistically homogeneous "
                     "turbulence, and orientations are isotropic in both classes.")
        text = f"{text} {note}".strip()
        return Section("HOG + SVM against the network: ROC", text,
                       [Figure("roc.png", "ROC curves of the network (solid) and HOG + SVM (dashed), per image and "
                               "per simulation, on the same images.")],
                       [Table("Accuracy and ROC AUC", ["method", "level", "accuracy", "AUC"], rows)],
                       {**data, "n_sims": scored.n_sims, "n_train_images": fitted.n_train_images,
                        "source": scored.source})
    n_hog = fitted.estimator.predict(f)
    n_net = scored.outputs[:, 0].astype(np.float64) * scored.n_scale + scored.n_mean
    rows, data = [], {"methods": {}}
    panels = []
    for method, pred in (("HOG + SVR", n_hog), (run.config.model, n_net)):
        sims = per_simulation(pred, sidx)
        per = {"per image": regression_scores(truth[sidx], pred), "per simulation": regression_scores(truth, sims)}
        data["methods"][method] = {lvl: {"rmse": v["rmse"], "bias": v["bias"]} for lvl, v in per.items()}
        data["methods"][method]["n_pred_sim"] = sims
        rows += [[method, lvl, round(v["rmse"], 4), round(v["bias"], 4)] for lvl, v in per.items()]
        panels.append((method, truth[sidx], pred, truth, sims))
    data["n_true_sim"] = truth
    figures.plot_regression_panels(panels, folder / "regression.png")
    d = data["methods"]
    text = (f"{setup}. HOG + SVR reads n with an RMSE of {d['HOG + SVR']['per image']['rmse']:.3f} per image and "
            f"{d['HOG + SVR']['per simulation']['rmse']:.3f} per simulation; the network "
            f"{d[run.config.model]['per image']['rmse']:.3f} and {d[run.config.model]['per simulation']['rmse']:.3f} "
            f"(the study's CNN: 0.155; always answering the mean n would give {float(np.std(truth)):.3f}). "
            f"{note}").strip()
    return Section("HOG + SVR: regression of n", text,
                   [Figure("regression.png", "Predicted against true n: HOG + SVR and the network, images (dots) and "
                           "per-simulation means (circles); the dotted line is perfect prediction.")],
                   [Table("RMSE and bias of n", ["method", "level", "RMSE", "bias"], rows)],
                   {**data, "n_sims": scored.n_sims, "n_train_images": fitted.n_train_images, "source": scored.source})

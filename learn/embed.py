"""t-SNE maps of what a network and the HOG features make of the images.

:func:`tsne` embeds feature vectors in two dimensions (scikit-learn's t-SNE after
standardising and a PCA to at most 50 components; a fixed seed gives the same map),
:func:`knn_score` measures how well the classes (or ``n``) are separated in a map: the
leave-one-out accuracy (or RMSE) of a k-nearest-neighbour vote, and :func:`tsne_section`
writes the study's figure for a run: the HOG features (the study's 12 cells and 8
orientations, :func:`learn.baselines.hog_features`) beside the network's last hidden
features (``model.features``: study_cnn's last dense layer, resnet's pooled features, the
pyramid's log energies), coloured by class or, on a sweep, by ``n``.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> f = np.r_[rng.normal(0, 1, (30, 5)), rng.normal(4, 1, (30, 5))]
>>> emb = tsne(f, seed=0, perplexity=10)
>>> emb.shape, bool(np.array_equal(emb, tsne(f, seed=0, perplexity=10)))
((60, 2), True)
>>> knn_score(emb, np.repeat([0, 1], 30))
1.0
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from turbsim.atomic import atomic_path

from . import figures
from .baselines import hog_features, hog_label
from .sections import Figure, Section, Table, small_split_note

log = logging.getLogger(__name__)

PCA_DIMS = 50
"""Principal components kept before the t-SNE (fewer if the features have fewer)."""
KNN = 5
"""Neighbours of the separation score."""


def tsne(features: np.ndarray, *, seed: int = 0, perplexity: float = 30.0, pca_dims: int = PCA_DIMS,
         iterations: int = 1000) -> np.ndarray:
    """Two-dimensional t-SNE of feature vectors.

    Parameters
    ----------
    features : ndarray, shape (M, F)
        One row per image (any units: each column is standardised; constant columns are
        dropped).
    seed : int
        Seed of the t-SNE. Its initialisation is the PCA and it runs on one thread, so the
        map is the same for the same features on any machine.
    perplexity : float
        Capped at ``(M - 1) / 3``.
    pca_dims : int
        Principal components kept first.
    iterations : int
        Gradient-descent iterations of the t-SNE, >= 250 (scikit-learn's least).

    Returns
    -------
    ndarray, float64, shape (M, 2)
        Arbitrary units; only neighbourhoods mean something.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    f = np.asarray(features, np.float64)
    if f.ndim != 2 or len(f) < 4:
        raise ValueError(f"t-SNE needs at least 4 feature rows (M, F), got shape {f.shape}")
    sd = f.std(axis=0)
    f = (f[:, sd > 0] - f[:, sd > 0].mean(axis=0)) / sd[sd > 0]
    if f.shape[1] == 0:
        raise ValueError("t-SNE of constant features: every column is the same for all rows")
    dims = min(pca_dims, f.shape[1], len(f))
    if dims < f.shape[1]:
        f = PCA(dims, svd_solver="full").fit_transform(f)
    per = min(perplexity, (len(f) - 1) / 3)
    with threadpool_limits(1):  # one thread: the same map on any machine (and faster on a busy one)
        return TSNE(2, perplexity=per, init="pca", random_state=seed, learning_rate="auto",
                    max_iter=iterations).fit_transform(f)


def knn_score(embedding: np.ndarray, values: np.ndarray, *, k: int = KNN, classes: bool = True) -> float:
    """Leave-one-out k-nearest-neighbour score of labels in an embedding.

    Parameters
    ----------
    embedding : ndarray, shape (M, D)
    values : ndarray, shape (M,)
        Classes, or a continuous quantity such as ``n``.
    k : int
        Neighbours (the point itself excluded).
    classes : bool
        Majority vote and accuracy (True), or mean and RMSE of the values (False).

    Returns
    -------
    float
        Accuracy (0.5 for classes mixed at random in two balanced groups), or RMSE.
    """
    from sklearn.neighbors import NearestNeighbors

    e = np.asarray(embedding, np.float64)
    v = np.asarray(values)
    k = min(k, len(e) - 1)
    _, nb = NearestNeighbors(n_neighbors=k + 1).fit(e).kneighbors(e)
    nb = nb[:, 1:]
    if classes:
        vote = (v[nb] == 1).mean(axis=1)
        pred = np.where(vote == 0.5, v[nb[:, 0]], vote > 0.5).astype(v.dtype)
        return float(np.mean(pred == v))
    return float(np.sqrt(np.mean((v[nb].mean(axis=1) - v) ** 2)))


def tsne_section(run, scored, folder: Path, *, max_images: int = 1500, perplexity: float = 30.0, seed: int = 0,
                 iterations: int = 1000, labels: dict | None = None, progress: bool = False) -> Section:
    """t-SNE of the HOG features and of a run's features on its scored images; ``tsne.png`` into ``folder``.

    Parameters
    ----------
    run : learn.rundir.Run
    scored : learn.explain.Scored
        The run's evaluation images and truths (:func:`learn.explain.score_images`).
    folder : Path
    max_images : int
        A random subset of at most this many images (t-SNE is quadratic in memory).
    perplexity : float
    seed : int
        Subset and t-SNE.
    iterations : int
        t-SNE iterations.
    labels : dict, optional
        Per-simulation labels of the scored maps (``n``, ``klass``): colour by ``n`` when it
        takes more than two values, else by class.
    progress : bool

    Returns
    -------
    Section
        data: ``knn`` (leave-one-out 5-NN accuracy of the classes, or RMSE of n, in each
        embedding and in the features themselves); the points, their colours and images
        in ``tsne_points.npz`` (``hog``, ``network``, ``colour``, ``sim_index``, ``image_index``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    m = len(scored.images)
    pick = np.sort(rng.choice(m, min(max_images, m), replace=False))
    x, sidx = scored.images[pick], scored.sim_index[pick]
    n_sim = np.asarray((labels or {}).get("n", np.full(scored.n_sims, np.nan)), np.float64)
    klass_sim = np.asarray((labels or {}).get("klass", np.full(scored.n_sims, -1)))
    by_n = np.isfinite(n_sim).all() and len(np.unique(n_sim)) > 2
    by = "n" if by_n else "class"
    colour = n_sim[sidx] if by_n else klass_sim[sidx]
    if by == "class" and not np.isin(colour, (0, 1)).all():
        raise ValueError(f"{scored.source}: t-SNE colours need classes 0/1 or a sweep of n")
    feats = {f"HOG ({hog_label(x.shape[-1])})": hog_features(x),
             f"{run.config.model}: last hidden features": run.predict(x, batch_size=run.config.eval_batch_size,
                                                                      features=True, progress=progress)}
    panels, knn = [], {}
    for name, f in feats.items():
        emb = tsne(f, seed=seed, perplexity=perplexity, iterations=iterations)
        panels.append((name, emb))
        knn[name] = {"embedding": knn_score(emb, colour, classes=not by_n),
                     "features": knn_score((f - f.mean(0)) / np.maximum(f.std(0), 1e-12), colour,
                                           classes=not by_n),
                     "n_features": int(f.shape[1])}
    with atomic_path(folder / "tsne_points.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, colour=colour, sim_index=sidx, image_index=pick, hog=panels[0][1], network=panels[1][1])
    figures.plot_embeddings(panels, folder / "tsne.png", colour=colour, by=by,
                            title=f"t-SNE of {len(pick)} images of {scored.source}, coloured by "
                                  f"{'true n' if by_n else 'class'}")
    what = "RMSE of n from the 5 nearest neighbours" if by_n else "accuracy of a vote of the 5 nearest neighbours"
    parts = [f"t-SNE maps (seed {seed}, perplexity {min(perplexity, (len(pick) - 1) / 3):.3g}) of {len(pick)} images "
             f"of {scored.source}: HOG features beside the network's last hidden features, coloured by "
             f"{'true n' if by_n else 'class'}. Separation ({what}, leave one out):"]
    for name, d in knn.items():
        parts.append(f"{name}: {d['embedding']:.3f} in the map, {d['features']:.3f} in the {d['n_features']} "
                     "standardised features themselves.")
    if by_n:
        parts.append(f"(Always answering the mean n would give an RMSE of {float(np.std(colour)):.3f}.)")
    parts.append(small_split_note(scored.n_sims))
    rows = [[name, d["n_features"], round(d["embedding"], 4), round(d["features"], 4)] for name, d in knn.items()]
    return Section("t-SNE of HOG features and of the network's features", " ".join(p for p in parts if p),
                   [Figure("tsne.png", "t-SNE maps of the same images from two sets of features (axes without "
                           "meaning; neighbourhoods are what counts).")],
                   [Table(f"Separation: {what}", ["features", "dimensions", "t-SNE map", "features"], rows)],
                   {"knn": knn, "colour_by": by, "seed": seed, "n_images": int(len(pick)), "n_sims": scored.n_sims,
                    "points_file": "tsne_points.npz", "source": scored.source})

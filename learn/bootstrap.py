"""Confidence intervals of a method's scores by a bootstrap over simulations.

The images of one simulation are not independent (its three projections and their flips,
quarter turns and quadrants share one random realisation), so an interval that resamples
images is too narrow. :func:`bootstrap_scores` resamples **simulations** with replacement
(within each class for a classifier, so that every resample holds both classes and an AUC)
and recomputes every score, per image and per simulation, on each resample; the interval
is the central percentile range of the resampled scores.

A method's per-image outputs on one scored set are kept as an :class:`Outputs` record
(``.npz`` on disk: :func:`save_outputs`, :func:`load_outputs`), from which
:func:`point_scores` gives the scores and :func:`bootstrap_scores` their intervals.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> klass = np.repeat([0, 1], 10)                    # 20 simulations
>>> sim_index = np.repeat(np.arange(20), 3)          # 3 images each
>>> p = np.clip(klass[sim_index] * 0.6 + rng.uniform(0, 0.5, 60), 0, 1)
>>> out = Outputs(sim_index, klass, np.where(klass == 1, 4.0, 11 / 3), p=p)
>>> b = bootstrap_scores(out, n_boot=200)
>>> acc = b["per_image"]["accuracy"]
>>> acc["lo"] <= acc["point"] <= acc["hi"], b["n_sims"]
(True, 20)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from turbsim.atomic import atomic_path

from .metrics import per_simulation, ranking_score

N_BOOT = 1000
"""Default number of bootstrap resamples."""
LEVEL = 0.95
"""Default central coverage of the intervals."""
CHUNK_VALUES = 4_000_000
"""Resamples x images weighed at once (about 32 MB per array)."""


@dataclass
class Outputs:
    """A method's per-image outputs on one scored set of simulations, with the truths.

    Attributes
    ----------
    sim_index : ndarray of int, shape (M,)
        Simulation (row of ``klass`` and ``n_true``) of each image.
    klass : ndarray of int, shape (S,)
        Class of each simulation (0 Kolmogorov, 1 Burgers; -1 none).
    n_true : ndarray of float, shape (S,)
        Spectral index of each simulation.
    p : ndarray of float, shape (M,), optional
        Classification: P(Burgers) of each image (or a score in [0, 1] called Burgers
        at >= 0.5).
    margin : ndarray of float, shape (M,), optional
        Classification: a score that breaks ties of ``p`` in the ranking (a network's
        logit margin); default ``p``.
    n_pred : ndarray of float, shape (M,), optional
        Regression: predicted ``n`` of each image.
    """

    sim_index: np.ndarray
    klass: np.ndarray
    n_true: np.ndarray
    p: np.ndarray | None = None
    margin: np.ndarray | None = None
    n_pred: np.ndarray | None = None

    def __post_init__(self):
        self.sim_index = np.asarray(self.sim_index, np.int64)
        self.klass = np.asarray(self.klass, np.int64)
        self.n_true = np.asarray(self.n_true, np.float64)
        if (self.p is None) == (self.n_pred is None):
            raise ValueError("Outputs needs exactly one of p (classification) and n_pred (regression)")
        for name in ("p", "margin", "n_pred"):
            v = getattr(self, name)
            if v is not None:
                v = np.asarray(v, np.float64)
                if v.shape != self.sim_index.shape:
                    raise ValueError(f"Outputs.{name} has shape {v.shape}, sim_index {self.sim_index.shape}")
                setattr(self, name, v)
        if self.klass.shape != self.n_true.shape:
            raise ValueError(f"Outputs.klass {self.klass.shape} and n_true {self.n_true.shape} differ in shape")
        if self.sim_index.size and (self.sim_index.min() < 0 or self.sim_index.max() >= len(self.klass)):
            raise ValueError(f"Outputs.sim_index must lie in [0, {len(self.klass)}), got "
                             f"[{self.sim_index.min()}, {self.sim_index.max()}]")
        if self.p is not None and self.margin is None:
            self.margin = self.p

    @property
    def task(self) -> str:
        """``"classify"`` or ``"regress"``."""
        return "classify" if self.p is not None else "regress"

    @property
    def n_sims(self) -> int:
        """Number of simulations."""
        return int(len(self.klass))

    @property
    def labelled(self) -> bool:
        """Every simulation has a class 0 or 1 (a classifier's scores are defined)."""
        return bool(np.all(np.isin(self.klass, (0, 1))))


def save_outputs(path, outputs: Outputs) -> Path:
    """Write an :class:`Outputs` record as ``.npz`` (atomically); returns the path."""
    path = Path(path)
    arrays = {k: getattr(outputs, k) for k in ("sim_index", "klass", "n_true", "p", "margin", "n_pred")
              if getattr(outputs, k) is not None}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return path


def load_outputs(path) -> Outputs:
    """The :class:`Outputs` record of a ``.npz`` file written by :func:`save_outputs`.

    Raises
    ------
    ValueError
        The file is not such a record (names the file and the problem).
    """
    path = Path(path)
    try:
        with np.load(path) as z:
            d = {k: z[k] for k in z.files}
        return Outputs(**d)
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a predictions record ({exc})") from None


# --------------------------------------------------------------------------------------
# weighted scores (a resample is a weight per simulation: how often it was drawn)
# --------------------------------------------------------------------------------------
def _weighted_auc(y: np.ndarray, rank: np.ndarray, w: np.ndarray) -> np.ndarray:
    """ROC AUC of ``rank`` for labels ``y`` under weights ``w`` (B, M): one value per row.

    Ties count one half (the trapezoid under the ROC curve of :func:`learn.metrics.roc_curve`).
    """
    order = np.argsort(rank, kind="mergesort")
    r, y, w = rank[order], y[order].astype(bool), w[:, order]
    starts = np.r_[0, np.flatnonzero(np.diff(r)) + 1]  # groups of equal rank
    pos = np.add.reduceat(np.where(y, w, 0.0), starts, axis=1)
    neg = np.add.reduceat(np.where(y, 0.0, w), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    num = (pos * (below + 0.5 * neg)).sum(1)
    den = pos.sum(1) * neg.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _level_scores(outputs: Outputs, w_sim: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Every score per image and per simulation under simulation weights ``w_sim`` (B, S)."""
    sidx = outputs.sim_index
    w_img = w_sim[:, sidx]
    out: dict[str, dict[str, np.ndarray]] = {}
    if outputs.task == "classify":
        levels = {"per_image": (outputs.klass[sidx], outputs.p, ranking_score(outputs.p, outputs.margin), w_img)}
        p_sim = per_simulation(outputs.p, sidx)
        rank_sim = ranking_score(p_sim, per_simulation(outputs.margin, sidx))
        levels["per_sim"] = (outputs.klass, p_sim, rank_sim, w_sim)
        for lvl, (y, p, rank, w) in levels.items():
            right = ((p >= 0.5).astype(np.int64) == y).astype(np.float64)
            tot = w.sum(1)
            out[lvl] = {"accuracy": (w * right).sum(1) / np.where(tot > 0, tot, 1.0),
                        "auc": _weighted_auc(y, rank, w)}
        return out
    levels = {"per_image": (outputs.n_true[sidx], outputs.n_pred, w_img),
              "per_sim": (outputs.n_true, per_simulation(outputs.n_pred, sidx), w_sim)}
    for lvl, (n, pred, w) in levels.items():
        err = pred - n
        tot = np.where(w.sum(1) > 0, w.sum(1), 1.0)
        mse = (w * err ** 2).sum(1) / tot
        out[lvl] = {"rmse": np.sqrt(mse), "bias": (w * err).sum(1) / tot}
    return out


def point_scores(outputs: Outputs) -> dict[str, dict[str, float]]:
    """The scores of the outputs as they are: ``{level: {score: value}}``.

    Classification: ``accuracy`` and ``auc`` (None with a single class); regression:
    ``rmse`` and ``bias`` of ``n``; levels ``per_image`` and ``per_sim`` (the mean of a
    simulation's images). These are the values :func:`learn.metrics.classification_scores`
    and :func:`learn.metrics.regression_scores` give.
    """
    got = _level_scores(outputs, np.ones((1, outputs.n_sims)))
    return {lvl: {k: (None if not np.isfinite(v[0]) else float(v[0])) for k, v in d.items()}
            for lvl, d in got.items()}


def resample_weights(n_sims: int, n_boot: int, rng: np.random.Generator, strata: np.ndarray | None = None
                     ) -> np.ndarray:
    """How often each simulation is drawn in each of ``n_boot`` resamples with replacement.

    Parameters
    ----------
    n_sims : int
        Simulations.
    n_boot : int
        Resamples.
    rng : numpy.random.Generator
    strata : ndarray of int, shape (n_sims,), optional
        Resample within each stratum (e.g. class), keeping its size.

    Returns
    -------
    ndarray of float64, shape (n_boot, n_sims)
        Counts; each row sums to ``n_sims`` (and to each stratum's size within it).
    """
    strata = np.zeros(n_sims, np.int64) if strata is None else np.asarray(strata)
    w = np.zeros((n_boot, n_sims))
    for s in np.unique(strata):
        members = np.flatnonzero(strata == s)
        draws = members[rng.integers(0, len(members), size=(n_boot, len(members)))]
        np.add.at(w, (np.arange(n_boot)[:, None], draws), 1.0)
    return w


def bootstrap_scores(outputs: Outputs, *, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0) -> dict:
    """Every score with its bootstrap interval over simulations.

    Parameters
    ----------
    outputs : Outputs
        Per-image outputs and truths of one method on one scored set.
    n_boot : int
        Resamples, >= 1.
    level : float
        Central coverage of the interval, in (0, 1).
    seed : int
        Seed of the resampling (the intervals are reproducible).

    Returns
    -------
    dict
        ``{"per_image": {score: {"point", "lo", "hi", "std"}}, "per_sim": {...},
        "n_sims", "n_images", "n_boot", "level", "task"}``. ``point`` is the score of the
        outputs as they are (:func:`point_scores`); ``lo`` and ``hi`` the
        ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the resampled scores;
        ``std`` their standard deviation. A classifier's simulations are resampled
        within each class.

    Raises
    ------
    ValueError
        ``n_boot`` < 1, ``level`` outside (0, 1), no simulation, or a classifier's
        outputs on simulations without class labels.
    """
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot = {n_boot!r} must be an integer >= 1")
    if not 0 < level < 1:
        raise ValueError(f"level = {level!r} must lie in (0, 1)")
    if outputs.n_sims == 0:
        raise ValueError("bootstrap_scores needs at least one simulation")
    if outputs.task == "classify" and not outputs.labelled:
        raise ValueError("bootstrap_scores: a classifier's scores need class labels 0 or 1 for every simulation "
                         f"(got classes {sorted(set(outputs.klass.tolist()))})")
    rng = np.random.default_rng(seed)
    strata = outputs.klass if outputs.task == "classify" else None
    w = resample_weights(outputs.n_sims, int(n_boot), rng, strata)
    step = max(1, CHUNK_VALUES // max(len(outputs.sim_index), 1))  # resamples scored at once (bounded memory)
    parts = [_level_scores(outputs, w[a:a + step]) for a in range(0, len(w), step)]
    boot = {lvl: {k: np.concatenate([p[lvl][k] for p in parts]) for k in parts[0][lvl]} for lvl in parts[0]}
    point = point_scores(outputs)
    q = ((1 - level) / 2, (1 + level) / 2)
    res: dict = {}
    for lvl, scores in boot.items():
        res[lvl] = {}
        for name, vals in scores.items():
            good = vals[np.isfinite(vals)]
            lo, hi = (np.quantile(good, q) if good.size else (math.nan, math.nan))
            res[lvl][name] = {"point": point[lvl][name], "lo": float(lo), "hi": float(hi),
                              "std": float(good.std()) if good.size else math.nan}
    res.update({"n_sims": outputs.n_sims, "n_images": int(len(outputs.sim_index)), "n_boot": int(n_boot),
                "level": float(level), "task": outputs.task})
    return res


def metrics_record(outputs: Outputs, source: str = "") -> dict:
    """The metrics record of outputs, in the layout of :func:`learn.evaluate.score`.

    Returns
    -------
    dict
        ``mode`` ("classify", "regress", or "sweep" for a classifier on simulations
        without classes), ``per_image`` and ``per_sim`` scores
        (:func:`learn.metrics.classification_scores`, :func:`learn.metrics.regression_scores`)
        or, for a sweep, P(Burgers) per simulation against ``n``; ``n_sims``,
        ``n_images`` and ``data`` (``source``).
    """
    from .metrics import classification_scores, regression_scores

    o, sidx = outputs, outputs.sim_index
    rec = {"data": source, "n_sims": o.n_sims, "n_images": int(len(sidx))}
    if o.task == "classify":
        p_sim = per_simulation(o.p, sidx)
        if not o.labelled:
            return {**rec, "mode": "sweep", "sweep": {"n": o.n_true.tolist(), "p_burgers_sim": p_sim.tolist()}}
        rank_sim = ranking_score(p_sim, per_simulation(o.margin, sidx))
        return {**rec, "mode": "classify",
                "per_image": classification_scores(o.klass[sidx], o.p, ranking_score(o.p, o.margin)),
                "per_sim": classification_scores(o.klass, p_sim, rank_sim)}
    return {**rec, "mode": "regress", "per_image": regression_scores(o.n_true[sidx], o.n_pred),
            "per_sim": regression_scores(o.n_true, per_simulation(o.n_pred, sidx))}

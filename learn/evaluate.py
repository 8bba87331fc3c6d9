"""Scoring trained models: the study's tables, ROC, regression errors, calibration, sweeps.

Metrics are pure functions of arrays (checked against scikit-learn in the tests);
:func:`score` applies a trained run to a set of maps and computes every metric per
image and per simulation (the mean over a simulation's 48 images); :func:`evaluate_run`
writes the metrics (JSON) and figures (PNG) of one data set into the run directory.

Scoring on other data
---------------------
``python -m learn.evaluate RUN_DIR --data OTHER.h5`` (or a RAMSES ``.npz`` map file such
as ``binary64_dev.npz``) scores a run on any ensemble. Maps of another resolution are
resampled to twice the model's input size before cutting the study's 48 images
(:func:`learn.data.resample_maps`: block means for an integer reduction, band-limited
Fourier interpolation otherwise), so that an image always covers half the box, as in
training. The summary states the change of every headline metric against the model's
own reference score (its holdout score if it was evaluated on the holdout, else its
test score).

A binary classifier applied to a sweep (data without classes, ``n`` continuous) gives the
study's experiment: P(Burgers) against the true ``n`` (``sweep.png``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
from pathlib import Path

import numpy as np

from . import data as ldata

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
EVAL_DIR = "eval"


# --------------------------------------------------------------------------------------
# metrics (pure)
# --------------------------------------------------------------------------------------
def accuracy(y_true, y_pred) -> float:
    """Fraction of equal labels."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean(y_true == y_pred)) if y_true.size else float("nan")


def confusion_matrix(y_true, y_pred, n_classes: int = 2) -> np.ndarray:
    """Counts ``C[i, j]`` of true class ``i`` predicted as ``j`` (int64, (n_classes, n_classes))."""
    c = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(c, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return c


def study_table(cm: np.ndarray, class_names=ldata.CLASS_NAMES) -> str:
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
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


# --------------------------------------------------------------------------------------
# scoring a run
# --------------------------------------------------------------------------------------
def predictions(run, maps: np.ndarray, *, batch_size: int = 256) -> dict:
    """Per-image predictions of a run on maps of any resolution.

    Parameters
    ----------
    run : learn.train.Run
    maps : ndarray, shape (k, 3, N, N)
        Column density [g/cm^2].

    Returns
    -------
    dict
        ``sim_index`` (position of each image's simulation); classification:
        ``p_burgers`` and ``margin`` (logit of Burgers minus logit of Kolmogorov, which
        does not saturate); regression: ``n_pred`` and, with uncertainty, ``n_std``.
    """
    images, sim_index = ldata.eval_set(maps, run.normaliser, run.image_size, run.full_maps)
    out = run.predict(images, batch_size=batch_size)
    res = {"sim_index": sim_index}
    if run.config.task == "classify":
        res["p_burgers"] = softmax(out)[:, 1]
        res["margin"] = out[:, 1].astype(np.float64) - out[:, 0]
    else:
        res["n_pred"] = run.scaler.decode(out[:, 0])
        if run.config.uncertainty:
            res["n_std"] = np.exp(0.5 * np.clip(out[:, 1].astype(np.float64), -12, 12)) * run.scaler.std
    return res


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


def score(run, mapset: ldata.MapSet) -> tuple[dict, dict]:
    """Every metric of a run on a set of maps, per image and per simulation.

    Returns
    -------
    metrics : dict
        ``mode`` ("classify", "regress" or "sweep": a classifier on data without
        classes), ``per_image`` and ``per_sim`` scores, counts and the data source.
    arrays : dict
        The predictions and truths behind them (for figures).
    """
    pred = predictions(run, mapset.maps, batch_size=run.config.eval_batch_size)
    idx = pred["sim_index"]
    n_true = np.asarray(mapset.labels["n"], np.float64)
    klass = np.asarray(mapset.labels["klass"])
    metrics = {"data": mapset.source, "task": run.config.task, "n_sims": int(len(n_true)),
               "n_images": int(len(idx)), "image_size": run.image_size, "map_size": int(mapset.maps.shape[-1])}
    arrays = {"sim_index": idx, "n_true": n_true, "klass": klass, **pred}
    if run.config.task == "classify":
        p_sim = per_simulation(pred["p_burgers"], idx)
        arrays["p_sim"] = p_sim
        arrays["rank"] = ranking_score(pred["p_burgers"], pred["margin"])
        arrays["rank_sim"] = ranking_score(p_sim, per_simulation(pred["margin"], idx))
        if np.all(np.isin(klass, (0, 1))):
            metrics["mode"] = "classify"
            metrics["per_image"] = classification_scores(klass[idx], pred["p_burgers"], arrays["rank"])
            metrics["per_sim"] = classification_scores(klass, p_sim, arrays["rank_sim"])
        else:  # the study's sweep experiment
            metrics["mode"] = "sweep"
            metrics["sweep"] = {"n": n_true.tolist(), "p_burgers_sim": p_sim.tolist()}
    else:
        metrics["mode"] = "regress"
        std = pred.get("n_std")
        metrics["per_image"] = regression_scores(n_true[idx], pred["n_pred"], std)
        n_sim = per_simulation(pred["n_pred"], idx)
        arrays["n_sim"] = n_sim
        # images of one simulation are correlated: the per-simulation std is the rms
        # of its images' stds (no 1/sqrt(48) shrinking), a conservative choice
        std_sim = None if std is None else np.sqrt(per_simulation(std ** 2, idx))
        metrics["per_sim"] = regression_scores(n_true, n_sim, std_sim)
    return metrics, arrays


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


# --------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    from turbsim.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    _plt().close(fig)


def write_figures(metrics: dict, arrays: dict, outdir: Path) -> list[str]:
    """The figures of one scored data set (PNG files in ``outdir``); returns their names."""
    plt = _plt()
    names = []
    mode, idx = metrics["mode"], arrays["sim_index"]
    if mode == "classify":
        fig, ax = plt.subplots(1, 2, figsize=(9, 4))
        cm = np.asarray(metrics["per_image"]["confusion"])
        ax[0].imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax[0].text(j, i, str(v), ha="center", va="center")
        ax[0].set_xticks([0, 1], ldata.CLASS_NAMES)
        ax[0].set_yticks([0, 1], ldata.CLASS_NAMES)
        ax[0].set_xlabel("predicted")
        ax[0].set_ylabel("true")
        ax[0].set_title(f"per image: accuracy {metrics['per_image']['accuracy']:.3f}")
        for lvl, y, p in (("per image", arrays["klass"][idx], arrays["rank"]),
                          ("per simulation", arrays["klass"], arrays["rank_sim"])):
            fpr, tpr, _ = roc_curve(y, p)
            ax[1].plot(fpr, tpr, label=f"{lvl} (AUC {auc(fpr, tpr):.3f})")
        ax[1].plot([0, 1], [0, 1], "k:")
        ax[1].set_xlabel("false positive rate (Kolmogorov called Burgers)")
        ax[1].set_ylabel("true positive rate")
        ax[1].legend()
        fig.tight_layout()
        _save(fig, outdir / "classification.png")
        names.append("classification.png")
    elif mode == "sweep":
        fig, ax = plt.subplots(figsize=(5.5, 4))
        ax.plot(arrays["n_true"][idx], arrays["p_burgers"], ".", alpha=0.15, ms=3, label="images")
        ax.plot(arrays["n_true"], arrays["p_sim"], "o", label="simulations (mean)")
        for n, lab in ((11 / 3, "Kolmogorov"), (4.0, "Burgers")):
            ax.axvline(n, color="k", ls=":")
            ax.text(n, 1.02, lab, ha="center", fontsize=8)
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
# evaluating a run directory
# --------------------------------------------------------------------------------------
def evaluate_run(run_dir, data=None, *, split: str = "test", allow_holdout: bool = False, name: str | None = None,
                 run=None, symmetrize: bool | None = None) -> dict:
    """Score a run on a split of a data file; write metrics and figures.

    Parameters
    ----------
    run_dir : path-like
        Run directory of :func:`learn.train.train_and_evaluate`.
    data : path-like, optional
        Ensemble ``.h5`` or RAMSES ``.npz`` map file (default: the run's own data).
    split : {"train", "test", "holdout"}
        Split of an ensemble (ignored for ``.npz``).
    allow_holdout : bool
        Needed for ``split="holdout"``.
    name : str, optional
        Name of the output folder ``run_dir/eval/<name>`` (default ``<file stem>_<split>``
        for other data, ``<split>`` for the run's own).
    run : learn.train.Run, optional
        An already loaded run.
    symmetrize : bool, optional
        Average the network over the images' rotations and reflections (True) or not
        (False) whatever the run was configured with (None: as configured). A choice
        other than the run's is scored under ``<name>_d4`` or ``<name>_plain`` and
        never stored as the run's own metrics.

    Returns
    -------
    dict
        The metrics (also in ``eval/<name>/metrics.json``). For the run's own data the
        record is also stored under ``<split>`` in ``run_dir/metrics.json``; for other
        data it carries ``reference`` (the run's own score it is compared with) and
        ``drop`` (headline differences).
    """
    from . import train as ltrain

    run_dir = Path(run_dir)
    run = run or ltrain.load_run(run_dir)
    override = symmetrize is not None and bool(symmetrize) != run.config.symmetrize
    if override:
        run = dataclasses.replace(run, config=run.config.replace(symmetrize=bool(symmetrize)))
    own = data is None or (run.config.data is not None and Path(data).resolve() == Path(run.config.data).resolve())
    path = run.config.data if data is None else data
    if path is None:
        raise ldata.DataError(f"{run_dir}: a live run has no data file of its own; pass --data")
    mapset = ldata.load_split(path, split, allow_holdout=allow_holdout)
    if run.config.task == "regress" and not np.all(np.isfinite(mapset.labels["n"])):
        raise ldata.DataError(f"{mapset.source}: regression scoring needs n for every simulation")
    metrics, arrays = score(run, mapset)
    if name is None:
        stem = Path(path).stem
        name = split if own else (stem if Path(path).suffix == ".npz" else f"{stem}_{split}")
        if override:
            name += "_d4" if symmetrize else "_plain"
    metrics["symmetrized"] = run.config.symmetrize
    if not own:
        ref = reference_score(run_dir)
        if ref is not None:
            metrics["reference"] = {"split": ref[0], **headline(ref[1])}
            metrics["drop"] = drop_against(metrics, ref[1])
        else:  # said in the summary, not silently left out
            metrics["reference"] = metrics["drop"] = None
    outdir = run_dir / EVAL_DIR / name
    outdir.mkdir(parents=True, exist_ok=True)
    metrics["figures"] = [f"{EVAL_DIR}/{name}/{f}" for f in write_figures(metrics, arrays, outdir)]
    ltrain.write_json(outdir / METRICS_FILE, metrics)
    if own and not override:
        allm = load_metrics(run_dir)
        allm[split] = metrics
        ltrain.write_json(run_dir / METRICS_FILE, allm)
    return metrics


def load_metrics(run_dir) -> dict:
    """The run's own metrics per split (``metrics.json``; empty if not evaluated yet)."""
    p = Path(run_dir) / METRICS_FILE
    return json.loads(p.read_text()) if p.is_file() else {}


def reference_score(run_dir) -> tuple[str, dict] | None:
    """The run's own holdout score if there is one, else its test score (``(split, metrics)``)."""
    m = load_metrics(run_dir)
    for split in ("holdout", "test"):
        if split in m and m[split].get("mode") in HEADLINE:
            return split, m[split]
    return None


def summary_lines(metrics: dict) -> list[str]:
    """A short human-readable summary of a metrics record."""
    lines = [f"{metrics['data']}: {metrics['n_sims']} simulations, {metrics['n_images']} images "
             f"(maps {metrics['map_size']} px, model input {metrics['image_size']} px"
             + (", averaged over rotations and reflections)" if metrics.get("symmetrized") else ")")]
    mode = metrics["mode"]
    if mode == "sweep":
        n, p = np.array(metrics["sweep"]["n"]), np.array(metrics["sweep"]["p_burgers_sim"])
        order = np.argsort(n)
        lines.append("sweep: P(Burgers) per simulation vs n: " +
                     ", ".join(f"{n[i]:.2f}:{p[i]:.2f}" for i in order[:: max(1, len(n) // 10)]))
        return lines
    for lvl in ("per_image", "per_sim"):
        m = metrics[lvl]
        if mode == "classify":
            auc_s = "-" if m["auc"] is None else f"{m['auc']:.4f}"
            lines.append(f"{lvl:>9}: accuracy {m['accuracy']:.4f}  AUC {auc_s}  (n={m['n']})")
        else:
            cov = m.get("coverage")
            cs = "" if cov is None else "  coverage " + ", ".join(f"{k}: {v:.2f}" for k, v in cov.items())
            lines.append(f"{lvl:>9}: RMSE {m['rmse']:.4f}  MSE {m['mse']:.5f}  bias {m['bias']:+.4f}{cs}  (n={m['n']})")
    if mode == "classify":
        lines.append(metrics["per_image"]["table"])
    if "drop" in metrics and metrics["drop"] is None:
        lines.append("no change against the model's own score: it has no test or holdout score yet "
                     "(python -m learn.evaluate RUN_DIR --split test)")
    elif "drop" in metrics:
        ref = metrics["reference"]
        lines.append(f"change against the model's own {ref['split']} score: " +
                     ", ".join(f"{k} {v:+.4f} (was {ref[k]:.4f})" for k, v in metrics["drop"].items()))
    return lines


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m learn.evaluate",
        description="Score a trained run (learn.fit) on a split of its own ensemble or on any other data: a turbsim "
                    "ensemble (.h5, any resolution: maps are resampled to twice the model's input size) or a RAMSES "
                    "map file (.npz with columns (S,3,N,N) g/cm^2, n and klass, e.g. binary64_dev.npz). Writes "
                    "RUN_DIR/eval/NAME/metrics.json and figures and prints a summary with the change against the "
                    "model's own holdout (or test) score.")
    p.add_argument("run_dir", help="run directory written by python -m learn.fit")
    p.add_argument("--data", help="data file to score (default: the run's own ensemble)")
    p.add_argument("--split", default="test", choices=("train", "test", "holdout"),
                   help="split of an ensemble (default test; ignored for .npz files)")
    p.add_argument("--holdout", action="store_true", help="allow reading the holdout split (final evaluation only)")
    p.add_argument("--name", help="output folder name under RUN_DIR/eval")
    p.add_argument("--symmetrize", action=argparse.BooleanOptionalAction, default=None,
                   help="average the network over the 8 rotations and reflections of each image, or not "
                        "(default: as the run was trained; another choice is scored under NAME_d4 or NAME_plain)")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON line")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress")
    return p


def main(argv=None) -> int:
    from . import train as ltrain

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if args.split == "holdout" and not args.holdout:
        parser.error("--split holdout reads the locked holdout split: add --holdout (final evaluation only)")
    if not Path(args.run_dir).is_dir():
        parser.error(f"{args.run_dir}: no such run directory")
    try:
        metrics = evaluate_run(args.run_dir, args.data, split=args.split, allow_holdout=args.holdout, name=args.name,
                               symmetrize=args.symmetrize)
    except (ldata.DataError, ltrain.RunError) as exc:
        parser.error(str(exc))
    if args.json:
        print(json.dumps({k: v for k, v in metrics.items() if k != "sweep"}, default=ltrain._json_default))
    else:
        print("\n".join(summary_lines(metrics)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

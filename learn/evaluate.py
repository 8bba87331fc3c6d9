"""Scoring trained runs: every metric per image and per simulation, written into the run directory.

:func:`score` applies a trained run to a set of maps and computes every metric
(:mod:`learn.metrics`) per image and per simulation (the mean over a simulation's 48
images); :func:`evaluate_run` writes the metrics (JSON) and figures (PNG,
:mod:`learn.figures`) of one data set into the run directory; :func:`main` is the command
line ``python -m learn.evaluate``.

Scoring on other data
---------------------
``python -m learn.evaluate RUN_DIR --data OTHER.h5`` (or a RAMSES ``.npz`` map file such
as ``binary64_dev.npz``) scores a run on any ensemble. Maps of another resolution are
resampled to twice the model's input size before cutting the study's 48 images
(:func:`learn.transforms.resample_maps`: block means for an integer reduction,
band-limited Fourier interpolation otherwise), so that an image always covers half the
box, as in training. The summary states the change of every headline metric against the
model's own reference score (its holdout score if it was evaluated on the holdout, else
its test score).

A binary classifier applied to a sweep (data without classes, ``n`` continuous) gives the
study's experiment: P(Burgers) against the true ``n`` (``sweep.png``).

The metrics and :func:`~learn.figures.write_figures` that this module held before they
moved are still importable from here for one release.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

import numpy as np

from turbsim.console import ArgumentParser, configure_logging

from . import rundir
from .data import MapSet, load_split
from .figures import write_figures
from .metrics import (HEADLINE, classification_scores, drop_against, headline, per_simulation, ranking_score,
                      regression_scores, softmax)
from .transforms import DataError, eval_set

# Moved to learn.metrics; importable from here until the next release.
from .metrics import (accuracy, auc, confusion_matrix, coverage, regression_metrics, roc_curve,  # noqa: E402,F401
                      study_table)

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
EVAL_DIR = "eval"


# --------------------------------------------------------------------------------------
# scoring a run
# --------------------------------------------------------------------------------------
def predictions(run, maps: np.ndarray, *, batch_size: int = 256, progress: bool = False) -> dict:
    """Per-image predictions of a run on maps of any resolution.

    Parameters
    ----------
    run : learn.rundir.Run
    maps : ndarray, shape (k, 3, N, N)
        Column density [g/cm^2].
    batch_size : int
        Images per prediction call.
    progress : bool
        Show a progress bar of the prediction.

    Returns
    -------
    dict
        ``sim_index`` (position of each image's simulation); classification:
        ``p_burgers`` and ``margin`` (logit of Burgers minus logit of Kolmogorov, which
        does not saturate); regression: ``n_pred`` and, with uncertainty, ``n_std``.
    """
    images, sim_index = eval_set(maps, run.normaliser, run.image_size, run.full_maps)
    out = run.predict(images, batch_size=batch_size, progress=progress)
    res = {"sim_index": sim_index}
    if run.config.task == "classify":
        res["p_burgers"] = softmax(out)[:, 1]
        res["margin"] = out[:, 1].astype(np.float64) - out[:, 0]
    else:
        res["n_pred"] = run.scaler.decode(out[:, 0])
        if run.config.uncertainty:
            res["n_std"] = np.exp(0.5 * np.clip(out[:, 1].astype(np.float64), -12, 12)) * run.scaler.std
    return res


def score(run, mapset: MapSet, *, progress: bool = False) -> tuple[dict, dict]:
    """Every metric of a run on a set of maps, per image and per simulation.

    Parameters
    ----------
    run : learn.rundir.Run
    mapset : learn.data.MapSet
        Maps [g/cm^2] and labels of the simulations to score.
    progress : bool
        Show a progress bar of the prediction.

    Returns
    -------
    metrics : dict
        ``mode`` ("classify", "regress" or "sweep": a classifier on data without
        classes), ``per_image`` and ``per_sim`` scores, counts and the data source.
    arrays : dict
        The predictions and truths behind them (for figures).
    """
    pred = predictions(run, mapset.maps, batch_size=run.config.eval_batch_size, progress=progress)
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
            labelled = int(np.isin(klass, (0, 1)).sum())
            if labelled:  # not silently: some simulations do have classes
                log.warning("%s: %d of %d simulations have a class label, the others none (klass %s): "
                            "scored as a sweep (P(Burgers) against n), without accuracy", mapset.source,
                            labelled, len(klass), sorted(set(klass.tolist()) - {0, 1}))
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


# --------------------------------------------------------------------------------------
# evaluating a run directory
# --------------------------------------------------------------------------------------
def evaluate_run(run_dir, data=None, *, split: str = "test", allow_holdout: bool = False, name: str | None = None,
                 run=None, symmetrize: bool | None = None, progress: bool = False) -> dict:
    """Score a run on a split of a data file; write metrics and figures.

    Parameters
    ----------
    run_dir : path-like
        Run directory of :func:`learn.train.train_and_evaluate`.
    data : path-like, optional
        Ensemble ``.h5`` or RAMSES ``.npz`` map file (default: the run's own data).
    split : {"test", "train", "holdout"}, optional
        Split of an ensemble (ignored for ``.npz``).
    allow_holdout : bool
        Needed for ``split="holdout"``.
    name : str, optional
        Name of the output folder ``run_dir/eval/<name>`` (default ``<file stem>_<split>``
        for other data, ``<split>`` for the run's own).
    run : learn.rundir.Run, optional
        An already loaded run.
    symmetrize : bool, optional
        Average the network over the images' rotations and reflections (True) or not
        (False) whatever the run was configured with (None: as configured). A choice
        other than the run's is scored under ``<name>_d4`` or ``<name>_plain`` and
        never stored as the run's own metrics.
    progress : bool
        Show a progress bar of the prediction (:func:`turbsim.console.progress`).

    Returns
    -------
    dict
        The metrics (also in ``eval/<name>/metrics.json``). For the run's own data the
        record is also stored under ``<split>`` in ``run_dir/metrics.json``; for other
        data it carries ``reference`` (the run's own score it is compared with) and
        ``drop`` (headline differences).
    """
    run_dir = Path(run_dir)
    run = run or rundir.load_run(run_dir)
    override = symmetrize is not None and bool(symmetrize) != run.config.symmetrize
    if override:
        run = dataclasses.replace(run, config=run.config.replace(symmetrize=bool(symmetrize)))
    own = data is None or (run.config.data is not None and Path(data).resolve() == Path(run.config.data).resolve())
    path = run.config.data if data is None else data
    if path is None:
        raise DataError(f"{run_dir}: a live run has no data file of its own; pass --data")
    mapset = load_split(path, split, allow_holdout=allow_holdout)
    if run.config.task == "regress" and not np.all(np.isfinite(mapset.labels["n"])):
        raise DataError(f"{mapset.source}: regression scoring needs n for every simulation")
    metrics, arrays = score(run, mapset, progress=progress)
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
    rundir.write_json(outdir / METRICS_FILE, metrics)
    if own and not override:
        allm = load_metrics(run_dir)
        allm[split] = metrics
        rundir.write_json(run_dir / METRICS_FILE, allm)
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
        lines.append("no class labels: scored as a sweep, P(Burgers) per simulation vs n: " +
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
    """The command-line parser of ``python -m learn.evaluate``."""
    p = ArgumentParser(
        prog="python -m learn.evaluate", short_usage="RUN_DIR [options]",
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
    p.add_output_options(json="print the metrics as one JSON line")
    return p


def main(argv=None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 2 bad arguments or data)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    if args.split == "holdout" and not args.holdout:
        parser.error("--split holdout reads the locked holdout split: add --holdout (final evaluation only)")
    if not Path(args.run_dir).is_dir():
        parser.error(f"{args.run_dir}: no such run directory")
    try:
        metrics = evaluate_run(args.run_dir, args.data, split=args.split, allow_holdout=args.holdout, name=args.name,
                               symmetrize=args.symmetrize, progress=not args.no_progress)
    except (DataError, rundir.RunError) as exc:
        parser.error(str(exc))
    if args.json:
        print(json.dumps({k: v for k, v in metrics.items() if k != "sweep"}, default=rundir.json_default))
    else:
        print("\n".join(summary_lines(metrics)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

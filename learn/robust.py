"""Resolution and zoom robustness: the cross-resolution matrix, the zoom curve and the classes' spectra.

Three measurements of whether a trained model reads the physics or the grid:

* :func:`cross_resolution`: runs trained at some resolutions (or recipes), each scored on
  the test (or holdout) split of ensembles at every resolution and on RAMSES map files
  (accuracy and AUC, or RMSE and bias of ``n``, per image and per simulation). Maps of
  another resolution reach the model as :func:`learn.transforms.eval_set` brings them
  (low-pass if the run has one, then block means or Fourier interpolation to the model's
  scale: an image always covers the same piece of the 10 pc box).
* :func:`zoom_curve`: the same maps cut into windows of ``z`` times the model's field of
  view (``z`` from 0.5 to 2: a smaller or larger piece of the cloud at the same pixel
  count), resampled to the input size with anti-aliasing; score against ``z``.
* :func:`class_spectra`: the mean log power spectrum of the log column density of each
  class at each resolution, the class difference per wavenumber, where each grid's
  dissipation range begins (the wavenumber from which its spectrum falls more than
  :data:`DISSIPATION_DEX` below the finest grid's) and what fraction of the class
  difference lies at the scales that the coarsest grid resolves: the physics of what can
  transfer.

:func:`write_section` writes them (``robust.json``, figures) as a report section
(:mod:`learn.sections`); ``python -m learn.robust RUN_DIR [RUN_DIR...] --data FILE...`` is
the command line. :data:`ROBUST_RECIPE` is the training recipe of ``learn.fit --robust``
(measured against the others in ``docs/robust.md``).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

import numpy as np

from turbsim import observe

log = logging.getLogger(__name__)

ROBUST_RECIPE = {"model": "pyramid", "augment": ("flip", "crop", "rot90", "zoom"), "normalisation": "per_image",
                 "optimizer": "adamw", "learning_rate": 2e-3, "warmup_epochs": 1.0, "patience": 0,
                 "steps_per_call": 4}
"""The options of ``learn.fit --robust`` (TrainConfig fields): the pyramid network on random periodic
half-box crops with flips, quarter turns and zoom augmentation (0.5-2, anti-aliased), each image
standardised on its own; with several ``--data`` files every map is brought to the coarsest grid's
size (a common physical pixel scale). See ``docs/robust.md`` for the measurements behind it."""
ZOOMS = (0.5, 0.71, 1.0, 1.41, 2.0)
"""Default zoom factors of the zoom curve."""
DISSIPATION_DEX = 0.1
"""A grid's dissipation range begins where its mean log power falls this much below the finest grid's."""
SECTION = "robust"


# --------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------
def _scores(run, out: np.ndarray, sim_index: np.ndarray, labels: dict) -> dict:
    """Per-image and per-simulation scores of raw outputs."""
    from .metrics import classification_scores, per_simulation, ranking_score, regression_metrics, softmax

    klass = np.asarray(labels["klass"])
    n = np.asarray(labels["n"], np.float64)
    res = {"n_sims": int(len(n)), "n_images": int(len(sim_index))}
    if run.config.task == "classify":
        p = softmax(out)[:, 1]
        margin = out[:, 1].astype(np.float64) - out[:, 0]
        p_sim = per_simulation(p, sim_index)
        if not np.all(np.isin(klass, (0, 1))):
            res["mode"] = "sweep"
            res["p_burgers_sim"] = p_sim.tolist()
            return res
        img = classification_scores(klass[sim_index], p, ranking_score(p, margin))
        sim = classification_scores(klass, p_sim, ranking_score(p_sim, per_simulation(margin, sim_index)))
        res.update(mode="classify", accuracy=img["accuracy"], auc=img["auc"], accuracy_sim=sim["accuracy"],
                   auc_sim=sim["auc"])
    else:
        pred = run.scaler.decode(out[:, 0])
        img = regression_metrics(n[sim_index], pred)
        sim = regression_metrics(n, per_simulation(pred, sim_index))
        res.update(mode="regress", rmse=img["rmse"], bias=img["bias"], rmse_sim=sim["rmse"], bias_sim=sim["bias"])
    return res


def score_maps(run, mapset) -> dict:
    """Scores of a run on a map set, as :func:`learn.evaluate.score` brings the maps to it."""
    from .transforms import eval_set

    images, sim_index = eval_set(mapset.maps, run.normaliser, run.image_size, run.full_maps)
    out = run.predict(images, batch_size=run.config.eval_batch_size)
    return {**_scores(run, out, sim_index, mapset.labels), "map_size": int(mapset.maps.shape[-1])}


def zoom_eval_images(maps: np.ndarray, run, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Evaluation images of ``factor`` times the model's field of view, at its input size.

    Parameters
    ----------
    maps : ndarray, shape (k, 3, N, N)
        Column density [g/cm^2] of periodic maps of the training box.
    run : learn.rundir.Run
    factor : float
        Window side over the model's field of view (0.5: half the side, twice finer pixels).

    Returns
    -------
    images : ndarray, float32, shape (k * 3 * W, S, S)
        Normalised; ``W`` = 4 windows per map centred on the quadrants (1 for a model of
        whole maps), each flipped not.
    sim_index : ndarray of int64
    """
    from .transforms import lowpass_maps, resample_maps, zoom_windows

    if run.normaliser.lowpass_k is not None:
        maps = lowpass_maps(maps, run.normaliser.lowpass_k)
    s = run.image_size
    m = s if run.full_maps else 2 * s  # map side at the model's scale
    # a finer source grid keeps its detail for the zoomed-in windows: resample to m * max(1, 1/factor) at most N
    big = min(maps.shape[-1], int(round(m * max(1.0, 1.0 / factor))))
    big -= big % 2
    scale = big / m
    logm = observe.log_column(resample_maps(maps, big)).reshape(-1, big, big)
    k = len(maps)
    side = max(2, int(round(factor * s * scale)))
    centres = [(s * scale / 2, s * scale / 2)] if run.full_maps else \
        [((qy + 0.5) * s * scale, (qx + 0.5) * s * scale) for qy in (0, 1) for qx in (0, 1)]
    idx, oy, ox = [], [], []
    for j in range(len(logm)):
        for cy, cx in centres:
            idx.append(j), oy.append(int(round(cy - side / 2))), ox.append(int(round(cx - side / 2)))
    imgs = zoom_windows(logm, np.asarray(idx), np.asarray(oy), np.asarray(ox), side, s)
    sim_index = np.repeat(np.arange(k), 3 * len(centres))
    return np.ascontiguousarray(run.normaliser(imgs), np.float32), sim_index


def zoom_curve(run, mapset, factors=ZOOMS) -> list[dict]:
    """Scores of a run against the zoom factor on one map set (:func:`zoom_eval_images`)."""
    rows = []
    for z in factors:
        images, sim_index = zoom_eval_images(mapset.maps, run, z)
        out = run.predict(images, batch_size=run.config.eval_batch_size)
        rows.append({"zoom": float(z), **_scores(run, out, sim_index, mapset.labels)})
    return rows


def run_label(run) -> str:
    """A short name of a run: its directory and what it was trained on."""
    d = run.info.get("data", {})
    return f"{Path(run.path).name} ({d.get('map_size', '?')} px maps)"


def cross_resolution(runs, data, *, split: str = "test", allow_holdout: bool = False) -> list[dict]:
    """The cross-resolution matrix: every run scored on every data file.

    Parameters
    ----------
    runs : list of learn.rundir.Run
    data : list of path-like
        Ensembles (their ``split``) and RAMSES ``.npz`` map files (all their maps).
    split : str
    allow_holdout : bool

    Returns
    -------
    list of dict
        One row per (run, data): ``run``, ``data``, ``map_size`` and the scores.
    """
    from .data import load_split

    sets = [load_split(f, split, allow_holdout=allow_holdout) for f in data]
    rows = []
    for run in runs:
        for f, ms in zip(data, sets):
            rows.append({"run": Path(run.path).name, "trained_map_size": run.info.get("data", {}).get("map_size"),
                         "data": Path(f).name, **score_maps(run, ms)})
            log.info("%s on %s: %s", rows[-1]["run"], rows[-1]["data"], {k: v for k, v in rows[-1].items()
                                                                          if k in ("accuracy_sim", "rmse_sim")})
    return rows


# --------------------------------------------------------------------------------------
# spectra
# --------------------------------------------------------------------------------------
def radial_log_power(log_maps: np.ndarray) -> np.ndarray:
    """Mean log10 power per integer wavenumber shell of log10 Σ maps ``(M, N, N)``.

    Returns
    -------
    ndarray, shape (M, N // 2)
        ``log10 P(k)`` for ``k = 1 .. N/2`` (box units), each map minus its mean first.
    """
    x = np.asarray(log_maps, np.float64)
    n = x.shape[-1]
    f = np.fft.rfft2(x - x.mean(axis=(-2, -1), keepdims=True), axes=(-2, -1)) / n ** 2
    p = np.abs(f) ** 2
    p[..., 1:-1] *= 2  # the half plane: count the conjugate modes
    k = np.rint(np.hypot(np.fft.fftfreq(n, 1 / n)[:, None], np.fft.rfftfreq(n, 1 / n)[None, :])).astype(int)
    out = np.empty((len(x), n // 2))
    flat = p.reshape(len(x), -1)
    kk = k.ravel()
    for j in range(1, n // 2 + 1):
        out[:, j - 1] = flat[:, kk == j].mean(axis=1)
    return np.log10(np.maximum(out, 1e-300))


def _non_holdout(path):
    """Maps and labels of the train and test splits of an ensemble (never the holdout)."""
    from .data import MapSet, load_split
    from .transforms import DataError

    parts = []
    for split in ("train", "test"):
        try:
            parts.append(load_split(path, split))
        except DataError as exc:
            if "is empty" not in str(exc):
                raise
    if not parts:
        raise DataError(f"{path}: no train or test simulations for the spectra")
    return MapSet(np.concatenate([p.maps for p in parts]),
                  {k: np.concatenate([p.labels[k] for p in parts]) for k in ("n", "klass", "sim_id")}, str(path))


def class_spectra(data, *, max_sims: int = 64) -> dict:
    """Mean log power spectrum of each class at each resolution, and what the grids share.

    Parameters
    ----------
    data : list of path-like
        Ensembles of the same box and ensemble seed at several resolutions (classes 0
        and 1); their train and test splits are read (never the holdout).
    max_sims : int
        Simulations read per file (every k-th).

    Returns
    -------
    dict
        Per file (``files``): ``map_size``, ``k``, ``mean`` (2, K) per class and ``std``
        (2, K) of log10 P, ``diff`` (burgers minus kolmogorov, dex), its ``z`` (difference
        over the pooled per-map standard deviation), ``separation_shared`` (``sqrt(sum z^2)``
        over the shells below the coarsest grid's ``k_diss``: the class separation in
        standard deviations that an ideal linear reader of those shells would have if the
        shells were independent) with the accuracies it implies, ``Phi(d / 2)`` per map and
        ``Phi(sqrt(3) d / 2)`` per simulation of 3 maps; ``k_diss`` (first wavenumber whose
        power, averaged over the simulations that all files share (the same seeds: the
        same large scales), falls more than :data:`DISSIPATION_DEX` below the finest grid's;
        None for the finest); and ``shared``: the share of the finest grid's squared class
        separation ``sum_k z(k)^2`` that lies below the coarsest grid's ``k_diss``.
    """
    files, common = [], None
    for f in data:
        ms = _non_holdout(f)
        sel = slice(None, None, max(1, len(ms.maps) // max_sims))
        maps, klass, ids = ms.maps[sel], np.asarray(ms.labels["klass"])[sel], np.asarray(ms.labels["sim_id"])[sel]
        lp = radial_log_power(observe.log_column(maps).reshape(-1, maps.shape[-1], maps.shape[-1]))
        lp = lp.reshape(len(maps), 3, -1)
        kl = np.repeat(klass, 3)
        flat = lp.reshape(-1, lp.shape[-1])
        mean = np.stack([flat[kl == c].mean(axis=0) for c in (0, 1)])
        std = np.stack([flat[kl == c].std(axis=0) for c in (0, 1)])
        diff = mean[1] - mean[0]
        z = diff / np.sqrt((std[0] ** 2 + std[1] ** 2) / 2 + 1e-12)
        files.append({"data": Path(f).name, "map_size": int(maps.shape[-1]), "k": np.arange(1, lp.shape[-1] + 1),
                      "mean": mean, "std": std, "diff": diff, "z": z, "n_maps": int(len(flat)),
                      "_by_id": dict(zip(ids.tolist(), lp))})
        common = set(ids.tolist()) if common is None else common & set(ids.tolist())
    files.sort(key=lambda d: d["map_size"])
    finest = files[-1]
    common = sorted(common)
    for d in files:
        d["k_diss"] = None
        if d is not finest and common:
            kmax = len(d["k"])
            gap = np.mean([(d["_by_id"][i] - finest["_by_id"][i][:, :kmax]).mean(axis=0) for i in common], axis=0)
            d["gap_dex"] = gap
            below = np.flatnonzero(np.abs(gap) > DISSIPATION_DEX)
            d["k_diss"] = int(d["k"][below[0]]) if below.size else None
    for d in files:
        del d["_by_id"]
    coarse = files[0]
    kd = coarse["k_diss"] or len(coarse["k"]) + 1
    z2 = finest["z"] ** 2
    shared = float(z2[: kd - 1].sum() / z2.sum()) if z2.sum() > 0 else float("nan")
    from scipy.stats import norm

    for d in files:  # the separation a linear reader of the shared shells could reach (shells taken as independent)
        sep = float(np.sqrt((d["z"][: kd - 1] ** 2).sum()))
        d["separation_shared"] = sep
        d["accuracy_shared_map"] = float(norm.cdf(sep / 2))
        d["accuracy_shared_sim"] = float(norm.cdf(sep * np.sqrt(3) / 2))
    return {"files": files, "shared": shared, "k_shared": int(kd - 1), "coarsest": coarse["data"],
            "finest": finest["data"], "n_common": len(common)}


# --------------------------------------------------------------------------------------
# figures and the section
# --------------------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_spectra(spec: dict, path: Path) -> None:
    """Class spectra per resolution (top) and their class difference (bottom), dissipation ranges marked."""
    from turbsim.atomic import atomic_path

    plt = _plt()
    fig, (a, b) = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, d in enumerate(spec["files"]):
        c = colors[i % len(colors)]
        for cl, ls in ((0, "-"), (1, "--")):
            a.plot(d["k"], d["mean"][cl], ls, color=c, label=f"{d['map_size']}$^3$ {('kolmogorov', 'burgers')[cl]}")
        b.plot(d["k"], d["z"], color=c, label=f"{d['map_size']}$^3$")
        if d["k_diss"]:
            for ax in (a, b):
                ax.axvline(d["k_diss"], color=c, ls=":", lw=1)
    b.axhline(0, color="k", lw=0.5)
    a.set_xscale("log")
    a.set_ylabel("mean log10 P(k) of log10 Σ")
    b.set_ylabel("(burgers - kolmogorov) / std")
    b.set_xlabel("k (box wavenumber: 10 pc / wavelength)")
    a.legend(fontsize=7, ncol=2)
    b.legend(fontsize=7)
    a.set_title(f"dotted: dissipation range begins ({DISSIPATION_DEX} dex below the finest grid); "
                f"{spec['shared']:.2%} of the class separation at k < {spec['k_shared'] + 1}", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def plot_zoom(curves: dict, path: Path, key: str) -> None:
    """Score against zoom factor, one line per (run, data)."""
    from turbsim.atomic import atomic_path

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rows in curves.items():
        ax.plot([r["zoom"] for r in rows], [r.get(key, np.nan) for r in rows], "o-", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("zoom factor (window side / field of view)")
    ax.set_ylabel(key.replace("_sim", " per simulation"))
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _fmt(v, pct=False):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{100 * v:.1f} %" if pct else f"{v:.3f}"


def write_section(out_dir, matrix: list[dict], curves: dict, spec: dict | None, *, name: str = SECTION):
    """Write ``robust.json``, the figures and ``section.json`` into ``out_dir/<name>/``."""
    from .rundir import write_json
    from .sections import Figure, Section, Table, section_dir, write_section as _write

    folder = section_dir(out_dir, name)
    folder.mkdir(parents=True, exist_ok=True)
    figures, tables, text = [], [], []
    classify = any(r.get("mode") == "classify" for r in matrix) or any(
        r.get("mode") == "classify" for rows in curves.values() for r in rows)
    if matrix:
        if classify:
            cols = ["run", "trained on (px)", "scored on", "px", "acc / img", "AUC / img", "acc / sim", "AUC / sim"]
            rows = [[r["run"], r["trained_map_size"], r["data"], r["map_size"], _fmt(r.get("accuracy"), True),
                     _fmt(r.get("auc")), _fmt(r.get("accuracy_sim"), True), _fmt(r.get("auc_sim"))] for r in matrix]
        else:
            cols = ["run", "trained on (px)", "scored on", "px", "RMSE / img", "bias / img", "RMSE / sim", "bias / sim"]
            rows = [[r["run"], r["trained_map_size"], r["data"], r["map_size"], _fmt(r.get("rmse")), _fmt(r.get("bias")),
                     _fmt(r.get("rmse_sim")), _fmt(r.get("bias_sim"))] for r in matrix]
        tables.append(Table("cross-resolution matrix: every run on every data set", cols, rows))
        small = sorted({r["n_sims"] for r in matrix if r["n_sims"] < 20})
        if small:
            text.append(f"Some scored sets hold only {small} simulations: a per-simulation accuracy moves by "
                        f"{100 / min(small):.0f} points per simulation.")
    key = "accuracy_sim" if classify else "rmse_sim"
    if curves:
        plot_zoom(curves, folder / "zoom.png", key)
        figures.append(Figure("zoom.png", "score against the zoom factor (window side over the field of view, "
                                          "resampled to the input size with anti-aliasing)"))
        for nm, rows in curves.items():
            vals = [r.get(key) for r in rows if r.get(key) is not None]
            if vals:
                best = max(vals) if classify else min(vals)
                worst = min(vals) if classify else max(vals)
                text.append(f"{nm}: zoom 0.5-2 {'accuracy' if classify else 'RMSE'} per simulation "
                            + ", ".join(f"{r['zoom']:g}: {_fmt(r.get(key), classify)}" for r in rows)
                            + (f" (worst {100 * (best - worst):.1f} points below the best)." if classify
                               else f" (worst {worst / best:.2f}x the best)."))
        aux = "auc_sim" if classify else "bias_sim"
        tables.append(Table("zoom curve", ["run on data", "zoom", "score / img", "score / sim",
                                           "AUC / sim" if classify else "bias / sim"],
                            [[nm, r["zoom"], _fmt(r.get("accuracy" if classify else "rmse"), classify),
                              _fmt(r.get(key), classify), _fmt(r.get(aux))] for nm, rows in curves.items() for r in rows]))
    if spec:
        plot_spectra(spec, folder / "spectra.png")
        figures.append(Figure("spectra.png", "mean log power spectrum of each class at each resolution and the "
                                             "class separation per wavenumber; dotted: where each grid's "
                                             "dissipation range begins"))
        kd = ", ".join(f"{d['map_size']}^3 from k = {d['k_diss']}" for d in spec["files"] if d["k_diss"])
        text.append(f"Dissipation ranges (class-mean power {DISSIPATION_DEX} dex below the finest grid): {kd or 'none found'}. "
                    f"{spec['shared']:.0%} of the finest grid's class separation (sum over k of the squared "
                    f"difference over the spread) lies at k < {spec['k_shared'] + 1}, the scales the coarsest grid "
                    "resolves before its dissipation range. In those shells the classes are "
                    + ", ".join(f"{d['separation_shared']:.1f} sigma apart at {d['map_size']}^3" for d in spec["files"])
                    + " (per map; an ideal linear reader of independent shells: "
                    + ", ".join(f"{100 * d['accuracy_shared_map']:.0f} % per map, {100 * d['accuracy_shared_sim']:.0f} % "
                                f"per simulation at {d['map_size']}^3" for d in spec["files"]) + ").")
    data = {"matrix": matrix, "zoom": curves,
            "spectra": None if spec is None else {**spec, "files": [{k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                                                    for k, v in d.items()} for d in spec["files"]]}}
    write_json(folder / "robust.json", data)
    sec = Section("Resolution and zoom robustness", " ".join(text) or "No measurement.", figures, tables, data)
    _write(out_dir, name, sec)
    return folder


# --------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from turbsim.console import ArgumentParser

    p = ArgumentParser(
        prog="python -m learn.robust", short_usage="RUN_DIR [RUN_DIR ...] --data FILE [FILE ...] [options]",
        description="Measure how trained runs hold across resolution and zoom: the cross-resolution matrix (every "
                    "run on the test split of every --data file and on RAMSES .npz map files), the zoom curve "
                    "(windows of 0.5-2 times the field of view resampled to the input size) and the classes' mean "
                    "power spectra per resolution with each grid's dissipation range. Writes robust.json, figures "
                    "and a report section into OUT/<name>/ (default: the first run directory).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="trained runs (python -m learn.fit)")
    p.add_argument("--data", nargs="+", required=True, metavar="FILE", help="ensembles (.h5) and RAMSES map files (.npz)")
    p.add_argument("--split", default="test", choices=("train", "test", "holdout"), help="split of the ensembles")
    p.add_argument("--holdout", action="store_true", help="allow the holdout split (final evaluation only)")
    p.add_argument("--zoom", nargs="*", type=float, default=list(ZOOMS), metavar="Z",
                   help="zoom factors of the zoom curve (none: no curve)")
    p.add_argument("--zoom-data", nargs="*", metavar="FILE",
                   help="data of the zoom curve (default: the first --data file)")
    p.add_argument("--spectra", nargs="*", metavar="FILE",
                   help="ensembles of several resolutions for the class spectra (default: the .h5 --data files with "
                        "class labels; none: no spectra)")
    p.add_argument("--out", metavar="DIR", help="directory of the section (default: the first run directory)")
    p.add_argument("--name", default=SECTION, help="section (folder) name")
    p.add_output_options(json="print robust.json's numbers as one JSON line", progress=False,
                         verbose="log every score")
    return p


def _has_classes(path) -> bool:
    try:
        return bool(np.all(np.isin(_non_holdout(path).labels["klass"], (0, 1))))
    except Exception:  # noqa: BLE001 - any unreadable file simply has no spectra
        return False


def main(argv=None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 2 bad arguments or data)."""
    from .data import load_split
    from .rundir import RunError, load_run
    from .transforms import DataError

    parser = build_parser()
    args = parser.parse_args(argv)
    from turbsim.console import configure_logging

    configure_logging(args.verbose)
    try:
        runs = [load_run(r) for r in args.runs]
        matrix = cross_resolution(runs, args.data, split=args.split, allow_holdout=args.holdout)
        curves = {}
        if args.zoom:
            for f in args.zoom_data or args.data[:1]:
                ms = load_split(f, args.split, allow_holdout=args.holdout)
                for run in runs:
                    curves[f"{Path(run.path).name} on {Path(f).name}"] = zoom_curve(run, ms, args.zoom)
        spec_files = args.spectra if args.spectra is not None else [
            f for f in args.data if f.endswith(".h5") and _has_classes(f)]
        spec = class_spectra(spec_files) if len(spec_files) >= 2 else None
        folder = write_section(args.out or args.runs[0], matrix, curves, spec, name=args.name)
    except (DataError, RunError, ValueError) as exc:
        parser.error(str(exc))
    data = json.loads((folder / "robust.json").read_text())
    if args.json:
        print(json.dumps({"matrix": data["matrix"], "zoom": data["zoom"],
                          "shared": None if spec is None else spec["shared"]}))
    else:
        for r in matrix:
            s = (f"acc {_fmt(r.get('accuracy'), True)} / {_fmt(r.get('accuracy_sim'), True)}, AUC {_fmt(r.get('auc'))} / "
                 f"{_fmt(r.get('auc_sim'))}" if r.get("mode") == "classify" else
                 f"RMSE {_fmt(r.get('rmse'))} / {_fmt(r.get('rmse_sim'))}, bias {_fmt(r.get('bias_sim'))}"
                 if r.get("mode") == "regress" else "sweep")
            print(f"{r['run']} on {r['data']} ({r['map_size']} px): {s} (per image / per simulation)")
        for nm, rows in curves.items():
            key = "accuracy_sim" if rows and rows[0].get("mode") == "classify" else "rmse_sim"
            aux = "auc_sim" if key == "accuracy_sim" else "bias_sim"
            print(f"zoom {nm}: " + ", ".join(f"{r['zoom']:g}: {_fmt(r.get(key), key == 'accuracy_sim')} ({aux} "
                                            f"{_fmt(r.get(aux))})" for r in rows))
        if spec:
            print("spectra: " + ", ".join(f"{d['map_size']}^3 dissipation from k = {d['k_diss']}" for d in spec["files"])
                  + f"; {spec['shared']:.2%} of the finest grid's class separation at k < {spec['k_shared'] + 1}; there "
                  + ", ".join(f"{d['separation_shared']:.2f} sigma per map at {d['map_size']}^3 (ideal "
                              f"{100 * d['accuracy_shared_map']:.0f} % / {100 * d['accuracy_shared_sim']:.0f} %)"
                              for d in spec["files"]))
        print(f"wrote {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What a trained network looks at: saliency maps, their power spectra, and band occlusion.

Three questions about any trained run (:func:`learn.rundir.load_run`):

* **Where?** Saliency maps (:mod:`learn.saliency`): input gradients, SmoothGrad and
  integrated gradients of the network's evidence for a class or of its predicted ``n``,
  drawn beside the images for right and wrong examples of each class
  (:func:`pick_examples`).
* **At which scales?** The mean power spectrum of the saliency per class
  (:func:`learn.occlusion.mean_spectrum`), against the classes' own map spectra: where the
  network is sensitive in wavenumber, and where the maps hold their variance.
* **Which scales carry the answer?** Band occlusion (:func:`learn.occlusion.band_occlusion`):
  the drop in accuracy (or the rise in RMSE of n) when one band of wavenumbers is removed
  from every input, band by band, per image and per simulation.

:func:`explain_run` writes each into its own section of the run directory
(``saliency/``, ``occlusion/``, and with :mod:`learn.embed` and
:mod:`learn.baselines` ``tsne/`` and ``hog_svm/`` or ``hog_svr/``; :mod:`learn.sections`),
and ``python -m learn.explain RUN_DIR`` is its command line.

Wavenumbers ``k`` are in units of the image's fundamental, ``2 pi / L`` with ``L`` the
image side (half the box for the study's quadrant images, the box for whole maps): ``k``
cycles per image side, a scale of ``L / k``.

Examples
--------
>>> ANALYSES
('saliency', 'occlusion', 'tsne', 'hog')
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path

import numpy as np

from turbsim.console import ArgumentParser, configure_logging
from turbsim.console import progress as progress_bar

from . import figures, rundir
from .data import MapSet, load_split, open_ensemble
from .metrics import softmax
# the pieces (re-exported: they lived here before)
from .occlusion import band_occlusion, band_stop, mean_spectrum, median_wavenumber, occlusion_bands  # noqa: F401
from .saliency import METHOD_NAMES, METHODS, gradients, output_weights, saliency  # noqa: F401
from .sections import Figure, Section, Table, small_split_note, write_section
from .transforms import CLASS_NAMES, DataError, eval_set

log = logging.getLogger(__name__)

ANALYSES = ("saliency", "occlusion", "tsne", "hog")
"""What :func:`explain_run` can write (each a section of the run directory)."""


# --------------------------------------------------------------------------------------
# examples to show
# --------------------------------------------------------------------------------------
def pick_examples(task: str, outputs: np.ndarray, truth: np.ndarray, *, per_group: int = 2,
                  n_scale: float = 1.0, n_mean: float = 0.0) -> list[tuple[int, str, str]]:
    """Indices of telling images: right and wrong ones of each class (or good and bad ones of n).

    Classification: per true class, the ``per_group`` most confidently right images and the
    ``per_group`` most confidently wrong ones (fewer if there are none). Regression: in
    the lower and the upper half of the true ``n``, the ``per_group`` best and worst
    predicted images.

    Parameters
    ----------
    task : {"classify", "regress"}
    outputs : ndarray, shape (M, n_out)
        Raw model outputs.
    truth : ndarray, shape (M,)
        Class or ``n`` of every image.
    per_group : int
    n_scale, n_mean : float
        Regression: ``n = output * n_scale + n_mean``.

    Returns
    -------
    list of (index, group, label)
        ``group`` e.g. ``"burgers, right"``; ``label`` a short text for the figure.
    """
    picks = []
    if task == "classify":
        p = softmax(outputs)[:, 1]
        margin = outputs[:, 1].astype(np.float64) - outputs[:, 0]
        for c in (0, 1):
            conf = margin if c == 1 else -margin  # evidence for the true class
            for right in (True, False):
                idx = np.flatnonzero((truth == c) & ((conf > 0) == right))
                idx = idx[np.argsort(-conf[idx] if right else conf[idx], kind="stable")][:per_group]
                for i in idx:
                    picks.append((int(i), f"{CLASS_NAMES[c]}, {'right' if right else 'wrong'}",
                                  f"P({CLASS_NAMES[1]}) {p[i]:.2f}"))
        return picks
    n_pred = outputs[:, 0].astype(np.float64) * n_scale + n_mean
    err = np.abs(n_pred - truth)
    mid = np.median(truth)
    for half, sel in (("low n", truth <= mid), ("high n", truth > mid)):
        idx = np.flatnonzero(sel)
        order = idx[np.argsort(err[idx], kind="stable")]
        for kind, chosen in (("good", order[:per_group]), ("bad", order[::-1][:per_group])):
            for i in chosen:
                picks.append((int(i), f"{half}, {kind}", f"n {truth[i]:.2f}, predicted {n_pred[i]:.2f}"))
    return picks


# --------------------------------------------------------------------------------------
# sections of a run
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExplainOptions:
    """Settings of :func:`explain_run`.

    Parameters
    ----------
    per_group : int
        Saliency examples per group (class x right/wrong), >= 1.
    samples : int
        SmoothGrad noisy copies, >= 1.
    noise : float
        SmoothGrad noise, a fraction of each image's range, >= 0.
    steps : int
        Integrated-gradient steps, >= 1.
    spectrum_images : int
        Images per class whose input gradients give the saliency spectra, >= 1.
    n_bands : int or None
        Occlusion bands (None: octaves).
    tsne_images : int
        Images of the scored split in the t-SNE (a random subset), >= 10.
    perplexity : float
        t-SNE perplexity (capped at a third of the points).
    tsne_iterations : int
        t-SNE iterations, >= 250.
    hog_train_images : int
        Training images of the HOG + SVM/SVR (a random subset; the SVM is quadratic), >= 10.
    seed : int
        Seed of every random choice (subsets, SmoothGrad noise, t-SNE).
    batch_size : int
        Images per gradient call.
    """

    per_group: int = 2
    samples: int = 16
    noise: float = 0.15
    steps: int = 32
    spectrum_images: int = 128
    n_bands: int | None = None
    tsne_images: int = 1500
    perplexity: float = 30.0
    tsne_iterations: int = 1000
    hog_train_images: int = 4000
    seed: int = 0
    batch_size: int = 64

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            low = {"noise": 0.0, "tsne_images": 10, "hog_train_images": 10, "perplexity": 1.0, "seed": 0,
                   "tsne_iterations": 250}.get(f.name, 1)
            if v is not None and v < low:
                raise ValueError(f"ExplainOptions.{f.name} = {v!r} must be >= {low}")


def image_side_pc(data_path, full_maps: bool) -> float | None:
    """Side of a network's image [pc]: the box of the ensemble, or half of it for quadrants.

    None when unknown (a RAMSES ``.npz`` map file, or a file that cannot be read).
    """
    if data_path is None or Path(data_path).suffix != ".h5":
        return None
    try:
        with open_ensemble(data_path) as ens:
            rows = ens.indices("train")
            if rows.size == 0:
                rows = ens.indices("test")
            box = float(ens.config(int(rows[0])).box)
    except (DataError, OSError, IndexError, KeyError, ValueError) as exc:
        log.warning("%s: box size unknown (%s); axes in pixels", data_path, exc)
        return None
    return box if full_maps else box / 2


@dataclass
class Scored:
    """A run's evaluation images of a set of maps, with its outputs and the truths."""

    images: np.ndarray
    sim_index: np.ndarray
    outputs: np.ndarray
    truth_sim: np.ndarray
    task: str
    n_scale: float
    n_mean: float
    source: str
    n_sims: int

    @property
    def truth(self) -> np.ndarray:
        return self.truth_sim[self.sim_index]


def score_images(run: rundir.Run, ms: MapSet, *, progress: bool = False) -> Scored:
    """The run's evaluation images of ``ms`` (:func:`learn.transforms.eval_set`) and its raw outputs on them.

    Raises
    ------
    DataError
        Classification on maps without classes 0/1 for every simulation, or regression on
        maps without ``n``.
    """
    images, sidx = eval_set(ms.maps, run.normaliser, run.image_size, run.full_maps)
    out = run.predict(images, batch_size=run.config.eval_batch_size, progress=progress)
    task = run.config.task
    if task == "classify":
        truth = np.asarray(ms.labels["klass"])
        if not np.isin(truth, (0, 1)).all():
            raise DataError(f"{ms.source}: explaining a classifier needs classes 0/1 for every simulation")
        scale, mean = 1.0, 0.0
    else:
        truth = np.asarray(ms.labels["n"], np.float64)
        if not np.isfinite(truth).all():
            raise DataError(f"{ms.source}: explaining a regression needs n for every simulation")
        scale, mean = float(run.scaler.std), float(run.scaler.mean)
    source = os.path.basename(ms.source)  # the file's name and the split, not where it lies
    return Scored(images, sidx, np.asarray(out), truth, task, scale, mean, source, int(len(ms.maps)))


def _weights_for(run: rundir.Run, sc: Scored, idx: np.ndarray) -> np.ndarray:
    n_out = sc.outputs.shape[1]
    return output_weights(sc.task, n_out, sc.truth[idx] if sc.task == "classify" else np.zeros(len(idx)),
                          n_scale=sc.n_scale)


def _groups(sc: Scored) -> list[tuple[str, np.ndarray]]:
    """Image groups of the spectra: the classes, or the lower and upper half of n."""
    if sc.task == "classify":
        return [(CLASS_NAMES[c], np.flatnonzero(sc.truth == c)) for c in (0, 1)]
    mid = float(np.median(sc.truth))
    return [(f"n <= {mid:.2f}", np.flatnonzero(sc.truth <= mid)), (f"n > {mid:.2f}", np.flatnonzero(sc.truth > mid))]


def saliency_section(run: rundir.Run, sc: Scored, folder: Path, options: ExplainOptions = ExplainOptions(), *,
                     side_pc: float | None = None, progress: bool = False) -> Section:
    """Saliency maps of telling examples and the saliency spectra of each class; figures into ``folder``.

    Returns
    -------
    Section
        Figures ``saliency_maps.png`` and ``saliency_spectra.png``; data: the examples
        (index, group, label), per group the median wavenumber of the saliency power and
        of the maps' power, and both spectra.
    """
    folder.mkdir(parents=True, exist_ok=True)
    sym = run.config.symmetrize
    what = "the logit margin of the true class" if sc.task == "classify" else "the predicted n"
    picks = pick_examples(sc.task, sc.outputs, sc.truth, per_group=options.per_group, n_scale=sc.n_scale,
                          n_mean=sc.n_mean)
    idx = np.array([p[0] for p in picks], dtype=int)
    maps = {}
    if len(idx):
        w = _weights_for(run, sc, idx)
        for m in progress_bar(METHODS, desc="saliency", unit="method", disable=not progress, leave=False, min_time=2):
            maps[m] = saliency(run.model, sc.images[idx], w, m, samples=options.samples, noise=options.noise,
                               steps=options.steps, seed=options.seed, batch_size=options.batch_size, symmetrize=sym)
        figures.plot_saliency_maps(sc.images[idx], {METHOD_NAMES[m]: v for m, v in maps.items()},
                                   [f"{g}\n{lab}" for _, g, lab in picks], folder / "saliency_maps.png",
                                   side_pc=side_pc)
    rng = np.random.default_rng(options.seed)
    spectra_data, curves = {}, []
    for name, members in _groups(sc):
        if not len(members):
            continue
        sub = np.sort(rng.choice(members, min(options.spectrum_images, len(members)), replace=False))
        grads = gradients(run.model, sc.images[sub], _weights_for(run, sc, sub), batch_size=options.batch_size,
                          symmetrize=sym)
        k, f_sal = mean_spectrum(grads)
        _, f_map = mean_spectrum(sc.images[sub])
        spectra_data[name] = {"k": k, "saliency": f_sal, "maps": f_map, "n_images": int(len(sub)),
                              "median_k_saliency": median_wavenumber(k, f_sal),
                              "median_k_maps": median_wavenumber(k, f_map)}
        curves.append((name, k, f_map, f_sal))
    if curves:
        figures.plot_saliency_spectra(curves, folder / "saliency_spectra.png", side_pc=side_pc,
                                      image_px=sc.images.shape[-1])
    scale = (lambda k: f" (scales of {side_pc / k:.2g} pc)") if side_pc else (lambda k: "")
    text = [f"Saliency of {what} with respect to the input pixels (normalised log10 column density) on "
            f"{sc.source}: input gradients, SmoothGrad ({options.samples} copies, noise {options.noise:g} of the "
            f"range) and integrated gradients ({options.steps} steps from the mean-level image)"
            + (", of the network averaged over rotations and reflections" if sym else "") + "."]
    for name, d in spectra_data.items():
        text.append(f"For {name} images, half of the saliency power lies below k = {d['median_k_saliency']:.1f}"
                    f"{scale(d['median_k_saliency'])}, half of the maps' variance below k = {d['median_k_maps']:.1f}"
                    f"{scale(d['median_k_maps'])} (k in cycles per image side; {d['n_images']} images).")
    if sc.task == "classify":
        wrong = int(sum(1 for _, g, _ in picks if g.endswith("wrong")))
        if not wrong:
            text.append("The network got every image of this split right: no wrong examples to show.")
    text.append(small_split_note(sc.n_sims))
    figs = []
    if maps:
        figs.append(Figure("saliency_maps.png", "Images (normalised log10 column density) and their saliency "
                           f"(of {what}; red raises it, blue lowers it; each map scaled to its own largest values)."))
    if curves:
        figs.append(Figure("saliency_spectra.png", "Share of the power per wavenumber shell: the maps (solid) and the "
                           "saliency (dashed), per group; the network is sensitive where the dashed curve lies."))
    rows = [[name, d["n_images"], round(d["median_k_maps"], 2), round(d["median_k_saliency"], 2)]
            for name, d in spectra_data.items()]
    return Section("Saliency: where and at which scales the network looks", " ".join(t for t in text if t), figs,
                   [Table("Median wavenumber of the power [cycles per image side]",
                          ["group", "images", "maps", "saliency"], rows)],
                   {"examples": [{"index": i, "group": g, "label": lab} for i, g, lab in picks],
                    "spectra": spectra_data, "side_pc": side_pc, "target": what, "methods": list(METHODS),
                    "n_sims": sc.n_sims, "source": sc.source})


def occlusion_section(run: rundir.Run, sc: Scored, folder: Path, options: ExplainOptions = ExplainOptions(), *,
                      side_pc: float | None = None, progress: bool = False) -> Section:
    """Band occlusion of a run on its scored images; figure ``band_occlusion.png`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    edges = occlusion_bands(sc.images.shape[-1], options.n_bands)
    predict_fn = partial(run.predict, batch_size=run.config.eval_batch_size)
    res = band_occlusion(predict_fn, sc.images, sc.sim_index, sc.truth_sim, task=sc.task, edges=edges,
                         n_scale=sc.n_scale, n_mean=sc.n_mean, progress=progress)
    figures.plot_band_occlusion(res, folder / "band_occlusion.png", side_pc=side_pc)
    metric = res["metric"]
    bands = res["bands"]
    worst = (min if metric == "accuracy" else max)(bands, key=lambda b: b["change_per_image"])
    least = (max if metric == "accuracy" else min)(bands, key=lambda b: b["change_per_image"])

    def name(b):
        return f"k = {b['k_lo']:.3g}-{b['k_hi']:.3g}" if np.isfinite(b["k_hi"]) else f"k >= {b['k_lo']:.3g}"

    unit = "points of accuracy" if metric == "accuracy" else "in the RMSE of n"
    fmt = (lambda v: f"{100 * v:+.1f}") if metric == "accuracy" else (lambda v: f"{v:+.3f}")
    text = (f"Each band of wavenumbers removed in turn from every input (Fourier band-stop on the normalised image; "
            f"{len(bands)} bands, k in cycles per image side) on {sc.source}: untouched, the network scores "
            f"{metric} {res['reference']['per_image']:.3f} per image and {res['reference']['per_sim']:.3f} per "
            f"simulation. Removing {name(worst)} (a share {worst['variance_fraction']:.2f} of the images' variance) "
            f"changes it most, by {fmt(worst['change_per_image'])} {unit} per image "
            f"({fmt(worst['change_per_sim'])} per simulation); removing {name(least)} changes it least "
            f"({fmt(least['change_per_image'])}).")
    if metric == "rmse":
        text += f" Always answering the mean n would give an RMSE of {res['no_skill']['per_image']:.3f}."
        if worst["per_image"] > res["no_skill"]["per_image"]:
            text += (f" Without {name(worst)} the network does worse than that: the images are unlike any it was "
                     "trained on, and it extrapolates.")
    if metric == "accuracy":
        chance = [b for b in bands if b["per_image"] <= 0.55]
        if len(chance) > 1:
            text += (f" Removing any one of {len(chance)} bands brings the network to chance: it reads them together, "
                     "or an image without one of them is unlike any it was trained on (occlusion measures both).")
    text = f"{text} {small_split_note(sc.n_sims)}".strip()
    rows = [[name(b), round(b["variance_fraction"], 4), round(b["per_image"], 4), round(b["change_per_image"], 4),
             round(b["per_sim"], 4), round(b["change_per_sim"], 4)] for b in bands]
    return Section("Band occlusion: which scales carry the answer", text,
                   [Figure("band_occlusion.png", f"The {metric} with one band of wavenumbers removed from every "
                           "input (bars), against the untouched inputs (lines), per image and per simulation.")],
                   [Table(f"{metric} with one band removed", ["band", "variance share", f"{metric} per image",
                                                               "change", f"{metric} per simulation", "change"], rows)],
                   {**res, "n_sims": sc.n_sims, "n_images": int(len(sc.images)), "source": sc.source,
                    "side_pc": side_pc})


def explain_run(run_dir, data=None, *, split: str = "test", allow_holdout: bool = False,
                analyses=ANALYSES, options: ExplainOptions = ExplainOptions(), name_suffix: str | None = None,
                progress: bool = False) -> dict[str, Path]:
    """Write the explanation sections of a trained run into its directory.

    Parameters
    ----------
    run_dir : path-like
        A finished run (:func:`learn.rundir.load_run`).
    data : path-like, optional
        Maps to explain (default: the run's own ensemble).
    split : {"test", "train", "holdout"}, optional
        Split of ``data`` to explain and score.
    allow_holdout : bool
        Needed for the holdout.
    analyses : sequence of {"saliency", "occlusion", "tsne", "hog"}
        ``tsne``: :func:`learn.embed.tsne_section`; ``hog``: HOG + SVM's ROC against the
        network's (classification) or HOG + SVR's predicted against true n (regression),
        fitted on the run's own train split (:func:`learn.baselines.hog_section`).
    options : ExplainOptions
    name_suffix : str, optional
        Appended to every section name (default: ``_<data stem>_<split>`` for other data or
        another split than test, nothing otherwise).
    progress : bool

    Returns
    -------
    dict
        ``{section name: section.json path}``.
    """
    from . import baselines as lbase
    from . import embed

    unknown = sorted(set(analyses) - set(ANALYSES))
    if unknown:
        raise ValueError(f"unknown analyses {unknown}; choose from {', '.join(ANALYSES)}")
    run_dir = Path(run_dir)
    run = rundir.load_run(run_dir)
    path = data if data is not None else run.config.data
    if path is None:
        raise DataError(f"{run_dir}: a live run has no data file of its own; pass --data")
    own = run.config.data is not None and Path(path).resolve() == Path(run.config.data).resolve()
    if name_suffix is None:
        name_suffix = "" if own and split == "test" else f"_{Path(path).stem}_{split}"
    ms = load_split(path, split, allow_holdout=allow_holdout)
    sc = score_images(run, ms, progress=progress)
    side = image_side_pc(path, run.full_maps)
    written = {}

    def put(name, make):
        name = name + name_suffix
        sec = make(run_dir / name)
        written[name] = write_section(run_dir, name, sec)
        log.info("%s: section %s written", run_dir, name)

    if "saliency" in analyses:
        put("saliency", lambda f: saliency_section(run, sc, f, options, side_pc=side, progress=progress))
    if "occlusion" in analyses:
        put("occlusion", lambda f: occlusion_section(run, sc, f, options, side_pc=side, progress=progress))
    if "tsne" in analyses:
        put("tsne", lambda f: embed.tsne_section(run, sc, f, max_images=options.tsne_images,
                                                 perplexity=options.perplexity, seed=options.seed,
                                                 iterations=options.tsne_iterations, labels=ms.labels,
                                                 progress=progress))
    if "hog" in analyses:
        if run.config.data is None:
            raise DataError(f"{run_dir}: HOG is fitted on the run's train split; a live run has none")
        train = load_split(run.config.data, "train")
        name = "hog_svm" if run.config.task == "classify" else "hog_svr"
        put(name, lambda f: lbase.hog_section(run, train, sc, f, max_train_images=options.hog_train_images,
                                              seed=options.seed, progress=progress))
    return written


# --------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """``python -m learn.explain`` options."""
    d = ExplainOptions()
    p = ArgumentParser(prog="python -m learn.explain", short_usage="RUN_DIR [--data FILE] [--split test] [options]",
                       description="What a trained network looks at: saliency maps and their spectra, band occlusion, "
                                   "t-SNE of HOG and network features, HOG + SVM/SVR against the network. Each "
                                   "analysis is written into its own section folder of RUN_DIR (section.json and PNG "
                                   "figures), which the report shows.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished training run")
    p.add_argument("--data", metavar="FILE", help="ensemble (.h5) or RAMSES map file (.npz) to explain "
                                                  "(default: the run's own ensemble)")
    p.add_argument("--split", default="test", choices=("train", "test", "holdout"), help="split of --data")
    p.add_argument("--holdout", action="store_true", help="allow the locked holdout split (final evaluation only)")
    p.add_argument("--analyses", nargs="+", default=list(ANALYSES), choices=ANALYSES, help="what to write")
    p.add_argument("--examples", type=int, default=d.per_group, metavar="N",
                   help="saliency examples per class and right/wrong group")
    p.add_argument("--smoothgrad-samples", type=int, default=d.samples, metavar="N", help="SmoothGrad noisy copies")
    p.add_argument("--smoothgrad-noise", type=float, default=d.noise, metavar="X",
                   help="SmoothGrad noise, a fraction of each image's range")
    p.add_argument("--ig-steps", type=int, default=d.steps, metavar="N", help="integrated-gradient steps")
    p.add_argument("--spectrum-images", type=int, default=d.spectrum_images, metavar="N",
                   help="images per class of the saliency spectra")
    p.add_argument("--bands", type=int, default=None, metavar="N", help="occlusion bands (default: octaves)")
    p.add_argument("--tsne-images", type=int, default=d.tsne_images, metavar="N", help="images in the t-SNE")
    p.add_argument("--perplexity", type=float, default=d.perplexity, metavar="X", help="t-SNE perplexity")
    p.add_argument("--tsne-iterations", type=int, default=d.tsne_iterations, metavar="N",
                   help="t-SNE iterations, >= 250")
    p.add_argument("--hog-train-images", type=int, default=d.hog_train_images, metavar="N",
                   help="training images of the HOG + SVM/SVR")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of subsets, noise and t-SNE")
    p.add_output_options(json="print the written sections as JSON", verbose="log each step")
    return p


def main(argv=None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 2 bad arguments or data)."""
    import json

    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:
        options = ExplainOptions(per_group=args.examples, samples=args.smoothgrad_samples,
                                 noise=args.smoothgrad_noise, steps=args.ig_steps,
                                 spectrum_images=args.spectrum_images, n_bands=args.bands,
                                 tsne_images=args.tsne_images, perplexity=args.perplexity,
                                 tsne_iterations=args.tsne_iterations,
                                 hog_train_images=args.hog_train_images, seed=args.seed)
        written = explain_run(args.run_dir, args.data, split=args.split, allow_holdout=args.holdout,
                              analyses=args.analyses, options=options, progress=not args.no_progress)
    except (ValueError, DataError, rundir.RunError) as exc:
        parser.error(str(exc))
    if args.json:
        print(json.dumps({k: str(v) for k, v in written.items()}))
    else:
        for name, path in written.items():
            print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m learn.study``: the main job, the best network and the study's CNN on one ensemble, one report.

:func:`run_study` fits each recipe of :data:`RECIPES` with :func:`learn.pipeline.fit` into
its own run directory under ``--out`` (the multi-scale ``pyramid`` on whole periodic maps,
the recipe of the results, and the study's ``study_cnn`` on its quadrant images), each with
its baselines fitted on its own images, explains the best network
(:func:`learn.explain.explain_run`: saliency, band occlusion, t-SNE, HOG + SVM) and writes
the study report ``OUT/study.html`` (:func:`learn.report.write_study_report`). Rerun the same
command after an interruption: finished runs and baselines are reused, an interrupted
training resumes from its last epoch.

Examples
--------
::

    python -m turbsim.generate demo -o runs/demo.h5
    python -m learn.study --data runs/demo.h5 --out runs/demo --holdout
    python -m learn.study --data binary.h5 --out runs/binary --epochs 20 --holdout   # longer training
    python -m learn.study --data demo.h5 --out runs/demo --eval-data sweep64.h5 binary64_dev.npz   # a sweep, RAMSES
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from turbsim.console import ArgumentParser, configure_logging

from .config import TrainConfig
from .metrics import headline
from .pipeline import FitResult, fit
from .report import write_study_report
from .rundir import RunError, json_default
from .transforms import DataError

log = logging.getLogger(__name__)

REPORT_NAME = "study.html"
SUMMARY_NAME = "study.json"


@dataclass(frozen=True)
class Recipe:
    """A network to fit in the study: its configuration and the baselines beside it.

    Attributes
    ----------
    name : str
        Its run directory under the study's folder.
    config : dict
        TrainConfig fields (``data`` added by the study).
    baselines : tuple of str
        Baselines fitted on the same images (:func:`learn.pipeline.fit_baselines`).
    what : str
        One line for people.
    """

    name: str
    config: dict
    baselines: tuple[str, ...]
    what: str


RECIPES = {
    "pyramid": Recipe(
        "pyramid",
        {"model": "pyramid", "padding": "circular", "augment": ("flip", "rot90"), "normalisation": "global",
         "optimizer": "adamw", "learning_rate": 1e-3, "epochs": 8, "patience": 0, "batch_size": 32,
         "steps_per_call": 4},
        ("spectrum", "stats", "hog"),
        "the multi-scale network (log band energies at five scales) on whole periodic maps, circular padding"),
    "study_cnn": Recipe(
        "study_cnn",
        {"model": "study_cnn", "epochs": 2, "patience": 0, "steps_per_call": 4},
        ("spectrum",),
        "the study's CNN on its 48 quadrant images per simulation, RMSprop, as in the study (2 epochs: a demo's "
        "time, far less than it needs)"),
}
"""The study's networks. The pyramid recipe is that of the results (docs/results.md) with the
global normalisation, which keeps each map's fluctuation amplitude (the better choice on one
code and resolution; per_image is the robust one across codes)."""
DEFAULT_RECIPES = ("pyramid", "study_cnn")
EXPLAIN_ANALYSES = ("saliency", "occlusion", "tsne")
EXPLAIN_SETTINGS = {"samples": 8, "steps": 16, "spectrum_images": 48, "tsne_images": 600}
"""learn.explain.ExplainOptions of a study: lighter than the defaults (SmoothGrad copies, integrated-gradient
steps, images of the saliency spectra and of the t-SNE), to keep the main job short."""


@dataclass
class StudyResult:
    """What a study produced: the fit of each recipe, the report and the wall time [s]."""

    fits: dict[str, FitResult]
    report: Path
    wall_s: float

    def to_json(self) -> dict:
        return {"report": str(self.report), "wall_s": self.wall_s,
                **{name: f.to_json() for name, f in self.fits.items()}}

    def lines(self) -> list[str]:
        """The result for people: each network and baseline on each scored split, and the report."""
        out = []
        for name, f in self.fits.items():
            for split, m in f.results.items():
                out.append(f"{name} ({f.config.model}) on {split}: " + _fmt(headline(m)))
            for kind, res in f.baselines.items():
                for split, m in res.items():
                    if isinstance(m, dict) and "mode" in m:
                        out.append(f"  {kind} baseline beside {name} on {split}: " + _fmt(headline(m)))
        out.append(f"study report: {self.report} ({self.wall_s:.0f} s)")
        return out


def _fmt(h: dict) -> str:
    return ", ".join(f"{k.replace('.', ' ')} {100 * v:.1f} %" if "accuracy" in k else f"{k.replace('.', ' ')} {v:.3f}"
                     for k, v in h.items())


def recipe_config(recipe: Recipe, data, **overrides) -> TrainConfig:
    """The TrainConfig of a recipe on a data file (``overrides``: other TrainConfig fields)."""
    return TrainConfig(data=str(data), **{**recipe.config, **overrides})


def run_study(data, out, *, recipes=DEFAULT_RECIPES, holdout: bool = False, explain: bool = True,
              eval_data=(), overrides: dict | None = None, progress: bool = True, command=None,
              n_boot: int = 1000) -> StudyResult:
    """Fit the study's networks and baselines on an ensemble and write the study report.

    Parameters
    ----------
    data : path-like
        Ensemble file (.h5) with train and test splits (and a holdout to score with
        ``holdout``).
    out : path-like
        Study folder: one run directory per recipe, ``study.html`` and ``study.json``.
    recipes : sequence of str
        Names in :data:`RECIPES`.
    holdout : bool
        Also score the holdout split (the final, explicit evaluation).
    explain : bool
        Write the explanation sections of the first recipe's run (saliency, band
        occlusion, t-SNE).
    eval_data : sequence of path-like
        Other data to score every network and baseline on: a sweep (the classifier's
        P(Burgers) against n), RAMSES map files (.npz), another resolution.
    overrides : dict, optional
        TrainConfig fields applied to every recipe (e.g. ``{"epochs": 20}``).
    progress : bool
    command : sequence of str, optional
        The command line, recorded in every run directory.
    n_boot : int
        Bootstrap resamples of the report's intervals.

    Returns
    -------
    StudyResult

    Raises
    ------
    ValueError, learn.transforms.DataError, learn.rundir.RunError
        An unknown recipe, a bad override, a missing or bad data file, a run folder of
        another configuration.
    """
    t0 = time.perf_counter()
    unknown = sorted(set(recipes) - set(RECIPES))
    if unknown:
        raise ValueError(f"unknown recipe(s) {unknown}; choose from {', '.join(RECIPES)}")
    if not recipes:
        raise ValueError("a study needs at least one recipe")
    out = Path(out)
    configs = {name: recipe_config(RECIPES[name], data, **(overrides or {})) for name in recipes}  # all checked first
    splits = ("test", "holdout") if holdout else ("test",)
    fits = {}
    for name, cfg in configs.items():
        log.info("study: fitting %s (%s)", name, RECIPES[name].what)
        fits[name] = fit(cfg, out / name, splits=splits, allow_holdout=holdout, eval_data=eval_data,
                         baselines=RECIPES[name].baselines, progress=progress, command=command, report=False)
    if explain:
        _explain(out / recipes[0], progress)
    report = write_study_report([out / name for name in recipes], out / REPORT_NAME, n_boot=n_boot)
    result = StudyResult(fits, report, time.perf_counter() - t0)
    from .rundir import write_json

    write_json(out / SUMMARY_NAME, result.to_json())
    return result


def _explain(run_dir: Path, progress: bool) -> None:
    """The explanation sections of a run, if learn.explain is there (logged, never fatal to the study)."""
    try:
        from .explain import ExplainOptions, explain_run
    except ImportError as exc:  # pragma: no cover (explain ships with learn)
        log.warning("explanations skipped: %s", exc)
        return
    explain_run(run_dir, analyses=EXPLAIN_ANALYSES, options=ExplainOptions(**EXPLAIN_SETTINGS), progress=progress)


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``python -m learn.study``."""
    p = ArgumentParser(
        prog="python -m learn.study", short_usage="--data FILE --out DIR [options]",
        description="The main job: fit the best network (pyramid on whole periodic maps) and the study's CNN on an "
                    "ensemble, the classical baselines beside each, explain the best network, and write the study "
                    "report DIR/study.html. Rerun the same command to resume after an interruption.")
    p.add_argument("--data", required=True, metavar="FILE", help="ensemble file (.h5), e.g. from turbsim.generate demo")
    p.add_argument("--out", required=True, metavar="DIR", help="study folder (one run directory per network)")
    p.add_argument("--recipes", nargs="+", default=list(DEFAULT_RECIPES), choices=list(RECIPES),
                   help="networks to fit (the first one is explained)")
    p.add_argument("--holdout", action="store_true", help="also score the holdout split (final evaluation)")
    p.add_argument("--eval-data", nargs="*", default=[], metavar="FILE",
                   help="other data to score every network and baseline on: a sweep ensemble (P(Burgers) against "
                        "n), RAMSES map files (.npz), another resolution")
    p.add_argument("--epochs", type=int, metavar="N", help="epochs of every network (default: each recipe's)")
    p.add_argument("--no-explain", action="store_true", help="skip saliency, band occlusion and t-SNE")
    p.add_argument("--n-boot", type=int, default=1000, metavar="N", help="bootstrap resamples of the intervals")
    p.add_output_options(verbose="log every stage")
    return p


def main(argv=None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 2 bad arguments or data)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    overrides = {} if args.epochs is None else {"epochs": args.epochs}
    try:
        res = run_study(args.data, args.out, recipes=tuple(args.recipes), holdout=args.holdout,
                        explain=not args.no_explain, eval_data=args.eval_data, overrides=overrides,
                        progress=not args.no_progress,
                        n_boot=args.n_boot,
                        command=["python", "-m", "learn.study", *(sys.argv[1:] if argv is None else argv)])
    except (ValueError, DataError, RunError) as exc:
        parser.error(str(exc))
    print(json.dumps(res.to_json(), default=json_default) if args.json else "\n".join(res.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m learn.fit``: train a CNN on a turbsim ensemble (or live simulations) and evaluate it.

A parser and one call: the options of the training configuration are generated from the
fields of :class:`learn.config.TrainConfig` (:func:`learn.config.add_arguments`), the
others say what to score; :func:`learn.pipeline.fit` trains (resuming from ``--out`` if it
holds a run of the same configuration), scores the best checkpoint on the test split (and
the holdout with ``--holdout``) and on any ``--eval-data`` files, fits the classical
baselines (``--baselines``) and writes ``report.html``.

Examples
--------
::

    python -m learn.fit --data binary.h5 --task classify --model study_cnn --epochs 20 --out runs/cnn
    python -m learn.fit --data sweep.h5 --task regress --model resnet --uncertainty --optimizer adamw \\
        --epochs 30 --out runs/reg --holdout --baselines spectrum
    python -m learn.fit --live --live-cells 64 --data demo.h5 --task classify --epochs 5 --out runs/live
    python -m learn.fit --config runs/tune/best_config.toml --epochs 40 --out runs/best   # options override the file
    # several ensembles (mixed resolutions): every map brought to the coarsest grid's size, the robust recipe
    python -m learn.fit --data binary64.h5 binary128.h5 --robust --epochs 15 --out runs/robust

Several ``--data`` files, ``--common-size`` or ``--lowpass-k`` train on one merged
ensemble written into the run directory (``RUN_DIR/merged.h5``,
:func:`learn.data.merge_ensembles`): each file's maps resampled to one size (default the
coarsest grid's: with the same 10 pc box, a common physical pixel scale) and optionally
low-passed; the splits are kept. ``--robust`` sets the options of the resolution- and
zoom-robust recipe (:data:`learn.robust.ROBUST_RECIPE`; options given override them).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from turbsim.console import ArgumentParser

from . import config as lconfig
from .baselines import KINDS
from .pipeline import SPLITS, fit
from .rundir import RunError, json_default
from .transforms import DataError

def config_from_args(args: argparse.Namespace):
    """The TrainConfig of parsed options (:func:`learn.config.config_from_args`; importable from here as before).

    ``--data`` takes several files: one is the configuration's ``data``; several must be
    merged first (:func:`prepare_data`, which ``main`` calls).
    """
    if isinstance(args.data, (list, tuple)):
        if len(args.data) > 1:
            raise ValueError(f"several --data files {list(args.data)} are merged by prepare_data(args) first")
        args = argparse.Namespace(**{**vars(args), "data": args.data[0] if args.data else None})
    return lconfig.config_from_args(args)


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser: every TrainConfig field, then evaluation and output options."""
    p = ArgumentParser(
        prog="python -m learn.fit", short_usage="--data FILE --out DIR [options]",
        description="Train a CNN (the study's network, a small ResNet or the multi-scale pyramid) to classify "
                    "Kolmogorov/Burgers turbulence or regress the spectral index n from log column-density images; "
                    "evaluate it and write checkpoints, learning curves, metrics, figures and report.html into --out. "
                    "Rerun the same command after an interruption to continue from the last epoch.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", metavar="FILE",
                   help="TrainConfig fields from a TOML or JSON file (e.g. the best configuration of python -m "
                        "learn.tune); options given on the command line override the file")
    lconfig.add_arguments(p)
    for a in p._actions:  # several --data files (mixed resolutions)
        if a.dest == "data":
            a.nargs, a.metavar = "+", "FILE"
            a.help = ("ensemble file(s) (.h5); several (e.g. 64^3 and 128^3) are merged into RUN_DIR/merged.h5 with "
                      "every map resampled to --common-size; the test split validates")
    r = p.add_argument_group("resolution and zoom robustness (learn.robust)")
    r.add_argument("--robust", action="store_true",
                   help="the robust recipe's options as defaults (see docs/robust.md): " + _recipe_text())
    r.add_argument("--common-size", type=int, metavar="PX",
                   help="resample every map of --data to this side [pixels] (default with several files: the "
                        "smallest, the coarsest grid: a common physical pixel scale)")
    r.add_argument("--lowpass-k", type=float, metavar="K",
                   help="remove every Fourier mode above this wavenumber of the box from the training maps and from "
                        "every map the run scores (k = 10 pc / wavelength; a 64^3 grid's Nyquist is 32)")
    e = p.add_argument_group("evaluation")
    e.add_argument("--holdout", action="store_true",
                   help="also evaluate on the locked holdout split (final evaluation only)")
    e.add_argument("--eval-splits", nargs="+", default=["test"], choices=SPLITS,
                   help="splits of --data to evaluate after training (holdout needs --holdout)")
    e.add_argument("--eval-data", nargs="*", default=[], metavar="FILE",
                   help="other data to score the model on: ensembles (.h5) or RAMSES map files (.npz)")
    e.add_argument("--baselines", nargs="*", default=[], choices=KINDS,
                   help="also fit classical baselines on the same images and splits, and score them on --eval-data "
                        "(spectrum: binned power spectrum; stats: spectrum and non-Gaussian statistics; hog: "
                        "oriented gradients and an SVM)")
    e.add_argument("--baseline-bins", type=int, default=10, metavar="N",
                   help="logarithmic wavenumber bins of the power spectrum in the spectrum and stats baselines, >= 1")
    o = p.add_argument_group("output")
    o.add_argument("--out", required=True, metavar="DIR", help="run directory (created; reused to resume)")
    o.add_argument("--json", action="store_true", help="print a JSON summary line")
    o.add_argument("--no-progress", action="store_true", help="no progress bars")
    o.add_argument("-v", "--verbose", action="store_true", help="log every epoch")
    return p


def _recipe_text() -> str:
    from .robust import ROBUST_RECIPE

    return " ".join(f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, (tuple, list)) else v}"
                    for k, v in ROBUST_RECIPE.items())


def prepare_data(args) -> None:
    """Merge several --data files (or resample / low-pass one) into ``OUT/merged.h5``; sets ``args.data``."""
    from pathlib import Path

    from .data import merge_ensembles

    files = [args.data] if isinstance(args.data, str) else list(args.data or [])
    if len(files) > 1 or (files and (args.common_size or args.lowpass_k)):
        args.data = str(merge_ensembles(files, Path(args.out) / "merged.h5", map_size=args.common_size,
                                        lowpass_k=args.lowpass_k))
    else:
        args.data = files[0] if files else None


def main(argv=None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 2 bad arguments or data)."""
    parser = build_parser()
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--robust", action="store_true")
    if pre.parse_known_args(sys.argv[1:] if argv is None else argv)[0].robust:
        from .robust import ROBUST_RECIPE

        parser.set_defaults(**{k: list(v) if isinstance(v, tuple) else v for k, v in ROBUST_RECIPE.items()})
    args = lconfig.parse_with_config_file(parser, argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        prepare_data(args)
        result = fit(config_from_args(args), args.out, splits=args.eval_splits + ["holdout"] * args.holdout,
                     allow_holdout=args.holdout, eval_data=args.eval_data, baselines=args.baselines,
                     baseline_bins=args.baseline_bins, progress=not args.no_progress,
                     command=["python", "-m", "learn.fit", *(sys.argv[1:] if argv is None else argv)])
    except (ValueError, DataError, RunError) as exc:
        parser.error(str(exc))
    print(json.dumps(result.to_json(), default=json_default) if args.json else "\n".join(result.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m learn.fit``: train a CNN on a turbsim ensemble (or live simulations) and evaluate it.

A thin shell: the options become a :class:`learn.train.TrainConfig`;
:func:`learn.train.train_and_evaluate` trains (resuming from ``--out`` if it holds a run
of the same configuration), :func:`learn.evaluate.evaluate_run` scores the best
checkpoint on the test split (and the holdout with ``--holdout``) and on any
``--eval-data`` files, :func:`learn.baselines.run_baseline` fits the classical baselines
(``--baselines``), :func:`learn.report.write_report` writes ``report.html``.

Examples
--------
::

    python -m learn.fit --data binary.h5 --task classify --model study_cnn --epochs 20 --out runs/cnn
    python -m learn.fit --data sweep.h5 --task regress --model resnet --uncertainty --optimizer adamw \\
        --epochs 30 --out runs/reg --holdout --baselines spectrum
    python -m learn.fit --live --live-cells 64 --data demo.h5 --task classify --epochs 5 --out runs/live
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import baselines as lbase
from . import data as ldata
from . import models
from . import train as ltrain


def build_parser() -> argparse.ArgumentParser:
    d = ltrain.TrainConfig.__dataclass_fields__
    p = argparse.ArgumentParser(
        prog="python -m learn.fit",
        description="Train a CNN (the study's network or a small ResNet) to classify Kolmogorov/Burgers "
                    "turbulence or regress the spectral index n from log column-density images; evaluate it and "
                    "write checkpoints, learning curves, metrics, figures and report.html into --out. Rerun the "
                    "same command after an interruption to continue from the last epoch.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--data", help="turbsim ensemble (.h5): train split trains, test split validates "
                                  "(with --live: optional, validates only)")
    g.add_argument("--task", choices=models.TASKS, default="classify",
                   help="classify needs class labels (kolmogorov/burgers), regress the label n")
    g.add_argument("--normalisation", choices=ldata.NORMALISATIONS, default=d["normalisation"].default,
                   help="global: log column density minus the training mean over its std (keeps the amplitude); "
                        "per_image: every image standardised on its own (shape only)")
    g.add_argument("--augment", nargs="*", choices=ldata.AUGMENTATIONS, default=list(ldata.STUDY_AUGMENT),
                   help="augmentations (flip + quadrant are the study's 48 images per simulation; crop = random "
                        "periodic N/2 window instead of quadrants; rot90 = random quarter turns)")
    g.add_argument("--memory-budget-mb", type=float, default=d["memory_budget_mb"].default,
                   help="hold training maps in memory up to this size [MiB], else stream them from the file")
    g.add_argument("--holdout", action="store_true",
                   help="also evaluate on the locked holdout split (final evaluation only)")
    g.add_argument("--eval-splits", nargs="+", default=["test"], choices=("train", "test", "holdout"),
                   help="splits of --data to evaluate after training (holdout needs --holdout)")
    g.add_argument("--eval-data", nargs="*", default=[], metavar="FILE",
                   help="other data to score the model on: ensembles (.h5) or RAMSES map files (.npz)")
    g.add_argument("--baselines", nargs="*", default=[], choices=lbase.KINDS,
                   help="also fit classical baselines on the same images and splits, and score them on --eval-data")
    g.add_argument("--baseline-bins", type=int, default=10,
                   help="logarithmic wavenumber bins of the power spectrum in the spectrum and stats baselines")
    m = p.add_argument_group("model and optimisation")
    m.add_argument("--model", choices=models.MODELS, default="study_cnn",
                   help="study_cnn: the study's network (fixed input size); resnet: small residual net; "
                        "pyramid: multi-scale CNN with log-energy pooling (cheap, any input size)")
    m.add_argument("--pyramid-widths", type=int, nargs="+", default=list(d["pyramid_widths"].default),
                   help="channels of each stage (scale) of the pyramid model")
    m.add_argument("--pyramid-hidden", type=int, default=d["pyramid_hidden"].default,
                   help="units of the pyramid's hidden dense layer (0: the outputs are a linear function of the "
                        "pooled log energies)")
    m.add_argument("--refit-readout", action="store_true",
                   help="pyramid: after training, refit the readout in closed form on the network's log energies (ridge "
                        "or logistic regression on the training split, penalty chosen on the test split by the "
                        "per-simulation score) and use it in place of the trained head")
    m.add_argument("--symmetrize", action="store_true",
                   help="evaluate (and refit the readout on) the network averaged over the 8 rotations and reflections "
                        "of each image (test-time augmentation, 8x the evaluation cost)")
    m.add_argument("--pyramid-skip", action="store_true",
                   help="pyramid: add a linear path from the pooled log energies to the outputs (the form of the "
                        "power-spectrum ridge), in parallel with the dense head")
    m.add_argument("--uncertainty", action="store_true", help="regression with a predicted variance (Gaussian NLL)")
    m.add_argument("--epochs", type=int, default=d["epochs"].default, help="maximum epochs")
    m.add_argument("--batch-size", type=int, default=d["batch_size"].default, help="images per step (all devices)")
    m.add_argument("--optimizer", choices=ltrain.OPTIMIZERS, default=d["optimizer"].default)
    m.add_argument("--lr", type=float, default=d["learning_rate"].default, help="peak learning rate")
    m.add_argument("--weight-decay", type=float, default=d["weight_decay"].default, help="AdamW weight decay")
    m.add_argument("--schedule", choices=ltrain.SCHEDULES, default=d["schedule"].default)
    m.add_argument("--warmup-epochs", type=float, default=d["warmup_epochs"].default)
    m.add_argument("--patience", type=int, default=d["patience"].default,
                   help="early stopping: epochs without a better validation loss (0: off)")
    m.add_argument("--dropout", type=float, default=None, help="dropout rate (model default if omitted)")
    m.add_argument("--seed", type=int, default=d["seed"].default, help="the one seed of the run")
    m.add_argument("--steps-per-call", type=int, default=d["steps_per_call"].default,
                   help="training steps per jitted call (micro-batches unrolled in one XLA program)")
    m.add_argument("--conv-impl", choices=models.CONV_IMPLS, default=d["conv_impl"].default,
                   help="auto (default): gemm on a CPU, xla on a GPU; gemm: im2col + matrix product (fast on CPU); "
                        "xla: XLA convolution; winograd: Winograd F(2x2,3x3) where it applies")
    m.add_argument("--padding", choices=models.PADDINGS, default=d["padding"].default,
                   help="how convolutions extend an image: zeros, or circular (exact for whole periodic maps, "
                        "i.e. without quadrant/crop)")
    lv = p.add_argument_group("live simulations")
    lv.add_argument("--live", action="store_true", help="train on freshly simulated maps (turbsim.generate.stream)")
    lv.add_argument("--live-sims-per-epoch", type=int, default=d["live_sims_per_epoch"].default)
    lv.add_argument("--live-seed", type=int, default=d["live_seed"].default, help="seed of the simulation stream")
    lv.add_argument("--live-cells", type=int, default=64, help="grid of the live simulations")
    lv.add_argument("--live-t-end", type=float, default=0.5, help="end time [Myr]")
    lv.add_argument("--live-scheme", choices=("first", "muscl"), default="muscl")
    lv.add_argument("--live-workers", type=int, default=None, help="simulation worker processes")
    o = p.add_argument_group("output")
    o.add_argument("--out", required=True, help="run directory (created; reused to resume)")
    o.add_argument("--json", action="store_true", help="print a JSON summary line")
    o.add_argument("--no-progress", action="store_true", help="no progress bars")
    o.add_argument("-v", "--verbose", action="store_true", help="log every epoch")
    return p


def config_from_args(args) -> ltrain.TrainConfig:
    live_sim = (("cells", args.live_cells), ("t_end", args.live_t_end), ("scheme", args.live_scheme))
    return ltrain.TrainConfig(
        data=args.data, task=args.task, model=args.model, uncertainty=args.uncertainty, epochs=args.epochs,
        batch_size=args.batch_size, optimizer=args.optimizer, learning_rate=args.lr, weight_decay=args.weight_decay,
        schedule=args.schedule, warmup_epochs=args.warmup_epochs, patience=args.patience, seed=args.seed,
        normalisation=args.normalisation, augment=tuple(args.augment), steps_per_call=args.steps_per_call,
        conv_impl=args.conv_impl, padding=args.padding, dropout=args.dropout, pyramid_widths=tuple(args.pyramid_widths),
        pyramid_hidden=args.pyramid_hidden, pyramid_skip=args.pyramid_skip, refit_readout=args.refit_readout,
        symmetrize=args.symmetrize, memory_budget_mb=args.memory_budget_mb, live=args.live,
        live_sims_per_epoch=args.live_sims_per_epoch, live_seed=args.live_seed,
        live_sim=live_sim if args.live else (), live_workers=args.live_workers)


def main(argv=None) -> int:
    from . import evaluate as lev
    from . import report as lrep

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    splits = list(dict.fromkeys(args.eval_splits + (["holdout"] if args.holdout else [])))
    if "holdout" in splits and not args.holdout:
        parser.error("evaluating the holdout split needs --holdout (final evaluation only)")
    if args.baseline_bins < 1:
        parser.error(f"--baseline-bins must be >= 1, got {args.baseline_bins}")
    if args.data is None and not args.live:
        parser.error("--data is required (or --live)")
    for f in ([args.data] if args.data else []) + args.eval_data:
        if not Path(f).is_file():
            parser.error(f"{f}: no such data file")
    try:
        config = config_from_args(args)
        summary = ltrain.train_and_evaluate(config, args.out, progress=False if args.no_progress else None)
        run = ltrain.load_run(args.out)
        results = {}
        if args.data:
            for split in splits:
                results[split] = lev.evaluate_run(args.out, split=split, allow_holdout=args.holdout, run=run)
        for f in args.eval_data:
            results[Path(f).name] = lev.evaluate_run(args.out, f, run=run)
        base = {kind: lbase.run_baseline(kind, args.data, task=config.task, normalisation=config.normalisation,
                                         splits=tuple(splits), allow_holdout=args.holdout,
                                         others=args.eval_data, n_bins=args.baseline_bins,
                                         full_maps=not {"quadrant", "crop"} & set(config.augment))
                for kind in args.baselines}
        if base:
            ltrain.write_json(Path(args.out) / "baselines.json", base)
        report = lrep.write_report(args.out, baselines=base)
    except (ValueError, ldata.DataError, ltrain.RunError) as exc:
        parser.error(str(exc))
    if args.json:
        print(json.dumps({"train": summary, "report": str(report),
                          **{k: lev.headline(v) for k, v in results.items()},
                          **{f"baseline_{k}": {s: lev.headline(m) for s, m in v.items() if isinstance(m, dict)}
                             for k, v in base.items()}}, default=ltrain._json_default))
    else:
        print(f"trained {config.model} ({summary['n_params']} parameters) for {summary['epochs_run']} epochs, "
              f"best epoch {summary['best_epoch']}, {summary['images_per_s']:.0f} images/s")
        if "readout" in summary:
            r = summary["readout"]
            what = ("per-simulation RMSE of n" if config.task == "regress" else "log loss")
            key = "per_sim_rmse" if config.task == "regress" else "score"
            print(f"readout refitted in closed form (penalty {r['penalty']:.3g}): test-split {what} "
                  f"{r['val_' + key]:.4f}, trained head {r['head_val_' + key]:.4f}")
        for name, m in results.items():
            print(f"\n== {name} ==")
            print("\n".join(lev.summary_lines(m)))
        for kind, res in base.items():
            for split, m in res.items():
                if isinstance(m, dict):
                    print(f"\n== baseline {kind} ({split}) == " + ", ".join(
                        f"{k} {v:.4f}" for k, v in lev.headline(m).items()))
        print(f"\nreport: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

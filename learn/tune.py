"""Hyper-parameter search with optuna, on the test split only: ``python -m learn.tune``.

:func:`tune` trains one run per trial (:func:`learn.train.train_and_evaluate`, each in
``OUT/trials/<number>``) with the fields of a base :class:`~learn.config.TrainConfig`
changed by the trial's suggestions (:func:`suggest`), and scores it by its best test-split
loss (or metric): the loop's own validation, so the holdout split is never read. The trials
live in an SQLite file (``--storage``, default ``OUT/tune.db``): a killed search resumes
where it was, finished trials are kept and not repeated, and several processes can share
one study (each runs trials until the study holds ``--trials`` finished ones). A trial cut
short by a kill is failed once its heartbeat is older than :data:`GRACE_S` and run again
with the same parameters, resuming its run directory.

:func:`summarize` writes the search as a section of the report (``OUT/tuning/section.json``:
the trials' table, the parameters' importance and the history of the objective) and the
best configuration as a file ``learn.fit --config`` reads (``OUT/best_config.toml``).

The search space, per model (:func:`suggest`): learning rate (log-uniform), normalisation,
augmentation (whole maps or cuts, as the base configuration's padding allows), dropout, the
widths (pyramid: scale of the widths and hidden units; resnet: first stage's width;
study_cnn has fixed widths) and, with AdamW, the weight decay.

Examples
--------
::

    python -m learn.tune --data demo.h5 --out runs/tune --model pyramid --padding circular \\
        --augment flip rot90 --optimizer adamw --epochs 6 --patience 0 --trials 20
    python -m learn.fit --config runs/tune/best_config.toml --epochs 20 --out runs/best
    python -m learn.report runs/best runs/tune -o study.html
"""
from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

from turbsim.console import ArgumentParser, configure_logging

from . import config as lconfig
from .config import TrainConfig
from .rundir import RunError
from .sections import Figure, Section, Table, write_section
from .train import train_and_evaluate
from .transforms import DataError

log = logging.getLogger(__name__)

SPACE = ("learning_rate", "normalisation", "augment", "dropout", "widths", "weight_decay")
"""The dimensions of the search (each may be left out)."""
OBJECTIVES = ("loss", "metric")
TRIALS_DIR = "trials"
DB_NAME = "tune.db"
BEST_NAME = "best_config.toml"
SECTION = "tuning"
HEARTBEAT_S = 10
GRACE_S = 30
"""A running trial whose heartbeat is older than this [s] was killed: failed and run again."""
WHOLE_MAP_AUGMENTS = ("flip", "flip rot90")
CUT_AUGMENTS = ("flip quadrant", "flip quadrant rot90", "flip crop", "flip crop rot90")


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def suggest(trial, base: TrainConfig, space=SPACE) -> dict:
    """The TrainConfig fields a trial changes, by the model of the base configuration.

    Parameters
    ----------
    trial : optuna.trial.Trial
    base : TrainConfig
        The fixed configuration (model, task, data, padding...).
    space : sequence of str
        Dimensions searched (:data:`SPACE`).

    Returns
    -------
    dict
        ``{field: value}``; with circular padding the augmentations keep whole maps.
    """
    out = {}
    if "learning_rate" in space:
        out["learning_rate"] = trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
    if "normalisation" in space:
        out["normalisation"] = trial.suggest_categorical("normalisation", ["global", "per_image"])
    if "augment" in space:
        choices = WHOLE_MAP_AUGMENTS if base.padding == "circular" else WHOLE_MAP_AUGMENTS + CUT_AUGMENTS
        out["augment"] = tuple(trial.suggest_categorical("augment", list(choices)).split())
    if "dropout" in space:
        out["dropout"] = trial.suggest_float("dropout", 0.0, 0.3 if base.model == "pyramid" else 0.6)
    if "widths" in space:
        if base.model == "pyramid":
            scale = trial.suggest_categorical("width_scale", [0.5, 1.0, 2.0])
            out["pyramid_widths"] = tuple(max(1, int(round(w * scale))) for w in base.pyramid_widths)
            if base.pyramid_hidden:
                out["pyramid_hidden"] = trial.suggest_categorical("pyramid_hidden", [16, 32, 64, 128])
        elif base.model == "resnet":
            w0 = trial.suggest_categorical("resnet_width", [16, 32, 64])
            out["resnet_widths"] = tuple(w0 * 2 ** i for i in range(len(base.resnet_widths)))
    if "weight_decay" in space and base.optimizer == "adamw":
        out["weight_decay"] = trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True)
    return out


def storage_url(storage, out) -> str:
    """An optuna storage URL: ``sqlite:///FILE`` for a path (default ``OUT/tune.db``), URLs as given."""
    if storage is None:
        storage = Path(out) / DB_NAME
    s = str(storage)
    return s if "://" in s else f"sqlite:///{Path(s).resolve()}"


def open_study(url: str, name: str, direction: str, seed: int = 0):
    """The optuna study ``name`` in storage ``url`` (created, or loaded to resume or share).

    A new study's TPE sampler is seeded by ``seed``; a study that already holds trials gets
    a sampler seeded by ``seed``, its number of trials and the process id (a resumed search
    draws new points, two processes sharing a study draw different ones).

    The storage keeps a heartbeat of every running trial: a trial whose process was killed
    is failed after :data:`GRACE_S` seconds and run again once with its parameters.
    """
    import warnings

    optuna = _optuna()
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    with warnings.catch_warnings():  # the heartbeat and its retry are marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                             heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
    try:
        study = optuna.create_study(study_name=name, storage=storage, direction=direction, load_if_exists=True)
    except ValueError as exc:  # e.g. an existing study of the other direction
        raise ValueError(f"{url}: study {name!r}: {exc}") from None
    # a fresh study draws reproducibly from `seed`; a resumed or shared one must not replay
    # the draws of the session before it, so its sampler is seeded by what it finds and by
    # this process
    n = len(study.get_trials(deepcopy=False))
    study.sampler = optuna.samplers.TPESampler(
        seed=seed if n == 0 else int(np.random.SeedSequence([seed, n, os.getpid()]).generate_state(1)[0]))
    return study


def direction_of(task: str, objective: str) -> str:
    """``minimize`` a loss or an RMSE, ``maximize`` an accuracy."""
    return "maximize" if objective == "metric" and task == "classify" else "minimize"


def _finished(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def tune(base: TrainConfig, out, *, trials: int = 20, storage=None, study_name: str | None = None,
         objective: str = "loss", space=SPACE, prune: bool = True, progress: bool = False,
         on_trial_end=None):
    """Search hyper-parameters of a base configuration on the test split; resumable, shareable.

    Parameters
    ----------
    base : TrainConfig
        Fixed fields (the data file, model, task, epochs...); the trials change those of
        ``space`` (:func:`suggest`).
    out : path-like
        Folder of the search: ``trials/<number>/`` (one run directory per trial), the
        default SQLite storage ``tune.db``.
    trials : int
        Finished (complete or pruned) trials the study should hold, >= 1; a resumed or
        shared study runs only the missing ones.
    storage : str or path-like, optional
        Optuna storage URL, or an SQLite file path (default ``out/tune.db``).
    study_name : str, optional
        Default ``<model>-<task>-<objective>``.
    objective : {"loss", "metric"}
        The best test-split loss (minimised), or the test-split metric at the best epoch
        (accuracy maximised, RMSE of n minimised).
    space : sequence of str
        Searched dimensions, from :data:`SPACE`.
    prune : bool
        Stop unpromising trials early (optuna's median rule on the test-split loss per epoch).
    progress : bool
        Progress bars of the training.
    on_trial_end : callable, optional
        ``f(study, trial)`` after every finished trial (optuna's callback).

    Returns
    -------
    optuna.study.Study

    Raises
    ------
    ValueError
        ``trials`` < 1, an unknown objective or dimension, a live base configuration, or a
        storage holding a study of that name with the other direction.
    """
    if trials < 1:
        raise ValueError(f"trials = {trials} must be >= 1")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective = {objective!r} is not one of {', '.join(OBJECTIVES)}")
    unknown = sorted(set(space) - set(SPACE))
    if unknown:
        raise ValueError(f"unknown search dimension(s) {unknown}; choose from {', '.join(SPACE)}")
    if base.live or base.data is None:
        raise ValueError("learn.tune scores every trial on the test split of a data file: give --data, not --live")
    optuna = _optuna()
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = study_name or f"{base.model}-{base.task}-{objective}"
    study = open_study(storage_url(storage, out), name, direction_of(base.task, objective), seed=base.seed)
    study.set_user_attr("base_config", base.to_dict())

    def run_trial(trial):
        config = base.replace(**suggest(trial, base, space))
        # a retried trial (cut by a kill) carries its first run's directory: training resumes there
        workdir = Path(trial.user_attrs.get("run_dir") or out / TRIALS_DIR / f"{trial.number:04d}")
        trial.set_user_attr("config", config.to_dict())
        trial.set_user_attr("run_dir", str(workdir))

        def report(epoch, rec):
            if prune and rec.get("val_loss") is not None:
                trial.report(float(rec["val_loss"]), epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"epoch {epoch}: test-split loss {rec['val_loss']:.4g}")

        summary = train_and_evaluate(config, workdir, on_epoch_end=report, progress=progress)
        trial.set_user_attr("test_loss", summary["best_val_loss"])
        trial.set_user_attr("test_metric", summary["best_val_metric"])
        trial.set_user_attr("epochs_run", summary["epochs_run"])
        value = summary["best_val_loss"] if objective == "loss" else summary["best_val_metric"]
        if value is None or not np.isfinite(value):
            raise optuna.TrialPruned("no finite test-split score")
        return float(value)

    missing = trials - _finished(study)
    if missing > 0:
        callbacks = [MaxTrialsCallback(trials, states=(TrialState.COMPLETE, TrialState.PRUNED))]
        if on_trial_end is not None:
            callbacks.append(on_trial_end)
        study.optimize(run_trial, n_trials=missing, callbacks=callbacks, catch=(DataError,))
    else:
        log.info("%s: study %s already holds %d finished trials", out, name, _finished(study))
    return study


def best_config(study) -> TrainConfig:
    """The configuration of the study's best trial.

    Raises
    ------
    ValueError
        No trial has finished.
    """
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise ValueError(f"study {study.study_name!r} has no complete trial yet")
    return TrainConfig.from_dict(study.best_trial.user_attrs["config"])


def _importances(study) -> dict[str, float]:
    """Parameter importances (optuna's fANOVA); empty when they cannot be computed (too few trials)."""
    optuna = _optuna()
    try:
        return dict(optuna.importance.get_param_importances(study))
    except (ValueError, RuntimeError, ZeroDivisionError) as exc:
        log.info("parameter importances not computed: %s", exc)
        return {}


def _figures(study, imp: dict, folder: Path) -> list[Figure]:
    from optuna.trial import TrialState

    from .report_plots import png_bytes
    from turbsim.figures import new_figure

    figs = []
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    fig, (ax0, ax1) = new_figure(2, width=4.6, height=3.6)
    if imp:
        names = list(imp)[::-1]
        ax0.barh(names, [imp[k] for k in names])
        ax0.set_xlabel("importance (fANOVA, share of the objective's variance)")
    else:
        ax0.text(0.5, 0.5, "too few trials for importances", ha="center", va="center")
        ax0.set_axis_off()
    vals = [t.value for t in done]
    ax1.plot([t.number for t in done], vals, "o", ms=4, label="trials")
    best = np.minimum.accumulate(vals) if study.direction.name == "MINIMIZE" else np.maximum.accumulate(vals)
    ax1.plot([t.number for t in done], best, "-", label="best so far")
    ax1.set_xlabel("trial")
    ax1.set_ylabel("objective on the test split")
    ax1.legend(fontsize=8)
    path = folder / "tuning.png"
    from turbsim.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_bytes(png_bytes(fig))
    figs.append(Figure("tuning.png", "Left: importance of each hyper-parameter for the objective. Right: the "
                                     "objective of every complete trial and the best so far."))
    return figs


def summarize(study, out, *, best_file: str = BEST_NAME) -> tuple[Path, Path | None]:
    """Write the search's report section and the best configuration file.

    Parameters
    ----------
    study : optuna.study.Study
    out : path-like
        The search's folder: ``tuning/section.json`` (and its figure) and ``best_file``.
    best_file : str
        Name of the best configuration (``.toml`` or ``.json``), read by
        ``python -m learn.fit --config``.

    Returns
    -------
    (Path, Path or None)
        The section file, and the best configuration (None before any trial completed).
    """
    from optuna.trial import TrialState

    out = Path(out)
    trials = study.get_trials(deepcopy=False)
    states = {s.name: sum(t.state == s for t in trials) for s in TrialState}
    done = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value,
                  reverse=study.direction.name == "MAXIMIZE")
    params = sorted({k for t in done for k in t.params})
    rows = [[t.number, round(t.value, 5), t.user_attrs.get("test_metric"), t.user_attrs.get("epochs_run"),
             *[t.params.get(k) for k in params]] for t in done]
    imp = _importances(study)
    folder = out / SECTION
    folder.mkdir(parents=True, exist_ok=True)
    figures = _figures(study, imp, folder) if done else []
    base = study.user_attrs.get("base_config", {})
    metric = "accuracy" if base.get("task") == "classify" else "RMSE of n"
    best_path = None
    if done:
        best = done[0]
        cfg = TrainConfig.from_dict(best.user_attrs["config"])
        best_path = lconfig.write_config_file(
            out / best_file, cfg, header=f"best trial {best.number} of study {study.study_name!r}: objective "
                                         f"{best.value:.5g} on the test split\nwritten "
                                         f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}"
                                         f"\nuse: python -m learn.fit --config {best_file} --out RUN_DIR")
        top = ", ".join(f"{k} {v:.2f}" for k, v in list(imp.items())[:3])
        text = (f"Optuna searched {', '.join(params)} of {base.get('model')} ({base.get('task')}) over "
                f"{len(trials)} trials ({', '.join(f'{v} {k.lower()}' for k, v in states.items() if v)}), each "
                f"trained for up to {base.get('epochs')} epochs and scored on the test split only (the holdout "
                f"untouched). The best, trial {best.number}, reached {best.value:.4g} "
                f"({study.direction.name.lower()}d; {metric} {best.user_attrs.get('test_metric')}) with "
                + ", ".join(f"{k} = {v}" for k, v in best.params.items())
                + (f". Most important: {top}." if top else ". Too few trials to rank the parameters' importance.")
                + f" The best configuration is in {best_file} (python -m learn.fit --config {best_file}); its "
                "test-split score was chosen among many and is optimistic: score it on the holdout once.")
    else:
        text = f"No trial of study {study.study_name!r} has completed yet."
    tables = [Table(f"Complete trials, best first (objective: {study.direction.name.lower()}d on the test split)",
                    ["trial", "objective", f"test {metric}", "epochs", *params], rows)]
    if imp:
        tables.append(Table("Parameter importance (fANOVA)", ["parameter", "importance"],
                            [[k, round(v, 4)] for k, v in imp.items()]))
    sec = Section(f"Hyper-parameter search ({study.study_name})", text, figures, tables,
                  {"study": study.study_name, "direction": study.direction.name.lower(), "states": states,
                   "importance": imp, "best_config": best_path.name if best_path else None})
    return write_section(out, SECTION, sec), best_path


# --------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The command-line parser: the search's options, then every TrainConfig field (fixed values)."""
    p = ArgumentParser(
        prog="python -m learn.tune", short_usage="--data FILE --out DIR [options]",
        description="Search hyper-parameters with optuna (learning rate, normalisation, augmentation, dropout, "
                    "widths, weight decay) on the test split only; the holdout is never read. Trials are stored in "
                    "SQLite: rerun the same command to resume a killed search, or run it in several processes to "
                    "share one. Writes DIR/best_config.toml (python -m learn.fit --config) and a report section "
                    "DIR/tuning (python -m learn.report RUN_DIR DIR).")
    t = p.add_argument_group("search")
    t.add_argument("--out", required=True, metavar="DIR", help="folder of the search (trials' run directories)")
    t.add_argument("--trials", type=int, default=20, metavar="N", help="finished trials the study should hold")
    t.add_argument("--storage", metavar="URL_OR_FILE", help="optuna storage: an SQLite file or a URL "
                   "(default DIR/tune.db)")
    t.add_argument("--study-name", metavar="NAME", help="study name (default MODEL-TASK-OBJECTIVE)")
    t.add_argument("--objective", choices=OBJECTIVES, default="loss",
                   help="best test-split loss, or the test-split accuracy (RMSE for regression)")
    t.add_argument("--space", nargs="+", choices=SPACE, default=list(SPACE), help="dimensions to search")
    t.add_argument("--no-prune", action="store_true", help="train every trial to its last epoch")
    t.add_argument("--holdout", action="store_true", help=argparse.SUPPRESS)
    t.add_argument("--eval-splits", nargs="+", help=argparse.SUPPRESS)
    t.add_argument("--config", metavar="FILE", help="fixed TrainConfig fields from a TOML or JSON file; "
                   "options override it")
    p.add_output_options(t, verbose="log every trial")
    lconfig.add_arguments(p)
    return p


HOLDOUT_REFUSED = ("learn.tune scores the test split only and never reads the holdout split (a search that saw "
                   "it would leave no honest score); score the chosen configuration once, at the end, with "
                   "python -m learn.fit --config FILE --holdout or python -m learn.evaluate RUN_DIR --holdout")


def main(argv=None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 2 bad arguments or data)."""
    parser = build_parser()
    args = lconfig.parse_with_config_file(parser, argv)
    configure_logging(args.verbose)
    if args.holdout or (args.eval_splits and "holdout" in args.eval_splits):
        parser.error(HOLDOUT_REFUSED)
    if args.eval_splits:
        parser.error("learn.tune scores every trial on the test split; --eval-splits is not an option here")
    try:
        base = lconfig.config_from_args(args)
        study = tune(base, args.out, trials=args.trials, storage=args.storage, study_name=args.study_name,
                     objective=args.objective, space=args.space, prune=not args.no_prune,
                     progress=not args.no_progress)
        section, best = summarize(study, args.out)
    except (ValueError, DataError, RunError) as exc:
        parser.error(str(exc))
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    summary = {"study": study.study_name, "trials": len(study.trials), "complete": len(done),
               "best_value": study.best_value if done else None, "best_params": study.best_params if done else None,
               "best_config": str(best) if best else None, "section": str(section)}
    if args.json:
        print(json.dumps(summary))
    else:
        print("\n".join(f"{k}: {v}" for k, v in summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

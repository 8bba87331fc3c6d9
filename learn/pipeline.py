"""The whole fit of a study in one call: train, evaluate, fit the baselines, write the report.

:func:`fit` is what ``python -m learn.fit`` runs:
:func:`learn.train.train_and_evaluate` trains (resuming from ``workdir`` if it holds a run
of the same configuration), :func:`learn.evaluate.evaluate_run` scores the best checkpoint
on the asked splits of the run's ensemble and on any other data files,
:func:`learn.baselines.fit_baseline` fits the classical baselines on the network's own
images, and :func:`learn.report.write_report` writes ``report.html`` (the study report of
this one run). The returned :class:`FitResult` gives a JSON summary and a human-readable
one.

Besides the files of training and evaluation, the run directory keeps what the study
report needs: the per-image outputs of the network and of every baseline on every scored
set (``eval/<name>/predictions.npz``, ``baselines/<kind>/<name>.npz``:
:class:`learn.bootstrap.Outputs`, for the intervals over simulations and the ROC curves)
and the command lines that made the run (``commands.json``).
"""
from __future__ import annotations

import datetime
import json
import logging
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import baselines as lbase
from .bootstrap import Outputs, metrics_record, save_outputs
from .config import TrainConfig
from .data import check_file, load_split
from .evaluate import EVAL_DIR, evaluate_run, predictions, summary_lines
from .metrics import headline
from .report import REPORT_FILE, write_report
from .report_data import BASELINES_DIR, BASELINES_FILE, COMMANDS_FILE, PREDICTIONS_FILE
from .rundir import load_run, write_json
from .train import train_and_evaluate
from .transforms import DataError

log = logging.getLogger(__name__)

SPLITS = ("train", "test", "holdout")


@dataclass
class FitResult:
    """What a fit produced.

    Attributes
    ----------
    config : TrainConfig
    summary : dict
        The training summary (:func:`learn.train.train_and_evaluate`).
    results : dict
        Metrics per scored data set: the split names of the run's ensemble and the file
        names of other data (:func:`learn.evaluate.evaluate_run`).
    baselines : dict
        ``{kind: {split or file name: metrics}}`` (:func:`learn.baselines.run_baseline`)
        with the ``settings`` each was fitted with: those fitted now, those reused, and
        those of earlier fits of the run directory that were not asked for this time.
    report : Path
        The HTML report of the run (``report.html``; not written by ``fit(report=False)``).
    """

    config: TrainConfig
    summary: dict
    results: dict
    baselines: dict
    report: Path

    def to_json(self) -> dict:
        """The summary for scripts: training summary, report, headline metrics per data set and baseline."""
        return {"train": self.summary, "report": str(self.report),
                **{k: headline(v) for k, v in self.results.items()},
                **{f"baseline_{k}": {s: headline(m) for s, m in _scored(v).items()}
                   for k, v in self.baselines.items()}}

    def lines(self) -> list[str]:
        """The summary for people: training, readout, every scored data set, baselines, report."""
        s = self.summary
        out = [f"trained {self.config.model} ({s['n_params']} parameters) for {s['epochs_run']} epochs, "
               f"best epoch {s['best_epoch']}, {s['images_per_s']:.0f} images/s"]
        if "readout" in s:
            r = s["readout"]
            what = "per-simulation RMSE of n" if self.config.task == "regress" else "log loss"
            key = "per_sim_rmse" if self.config.task == "regress" else "score"
            out.append(f"readout refitted in closed form (penalty {r['penalty']:.3g}): test-split {what} "
                       f"{r['val_' + key]:.4f}, trained head {r['head_val_' + key]:.4f}")
        for name, m in self.results.items():
            out += ["", f"== {name} ==", *summary_lines(m)]
        for kind, res in self.baselines.items():
            for split, m in _scored(res).items():
                out += ["", f"== baseline {kind} ({split}) == " + ", ".join(
                    f"{k} {v:.4f}" for k, v in headline(m).items())]
        return out + ["", f"report: {self.report}"]


def load_baselines(workdir) -> dict:
    """The baselines stored in a run directory (``baselines.json``; empty if none).

    Returns
    -------
    dict
        ``{kind: result}`` (:func:`learn.baselines.run_baseline`), each with the
        ``settings`` it was fitted with.
    """
    p = Path(workdir) / BASELINES_FILE
    return json.loads(p.read_text()) if p.is_file() else {}


def _scored(res: dict) -> dict:
    """The metrics records of a baseline result (``{split or file name: metrics}``)."""
    return {k: m for k, m in res.items() if isinstance(m, dict) and "mode" in m}


def scored_name(data, split: str = "test") -> str:
    """The name of a scored set, as :func:`learn.evaluate.evaluate_run` names its folder.

    ``data`` None: the run's own ensemble, named by the split; a RAMSES ``.npz`` file by its
    stem; another ensemble by ``<stem>_<split>``.
    """
    if data is None:
        return split
    p = Path(data)
    return p.stem if p.suffix == ".npz" else f"{p.stem}_{split}"


def record_command(workdir, command) -> None:
    """Append a command line and the date to ``workdir/commands.json`` (atomic).

    Parameters
    ----------
    workdir : path-like
        The run directory (created).
    command : sequence of str
        The command's words, e.g. ``["python", "-m", "learn.fit", "--data", ...]``.
    """
    path = Path(workdir) / COMMANDS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    old = load_commands(workdir)
    entry = {"command": shlex.join(str(c) for c in command),
             "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    write_json(path, old + [entry])


def load_commands(workdir) -> list[dict]:
    """The command lines recorded in a run directory (``[{"command", "date"}]``; empty if none)."""
    p = Path(workdir) / COMMANDS_FILE
    return json.loads(p.read_text()) if p.is_file() else []


def network_outputs(run, mapset) -> Outputs:
    """A trained run's per-image outputs on a set of maps, with the truths.

    Parameters
    ----------
    run : learn.rundir.Run
    mapset : learn.data.MapSet
        Maps [g/cm^2] and labels.

    Returns
    -------
    learn.bootstrap.Outputs
        P(Burgers) and the logit margin, or the predicted ``n``.
    """
    pred = predictions(run, mapset.maps, batch_size=run.config.eval_batch_size)
    kw = ({"p": pred["p_burgers"], "margin": pred["margin"]} if run.config.task == "classify"
          else {"n_pred": pred["n_pred"]})
    return Outputs(pred["sim_index"], np.asarray(mapset.labels["klass"]), np.asarray(mapset.labels["n"]), **kw)


def _scored_sets(config: TrainConfig, splits, eval_data) -> list[tuple[str, str, str]]:
    """``(name, path, split)`` of every set a fit scores."""
    own = [(scored_name(None, s), config.data, s) for s in splits] if config.data else []
    return own + [(scored_name(f), f, "test") for f in eval_data]


def fit_baselines(workdir, run, kinds, sets, *, allow_holdout: bool, n_bins: int, settings: dict,
                  progress: bool = False) -> dict:
    """Fit baselines on the network's own images and score them on every set; keep their outputs.

    Each baseline is fitted on the train split's images as the network sees them (its
    normaliser, image size, quadrants or whole maps: :func:`learn.baselines.fit_baseline`),
    and its per-image outputs on each scored set are written to
    ``workdir/baselines/<kind>/<name>.npz``.

    Parameters
    ----------
    workdir : path-like
    run : learn.rundir.Run
    kinds : sequence of {"spectrum", "stats", "hog"}
    sets : sequence of (name, path, split)
        The scored sets.
    allow_holdout : bool
    n_bins : int
        Spectrum bins.
    settings : dict
        Stored with each result (a later fit with equal settings reuses it).
    progress : bool

    Returns
    -------
    dict
        ``{kind: {"kind", "normalisation", "n_train_images", "images", "n_bins", name: metrics,
        "settings"}}``.
    """
    if not kinds:
        return {}
    train = load_split(run.config.data, "train")
    out = {}
    for kind in kinds:
        fitted = lbase.fit_baseline(kind, train, task=run.config.task, normaliser=run.normaliser,
                                    image_size=run.image_size, full_maps=run.full_maps, n_bins=n_bins,
                                    progress=progress)
        res = {"kind": kind, "normalisation": run.normaliser.kind, "n_train_images": fitted.n_train_images,
               "images": "full maps" if run.full_maps else "quadrants", "n_bins": n_bins}
        for name, path, split in sets:
            ms = load_split(path, split, allow_holdout=allow_holdout)
            o = fitted.outputs(ms, progress=progress)
            kw = {"p": o["score"]} if run.config.task == "classify" else {"n_pred": o["n_pred"]}
            outputs = Outputs(o["sim_index"], o["klass"], o["n_true"], **kw)
            save_outputs(Path(workdir) / BASELINES_DIR / kind / f"{name}.npz", outputs)
            res[name] = metrics_record(outputs, ms.source)
            log.info("baseline %s on %s: %s", kind, name, headline(res[name]))
        out[kind] = {**res, "settings": settings}
    return out


def _baseline_files_exist(workdir: Path, kind: str, sets) -> bool:
    return all((workdir / BASELINES_DIR / kind / f"{name}.npz").is_file() for name, _, _ in sets)


def fit(config: TrainConfig, workdir, *, splits=("test",), allow_holdout: bool = False, eval_data=(),
        baselines=(), baseline_bins: int = 10, progress: bool = True, command=None, report: bool = True
        ) -> FitResult:
    """Train a run, score it, fit the baselines and write the report.

    Parameters
    ----------
    config : TrainConfig
    workdir : path-like
        Run directory (created; reused to resume).
    splits : sequence of {"train", "test", "holdout"}
        Splits of ``config.data`` to score after training (none for a live run without data).
    allow_holdout : bool
        Allow the locked holdout split (final evaluation only); needed to score it.
    eval_data : sequence of path-like
        Other data to score the run and the baselines on: ensembles (.h5, their test split)
        or RAMSES map files (.npz).
    baselines : sequence of {"spectrum", "stats", "hog"}
        Classical baselines to fit on the network's own images and score on the same sets
        (:func:`fit_baselines`). A baseline already stored in ``workdir``
        (``baselines.json`` and its outputs) with the same data, splits and settings is
        reused; stored baselines not asked for stay in the report.
    baseline_bins : int
        Logarithmic wavenumber bins of the baselines' power spectrum, >= 1.
    progress : bool
        Progress bars (a terminal bar, or plain lines when redirected).
    command : sequence of str, optional
        The command line that asked for this fit, recorded in ``commands.json`` for the
        report.
    report : bool
        Write ``report.html`` (the study report of this run); a caller that writes one
        report of several runs (:mod:`learn.study`) passes False.

    Returns
    -------
    FitResult

    Raises
    ------
    learn.transforms.DataError, learn.rundir.RunError, ValueError
        A missing data file, the holdout without ``allow_holdout``, an unknown split,
        baselines without a data file, bad data, or a run directory of another
        configuration; all but the last two before any training.
    """
    splits = tuple(dict.fromkeys(splits))
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown split(s) {unknown}; choose from {', '.join(SPLITS)}")
    if "holdout" in splits and not allow_holdout:
        raise DataError("evaluating the holdout split needs --holdout (allow_holdout=True; final evaluation only)")
    if baseline_bins < 1:
        raise ValueError(f"baseline_bins must be >= 1, got {baseline_bins}")
    if baselines and config.data is None:
        raise ValueError("the baselines are fitted on the train split of a data file: give one (--data)")
    for f in ([config.data] if config.data else []) + list(eval_data):
        check_file(f)
    workdir = Path(workdir)
    summary = train_and_evaluate(config, workdir, progress=progress)
    if command is not None:
        record_command(workdir, command)
    run = load_run(workdir)
    sets = _scored_sets(config, splits, eval_data)
    results = {}
    for name, path, split in sets:
        own = path == config.data
        results[split if own else Path(path).name] = evaluate_run(
            workdir, None if own else path, split=split, allow_holdout=allow_holdout, name=name, run=run,
            progress=progress)
        save_outputs(workdir / EVAL_DIR / name / PREDICTIONS_FILE,
                     network_outputs(run, load_split(path, split, allow_holdout=allow_holdout)))
    settings = {"data": str(Path(config.data).resolve()) if config.data else None, "task": config.task,
                "normalisation": config.normalisation, "splits": list(splits),
                "others": [str(Path(f).resolve()) for f in eval_data], "n_bins": baseline_bins,
                "full_maps": run.full_maps}
    stored = load_baselines(workdir)
    base = dict(stored)  # kinds not asked for this time stay in the report
    todo = []
    for kind in baselines:
        if stored.get(kind, {}).get("settings") == settings and _baseline_files_exist(workdir, kind, sets):
            log.info("%s: baseline %s reused from %s (same data, splits and settings)", workdir, kind, BASELINES_FILE)
        else:
            todo.append(kind)
    base.update(fit_baselines(workdir, run, todo, sets, allow_holdout=allow_holdout, n_bins=baseline_bins,
                              settings=settings, progress=progress))
    if base != stored:
        write_json(workdir / BASELINES_FILE, base)
    page = workdir / REPORT_FILE
    if report:
        write_report(workdir)
        log.info("%s: report written", page)
    return FitResult(config, summary, results, base, page)

"""The whole fit of a study in one call: train, evaluate, fit the baselines, write the report.

:func:`fit` is what ``python -m learn.fit`` runs:
:func:`learn.train.train_and_evaluate` trains (resuming from ``workdir`` if it holds a run
of the same configuration), :func:`learn.evaluate.evaluate_run` scores the best checkpoint
on the asked splits of the run's ensemble and on any other data files,
:func:`learn.baselines.run_baseline` fits the classical baselines on the same images, and
:func:`learn.report.write_report` writes ``report.html``. The returned :class:`FitResult`
gives a JSON summary and a human-readable one.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from . import baselines as lbase
from .config import TrainConfig
from .data import check_file
from .evaluate import evaluate_run, summary_lines
from .metrics import headline
from .report import write_report
from .rundir import load_run, write_json
from .train import train_and_evaluate
from .transforms import DataError

log = logging.getLogger(__name__)

BASELINES_FILE = "baselines.json"
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
        The HTML report.
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


def fit(config: TrainConfig, workdir, *, splits=("test",), allow_holdout: bool = False, eval_data=(),
        baselines=(), baseline_bins: int = 10, progress: bool = True) -> FitResult:
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
        Classical baselines to fit on the same images and splits (:mod:`learn.baselines`).
        A baseline already stored in ``workdir`` (``baselines.json``) with the same data,
        splits and settings is reused; stored baselines not asked for stay in the report.
    baseline_bins : int
        Logarithmic wavenumber bins of the baselines' power spectrum, >= 1.
    progress : bool
        Progress bars (a terminal bar, or plain lines when redirected).

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
    run = load_run(workdir)
    results = {}
    for split in splits if config.data else ():
        results[split] = evaluate_run(workdir, split=split, allow_holdout=allow_holdout, run=run, progress=progress)
    for f in eval_data:
        results[Path(f).name] = evaluate_run(workdir, f, run=run, progress=progress)
    settings = {"data": str(Path(config.data).resolve()) if config.data else None, "task": config.task,
                "normalisation": config.normalisation, "splits": list(splits),
                "others": [str(Path(f).resolve()) for f in eval_data], "n_bins": baseline_bins,
                "full_maps": not {"quadrant", "crop"} & set(config.augment)}
    stored = load_baselines(workdir)
    base = dict(stored)  # kinds not asked for this time stay in the report
    for kind in baselines:
        if stored.get(kind, {}).get("settings") == settings:
            log.info("%s: baseline %s reused from %s (same data, splits and settings)", workdir, kind, BASELINES_FILE)
            continue
        base[kind] = {**lbase.run_baseline(kind, config.data, task=config.task, normalisation=config.normalisation,
                                           splits=splits, allow_holdout=allow_holdout, others=eval_data,
                                           n_bins=baseline_bins, full_maps=settings["full_maps"],
                                           progress=progress),
                      "settings": settings}
    if base != stored:
        write_json(workdir / BASELINES_FILE, base)
    report = write_report(workdir, baselines=base)
    log.info("%s: report written", report)
    return FitResult(config, summary, results, base, report)

"""What the study report reads: the runs' files, their per-image outputs and intervals, the ensemble.

:func:`load_run_data` gathers what one run directory holds for :mod:`learn.report` (its
configuration, training summary and history, command lines, every scored set of the network
and of each baseline with the per-image outputs behind it, its sections);
:func:`add_intervals` bootstraps the scores (:mod:`learn.bootstrap`); :func:`ensemble_facts`
and :func:`class_maps` read the ensemble (never a holdout map); :func:`generate_command`
writes an equivalent ``turbsim.generate`` command.
"""
from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import bootstrap as bs
from .evaluate import EVAL_DIR, METRICS_FILE
from .rundir import HISTORY_FILE, RUN_FILE, SUMMARY_FILE
from .sections import SectionError, read_sections

log = logging.getLogger(__name__)

BASELINES_FILE = "baselines.json"
BASELINES_DIR = "baselines"
"""Folder of the baselines' per-image outputs: ``baselines/<kind>/<scored set>.npz``."""
PREDICTIONS_FILE = "predictions.npz"
"""The network's per-image outputs on a scored set, in ``eval/<name>/``."""
COMMANDS_FILE = "commands.json"
"""The command lines that made a run (:func:`learn.pipeline.record_command`)."""
N_BOOT = 1000
MAX_SPECTRUM_MAPS = 150
"""Maps per class in the mean power spectra (the first simulations of the train split)."""


class ReportError(ValueError):
    """A folder cannot be reported (names it and the problem)."""


# --------------------------------------------------------------------------------------
# what the runs hold
# --------------------------------------------------------------------------------------
@dataclass
class Scored:
    """One method's scores on one scored set."""

    metrics: dict
    outputs: bs.Outputs | None = None
    boot: dict | None = None


@dataclass
class Method:
    """A network or a baseline, with its scores on every scored set.

    Attributes
    ----------
    name : str
        Shown in tables and legends.
    kind : {"network", "baseline"}
    run : str
        The run directory's name.
    images : str
        What it reads ("whole maps, 64 px", "quadrants, 32 px").
    scored : dict
        ``{set name: Scored}``.
    """

    name: str
    kind: str
    run: str
    images: str
    scored: dict = field(default_factory=dict)


@dataclass
class RunData:
    """What a run directory holds for the report."""

    path: Path
    info: dict
    summary: dict
    history: list
    commands: list
    methods: list
    sections: dict

    @property
    def config(self) -> dict:
        return self.info["config"]

    @property
    def name(self) -> str:
        return self.path.name


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: cannot read ({exc})") from None


def _history(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            rows.append({k: (None if v in ("", "None") else float(v)) for k, v in r.items()})
    return rows


def _set_name(key: str) -> str:
    """A baseline result's key as a scored-set name (older runs keyed other files by their name)."""
    p = Path(key)
    return p.stem if p.suffix == ".npz" else f"{p.stem}_test" if p.suffix == ".h5" else key


def _load_outputs(path: Path) -> bs.Outputs | None:
    if not path.is_file():
        return None
    try:
        return bs.load_outputs(path)
    except ValueError as exc:
        log.warning("%s", exc)
        return None


def images_label(info: dict) -> str:
    size = info.get("image_size")
    return f"whole maps, {size} px" if info.get("full_maps") else f"quadrants, {size} px"


def load_run_data(run_dir) -> RunData:
    """Everything the report shows of one run directory.

    Raises
    ------
    ReportError
        Not a run directory, or an unreadable file (named).
    """
    run_dir = Path(run_dir)
    if not (run_dir / RUN_FILE).is_file():
        raise ReportError(f"{run_dir}: not a run directory (no {RUN_FILE})")
    info = _read_json(run_dir / RUN_FILE)
    summary = _read_json(run_dir / SUMMARY_FILE) if (run_dir / SUMMARY_FILE).is_file() else {}
    commands = _read_json(run_dir / COMMANDS_FILE) if (run_dir / COMMANDS_FILE).is_file() else []
    cfg = info["config"]
    net = Method(cfg["model"] if run_dir.name == cfg["model"] else f"{cfg['model']} ({run_dir.name})", "network",
                 run_dir.name, images_label(info))
    for p in sorted((run_dir / EVAL_DIR).glob(f"*/{METRICS_FILE}")):
        net.scored[p.parent.name] = Scored(_read_json(p), _load_outputs(p.parent / PREDICTIONS_FILE))
    methods = [net]
    base = _read_json(run_dir / BASELINES_FILE) if (run_dir / BASELINES_FILE).is_file() else {}
    for kind, res in base.items():
        images = res.get("images", "?")
        m = Method(f"{kind} baseline ({images})", "baseline", run_dir.name, images)
        for key, metrics in res.items():
            if isinstance(metrics, dict) and "mode" in metrics:
                name = _set_name(key)
                m.scored[name] = Scored(metrics, _load_outputs(run_dir / BASELINES_DIR / kind / f"{name}.npz"))
        methods.append(m)
    try:
        sections = read_sections(run_dir)
    except SectionError as exc:
        log.warning("%s: sections skipped (%s)", run_dir, exc)
        sections = {}
    return RunData(run_dir, info, summary, _history(run_dir / HISTORY_FILE), commands, methods, sections)


def unique_names(runs: list[RunData]) -> None:
    """Name methods that would read alike by their run too (in place)."""
    methods = [m for r in runs for m in r.methods]
    names = [m.name for m in methods]
    for m in methods:
        if names.count(m.name) > 1:
            m.name = f"{m.name[:-1]}, {m.run})" if m.name.endswith(")") else f"{m.name} ({m.run})"


def add_intervals(runs: list[RunData], *, n_boot: int = N_BOOT, seed: int = 0) -> None:
    """Bootstrap every scored set that has per-image outputs and labels (in place)."""
    for r in runs:
        for m in r.methods:
            for sc in m.scored.values():
                o = sc.outputs
                if o is not None and sc.metrics.get("mode") in ("classify", "regress") and (
                        o.task == "regress" or o.labelled):
                    sc.boot = bs.bootstrap_scores(o, n_boot=n_boot, seed=seed)


# --------------------------------------------------------------------------------------
# the ensemble
# --------------------------------------------------------------------------------------
def ensemble_facts(path) -> dict | None:
    """Facts of an ensemble file for the report (no holdout map is read).

    Returns
    -------
    dict or None
        ``config`` (the ensemble configuration), ``counts`` ``{split: {class: sims}}``,
        ``class_names``, ``sim_core_s`` (the simulations' summed wall time [s]),
        ``time_myr``, ``box_pc``, ``cells``, ``preset``, ``version``; None when the file
        cannot be read (a RAMSES map file, a moved file).
    """
    from turbsim.dataset import open_ensemble

    if path is None or Path(path).suffix != ".h5" or not Path(path).is_file():
        return None
    try:
        with open_ensemble(path) as ens:
            cfg = json.loads(ens.attrs.get("ensemble_config", "{}"))
            st = ens.stats()
            return {"config": cfg, "counts": ens.split_counts(), "class_names": list(ens.class_names),
                    "sim_core_s": float(np.sum(st["wall_time"])), "time_myr": float(np.median(st["time_myr"])),
                    "box_pc": float(cfg.get("sim", {}).get("box", 10.0)),
                    "cells": int(cfg.get("sim", {}).get("cells", 0)),
                    "preset": str(ens.attrs.get("preset", "")), "version": str(ens.attrs.get("turbsim_version", "")),
                    "path": str(path), "map_size": ens.map_size}
    except Exception as exc:  # noqa: BLE001 (the page says the file could not be read)
        log.warning("%s: ensemble facts not read (%s)", path, exc)
        return None


def generate_command(cfg: dict, path) -> str:
    """A ``python -m turbsim.generate`` command that makes an ensemble of this configuration.

    Fields that differ from the configuration's preset become options.

    Examples
    --------
    >>> from turbsim.ensemble_plan import PRESETS
    >>> cfg = PRESETS["demo"].override(sims=30, cells=32).to_dict()
    >>> generate_command(cfg, "d.h5")
    'python -m turbsim.generate demo -o d.h5 --sims 30 --cells 32'
    """
    from turbsim.ensemble_plan import PRESETS

    preset = cfg.get("preset", "custom")
    start = preset if preset in PRESETS else "demo"  # the command line starts from a preset
    base = PRESETS[start].to_dict()
    words = ["python -m turbsim.generate", start, "-o", str(path)]

    def opt(name, value, default):
        if value != default:
            vals = value if isinstance(value, list) else [value]
            words.append(f"--{name.replace('_', '-')} " + " ".join(
                str(v).lower() if isinstance(v, bool) else f"{v:g}" if isinstance(v, float) else str(v)
                for v in vals))

    for k in ("sims", "seed", "labels", "class_n", "class_names", "n_range", "splits", "name"):
        if k in cfg and not (k == "name" and cfg[k] in (preset, start)):
            opt(k, cfg[k], base.get(k))
    for k, v in cfg.get("sim", {}).items():
        if k not in ("n", "seed"):
            opt(k, v, base.get("sim", {}).get(k))
    return " ".join(words)


def class_maps(facts: dict, limit: int = MAX_SPECTRUM_MAPS) -> list[tuple[str, float, np.ndarray]]:
    """``(label, n, log10 Σ maps (M, N, N))`` per class of the train split (bands of n for a sweep)."""
    from turbsim import observe
    from turbsim.dataset import open_ensemble

    out = []
    with open_ensemble(facts["path"]) as ens:
        rows = ens.indices("train")
        lab = ens.labels(rows)
        klass, n = np.asarray(lab["klass"]), np.asarray(lab["n"])
        if np.all(klass >= 0):
            groups = [(facts["class_names"][k], rows[klass == k]) for k in sorted(set(klass.tolist()))]
        else:  # a sweep: the lowest, middle and highest thirds of n
            edges = np.quantile(n, [0, 1 / 3, 2 / 3, 1])
            groups = [(f"n in [{a:.2f}, {b:.2f}]", rows[(n >= a) & (n <= b)]) for a, b in zip(edges[:-1], edges[1:])]
        for label, r in groups:
            r = r[: max(1, limit // 3)]
            maps = observe.log_column(ens.projections(r)).reshape(-1, ens.map_size, ens.map_size)
            out.append((label, float(np.median(ens.labels(r)["n"])), maps))
    return out

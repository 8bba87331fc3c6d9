"""Data for learning: maps and labels of an ensemble or a RAMSES map file, and training data.

:func:`load_split` reads the maps of one split whole (for evaluation), from a turbsim
ensemble (``.h5``) or a RAMSES map file (``.npz``); :func:`open_train_data` and
:func:`live_train_data` gather what training needs (:class:`TrainData`): a
:class:`~learn.sources.Source` of training maps (held in memory when they fit
``memory_budget_mb``, else read chunk by chunk from the file; or live simulations), the
validation maps, the normaliser and the target scaling (:mod:`learn.transforms`).

The names of :mod:`learn.transforms` and :mod:`learn.sources` that this module held
before they moved are still importable from here for one release.
"""
from __future__ import annotations

import logging
import math
import os
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from turbsim import dataset, observe

from .sources import DEFAULT_CHUNK_SIMS, HDF5Source, InMemorySource, LiveSource, Source
from .transforms import (CLASS_NAMES, DataError, Normaliser, TargetScaler, check_maps, fit_normaliser,
                         fit_target_scaler, input_size, lowpass_maps, resample_maps, targets)

# Moved to learn.transforms and learn.sources; importable from here until the next release.
from .sources import (MapChunk, calls_per_epoch, epoch_batches, epoch_chunks, epoch_rng,  # noqa: E402,F401
                      images_per_epoch, prefetch)
from .transforms import (AUGMENTATIONS, IMAGES_PER_SIM, NORMALISATIONS, STUDY_AUGMENT,  # noqa: E402,F401
                         check_augment, cut_images, eval_images, eval_set, image_specs, resample_maps)

log = logging.getLogger(__name__)


@dataclass
class MapSet:
    """Maps and labels of some simulations, read whole (for evaluation).

    Attributes
    ----------
    maps : ndarray, float32, shape (k, 3, N, N)
        Column density [g/cm^2].
    labels : dict
        ``n`` (float64), ``klass`` (int, -1 none), ``sim_id`` (int64) per simulation.
    source : str
        Description (file and split) for messages.
    """

    maps: np.ndarray
    labels: dict[str, np.ndarray]
    source: str


def check_file(path) -> Path:
    """The path of an existing data file, or :class:`~learn.transforms.DataError` naming it."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such data file")
    return p


LABELS = ("n", "klass", "split", "sim_id", "seed")
"""The per-simulation labels of an ensemble (``/labels/<name>``), as :meth:`Ensemble.labels` reads them."""
NPZ_LAYOUT = "columns (S, 3, N, N) g/cm^2, n (S,) and optionally klass (S,) (names or 0/1)"


def _missing_objects(p: Path) -> list[str]:
    """The HDF5 objects of the ensemble layout that a file lacks (empty if it cannot be opened)."""
    import h5py

    need = ["t0_fields/column_density", "labels"] + [f"labels/{k}" for k in LABELS]
    try:
        with h5py.File(p, "r") as f:
            return [name for name in need if name not in f]
    except OSError:
        return []


def _layout_error(p: Path, exc: Exception) -> DataError:
    """A one-line DataError for a file the dataset reader refused, naming what it lacks."""
    missing = _missing_objects(p)
    if "labels" in missing:
        return DataError(f"{p}: no /labels group: not a complete turbsim ensemble (it holds the labels "
                         f"{', '.join(LABELS)} of every simulation)")
    if missing:
        return DataError(f"{p}: not a complete turbsim ensemble: no {', '.join('/' + m for m in missing)}")
    return DataError(str(exc).splitlines()[0] if str(exc) else f"{p}: not a turbsim ensemble")


@contextmanager
def open_ensemble(path, **kw) -> Iterator[dataset.Ensemble]:
    """:func:`turbsim.dataset.open_ensemble` whose layout errors are one-line DataErrors.

    A missing group or label (``/labels``, ``/labels/n``...) is named as such; the holdout
    lock (:class:`turbsim.dataset.HoldoutError`) is left to the caller.
    """
    p = Path(path)
    try:
        ens = dataset.open_ensemble(p, **kw)
    except dataset.LayoutError as exc:
        raise _layout_error(p, exc) from None
    try:
        yield ens
    except dataset.LayoutError as exc:
        raise _layout_error(p, exc) from None
    finally:
        ens.close()


def read_labels(ens: dataset.Ensemble, rows: np.ndarray, source: str) -> dict[str, np.ndarray]:
    """``n``, ``klass`` and ``sim_id`` of some rows of an ensemble.

    Raises
    ------
    DataError
        A label data set is missing (named, with the file and split ``source``).
    """
    try:
        lab = ens.labels(rows)
    except (KeyError, dataset.LayoutError):
        missing = [m for m in _missing_objects(ens.path) if m.startswith("labels/")]
        raise DataError(f"{source}: no {', '.join('/' + m for m in missing) or '/labels data set'} in the file "
                        f"(every turbsim ensemble holds the labels {', '.join(LABELS)})") from None
    return {k: lab[k] for k in ("n", "klass", "sim_id")}


def _npz_classes(p: Path, raw: np.ndarray | None, n_sims: int) -> np.ndarray:
    """Class indices (0, 1, or -1 for none) of a map file's ``klass`` array: names or integers.

    Integers must be 0, 1 or -1; names other than :data:`~learn.transforms.CLASS_NAMES`
    (and the empty name) are said in a warning, not silently dropped.
    """
    if raw is None:
        return np.full(n_sims, -1, np.int8)
    raw = np.asarray(raw).reshape(-1)
    if len(raw) != n_sims:
        raise DataError(f"{p}: klass has {len(raw)} entries for {n_sims} simulations")
    if raw.dtype.kind in "iub":
        bad = sorted(set(raw.astype(np.int64).tolist()) - {-1, 0, 1})
        if bad:
            raise DataError(f"{p}: integer klass values must be 0 ({CLASS_NAMES[0]}), 1 ({CLASS_NAMES[1]}) "
                            f"or -1 (none), got {bad}")
        return raw.astype(np.int8)
    if raw.dtype.kind not in "USO":
        raise DataError(f"{p}: klass must hold class names or integers 0/1, got dtype {raw.dtype}")
    names = [s.decode() if isinstance(s, bytes) else str(s) for s in raw]
    unknown = sorted(set(names) - set(CLASS_NAMES) - {""})
    if unknown:
        log.warning("%s: klass names %s are not %s or %s: those simulations have no class and are not "
                    "scored by accuracy", p, unknown, *CLASS_NAMES)
    return np.array([CLASS_NAMES.index(s) if s in CLASS_NAMES else -1 for s in names], np.int8)


def load_npz_maps(path) -> MapSet:
    """Maps of a RAMSES map file (:data:`NPZ_LAYOUT`).

    ``klass`` holds class names (``kolmogorov``/``burgers`` become 0/1, any other name
    -1 with a warning) or the class indices themselves (0, 1, -1 for none).

    Raises
    ------
    DataError
        Not an ``.npz`` (zip) archive, unreadable, missing arrays, wrong shapes, bad class
        labels, or maps that are not finite and positive (the simulation is named).
    """
    p = check_file(path)
    if not zipfile.is_zipfile(p):
        raise DataError(f"{p}: not a numpy .npz archive (not a zip file); a map file holds {NPZ_LAYOUT}")
    try:
        with np.load(p, allow_pickle=False) as d:
            missing = [k for k in ("columns", "n") if k not in d.files]
            if missing:
                raise DataError(f"{p}: map file lacks array(s) {missing} (expected {NPZ_LAYOUT})")
            cols = np.asarray(d["columns"], np.float32)
            n = np.asarray(d["n"], np.float64).reshape(-1)
            raw = d["klass"] if "klass" in d.files else None
    except DataError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{p}: cannot read as a numpy .npz map file ({first})") from None
    if cols.ndim != 4 or cols.shape[1] != 3 or cols.shape[2] != cols.shape[3] or len(n) != len(cols):
        raise DataError(f"{p}: columns must be (S, 3, N, N) with one n per row, got {cols.shape} and {n.shape}")
    sim_id = np.arange(len(n), dtype=np.int64)
    check_maps(cols, sim_id, f"{p}")
    klass = _npz_classes(p, raw, len(n))
    return MapSet(cols, {"n": n, "klass": klass, "sim_id": sim_id}, f"{p} (all)")


def load_split(path, split: str, *, allow_holdout: bool = False) -> MapSet:
    """Maps and labels of one split of an ensemble file, or of a RAMSES ``.npz`` map file.

    Parameters
    ----------
    path : path-like
        ``.h5`` turbsim ensemble or ``.npz`` map file (which has no splits: every
        simulation is returned whatever ``split``).
    split : {"train", "test", "holdout"}
    allow_holdout : bool
        Needed to read the holdout split.

    Raises
    ------
    DataError
        Missing file, bad layout or missing labels, empty split, maps that are not finite
        and positive (the simulation is named), or holdout without ``allow_holdout``.
    """
    p = check_file(path)
    if p.suffix == ".npz":
        return load_npz_maps(p)
    source = f"{p} ({split})"
    try:
        with open_ensemble(p) as ens:
            rows = ens.indices(split, allow_holdout=allow_holdout)
            if rows.size == 0:
                raise DataError(f"{p}: the {split} split is empty")
            labels = read_labels(ens, rows, source)
            maps = ens.projections(rows)
    except dataset.HoldoutError:
        raise DataError(f"{p}: the holdout split is locked; pass --holdout (allow_holdout=True) "
                        "only for the final evaluation") from None
    check_maps(maps, labels["sim_id"], source)
    return MapSet(maps, labels, source)


@dataclass
class TrainData:
    """Everything training needs from the data: sources, validation set, scalings.

    Attributes
    ----------
    source : learn.sources.Source
    n_train : int
        Training simulations per epoch.
    map_size, image_size : int
        Map side and model input side [pixels].
    normaliser : Normaliser
    scaler : TargetScaler or None
        Regression target scaling.
    val : MapSet or None
        Validation maps (the test split), if any.
    description : dict
        What was loaded (for the run's metadata).
    """

    source: Source
    n_train: int
    map_size: int
    image_size: int
    normaliser: Normaliser
    scaler: TargetScaler | None
    val: MapSet | None
    description: dict


def warn_few_values(n: np.ndarray, source: str) -> bool:
    """Warn (``logging.warning``) when regression targets take only one or two values.

    Such a train split is a two-class ensemble: regression then learns to tell two
    values apart, which classification does directly. Returns whether it warned.
    """
    values = np.unique(np.asarray(n, np.float64))
    if len(values) > 2:
        return False
    log.warning("%s: regression of n, but n takes only %d value(s) (%s): a two-class ensemble; "
                "--task classify learns the classes", source, len(values), ", ".join(f"{v:.4g}" for v in values))
    return True


def _nbytes_maps(n_sims: int, map_size: int) -> int:
    return n_sims * 3 * map_size * map_size * 4


def _normaliser_sample(sample: np.ndarray, kind: str, lowpass_k: float | None = None) -> Normaliser:
    norm = fit_normaliser(kind, sample) if kind == "global" else Normaliser("per_image")
    return norm if lowpass_k is None else Normaliser(norm.kind, norm.mean, norm.std, lowpass_k)


MERGED_ATTR = "merged_from"
"""Attribute of a merged ensemble (:func:`merge_ensembles`): JSON list of its sources."""
LOWPASS_ATTR = "lowpass_k"
"""Attribute of a merged ensemble: the low-pass wavenumber its maps were cut at (absent: none)."""


def merge_ensembles(paths, out, *, map_size: int | None = None, lowpass_k: float | None = None) -> Path:
    """One ensemble file of several (mixed resolutions), every map brought to one size.

    Each file's maps (all splits; the holdout stays locked in the result, rows keep their
    split) are resampled to ``map_size`` [pixels] (:func:`learn.transforms.resample_maps`:
    block means for an integer reduction, band-limited Fourier interpolation otherwise),
    which, the box being the same, is a common physical pixel scale; then, with
    ``lowpass_k``, every mode above that wavenumber of the box is removed
    (:func:`learn.transforms.lowpass_maps`). Labels are concatenated, simulation ids
    offset by ``1_000_000`` per file (the same seeds at two resolutions stay two
    simulations); the first file's attributes and layout are kept, with
    :data:`MERGED_ATTR` (sources, sizes, counts) and :data:`LOWPASS_ATTR`.

    Parameters
    ----------
    paths : list of path-like
        Ensemble ``.h5`` files of the same box and task labels.
    out : path-like
        The merged file (written to a temporary name and renamed).
    map_size : int, optional
        Common side [pixels] (default: the smallest of the files': the coarsest grid).
    lowpass_k : float, optional
        Low-pass wavenumber (box units), at most ``map_size / 2``.

    Returns
    -------
    Path
        ``out``; an existing file made from the same sources and settings is reused.

    Raises
    ------
    DataError
        A missing or invalid file, different box sizes, or a bad ``map_size``/``lowpass_k``.
    """
    import json

    import h5py

    from turbsim.atomic import atomic_path

    paths = [check_file(p) for p in paths]
    for p in paths:
        if p.suffix == ".npz":
            raise DataError(f"{p}: a .npz map file has no train/test splits; train on turbsim ensembles (.h5)")
    sizes, boxes = [], []
    for p in paths:
        with open_ensemble(p) as ens:
            sizes.append(int(ens.map_size))
        with h5py.File(p, "r") as f:
            boxes.append(float(json.loads(f.attrs["ensemble_config"])["sim"]["box"]))
    if len(set(boxes)) > 1:
        raise DataError(f"{paths[0]}: the ensembles' boxes differ ({boxes} pc); a common physical scale needs one box")
    size = int(map_size or min(sizes))
    if size < 4 or size % 2:
        raise DataError(f"map_size = {size} must be an even number of pixels >= 4")
    if lowpass_k is not None and not (0 < lowpass_k <= size / 2):
        raise DataError(f"lowpass_k = {lowpass_k} must lie in (0, {size / 2:g}] (the Nyquist wavenumber of {size} px)")
    info = {"sources": [str(p.resolve()) for p in paths], "map_sizes": sizes, "map_size": size, "lowpass_k": lowpass_k}
    out = Path(out)
    if out.is_file():
        with h5py.File(out, "r") as f:
            if json.loads(f.attrs.get(MERGED_ATTR, "{}")) == info:
                return out
    maps_all, labels = [], {}
    for i, p in enumerate(paths):
        with open_ensemble(p, allow_holdout=True) as ens:
            rows = np.arange(ens.n_sims)
            lab = ens.labels(rows)
            m = ens.projections(rows)
        check_maps(m, lab["sim_id"], str(p))
        m = resample_maps(m, size)
        if lowpass_k is not None:
            m = lowpass_maps(m, lowpass_k)
        maps_all.append(m)
        lab = {k: np.asarray(v) for k, v in lab.items()}
        lab["sim_id"] = lab["sim_id"] + 1_000_000 * i
        for k, v in lab.items():
            labels.setdefault(k, []).append(v)
    maps = np.concatenate(maps_all)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        with h5py.File(paths[0], "r") as src, h5py.File(tmp, "w") as dst:
            for k, v in src.attrs.items():
                dst.attrs[k] = v
            for name in src:
                if name not in ("t0_fields", "labels", "config", "stats", "dimensions", "cubes"):  # copied below
                    src.copy(name, dst)
            cd = src["t0_fields/column_density"]
            g = dst.create_group("t0_fields")
            for k, v in src["t0_fields"].attrs.items():
                g.attrs[k] = v
            d = g.create_dataset("column_density", data=maps, chunks=(1, 3, size, size), fletcher32=True)
            for k, v in cd.attrs.items():
                d.attrs[k] = v
            lg = dst.create_group("labels")
            for k in src["labels"]:
                lg.create_dataset(k, data=np.concatenate(labels[k]) if k in labels else
                                  np.concatenate([src["labels"][k][()]] * len(paths)))
                for a, v in src["labels"][k].attrs.items():
                    lg[k].attrs[a] = v
            dims = dst.create_group("dimensions")
            for k, v in src["dimensions"].attrs.items():
                dims.attrs[k] = v
            box = boxes[0]
            for ax in ("x", "y"):
                dd = dims.create_dataset(ax, data=(np.arange(size) + 0.5) * box / size)
                for a, v in src["dimensions"][ax].attrs.items():
                    dd.attrs[a] = v
            rows_cfg = []
            for q in paths:  # each file's own per-simulation configuration rows
                with h5py.File(q, "r") as fq:
                    if "config" in fq:
                        rows_cfg.append(fq["config"][()])
            if len(rows_cfg) == len(paths):
                dst.create_dataset("config", data=np.concatenate(rows_cfg))
            if "stats" in src:  # per-simulation timings and errors, file after file
                sg = dst.create_group("stats")
                for k, v in src["stats"].attrs.items():
                    sg.attrs[k] = v
                for k in src["stats"]:
                    parts = []
                    for q in paths:
                        with h5py.File(q, "r") as fq:
                            if f"stats/{k}" in fq:
                                parts.append(fq["stats"][k][()])
                    if len(parts) == len(paths):
                        sg.create_dataset(k, data=np.concatenate(parts))
            dst.attrs["n_simulations"] = dst.attrs["n_trajectories"] = len(maps)
            cfg = json.loads(src.attrs["ensemble_config"])
            cfg["sims"] = len(maps)
            cfg["sim"]["cells"] = size
            dst.attrs["ensemble_config"] = json.dumps(cfg)
            dst.attrs[MERGED_ATTR] = json.dumps(info)
            if lowpass_k is not None:
                dst.attrs[LOWPASS_ATTR] = float(lowpass_k)
    log.info("%s: %d simulations from %s at %d px%s", out, len(maps), ", ".join(map(str, paths)), size,
             f", low-passed at k = {lowpass_k:g}" if lowpass_k else "")
    return out


def file_lowpass(path) -> float | None:
    """The low-pass wavenumber a merged ensemble's maps were cut at (None: none)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            v = f.attrs.get(LOWPASS_ATTR)
    except OSError:
        return None
    return None if v is None else float(v)


def open_train_data(path, *, task: str, augment: tuple[str, ...], normalisation: str,
                    memory_budget_mb: float, val_split: str = "test",
                    chunk_sims: int = DEFAULT_CHUNK_SIMS) -> TrainData:
    """Open the training and validation data of an ensemble file.

    Parameters
    ----------
    path : path-like
        Ensemble ``.h5`` file with ``train`` (and, for early stopping, ``test``) rows.
    task : {"classify", "regress"}
    augment : tuple of str
    normalisation : {"global", "per_image"}
    memory_budget_mb : float
        Training maps are held in memory if they take at most this [MiB] (float32), else
        streamed from the file ``chunk_sims`` simulations at a time. The batches, and the
        global normaliser (fitted on every ``max(1, S // 64)``-th of the ``S`` training
        simulations), are the same either way.
    val_split : str
        Split used for validation (``"test"``; never the holdout).
    chunk_sims : int
        Simulations per chunk of an epoch (:func:`learn.sources.epoch_chunks`), in memory or streamed.

    Returns
    -------
    TrainData

    Raises
    ------
    DataError
        Missing/invalid file, empty train split, missing labels, maps that are not finite
        and positive (the simulation is named; streamed maps when they are read).

    Notes
    -----
    Regression on a train split whose ``n`` takes only one or two values (a two-class
    ensemble) runs, with a warning (:func:`warn_few_values`).
    """
    p = check_file(path)
    if p.suffix == ".npz":
        raise DataError(f"{p}: a .npz map file has no train/test splits; train on a turbsim ensemble (.h5)")
    if val_split == "holdout":
        raise DataError("the holdout split is never used for validation")
    with open_ensemble(p) as ens:
        rows = ens.indices("train")
        if rows.size == 0:
            raise DataError(f"{p}: the train split is empty")
        labels = read_labels(ens, rows, f"{p} (train)")
        y_sim = targets(labels, task, f"{p} (train)")
        if task == "regress":
            warn_few_values(y_sim, f"{p} (train)")
        map_size = ens.map_size
        nbytes = _nbytes_maps(rows.size, map_size)
        in_memory = nbytes <= memory_budget_mb * 2**20
        every = max(1, rows.size // 64)  # the normaliser's sample, the same in memory or streamed
        if in_memory:
            maps = ens.projections(rows)
            check_maps(maps, labels["sim_id"], f"{p} (train)")
            log_maps = observe.log_column(maps).astype(np.float32)
            del maps
            sample = log_maps[::every]
        else:  # the other training maps are checked as they are read (learn.sources.HDF5Source)
            maps = ens.projections(rows[::every])
            check_maps(maps, labels["sim_id"][::every], f"{p} (train)")
            sample = observe.log_column(maps).astype(np.float32)
        val_rows = ens.indices(val_split)
        val = None
        if val_rows.size:
            vsource = f"{p} ({val_split})"
            vlab = read_labels(ens, val_rows, vsource)
            targets(vlab, task, vsource)
            vmaps = ens.projections(val_rows)
            check_maps(vmaps, vlab["sim_id"], vsource)
            val = MapSet(vmaps, vlab, vsource)
    if map_size % 2 and set(augment) & {"quadrant", "crop"}:
        raise DataError(f"{p}: map size {map_size} is odd; quadrant cuts need an even size")
    source = (InMemorySource(log_maps, y_sim, chunk_sims) if in_memory
              else HDF5Source(p, rows, y_sim, map_size, chunk_sims, sim_ids=labels["sim_id"]))
    log.info("%s: %d training simulations (%.1f MiB of maps) %s", p, rows.size, nbytes / 2**20,
             "in memory" if in_memory else f"streamed from disk, {chunk_sims} simulations per read")
    return TrainData(
        source=source, n_train=int(rows.size), map_size=map_size, image_size=input_size(map_size, augment),
        normaliser=_normaliser_sample(sample, normalisation, file_lowpass(p)),
        scaler=fit_target_scaler(y_sim) if task == "regress" else None, val=val,
        description={"data": os.fspath(p), "n_train": int(rows.size), "n_val": 0 if val is None else len(val.maps),
                     "map_size": map_size, "in_memory": bool(in_memory), "maps_mib": nbytes / 2**20},
    )


def live_train_data(template, *, task: str, augment: tuple[str, ...], normalisation: str,
                    sims_per_epoch: int, seed: int, val_path=None, n_range=(3.0, 4.5),
                    workers: int | None = None) -> TrainData:
    """Training data streamed from live simulations (:class:`learn.sources.LiveSource`).

    Parameters
    ----------
    template : turbsim.SimConfig
        Configuration of every simulation.
    task, augment, normalisation
        As :func:`open_train_data`.
    sims_per_epoch : int
        Fresh simulations per epoch.
    seed : int
        Stream seed.
    val_path : path-like, optional
        Ensemble whose ``test`` split validates (same map size as ``template.cells``).
    n_range : (float, float)
        Sweep interval of ``n`` for regression.
    workers : int, optional
        Simulation worker processes.
    """
    src = LiveSource(template, task, sims_per_epoch, seed, n_range=n_range, workers=workers)
    val = load_split(val_path, "test") if val_path is not None else None
    if val is not None:
        targets(val.labels, task, val.source)
    norm = (fit_normaliser("global", src.sample(min(8, sims_per_epoch))) if normalisation == "global"
            else Normaliser("per_image"))
    if task == "regress":
        lo, hi = n_range
        scaler = TargetScaler((lo + hi) / 2, (hi - lo) / math.sqrt(12))  # the uniform law of the sweep
    else:
        scaler = None
    return TrainData(
        source=src, n_train=sims_per_epoch, map_size=src.map_size, image_size=input_size(src.map_size, augment),
        normaliser=norm, scaler=scaler, val=val,
        description={"data": "live", "sims_per_epoch": sims_per_epoch, "stream_seed": seed,
                     "map_size": src.map_size, "template": template.to_dict(),
                     "n_val": 0 if val is None else len(val.maps)},
    )

"""Images and labels for learning: from a turbsim ensemble, a RAMSES map file, or live simulations.

The unit of data is a *map*: one column-density projection ``(N, N)`` [g/cm^2] of one
simulation (three per simulation, along x, y, z). Training images are cut from the
``log10`` maps on the fly:

* ``"flip"``: one of the 4 flip variants (identity, up-down, left-right, both), as
  :func:`turbsim.observe.flips`;
* ``"quadrant"``: one of the 4 quadrants (side ``N/2``), as :func:`turbsim.observe.quadrants`
  (flips and quadrants together are the study's 16 images per map);
* ``"crop"``: a random ``N/2`` window at any offset, wrapping around the periodic box
  (replaces the fixed quadrant positions);
* ``"rot90"``: a random rotation by a multiple of 90 degrees.

An epoch visits every (simulation, axis, flip, quadrant-or-crop) once, in an order drawn
from ``SeedSequence([seed, epoch])``: with the study's augmentations it is exactly the
study's data set of 48 images per simulation, reshuffled each epoch. The simulations are
visited in a random order, ``chunk_sims`` at a time (:func:`epoch_chunks`), and the
images of a chunk are shuffled together; the chunks are the same whether the maps are
in memory or read from disk, so a run's batches do not depend on the memory budget.

Two normalisations of the log column density (both dimensionless):

* ``"global"``: ``(log10 Σ - m) / s`` with ``m``, ``s`` the mean and standard deviation
  over the training maps; keeps each image's mean level and fluctuation amplitude;
* ``"per_image"``: each image minus its own mean, divided by its own standard deviation;
  keeps only the shape of the fluctuations (more robust across codes and resolutions).

Sources: the training maps are held in memory when they fit ``memory_budget_mb``,
otherwise read chunk by chunk from the HDF5 file; :class:`LiveSource` draws freshly
simulated maps from :func:`turbsim.generate.stream`. :func:`prefetch` runs any batch
iterator in a background thread, so batch preparation and disk reads overlap the
training step.

Evaluation images are always the study's deterministic 48 per simulation
(:func:`eval_set`); a map of another resolution is first resampled to twice the model's
input size (:func:`resample_maps`), which keeps the physical scale of a quadrant (half
the box) whatever the grid.
"""
from __future__ import annotations

import logging
import math
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from turbsim import dataset, observe

log = logging.getLogger(__name__)

AUGMENTATIONS = ("flip", "quadrant", "crop", "rot90")
STUDY_AUGMENT = ("flip", "quadrant")
NORMALISATIONS = ("global", "per_image")
CLASS_NAMES = ("kolmogorov", "burgers")
DEFAULT_CHUNK_SIMS = 64  # simulations per chunk of an epoch (see epoch_chunks): 3072 images to shuffle
IMAGES_PER_SIM = observe.IMAGES_PER_SIM  # 48: 3 axes x 4 flips x 4 quadrants


class DataError(ValueError):
    """A data file cannot serve the request (names the file and the problem)."""


# --------------------------------------------------------------------------------------
# normalisation and targets
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Normaliser:
    """Normalisation of log10 column-density images.

    Parameters
    ----------
    kind : {"global", "per_image"}
        See the module docstring.
    mean, std : float
        Training-set mean and standard deviation of log10 Σ [log10 g/cm^2]
        (used by ``"global"`` only).
    """

    kind: str = "global"
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self):
        if self.kind not in NORMALISATIONS:
            raise ValueError(f"normalisation = {self.kind!r} is not one of {', '.join(NORMALISATIONS)}")
        if not (math.isfinite(self.mean) and math.isfinite(self.std) and self.std > 0):
            raise ValueError(f"normaliser needs a finite mean and a positive std, got {self.mean}, {self.std}")

    def __call__(self, log_images: np.ndarray) -> np.ndarray:
        """Normalise images ``(..., H, W)`` of log10 Σ; returns float32 of the same shape."""
        x = np.asarray(log_images, dtype=np.float32)
        if self.kind == "global":
            return (x - np.float32(self.mean)) / np.float32(self.std)
        m = x.mean(axis=(-2, -1), keepdims=True)
        s = x.std(axis=(-2, -1), keepdims=True)
        return (x - m) / np.maximum(s, np.float32(1e-12))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "mean": self.mean, "std": self.std}


def fit_normaliser(kind: str, log_maps: np.ndarray) -> Normaliser:
    """The normaliser of a training set.

    Parameters
    ----------
    kind : {"global", "per_image"}
    log_maps : ndarray
        Training maps of log10 Σ, any shape.

    Returns
    -------
    Normaliser
    """
    x = np.asarray(log_maps, dtype=np.float64)
    return Normaliser(kind, float(x.mean()), float(max(x.std(), 1e-12)))


@dataclass(frozen=True)
class TargetScaler:
    """Affine scaling of the regression target: ``z = (n - mean) / std``.

    Parameters
    ----------
    mean, std : float
        Mean and standard deviation of the training labels ``n`` (dimensionless).
    """

    mean: float = 0.0
    std: float = 1.0

    def encode(self, n):
        return (np.asarray(n, np.float64) - self.mean) / self.std

    def decode(self, z):
        return np.asarray(z, np.float64) * self.std + self.mean

    def to_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std}


def fit_target_scaler(n: np.ndarray) -> TargetScaler:
    """Scaler from the training labels (std floored at 1e-3 for a single-valued set)."""
    n = np.asarray(n, np.float64)
    return TargetScaler(float(n.mean()), float(max(n.std(), 1e-3)))


def targets(labels: dict, task: str, source: str = "data") -> np.ndarray:
    """Per-simulation targets of a task, checked.

    Parameters
    ----------
    labels : dict
        ``klass`` (int, -1 for none) and ``n`` per simulation (:meth:`Ensemble.labels`).
    task : {"classify", "regress"}
    source : str
        Name of the data, for error messages.

    Returns
    -------
    ndarray
        int32 classes 0/1 (``classify``) or float64 ``n`` (``regress``).

    Raises
    ------
    DataError
        Classes missing (-1) or outside {0, 1}, or ``n`` not finite.
    """
    if task == "classify":
        k = np.asarray(labels["klass"])
        bad = ~np.isin(k, (0, 1))
        if bad.any():
            raise DataError(f"{source}: classification needs class labels 0 ({CLASS_NAMES[0]}) or 1 "
                            f"({CLASS_NAMES[1]}); {int(bad.sum())} simulations have klass "
                            f"{sorted(set(np.asarray(k[bad]).tolist()))} (a sweep has no classes: use --task regress)")
        return k.astype(np.int32)
    if task == "regress":
        n = np.asarray(labels["n"], np.float64)
        if not np.all(np.isfinite(n)):
            raise DataError(f"{source}: regression needs a finite label n for every simulation")
        return n
    raise ValueError(f"task = {task!r} is not one of 'classify', 'regress'")


def input_size(map_size: int, augment: Iterable[str]) -> int:
    """Image side [pixels] for maps of side ``map_size``: half with quadrants or crops."""
    aug = set(augment)
    return map_size // 2 if aug & {"quadrant", "crop"} else map_size


def check_augment(augment: Iterable[str]) -> tuple[str, ...]:
    """Validated augmentation names (see :data:`AUGMENTATIONS`)."""
    aug = tuple(augment)
    bad = [a for a in aug if a not in AUGMENTATIONS]
    if bad:
        raise ValueError(f"unknown augmentation(s) {bad}; choose from {', '.join(AUGMENTATIONS)}")
    if "quadrant" in aug and "crop" in aug:
        raise ValueError("augmentations 'quadrant' and 'crop' exclude each other (both cut N/2 windows)")
    return aug


# --------------------------------------------------------------------------------------
# image cutting
# --------------------------------------------------------------------------------------
def image_specs(n_maps: int, augment: tuple[str, ...], rng: np.random.Generator) -> np.ndarray:
    """One epoch of image specifications for ``n_maps`` maps, shuffled.

    Returns
    -------
    ndarray of int64, shape (n_images, 5)
        Columns: map index, flip code (bit 0 up-down, bit 1 left-right), window index
        (quadrant 0..3, or crop number), rotation (multiples of 90 degrees), unused 0.
        ``n_images = n_maps * (4 if flip) * (4 if quadrant or crop)``.
    """
    flips = np.arange(4) if "flip" in augment else np.zeros(1, np.int64)
    wins = np.arange(4) if {"quadrant", "crop"} & set(augment) else np.zeros(1, np.int64)
    m, f, w = np.meshgrid(np.arange(n_maps), flips, wins, indexing="ij")
    specs = np.zeros((m.size, 5), np.int64)
    specs[:, 0], specs[:, 1], specs[:, 2] = m.ravel(), f.ravel(), w.ravel()
    if "rot90" in augment:
        specs[:, 3] = rng.integers(0, 4, m.size)
    return specs[rng.permutation(m.size)]


def cut_images(maps: np.ndarray, specs: np.ndarray, augment: tuple[str, ...],
               rng: np.random.Generator) -> np.ndarray:
    """Cut augmented images out of maps.

    Parameters
    ----------
    maps : ndarray, shape (M, N, N)
        Maps (any values, e.g. log10 Σ).
    specs : ndarray of int, shape (B, 5)
        Rows of :func:`image_specs` (map indices into ``maps``).
    augment : tuple of str
        Augmentations (:data:`AUGMENTATIONS`).
    rng : numpy.random.Generator
        Draws the crop offsets.

    Returns
    -------
    ndarray, shape (B, S, S), same dtype
        ``S = N/2`` with quadrants or crops, else ``N``. A crop wraps around the periodic map.
    """
    n = maps.shape[-1]
    size = input_size(n, augment)
    b = specs.shape[0]
    if "crop" in augment:
        oy, ox = rng.integers(0, n, b), rng.integers(0, n, b)
    elif "quadrant" in augment:
        oy, ox = (specs[:, 2] // 2) * size, (specs[:, 2] % 2) * size
    else:
        oy = ox = np.zeros(b, np.int64)
    ar = np.arange(size)
    iy, ix = oy[:, None] + ar, ox[:, None] + ar  # (B, S)
    # a flip of the whole map followed by a quadrant cut = the mirrored quadrant, flipped
    ud, lr = (specs[:, 1] & 1).astype(bool), (specs[:, 1] & 2).astype(bool)
    iy[ud] = (n - 1) - iy[ud]
    ix[lr] = (n - 1) - ix[lr]
    iy %= n
    ix %= n
    out = maps[specs[:, 0, None, None], iy[:, :, None], ix[:, None, :]]
    for k in (1, 2, 3):
        sel = specs[:, 3] == k
        if sel.any():
            out[sel] = np.rot90(out[sel], k, axes=(1, 2))
    return out


# --------------------------------------------------------------------------------------
# sources of training maps
# --------------------------------------------------------------------------------------
@dataclass
class MapChunk:
    """Some simulations' log10 maps and targets: ``maps`` (k, 3, N, N), ``y`` (k,)."""

    maps: np.ndarray
    y: np.ndarray


def epoch_chunks(n_sims: int, chunk_sims: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """The simulations of each chunk of one epoch.

    Parameters
    ----------
    n_sims : int
        Training simulations.
    chunk_sims : int
        Simulations per chunk (the last chunk may hold fewer).
    rng : numpy.random.Generator
        Draws the order of the simulations.

    Yields
    ------
    ndarray of int64
        Sorted positions (0..n_sims-1) of a chunk's simulations (sorted: ordered disk
        reads); together the chunks hold every simulation once.
    """
    order, step = rng.permutation(n_sims), max(1, int(chunk_sims))
    for start in range(0, n_sims, step):
        yield np.sort(order[start:start + step])


class InMemorySource:
    """All training maps held in memory, served in the same chunks as :class:`HDF5Source`.

    Parameters
    ----------
    log_maps : ndarray, shape (S, 3, N, N)
        log10 column density of the training simulations.
    y : ndarray, shape (S,)
        Their targets.
    chunk_sims : int
        Simulations per chunk (:func:`epoch_chunks`).
    """

    def __init__(self, log_maps: np.ndarray, y: np.ndarray, chunk_sims: int = DEFAULT_CHUNK_SIMS):
        self.maps, self.y = np.ascontiguousarray(log_maps, np.float32), np.asarray(y)
        self.n_sims, self.map_size, self.chunk_sims = log_maps.shape[0], log_maps.shape[-1], max(1, int(chunk_sims))

    def chunks(self, epoch: int, rng: np.random.Generator) -> Iterator[MapChunk]:
        for sel in epoch_chunks(self.n_sims, self.chunk_sims, rng):
            yield MapChunk(self.maps[sel], self.y[sel])


class HDF5Source:
    """Training maps read from the ensemble file chunk by chunk, in a new order each epoch.

    Parameters
    ----------
    path : path-like
        Ensemble file.
    rows : ndarray of int
        Rows of the training simulations.
    y : ndarray
        Their targets.
    map_size : int
        Map side [pixels].
    chunk_sims : int
        Simulations per read (:func:`epoch_chunks`).
    """

    def __init__(self, path, rows: np.ndarray, y: np.ndarray, map_size: int,
                 chunk_sims: int = DEFAULT_CHUNK_SIMS):
        self.path, self.rows, self.y = Path(path), np.asarray(rows), np.asarray(y)
        self.n_sims, self.map_size, self.chunk_sims = len(rows), map_size, max(1, int(chunk_sims))

    def chunks(self, epoch: int, rng: np.random.Generator) -> Iterator[MapChunk]:
        with dataset.open_ensemble(self.path) as ens:
            for sel in epoch_chunks(self.n_sims, self.chunk_sims, rng):
                maps = observe.log_column(ens.projections(self.rows[sel]))
                yield MapChunk(maps.astype(np.float32), self.y[sel])


class LiveSource:
    """Freshly simulated maps from :func:`turbsim.generate.stream`, ``sims_per_epoch`` per epoch.

    Epoch ``e`` uses stream simulations ``e * sims_per_epoch`` onwards, so a resumed run
    sees exactly the simulations it would have seen.

    Parameters
    ----------
    template : turbsim.SimConfig
        Configuration of every simulation (``n`` and ``seed`` are set per simulation).
    task : {"classify", "regress"}
        Classification streams the two classes, regression a uniform sweep ``n_range``.
    sims_per_epoch : int
    seed : int
        Seed of the stream (use one that no stored ensemble uses).
    n_range : (float, float)
        Sweep interval for regression.
    workers : int, optional
        Simulation worker processes (default of :func:`turbsim.generate.stream`).
    chunk_sims : int
        Simulations per chunk of images.
    """

    def __init__(self, template, task: str, sims_per_epoch: int, seed: int,
                 n_range=(3.0, 4.5), workers: int | None = None, chunk_sims: int = 8):
        self.template, self.task, self.seed = template, task, seed
        self.n_sims, self.map_size = int(sims_per_epoch), int(template.cells)
        self.n_range, self.workers, self.chunk_sims = tuple(n_range), workers, max(1, chunk_sims)
        self._head: list[MapChunk] = []  # epoch 0's first chunks, simulated by sample(), replayed once

    def _stream(self, start: int):
        from turbsim import generate  # the live source needs the simulation stack

        kw = {"n_range": self.n_range} if self.task == "regress" else {}
        return generate.stream(self.template, seed=self.seed, workers=self.workers, start=start, **kw)

    def chunks(self, epoch: int, rng: np.random.Generator) -> Iterator[MapChunk]:
        head, done = [], 0
        if epoch == 0:
            head, self._head = self._head, []
            done = sum(len(c.maps) for c in head)
            yield from head
        if done >= self.n_sims:
            return
        stream = self._stream(epoch * self.n_sims + done)
        try:
            while done < self.n_sims:
                recs = [next(stream) for _ in range(min(self.chunk_sims, self.n_sims - done))]
                done += len(recs)
                labels = {"klass": np.array([r["klass"] for r in recs]), "n": np.array([r["n"] for r in recs])}
                maps = observe.log_column(np.stack([r["projections"] for r in recs]))
                yield MapChunk(maps.astype(np.float32), targets(labels, self.task, "live stream"))
        finally:
            stream.close()

    def sample(self, n_sims: int) -> np.ndarray:
        """Log maps of the first ``n_sims`` simulations of epoch 0 (to fit the normaliser).

        The chunks simulated for it are kept and replayed by the next ``chunks(0, ...)``,
        so that epoch 0 does not simulate them again.
        """
        got = []
        for chunk in self.chunks(0, np.random.default_rng(0)):
            got.append(chunk)
            if sum(len(c.maps) for c in got) >= n_sims:
                break
        self._head = got
        return np.concatenate([c.maps for c in got])[:n_sims]


def epoch_rng(seed: int, epoch: int, stream: int = 0) -> np.random.Generator:
    """The generator of one epoch's randomness (order, crops, rotations)."""
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, stream]))


def images_per_epoch(n_sims: int, augment: tuple[str, ...]) -> int:
    """Training images in one epoch of ``n_sims`` simulations."""
    aug = set(augment)
    return n_sims * 3 * (4 if "flip" in aug else 1) * (4 if aug & {"quadrant", "crop"} else 1)


def calls_per_epoch(n_sims: int, augment: tuple[str, ...], batch_size: int, steps_per_call: int) -> int:
    """Jitted training calls per epoch (the incomplete last group of batches is dropped)."""
    return images_per_epoch(n_sims, augment) // (batch_size * steps_per_call)


def epoch_batches(source, epoch: int, *, seed: int, batch_size: int, steps_per_call: int,
                  augment: tuple[str, ...], normaliser: Normaliser) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of training batches, grouped for one jitted call each.

    Parameters
    ----------
    source : InMemorySource, HDF5Source or LiveSource
    epoch : int
        Epoch number (seeds the order and the random augmentations).
    seed : int
        Base seed of the run.
    batch_size, steps_per_call : int
        Images per step and steps per call.
    augment : tuple of str
    normaliser : Normaliser

    Yields
    ------
    x : ndarray, float32, shape (steps_per_call, batch_size, S, S)
        Normalised images.
    y : ndarray, shape (steps_per_call, batch_size)
        Targets (int32 classes or float64 ``n``).
    """
    rng = epoch_rng(seed, epoch)
    group = batch_size * steps_per_call
    carry_x, carry_y = [], []
    for chunk in source.chunks(epoch, epoch_rng(seed, epoch, 1)):
        k, _, n, _ = chunk.maps.shape
        flat = chunk.maps.reshape(k * 3, n, n)
        specs = image_specs(k * 3, augment, rng)
        for start in range(0, len(specs), group):
            sp = specs[start:start + group]
            x = normaliser(cut_images(flat, sp, augment, rng))
            carry_x.append(x)
            carry_y.append(chunk.y[sp[:, 0] // 3])
            have = sum(len(c) for c in carry_x)
            if have >= group:
                xs, ys = np.concatenate(carry_x), np.concatenate(carry_y)
                for g in range(0, have - group + 1, group):
                    yield (xs[g:g + group].reshape(steps_per_call, batch_size, *xs.shape[1:]),
                           ys[g:g + group].reshape(steps_per_call, batch_size))
                rest = have - have % group
                carry_x, carry_y = [xs[rest:]], [ys[rest:]]


_END = object()


def prefetch(iterator: Iterable, depth: int = 2) -> Iterator:
    """Run an iterator in a background thread, ``depth`` items ahead.

    Exceptions in the thread are re-raised in the consumer. Closing the returned generator
    (or leaving a ``for`` loop early) stops the thread.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def work():
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as exc:  # noqa: BLE001 (handed to the consumer)
            q.put(exc)

    thread = threading.Thread(target=work, name="learn-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.1)


# --------------------------------------------------------------------------------------
# opening data: ensembles and RAMSES map files
# --------------------------------------------------------------------------------------
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
    """The path of an existing data file, or :class:`DataError` naming it."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such data file")
    return p


def load_npz_maps(path) -> MapSet:
    """Maps of a RAMSES map file (``columns`` (S,3,N,N) g/cm^2, ``n``, ``klass`` names).

    The class names ``kolmogorov``/``burgers`` become 0/1, any other name -1.
    """
    p = check_file(path)
    try:
        with np.load(p) as d:
            missing = [k for k in ("columns", "n") if k not in d.files]
            if missing:
                raise DataError(f"{p}: map file lacks array(s) {missing} (expected columns (S,3,N,N) and n (S,))")
            cols = np.asarray(d["columns"], np.float32)
            n = np.asarray(d["n"], np.float64)
            names = [str(s) for s in d["klass"]] if "klass" in d.files else [""] * len(n)
    except (OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{p}: cannot read as a numpy .npz map file ({exc})") from None
    if cols.ndim != 4 or cols.shape[1] != 3 or cols.shape[2] != cols.shape[3] or len(n) != len(cols):
        raise DataError(f"{p}: columns must be (S, 3, N, N) with one n per row, got {cols.shape} and {n.shape}")
    klass = np.array([CLASS_NAMES.index(s) if s in CLASS_NAMES else -1 for s in names], np.int8)
    return MapSet(cols, {"n": n, "klass": klass, "sim_id": np.arange(len(n), dtype=np.int64)}, f"{p} (all)")


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
        Missing file, bad layout, empty split, or holdout without ``allow_holdout``.
    """
    p = check_file(path)
    if p.suffix == ".npz":
        return load_npz_maps(p)
    try:
        with dataset.open_ensemble(p) as ens:
            rows = ens.indices(split, allow_holdout=allow_holdout)
            if rows.size == 0:
                raise DataError(f"{p}: the {split} split is empty")
            lab = ens.labels(rows)
            return MapSet(ens.projections(rows), {k: lab[k] for k in ("n", "klass", "sim_id")}, f"{p} ({split})")
    except dataset.HoldoutError:
        raise DataError(f"{p}: the holdout split is locked; pass --holdout (allow_holdout=True) "
                        "only for the final evaluation") from None
    except dataset.LayoutError as exc:
        raise DataError(str(exc)) from None


def resample_maps(maps: np.ndarray, size: int) -> np.ndarray:
    """Resample periodic column-density maps to another grid.

    An integer reduction factor averages blocks of pixels (the column density a coarser
    grid would have); any other factor interpolates in Fourier space (band-limited,
    periodic, conserving the mean). Values are floored at 1e-6 of the map mean so that
    a logarithm stays defined.

    Parameters
    ----------
    maps : ndarray, shape (..., N, N)
        Column density [g/cm^2] (a linear quantity: resample before taking the log).
    size : int
        New side [pixels].

    Returns
    -------
    ndarray, float32, shape (..., size, size)
    """
    maps = np.asarray(maps, np.float64)
    n = maps.shape[-1]
    if n == size:
        return maps.astype(np.float32)
    if n % size == 0:
        f = n // size
        out = maps.reshape(maps.shape[:-2] + (size, f, size, f)).mean(axis=(-3, -1))
    else:
        from scipy.signal import resample

        out = resample(resample(maps, size, axis=-1), size, axis=-2)
        out = np.maximum(out, 1e-6 * maps.mean(axis=(-2, -1), keepdims=True))
    return out.astype(np.float32)


def eval_set(maps: np.ndarray, normaliser: Normaliser, image_size: int,
             full_maps: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The study's deterministic evaluation images of some simulations.

    Parameters
    ----------
    maps : ndarray, shape (k, 3, N, N)
        Column density [g/cm^2].
    normaliser : Normaliser
    image_size : int
        The model's input side; maps are resampled to ``2 * image_size`` (or to
        ``image_size`` with ``full_maps``) first.
    full_maps : bool
        The model reads whole maps (trained without quadrants or crops).

    Returns
    -------
    images : ndarray, float32, shape (k*48, S, S) (or (k*3, S, S) with ``full_maps``)
        Normalised log10 images, ordered simulation, axis, flip, quadrant.
    sim_index : ndarray of int64
        Position (0..k-1) of the simulation of every image.
    """
    maps = resample_maps(maps, image_size if full_maps else 2 * image_size)
    return eval_images(observe.log_column(maps), normaliser, full_maps)


def eval_images(log_maps: np.ndarray, normaliser: Normaliser, full_maps: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """:func:`eval_set` of log10 maps already at the model's scale.

    Parameters
    ----------
    log_maps : ndarray, shape (k, 3, M, M)
        log10 column density [log10 g/cm^2], ``M`` the model's input side (``full_maps``)
        or twice it.
    normaliser : Normaliser
    full_maps : bool

    Returns
    -------
    images, sim_index
        As :func:`eval_set`.
    """
    images, sim_index = observe.study_images(log_maps, augment_maps=not full_maps)
    return np.ascontiguousarray(normaliser(images), np.float32), sim_index


@dataclass
class TrainData:
    """Everything training needs from the data: sources, validation set, scalings.

    Attributes
    ----------
    source : InMemorySource, HDF5Source or LiveSource
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

    source: Any
    n_train: int
    map_size: int
    image_size: int
    normaliser: Normaliser
    scaler: TargetScaler | None
    val: MapSet | None
    description: dict


def _nbytes_maps(n_sims: int, map_size: int) -> int:
    return n_sims * 3 * map_size * map_size * 4


def _normaliser_sample(sample: np.ndarray, kind: str) -> Normaliser:
    return fit_normaliser(kind, sample) if kind == "global" else Normaliser("per_image")


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
        Simulations per chunk of an epoch (:func:`epoch_chunks`), in memory or streamed.

    Returns
    -------
    TrainData

    Raises
    ------
    DataError
        Missing/invalid file, empty train split, missing labels.
    """
    p = check_file(path)
    if p.suffix == ".npz":
        raise DataError(f"{p}: a .npz map file has no train/test splits; train on a turbsim ensemble (.h5)")
    if val_split == "holdout":
        raise DataError("the holdout split is never used for validation")
    try:
        with dataset.open_ensemble(p) as ens:
            rows = ens.indices("train")
            if rows.size == 0:
                raise DataError(f"{p}: the train split is empty")
            labels = ens.labels(rows)
            y_sim = targets(labels, task, f"{p} (train)")
            map_size = ens.map_size
            nbytes = _nbytes_maps(rows.size, map_size)
            in_memory = nbytes <= memory_budget_mb * 2**20
            every = max(1, rows.size // 64)  # the normaliser's sample, the same in memory or streamed
            if in_memory:
                log_maps = observe.log_column(ens.projections(rows)).astype(np.float32)
                sample = log_maps[::every]
            else:
                sample = observe.log_column(ens.projections(rows[::every])).astype(np.float32)
            val_rows = ens.indices(val_split)
            val = None
            if val_rows.size:
                vlab = ens.labels(val_rows)
                targets(vlab, task, f"{p} ({val_split})")
                val = MapSet(ens.projections(val_rows), {k: vlab[k] for k in ("n", "klass", "sim_id")},
                             f"{p} ({val_split})")
    except dataset.LayoutError as exc:
        raise DataError(str(exc)) from None
    if map_size % 2 and set(augment) & {"quadrant", "crop"}:
        raise DataError(f"{p}: map size {map_size} is odd; quadrant cuts need an even size")
    source = (InMemorySource(log_maps, y_sim, chunk_sims) if in_memory
              else HDF5Source(p, rows, y_sim, map_size, chunk_sims))
    log.info("%s: %d training simulations (%.1f MiB of maps) %s", p, rows.size, nbytes / 2**20,
             "in memory" if in_memory else f"streamed from disk, {chunk_sims} simulations per read")
    return TrainData(
        source=source, n_train=int(rows.size), map_size=map_size, image_size=input_size(map_size, augment),
        normaliser=_normaliser_sample(sample, normalisation),
        scaler=fit_target_scaler(y_sim) if task == "regress" else None, val=val,
        description={"data": os.fspath(p), "n_train": int(rows.size), "n_val": 0 if val is None else len(val.maps),
                     "map_size": map_size, "in_memory": bool(in_memory), "maps_mib": nbytes / 2**20},
    )


def live_train_data(template, *, task: str, augment: tuple[str, ...], normalisation: str,
                    sims_per_epoch: int, seed: int, val_path=None, n_range=(3.0, 4.5),
                    workers: int | None = None) -> TrainData:
    """Training data streamed from live simulations (:class:`LiveSource`).

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

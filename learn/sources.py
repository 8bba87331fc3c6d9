"""Sources of training maps behind one protocol, and the epochs of batches cut from them.

The unit of data is a *map*: one column-density projection ``(N, N)`` of one simulation
(three per simulation, along x, y, z). A :class:`Source` serves the log10 maps of the
training simulations in chunks; three implement it:

* :class:`InMemorySource`: every training map held in memory;
* :class:`HDF5Source`: read from the ensemble file chunk by chunk;
* :class:`LiveSource`: freshly simulated by :func:`turbsim.stream.stream`, never the
  same simulation twice.

An epoch visits every (simulation, axis, flip, quadrant-or-crop) once, in an order drawn
from ``SeedSequence([seed, epoch])``: with the study's augmentations it is exactly the
study's data set of 48 images per simulation, reshuffled each epoch. The simulations are
visited in a random order, ``chunk_sims`` at a time (:func:`epoch_chunks`), and the
images of a chunk are shuffled together; the chunks are the same whether the maps are
in memory or read from disk, so a run's batches do not depend on the memory budget.
:func:`prefetch` runs any batch iterator in a background thread, so batch preparation
and disk reads overlap the training step.

Examples
--------
>>> src = InMemorySource(np.zeros((5, 3, 8, 8)), np.arange(5), chunk_sims=2)
>>> isinstance(src, Source)
True
>>> [c.y.tolist() for c in src.chunks(0, np.random.default_rng(0))]
[[2, 4], [0, 3], [1]]
>>> calls_per_epoch(5, ("flip", "quadrant"), batch_size=32, steps_per_call=2)
3
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Protocol, runtime_checkable

import numpy as np

from turbsim import dataset, observe

from .transforms import Normaliser, check_maps, cut_images, image_specs, targets

DEFAULT_CHUNK_SIMS = 64  # simulations per chunk of an epoch (see epoch_chunks): 3072 images to shuffle


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


@runtime_checkable
class Source(Protocol):
    """Where training maps come from: anything with these attributes and ``chunks``.

    Attributes
    ----------
    n_sims : int
        Training simulations per epoch.
    map_size : int
        Map side [pixels].
    """

    n_sims: int
    map_size: int

    def chunks(self, epoch: int, rng: np.random.Generator) -> Iterator[MapChunk]:
        """The log10 maps and targets of every training simulation of one epoch, in chunks.

        Parameters
        ----------
        epoch : int
            Epoch number (a live source simulates new maps for every epoch).
        rng : numpy.random.Generator
            Draws the order of the simulations.
        """
        ...


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
    sim_ids : ndarray of int, optional
        The simulations' ids, named when a map read is not finite and positive (default:
        the rows).

    Raises
    ------
    learn.transforms.DataError
        From :meth:`chunks`: a map read is not finite and positive
        (:func:`learn.transforms.check_maps`).
    """

    def __init__(self, path, rows: np.ndarray, y: np.ndarray, map_size: int,
                 chunk_sims: int = DEFAULT_CHUNK_SIMS, sim_ids: np.ndarray | None = None):
        self.path, self.rows, self.y = Path(path), np.asarray(rows), np.asarray(y)
        self.sim_ids = self.rows if sim_ids is None else np.asarray(sim_ids)
        self.n_sims, self.map_size, self.chunk_sims = len(rows), map_size, max(1, int(chunk_sims))

    def chunks(self, epoch: int, rng: np.random.Generator) -> Iterator[MapChunk]:
        with dataset.open_ensemble(self.path) as ens:
            for sel in epoch_chunks(self.n_sims, self.chunk_sims, rng):
                maps = ens.projections(self.rows[sel])
                check_maps(maps, self.sim_ids[sel], f"{self.path} (train)")
                yield MapChunk(observe.log_column(maps).astype(np.float32), self.y[sel])


class LiveSource:
    """Freshly simulated maps from :func:`turbsim.stream.stream`, ``sims_per_epoch`` per epoch.

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
        Simulation worker processes (default of :func:`turbsim.stream.stream`).
    chunk_sims : int
        Simulations per chunk of images.
    """

    def __init__(self, template, task: str, sims_per_epoch: int, seed: int,
                 n_range=(3.0, 4.5), workers: int | None = None, chunk_sims: int = 8):
        self.template, self.task, self.seed = template, task, seed
        self.n_sims, self.map_size = int(sims_per_epoch), int(template.map_cells)
        self.n_range, self.workers, self.chunk_sims = tuple(n_range), workers, max(1, chunk_sims)
        self._head: list[MapChunk] = []  # epoch 0's first chunks, simulated by sample(), replayed once
        self._open = None  # the open stream, kept across epochs; self._next: its next simulation
        self._next = 0

    def _stream(self, start: int):
        """The stream positioned at simulation ``start``: the open one when it is there.

        One stream (one worker pool) serves every epoch in turn: its workers go on
        simulating the next epoch's first simulations while the last batches of this one
        train, instead of a new pool starting cold each epoch.
        """
        if self._open is not None and self._next == start:
            return self._open
        self.close()
        from turbsim import stream  # deferred: only live runs need the simulation stack

        kw = {"n_range": self.n_range} if self.task == "regress" else {}
        self._open = stream.stream(self.template, seed=self.seed, workers=self.workers, start=start, **kw)
        self._next = start
        return self._open

    def close(self) -> None:
        """Stop the simulation workers (a later epoch starts them again)."""
        if self._open is not None:
            self._open.close()
            self._open = None

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
                recs = []
                for _ in range(min(self.chunk_sims, self.n_sims - done)):
                    recs.append(next(stream))
                    self._next += 1
                done += len(recs)
                labels = {"klass": np.array([r["klass"] for r in recs]), "n": np.array([r["n"] for r in recs])}
                maps = observe.log_column(np.stack([r["projections"] for r in recs]))
                yield MapChunk(maps.astype(np.float32), targets(labels, self.task, "live stream"))
        except Exception:
            self.close()  # a failed simulation: a later epoch starts a fresh stream
            raise

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


def epoch_batches(source: Source, epoch: int, *, seed: int, batch_size: int, steps_per_call: int,
                  augment: tuple[str, ...], normaliser: Normaliser) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of training batches, grouped for one jitted call each.

    Parameters
    ----------
    source : Source
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



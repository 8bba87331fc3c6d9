"""Training: losses, a jitted pure step, one epoch, and the loop with checkpoints and early stopping.

Shaped like the Flax MNIST example: a pure training call built by :func:`make_train_call`
(``nnx.value_and_grad`` and ``nnx.Optimizer(model, tx, wrt=nnx.Param)`` inside ``jax.jit``
over the split model and optimiser state, ``steps_per_call`` micro-batches per call,
unrolled), :func:`train_epoch` running it over one epoch of batches, and one
:func:`train_and_evaluate` (configuration in, run directory out) that a thin command line
calls. The configuration is :class:`learn.config.TrainConfig`; the files of the run
directory and the checkpoints are :mod:`learn.rundir`; prediction is :mod:`learn.predict`.

State
    ``nnx.split((model, optimizer))`` gives a static graph definition and a pytree of
    arrays (parameters, batch statistics, optimiser state and step). Only the arrays
    travel through ``jax.jit`` (no NNX graph traversal per step); they are donated, so
    XLA updates them in place. Where the run stands (epoch, step, history, early
    stopping) is a :class:`Progress`, saved with the arrays in every checkpoint.

Randomness
    Parameters from ``seed``; the order of the images and their augmentations in epoch
    ``e`` from ``SeedSequence([seed, e])``; dropout in global step ``t`` from
    ``fold_in(key(seed), t)``. Results depend on nothing else: not on interruptions
    (a resumed run equals an uninterrupted one) nor on the number of devices (up to
    the order of floating-point sums).

Devices
    The batch axis is sharded over all local devices (``jax.sharding.Mesh`` with one
    ``"data"`` axis); the state is replicated; XLA inserts the gradient all-reduce. A
    multi-GPU node is used without code changes; ``batch_size`` must be divisible by the
    number of devices.

Resuming
    Rerunning the same configuration in the same directory continues from the latest
    checkpoint; a finished run is not trained again (a missing readout is fitted), and
    keeps its training wall time. A damaged latest checkpoint (its files are checked
    against their checksums) is set aside with a warning naming the damaged file, and
    training resumes from the checkpoint before it (:class:`learn.rundir.Checkpoints`). With
    ``refit_readout`` the closed-form readout (:mod:`learn.readout`) is fitted after the
    last epoch from the best checkpoint.

The names of :mod:`learn.config`, :mod:`learn.rundir` and :mod:`learn.predict` that this
module held before they moved are still importable from here for one release.

Examples
--------
>>> import jax.numpy as jnp
>>> loss = loss_and_metric("regress", uncertainty=False)
>>> mean_loss, per_sample = loss(jnp.array([[0.5], [2.0]]), jnp.array([0.0, 1.0]))
>>> float(mean_loss), per_sample.tolist()
(0.625, [0.25, 1.0])
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from turbsim.console import progress as progress_bar

from . import readout as lreadout
from .config import TrainConfig, learning_rate_schedule, model_and_optimizer
from .data import TrainData, live_train_data, open_train_data
from .models import count_params
from .predict import Sharding, predict
from .rundir import (RUN_FILE, READOUT_FILE, SUMMARY_FILE, Checkpoints, check_workdir, load_run, versions,
                     write_history, write_json)
from .sources import calls_per_epoch, epoch_batches, images_per_epoch, prefetch
from .transforms import DataError, eval_images, eval_set, targets

# Moved to learn.config, learn.rundir and learn.predict; importable from here until the next release.
from .config import OPTIMIZERS, SCHEDULES, make_optimizer  # noqa: E402,F401
from .predict import dihedral_mean, make_predict_call  # noqa: E402,F401
from .rundir import (CKPT_DIR, CURVES_FILE, HISTORY_FIELDS, HISTORY_FILE, Run, RunError,  # noqa: E402,F401
                     final_state, restore_checkpoint, save_checkpoint)

log = logging.getLogger(__name__)

PLOT_EVERY_S = 30.0
"""Least wall time between two drawings of the learning curves [s] (``history.csv`` is written every epoch)."""


# --------------------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------------------
def gaussian_nll(mean: jax.Array, log_var: jax.Array, y: jax.Array) -> jax.Array:
    """Per-sample Gaussian negative log-likelihood without the constant ``log(2 pi) / 2``.

    ``0.5 * (log_var + (y - mean)^2 / exp(log_var))``, with ``log_var`` clipped to
    [-12, 12] for stability (units of the standardised target).
    """
    log_var = jnp.clip(log_var, -12.0, 12.0)
    return 0.5 * (log_var + (y - mean) ** 2 * jnp.exp(-log_var))


def loss_and_metric(task: str, uncertainty: bool) -> Callable:
    """The loss of a task: ``f(outputs, y) -> (mean loss, per-sample metric)``.

    Classification: softmax cross-entropy of 2 logits; metric 1 where the arg-max is
    right. Regression on the standardised target: squared error (or Gaussian NLL with
    ``uncertainty``); metric the squared error of the mean (standardised units).
    """
    if task == "classify":
        def f(out, y):
            y = y.astype(jnp.int32)
            loss = optax.softmax_cross_entropy_with_integer_labels(out.astype(jnp.float32), y)
            return loss.mean(), (jnp.argmax(out, -1) == y).astype(jnp.float32)
    elif uncertainty:
        def f(out, y):
            y = y.astype(jnp.float32)
            return gaussian_nll(out[:, 0], out[:, 1], y).mean(), (out[:, 0] - y) ** 2
    else:
        def f(out, y):
            se = (out[:, 0] - y.astype(jnp.float32)) ** 2
            return se.mean(), se
    return f


def metric_value(task: str, mean_metric: float, scaler) -> float:
    """Accuracy, or RMSE of n (from the mean squared error in standardised units)."""
    return mean_metric if task == "classify" else math.sqrt(max(mean_metric, 0.0)) * scaler.std


# --------------------------------------------------------------------------------------
# the pure training call
# --------------------------------------------------------------------------------------
def make_train_call(graphdef, loss_fn: Callable, *, donate: bool = True) -> Callable:
    """A jitted pure function running several training steps.

    Parameters
    ----------
    graphdef : nnx.GraphDef
        Static structure of ``(model, optimizer)`` (model in training mode).
    loss_fn : callable
        :func:`loss_and_metric` of the task.
    donate : bool
        Donate the input state (updated in place).

    Returns
    -------
    callable
        ``call(state, xs, ys, step0, key) -> (state, losses, metric_sums)`` where ``xs``
        is ``(K, B, H, W)``, ``ys`` ``(K, B)``; ``step0`` the global step of the first
        micro-batch (dropout of step ``t`` uses ``fold_in(key, t)``); returns the new
        state, the loss of every step ``(K,)`` and the summed metric of every step ``(K,)``.
    """

    def one_step(state, batch):
        x, y, key = batch
        model, opt = nnx.merge(graphdef, state)

        def lf(model):
            out = model(x, rngs=nnx.Rngs(dropout=key))
            loss, metric = loss_fn(out, y)
            return loss, metric.sum()

        (loss, msum), grads = nnx.value_and_grad(lf, has_aux=True)(model)
        opt.update(model, grads)
        return nnx.state((model, opt)), (loss, msum)

    def call(state, xs, ys, step0, key):
        # A Python loop (unrolled at trace time) rather than lax.scan: XLA:CPU runs its
        # convolutions ~40x slower on the dynamic slices of a scan (benchmarks/train.py).
        losses, msums = [], []
        for i in range(xs.shape[0]):
            state, (loss, msum) = one_step(state, (xs[i], ys[i], jax.random.fold_in(key, step0 + i)))
            losses.append(loss)
            msums.append(msum)
        return state, jnp.stack(losses), jnp.stack(msums)

    return jax.jit(call, donate_argnums=(0,) if donate else ())


# --------------------------------------------------------------------------------------
# data, validation and progress of a run
# --------------------------------------------------------------------------------------
def open_data(config: TrainConfig) -> TrainData:
    """The training data of a configuration (ensemble file or live stream)."""
    if config.live:
        from turbsim import SimConfig

        template = SimConfig(**dict(config.live_sim))
        return live_train_data(template, task=config.task, augment=config.augment,
                               normalisation=config.normalisation, sims_per_epoch=config.live_sims_per_epoch,
                               seed=config.live_seed, val_path=config.data, n_range=config.live_n_range,
                               workers=config.live_workers)
    return open_train_data(config.data, task=config.task, augment=config.augment,
                           normalisation=config.normalisation, memory_budget_mb=config.memory_budget_mb)


class Validation(NamedTuple):
    """The validation images of a run: normalised images, their targets, their simulations."""

    x: np.ndarray
    y: np.ndarray
    sim_index: np.ndarray


def validation_set(config: TrainConfig, td: TrainData) -> Validation | None:
    """The study's evaluation images of the validation maps and their (encoded) targets."""
    if td.val is None:
        return None
    x, idx = eval_set(td.val.maps, td.normaliser, td.image_size, td.image_size == td.map_size)
    y_sim = targets(td.val.labels, config.task, td.val.source)
    return Validation(x, y_sim[idx] if config.task == "classify" else td.scaler.encode(y_sim[idx]), idx)


def validation_loss(model: nnx.Module, images: np.ndarray, y: np.ndarray, loss_fn: Callable,
                    batch_size: int, sharding: Sharding) -> tuple[float, float]:
    """Mean loss and mean metric of a model on normalised images with targets.

    The model is evaluated in eval mode (:func:`learn.predict.predict`); its own mode is
    left as it was.
    """
    out = predict(model, images, batch_size=batch_size, sharding=sharding)
    loss, metric = loss_fn(jnp.asarray(out), jnp.asarray(y))
    return float(loss), float(jnp.mean(metric))


@dataclass
class Progress:
    """Where a run stands; saved as the JSON record of every checkpoint.

    Attributes
    ----------
    epoch, step : int
        Epochs and micro-batch steps done.
    history : list of dict
        One record per epoch (:data:`learn.rundir.HISTORY_FIELDS`).
    best_val : float or None
        Lowest monitored loss (validation loss, or training loss without validation).
    best_epoch : int or None
        Its epoch.
    bad_epochs : int
        Epochs since it.
    done : bool
        Finished (last epoch, or stopped early).
    wall_s : float
        Wall time spent training [s]: every epoch's training, validation and checkpoint,
        summed over the sessions of a resumed run (a rerun of a finished run adds nothing).
    """

    epoch: int = 0
    step: int = 0
    history: list = field(default_factory=list)
    best_val: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    done: bool = False
    wall_s: float = 0.0

    def end_epoch(self, rec: dict, config: TrainConfig) -> bool:
        """Record an epoch; decide early stopping. Returns whether the epoch is the best so far."""
        monitor = rec["val_loss"] if rec["val_loss"] is not None else rec["train_loss"]
        self.history.append(rec)
        self.epoch = rec["epoch"]
        improved = self.best_val is None or monitor < self.best_val
        if improved:
            self.best_val, self.best_epoch, self.bad_epochs = monitor, self.epoch, 0
        else:
            self.bad_epochs += 1
        if config.patience and self.bad_epochs >= config.patience:
            self.done = True
            log.info("early stop after epoch %d (best %d)", self.epoch, self.best_epoch)
        if self.epoch >= config.epochs:
            self.done = True
        return improved

    def summary(self, config: TrainConfig) -> dict:
        """Epochs run, best epoch with its validation loss and metric, early stop, mean throughput.

        ``images_per_s`` and ``data_wait_fraction`` (the share of the training time spent
        waiting for batches) are means over the epochs after the first (which holds the
        compilation), or the first's where there is one epoch; ``data_wait_fraction`` is None
        when no epoch recorded it (a run trained before it was measured).
        """
        hist = self.history
        best_rec = next((h for h in hist if h["epoch"] == self.best_epoch), {})
        waits = [h["data_wait_fraction"] for h in hist if h.get("data_wait_fraction") is not None]
        return {
            "epochs_run": self.epoch, "best_epoch": self.best_epoch, "best_val_loss": best_rec.get("val_loss"),
            "best_val_metric": best_rec.get("val_metric"), "stopped_early": self.epoch < config.epochs,
            "images_per_s": float(np.mean([h["images_per_s"] for h in hist[1:]] or [h["images_per_s"] for h in hist]))
            if hist else None,
            "data_wait_fraction": float(np.mean(waits[1:] or waits)) if waits else None,
        }


# --------------------------------------------------------------------------------------
# one epoch, and the loop
# --------------------------------------------------------------------------------------
class DataWait:
    """The time a consumer waits for the items of an iterator: the training loop for its batches.

    :meth:`wrap` yields the items of an iterable and adds to :attr:`seconds` the time each
    ``next`` took. In :func:`train_epoch` every call's metric is read before the next batch
    is asked for, so the device is idle while the loop waits: ``seconds`` over the epoch's
    wall time is the fraction of the time the device waited for data (the first epoch's
    includes the start of the data source, e.g. the simulation workers of a live run).

    Examples
    --------
    >>> wait = DataWait()
    >>> list(wait.wrap(range(3))), wait.seconds >= 0.0
    ([0, 1, 2], True)
    """

    def __init__(self):
        self.seconds = 0.0

    def wrap(self, iterable: Iterable) -> Iterator:
        """Yield the items of ``iterable``, timing each wait; closes it when closed early."""
        it = iter(iterable)
        try:
            while True:
                t = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    return
                finally:
                    self.seconds += time.perf_counter() - t
                yield item
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()


def train_epoch(train_call: Callable, state, td: TrainData, config: TrainConfig, epoch: int, step: int,
                key: jax.Array, sharding: Sharding, *, show: bool = True):
    """Train on every batch of one epoch.

    Parameters
    ----------
    train_call : callable
        :func:`make_train_call` of the model.
    state : pytree
        Arrays of ``(model, optimizer)``, placed by ``sharding``.
    td : learn.data.TrainData
        Source of the batches, normaliser and target scaling.
    config : TrainConfig
    epoch : int
        Epoch number (0-based; seeds the order and augmentations).
    step : int
        Global micro-batch step at the start of the epoch.
    key : jax.Array
        The run's key (dropout of step ``t`` uses ``fold_in(key, t)``).
    sharding : learn.predict.Sharding
    show : bool
        Show a progress bar in images (:func:`turbsim.console.progress`).

    Returns
    -------
    state : pytree
        The arrays after the epoch.
    record : dict
        ``train_loss`` (mean over steps), ``train_metric`` (accuracy or RMSE of n),
        ``images_per_s``, ``epoch_s`` [s], and the time the loop waited for its batches:
        ``data_wait_s`` [s] and ``data_wait_fraction`` (of ``epoch_s``; :class:`DataWait`).
    step : int
        Global step after the epoch.
    """
    t0 = time.perf_counter()
    losses, msum, n_img = [], 0.0, 0
    total = calls_per_epoch(td.n_train, config.augment, config.batch_size, config.steps_per_call)
    bar = progress_bar(total=total * config.batch_size * config.steps_per_call, unit="img", leave=False,
                       desc=f"epoch {epoch + 1}/{config.epochs}", disable=not show)
    wait = DataWait()
    batches = wait.wrap(prefetch(epoch_batches(td.source, epoch, seed=config.seed, batch_size=config.batch_size,
                                               steps_per_call=config.steps_per_call, augment=config.augment,
                                               normaliser=td.normaliser)))
    for xs, ys in batches:
        if config.task == "regress":
            ys = td.scaler.encode(ys).astype(np.float32)
        state, loss, metric = train_call(state, sharding.put_batch(xs, 1), sharding.put_batch(ys, 1),
                                         jnp.int32(step), key)
        step += xs.shape[0]
        losses.append(loss)
        msum += float(jnp.sum(metric))
        n_img += xs.shape[0] * xs.shape[1]
        bar.update(xs.shape[0] * xs.shape[1])
    bar.close()
    dt = time.perf_counter() - t0
    record = {"train_loss": float(np.mean(np.concatenate([np.asarray(v) for v in losses]))),
              "train_metric": metric_value(config.task, msum / max(n_img, 1), td.scaler),
              "images_per_s": n_img / dt, "epoch_s": dt,
              "data_wait_s": wait.seconds, "data_wait_fraction": wait.seconds / dt if dt > 0 else 0.0}
    return state, record, step


def _steps_per_epoch(config: TrainConfig, td: TrainData) -> int:
    calls = calls_per_epoch(td.n_train, config.augment, config.batch_size, config.steps_per_call)
    if calls == 0:
        raise DataError(
            f"{td.description['data']}: {images_per_epoch(td.n_train, config.augment)} training images per "
            f"epoch are fewer than batch_size x steps_per_call = {config.batch_size * config.steps_per_call}")
    return calls * config.steps_per_call


def train_and_evaluate(config: TrainConfig, workdir, *, on_epoch_end: Callable[[int, dict], None] | None = None,
                       progress: bool = True, devices=None) -> dict:
    """Train a model, validating and checkpointing every epoch; resume if interrupted.

    Parameters
    ----------
    config : TrainConfig
    workdir : path-like
        Run directory (created; :mod:`learn.rundir`). If it holds checkpoints of the same
        configuration, training continues after the latest one.
    on_epoch_end : callable, optional
        ``f(epoch, record)`` after each epoch's checkpoint (e.g. to stop a test run).
    progress : bool
        Show a progress bar per epoch (a terminal bar, or plain lines when redirected).
    devices : list of jax devices, optional
        Devices of the data-parallel mesh (default: all local devices).

    Returns
    -------
    dict
        The training summary (also written to ``train_summary.json``): epochs run, best
        epoch, best validation loss and metric, whether it stopped early, training wall
        time ``train_wall_s`` [s] (summed over the sessions of a resumed run, unchanged by
        rerunning a finished one), mean training throughput [images/s] and the mean share of
        the training time spent waiting for data (``data_wait_fraction``, :class:`DataWait`).

    Raises
    ------
    learn.transforms.DataError, learn.rundir.RunError, ValueError
        Bad data, a run directory of another configuration, a batch size not divisible
        by the number of devices, or too few images for one training call.
    """
    workdir = Path(workdir)
    sharding = Sharding(devices)
    if config.batch_size % sharding.n:
        raise ValueError(f"batch_size {config.batch_size} is not divisible by the {sharding.n} devices")
    td = open_data(config)
    steps_per_epoch = _steps_per_epoch(config, td)
    info = {
        "config": config.to_dict(), "data": td.description, "image_size": td.image_size,
        "full_maps": td.image_size == td.map_size, "steps_per_epoch": steps_per_epoch,
        "normaliser": td.normaliser.to_dict(), "scaler": td.scaler.to_dict() if td.scaler else None,
        "versions": versions(),
    }
    check_workdir(workdir, info)
    if config.refit_readout and td.val is None:
        raise DataError(f"{td.description['data']}: refit_readout needs a test split to choose its penalty")

    model, opt = model_and_optimizer(config, td.image_size, steps_per_epoch)
    info["n_params"] = count_params(model)
    workdir.mkdir(parents=True, exist_ok=True)  # after the data and the directory are checked
    write_json(workdir / RUN_FILE, info)
    loss_fn = loss_and_metric(config.task, config.uncertainty)
    model.train()
    graphdef, state = nnx.split((model, opt))
    checkpoints = Checkpoints(workdir)
    got, prog = checkpoints.restore(state), Progress()
    if got is not None:
        meta = dict(got[1])
        if "wall_s" not in meta:  # a checkpoint written before the record held it: the old summary's
            old = workdir / SUMMARY_FILE
            meta["wall_s"] = json.loads(old.read_text()).get("train_wall_s", 0.0) if old.is_file() else 0.0
        state, prog = got[0], Progress(**meta)
        log.info("%s: resuming after epoch %d", workdir, prog.epoch)
    state = sharding.put_state(state)
    train_call = make_train_call(graphdef, loss_fn)
    key = jax.random.key(config.seed)
    lr_fn = learning_rate_schedule(config, steps_per_epoch)
    val = validation_set(config, td)

    try:
        last_plot = -math.inf
        while not prog.done and prog.epoch < config.epochs:
            t0, step0 = time.perf_counter(), prog.step
            state, rec, prog.step = train_epoch(train_call, state, td, config, prog.epoch, prog.step, key, sharding,
                                               show=progress)
            nnx.update((model, opt), state)
            rec = {"epoch": prog.epoch + 1, **rec, "val_loss": None, "val_metric": None,
                   "learning_rate": float(np.mean(lr_fn(np.arange(step0, prog.step))))}  # the epoch's mean
            if val is not None:
                vl, vm = validation_loss(model, val.x, val.y, loss_fn, config.eval_batch_size, sharding)
                rec["val_loss"], rec["val_metric"] = vl, metric_value(config.task, vm, td.scaler)
            best = prog.end_epoch(rec, config)
            prog.wall_s += time.perf_counter() - t0  # before the save: the checkpoint's record holds it
            checkpoints.save(prog.epoch, state, dataclasses.asdict(prog), best=best)
            drawn = prog.done or time.perf_counter() - last_plot >= PLOT_EVERY_S
            write_history(workdir, prog.history, config.task, plot=drawn)
            last_plot = time.perf_counter() if drawn else last_plot
            log.info("epoch %d: train loss %.4f metric %.4f | val loss %s metric %s | lr %.3g | %.0f img/s, "
                     "%.0f %% waiting for data", prog.epoch, rec["train_loss"], rec["train_metric"], rec["val_loss"],
                     rec["val_metric"], rec["learning_rate"], rec["images_per_s"], 100 * rec["data_wait_fraction"])
            if on_epoch_end is not None:
                on_epoch_end(prog.epoch, rec)
        summary = {**prog.summary(config), "train_wall_s": prog.wall_s, "n_params": info["n_params"],
                   "devices": sharding.n}
        if config.refit_readout:
            summary["readout"] = refit_readout(config, workdir, td, val, sharding, show=progress)
        write_json(workdir / SUMMARY_FILE, summary)
        return summary
    finally:
        close = getattr(td.source, "close", None)
        if close is not None:  # a live source's simulation workers
            close()


def refit_readout(config: TrainConfig, workdir: Path, td: TrainData, val: Validation, sharding: Sharding, *,
                  show: bool = False) -> dict:
    """Fit the best network's readout on its training features (once; the file makes it resumable).

    ``show`` draws a progress bar of the feature extraction, in simulations.

    Returns
    -------
    dict
        The chosen ``penalty``, the readout's validation score ``val_score`` and the trained
        head's ``head_val_score`` (:func:`learn.readout.score`); for regression also both as
        per-simulation RMSE of n.
    """
    path = workdir / READOUT_FILE
    if not path.is_file():
        run = load_run(workdir, readout=False)
        feats, ys = [], []
        bar = progress_bar(total=td.n_train, desc="readout features", unit="sim", disable=not show, leave=False)
        for chunk in td.source.chunks(0, np.random.default_rng(config.seed)):
            x, idx = eval_images(chunk.maps, td.normaliser, run.full_maps)
            feats.append(run.predict(x, batch_size=config.eval_batch_size, sharding=sharding, features=True))
            y = chunk.y if config.task == "classify" else td.scaler.encode(chunk.y)
            ys.append(np.asarray(y)[idx])
            bar.update(len(chunk.maps))
        bar.close()
        f_val = run.predict(val.x, batch_size=config.eval_batch_size, sharding=sharding, features=True)
        fitted = lreadout.fit_readout(config.task, np.concatenate(feats), np.concatenate(ys), f_val, val.y,
                                      val.sim_index, uncertainty=config.uncertainty)
        fitted.save(path)
        log.info("%s: readout refitted on %d training images (penalty %.3g, validation score %.4g)", workdir,
                 sum(len(f) for f in feats), fitted.penalty, fitted.val_score)
    fitted = lreadout.Readout.load(path)
    head = load_run(workdir, readout=False).predict(val.x, batch_size=config.eval_batch_size, sharding=sharding)
    out = {"penalty": fitted.penalty, "val_score": fitted.val_score,
           "head_val_score": lreadout.score(config.task, head, val.y, val.sim_index)}
    if config.task == "regress":  # in units of n
        out["val_per_sim_rmse"] = fitted.val_score * td.scaler.std
        out["head_val_per_sim_rmse"] = out["head_val_score"] * td.scaler.std
    return out

"""Training: a jitted pure step, explicit state, checkpoints with resume, early stopping.

Shaped like the Flax MNIST example: :class:`TrainConfig` (frozen, validated once), a pure
training call built by :func:`make_train_call` (``nnx.value_and_grad`` and
``nnx.Optimizer(model, tx, wrt=nnx.Param)`` inside ``jax.jit`` over the split model and
optimiser state, ``steps_per_call`` micro-batches per call, unrolled) and one
:func:`train_and_evaluate` that a thin command line calls.

State
    ``nnx.split((model, optimizer))`` gives a static graph definition and a pytree of
    arrays (parameters, batch statistics, optimiser state and step). Only the arrays
    travel through ``jax.jit`` (no NNX graph traversal per step); they are donated, so
    XLA updates them in place.

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

Run directory (``workdir``)
    ``run.json`` (configuration, data description, normalisation, versions),
    ``checkpoints/latest`` and ``checkpoints/best`` (orbax, written every epoch),
    ``history.csv`` and ``curves.png`` (loss and metric per epoch, train and validation;
    the CSV also holds the mean learning rate of the epoch's steps),
    ``train_summary.json``, and with ``refit_readout`` ``readout.npz`` (the closed-form
    readout, :mod:`learn.readout`, fitted after the last epoch from the best checkpoint).
    Rerunning the same command continues from the latest checkpoint; a finished run is
    not trained again (a missing readout is fitted).
"""
from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm.auto import tqdm

from turbsim.atomic import atomic_path

from . import data as ldata
from . import models
from . import readout as lreadout

log = logging.getLogger(__name__)

OPTIMIZERS = ("rmsprop", "adamw")
SCHEDULES = ("constant", "cosine")
RUN_FILE = "run.json"
HISTORY_FILE = "history.csv"
CURVES_FILE = "curves.png"
SUMMARY_FILE = "train_summary.json"
READOUT_FILE = "readout.npz"
CKPT_DIR = "checkpoints"


class RunError(RuntimeError):
    """A run directory cannot be used as asked (names the directory and the problem)."""


# --------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------
def _positive(name, value, kind=int, zero_ok=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not float(value).is_integer()):
        raise ValueError(f"TrainConfig.{name} must be a{'n integer' if kind is int else ' number'}, got {value!r}")
    if not (value >= 0 if zero_ok else value > 0) or not math.isfinite(value):
        raise ValueError(f"TrainConfig.{name} = {value!r} must be {'>= 0' if zero_ok else '> 0'}")
    return kind(value)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (validated at construction).

    Parameters
    ----------
    data : str or None
        Ensemble ``.h5`` file (train split for training, test split for validation).
        With ``live`` it is optional and only validates.
    task : {"classify", "regress"}
        Kolmogorov/Burgers classification or regression of ``n``.
    model : {"study_cnn", "resnet", "pyramid"}
    uncertainty : bool
        Regression with a predicted log-variance (Gaussian negative log-likelihood).
    epochs : int
        Maximum number of epochs.
    batch_size : int
        Images per step (global, over all devices).
    optimizer : {"rmsprop", "adamw"}
        RMSprop as in the study, or AdamW.
    learning_rate : float
        Peak learning rate.
    weight_decay : float
        AdamW's decoupled weight decay (ignored by RMSprop).
    schedule : {"constant", "cosine"}
        Learning rate after ``warmup_epochs`` of linear warm-up: constant, or cosine decay
        to zero at the last epoch.
    warmup_epochs : float
        Epochs of linear warm-up from zero (may be fractional; 0 for none).
    patience : int
        Stop after this many epochs without a lower validation loss (0: never stop early).
    seed : int
        The one seed of the run (see the module docstring).
    normalisation : {"global", "per_image"}
        Image normalisation (:mod:`learn.data`).
    augment : tuple of str
        Augmentations (:data:`learn.data.AUGMENTATIONS`); the study's are flip + quadrant.
    steps_per_call : int
        Training steps (micro-batches) per jitted call (unrolled); fewer dispatches.
    conv_impl : {"auto", "gemm", "xla", "winograd"}
        Convolution implementation (:mod:`learn.models`); ``"auto"``: gemm on a CPU, XLA's
        convolution on an accelerator. All compute the same function of the same parameters,
        so a run trained with one is loaded and scored with another.
    padding : {"zeros", "circular"}
        How convolutions extend an image: zeros, or wrapped around (the exact choice for
        whole maps of the periodic box; refused with quadrant or crop cuts, which are not
        periodic).
    dropout : float or None
        Dropout rate (model default if None).
    memory_budget_mb : float
        Hold the training maps in memory up to this size [MiB], else stream them.
    resnet_widths, resnet_blocks : tuple of int
        ResNet stage widths and blocks per stage.
    pyramid_widths : tuple of int
        Channels of each stage (scale) of the pyramid model.
    pyramid_hidden : int
        Units of the pyramid model's hidden dense layer; 0 reads the log energies linearly.
    pyramid_skip : bool
        Give the pyramid model a linear path from its log energies to the outputs.
    refit_readout : bool
        After training, refit the pyramid model's readout in closed form on its log energies
        (:mod:`learn.readout`: ridge or logistic regression on the training split's evaluation
        images, the penalty chosen on the test split by the per-simulation score) and use it
        in place of the trained head. Needs a test split and a fixed (not live) training set.
    symmetrize : bool
        Evaluate the network averaged over the 8 rotations and reflections of each image
        (the dihedral group D4; test-time augmentation, 8x the evaluation cost): in
        evaluation and in the readout's features, not in the training loop's validation.
        The statistics of the maps are isotropic, so this only removes the orientation
        noise of a network that learned them from rotated and flipped images.
    eval_batch_size : int
        Images per evaluation call.
    live : bool
        Train on freshly simulated maps (:func:`turbsim.generate.stream`).
    live_sims_per_epoch : int
        Simulations per epoch in live mode.
    live_seed : int
        Seed of the live stream (pick one no stored ensemble uses).
    live_sim : tuple of (str, value) pairs
        SimConfig fields of the live simulations (e.g. ``(("cells", 64), ("t_end", 0.5))``).
    live_n_range : (float, float)
        Sweep interval of ``n`` for live regression.
    live_workers : int or None
        Simulation worker processes in live mode.
    """

    data: str | None = None
    task: str = "classify"
    model: str = "study_cnn"
    uncertainty: bool = False
    epochs: int = 20
    batch_size: int = 64
    optimizer: str = "rmsprop"
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    patience: int = 5
    seed: int = 0
    normalisation: str = "global"
    augment: tuple[str, ...] = ldata.STUDY_AUGMENT
    steps_per_call: int = 1
    conv_impl: str = "auto"
    padding: str = "zeros"
    dropout: float | None = None
    memory_budget_mb: float = 2048.0
    resnet_widths: tuple[int, ...] = (32, 64, 128)
    resnet_blocks: tuple[int, ...] = (1, 1, 1)
    pyramid_widths: tuple[int, ...] = (8, 16, 32, 48, 64)
    pyramid_hidden: int = 64
    pyramid_skip: bool = False
    refit_readout: bool = False
    symmetrize: bool = False
    eval_batch_size: int = 256
    live: bool = False
    live_sims_per_epoch: int = 32
    live_seed: int = 987654321
    live_sim: tuple[tuple[str, Any], ...] = ()
    live_n_range: tuple[float, float] = (3.0, 4.5)
    live_workers: int | None = None

    def __post_init__(self):
        set_ = partial(object.__setattr__, self)
        for name, choices in (("task", models.TASKS), ("model", models.MODELS), ("optimizer", OPTIMIZERS),
                              ("schedule", SCHEDULES), ("normalisation", ldata.NORMALISATIONS),
                              ("conv_impl", models.CONV_IMPLS), ("padding", models.PADDINGS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"TrainConfig.{name} = {getattr(self, name)!r} is not one of {', '.join(choices)}")
        for name in ("epochs", "batch_size", "steps_per_call", "eval_batch_size", "live_sims_per_epoch"):
            set_(name, _positive(name, getattr(self, name)))
        for name in ("patience", "seed", "live_seed"):
            set_(name, _positive(name, getattr(self, name), zero_ok=True))
        set_("learning_rate", _positive("learning_rate", self.learning_rate, float))
        set_("memory_budget_mb", _positive("memory_budget_mb", self.memory_budget_mb, float, zero_ok=True))
        for name in ("weight_decay", "warmup_epochs"):
            set_(name, _positive(name, getattr(self, name), float, zero_ok=True))
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ValueError(f"TrainConfig.dropout = {self.dropout!r} must be in [0, 1)")
        if self.uncertainty and self.task != "regress":
            raise ValueError("TrainConfig.uncertainty needs task='regress'")
        set_("augment", ldata.check_augment(self.augment))
        if self.padding == "circular" and set(self.augment) & {"quadrant", "crop"}:
            raise ValueError("TrainConfig.padding = 'circular' needs whole (periodic) maps; augmentations "
                             f"{sorted(set(self.augment) & {'quadrant', 'crop'})} cut non-periodic windows")
        set_("resnet_widths", tuple(int(w) for w in self.resnet_widths))
        set_("resnet_blocks", tuple(int(b) for b in self.resnet_blocks))
        set_("pyramid_widths", tuple(_positive("pyramid_widths", int(w)) for w in self.pyramid_widths))
        if not self.pyramid_widths:
            raise ValueError("TrainConfig.pyramid_widths must not be empty")
        set_("pyramid_hidden", _positive("pyramid_hidden", self.pyramid_hidden, zero_ok=True))
        if self.pyramid_skip and not self.pyramid_hidden:
            raise ValueError("TrainConfig.pyramid_skip needs pyramid_hidden > 0 (with 0 the readout is already linear)")
        if self.refit_readout and self.model != "pyramid":
            raise ValueError(f"TrainConfig.refit_readout needs model='pyramid' (its log energies are the readout's "
                             f"features), got model={self.model!r}")
        if self.refit_readout and self.live:
            raise ValueError("TrainConfig.refit_readout needs a fixed training split, not live simulations")
        if self.pyramid_skip and self.model != "pyramid":
            raise ValueError(f"TrainConfig.pyramid_skip needs model='pyramid', got model={self.model!r}")
        set_("live_sim", tuple((str(k), v) for k, v in (dict(self.live_sim).items())))
        set_("live_n_range", tuple(float(v) for v in self.live_n_range))
        if not self.live and self.data is None:
            raise ValueError("TrainConfig.data is required unless live=True")
        if self.data is not None:
            set_("data", os.fspath(self.data))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["live_sim"] = dict(self.live_sim)
        return json.loads(json.dumps(d))

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {sorted(unknown)}")
        if "live_sim" in d:
            d["live_sim"] = tuple(dict(d["live_sim"]).items())
        for k in ("augment", "resnet_widths", "resnet_blocks", "pyramid_widths", "live_n_range"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------------------
# losses and metrics
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


def learning_rate_schedule(config: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """Learning rate as a function of the global (micro-batch) step."""
    total = max(1, config.epochs * steps_per_epoch)
    warm = int(round(config.warmup_epochs * steps_per_epoch))
    if config.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(0.0, config.learning_rate, warm, max(total, warm + 1), 0.0)
    if warm:
        return optax.linear_schedule(0.0, config.learning_rate, warm)
    return optax.constant_schedule(config.learning_rate)


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """The optax optimiser with its learning-rate schedule (steps are micro-batch steps)."""
    lr = learning_rate_schedule(config, steps_per_epoch)
    if config.optimizer == "rmsprop":
        return optax.rmsprop(lr, decay=0.9, eps=1e-7)  # Keras' RMSprop defaults
    return optax.adamw(lr, weight_decay=config.weight_decay)


# --------------------------------------------------------------------------------------
# the pure training and evaluation calls
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


def dihedral_mean(f: Callable, x: jax.Array) -> jax.Array:
    """Mean of ``f`` over the 8 rotations and reflections (group D4) of square images.

    Parameters
    ----------
    f : callable
        Batch function, ``(B, N, N[, C]) -> (B, ...)``.
    x : jax.Array, shape (B, N, N) or (B, N, N, C)

    Returns
    -------
    jax.Array
        ``mean_g f(g x)``: a function invariant under the group (exactly, up to rounding).
    """
    if x.shape[1] != x.shape[2]:
        raise ValueError(f"symmetrized predictions need square images, got {x.shape[1]}x{x.shape[2]}")
    total = 0.0
    for xf in (x, jnp.flip(x, axis=2)):
        for k in range(4):
            total = total + f(jnp.rot90(xf, k, axes=(1, 2)))
    return total / 8.0


@partial(jax.jit, static_argnums=0, static_argnames=("features", "symmetrize"))
def _apply(graphdef, model_state, x, features=False, symmetrize=False):
    """Outputs (or ``features``) of the model ``graphdef`` with arrays ``model_state`` on a batch ``x``."""
    model = nnx.merge(graphdef, model_state)
    f = model.features if features else model
    return dihedral_mean(f, x) if symmetrize else f(x)


def make_predict_call(graphdef, features: bool = False, symmetrize: bool = False) -> Callable:
    """Jitted ``predict(model_state, x) -> outputs`` of a model graph (in eval mode).

    The graph is a static argument of one module-level jitted function, so every call
    for an equal graph and input shape reuses one compiled program (validation each
    epoch and every evaluation compile it once, not once per call). With ``features`` the
    call returns the model's ``features(x)`` instead (the pyramid's log energies); with
    ``symmetrize`` their mean over the images' rotations and reflections
    (:func:`dihedral_mean`).
    """
    return partial(_apply, graphdef, features=features, symmetrize=symmetrize)


class Sharding:
    """Data parallelism over the local devices: batch axis sharded, state replicated."""

    def __init__(self, devices=None):
        self.devices = list(devices if devices is not None else jax.local_devices())
        self.mesh = jax.sharding.Mesh(np.array(self.devices), ("data",))
        self.replicated = jax.sharding.NamedSharding(self.mesh, jax.sharding.PartitionSpec())
        self.n = len(self.devices)

    def batch(self, axis: int, ndim: int) -> jax.sharding.NamedSharding:
        spec = [None] * ndim
        spec[axis] = "data"
        return jax.sharding.NamedSharding(self.mesh, jax.sharding.PartitionSpec(*spec))

    def put_state(self, state):
        return jax.device_put(state, self.replicated)

    def put_batch(self, x: np.ndarray, axis: int):
        return jax.device_put(x, self.batch(axis, x.ndim))


def predict(model: nnx.Module, images: np.ndarray, *, batch_size: int = 256, sharding: Sharding | None = None,
            progress: bool = False, features: bool = False, symmetrize: bool = False) -> np.ndarray:
    """Raw model outputs for many images (model in eval mode, padded fixed-size batches).

    Parameters
    ----------
    model : nnx.Module
    images : ndarray, shape (M, H, W)
        Normalised images.
    batch_size : int
    sharding : Sharding, optional
        Devices (default: all local devices).
    features : bool
        Return ``model.features`` (e.g. the pyramid's log energies) instead of the outputs.
    symmetrize : bool
        Average over the 8 rotations and reflections of every (square) image.

    Returns
    -------
    ndarray, float32, shape (M, n_out) (or (M, n_features))
    """
    sharding = sharding or Sharding()
    bs = -(-min(batch_size, max(len(images), 1)) // sharding.n) * sharding.n
    model.eval()
    graphdef, mstate = nnx.split(model)
    call = make_predict_call(graphdef, features, symmetrize)
    mstate = sharding.put_state(mstate)
    outs = []
    for start in tqdm(range(0, len(images), bs), desc="predict", disable=not progress, leave=False):
        x = images[start:start + bs]
        pad = bs - len(x)
        if pad:
            x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
        outs.append(np.asarray(call(mstate, sharding.put_batch(x, 0)))[: bs - pad])
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


# --------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------
def _ocp():
    import orbax.checkpoint as ocp

    return ocp


def _manager(path: Path):
    ocp = _ocp()
    opts = ocp.CheckpointManagerOptions(max_to_keep=1, create=True, enable_async_checkpointing=False)
    return ocp.CheckpointManager(path.absolute(), options=opts)


def save_checkpoint(mngr, step: int, state, meta: dict) -> None:
    """Save the state arrays (flattened, in tree order) and a JSON record atomically."""
    ocp = _ocp()
    leaves = {f"{i:05d}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(state))}
    mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(leaves), meta=ocp.args.JsonSave(meta)),
              force=True)
    mngr.wait_until_finished()


def restore_checkpoint(mngr, like_state, step: int | None = None):
    """Restore ``(state, meta)`` from a manager, shaped like ``like_state``; None if empty."""
    ocp = _ocp()
    step = mngr.latest_step() if step is None else step
    if step is None:
        return None
    got = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()))
    leaves, treedef = jax.tree.flatten(like_state)
    arrays = [np.asarray(got.state[f"{i:05d}"]) for i in range(len(leaves))]
    if len(got.state) != len(leaves) or any(a.shape != np.shape(b) for a, b in zip(arrays, leaves)):
        raise RunError(f"{mngr.directory}: checkpoint does not match the model of this run")
    return jax.tree.unflatten(treedef, arrays), dict(got.meta)


# --------------------------------------------------------------------------------------
# run directory helpers
# --------------------------------------------------------------------------------------
def write_json(path: Path, obj) -> None:
    """Write JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def versions() -> dict:
    """Versions of the learning stack."""
    import importlib.metadata as md

    out = {}
    for pkg in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "turbsim"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


HISTORY_FIELDS = ("epoch", "train_loss", "train_metric", "val_loss", "val_metric", "learning_rate", "images_per_s",
                  "epoch_s")


def write_history(workdir: Path, history: list[dict], task: str) -> None:
    """Learning curves: ``history.csv`` and ``curves.png`` (atomic)."""
    with atomic_path(workdir / HISTORY_FILE) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
            w.writeheader()
            w.writerows(history)
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    metric = "accuracy" if task == "classify" else "RMSE of n"
    for i, (key, label) in enumerate((("loss", "loss"), ("metric", metric))):
        ax[i].plot(ep, [h[f"train_{key}"] for h in history], "o-", label="train")
        val = [h[f"val_{key}"] for h in history]
        if any(v is not None and np.isfinite(v) for v in val):
            ax[i].plot(ep, val, "s-", label="validation")
        ax[i].set_xlabel("epoch")
        ax[i].set_ylabel(label)
        ax[i].legend()
    fig.tight_layout()
    with atomic_path(workdir / CURVES_FILE) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------------------
# loading a trained run
# --------------------------------------------------------------------------------------
@dataclass
class Run:
    """A trained model with what is needed to feed it.

    Attributes
    ----------
    model : nnx.Module
        In eval mode, best (lowest validation loss) parameters.
    config : TrainConfig
    normaliser : learn.data.Normaliser
    scaler : learn.data.TargetScaler or None
    image_size : int
        Input side [pixels].
    full_maps : bool
        Trained on whole maps (no quadrants or crops).
    info : dict
        Contents of ``run.json``.
    path : Path
    """

    model: nnx.Module
    config: TrainConfig
    normaliser: ldata.Normaliser
    scaler: ldata.TargetScaler | None
    image_size: int
    full_maps: bool
    info: dict
    path: Path

    def predict(self, images: np.ndarray, **kw) -> np.ndarray:
        """Raw outputs (logits, or standardised mean [and log-variance]) for normalised images.

        Averaged over the images' rotations and reflections if the run's configuration
        says ``symmetrize`` (unless the keyword overrides it).
        """
        kw.setdefault("symmetrize", self.config.symmetrize)
        return predict(self.model, images, **kw)


def _fresh(config: TrainConfig, image_size: int, steps_per_epoch: int):
    extra = {"resnet": {"widths": config.resnet_widths, "blocks": config.resnet_blocks},
             "pyramid": {"widths": config.pyramid_widths, "hidden": config.pyramid_hidden,
                         "skip": config.pyramid_skip, "readout": config.refit_readout}}.get(config.model, {})
    model = models.build_model(config.model, task=config.task, input_size=image_size,
                               uncertainty=config.uncertainty, seed=config.seed, dropout=config.dropout,
                               conv_impl=config.conv_impl, padding=config.padding, **extra)
    opt = nnx.Optimizer(model, make_optimizer(config, steps_per_epoch), wrt=nnx.Param)
    return model, opt


def load_run(run_dir, *, which: str = "best", readout: bool = True) -> Run:
    """Load a trained run for prediction.

    Parameters
    ----------
    run_dir : path-like
        Directory written by :func:`train_and_evaluate`.
    which : {"best", "latest"}
        Checkpoint to load.
    readout : bool
        Install the refitted readout of a ``refit_readout`` run (default True); False
        gives the network with its trained head.

    Raises
    ------
    RunError
        Not a run directory, no checkpoint, or a ``refit_readout`` run whose readout has
        not been fitted yet.
    """
    run_dir = Path(run_dir)
    info_path = run_dir / RUN_FILE
    if not info_path.is_file():
        raise RunError(f"{run_dir}: not a training run directory (no {RUN_FILE})")
    info = json.loads(info_path.read_text())
    config = TrainConfig.from_dict(info["config"])
    model, opt = _fresh(config, info["image_size"], info["steps_per_epoch"])
    like = nnx.state((model, opt))
    ckdir = run_dir / CKPT_DIR / which
    got = restore_checkpoint(_manager(ckdir), like) if ckdir.is_dir() else None
    if got is None:
        raise RunError(f"{run_dir}: no {which} checkpoint yet")
    nnx.update((model, opt), got[0])
    if config.refit_readout and readout:
        path = run_dir / READOUT_FILE
        if not path.is_file():
            raise RunError(f"{run_dir}: the readout is not refitted yet (no {READOUT_FILE}); rerun the training "
                           "command to finish the run")
        fitted = lreadout.Readout.load(path)
        model.set_readout(fitted.weights, fitted.bias)
    model.eval()
    scaler = ldata.TargetScaler(**info["scaler"]) if info.get("scaler") else None
    return Run(model, config, ldata.Normaliser(**info["normaliser"]), scaler, info["image_size"],
               bool(info.get("full_maps", False)), info, run_dir)


# --------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------
def open_data(config: TrainConfig) -> ldata.TrainData:
    """The training data of a configuration (ensemble file or live stream)."""
    if config.live:
        from turbsim import SimConfig

        template = SimConfig(**dict(config.live_sim))
        return ldata.live_train_data(template, task=config.task, augment=config.augment,
                                     normalisation=config.normalisation, sims_per_epoch=config.live_sims_per_epoch,
                                     seed=config.live_seed, val_path=config.data, n_range=config.live_n_range,
                                     workers=config.live_workers)
    return ldata.open_train_data(config.data, task=config.task, augment=config.augment,
                                 normalisation=config.normalisation, memory_budget_mb=config.memory_budget_mb)


def validation_loss(model: nnx.Module, images: np.ndarray, y: np.ndarray, loss_fn: Callable,
                    batch_size: int, sharding: Sharding) -> tuple[float, float]:
    """Mean loss and mean metric of a model on normalised images with targets."""
    out = predict(model, images, batch_size=batch_size, sharding=sharding)
    loss, metric = loss_fn(jnp.asarray(out), jnp.asarray(y))
    model.train()
    return float(loss), float(jnp.mean(metric))


def _metric_value(task: str, mean_metric: float, scaler) -> float:
    """Accuracy, or RMSE of n (from the mean squared error in standardised units)."""
    return mean_metric if task == "classify" else math.sqrt(max(mean_metric, 0.0)) * scaler.std


def _check_workdir(workdir: Path, info: dict) -> None:
    path = workdir / RUN_FILE
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("config") != info["config"]:
            diff = sorted(k for k in set(old.get("config", {})) | set(info["config"])
                          if old.get("config", {}).get(k) != info["config"].get(k))
            raise RunError(f"{workdir} holds a run with a different configuration (fields {diff}); "
                           "use a new output directory or the same options to resume")


def train_and_evaluate(config: TrainConfig, workdir, *, on_epoch_end: Callable[[int, dict], None] | None = None,
                       progress: bool | None = None, devices=None) -> dict:
    """Train a model, validating and checkpointing every epoch; resume if interrupted.

    Parameters
    ----------
    config : TrainConfig
    workdir : path-like
        Run directory (created). If it holds checkpoints of the same configuration,
        training continues after the latest one.
    on_epoch_end : callable, optional
        ``f(epoch, record)`` after each epoch's checkpoint (e.g. to stop a test run).
    progress : bool, optional
        Show progress bars (default: when the output is a terminal).
    devices : list of jax devices, optional
        Devices of the data-parallel mesh (default: all local devices).

    Returns
    -------
    dict
        The training summary (also written to ``train_summary.json``): epochs run, best
        epoch, best validation loss and metric, whether it stopped early, wall time [s],
        mean training throughput [images/s].

    Raises
    ------
    learn.data.DataError, RunError, ValueError
        Bad data, a run directory of another configuration, a batch size not divisible
        by the number of devices, or too few images for one training call.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    sharding = Sharding(devices)
    if config.batch_size % sharding.n:
        raise ValueError(f"batch_size {config.batch_size} is not divisible by the {sharding.n} devices")
    td = open_data(config)
    calls = ldata.calls_per_epoch(td.n_train, config.augment, config.batch_size, config.steps_per_call)
    if calls == 0:
        raise ldata.DataError(
            f"{td.description['data']}: {ldata.images_per_epoch(td.n_train, config.augment)} training images per "
            f"epoch are fewer than batch_size x steps_per_call = {config.batch_size * config.steps_per_call}")
    steps_per_epoch = calls * config.steps_per_call
    full_maps = td.image_size == td.map_size
    info = {
        "config": config.to_dict(), "data": td.description, "image_size": td.image_size, "full_maps": full_maps,
        "steps_per_epoch": steps_per_epoch, "normaliser": td.normaliser.to_dict(),
        "scaler": td.scaler.to_dict() if td.scaler else None, "versions": versions(),
    }
    _check_workdir(workdir, info)
    if config.refit_readout and td.val is None:
        raise ldata.DataError(f"{td.description['data']}: refit_readout needs a test split to choose its penalty")

    model, opt = _fresh(config, td.image_size, steps_per_epoch)
    info["n_params"] = models.count_params(model)
    write_json(workdir / RUN_FILE, info)
    loss_fn = loss_and_metric(config.task, config.uncertainty)
    model.train()
    graphdef, state = nnx.split((model, opt))
    latest, best = _manager(workdir / CKPT_DIR / "latest"), _manager(workdir / CKPT_DIR / "best")
    got = restore_checkpoint(latest, state)
    meta = {"epoch": 0, "step": 0, "history": [], "best_val": None, "best_epoch": None, "bad_epochs": 0,
            "done": False}
    if got is not None:
        state, meta = got
        log.info("%s: resuming after epoch %d", workdir, meta["epoch"])
    state = sharding.put_state(state)
    train_call = make_train_call(graphdef, loss_fn)
    key = jax.random.key(config.seed)
    lr_fn = learning_rate_schedule(config, steps_per_epoch)

    if td.val is not None:
        val_x, val_idx = ldata.eval_set(td.val.maps, td.normaliser, td.image_size, full_maps)
        val_y_sim = ldata.targets(td.val.labels, config.task, td.val.source)
        val_y = val_y_sim[val_idx] if config.task == "classify" else td.scaler.encode(val_y_sim[val_idx])
    t_start = time.perf_counter()
    hide = None if progress is None else not progress
    while not meta["done"] and meta["epoch"] < config.epochs:
        epoch, step0 = meta["epoch"], meta["step"]
        t0 = time.perf_counter()
        losses, msum, n_img = [], 0.0, 0
        batches = ldata.prefetch(ldata.epoch_batches(
            td.source, epoch, seed=config.seed, batch_size=config.batch_size,
            steps_per_call=config.steps_per_call, augment=config.augment, normaliser=td.normaliser))
        for xs, ys in tqdm(batches, total=calls, desc=f"epoch {epoch + 1}/{config.epochs}", disable=hide,
                           leave=False):
            if config.task == "regress":
                ys = td.scaler.encode(ys).astype(np.float32)
            state, l, m = train_call(state, sharding.put_batch(xs, 1), sharding.put_batch(ys, 1),
                                     jnp.int32(meta["step"]), key)
            meta["step"] += xs.shape[0]
            losses.append(l)
            msum += float(jnp.sum(m))
            n_img += xs.shape[0] * xs.shape[1]
        train_loss = float(np.mean(np.concatenate([np.asarray(l) for l in losses])))
        dt = time.perf_counter() - t0
        nnx.update((model, opt), state)
        rec = {"epoch": epoch + 1, "train_loss": train_loss,
               "train_metric": _metric_value(config.task, msum / max(n_img, 1), td.scaler),
               "val_loss": None, "val_metric": None, "images_per_s": n_img / dt, "epoch_s": dt,
               "learning_rate": float(np.mean(lr_fn(np.arange(step0, meta["step"]))))}  # the epoch's mean
        if td.val is not None:
            vl, vm = validation_loss(model, val_x, val_y, loss_fn, config.eval_batch_size, sharding)
            rec["val_loss"], rec["val_metric"] = vl, _metric_value(config.task, vm, td.scaler)
        monitor = rec["val_loss"] if rec["val_loss"] is not None else train_loss
        meta["history"].append(rec)
        meta["epoch"] = epoch + 1
        improved = meta["best_val"] is None or monitor < meta["best_val"]
        if improved:
            meta["best_val"], meta["best_epoch"], meta["bad_epochs"] = monitor, epoch + 1, 0
        else:
            meta["bad_epochs"] += 1
        if config.patience and meta["bad_epochs"] >= config.patience:
            meta["done"] = True
            log.info("early stop after epoch %d (best %d)", epoch + 1, meta["best_epoch"])
        if meta["epoch"] >= config.epochs:
            meta["done"] = True
        if improved:
            save_checkpoint(best, epoch + 1, state, meta)
        save_checkpoint(latest, epoch + 1, state, meta)
        write_history(workdir, meta["history"], config.task)
        log.info("epoch %d: train loss %.4f metric %.4f | val loss %s metric %s | lr %.3g | %.0f img/s", epoch + 1,
                 train_loss, rec["train_metric"], rec["val_loss"], rec["val_metric"], rec["learning_rate"],
                 rec["images_per_s"])
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, rec)
    hist = meta["history"]
    best_rec = next((h for h in hist if h["epoch"] == meta["best_epoch"]), {})
    summary = {
        "epochs_run": meta["epoch"], "best_epoch": meta["best_epoch"], "best_val_loss": best_rec.get("val_loss"),
        "best_val_metric": best_rec.get("val_metric"), "stopped_early": meta["epoch"] < config.epochs,
        "train_wall_s": time.perf_counter() - t_start,
        "images_per_s": float(np.mean([h["images_per_s"] for h in hist[1:]] or [h["images_per_s"] for h in hist]))
        if hist else None,
        "n_params": info["n_params"], "devices": sharding.n,
    }
    if config.refit_readout:
        summary["readout"] = _refit_readout(config, workdir, td, val_x, val_y, val_idx, sharding)
    write_json(workdir / SUMMARY_FILE, summary)
    return summary


def _refit_readout(config: TrainConfig, workdir: Path, td: ldata.TrainData, val_x: np.ndarray, val_y: np.ndarray,
                   val_idx: np.ndarray, sharding: Sharding) -> dict:
    """Fit the best network's readout on its training features (once; the file makes it resumable)."""
    path = workdir / READOUT_FILE
    if not path.is_file():
        run = load_run(workdir, readout=False)
        feats, ys = [], []
        for chunk in td.source.chunks(0, np.random.default_rng(config.seed)):
            x, idx = ldata.eval_images(chunk.maps, td.normaliser, run.full_maps)
            feats.append(run.predict(x, batch_size=config.eval_batch_size, sharding=sharding, features=True))
            y = chunk.y if config.task == "classify" else td.scaler.encode(chunk.y)
            ys.append(np.asarray(y)[idx])
        f_val = run.predict(val_x, batch_size=config.eval_batch_size, sharding=sharding, features=True)
        fitted = lreadout.fit_readout(config.task, np.concatenate(feats), np.concatenate(ys), f_val, val_y, val_idx,
                                      uncertainty=config.uncertainty)
        fitted.save(path)
        log.info("%s: readout refitted on %d training images (penalty %.3g, validation score %.4g)", workdir,
                 sum(len(f) for f in feats), fitted.penalty, fitted.val_score)
    fitted = lreadout.Readout.load(path)
    head = load_run(workdir, readout=False).predict(val_x, batch_size=config.eval_batch_size, sharding=sharding)
    out = {"penalty": fitted.penalty, "val_score": fitted.val_score,
           "head_val_score": lreadout.score(config.task, head, val_y, val_idx)}
    if config.task == "regress":  # in units of n
        out["val_per_sim_rmse"] = fitted.val_score * td.scaler.std
        out["head_val_per_sim_rmse"] = out["head_val_score"] * td.scaler.std
    return out


def final_state(workdir, which: str = "latest") -> list[np.ndarray]:
    """The parameter arrays of a run's checkpoint, in tree order (for comparisons)."""
    run = load_run(workdir, which=which)
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(run.model, nnx.Param))]

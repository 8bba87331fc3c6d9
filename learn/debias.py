"""Adversarial debiasing: a gradient-reversal head on a model's shared features.

A nuisance (the scheme, the resolution, the output time, the code that made a map) must not
decide the answer. Following Ganin & Lempitsky (2015), a small adversary reads the
features the science head reads (``model.features(x)``, :mod:`learn.models`) and learns to
predict the nuisance, while the features receive its gradient **reversed** and scaled by a
weight: the backbone is pushed towards features from which the nuisance cannot be told.

:func:`reverse_gradient` is the identity going forward and multiplies the cotangent by
``-weight`` going back (a :func:`jax.custom_vjp`). :class:`Debiased` wraps any of the three
models with such a head; :func:`train_debiased` trains the science head (cross-entropy on the
class) and the adversary together; with ``weight = 0`` the backbone never sees the adversary,
so the same call trains the plain model, on the same batches, for comparison.

The adversary is *conditional* by default: it also reads the true class (one-hot), so it can
only profit from what the features say about the nuisance beyond the class. On a
planted-artefact ensemble, where the nuisance is correlated with the class on purpose, an
unconditional adversary would also strip the class from the features; the conditional one
removes only the nuisance (the adversarial form of equalised odds, Zhang, Lemoine & Mitchell
2018).

References
----------
Y. Ganin and V. Lempitsky, "Unsupervised domain adaptation by backpropagation", ICML 2015.
B. H. Zhang, B. Lemoine and M. Mitchell, "Mitigating unwanted biases with adversarial
learning", AIES 2018.

Examples
--------
>>> import jax, jax.numpy as jnp
>>> f = jnp.array([1.0, -2.0])
>>> jax.grad(lambda x: (3.0 * x).sum())(f).tolist()
[3.0, 3.0]
>>> jax.grad(lambda x: (3.0 * reverse_gradient(x, 0.5)).sum())(f).tolist()
[-1.5, -1.5]
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from turbsim.console import progress as progress_bar

from .models import PyramidCNN, ResNet, StudyCNN
from .predict import eval_split
from .transfer import random_dihedral

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# gradient reversal
# --------------------------------------------------------------------------------------
@jax.custom_vjp
def reverse_gradient(x, weight):
    """The identity forward; backward, the cotangent times ``-weight``.

    Parameters
    ----------
    x : array or pytree of arrays
        Features (any shape).
    weight : float or scalar array
        Reversal weight lambda >= 0 (0 stops the gradient; 1 the plain reversal).

    Returns
    -------
    array or pytree
        ``x`` unchanged.
    """
    return x


def _rg_fwd(x, weight):
    return x, jnp.asarray(weight, jnp.float32)


def _rg_bwd(weight, g):
    return jax.tree.map(lambda t: (-weight * t).astype(t.dtype), g), jnp.zeros_like(weight)


reverse_gradient.defvjp(_rg_fwd, _rg_bwd)


def science_from_features(model: nnx.Module, f: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
    """A model's outputs from its own ``features(x)`` (what ``model(x)`` computes after them).

    Parameters
    ----------
    model : StudyCNN, ResNet or PyramidCNN
    f : array, shape (batch, n_features)
        ``model.features(x)``.
    rngs : nnx.Rngs, optional
        Dropout.

    Returns
    -------
    array, shape (batch, n_out)
    """
    if isinstance(model, StudyCNN):
        return model.dense[-1](f)
    if isinstance(model, ResNet):
        return model.head(model.dropout(f, rngs=rngs))
    if isinstance(model, PyramidCNN):
        h = f if model.hidden is None else jax.nn.relu(model.hidden(f))
        out = model.head(model.dropout(h, rngs=rngs))
        if model.skip is not None:
            out = out + model.skip(f)
        if model.readout_w is not None:
            out = jnp.where(model.readout_on[...] > 0, f @ model.readout_w[...] + model.readout_b[...], out)
        return out
    raise TypeError(f"no feature head known for a {type(model).__name__}")


def n_features(model: nnx.Module, input_size: int) -> int:
    """Width of ``model.features`` for square images of side ``input_size`` [pixels]."""
    graphdef, state = nnx.split(model)

    def feats(state, x):
        return nnx.merge(graphdef, state).features(x)

    shape = jax.eval_shape(feats, state, jax.ShapeDtypeStruct((1, input_size, input_size), jnp.float32))
    return int(shape.shape[-1])


class Debiased(nnx.Module):
    """A science model with a gradient-reversal adversary on its shared features.

    Parameters
    ----------
    backbone : nnx.Module
        A classifier of :mod:`learn.models` (2 logits); its ``features(x)`` are shared.
    input_size : int
        Image side [pixels] (to size the adversary).
    hidden : int
        Hidden units of the adversary (a two-layer perceptron).
    conditional : bool
        The adversary also reads the one-hot true class (see the module docstring).
    seed : int
        Initialisation of the adversary.
    """

    def __init__(self, backbone: nnx.Module, *, input_size: int, hidden: int = 32, conditional: bool = True,
                 seed: int = 0):
        rngs = nnx.Rngs(params=seed)
        width = n_features(backbone, input_size)
        self.backbone = backbone
        self.conditional = conditional
        self.adv_hidden = nnx.Linear(width + (2 if conditional else 0), hidden, rngs=rngs)
        self.adv_out = nnx.Linear(hidden, 2, rngs=rngs)

    def adversary(self, f: jax.Array, klass: jax.Array, *, frozen: bool = False) -> jax.Array:
        """Nuisance logits ``(batch, 2)`` from features and (if conditional) the class.

        ``frozen``: the adversary's parameters get no gradient (only ``f`` does).
        """
        if self.conditional:
            f = jnp.concatenate([f, jax.nn.one_hot(klass, 2, dtype=f.dtype)], axis=-1)
        if not frozen:
            return self.adv_out(jax.nn.relu(self.adv_hidden(f)))
        sg = jax.lax.stop_gradient
        h = jax.nn.relu(f @ sg(self.adv_hidden.kernel[...]) + sg(self.adv_hidden.bias[...]))
        return h @ sg(self.adv_out.kernel[...]) + sg(self.adv_out.bias[...])

    def __call__(self, x: jax.Array, klass: jax.Array, weight, *, rngs: nnx.Rngs | None = None
                 ) -> tuple[jax.Array, jax.Array]:
        """Science logits and nuisance logits; the adversary's gradient reaches the features reversed.

        Parameters
        ----------
        x : array, shape (batch, H, W)
            Normalised images.
        klass : array of int, shape (batch,)
            True classes (read by a conditional adversary only).
        weight : float
            Reversal weight (0: the backbone ignores the adversary).
        """
        f = self.backbone.features(x)
        science = science_from_features(self.backbone, f, rngs=rngs)
        nuisance = self.adversary(reverse_gradient(f, weight), klass)
        return science, nuisance


# --------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DebiasOptions:
    """Settings of :func:`train_debiased`.

    Parameters
    ----------
    weight : float
        Reversal weight lambda, >= 0 (0 trains the plain model).
    ramp : bool
        Raise the weight as ``lambda (2 / (1 + exp(-10 p)) - 1)`` over the training progress
        ``p`` (Ganin & Lempitsky's schedule), so that the adversary first learns to read
        the features.
    steps : int
        Optimiser steps, >= 1.
    batch_size : int
    learning_rate : float
        Peak learning rate of AdamW (5 % warm-up, cosine decay).
    weight_decay : float
    adversary_hidden : int
    conditional : bool
        The adversary reads the true class too.
    adversary_lr : float
        The adversary's learning rate as a multiple of ``learning_rate`` (a fast adversary
        stays near its best reading of the current features, so that the reversed gradient
        removes the nuisance instead of chasing a stale adversary).
    smoothing : float
        Label smoothing of the adversary's targets, in [0, 1): a saturated adversary's
        gradient vanishes, and with it the reversed gradient that debiases the features;
        smoothed targets keep it alive.
    objective : {"reverse", "confusion"}
        :data:`OBJECTIVES`: gradient reversal, or the non-saturating confusion loss.
    balance : bool
        Weigh the adversary's loss so that every (class, nuisance) cell of the training set
        counts equally: where the nuisance follows the class in 90 % of the simulations, the
        10 % that do not are what tells the adversary (and, reversed, the features) the
        nuisance apart from the class.
    reweight : bool
        Weigh the science loss the same way (every (class, nuisance) cell equally), so that in
        the weighted training set the nuisance says nothing of the class: the planted
        correlation no longer pays (importance weighting; needs the nuisance labels, as the
        adversary does).
    augment : bool
        Random rotations and reflections of every batch.
    seed : int
        Batches, augmentation, dropout and the adversary's initialisation.
    """

    weight: float = 1.0
    ramp: bool = True
    steps: int = 400
    batch_size: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    adversary_hidden: int = 32
    conditional: bool = True
    adversary_lr: float = 1.0
    smoothing: float = 0.0
    objective: str = "reverse"
    balance: bool = True
    reweight: bool = False
    augment: bool = True
    seed: int = 0

    def __post_init__(self):
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise ValueError(f"DebiasOptions.weight = {self.weight!r} must be a finite number >= 0")
        if self.steps < 1:
            raise ValueError(f"DebiasOptions.steps = {self.steps!r} must be >= 1")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"DebiasOptions.objective = {self.objective!r} is not one of {', '.join(OBJECTIVES)}")
        if self.batch_size < 1:
            raise ValueError(f"DebiasOptions.batch_size = {self.batch_size!r} must be >= 1")


def weight_at(options: DebiasOptions, step: int) -> float:
    """The reversal weight at ``step`` (ramped or constant).

    Examples
    --------
    >>> o = DebiasOptions(weight=2.0, steps=100)
    >>> weight_at(o, 0), round(weight_at(o, 100), 3)
    (0.0, 2.0)
    """
    if not options.ramp:
        return float(options.weight)
    p = step / max(options.steps, 1)
    return float(options.weight * (2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0))


OBJECTIVES = ("reverse", "confusion")
"""How the features are pushed: the adversary's gradient reversed (Ganin & Lempitsky 2015), or
towards the adversary's confusion (Tzeng et al. 2015: the backbone minimises the cross-entropy of
the frozen adversary's output against 1/2, which does not vanish when the adversary saturates)."""


@lru_cache(maxsize=8)
def _step_fn(graphdef, smoothing: float, objective: str):
    @jax.jit
    def step(state, x, y, z, zw, sw, weight, key):
        model, opt = nnx.merge(graphdef, state)

        def lf(model):
            f = model.backbone.features(x)
            science = science_from_features(model.backbone, f, rngs=nnx.Rngs(dropout=key))
            ls = (sw * optax.softmax_cross_entropy_with_integer_labels(science, y)).sum() / sw.sum()
            zt = optax.smooth_labels(jax.nn.one_hot(z, 2), smoothing)
            if objective == "reverse":
                nuisance = model.adversary(reverse_gradient(f, weight), y)
                extra = 0.0
            else:
                nuisance = model.adversary(jax.lax.stop_gradient(f), y)
                confused = model.adversary(f, y, frozen=True)
                half = jnp.full_like(confused, 0.5)
                extra = weight * (zw * optax.softmax_cross_entropy(confused, half)).sum() / zw.sum()
            ln = (zw * optax.softmax_cross_entropy(nuisance, zt)).sum() / zw.sum()
            return ls + ln + extra, (ls, ln, (nuisance.argmax(-1) == z).mean())

        (_, aux), grads = nnx.value_and_grad(lf, has_aux=True)(model)
        opt.update(model, grads)
        return nnx.state((model, opt)), aux

    return step


def train_debiased(backbone: nnx.Module, images: np.ndarray, klass: np.ndarray, nuisance: np.ndarray,
                   options: DebiasOptions = DebiasOptions(), *, progress: bool = False) -> tuple[Debiased, dict]:
    """Train a classifier and its gradient-reversal nuisance head together.

    Parameters
    ----------
    backbone : nnx.Module
        A fresh classifier of :mod:`learn.models`; trained in place.
    images : ndarray, shape (M, S, S)
        Normalised images.
    klass : ndarray of int, shape (M,)
        Science class of every image (0/1).
    nuisance : ndarray of int, shape (M,)
        Nuisance of every image (0/1).
    options : DebiasOptions
    progress : bool

    Returns
    -------
    model : Debiased
        In eval mode; ``model.backbone`` is the science classifier.
    history : dict
        Per step: ``science_loss``, ``nuisance_loss``, ``nuisance_accuracy`` (training
        batches) and ``weight``.

    Raises
    ------
    ValueError
        Arrays of different lengths, or labels other than 0 and 1.
    """
    images = np.asarray(images, np.float32)
    klass, nuisance = np.asarray(klass, np.int32), np.asarray(nuisance, np.int32)
    if not (len(images) == len(klass) == len(nuisance)) or images.ndim != 3:
        raise ValueError(f"train_debiased needs images (M, S, S) and M classes and nuisances, got {images.shape}, "
                         f"{klass.shape}, {nuisance.shape}")
    for name, v in (("klass", klass), ("nuisance", nuisance)):
        if not np.isin(v, (0, 1)).all():
            raise ValueError(f"train_debiased: {name} must hold 0 and 1 only, got {sorted(set(v.tolist()))}")
    o = options
    model = Debiased(backbone, input_size=images.shape[-1], hidden=o.adversary_hidden, conditional=o.conditional,
                     seed=o.seed + 1)
    sched = optax.warmup_cosine_decay_schedule(0.0, o.learning_rate, max(1, o.steps // 20), max(o.steps, 2), 0.0)
    fast = optax.warmup_cosine_decay_schedule(0.0, o.learning_rate * o.adversary_lr, max(1, o.steps // 20),
                                              max(o.steps, 2), 0.0)
    def labels(params):
        return jax.tree_util.tree_map_with_path(
            lambda path, _: "adversary" if str(getattr(path[0], "key", path[0])).startswith("adv_") else "model",
            params)

    tx = optax.multi_transform({"model": optax.adamw(sched, weight_decay=o.weight_decay),
                                "adversary": optax.adamw(fast, weight_decay=o.weight_decay)}, labels)
    opt = nnx.Optimizer(model, tx, wrt=nnx.Param)
    model.train()
    graphdef, state = nnx.split((model, opt))
    step = _step_fn(graphdef, float(o.smoothing), o.objective)
    rng = np.random.default_rng(o.seed)
    key = jax.random.key(o.seed)
    bs = min(o.batch_size, len(images))
    cell = klass * 2 + nuisance
    counts = np.bincount(cell, minlength=4).astype(np.float64)
    zweight = (1.0 / counts[cell] if o.balance else np.ones(len(cell))).astype(np.float32)
    zweight *= len(zweight) / zweight.sum()
    sweight = zweight if o.reweight else np.ones(len(cell), np.float32)
    hist = {"science_loss": [], "nuisance_loss": [], "nuisance_accuracy": [], "weight": []}
    order, pos = rng.permutation(len(images)), 0
    for t in progress_bar(range(o.steps), desc="debias" if o.weight else "plain", unit="step",
                          disable=not progress, leave=False, min_time=2):
        if pos + bs > len(order):
            order, pos = rng.permutation(len(images)), 0
        take = order[pos:pos + bs]
        pos += bs
        x = random_dihedral(images[take], rng) if o.augment else images[take]
        w = weight_at(o, t)
        state, (ls, ln, acc) = step(state, jnp.asarray(x), jnp.asarray(klass[take]), jnp.asarray(nuisance[take]),
                                    jnp.asarray(zweight[take]), jnp.asarray(sweight[take]), jnp.float32(w),
                                    jax.random.fold_in(key, t))
        for k, v in zip(("science_loss", "nuisance_loss", "nuisance_accuracy", "weight"), (ls, ln, acc, w)):
            hist[k].append(float(v))
    nnx.update((model, opt), state)
    model.eval()
    log.info("trained %s for %d steps: science loss %.3f, nuisance head %.0f %% on the last training batches",
             "debiased (weight %g)" % o.weight if o.weight else "plain", o.steps,
             np.mean(hist["science_loss"][-20:]), 100 * np.mean(hist["nuisance_accuracy"][-20:]))
    return model, hist


def nuisance_head_outputs(model: Debiased, images: np.ndarray, klass: np.ndarray, *, batch_size: int = 256
                          ) -> np.ndarray:
    """The adversary's nuisance probabilities P(nuisance = 1) of images, shape (M,)."""
    graphdef, state = eval_split(model)

    @jax.jit
    def call(state, x, y):
        m = nnx.merge(graphdef, state)
        return jax.nn.softmax(m.adversary(m.backbone.features(x), y), axis=-1)[:, 1]

    out = [np.asarray(call(state, jnp.asarray(images[a:a + batch_size]),
                           jnp.asarray(klass[a:a + batch_size], jnp.int32)))
           for a in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros(0)

"""Autoencoder realism check: is the other kind of data an anomaly to a model of the real kind?

A small convolutional autoencoder (:class:`ConvAutoencoder`, Flax NNX) is trained on the
images of one domain, the "real" one (RAMSES maps, or the higher resolution), to reproduce
them through a narrow bottleneck. Its reconstruction error, the mean squared difference per
image (in the normalised log10 column density, dimensionless), is an anomaly score: images
unlike the training domain reconstruct worse. :func:`realism_auc` gives the ROC AUC of that
score between held-out images of the real domain and images of the other one: 0.5 means the
autoencoder cannot tell them apart, 1 that every image of the other domain is more anomalous
than every real one.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> ae = ConvAutoencoder(widths=(4, 4), seed=0)
>>> reconstruction_error(ae, rng.normal(size=(3, 16, 16)).astype(np.float32)).shape
(3,)
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from turbsim.console import progress as progress_bar

from .layers import as_nhwc
from .metrics import auc, roc_curve
from .transfer import random_dihedral

log = logging.getLogger(__name__)


class ConvAutoencoder(nnx.Module):
    """Convolutional autoencoder of single-channel square images.

    Encoder: per width, a 3x3 convolution of stride 2 (circular padding: the maps are
    periodic) and ReLU, so the bottleneck has ``widths[-1]`` channels at ``1/2^len(widths)``
    of the image side; decoder: the same in reverse with transposed convolutions, then a
    3x3 convolution to one channel (linear). The image side must be a multiple of
    ``2^len(widths)``.

    Parameters
    ----------
    widths : tuple of int
        Channels of each encoder stage (default 8, 16, 16: a 64 px map becomes 8 x 8 x 16).
    seed : int
        Initialisation.
    """

    def __init__(self, widths=(8, 16, 16), *, seed: int = 0):
        if not widths:
            raise ValueError("ConvAutoencoder needs at least one stage width")
        rngs = nnx.Rngs(params=seed)
        chans = (1,) + tuple(widths)
        self.enc = nnx.List([nnx.Conv(a, b, (3, 3), strides=2, padding="CIRCULAR", rngs=rngs)
                             for a, b in zip(chans[:-1], chans[1:])])
        rev = chans[::-1]
        self.dec = nnx.List([nnx.ConvTranspose(a, b if b > 1 else a, (3, 3), strides=2, padding="SAME", rngs=rngs)
                             for a, b in zip(rev[:-1], rev[1:])])
        self.out = nnx.Conv(rev[-2], 1, (3, 3), padding="CIRCULAR", rngs=rngs)
        self.factor = 2 ** len(widths)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Reconstructed images, the shape of ``x`` (``(batch, H, W)``)."""
        if x.shape[-1] % self.factor or x.shape[-2] % self.factor:
            raise ValueError(f"ConvAutoencoder with {len(self.enc)} stages needs image sides that are multiples "
                             f"of {self.factor}, got {x.shape[-2:]}")
        h = as_nhwc(x)
        for conv in self.enc:
            h = jax.nn.relu(conv(h))
        for conv in self.dec:
            h = jax.nn.relu(conv(h))
        return self.out(h)[..., 0]


@dataclass(frozen=True)
class AutoencoderOptions:
    """Settings of :func:`train_autoencoder`.

    Parameters
    ----------
    widths : tuple of int
        Encoder channels (:class:`ConvAutoencoder`).
    steps : int
        Optimiser steps (Adam, cosine decay), >= 1.
    batch_size : int
    learning_rate : float
    augment : bool
        Random rotations and reflections of every batch.
    seed : int
    """

    widths: tuple = (8, 16, 16)
    steps: int = 300
    batch_size: int = 32
    learning_rate: float = 3e-3
    augment: bool = True
    seed: int = 0

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"AutoencoderOptions: steps = {self.steps!r} and batch_size = {self.batch_size!r} "
                             "must be >= 1")


@lru_cache(maxsize=4)
def _step_fn(graphdef):
    @jax.jit
    def step(state, x):
        model, opt = nnx.merge(graphdef, state)

        def lf(model):
            return ((model(x) - x) ** 2).mean()

        loss, grads = nnx.value_and_grad(lf)(model)
        opt.update(model, grads)
        return nnx.state((model, opt)), loss

    return step


def train_autoencoder(images: np.ndarray, options: AutoencoderOptions = AutoencoderOptions(), *,
                      progress: bool = False) -> tuple[ConvAutoencoder, list[float]]:
    """Train an autoencoder on the images of the real domain.

    Parameters
    ----------
    images : ndarray, shape (M, S, S)
        Normalised images (log10 column density, dimensionless).
    options : AutoencoderOptions
    progress : bool

    Returns
    -------
    model : ConvAutoencoder
    losses : list of float
        Mean squared reconstruction error of every training batch.
    """
    images = np.asarray(images, np.float32)
    if images.ndim != 3 or not len(images):
        raise ValueError(f"train_autoencoder needs images (M, S, S) with M >= 1, got shape {images.shape}")
    o = options
    model = ConvAutoencoder(o.widths, seed=o.seed)
    sched = optax.cosine_decay_schedule(o.learning_rate, max(o.steps, 2))
    opt = nnx.Optimizer(model, optax.adam(sched), wrt=nnx.Param)
    graphdef, state = nnx.split((model, opt))
    step = _step_fn(graphdef)
    rng = np.random.default_rng(o.seed)
    bs = min(o.batch_size, len(images))
    losses, order, pos = [], rng.permutation(len(images)), 0
    for _ in progress_bar(range(o.steps), desc="autoencoder", unit="step", disable=not progress, leave=False,
                          min_time=2):
        if pos + bs > len(order):
            order, pos = rng.permutation(len(images)), 0
        x = images[order[pos:pos + bs]]
        pos += bs
        if o.augment:
            x = random_dihedral(x, rng)
        state, loss = step(state, jnp.asarray(x))
        losses.append(float(loss))
    nnx.update((model, opt), state)
    log.info("autoencoder: reconstruction error %.4g after %d steps", np.mean(losses[-20:]), o.steps)
    return model, losses


def reconstruction_error(model: ConvAutoencoder, images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Mean squared reconstruction error of every image, shape (M,) (dimensionless)."""
    graphdef, state = nnx.split(model)

    @jax.jit
    def call(state, x):
        return ((nnx.merge(graphdef, state)(x) - x) ** 2).mean(axis=(1, 2))

    images = np.asarray(images, np.float32)
    out = [np.asarray(call(state, jnp.asarray(images[a:a + batch_size]))) for a in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros(0)


def realism_auc(model: ConvAutoencoder, real: np.ndarray, other: np.ndarray) -> float:
    """ROC AUC of the reconstruction error between held-out real images (0) and other images (1).

    0.5: indistinguishable to the autoencoder; 1: every other image is more anomalous.
    """
    s = np.concatenate([reconstruction_error(model, real), reconstruction_error(model, other)])
    y = np.r_[np.zeros(len(real)), np.ones(len(other))].astype(int)
    fpr, tpr, _ = roc_curve(y, s)
    return float(auc(fpr, tpr))

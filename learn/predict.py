"""Predictions of a model on many images: batched, sharded over the devices, optionally symmetrized.

:func:`predict` runs a model (in eval mode) over an image stack in fixed-size padded
batches, the batch axis sharded over the local devices (:class:`Sharding`), through one
jitted program per graph and input shape (:func:`make_predict_call`). With
``symmetrize`` the outputs are averaged over the 8 rotations and reflections of each image
(:func:`dihedral_mean`).

Examples
--------
>>> import jax.numpy as jnp
>>> x = jnp.arange(8.0).reshape(2, 2, 2)
>>> dihedral_mean(lambda x: x[:, 0, 0], x).tolist()  # the mean of the 4 corners
[1.5, 5.5]
"""
from __future__ import annotations

from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from turbsim.console import progress as progress_bar


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
    """Data parallelism over the local devices: batch axis sharded, state replicated.

    Parameters
    ----------
    devices : list of jax devices, optional
        Devices of the one-axis (``"data"``) mesh (default: all local devices).
    """

    def __init__(self, devices=None):
        self.devices = list(devices if devices is not None else jax.local_devices())
        self.mesh = jax.sharding.Mesh(np.array(self.devices), ("data",))
        self.replicated = jax.sharding.NamedSharding(self.mesh, jax.sharding.PartitionSpec())
        self.n = len(self.devices)

    def batch(self, axis: int, ndim: int) -> jax.sharding.NamedSharding:
        """Sharding of an ``ndim``-dimensional array split over the devices along ``axis``."""
        spec = [None] * ndim
        spec[axis] = "data"
        return jax.sharding.NamedSharding(self.mesh, jax.sharding.PartitionSpec(*spec))

    def put_state(self, state):
        """The state (any pytree of arrays) replicated on every device."""
        return jax.device_put(state, self.replicated)

    def put_batch(self, x: np.ndarray, axis: int):
        """A batch split over the devices along ``axis`` (its length divisible by their number)."""
        return jax.device_put(x, self.batch(axis, x.ndim))


def eval_split(model: nnx.Module):
    """``nnx.split`` of an eval-mode view of a model; the model itself keeps its mode.

    The view shares the model's arrays (nothing is copied); only its modes differ
    (dropout off, batch statistics from the running averages).

    Returns
    -------
    graphdef : nnx.GraphDef
    state : nnx.State
    """
    view = nnx.merge(*nnx.split(model))
    view.eval()
    return nnx.split(view)


def predict(model: nnx.Module, images: np.ndarray, *, batch_size: int = 256, sharding: Sharding | None = None,
            progress: bool = False, features: bool = False, symmetrize: bool = False) -> np.ndarray:
    """Raw model outputs for many images (in eval mode, padded fixed-size batches).

    The model is evaluated in eval mode whatever its own mode, which is left as it was
    (:func:`eval_split`): a model in training mode stays in training mode.

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
    progress : bool
        Show a progress bar (:func:`turbsim.console.progress`: plain lines when redirected,
        none for a call that ends within 2 s).

    Returns
    -------
    ndarray, float32, shape (M, n_out) (or (M, n_features))
    """
    sharding = sharding or Sharding()
    bs = -(-min(batch_size, max(len(images), 1)) // sharding.n) * sharding.n
    graphdef, mstate = eval_split(model)
    call = make_predict_call(graphdef, features, symmetrize)
    mstate = sharding.put_state(mstate)
    outs = []
    for start in progress_bar(range(0, len(images), bs), desc="predict", unit="batch", disable=not progress,
                              leave=False, min_time=2):
        x = images[start:start + bs]
        pad = bs - len(x)
        if pad:
            x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
        outs.append(np.asarray(call(mstate, sharding.put_batch(x, 0)))[: bs - pad])
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)

"""Saliency maps: what a trained network's output is sensitive to, pixel by pixel.

The gradient of the network's evidence for a class (the logit margin ``z_c - z_other``,
the log-odds of class ``c``, all a two-class softmax reads) or of its predicted ``n``
[units of n] with respect to the input pixels (normalised log10 column density)
(:func:`gradients`); SmoothGrad (the gradient averaged over noisy copies of the image,
Smilkov et al. 2017) and integrated gradients (Sundararajan et al. 2017: ``(x - x0) * mean
over the path x0 -> x of the gradient``, from the mean-level image ``x0 = 0``; its sum over
the pixels equals ``f(x) - f(x0)``) (:func:`saliency`). :mod:`learn.explain` draws them
beside the images.

Examples
--------
>>> output_weights("regress", 1, np.zeros(2), n_scale=0.5).tolist()
[[0.5], [0.5]]
"""
from __future__ import annotations

import logging
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .predict import dihedral_mean, eval_split

log = logging.getLogger(__name__)

METHODS = ("gradient", "smoothgrad", "integrated")
"""Saliency methods: input gradient, SmoothGrad, integrated gradients."""
METHOD_NAMES = {"gradient": "input gradient", "smoothgrad": "SmoothGrad", "integrated": "integrated gradients"}


# --------------------------------------------------------------------------------------
# gradients of a model's outputs
# --------------------------------------------------------------------------------------
@partial(jax.jit, static_argnums=0, static_argnames=("symmetrize",))
def _weighted_grad(graphdef, state, x, weights, symmetrize=False):
    """d/dx of ``sum_i outputs_i . weights_i`` for a batch ``x`` (each image's gradient of its own term)."""
    model = nnx.merge(graphdef, state)

    def total(x):
        out = dihedral_mean(model, x) if symmetrize else model(x)
        return jnp.sum(out * weights)

    return jax.grad(total)(x)


def output_weights(task: str, n_out: int, target=None, *, n_scale: float = 1.0) -> np.ndarray:
    """Weights ``w`` of the model outputs whose gradient is the saliency: ``d(out . w)/dx``.

    Parameters
    ----------
    task : {"classify", "regress"}
    n_out : int
        Outputs per image.
    target : array of int, shape (M,)
        Classification: the class of each image whose evidence is taken, the logit margin
        ``z_c - z_(1-c)`` (log-odds of class c). Ignored for regression.
    n_scale : float
        Regression: units of n per unit of the first output (the target scaler's std), so
        the saliency is ``d n_pred / dx`` [units of n per unit of normalised image].

    Returns
    -------
    ndarray, float32, shape (M, n_out)

    Examples
    --------
    >>> output_weights("classify", 2, np.array([0, 1])).tolist()
    [[1.0, -1.0], [-1.0, 1.0]]
    >>> output_weights("regress", 2, np.zeros(1), n_scale=0.5).tolist()
    [[0.5, 0.0]]
    """
    target = np.asarray(target)
    w = np.zeros((len(target), n_out), np.float32)
    if task == "classify":
        c = target.astype(int)
        if not np.isin(c, (0, 1)).all():
            raise ValueError(f"saliency target classes must be 0 or 1, got {sorted(set(c.tolist()) - {0, 1})}")
        w[np.arange(len(c)), c] = 1.0
        w[np.arange(len(c)), 1 - c] = -1.0
    else:
        w[:, 0] = n_scale
    return w


def gradients(model: nnx.Module, images: np.ndarray, weights: np.ndarray, *, batch_size: int = 64,
              symmetrize: bool = False) -> np.ndarray:
    """Input gradients of weighted model outputs, image by image (the model in eval mode).

    Parameters
    ----------
    model : nnx.Module
        Any model of :mod:`learn.models` (its own mode is left as it was).
    images : ndarray, shape (M, H, W)
        Normalised images.
    weights : ndarray, shape (M, n_out)
        :func:`output_weights`.
    batch_size : int
        Images per jitted call (padded, so one program serves every call).
    symmetrize : bool
        Differentiate the model averaged over the 8 rotations and reflections (as a
        ``symmetrize`` run evaluates it).

    Returns
    -------
    ndarray, float32, shape (M, H, W)
    """
    graphdef, state = eval_split(model)
    images = np.asarray(images, np.float32)
    weights = np.asarray(weights, np.float32)
    bs = max(1, min(batch_size, len(images)))
    out = np.empty(images.shape, np.float32)
    for a in range(0, len(images), bs):
        x, w = images[a:a + bs], weights[a:a + bs]
        pad = bs - len(x)
        if pad:
            x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
            w = np.concatenate([w, np.zeros((pad,) + w.shape[1:], w.dtype)])
        out[a:a + bs] = np.asarray(_weighted_grad(graphdef, state, x, w, symmetrize=symmetrize))[:bs - pad]
    return out


def saliency(model: nnx.Module, images: np.ndarray, weights: np.ndarray, method: str = "gradient", *,
             samples: int = 16, noise: float = 0.15, steps: int = 32, seed: int = 0, batch_size: int = 64,
             symmetrize: bool = False) -> np.ndarray:
    """Saliency maps of images: signed attributions, one per pixel.

    Parameters
    ----------
    model : nnx.Module
    images : ndarray, shape (M, H, W)
        Normalised images.
    weights : ndarray, shape (M, n_out)
        Which output to explain (:func:`output_weights`).
    method : {"gradient", "smoothgrad", "integrated"}
        ``gradient``: ``df/dx``. ``smoothgrad``: the mean of ``df/dx`` over ``samples``
        copies with Gaussian noise of ``noise`` times each image's range (max - min).
        ``integrated``: integrated gradients from the image ``x0 = 0`` (the training mean
        level) with ``steps`` midpoint steps; attributions sum to ``f(x) - f(0)``.
    samples, noise, steps : int, float, int
        As above.
    seed : int
        Seed of the SmoothGrad noise.
    batch_size : int
    symmetrize : bool
        As :func:`gradients`.

    Returns
    -------
    ndarray, float32, shape (M, H, W)
        Units of the explained output per unit of normalised image (gradients) or units of
        the output (integrated gradients).
    """
    grad = partial(gradients, model, weights=weights, batch_size=batch_size, symmetrize=symmetrize)
    images = np.asarray(images, np.float32)
    if method == "gradient":
        return grad(images)
    if method == "smoothgrad":
        rng = np.random.default_rng(seed)
        sigma = noise * (images.max(axis=(1, 2)) - images.min(axis=(1, 2)))[:, None, None]
        total = np.zeros(images.shape, np.float64)
        for _ in range(samples):
            total += grad(images + (sigma * rng.standard_normal(images.shape)).astype(np.float32))
        return (total / samples).astype(np.float32)
    if method == "integrated":
        total = np.zeros(images.shape, np.float64)
        for alpha in (np.arange(steps) + 0.5) / steps:
            total += grad((alpha * images).astype(np.float32))
        return (images * total / steps).astype(np.float32)
    raise ValueError(f"saliency method = {method!r} is not one of {', '.join(METHODS)}")

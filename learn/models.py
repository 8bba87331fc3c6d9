"""Flax NNX models that read log column-density images: the study's CNN, a small ResNet and a
multi-scale CNN with log-energy pooling.

All take images ``(batch, H, W)`` or ``(batch, H, W, 1)`` (NHWC, one channel of
normalised log10 column density, dimensionless) and return one row of raw outputs per
image:

* ``task="classify"``: 2 logits (class 0 Kolmogorov, class 1 Burgers);
* ``task="regress"``: 1 value (the standardised spectral index), or 2 with
  ``uncertainty=True``: the mean and the log-variance of a Gaussian (see
  :func:`learn.train.gaussian_nll`).

Their convolutions and pooling are :mod:`learn.layers` (``conv_impl``, ``padding``).
Each also has ``features(x)``, the representation its output layer reads or is built on
(study_cnn: the last hidden dense layer; resnet: the pooled last stage; pyramid: the log
energies of every scale), which :func:`learn.predict.predict` returns with ``features=True``.

Examples
--------
>>> import jax.numpy as jnp
>>> model = build_model("study_cnn", task="classify", input_size=64, seed=0)
>>> count_params(model)
781378
>>> model.eval()  # dropout off (eval() sets the mode in place and returns None)
>>> model(jnp.zeros((2, 64, 64))).shape
(2, 2)
"""
from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
from flax import nnx

from .layers import Conv, as_nhwc, avg_pool2, max_pool2

# Moved to learn.layers; importable from here until the next release.
from .layers import CONV_IMPLS, PADDINGS, resolve_conv_impl, winograd_conv3x3  # noqa: E402,F401

MODELS = ("study_cnn", "resnet", "pyramid")
TASKS = ("classify", "regress")


def output_size(task: str, uncertainty: bool = False) -> int:
    """Number of raw outputs per image for a task.

    Parameters
    ----------
    task : {"classify", "regress"}
    uncertainty : bool
        Regression with a predicted log-variance.

    Returns
    -------
    int
        2 for classification, 1 (or 2 with ``uncertainty``) for regression.
    """
    if task not in TASKS:
        raise ValueError(f"task = {task!r} is not one of {', '.join(TASKS)}")
    if task == "classify":
        return 2
    return 2 if uncertainty else 1



class StudyCNN(nnx.Module):
    """The study's Keras network rebuilt: 4 x (3x3 conv, ReLU, 2x2 max pool), 3 dense layers.

    Convolutions with 32, 64, 128, 128 filters ('same' padding), then dense layers of
    256 and 64 units with ReLU and dropout, then the output layer: 781,378 parameters for
    a classifier on 64x64 images (the study's count). The flattened feature size depends
    on the input size, so a model is built for one ``input_size`` (divisible by 16).

    Parameters
    ----------
    input_size : int
        Side of the square input images [pixels], a multiple of 16.
    n_out : int
        Outputs per image (:func:`output_size`).
    dropout : float
        Dropout rate after each hidden dense layer (0.5 as in the study).
    conv_impl : {"auto", "gemm", "xla", "winograd"}
        How convolutions are computed (same results).
    padding : {"zeros", "circular"}
        Image extension of the convolutions (circular for whole periodic maps).
    rngs : nnx.Rngs
        Parameter initialisation.
    """

    FILTERS = (32, 64, 128, 128)
    DENSE = (256, 64)

    def __init__(self, input_size: int, n_out: int, *, dropout: float = 0.5, conv_impl: str = "auto",
                 padding: str = "zeros", rngs: nnx.Rngs):
        if input_size % 16:
            raise ValueError(f"study_cnn needs an input size divisible by 16, got {input_size}")
        chans = (1,) + self.FILTERS
        self.convs = nnx.List([Conv(a, b, 3, impl=conv_impl, padding=padding, rngs=rngs)
                                for a, b in zip(chans[:-1], chans[1:])])
        flat = (input_size // 16) ** 2 * self.FILTERS[-1]
        dims = (flat,) + self.DENSE + (n_out,)
        self.dense = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(dims[:-1], dims[1:])])
        self.dropout = nnx.Dropout(dropout)
        self.input_size = input_size

    def features(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """The last hidden dense layer (after ReLU and dropout), ``(batch, 64)``, dimensionless."""
        x = as_nhwc(x)
        for conv in self.convs:
            x = max_pool2(jax.nn.relu(conv(x)))
        x = x.reshape(x.shape[0], -1)
        for layer in self.dense[:-1]:
            x = self.dropout(jax.nn.relu(layer(x)), rngs=rngs)
        return x

    def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        return self.dense[-1](self.features(x, rngs=rngs))


class ResidualBlock(nnx.Module):
    """Basic pre-activation-free residual block: conv-BN-ReLU-conv-BN + shortcut, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int, *, conv_impl: str, padding: str, rngs: nnx.Rngs):
        conv = partial(Conv, use_bias=False, impl=conv_impl, padding=padding, rngs=rngs)
        self.conv1 = conv(cin, cout, 3, stride=stride)
        self.bn1 = nnx.BatchNorm(cout, momentum=0.9, rngs=rngs)
        self.conv2 = conv(cout, cout, 3)
        self.bn2 = nnx.BatchNorm(cout, momentum=0.9, scale_init=nnx.initializers.zeros_init(), rngs=rngs)
        if stride != 1 or cin != cout:
            self.proj = conv(cin, cout, 1, stride=stride)
            self.proj_bn = nnx.BatchNorm(cout, momentum=0.9, rngs=rngs)
        else:
            self.proj = self.proj_bn = None

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x if self.proj is None else self.proj_bn(self.proj(x))
        return jax.nn.relu(y + s)


class ResNet(nnx.Module):
    """Small residual network with batch norm and global average pooling (any input size).

    A 3x3 stem convolution, then one stage per width; the first block of every stage
    halves the resolution (stride 2). Global average pooling makes the network accept
    any image size (a model trained on 64x64 images can score 32x32 or 128x128 ones).

    Parameters
    ----------
    n_out : int
        Outputs per image.
    widths : tuple of int
        Channels of each stage (default 32, 64, 128).
    blocks : tuple of int
        Residual blocks per stage (default 1, 1, 1).
    stem : int
        Channels of the stem convolution (default 32).
    dropout : float
        Dropout rate before the output layer (default 0).
    conv_impl : {"auto", "gemm", "xla", "winograd"}
    padding : {"zeros", "circular"}
    rngs : nnx.Rngs
    """

    def __init__(self, n_out: int, *, widths=(32, 64, 128), blocks=(1, 1, 1), stem: int = 32,
                 dropout: float = 0.0, conv_impl: str = "auto", padding: str = "zeros", rngs: nnx.Rngs):
        if len(widths) != len(blocks) or not widths:
            raise ValueError(f"widths {widths} and blocks {blocks} must be non-empty and of equal length")
        self.stem = Conv(1, stem, 3, use_bias=False, impl=conv_impl, padding=padding, rngs=rngs)
        self.stem_bn = nnx.BatchNorm(stem, momentum=0.9, rngs=rngs)
        layers, cin = [], stem
        for width, nb in zip(widths, blocks):
            for b in range(nb):
                layers.append(ResidualBlock(cin, width, 2 if b == 0 else 1, conv_impl=conv_impl,
                                            padding=padding, rngs=rngs))
                cin = width
        self.blocks = nnx.List(layers)
        self.dropout = nnx.Dropout(dropout)
        self.head = nnx.Linear(cin, n_out, rngs=rngs)

    def features(self, x: jax.Array) -> jax.Array:
        """The globally average-pooled last stage, ``(batch, widths[-1])``, dimensionless."""
        x = jax.nn.relu(self.stem_bn(self.stem(as_nhwc(x))))
        for block in self.blocks:
            x = block(x)
        return x.mean(axis=(1, 2))

    def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        return self.head(self.dropout(self.features(x), rngs=rngs))


class ReadoutParam(nnx.Variable):
    """Weights fitted in closed form after training (:mod:`learn.readout`), not by the optimiser."""


class PyramidCNN(nnx.Module):
    """Multi-scale CNN that pools the log energy of its feature maps at every scale.

    One 3x3 convolution (with bias, ReLU) per stage, then 2x2 average pooling, so stage
    ``s`` sees the image at ``1/2^s`` of its resolution; from every stage the spatial
    mean of each ReLU feature map is taken and its logarithm passed on (a learned,
    phase-blind band energy: for a filtered Gaussian field the mean of the ReLU is its
    standard deviation over sqrt(2 pi), so the log is linear in the log power of the
    band). The log energies of all stages feed a two-layer dense head. A learned
    counterpart of the power-spectrum baseline: it can weigh bands like the ridge does,
    and also read what a spectrum misses (the shape of shocks, non-Gaussian statistics).
    Global pooling makes it accept any image size (with at least ``2^(stages-1)`` pixels a
    side) and it is cheap: at 128 px a forward pass costs about 32 MFLOP per image with the
    default widths, 90 with widths 16, 32, 48, 64, 64 (study_cnn: 390).

    No batch norm: the regression reads small differences between log energies, and batch
    norm's running statistics (used in evaluation) shift them from batch to batch; the
    validation error of a batch-norm version jumped by a factor 2-3 between epochs while
    its training error stayed flat. Without it the network computes the same function in
    training and evaluation.

    Parameters
    ----------
    n_out : int
        Outputs per image.
    widths : tuple of int
        Channels of each stage (default 8, 16, 32, 48, 64: five scales).
    hidden : int
        Units of the hidden dense layer (default 64); 0 gives a linear readout, the outputs a
        linear function of the log energies (the power-spectrum ridge's form on learned bands).
    skip : bool
        Add a linear path from the log energies straight to the outputs (default False), in
        parallel with the dense head: the network then contains the power-spectrum ridge's
        form (a linear function of log band powers) and learns its nonlinear corrections.
        The path starts at zero, so at initialisation the outputs are those without it.
    readout : bool
        Hold a linear readout of the log energies, fitted in closed form after training
        (:meth:`set_readout`, :mod:`learn.readout`); once set, it replaces the trained head's
        outputs (default False). Its weights are :class:`ReadoutParam`, which the optimiser
        leaves alone.
    dropout : float
        Dropout rate before the output layer (default 0).
    eps : float
        Added to the pooled energy before the logarithm (default 1e-3).
    conv_impl : {"auto", "gemm", "xla", "winograd"}
    padding : {"zeros", "circular"}
    rngs : nnx.Rngs
    """

    def __init__(self, n_out: int, *, widths=(8, 16, 32, 48, 64), hidden: int = 64, skip: bool = False,
                 readout: bool = False, dropout: float = 0.0, eps: float = 1e-3, conv_impl: str = "auto", padding: str = "zeros",
                 rngs: nnx.Rngs):
        if not widths:
            raise ValueError("pyramid needs at least one stage width")
        chans = (1,) + tuple(widths)
        self.convs = nnx.List([Conv(a, b, 3, impl=conv_impl, padding=padding, rngs=rngs)
                               for a, b in zip(chans[:-1], chans[1:])])
        if hidden < 0:
            raise ValueError(f"pyramid hidden = {hidden} must be >= 0 (0: linear readout)")
        if skip and not hidden:
            raise ValueError("pyramid skip needs a hidden layer (hidden > 0): with hidden = 0 the readout is "
                             "already linear")
        self.hidden = nnx.Linear(sum(widths), hidden, rngs=rngs) if hidden else None
        self.dropout = nnx.Dropout(dropout)
        self.head = nnx.Linear(hidden or sum(widths), n_out, rngs=rngs)
        # zero at initialisation: the network starts as the one without the path
        self.skip = (nnx.Linear(sum(widths), n_out, use_bias=False, kernel_init=nnx.initializers.zeros,
                                rngs=rngs) if skip else None)
        self.readout_w = ReadoutParam(jnp.zeros((sum(widths), n_out))) if readout else None
        self.readout_b = ReadoutParam(jnp.zeros((n_out,))) if readout else None
        self.readout_on = ReadoutParam(jnp.zeros(())) if readout else None
        self.eps = eps

    def set_readout(self, weights, bias) -> None:
        """Install a fitted linear readout: outputs become ``features(x) @ weights + bias``.

        Parameters
        ----------
        weights : array, shape (sum(widths), n_out)
        bias : array, shape (n_out,)
        """
        if self.readout_w is None:
            raise ValueError("this pyramid was built without a readout (readout=True)")
        weights, bias = jnp.asarray(weights, jnp.float32), jnp.asarray(bias, jnp.float32)
        if weights.shape != self.readout_w.shape or bias.shape != self.readout_b.shape:
            raise ValueError(f"readout of shape {weights.shape} + {bias.shape} does not fit the network's "
                             f"{self.readout_w.shape} + {self.readout_b.shape}")
        self.readout_w[...], self.readout_b[...] = weights, bias
        self.readout_on[...] = jnp.ones(())

    def features(self, x: jax.Array) -> jax.Array:
        """Log energies of every stage's feature maps, ``(batch, sum(widths))``, dimensionless."""
        x = as_nhwc(x)
        if min(x.shape[1:3]) < 2 ** (len(self.convs) - 1):
            raise ValueError(f"pyramid with {len(self.convs)} stages needs images of at least "
                             f"{2 ** (len(self.convs) - 1)} pixels a side, got {x.shape[1:3]}")
        feats = []
        for i, conv in enumerate(self.convs):
            if i:
                x = avg_pool2(x)
            x = jax.nn.relu(conv(x))
            feats.append(jnp.log(x.mean(axis=(1, 2)) + self.eps))
        return jnp.concatenate(feats, axis=-1)

    def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        f = self.features(x)
        h = f if self.hidden is None else jax.nn.relu(self.hidden(f))
        out = self.head(self.dropout(h, rngs=rngs))
        if self.skip is not None:
            out = out + self.skip(f)
        if self.readout_w is not None:
            out = jnp.where(self.readout_on[...] > 0, f @ self.readout_w[...] + self.readout_b[...], out)
        return out


def build_model(name: str, *, task: str, input_size: int, uncertainty: bool = False, seed: int = 0,
                dropout: float | None = None, conv_impl: str = "auto", padding: str = "zeros",
                **kwargs) -> nnx.Module:
    """Build a freshly initialised model.

    Parameters
    ----------
    name : {"study_cnn", "resnet", "pyramid"}
        Architecture.
    task : {"classify", "regress"}
        Sets the size of the output layer (:func:`output_size`).
    input_size : int
        Image side [pixels] (fixes the dense layer of ``study_cnn``; ``resnet`` and ``pyramid``
        accept any).
    uncertainty : bool
        Regression head with a log-variance output.
    seed : int
        Seed of the parameter initialisation.
    dropout : float, optional
        Dropout rate (default 0.5 for ``study_cnn``, 0 for the others).
    conv_impl : {"auto", "gemm", "xla", "winograd"}
        Convolution implementation.
    padding : {"zeros", "circular"}
        Image extension of the convolutions ("circular" only for whole periodic maps).
    **kwargs
        Extra architecture options (``widths``, ``blocks``, ``stem`` for ``resnet``; ``widths``,
        ``hidden``, ``skip``, ``readout`` for ``pyramid``).

    Returns
    -------
    nnx.Module
        The model, in training mode.
    """
    n_out = output_size(task, uncertainty)
    rngs = nnx.Rngs(params=seed)
    if name == "study_cnn":
        if kwargs:
            raise ValueError(f"study_cnn takes no options {sorted(kwargs)}")
        return StudyCNN(input_size, n_out, dropout=0.5 if dropout is None else dropout,
                        conv_impl=conv_impl, padding=padding, rngs=rngs)
    if name == "resnet":
        return ResNet(n_out, dropout=0.0 if dropout is None else dropout, conv_impl=conv_impl, padding=padding,
                      rngs=rngs, **kwargs)
    if name == "pyramid":
        return PyramidCNN(n_out, dropout=0.0 if dropout is None else dropout, conv_impl=conv_impl,
                          padding=padding, rngs=rngs, **kwargs)
    raise ValueError(f"model = {name!r} is not one of {', '.join(MODELS)}")


def count_params(model: nnx.Module) -> int:
    """Number of trainable parameters (``nnx.Param`` entries) of a model."""
    return int(sum(math.prod(p.shape) for p in jax.tree.leaves(nnx.state(model, nnx.Param))))

"""Flax NNX models that read log column-density images: the study's CNN, a small ResNet and a
multi-scale CNN with log-energy pooling.

Both take images ``(batch, H, W)`` or ``(batch, H, W, 1)`` (NHWC, one channel of
normalised log10 column density, dimensionless) and return one row of raw outputs per
image:

* ``task="classify"``: 2 logits (class 0 Kolmogorov, class 1 Burgers);
* ``task="regress"``: 1 value (the standardised spectral index), or 2 with
  ``uncertainty=True``: the mean and the log-variance of a Gaussian (see
  :func:`learn.train.gaussian_nll`).

Convolutions default to ``conv_impl="auto"``: ``"gemm"`` on a CPU, ``"xla"`` on an
accelerator (:func:`resolve_conv_impl`). With ``"gemm"`` the 3x3 patches are gathered
into one matrix (im2col) and multiplied by the kernel in a single matrix product. On a
CPU, XLA's matrix products are several times faster than its convolutions, forward and
backward (see ``benchmarks/train.py``); ``conv_impl="xla"`` uses
``lax.conv_general_dilated`` instead (what GPU convolution libraries are built for).
``conv_impl="winograd"`` computes 3x3 stride-1 convolutions with Winograd's minimal filtering F(2x2, 3x3) (Lavin &
Gray 2016, arXiv:1509.09308): 16 multiplications per 2x2 output tile instead of 36, as
16 batched matrix products, the tile transforms being additions that XLA fuses; other
convolutions (and those with fewer than 16 input channels or odd image sides) use gemm.
All compute the same function with the same parameters (to float32 rounding).

``padding="zeros"`` pads images with zeros ('SAME' convolutions, the usual choice for cut
images); ``padding="circular"`` wraps them around, which is exact for whole projections of
a periodic box: no artificial edge, every pixel seen alike.

Examples
--------
>>> import jax.numpy as jnp
>>> model = build_model("study_cnn", task="classify", input_size=64, seed=0)
>>> count_params(model)
781378
>>> model.eval()(jnp.zeros((2, 64, 64))).shape
(2, 2)
"""
from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
from flax import nnx

MODELS = ("study_cnn", "resnet", "pyramid")
TASKS = ("classify", "regress")
CONV_IMPLS = ("auto", "gemm", "xla", "winograd")
PADDINGS = ("zeros", "circular")
WINOGRAD_MIN_CHANNELS = 16
"""Fewer input channels than this: the Winograd transforms cost more than they save."""


def resolve_conv_impl(impl: str, backend: str | None = None) -> str:
    """The convolution implementation ``impl`` stands for on a backend.

    Parameters
    ----------
    impl : {"auto", "gemm", "xla", "winograd"}
    backend : str, optional
        JAX platform name (default: :func:`jax.default_backend`).

    Returns
    -------
    str
        ``impl`` itself, or for ``"auto"``: ``"gemm"`` on ``"cpu"``, ``"xla"`` elsewhere.
    """
    if impl not in CONV_IMPLS:
        raise ValueError(f"conv impl = {impl!r} is not one of {', '.join(CONV_IMPLS)}")
    if impl != "auto":
        return impl
    return "gemm" if (backend or jax.default_backend()) == "cpu" else "xla"


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


def _winograd_rows(even: jax.Array, odd: jax.Array) -> tuple[jax.Array, ...]:
    """``B^T d`` of F(2x2, 3x3) along axis 1, for every tile at once.

    Tile ``t`` spans samples ``2t .. 2t+3`` of the padded axis: ``even[t], odd[t],
    even[t+1], odd[t+1]``; ``B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]``.
    """
    e0, e1, o0, o1 = even[:, :-1], even[:, 1:], odd[:, :-1], odd[:, 1:]
    return e0 - e1, o0 + e1, e1 - o0, o0 - o1


def _pad_mode(padding: str) -> str:
    if padding not in PADDINGS:
        raise ValueError(f"padding = {padding!r} is not one of {', '.join(PADDINGS)}")
    return "wrap" if padding == "circular" else "constant"


def winograd_conv3x3(x: jax.Array, w: jax.Array, padding: str = "zeros") -> jax.Array:
    """3x3 'SAME' stride-1 convolution by Winograd's F(2x2, 3x3).

    Parameters
    ----------
    x : jax.Array, shape (B, H, W, C)
        Input, NHWC, ``H`` and ``W`` even.
    w : jax.Array, shape (3, 3, C, O)
        Kernel (HWIO).
    padding : {"zeros", "circular"}
        How the image is extended by one pixel on every side.

    Returns
    -------
    jax.Array, shape (B, H, W, O)
        ``V = B^T d B`` per 4x4 input tile, ``U = G g G^T`` per filter, ``M = U V`` as 16
        matrix products over channels, ``Y = A^T M A`` per 2x2 output tile.
    """
    b, h, wd, c = x.shape
    o = w.shape[-1]
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode=_pad_mode(padding))
    tiles = []
    for r in _winograd_rows(xp[:, 0::2], xp[:, 1::2]):  # 4 x (B, H/2, W+2, C)
        rt = jnp.swapaxes(r, 1, 2)  # (B, W+2, H/2, C)
        tiles += _winograd_rows(rt[:, 0::2], rt[:, 1::2])  # 4 x (B, W/2, H/2, C)
    v = jnp.stack(tiles).reshape(16, -1, c)
    g = jnp.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]], w.dtype)
    u = jnp.einsum("ai,ijco,bj->abco", g, w, g).reshape(16, c, o)
    m = jnp.einsum("knc,kco->kno", v, u).reshape(4, 4, b, wd // 2, h // 2, o)
    rows = (m[0] + m[1] + m[2], m[1] - m[2] - m[3])  # A^T along the tile rows
    cols = [jnp.stack((r[0] + r[1] + r[2], r[1] - r[2] - r[3]), axis=2) for r in rows]  # ... and columns
    y = jnp.stack(cols, axis=4).reshape(b, wd, h, o)  # (B, W/2, 2, H/2, 2, O) -> (B, W, H, O)
    return jnp.swapaxes(y, 1, 2)


def _same_pad(x: jax.Array, k: int, stride: int, padding: str = "zeros") -> tuple[jax.Array, int, int]:
    """Pad (B, H, W, C) for a 'SAME' k x k convolution; also return the output side lengths."""
    _, h, w, _ = x.shape
    ho, wo = -(-h // stride), -(-w // stride)
    pad_h = max((ho - 1) * stride + k - h, 0)
    pad_w = max((wo - 1) * stride + k - w, 0)
    xp = jnp.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)),
                 mode=_pad_mode(padding))
    return xp, ho, wo


def _patches(x: jax.Array, k: int, stride: int, padding: str = "zeros") -> jax.Array:
    """im2col with 'SAME' padding (zeros or circular): (B, H, W, C) -> (B, Ho, Wo, k*k*C)."""
    xp, ho, wo = _same_pad(x, k, stride, padding)
    if k == 1:
        return xp[:, : (ho - 1) * stride + 1 : stride, : (wo - 1) * stride + 1 : stride, :]
    cols = [xp[:, i : i + (ho - 1) * stride + 1 : stride, j : j + (wo - 1) * stride + 1 : stride, :]
            for i in range(k) for j in range(k)]
    return jnp.concatenate(cols, axis=-1)


class Conv(nnx.Module):
    """Square 'SAME' convolution, NHWC, kernel ``(k, k, in, out)`` (He-normal init).

    Parameters
    ----------
    in_features, out_features : int
        Channels in and out.
    kernel_size : int
        Side of the square kernel.
    stride : int
        Stride (1 or 2 here).
    use_bias : bool
        Add a bias (off before batch norm).
    impl : {"auto", "gemm", "xla", "winograd"}
        im2col + one matrix product, XLA's convolution, or Winograd F(2x2, 3x3) where it
        applies; ``"auto"``: gemm on a CPU, xla elsewhere (see the module docstring).
    padding : {"zeros", "circular"}
        How 'SAME' convolutions extend the image (see the module docstring).
    rngs : nnx.Rngs
        Parameter initialisation.
    """

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, *, stride: int = 1,
                 use_bias: bool = True, impl: str = "auto", padding: str = "zeros", rngs: nnx.Rngs):
        impl = resolve_conv_impl(impl)
        _pad_mode(padding)
        init = jax.nn.initializers.he_normal()
        self.kernel = nnx.Param(init(rngs.params(), (kernel_size, kernel_size, in_features, out_features)))
        self.bias = nnx.Param(jnp.zeros((out_features,))) if use_bias else None
        self.k, self.stride, self.impl, self.padding = kernel_size, stride, impl, padding

    def __call__(self, x: jax.Array) -> jax.Array:
        w = self.kernel[...]
        if (self.impl == "winograd" and self.k == 3 and self.stride == 1 and w.shape[2] >= WINOGRAD_MIN_CHANNELS
                and x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0):
            y = winograd_conv3x3(x, w, self.padding)
        elif self.impl in ("gemm", "winograd"):
            cols = _patches(x, self.k, self.stride, self.padding)
            y = cols @ w.reshape(-1, w.shape[-1])
        else:
            xp = _same_pad(x, self.k, self.stride, self.padding)[0]
            y = jax.lax.conv_general_dilated(xp, w, (self.stride, self.stride), "VALID",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
        if self.bias is not None:
            y = y + self.bias[...]
        return y


def _windows(x: jax.Array) -> jax.Array:
    """(B, H, W, C) -> (B, H/2, 2, W/2, 2, C): the 2x2 pooling windows as axes 2 and 4."""
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c)


@jax.custom_vjp
def max_pool2(x: jax.Array) -> jax.Array:
    """2x2 max pooling with stride 2 (NHWC, even H and W).

    The gradient goes to the window's maximum, in one fused select: ``dx = dy`` where ``x``
    equals its window's maximum, 0 elsewhere. JAX's own rule for a max reduction also
    counts the tied maxima of every window and divides the gradient among them, two more
    passes over the full-resolution activations; those passes were 15-20 % of a
    study_cnn training step on a CPU (``benchmarks/train.py``). The two rules differ only
    where a window holds several equal maxima: after a ReLU these are zeros, whose
    gradient the ReLU sets to 0 under either rule.
    """
    return _windows(x).max(axis=(2, 4))


def _max_pool2_fwd(x: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    y = max_pool2(x)
    return y, (x, y)


def _max_pool2_bwd(res: tuple[jax.Array, jax.Array], dy: jax.Array) -> tuple[jax.Array]:
    x, y = res
    up = (slice(None), slice(None), None, slice(None), None, slice(None))
    dx = jnp.where(_windows(x) == y[up], dy[up], jnp.zeros((), dy.dtype))
    return (dx.reshape(x.shape),)


max_pool2.defvjp(_max_pool2_fwd, _max_pool2_bwd)


def _as_nhwc(x: jax.Array) -> jax.Array:
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] != 1:
        raise ValueError(f"images must be (batch, H, W) or (batch, H, W, 1), got shape {x.shape}")
    return x


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

    def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        x = _as_nhwc(x)
        for conv in self.convs:
            x = max_pool2(jax.nn.relu(conv(x)))
        x = x.reshape(x.shape[0], -1)
        for layer in self.dense[:-1]:
            x = self.dropout(jax.nn.relu(layer(x)), rngs=rngs)
        return self.dense[-1](x)


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

    def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        x = jax.nn.relu(self.stem_bn(self.stem(_as_nhwc(x))))
        for block in self.blocks:
            x = block(x)
        x = x.mean(axis=(1, 2))
        return self.head(self.dropout(x, rngs=rngs))


def avg_pool2(x: jax.Array) -> jax.Array:
    """2x2 average pooling with stride 2 (NHWC, even H and W)."""
    return _windows(x).mean(axis=(2, 4))


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
        x = _as_nhwc(x)
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

"""Layers of the learn models: convolutions (three implementations, two paddings) and pooling.

Convolutions default to ``impl="auto"``: ``"gemm"`` on a CPU, ``"xla"`` on an
accelerator (:func:`resolve_conv_impl`). With ``"gemm"`` the 3x3 patches are gathered
into one matrix (im2col) and multiplied by the kernel in a single matrix product. On a
CPU, XLA's matrix products are several times faster than its convolutions, forward and
backward (see ``benchmarks/train.py``); ``impl="xla"`` uses
``lax.conv_general_dilated`` instead (what GPU convolution libraries are built for).
``impl="winograd"`` computes 3x3 stride-1 convolutions with Winograd's minimal filtering
F(2x2, 3x3) (Lavin & Gray 2016, arXiv:1509.09308): 16 multiplications per 2x2 output tile
instead of 36, as 16 batched matrix products, the tile transforms being additions that XLA
fuses; other convolutions (and those with fewer than 16 input channels or odd image sides)
use gemm. All compute the same function with the same parameters (to float32 rounding).

``padding="zeros"`` pads images with zeros ('SAME' convolutions, the usual choice for cut
images); ``padding="circular"`` wraps them around, which is exact for whole projections of
a periodic box: no artificial edge, every pixel seen alike.

Pooling: :func:`max_pool2` (2x2 maximum with a one-select gradient) and :func:`avg_pool2`.

Examples
--------
>>> import jax.numpy as jnp
>>> from flax import nnx
>>> x = jnp.arange(16.0).reshape(1, 4, 4, 1)
>>> max_pool2(x)[0, :, :, 0].tolist()
[[5.0, 7.0], [13.0, 15.0]]
>>> Conv(1, 8, 3, impl="gemm", padding="circular", rngs=nnx.Rngs(0))(x).shape
(1, 4, 4, 8)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

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


def as_nhwc(x: jax.Array) -> jax.Array:
    """Images ``(B, H, W)`` or ``(B, H, W, 1)`` as one-channel NHWC ``(B, H, W, 1)``; anything else is refused."""
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] != 1:
        raise ValueError(f"images must be (batch, H, W) or (batch, H, W, 1), got shape {x.shape}")
    return x


def avg_pool2(x: jax.Array) -> jax.Array:
    """2x2 average pooling with stride 2 (NHWC, even H and W)."""
    return _windows(x).mean(axis=(2, 4))


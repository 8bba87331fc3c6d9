"""learn.layers: the convolution implementations agree, circular padding, the pooling gradient.

Layers and gradients are computed in jitted programs: JAX's eager mode would compile every
operation separately, many times slower on a CPU.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("flax")
from flax import nnx  # noqa: E402

from learn import layers  # noqa: E402


def _apply(layer, x):
    return nnx.jit(lambda m, x: m(x))(layer, x)


XLA_CONV = jax.jit(lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                             dimension_numbers=("NHWC", "HWIO", "NHWC")))


@pytest.mark.parametrize("k,stride", [(3, 1), (3, 2), (1, 2)])
def test_gemm_convolution_equals_xla_convolution(k, stride):
    x = jax.random.normal(jax.random.key(0), (2, 10, 10, 3))
    a = layers.Conv(3, 5, k, stride=stride, impl="gemm", rngs=nnx.Rngs(1))
    b = layers.Conv(3, 5, k, stride=stride, impl="xla", rngs=nnx.Rngs(1))
    np.testing.assert_allclose(_apply(a, x), _apply(b, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 8, 8, 16), (3, 12, 6, 32)])
def test_winograd_convolution_equals_xla_convolution(shape):
    x = jax.random.normal(jax.random.key(0), shape)
    w = jax.random.normal(jax.random.key(1), (3, 3, shape[-1], 24))
    ref = XLA_CONV(x, w)
    out = jax.jit(layers.winograd_conv3x3)(x, w)
    # F(2x2, 3x3) is exact in exact arithmetic: float32 rounding only
    assert float(jnp.abs(out - ref).max() / jnp.abs(ref).max()) < 1e-5
    # and so are its gradients (autodiff through the transforms)
    f = lambda conv: jax.jit(jax.grad(lambda x, w: jnp.sum(conv(x, w) * ref), argnums=(0, 1)))(x, w)  # noqa: E731
    for a, b in zip(f(layers.winograd_conv3x3), f(XLA_CONV)):
        assert float(jnp.abs(a - b).max() / jnp.abs(b).max()) < 1e-5


def test_auto_convolution_is_gemm_on_a_cpu_and_xla_on_accelerators():
    assert layers.resolve_conv_impl("auto", "cpu") == "gemm"
    assert layers.resolve_conv_impl("auto", "gpu") == "xla" == layers.resolve_conv_impl("auto", "tpu")
    assert layers.resolve_conv_impl("winograd", "gpu") == "winograd"
    assert layers.Conv(1, 2, rngs=nnx.Rngs(0)).impl == layers.resolve_conv_impl("auto")
    with pytest.raises(ValueError, match="'fft' is not one of"):
        layers.resolve_conv_impl("fft")


def test_max_pool_gradient_equals_jaxs_rule_without_ties():
    x = jax.random.normal(jax.random.key(3), (2, 8, 6, 5))
    w = jax.random.normal(jax.random.key(4), (2, 4, 3, 5))
    ref_pool = lambda x: x.reshape(2, 4, 2, 3, 2, 5).max(axis=(2, 4))  # noqa: E731
    np.testing.assert_array_equal(jax.jit(layers.max_pool2)(x), ref_pool(x))
    g = jax.jit(jax.grad(lambda x: jnp.sum(layers.max_pool2(x) * w)))(x)
    np.testing.assert_array_equal(g, jax.jit(jax.grad(lambda x: jnp.sum(ref_pool(x) * w)))(x))
    # one nonzero per window, carrying that window's weight
    assert int((g != 0).sum()) == w.size
    # after a ReLU, tied zero maxima get no gradient under either rule
    z = jnp.full((1, 2, 2, 1), -1.0)
    assert float(jax.grad(lambda z: layers.max_pool2(jax.nn.relu(z)).sum())(z).sum()) == 0.0


@pytest.mark.parametrize("impl", layers.CONV_IMPLS)
def test_circular_padding_is_periodic_correlation(impl):
    # with circular padding a 3x3 convolution is the periodic cross-correlation: it commutes
    # with periodic shifts and equals the sum of rolled copies of the image
    x = jax.random.normal(jax.random.key(0), (2, 8, 10, 16))
    conv = layers.Conv(16, 4, 3, impl=impl, padding="circular", use_bias=False, rngs=nnx.Rngs(1))
    w = conv.kernel[...]
    ref = jax.jit(lambda x: sum(jnp.roll(x, (1 - i, 1 - j), axis=(1, 2)) @ w[i, j]
                                for i in range(3) for j in range(3)))(x)
    np.testing.assert_allclose(_apply(conv, x), ref, rtol=1e-4, atol=1e-4)
    shifted = _apply(conv, jnp.roll(x, (3, -2), axis=(1, 2)))
    np.testing.assert_allclose(shifted, jnp.roll(_apply(conv, x), (3, -2), axis=(1, 2)), rtol=1e-4, atol=1e-4)
    # zero padding differs only on the border
    zero = _apply(layers.Conv(16, 4, 3, impl=impl, padding="zeros", use_bias=False, rngs=nnx.Rngs(1)), x)
    np.testing.assert_allclose(zero[:, 1:-1, 1:-1], ref[:, 1:-1, 1:-1], rtol=1e-4, atol=1e-4)
    assert not np.allclose(zero[:, 0], ref[:, 0])
    with pytest.raises(ValueError, match="padding"):
        layers.Conv(1, 1, 3, padding="reflect", rngs=nnx.Rngs(0))

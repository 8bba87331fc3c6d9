"""learn.models: the study's parameter count, both convolution paths, output shapes."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("flax")
from flax import nnx  # noqa: E402

from learn import models  # noqa: E402


def test_study_cnn_has_the_studys_parameter_count():
    # the study's Keras network: 781,378 parameters for a 2-class head on 64x64 images
    assert models.count_params(models.build_model("study_cnn", task="classify", input_size=64)) == 781_378


@pytest.mark.parametrize("k,stride", [(3, 1), (3, 2), (1, 2)])
def test_gemm_convolution_equals_xla_convolution(k, stride):
    x = jax.random.normal(jax.random.key(0), (2, 10, 10, 3))
    a = models.Conv(3, 5, k, stride=stride, impl="gemm", rngs=nnx.Rngs(1))
    b = models.Conv(3, 5, k, stride=stride, impl="xla", rngs=nnx.Rngs(1))
    np.testing.assert_allclose(a(x), b(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 8, 8, 16), (3, 12, 6, 32)])
def test_winograd_convolution_equals_xla_convolution(shape):
    x = jax.random.normal(jax.random.key(0), shape)
    w = jax.random.normal(jax.random.key(1), (3, 3, shape[-1], 24))
    ref = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    out = models.winograd_conv3x3(x, w)
    # F(2x2, 3x3) is exact in exact arithmetic: float32 rounding only
    assert float(jnp.abs(out - ref).max() / jnp.abs(ref).max()) < 1e-5
    # and so are its gradients (autodiff through the transforms)
    f = lambda conv: jax.grad(lambda x, w: jnp.sum(conv(x, w) * ref), argnums=(0, 1))(x, w)  # noqa: E731
    for a, b in zip(f(models.winograd_conv3x3), f(lambda x, w: jax.lax.conv_general_dilated(
            x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")))):
        assert float(jnp.abs(a - b).max() / jnp.abs(b).max()) < 1e-5


@pytest.mark.parametrize("name", models.MODELS)
def test_models_equal_across_conv_impls(name):
    x = jax.random.normal(jax.random.key(2), (3, 32, 32))
    outs = []
    for impl in models.CONV_IMPLS:
        m = models.build_model(name, task="regress", uncertainty=True, input_size=32, seed=4, conv_impl=impl)
        m.eval()
        outs.append(m(x))
    assert outs[0].shape == (3, 2)
    for other in outs[1:]:
        np.testing.assert_allclose(outs[0], other, rtol=1e-4, atol=1e-4)


def test_resnet_accepts_any_size_and_heads_have_the_right_width():
    m = models.build_model("resnet", task="classify", input_size=32)
    m.eval()
    for s in (16, 24, 64):
        assert m(jnp.zeros((2, s, s))).shape == (2, 2)
    assert models.output_size("regress") == 1 and models.output_size("regress", True) == 2
    with pytest.raises(ValueError, match="divisible by 16"):
        models.build_model("study_cnn", task="classify", input_size=24)
    with pytest.raises(ValueError, match="model"):
        models.build_model("vgg", task="classify", input_size=32)


def test_dropout_is_active_in_training_only():
    m = models.build_model("study_cnn", task="classify", input_size=16)
    x = jax.random.normal(jax.random.key(0), (4, 16, 16))
    m.train()
    a, b = m(x, rngs=nnx.Rngs(dropout=0)), m(x, rngs=nnx.Rngs(dropout=1))
    assert not np.allclose(a, b)
    m.eval()
    np.testing.assert_array_equal(m(x), m(x))

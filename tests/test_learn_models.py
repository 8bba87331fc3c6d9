"""learn.models: the study's parameter count, equal outputs across convolution implementations, heads.

Models are applied through :func:`_jit` (one compiled program per call): JAX's eager mode
would compile every operation of a model separately, many times slower on a CPU.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("flax")
from flax import nnx  # noqa: E402

from learn import layers, models  # noqa: E402


def _jit(method: str = "__call__"):
    """``f(model, x, **kw)``: a model's method on ``x``, jitted."""
    return nnx.jit(lambda m, x, **kw: getattr(m, method)(x, **kw))


def test_study_cnn_has_the_studys_parameter_count():
    # the study's Keras network: 781,378 parameters for a 2-class head on 64x64 images (shapes only)
    shaped = nnx.eval_shape(lambda: models.build_model("study_cnn", task="classify", input_size=64))
    assert models.count_params(shaped) == 781_378


@pytest.mark.parametrize("name", models.MODELS)
def test_models_equal_across_conv_impls(name):
    x = jax.random.normal(jax.random.key(2), (3, 32, 32))
    outs = []
    for impl in layers.CONV_IMPLS:
        m = models.build_model(name, task="regress", uncertainty=True, input_size=32, seed=4, conv_impl=impl)
        m.eval()
        outs.append(_jit()(m, x))
    assert outs[0].shape == (3, 2)
    for other in outs[1:]:
        np.testing.assert_allclose(outs[0], other, rtol=1e-4, atol=1e-4)


def test_resnet_accepts_any_size_and_heads_have_the_right_width():
    m = models.build_model("resnet", task="classify", input_size=32)
    m.eval()
    for s in (16, 24, 64):
        assert _jit()(m, jnp.zeros((2, s, s))).shape == (2, 2)
    assert models.output_size("regress") == 1 and models.output_size("regress", True) == 2
    with pytest.raises(ValueError, match="divisible by 16"):
        models.build_model("study_cnn", task="classify", input_size=24)
    with pytest.raises(ValueError, match="model"):
        models.build_model("vgg", task="classify", input_size=32)


def test_dropout_is_active_in_training_only():
    m = models.build_model("study_cnn", task="classify", input_size=16)
    x = jax.random.normal(jax.random.key(0), (4, 16, 16))
    m.train()
    a, b = _jit()(m, x, rngs=nnx.Rngs(dropout=0)), _jit()(m, x, rngs=nnx.Rngs(dropout=1))
    assert not np.allclose(a, b)
    m.eval()
    np.testing.assert_array_equal(_jit()(m, x, rngs=nnx.Rngs(dropout=0)), _jit()(m, x, rngs=nnx.Rngs(dropout=1)))


def test_pyramid_accepts_any_size_and_refuses_too_small_images():
    m = models.build_model("pyramid", task="classify", input_size=64, widths=(4, 8, 8))
    m.eval()
    for s in (4, 24, 64):
        assert _jit()(m, jnp.zeros((2, s, s))).shape == (2, 2)
    with pytest.raises(ValueError, match="at least 4 pixels"):
        m(jnp.zeros((2, 3, 8)))
    with pytest.raises(ValueError, match="stage width"):
        models.build_model("pyramid", task="classify", input_size=64, widths=())


def test_pyramid_features_are_log_band_energies():
    # convolutions (zero biases at initialisation) and average pooling are linear and ReLU is
    # positively homogeneous: scaling an image by a shifts every log energy by log(a)
    m = models.build_model("pyramid", task="regress", input_size=32, widths=(6, 8, 8, 8), eps=0.0, seed=3)
    m.eval()
    x = jax.random.normal(jax.random.key(5), (3, 32, 32))
    features = _jit("features")
    shift = features(m, 7.0 * x) - features(m, x)
    assert shift.shape == (3, 30)
    live = np.isfinite(shift)  # a channel whose ReLU is zero everywhere has no log energy
    assert live[:, :6].all() and live.mean() > 0.7
    np.testing.assert_allclose(shift[live], np.log(7.0), atol=1e-4)
    # and a smooth image has less energy at the finest scale than white noise of equal variance
    k = jnp.fft.fftfreq(32)
    smooth = jnp.fft.ifft2(jnp.fft.fft2(x) * jnp.exp(-(k[:, None] ** 2 + k ** 2) / 0.01)).real
    smooth = smooth / smooth.std(axis=(1, 2), keepdims=True)
    white = x / x.std(axis=(1, 2), keepdims=True)
    assert float(features(m, smooth)[:, :6].mean()) < float(features(m, white)[:, :6].mean())


def test_pyramid_skip_path_is_linear_in_the_log_energies():
    kw = dict(task="regress", input_size=32, widths=(4, 8, 8), seed=4)
    plain, skip = models.build_model("pyramid", **kw), models.build_model("pyramid", skip=True, **kw)
    x = jax.random.normal(jax.random.key(2), (5, 32, 32))
    for m in (plain, skip):
        m.eval()
    apply, features = _jit(), _jit("features")
    # the path starts at zero: same outputs as the network without it
    np.testing.assert_allclose(apply(skip, x), apply(plain, x), rtol=1e-6)
    # and it adds W @ log-energies: set W, the output moves by exactly that
    w = jax.random.normal(jax.random.key(3), skip.skip.kernel.shape)
    skip.skip.kernel[...] = w
    np.testing.assert_allclose(apply(skip, x) - apply(plain, x), features(skip, x) @ w, rtol=1e-5, atol=1e-5)


def test_pyramid_linear_readout_is_linear_in_the_log_energies():
    # hidden=0: the outputs are an affine function of the pooled log energies, nothing more
    widths = (4, 8, 8)
    m = models.build_model("pyramid", task="regress", uncertainty=True, input_size=32, widths=widths, hidden=0,
                           seed=5)
    m.eval()
    x = jax.random.normal(jax.random.key(6), (5, 32, 32))
    f = m.features(x)
    np.testing.assert_allclose(m(x), f @ m.head.kernel[...] + m.head.bias[...], rtol=1e-5, atol=1e-5)
    convs = sum(9 * a * b + b for a, b in zip((1,) + widths[:-1], widths))
    assert models.count_params(m) == convs + (sum(widths) + 1) * 2
    with pytest.raises(ValueError, match="hidden = -1"):
        models.build_model("pyramid", task="regress", input_size=32, widths=widths, hidden=-1)
    with pytest.raises(ValueError, match="skip needs a hidden layer"):
        models.build_model("pyramid", task="regress", input_size=32, widths=widths, hidden=0, skip=True)


def test_pyramid_readout_replaces_the_head_once_set():
    kw = dict(task="classify", input_size=32, widths=(4, 8, 8), seed=7)
    plain, m = models.build_model("pyramid", **kw), models.build_model("pyramid", readout=True, **kw)
    for net in (plain, m):
        net.eval()
    x = jax.random.normal(jax.random.key(8), (5, 32, 32))
    # before it is set: the trained head's outputs; the readout is no trainable parameter
    np.testing.assert_allclose(m(x), plain(x), rtol=1e-6)
    assert models.count_params(m) == models.count_params(plain)
    assert isinstance(m.readout_w, models.ReadoutParam) and not isinstance(m.readout_w, nnx.Param)
    w, b = np.random.default_rng(0).normal(size=(20, 2)), np.array([0.5, -1.0])
    m.set_readout(w, b)
    np.testing.assert_allclose(m(x), m.features(x) @ w + b, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="does not fit"):
        m.set_readout(w[:3], b)
    with pytest.raises(ValueError, match="built without a readout"):
        plain.set_readout(w, b)

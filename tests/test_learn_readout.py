"""The closed-form readout: ridge/logistic on features, penalty chosen on validation."""
import numpy as np
import pytest

from learn import readout

pytest.importorskip("sklearn")


MIX = np.random.default_rng(10).normal(size=(4, 6))


def _linear_problem(rng, m, noise):
    # correlated features on very different scales, one constant column, a linear target
    z = rng.normal(size=(m, 4))
    f = np.c_[z @ MIX * [1, 10, 100, 0.01, 1, 3] + [5, -2, 0, 7, 1, 0], np.full(m, 3.0)]
    w = np.array([0.5, -0.02, 0.001, 30.0, 0.0, 0.1, 0.0])
    return f, f @ w + 0.7 + noise * rng.normal(size=m)


def test_ridge_path_matches_sklearn():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 5))
    x -= x.mean(0)
    y = rng.normal(size=50)
    y -= y.mean()
    ws = readout.ridge_path(x, y, [1e-3, 0.1, 2.0])
    for a, w in zip([1e-3, 0.1, 2.0], ws):
        ref = Ridge(alpha=a * len(x), fit_intercept=False).fit(x, y).coef_
        np.testing.assert_allclose(w, ref, rtol=1e-8, atol=1e-10)


def test_regression_readout_recovers_a_linear_law():
    rng = np.random.default_rng(1)
    f, y = _linear_problem(rng, 400, 0.05)
    fv, yv = _linear_problem(rng, 200, 0.05)
    groups = np.repeat(np.arange(100), 2)
    r = readout.fit_readout("regress", f, y, fv, yv, groups, uncertainty=True)
    assert r.weights.shape == (7, 2) and r.bias.shape == (2,)
    pred = r(fv)
    # on raw (unstandardised) features, with the standardisation folded in: the residual is the noise
    assert np.sqrt(np.mean((pred[:, 0] - yv) ** 2)) < 0.06
    # the chosen penalty's score is what score() gives for its outputs
    assert r.val_score == pytest.approx(readout.score("regress", pred, yv, groups), rel=1e-5)
    # the log-variance output is the log of the validation residuals' mean square (noise 0.05)
    assert np.allclose(pred[:, 1], pred[0, 1])
    assert np.exp(pred[0, 1]) == pytest.approx(np.mean((pred[:, 0] - yv) ** 2), rel=1e-4)
    assert 0.5 * 0.05 ** 2 < np.exp(pred[0, 1]) < 2 * 0.05 ** 2
    # the constant column gets no weight
    assert r.weights[6, 0] == 0.0


def test_regression_penalty_is_chosen_on_validation():
    # few noisy training samples, many useless features: the best validation score needs a real
    # penalty, and it is the smallest score over the penalties tried
    rng = np.random.default_rng(2)
    f, fv = rng.normal(size=(40, 30)), rng.normal(size=(400, 30))
    y, yv = f[:, 0] + rng.normal(size=40), fv[:, 0] + rng.normal(size=400)
    groups = np.arange(400)
    r = readout.fit_readout("regress", f, y, fv, yv, groups)
    assert r.penalty > readout.RIDGE_PENALTIES[0]
    mu, sd = f.mean(0), f.std(0)
    for a, w in zip(readout.RIDGE_PENALTIES, readout.ridge_path((f - mu) / sd, y - y.mean(), readout.RIDGE_PENALTIES)):
        p = ((fv - mu) / sd) @ w + y.mean()
        assert r.val_score <= np.sqrt(np.mean((p - yv) ** 2)) + 1e-12


def test_classification_readout_gives_two_logits():
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(3)
    f, fv = rng.normal(size=(300, 5)) * [1, 50, 1, 1, 1], rng.normal(size=(200, 5)) * [1, 50, 1, 1, 1]
    y, yv = (f[:, 1] / 50 + f[:, 2] > 0).astype(int), (fv[:, 1] / 50 + fv[:, 2] > 0).astype(int)
    r = readout.fit_readout("classify", f, y, fv, yv, np.arange(200))
    logits = r(fv)
    assert logits.shape == (200, 2) and np.all(logits[:, 0] == 0)
    assert np.mean(logits.argmax(1) == yv) > 0.95
    p = 1 / (1 + np.exp(-(logits[:, 1] - logits[:, 0])))
    assert r.val_score == pytest.approx(log_loss(yv, p), rel=1e-4)


def test_score_is_per_simulation_for_regression():
    out = np.array([[1.0], [3.0], [0.0], [0.0]])
    y = np.array([2.0, 2.0, 1.0, 1.0])
    # per-image errors cancel within simulation 0; simulation 1 is off by 1
    assert readout.score("regress", out, y, np.array([0, 0, 1, 1])) == pytest.approx(np.sqrt(0.5))


def test_save_and_load_round_trip(tmp_path):
    r = readout.Readout(np.arange(6, dtype=np.float32).reshape(3, 2), np.ones(2, np.float32), 0.1, 0.25)
    r.save(tmp_path / "r.npz")
    back = readout.Readout.load(tmp_path / "r.npz")
    np.testing.assert_array_equal(back.weights, r.weights)
    np.testing.assert_array_equal(back.bias, r.bias)
    assert (back.penalty, back.val_score) == (0.1, 0.25)
    assert [p.name for p in tmp_path.iterdir()] == ["r.npz"]


def test_bad_input_is_named():
    f, y = np.ones((4, 2)), np.zeros(4)
    with pytest.raises(ValueError, match="task = 'rank'"):
        readout.fit_readout("rank", f, y, f, y, np.arange(4))
    with pytest.raises(ValueError, match="one F"):
        readout.fit_readout("regress", f, y, np.ones((4, 3)), y, np.arange(4))
    with pytest.raises(ValueError, match="targets"):
        readout.fit_readout("regress", f, y[:3], f, y, np.arange(4))
    with pytest.raises(ValueError, match="one class"):
        readout.fit_readout("classify", f, y, f, y, np.arange(4))

"""learn.bootstrap: scores and their intervals from a bootstrap over simulations."""
import numpy as np
import pytest

from learn import bootstrap as bs
from learn.metrics import classification_scores, per_simulation, ranking_score, regression_scores


def _classifier(n_sims, seed=0, images=6, noise=1.0):
    """Outputs of a noisy classifier (about 75 % right): each simulation has its own offset, so
    its images are correlated."""
    rng = np.random.default_rng(seed)
    klass = np.arange(n_sims) % 2
    sim_index = np.repeat(np.arange(n_sims), images)
    offset = rng.normal(0, 1.2, n_sims)[sim_index]
    margin = (klass[sim_index] - 0.5) * 2 + offset + rng.normal(0, noise, len(sim_index))
    p = 1 / (1 + np.exp(-margin))
    return bs.Outputs(sim_index, klass, np.where(klass == 1, 4.0, 11 / 3), p=p, margin=margin)


def _regressor(n_sims, seed=0, images=3):
    rng = np.random.default_rng(seed)
    n = rng.uniform(3, 4.5, n_sims)
    sim_index = np.repeat(np.arange(n_sims), images)
    pred = n[sim_index] + rng.normal(0, 0.05, n_sims)[sim_index] + rng.normal(0, 0.05, len(sim_index))
    return bs.Outputs(sim_index, -np.ones(n_sims, int), n, n_pred=pred)


def test_point_scores_are_the_metrics_modules():
    o = _classifier(30)
    got = bs.point_scores(o)
    y, idx = o.klass, o.sim_index
    img = classification_scores(y[idx], o.p, ranking_score(o.p, o.margin))
    p_sim = per_simulation(o.p, idx)
    sim = classification_scores(y, p_sim, ranking_score(p_sim, per_simulation(o.margin, idx)))
    assert got["per_image"]["accuracy"] == pytest.approx(img["accuracy"])
    assert got["per_image"]["auc"] == pytest.approx(img["auc"])
    assert got["per_sim"]["accuracy"] == pytest.approx(sim["accuracy"])
    assert got["per_sim"]["auc"] == pytest.approx(sim["auc"])
    r = _regressor(40)
    got = bs.point_scores(r)
    want = regression_scores(r.n_true[r.sim_index], r.n_pred)
    assert got["per_image"]["rmse"] == pytest.approx(want["rmse"])
    assert got["per_image"]["bias"] == pytest.approx(want["bias"])
    per_sim = regression_scores(r.n_true, per_simulation(r.n_pred, r.sim_index))
    assert got["per_sim"]["rmse"] == pytest.approx(per_sim["rmse"])


@pytest.mark.parametrize("make,scores", [(_classifier, ("accuracy", "auc")), (_regressor, ("rmse",))])
def test_intervals_cover_the_point_and_shrink_with_more_simulations(make, scores):
    widths = {}
    for n_sims in (20, 320):
        b = bs.bootstrap_scores(make(n_sims, seed=1), n_boot=400, seed=2)
        assert b["n_sims"] == n_sims and b["n_boot"] == 400 and b["level"] == 0.95
        for lvl in ("per_image", "per_sim"):
            for s in scores:
                iv = b[lvl][s]
                assert iv["lo"] <= iv["point"] <= iv["hi"], (n_sims, lvl, s, iv)
                assert iv["hi"] > iv["lo"] or iv["point"] in (0.0, 1.0)
                widths[n_sims, lvl, s] = iv["hi"] - iv["lo"]
    for lvl in ("per_image", "per_sim"):
        for s in scores:  # 16x the simulations: about 4x narrower; at least 2x
            assert widths[320, lvl, s] < 0.5 * widths[20, lvl, s], (lvl, s, widths)


def test_resampling_is_over_simulations_within_classes():
    w = bs.resample_weights(10, 50, np.random.default_rng(0), strata=np.arange(10) % 2)
    assert w.shape == (50, 10) and np.all(w.sum(1) == 10)
    assert np.all(w[:, ::2].sum(1) == 5) and np.all(w[:, 1::2].sum(1) == 5)
    # images of one simulation stay together: an interval over simulations is wider than one over
    # images when the images of a simulation are correlated
    o = _classifier(40, images=24, noise=0.1)
    by_sim = bs.bootstrap_scores(o, n_boot=300)["per_image"]["accuracy"]
    as_sims = bs.Outputs(np.arange(len(o.sim_index)), o.klass[o.sim_index], o.n_true[o.sim_index], p=o.p)
    by_img = bs.bootstrap_scores(as_sims, n_boot=300)["per_image"]["accuracy"]
    assert by_sim["point"] == pytest.approx(by_img["point"])
    assert by_sim["hi"] - by_sim["lo"] > 1.5 * (by_img["hi"] - by_img["lo"])


def test_outputs_round_trip_and_bad_input(tmp_path):
    o = _classifier(8)
    back = bs.load_outputs(bs.save_outputs(tmp_path / "p.npz", o))
    for k in ("sim_index", "klass", "n_true", "p", "margin"):
        np.testing.assert_array_equal(getattr(back, k), getattr(o, k))
    assert back.n_pred is None and back.task == "classify"
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(ValueError, match="bad.npz: not a predictions record"):
        bs.load_outputs(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="exactly one of p"):
        bs.Outputs([0], [0], [3.0])
    with pytest.raises(ValueError, match="sim_index must lie in"):
        bs.Outputs([0, 3], [0, 1], [3.0, 4.0], p=[0.2, 0.7])
    with pytest.raises(ValueError, match="n_boot = 0"):
        bs.bootstrap_scores(o, n_boot=0)
    with pytest.raises(ValueError, match="class labels"):
        bs.bootstrap_scores(bs.Outputs([0, 1], [-1, -1], [3.0, 4.0], p=[0.2, 0.7]))

"""learn.figures: every kind of figure is written as a PNG file."""
import numpy as np
import pytest

pytest.importorskip("matplotlib")

from learn import figures, metrics  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def _scored(mode, rng):
    idx = np.repeat(np.arange(4), 3)
    n_true = np.array([11 / 3, 4.0, 3.5, 3.9]) if mode != "classify" else np.array([11 / 3, 4.0, 11 / 3, 4.0])
    klass = np.array([0, 1, 0, 1]) if mode == "classify" else np.full(4, -1)
    p = rng.uniform(size=12)
    p_sim = metrics.per_simulation(p, idx)
    arrays = {"sim_index": idx, "n_true": n_true, "klass": klass, "p_burgers": p, "p_sim": p_sim, "rank": p,
              "rank_sim": p_sim, "n_pred": n_true[idx] + rng.normal(0, 0.1, 12), "n_std": np.full(12, 0.1)}
    arrays["n_sim"] = metrics.per_simulation(arrays["n_pred"], idx)
    m = {"mode": mode}
    if mode == "classify":
        m["per_image"] = metrics.classification_scores(klass[idx], p)
    if mode == "regress":
        m["per_image"] = metrics.regression_scores(n_true[idx], arrays["n_pred"])
        m["per_sim"] = metrics.regression_scores(n_true, arrays["n_sim"])
    return m, arrays


@pytest.mark.parametrize("mode, name", [("classify", "classification.png"), ("sweep", "sweep.png"),
                                        ("regress", "regression.png")])
def test_scored_data_figures(mode, name, tmp_path):
    m, arrays = _scored(mode, np.random.default_rng(0))
    assert figures.write_figures(m, arrays, tmp_path) == [name]
    assert (tmp_path / name).read_bytes()[:8] == PNG
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left


def test_learning_curves(tmp_path):
    hist = [{"epoch": e, "train_loss": 1.0 / e, "train_metric": 0.5, "val_loss": None if e == 1 else 0.9 / e,
             "val_metric": None} for e in (1, 2, 3)]
    figures.plot_curves(hist, "classify", tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG

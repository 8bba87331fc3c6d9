"""Training on small ensembles made by turbsim: learning, resume, devices, evaluation, CLI."""
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("orbax.checkpoint")

from turbsim import SimConfig  # noqa: E402
from turbsim.ensemble_plan import EnsembleConfig  # noqa: E402
from turbsim.generate import run_ensemble  # noqa: E402

from learn import baselines, evaluate, fit, readout, rundir, train, transforms  # noqa: E402
from learn import data as ldata  # noqa: E402
from learn.config import TrainConfig  # noqa: E402
from learn.predict import predict  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SIM = SimConfig(cells=32, scheme="first", t_end=0.25)  # 32^3, first order: about 0.1 s per simulation


@pytest.fixture(scope="module")
def separable(tmp_path_factory):
    """16 simulations, n = 2 against n = 5 (trivially separable), 12/2/2 train/test/holdout."""
    path = tmp_path_factory.mktemp("data") / "sep.h5"
    cfg = EnsembleConfig(sims=16, seed=3, class_n=(2.0, 5.0), class_names=("kolmogorov", "burgers"),
                         splits=(0.75, 0.125, 0.125), sim=SIM)
    run_ensemble(cfg, path, workers=0, progress=False)
    return path


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """12 simulations with n uniform in [2, 5] (no classes)."""
    path = tmp_path_factory.mktemp("data") / "sweep.h5"
    cfg = EnsembleConfig(sims=12, seed=4, labels="sweep", n_range=(2.0, 5.0), splits=(0.67, 0.33, 0.0), sim=SIM)
    run_ensemble(cfg, path, workers=0, progress=False)
    return path


def _params(workdir):
    return rundir.final_state(workdir)


def test_loss_falls_and_separable_classes_are_learned(separable, tmp_path):
    cfg = TrainConfig(data=os.fspath(separable), model="resnet", optimizer="adamw", epochs=3, batch_size=32,
                            patience=0, seed=1)
    summary = train.train_and_evaluate(cfg, tmp_path / "run", progress=False)
    hist = json.loads((tmp_path / "run" / rundir.SUMMARY_FILE).read_text())
    assert summary == hist
    rows = (tmp_path / "run" / rundir.HISTORY_FILE).read_text().splitlines()
    losses = [float(r.split(",")[1]) for r in rows[1:]]
    assert len(losses) == 3 and losses[-1] < 0.7 * losses[0]
    m = evaluate.evaluate_run(tmp_path / "run", split="test")
    assert m["per_image"]["accuracy"] >= 0.95 and m["per_sim"]["accuracy"] == 1.0
    assert (tmp_path / "run" / "curves.png").is_file() and (tmp_path / "run" / "eval" / "test" / "classification.png").is_file()


def test_resume_after_interruption_equals_uninterrupted_run(separable, tmp_path):
    # study_cnn: dropout randomness; 2 steps per call; cosine schedule over 3 epochs
    cfg = TrainConfig(data=os.fspath(separable), model="study_cnn", epochs=3, batch_size=32, patience=0,
                            steps_per_call=2, seed=5)
    train.train_and_evaluate(cfg, tmp_path / "a", progress=False)

    class Kill(Exception):
        pass

    def kill_after_first(epoch, rec):
        if epoch == 1:
            raise Kill

    with pytest.raises(Kill):
        train.train_and_evaluate(cfg, tmp_path / "b", progress=False, on_epoch_end=kill_after_first)
    assert len((tmp_path / "b" / rundir.HISTORY_FILE).read_text().splitlines()) == 2  # header + epoch 1
    train.train_and_evaluate(cfg, tmp_path / "b", progress=False)
    for a, b in zip(_params(tmp_path / "a"), _params(tmp_path / "b")):
        np.testing.assert_array_equal(a, b)
    # another configuration in the same directory is refused
    with pytest.raises(rundir.RunError, match="different configuration"):
        train.train_and_evaluate(cfg.replace(seed=6), tmp_path / "b", progress=False)


DEVICE_SCRIPT = """
import sys, numpy as np, jax
from learn import rundir, train
from learn.config import TrainConfig
assert jax.device_count() == 2, jax.devices()
cfg = TrainConfig.from_dict(__import__("json").loads(sys.argv[1]))
train.train_and_evaluate(cfg, sys.argv[2], progress=False)
np.savez(sys.argv[3], *rundir.final_state(sys.argv[2]))
"""


def test_one_and_two_devices_agree(separable, tmp_path):
    cfg = TrainConfig(data=os.fspath(separable), model="resnet", epochs=2, batch_size=32, patience=0, seed=2)
    train.train_and_evaluate(cfg, tmp_path / "one", progress=False)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    subprocess.run([sys.executable, "-c", DEVICE_SCRIPT, json.dumps(cfg.to_dict()), str(tmp_path / "two"),
                    str(tmp_path / "two.npz")], check=True, env=env, cwd=REPO)
    two = np.load(tmp_path / "two.npz")
    one = _params(tmp_path / "one")
    assert len(one) == len(two.files)
    for i, a in enumerate(one):
        np.testing.assert_allclose(two[f"arr_{i}"], a, rtol=1e-4, atol=1e-5)


def test_regression_with_uncertainty_on_a_sweep(sweep, tmp_path):
    cfg = TrainConfig(data=os.fspath(sweep), task="regress", uncertainty=True, model="resnet",
                            optimizer="adamw", epochs=2, batch_size=32, patience=0, normalisation="per_image")
    train.train_and_evaluate(cfg, tmp_path / "reg", progress=False)
    m = evaluate.evaluate_run(tmp_path / "reg", split="test")
    assert m["mode"] == "regress" and set(m["per_image"]["coverage"]) == {"0.68", "0.95"}
    run = rundir.load_run(tmp_path / "reg")
    assert run.scaler is not None and run.config.uncertainty
    assert np.isfinite(m["per_sim"]["rmse"])


def test_spectrum_baseline_separates_the_easy_classes(separable):
    res = baselines.run_baseline("spectrum", separable, task="classify", splits=("test",), others=[separable])
    assert res["test"]["per_image"]["accuracy"] >= 0.95
    # scoring "other" data is the same fitted model: the file's test split scores identically
    assert res[Path(separable).name] == res["test"]
    # on whole maps: one image per map, three per simulation
    full = baselines.run_baseline("spectrum", separable, task="classify", splits=("test",), full_maps=True,
                                  n_bins=6)
    assert full["images"] == "full maps" and full["n_train_images"] == 3 * res["n_train_images"] // 48
    assert full["test"]["per_sim"]["accuracy"] >= 0.95
    stats = baselines.run_baseline("stats", separable, task="classify", splits=("test",), full_maps=True, n_bins=6)
    assert stats["kind"] == "stats" and stats["test"]["per_sim"]["accuracy"] >= 0.95


def _cli(*args):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO)


def test_fit_cli_end_to_end_with_ramses_scoring(separable, tmp_path):
    ramses = Path(os.environ.get("TURBSIM_SHARED", REPO.parent / "shared")) / "ramses/ensemble_dev/binary64_dev.npz"
    extra = ["--eval-data", str(ramses)] if ramses.is_file() else []
    assert fit.main(["--data", str(separable), "--model", "resnet", "--epochs", "1", "--batch-size", "32",
                     "--out", str(tmp_path / "cli"), "--no-progress", "--holdout", "--json", *extra]) == 0
    out = tmp_path / "cli"
    for f in ("run.json", "metrics.json", "history.csv", "report.html", "eval/holdout/metrics.json"):
        assert (out / f).is_file(), f
    assert "<img" in (out / "report.html").read_text()
    if extra:
        m = json.loads((out / "eval" / "binary64_dev" / "metrics.json").read_text())
        assert m["n_sims"] == 24 and m["reference"]["split"] == "holdout" and "per_image.accuracy" in m["drop"]


def test_cli_errors_exit_2_with_clear_messages(separable, sweep, tmp_path):
    r = _cli("learn.fit", "--data", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "no such data file" in r.stderr
    r = _cli("learn.fit", "--data", str(sweep), "--task", "classify", "--out", str(tmp_path / "y"))
    assert r.returncode == 2 and "class labels" in r.stderr
    r = _cli("learn.fit", "--data", str(separable), "--eval-splits", "holdout", "--out", str(tmp_path / "z"))
    assert r.returncode == 2 and "--holdout" in r.stderr
    r = _cli("learn.evaluate", str(tmp_path / "nope"))
    assert r.returncode == 2 and "no such run directory" in r.stderr
    r = _cli("learn.evaluate", str(tmp_path), "--split", "holdout")
    assert r.returncode == 2 and "--holdout" in r.stderr


def test_refitted_readout_is_installed_and_resumable(sweep, tmp_path):
    # a pyramid with a closed-form readout: the run's model predicts with the readout
    # (features @ W + b), evaluation scores that readout (its test-split per-simulation RMSE is
    # the one the penalty was chosen by), and a missing readout file is named, then refitted
    cfg = TrainConfig(data=os.fspath(sweep), task="regress", model="pyramid", pyramid_widths=(8, 16, 16),
                            padding="circular", augment=("flip", "rot90"), optimizer="adamw", learning_rate=3e-3,
                            epochs=3, batch_size=16, patience=0, seed=2, refit_readout=True)
    summary = train.train_and_evaluate(cfg, tmp_path / "run", progress=False)
    r = summary["readout"]
    assert r["val_per_sim_rmse"] > 0 and r["head_val_per_sim_rmse"] > 0
    run = rundir.load_run(tmp_path / "run")
    fitted = readout.Readout.load(tmp_path / "run" / rundir.READOUT_FILE)
    test = ldata.load_split(sweep, "test")
    x, _ = transforms.eval_set(test.maps, run.normaliser, run.image_size, run.full_maps)
    f = predict(run.model, x, features=True)
    np.testing.assert_allclose(run.predict(x), fitted(f), rtol=1e-4, atol=1e-4)
    head = rundir.load_run(tmp_path / "run", readout=False)
    assert not np.allclose(head.predict(x), run.predict(x))
    m = evaluate.evaluate_run(tmp_path / "run", split="test")
    assert m["per_sim"]["rmse"] == pytest.approx(r["val_per_sim_rmse"], rel=1e-3)
    (tmp_path / "run" / rundir.READOUT_FILE).unlink()
    with pytest.raises(rundir.RunError, match="readout is not refitted yet"):
        rundir.load_run(tmp_path / "run")
    again = train.train_and_evaluate(cfg, tmp_path / "run", progress=False)
    assert again["readout"] == pytest.approx(r)
    # training maps streamed from the file instead of held in memory: the same readout
    train.train_and_evaluate(cfg.replace(memory_budget_mb=0.0), tmp_path / "disk", progress=False)
    disk = readout.Readout.load(tmp_path / "disk" / rundir.READOUT_FILE)
    np.testing.assert_allclose(disk.weights, fitted.weights, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(disk.bias, fitted.bias, rtol=1e-4, atol=1e-5)


def test_symmetrized_predictions_are_the_mean_over_rotations_and_reflections():
    from learn import models

    model = models.build_model("pyramid", task="regress", input_size=16, seed=5, widths=(4, 8), padding="circular")
    x = np.random.default_rng(0).normal(size=(3, 16, 16)).astype(np.float32)
    views = [np.rot90(v, k, axes=(1, 2)) for v in (x, x[:, :, ::-1]) for k in range(4)]
    for features in (False, True):
        plain = predict(model, x, features=features)
        sym = predict(model, x, features=features, symmetrize=True)
        mean = np.mean([predict(model, np.ascontiguousarray(v), features=features) for v in views], axis=0)
        np.testing.assert_allclose(sym, mean, rtol=1e-5, atol=1e-6)
        # the network alone is not invariant; its group mean is, for every element of the group
        turned = np.ascontiguousarray(np.rot90(x, 1, axes=(1, 2)))
        assert not np.allclose(predict(model, turned, features=features), plain, rtol=1e-4, atol=1e-5)
        for v in views[1:]:
            np.testing.assert_allclose(predict(model, np.ascontiguousarray(v), features=features,
                                                     symmetrize=True), sym, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="square images, got 16x12"):
        predict(model, x[:, :, :12], symmetrize=True)


def test_symmetrized_run_refits_its_readout_on_symmetrized_features(sweep, tmp_path):
    cfg = TrainConfig(data=os.fspath(sweep), task="regress", model="pyramid", pyramid_widths=(8, 16),
                            padding="circular", augment=("flip", "rot90"), optimizer="adamw", learning_rate=3e-3,
                            epochs=2, batch_size=16, patience=0, seed=2, refit_readout=True, symmetrize=True)
    train.train_and_evaluate(cfg, tmp_path / "run", progress=False)
    run = rundir.load_run(tmp_path / "run", readout=False)
    sets = {}
    for split in ("train", "test"):
        ms = ldata.load_split(sweep, split)
        x, idx = transforms.eval_set(ms.maps, run.normaliser, run.image_size, run.full_maps)
        f = predict(run.model, x, features=True, symmetrize=True)
        sets[split] = (f, run.scaler.encode(ms.labels["n"][idx]), idx)
    want = readout.fit_readout("regress", *sets["train"][:2], *sets["test"])
    got = readout.Readout.load(tmp_path / "run" / rundir.READOUT_FILE)
    np.testing.assert_allclose(got.weights, want.weights, rtol=1e-3, atol=1e-5)
    assert got.penalty == want.penalty
    # scoring the same run without the group mean: its own metrics stay the symmetrized ones
    own = evaluate.evaluate_run(tmp_path / "run", split="test")
    plain = evaluate.evaluate_run(tmp_path / "run", split="test", symmetrize=False)
    assert own["symmetrized"] and not plain["symmetrized"]
    assert plain["per_image"]["rmse"] != own["per_image"]["rmse"]
    assert (tmp_path / "run" / evaluate.EVAL_DIR / "test_plain" / evaluate.METRICS_FILE).is_file()
    assert evaluate.load_metrics(tmp_path / "run")["test"]["per_image"] == own["per_image"]


def test_pyramid_learns_n_from_whole_periodic_maps(sweep, tmp_path):
    # the multi-scale log-energy CNN on whole maps with circular padding: beats predicting the
    # mean n of the training split by a wide margin on the held-out test simulations
    cfg = TrainConfig(data=os.fspath(sweep), task="regress", model="pyramid", pyramid_widths=(8, 16, 16),
                            padding="circular", augment=("flip", "rot90"), optimizer="adamw", learning_rate=3e-3,
                            epochs=12, batch_size=16, patience=0, seed=2)
    train.train_and_evaluate(cfg, tmp_path / "run", progress=False)
    m = evaluate.evaluate_run(tmp_path / "run", split="test")
    with h5py.File(sweep, "r") as f:
        n, split = f["labels/n"][:], f["labels/split"][:]
    spread = float(np.sqrt(np.mean((n[split == 1] - n[split == 0].mean()) ** 2)))
    assert m["per_sim"]["rmse"] < 0.4 * spread, (m["per_sim"]["rmse"], spread)

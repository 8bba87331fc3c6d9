"""Training on small ensembles made by turbsim: learning, resume, checkpoints, devices, evaluation, CLI.

The fast tests train tiny models on 16^3 ensembles (the session fixtures of
``tests/conftest.py``: ``tiny_binary``, ``tiny_sweep`` and the finished ``tiny_run``). Each
long study checks the same property on 32^3 ensembles with the larger networks, under
``-m slow``: the two forms share one test body, parametrized by ``size``.
"""
import json
import logging
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("orbax.checkpoint")

from conftest import TINY_RUN, copy_run, make_ensemble  # noqa: E402
from turbsim import SimConfig  # noqa: E402

from learn import baselines, evaluate, fit, pipeline, readout, report, rundir, train, transforms  # noqa: E402
from learn import data as ldata  # noqa: E402
from learn.config import TrainConfig  # noqa: E402
from learn.predict import predict  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SIM32 = SimConfig(cells=32, scheme="first", t_end=0.25)  # 32^3, first order: about 0.1 s per simulation
SIZES = ["tiny", pytest.param("study", marks=pytest.mark.slow)]
"""The fast form of a study, and its long form (``-m slow``)."""


@pytest.fixture(scope="module")
def separable(tmp_path_factory):
    """16 simulations at 32^3, n = 2 against n = 5 (trivially separable), 12/2/2 train/test/holdout."""
    return make_ensemble(tmp_path_factory.mktemp("data") / "sep.h5", sims=16, seed=3, splits=(0.75, 0.125, 0.125),
                         sim=SIM32)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """12 simulations at 32^3 with n uniform in [2, 5] (no classes)."""
    return make_ensemble(tmp_path_factory.mktemp("data") / "sweep.h5", sims=12, seed=4, splits=(0.67, 0.33, 0.0),
                         sim=SIM32, sweep=True)


@pytest.fixture(scope="module")
def sweep32(tmp_path_factory):
    """144 simulations at 32^3 with n uniform in [2, 5]: 48 train, 96 test."""
    return make_ensemble(tmp_path_factory.mktemp("data") / "sweep32.h5", sims=144, seed=5,
                         splits=(1 / 3, 2 / 3, 0.0), sim=SIM32, sweep=True)


def _params(workdir, which="latest"):
    return rundir.final_state(workdir, which)


def _tiny_config(data, **changes):
    return TrainConfig(data=os.fspath(data), **{**TINY_RUN, **changes})


def _damage(step_dir: Path) -> Path:
    """Flip 8 bytes in the middle of the largest file of a checkpoint (its arrays); returns the file."""
    f = max((p for p in step_dir.rglob("*") if p.is_file() and p.name != rundir.CHECKSUMS_FILE),
            key=lambda p: p.stat().st_size)
    b = bytearray(f.read_bytes())
    mid = len(b) // 2
    b[mid:mid + 8] = bytes(x ^ 0xFF for x in b[mid:mid + 8])
    f.write_bytes(bytes(b))
    return f


def _exit_2(main, argv, capsys) -> str:
    """Run a command's main expecting exit status 2; returns its one error line (after the short usage)."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert exc.value.code == 2 and len(lines) == 2 and lines[0].startswith("usage: ") and "Traceback" not in err, err
    return lines[1]


# --------------------------------------------------------------------------------------
# learning
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES)
def test_loss_falls_and_separable_classes_are_learned(size, request, tmp_path):
    if size == "tiny":  # 12 training simulations at 16^3, a ResNet of one narrow stage
        data = request.getfixturevalue("tiny_binary")
        cfg = TrainConfig(data=os.fspath(data), model="resnet", resnet_widths=(8,), resnet_blocks=(1,),
                          optimizer="adamw", learning_rate=3e-3, epochs=3, batch_size=32, patience=0, seed=1)
    else:
        data = request.getfixturevalue("separable")
        cfg = TrainConfig(data=os.fspath(data), model="resnet", optimizer="adamw", epochs=3, batch_size=32,
                          patience=0, seed=1)
    summary = train.train_and_evaluate(cfg, tmp_path / "run", progress=False)
    hist = json.loads((tmp_path / "run" / rundir.SUMMARY_FILE).read_text())
    assert summary == hist
    rows = (tmp_path / "run" / rundir.HISTORY_FILE).read_text().splitlines()
    losses = [float(r.split(",")[1]) for r in rows[1:]]
    assert len(losses) == 3 and losses[-1] < 0.7 * losses[0]
    m = evaluate.evaluate_run(tmp_path / "run", split="test")
    assert m["per_image"]["accuracy"] >= 0.95 and m["per_sim"]["accuracy"] == 1.0
    assert (tmp_path / "run" / "curves.png").is_file()
    assert (tmp_path / "run" / "eval" / "test" / "classification.png").is_file()


def _coverage_tolerance(p: float, n_sims: int) -> float:
    """Three binomial standard errors of a coverage ``p`` over ``n_sims`` independent trials.

    The images of one simulation share its field, so they are not independent trials:
    counting one trial per simulation is the conservative choice.
    """
    return 3 * math.sqrt(p * (1 - p) / n_sims)


@pytest.mark.parametrize("size", SIZES)
def test_regression_with_uncertainty_on_a_sweep(size, request, tmp_path):
    # the pyramid CNN with a predicted log-variance (Gaussian NLL) on whole periodic maps of a
    # sweep: it learns n (per-simulation RMSE well below the spread of n) and its intervals are
    # calibrated (the 68 % and 95 % intervals cover about 68 % and 95 % of the truths)
    kw = dict(task="regress", uncertainty=True, model="pyramid", padding="circular", augment=("flip", "rot90"),
              optimizer="adamw", learning_rate=3e-3, batch_size=16, patience=0, seed=2)
    if size == "tiny":  # 48 training and 96 test simulations at 16^3
        data = request.getfixturevalue("tiny_sweep")
        cfg = TrainConfig(data=os.fspath(data), pyramid_widths=(4, 8), pyramid_hidden=8, epochs=6, **kw)
    else:
        data = request.getfixturevalue("sweep32")
        cfg = TrainConfig(data=os.fspath(data), pyramid_widths=(8, 16, 16), pyramid_hidden=16, epochs=6, **kw)
    train.train_and_evaluate(cfg, tmp_path / "reg", progress=False)
    m = evaluate.evaluate_run(tmp_path / "reg", split="test")
    run = rundir.load_run(tmp_path / "reg")
    assert run.scaler is not None and run.config.uncertainty and m["mode"] == "regress"
    n_test = ldata.load_split(data, "test").labels["n"]
    k = len(n_test)
    assert k == m["n_sims"] >= 96
    assert m["per_sim"]["rmse"] < 0.4 * np.std(n_test), (m["per_sim"]["rmse"], np.std(n_test))
    # with 96 simulations: 68 % within +-0.14, 95 % within +-0.07 (three standard errors)
    cov = m["per_image"]["coverage"]
    assert set(cov) == {"0.68", "0.95"}
    assert abs(cov["0.68"] - 0.68) < _coverage_tolerance(0.68, k), cov
    assert abs(cov["0.95"] - 0.95) < _coverage_tolerance(0.95, k), cov
    # a simulation's interval is the rms of its images' (no 1/sqrt(images) shrinking): conservative
    assert m["per_sim"]["coverage"]["0.68"] > 0.68 - _coverage_tolerance(0.68, k), m["per_sim"]["coverage"]


@pytest.mark.parametrize("size", SIZES)
def test_pyramid_learns_n_from_whole_periodic_maps(size, request, tmp_path):
    # the multi-scale log-energy CNN on whole maps with circular padding: beats predicting the
    # mean n of the training split by a wide margin on the held-out test simulations
    kw = dict(task="regress", model="pyramid", padding="circular", augment=("flip", "rot90"), optimizer="adamw",
              learning_rate=3e-3, batch_size=16, patience=0, seed=2)
    if size == "tiny":
        data = request.getfixturevalue("tiny_sweep")
        cfg = TrainConfig(data=os.fspath(data), pyramid_widths=(4, 8), pyramid_hidden=8, epochs=4, **kw)
    else:
        data = request.getfixturevalue("sweep")
        cfg = TrainConfig(data=os.fspath(data), pyramid_widths=(8, 16, 16), epochs=12, **kw)
    train.train_and_evaluate(cfg, tmp_path / "run", progress=False)
    m = evaluate.evaluate_run(tmp_path / "run", split="test")
    with h5py.File(data, "r") as f:
        n, split = f["labels/n"][:], f["labels/split"][:]
    spread = float(np.sqrt(np.mean((n[split == 1] - n[split == 0].mean()) ** 2)))
    assert m["per_sim"]["rmse"] < 0.4 * spread, (m["per_sim"]["rmse"], spread)


def test_spectrum_baseline_separates_the_easy_classes(tiny_binary):
    res = baselines.run_baseline("spectrum", tiny_binary, task="classify", splits=("test",), others=[tiny_binary])
    assert res["test"]["per_image"]["accuracy"] >= 0.95
    # scoring "other" data is the same fitted model: the file's test split scores identically
    assert res[Path(tiny_binary).name] == res["test"]
    # on whole maps: one image per map, three per simulation
    full = baselines.run_baseline("spectrum", tiny_binary, task="classify", splits=("test",), full_maps=True,
                                  n_bins=4)
    assert full["images"] == "full maps" and full["n_train_images"] == 3 * res["n_train_images"] // 48
    assert full["test"]["per_sim"]["accuracy"] >= 0.95
    stats = baselines.run_baseline("stats", tiny_binary, task="classify", splits=("test",), full_maps=True,
                                   n_bins=4)
    assert stats["kind"] == "stats" and stats["test"]["per_sim"]["accuracy"] >= 0.95


# --------------------------------------------------------------------------------------
# resume and checkpoints
# --------------------------------------------------------------------------------------
class Kill(Exception):
    pass


def _kill_after_first(epoch, rec):
    if epoch == 1:
        raise Kill


@pytest.mark.parametrize("size", SIZES)
def test_resume_after_interruption_equals_uninterrupted_run(size, request, tmp_path):
    if size == "tiny":  # dropout, 2 steps per call, cosine after warm-up: tiny_run is the uninterrupted run
        data = request.getfixturevalue("tiny_binary")
        cfg, whole = _tiny_config(data), request.getfixturevalue("tiny_run")
    else:  # study_cnn: dropout randomness; 2 steps per call; cosine schedule over 3 epochs
        data = request.getfixturevalue("separable")
        cfg = TrainConfig(data=os.fspath(data), model="study_cnn", epochs=3, batch_size=32, patience=0,
                          steps_per_call=2, seed=5)
        whole = tmp_path / "a"
        train.train_and_evaluate(cfg, whole, progress=False)
    with pytest.raises(Kill):
        train.train_and_evaluate(cfg, tmp_path / "b", progress=False, on_epoch_end=_kill_after_first)
    assert len((tmp_path / "b" / rundir.HISTORY_FILE).read_text().splitlines()) == 2  # header + epoch 1
    train.train_and_evaluate(cfg, tmp_path / "b", progress=False)
    for a, b in zip(_params(whole), _params(tmp_path / "b"), strict=True):
        np.testing.assert_array_equal(a, b)
    # another configuration in the same directory is refused
    with pytest.raises(rundir.RunError, match="different configuration"):
        train.train_and_evaluate(cfg.replace(seed=6), tmp_path / "b", progress=False)


def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before(tiny_binary, tiny_run, tmp_path, caplog):
    run = copy_run(tiny_run, tmp_path / "run")
    latest = run / rundir.CKPT_DIR / "latest"
    assert rundir.checkpoint_steps(latest) == [1, 2]  # the previous checkpoint is kept
    damaged = _damage(latest / "2")
    with caplog.at_level(logging.WARNING, logger="learn.rundir"):
        summary = train.train_and_evaluate(_tiny_config(tiny_binary), run, progress=False)
    # the damaged file is named, the checkpoint set aside; epoch 2 is trained again, as it was
    assert f"{damaged}: damaged" in caplog.text and "resumes from the checkpoint before it" in caplog.text
    assert (run / rundir.CKPT_DIR / rundir.DAMAGED_DIR / "latest-2").is_dir()
    assert summary["epochs_run"] == 2 and rundir.checkpoint_steps(latest) == [1, 2]
    for which in ("latest", "best"):
        for a, b in zip(_params(tiny_run, which), _params(run, which), strict=True):
            np.testing.assert_array_equal(a, b)


def _fit_argv(data, out, **extra):
    """The command line of TINY_RUN (checked against TrainConfig below)."""
    argv = ["--data", data, "--out", out, "--model", "pyramid", "--pyramid-widths", "4", "8", "--pyramid-hidden",
            "8", "--optimizer", "adamw", "--lr", "0.003", "--epochs", "2", "--batch-size", "32", "--patience", "0",
            "--seed", "4", "--schedule", "cosine", "--warmup-epochs", "0.5", "--dropout", "0.3",
            "--steps-per-call", "2", "--no-progress"]
    for k, v in extra.items():
        argv += [f"--{k.replace('_', '-')}", *([] if v is True else v if isinstance(v, list) else [v])]
    return [str(a) for a in argv]


def test_the_fit_command_line_of_the_tiny_run_is_its_configuration(tiny_binary, tmp_path):
    args = fit.build_parser().parse_args(_fit_argv(tiny_binary, tmp_path))
    assert fit.config_from_args(args) == _tiny_config(tiny_binary)


def test_every_latest_checkpoint_damaged_is_one_line_then_a_fresh_start(tiny_binary, tiny_run, tmp_path, capsys):
    run = copy_run(tiny_run, tmp_path / "run")
    files = [_damage(run / rundir.CKPT_DIR / "latest" / str(s)) for s in (2, 1)]
    argv = _fit_argv(tiny_binary, run, eval_splits=["test", "holdout"], holdout=True, baselines="spectrum")
    msg = _exit_2(fit.main, argv, capsys)
    assert f"{files[0]}: damaged" in msg and "run the same command again to train from the first epoch" in msg
    # as said: the same command trains the run again, to the same result
    assert fit.main(argv) == 0
    for a, b in zip(_params(tiny_run), _params(run), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_damaged_best_checkpoint_is_named_with_the_way_to_recover(tiny_run, tmp_path, capsys, caplog):
    run = copy_run(tiny_run, tmp_path / "run")
    best = rundir.checkpoint_steps(run / rundir.CKPT_DIR / "best")[-1]
    damaged = _damage(run / rundir.CKPT_DIR / "best" / str(best))
    # the latest checkpoint of the same epoch holds the same state: it is used, with a warning
    with caplog.at_level(logging.WARNING, logger="learn.rundir"):
        assert evaluate.main([str(run), "--no-progress"]) == 0
    assert f"{damaged}: damaged" in caplog.text and f"latest/{best}" in caplog.text
    assert evaluate.load_metrics(run)["test"]["per_image"] == evaluate.load_metrics(tiny_run)["test"]["per_image"]
    capsys.readouterr()
    # both copies damaged: one line naming the damaged file and what to delete
    _damage(run / rundir.CKPT_DIR / "latest" / str(best))
    msg = _exit_2(evaluate.main, [run, "--no-progress"], capsys)
    assert f"{damaged}: damaged" in msg and "delete" in msg


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")  # no echo reaches pytest either
def test_an_unverifiable_damaged_checkpoint_is_named_without_stray_tracebacks(tiny_run, tmp_path, capfd):
    # a checkpoint without its checksums (written by an older version) is read by orbax: its
    # failure is one named line, and tensorstore's echoes of it are not printed
    run = copy_run(tiny_run, tmp_path / "run")
    step = run / rundir.CKPT_DIR / "latest" / "2"
    (step / rundir.CHECKSUMS_FILE).unlink()
    state_files = [p for p in (step / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
    for f in state_files:
        f.write_bytes(b"\0" * f.stat().st_size)
    like = rundir.load_run(tiny_run, which="latest")
    from flax import nnx

    from learn.config import model_and_optimizer

    model, opt = model_and_optimizer(like.config, like.image_size, like.info["steps_per_epoch"])
    with pytest.raises(rundir.CheckpointError, match=r"(damaged or unreadable|unreadable checkpoint)") as exc:
        rundir.restore_step(step, nnx.state((model, opt)))
    assert str(step) in str(exc.value) and "\n" not in str(exc.value)
    import gc
    import time

    gc.collect()
    time.sleep(0.5)  # tensorstore's callbacks report from their own threads
    out, err = capfd.readouterr()
    assert "Traceback" not in err and "Event loop is closed" not in err, err


def test_rerunning_a_finished_run_keeps_its_baselines_and_training_time(tiny_binary, tiny_run, tmp_path,
                                                                        monkeypatch):
    run = copy_run(tiny_run, tmp_path / "run")
    before = json.loads((run / rundir.SUMMARY_FILE).read_text())
    assert before["train_wall_s"] > 0.05
    got = pipeline.fit(_tiny_config(tiny_binary), run, progress=False)  # no baselines asked this time
    assert got.summary["train_wall_s"] == before["train_wall_s"]
    assert json.loads((run / rundir.SUMMARY_FILE).read_text())["train_wall_s"] == before["train_wall_s"]
    html = (run / report.REPORT_FILE).read_text()
    assert html.count("spectrum baseline (quadrants)") >= 2 and "holdout" in html  # both splits' rows
    assert "spectrum" in got.baselines and "baseline_spectrum" in got.to_json()

    # asked again with the same data, splits and settings: reused, not fitted again
    def refit(*a, **k):
        raise AssertionError("the stored baseline should have been reused")

    monkeypatch.setattr(pipeline.lbase, "fit_baseline", refit)
    again = pipeline.fit(_tiny_config(tiny_binary), run, splits=("test", "holdout"), allow_holdout=True,
                         baselines=("spectrum",), progress=False)
    assert again.baselines == got.baselines


# --------------------------------------------------------------------------------------
# devices
# --------------------------------------------------------------------------------------
DEVICE_SCRIPT = """
import sys, numpy as np, jax
from learn import rundir, train
from learn.config import TrainConfig
assert jax.device_count() == 2, jax.devices()
cfg = TrainConfig.from_dict(__import__("json").loads(sys.argv[1]))
train.train_and_evaluate(cfg, sys.argv[2], progress=False)
np.savez(sys.argv[3], *rundir.final_state(sys.argv[2]))
"""


@pytest.mark.parametrize("size", SIZES)
def test_one_and_two_devices_agree(size, request, tmp_path):
    if size == "tiny":  # the tiny run, with its dropout, again on two devices
        cfg, one = _tiny_config(request.getfixturevalue("tiny_binary")), request.getfixturevalue("tiny_run")
    else:
        cfg = TrainConfig(data=os.fspath(request.getfixturevalue("separable")), model="resnet", epochs=2,
                          batch_size=32, patience=0, seed=2)
        one = tmp_path / "one"
        train.train_and_evaluate(cfg, one, progress=False)
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    env = dict(os.environ, XLA_FLAGS=flags.strip(), JAX_PLATFORMS="cpu")
    subprocess.run([sys.executable, "-c", DEVICE_SCRIPT, json.dumps(cfg.to_dict()), str(tmp_path / "two"),
                    str(tmp_path / "two.npz")], check=True, env=env, cwd=REPO)
    two = np.load(tmp_path / "two.npz")
    ones = _params(one)
    assert len(ones) == len(two.files)
    for i, a in enumerate(ones):
        np.testing.assert_allclose(two[f"arr_{i}"], a, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------------
# the model's mode
# --------------------------------------------------------------------------------------
def _modes(model):
    from flax import nnx

    return [(path, getattr(m, "deterministic", None), getattr(m, "use_running_average", None))
            for path, m in nnx.iter_modules(model)
            if hasattr(m, "deterministic") or hasattr(m, "use_running_average")]


def test_prediction_and_validation_leave_the_models_mode_alone():
    from learn import models

    model = models.build_model("resnet", task="classify", input_size=8, widths=(4,), blocks=(1,), dropout=0.5)
    x = np.random.default_rng(0).normal(size=(4, 8, 8)).astype(np.float32)
    loss_fn = train.loss_and_metric("classify", False)
    model.train()
    training = _modes(model)
    assert any(d is False for _, d, _ in training) and any(u is False for _, _, u in training)  # dropout, batch norm
    out = predict(model, x)
    train.validation_loss(model, x, np.zeros(4), loss_fn, 4, train.Sharding())
    assert _modes(model) == training
    model.eval()
    evaluating = _modes(model)
    np.testing.assert_array_equal(predict(model, x), out)  # evaluated in eval mode either way
    train.validation_loss(model, x, np.zeros(4), loss_fn, 4, train.Sharding())
    assert _modes(model) == evaluating != training


# --------------------------------------------------------------------------------------
# the readout and symmetrized predictions
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES)
def test_refitted_readout_is_installed_and_resumable(size, request, tmp_path):
    # a pyramid with a closed-form readout: the run's model predicts with the readout
    # (features @ W + b), evaluation scores that readout (its test-split per-simulation RMSE is
    # the one the penalty was chosen by), and a missing readout file is named, then refitted
    kw = dict(task="regress", model="pyramid", padding="circular", augment=("flip", "rot90"), optimizer="adamw",
              learning_rate=3e-3, batch_size=16, patience=0, seed=2, refit_readout=True)
    if size == "tiny":
        data = request.getfixturevalue("tiny_sweep")
        cfg = TrainConfig(data=os.fspath(data), pyramid_widths=(4, 8), pyramid_hidden=8, epochs=2, **kw)
    else:
        data = request.getfixturevalue("sweep")
        cfg = TrainConfig(data=os.fspath(data), pyramid_widths=(8, 16, 16), epochs=3, **kw)
    summary = train.train_and_evaluate(cfg, tmp_path / "run", progress=False)
    r = summary["readout"]
    assert r["val_per_sim_rmse"] > 0 and r["head_val_per_sim_rmse"] > 0
    run = rundir.load_run(tmp_path / "run")
    fitted = readout.Readout.load(tmp_path / "run" / rundir.READOUT_FILE)
    test = ldata.load_split(data, "test")
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


@pytest.mark.parametrize("size", SIZES)
def test_symmetrized_run_refits_its_readout_on_symmetrized_features(size, request, tmp_path):
    kw = dict(task="regress", model="pyramid", padding="circular", augment=("flip", "rot90"), optimizer="adamw",
              learning_rate=3e-3, epochs=2, batch_size=16, patience=0, seed=2, refit_readout=True, symmetrize=True)
    if size == "tiny":
        data = request.getfixturevalue("tiny_sweep")
        cfg = TrainConfig(data=os.fspath(data), pyramid_widths=(4, 8), pyramid_hidden=8, **kw)
    else:
        data = request.getfixturevalue("sweep")
        cfg = TrainConfig(data=os.fspath(data), pyramid_widths=(8, 16), **kw)
    train.train_and_evaluate(cfg, tmp_path / "run", progress=False)
    run = rundir.load_run(tmp_path / "run", readout=False)
    sets = {}
    for split in ("train", "test"):
        ms = ldata.load_split(data, split)
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


# --------------------------------------------------------------------------------------
# the commands
# --------------------------------------------------------------------------------------
def _map_file(ensemble, path, split="test", **arrays):
    """A RAMSES-style map file (.npz) of one split of an ensemble; ``arrays`` replace its arrays."""
    ms = ldata.load_split(ensemble, split, allow_holdout=True)
    names = np.array([transforms.CLASS_NAMES[k] if k >= 0 else "" for k in ms.labels["klass"]])
    np.savez(path, **{"columns": ms.maps, "n": ms.labels["n"], "klass": names, **arrays})
    return path


@pytest.mark.parametrize("size", SIZES)
def test_fit_cli_end_to_end_with_map_file_scoring(size, request, tmp_path):
    if size == "tiny":  # a map file whose classes are the integers 0/1: scored as classes
        data = request.getfixturevalue("tiny_binary")
        holdout = ldata.load_split(data, "holdout", allow_holdout=True)
        other = _map_file(data, tmp_path / "int_klass.npz", "holdout", klass=holdout.labels["klass"].astype(int))
        model = ["--model", "pyramid", "--pyramid-widths", "4", "8", "--pyramid-hidden", "8"]
        n_other = 6
    else:
        data = request.getfixturevalue("separable")
        other = request.getfixturevalue("shared") / "ramses" / "ensemble_dev" / "binary64_dev.npz"
        if not other.is_file():
            pytest.skip(f"{other} not found")
        model, n_other = ["--model", "resnet"], 24
    assert fit.main(["--data", str(data), *model, "--epochs", "1", "--batch-size", "32", "--out",
                     str(tmp_path / "cli"), "--no-progress", "--holdout", "--json", "--eval-data", str(other)]) == 0
    out = tmp_path / "cli"
    for f in ("run.json", "metrics.json", "history.csv", "report.html", "eval/holdout/metrics.json"):
        assert (out / f).is_file(), f
    assert "<img" in (out / "report.html").read_text()
    m = json.loads((out / "eval" / other.stem / "metrics.json").read_text())
    assert m["n_sims"] == n_other and m["mode"] == "classify" and m["reference"]["split"] == "holdout"
    assert "per_image.accuracy" in m["drop"]
    if size == "tiny":  # the same simulations as the holdout split: the same scores
        own = json.loads((out / "metrics.json").read_text())["holdout"]
        assert m["per_image"] == own["per_image"] and m["drop"]["per_image.accuracy"] == 0.0


def test_cli_errors_exit_2_with_clear_messages(tiny_binary, tiny_sweep, tmp_path, capsys):
    out = tmp_path / "x"
    assert "no such data file" in _exit_2(fit.main, ["--data", tmp_path / "missing.h5", "--out", out], capsys)
    assert "class labels" in _exit_2(fit.main, ["--data", tiny_sweep, "--task", "classify", "--out", out], capsys)
    assert "--holdout" in _exit_2(fit.main, ["--data", tiny_binary, "--eval-splits", "holdout", "--out", out], capsys)
    assert "no such run directory" in _exit_2(evaluate.main, [tmp_path / "nope"], capsys)
    assert "--holdout" in _exit_2(evaluate.main, [tmp_path, "--split", "holdout"], capsys)
    assert not out.exists()


def _without(ensemble, tmp_path, name, *objects):
    path = tmp_path / name
    shutil.copy(ensemble, path)
    with h5py.File(path, "a") as f:
        for obj in objects:
            del f[obj]
    return path


def test_files_without_labels_are_named_in_one_line(tiny_binary, tmp_path, capsys):
    no_n = _without(tiny_binary, tmp_path, "no_n.h5", "labels/n")
    msg = _exit_2(fit.main, ["--data", no_n, "--task", "regress", "--out", tmp_path / "a"], capsys)
    assert msg.startswith(f"python -m learn.fit: error: {no_n} (train): no /labels/n"), msg
    no_labels = _without(tiny_binary, tmp_path, "no_labels.h5", "labels")
    msg = _exit_2(fit.main, ["--data", no_labels, "--out", tmp_path / "b"], capsys)
    assert f"{no_labels}: no /labels group" in msg
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def _with_nan(ensemble, tmp_path, rows):
    """A copy of an ensemble with one NaN pixel in the x projection of some rows."""
    path = tmp_path / "nan.h5"
    shutil.copy(ensemble, path)
    with h5py.File(path, "a") as f:
        d = f["t0_fields/column_density"]
        for r in rows:
            x = d[r]
            x[0, 3, 4] = np.nan
            d[r] = x
        split = f["labels/split"][()]
    return path, split


def test_maps_that_are_not_finite_are_named_with_their_simulation(tiny_binary, tiny_run, tmp_path, capsys):
    with h5py.File(tiny_binary, "r") as f:
        split = f["labels/split"][()]
    train_row, test_row = int(np.flatnonzero(split == 0)[1]), int(np.flatnonzero(split == 1)[0])
    bad, _ = _with_nan(tiny_binary, tmp_path, [train_row, test_row])
    # fit: held in memory, or streamed from the file (the normaliser's sample, then every chunk read)
    for budget in ("2048", "0"):
        msg = _exit_2(fit.main, ["--data", bad, "--memory-budget-mb", budget, "--out", tmp_path / "o"], capsys)
        assert f"{bad} (train): simulation {train_row} has column densities that are not finite" in msg, msg
        assert "1 NaN pixel in its x projection" in msg
    source = ldata.HDF5Source(bad, np.flatnonzero(split == 0), np.zeros(12), 16, chunk_sims=4)
    with pytest.raises(ldata.DataError, match=f"simulation {train_row} has column densities"):
        list(source.chunks(0, np.random.default_rng(0)))
    # evaluate: an ensemble and a map file
    msg = _exit_2(evaluate.main, [tiny_run, "--data", bad, "--no-progress"], capsys)
    assert f"{bad} (test): simulation {test_row} has column densities that are not finite" in msg
    maps = ldata.load_split(tiny_binary, "test").maps.copy()
    maps[2, 1, 0, 0] = np.nan
    npz = _map_file(tiny_binary, tmp_path / "nan.npz", columns=maps)
    msg = _exit_2(evaluate.main, [tiny_run, "--data", npz, "--no-progress"], capsys)
    assert f"{npz}: simulation 2 has column densities that are not finite" in msg and "y projection" in msg
    assert not (tiny_run / evaluate.EVAL_DIR / "nan").exists()


def test_a_map_file_that_is_no_npz_archive_is_named(tiny_binary, tiny_run, tmp_path, capsys):
    text = tmp_path / "text.npz"
    text.write_text("columns, n, klass\n")
    whole = _map_file(tiny_binary, tmp_path / "whole.npz")
    cut = tmp_path / "cut.npz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    for path in (text, cut):
        msg = _exit_2(evaluate.main, [tiny_run, "--data", path, "--no-progress"], capsys)
        assert f"{path}: not a numpy .npz archive (not a zip file)" in msg


def test_the_real_command_warns_of_regression_on_two_classes(tiny_binary, tmp_path):
    # the warning comes when the data are opened; a batch larger than the data then stops the
    # command before any training (exit 2), which keeps this test short
    r = subprocess.run([sys.executable, "-m", "learn.fit", "--data", str(tiny_binary), "--task", "regress",
                        "--batch-size", "100000", "--out", str(tmp_path / "reg")], capture_output=True, text=True,
                       cwd=REPO)
    assert r.returncode == 2 and "fewer than batch_size" in r.stderr, r.stderr
    assert (f"WARNING {tiny_binary} (train): regression of n, but n takes only 2 value(s) (2, 5)" in r.stderr
            and "--task classify" in r.stderr), r.stderr
    assert "Traceback" not in r.stderr
    # and on data with more values of n: no warning
    with h5py.File(tiny_binary) as f:
        assert set(f["labels/n"][()]) == {2.0, 5.0}
    assert not ldata.warn_few_values(np.array([2.0, 3.5, 5.0]), "sweep")


def test_a_classifier_on_partly_labelled_data_says_it_scores_a_sweep(tiny_binary, tiny_run, tmp_path, caplog):
    klass = np.array(["kolmogorov", "", "burgers", "", "", ""])
    npz = _map_file(tiny_binary, tmp_path / "partly.npz", klass=klass)
    run = copy_run(tiny_run, tmp_path / "run")
    with caplog.at_level(logging.WARNING, logger="learn.evaluate"):
        m = evaluate.evaluate_run(run, npz)
    assert m["mode"] == "sweep" and "accuracy" not in json.dumps(m.get("per_image", {}))
    assert f"{npz} (all): 2 of 6 simulations have a class label" in caplog.text and "scored as a sweep" in caplog.text
    assert any(line.startswith("no class labels: scored as a sweep") for line in evaluate.summary_lines(m))

"""learn: streamed training data, the holdout lock, live training, scoring at another resolution.

Small real ensembles made by turbsim (16^3 and 32^3, first order, 0.1 Myr: a few
hundredths of a second each), and the session's tiny run (``tests/conftest.py``): one tiny
pyramid CNN and one image size throughout, so JAX compiles its programs once. The long form
of the streamed training (a small ResNet on 132 training simulations) runs with ``-m slow``.
"""
import csv
import json
import logging
import os
from functools import partial
from pathlib import Path

import jax
import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("orbax.checkpoint")

from turbsim import SimConfig  # noqa: E402
from turbsim import stream as turbsim_stream  # noqa: E402
from turbsim.ensemble_plan import EnsembleConfig  # noqa: E402
from turbsim.ensemble import run_ensemble  # noqa: E402

from conftest import TINY_PYRAMID, TINY_RUN, copy_run  # noqa: E402
from learn import data as ldata  # noqa: E402
from learn import evaluate, fit, rundir, sources, train, transforms  # noqa: E402
from learn.config import TrainConfig  # noqa: E402

SIM16 = SimConfig(cells=16, scheme="first", t_end=0.1)  # 16^3, first order: ~0.02 s per simulation
SPLITS = (0.75, 0.125, 0.125)
SMALL_RESNET = {"model": "resnet", "resnet_widths": (8, 16), "resnet_blocks": (1, 1)}


def _ensemble(tmp_path_factory, name: str, sim: SimConfig, sims: int, seed: int, splits=SPLITS) -> Path:
    """An ensemble of two trivially separable classes (n = 2 against n = 5)."""
    path = tmp_path_factory.mktemp("data") / f"{name}.h5"
    cfg = EnsembleConfig(sims=sims, seed=seed, class_n=(2.0, 5.0), class_names=("kolmogorov", "burgers"),
                         splits=splits, sim=sim)
    run_ensemble(cfg, path, workers=0, progress=False)
    return path



@pytest.fixture(scope="module")
def many16(tmp_path_factory):
    """176 simulations at 16^3: 132 train (more than one read chunk of 16, and more than
    the 64 simulations the global normaliser samples), 22 test, 22 holdout."""
    return _ensemble(tmp_path_factory, "many16", SIM16, 176, 11)


@pytest.fixture(scope="module")
def other32(tmp_path_factory):
    """6 simulations at 32^3 (all in the test split): the same physics on a finer grid."""
    return _ensemble(tmp_path_factory, "other32", SIM16.replace(cells=32), 6, 13, splits=(0.0, 1.0, 0.0))


@pytest.fixture(scope="module")
def runs(many16, tmp_path_factory):
    """The same short training (2 epochs, cosine schedule after half an epoch of warm-up)
    from maps in memory (``mem``) and streamed from the file (``disk``)."""
    base = tmp_path_factory.mktemp("runs")
    cfg = TrainConfig(data=os.fspath(many16), optimizer="adamw", learning_rate=3e-3, epochs=2, batch_size=64,
                      patience=0, seed=4, schedule="cosine", warmup_epochs=0.5, **SMALL_RESNET)
    out = {"mem": base / "mem", "disk": base / "disk"}
    train.train_and_evaluate(cfg, out["mem"], progress=False)
    train.train_and_evaluate(cfg.replace(memory_budget_mb=0.0), out["disk"], progress=False)
    return out


@pytest.fixture(scope="module")
def tiny_runs(tiny_binary, tmp_path_factory):
    """The tiny run's training from maps in memory (``mem``) and streamed from the file
    (``disk``), both served in chunks of 5 simulations (12 training simulations: 3 chunks)."""
    base = tmp_path_factory.mktemp("tiny_runs")
    cfg = TrainConfig(data=os.fspath(tiny_binary), **TINY_RUN)
    out = {"mem": base / "mem", "disk": base / "disk"}
    mp = pytest.MonkeyPatch()
    mp.setattr(train, "open_train_data", partial(ldata.open_train_data, chunk_sims=5))
    try:
        train.train_and_evaluate(cfg, out["mem"], progress=False)
        train.train_and_evaluate(cfg.replace(memory_budget_mb=0.0), out["disk"], progress=False)
    finally:
        mp.undo()
    return out


# --------------------------------------------------------------------------------------
# 1. streaming from HDF5 equals the in-memory path
# --------------------------------------------------------------------------------------
def test_streamed_batches_equal_in_memory_batches(many16):
    kw = dict(task="classify", augment=transforms.STUDY_AUGMENT, normalisation="global")
    mem = ldata.open_train_data(many16, memory_budget_mb=1024, **kw)
    disk = ldata.open_train_data(many16, memory_budget_mb=0, **kw)
    assert isinstance(mem.source, sources.InMemorySource) and isinstance(disk.source, sources.HDF5Source)
    assert mem.n_train == disk.n_train == 132 > disk.source.chunk_sims
    assert mem.normaliser == disk.normaliser
    calls = sources.calls_per_epoch(132, transforms.STUDY_AUGMENT, 64, 2)  # 132 * 48 images = 49.5 calls of 128
    for augment in (transforms.STUDY_AUGMENT, ("flip", "crop", "rot90")):  # fixed and random cuts
        bk = dict(seed=7, batch_size=64, steps_per_call=2, augment=augment, normaliser=mem.normaliser)
        firsts = []
        for epoch in (0, 1):
            a = list(sources.epoch_batches(mem.source, epoch, **bk))
            b = list(sources.prefetch(sources.epoch_batches(disk.source, epoch, **bk)))  # background thread
            assert len(a) == len(b) == calls == 49
            for (xa, ya), (xb, yb) in zip(a, b):
                np.testing.assert_array_equal(xa, xb)
                np.testing.assert_array_equal(ya, yb)
            # every training simulation (66 per class) gives its 48 images; half a call is dropped
            ys = np.concatenate([y.ravel() for _, y in b])
            assert abs(np.sum(ys == 1) - 66 * 48) <= 64 and abs(np.sum(ys == 0) - 66 * 48) <= 64
            firsts.append(a[0][0])
        assert not np.array_equal(*firsts)  # reshuffled each epoch


@pytest.mark.parametrize("size", ["tiny", pytest.param("study", marks=pytest.mark.slow)])
def test_streamed_training_equals_in_memory_training(size, request):
    runs = request.getfixturevalue("tiny_runs" if size == "tiny" else "runs")
    hist = {}
    for name, path in runs.items():
        info = json.loads((path / rundir.RUN_FILE).read_text())
        assert info["data"]["in_memory"] is (name == "mem")
        with open(path / rundir.HISTORY_FILE) as fh:
            hist[name] = list(csv.DictReader(fh))
    assert info["normaliser"] == json.loads((runs["mem"] / rundir.RUN_FILE).read_text())["normaliser"]
    for a, b in zip(rundir.final_state(runs["mem"]), rundir.final_state(runs["disk"]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert len(hist["mem"]) == len(hist["disk"]) == 2
    for rm, rd in zip(hist["mem"], hist["disk"]):
        for key in ("train_loss", "train_metric", "val_loss", "val_metric", "learning_rate"):
            np.testing.assert_allclose(float(rm[key]), float(rd[key]), rtol=1e-6)


# --------------------------------------------------------------------------------------
# the learning rate in the history
# --------------------------------------------------------------------------------------
def _cosine_with_warmup(t, peak, warm, total):
    """Linear warm-up from 0 over ``warm`` steps, then cosine decay to 0 at step ``total``."""
    t = np.asarray(t, np.float64)
    cos = 0.5 * peak * (1 + np.cos(np.pi * np.clip(t - warm, 0, total - warm) / (total - warm)))
    return np.where(t < warm, peak * t / max(warm, 1), cos)


def test_history_records_the_learning_rate_used_in_each_epoch(tiny_run):
    info = json.loads((tiny_run / rundir.RUN_FILE).read_text())
    spe, cfg = info["steps_per_epoch"], info["config"]
    warm, total = round(cfg["warmup_epochs"] * spe), cfg["epochs"] * spe
    with open(tiny_run / rundir.HISTORY_FILE) as fh:
        lrs = [float(r["learning_rate"]) for r in csv.DictReader(fh)]
    expect = [_cosine_with_warmup(np.arange(e * spe, (e + 1) * spe), cfg["learning_rate"], warm, total).mean()
              for e in range(cfg["epochs"])]
    np.testing.assert_allclose(lrs, expect, rtol=1e-5)
    assert lrs[0] != lrs[1] and lrs[-1] > 0.1 * cfg["learning_rate"]  # it moves; the last epoch still learns


# --------------------------------------------------------------------------------------
# 2. the holdout split is locked unless asked for
# --------------------------------------------------------------------------------------
def test_holdout_is_refused_by_the_library_unless_allowed(tiny_binary, tiny_run):
    with pytest.raises(ldata.DataError, match="holdout split is locked"):
        ldata.load_split(tiny_binary, "holdout")
    with pytest.raises(ldata.DataError, match="holdout"):
        ldata.open_train_data(tiny_binary, task="classify", augment=transforms.STUDY_AUGMENT, normalisation="global",
                              memory_budget_mb=64, val_split="holdout")
    with pytest.raises(ldata.DataError, match="holdout split is locked"):
        evaluate.evaluate_run(tiny_run, split="holdout")
    got = ldata.load_split(tiny_binary, "holdout", allow_holdout=True)
    test = ldata.load_split(tiny_binary, "test")
    assert len(got.maps) == 6 and not set(got.labels["sim_id"]) & set(test.labels["sim_id"])


def test_fit_cli_refuses_the_holdout_without_flag(tiny_binary, tmp_path, capsys):
    out = tmp_path / "refused"
    with pytest.raises(SystemExit) as exc:  # python -m learn.fit runs sys.exit(fit.main())
        fit.main(["--data", str(tiny_binary), "--eval-splits", "test", "holdout", "--epochs", "1", "--out", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "holdout split needs --holdout" in err and "Traceback" not in err
    assert not out.exists()  # refused before any training


# --------------------------------------------------------------------------------------
# 3. live training from turbsim.stream
# --------------------------------------------------------------------------------------
def test_live_training_writes_its_run_and_never_repeats_a_simulation(tiny_binary, tmp_path, monkeypatch):
    calls = []  # per stream opened: (start, [(index, seed, projections) consumed])
    real_stream = turbsim_stream.stream

    def recording_stream(*args, start=0, **kw):
        got = []
        calls.append((start, got))
        for rec in real_stream(*args, start=start, **kw):
            got.append((rec["index"], rec["seed"], rec["projections"]))
            yield rec

    monkeypatch.setattr(turbsim_stream, "stream", recording_stream)
    out, per_epoch, epochs = tmp_path / "live", 4, 2
    live_sim = (("cells", 16), ("t_end", 0.1), ("scheme", "first"))
    cfg = TrainConfig(data=os.fspath(tiny_binary), live=True, live_sim=live_sim, live_sims_per_epoch=per_epoch,
                      live_workers=1, live_seed=2024, epochs=epochs, batch_size=32, patience=0, **TINY_PYRAMID)
    summary = train.train_and_evaluate(cfg, out, progress=False)
    evaluate.evaluate_run(out, split="test")  # validates on the ensemble's test split
    assert summary["epochs_run"] == epochs
    for f in (rundir.RUN_FILE, rundir.SUMMARY_FILE, rundir.HISTORY_FILE, rundir.CURVES_FILE, evaluate.METRICS_FILE):
        assert (out / f).is_file(), f
    assert any((out / rundir.CKPT_DIR / "latest").iterdir())
    info = json.loads((out / rundir.RUN_FILE).read_text())
    assert info["data"]["data"] == "live" and info["data"]["sims_per_epoch"] == per_epoch
    assert len((out / rundir.HISTORY_FILE).read_text().splitlines()) == 1 + epochs
    assert json.loads((out / evaluate.METRICS_FILE).read_text())["test"]["n_sims"] == 6

    # every simulation is run once: epoch 0's were simulated for the normaliser's sample and
    # are replayed, not simulated again; one stream (one worker pool) serves every epoch
    assert [start for start, _ in calls] == [0]
    sims = [(i, s) for _, got in calls for i, s, _ in got]
    assert sorted(i for i, _ in sims) == list(range(epochs * per_epoch))
    assert len({s for _, s in sims}) == len(sims) == epochs * per_epoch
    maps0 = [p for i, _, p in calls[0][1] if i < per_epoch]
    for i, _, p in calls[0][1]:
        assert i < per_epoch or not any(np.array_equal(p, q) for q in maps0)


# --------------------------------------------------------------------------------------
# 4. scoring a model trained on 16^3 maps on a 32^3 ensemble
# --------------------------------------------------------------------------------------
def test_scoring_at_another_resolution_resamples_and_states_the_drop(tiny_run, other32, tmp_path, capsys, caplog):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    assert evaluate.main([str(run_dir), "--data", str(other32)]) == 0  # python -m learn.evaluate
    printed = capsys.readouterr().out
    m = json.loads((run_dir / evaluate.EVAL_DIR / "other32_test" / evaluate.METRICS_FILE).read_text())
    assert m["map_size"] == 32 and m["image_size"] == 8 and m["n_images"] == 6 * transforms.IMAGES_PER_SIM
    # the reference is the run's own holdout score (it was scored on the holdout), the drop is against it
    own = json.loads((run_dir / evaluate.METRICS_FILE).read_text())["holdout"]
    assert m["reference"]["split"] == "holdout"
    assert "change against the model's own holdout score" in printed
    for lvl in ("per_image", "per_sim"):
        key = f"{lvl}.accuracy"
        assert m["drop"][key] == pytest.approx(m[lvl]["accuracy"] - own[lvl]["accuracy"], abs=1e-12)
        assert f"{key} {m['drop'][key]:+.4f} (was {own[lvl]['accuracy']:.4f})" in printed

    # the 32^3 maps are scored as their 2x2 block means (the column density of a 16^3 grid)
    run = rundir.load_run(run_dir)
    maps = ldata.load_split(other32, "test").maps
    coarse = maps.astype(np.float64).reshape(6, 3, 16, 2, 16, 2).mean(axis=(3, 5))
    with caplog.at_level(logging.WARNING), jax.log_compiles():
        p_fine = evaluate.predictions(run, maps)["p_burgers"]
        p_coarse = evaluate.predictions(run, coarse)["p_burgers"]
    # the prediction program compiled for validation (8x8 images, batches of 256: 6 test
    # simulations give 288 images) is reused
    assert not [r.message for r in caplog.records if "XLA compilation" in r.message]
    assert len(p_fine) == 6 * transforms.IMAGES_PER_SIM
    np.testing.assert_allclose(p_fine, p_coarse, rtol=1e-5, atol=1e-6)
    called_burgers = np.asarray(m["per_image"]["confusion"])[:, 1].sum()
    assert np.sum(p_fine >= 0.5) == called_burgers


def test_scoring_without_an_own_score_says_so(tiny_run, other32, capsys, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "unscored")
    (run_dir / evaluate.METRICS_FILE).unlink()
    assert evaluate.main([str(run_dir), "--data", str(other32)]) == 0
    assert "no change against the model's own score" in capsys.readouterr().out
    m = json.loads((run_dir / evaluate.EVAL_DIR / "other32_test" / evaluate.METRICS_FILE).read_text())
    assert m["reference"] is None and m["drop"] is None

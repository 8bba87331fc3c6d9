"""The prepared GPU check (benchmarks/device_check.sh) run dry on the CPU, and the pieces it needs.

The dry run builds the kernels in a scratch copy of the tree (the working tree's extension
is left alone), runs every step at a tiny size on the CPU and must leave, for every step,
a summary line with its figures or the reason it was skipped, in the log and in the JSON.
PyTorch is not a dependency: where it is installed the torch step runs (and its network's
parameter count is checked against learn's), where it is not the step says so; a fake
``torch`` that fails to import checks the second path wherever the tests run.
"""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "device_check.sh"
sys.path.insert(0, str(REPO / "benchmarks"))

import build_kernels  # noqa: E402
import device_steps  # noqa: E402

try:
    import torch  # noqa: F401

    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("OUT", "JAX_PLATFORMS")}
    env.update(PYTHON=sys.executable, **extra)
    return env


def _check(args, out: Path, timeout: float, **extra) -> tuple[subprocess.CompletedProcess, str, dict]:
    res = subprocess.run(["bash", str(SCRIPT), *args, "--out", str(out)], env=_env(**extra),
                         capture_output=True, text=True, timeout=timeout)
    log = (out / "device_check.log").read_text() if (out / "device_check.log").is_file() else ""
    doc = json.loads((out / "device_check.json").read_text()) if (out / "device_check.json").is_file() else {}
    return res, log, doc


def _extension_files():
    return {p: p.stat().st_mtime_ns for p in (REPO / "turbsim" / "_solver").glob("_kernels*.so")}


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """One dry run of the whole check (tiny sizes, CPU), its wall time, and the extension files before it."""
    out = tmp_path_factory.mktemp("device_check")
    before = _extension_files()
    t0 = time.perf_counter()
    res, log, doc = _check(["--dry-run"], out, timeout=360)
    return res, log, doc, time.perf_counter() - t0, before


def test_dry_run_has_a_line_with_figures_or_a_reason_for_every_step(dry_run):
    res, log, doc, wall, _ = dry_run
    assert res.returncode == 0, res.stderr[-2000:]
    assert doc["dry_run"] is True and doc["gpu"] is False
    assert "no GPU (dry run): every step runs on the CPU" in log
    for step in device_steps.STEPS:
        lines = [ln for ln in log.splitlines() if ln.startswith(f"step {step}: ")]
        assert len(lines) == 1, (step, lines)
        st = doc["steps"][step]
        if step == "torch" and not HAVE_TORCH:
            assert st["status"] == "skipped" and st["reason"] == "torch not installed", st
            assert lines[0] == "step torch: skipped: torch not installed"
            continue
        # every other step runs at the dry run's size, with figures
        assert st["status"] == "ok", (step, st, log[-3000:])
        assert st["figures"], step
        assert not lines[0].endswith(": no figures"), lines[0]
    assert doc["wall_s"] <= doc["budget_s"]
    assert wall < doc["budget_s"] + 30


def test_dry_run_figures(dry_run):
    _, log, doc, _, _ = dry_run
    steps = doc["steps"]
    train = steps["train"]["figures"]["results"]
    assert {(r["model"], r["size"], r["batch_size"]) for r in train} == {("study_cnn", 16, 8), ("pyramid", 16, 8)}
    assert all(r["images_per_s"] > 0 and r["first_call_s"] > 0 for r in train)
    assert steps["import"]["figures"]["ok"] is True
    live = steps["live"]["figures"]
    assert live["n_epochs_all"] == len(live["epochs"]) == 2 and live["n_epochs"] == 1  # the second: steady state
    assert 0.0 <= live["data_wait_fraction"] <= 1.0 and live["sims_per_s"] > 0 and live["images_per_s"] > 0
    assert 0.0 <= live["data_wait_fraction_all"] <= 1.0
    assert live["workers"] == 2 and live["cells"] == 32
    rows = steps["solver"]["figures"]["rows"]
    assert {r["threads"] for r in rows} == {1, 2} and all(r["bit_identical"] for r in rows)
    assert steps["ramses_generate"]["figures"]["sims"] == 24
    assert "24 simulations instead of the preset's 1000" in steps["ramses_generate"]["reason"]
    fit = steps["ramses_fit"]["figures"]
    assert fit["train"]["epochs_run"] == 1 and 0.0 <= fit["train"]["data_wait_fraction"] <= 1.0
    assert "readout" in fit["train"] and {"test", "holdout"} <= set(fit)
    maps = Path(os.environ.get("TURBSIM_SHARED") or REPO.parent / "shared") / "ramses/ensemble_dev/binary64_dev.npz"
    if maps.is_file():
        assert "binary64_dev.npz" in fit and "baseline_spectrum" in fit
    else:
        assert "RAMSES maps not found" in steps["ramses_fit"]["reason"]
    if HAVE_TORCH:
        torch_rs = steps["torch"]["figures"]
        assert torch_rs["info"]["param_check"] == [{"size": 16, "n_params": 289858, "checked_against": "learn.models"}]
        (t,) = [t for t in doc["targets"] if t["target"].startswith("study_cnn / PyTorch eager")]
        assert t["value"] == pytest.approx(t["jax_images_per_s"] / t["torch_images_per_s"], rel=1e-2)
        assert re.search(r"^target study_cnn / PyTorch eager, 16 px, batch 8: [0-9.]+ \(>= 1.0\): (met|NOT met)$",
                         log, re.M)


def test_dry_run_builds_a_scratch_copy_and_leaves_the_working_tree_alone(dry_run):
    _, _, doc, _, before = dry_run
    fig = doc["steps"]["import"]["figures"]
    assert not fig["extension"].startswith(str(REPO))  # the scratch copy's extension was imported
    assert _extension_files() == before


def test_torch_absent_is_skipped_with_the_reason(tmp_path):
    fake = tmp_path / "fake"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text("raise ImportError('no torch here')\n")
    res, log, doc = _check(["--dry-run", "--steps", "torch"], tmp_path / "out", timeout=60,
                           PYTHONPATH=str(fake))
    assert res.returncode == 0, res.stderr
    assert "step torch: skipped: torch not installed" in log
    st = doc["steps"]["torch"]
    assert (st["status"], st["reason"], st["rc"], st["figures"]) == ("skipped", "torch not installed", 3, {})
    assert doc["steps"]["train"]["status"] == "not run"
    assert "step train: not run: not among the selected steps (--steps torch)" in log


@pytest.mark.parametrize("args", [["--bogus"], ["--steps", "train,nosuch"], ["--budget", "0"], ["--budget", "x"]])
def test_bad_arguments_exit_2(args, tmp_path):
    res = subprocess.run(["bash", str(SCRIPT), *args, "--out", str(tmp_path)], env=_env(), capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 2 and "device_check.sh:" in res.stderr


def test_no_time_left_skips_the_step_with_the_reason(tmp_path):
    res, log, doc = _check(["--dry-run", "--steps", "env", "--budget", "10"], tmp_path, timeout=60)
    assert res.returncode == 0
    st = doc["steps"]["env"]
    assert st["status"] == "skipped" and st["reason"].startswith("no time left in the budget"), st
    assert re.search(r"^step env: skipped: no time left in the budget \(-?\d+ s left, needs 5 s\)$", log, re.M)


# --------------------------------------------------------------------------------------
# the pieces
# --------------------------------------------------------------------------------------
def test_build_flags_are_setup_pys():
    text = (REPO / "setup.py").read_text()
    flags = re.search(r"^compile_args = (\[.*?\])$", text, re.M).group(1)
    assert eval(flags) == build_kernels.BASE_FLAGS  # noqa: S307 (a list literal of our own file)
    assert '"-march=native"' in text and '"-fopenmp"' in text
    assert re.search(r'"boundscheck": False, "wraparound": False', text)
    assert build_kernels.DIRECTIVES == "boundscheck=False,wraparound=False"
    assert {p.name for p in build_kernels.c_sources(REPO)} >= {"kernels.c", "modes.c"}
    assert all(p.name != "_kernels.c" for p in build_kernels.c_sources(REPO))


@pytest.mark.skipif(not HAVE_TORCH, reason="torch not installed")
@pytest.mark.parametrize("size", [64, 128])
def test_torch_study_cnn_is_learns_network(size):
    import torch

    import train_torch

    model = train_torch.study_cnn(torch, size)
    assert train_torch.count(model) == train_torch.learn_params(size) == train_torch.formula_params(size)
    if size == 64:
        assert train_torch.count(model) == 781378  # the study's count
    convs = [m for m in model if isinstance(m, torch.nn.Conv2d)]
    dense = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 128]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) and c.bias is not None for c in convs)
    assert [d.out_features for d in dense] == [256, 64, 2]
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model) == 4
    assert [m.p for m in model if isinstance(m, torch.nn.Dropout)] == [0.5, 0.5]
    model.eval()
    assert tuple(model(torch.zeros(3, 1, size, size)).shape) == (3, 2)


@pytest.mark.skipif(not HAVE_TORCH, reason="torch not installed")
def test_torch_bench_trains():
    import torch

    import train_torch

    r = train_torch.bench(torch, torch.device("cpu"), 16, 4, images=8, min_seconds=0.0, compile_model=False)
    assert r["images_per_s"] > 0 and r["steps"] >= 2 and r["n_params"] == train_torch.formula_params(16)


def test_summary_targets_and_lines(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "train.out").write_text("\n".join(json.dumps(r) for r in [
        {"model": "study_cnn", "size": 64, "batch_size": 64, "variant": "split_auto", "images_per_s": 900.0},
        {"model": "study_cnn", "size": 64, "batch_size": 256, "variant": "split_auto", "images_per_s": 1100.0},
        {"model": "pyramid", "size": 64, "batch_size": 64, "variant": "split_auto", "images_per_s": 5000.0},
    ]) + '\nnot json\n{"backend": "gpu"}\n')
    (work / "torch.out").write_text("\n".join(json.dumps(r) for r in [
        {"framework": "torch", "size": 64, "batch_size": 64, "variant": "eager", "images_per_s": 1000.0},
        {"framework": "torch", "size": 64, "batch_size": 256, "variant": "eager", "images_per_s": 1000.0},
    ]))
    (work / "live.out").write_text(json.dumps({
        "model": "study_cnn", "cells": 64, "workers": 15, "batch_size": 64, "data_wait_fraction": 0.25,
        "data_wait_fraction_all": 0.4, "images_per_s": 3000.0, "sims_per_s": 60.0, "busy_images_per_s": 4000.0,
        "n_epochs": 4, "n_epochs_all": 5}))
    (work / "solver.out").write_text(json.dumps({
        "scheme": "muscl", "cells": 256, "dtype": "float64", "threads": 16, "cell_updates_per_s": 5e8,
        "speedup": 12.5, "reference_threads": 1, "bit_identical": True}))
    for step in ("train", "torch", "live", "solver"):
        (work / f"{step}.status").write_text(f"ok\t0\t12.0\t100\t\n")
    (work / "env.status").write_text("skipped\t\t\t\tsome reason\n")
    (work / "ramses_fit.status").write_text("timed out\t124\t170.0\t170\ttimed out after 170 s\n")
    meta = device_steps.parse_meta(["dry_run=0", "commit=0123", "wall_s=7"])
    lines = device_steps.summary(work, tmp_path / "s.json", meta)
    doc = json.loads((tmp_path / "s.json").read_text())
    assert (doc["dry_run"], doc["commit"], doc["wall_s"]) == (False, "0123", 7)
    met = {t["target"]: t["met"] for t in doc["targets"]}
    assert met == {"study_cnn / PyTorch eager, 64 px, batch 64": False,
                   "study_cnn / PyTorch eager, 64 px, batch 256": True,
                   "live training: share of the time waiting for data (after the first epoch)": False,
                   "solver muscl float64 256^3: 16 threads against 1": True}
    assert "step env: skipped: some reason" in lines
    assert "step ramses_fit: timed out after 170 s: timed out after 170 s" in lines
    assert "step build: not run: not among the selected steps" in lines
    assert "target study_cnn / PyTorch eager, 64 px, batch 64: 0.9 (>= 1.0): NOT met" in lines
    assert any(ln.startswith("step live: ok in 12 s: study_cnn on 64^3 live simulations (15 workers, batch 64): "
                             "25 % of the time waiting") and ln.endswith(", 5 epochs") for ln in lines)
    assert doc["steps"]["train"]["figures"]["info"] == {"backend": "gpu"}


def test_data_wait_times_the_consumer_and_closes_the_source():
    from learn.train import DataWait

    closed = []

    def slow():
        try:
            for i in range(5):
                time.sleep(0.05)
                yield i
        finally:
            closed.append(True)

    wait = DataWait()
    it = wait.wrap(slow())
    assert [next(it), next(it)] == [0, 1]
    assert 0.09 <= wait.seconds < 1.0
    it.close()
    assert closed == [True]
    fast = DataWait()
    assert list(fast.wrap(np.arange(3))) == [0, 1, 2] and fast.seconds < 0.05


def test_training_records_the_data_wait(tiny_run):
    summary = json.loads((tiny_run / "train_summary.json").read_text())
    assert 0.0 <= summary["data_wait_fraction"] <= 1.0

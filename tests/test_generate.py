"""Tests of the ensemble plan and of ``python -m turbsim.generate`` with the real solver.

Simulations are 16^3, first order, t_end 0.2 Myr: a few hundredths of a second each.
"""
from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from turbsim import SimConfig, dataset, ensemble_plan as ep, generate as gen, observe, simulate

TIMING = {"wall_time", "solver_time", "ic_time"}  # the only fields allowed to differ between runs
SMALL = dict(cells=16, scheme="first", t_end=0.2)
BASE = ep.PRESETS["demo"].override(sims=16, **SMALL)  # 8 per class: 6/1/1
CLI_SMALL = ["--cells", "16", "--scheme", "first", "--t-end", "0.2", "--no-progress"]


def content(path: Path) -> dict:
    """Every dataset and attribute of an HDF5 file except the run timings."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            for k, v in obj.attrs.items():
                out[f"{name}@{k}"] = np.asarray(v).tolist()
            if isinstance(obj, h5py.Dataset) and name.rsplit("/", 1)[-1] not in TIMING:
                out[name] = obj[()]
        visit("/", f)
        f.visititems(visit)
    return out


def assert_same_content(a: Path, b: Path) -> None:
    ca, cb = content(a), content(b)
    assert sorted(ca) == sorted(cb)
    for k in ca:
        np.testing.assert_array_equal(ca[k], cb[k], err_msg=k)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """BASE generated on 2 local workers, uninterrupted."""
    out = tmp_path_factory.mktemp("ref") / "ref.h5"
    gen.run_ensemble(BASE, out, workers=2, progress=False)
    return out


# --------------------------------------------------------------------------------------
# the plan: splits, seeds
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["binary", "demo", "ramses64"])
def test_class_presets_split_by_simulation_stratified(name):
    cfg = ep.PRESETS[name]
    specs = ep.plan(cfg)
    klass = np.array([s.klass for s in specs])
    split = np.array([s.split for s in specs])
    assert [s.sim_id for s in specs] == list(range(cfg.sims))
    for k in range(2):
        counts = np.bincount(split[klass == k], minlength=3)
        np.testing.assert_array_equal(counts, ep.split_counts(cfg.sims // 2, cfg.splits))
        assert np.all(np.array([s.config.n for s in specs])[klass == k] == cfg.class_n[k])
    if name in ("binary", "ramses64"):
        np.testing.assert_array_equal(counts, [400, 50, 50])
    # every simulation is in exactly one split, and its seed is its own
    assert len({s.config.seed for s in specs}) == cfg.sims


def test_sweep_preset_splits_cover_the_range_of_n():
    cfg = ep.PRESETS["sweep"]
    specs = ep.plan(cfg)
    n = np.array([s.config.n for s in specs])
    split = np.array([s.split for s in specs])
    np.testing.assert_array_equal(np.bincount(split), [800, 100, 100])
    assert 3.0 <= n.min() and n.max() < 4.5
    # stratified in n: each split's n distribution matches uniform on [3, 4.5] closely
    for code in range(3):
        q = np.quantile(n[split == code], [0.1, 0.5, 0.9])
        np.testing.assert_allclose(q, 3.0 + 1.5 * np.array([0.1, 0.5, 0.9]), atol=0.05)
    assert all(s.klass == -1 for s in specs)


def test_plan_is_deterministic_in_the_seed_and_extends():
    a, b = ep.plan(BASE), ep.plan(BASE)
    assert a == b
    other = ep.plan(BASE.override(seed=1))
    assert [s.config.seed for s in other] != [s.config.seed for s in a]
    bigger = ep.plan(BASE.override(sims=30))
    assert [s.config for s in bigger[:16]] == [s.config for s in a]  # sim i independent of size


def test_split_counts_round_to_the_total():
    for m in range(1, 60):
        c = ep.split_counts(m, (0.8, 0.1, 0.1))
        assert c.sum() == m and np.all(np.abs(c - m * np.array([0.8, 0.1, 0.1])) < 1)


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="splits"):
        BASE.override(splits=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="class_names"):
        BASE.override(class_n=(3.0, 4.0), class_names=("a",))
    with pytest.raises(ValueError, match="unknown ensemble setting"):
        BASE.override(colour="red")
    assert BASE.override(class_n=(3.0, 3.5, 4.0)).class_names == ("n=3", "n=3.5", "burgers")


def test_toml_precedence(tmp_path):
    toml = tmp_path / "e.toml"
    toml.write_text('preset = "sweep"\nsims = 7\nseed = 5\n[sim]\ncells = 32\nt_end = 0.3\n')
    args = gen.build_parser().parse_args(["--config", str(toml), "--cells", "16"])
    cfg = gen.config_from_args(args)
    assert (cfg.preset, cfg.labels, cfg.sims, cfg.seed) == ("sweep", "sweep", 7, 5)
    assert (cfg.sim.cells, cfg.sim.t_end) == (16, 0.3)  # command line beats file beats preset
    toml.write_text("sims = 7\n[sim]\nwidth = 3\n")
    with pytest.raises(ValueError, match=r"e\.toml.*width"):
        ep.load_toml(toml)


# --------------------------------------------------------------------------------------
# runs with the real solver
# --------------------------------------------------------------------------------------
def test_file_is_valid_and_rows_are_the_planned_simulations(reference):
    assert gen.verify_ensemble(reference) == []
    specs = ep.plan(BASE)
    with dataset.open_ensemble(reference, allow_holdout=True) as ens:
        assert ens.n_sims == 16 and ens.map_size == 16
        # 8 per class at 80/10/10: 6.4/0.8/0.8 rounds to 6/1/1 (largest remainders)
        assert ens.split_counts() == {"train": {0: 6, 1: 6}, "test": {0: 1, 1: 1}, "holdout": {0: 1, 1: 1}}
        st = ens.stats()
        assert np.all(st["mass_error"] < 1e-12) and np.all(st["steps"] > 0)
        np.testing.assert_allclose(st["time_myr"], 0.2)
        # any simulation can be regenerated alone from its spec
        i = 7
        res = simulate(specs[i].config, threads=1)
        expect = observe.projections(res.density, specs[i].config.dx_cm).astype(np.float32)
        np.testing.assert_array_equal(ens.projections([i])[0], expect)
        # mass conservation through the projection: mean column = mean density * box
        cfg = specs[i].config
        np.testing.assert_allclose(ens.projections([i])[0].mean(axis=(1, 2)),
                                   cfg.density * cfg.box * 3.0857e18, rtol=1e-5)


def test_one_and_two_workers_give_identical_files(reference, tmp_path):
    one = gen.run_ensemble(BASE, tmp_path / "one.h5", workers=1, progress=False)
    assert one.simulated == 16 and not gen.parts_dir(tmp_path / "one.h5").exists()
    assert_same_content(tmp_path / "one.h5", reference)


def test_dask_local_cluster_gives_the_same_file(reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  host="127.0.0.1", protocol="tcp://", dashboard_address=None) as cluster:
        summary = gen.run_ensemble(BASE, tmp_path / "dask.h5", scheduler=cluster.scheduler_address,
                                   progress=False)
    assert summary.simulated == 16
    assert_same_content(tmp_path / "dask.h5", reference)


def test_kill_and_resume(reference, tmp_path):
    out = tmp_path / "killed.h5"
    parts = gen.parts_dir(out)
    cmd = [sys.executable, "-m", "turbsim.generate", "demo", "-o", str(out), "--sims", "16",
           "--workers", "1", "--cells", "16", "--scheme", "first", "--t-end", "0.2", "--no-progress"]
    # Slow the child's simulations down so the kill lands mid-run: a sitecustomize on the
    # child's path wraps turbsim.generate.simulate_one with a sleep (results unchanged).
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import time, turbsim.generate as g\n_f = g.simulate_one\n"
        "def slow(*a, **k):\n    time.sleep(0.25)\n    return _f(*a, **k)\n"
        "g.simulate_one = slow\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(hook), str(Path(gen.__file__).parents[1])]))
    proc = subprocess.Popen(cmd, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(list(parts.glob("*.h5"))) < 4:
            assert proc.poll() is None, f"generate ended before the kill: {proc.stderr.read().decode()}"
            assert time.monotonic() < deadline, "no parts appeared within 60 s"
            time.sleep(0.01)
        workers = _children(proc.pid)
        assert workers, "the CLI should run its simulations in worker processes"
        os.kill(proc.pid, signal.SIGKILL)  # the CLI only: its workers must notice and exit
        proc.wait()
        deadline = time.monotonic() + 10
        while any(_alive(w) for w in workers):
            assert time.monotonic() < deadline, "workers outlived their killed parent"
            time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group
        proc.wait()
        proc.stderr.close()
    n_parts = len(list(parts.glob("*.h5")))
    assert 4 <= n_parts < 16, "the kill should land mid-run"
    assert not out.exists()
    for p in parts.glob("*.h5"):  # every part on disk is complete
        rec = dataset.read_part(p, tag=BASE.fingerprint())
        assert np.all(np.isfinite(rec.column_density))
    # resume with the real command, no slowdown
    done = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["resumed"] == n_parts and summary["simulated"] == 16 - n_parts
    assert gen.verify_ensemble(out) == []
    with dataset.open_ensemble(out, allow_holdout=True) as ens:
        np.testing.assert_array_equal(ens.labels()["sim_id"], np.arange(16))  # each once
    assert_same_content(out, reference)
    assert not parts.exists() and not list(tmp_path.glob(".*.tmp"))


def _children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (Linux /proc)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_rerun_of_a_complete_file_does_nothing(reference):
    before = reference.stat().st_mtime_ns
    summary = gen.run_ensemble(BASE, reference, workers=1, progress=False)
    assert summary.simulated == 0 and reference.stat().st_mtime_ns == before


def test_different_configuration_is_refused(reference, tmp_path):
    with pytest.raises(gen.GenerateError, match="different configuration"):
        gen.run_ensemble(BASE.override(seed=99), reference, workers=0, progress=False)
    out = tmp_path / "x.h5"
    gen.parts_dir(out).mkdir()
    (gen.parts_dir(out) / gen.PLAN_NAME).write_text(BASE.override(sims=5).to_json())
    with pytest.raises(gen.GenerateError, match=r"differs in: sims"):
        gen.run_ensemble(BASE, out, workers=0, progress=False)


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "disk is full"), (errno.EACCES, "permission denied")])
def test_write_errors_give_a_clear_message_and_resume(monkeypatch, tmp_path, reference, code, words):
    out = tmp_path / "full.h5"
    real = dataset.write_part
    calls = []

    def failing(path, record, **kw):
        calls.append(record.sim_id)
        if len(calls) == 4:
            raise OSError(code, os.strerror(code), str(path))
        return real(path, record, **kw)

    monkeypatch.setattr(dataset, "write_part", failing)
    with pytest.raises(gen.GenerateError, match=words) as info:
        gen.run_ensemble(BASE, out, workers=0, progress=False)
    assert "rerun" in str(info.value) and not out.exists()
    assert len(list(gen.parts_dir(out).glob("*.h5"))) == 3
    monkeypatch.setattr(dataset, "write_part", real)
    summary = gen.run_ensemble(BASE, out, workers=0, progress=False)
    assert (summary.resumed, summary.simulated) == (3, 13)
    assert_same_content(out, reference)


def test_failed_consolidation_leaves_no_file_and_resumes(monkeypatch, tmp_path, reference):
    out = tmp_path / "new.h5"
    # parts are written whole (create_dataset); the final file, written as the simulations
    # finish, fails at its first row: the run stops there, its finished parts kept
    monkeypatch.setattr(h5py.Dataset, "__setitem__", _raise_enospc)
    with pytest.raises(gen.GenerateError, match="disk is full"):
        gen.run_ensemble(BASE, out, workers=0, progress=False)
    monkeypatch.undo()
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))
    kept = len(list(gen.parts_dir(out).glob("*.h5")))
    assert 1 <= kept < 16
    summary = gen.run_ensemble(BASE, out, workers=0, progress=False)
    assert (summary.resumed, summary.simulated) == (kept, 16 - kept)
    assert_same_content(out, reference)


def _raise_enospc(self, *a):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# --------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, words", [
    (["--cells", "7"], "even"),
    (["--sims", "0"], "sims"),
    (["--scheme", "rk4"], "invalid choice"),
    (["--splits", "0.5", "0.5", "0.5"], "splits"),
    (["--cells", "many"], "invalid int"),
    (["--config", "missing.toml"], "missing.toml"),
    (["--workers", "-1"], "--workers"),
    (["--verify", "nothere.h5"], "does not exist"),
    (["--frobnicate"], "unrecognized"),
])
def test_bad_arguments_exit_2_with_a_clear_message(argv, words, capsys):
    with pytest.raises(SystemExit) as info:
        gen.main(argv)
    assert info.value.code == 2
    assert words in capsys.readouterr().err


def test_bad_arguments_exit_2_from_the_shell():
    r = subprocess.run([sys.executable, "-m", "turbsim.generate", "--cells", "7"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "SimConfig.cells = 7 must be even" in r.stderr
    assert "Traceback" not in r.stderr


def test_verify_cli_catches_a_corrupted_file(reference, tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(reference.read_bytes())
    assert gen.main(["--verify", str(bad)]) == 0
    with h5py.File(bad, "r+") as f:  # silently move one simulation to another split
        split = f["labels/split"]
        split[0] = (split[0] + 1) % 3
    assert gen.main(["--verify", str(bad), "--json"]) == 1
    out = capsys.readouterr()
    assert '"valid": false' in out.out and "sim 0" in out.err
    with h5py.File(bad, "r+") as f:
        f["t0_fields/column_density"][3, 0, 0, 0] = np.inf
    assert gen.main(["--verify", str(bad)]) == 1
    assert "sim 3: column density has non-finite values" in capsys.readouterr().err


# --------------------------------------------------------------------------------------
# live stream
# --------------------------------------------------------------------------------------
def test_stream_yields_labelled_projections_independent_of_workers():
    template = SimConfig(**SMALL)
    local = gen.stream(template, seed=3, workers=0)
    first = [next(local) for _ in range(4)]
    local.close()
    pooled = gen.stream(template, seed=3, workers=1, prefetch=2)
    try:
        second = [next(pooled) for _ in range(4)]
    finally:
        pooled.close()
    assert [s["klass"] for s in first] == [0, 1, 0, 1]
    assert [s["n"] for s in first] == [11 / 3, 4.0, 11 / 3, 4.0]
    assert len({s["seed"] for s in first}) == 4
    for a, b in zip(first, second):
        assert a["index"] == b["index"] and a["seed"] == b["seed"]
        np.testing.assert_array_equal(a["projections"], b["projections"])
        assert a["projections"].shape == (3, 16, 16) and np.all(a["projections"] > 0)
    sweep = gen.stream(template, n_range=(3.0, 4.5), seed=3, workers=0, start=100)
    s = next(sweep)
    sweep.close()
    assert s["index"] == 100 and s["klass"] == -1 and 3.0 <= s["n"] < 4.5
    assert math.isclose(s["config"].n, s["n"])

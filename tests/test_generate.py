"""Tests of the ensemble plan and of ``python -m turbsim.generate`` with the real solver.

Simulations are 16^3, first order, t_end 0.2 Myr: a few hundredths of a second each.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from turbsim import SimConfig, dataset, ensemble as ens, ensemble_plan as ep, generate as gen, observe, parallel, simulate
from turbsim import stream as live

TIMING = {"wall_time", "solver_time", "ic_time"}  # the only fields allowed to differ between runs
SMALL = dict(cells=16, scheme="first", t_end=0.2)
BASE = ep.PRESETS["demo"].override(sims=16, **SMALL)  # 8 per class: 6/1/1
CLI_SMALL = ["--cells", "16", "--scheme", "first", "--t-end", "0.2", "--no-progress"]
CLI_BASE = [sys.executable, "-m", "turbsim.generate", "demo", "--sims", "16"] + CLI_SMALL  # == BASE


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
    assert dataset.verify(reference) == []
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
    # child's path wraps simulate_one with a sleep (results unchanged).
    proc = subprocess.Popen(cmd, env=_hooked_env(tmp_path, SLOW_HOOK), start_new_session=True,
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
    assert dataset.verify(out) == []
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
    (gen.parts_dir(out) / ens.PLAN_NAME).write_text(BASE.override(sims=5).to_json())
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


def _hooked_env(tmp_path: Path, code: str) -> dict:
    """Environment whose Python processes (the CLI and its workers) first run ``code``
    (a sitecustomize on their path): to slow simulations down or make workers die."""
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(code)
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(hook), str(Path(gen.__file__).parents[1])]))


# Hooks replace turbsim.stream.simulate_one before turbsim.generate imports it (importing
# the -m module itself from sitecustomize would make runpy warn).
SLOW_HOOK = ("import time, turbsim.stream as s\n_f = s.simulate_one\n"
             "def slow(*a, **k):\n    time.sleep(0.25)\n    return _f(*a, **k)\n"
             "s.simulate_one = slow\n")


def _assert_one_clean_error(r: subprocess.CompletedProcess, *words: str) -> str:
    """Exit status 1, one ``error:`` line holding ``words`` on stderr, no traceback."""
    assert r.returncode == 1, f"exit {r.returncode}: {r.stderr[-3000:]}"
    assert "Traceback" not in r.stderr and "RuntimeError" not in r.stderr, r.stderr[-3000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr[-3000:]
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("where, limit, kept", [("final file", 40_000, range(1, 16)), ("part", 6_000, [0])])
def test_a_write_failing_inside_hdf5_exits_1_with_the_message_and_keeps_the_parts(
        tmp_path, reference, where, limit, kept):
    # A file-size limit makes the OS refuse writes inside HDF5 (EFBIG) as a full disk does
    # (ENOSPC): before the fix, h5py RuntimeError tracebacks hid the message and the
    # interpreter crashed at exit (exit 139). Parts are ~13 kB here, the final file ~86 kB
    # (written while the simulations run: it fails part way, the run stops there).
    out = tmp_path / "limited.h5"
    r = subprocess.run(CLI_BASE + ["-o", str(out), "--workers", "1"], capture_output=True, text=True,
                       timeout=120, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    line = _assert_one_clean_error(r, "cannot write", "file size limit", "kept in", "rerun the same command")
    assert (str(out) + ":" in line) == (where == "final file")
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))
    parts = sorted(gen.parts_dir(out).glob("*.h5"))
    assert len(parts) in kept
    for p in parts:  # every part kept is complete
        assert np.all(dataset.read_part(p, tag=BASE.fingerprint()).column_density > 0)
    done = subprocess.run(CLI_BASE + ["-o", str(out), "--workers", "1", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["resumed"] == len(parts)
    assert_same_content(out, reference)


def _can_mount_tmpfs() -> str | None:
    """Why a real small tmpfs cannot be used here (None if it can)."""
    if sys.platform != "linux":
        return "tmpfs is Linux only"
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "no mount/umount command"
    return None


def test_a_really_full_disk_mid_run_exits_1_with_the_message_and_keeps_the_parts(tmp_path):
    reason = _can_mount_tmpfs()
    if reason:
        pytest.skip(reason)
    disk = tmp_path / "disk"
    disk.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        out = disk / "full.h5"
        cmd = [sys.executable, "-m", "turbsim.generate", "demo", "-o", str(out), "--sims", "24", "--cells", "64",
               "--scheme", "first", "--t-end", "0.02", "--workers", "2", "--no-progress"]
        proc = subprocess.Popen(cmd, env=_hooked_env(tmp_path, SLOW_HOOK), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while len(list(gen.parts_dir(out).glob("*.h5"))) < 6:  # then fill the disk mid-run
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
            time.sleep(0.02)
        filler = disk / "filler"
        with contextlib.suppress(OSError), open(filler, "wb", buffering=0) as fh:
            while True:
                fh.write(b"\0" * 4096)
        stdout, stderr = proc.communicate(timeout=120)
        result = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
        _assert_one_clean_error(result, "cannot write", "the disk is full", "kept in", "rerun the same command")
        assert not out.exists()
        parts = sorted(gen.parts_dir(out).glob("*.h5"))
        assert 6 <= len(parts) < 24
        tag = ep.PRESETS["demo"].override(sims=24, cells=64, scheme="first", t_end=0.02).fingerprint()
        for p in parts:
            dataset.read_part(p, tag=tag)
        filler.unlink()
        done = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["resumed"] == len(parts) and dataset.verify(out) == []
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_dead_worker_is_one_line_naming_the_cause(tmp_path):
    out = tmp_path / "dead.h5"
    killer = ("import os, signal, multiprocessing, turbsim.stream as s\n_f = s.simulate_one\n"
              "def deadly(spec, **k):\n"
              "    if spec.sim_id == 5 and multiprocessing.parent_process() is not None:\n"
              "        os.kill(os.getpid(), signal.SIGKILL)\n"
              "    return _f(spec, **k)\n"
              "s.simulate_one = deadly\n")
    r = subprocess.run(CLI_BASE + ["-o", str(out), "--workers", "2"], env=_hooked_env(tmp_path, killer),
                       capture_output=True, text=True, timeout=120)
    line = _assert_one_clean_error(r, "did not run: a worker process died", "killed by SIGKILL",
                                   "kept in", "rerun the same command")
    n_lost = int(line.split("error: ")[1].split()[0])
    kept = len(list(gen.parts_dir(out).glob("*.h5")))
    assert n_lost >= 1 and kept + n_lost == 16 and f"The {kept} finished simulation(s) of 16" in line
    assert not out.exists()


def test_the_file_is_verified_before_its_rename(monkeypatch, tmp_path):
    out = tmp_path / "checked.h5"
    monkeypatch.setattr(dataset, "_problems", lambda path: [f"made-up problem in {path.name}"])
    with pytest.raises(gen.GenerateError, match="failed verification.*made-up problem") as info:
        gen.run_ensemble(BASE, out, workers=0, progress=False)
    assert "kept in" in str(info.value)
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))  # never renamed into place
    assert len(list(gen.parts_dir(out).glob("*.h5"))) == 16


def test_parts_left_by_a_kill_after_the_rename_are_removed_by_a_rerun(tmp_path, reference):
    out = tmp_path / "done.h5"
    # --keep-parts leaves what a kill between the final rename and the cleanup leaves
    gen.run_ensemble(BASE, out, workers=0, progress=False, keep_parts=True)
    parts = gen.parts_dir(out)
    assert out.exists() and len(list(parts.glob("*.h5"))) == 16
    again = gen.run_ensemble(BASE, out, workers=0, progress=False, keep_parts=True)
    assert again.simulated == 0 and parts.exists()  # still asked to keep them
    again = gen.run_ensemble(BASE, out, workers=0, progress=False)
    assert again.simulated == 0 and not parts.exists()
    assert_same_content(out, reference)
    # parts of another configuration next to a complete file are not ours to remove
    parts.mkdir()
    (parts / ens.PLAN_NAME).write_text(BASE.override(seed=5).to_json())
    gen.run_ensemble(BASE, out, workers=0, progress=False)
    assert (parts / ens.PLAN_NAME).exists()


def test_space_check_speaks_in_sensible_units(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "disk_usage", lambda d: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(gen.GenerateError) as info:
        gen.run_ensemble(BASE, tmp_path / "x.h5", workers=0, progress=False)
    # 32 x (3 maps of 16^2 float32 + 8 kB) = 360 kB for the parts and the final file
    assert "need about 360 kB (parts + final file), 1.00 kB free" in str(info.value)
    assert [gen.human_bytes(b) for b in (999, 1000, 2.5e6, 7.25e9)] == ["999 B", "1.00 kB", "2.50 MB", "7.25 GB"]


@pytest.mark.parametrize("cfg", [BASE, BASE.override(sims=3), BASE.override(sims=37, class_n=(3.0, 3.5, 4.0)),
                                 ep.PRESETS["sweep"].override(sims=57), ep.PRESETS["sweep"].override(sims=4),
                                 BASE.override(sims=9, splits=(0.5, 0.5, 0.0))])
def test_split_sizes_are_those_of_the_plan(cfg):
    planned = np.bincount([s.split for s in ep.plan(cfg)], minlength=3)
    np.testing.assert_array_equal(ep.split_sizes(cfg), planned)
    empty = [name for name, f, k in zip(dataset.SPLITS, cfg.splits, planned) if f > 0 and k == 0]
    assert ep.empty_splits(cfg) == empty
    need = ep.sims_filling_splits(cfg)
    assert not ep.empty_splits(cfg, need) and all(ep.empty_splits(cfg, m) for m in range(cfg.sims, need))


def test_an_ensemble_with_an_empty_split_is_refused_unless_allowed(tmp_path, caplog):
    out = tmp_path / "tiny.h5"
    r = subprocess.run([sys.executable, "-m", "turbsim.generate", "demo", "--sims", "3", "-o", str(out)]
                       + CLI_SMALL, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) <= 3, r.stderr
    assert "leave the test and holdout splits empty (train 3, test 0, holdout 0" in r.stderr
    assert "use 13 or more simulations, other splits, or pass --allow-empty-splits" in r.stderr
    assert not out.exists() and not gen.parts_dir(out).exists()
    assert gen.main(["demo", "--sims", "3", "-o", str(out), "--workers", "0", "--allow-empty-splits"]
                    + CLI_SMALL) == 0
    assert dataset.verify(out) == []
    with caplog.at_level("WARNING"):  # the library warns, unless allowed
        gen.run_ensemble(BASE.override(sims=3), tmp_path / "lib.h5", workers=0, progress=False)
        assert "test and holdout splits empty" in caplog.text
        caplog.clear()
        gen.run_ensemble(BASE.override(sims=3), tmp_path / "ok.h5", workers=0, progress=False,
                         allow_empty_splits=True)
        assert "empty" not in caplog.text


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


@pytest.mark.parametrize("argv", [["--cells", "7"], ["--frobnicate"], ["--scheme", "rk4"], ["--box", "1e400"]])
def test_bad_arguments_exit_2_from_the_shell_in_at_most_3_lines(argv):
    r = subprocess.run([sys.executable, "-m", "turbsim.generate"] + argv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 3 and lines[0].startswith("usage: python -m turbsim.generate"), r.stderr
    if argv[0] == "--cells":
        assert "SimConfig.cells = 7 must be even" in r.stderr
    if argv[0] == "--box":
        assert "SimConfig.box = inf is outside the allowed range (0, 1e+06]" in r.stderr


def test_every_option_has_help_with_units_and_ranges():
    parser = gen.build_parser()
    helps = {}
    for action in parser._actions:
        assert action.help and action.help != argparse.SUPPRESS, action.option_strings or action.dest
        for flag in action.option_strings:
            helps[flag] = action.help
    assert "[pc]" in helps["--box"] and "[Myr]" in helps["--t-end"] and "[g/cm^3]" in helps["--density"]
    assert "[K]" in helps["--temperature"] and "in [0, 1]" in helps["--solenoidal"]
    assert "even, in [4, 4096]" in helps["--cells"] and "in (0, 1]" in helps["--courant"]
    assert ">= 1" in helps["--sims"] and "[0, 10]" in helps["--n-range"]
    text = parser.format_help()  # argparse expands the help strings: they must format
    assert "--allow-empty-splits" in text and "Solenoidal fraction" in text


def test_progress_is_plain_lines_when_redirected(tmp_path):
    out = tmp_path / "logged.h5"
    cmd = [c for c in CLI_BASE if c != "--no-progress"] + ["-o", str(out), "--workers", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr and "logged.h5: 16/16 sim (100%)" in r.stderr, r.stderr


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


def test_verify_cli_catches_flipped_bits_inside_a_chunk(reference, tmp_path, capsys):
    bad = tmp_path / "flipped.h5"
    bad.write_bytes(reference.read_bytes())
    with h5py.File(bad, "r") as f:
        chunk = f["t0_fields/column_density"].id.get_chunk_info_by_coord((5, 0, 0, 0))
    raw = bytearray(bad.read_bytes())
    raw[chunk.byte_offset + 100] ^= 0x01  # a low mantissa bit: the value stays finite and positive
    bad.write_bytes(bytes(raw))
    assert gen.main(["--verify", str(bad)]) == 1
    assert "sim 5: column density cannot be read, the file is damaged" in capsys.readouterr().err


# --------------------------------------------------------------------------------------
# live stream
# --------------------------------------------------------------------------------------
def test_moved_names_are_still_importable_from_generate():
    assert gen.stream is live.stream and gen.simulate_one is live.simulate_one
    assert gen.GenerateError is parallel.RunError and issubclass(parallel.WorkerDied, gen.GenerateError)
    assert gen.default_workers is parallel.default_workers and gen.keep_freed_memory is parallel.keep_freed_memory
    assert gen.verify_ensemble is dataset.verify


def test_no_module_of_turbsim_imports_the_generate_command():
    code = ("import pkgutil, sys, importlib, turbsim\n"
            "for m in pkgutil.walk_packages(turbsim.__path__, 'turbsim.'):\n"
            "    if m.name != 'turbsim.generate' and not m.name.startswith('turbsim._solver'):\n"
            "        importlib.import_module(m.name)\n"
            "assert 'turbsim.generate' not in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]


def test_stream_yields_labelled_projections_independent_of_workers():
    template = SimConfig(**SMALL)
    local = live.stream(template, seed=3, workers=0)
    first = [next(local) for _ in range(4)]
    local.close()
    pooled = live.stream(template, seed=3, workers=1, prefetch=2)
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
    sweep = live.stream(template, n_range=(3.0, 4.5), seed=3, workers=0, start=100)
    s = next(sweep)
    sweep.close()
    assert s["index"] == 100 and s["klass"] == -1 and 3.0 <= s["n"] < 4.5
    assert math.isclose(s["config"].n, s["n"])


def test_a_uniform_ensembles_record_and_fingerprint_hold_no_amr_fields():
    # files and part files written before SimConfig had AMR-lite fields keep resuming: a
    # uniform run whose AMR fields are defaults records none of them (and the round trip is exact)
    from turbsim.config import AMR_FIELDS

    stored = json.loads(BASE.to_json())["sim"]
    assert not set(AMR_FIELDS) & set(stored)
    assert ep.EnsembleConfig.from_json(BASE.to_json()) == BASE
    amr = BASE.override(levelmin=3, levelmax=4)
    assert set(AMR_FIELDS) <= set(json.loads(amr.to_json())["sim"])
    assert amr.fingerprint() != BASE.fingerprint()
    assert ep.EnsembleConfig.from_json(amr.to_json()) == amr


def test_an_amr_lite_ensemble_records_leaf_cells_per_level_and_resumes(tmp_path, monkeypatch):
    # AMR-lite configs run through generate: maps of the finest level, leaf cells per level
    # in the record (parts and the final file), tiling the box exactly; verified and resumable
    cfg = BASE.override(sims=13, cells=8, levelmin=3, levelmax=4, t_end=1.0, err_grad_d=0.05, scheme="first")
    out = tmp_path / "amr.h5"
    real = dataset.write_part

    def failing(path, record, **kw):
        if len(list(gen.parts_dir(out).glob(ens.PART_GLOB))) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, record, **kw)

    monkeypatch.setattr(dataset, "write_part", failing)
    with pytest.raises(gen.GenerateError):
        gen.run_ensemble(cfg, out, workers=0, progress=False)
    monkeypatch.setattr(dataset, "write_part", real)
    kept = sorted(gen.parts_dir(out).glob(ens.PART_GLOB))
    rec = dataset.read_part(kept[0])
    assert len(kept) == 3 and rec.column_density.shape == (3, 16, 16) and rec.leaf_cells.shape == (2,)
    summary = gen.run_ensemble(cfg, out, workers=0, progress=False)
    assert (summary.resumed, summary.simulated) == (3, 10)
    assert dataset.verify(out) == []
    with dataset.open_ensemble(out, allow_holdout=True) as e:
        counts, levels = e.leaf_cells()
        assert e.projections([0]).shape == (1, 3, 16, 16) and levels.tolist() == [3, 4]
        np.testing.assert_allclose((counts / 8.0 ** levels).sum(axis=1), 1.0, rtol=0, atol=1e-12)
        assert (counts[:, 1] > 0).any()  # something was refined
        np.testing.assert_array_equal(counts[rec.sim_id], rec.leaf_cells)
    with h5py.File(out, "r+") as f:
        f["stats/leaf_cells"][0, 0] += 1  # a leaf too many: the box is over-covered
    assert any("cover" in p for p in dataset.verify(out))

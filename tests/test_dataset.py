"""Tests of turbsim.dataset: layout round trip, lazy reads, holdout lock, verify, parts."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from turbsim import SimConfig, observe
from turbsim import dataset as ds
from turbsim import ensemble_plan as ep

N = 8
SPLIT_OF = [0, 0, 1, 2, 0, 1]  # six sims: 3 train, 2 test, 1 holdout


def make_records(n_sims=len(SPLIT_OF), cubes=False):
    rng = np.random.default_rng(42)
    out = []
    for i in range(n_sims):
        klass = i % 2
        n = (11 / 3, 4.0)[klass]
        cfg = SimConfig(cells=N, n=n, seed=1000 + i, t_end=0.01, scheme="first")
        out.append(ds.SimRecord(
            sim_id=i, seed=cfg.seed, n=n, klass=klass, split=SPLIT_OF[i], config=cfg.to_json(),
            column_density=rng.lognormal(size=(3, N, N)) * 0.01,
            stats={"steps": 10 + i, "wall_time": 0.5, "solver_time": 0.4, "ic_time": 0.05,
                   "mass_error": 1e-15, "momentum_error": 1e-14, "time_myr": 0.01},
            density=rng.lognormal(size=(N, N, N)) if cubes else None,
        ))
    return out


HEADER = ds.EnsembleHeader("unit", "custom", 7, "{}", ("kolmogorov", "burgers"))  # no plan: imported


@pytest.fixture
def ens_file(tmp_path):
    recs = make_records()
    path = ds.write_ensemble(tmp_path / "e.h5", reversed(recs), HEADER, n_sims=len(recs))
    return path, recs


def test_round_trip(ens_file):
    path, recs = ens_file
    assert ds.verify(path) == []
    with ds.open_ensemble(path, allow_holdout=True) as ens:
        assert (ens.n_sims, ens.map_size) == (6, N)
        assert ens.attrs["format"] == "turbsim-ensemble" and ens.attrs["n_trajectories"] == 6
        assert ens.attrs["ensemble_seed"] == 7 and ens.class_names == ("kolmogorov", "burgers")
        assert list(ens.attrs["simulation_parameters"]) == ["n"]
        rows = np.array([4, 1, 1, 5])
        got = ens.projections(rows)
        assert got.dtype == np.float32 and got.shape == (4, 3, N, N)
        for g, r in zip(got, rows):
            np.testing.assert_array_equal(g, recs[r].column_density)
        lab = ens.labels(rows)
        np.testing.assert_array_equal(lab["sim_id"], rows)
        np.testing.assert_array_equal(lab["n"], [recs[r].n for r in rows])
        np.testing.assert_array_equal(lab["klass"], [recs[r].klass for r in rows])
        np.testing.assert_array_equal(lab["split"], [SPLIT_OF[r] for r in rows])
        assert ens.config(3) == SimConfig.from_json(recs[3].config)
        np.testing.assert_array_equal(ens.stats()["steps"], [r.stats["steps"] for r in recs])
        assert ens.split_counts()["train"] == {0: 2, 1: 1}
    with h5py.File(path) as f:  # The Well's conventions
        assert f["scalars/cells"][()] == N and f["scalars/scheme"][()].decode() == "first"
        assert "n" not in f["scalars"] and "seed" not in f["scalars"]
        assert f["boundary_conditions/x_periodic"].attrs["bc_type"] == "PERIODIC"
        assert f["dimensions/x"].shape == (N,) and f["t0_fields/column_density"].attrs["units"] == "g/cm^2"


def test_images_are_log_augmented_projections(ens_file):
    path, recs = ens_file
    with ds.open_ensemble(path) as ens:
        rows = ens.indices("train")
        np.testing.assert_array_equal(rows, [0, 1, 4])
        images, sim_index = ens.images(rows)
        assert images.shape == (3 * 48, N // 2, N // 2) and images.dtype == np.float32
        np.testing.assert_array_equal(sim_index, np.repeat(rows, 48))
        expect = observe.augment(np.log10(recs[4].column_density.astype(np.float64)))
        np.testing.assert_allclose(images[2 * 48:].reshape(3, 16, N // 2, N // 2), expect, rtol=1e-6)
        raw, idx = ens.images([1], log=False, augment=False)
        np.testing.assert_array_equal(raw, recs[1].column_density)
        np.testing.assert_array_equal(idx, [1, 1, 1])


def test_holdout_is_locked_until_asked(ens_file):
    path, _ = ens_file
    with ds.open_ensemble(path) as ens:
        with pytest.raises(ds.HoldoutError, match="locked"):
            ens.indices("holdout")
        with pytest.raises(ds.HoldoutError):
            ens.projections([3])
        with pytest.raises(ds.HoldoutError):
            ens.labels()
        with pytest.raises(ValueError, match="unknown split"):
            ens.indices("validation")
        hold = ens.indices("holdout", allow_holdout=True)
        np.testing.assert_array_equal(hold, [3])
        assert ens.projections(hold).shape == (1, 3, N, N)


def test_splits_are_disjoint_and_cover(ens_file):
    path, _ = ens_file
    with ds.open_ensemble(path, allow_holdout=True) as ens:
        parts = [set(ens.indices(s).tolist()) for s in ds.SPLITS]
    assert set.union(*parts) == set(range(6)) and sum(map(len, parts)) == 6


def test_cubes_round_trip(tmp_path):
    recs = make_records(cubes=True)
    path = ds.write_ensemble(tmp_path / "c.h5", recs, HEADER)
    with ds.open_ensemble(path) as ens:
        np.testing.assert_array_equal(ens.density(2), recs[2].density.astype(np.float32))


def test_write_refuses_missing_or_duplicate_records_and_keeps_old_file(ens_file):
    path, recs = ens_file
    before = path.read_bytes()
    with pytest.raises(ValueError, match="missing"):
        ds.write_ensemble(path, recs[:-1], HEADER, n_sims=6)
    with pytest.raises(ValueError, match="twice"):
        ds.write_ensemble(path, recs + recs[:1], HEADER, n_sims=6)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporaries left


@pytest.mark.parametrize("damage, message", [
    (lambda f: f["t0_fields/column_density"].__setitem__((2, 1, 0, 0), np.nan), "non-finite"),
    (lambda f: f["labels/sim_id"].__setitem__(3, 2), "exactly once"),
    (lambda f: f["config"].__setitem__(1, "{not json"), "does not parse"),
    (lambda f: f["labels/n"].__setitem__(0, 3.0), "disagree"),
    (lambda f: f["labels/split"].__setitem__(0, 7), "split codes"),
    (lambda f: f["labels/klass"].__setitem__(0, 5), "class indices"),
    (lambda f: f.__delitem__("stats/steps"), "missing"),
])
def test_verify_catches_damage(ens_file, damage, message):
    path, _ = ens_file
    with h5py.File(path, "r+") as f:
        damage(f)
    problems = ds.verify(path)
    assert problems and any(message in p for p in problems), problems


def test_verify_and_open_reject_non_ensembles(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    assert "cannot be opened" in ds.verify(junk)[0]
    with pytest.raises(ds.LayoutError, match="junk.h5"):
        ds.open_ensemble(junk)
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.attrs["format"] = "something-else"
    with pytest.raises(ds.LayoutError, match="not a turbsim ensemble"):
        ds.open_ensemble(tmp_path / "other.h5")


def test_part_round_trip_and_tag(tmp_path):
    rec = make_records(1, cubes=True)[0]
    p = ds.write_part(tmp_path / "000000.h5", rec, tag="abc")
    back = ds.read_part(p, tag="abc")
    np.testing.assert_array_equal(back.column_density, rec.column_density)
    np.testing.assert_array_equal(back.density, rec.density)
    assert (back.sim_id, back.seed, back.n, back.klass, back.split, back.config) == \
        (rec.sim_id, rec.seed, rec.n, rec.klass, rec.split, rec.config)
    assert back.stats == pytest.approx(dict(rec.stats))
    with pytest.raises(ds.LayoutError, match="another ensemble"):
        ds.read_part(p, tag="xyz")
    (tmp_path / "broken.h5").write_bytes(p.read_bytes()[:100])
    with pytest.raises(ds.LayoutError, match="unreadable"):
        ds.read_part(tmp_path / "broken.h5")


def test_importing_the_data_layer_does_not_load_the_solver():
    code = ("import sys, turbsim.dataset\n"
            "loaded = [m for m in ('turbsim._solver._kernels', 'turbsim.solver', 'turbsim.simulate') "
            "if m in sys.modules]\n"
            "assert not loaded, loaded\n"
            "import turbsim, turbsim._version\n"
            "assert turbsim.__version__ == turbsim._version.__version__\n"
            "assert callable(turbsim.simulate)\n"  # loaded on first use, the function
            "import turbsim.simulate\n"
            "assert callable(turbsim.simulate) and 'turbsim._solver._kernels' in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("name, what", [("t0_fields/column_density", "column density"),
                                        ("cubes/density", "density cube")])
def test_verify_catches_flipped_bytes_inside_a_chunk(tmp_path, name, what):
    path = ds.write_ensemble(tmp_path / "c.h5", make_records(cubes=True), HEADER)
    with h5py.File(path) as f:
        dset = f[name]
        assert dset.fletcher32
        chunk = dset.id.get_chunk_info_by_coord((2,) + (0,) * (dset.ndim - 1))
    raw = bytearray(path.read_bytes())
    raw[chunk.byte_offset + 40] ^= 0x01  # lowest mantissa bit of one value: still finite, positive
    path.write_bytes(bytes(raw))
    problems = ds.verify(path)
    assert problems and all(f"sim 2: {what} cannot be read" in p for p in problems), problems
    assert problems[0].startswith(str(path))


def planned_records(cfg):
    """Records of the planned simulations of ``cfg`` (made-up maps, no solver)."""
    rng = np.random.default_rng(0)
    return [ds.SimRecord(sim_id=s.sim_id, seed=s.config.seed, n=s.config.n, klass=s.klass, split=s.split,
                         config=s.config.to_json(), column_density=rng.lognormal(size=(3, N, N)),
                         stats=dict.fromkeys(ds.STATS, 0)) for s in ep.plan(cfg)]


def test_verify_checks_the_plan_of_the_stored_ensemble_configuration(tmp_path):
    cfg = ep.EnsembleConfig(sims=6, seed=3, sim=SimConfig(cells=N, t_end=0.01))
    header = ds.EnsembleHeader("planned", "custom", 3, cfg.to_json(), cfg.class_names)
    path = ds.write_ensemble(tmp_path / "p.h5", planned_records(cfg), header)
    assert ds.verify(path) == []
    with h5py.File(path, "r+") as f:
        f["labels/split"][4] = (f["labels/split"][4] + 1) % 3
    assert any("sim 4 (config, class or split) differs from the plan" in p for p in ds.verify(path))
    other = ds.EnsembleHeader("planned", "custom", 3, cfg.override(sims=7).to_json(), cfg.class_names)
    with pytest.raises(ds.LayoutError, match="plans 7"):  # checked before the rename: no file
        ds.write_ensemble(tmp_path / "q.h5", planned_records(cfg), other)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.h5"]


def test_a_file_failing_verification_is_not_renamed_into_place(ens_file, monkeypatch):
    path, recs = ens_file
    before = path.read_bytes()
    monkeypatch.setattr(ds, "_problems", lambda p: ["made-up problem"])
    with pytest.raises(ds.LayoutError, match="failed verification.*made-up problem"):
        ds.write_ensemble(path, recs, HEADER)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_write_error_inside_hdf5_is_a_plain_oserror(tmp_path):
    # A file-size limit makes the operating system refuse writes (EFBIG) inside HDF5, as a
    # full disk does (ENOSPC): the error must come out as OSError, leave no file behind,
    # and neither print h5py RuntimeErrors nor crash the interpreter at exit.
    code = ("import errno, resource, sys, numpy as np\n"
            "from turbsim import dataset as ds\n"
            "sys.path.insert(0, sys.argv[2])\n"
            "from test_dataset import make_records, HEADER\n"
            "recs = make_records(cubes=True)\n"
            "hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]\n"
            "for name, call in [('part', lambda p: ds.write_part(p, recs[0])),\n"
            "                   ('ensemble', lambda p: ds.write_ensemble(p, recs, HEADER))]:\n"
            "    path = sys.argv[1] + '/' + name + '.h5'\n"
            "    size = call(path).stat().st_size\n"
            "    call(path).unlink()\n"
            "    resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, hard))\n"
            "    try:\n"
            "        call(path)\n"
            "    except OSError as exc:\n"
            "        assert exc.errno == errno.EFBIG, exc\n"
            "        print(name, 'OSError')\n"
            "    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))\n")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(Path(__file__).parent)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split("\n")[:2] == ["part OSError", "ensemble OSError"]
    assert "Error" not in r.stderr, r.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []


def test_a_missing_label_group_or_label_is_named(tmp_path):
    """A file without /labels (or one label) is a LayoutError naming what is missing,
    not HDF5's 'component not found'."""
    from turbsim.ensemble import run_ensemble

    LayoutError, open_ensemble = ds.LayoutError, ds.open_ensemble
    path = tmp_path / "e.h5"
    cfg = ep.EnsembleConfig(sims=12, sim=SimConfig(cells=8, t_end=0.01), splits=(0.5, 0.25, 0.25))
    run_ensemble(cfg, path, workers=0, progress=False)
    with h5py.File(path, "a") as f:
        del f["labels/seed"]
    with open_ensemble(path, allow_holdout=True) as ens:
        with pytest.raises(LayoutError, match=r"e\.h5: no /labels/seed"):
            ens.labels()
    with h5py.File(path, "a") as f:
        del f["labels"]
    with pytest.raises(LayoutError, match=r"e\.h5: no /labels/split"):
        open_ensemble(path)

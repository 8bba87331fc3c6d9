"""Tests of turbsim.ramses.ensemble: RAMSES snapshots imported as a turbsim HDF5 ensemble."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import turbsim.ramses as tr
from turbsim import dataset
from turbsim.config import SimConfig
from turbsim.ramses.ensemble import import_runs, source_from_ic, sources_from_csv
from conftest import shared_dir

SHARED = shared_dir()
RAMSES = SHARED / "ramses"
CASES = ["kolmo64", "burgers64", "kolmo64_first_order", "amr", "amr_multicpu"]

pytestmark = pytest.mark.skipif(not RAMSES.is_dir(), reason=f"shared RAMSES outputs not found at {RAMSES}")


def shared_source(case, **kw):
    scheme = "first" if case.endswith("first_order") else "muscl"
    return source_from_ic(RAMSES / case / "output_00002", RAMSES / case / f"ic_{case}.npz", scheme=scheme, **kw)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    path = tmp_path_factory.mktemp("ens") / "ramses.h5"
    return import_runs(path, [shared_source(c) for c in CASES], level=6)


def test_import_shared_outputs(imported):
    assert dataset.verify(imported) == []
    with dataset.open_ensemble(imported) as ens:
        assert ens.n_sims == len(CASES) and ens.map_size == 64
        lab = ens.labels(np.arange(len(CASES)))
        for i, case in enumerate(CASES):
            ic = np.load(RAMSES / case / f"ic_{case}.npz")
            assert lab["n"][i] == float(ic["n"]) and lab["seed"][i] == int(ic["seed"])
        np.testing.assert_array_equal(lab["klass"], [0, 1, 0, 0, 0])  # n = 11/3 -> 0, 4 -> 1
        np.testing.assert_array_equal(lab["split"], dataset.SPLITS.index("test"))
        maps = ens.projections(np.arange(len(CASES)))
        stats = ens.stats()
        # Same maps as the reader's exact deposition, rounded to float32.
        for i, case in enumerate(CASES):
            ds = tr.open(RAMSES / case / "output_00002")
            for a in range(3):
                np.testing.assert_array_equal(maps[i, a], ds.column_density(a, 6).astype(np.float32))
            cfg = ens.config(i)
            assert cfg.cells == 64 and cfg.t_end == pytest.approx(ds.time, rel=1e-14)  # code time = Myr
            assert cfg.scheme == ("first" if case.endswith("first_order") else "muscl")
            assert stats["steps"][i] == ds.info.nstep_coarse
        # Mean column = mean density x box = 6.77e-22 g/cm^3 x 10 pc (README), float32 rounding.
        np.testing.assert_allclose(maps.mean(axis=(2, 3), dtype=np.float64), 6.77e-22 * 3.0857e19, rtol=1e-6)
        assert np.all(stats["mass_error"] < 1e-14) and np.all(stats["momentum_error"] < 1e-12)
        # The 4-CPU run gives the same maps as the 1-CPU run.
        np.testing.assert_allclose(maps[4], maps[3], rtol=1e-6)
        images, sim_index = ens.images(np.array([0, 1]))
        assert images.shape == (2 * 48, 32, 32) and np.all(np.isfinite(images))


def test_config_describes_the_run(imported):
    with dataset.open_ensemble(imported) as ens:
        cfg = ens.config(0)
    assert isinstance(cfg, SimConfig)
    assert cfg.box == pytest.approx(10.0, rel=1e-12)
    assert cfg.density == pytest.approx(6.77e-22, rel=1e-13)
    assert cfg.sound_speed == pytest.approx(18730.222147876353, rel=1e-12)
    assert cfg.gamma == 1.0001 and cfg.ic == "white_noise" and cfg.ramses_dt


def test_csv_labels_and_holdout(tmp_path):
    csv = tmp_path / "runs.csv"
    csv.write_text(
        "output,n,seed,split,ic\n"
        f"{RAMSES / 'burgers64/output_00002'},4,2,holdout,\n"
        f"{RAMSES / 'amr/output_00002'},,,train,{RAMSES / 'amr/ic_amr.npz'}\n")
    sources = sources_from_csv(csv)
    assert [s.n for s in sources] == [4.0, 11.0 / 3.0] and [s.seed for s in sources] == [2, 3]
    path = import_runs(tmp_path / "csv.h5", sources, level=5)
    with dataset.open_ensemble(path) as ens:
        assert ens.map_size == 32
        np.testing.assert_array_equal(ens.indices("train"), [1])
        with pytest.raises(dataset.HoldoutError):
            ens.indices("holdout")


def test_bad_csv(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("output,n\nsomewhere,4\n")
    with pytest.raises(ValueError, match="line 2"):
        sources_from_csv(csv)


def test_broken_output_writes_nothing(tmp_path):
    broken = tmp_path / "output_00001"
    shutil.copytree(RAMSES / "amr/output_00001", broken)
    (broken / "hydro_00001.out00001").chmod(0o644)
    (broken / "hydro_00001.out00001").write_bytes(b"\0" * 100)
    sources = [shared_source("kolmo64"), source_from_ic(broken, RAMSES / "amr/ic_amr.npz")]
    out = tmp_path / "broken.h5"
    with pytest.raises(tr.RamsesFormatError, match="hydro_00001.out00001"):
        import_runs(out, sources, level=5)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["output_00001"]


SIM_NAMES = ("mach", "temperature", "mu", "scheme", "limiter", "courant")


def test_source_defaults_are_simconfig_defaults():
    """The physical and scheme defaults exist once, in SimConfig: RamsesSource takes them
    from its fields (no literal re-typed in the class body) and agrees with them."""
    import ast
    import dataclasses
    import inspect

    from turbsim.ramses.ensemble import RamsesSource

    sim = {f.name: f.default for f in dataclasses.fields(SimConfig)}
    src = {f.name: f.default for f in dataclasses.fields(RamsesSource)}
    for name in SIM_NAMES:
        assert src[name] == sim[name], name
    body = ast.parse(inspect.getsource(RamsesSource)).body[0].body
    literal = [s.target.id for s in body if isinstance(s, ast.AnnAssign) and s.target.id in SIM_NAMES
               and isinstance(s.value, ast.Constant)]
    assert literal == [], f"defaults re-typed instead of taken from SimConfig: {literal}"


def test_source_from_ic_without_physics_keys_uses_simconfig_defaults(tmp_path):
    with np.load(RAMSES / "amr" / "ic_amr.npz") as z:
        d = {k: z[k] for k in z.files if k not in ("mach", "T_K", "mu")}
    np.savez(tmp_path / "ic.npz", **d)
    src = source_from_ic(RAMSES / "amr" / "output_00002", tmp_path / "ic.npz")
    assert (src.mach, src.temperature, src.mu) == (SimConfig().mach, SimConfig().temperature, SimConfig().mu)


@pytest.mark.parametrize("field,value", [("mach", -1.0), ("courant", 1.5), ("scheme", "third"),
                                         ("seed", -2), ("n", float("nan"))])
def test_source_fields_are_checked_as_simconfig_checks_them(field, value):
    from turbsim.ramses.ensemble import RamsesSource

    kw = dict(output=Path("runs/output_00002"), n=4.0, seed=1)
    kw[field] = value
    with pytest.raises(ValueError) as info:
        RamsesSource(**kw)
    msg = str(info.value)
    assert "output_00002" in msg and field in msg and repr(value) in msg, msg


def test_import_progress_is_plain_lines_when_redirected(tmp_path, capsys):
    """Progress goes through turbsim.console.progress: no \\r frames in a redirected log."""
    import_runs(tmp_path / "p.h5", [shared_source("amr")], level=5, progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err and "RAMSES outputs: 1/1 output" in err, err

"""Tests of turbsim.ramses's IC writer (grafic files + namelist) and of load_ic."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import turbsim.ramses as tr
from turbsim import SimConfig
from turbsim.ramses.records import RecordFile
from turbsim.units import MYR, sound_speed
from conftest import shared_dir

SHARED = shared_dir()
RAMSES = SHARED / "ramses"
needs_shared = pytest.mark.skipif(not RAMSES.is_dir(), reason=f"shared RAMSES data not found at {RAMSES}")


def read_grafic(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(int header (3,), float header (8,), cube [ix, iy, iz] float32) of a grafic file."""
    rf = RecordFile(path)
    header = rf.read("header", np.uint8, 44)
    dims = header[:12].view("<i4")
    n1, n2, n3 = (int(d) for d in dims)
    planes = np.stack([rf.read(f"plane {k}", "<f4", n1 * n2).reshape(n2, n1) for k in range(n3)])
    rf.expect_end()
    return dims, header[12:].view("<f4"), planes.transpose(2, 1, 0)


def parse_namelist(text: str) -> dict[str, dict[str, str]]:
    """{block: {key: raw value}} of a Fortran namelist (simple one-value-per-line form)."""
    blocks, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("&"):
            current = blocks.setdefault(line[1:], {})
        elif line == "/":
            current = None
        elif line and current is not None:
            key, value = line.split("=", 1)
            current[key.strip()] = value.strip()
    return blocks


def small_run(**changes):
    params = dict(levelmin=3, units_length=3.0857e19, units_density=6.77e-22, units_time=MYR,
                  temperature=10.0, mu=2.37, tout=(0.0, 0.5))
    params.update(changes)
    return tr.RamsesRun(**params)


def test_grafic_round_trip_and_namelist(tmp_path):
    rng = np.random.default_rng(7)
    n = 8
    rho = 1.0 + 0.1 * rng.standard_normal((n, n, n))
    vel = 0.03 * rng.standard_normal((3, n, n, n))
    run = small_run(courant=0.5, slope_type=2)
    nml = tr.write_ic(tmp_path, rho, vel, run)
    cs2 = (sound_speed(10.0, 2.37) * MYR / 3.0857e19) ** 2
    expected = {"ic_d": rho, "ic_u": vel[0], "ic_v": vel[1], "ic_w": vel[2], "ic_p": rho * cs2}
    for name, cube in expected.items():
        dims, floats, back = read_grafic(tmp_path / "ic" / name)
        np.testing.assert_array_equal(dims, [n, n, n])
        assert floats[1:4].tolist() == [0.0, 0.0, 0.0]  # offsets: RAMSES maps cell i to ic[i]
        np.testing.assert_array_equal(back, cube.astype(np.float32), err_msg=name)
    # Only the final files remain: every temporary file was renamed.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ic", "namelist.nml"]
    assert sorted(p.name for p in (tmp_path / "ic").iterdir()) == sorted(expected)

    nl = parse_namelist(nml.read_text())
    assert nl["AMR_PARAMS"]["levelmin"] == "3" and nl["AMR_PARAMS"]["levelmax"] == "3"
    assert nl["INIT_PARAMS"] == {"filetype": "'grafic'", "initfile(1)": "'ic'"}
    hydro = nl["HYDRO_PARAMS"]
    assert float(hydro["gamma"]) == 1.0001 and float(hydro["courant_factor"]) == 0.5
    assert hydro["slope_type"] == "2" and hydro["riemann"] == "'llf'" and hydro["scheme"] == "'muscl'"
    cool = nl["COOLING_PARAMS"]
    assert cool["barotropic_eos"] == ".true." and cool["barotropic_eos_form"] == "'isothermal'"
    assert float(cool["T_eos"]) == 10.0 and float(cool["mu_gas"]) == 2.37
    units = nl["UNITS_PARAMS"]
    assert float(units["units_length"]) == 3.0857e19 and float(units["units_time"]) == MYR
    assert float(units["units_density"]) == 6.77e-22
    assert nl["OUTPUT_PARAMS"]["noutput"] == "2"
    assert [float(t) for t in nl["OUTPUT_PARAMS"]["tout"].split(",")] == [0.0, 0.5]
    assert nl["RUN_PARAMS"]["poisson"] == ".false."
    assert int(nl["AMR_PARAMS"]["ngridmax"]) >= 1 + 8 + 64  # octs of levels 1..3


@pytest.mark.parametrize("scheme, limiter, slope", [("first", "minmod", 0), ("muscl", "minmod", 1),
                                                    ("muscl", "moncen", 2)])
def test_run_from_config(scheme, limiter, slope):
    cfg = SimConfig(cells=32, box=5.0, density=1e-21, temperature=20.0, mu=2.0, t_end=0.3,
                    scheme=scheme, limiter=limiter, courant=0.6)
    run = tr.run_from_config(cfg, outputs=[0.1])
    assert run.levelmin == 5 and run.levelmax == 5 and run.slope_type == slope
    assert run.units_length == pytest.approx(5.0 * 3.0857e18, rel=1e-15)
    assert run.units_density == 1e-21 and run.units_time == MYR
    assert run.tout == pytest.approx((0.0, 0.1, 0.3), rel=1e-15)
    assert run.courant == 0.6 and run.gamma == 1.0001
    assert run.sound_speed_code == pytest.approx(sound_speed(20.0, 2.0) * MYR / (5.0 * 3.0857e18), rel=1e-14)


def test_bad_input_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="power of two"):
        tr.run_from_config(SimConfig(cells=48))
    with pytest.raises(ValueError, match="levelmin"):
        small_run(levelmin=0)
    with pytest.raises(ValueError, match="tout"):
        small_run(tout=(0.5, 0.1))
    with pytest.raises(ValueError, match="gamma"):
        small_run(gamma=1.0)
    run = small_run()
    with pytest.raises(ValueError, match="levelmin = 3"):
        tr.write_ic(tmp_path, np.ones((4, 4, 4)), np.zeros((3, 4, 4, 4)), run)
    with pytest.raises(ValueError, match="positive"):
        tr.write_ic(tmp_path, np.zeros((8, 8, 8)), np.zeros((3, 8, 8, 8)), run)
    assert not any(tmp_path.iterdir())  # nothing written on bad input


@needs_shared
def test_config_reproduces_the_shared_ramses_ic(tmp_path):
    """turbsim's white-noise IC written for RAMSES is exactly what the shared kolmo64 run read."""
    ic = np.load(RAMSES / "kolmo64" / "ic_kolmo64.npz")
    cfg = SimConfig(cells=64, seed=int(ic["seed"]), n=float(ic["n"]), mach=float(ic["mach"]),
                    ic="white_noise", t_end=0.5, gamma=1.0001)
    nml = tr.write_ic_from_config(tmp_path, cfg)
    for name, key in (("ic_d", "rho"), ("ic_u", "vx"), ("ic_v", "vy"), ("ic_w", "vz"), ("ic_p", "p")):
        np.testing.assert_array_equal(read_grafic(tmp_path / "ic" / name)[2], ic[key], err_msg=name)
    units = parse_namelist(nml.read_text())["UNITS_PARAMS"]
    assert float(units["units_length"]) == float(ic["units_length_cm"])
    assert float(units["units_time"]) == float(ic["units_time_s"])


@needs_shared
@pytest.mark.parametrize("case", ["kolmo64", "amr"])
def test_load_ic(case):
    ic = tr.load_ic(RAMSES / case / f"ic_{case}.npz")
    raw = np.load(RAMSES / case / f"ic_{case}.npz")
    n = int(raw["N"])
    assert ic.density.shape == (n, n, n) and ic.velocity.shape == (3, n, n, n)
    assert ic.density.dtype == ic.velocity.dtype == np.float64
    np.testing.assert_array_equal(ic.velocity[2], raw["vz"].astype(np.float64))
    assert ic.dx == 1.0 / n
    assert ic.cs == pytest.approx(sound_speed(ic.meta["T_K"], ic.meta["mu"]) / ic.units["velocity"], rel=1e-14)
    assert ic.units["velocity"] == pytest.approx(ic.units["length"] / ic.units["time"], rel=1e-14)
    # The end time is the time of the last RAMSES snapshot (from its info file).
    last = max(ic.snapshot_times, key=ic.snapshot_times.get)
    assert ic.t_end == tr.open(RAMSES / case / last).time
    rms_mach = np.sqrt((ic.velocity**2).sum(axis=0).mean()) / ic.cs
    assert rms_mach == pytest.approx(ic.meta["mach"], rel=1e-6)


@needs_shared
def test_shared_ic_starts_the_solver():
    """Item 3: a shared IC goes straight into turbsim.solver.evolve (mass conserved)."""
    solver = pytest.importorskip("turbsim.solver")
    ic = tr.load_ic(RAMSES / "amr" / "ic_amr.npz")
    res = solver.evolve(ic.density, ic.velocity, dx=ic.dx, cs=ic.cs, t_end=0.05,
                        gamma=tr.RAMSES_GAMMA, ramses_dt=True)
    assert res.time == pytest.approx(0.05, rel=1e-12)
    assert res.rho.mean() == pytest.approx(1.0, abs=1e-13)
    assert not np.array_equal(res.velocity, ic.velocity)


def test_load_ic_errors(tmp_path):
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "none.npz"))):
        tr.load_ic(tmp_path / "none.npz")
    np.savez(tmp_path / "bad.npz", rho=np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="lacks vx"):
        tr.load_ic(tmp_path / "bad.npz")


def write_npz_ic(path, n=4, **changes):
    """A small, valid IC file in the shared layout, with some keys changed (None: dropped)."""
    rng = np.random.default_rng(0)
    d = dict(rho=np.ones((n, n, n), np.float32), vx=rng.standard_normal((n, n, n)).astype(np.float32),
             vy=np.zeros((n, n, n), np.float32), vz=np.zeros((n, n, n), np.float32),
             p=np.full((n, n, n), 3.7e-4, np.float32), cs_code=0.0192, t_end_code=0.5, N=n,
             units_length_cm=3.0857e19, units_density_g_cm3=6.77e-22, units_time_s=3.15576e13,
             units_velocity_cm_s=9.778e5)
    d.update(changes)
    np.savez(path, **{k: v for k, v in d.items() if v is not None})
    return path


@pytest.mark.parametrize("content", [b"rho vx vy vz\n1 2 3 4\n", b"\x93NUMPY", b"PK\x03\x04truncated zip"])
def test_load_ic_of_a_file_that_is_not_an_npz(tmp_path, content):
    """A text file (or an .npy, or a broken zip) is named as not an .npz of an IC, without
    numpy's misleading advice about pickled data."""
    f = tmp_path / "ic.txt"
    f.write_bytes(content)
    with pytest.raises(ValueError) as info:
        tr.load_ic(f)
    msg = str(info.value)
    assert str(f) in msg and "not a NumPy .npz" in msg and "pickle" not in msg, msg


def test_load_ic_of_an_npy_file(tmp_path):
    np.save(tmp_path / "ic.npy", np.ones((4, 4, 4)))
    with pytest.raises(ValueError, match="not a NumPy .npz"):
        tr.load_ic(tmp_path / "ic.npy")


def test_load_ic_valid_small_file(tmp_path):
    ic = tr.load_ic(write_npz_ic(tmp_path / "ok.npz"))
    assert ic.density.shape == (4, 4, 4) and ic.dx == 0.25 and ic.meta["N"] == 4


@pytest.mark.parametrize("changes,words", [
    (dict(rho=np.ones((4, 4, 2), np.float32)), ["rho", "(4, 4, 2)", "cube"]),
    (dict(vy=np.zeros((4, 4, 8), np.float32)), ["vy", "(4, 4, 8)", "(4, 4, 4)"]),
    (dict(rho=np.full((4, 4, 4), np.nan, np.float32)), ["rho", "nan"]),
    (dict(rho=np.zeros((4, 4, 4), np.float32)), ["rho", "0.0", "positive"]),
    (dict(vz=np.full((4, 4, 4), np.inf, np.float32)), ["vz", "inf"]),
    (dict(cs_code=-1.0), ["cs_code", "-1.0"]),
    (dict(units_time_s=0.0), ["units_time_s", "0.0"]),
    (dict(N=8), ["N = 8", "(4, 4, 4)"]),
])
def test_load_ic_rejects_inconsistent_contents(tmp_path, changes, words):
    f = write_npz_ic(tmp_path / "bad.npz", **changes)
    with pytest.raises(ValueError) as info:
        tr.load_ic(f)
    assert [w for w in (str(f), *words) if w not in str(info.value)] == [], info.value


@pytest.mark.parametrize("changes,words", [
    (dict(units_time=float("nan")), ["units_time", "nan"]),
    (dict(mu=-2.37), ["mu", "-2.37"]),
    (dict(courant=1.5), ["courant", "1.5", "(0, 1]"]),
    (dict(slope_type=3), ["slope_type", "3"]),
    (dict(levelmax=2), ["levelmax", "2", "[3, 30]"]),
    (dict(tout=(0.0, float("nan"))), ["tout"]),
])
def test_run_fields_are_named_when_refused(changes, words):
    with pytest.raises(ValueError) as info:
        small_run(**changes)
    assert [w for w in words if w not in str(info.value)] == [], info.value


def test_run_accepts_numpy_integers():
    run = small_run(levelmin=np.int64(3), levelmax=np.int32(4), slope_type=np.int64(2))
    assert (run.levelmin, run.levelmax, run.slope_type) == (3, 4, 2)
    assert all(type(v) is int for v in (run.levelmin, run.levelmax, run.slope_type))


def test_an_amr_lite_config_gives_ramses_its_levels_and_criteria(tmp_path):
    # the namelist of the shared AMR case (CASE.md: levelmin 5, levelmax 7, err_grad_d 0.1,
    # nexpand 1, floor_d 1e-10, interpol_var 0, interpol_type 1) from AMR-lite's config
    cfg = SimConfig(cells=32, levelmin=5, levelmax=7, refine="gradient", err_grad_d=0.1, n=11 / 3, seed=3,
                    regrid_schedule="nsubcycle")
    nml = parse_namelist(tr.namelist(tr.run_from_config(cfg)))
    assert nml["RUN_PARAMS"]["nsubcycle"] == "7*2"    # RAMSES's default subcycling, written out
    one = parse_namelist(tr.namelist(tr.run_from_config(cfg.replace(regrid_schedule="global"))))
    assert one["RUN_PARAMS"]["nsubcycle"] == "7*1"    # one time step for every level
    assert (nml["AMR_PARAMS"]["levelmin"], nml["AMR_PARAMS"]["levelmax"], nml["AMR_PARAMS"]["nexpand"]) == \
        ("5", "7", "7*1")
    assert nml["REFINE_PARAMS"] == {"interpol_var": "0", "interpol_type": "1", "floor_d": "1e-10",
                                    "err_grad_d": "0.1"}
    both = cfg.replace(refine="gradient+mass", m_refine=8.0, nexpand=2)
    refine = parse_namelist(tr.namelist(tr.run_from_config(both)))
    # per-level arrays start at levelmin and key=v sets only their first element: repeated
    assert refine["REFINE_PARAMS"]["m_refine"] == "7*8.0" and refine["AMR_PARAMS"]["nexpand"] == "7*2"
    assert float(refine["REFINE_PARAMS"]["mass_sph"]) == 32.0**-3   # a levelmin cell's mean mass
    assert "REFINE_PARAMS" not in parse_namelist(tr.namelist(tr.run_from_config(SimConfig(cells=32))))
    # what RAMSES cannot be told is refused, naming it
    with pytest.raises(ValueError, match="2\\^levelmin"):
        tr.run_from_config(cfg.replace(cells=64))
    with pytest.raises(ValueError, match="refine = 'all'"):
        tr.run_from_config(cfg.replace(refine="all"))
    with pytest.raises(ValueError, match="levelmax = 6 differs"):
        tr.run_from_config(cfg, levelmax=6)
    path = tr.write_ic_from_config(tmp_path, cfg)
    assert "err_grad_d=0.1" in path.read_text()

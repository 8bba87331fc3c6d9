"""Solver tests against analytic solutions and conservation laws."""
import io

import numpy as np
import pytest

from turbsim import SimConfig, config, console, solver
from turbsim._solver import _kernels
from turbsim.exact import riemann, sound_wave
from turbsim.ic import initial_conditions
from turbsim.solver import LIMITER_CODES, SCHEME_CODES, SolverError, evolve, max_signal_speed


def measured_order(ns, errors):
    """Least-squares slope of -log(error) against log(N)."""
    return -np.polyfit(np.log(ns), np.log(errors), 1)[0]


def sound_wave_1d_error(n, scheme, axis, limiter="minmod", amp=1e-7):
    """L1 density error / amplitude after one wave period along one axis."""
    shape = [1, 1, 1]
    shape[axis] = n
    x = (np.arange(n) + 0.5) / n
    rho, v = sound_wave(x, 0.0, amplitude=amp)
    vel = np.zeros((3, n))
    vel[axis] = v
    res = evolve(rho.reshape(shape), vel.reshape((3, *shape)), dx=1 / n, cs=1.0, t_end=1.0,
                 scheme=scheme, limiter=limiter)
    exact, _ = sound_wave(x, 1.0, amplitude=amp)
    return np.abs(res.rho.ravel() - exact).mean() / amp


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("scheme,order", [("first", 0.9), ("muscl", 1.8)])
def test_sound_wave_1d_convergence(scheme, order, axis):
    ns = [32, 64, 128, 256]
    errors = [sound_wave_1d_error(n, scheme, axis) for n in ns]
    assert np.all(np.diff(errors) < 0)
    assert measured_order(ns, errors) >= order


def test_sound_wave_same_along_every_axis():
    # the flux sums run in a different order along each axis: equal up to round-off
    # (the amplitude is 1e-7, so 1e-6 of the error is ~1e-20 in density)
    errs = [sound_wave_1d_error(64, "muscl", axis) for axis in range(3)]
    assert np.allclose(errs, errs[0], rtol=1e-6, atol=0)


def diagonal_wave_error(n, scheme, limiter):
    """Wave vector 2 pi (1, 1, 1): the wave travels along the cube diagonal."""
    i = (np.arange(n) + 0.5) / n
    x, y, z = np.meshgrid(i, i, i, indexing="ij")
    s = (x + y + z) / np.sqrt(3)
    lam, amp = 1 / np.sqrt(3), 1e-7
    rho, v = sound_wave(s, 0.0, amplitude=amp, wavelength=lam)
    t_end = 0.25 * lam
    res = evolve(rho, np.stack([v, v, v]) / np.sqrt(3), dx=1 / n, cs=1.0, t_end=t_end,
                 scheme=scheme, limiter=limiter)
    exact, _ = sound_wave(s, t_end, amplitude=amp, wavelength=lam)
    return np.abs(res.rho - exact).mean() / amp


@pytest.mark.parametrize("scheme,limiter,order", [("first", "minmod", 0.9), ("muscl", "moncen", 1.8)])
def test_sound_wave_3d_diagonal_convergence(scheme, limiter, order):
    ns = [16, 32, 64, 128]
    errors = [diagonal_wave_error(n, scheme, limiter) for n in ns]
    assert np.all(np.diff(errors) < 0)
    assert measured_order(ns, errors) >= order


def shock_tube_error(n, scheme, t_end=0.1):
    """L1 density error of the isothermal shock tube rho 1 | 0.1 against the exact solution.

    The periodic box holds a second, mirrored discontinuity at x = 0; by t_end = 0.1 no wave
    has travelled 0.25, so the region [0.25, 0.75] sees only the problem at x = 0.5."""
    x = (np.arange(n) + 0.5) / n
    rho = np.where(x < 0.5, 1.0, 0.1)
    res = evolve(rho.reshape(n, 1, 1), np.zeros((3, n, 1, 1)), dx=1 / n, cs=1.0, t_end=t_end,
                 scheme=scheme)
    exact, u_exact = riemann((x - 0.5) / t_end, 1.0, 0.0, 0.1, 0.0)
    inner = (x > 0.25) & (x < 0.75)
    return np.abs(res.rho.ravel() - exact)[inner].mean()


# L1 density errors measured at 256 cells: first order 1.73e-2, MUSCL 4.70e-3.
@pytest.mark.parametrize("scheme,bound_256", [("first", 0.02), ("muscl", 0.0055)])
def test_shock_tube_against_exact_riemann_solver(scheme, bound_256):
    ns = [64, 128, 256, 512]
    errors = [shock_tube_error(n, scheme) for n in ns]
    assert np.all(np.diff(errors) < 0)
    assert errors[2] < bound_256


def test_exact_riemann_solver_jump_conditions():
    rs, us = __import__("turbsim.exact", fromlist=["star_state"]).star_state(1.0, 0.0, 0.1, 0.0)
    # right-moving shock: isothermal Rankine-Hugoniot, mass flux continuity
    s = us * rs / (rs - 0.1)
    assert np.isclose(s, 0.0 + np.sqrt(rs / 0.1), rtol=1e-10)
    # left rarefaction: Riemann invariant u + c ln rho conserved
    assert np.isclose(us + np.log(rs), 0.0 + np.log(1.0), rtol=0, atol=1e-12)


def turbulent_state(n=32, seed=3, mach=1.41):
    cfg = SimConfig(cells=n, seed=seed, mach=mach)
    return initial_conditions(cfg)


@pytest.mark.parametrize("scheme", ["first", "muscl"])
def test_mass_and_momentum_conserved_over_100_steps(scheme):
    rho, vel = turbulent_state(48)
    n = rho.shape[0]
    dt_estimate = 0.8 / n / max_signal_speed(rho, vel, 1.0)
    res = evolve(rho, vel, dx=1 / n, cs=1.0, t_end=150 * dt_estimate, scheme=scheme)
    assert res.steps >= 100
    m0, m1 = rho.sum(), res.rho.sum()
    assert abs(m1 - m0) / m0 < 1e-12
    scale = m0 * np.sqrt((vel**2).sum(axis=0).mean())
    p0 = (rho * vel).reshape(3, -1).sum(axis=1)
    p1 = (res.rho * res.velocity).reshape(3, -1).sum(axis=1)
    assert np.abs(p1 - p0).max() / scale < 1e-12


def galilean_difference(n, scheme):
    """Boosted vs unboosted run of a smooth flow, shifted back by an exact number of cells."""
    rho, vel = turbulent_state(n, seed=5, mach=0.5)
    boost, shift_cells = 0.5, n // 8
    t_end = shift_cells / n / boost
    base = evolve(rho, vel, dx=1 / n, cs=1.0, t_end=t_end, scheme=scheme)
    vb = vel.copy()
    vb[0] += boost
    moved = evolve(rho, vb, dx=1 / n, cs=1.0, t_end=t_end, scheme=scheme)
    back = np.roll(moved.rho, -shift_cells, axis=0)
    return np.abs(back - base.rho).sum() / np.abs(base.rho - 1).sum()


@pytest.mark.parametrize("scheme,tol", [("first", 0.25), ("muscl", 0.06)])
def test_galilean_invariance(scheme, tol):
    # A uniform boost of half the sound speed moves the flow by n/8 cells; the schemes are
    # not exactly Galilean invariant (the LLF dissipation grows with |v|), so the difference,
    # measured against the density fluctuations, must be small and shrink with resolution.
    d32, d64 = galilean_difference(32, scheme), galilean_difference(64, scheme)
    assert d64 < tol
    assert d64 < d32


@pytest.mark.parametrize("scheme,limiter,gamma", [("first", "minmod", 1.0), ("muscl", "minmod", 1.0),
                                                  ("muscl", "moncen", 1.0001)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_threads_bit_identical(scheme, limiter, gamma, dtype):
    # gamma != 1: MUSCL's face states carry RAMSES's pressure correction (the other closure)
    rho, vel = turbulent_state(32)
    runs = [evolve(rho, vel, dx=1 / 32, cs=1.0, t_end=0.02, scheme=scheme, limiter=limiter,
                   gamma=gamma, threads=t, dtype=dtype)
            for t in (1, 2)]
    assert runs[0].steps == runs[1].steps > 1
    assert np.array_equal(runs[0].rho, runs[1].rho)
    assert np.array_equal(runs[0].velocity, runs[1].velocity)


def test_lands_exactly_on_output_times():
    rho, vel = turbulent_state(16)
    res = evolve(rho, vel, dx=1 / 16, cs=1.0, t_end=0.05, outputs=[0.01, 0.0237], scheme="first")
    assert [s.time for s in res.snapshots] == [0.01, 0.0237, 0.05]
    direct = evolve(rho, vel, dx=1 / 16, cs=1.0, t_end=0.01, scheme="first")
    assert np.array_equal(direct.rho, res.snapshots[0].rho)


def test_float32_close_to_float64():
    rho, vel = turbulent_state(32)
    r64 = evolve(rho, vel, dx=1 / 32, cs=1.0, t_end=0.02)
    r32 = evolve(rho, vel, dx=1 / 32, cs=1.0, t_end=0.02, dtype=np.float32)
    signal = np.abs(r64.rho - 1).mean()
    assert np.abs(r32.rho - r64.rho).mean() / signal < 1e-4


def test_planar_problem_stays_planar():
    # a 1D shock tube embedded in a 3D grid: every pencil along z evolves identically
    n = 64
    x = (np.arange(n) + 0.5) / n
    rho = np.broadcast_to(np.where(x < 0.5, 1.0, 0.3).reshape(1, 1, n), (4, 4, n)).copy()
    res = evolve(rho, np.zeros((3, 4, 4, n)), dx=1 / n, cs=1.0, t_end=0.05)
    assert np.array_equal(res.rho, np.broadcast_to(res.rho[0, 0], res.rho.shape))
    assert np.all(res.velocity[:2] == 0)
    assert not np.allclose(res.rho, rho)


def test_density_floor_reported_not_nan():
    n = 16
    x = (np.arange(n) + 0.5) / n
    vel = np.zeros((3, n, 1, 1))
    vel[0, :, 0, 0] = np.where(x < 0.5, -30.0, 30.0)   # violent divergence empties the box centre
    with pytest.raises(SolverError, match="density"):
        evolve(np.ones((n, 1, 1)), vel, dx=1 / n, cs=1.0, t_end=0.5, scheme="muscl",
               density_floor=1e-3)


@pytest.mark.parametrize("bad,match", [
    (dict(rho=-np.ones((4, 4, 4))), "positive"),
    (dict(rho=np.full((4, 4, 4), np.nan)), "finite"),
    (dict(velocity=np.zeros((2, 4, 4, 4))), "velocity must have shape"),
    (dict(dx=0.0), "dx"),
    (dict(scheme="weno"), "scheme"),
    (dict(limiter="superbee"), "limiter"),
    (dict(courant=1.5), "courant"),
    (dict(outputs=[2.0]), "output times"),
    (dict(progress=("Myr", -1.0)), "progress"),
    (dict(progress="Myr"), "progress"),
])
def test_bad_input_raises_clear_error(bad, match):
    kw = dict(rho=np.ones((4, 4, 4)), velocity=np.zeros((3, 4, 4, 4)), dx=0.25, cs=1.0, t_end=1.0)
    kw.update(bad)
    rho, vel = kw.pop("rho"), kw.pop("velocity")
    with pytest.raises(ValueError, match=match):
        evolve(rho, vel, **kw)


def test_max_steps_reported():
    rho, vel = turbulent_state(16)
    with pytest.raises(SolverError, match="max_steps"):
        evolve(rho, vel, dx=1 / 16, cs=1.0, t_end=1.0, max_steps=3)


@pytest.mark.parametrize("scheme", ["first", "muscl"])
def test_stop_after_takes_full_steps_past_the_end_time(scheme):
    rho, vel = turbulent_state()
    kw = dict(dx=1 / 32, cs=1.0, scheme=scheme, threads=1)
    t_end = 0.02
    after = evolve(rho, vel, t_end=t_end, stop="after", **kw)
    exact = evolve(rho, vel, t_end=t_end, **kw)
    # the first step that reaches t_end, unshortened: past t_end by less than one step
    assert t_end <= after.time < t_end + after.last_dt
    assert after.steps == exact.steps and exact.time == t_end
    # the same as landing exactly on the time it reached
    there = evolve(rho, vel, t_end=after.time, **kw)
    assert there.steps == after.steps
    assert np.abs(there.rho - after.rho).max() <= 1e-12
    # intermediate outputs follow the same rule
    two = evolve(rho, vel, t_end=t_end, outputs=[t_end / 2], stop="after", **kw)
    assert t_end / 2 <= two.snapshots[0].time < t_end / 2 + two.last_dt
    assert np.array_equal(two.rho, after.rho)
    with pytest.raises(ValueError, match="stop"):
        evolve(rho, vel, t_end=t_end, stop="later", **kw)


def test_simulate_records_the_time_reached_with_stop_after():
    from turbsim import simulate

    cfg = SimConfig(cells=16, seed=2, t_end=0.05, stop="after")
    res = simulate(cfg, threads=1)
    assert res.time > cfg.t_end
    assert simulate(cfg.replace(stop="exact"), threads=1).time == cfg.t_end


def test_option_codes_are_the_kernel_enums():
    # the names evolve accepts are the C enums' members, and the ones SimConfig accepts
    assert set(SCHEME_CODES) == set(config.SCHEMES)
    assert set(LIMITER_CODES) == set(config.LIMITERS)
    assert all(isinstance(c, _kernels.Scheme) for c in SCHEME_CODES.values())
    assert all(isinstance(c, _kernels.Limiter) for c in LIMITER_CODES.values())
    # the kernel refuses a code outside its enums instead of running some scheme
    U = np.ones((4, 4, 4, 4))
    U[1:] = 0.0
    args = (1 / 4, 1.0, 1.0, 0.8)
    for scheme, limiter in ((7, _kernels.Limiter.MINMOD), (_kernels.Scheme.MUSCL, 0)):
        status, time, steps, _, _ = _kernels.run(U, np.empty_like(U), *args, scheme, limiter, 0, 1,
                                                 0.0, 10, 0.0, 0.1)
        assert status == _kernels.Status.BAD_OPTION and steps == 0 and time == 0.0


def spy_on_progress(monkeypatch):
    """Bars made through console.progress from now on, writing plain lines to a StringIO."""
    bars, real = [], console.progress

    def spy(*args, **kw):
        bars.append(real(*args, file=io.StringIO(), **kw))
        return bars[-1]

    monkeypatch.setattr(console, "progress", spy)
    return bars


@pytest.mark.parametrize("progress,unit,per_time", [(True, "t", 1.0), (("kyr", 250.0), "kyr", 250.0)])
def test_progress_bar_counts_simulated_time_in_its_unit(monkeypatch, progress, unit, per_time):
    bars = spy_on_progress(monkeypatch)
    rho, vel = turbulent_state(16)
    t_end = 0.02
    res = evolve(rho, vel, dx=1 / 16, cs=1.0, t_end=t_end, outputs=[0.01], scheme="first",
                 progress=progress)
    (bar,) = bars
    assert isinstance(bar, console.LineProgress)   # a file, not a terminal: plain lines
    assert bar.unit == unit
    assert bar.total == pytest.approx(t_end * per_time, rel=1e-12)
    assert bar.n == pytest.approx(res.time * per_time, rel=1e-9)
    assert f" {unit} (100%)" in bar.file.getvalue()   # the closing line


def test_simulate_progress_bar_counts_myr(monkeypatch):
    from turbsim import simulate, units

    bars = spy_on_progress(monkeypatch)
    cfg = SimConfig(cells=16, seed=2, t_end=0.05)
    simulate(cfg, threads=1, progress=True)
    (bar,) = bars
    assert bar.unit == "Myr"
    assert bar.total == pytest.approx(cfg.t_end, rel=1e-12)
    assert bar.n == pytest.approx(cfg.t_end, rel=1e-9)
    # not the solver's code time
    assert not np.isclose(cfg.t_end_code, cfg.t_end, rtol=1e-3)
    assert cfg.code_units["time"] / units.MYR == pytest.approx(cfg.t_end / cfg.t_end_code)


@pytest.mark.parametrize("scheme,limiter,gamma", [("first", "minmod", 1.0), ("muscl", "moncen", 1.0),
                                                  ("muscl", "minmod", 1.0001)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_any_thread_partition_bit_identical(scheme, limiter, gamma, dtype):
    # blocks of 2, 3 and 4 x slabs on a non-cubic grid: the boundary step between blocks
    # (and, with one thread, the periodic one) gives the cells the same sums in the same order
    rng = np.random.default_rng(4)
    shape = (9, 6, 10)
    rho = 1.0 + 0.3 * rng.random(shape)
    vel = rng.normal(0.0, 0.8, (3,) + shape)
    runs = [evolve(rho, vel, dx=0.1, cs=1.0, t_end=0.05, scheme=scheme, limiter=limiter,
                   gamma=gamma, threads=t, dtype=dtype, stop="after") for t in (1, 2, 3, 4)]
    assert runs[0].steps > 2
    for r in runs[1:]:
        assert r.steps == runs[0].steps and r.time == runs[0].time
        assert np.array_equal(r.rho, runs[0].rho)
        assert np.array_equal(r.velocity, runs[0].velocity)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_evolve_conserved_is_evolve_without_copies(dtype):
    rho, vel = turbulent_state(16)
    kw = dict(dx=1 / 16, cs=1.0, t_end=0.02, outputs=[0.01], scheme="muscl", threads=2)
    ref = evolve(rho, vel, dtype=dtype, **kw)
    U, work = solver.state_buffers(rho.shape, dtype)
    solver.to_conserved(rho, vel, dtype, out=U)
    res = solver.evolve_conserved(U, work, **kw)
    assert res.steps == ref.steps
    for a, b in zip(res.snapshots, ref.snapshots):
        assert np.array_equal(a.rho, b.rho) and np.array_equal(a.velocity, b.velocity)
        assert a.rho.dtype == a.velocity.dtype == np.float64
    if dtype == np.float32:  # the float64 result lies in the memory of the two buffers
        assert np.shares_memory(res.velocity, work) and np.shares_memory(res.rho, U)
    with pytest.raises(ValueError, match="state_buffers"):
        solver.evolve_conserved(U, work[:, :8], **kw)


def test_invalid_cell_reported_alike_for_any_thread_count():
    # several cells fail in the same step: the one reported (the first in memory order)
    # does not depend on how the slabs are shared among threads
    n = 16
    x = (np.arange(n) + 0.5) / n
    vel = np.zeros((3, n, 4, 1))
    vel[0] = np.where(x < 0.5, -30.0, 30.0)[:, None, None]
    messages = set()
    for threads in (1, 2, 3):
        with pytest.raises(SolverError, match="density") as info:
            evolve(np.ones((n, 4, 1)), vel, dx=1 / n, cs=1.0, t_end=0.5, scheme="muscl",
                   density_floor=1e-3, threads=threads)
        messages.add(str(info.value))
    assert len(messages) == 1


THREAD_LIMIT = r"""
import sys
import numpy as np
from turbsim.solver import evolve
rng = np.random.default_rng(2)
rho = 1.0 + 0.3 * rng.random((12, 6, 8))
vel = rng.normal(0.0, 0.8, (3, 12, 6, 8))
res = evolve(rho, vel, dx=0.1, cs=1.0, t_end=0.05, threads=int(sys.argv[1]))
np.save(sys.argv[2], np.concatenate([res.rho[None], res.velocity]))
"""


@pytest.mark.skipif(not _kernels.openmp_available(), reason="built without OpenMP")
def test_fewer_threads_granted_than_asked(tmp_path):
    # under OMP_THREAD_LIMIT the team is smaller than the threads asked for: the slabs are
    # shared among the threads that exist, and the result is unchanged
    import os
    import subprocess
    import sys

    paths = []
    for limit, threads in (("4", 1), ("1", 3), ("2", 4)):
        path = tmp_path / f"limit{limit}_threads{threads}.npy"
        env = dict(os.environ, OMP_THREAD_LIMIT=limit)
        subprocess.run([sys.executable, "-c", THREAD_LIMIT, str(threads), str(path)], env=env,
                       check=True)
        paths.append(path)
    ref = np.load(paths[0])
    for path in paths[1:]:
        assert np.array_equal(np.load(path), ref)


def test_solver_benchmark_compares_builds_on_cpu_time(capsys):
    """benchmarks/solver.py --against (here the same build) with the CPU clock: one line per
    scheme and thread count, the states bit-identical and the ratios near 1."""
    import importlib.util
    import json
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "solver.py"
    spec = importlib.util.spec_from_file_location("bench_solver", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--cells", "16", "--dtypes", "float64", "--repeat", "2", "--steps", "4",
                "--clock", "cpu", "--against", _kernels.__file__, "--json"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert {r["scheme"] for r in rows} == {"first", "muscl"}
    assert all(r["bit_identical"] and r["ratio_median"] > 0 and "load" in r for r in rows)

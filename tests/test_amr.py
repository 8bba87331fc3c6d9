"""Tests of turbsim.amr: the refined mesh (regrid, nesting), the step on it (conservation,
equality with the uniform solver), and its API through turbsim.simulate."""
import numpy as np
import pytest

from turbsim import ic, solver
from turbsim.amr import ABSENT, LEAF, REFINED, AmrError, Mesh, evolve


def blob(n, amp=2.0, centre=(0.5, 0.4, 0.5), width=0.1):
    x = (np.arange(n) + 0.5) / n
    X, Y, Z = np.meshgrid(x, x, x, indexing="ij")
    r2 = (X - centre[0]) ** 2 + (Y - centre[1]) ** 2 + (Z - centre[2]) ** 2
    return 1.0 + amp * np.exp(-r2 / width**2)


def same(a, b, tol=1e-12):
    """Equal to round-off: the largest difference below tol times the largest value."""
    return a.shape == b.shape and float(np.abs(a - b).max()) <= tol * float(np.abs(b).max())


# -- the mesh -------------------------------------------------------------------------------

def test_levels_validated():
    with pytest.raises(ValueError, match="levelmin = 2"):
        Mesh(2, 4)
    with pytest.raises(ValueError, match="levelmax = 3"):
        Mesh(4, 3)
    with pytest.raises(ValueError, match="N = 12"):
        Mesh.from_uniform(np.ones((12,) * 3), np.zeros((3, 12, 12, 12)), 3, 5)


def test_memory_estimate(monkeypatch):
    import turbsim.amr as amr
    import turbsim.amr_mesh as amr_mesh
    state = 4 * 8 * 8**7
    assert 1.5 < amr.memory_bytes(5, 7) / state < 1.8
    monkeypatch.setattr(amr_mesh, "_available_memory", lambda: 2**20)
    with pytest.raises(MemoryError, match="levels 5..7"):
        amr.Mesh(5, 7)


def test_restrict_prolong_conserve():
    rng = np.random.default_rng(1)
    rho = 1 + 0.5 * rng.random((16,) * 3)
    vel = rng.standard_normal((3, 16, 16, 16))
    mesh = Mesh.from_uniform(rho, vel, 3, 5)
    # restriction: the coarse cells hold the volume average
    assert np.allclose(mesh.U[3][0], rho.reshape(8, 2, 8, 2, 8, 2).mean(axis=(1, 3, 5)), rtol=1e-15)
    # prolongation into level 5 (filled everywhere at construction) averages back
    back = mesh.U[5].reshape(4, 16, 2, 16, 2, 16, 2).mean(axis=(2, 4, 6))
    assert np.allclose(back, mesh.U[4], rtol=1e-14, atol=1e-14)


def test_regrid_nesting_and_buffer():
    """RAMSES's rules: flagged cells plus nexpand buffer, 2:1 nesting after every regrid."""
    mesh = Mesh.from_uniform(blob(8, width=0.15), np.zeros((3, 8, 8, 8)), 3, 6)
    flagged = mesh.flag(3, "gradient", 0.1, 0.0)
    mesh.regrid("gradient", err_grad_d=0.1, nexpand=1)
    mesh.check_nesting()
    assert set(mesh.leaf_counts()) == {3, 4}     # one new level per regrid (as RAMSES)
    refined = mesh.kind[3] == REFINED
    from turbsim.amr import _erode, _smooth
    ex = mesh.kind[3] != ABSENT
    assert np.array_equal(refined, _smooth(flagged, ex) & _erode(ex))
    mesh.regrid("gradient", err_grad_d=0.1, nexpand=1)
    mesh.check_nesting()
    counts = mesh.leaf_counts()
    assert 5 in counts and len(counts) >= 2, counts
    # nexpand = 0 refines exactly the flagged cells of the base level
    m0 = Mesh.from_uniform(blob(8, width=0.15), np.zeros((3, 8, 8, 8)), 3, 4)
    m0.regrid("gradient", err_grad_d=0.1, nexpand=0)
    assert np.array_equal(m0.kind[3] == REFINED, m0.flag(3, "gradient", 0.1, 0.0))
    # uniform density: nothing flagged, everything derefined to levelmin
    m1 = Mesh.from_uniform(np.ones((16,) * 3), np.zeros((3, 16, 16, 16)), 3, 5)
    m1.regrid("gradient", err_grad_d=0.1)
    assert m1.leaf_counts() == {3: 512}
    m1.check_nesting()


def test_gradient_flags_as_ramses():
    """The kernel's criterion equals a NumPy transcription of RAMSES's hydro_refine, with
    absent neighbours replaced by their coarser covering cell (hydro_flag)."""
    from turbsim.amr import FLOOR_D, _up
    rng = np.random.default_rng(3)
    mesh = Mesh.from_uniform(blob(16, amp=1.0) * (1 + 0.05 * rng.random((16,) * 3)),
                             np.zeros((3, 16, 16, 16)), 3, 5)
    mesh.regrid("gradient", err_grad_d=0.1)
    mesh.regrid("gradient", err_grad_d=0.1)
    assert len(mesh.leaf_counts()) >= 2
    for L in mesh.levels:
        ex = mesh.kind[L] != ABSENT
        d = mesh.U[L][0]
        if L > mesh.levelmin:
            d = np.where(ex, d, _up(mesh.U[L - 1][0]))
        ref = np.zeros(d.shape, bool)
        for axis in range(3):
            dg, dd = np.roll(d, 1, axis), np.roll(d, -1, axis)
            err = 2 * np.maximum(np.abs((dd - d) / (dd + d + FLOOR_D)), np.abs((d - dg) / (d + dg + FLOOR_D)))
            ref |= err > 0.1
        assert np.array_equal(mesh.flag(L, "gradient", 0.1, 0.0), ref & ex)


def test_smooth_is_ramses_dilation():
    """RAMSES's smooth_fine: a single flag grows to its 3x3x3 cube; a notch is filled."""
    from turbsim.amr import _smooth
    ex = np.ones((8, 8, 8), bool)
    one = np.zeros_like(ex)
    one[4, 4, 4] = True
    cube = np.zeros_like(ex)
    cube[3:6, 3:6, 3:6] = True
    assert np.array_equal(_smooth(one, ex), cube)
    two = np.zeros_like(ex)
    two[0, 0, 4] = two[2, 2, 4] = True      # the cell (2, 0, 4) lies outside both cubes
    out = _smooth(two, ex)
    assert out[2, 0, 4] and out[0, 2, 4]
    assert not _smooth(one, ex & ~cube)[4, 4, 5]   # absent cells are never flagged


def test_mass_criterion():
    mesh = Mesh.from_uniform(blob(8, amp=20.0), np.zeros((3, 8, 8, 8)), 3, 5)
    mesh.regrid("mass", m_refine=2.0, nexpand=0)
    mesh.check_nesting()
    d = mesh.U[3][0]
    mean = mesh.totals()[0]
    assert np.array_equal(mesh.kind[3] == REFINED, (d >= 2.0 * mean) & np.ones_like(d, bool))


# -- the step -------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["first", "muscl"])
@pytest.mark.parametrize("gamma", [1.0, 1.0001])
def test_nowhere_and_everywhere_equal_uniform(scheme, gamma):
    """Refining nowhere = the uniform coarse run, everywhere = the uniform fine run, to
    round-off (bit for bit today: the same per-cell arithmetic as the uniform kernels)."""
    n = 16
    vel = ic.velocity_field(n, 11 / 3, 3, mach=1.41)
    rho = blob(n, amp=0.3)
    ref = solver.evolve(rho, vel, dx=1 / n, cs=1.0, t_end=0.03, scheme=scheme, gamma=gamma)
    for schedule in ("global", "nsubcycle"):
        m = Mesh.from_uniform(rho, vel, 4, 5)
        r = evolve(m, 0.03, scheme=scheme, gamma=gamma, refine="none", schedule=schedule)
        assert m.leaf_counts() == {4: n**3} and r.steps == ref.steps
        assert r.level_steps == {4: ref.steps}
        assert same(m.U[4][0], ref.rho)
        assert same(m.U[4][1:] / m.U[4][0], ref.velocity)
    m = Mesh.from_uniform(rho, vel, 3, 4)
    r = evolve(m, 0.03, scheme=scheme, gamma=gamma, refine="all")
    assert m.leaf_counts() == {4: n**3} and r.steps == ref.steps
    assert same(m.U[4][0], ref.rho)
    assert same(m.U[4][1:] / m.U[4][0], ref.velocity)


@pytest.mark.parametrize("scheme, schedule", [("first", "subcycle"), ("muscl", "global"),
                                              ("first", "nsubcycle"), ("muscl", "nsubcycle")])
def test_conservation_over_many_regrids(scheme, schedule):
    """Mass and momentum to 1e-12 relative while the mesh refines and derefines every step,
    also with RAMSES's subcycling (each level two steps per coarser step, its own dt,
    refluxing of the time-integrated fine fluxes); proper nesting after every regrid."""
    vel = ic.velocity_field(16, 11 / 3, 1, mach=0.5)
    mesh = Mesh.from_uniform(blob(16), vel + np.array([1.0, 0, 0])[:, None, None, None], 3, 5)
    counts = []

    def check(m):
        m.check_nesting()
        counts.append(m.leaf_counts())

    res = evolve(mesh, 0.3, scheme=scheme, err_grad_d=0.2, on_regrid=check, schedule=schedule)
    assert res.regrids >= (15 if schedule == "nsubcycle" else 20)  # nsubcycle: measured 20, 23
    assert res.mass_error < 1e-12                                  # nsubcycle: measured 2e-15
    assert res.momentum_error < 1e-12
    assert len({tuple(sorted(c.items())) for c in counts}) > 5    # the mesh changed
    assert any(len(c) == 3 for c in counts)
    if schedule == "nsubcycle":
        assert all(res.level_steps[L + 1] <= 2 * res.level_steps[L] for L in (3, 4)), res.level_steps


def test_subcycled_levels_take_two_steps_per_coarser_step():
    """With a static mesh of 3 levels, levelmax takes 4 steps per coarse step and the middle
    level 2, each finer step half the coarser one (the fine CFL step is not smaller); one
    global step gives every level the same count."""
    n = 8
    x = (np.arange(n) + 0.5) / n
    s = np.sin(2 * np.pi * x)[:, None, None] * np.ones((n, n, n))
    vel = np.zeros((3, n, n, n))
    vel[0] = 1e-3 * s

    def run(schedule):
        mesh = Mesh.from_uniform(1 + 1e-3 * s, vel, 3, 5)
        mask = np.zeros((n, n, n), bool)
        mask[2:6] = True
        mesh.refine_cells(3, mask)
        mask4 = np.zeros((16,) * 3, bool)
        mask4[6:10] = True
        mesh.refine_cells(4, mask4)
        mesh.check_nesting()
        return evolve(mesh, 0.2, refine=None, schedule=schedule)

    sub = run("nsubcycle")
    assert sub.level_steps == {3: sub.steps, 4: 2 * sub.steps, 5: 4 * sub.steps}, sub.level_steps
    assert sub.mass_error < 1e-12 and sub.momentum_error < 1e-12
    glob = run("global")
    assert glob.level_steps == {3: glob.steps, 4: glob.steps, 5: glob.steps}
    assert glob.steps > sub.steps           # the global step is that of level 5
    leaves = {4: 4 * 16**2, 5: 8 * 32**2}   # x-slabs of 4 cells at level 4, 8 at level 5
    assert sub.cell_updates == sub.steps * (4 * 8**2 + 2 * leaves[4] + 4 * leaves[5])


def test_refines_and_derefines():
    """Octs are removed where the flow no longer needs them and created where it does."""
    vel = np.zeros((3, 32, 32, 32))
    vel[0] = 1.0
    mesh = Mesh.from_uniform(blob(32), vel, 3, 5)     # refined everywhere at first
    res = evolve(mesh, 0.08, err_grad_d=0.1)
    removed = sum(h["removed"].get(5, 0) for h in res.history)
    created = sum(h["created"].get(5, 0) for h in res.history[1:])
    assert removed > 0 and created > 0, (removed, created)
    assert res.history[0]["leaves"][5] < 32**3
    assert res.mass_error < 1e-12


@pytest.mark.parametrize("schedule", ["global", "nsubcycle"])
def test_threads_identical(schedule):
    def run(threads):
        vel = ic.velocity_field(16, 11 / 3, 2, mach=1.0)
        m = Mesh.from_uniform(blob(16), vel, 3, 5)
        r = evolve(m, 0.05, err_grad_d=0.1, threads=threads, schedule=schedule)
        return m, r
    (a, ra), (b, rb) = run(1), run(2)
    assert ra.level_steps == rb.level_steps and len(ra.level_steps) == 3
    for L in a.levels:
        assert np.array_equal(a.kind[L], b.kind[L])
        leaf = a.kind[L] == LEAF
        assert np.array_equal(a.U[L][:, leaf], b.U[L][:, leaf])


def test_failure_is_loud():
    n = 16
    vel = np.zeros((3, n, n, n))
    vel[0, : n // 2] = 30.0
    vel[0, n // 2:] = -30.0
    m = Mesh.from_uniform(np.ones((n,) * 3), vel, 4, 5)
    with pytest.raises(AmrError, match="invalid state|density"):
        evolve(m, 0.1, scheme="muscl", courant=1.0, density_floor=0.05, refine="none")


# -- the API --------------------------------------------------------------------------------

def test_simulate_amr_equals_uniform_runs():
    """Through turbsim.simulate: refine="none" is the uniform run on the levelmin grid and
    refine="all" the uniform run on the levelmax grid, to round-off."""
    from turbsim import SimConfig, simulate
    base = dict(n=4.0, seed=3, t_end=2.0, scheme="muscl")
    uni = simulate(SimConfig(cells=16, **base))
    none = simulate(SimConfig(cells=16, levelmin=4, levelmax=5, refine="none", **base))
    assert none.leaf_counts() == {4: 16**3}
    assert same(none.to_uniform(4).density * none.config.density, uni.density)
    full = simulate(SimConfig(cells=16, levelmin=3, levelmax=4, refine="all", **base))
    assert same(full.density, uni.density)
    assert same(full.velocity, uni.velocity)


def test_simulate_amr_result_views():
    from turbsim import SimConfig, simulate
    cfg = SimConfig(cells=16, levelmin=4, levelmax=6, n=4.0, seed=1, mach=2.0, t_end=2.0,
                    err_grad_d=0.2)
    res = simulate(cfg)
    counts = res.leaf_counts()
    assert len(counts) >= 2, counts
    assert res.mass_error < 1e-12 and res.momentum_error < 1e-12
    table = res.cells()
    assert list(table) == ["x", "y", "z", "level", "dx", "density", "velocity_x", "velocity_y",
                           "velocity_z", "pressure"]
    assert table["level"].dtype == np.int32
    assert np.isclose((table["density"] * table["dx"] ** 3).sum(), 1.0, rtol=1e-12)
    assert {int(L): int(c) for L, c in zip(*np.unique(table["level"], return_counts=True))} == counts
    cgs = res.cells(cgs=True)
    mass_g = (cgs["density"] * cgs["dx"] ** 3).sum()
    assert np.isclose(mass_g, cfg.code_units["mass"], rtol=1e-12)
    for level in (4, 5, 6):
        rho, vel = res.to_uniform(level)
        assert rho.shape == (2**level,) * 3 and vel.shape == (3,) + rho.shape
        assert np.isclose(rho.mean(), 1.0, rtol=1e-12)
        # momentum of the uniform view = momentum of the leaves (velocity averaged by mass)
        mom = (rho * vel).mean(axis=(1, 2, 3))
        leaf_mom = [(table["density"] * table[f"velocity_{a}"] * table["dx"] ** 3).sum() for a in "xyz"]
        assert np.allclose(mom, leaf_mom, atol=1e-13)
        sigma = res.column_density(0, level)
        pix = (cfg.box * 3.0857e18 / 2**level) ** 2
        assert np.isclose(sigma.sum() * pix, mass_g, rtol=1e-12)
    # the map carries the mesh: a coarse leaf is constant over its pixels at levelmax
    rho6 = res.to_uniform(6).density
    coarse = res.mesh.kind[4] == 1
    blocks = rho6.reshape(16, 4, 16, 4, 16, 4)
    assert np.all((blocks.max(axis=(1, 3, 5)) - blocks.min(axis=(1, 3, 5)))[coarse] == 0)
    with pytest.raises(ValueError, match="outside"):
        res.to_uniform(3)
    with pytest.raises(ValueError, match="intermediate outputs"):
        simulate(cfg, outputs=[1.0])


def test_config_amr_fields():
    from turbsim import SimConfig
    assert not SimConfig().amr
    c = SimConfig(levelmin=5, levelmax=7, cells=32)
    assert c.amr and SimConfig.from_json(c.to_json()) == c
    with pytest.raises(ValueError, match="cells = 16"):
        SimConfig(levelmin=5, levelmax=7, cells=16)
    with pytest.raises(ValueError, match="levelmin = 2"):
        SimConfig(levelmin=2, levelmax=4, cells=16)
    with pytest.raises(ValueError, match="float64"):
        SimConfig(levelmin=4, levelmax=5, cells=16, dtype="float32")
    with pytest.raises(ValueError, match="refine"):
        SimConfig(refine="everywhere")


# -- accuracy -------------------------------------------------------------------------------

def sound_wave(lmin, scheme="muscl", static=True, amp=1e-4, t_end=0.5, schedule="global"):
    """A right-moving linear sound wave along x through a static refined slab (x in [1/4,
    3/4] one level finer). Returns (L1 error of rho / amp over the leaves against the exact
    wave, largest left-moving component |(drho - dv) / 2| / amp, mass error)."""
    n = 2**lmin
    x = (np.arange(n) + 0.5) / n
    s = np.sin(2 * np.pi * x)[:, None, None] * np.ones((n, n, n))
    vel = np.zeros((3, n, n, n))
    vel[0] = amp * s
    mesh = Mesh.from_uniform(1 + amp * s, vel, lmin, lmin + 1)
    if static:
        mask = np.zeros((n, n, n), bool)
        mask[n // 4: 3 * n // 4] = True
        mesh.refine_cells(lmin, mask)
        mesh.check_nesting()
    res = evolve(mesh, t_end, scheme=scheme, refine=None, schedule=schedule)
    err, left = 0.0, 0.0
    for L in mesh.levels:
        leaf = mesh.kind[L] == LEAF
        if not leaf.any():
            continue
        xl = (np.arange(2**L) + 0.5) / 2**L
        exact = np.sin(2 * np.pi * (xl - t_end))[:, None, None] * np.ones((2**L,) * 3)
        d = (mesh.U[L][0] - 1) / amp
        v = mesh.U[L][1] / mesh.U[L][0] / amp
        err += np.abs(d - exact)[leaf].sum() / 8**L
        left = max(left, np.abs((d - v) / 2)[leaf].max())
    return err, left, res.mass_error


REFLECTION_BOUND = 1e-4
"""Largest left-moving wave a coarse-fine boundary may make, relative to the incident one."""


@pytest.mark.parametrize("levels,scheme,order,schedule", [
    ((3, 4), "muscl", 1.3, "global"),        # measured rate 1.42
    ((3, 4), "muscl", 1.25, "nsubcycle"),    # measured 1.32
])
def test_sound_wave_through_static_boundary(levels, scheme, order, schedule):
    """Fast sibling of the slow study below (8^3 and 16^3 bases); with subcycling the slab
    steps twice per coarse step and its fluxes are integrated over both."""
    _check_sound_wave(levels, scheme, order, schedule)


@pytest.mark.slow
@pytest.mark.parametrize("levels,scheme,order,schedule", [
    ((4, 5), "muscl", 1.4, "global"), ((4, 5), "first", 0.75, "global"),   # 1.49, 0.80
    ((4, 5), "muscl", 1.4, "nsubcycle"), ((4, 5), "first", 0.75, "nsubcycle"),   # 1.57, 0.84
])
def test_sound_wave_through_static_boundary_slow(levels, scheme, order, schedule):
    _check_sound_wave(levels, scheme, order, schedule)


def _check_sound_wave(levels, scheme, order, schedule="global"):
    coarse = sound_wave(levels[0], scheme, schedule=schedule)
    fine = sound_wave(levels[1], scheme, schedule=schedule)
    rate = np.log2(coarse[0] / fine[0])
    assert rate > order, (coarse, fine, rate)
    assert max(coarse[1], fine[1]) < REFLECTION_BOUND
    assert max(coarse[2], fine[2]) < 1e-12
    # the refined slab makes the wave more accurate than the unrefined base grid
    assert coarse[0] < sound_wave(levels[0], scheme, static=False, schedule=schedule)[0]


def _turbulent_l1(lmin, t_end, schedule="global"):
    """L1 distance (relative) of the density to the uniform 2^(lmin+1) run, on both grids,
    of the uniform 2^lmin run and of AMR-lite at levels lmin..lmin+1 from the same IC."""
    from turbsim import SimConfig, simulate
    base = dict(n=11 / 3, seed=2, t_end=t_end)
    n = 2**lmin
    coarse = simulate(SimConfig(cells=n, **base)).density
    fine = simulate(SimConfig(cells=2 * n, **base)).density
    amr = simulate(SimConfig(cells=n, levelmin=lmin, levelmax=lmin + 1, regrid_schedule=schedule,
                             **base))
    restricted = fine.reshape(n, 2, n, 2, n, 2).mean(axis=(1, 3, 5))
    up = np.repeat(np.repeat(np.repeat(coarse, 2, 0), 2, 1), 2, 2)
    rel = lambda a, b: float(np.abs(a - b).mean() / b.mean())  # noqa: E731
    amr_coarse = amr.to_uniform(lmin).density * amr.config.density
    return {"coarse": rel(coarse, restricted), "amr": rel(amr_coarse, restricted),
            "coarse_fine_grid": rel(up, fine), "amr_fine_grid": rel(amr.density, fine),
            "refined": amr.refined_fraction()[lmin + 1]}


@pytest.mark.parametrize("schedule", ["global", "nsubcycle"])
def test_turbulence_closer_to_fine_run(schedule):
    """Fast sibling (levels 5-6 against 32^3 and 64^3, 1.5 Myr), one global step or
    subcycled (measured 0.0293 and 0.0295 vs 0.0319 on 32^3)."""
    r = _turbulent_l1(5, 1.5, schedule)
    assert 0.2 < r["refined"] < 0.95, r
    assert r["amr"] < r["coarse"] and r["amr_fine_grid"] < r["coarse_fine_grid"], r


@pytest.mark.slow
def test_turbulence_closer_to_fine_run_slow():
    """Levels 6-7 are closer (L1 of density) to the uniform 128^3 run than uniform 64^3 is."""
    r = _turbulent_l1(6, 1.0)
    assert 0.2 < r["refined"] < 0.95, r
    assert r["amr"] < r["coarse"] and r["amr_fine_grid"] < r["coarse_fine_grid"], r


# -- against RAMSES -------------------------------------------------------------------------

def test_against_ramses_amr(shared):
    """From the IC of shared/ramses/amr (levels 5-7, err_grad_d = 0.1, nexpand = 1) to its
    snapshot, AMR-lite with the subcycle schedule against RAMSES (which subcycles): the
    tolerances state the measured agreement with a margin (numbers in docs/amr.md)."""
    import sys
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "benchmarks"))
    from amr import ramses_comparison

    res = ramses_comparison(shared / "ramses" / "amr", schedule="subcycle")
    lev = res["leaves"]
    assert all(abs(d) < 0.2 for _, _, d in lev.values()), lev    # measured -5 %, +15 %, +9 %
    assert res["pdf_l1"] < 0.03                                   # 0.019
    assert abs(res["std_lnrho"][0] / res["std_lnrho"][1] - 1) < 0.03   # +1.7 %
    assert res["power_max_dev"][1] < 0.15                          # 0.066
    assert max(res["diff_over_signal"].values()) < 0.1            # 0.066-0.076
    assert res["uniform_diff_over_signal"] < 0.02                  # 0.010


def test_against_ramses_amr_subcycled(shared):
    """The same with RAMSES's own subcycling (schedule "nsubcycle"): the same 4 coarse
    steps, the leaves of every level within 10 % (the issue's target), and the density
    within 1 % of RAMSES's signal on every level's grid (numbers in docs/amr.md)."""
    import sys
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "benchmarks"))
    from amr import ramses_comparison

    res = ramses_comparison(shared / "ramses" / "amr", schedule="nsubcycle")
    assert res["steps"] == 4
    lev = res["leaves"]
    assert all(abs(d) < 0.01 for _, _, d in lev.values()), lev   # measured: RAMSES's, exactly
    assert res["pdf_l1"] < 1e-3                                   # 0
    assert abs(res["std_lnrho"][0] / res["std_lnrho"][1] - 1) < 1e-4   # 1e-7
    assert res["power_max_dev"][1] < 1e-3                         # 1.4e-6
    assert max(res["diff_over_signal"].values()) < 1e-4          # 3e-7, 9e-7, 9e-7


def test_subcycled_mesh_is_ramses_mesh(shared):
    """Cell for cell: the leaves of every level are RAMSES's, and their densities agree to
    1e-5 (RAMSES's flag_fine at the end of each level's step, with ensure_ref_rules after
    a first substep, and its order of steps)."""
    from turbsim import ramses

    case = shared / "ramses" / "amr"
    ds = ramses.open(case / "output_00002")
    init = ramses.load_ic(next(case.glob("ic_*.npz")))
    mesh = Mesh.from_uniform(init.density, init.velocity, ds.levelmin, ds.levelmax)
    res = evolve(mesh, ds.time, cs=init.cs, gamma=ds.gamma, ramses_dt=True, err_grad_d=0.1,
                 nexpand=1, schedule="nsubcycle")
    assert res.level_steps == {5: 4, 6: 4, 7: 6}     # RAMSES's nstep = 1 + 1 + 3 + 4 = 9
    cells = ds.cells()
    for L in mesh.levels:
        at = cells["level"] == L
        idx = tuple(np.floor(np.stack([cells[a][at] for a in "xyz"]) * 2**L).astype(int))
        theirs = np.zeros((2**L,) * 3, bool)
        theirs[idx] = True
        assert np.array_equal(mesh.kind[L] == LEAF, theirs), L
        assert np.allclose(mesh.U[L][0][idx], cells["density"][at], rtol=1e-5, atol=0)   # 3e-6

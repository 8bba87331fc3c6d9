"""AMR-lite's step: one global time step for every level, or RAMSES's subcycling.

:func:`evolve` advances a :class:`turbsim.amr_mesh.Mesh` to a time, regridding by the
schedule (``"global"``, ``"subcycle"``, ``"nsubcycle"``; :mod:`turbsim.amr` describes
them); each level's leaves are advanced by the tile kernel with the uniform solver's
first-order or MUSCL-Hancock LLF scheme, coarse-fine fluxes corrected so that mass and
momentum are conserved to round-off.
"""
from __future__ import annotations

import logging
import time as _time
from dataclasses import dataclass, field

import numpy as np

from ._solver import _amr
from .amr_mesh import REFINE, REFINED, TILE, AmrError, Mesh, _erode, _up
from .config import SCHEDULES

log = logging.getLogger(__name__)

SCHEMES = {"first": 0, "muscl": 1}
LIMITERS = {"minmod": 1, "moncen": 2}

def _level_step(mesh: Mesh, L: int, dt: float, cs: float, gamma: float, scheme: int,
                limiter: int, floor: float, fc_scale: float = 1.0, fc_w: float = 1.0,
                fc_acc: bool = False):
    """One step of the leaves of level L; returns (largest speed, first invalid leaf).

    The coarse-fine fluxes of level L go to level L - 1's flux-correction array times
    ``fc_w`` (added to it with ``fc_acc``); those of level L + 1 in L's array are read times
    ``fc_scale`` (see ``ts_amr_sweep`` in ``amr.h``). One global step: the defaults.
    """
    tiles = mesh.tiles[L]
    if tiles.shape[0] == 0:
        return 0.0, -1
    out = mesh._buffer(L, tiles.shape[0] * 4 * TILE**3)
    fc_in = mesh._fc.get(L) if mesh.refined[L].size else None
    fc_out = mesh._fc.get(L - 1) if L > mesh.levelmin else None
    if L > mesh.levelmin and fc_out is None:
        raise AmrError(f"level {L} has cells but level {L - 1} no flux-correction array")
    st = _amr.sweep(mesh.U[L], mesh.kind[L], tiles, dt * 2.0**L, cs, gamma, scheme, limiter,
                    mesh.threads, fc_in, fc_out, out, fc_scale, fc_w, fc_acc)
    if st == 4:
        raise MemoryError("the AMR kernel could not allocate its tile buffers")
    if st != 0:
        raise AmrError(f"the AMR kernel failed with status {st}")
    return _amr.scatter(mesh.U[L], mesh.kind[L], tiles, out, floor, mesh.threads)


def _dt_bound(mesh: Mesh, speeds: dict, c_dt: float, courant: float, ramses_dt: bool) -> float:
    """The CFL step: the smallest over the levels with leaves of C dx_L / (smax_L + 3 c)."""
    dt = np.inf
    for L, s in speeds.items():
        dx = 1.0 / 2**L
        S = s + 3.0 * c_dt
        if ramses_dt:
            eps = 1.0e-4
            b = dx / S * (np.sqrt(1.0 + 2.0 * courant * eps) - 1.0) / eps
        else:
            b = courant * dx / S
        dt = min(dt, b)
    return float(dt)


@dataclass
class AmrRunResult:
    """Outcome of :func:`evolve`.

    Attributes
    ----------
    mesh : Mesh
        The mesh at the end (restricted: refined cells hold their children's average).
    time : float
        Time reached [code units].
    steps : int
        Steps taken: global steps, or with ``schedule="nsubcycle"`` the steps of levelmin
        (coarse steps).
    regrids : int
        Regrids made.
    wall_time : float
        Seconds in the loop (steps and regrids).
    regrid_time : float
        Seconds in the regrids.
    cell_updates : int
        Leaf updates, all steps (the work done).
    mass_error, momentum_error : float
        ``|M(t) - M(0)| / M(0)`` and ``max |P(t) - P(0)| / M(0)`` (code units, so the
        momentum is relative to a flow at the sound speed).
    history : list of dict
        Per regrid: ``step``, ``time``, ``leaves`` per level, octs ``created`` and
        ``removed`` per level.
    level_steps : dict of int to int
        Steps taken by each level while it held cells, ``{level: steps}``: ``steps`` for
        every level with one global step; with ``schedule="nsubcycle"`` each level takes two
        per step of the level below (while both hold cells).
    """

    mesh: Mesh = field(repr=False)
    time: float
    steps: int
    regrids: int
    wall_time: float
    regrid_time: float
    cell_updates: int
    mass_error: float
    momentum_error: float
    history: list = field(default_factory=list, repr=False)
    level_steps: dict = field(default_factory=dict)


@dataclass
class _Run:
    """One :func:`evolve` call: the mesh, the numerical options and the tallies."""

    mesh: Mesh
    t_end: float
    cs: float
    gamma: float
    scheme: int
    limiter: int
    courant: float
    ramses_dt: bool
    stop: str
    refine: str | None
    err_grad_d: float
    m_refine: float
    nexpand: int
    regrid_every: int
    floor: float
    max_steps: int
    on_regrid: object
    t: float = 0.0
    steps: int = 0
    regrids: int = 0
    updates: int = 0
    regrid_time: float = 0.0
    history: list = field(default_factory=list)
    level_steps: dict = field(default_factory=dict)
    leaves: dict = field(default_factory=dict)

    @property
    def c_dt(self) -> float:
        """Sound speed of the time-step rule [code velocity]."""
        return float(np.sqrt(self.gamma) * self.cs)

    def cfl(self, speeds: dict) -> float:
        """CFL step [code time] of the levels in ``speeds`` (``inf`` when empty)."""
        return _dt_bound(self.mesh, speeds, self.c_dt, self.courant, self.ramses_dt)

    def regrid(self, levels=None, time: float | None = None) -> None:
        """Regrid the levels (default all), with its history entry and callback."""
        t0 = _time.perf_counter()
        change = self.mesh.regrid(self.refine, self.err_grad_d, self.m_refine, self.nexpand,
                                  levels=levels)
        self.regrid_time += _time.perf_counter() - t0
        self.regrids += 1
        self.leaves = self.mesh.leaf_counts()
        self.history.append({"step": self.steps, "time": self.t if time is None else time,
                             "leaves": self.leaves, **change})
        if self.on_regrid is not None:
            self.on_regrid(self.mesh)

    def speeds(self, levels, t: float) -> dict:
        """Largest speed of the leaves of each level holding any; invalid leaves raise."""
        mesh, out = self.mesh, {}
        for L in levels:
            if mesh.tiles[L].shape[0]:
                s, bad = _amr.tile_speed(mesh.U[L], mesh.kind[L], mesh.tiles[L], self.floor,
                                         mesh.threads)
                if bad >= 0:
                    _raise_bad(mesh, L, bad, t, self.steps, self.floor)
                out[L] = s
        return out

    def sweep(self, L: int, dt: float, t_after: float, **fc) -> float:
        """Advance the leaves of level L by dt; returns their largest speed."""
        s, bad = _level_step(self.mesh, L, dt, self.cs, self.gamma, self.scheme, self.limiter,
                             self.floor, **fc)
        if bad >= 0:
            _raise_bad(self.mesh, L, bad, t_after, self.steps + 1, self.floor)
        self.updates += self.leaves.get(L, 0)
        return s

    def count_step(self, L: int) -> None:
        """One step taken by level L (counted while it holds cells)."""
        if self.mesh.tiles[L].shape[0] or self.mesh.refined[L].size:
            self.level_steps[L] = self.level_steps.get(L, 0) + 1


def _evolve_global(run: _Run, schedule: str) -> None:
    """One time step for every level (``"global"`` and ``"subcycle"`` schedules)."""
    mesh = run.mesh
    k = int(run.regrid_every)
    speeds = None
    next_flag: dict = {}
    while run.t < run.t_end:
        if run.steps >= run.max_steps:
            raise AmrError(f"step limit max_steps={run.max_steps} reached at t={run.t:.6g}")
        t = run.t
        if schedule == "global":
            due = mesh.levels[:-1] if run.steps % k == 0 else []
        else:
            due = [L for L in mesh.levels[:-1] if t >= next_flag.get(L, 0.0) * (1 - 1e-12)]
            if due:   # a level flagged flags every finer level too (RAMSES's amr_step)
                due = [L for L in mesh.levels[:-1] if L >= min(due)]
            smax = max(speeds.values()) if speeds else None
            for L in due:
                if smax is None:   # the first regrid: the level's clock starts at its CFL step
                    smax = max(run.speeds(mesh.levels, t).values())
                next_flag[L] = t + k * run.cfl({L: smax})
        if run.refine is not None and due:
            run.regrid(due)
            speeds = None
        if speeds is None:
            speeds = run.speeds(mesh.levels, t)
        dt = run.cfl(speeds)
        if not (dt > 0 and np.isfinite(dt)):
            raise AmrError(f"time step became zero or non-finite at t={t:.6g} after "
                           f"{run.steps} steps")
        last = False
        if run.stop == "exact" and t + dt * (1.0 + 1e-10) >= run.t_end:
            dt, last = run.t_end - t, True
        new_speeds = {}
        for L in reversed(mesh.levels):  # finest first: its fluxes correct the coarser level
            run.count_step(L)
            if mesh.tiles[L].shape[0]:
                new_speeds[L] = run.sweep(L, dt, t + dt)
        speeds = new_speeds
        mesh.restrict()
        mesh.fill_ghosts()
        run.t = run.t_end if last else t + dt
        run.steps += 1


class _Subcycler:
    """RAMSES's recursive step (``amr_step``, ``nsubcycle = 2``): each level its own dt.

    Level L + 1 takes two steps per step of level L, first: its dt is ``min(its CFL step,
    dt_L / 2)``, and level L's step becomes the sum of the two (``dtnew(L) = dtold(L + 1)
    + dtnew(L + 1)``). Its ghost cells are prolongated from level L's state at the start of
    L's step (the coarse level is advanced after its finer one), and its fluxes through the
    coarse-fine faces are accumulated, time-integrated, into L's flux-correction array,
    which the coarse leaves use instead of their own flux there. Refined cells take the
    average of their children after their level's step (``upload_fine``). The mesh is
    regridded at the start of the step of levelmin and of the second step of every finer
    level, the levels from there to levelmax (``refine_fine``), each flagged as RAMSES's
    ``flag_fine`` at the end of its last step: from its state then (its gradient criterion
    reading the coarser level as it was then, :attr:`Mesh.flag_coarse`), and after a first
    substep only in octs whose 26 neighbouring octs exist (``ensure_ref_rules``,
    :attr:`Mesh.flag_allow`).
    """

    def __init__(self, run: _Run):
        self.run = run
        self.mesh = run.mesh
        self.dtnew: dict[int, float] = {}
        self.dtold: dict[int, float] = {}
        self.tlev: dict[int, float] = {}
        self.speeds: dict[int, float] = {}
        self.landing: float | None = None

    def _ghosts(self, levels) -> None:
        """Prolongate the ghost cells of the levels (coarsest first) from their coarser one."""
        mesh = self.mesh
        for M in levels:
            _amr.prolong(mesh.U[M - 1], mesh.U[M], mesh.ghosts[M], mesh.threads)

    def _regrid(self, L: int) -> None:
        """Regrid levels L..levelmax - 1 mid-step: the coarser levels keep the values of
        their refined cells (the regrid restricts every level, but those levels are between
        their steps: their refined cells hold their children's state at their last step)."""
        mesh, run = self.mesh, self.run
        keep = {M: mesh.U[M].reshape(4, -1)[:, mesh.refined[M]] for M in mesh.levels if M < L}
        run.regrid(range(L, mesh.levelmax), time=self.tlev[L])
        for M, vals in keep.items():
            mesh.U[M].reshape(4, -1)[:, mesh.refined[M]] = vals
        self._ghosts(range(mesh.levelmin + 1, L + 1))
        self.speeds = {M: s for M, s in self.speeds.items() if M < L}
        self.speeds.update(run.speeds(range(L, mesh.levelmax + 1), self.tlev[L]))

    def step(self, L: int, icount: int) -> None:
        """``amr_step(L, icount)``: one step of level L, its finer levels' two first."""
        mesh, run = self.mesh, self.run
        lmin, lmax = mesh.levelmin, mesh.levelmax
        if L > lmin and icount == 1:
            self.tlev[L] = self.tlev[L - 1]
        if (run.refine is not None and L < lmax and (L == lmin or icount == 2)
                and run.level_steps.get(L, 0) % run.regrid_every == 0):
            self._regrid(L)
        dt = run.cfl({L: self.speeds[L]} if L in self.speeds else {})
        if L > lmin:
            dt = min(dt, self.dtnew[L - 1] / 2)
        elif run.stop == "exact" and self.tlev[L] + dt * (1.0 + 1e-10) >= run.t_end:
            dt = self.landing = run.t_end - self.tlev[L]
        self.dtold[L] = self.dtnew.get(L, dt)
        self.dtnew[L] = dt
        if L < lmax and mesh.refined[L].size:
            self.step(L + 1, 1)
            self.step(L + 1, 2)
        dt = self.dtnew[L]
        if not (dt > 0 and np.isfinite(dt)):
            raise AmrError(f"time step of level {L} became zero or non-finite at "
                           f"t={self.tlev[L]:.6g} after {run.steps} coarse steps")
        if L > lmin:
            self._ghosts([L])
        if mesh.tiles[L].shape[0]:
            self.speeds[L] = run.sweep(L, dt, self.tlev[L] + dt, fc_scale=1.0 / dt, fc_w=dt,
                                       fc_acc=icount == 2)
        if L < lmax and mesh.refined[L].size:   # upload_fine
            _amr.restrict(mesh.U[L], mesh.U[L + 1], mesh.refined[L], mesh.threads)
        run.count_step(L)
        self.tlev[L] += dt
        if L > lmin:   # flag_fine(L, icount), for the next regrid that flags L
            # the gradient criterion reads the coarser level as it is now (not yet stepped)
            if icount == 2 and L < lmax:
                mesh.flag_coarse[L] = mesh.U[L - 1][0].copy()
            else:
                mesh.flag_coarse.pop(L, None)
            # ensure_ref_rules: after a first substep, only octs whose 26 neighbouring octs
            # exist keep their flags (their parent's 26 neighbours are refined)
            if icount == 1 and L < lmax:
                mesh.flag_allow[L] = _up(_erode(mesh.kind[L - 1] == REFINED))
            else:
                mesh.flag_allow.pop(L, None)
        if L > lmin and icount == 2:
            self.dtnew[L - 1] = self.dtold[L] + self.dtnew[L]

    def run_to_end(self) -> None:
        """Coarse steps to ``t_end`` (landing on it with ``stop="exact"``)."""
        run, lmin = self.run, self.mesh.levelmin
        self.speeds = run.speeds(self.mesh.levels, run.t)
        while run.t < run.t_end:
            if run.steps >= run.max_steps:
                raise AmrError(f"step limit max_steps={run.max_steps} reached at t={run.t:.6g}")
            self.tlev[lmin] = run.t
            self.landing = None
            self.step(lmin, 1)
            dt = self.dtnew[lmin]
            land = self.landing is not None and dt >= self.landing * (1.0 - 1e-10)
            run.t = run.t_end if land else run.t + dt
            run.steps += 1


def evolve(mesh: Mesh, t_end: float, *, cs: float = 1.0, scheme: str = "muscl",
           limiter: str = "minmod", courant: float = 0.8, gamma: float = 1.0,
           ramses_dt: bool = False, stop: str = "exact", refine: str | None = "gradient",
           err_grad_d: float = 0.1, m_refine: float = 0.0, nexpand: int = 1,
           regrid_every: int = 1, schedule: str = "global", threads: int | None = None,
           density_floor: float = 0.0, max_steps: int = 10_000_000, on_regrid=None,
           final_regrid: bool | None = None) -> AmrRunResult:
    """Advance a mesh from time 0 to ``t_end`` (code units: box 1), regridding as RAMSES.

    Parameters
    ----------
    mesh : Mesh
        The state; advanced in place.
    t_end : float
        End time [code units, box / (unit velocity)].
    cs : float
        Isothermal sound speed [code velocity].
    scheme, limiter, courant, gamma, ramses_dt, stop
        As :func:`turbsim.solver.evolve`.
    refine, err_grad_d, m_refine, nexpand
        As :meth:`Mesh.regrid`; ``refine=None`` keeps the mesh as it is (no regrid).
    regrid_every : int
        Regrid before every k-th step (1: every step, as RAMSES); with ``"nsubcycle"``, a
        regrid RAMSES makes at the start of a level's step is made when that level has
        taken a multiple of k steps.
    schedule : {"global", "subcycle", "nsubcycle"}
        ``"global"``: one time step for every level (the smallest CFL step of all levels),
        every level flagged at each regrid. ``"subcycle"``: the same step, but each
        level ``L`` is flagged on its own clock, when a run with subcycling (RAMSES, whose
        level ``L`` steps by its own CFL step, ``nsubcycle = 2``) would flag it: at the
        first step at or after ``regrid_every`` times the CFL step of level ``L`` (``C dx_L
        / (smax + 3 c)`` with the largest speed of the mesh) since its last flagging; the
        finer levels are flagged with it (RAMSES's ``amr_step`` flags every level from the
        one starting a step down to ``levelmax``). ``"nsubcycle"``: RAMSES's subcycling
        (``nsubcycle = 2``; RAMSES's ``amr_step``, see ``docs/amr.md``): level ``L + 1`` takes two steps of
        ``min(its CFL step, dt_L / 2)`` per step ``dt_L`` of level ``L``, which becomes
        their sum; the coarse-fine fluxes are integrated over the fine steps (conservative);
        levels ``L..levelmax - 1`` are regridded at the start of each step of levelmin and
        of each second step of a finer level ``L``; levelmin lands on ``t_end``.
    threads : int, optional
        OpenMP threads (default all); results are identical for any number.
    density_floor : float
        A leaf density at or below this stops the run with :class:`AmrError`.
    max_steps : int
        Step limit (coarse steps with ``"nsubcycle"``).
    on_regrid : callable, optional
        Called as ``on_regrid(mesh)`` after every regrid (tests check nesting there).
    final_regrid : bool, optional
        Regrid every level once more at the end, from the final state (the state itself
        is unchanged, up to the prolongation into new cells): RAMSES writes an output
        after the regrid that opens the next coarse step, so its snapshots carry the mesh
        of their own state. Default: True with ``"subcycle"`` and ``"nsubcycle"``, else
        False.

    Returns
    -------
    AmrRunResult
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {sorted(SCHEMES)}, got {scheme!r}")
    if limiter not in LIMITERS:
        raise ValueError(f"limiter must be one of {sorted(LIMITERS)}, got {limiter!r}")
    if refine is not None and refine not in REFINE:
        raise ValueError(f"refine must be one of {list(REFINE)}, got {refine!r}")
    if stop not in ("exact", "after"):
        raise ValueError(f"stop must be 'exact' or 'after', got {stop!r}")
    if not (np.isfinite(t_end) and t_end >= 0):
        raise ValueError(f"t_end must be a non-negative number, got {t_end!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {schedule!r}")
    if int(regrid_every) < 1:
        raise ValueError(f"regrid_every must be >= 1, got {regrid_every!r}")
    if int(nexpand) < 0:
        raise ValueError(f"nexpand must be >= 0, got {nexpand!r}")
    mesh.threads = 0 if threads is None else int(threads)
    run = _Run(mesh=mesh, t_end=float(t_end), cs=cs, gamma=gamma, scheme=SCHEMES[scheme],
               limiter=LIMITERS[limiter], courant=courant, ramses_dt=ramses_dt, stop=stop,
               refine=refine, err_grad_d=err_grad_d, m_refine=m_refine, nexpand=int(nexpand),
               regrid_every=int(regrid_every), floor=density_floor, max_steps=max_steps,
               on_regrid=on_regrid)
    mesh.restrict()
    mesh.flag_coarse.clear()
    mesh.flag_allow.clear()
    run.leaves = mesh.leaf_counts()
    initial = mesh.totals()
    t_wall = _time.perf_counter()
    if schedule == "nsubcycle":
        _Subcycler(run).run_to_end()
    else:
        _evolve_global(run, schedule)
    if final_regrid is None:
        final_regrid = schedule != "global"
    if final_regrid and refine is not None and mesh.levelmax > mesh.levelmin:
        run.regrid()
    mesh.flag_coarse.clear()
    mesh.flag_allow.clear()
    mesh.restrict()
    final = mesh.totals()
    wall = _time.perf_counter() - t_wall
    m0 = initial[0]
    log.debug("amr.evolve: %d steps (per level %s), %d regrids to t=%g in %.3f s", run.steps,
              run.level_steps, run.regrids, run.t, wall)
    return AmrRunResult(mesh=mesh, time=run.t, steps=run.steps, regrids=run.regrids,
                        wall_time=wall, regrid_time=run.regrid_time, cell_updates=run.updates,
                        mass_error=float(abs(final[0] - m0) / m0),
                        momentum_error=float(np.abs(final[1:] - initial[1:]).max() / m0),
                        history=run.history, level_steps=dict(sorted(run.level_steps.items())))


def _raise_bad(mesh, L, bad, t, steps, floor):
    idx = np.unravel_index(int(bad), mesh.kind[L].shape)
    raise AmrError(f"invalid state at t={t:.6g} after {steps} steps: level {L} cell "
                   f"{tuple(int(i) for i in idx)} has density {mesh.U[L][0][idx]!r} (floor "
                   f"{floor!r}) or a non-finite velocity; reduce the Courant number or the Mach "
                   "number, or use the first-order scheme")

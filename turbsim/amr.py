"""AMR-lite: the isothermal Euler solver on a density-gradient refined mesh.

The mesh refines by octs, as RAMSES: a cell of level ``L`` (``2^L`` cells per side of the
unit box) is a *leaf*, or is *refined* into 8 children of level ``L + 1``; levels run from
``levelmin`` (the whole box) to ``levelmax``. Every level is kept as a dense periodic array
with a kind per cell (absent, leaf, refined; see ``turbsim/_solver/amr.h``), which makes
neighbours an index away and the regrid a few array operations; the step itself only
visits the tiles of ``8^3`` cells that hold leaves. Memory is that of the dense arrays
(about 8/7 of a uniform grid at ``levelmax``, 1.6 times with the flux-correction arrays); the
work is that of the leaves.

The rules are RAMSES's (``flag_fine``, ``hydro_flag``, ``refine_fine``):

* **criteria** (evaluated every ``regrid_every`` steps, on each level's own clock with
  the ``"subcycle"`` schedule, or at the start of the levels' own steps with
  ``"nsubcycle"``): the relative
  density gradient ``2 max(|d_+ - d| / (d_+ + d + floor), |d - d_-| / (d + d_- + floor))``
  along any axis above ``err_grad_d`` (a missing neighbour is replaced by its coarser
  covering cell, as RAMSES's ``hydro_flag``), and the quasi-Lagrangian mass criterion,
  ``rho >= m_refine * mass_sph / dx^3`` with ``mass_sph`` the mass of a ``levelmin`` cell
  at the mean density;
* **buffers**: a cell whose children are refined (or were flagged at their level's last
  flagging, RAMSES's ``test_flag``) stays refined, with one buffer cell
  around it (proper nesting); the flags then grow by ``nexpand`` cells, each by RAMSES's
  ``smooth_fine`` (cells with at least 1, then 2, then 2 flagged face neighbours: a 3x3x3
  cube around a single cell, and the notches of a region filled);
* **order**: every level is flagged from the present mesh, finest first, then refined
  from the coarsest; octs created by a regrid carry no flag until the next one (RAMSES's
  ``flag_fine`` closes a level's step, ``refine_fine`` opens the next);
* **nesting**: a cell is refined only when its 26 neighbours exist at its level, so
  neighbouring leaves differ by at most one level; cells no longer flagged lose their
  children (derefinement: the parent keeps their volume average);
* **transfers**: restriction is the volume average of the 8 children; new cells and the
  ghost cells the stencils of a level read beyond its cells are filled by conservative,
  minmod-limited linear prolongation of the conserved variables (RAMSES's
  ``interpol_type = 1``, ``interpol_var = 0``).

The step: one global time step for all levels (the default), the CFL condition taken over
the leaves of every level, or RAMSES's subcycling (``schedule="nsubcycle"``: each level
takes two steps of its own per step of the level below, finest first); each level's leaves
are advanced with the same first-order or MUSCL-Hancock LLF scheme as the uniform solver
(:mod:`turbsim.solver`); at a coarse-fine face the coarse leaf takes the average of the 4
fine fluxes (flux correction), integrated over the fine steps when subcycling, so mass and
momentum are conserved to round-off. A level whose every cell is a leaf is advanced
exactly as the uniform grid.

Examples
--------
>>> import numpy as np
>>> from turbsim.amr import Mesh, evolve
>>> n = 16
>>> x = (np.arange(n) + 0.5) / n
>>> rho = 1 + 0.3 * np.exp(-((x - 0.5) / 0.1) ** 2)[:, None, None] * np.ones((n, n, n))
>>> mesh = Mesh.from_uniform(rho, np.zeros((3, n, n, n)), levelmin=4, levelmax=5)
>>> res = evolve(mesh, t_end=0.05, err_grad_d=0.05)
>>> sorted(res.mesh.leaf_counts())
[4, 5]
>>> mesh.check_nesting()      # raises AssertionError when the nesting is broken
>>> bool(res.mass_error < 1e-12)
True
"""
from __future__ import annotations

import logging
import time as _time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from . import units
from ._solver import _amr
from .config import REFINES, SCHEDULES, SimConfig

log = logging.getLogger(__name__)

TILE = _amr.TILE
"""Cells per side of the tiles the step visits (so ``levelmin >= 3``)."""
REFINE = REFINES
"""Refinement criteria: RAMSES's density gradient (``err_grad_d``), its quasi-Lagrangian
mass criterion (``m_refine``), both, every cell (to ``levelmax``), no cell."""
ABSENT, LEAF, REFINED = 0, 1, 2
SCHEMES = {"first": 0, "muscl": 1}
LIMITERS = {"minmod": 1, "moncen": 2}
FLOOR_D = 1e-10
"""RAMSES's ``floor_d`` in the gradient criterion [code density]."""
FIELDS = ("density", "velocity_x", "velocity_y", "velocity_z", "pressure")
"""Columns of the leaf table after ``x, y, z, level, dx``: those of RAMSES's hydro files."""


class AmrError(RuntimeError):
    """The refined run could not continue (invalid state, time step, step limit)."""


def _smooth(flag: np.ndarray, exists: np.ndarray, threads: int = 0) -> np.ndarray:
    """RAMSES's dilation operator (``smooth_fine``): one cell of buffer around the flags.

    Three passes over the existing cells; each flags the cells with at least 1, then 2,
    then 2 flagged face neighbours (of the flags as they are after the previous pass).
    Around one cell this is its 3x3x3 cube; it also fills the notches of a flagged region.
    """
    out = np.ascontiguousarray(flag & exists).view(np.uint8)
    _amr.smooth(out, np.ascontiguousarray(exists).view(np.uint8), threads)
    return out.view(bool)


def _erode(mask: np.ndarray) -> np.ndarray:
    """Cells whose 26 neighbours (and themselves) are all set (periodic)."""
    return ndimage.minimum_filter(mask.view(np.uint8), size=3, mode="wrap").view(bool)


def _up(a: np.ndarray) -> np.ndarray:
    """Each cell of a level copied into its 8 children (the last 3 axes)."""
    n = a.shape[-1]
    lead = a.shape[:-3]
    b = a.reshape(lead + (n, 1, n, 1, n, 1))
    return np.broadcast_to(b, lead + (n, 2, n, 2, n, 2)).reshape(lead + (2 * n,) * 3)


def memory_bytes(levelmin: int, levelmax: int) -> int:
    """Bytes a :class:`Mesh` of these levels can hold at most [bytes].

    The dense state of every level (4 float64 per cell), its cell kinds and flags, and the
    flux-correction arrays of the levels below ``levelmax`` (12 float64 per cell), with
    every level fully refined: about 1.6 times a float64 state at ``levelmax``.
    """
    total = 0
    for L in range(int(levelmin), int(levelmax) + 1):
        cells = 8**L
        total += cells * (4 * 8 + 2) + (cells * 12 * 8 if L < levelmax else 0)
    return total


def _available_memory() -> int | None:
    """Bytes of memory available (Linux ``MemAvailable``), or None when unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class Mesh:
    """An oct-refined periodic mesh of the unit box holding the conserved state.

    Parameters
    ----------
    levelmin, levelmax : int
        Coarsest and finest level; level ``L`` has ``2^L`` cells per side. ``3 <=
        levelmin <= levelmax <= 10``.

    Attributes
    ----------
    U : dict of int to ndarray
        Per level, ``(4, n, n, n)`` float64 conserved state ``(rho, rho vx, rho vy, rho vz)``
        in code units, valid on the cells of the level (refined cells hold the volume
        average of their children after :meth:`restrict`).
    kind : dict of int to ndarray
        Per level, ``(n, n, n)`` uint8: 0 absent, 1 leaf, 2 refined.
    flag_coarse, flag_allow : dict of int to ndarray
        Set by the subcycled step for the next regrid (empty otherwise), per level ``L``:
        the density of level ``L - 1`` the gradient criterion of ``L`` reads (as it was when
        ``L``'s step ended: RAMSES's ``flag_fine`` closes each level's step), and the cells
        of ``L`` whose flags may stand (after a level's first substep, those of octs whose
        26 neighbouring octs exist: RAMSES's ``ensure_ref_rules``).

    Raises
    ------
    ValueError
        Levels outside ``3 <= levelmin <= levelmax <= 10``.
    MemoryError
        :func:`memory_bytes` exceeds the memory available.

    Notes
    -----
    Build one with :meth:`from_uniform`; :func:`evolve` advances it.
    """

    def __init__(self, levelmin: int, levelmax: int):
        levelmin, levelmax = int(levelmin), int(levelmax)
        if not 3 <= levelmin <= levelmax <= 10:
            raise ValueError(f"AMR levels must satisfy 3 <= levelmin <= levelmax <= 10, got "
                             f"levelmin = {levelmin}, levelmax = {levelmax}")
        need, avail = memory_bytes(levelmin, levelmax), _available_memory()
        if avail is not None and need > avail:
            raise MemoryError(f"an AMR mesh of levels {levelmin}..{levelmax} may need "
                              f"{need / 2**30:.1f} GiB but {avail / 2**30:.1f} GiB are available; "
                              "lower levelmax")
        self.levelmin, self.levelmax = levelmin, levelmax
        self.levels = list(range(levelmin, levelmax + 1))
        self.U = {L: np.ones((4,) + (2**L,) * 3) for L in self.levels}
        for L in self.levels:
            self.U[L][1:] = 0.0
        self.kind = {L: np.zeros((2**L,) * 3, np.uint8) for L in self.levels}
        self.kind[levelmin][...] = LEAF
        self._fc: dict[int, np.ndarray] = {}
        self._flags: dict[int, np.ndarray] = {}   # each level's flags at its last flagging
        self.flag_coarse: dict[int, np.ndarray] = {}
        self.flag_allow: dict[int, np.ndarray] = {}
        self._out: dict[int, np.ndarray] = {}     # each level's step output, kept between steps
        self.threads = 0
        self._rebuild()

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_uniform(cls, rho, velocity, levelmin: int, levelmax: int) -> "Mesh":
        """A mesh holding a uniform-grid state, refined everywhere down to its level.

        Parameters
        ----------
        rho : array_like, shape (N, N, N)
            Density [code units], N = 2^L with ``levelmin <= L <= levelmax``.
        velocity : array_like, shape (3, N, N, N)
            Velocity [code units].
        levelmin, levelmax : int
            Levels of the mesh.

        Returns
        -------
        Mesh
            Leaves at level L everywhere (coarser levels refined, holding volume averages);
            the finer levels are filled by prolongation (their cells are absent).
        """
        rho = np.asarray(rho, np.float64)
        velocity = np.asarray(velocity, np.float64)
        n = rho.shape[0]
        if rho.ndim != 3 or rho.shape != (n, n, n) or velocity.shape != (3, n, n, n):
            raise ValueError(f"from_uniform needs rho (N, N, N) and velocity (3, N, N, N), got "
                             f"{rho.shape} and {velocity.shape}")
        L0 = int(round(np.log2(n)))
        if 2**L0 != n or not levelmin <= L0 <= levelmax:
            raise ValueError(f"from_uniform: N = {n} must be 2^L with levelmin = {levelmin} <= L "
                             f"<= levelmax = {levelmax}")
        if not (np.all(np.isfinite(rho)) and rho.min() > 0 and np.all(np.isfinite(velocity))):
            raise ValueError("from_uniform: rho must be positive and finite, velocity finite")
        mesh = cls(levelmin, levelmax)
        U = mesh.U[L0]
        U[0] = rho
        U[1:] = rho * velocity
        for L in mesh.levels:
            mesh.kind[L][...] = REFINED if L < L0 else (LEAF if L == L0 else ABSENT)
        mesh._rebuild()
        mesh.restrict()
        for L in range(L0 + 1, levelmax + 1):  # valid values everywhere (never read as cells)
            _amr.prolong(mesh.U[L - 1], mesh.U[L], np.arange(8 ** (L - 1), dtype=np.int64), 0)
        mesh.fill_ghosts()
        return mesh

    # -- structure ------------------------------------------------------------------------
    def _rebuild(self) -> None:
        """Lists the kernels walk: tiles with leaves, refined cells, ghost cells."""
        self.tiles, self.refined, self.ghosts = {}, {}, {}
        self._leaves = {}
        for L in self.levels:
            k = self.kind[L]
            self.tiles[L], leaves = _amr.tiles(k)
            self._leaves[L] = int(leaves)
            self.refined[L] = (np.flatnonzero(k == REFINED).astype(np.int64) if L < self.levelmax
                               else np.empty(0, np.int64))
            if L > self.levelmin:
                # absent cells within 2 cells of the level's cells: the children of the
                # coarse cells next to a refined one (2 fine cells = 1 coarse cell)
                self.ghosts[L] = _amr.ghosts(self.kind[L - 1])
            if L < self.levelmax and self.refined[L].size and L not in self._fc:
                self._fc[L] = np.zeros((3, 4) + k.shape)
        self.n_leaves = sum(self._leaves.values())

    def _buffer(self, L: int, size: int) -> np.ndarray:
        """The step output of level L, ``size`` float64, reused from step to step.

        Kept per level and grown by a quarter more than asked when too small, so that a
        step does not pay for fresh memory (its pages zeroed by the system) as the level's
        tiles change.
        """
        buf = self._out.get(L)
        if buf is None or buf.size < size:
            buf = self._out[L] = np.empty(size + size // 4)
        return buf[:size]

    def restrict(self) -> None:
        """Refined cells take the volume average of their children, finest first."""
        for L in reversed(self.levels[:-1]):
            _amr.restrict(self.U[L], self.U[L + 1], self.refined[L], self.threads)

    def fill_ghosts(self) -> None:
        """Absent cells within 2 cells of a level's cells: prolongated, coarsest first."""
        for L in self.levels[1:]:
            _amr.prolong(self.U[L - 1], self.U[L], self.ghosts[L], self.threads)

    def leaf_counts(self) -> dict[int, int]:
        """Number of leaf cells per level holding any, ``{level: count}`` (counted when the
        mesh last changed)."""
        return {L: c for L, c in self._leaves.items() if c}

    def refined_fraction(self) -> dict[int, float]:
        """Volume fraction of the box covered by the cells of each level."""
        return {L: float(np.count_nonzero(self.kind[L])) / 8**L for L in self.levels}

    def totals(self) -> np.ndarray:
        """Mass and momentum of the leaves, ``(4,)`` float64 (box volume 1)."""
        tot = np.zeros(4)
        for L in self.levels:
            leaf = self.kind[L] == LEAF
            if leaf.any():
                tot += self.U[L][:, leaf].sum(axis=1) / 8.0**L
        return tot

    def check_nesting(self) -> None:
        """Raise ``AssertionError`` unless the mesh is properly nested.

        Every cell of a level ``L > levelmin`` lies in a refined cell of level ``L - 1``
        whose 26 neighbours exist at ``L - 1`` (so leaves sharing a face or corner differ by
        at most one level); cells of ``levelmin`` all exist; ``levelmax`` has no refined
        cell.
        """
        assert np.all(self.kind[self.levelmin] != ABSENT), "levelmin not covered"
        assert not np.any(self.kind[self.levelmax] == REFINED), "refined cell at levelmax"
        for L in self.levels[1:]:
            ex = self.kind[L] != ABSENT
            ref_parent = _up(self.kind[L - 1] == REFINED)
            assert np.array_equal(ex, ref_parent), f"level {L}: cells without a refined parent"
            parent_ex = self.kind[L - 1] != ABSENT
            ok = _erode(parent_ex)
            bad = (self.kind[L - 1] == REFINED) & ~ok
            assert not bad.any(), f"level {L - 1}: a refined cell lacks a neighbour ({int(bad.sum())} cells)"

    def refine_cells(self, level: int, mask) -> None:
        """Refine the leaves of ``level`` where ``mask`` is set (a static refinement).

        The children are filled by prolongation. Proper nesting is the caller's to keep
        (:meth:`check_nesting` says whether it holds).

        Parameters
        ----------
        level : int
            In [levelmin, levelmax - 1].
        mask : array_like of bool, shape (2^level,) * 3
            Cells to refine; only leaves are refined.
        """
        L = int(level)
        if not self.levelmin <= L < self.levelmax:
            raise ValueError(f"level = {L} is outside levelmin..levelmax - 1 = "
                             f"{self.levelmin}..{self.levelmax - 1}")
        mask = np.asarray(mask, bool)
        if mask.shape != self.kind[L].shape:
            raise ValueError(f"mask must have shape {self.kind[L].shape}, got {mask.shape}")
        self.restrict()
        new = mask & (self.kind[L] == LEAF)
        self.kind[L][new] = REFINED
        kids = _up(new)
        self.kind[L + 1][kids] = LEAF
        _amr.prolong(self.U[L], self.U[L + 1], np.flatnonzero(new).astype(np.int64), self.threads)
        self._rebuild()
        self.fill_ghosts()

    # -- regrid ---------------------------------------------------------------------------
    def flag(self, L: int, refine: str, err_grad_d: float, m_refine: float) -> np.ndarray:
        """Cells of level L that satisfy the refinement criteria (before buffers).

        The density gradient of a cell next to an absent one uses the absent cell's coarser
        covering cell (RAMSES's ``hydro_flag``), from ``flag_coarse[L]`` when set (the
        coarser level's density when level L's step ended); only cells of the level are
        flagged.
        """
        n = 2**L
        if refine == "none":
            return np.zeros((n,) * 3, bool)
        if refine == "all":
            return np.ones((n,) * 3, bool)
        ok = np.zeros((n,) * 3, np.uint8)
        if "gradient" in refine and err_grad_d >= 0:
            coarse = (self.flag_coarse.get(L, self.U[L - 1][0]) if L > self.levelmin
                      else None)
            _amr.flag_gradient(self.U[L][0], self.kind[L], coarse, float(err_grad_d), FLOOR_D,
                               ok, self.threads)
        ok = ok.view(bool)
        if "mass" in refine and m_refine > 0:
            d = self.U[L][0]
            mean = self.totals()[0]
            ok |= (d >= m_refine * mean * 8.0 ** (L - self.levelmin)) & (self.kind[L] != ABSENT)
        return ok

    def regrid(self, refine: str = "gradient", err_grad_d: float = 0.1, m_refine: float = 0.0,
               nexpand: int = 1, levels=None) -> dict:
        """Refine and derefine by the criteria, as RAMSES: flag every level, then refine.

        The flags of all levels are computed from the present mesh (finest first), then
        applied from the coarsest: octs created by this regrid are not refined further
        until the next one, so a regrid adds at most one level where there was none.

        Parameters
        ----------
        refine : {"gradient", "mass", "gradient+mass", "all", "none"}
            Criteria (see :data:`REFINE`).
        err_grad_d : float
            Threshold of the relative density gradient (RAMSES ``err_grad_d``).
        m_refine : float
            Mass threshold in units of a ``levelmin`` cell's mean mass (RAMSES ``m_refine``
            with ``mass_sph`` that mass); 0 disables.
        nexpand : int
            Buffer cells grown around flagged cells (RAMSES ``nexpand``).
        levels : iterable of int, optional
            Levels whose cells are flagged this time (default all but levelmax): the
            others keep their children as they are.

        Returns
        -------
        dict
            ``created`` and ``removed`` octs per level (the level of the children).
        """
        self.restrict()
        created, removed = {}, {}
        todo = sorted(set(self.levels[:-1] if levels is None else levels))
        # 1. flags of every level from the present mesh and state, finest first, so that
        # a level sees the fresh flags of the one above it (RAMSES's flag_fine closes each
        # level's step, the finer levels' before the coarser ones')
        for L in reversed(todo):
            k = self.kind[L]
            ex = k != ABSENT
            ref = k == REFINED
            # minimal rule: a cell whose children are refined or flagged stays refined
            # (RAMSES's test_flag) ...
            kid = _amr.any_child(self.kind[L + 1], REFINED)
            if L + 1 in self._flags:   # flags are only ever set on existing cells
                kid |= _amr.any_child(self._flags[L + 1].view(np.uint8), 1)
            flag = ref & kid
            # ... with one buffer cell around it (proper nesting)
            if flag.any():
                flag = _smooth(flag, ex, self.threads)
            # the criteria, then nexpand buffers
            flag |= self.flag(L, refine, err_grad_d, m_refine) & ex
            for _ in range(nexpand):
                flag = _smooth(flag, ex, self.threads)
            if L in self.flag_allow:   # RAMSES's ensure_ref_rules (subcycling)
                flag &= self.flag_allow[L]
            self._flags[L] = flag
        # 2. refinement, coarsest first (RAMSES's refine_fine): cells created here carry no
        # flag, cells removed here lose theirs; a cell is refined only when its 26
        # neighbours exist at its level
        for L in todo:
            k = self.kind[L]
            self._flags[L] &= k != ABSENT
            flag = self._flags[L].copy()
            _amr.nest_ok(k, flag.view(np.uint8), self.threads)
            fresh, removed[L + 1] = _amr.apply(k, flag.view(np.uint8), self.kind[L + 1])
            created[L + 1] = int(fresh.size)
            if fresh.size:
                _amr.prolong(self.U[L], self.U[L + 1], fresh, self.threads)
        self._rebuild()
        self.fill_ghosts()
        return {"created": created, "removed": removed}


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


class UniformCube(NamedTuple):
    """Density and velocity on a uniform grid (unpacks as ``rho, vel = cube``), as
    :class:`turbsim.ramses.UniformCube`.

    Attributes
    ----------
    density : numpy.ndarray
        ``(N, N, N)`` density [code units], indexed ``[ix, iy, iz]``.
    velocity : numpy.ndarray
        ``(3, N, N, N)`` velocity [code units].
    """

    density: np.ndarray
    velocity: np.ndarray


def to_uniform(mesh: Mesh, level: int | None = None) -> UniformCube:
    """Density and velocity of a (restricted) mesh on the uniform grid of a level.

    As RAMSES data are read (:meth:`turbsim.ramses.RamsesDataset.to_uniform`): leaves
    coarser than ``level`` are copied into every pixel they cover; finer leaves are
    averaged, density by volume (a pixel's mass is that of the leaves inside it) and
    velocity by mass (momentum / mass).

    Parameters
    ----------
    mesh : Mesh
        The mesh, restricted (as :func:`evolve` leaves it).
    level : int, optional
        Grid level, ``2^level`` cells per side, in [levelmin, levelmax] (default levelmax).

    Returns
    -------
    UniformCube
        In code units.
    """
    level = mesh.levelmax if level is None else int(level)
    if not mesh.levelmin <= level <= mesh.levelmax:
        raise ValueError(f"level = {level} is outside levelmin..levelmax = "
                         f"{mesh.levelmin}..{mesh.levelmax}")
    U = mesh.U[mesh.levelmin].copy()
    for L in range(mesh.levelmin + 1, level + 1):
        ex = mesh.kind[L] != ABSENT
        U = np.where(ex, mesh.U[L], _up(U))
    return UniformCube(U[0], U[1:] / U[0])


class AmrResult:
    """Outcome of :func:`turbsim.simulate` for an AMR-lite configuration.

    The leaf cells and the uniform views mirror :class:`turbsim.ramses.RamsesDataset`
    (same columns, same meanings), so a projection carries the mesh pattern exactly as a
    RAMSES snapshot would.

    Attributes
    ----------
    config : SimConfig
        The configuration.
    mesh : Mesh
        The final mesh [turbsim code units: box 1, c_s 1, mean density 1].
    time : float
        Time reached [Myr].
    steps, regrids : int
        Steps (coarse steps with ``regrid_schedule="nsubcycle"``) and regrids taken.
    level_steps : dict of int to int
        Steps taken by each level (see :class:`AmrRunResult`).
    wall_time, solver_time, regrid_time, ic_time : float
        Seconds: the whole call, the stepping loop (with its regrids), the regrids, the
        initial conditions.
    cell_updates : int
        Leaf updates of the run.
    mass_error, momentum_error : float
        ``|M(t) - M(0)| / M(0)``; ``max |P(t) - P(0)| / (M(0) mach c_s)``.
    history : list of dict
        Per regrid: step, time [code units], leaves per level, octs created and removed.
    """

    def __init__(self, config: SimConfig, run: "AmrRunResult", ic_time: float, wall_time: float):
        self.config = config
        self.mesh = run.mesh
        cu = config.code_units
        self._cu = cu
        to_myr = cu["time"] / units.MYR
        self.time = config.t_end if config.stop == "exact" else run.time * to_myr
        self.steps, self.regrids = run.steps, run.regrids
        self.level_steps = run.level_steps
        self.wall_time, self.solver_time = wall_time, run.wall_time
        self.regrid_time, self.ic_time = run.regrid_time, ic_time
        self.cell_updates = run.cell_updates
        self.mass_error = run.mass_error
        self.momentum_error = run.momentum_error / (config.mach or 1.0)
        self.history = run.history

    def __repr__(self):
        return (f"AmrResult(levels={self.mesh.levelmin}..{self.mesh.levelmax}, time={self.time:.6g} Myr, "
                f"steps={self.steps}, leaf cells={self.leaf_counts()})")

    def leaf_counts(self) -> dict[int, int]:
        """Number of leaf cells per level, ``{level: count}``."""
        return self.mesh.leaf_counts()

    def refined_fraction(self) -> dict[int, float]:
        """Volume fraction of the box covered by the cells of each level."""
        return self.mesh.refined_fraction()

    def cells(self, cgs: bool = False) -> dict[str, np.ndarray]:
        """The leaf cells as a table of columns (those of RAMSES's ``cells()``).

        Parameters
        ----------
        cgs : bool
            cgs units (cm, g/cm^3, cm/s, dyn/cm^2) instead of code units (box 1, mean
            density 1, c_s 1).

        Returns
        -------
        dict of numpy.ndarray
            ``x, y, z`` (cell centres), ``level`` (int32), ``dx`` (cell size), ``density``,
            ``velocity_x``, ``velocity_y``, ``velocity_z``, ``pressure`` (``rho c_s^2``).
            Rows by level, then by cell index.
        """
        cols = {k: [] for k in ("x", "y", "z", "level", "dx") + FIELDS}
        for L in self.mesh.levels:
            leaf = self.mesh.kind[L] == LEAF
            if not leaf.any():
                continue
            idx = np.nonzero(leaf)
            dx = 1.0 / 2**L
            for a, name in enumerate("xyz"):
                cols[name].append((idx[a] + 0.5) * dx)
            cols["level"].append(np.full(idx[0].size, L, np.int32))
            cols["dx"].append(np.full(idx[0].size, dx))
            U = self.mesh.U[L][:, leaf]
            cols["density"].append(U[0])
            for a, name in enumerate("xyz"):
                cols[f"velocity_{name}"].append(U[1 + a] / U[0])
            cols["pressure"].append(U[0].copy())
        table = {k: np.concatenate(v) if v else np.empty(0) for k, v in cols.items()}
        if cgs:
            cu = self._cu
            for k in ("x", "y", "z", "dx"):
                table[k] = table[k] * cu["length"]
            table["density"] = table["density"] * cu["density"]
            for a in "xyz":
                table[f"velocity_{a}"] = table[f"velocity_{a}"] * cu["velocity"]
            table["pressure"] = table["pressure"] * cu["density"] * cu["velocity"] ** 2
        return table

    def to_uniform(self, level: int | None = None) -> UniformCube:
        """Density and velocity on the uniform grid of a level [code units] (see
        :func:`to_uniform`)."""
        return to_uniform(self.mesh, level)

    def column_density(self, axis: int, level: int | None = None) -> np.ndarray:
        """Column density along one axis [g/cm^2], by exact deposition of the leaves.

        Parameters
        ----------
        axis : {0, 1, 2}
            Projection axis.
        level : int, optional
            Map level, ``2^level`` pixels per side (default levelmax).

        Returns
        -------
        numpy.ndarray
            ``(N, N)``, indexed by the two remaining axes in order (as RAMSES's).
        """
        if axis not in (0, 1, 2):
            raise ValueError(f"axis = {axis!r} is not 0, 1 or 2")
        cube = self.to_uniform(level).density
        return cube.sum(axis=axis) / cube.shape[0] * self._cu["column_density"]

    @property
    def density(self) -> np.ndarray:
        """Density on the uniform grid of levelmax [g/cm^3]."""
        return self.to_uniform().density * self._cu["density"]

    @property
    def velocity(self) -> np.ndarray:
        """Velocity on the uniform grid of levelmax [cm/s]."""
        return self.to_uniform().velocity * self._cu["velocity"]

    def summary(self) -> dict:
        """A JSON-friendly summary of the run (no arrays)."""
        return {
            "levelmin": self.mesh.levelmin, "levelmax": self.mesh.levelmax,
            "leaf_cells": {str(k): v for k, v in self.leaf_counts().items()},
            "refined_fraction": {str(k): v for k, v in self.refined_fraction().items()},
            "time_myr": self.time, "steps": self.steps, "regrids": self.regrids,
            "level_steps": {str(k): v for k, v in self.level_steps.items()},
            "wall_time_s": self.wall_time, "solver_time_s": self.solver_time,
            "regrid_time_s": self.regrid_time,
            "cell_updates_per_s": self.cell_updates / max(self.solver_time, 1e-12),
            "mass_error": self.mass_error, "momentum_error": self.momentum_error,
        }


def run_config(config: SimConfig, velocity: np.ndarray, threads: int | None = None,
               ic_time: float = 0.0) -> AmrResult:
    """Run an AMR-lite configuration from its initial velocity field (code units).

    Parameters
    ----------
    config : SimConfig
        With ``levelmax > 0``.
    velocity : ndarray, shape (3, N, N, N)
        Initial velocity on the ``config.cells`` grid [code units]; the density is uniform.
    threads : int, optional
        OpenMP threads.
    ic_time : float
        Seconds spent drawing ``velocity`` (reported).

    Returns
    -------
    AmrResult
    """
    if not config.amr:
        raise ValueError("run_config needs an AMR configuration (levelmax > 0)")
    t0 = _time.perf_counter()
    n = config.cells
    mesh = Mesh.from_uniform(np.ones((n,) * 3), velocity, config.levelmin, config.levelmax)
    run = evolve(mesh, config.t_end_code, cs=1.0, scheme=config.scheme, limiter=config.limiter,
                 courant=config.courant, gamma=config.gamma, ramses_dt=config.ramses_dt,
                 stop=config.stop, refine=config.refine, err_grad_d=config.err_grad_d,
                 m_refine=config.m_refine, nexpand=config.nexpand,
                 regrid_every=config.regrid_every, schedule=config.regrid_schedule,
                 threads=threads)
    return AmrResult(config, run, ic_time, _time.perf_counter() - t0 + ic_time)

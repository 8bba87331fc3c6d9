"""AMR-lite's mesh: levels of octs as dense arrays, RAMSES's refinement rules, transfers.

A cell of level ``L`` (``2^L`` cells per side of the unit box) is a *leaf*, or is *refined*
into 8 children of level ``L + 1``; every level is a dense periodic array with a kind per
cell (:data:`ABSENT`, :data:`LEAF`, :data:`REFINED`), so neighbours are an index away and
the regrid is a few kernel passes over what a level holds. :class:`Mesh` holds the state,
the lists the kernels walk (tiles with leaves, refined cells, ghost cells), restriction and
prolongation, and the regrid by RAMSES's rules (:mod:`turbsim.amr` lists them). The
stepping is :mod:`turbsim.amr_step`; the public face, with the results, is
:mod:`turbsim.amr`.
"""
from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from ._solver import _amr
from .config import REFINES
from .machine import available_memory as _available_memory  # a name the tests can patch

log = logging.getLogger(__name__)

TILE = _amr.TILE
"""Cells per side of the tiles the step visits (so ``levelmin >= 3``)."""
REFINE = REFINES
"""Refinement criteria: RAMSES's density gradient (``err_grad_d``), its quasi-Lagrangian
mass criterion (``m_refine``), both, every cell (to ``levelmax``), no cell."""
ABSENT, LEAF, REFINED = 0, 1, 2
FLOOR_D = 1e-10
"""RAMSES's ``floor_d`` in the gradient criterion [code density]."""

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

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

The mesh and its regrid are :mod:`turbsim.amr_mesh`, the step :mod:`turbsim.amr_step`;
this module is the public face (their names are importable from here) and the results:
:class:`AmrResult` (leaf table, ``to_uniform``, column densities, summary) and
:func:`run_config`, which :func:`turbsim.simulate` calls for an AMR-lite configuration.

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
from typing import NamedTuple

import numpy as np

from . import units
from .amr_mesh import (ABSENT, FLOOR_D, LEAF, REFINE, REFINED, TILE, AmrError, Mesh,  # noqa: F401
                       _erode, _smooth, _up, memory_bytes)
from .amr_step import LIMITERS, SCHEMES, AmrRunResult, evolve  # noqa: F401
from .config import SimConfig

log = logging.getLogger(__name__)

FIELDS = ("density", "velocity_x", "velocity_y", "velocity_z", "pressure")
"""Columns of the leaf table after ``x, y, z, level, dx``: those of RAMSES's hydro files."""


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

"""One trip down the physics road: a :class:`~turbsim.SimConfig` in, a :class:`SimResult` out.

``simulate`` draws the turbulent initial velocity field (:mod:`turbsim.ic`), evolves it with
the native solver (:mod:`turbsim.solver`) in code units (box = 1, c_s = 1, mean density = 1)
and returns the density and velocity in cgs together with the solver's statistics.

Examples
--------
>>> from turbsim import SimConfig, simulate
>>> res = simulate(SimConfig(cells=16, t_end=0.1, scheme="first"))
>>> res.density.shape, res.time
((16, 16, 16), 0.1)
>>> res.mass_error < 1e-12
True
"""
from __future__ import annotations

import time as _time
from dataclasses import dataclass, field

import numpy as np

from . import ic, solver, units
from .config import SimConfig


@dataclass(frozen=True)
class SimResult:
    """Outcome of :func:`simulate`.

    Attributes
    ----------
    config : SimConfig
        The configuration that produced the result.
    density : ndarray, shape (N, N, N)
        Density at ``time`` [g/cm^3], indexed [ix, iy, iz].
    velocity : ndarray, shape (3, N, N, N)
        Velocity at ``time`` [cm/s].
    time : float
        Time of the final state [Myr]: ``config.t_end``, or a little later with
        ``config.stop == "after"``.
    steps : int
        Number of solver steps.
    wall_time : float
        Seconds for the whole call (initial conditions, solver, conversion).
    solver_time : float
        Seconds spent in the native stepping loop.
    ic_time : float
        Seconds spent drawing the initial conditions.
    mass_error : float
        ``|M(t) - M(0)| / M(0)``.
    momentum_error : float
        ``|P(t) - P(0)| / (M(0) v_rms(0))`` (the initial momentum is zero up to round-off,
        so it is measured against the momentum scale of the flow).
    snapshots : list of tuple
        ``(time [Myr], density [g/cm^3], velocity [cm/s])`` at each intermediate output.
    """

    config: SimConfig
    density: np.ndarray = field(repr=False)
    velocity: np.ndarray = field(repr=False)
    time: float
    steps: int
    wall_time: float
    solver_time: float
    ic_time: float
    mass_error: float
    momentum_error: float
    snapshots: list = field(default_factory=list, repr=False)

    def summary(self) -> dict:
        """A JSON-friendly summary of the run (no arrays)."""
        rho = self.density / self.config.density
        v = self.velocity / self.config.sound_speed
        return {
            "cells": self.config.cells,
            "scheme": self.config.scheme,
            "n": self.config.n,
            "seed": self.config.seed,
            "time_myr": self.time,
            "steps": self.steps,
            "wall_time_s": self.wall_time,
            "solver_time_s": self.solver_time,
            "cell_updates_per_s": self.config.cells**3 * self.steps / max(self.solver_time, 1e-12),
            "rms_mach": float(np.sqrt((v**2).sum(axis=0).mean())),
            "density_min_over_mean": float(rho.min()),
            "density_max_over_mean": float(rho.max()),
            "mass_error": self.mass_error,
            "momentum_error": self.momentum_error,
        }


def simulate(config: SimConfig, outputs=None, threads: int | None = None,
             progress: bool = False) -> SimResult:
    """Run one simulation.

    Parameters
    ----------
    config : SimConfig
        Physical and numerical parameters.
    outputs : sequence of float, optional
        Intermediate output times [Myr] in [0, config.t_end].
    threads : int, optional
        OpenMP threads for the solver (default: all available).
    progress : bool
        Show a progress bar of the simulated time, in Myr.

    Returns
    -------
    SimResult
    """
    if not isinstance(config, SimConfig):
        raise TypeError(f"simulate needs a SimConfig, got {type(config).__name__}")
    t_start = _time.perf_counter()
    rho0, vel0 = ic.initial_conditions(config)
    ic_time = _time.perf_counter() - t_start
    cu = config.code_units
    myr_to_code = units.MYR / cu["time"]
    to_myr = 1.0 / myr_to_code
    out_code = [float(t) * myr_to_code for t in (outputs or [])]
    res = solver.evolve(rho0, vel0, dx=1.0 / config.cells, cs=1.0, t_end=config.t_end_code,
                        outputs=out_code, scheme=config.scheme, limiter=config.limiter,
                        courant=config.courant, gamma=config.gamma, ramses_dt=config.ramses_dt,
                        threads=threads, dtype=np.dtype(config.dtype), stop=config.stop,
                        progress=solver.ProgressUnit("Myr", to_myr) if progress else False)
    del rho0, vel0  # the solver works on its own copy: free the IC before the next step
    final = res.snapshots[-1]
    m0 = res.initial_mass
    mass_error = abs(final.mass - m0) / m0
    # momentum relative to (total mass) x (rms IC speed = mach c_s, exact by construction)
    scale = m0 * config.mach or 1.0
    momentum_error = float(np.abs(final.momentum - res.initial_momentum).max() / scale)
    snaps = [(s.time * to_myr, s.rho * cu["density"], s.velocity * cu["velocity"])
             for s in res.snapshots[:-1]]
    density, velocity = final.rho, final.velocity
    density *= cu["density"]
    velocity *= cu["velocity"]
    return SimResult(config=config, density=density, velocity=velocity,
                     time=config.t_end if config.stop == "exact" else final.time * to_myr,
                     steps=res.steps, wall_time=_time.perf_counter() - t_start,
                     solver_time=res.wall_time, ic_time=ic_time, mass_error=mass_error,
                     momentum_error=momentum_error, snapshots=snaps)

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

Memory
------
A run holds the solver state (four fields of ``N^3`` in ``dtype``) and its work buffer,
the kernels' per-thread planes and float64 intermediate snapshots; before the run, the
initial conditions' Fourier modes (``3 N^2 (N/2 + 1)`` complex128, 1.5 times a float32
state) beside the state. At its peak a run needs 2.5 times the state in float32 and about
2.1 times in float64. :func:`memory_estimate` gives the figures, and :func:`simulate`
refuses up front, with :class:`InsufficientMemoryError`, a run whose peak exceeds the
memory available.

>>> est = memory_estimate(SimConfig(cells=512, dtype="float32"))
>>> round(est["state"] / 2**30, 2), round(est["peak"] / est["state"], 1)
(2.0, 2.5)
"""
from __future__ import annotations

import time as _time
from dataclasses import dataclass, field

import numpy as np

from . import ic, solver, units
from .config import SimConfig
from .machine import available_memory  # noqa: F401  (its home before; tests patch it here)


class InsufficientMemoryError(MemoryError):
    """A run would need more memory than is available; raised before anything is allocated.

    Attributes
    ----------
    needed : int
        Bytes the run needs at its peak (:func:`memory_estimate`).
    available : int
        Bytes available (:func:`available_memory`).
    estimate : dict
        The estimate by component.
    """

    def __init__(self, message: str, needed: int, available: int, estimate: dict):
        super().__init__(message)
        self.needed, self.available, self.estimate = needed, available, estimate


def memory_estimate(config: SimConfig, outputs=None, threads: int | None = None) -> dict:
    """Bytes a :func:`simulate` run of ``config`` allocates, by component, and at its peak.

    Parameters
    ----------
    config : SimConfig
        Uses ``cells``, ``dtype``, ``scheme``, ``limiter``, ``gamma``.
    outputs : sequence of float, optional
        Intermediate output times (each keeps a float64 snapshot).
    threads : int, optional
        Solver threads (default: all available); the kernels' buffers are per thread.

    Returns
    -------
    dict of int
        ``state``: the conserved state, 4 N^3 in ``dtype`` [bytes]; ``work``: the solver's
        second buffer, the same; ``thread_buffers``: the kernels' planes, all threads;
        ``ic_modes``: the initial conditions' Fourier modes, 3 N^2 (N/2 + 1) complex128,
        freed before the run; ``snapshots``: float64 density and velocity of the
        intermediate outputs; ``conversion``: the transient float32 copy of the density
        made while the final state is turned into float64 (float32 runs); ``result``:
        float64 density and velocity of the final state (in float32 runs they take the
        memory of state and work, in float64 runs that of the state: already counted);
        ``ic_phase``, ``run_phase``, ``final_phase``: memory in use in each phase;
        ``peak``: the largest of them.
    """
    cells = int(config.cells)
    n3 = cells ** 3
    item = np.dtype(config.dtype).itemsize
    state = 4 * n3 * item
    modes = 3 * cells * cells * (cells // 2 + 1) * 16
    buffers = solver.work_bytes((cells,) * 3, config.dtype, config.scheme, config.limiter,
                                config.gamma, threads)
    snapshots = len(outputs or ()) * 4 * n3 * 8
    conversion = n3 * 4 if item == 4 else 0
    est = {"state": state, "work": state, "thread_buffers": buffers, "ic_modes": modes,
           "snapshots": snapshots, "conversion": conversion, "result": 4 * n3 * 8}
    est["ic_phase"] = state + modes
    est["run_phase"] = 2 * state + buffers + snapshots
    est["final_phase"] = 2 * state + conversion + snapshots
    est["peak"] = max(est["ic_phase"], est["run_phase"], est["final_phase"])
    return est


def ensure_memory(config: SimConfig, outputs=None, threads: int | None = None) -> dict:
    """Raise :class:`InsufficientMemoryError` when a run of ``config`` cannot fit.

    Returns the estimate (:func:`memory_estimate`) when it fits, or when the available
    memory is unknown.
    """
    est = memory_estimate(config, outputs, threads)
    avail = available_memory()
    if avail is not None and est["peak"] > avail:
        gib = 2.0 ** 30
        parts = ", ".join(f"{k.replace('_', ' ')} {est[k] / gib:.2f}" for k in
                          ("state", "work", "thread_buffers", "ic_modes", "snapshots", "conversion")
                          if est[k])
        raise InsufficientMemoryError(
            f"simulate: a {config.cells}^3 {config.dtype} run needs about {est['peak'] / gib:.2f} GiB "
            f"at its peak ({parts} GiB) but {avail / gib:.2f} GiB are available; use fewer cells, "
            "float32, fewer intermediate outputs, or a machine with more memory",
            est["peak"], avail, est)
    return est


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
             progress: bool = False, check_memory: bool = True) -> SimResult:
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
    check_memory : bool
        Refuse, before allocating anything, a run whose peak memory
        (:func:`memory_estimate`) exceeds the memory available.

    Returns
    -------
    SimResult or turbsim.amr.AmrResult
        An AMR-lite configuration (``config.levelmax > 0``) gives an
        :class:`~turbsim.amr.AmrResult` (leaf cells, uniform views, column densities).

    Raises
    ------
    InsufficientMemoryError
        The run cannot fit in the available memory (a :class:`MemoryError`; the message
        gives the bytes needed, by component, and available).
    """
    if not isinstance(config, SimConfig):
        raise TypeError(f"simulate needs a SimConfig, got {type(config).__name__}")
    if config.amr:
        return _simulate_amr(config, outputs, threads)
    if check_memory:
        ensure_memory(config, outputs, threads)
    t_start = _time.perf_counter()
    # The initial state goes straight into the solver's buffer: uniform density, momentum
    # = 1 * velocity (what to_conserved of ic.initial_conditions gives, bit for bit), the
    # float64 field rounded to dtype; the IC's modes, over which the field was written,
    # are freed before the run.
    U, work = solver.state_buffers((config.cells,) * 3, config.dtype)
    U[0] = 1.0
    velocity = ic.velocity_field(config.cells, config.n, config.seed, mach=config.mach,
                                 solenoidal=config.solenoidal, method=config.ic)
    np.copyto(U[1:], velocity, casting="same_kind")
    del velocity
    ic_time = _time.perf_counter() - t_start
    cu = config.code_units
    myr_to_code = units.MYR / cu["time"]
    to_myr = 1.0 / myr_to_code
    out_code = [float(t) * myr_to_code for t in (outputs or [])]
    res = solver.evolve_conserved(
        U, work, dx=1.0 / config.cells, cs=1.0, t_end=config.t_end_code, outputs=out_code,
        scheme=config.scheme, limiter=config.limiter, courant=config.courant,
        gamma=config.gamma, ramses_dt=config.ramses_dt, threads=threads, stop=config.stop,
        progress=solver.ProgressUnit("Myr", to_myr) if progress else False)
    del U, work  # the final snapshot holds their memory where it reuses it
    final = res.snapshots[-1]
    m0 = res.initial_mass
    mass_error = abs(final.mass - m0) / m0
    # momentum relative to (total mass) x (rms IC speed = mach c_s, exact by construction)
    scale = m0 * config.mach or 1.0
    momentum_error = float(np.abs(final.momentum - res.initial_momentum).max() / scale)
    snaps = []
    for s in res.snapshots[:-1]:  # to cgs in place: the snapshots are the solver's copies
        rho, vel = s.rho, s.velocity
        rho *= cu["density"]
        vel *= cu["velocity"]
        snaps.append((s.time * to_myr, rho, vel))
    density, velocity = final.rho, final.velocity
    density *= cu["density"]
    velocity *= cu["velocity"]
    return SimResult(config=config, density=density, velocity=velocity,
                     time=config.t_end if config.stop == "exact" else final.time * to_myr,
                     steps=res.steps, wall_time=_time.perf_counter() - t_start,
                     solver_time=res.wall_time, ic_time=ic_time, mass_error=mass_error,
                     momentum_error=momentum_error, snapshots=snaps)


def _simulate_amr(config: SimConfig, outputs, threads):
    """An AMR-lite run (:mod:`turbsim.amr`): the same initial conditions on the ``cells`` grid."""
    from . import amr  # the refined mesh: imported only by AMR runs

    if outputs:
        raise ValueError("simulate: intermediate outputs are not supported by AMR-lite runs "
                         f"(levelmax = {config.levelmax}); got outputs={list(outputs)}")
    t0 = _time.perf_counter()
    velocity = ic.velocity_field(config.cells, config.n, config.seed, mach=config.mach,
                                 solenoidal=config.solenoidal, method=config.ic)
    return amr.run_config(config, velocity, threads=threads, ic_time=_time.perf_counter() - t0)

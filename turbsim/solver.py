"""Isothermal Euler solver on a periodic grid: the Python face of the native kernels.

The equations are

    d(rho)/dt + div(rho v) = 0,
    d(rho v)/dt + div(rho v v + p I) = 0,   p = c_s^2 rho,

solved by a finite-volume method with local Lax-Friedrichs (Rusanov) fluxes, either first
order (Godunov) or unsplit MUSCL-Hancock with limited primitive-variable slopes and a
half-step predictor including the transverse derivatives, as in RAMSES (Teyssier 2002).
The hot loop is C (``turbsim/_solver``), parallelised over x slabs with OpenMP; results
are bit-identical for any number of threads.

Units are whatever consistent units the caller passes (``dx``, ``cs``, ``t_end``):
:func:`turbsim.simulate` uses code units (box = 1, c_s = 1, mean density = 1),
:mod:`turbsim.compare` RAMSES's code units.

Time step
---------
``dt = C dx / max(sum_d |v_d| + ndim c)`` over the cells, with ``c = sqrt(gamma) c_s``
and the sum over the axes longer than one cell (RAMSES's ``cmpdt``). With
``ramses_dt=True`` the small correction RAMSES applies when gravity is off is applied too:
``dt = dx / S (sqrt(1 + 2 C eps) - 1) / eps``, ``eps = 1e-4``. With ``stop="exact"``
(default) steps are shortened to land exactly on every requested output time; with
``stop="after"`` they are not, and each output is the state after the first step that
reaches its time, which is how RAMSES writes its outputs (its snapshot times overshoot the
requested ones by up to one step).

Examples
--------
>>> import numpy as np
>>> from turbsim.solver import evolve
>>> rho = np.ones((32, 1, 1)); vel = np.zeros((3, 32, 1, 1))
>>> rho[:16] = 2.0
>>> res = evolve(rho, vel, dx=1 / 32, cs=1.0, t_end=0.1, scheme="first")
>>> round(float(res.rho.mean()), 12)   # mass is conserved
1.5
"""
from __future__ import annotations

import logging
import time as _time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from . import console
from ._solver import _kernels

log = logging.getLogger(__name__)

SCHEME_CODES = {code.name.lower(): code for code in _kernels.Scheme}
"""Scheme names and their kernel codes (``ts_scheme`` of the kernels' ``codes.h``)."""
from .config import STOPS  # noqa: E402 (one list of the ways a run ends, owned by config)
LIMITER_CODES = {code.name.lower(): code for code in _kernels.Limiter}
"""Limiter names and their kernel codes (``ts_limiter``, RAMSES's ``slope_type``)."""
_PROGRESS_CHUNK = 8  # steps per native call when a progress bar is shown


class SolverError(RuntimeError):
    """The solver could not continue: bad state, time step or step limit."""


class ProgressUnit(NamedTuple):
    """The unit in which the progress bar of :func:`evolve` counts simulated time.

    Attributes
    ----------
    name : str
        Name shown by the bar, e.g. ``"Myr"``.
    per_time_unit : float
        One unit of the solver's time (the units of ``t_end``) expressed in this unit, e.g.
        the code time unit in Myr.
    """

    name: str
    per_time_unit: float


_CALLER_UNITS = ProgressUnit("t", 1.0)  # progress=True: the units of t_end


@dataclass(frozen=True)
class Snapshot:
    """The state at one output time.

    Attributes
    ----------
    time : float
        Time of the snapshot (caller's units).
    rho : ndarray, shape (nx, ny, nz)
        Density.
    velocity : ndarray, shape (3, nx, ny, nz)
        Velocity (vx, vy, vz).
    steps : int
        Steps taken from the start up to this snapshot.
    mass : float
        Total mass, ``sum(rho)`` (multiply by the cell volume for physical units).
    momentum : ndarray, shape (3,)
        Total momentum, ``sum(rho v)`` per component.
    """

    time: float
    rho: np.ndarray
    velocity: np.ndarray
    steps: int
    mass: float = float("nan")
    momentum: np.ndarray = field(default=None, repr=False)


@dataclass(frozen=True)
class EvolveResult:
    """Outcome of :func:`evolve`.

    Attributes
    ----------
    snapshots : list of Snapshot
        One per requested output time, the last one at ``t_end``.
    steps : int
        Total number of time steps.
    wall_time : float
        Seconds spent in the native stepping loop.
    last_dt : float
        The last CFL time step (before any shortening to land on an output time).
    initial_mass : float
        Total mass at time 0, ``sum(rho)`` of the state the solver started from (after
        rounding to ``dtype``), accumulated in float64.
    initial_momentum : ndarray, shape (3,)
        Total momentum at time 0, ``sum(rho v)`` per component, likewise.
    """

    snapshots: list = field(repr=False)
    steps: int
    wall_time: float
    last_dt: float
    initial_mass: float = float("nan")
    initial_momentum: np.ndarray = field(default=None, repr=False)

    @property
    def rho(self) -> np.ndarray:
        """Density at the final time."""
        return self.snapshots[-1].rho

    @property
    def velocity(self) -> np.ndarray:
        """Velocity (3, nx, ny, nz) at the final time."""
        return self.snapshots[-1].velocity

    @property
    def time(self) -> float:
        """Final time."""
        return self.snapshots[-1].time


def state_buffers(shape, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Uninitialised conserved state and the solver's work buffer for a grid of ``shape``.

    Parameters
    ----------
    shape : tuple of int
        Grid shape ``(nx, ny, nz)``.
    dtype : numpy dtype
        float64 or float32.

    Returns
    -------
    U, work : ndarray, shape (4, nx, ny, nz), C-contiguous
        For :func:`evolve_conserved`. In float32 they are the two halves of one block
        (``work`` first), the size of the float64 density and velocity of the result, which
        :func:`evolve_conserved` writes into the block at the end instead of allocating them.
        Pages are allocated on first touch: ``work`` costs memory only once the solver runs.
    """
    dtype = np.dtype(dtype)
    shape = (4,) + tuple(int(n) for n in shape)
    if dtype == np.float32:
        block = np.empty((2,) + shape, dtype)
        return block[1], block[0]
    return np.empty(shape, dtype), np.empty(shape, dtype)


def to_conserved(rho: np.ndarray, velocity: np.ndarray, dtype=np.float64,
                 out: np.ndarray | None = None) -> np.ndarray:
    """Pack density and velocity into the conserved array ``(rho, rho vx, rho vy, rho vz)``.

    Parameters
    ----------
    rho : ndarray, shape (nx, ny, nz)
        Density.
    velocity : ndarray, shape (3, nx, ny, nz)
        Velocity.
    dtype : numpy dtype
        float64 or float32.
    out : ndarray, shape (4, nx, ny, nz), optional
        Where to write it (of ``dtype``), e.g. ``U`` of :func:`state_buffers`.

    Returns
    -------
    ndarray, shape (4, nx, ny, nz), C-contiguous
    """
    U = np.empty((4,) + rho.shape, dtype=dtype) if out is None else out
    U[0] = rho
    np.multiply(rho, velocity, out=U[1:])  # no temporary cube
    return U


def to_primitive(U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`to_conserved`: returns ``(rho, velocity)`` as float64 arrays."""
    rho = U[0].astype(np.float64)
    vel = U[1:].astype(np.float64)
    vel /= rho
    return rho, vel


def _snapshot(U: np.ndarray, t: float, steps: int) -> Snapshot:
    totals = U.reshape(4, -1).sum(axis=1, dtype=np.float64)
    rho, vel = to_primitive(U)
    return Snapshot(t, rho, vel, steps, float(totals[0]), totals[1:])


def _final_snapshot(U: np.ndarray, work: np.ndarray, t: float, steps: int) -> Snapshot:
    """The last snapshot, made with as little memory as the layout of ``U`` allows.

    float64: the state is turned into primitives in place. float32 in a block of
    :func:`state_buffers`: the float64 velocity and density are written over the block
    (work buffer first, then the consumed parts of the state), with one float32 copy of
    the density as the only extra memory. The values are those of :func:`to_primitive`.
    """
    totals = U.reshape(4, -1).sum(axis=1, dtype=np.float64)
    block = U.base
    n3 = U[0].size
    if U.dtype == np.float64:
        rho, vel = U[0], U[1:]
        vel /= rho
    elif (U.dtype == np.float32 and block is not None and block is work.base
          and block.shape == (2,) + U.shape and block.flags.c_contiguous
          and U.__array_interface__["data"][0] == block[1].__array_interface__["data"][0]):
        # bytes of the block: [work | rho mx my mz], 4 n3 float32 each half = 4 n3 float64
        rho32 = U[0].copy()
        raw = block.reshape(-1).view(np.float64)
        vel = raw[:3 * n3].reshape((3,) + U.shape[1:])
        for c in range(3):  # vel[c] lies over work (c < 2), or over rho and mx (c = 2)
            np.divide(U[1 + c], rho32, out=vel[c], dtype=np.float64)
        rho = raw[3 * n3:].reshape(U.shape[1:])  # over my and mz, both consumed
        rho[...] = rho32
        del rho32
    else:
        rho, vel = to_primitive(U)
    return Snapshot(t, rho, vel, steps, float(totals[0]), totals[1:])


def _validate_options(dx, cs, t_end, outputs, scheme, limiter, courant, gamma, stop):
    for name, v in (("dx", dx), ("cs", cs)):
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive number, got {v!r}")
    if not (np.isfinite(t_end) and t_end >= 0):
        raise ValueError(f"t_end must be a non-negative number, got {t_end!r}")
    if scheme not in SCHEME_CODES:
        raise ValueError(f"scheme must be one of {sorted(SCHEME_CODES)}, got {scheme!r}")
    if limiter not in LIMITER_CODES:
        raise ValueError(f"limiter must be one of {sorted(LIMITER_CODES)}, got {limiter!r}")
    if not (0 < courant <= 1):
        raise ValueError(f"courant must be in (0, 1], got {courant!r}")
    if stop not in STOPS:
        raise ValueError(f"stop must be one of {list(STOPS)}, got {stop!r}")
    if not (1.0 <= gamma <= 5.0 / 3.0):
        raise ValueError(f"gamma must be in [1, 5/3], got {gamma!r}")
    times = sorted(float(t) for t in outputs)
    if any(not (0 <= t <= t_end) for t in times):
        raise ValueError(f"output times must lie in [0, t_end={t_end}], got {times}")
    return times


def _validate(rho, velocity, dx, cs, t_end, outputs, scheme, limiter, courant, gamma, stop):
    rho = np.asarray(rho)
    velocity = np.asarray(velocity)
    if rho.ndim != 3:
        raise ValueError(f"rho must be a 3D array (nx, ny, nz), got shape {rho.shape}")
    if velocity.shape != (3,) + rho.shape:
        raise ValueError(f"velocity must have shape {(3,) + rho.shape}, got {velocity.shape}")
    # a finite sum implies finite elements (the full check runs only when it is not)
    for name, a in (("rho", rho), ("velocity", velocity)):
        if not np.isfinite(a.sum()) and not np.all(np.isfinite(a)):
            raise ValueError(f"{name} must be finite everywhere")
    if not rho.min() > 0:
        raise ValueError(f"rho must be positive everywhere (min {rho.min()!r})")
    times = _validate_options(dx, cs, t_end, outputs, scheme, limiter, courant, gamma, stop)
    return rho, velocity, times


def _check_dtype_threads(dtype, threads):
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype must be float64 or float32, got {dtype}")
    if threads is None:
        threads = 0
    elif int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads!r}")
    return dtype, int(threads)


def evolve(rho, velocity, *, dx: float, cs: float, t_end: float, outputs=(),
           scheme: str = "muscl", limiter: str = "minmod", courant: float = 0.8,
           gamma: float = 1.0, ramses_dt: bool = False, threads: int | None = None,
           dtype=np.float64, density_floor: float = 0.0, max_steps: int = 10_000_000,
           stop: str = "exact", progress: bool | ProgressUnit | tuple = False) -> EvolveResult:
    """Evolve an isothermal periodic flow from time 0 to ``t_end``.

    Parameters
    ----------
    rho : array_like, shape (nx, ny, nz)
        Initial density (positive). Any axis may have length 1 (1D and 2D problems).
    velocity : array_like, shape (3, nx, ny, nz)
        Initial velocity.
    dx : float
        Cell size, the same along every axis.
    cs : float
        Isothermal sound speed.
    t_end : float
        End time.
    outputs : sequence of float, optional
        Intermediate output times in [0, t_end]; the solver lands on each exactly.
    scheme : {"muscl", "first"}, optional
        First-order Godunov or MUSCL-Hancock.
    limiter : {"minmod", "moncen"}
        Slope limiter (MUSCL only).
    courant : float
        Courant number in (0, 1].
    gamma : float
        Adiabatic index used inside a step (1 = exactly isothermal; RAMSES's isothermal
        runs use e.g. 1.0001 with a temperature reset, see :mod:`turbsim.compare`).
    ramses_dt : bool
        Apply RAMSES's gravity-free time-step correction.
    threads : int, optional
        OpenMP threads (default: all available).
    dtype : numpy dtype
        float64 (default) or float32 arithmetic.
    density_floor : float
        A density at or below this value stops the run with :class:`SolverError`.
    max_steps : int
        Upper bound on the total number of steps.
    stop : {"exact", "after"}
        ``"exact"``: shorten the step before each output time to land on it. ``"after"``:
        full CFL steps only; each snapshot is taken after the first step that reaches its
        output time and carries the time actually reached (RAMSES's output rule).
    progress : bool or ProgressUnit or (str, float)
        Show a progress bar over simulated time (:func:`turbsim.console.progress`: tqdm on a
        terminal, plain lines when standard error is redirected). ``True`` counts in the
        units of ``t_end``; a :class:`ProgressUnit` or a ``(name, per_time_unit)`` pair
        counts in another unit, e.g. ``("Myr", code time unit in Myr)``.

    Returns
    -------
    EvolveResult

    Raises
    ------
    ValueError
        Invalid input (shape, non-finite values, non-positive density, bad option).
    SolverError
        The run could not continue (density floor reached, non-finite values, step limit).

    Notes
    -----
    Memory: the state and the work buffer (two ``4 nx ny nz`` arrays of ``dtype``), the
    kernels' per-thread buffers (a few planes), and float64 snapshots; the last one is made
    in the memory of the state (float64) or of both buffers (float32, see
    :func:`state_buffers`).
    """
    rho, velocity, times = _validate(rho, velocity, dx, cs, t_end, outputs, scheme,
                                     limiter, courant, gamma, stop)
    dtype, threads = _check_dtype_threads(dtype, threads)
    U, work = state_buffers(rho.shape, dtype)
    to_conserved(rho, velocity, dtype, out=U)
    return _evolve(U, work, dx, cs, t_end, times, scheme, limiter, courant, gamma, ramses_dt,
                   threads, density_floor, max_steps, stop, progress)


def evolve_conserved(U: np.ndarray, work: np.ndarray, *, dx: float, cs: float, t_end: float,
                     outputs=(), scheme: str = "muscl", limiter: str = "minmod",
                     courant: float = 0.8, gamma: float = 1.0, ramses_dt: bool = False,
                     threads: int | None = None, density_floor: float = 0.0,
                     max_steps: int = 10_000_000, stop: str = "exact",
                     progress: bool | ProgressUnit | tuple = False) -> EvolveResult:
    """:func:`evolve` from a conserved state already in the solver's buffers, no copy.

    For large runs: the caller fills ``U`` of :func:`state_buffers` (e.g. with
    :func:`to_conserved` or straight from the initial conditions) and keeps no other copy
    of the initial state alive.

    Parameters
    ----------
    U : ndarray, shape (4, nx, ny, nz), float64 or float32, C-contiguous
        Conserved state ``(rho, rho vx, rho vy, rho vz)`` at time 0; consumed (it is
        advanced in place and the final snapshot may reuse its memory).
    work : ndarray, like ``U``
        The work buffer of :func:`state_buffers`; consumed.
    dx, cs, t_end, outputs, scheme, limiter, courant, gamma, ramses_dt, threads, \
density_floor, max_steps, stop, progress
        As in :func:`evolve`; the arithmetic type is ``U.dtype``.

    Returns
    -------
    EvolveResult
        As :func:`evolve` returns for the same initial state, bit for bit.

    Raises
    ------
    ValueError
        Bad buffers or options, or a state with a non-positive or non-finite density.
    SolverError
        As in :func:`evolve`.
    """
    if (U.ndim != 4 or U.shape[0] != 4 or not U.flags.c_contiguous or work.shape != U.shape
            or work.dtype != U.dtype or not work.flags.c_contiguous):
        raise ValueError("U and work must be C-contiguous (4, nx, ny, nz) arrays of one shape "
                         "and dtype (see state_buffers)")
    times = _validate_options(dx, cs, t_end, outputs, scheme, limiter, courant, gamma, stop)
    _, threads = _check_dtype_threads(U.dtype, threads)
    return _evolve(U, work, dx, cs, t_end, times, scheme, limiter, courant, gamma, ramses_dt,
                   threads, density_floor, max_steps, stop, progress)


def _evolve(U, work, dx, cs, t_end, times, scheme, limiter, courant, gamma, ramses_dt, threads,
            density_floor, max_steps, stop, progress) -> EvolveResult:
    """The stepping loop of :func:`evolve` and :func:`evolve_conserved` (options checked)."""
    initial = U.reshape(4, -1).sum(axis=1, dtype=np.float64)
    if times and times[-1] == t_end:
        times = times[:-1]
    targets = times + [float(t_end)]
    bar, per_unit = _progress_bar(progress, float(t_end))
    snapshots, t, steps, wall, last_dt = [], 0.0, 0, 0.0, 0.0
    try:
        for i_target, target in enumerate(targets):
            while True:
                chunk = _PROGRESS_CHUNK if bar is not None else max_steps - steps
                t0 = _time.perf_counter()
                status, t_new, n, dt, bad = _kernels.run(
                    U, work, float(dx), float(cs), float(gamma), float(courant),
                    SCHEME_CODES[scheme], LIMITER_CODES[limiter], int(bool(ramses_dt)),
                    int(threads), float(density_floor), int(max(chunk, 0)), t, float(target),
                    int(stop == "exact"))
                wall += _time.perf_counter() - t0
                steps += n
                last_dt = dt if n else last_dt
                if bar is not None:
                    bar.update((t_new - t) * per_unit)
                t = t_new
                if status == _kernels.Status.MAX_STEPS and bar is not None and steps < max_steps:
                    continue
                break
            if status != _kernels.Status.OK:
                _raise(status, U, bad, t, steps, density_floor, max_steps)
            if stop == "exact":
                t = float(target)
            if i_target < len(targets) - 1:
                snapshots.append(_snapshot(U, t, steps))
            else:
                snapshots.append(_final_snapshot(U, work, t, steps))
    finally:
        if bar is not None:
            bar.close()
    log.debug("evolve: %d steps to t=%g in %.3f s", steps, t, wall)
    return EvolveResult(snapshots, steps, wall, last_dt, float(initial[0]), initial[1:])


def _progress_bar(progress, t_end):
    """The bar of :func:`evolve` and the factor from solver time to its unit, or ``(None, 1)``."""
    if progress is False or progress is None:
        return None, 1.0
    try:
        name, per_unit = _CALLER_UNITS if progress is True else progress
        per_unit = float(per_unit)
    except (TypeError, ValueError):
        name, per_unit = None, float("nan")
    if not (isinstance(name, str) and np.isfinite(per_unit) and per_unit > 0):
        raise ValueError("progress must be a bool or a (unit name, positive per_time_unit) pair, "
                         f"got {progress!r}")
    bar = console.progress(total=t_end * per_unit, desc="evolve", unit=name, leave=False,
                           fmt="{:.4g}")
    return bar, per_unit


def _raise(status, U, bad, t, steps, density_floor, max_steps):
    Status = _kernels.Status
    if status == Status.BAD_STATE:
        idx = np.unravel_index(int(bad), U.shape[1:]) if bad >= 0 else None
        val = U[0][idx] if idx is not None else float("nan")
        raise SolverError(
            f"invalid state at t={t:.6g} after {steps} steps: cell {tuple(int(i) for i in idx)} "
            f"has density {val!r} (floor {density_floor!r}) or a non-finite velocity; "
            "reduce the Courant number or the Mach number, or use the first-order scheme")
    if status == Status.MAX_STEPS:
        raise SolverError(f"step limit max_steps={max_steps} reached at t={t:.6g}")
    if status == Status.BAD_DT:
        raise SolverError(f"time step became zero or non-finite at t={t:.6g} after {steps} steps")
    if status == Status.NO_MEMORY:
        raise MemoryError("the solver could not allocate its work buffers")
    raise SolverError(f"solver failed with status {status}")


def work_bytes(shape, dtype=np.float64, scheme: str = "muscl", limiter: str = "minmod",
               gamma: float = 1.0, threads: int | None = None) -> int:
    """Bytes of work buffers the kernels allocate for a run, besides the state and work
    buffer of :func:`state_buffers`.

    Parameters
    ----------
    shape : tuple of int
        Grid shape ``(nx, ny, nz)``.
    dtype : numpy dtype
        float64 or float32.
    scheme, limiter, gamma
        As in :func:`evolve` (the buffers depend on the reconstruction and on whether face
        states carry RAMSES's pressure correction).
    threads : int, optional
        Threads asked for (default: all available); the buffers are per thread.

    Returns
    -------
    int
        Bytes, all threads together.
    """
    return int(_kernels.work_bytes(tuple(int(n) for n in shape), np.dtype(dtype),
                                   int(SCHEME_CODES[scheme]), int(LIMITER_CODES[limiter]),
                                   float(gamma), 0 if threads is None else int(threads)))


def max_signal_speed(rho, velocity, cs: float, gamma: float = 1.0) -> float:
    """Largest ``sum_d |v_d| + ndim sqrt(gamma) c_s`` over the cells (the CFL speed)."""
    return _kernels.max_signal_speed(to_conserved(np.asarray(rho), np.asarray(velocity)), cs, gamma)


def openmp_threads() -> int:
    """Threads available to the kernels (1 when built without OpenMP)."""
    return _kernels.max_threads() if _kernels.openmp_available() else 1

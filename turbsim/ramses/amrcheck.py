"""AMR-lite against a RAMSES AMR snapshot, from the initial condition RAMSES started from.

A RAMSES run with ``levelmax > levelmin`` refines its mesh as the gas moves; turbsim's
uniform grid cannot reproduce it. :func:`amr_cross_validate` runs AMR-lite
(:mod:`turbsim.amr`) instead: from the IC (at ``levelmin``, as RAMSES read it) to the
snapshot's time, with the snapshot's levels, RAMSES's refinement parameters, scheme,
wave speed and time-step rule, and compares the two meshes and fields:

* **leaf cells per level**, AMR-lite against RAMSES (relative difference);
* **std ln(rho)** and the **PDF of ln(rho)** on the uniform grid of ``levelmax`` (the L1
  distance of the two histograms, :data:`PDF_BINS` bins over the range of both, each
  summing to 1);
* the **column-density power spectra** along z (``levelmax`` grid, divided by the mean):
  the largest ``|P_amr-lite / P_ramses - 1|`` over ``k = 1 .. N/2``;
* the density **difference/signal** ``||rho_amr-lite - rho_ramses||_1 / ||rho_ramses -
  rho_0||_1`` on the uniform grid of every level (leaves coarser than the level copied,
  finer ones averaged: :meth:`turbsim.ramses.RamsesDataset.to_uniform`); and, as a
  yardstick, that of turbsim's uniform run at ``levelmin`` from the same IC.

The two runs are not expected to agree to round-off (the two codes' steps, regrids and
interpolations are alike, not the same instructions; see ``docs/amr.md``). Agreement is
therefore stated by tolerances (:meth:`AmrCheck.agrees`): leaves of every level within
:data:`LEAF_TOLERANCE` (10 %), difference/signal on every level's grid within
:data:`TOLERANCE` (0.02), PDF L1 within :data:`PDF_TOLERANCE` (0.01), power within
:data:`POWER_TOLERANCE` (0.10). Measured on the shared ``amr`` case (levels 5-7,
``err_grad_d = 0.1``) with the default schedule, AMR-lite's subcycling (``"nsubcycle"``,
as RAMSES's): RAMSES's leaves cell for cell; difference/signal 3e-7-9e-7; PDF L1 0;
power 1.4e-6. With ``"subcycle"`` (one global step, each level flagged on its own
clock): leaves -5 %, +15 %, +9 %; difference/signal 0.066-0.076; PDF L1 0.019; power
0.066 (above the tolerances).

Run parameters
--------------
RAMSES's refinement parameters come from its ``namelist.txt`` in the output folder (or a
namelist file given, e.g. the ``namelist.nml`` :func:`turbsim.ramses.write_ic` wrote),
arguments overriding them: ``levelmin``/``levelmax`` (must be the snapshot's),
``err_grad_d``, ``m_refine`` with ``mass_sph``, ``nexpand``, ``nsubcycle`` (the default
schedule), and the scheme (``scheme``, ``riemann``, ``slope_type``, ``courant_factor``).
What AMR-lite does not implement is refused, naming the parameter
(:class:`UnsupportedParameterError`): other refinement criteria (``err_grad_p``,
``err_grad_u``, ``jeans_refine``, ``r_refine`` regions, ...), other interpolations
(``interpol_var``, ``interpol_type``), a ``floor_d`` other than RAMSES's default, per-level
values that differ between levels, gravity, particles, non-periodic boundaries. Without a
namelist (the shared outputs have none) AMR-lite's own defaults are used, with a warning:
``err_grad_d = 0.1``, ``nexpand = 1``, no mass criterion.

Examples
--------
>>> from turbsim.ramses.amrcheck import amr_cross_validate            # doctest: +SKIP
>>> check = amr_cross_validate("amr/output_00002", "amr/ic_amr.npz", err_grad_d=0.1)  # doctest: +SKIP
>>> check.leaves[6], check.agrees()                                  # doctest: +SKIP
((68109, 66645, 0.0219...), True)
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import solver, spectra
from . import nml
from .crosscheck import Comparison, IcMismatchError, ic_mismatches, scheme_from_namelist, snapshot_facts
from .reader import RamsesDataset
from .reader import open as open_output
from .writer import load_ic

log = logging.getLogger(__name__)

__all__ = ["LEAF_TOLERANCE", "TOLERANCE", "PDF_TOLERANCE", "POWER_TOLERANCE", "PDF_BINS",
           "DEFAULT_SCHEDULE", "UnsupportedParameterError", "AmrParameters", "AmrCheck", "AmrMaps",
           "schedules", "is_amr", "amr_parameters", "amr_cross_validate", "plot_amr_check"]

LEAF_TOLERANCE = 0.10
"""Largest ``|leaves_amr-lite / leaves_ramses - 1|`` of any level still reported as agreement
(the issue's 10 %; measured on the shared AMR run with the ``"nsubcycle"`` schedule: 0 at
levels 5, 6, 7, the same cells; ``"subcycle"``: -5.3 %, +15.0 %, +9.0 %)."""
TOLERANCE = 0.02
"""Largest density difference/signal on the uniform grid of any level still reported as
agreement (measured: 3e-7, 9e-7, 9e-7 with ``"nsubcycle"``, 0.066-0.076 with
``"subcycle"``; the uniform ``levelmin`` run from the same IC: 0.010 at levelmin)."""
PDF_TOLERANCE = 0.01
"""Largest L1 distance of the ln(rho) histograms at levelmax (measured: 0 with
``"nsubcycle"``, 0.019 with ``"subcycle"``)."""
POWER_TOLERANCE = 0.10
"""Largest ``|P_amr-lite(k) / P_ramses(k) - 1|`` of the column-density power, k <= N/2
(measured: 1.4e-6 with ``"nsubcycle"``, 0.066 with ``"subcycle"``)."""
PDF_BINS = 40
"""Bins of the ln(rho) histograms."""
DEFAULT_SCHEDULE = "nsubcycle"
"""AMR-lite's schedule closest to RAMSES's: its subcycling (``nsubcycle = 2``, RAMSES's
default), each level stepping twice per step of the level below."""
_FLOOR_D = 1e-10   # RAMSES's default floor_d, AMR-lite's FLOOR_D
_UNSET = -1.0      # RAMSES's default of the optional criteria (err_grad_*, m_refine, ...)


class UnsupportedParameterError(ValueError):
    """A RAMSES parameter AMR-lite does not implement (the message names it)."""


def schedules() -> tuple[str, ...]:
    """The schedules :func:`turbsim.amr.evolve` accepts: :data:`turbsim.config.SCHEDULES`
    (those of ``SimConfig.regrid_schedule``)."""
    from ..config import SCHEDULES
    return tuple(SCHEDULES)


def is_amr(ds: RamsesDataset) -> bool:
    """Whether a snapshot is an AMR run (``levelmax > levelmin`` in its info file)."""
    return ds.levelmax > ds.levelmin


@dataclass(frozen=True)
class AmrParameters:
    """AMR-lite's parameters for a RAMSES AMR run.

    Attributes
    ----------
    levelmin, levelmax : int
        Levels (``2^L`` cells per side of the box).
    err_grad_d : float or None
        Density-gradient threshold (dimensionless); None: criterion off.
    m_refine : float or None
        Mass criterion in mean masses of a ``levelmin`` cell (AMR-lite's unit: RAMSES's
        ``m_refine * mass_sph`` converted); None: off.
    nexpand : int
        Buffer cells grown around the flags.
    scheme, limiter : str
        Spatial scheme and slope limiter.
    courant : float
        Courant number.
    schedule : str
        AMR-lite's regrid schedule (:func:`schedules`).
    sources : dict
        ``{parameter: where its value came from}``: a namelist file, ``"argument"`` or
        ``"default"``.
    """

    levelmin: int
    levelmax: int
    err_grad_d: float | None
    m_refine: float | None
    nexpand: int
    scheme: str
    limiter: str
    courant: float
    schedule: str
    sources: dict = field(default_factory=dict)

    @property
    def refine(self) -> str:
        """AMR-lite's ``refine`` criterion: ``"gradient"``, ``"mass"`` or ``"gradient+mass"``."""
        return "+".join(name for name, v in (("gradient", self.err_grad_d), ("mass", self.m_refine))
                        if v is not None)


def _refuse(name: str, value, why: str, source: str):
    raise UnsupportedParameterError(f"{source}: {name} = {value!r}: {why}")


def _one_value(name: str, values: dict, source: str):
    """The value a per-level parameter has on every level, or a refusal naming it."""
    distinct = sorted(set(values.values()), key=repr)
    if len(distinct) > 1:
        _refuse(name, values, "AMR-lite uses one value on every level", source)
    return distinct[0] if distinct else None


def _namelist_values(blocks: dict, levelmin: int, levelmax: int, box_mass: float, source: str) -> dict:
    """AMR-lite's parameters from a parsed namelist; refuses what AMR-lite cannot do."""
    run = blocks.get("run_params", {})
    amr = blocks.get("amr_params", {})
    ref = blocks.get("refine_params", {})
    hyd = blocks.get("hydro_params", {})
    for key, want in (("levelmin", levelmin), ("levelmax", levelmax)):
        if key in amr and amr[key] != want:
            raise ValueError(f"{source}: {key} = {amr[key]!r}, but the snapshot's info file says {want}")
    for key, bad in (("poisson", True), ("pic", True), ("cosmo", True), ("hydro", False)):
        if run.get(key, not bad) is bad:
            _refuse(key, bad, "AMR-lite is a gravity-free, particle-free, non-cosmological hydro "
                    "solver", source)
    if blocks.get("boundary_params", {}).get("nboundary", 0):
        _refuse("nboundary", blocks["boundary_params"]["nboundary"], "AMR-lite's box is periodic", source)
    if hyd.get("difmag", 0.0) != 0.0:
        _refuse("difmag", hyd["difmag"], "AMR-lite has no artificial diffusion", source)
    coarse = (levelmin, max(levelmin, levelmax - 1))   # the levels whose cells may refine
    for key, default in (("interpol_var", 0), ("interpol_type", 1)):
        if ref.get(key, default) != default:
            _refuse(key, ref[key], f"AMR-lite prolongs as RAMSES's {key} = {default} only", source)
    if not math.isclose(float(ref.get("floor_d", _FLOOR_D)), _FLOOR_D, rel_tol=1e-9):
        _refuse("floor_d", ref["floor_d"], f"AMR-lite's gradient criterion uses RAMSES's default "
                f"{_FLOOR_D:g}", source)
    for key, value in sorted(ref.items()):
        if key.startswith("err_grad_") and key != "err_grad_d" and float(value) >= 0:
            _refuse(key, value, "AMR-lite refines by the density gradient (err_grad_d) and mass "
                    "(m_refine) only", source)
    for key in ("jeans_refine", "r_refine"):
        on = {L: v for L, v in nml.per_level(ref.get(key), *coarse, _UNSET).items() if v > _UNSET}
        if on:
            _refuse(key, on, "AMR-lite refines by the density gradient (err_grad_d) and mass "
                    "(m_refine) only", source)
    for key, default in (("mass_cut_refine", _UNSET), ("ivar_refine", 0)):
        if float(ref.get(key, default)) > default:
            _refuse(key, ref[key], "AMR-lite refines by the density gradient (err_grad_d) and mass "
                    "(m_refine) only", source)
    found = {}
    grad = ref.get("err_grad_d", _UNSET)
    found["err_grad_d"] = float(grad) if float(grad) >= 0 else None
    m_ref = nml.per_level(ref.get("m_refine"), *coarse, _UNSET)
    m_on = {L: v for L, v in m_ref.items() if v > _UNSET}
    if m_on:
        value = _one_value("m_refine", m_ref, source)
        mass_sph = float(ref.get("mass_sph", 0.0))
        if not mass_sph > 0:
            _refuse("mass_sph", ref.get("mass_sph", 0.0), "the mass criterion needs its unit "
                    "mass_sph > 0 (RAMSES's default 0 refines every cell)", source)
        found["m_refine"] = float(value) * mass_sph * 8.0**levelmin / box_mass
    else:
        found["m_refine"] = None
    found["nexpand"] = int(_one_value("nexpand", nml.per_level(amr.get("nexpand"), *coarse, 1), source))
    sub = _one_value("nsubcycle", nml.per_level(run.get("nsubcycle"), *coarse, 2), source)
    if sub not in (1, 2):
        _refuse("nsubcycle", run["nsubcycle"], f"AMR-lite follows nsubcycle = 2 (schedule "
                f"'{DEFAULT_SCHEDULE}') or 1 (schedule 'global')", source)
    found["schedule"] = DEFAULT_SCHEDULE if sub == 2 else "global"
    flat = {k: hyd[k] for k in ("slope_type", "courant_factor", "scheme", "riemann") if k in hyd}
    try:
        found["scheme"], found["limiter"], found["courant"] = scheme_from_namelist(flat)
    except ValueError as exc:
        raise UnsupportedParameterError(f"{source}: {exc}") from None
    return found


def amr_parameters(levelmin: int, levelmax: int, namelist=None, *, err_grad_d=None, m_refine=None,
                   nexpand=None, scheme=None, limiter=None, courant=None, schedule=None,
                   box_mass: float = 1.0) -> AmrParameters:
    """AMR-lite's parameters for a RAMSES AMR run: namelist values, arguments overriding.

    Parameters
    ----------
    levelmin, levelmax : int
        The snapshot's levels (from its info file); the namelist must agree.
    namelist : str, os.PathLike or dict, optional
        A RAMSES namelist file, or its blocks as :func:`turbsim.ramses.nml.parse` returns
        them. None: AMR-lite's defaults for what no argument gives (logged as a warning).
    err_grad_d : float, optional
        Density-gradient threshold, >= 0 (dimensionless).
    m_refine : float, optional
        Mass criterion in mean masses of a ``levelmin`` cell, > 0.
    nexpand : int, optional
        Buffer cells, >= 0.
    scheme, limiter, courant : optional
        As :func:`turbsim.ramses.crosscheck.cross_validate`.
    schedule : str, optional
        AMR-lite's schedule (:func:`schedules`); default from ``nsubcycle`` (2, RAMSES's
        default: :data:`DEFAULT_SCHEDULE`, AMR-lite's subcycling; 1: ``"global"``, one
        step for every level).
    box_mass : float
        Total mass of the run [code mass], to convert RAMSES's ``m_refine * mass_sph``.

    Returns
    -------
    AmrParameters

    Raises
    ------
    UnsupportedParameterError
        A namelist parameter (or levels) AMR-lite does not implement; the message names it.
    ValueError
        Levels that contradict the snapshot, a bad argument, no refinement criterion.
    nml.NamelistError
        An unreadable namelist file.
    """
    sources: dict = {}
    values: dict = {}
    source = "arguments"
    if namelist is not None:
        if isinstance(namelist, dict):
            blocks, source = namelist, "namelist"
        else:
            blocks, source = nml.read(namelist), str(namelist)
        values = _namelist_values(blocks, levelmin, levelmax, box_mass, source)
        sources = {k: source for k in values}
    if not 3 <= levelmin <= levelmax <= 10:
        raise UnsupportedParameterError(
            f"levelmin = {levelmin}, levelmax = {levelmax}: AMR-lite needs 3 <= levelmin <= levelmax <= 10")
    given = dict(err_grad_d=err_grad_d, m_refine=m_refine, nexpand=nexpand, scheme=scheme,
                 limiter=limiter, courant=courant, schedule=schedule)
    for key, value in given.items():
        if value is not None:
            values[key], sources[key] = value, "argument"
    if namelist is None:
        from ..config import SimConfig
        defaults = {"nexpand": SimConfig.nexpand, "schedule": DEFAULT_SCHEDULE}
        if err_grad_d is None and m_refine is None:
            defaults["err_grad_d"] = SimConfig.err_grad_d
        defaults = {k: v for k, v in defaults.items() if k not in values}
        if "err_grad_d" in defaults or "nexpand" in defaults:
            log.warning("no RAMSES namelist: AMR-lite's defaults %s are used (give the run's "
                        "namelist, or its refinement parameters)",
                        ", ".join(f"{k} = {v}" for k, v in defaults.items() if k != "schedule"))
        for key, value in defaults.items():
            values[key], sources[key] = value, "default"
    sch, lim, cour = scheme_from_namelist({}, values.get("scheme"), values.get("limiter"), values.get("courant"))
    for key, value in (("scheme", sch), ("limiter", lim), ("courant", cour)):
        sources.setdefault(key, "default")
        values[key] = value
    allowed = schedules()
    if values.get("schedule") not in allowed:
        raise ValueError(f"schedule = {values.get('schedule')!r}: AMR-lite's schedules are "
                         f"{', '.join(allowed)}")
    grad, mass = values.get("err_grad_d"), values.get("m_refine")
    if grad is not None and not grad >= 0:
        raise ValueError(f"err_grad_d = {grad!r} must be >= 0")
    if mass is not None and not mass > 0:
        raise ValueError(f"m_refine = {mass!r} must be > 0 (mean levelmin-cell masses)")
    if grad is None and mass is None:
        raise UnsupportedParameterError(
            f"{source}: no refinement criterion AMR-lite implements (err_grad_d, m_refine) is set")
    if int(values["nexpand"]) < 0:
        raise ValueError(f"nexpand = {values['nexpand']!r} must be >= 0")
    return AmrParameters(levelmin=int(levelmin), levelmax=int(levelmax),
                         err_grad_d=None if grad is None else float(grad),
                         m_refine=None if mass is None else float(mass), nexpand=int(values["nexpand"]),
                         scheme=values["scheme"], limiter=values["limiter"], courant=float(values["courant"]),
                         schedule=values["schedule"], sources=sources)


@dataclass(frozen=True)
class AmrCheck(Comparison):
    """Result of :func:`amr_cross_validate`: the fields of
    :class:`~turbsim.ramses.crosscheck.Comparison` (PDFs and spectra at levelmax, k = 1 .. N/2)
    and these.

    Attributes
    ----------
    parameters : AmrParameters
        What AMR-lite was run with.
    steps, regrids : int
        AMR-lite's steps and regrids.
    seconds : float
        Wall time of the AMR-lite run [s].
    leaves : dict
        ``{level: (amr_lite, ramses, amr_lite / ramses - 1)}``; the relative difference is
        0 when both are 0 and infinite when only RAMSES has none.
    diff_over_signal_per_level : dict
        ``{level: ||rho_a - rho_r||_1 / ||rho_r - rho_0||_1}`` on the level's uniform grid
        (0 for equal fields at t = 0, infinite for unequal ones).
    uniform_diff_over_signal : float or None
        The same at ``levelmin`` for turbsim's uniform ``levelmin`` run from the IC (None
        when the IC is not on the levelmin grid).
    std_lnrho : tuple of float
        ``(amr_lite, ramses)`` standard deviation of ln(rho) at levelmax.
    pdf_l1 : float
        L1 distance of the ln(rho / rho_0) histograms at levelmax (each summing to 1).
    power_max_dev : float
        ``max_k |P_amr-lite / P_ramses - 1|`` over those k (0 where both are 0).
    ic_mismatches : list of str
        Why the IC cannot belong to the snapshot (non-empty only with ``force``).
    """

    parameters: AmrParameters
    steps: int
    regrids: int
    seconds: float
    leaves: dict
    diff_over_signal_per_level: dict
    uniform_diff_over_signal: float | None
    std_lnrho: tuple
    pdf_l1: float
    power_max_dev: float = 0.0
    ic_mismatches: list = field(default_factory=list)

    amr = True
    """Always true (a :class:`~turbsim.ramses.crosscheck.CrossCheck` has it false for uniform runs)."""

    @property
    def diff_over_signal(self) -> float:
        """The largest difference/signal over the levels' grids."""
        return max(self.diff_over_signal_per_level.values())

    @property
    def power_ratio(self) -> list:
        """``P_amr-lite / P_ramses`` for ``k = 1 .. N/2`` (1 where both are 0)."""
        return _ratio(np.array(self.power_turbsim), np.array(self.power_ramses)).tolist()

    def failures(self, leaf_tolerance: float = LEAF_TOLERANCE, tolerance: float = TOLERANCE,
                 pdf_tolerance: float = PDF_TOLERANCE, power_tolerance: float = POWER_TOLERANCE) -> list[str]:
        """What exceeds its tolerance, one sentence each (empty: agreement)."""
        out = [f"level {L}: {a} leaves against RAMSES's {b} ({d:+.1%}, tolerance {leaf_tolerance:.0%})"
               for L, (a, b, d) in self.leaves.items() if not abs(d) <= leaf_tolerance]
        out += [f"level {L}: difference/signal {v:.3g} > {tolerance:g}"
                for L, v in self.diff_over_signal_per_level.items() if not v <= tolerance]
        if not self.pdf_l1 <= pdf_tolerance:
            out.append(f"ln(rho) PDF L1 distance {self.pdf_l1:.3g} > {pdf_tolerance:g}")
        if not self.power_max_dev <= power_tolerance:
            out.append(f"column-density power deviation {self.power_max_dev:.3g} > {power_tolerance:g}")
        return out

    def agrees(self, leaf_tolerance: float = LEAF_TOLERANCE, tolerance: float = TOLERANCE,
               pdf_tolerance: float = PDF_TOLERANCE, power_tolerance: float = POWER_TOLERANCE) -> bool:
        """Whether every figure is within its tolerance (see :meth:`failures`)."""
        return not self.failures(leaf_tolerance, tolerance, pdf_tolerance, power_tolerance)

    def to_dict(self) -> dict:
        """JSON-friendly dict (level keys as strings, infinities as ``"inf"``)."""
        d = asdict(self)
        d["parameters"] = {**asdict(self.parameters), "refine": self.parameters.refine}
        d["leaves"] = {str(L): [a, b, _json_float(r)] for L, (a, b, r) in self.leaves.items()}
        d["diff_over_signal_per_level"] = {str(L): _json_float(v)
                                           for L, v in self.diff_over_signal_per_level.items()}
        d["per_level"] = [{"level": L, "leaves_turbsim": a, "leaves_ramses": b,
                           "leaves_rel_diff": _json_float(r),
                           "diff_over_signal": _json_float(self.diff_over_signal_per_level[L])}
                          for L, (a, b, r) in self.leaves.items()]
        d.update(amr=True, diff_over_signal=_json_float(self.diff_over_signal),
                 power_max_dev=_json_float(self.power_max_dev), steps=self.steps,
                 scheme=self.parameters.scheme, limiter=self.parameters.limiter,
                 courant=self.parameters.courant, schedule=self.parameters.schedule)
        return d


class AmrMaps(NamedTuple):
    """Maps along z on the ``levelmax`` grid, returned with :func:`amr_cross_validate`.

    Attributes
    ----------
    sigma_ramses, sigma_turbsim : numpy.ndarray
        ``(N, N)`` column density over its mean, indexed ``[ix, iy]``.
    level_ramses, level_turbsim : numpy.ndarray
        ``(N, N)`` finest leaf level along each line of sight.
    """

    sigma_ramses: np.ndarray
    sigma_turbsim: np.ndarray
    level_ramses: np.ndarray
    level_turbsim: np.ndarray


def _json_float(v: float):
    return v if math.isfinite(v) else ("inf" if v > 0 else "nan")


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b``, 1 where both are 0 and infinite where only ``b`` is."""
    out = np.ones_like(a, dtype=np.float64)
    nz = b != 0
    out[nz] = a[nz] / b[nz]
    out[~nz & (a != 0)] = math.inf
    return out


def _diff_over_signal(a: np.ndarray, b: np.ndarray, rho0: float) -> float:
    diff, signal = float(np.abs(a - b).sum()), float(np.abs(b - rho0).sum())
    return diff / signal if signal > 0 else (0.0 if diff == 0 else math.inf)


def _rel(a: int, b: int) -> float:
    return a / b - 1 if b else (0.0 if a == 0 else math.inf)


def _level_map_ramses(ds: RamsesDataset, level: int) -> np.ndarray:
    """Finest leaf level along z of a RAMSES snapshot, on the grid of ``level``."""
    best = np.zeros((2**level,) * 2, np.int16)
    for L, cells in ds.levels.items():
        n = ds.nx * 2**L
        has = np.zeros((n, n), bool)
        has[cells.index[0], cells.index[1]] = True
        r = 2 ** (level - L)
        best = np.maximum(best, np.where(np.repeat(np.repeat(has, r, 0), r, 1), L, 0))
    return best


def _level_map_mesh(mesh, level: int) -> np.ndarray:
    """Finest leaf level along z of an AMR-lite mesh, on the grid of ``level``."""
    from ..amr import LEAF
    best = np.zeros((2**level,) * 2, np.int16)
    for L in mesh.levels:
        has = (mesh.kind[L] == LEAF).any(axis=2)
        r = 2 ** (level - L)
        best = np.maximum(best, np.where(np.repeat(np.repeat(has, r, 0), r, 1), L, 0))
    return best


def amr_cross_validate(output, ic, *, namelist=None, err_grad_d=None, m_refine=None, nexpand=None,
                       scheme=None, limiter=None, courant=None, schedule=None, threads=None,
                       force=False, return_maps=False):
    """Run AMR-lite from a RAMSES initial condition to a RAMSES AMR snapshot and compare.

    Parameters
    ----------
    output : str, os.PathLike or RamsesDataset
        RAMSES ``output_NNNNN`` folder of an AMR run (``levelmax > levelmin``), or the
        snapshot already read.
    ic : str or os.PathLike
        The ``.npz`` initial condition RAMSES started from (see :func:`load_ic`).
    namelist : str or os.PathLike, optional
        The run's RAMSES namelist (default ``namelist.txt`` in the output folder, when
        there is one; see :func:`amr_parameters`).
    err_grad_d, m_refine, nexpand, scheme, limiter, courant, schedule : optional
        Override the namelist (see :func:`amr_parameters`).
    threads : int, optional
        Solver threads.
    force : bool
        Compare even when the IC cannot belong to the snapshot (the reasons are logged
        and kept in :attr:`AmrCheck.ic_mismatches`).
    return_maps : bool
        Also return the maps of the figure (:class:`AmrMaps`).

    Returns
    -------
    AmrCheck, or (AmrCheck, AmrMaps)

    Raises
    ------
    IcMismatchError
        The IC cannot be the one the snapshot started from, unless ``force``.
    UnsupportedParameterError
        A RAMSES parameter AMR-lite does not implement (named).
    RamsesFormatError, ValueError
        An unreadable snapshot, IC or namelist, a uniform snapshot, a bad argument.
    """
    from ..amr import Mesh, evolve, to_uniform

    ds = output if isinstance(output, RamsesDataset) else open_output(output)
    if not is_amr(ds):
        raise ValueError(f"{ds.path} is a uniform run (levelmin = levelmax = {ds.levelmin}); "
                         "compare it with turbsim.ramses.crosscheck.cross_validate")
    if namelist is None and (ds.path / "namelist.txt").is_file():
        namelist = ds.path / "namelist.txt"
    lmin, lmax = ds.levelmin, ds.levelmax
    params = amr_parameters(lmin, lmax, namelist, err_grad_d=err_grad_d, m_refine=m_refine,
                            nexpand=nexpand, scheme=scheme, limiter=limiter, courant=courant,
                            schedule=schedule, box_mass=ds.mass())
    init = load_ic(ic)
    mismatches = ic_mismatches(ds, init)
    if mismatches and not force:
        raise IcMismatchError(f"{ic} cannot be the initial condition of {ds.path}: " + "; ".join(mismatches))
    for m in mismatches:
        log.warning("%s cannot be the initial condition of %s: %s (compared anyway)", ic, ds.path, m)
    log.info("AMR-lite from %s to t = %g, levels %d..%d, %s, err_grad_d %s, m_refine %s, nexpand %d, "
             "schedule %s", ic, ds.time, lmin, lmax, params.scheme, params.err_grad_d, params.m_refine,
             params.nexpand, params.schedule)
    t0 = time.perf_counter()
    mesh = Mesh.from_uniform(init.density, init.velocity, lmin, lmax)
    run = evolve(mesh, ds.time, cs=init.cs, scheme=params.scheme, limiter=params.limiter,
                 courant=params.courant, gamma=ds.gamma, ramses_dt=True, refine=params.refine,
                 err_grad_d=params.err_grad_d if params.err_grad_d is not None else 0.0,
                 m_refine=params.m_refine or 0.0, nexpand=params.nexpand, schedule=params.schedule,
                 threads=threads)
    seconds = time.perf_counter() - t0
    rho0 = float(init.density.mean())
    ours, theirs = mesh.leaf_counts(), ds.leaf_counts()
    leaves = {L: (int(ours.get(L, 0)), int(theirs.get(L, 0)), _rel(ours.get(L, 0), theirs.get(L, 0)))
              for L in range(lmin, lmax + 1)}
    theirs_rho = {L: ds.to_uniform(L).density for L in range(lmin, lmax + 1)}
    ours_rho = {L: to_uniform(mesh, L).density for L in range(lmin, lmax + 1)}
    diff = {L: _diff_over_signal(ours_rho[L], theirs_rho[L], rho0) for L in range(lmin, lmax + 1)}
    uniform = None
    if init.density.shape[0] == 2**lmin:
        res = solver.evolve(init.density, init.velocity, dx=init.dx, cs=init.cs, t_end=ds.time,
                            scheme=params.scheme, limiter=params.limiter, courant=params.courant,
                            gamma=ds.gamma, ramses_dt=True, threads=threads)
        uniform = _diff_over_signal(res.rho, theirs_rho[lmin], rho0)
    rr, tt = theirs_rho[lmax], ours_rho[lmax]
    lo, hi = min(rr.min(), tt.min()) / rho0, max(rr.max(), tt.max()) / rho0
    if not hi > lo:   # a uniform density (t = 0): a bin around it
        lo, hi = lo * np.exp(-1e-3), hi * np.exp(1e-3)
    edges = np.linspace(np.log(lo), np.log(hi), PDF_BINS + 1)
    pr = np.histogram(np.log(rr / rho0), edges)[0] / rr.size
    pt = np.histogram(np.log(tt / rho0), edges)[0] / tt.size
    width = np.diff(edges)
    sr, st = rr.sum(axis=2), tt.sum(axis=2)
    sr, st = sr / sr.mean(), st / st.mean()
    n = rr.shape[0]
    k, p_r = spectra.power_spectrum(sr)
    _, p_t = spectra.power_spectrum(st)
    sl = slice(1, n // 2 + 1)
    ratio = _ratio(p_t[sl], p_r[sl])
    check = AmrCheck(
        **snapshot_facts(ds, init),
        parameters=params, steps=run.steps,
        regrids=run.regrids, seconds=seconds, leaves=leaves, diff_over_signal_per_level=diff,
        uniform_diff_over_signal=uniform,
        std_lnrho=(float(np.log(tt).std()), float(np.log(rr).std())),
        pdf_l1=float(np.abs(pr - pt).sum()), pdf_edges=edges.tolist(),
        pdf_ramses=(pr / width).tolist(), pdf_turbsim=(pt / width).tolist(),
        k=k[sl].tolist(), power_ramses=p_r[sl].tolist(), power_turbsim=p_t[sl].tolist(),
        power_max_dev=float(np.abs(ratio - 1).max()) if ratio.size else 0.0,
        ic_mismatches=mismatches)
    if return_maps:
        return check, AmrMaps(sr, st, _level_map_ramses(ds, lmax), _level_map_mesh(mesh, lmax))
    return check


def plot_amr_check(check: AmrCheck, maps: AmrMaps, path):
    """Write the AMR comparison figure as PNG, atomically.

    Top row: the column density along z (over its mean) of RAMSES and of AMR-lite on the
    ``levelmax`` grid and their difference (axes in pc), the ln(rho) PDFs. Bottom row: the
    finest leaf level along each line of sight, RAMSES and AMR-lite; leaves per level; the
    column-density power spectra.

    Parameters
    ----------
    check : AmrCheck
        The result of :func:`amr_cross_validate`.
    maps : AmrMaps
        The maps returned with it.
    path : str or os.PathLike
        Output PNG file.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..figures import plot_map, save_figure

    fig = Figure(figsize=(4.6 * 4, 4.2 * 2), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots(2, 4)
    lmin, lmax = check.levels
    where = dict(n=check.n, axis=2, time_myr=check.time_myr)
    vmin = min(maps.sigma_ramses.min(), maps.sigma_turbsim.min())
    vmax = max(maps.sigma_ramses.max(), maps.sigma_turbsim.max())
    for a, img, who in ((ax[0, 0], maps.sigma_ramses, "RAMSES"), (ax[0, 1], maps.sigma_turbsim, "AMR-lite")):
        plot_map(a, img, check.box_pc, prefix=who, vmin=vmin, vmax=vmax,
                 label=r"$\Sigma / \langle\Sigma\rangle$", **where)
    d = maps.sigma_turbsim - maps.sigma_ramses
    lim = float(np.abs(d).max()) or 1.0
    plot_map(ax[0, 2], d, check.box_pc, cmap="RdBu_r", vmin=-lim, vmax=lim,
             label=r"$\Delta\,\Sigma / \langle\Sigma\rangle$", axis=2, prefix="AMR-lite - RAMSES")
    for a, img, who in ((ax[1, 0], maps.level_ramses, "RAMSES"), (ax[1, 1], maps.level_turbsim, "AMR-lite")):
        im = plot_map(a, img.astype(float), check.box_pc, prefix=f"{who}: finest leaf level",
                      cmap="viridis", vmin=lmin - 0.5, vmax=lmax + 0.5, axis=2, colorbar=False)
        fig.colorbar(im, ax=a, ticks=range(lmin, lmax + 1), label="level")
    centres = 0.5 * (np.array(check.pdf_edges[1:]) + np.array(check.pdf_edges[:-1]))
    for pdf, style, who in ((check.pdf_ramses, "k-", "RAMSES"), (check.pdf_turbsim, "r--", "AMR-lite")):
        pdf = np.array(pdf)
        ax[0, 3].semilogy(centres, np.where(pdf > 0, pdf, np.nan), style, label=who)
    ax[0, 3].set_xlabel(r"$\ln(\rho/\rho_0)$ at level %d" % lmax)
    ax[0, 3].set_title(f"density PDF (L1 {check.pdf_l1:.3f})")
    ax[0, 3].legend()
    levels = list(check.leaves)
    x = np.arange(len(levels))
    ax[1, 2].bar(x - 0.2, [check.leaves[L][1] for L in levels], 0.4, color="k", label="RAMSES")
    ax[1, 2].bar(x + 0.2, [check.leaves[L][0] for L in levels], 0.4, color="r", label="AMR-lite")
    ax[1, 2].set_xticks(x, [str(L) for L in levels])
    ax[1, 2].set_xlabel("level")
    ax[1, 2].set_title("leaf cells per level")
    ax[1, 2].legend()
    ax[1, 3].plot(check.k, check.power_ramses, "k-", label="RAMSES")
    ax[1, 3].plot(check.k, check.power_turbsim, "r--", label="AMR-lite")
    ax[1, 3].set_xscale("log")
    if max(check.power_ramses + check.power_turbsim, default=0.0) > 0:   # none at t = 0
        ax[1, 3].set_yscale("log")
    ax[1, 3].set_xlabel(r"k [2$\pi$/L]")
    ax[1, 3].set_title(f"power of $\\Sigma$ (deviation {check.power_max_dev:.3f})")
    ax[1, 3].legend()
    out = Path(check.output)
    p = check.parameters
    fig.suptitle(f"{out.parent.name}/{out.name}: t = {check.time_myr:.4g} Myr, levels {lmin}-{lmax}, "
                 f"AMR-lite schedule {p.schedule}, {check.steps} steps: difference/signal at levels "
                 + ", ".join(f"{L}: {v:.2g}" for L, v in check.diff_over_signal_per_level.items()))
    return save_figure(fig, path)

"""Cross-validation of turbsim's solver against a RAMSES snapshot.

turbsim's solver is started from the initial condition RAMSES read and evolved to the
snapshot's time with the scheme RAMSES used: local Lax-Friedrichs fluxes, first order or
MUSCL-Hancock with the same limiter and Courant number, RAMSES's wave speed
``sqrt(gamma) c_s`` (its isothermal gas is an adiabatic step with index ``gamma``, 1.0001 in
the shared runs, followed by a temperature reset) and RAMSES's time-step rule. RAMSES
writes a snapshot at the first coarse step at or after the requested time, so the target
time is the snapshot's own time, read from its info file.

The density difference is measured against the signal, i.e. the density fluctuations:
``||rho_turbsim - rho_ramses||_1 / ||rho_ramses - rho_0||_1`` with ``rho_0`` the mean
initial density. At 0.5 Myr the fluctuations are only a few percent of ``rho_0``, so a
plain relative difference would say little.

Scheme parameters are taken from ``namelist.txt`` in the output folder when RAMSES left
one there (``slope_type``, ``courant_factor``, ``scheme``, ``riemann``); arguments override.

Before anything is evolved, the initial condition is checked against the snapshot
(:func:`ic_mismatches`): the grid (IC cells per side = the base grid ``nx 2**levelmin``,
``boxlen`` = 1), the code units, the total mass, the isothermal sound speed, the time the IC
file records for this output, and, when the run's t = 0 snapshot is there, the initial
density and velocity themselves. RAMSES records no seed, so a different seed is caught by
the t = 0 snapshot when there is one, otherwise only by the result: a difference/signal
above :data:`TOLERANCE` means the two runs disagree.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import solver, spectra
from ..units import MYR, PC
from . import nml
from .format import RamsesFormatError, parse_info
from .reader import RamsesDataset
from .reader import open as open_output
from .writer import InitialConditions, load_ic

log = logging.getLogger(__name__)

SLOPE_TYPES = {0: ("first", "minmod"), 1: ("muscl", "minmod"), 2: ("muscl", "moncen")}
TOLERANCE = 1e-3
"""Largest difference/signal of a run that reproduces RAMSES (measured: below 1e-9 for the
shared uniform runs; a wrong limiter gives > 1e-2, another run's IC about 1)."""
_SAME = 1e-6
"""Relative tolerance of the IC checks: float32 rounding of the IC (6e-8) passes, a
different run does not."""


class IcMismatchError(ValueError):
    """The initial condition given cannot be the one the RAMSES snapshot started from."""


@dataclass(frozen=True)
class Comparison:
    """What every comparison of turbsim with a RAMSES snapshot reports, uniform or AMR.

    Attributes
    ----------
    output : str
        The RAMSES output folder.
    time : float
        Snapshot time [code units of the run].
    time_myr : float
        Snapshot time [Myr].
    box_pc : float
        Box side [pc].
    n : float or None
        Spectral index recorded in the IC file, if any.
    levels : tuple of int
        ``(levelmin, levelmax)`` of the snapshot; ``levelmax > levelmin`` is an AMR run.
    gamma : float
        Adiabatic index of the wave speed (the snapshot's).
    pdf_edges, pdf_ramses, pdf_turbsim : list of float
        Histograms (probability density) of ``ln(rho / rho_0)``.
    k, power_ramses, power_turbsim : list of float
        Per-mode power spectra of the column density along z, normalised by the mean
        [k in 2 pi / box].
    """

    output: str
    time: float
    time_myr: float
    box_pc: float
    n: float | None
    levels: tuple
    gamma: float
    pdf_edges: list = field(repr=False)
    pdf_ramses: list = field(repr=False)
    pdf_turbsim: list = field(repr=False)
    k: list = field(repr=False)
    power_ramses: list = field(repr=False)
    power_turbsim: list = field(repr=False)


def snapshot_facts(ds: RamsesDataset, init: InitialConditions) -> dict:
    """The :class:`Comparison` fields read from the snapshot and its IC: output, time (code
    units and Myr), box [pc], n (the IC's, if it records one), levels and gamma."""
    n = init.meta.get("n")
    return dict(output=str(ds.path), time=float(ds.time), time_myr=float(ds.time * ds.units["time"] / MYR),
                box_pc=float(ds.boxlen * ds.units["length"] / PC),
                n=float(n) if n is not None and np.ndim(n) == 0 else None,
                levels=(ds.levelmin, ds.levelmax), gamma=float(ds.gamma))


@dataclass(frozen=True)
class CrossCheck(Comparison):
    """Result of :func:`cross_validate`: the fields of :class:`Comparison` and these.

    Attributes
    ----------
    scheme, limiter : str
        Scheme used for turbsim.
    courant : float
        Courant number.
    steps : int
        turbsim's time steps.
    diff_over_signal : float
        ``||rho_t - rho_r||_1 / ||rho_r - rho_0||_1``; at t = 0 (no signal) 0 when the
        fields are equal, else infinity.
    max_abs_diff : float
        ``max |rho_t - rho_r|`` [code density].
    max_rel_diff : float
        ``max |rho_t - rho_r| / rho_r``.
    signal : float
        ``mean |rho_r - rho_0|`` [code density].
    cells : int
        Grid cells per side of the comparison (the IC's).
    ic_mismatches : list of str
        Why the IC cannot belong to the snapshot (see :func:`ic_mismatches`); non-empty
        only when compared anyway (``force=True``).
    """

    scheme: str
    limiter: str
    courant: float
    steps: int
    diff_over_signal: float
    max_abs_diff: float
    max_rel_diff: float
    signal: float
    cells: int
    ic_mismatches: list = field(default_factory=list)

    @property
    def amr(self) -> bool:
        """Whether the snapshot is an AMR run (``levelmax > levelmin``)."""
        return self.levels[1] > self.levels[0]

    def agrees(self, tolerance: float = TOLERANCE) -> bool:
        """Whether turbsim reproduces the snapshot: ``diff_over_signal <= tolerance``."""
        return self.diff_over_signal <= tolerance

    def to_dict(self) -> dict:
        """JSON-friendly dict."""
        return asdict(self)


def read_namelist(output) -> dict:
    """Scheme parameters from ``namelist.txt`` in a RAMSES output folder, if present.

    Returns
    -------
    dict
        Any of ``slope_type`` (int), ``courant_factor`` (float), ``scheme`` and ``riemann``
        (str) found in ``&HYDRO_PARAMS`` (:func:`turbsim.ramses.nml.read`); empty when
        there is no namelist.
    """
    path = Path(output) / "namelist.txt"
    if not path.is_file():
        return {}
    hydro = nml.read(path).get("hydro_params", {})
    return {k: hydro[k] for k in ("slope_type", "courant_factor", "scheme", "riemann") if k in hydro}


def scheme_from_namelist(nml: dict, scheme=None, limiter=None, courant=None):
    """Combine namelist values and explicit choices into (scheme, limiter, courant)."""
    if nml.get("riemann", "llf").lower() != "llf":
        raise ValueError(f"RAMSES used riemann='{nml['riemann']}'; turbsim implements 'llf' only")
    if nml.get("scheme", "muscl").lower() != "muscl":
        raise ValueError(f"RAMSES used scheme='{nml['scheme']}'; turbsim matches 'muscl' only")
    st_scheme, st_limiter = SLOPE_TYPES.get(nml.get("slope_type", 1), (None, None))
    if st_scheme is None:
        raise ValueError(f"RAMSES slope_type={nml['slope_type']} has no turbsim equivalent (0, 1, 2)")
    return (scheme or st_scheme, limiter or st_limiter,
            float(courant if courant is not None else nml.get("courant_factor", 0.8)))


def _pdf(rho, rho0, edges):
    h, _ = np.histogram(np.log(rho / rho0), bins=edges, density=True)
    return h


def _differs(a: float, b: float, rel: float = _SAME) -> bool:
    return not abs(a - b) <= rel * max(abs(a), abs(b))


def _initial_snapshot(ds: RamsesDataset) -> RamsesDataset | None:
    """The run's t = 0 snapshot: ``ds`` itself, or an ``output_NNNNN`` beside it, or None."""
    if ds.time == 0:
        return ds
    for info in sorted(ds.path.parent.glob("output_?????/info_?????.txt")):
        if info.parent == ds.path:
            continue
        try:
            if parse_info(info).time == 0:
                return open_output(info.parent)
        except RamsesFormatError as exc:
            log.warning("%s: not used to check the IC (%s)", info.parent, exc)
    return None


def ic_mismatches(ds: RamsesDataset, init: InitialConditions) -> list[str]:
    """Why an initial condition cannot be the one a RAMSES snapshot started from.

    Checks, each when the information exists: grid size (IC cells per side = the base
    grid ``nx * 2**levelmin``, ``boxlen = 1``); code units (length, density, time);
    total mass (conserved by RAMSES); isothermal sound speed (median ``p / rho`` of the
    leaves against ``cs_code**2``); the time the IC file records for this output; the
    density and velocity of the run's t = 0 snapshot, when one lies beside the snapshot.
    All to a relative 1e-6 (1e-3 for the sound speed, as AMR leaves deviate by ~1e-4).

    Parameters
    ----------
    ds : RamsesDataset
        The snapshot (all CPU files read).
    init : InitialConditions
        The IC (see :func:`~turbsim.ramses.load_ic`).

    Returns
    -------
    list of str
        One sentence per contradiction; empty when the IC may belong to the snapshot.
    """
    found = []
    n = init.density.shape[0]
    base = ds.nx * 2**ds.levelmin
    if n != base:
        found.append(f"the IC grid is {n}^3 cells, the snapshot's base grid (levelmin {ds.levelmin}) "
                     f"is {base}^3")
    if ds.boxlen != 1.0:
        found.append(f"the snapshot's boxlen is {ds.boxlen!r} code lengths, the IC's box is 1")
    for name in ("length", "density", "time"):
        if _differs(init.units[name], ds.units[name]):
            found.append(f"the IC's {name} unit is {init.units[name]:g}, the snapshot's is "
                         f"{ds.units[name]:g} (cgs)")
    mass_ic = float(init.density.mean())
    if _differs(mass_ic, ds.mass()):
        found.append(f"the IC's mass is {mass_ic:.9g}, the snapshot's {ds.mass():.9g} (code units; "
                     "RAMSES conserves it)")
    if "pressure" in ds.fields:
        cs2 = float(np.median(np.concatenate(
            [ds.field("pressure", lev) / ds.field("density", lev) for lev in ds.levels])))
        if _differs(cs2, init.cs**2, 1e-3):
            found.append(f"the IC's sound speed is {init.cs:.6g}, the snapshot's p/rho gives "
                         f"{np.sqrt(cs2):.6g} (code velocity)")
    name = ds.path.name
    if name in init.snapshot_times and _differs(init.snapshot_times[name], ds.time, 1e-9):
        found.append(f"the IC file records {name} at t = {init.snapshot_times[name]:.6g}, the "
                     f"snapshot is at t = {ds.time:.6g} (code time)")
    if n == base:
        first = _initial_snapshot(ds)
        if first is not None and first.nx * 2**first.levelmin == n:
            rho0, vel0 = first.to_uniform(first.levelmin)
            for what, a, b in (("density", rho0, init.density), ("velocity", vel0, init.velocity)):
                err = float(np.abs(a - b).max() / (np.abs(b).max() or 1.0))
                if not err <= _SAME:
                    found.append(f"the {what} of the t = 0 snapshot {first.path.name} differs from "
                                 f"the IC's by {err:.2g} (relative maximum)")
    return found


def cross_validate(output, ic, *, scheme=None, limiter=None, courant=None, threads=None,
                   force=False, return_fields=False):
    """Run turbsim from a RAMSES initial condition to a RAMSES snapshot and compare.

    Parameters
    ----------
    output : str, os.PathLike or RamsesDataset
        RAMSES ``output_NNNNN`` folder, or the snapshot already read (uniform grid, or
        AMR compared at the IC's level: :func:`turbsim.ramses.amrcheck.amr_cross_validate`
        runs AMR-lite instead).
    ic : str or os.PathLike
        The ``.npz`` initial condition RAMSES started from (see :func:`load_ic`).
    scheme : {"first", "muscl"}, optional
        Overrides the namelist / default (MUSCL-Hancock).
    limiter : {"minmod", "moncen"}, optional
        Overrides the namelist / default (minmod).
    courant : float, optional
        Courant number in (0, 1]; overrides the namelist / default (0.8).
    threads : int, optional
        Solver threads.
    force : bool
        Compare even when the IC cannot belong to the snapshot (the reasons are logged
        and kept in :attr:`CrossCheck.ic_mismatches`).
    return_fields : bool
        Also return the two density cubes (for plotting).

    Returns
    -------
    CrossCheck, or (CrossCheck, rho_ramses, rho_turbsim)
        The density cubes are ``(N, N, N)`` [code density], ``N`` the IC's grid.

    Raises
    ------
    IcMismatchError
        The IC cannot be the one the snapshot started from (see :func:`ic_mismatches`),
        unless ``force``.
    RamsesFormatError, ValueError
        An unreadable snapshot or IC, or a scheme turbsim does not implement.
    """
    ds = output if isinstance(output, RamsesDataset) else open_output(output)
    init = load_ic(ic)
    scheme, limiter, courant = scheme_from_namelist(read_namelist(ds.path), scheme, limiter, courant)
    n = init.density.shape[0]
    level = int(round(np.log2(n)))
    if 2**level != n:
        raise ValueError(f"{ic}: IC size {n} is not a power of two")
    mismatches = ic_mismatches(ds, init)
    if mismatches and not force:
        raise IcMismatchError(f"{ic} cannot be the initial condition of {ds.path}: " + "; ".join(mismatches))
    for m in mismatches:
        log.warning("%s cannot be the initial condition of %s: %s (compared anyway)", ic, ds.path, m)
    rho_r = ds.to_uniform(level).density
    res = solver.evolve(init.density, init.velocity, dx=init.dx, cs=init.cs, t_end=ds.time,
                        scheme=scheme, limiter=limiter, courant=courant, gamma=ds.gamma,
                        ramses_dt=True, threads=threads)
    rho_t = res.rho
    rho0 = float(init.density.mean())
    absdiff = np.abs(rho_t - rho_r)
    diff = float(absdiff.sum())
    signal = float(np.abs(rho_r - rho0).sum())
    lo = min(rho_r.min(), rho_t.min()) / rho0
    hi = max(rho_r.max(), rho_t.max()) / rho0
    if not hi > lo:  # a uniform density (t = 0): a bin around it
        lo, hi = lo * np.exp(-1e-3), hi * np.exp(1e-3)
    edges = np.linspace(np.log(lo), np.log(hi), 41)
    k, p_r = spectra.power_spectrum(rho_r.sum(axis=2) / rho_r.sum(axis=2).mean())
    _, p_t = spectra.power_spectrum(rho_t.sum(axis=2) / rho_t.sum(axis=2).mean())
    check = CrossCheck(
        **snapshot_facts(ds, init), scheme=scheme, limiter=limiter, courant=courant, steps=res.steps,
        diff_over_signal=diff / signal if signal > 0 else (0.0 if diff == 0 else math.inf),
        max_abs_diff=float(absdiff.max()), max_rel_diff=float((absdiff / rho_r).max()),
        signal=signal / rho_r.size, cells=n, pdf_edges=edges.tolist(),
        pdf_ramses=_pdf(rho_r, rho0, edges).tolist(), pdf_turbsim=_pdf(rho_t, rho0, edges).tolist(),
        k=k[1:].tolist(), power_ramses=p_r[1:].tolist(), power_turbsim=p_t[1:].tolist(),
        ic_mismatches=mismatches)
    if return_fields:
        return check, rho_r, rho_t
    return check


def plot_cross_check(check: CrossCheck, rho_ramses, rho_turbsim, path):
    """Write the comparison figure as PNG, atomically.

    Panels: the column density along z (divided by its mean) of RAMSES and of turbsim and
    their difference, with axes in pc and titles naming n, the axis and the time; the
    density PDFs; the column-density power spectra.

    Parameters
    ----------
    check : CrossCheck
        The result of :func:`cross_validate`.
    rho_ramses, rho_turbsim : numpy.ndarray
        ``(N, N, N)`` density cubes [code density] returned with it.
    path : str or os.PathLike
        Output PNG file.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    from ..figures import new_figure, plot_map, save_figure

    col_r = rho_ramses.sum(axis=2) / rho_ramses.sum(axis=2).mean()
    col_t = rho_turbsim.sum(axis=2) / rho_turbsim.sum(axis=2).mean()
    fig, ax = new_figure(5, width=4.6, height=4.2, dpi=90)
    where = dict(n=check.n, axis=2, time_myr=check.time_myr)
    vmin, vmax = min(col_r.min(), col_t.min()), max(col_r.max(), col_t.max())
    for a, img, who in ((ax[0], col_r, "RAMSES"), (ax[1], col_t, "turbsim")):
        plot_map(a, img, check.box_pc, prefix=who, vmin=vmin, vmax=vmax,
                 label=r"$\Sigma / \langle\Sigma\rangle$", **where)
    d = col_t - col_r
    lim = float(np.abs(d).max()) or 1.0
    plot_map(ax[2], d, check.box_pc, cmap="RdBu_r", vmin=-lim, vmax=lim,
             label=r"$\Delta\,\Sigma / \langle\Sigma\rangle$", axis=2, prefix="turbsim - RAMSES")
    centres = 0.5 * (np.array(check.pdf_edges[1:]) + np.array(check.pdf_edges[:-1]))
    ax[3].semilogy(centres, check.pdf_ramses, "k-", label="RAMSES")
    ax[3].semilogy(centres, check.pdf_turbsim, "r--", label="turbsim")
    ax[3].set_xlabel(r"$\ln(\rho/\rho_0)$")
    ax[3].set_title("density PDF")
    ax[3].legend()
    ax[4].plot(check.k, check.power_ramses, "k-", label="RAMSES")
    ax[4].plot(check.k, check.power_turbsim, "r--", label="turbsim")
    ax[4].set_xscale("log")
    if max(check.power_ramses + check.power_turbsim, default=0.0) > 0:  # none at t = 0
        ax[4].set_yscale("log")
    ax[4].set_xlabel(r"k [2$\pi$/L]")
    ax[4].set_title("column-density power per mode")
    ax[4].legend()
    out = Path(check.output)
    fig.suptitle(f"{out.parent.name}/{out.name}: t = {check.time_myr:.4g} Myr, {check.scheme} "
                 f"({check.limiter}), Courant {check.courant}, {check.steps} steps, {check.cells}^3: "
                 f"difference/signal {check.diff_over_signal:.2g}")
    return save_figure(fig, path)

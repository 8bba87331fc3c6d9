"""RAMSES initial conditions: write grafic files and a namelist; load the shared ``.npz`` ICs.

Mechanism
---------
RAMSES reads initial conditions of a non-cosmological run from *grafic* files when the
namelist says ``&INIT_PARAMS filetype='grafic', initfile(1)='<dir>'``: the files
``<dir>/ic_d, ic_u, ic_v, ic_w, ic_p`` hold the primitive variables (density, vx, vy,
vz, pressure) in **code units**. Each is a Fortran sequential file: one header record
(3 int32 ``n1, n2, n3`` + 8 float32 ``dx, xoff1, xoff2, xoff3, astart, omega_m,
omega_l, h0``) and then one float32 record per z-plane with x varying fastest. RAMSES
maps cell ``(i, j, k)`` of level ``levelmin`` to ``ic[i, j, k]`` using only the cell
size of the level and the offsets (written as 0); ``dx`` and the cosmological numbers
are not used for non-cosmological runs. The isothermal gas is RAMSES's barotropic EOS
(``barotropic_eos_form='isothermal'``) with ``gamma = 1.0001`` inside a step, exactly
as in the shared reference runs (see ``shared/ramses/README.md``).

:func:`write_ic` writes the five files plus ``namelist.nml`` (every parameter that
must match turbsim: units, levels, EOS, scheme, slope limiter, Riemann solver, Courant
number, output times). Every file is written under a temporary name and renamed.

Limits
------
* The grid must be a cube of ``2**levelmin`` cells (RAMSES's base grid); the IC is
  given at ``levelmin`` only. For AMR runs (``levelmax > levelmin``) finer levels are
  created by RAMSES's refinement criteria: the namelist's ``&REFINE_PARAMS`` carries
  ``err_grad_d`` and ``m_refine`` (as AMR-lite's :class:`~turbsim.SimConfig` gives them,
  :func:`run_from_config`; ``m_refine`` with ``mass_sph``, the mean mass of a
  ``levelmin`` cell, its unit in AMR-lite), ``floor_d``, conservative minmod
  interpolation, ``&AMR_PARAMS`` its ``nexpand`` and ``&RUN_PARAMS`` the ``nsubcycle`` of
  its schedule (1 for ``"global"``, else 2). RAMSES's per-level arrays start at
  ``levelmin`` and ``key=v`` sets only their first element, so ``nexpand`` and
  ``m_refine`` are written with a repeat count (``nexpand=7*1``). The namelist reads back
  with :func:`turbsim.ramses.nml.read`; :func:`turbsim.ramses.amrcheck.amr_parameters`
  turns it into AMR-lite's parameters again.
* Values are stored as float32 (the grafic reader reads ``real*4``): a float64 turbsim
  IC is rounded once, by at most 6e-8 relative.
* RAMSES writes an output at the first coarse step with ``t >= tout``; it does not
  shorten the last step, so its snapshot time is slightly later than ``t_end``.
* ``gamma = 1.0001`` makes RAMSES's wave speeds ``sqrt(gamma) c_s`` (5e-5 faster than
  turbsim's exactly isothermal ``gamma = 1``); set ``SimConfig.gamma = 1.0001`` in
  turbsim to match.
* ``initfile(1)`` (index 1 = levelmin) is the convention of RAMSES since 2017; older
  versions index ``initfile`` by absolute level (``initfile(levelmin)``).
* ``ngridmax`` is sized for the uniform base grid with 50% head room; AMR runs need more.
"""
from __future__ import annotations

import logging
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import validate
from ..atomic import atomic_path
from ..units import MYR
from .records import write_record

logger = logging.getLogger(__name__)

__all__ = ["RamsesRun", "InitialConditions", "write_ic", "write_ic_from_config", "namelist",
           "run_from_config", "load_ic", "GRAFIC_FILES", "RAMSES_GAMMA"]

GRAFIC_FILES = ("ic_d", "ic_u", "ic_v", "ic_w", "ic_p")
"""Grafic file names: density, vx, vy, vz, pressure."""
RAMSES_GAMMA = 1.0001
"""Adiabatic index used inside a RAMSES step for isothermal gas (barotropic EOS reset)."""
_NSUBCYCLE = {"global": 1, "subcycle": 2, "nsubcycle": 2}
"""RAMSES's ``nsubcycle`` for AMR-lite's schedules: ``"global"`` steps every level with one
time step and regrids them all at every step (RAMSES with ``nsubcycle = 1``);
``"nsubcycle"`` is RAMSES's subcycling, which ``"subcycle"`` approximates (its flags on the
clocks of ``nsubcycle = 2``)."""
_SLOPE_TYPE = {("first", "minmod"): 0, ("first", "moncen"): 0, ("muscl", "minmod"): 1,
               ("muscl", "moncen"): 2}


@dataclass(frozen=True)
class RamsesRun:
    """The RAMSES namelist parameters that must match a turbsim run.

    Parameters
    ----------
    levelmin : int
        Base level, ``2**levelmin`` cells per side (1..14).
    units_length, units_density, units_time : float
        cgs per code unit [cm, g/cm^3, s].
    temperature : float
        ``T_eos`` [K] of the isothermal barotropic EOS.
    mu : float
        ``mu_gas``, mean molecular weight.
    tout : tuple of float
        Output times [code time units], increasing, ``>= 0``.
    levelmax : int, optional
        Finest level (default ``levelmin``: uniform grid).
    gamma : float
        Adiabatic index inside a step, in (1, 5/3] (default 1.0001; a turbsim
        ``gamma = 1`` maps to 1.0001 since RAMSES divides by ``gamma - 1``).
    courant : float
        ``courant_factor`` in (0, 1].
    slope_type : int
        0 first order, 1 minmod, 2 moncen.
    riemann : str
        Riemann solver (default ``'llf'``).
    initdir : str
        Folder of the grafic files, relative to where RAMSES runs (default ``'ic'``).
    err_grad_d : float, optional
        Density-gradient refinement threshold of an AMR run (None: criterion off).
    m_refine : float, optional
        Quasi-Lagrangian mass criterion of an AMR run, in levelmin cell masses, the same
        on every level (None: off).
    nexpand : int
        Buffer cells around flagged cells at each regrid (default 1).
    nsubcycle : int
        Steps of a level per step of the level below (RAMSES's default 2: each level its
        own time step; 1: one time step for every level).
    """

    levelmin: int
    units_length: float
    units_density: float
    units_time: float
    temperature: float
    mu: float
    tout: tuple[float, ...]
    levelmax: int | None = None
    gamma: float = RAMSES_GAMMA
    courant: float = 0.8
    slope_type: int = 1
    riemann: str = "llf"
    initdir: str = "ic"
    err_grad_d: float | None = None
    m_refine: float | None = None
    nexpand: int = 1
    nsubcycle: int = 2

    def __post_init__(self):
        def set_(name, value):
            object.__setattr__(self, name, value)

        def plain(v):  # numpy integers count as integers
            return int(v) if isinstance(v, np.integer) else v

        set_("levelmin", validate.integer("RamsesRun", "levelmin", plain(self.levelmin), 1, 14))
        levelmax = self.levelmin if self.levelmax is None else plain(self.levelmax)
        set_("levelmax", validate.integer("RamsesRun", "levelmax", levelmax, self.levelmin, 30))
        for name in ("units_length", "units_density", "units_time", "temperature", "mu"):
            set_(name, validate.positive("RamsesRun", name, getattr(self, name), kind=float))
        # RAMSES divides by gamma - 1
        set_("gamma", validate.real("RamsesRun", "gamma", self.gamma, 1.0, 5.0 / 3.0, lo_open=True))
        set_("courant", validate.real("RamsesRun", "courant", self.courant, 0.0, 1.0, lo_open=True))
        set_("slope_type", validate.choice("RamsesRun", "slope_type", plain(self.slope_type), (0, 1, 2)))
        set_("nexpand", validate.integer("RamsesRun", "nexpand", plain(self.nexpand), 0, 16))
        set_("nsubcycle", validate.choice("RamsesRun", "nsubcycle", plain(self.nsubcycle), (1, 2)))
        for name in ("err_grad_d", "m_refine"):
            if getattr(self, name) is not None:
                set_(name, validate.positive("RamsesRun", name, getattr(self, name), kind=float))
        tout = validate.sequence("RamsesRun", "tout", self.tout, float)
        if not tout or any(not t >= 0 for t in tout) or any(b <= a for a, b in zip(tout, tout[1:])):
            raise ValueError(f"RamsesRun.tout = {self.tout!r} must be increasing times >= 0")
        set_("tout", tout)

    @property
    def cells(self) -> int:
        """Cells per side of the base grid."""
        return 2**self.levelmin

    @property
    def sound_speed_code(self) -> float:
        """Isothermal sound speed in code velocity units (RAMSES's kB and mH)."""
        from ..units import sound_speed
        return sound_speed(self.temperature, self.mu) * self.units_time / self.units_length


def run_from_config(config, levelmax: int | None = None, units_time: float = MYR,
                    outputs=()) -> RamsesRun:
    """The RAMSES parameters matching a turbsim :class:`~turbsim.SimConfig`.

    Parameters
    ----------
    config : turbsim.SimConfig
        ``cells`` must be a power of two. An AMR-lite config (``levelmax > 0``) gives
        RAMSES its levels, refinement criteria, ``nexpand`` and the ``nsubcycle`` of its
        ``regrid_schedule`` (``"global"``: 1, ``"subcycle"`` and ``"nsubcycle"``: 2); its ``cells`` must then be
        ``2^levelmin`` (RAMSES is given the initial conditions at ``levelmin``).
    levelmax : int, optional
        Finest RAMSES level (default: the config's, uniform for a uniform config).
    units_time : float, optional
        Code time unit [s] (default 1 Myr, so RAMSES times read in Myr).
    outputs : sequence of float, optional
        Extra output times [Myr] before ``t_end``.

    Returns
    -------
    RamsesRun
        Box = 1 code length (``units_length`` = box in cm), mean density = 1 code density.
    """
    levelmin = int(round(math.log2(config.cells)))
    if 2**levelmin != config.cells:
        raise ValueError(f"SimConfig.cells = {config.cells} is not a power of two; RAMSES needs 2**levelmin")
    refine = {}
    if config.amr:
        if levelmin != config.levelmin:
            raise ValueError(f"SimConfig.cells = {config.cells} is not 2^levelmin = {2**config.levelmin}: RAMSES is "
                             "given the initial conditions at levelmin")
        if levelmax is not None and levelmax != config.levelmax:
            raise ValueError(f"levelmax = {levelmax} differs from the AMR-lite config's levelmax = {config.levelmax}")
        if config.refine in ("all", "none") or config.regrid_every != 1:
            raise ValueError(f"SimConfig.refine = {config.refine!r}, regrid_every = {config.regrid_every}: RAMSES "
                             "refines by the gradient and mass criteria at every step only")
        if config.regrid_schedule not in _NSUBCYCLE:
            raise ValueError(f"SimConfig.regrid_schedule = {config.regrid_schedule!r} has no RAMSES "
                             f"nsubcycle (known: {', '.join(_NSUBCYCLE)})")
        levelmax = config.levelmax
        refine = {"nexpand": config.nexpand, "nsubcycle": _NSUBCYCLE[config.regrid_schedule],
                  "err_grad_d": config.err_grad_d if "gradient" in config.refine else None,
                  "m_refine": config.m_refine if "mass" in config.refine and config.m_refine > 0 else None}
    u = config.code_units
    times = sorted({0.0, *(float(t) for t in outputs), float(config.t_end)})
    return RamsesRun(
        levelmin=levelmin, levelmax=levelmax, units_length=u["length"], units_density=config.density,
        units_time=float(units_time), temperature=config.temperature, mu=config.mu,
        tout=tuple(t * MYR / units_time for t in times),
        gamma=max(config.gamma, RAMSES_GAMMA),
        courant=config.courant, slope_type=_SLOPE_TYPE[(config.scheme, config.limiter)], **refine,
    )


def namelist(run: RamsesRun) -> str:
    """The namelist text (``&RUN_PARAMS`` ... ``&UNITS_PARAMS``) for a run.

    Parameters
    ----------
    run : RamsesRun

    Returns
    -------
    str
        A complete RAMSES parameter file for a periodic, gravity-free, isothermal hydro run.
    """
    octs = sum(8**(lev - 1) for lev in range(1, run.levelmin + 1))
    ngridmax = int(math.ceil(1.5 * octs)) * (4 if run.levelmax > run.levelmin else 1)
    tout = ", ".join(repr(t) for t in run.tout)
    lines = [
        "&RUN_PARAMS", "hydro=.true.", "poisson=.false.", "nremap=0",
        *([f"nsubcycle={_per_level(run, run.nsubcycle)}"] if run.levelmax > run.levelmin else []), "/", "",
        "&AMR_PARAMS", f"levelmin={run.levelmin}", f"levelmax={run.levelmax}",
        f"ngridmax={ngridmax}", f"nexpand={_per_level(run, run.nexpand)}", "boxlen=1.0", "/", "",
        "&INIT_PARAMS", "filetype='grafic'", f"initfile(1)='{run.initdir}'", "/", "",
        "&OUTPUT_PARAMS", f"noutput={len(run.tout)}", f"tout={tout}", "/", "",
        "&HYDRO_PARAMS", f"gamma={run.gamma!r}", f"courant_factor={run.courant!r}",
        "scheme='muscl'", f"slope_type={run.slope_type}", f"riemann='{run.riemann}'",
        "smallr=1e-10", "smallc=1e-10", "/", "",
        "&COOLING_PARAMS", "cooling=.false.", "barotropic_eos=.true.",
        "barotropic_eos_form='isothermal'", f"T_eos={run.temperature!r}", f"mu_gas={run.mu!r}", "/", "",
        "&UNITS_PARAMS", f"units_density={run.units_density!r}", f"units_time={run.units_time!r}",
        f"units_length={run.units_length!r}", "/",
    ]
    if run.levelmax > run.levelmin:  # conservative variables, minmod-limited prolongation (AMR-lite's)
        lines += ["", "&REFINE_PARAMS", "interpol_var=0", "interpol_type=1", "floor_d=1e-10"]
        if run.err_grad_d is not None:
            lines.append(f"err_grad_d={run.err_grad_d!r}")
        if run.m_refine is not None:  # in units of mass_sph: the mean mass of a levelmin cell
            lines += [f"m_refine={_per_level(run, run.m_refine)}", f"mass_sph={8.0**-run.levelmin!r}"]
        lines.append("/")
    return "\n".join(lines) + "\n"


def _per_level(run: RamsesRun, value) -> str:
    """A per-level RAMSES parameter (``nexpand``, ``nsubcycle``, ``m_refine``) with one value
    on every level.

    RAMSES indexes these arrays from ``levelmin`` and a plain ``key=v`` sets only the
    first element (level ``levelmin``), so the value is repeated (``7*8.0``).
    """
    return f"{run.levelmax}*{value!r}" if run.levelmax > run.levelmin else repr(value)


def _grafic_bytes(cube: np.ndarray) -> list[np.ndarray]:
    """Records of one grafic file: header, then one float32 z-plane (x fastest) each."""
    n1, n2, n3 = cube.shape
    header = np.zeros(11, dtype="<i4")
    header[:3] = (n1, n2, n3)
    header[3:].view("<f4")[:] = (1.0 / n1, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0)
    planes = np.asarray(cube, dtype="<f4").transpose(2, 1, 0)  # [iz, iy, ix]: x fastest
    return [header, *planes]


def write_ic(directory, density, velocity, run: RamsesRun, pressure=None) -> Path:
    """Write grafic IC files and ``namelist.nml`` for RAMSES.

    Parameters
    ----------
    directory : str or os.PathLike
        Run folder (created if needed). The grafic files go to ``directory/run.initdir``,
        the namelist to ``directory/namelist.nml``.
    density : array_like, shape (N, N, N)
        Density [RAMSES code units], indexed ``[ix, iy, iz]``, ``N = 2**run.levelmin``.
    velocity : array_like, shape (3, N, N, N)
        Velocity [RAMSES code units], ``[component, ix, iy, iz]``.
    run : RamsesRun
        Namelist parameters.
    pressure : array_like, shape (N, N, N), optional
        Pressure [code units]; default the isothermal ``density * c_s**2``.

    Returns
    -------
    pathlib.Path
        The namelist file.

    Raises
    ------
    ValueError
        Wrong shapes, a grid that is not ``2**levelmin`` cells, non-finite values or a
        non-positive density.
    """
    rho = np.asarray(density, dtype=np.float64)
    vel = np.asarray(velocity, dtype=np.float64)
    n = run.cells
    if rho.shape != (n, n, n) or vel.shape != (3, n, n, n):
        raise ValueError(f"density {rho.shape} and velocity {vel.shape} must be ({n},)*3 and (3,{n},{n},{n}) "
                         f"for levelmin = {run.levelmin}")
    p = rho * run.sound_speed_code**2 if pressure is None else np.asarray(pressure, dtype=np.float64)
    if p.shape != rho.shape:
        raise ValueError(f"pressure {p.shape} must have the shape of density {rho.shape}")
    if not (np.isfinite(rho).all() and np.isfinite(vel).all() and np.isfinite(p).all()):
        raise ValueError("density, velocity and pressure must be finite")
    if rho.min() <= 0 or p.min() <= 0:
        raise ValueError("density and pressure must be positive")
    directory = Path(directory)
    icdir = directory / run.initdir
    icdir.mkdir(parents=True, exist_ok=True)
    for name, cube in zip(GRAFIC_FILES, (rho, vel[0], vel[1], vel[2], p)):
        with atomic_path(icdir / name) as tmp:
            with open(tmp, "wb") as fh:
                for rec in _grafic_bytes(cube):
                    write_record(fh, rec)
    nml = directory / "namelist.nml"
    with atomic_path(nml) as tmp:
        tmp.write_text(namelist(run))
    logger.info("wrote RAMSES ICs (%d^3) and %s", n, nml)
    return nml


def write_ic_from_config(directory, config, levelmax: int | None = None) -> Path:
    """Write the RAMSES ICs and namelist of a turbsim simulation.

    The velocity field is turbsim's own (:func:`turbsim.ic.initial_conditions`),
    converted from turbsim code units (``c_s = 1``) to RAMSES code units (box = 1,
    mean density = 1, time unit 1 Myr).

    Parameters
    ----------
    directory : str or os.PathLike
        Run folder.
    config : turbsim.SimConfig
        The simulation (``cells`` a power of two).
    levelmax : int, optional
        Finest RAMSES level (default uniform).

    Returns
    -------
    pathlib.Path
        The namelist file.
    """
    from ..ic import initial_conditions

    run = run_from_config(config, levelmax=levelmax)
    rho, vel = initial_conditions(config)
    v_unit = run.units_length / run.units_time
    return write_ic(directory, rho, np.asarray(vel, np.float64) * (config.sound_speed / v_unit), run)


@dataclass(frozen=True)
class InitialConditions:
    """A shared RAMSES initial condition (``ic_<case>.npz``), ready for turbsim's solver.

    All arrays are float64 (the stored float32 values, promoted exactly) in RAMSES code
    units (box = 1, initial density = 1, time unit ``units["time"]``).

    Attributes
    ----------
    density : numpy.ndarray
        ``(N, N, N)``, indexed ``[ix, iy, iz]``.
    velocity : numpy.ndarray
        ``(3, N, N, N)``, ``[component, ix, iy, iz]``.
    pressure : numpy.ndarray
        ``(N, N, N)``.
    cs : float
        Isothermal sound speed [code velocity].
    dx : float
        Cell size [code length] (``1/N``).
    t_end : float
        Time of the last RAMSES snapshot of the case [code time].
    snapshot_times : dict
        ``{output name: time [code]}``.
    units : dict
        cgs per code unit: ``length``, ``density``, ``time``, ``velocity``.
    meta : dict
        Other scalars of the file (``n``, ``seed``, ``mach``, ``T_K``, ``mu``, ...).

    Examples
    --------
    >>> ic = load_ic("kolmo64/ic_kolmo64.npz")                        # doctest: +SKIP
    >>> res = turbsim.solver.evolve(ic.density, ic.velocity, dx=ic.dx, cs=ic.cs,
    ...                             t_end=ic.t_end, gamma=RAMSES_GAMMA)  # doctest: +SKIP
    """

    density: np.ndarray
    velocity: np.ndarray
    pressure: np.ndarray
    cs: float
    dx: float
    t_end: float
    snapshot_times: dict
    units: dict
    meta: dict


_IC_ARRAYS = ("rho", "vx", "vy", "vz", "p")
_IC_UNITS = {"length": "units_length_cm", "density": "units_density_g_cm3", "time": "units_time_s",
             "velocity": "units_velocity_cm_s"}
_IC_REQUIRED = (*_IC_ARRAYS, "cs_code", "t_end_code", *_IC_UNITS.values())


def _read_npz(path: Path) -> dict:
    """Every array of an ``.npz`` file, or ``ValueError`` saying it is not one."""
    if not path.is_file():
        raise ValueError(f"{path}: cannot read the IC file (no such file)")
    not_npz = (f"{path}: not a NumPy .npz file of an initial condition (expected a zip archive "
               f"of the arrays {', '.join(_IC_REQUIRED)})")
    if not zipfile.is_zipfile(path):
        raise ValueError(not_npz)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise ValueError(f"{not_npz}: {exc}") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the IC file ({exc.strerror or exc})") from None


def _check_ic(path: Path, d: dict) -> None:
    """Shapes, finiteness and signs of an IC's arrays and scalars (file and key named)."""
    shape = d["rho"].shape
    if len(shape) != 3 or len(set(shape)) != 1:
        raise ValueError(f"{path}: rho has shape {shape}, expected a cube (N, N, N)")
    for key in _IC_ARRAYS:
        arr = d[key]
        if arr.shape != shape:
            raise ValueError(f"{path}: {key} has shape {arr.shape}, expected {shape} like rho")
        if not np.issubdtype(arr.dtype, np.number):
            raise ValueError(f"{path}: {key} holds {arr.dtype} values, expected numbers")
        finite = np.isfinite(arr)
        if not finite.all():
            raise ValueError(f"{path}: {key} holds {float(arr[~finite].flat[0])!r} "
                             f"({int((~finite).sum())} non-finite values)")
    for key in ("rho", "p"):
        if not (d[key] > 0).all():
            raise ValueError(f"{path}: {key} holds {float(d[key].min())!r}; it must be positive")
    for key in ("cs_code", *_IC_UNITS.values()):
        v = d[key]
        shown = repr(v.item()) if v.ndim == 0 else f"an array of shape {v.shape}"
        if v.ndim != 0 or not np.issubdtype(v.dtype, np.number) or not (np.isfinite(v) and v > 0):
            raise ValueError(f"{path}: {key} = {shown} is not a positive finite number")
    if "N" in d and d["N"].ndim == 0 and int(d["N"]) != shape[0]:
        raise ValueError(f"{path}: N = {int(d['N'])}, but rho has shape {shape}")


def load_ic(path) -> InitialConditions:
    """Load one of the shared RAMSES initial conditions (``ic_<case>.npz``).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file.

    Returns
    -------
    InitialConditions

    Raises
    ------
    ValueError
        If the file is missing or not an ``.npz`` (a zip archive of arrays), lacks a
        required key, or holds arrays of the wrong shape, non-finite values, a density or
        pressure that is not positive, or a sound speed or unit that is not a positive
        finite number; the message names the file and the key.
    """
    path = Path(path)
    d = _read_npz(path)
    missing = [k for k in _IC_REQUIRED if k not in d]
    if missing:
        raise ValueError(f"{path}: IC file lacks {', '.join(missing)}")
    _check_ic(path, d)
    rho = d.pop("rho").astype(np.float64)
    vel = np.stack([d.pop(k).astype(np.float64) for k in ("vx", "vy", "vz")])
    names = [str(s) for s in d.pop("snapshot_names", [])]
    times = [float(t) for t in d.pop("snapshot_times_code", [])]
    units = {name: float(d.pop(key)) for name, key in _IC_UNITS.items()}
    return InitialConditions(
        density=rho, velocity=vel, pressure=d.pop("p").astype(np.float64),
        cs=float(d.pop("cs_code")), dx=1.0 / rho.shape[0], t_end=float(d.pop("t_end_code")),
        snapshot_times=dict(zip(names, times)), units=units,
        meta={k: (v.item() if v.ndim == 0 else v) for k, v in d.items()},
    )

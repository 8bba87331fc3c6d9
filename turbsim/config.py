"""Simulation configuration: one frozen, validated dataclass.

Every field is checked once, at construction; a bad value raises ``ValueError`` naming the
field, the value and the allowed range. A config round-trips through a plain ``dict`` and
JSON, so it can be stored next to every simulation it produced.
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, fields
from typing import Any

from . import units
from .validate import choice, flag, integer, real

SCHEMES = ("first", "muscl")
"""Solver schemes: first-order Godunov, unsplit MUSCL-Hancock."""
LIMITERS = ("minmod", "moncen")
"""Slope limiters of MUSCL-Hancock (RAMSES ``slope_type`` 1 and 2)."""
DTYPES = ("float64", "float32")
"""Floating-point types of the solver."""
IC_METHODS = ("fourier", "white_noise")
"""Ways to draw the initial velocity field (:mod:`turbsim.ic` uses this list)."""
REFINES = ("gradient", "mass", "gradient+mass", "all", "none")
"""Refinement criteria of AMR-lite (:mod:`turbsim.amr` uses this list)."""
SCHEDULES = ("global", "subcycle", "nsubcycle")
"""How AMR-lite steps and flags its levels (:mod:`turbsim.amr` uses this list)."""
STOPS = ("exact", "after")
"""How a run ends at an output time: shortened last step, or the first full step past it
(:mod:`turbsim.solver` uses this list)."""
AMR_FIELDS = ("levelmin", "levelmax", "refine", "err_grad_d", "m_refine", "nexpand", "regrid_every",
              "regrid_schedule")
"""The SimConfig fields of AMR-lite (left out of a uniform run's record when all are defaults)."""


@dataclass(frozen=True)
class SimConfig:
    """Parameters of one turbulent-cloud simulation.

    Parameters
    ----------
    box : float
        Box side [pc], in (0, 1e6]. Default 10.
    density : float
        Initial uniform density [g/cm^3], in (0, 1]. Default 6.77e-22 (1e4 Msun in 10 pc^3).
    temperature : float
        Isothermal gas temperature [K], in (0, 1e9]. Default 10.
    mu : float
        Mean molecular weight, in (0, 100]. Default 2.37 (RAMSES's default is 1, see
        :mod:`turbsim.units`).
    mach : float
        3D rms Mach number of the initial velocity field, in [0, 100]. Default 1.41.
    n : float
        Spectral index of the per-mode velocity power, ``|v_k|^2 ∝ k^-n``, in [0, 10].
        11/3 is Kolmogorov, 4 is Burgers. Default 11/3.
    solenoidal : float
        Solenoidal fraction ζ of the Helmholtz projection ``ζ P_sol + (1-ζ) P_comp``, in
        [0, 1]: 1 is divergence-free, 0 purely compressive. Default 1.
    seed : int
        Random seed of the initial velocity field, in [0, 2^63 - 1]. Default 0.
    cells : int
        Cells per side of the cubic grid, even, in [4, 4096]. Default 128.
    t_end : float
        End time [Myr], in [0, 1e4]. Default 0.5.
    scheme : {"muscl", "first"}
        First-order Godunov or unsplit MUSCL-Hancock (RAMSES's scheme). Default "muscl".
    limiter : {"minmod", "moncen"}
        Slope limiter of MUSCL-Hancock (RAMSES ``slope_type`` 1 and 2). Default "minmod".
    courant : float
        Courant number, in (0, 1]. Default 0.8.
    dtype : {"float64", "float32"}
        Floating-point type of the solver. Default "float64".
    ic : {"fourier", "white_noise"}
        How the random initial velocity field is drawn. ``"fourier"`` draws Fourier modes
        so that grids of different sizes share their common modes; ``"white_noise"``
        follows the convention of the shared RAMSES runs (real white noise filtered in
        Fourier space, ``numpy.random.default_rng(seed)``), reproducing their initial
        conditions. Default "fourier".
    gamma : float
        Adiabatic index used inside a step, in [1, 5/3] (1 is exactly isothermal). RAMSES
        runs isothermal gas as an adiabatic step with ``gamma`` (1.0001 in the shared
        runs) followed by a temperature reset, so its Riemann solver and time step use
        ``c = sqrt(gamma) c_s``. Default 1.
    ramses_dt : bool
        Use RAMSES's time-step rule exactly, including the small correction factor of
        ``cmpdt`` when gravity is off. Default False.
    stop : {"exact", "after"}
        How the run ends at ``t_end``: a shortened last step, or the first full step past
        it. ``"exact"``: the last step is shortened so the run ends exactly at ``t_end``.
        ``"after"``: full steps only, ending with the first step that reaches ``t_end``:
        RAMSES writes its outputs so, hence its snapshot times overshoot the requested time
        (0.51-0.57 Myr for 0.5 Myr in the shared 64^3 runs); the time reached is recorded.
        Default "exact".
    levelmin : int
        Coarsest level of an AMR-lite run (:mod:`turbsim.amr`; level L has 2^L cells per
        side), in [3, 10], or 0 for a uniform run (the default). With AMR, ``cells`` must be
        2^L with levelmin <= L <= levelmax: the initial conditions are drawn there (RAMSES
        gives them at levelmin), and the first regrid derefines what the criteria do not flag.
    levelmax : int
        Finest level of an AMR-lite run, in [levelmin, 10], or 0 for a uniform run. Default 0.
    refine : {"gradient", "mass", "gradient+mass", "all", "none"}
        AMR-lite refinement criteria: RAMSES's density gradient (``err_grad_d``), its
        quasi-Lagrangian mass criterion (``m_refine``), both, every cell, no cell. Default
        "gradient".
    err_grad_d : float
        Threshold of RAMSES's relative density gradient between neighbours, ``2 |d_i -
        d_j| / (d_i + d_j + 1e-10)``, in [0, 100]. Default 0.1 (the shared RAMSES AMR runs).
    m_refine : float
        Mass threshold of the quasi-Lagrangian criterion, in units of the mean mass of a
        levelmin cell, in [0, 1e6]; 0 disables it. Default 0.
    nexpand : int
        Buffer cells grown around the flagged cells at each regrid (RAMSES ``nexpand``),
        in [0, 4]. Default 1.
    regrid_every : int
        Steps between regrids, in [1, 1000] (RAMSES: every step). Default 1.
    regrid_schedule : {"global", "subcycle", "nsubcycle"}
        How the levels are stepped and flagged (see :func:`turbsim.amr.evolve`): one time
        step for all levels, every level flagged at each regrid ("global"); the same step,
        each level flagged on the clock of its own CFL step, when RAMSES with subcycling
        would flag it ("subcycle"); or RAMSES's subcycling itself, each level stepping
        twice per step of the level below with its own time step and regridding at the start
        of its steps ("nsubcycle", RAMSES's ``nsubcycle = 2``). Default "global".
    """

    box: float = 10.0
    density: float = 6.77e-22
    temperature: float = 10.0
    mu: float = 2.37
    mach: float = 1.41
    n: float = 11.0 / 3.0
    solenoidal: float = 1.0
    seed: int = 0
    cells: int = 128
    t_end: float = 0.5
    scheme: str = "muscl"
    limiter: str = "minmod"
    courant: float = 0.8
    dtype: str = "float64"
    ic: str = "fourier"
    gamma: float = 1.0
    ramses_dt: bool = False
    stop: str = "exact"
    levelmin: int = 0
    levelmax: int = 0
    refine: str = "gradient"
    err_grad_d: float = 0.1
    m_refine: float = 0.0
    nexpand: int = 1
    regrid_every: int = 1
    regrid_schedule: str = "global"

    def __post_init__(self):
        own = "SimConfig"
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        set_("box", real(own, "box", self.box, 0, 1e6, lo_open=True))
        set_("density", real(own, "density", self.density, 0, 1.0, lo_open=True))
        set_("temperature", real(own, "temperature", self.temperature, 0, 1e9, lo_open=True))
        set_("mu", real(own, "mu", self.mu, 0, 100, lo_open=True))
        set_("mach", real(own, "mach", self.mach, 0, 100))
        set_("n", real(own, "n", self.n, 0, 10))
        set_("solenoidal", real(own, "solenoidal", self.solenoidal, 0, 1))
        set_("seed", integer(own, "seed", self.seed, 0, 2**63 - 1))
        set_("cells", integer(own, "cells", self.cells, 4, 4096))
        if self.cells % 2:
            raise ValueError(f"SimConfig.cells = {self.cells} must be even (quadrant cuts halve the map)")
        set_("t_end", real(own, "t_end", self.t_end, 0, 1e4))
        choice(own, "scheme", self.scheme, SCHEMES)
        choice(own, "limiter", self.limiter, LIMITERS)
        set_("courant", real(own, "courant", self.courant, 0, 1, lo_open=True))
        choice(own, "dtype", self.dtype, DTYPES)
        choice(own, "ic", self.ic, IC_METHODS)
        set_("gamma", real(own, "gamma", self.gamma, 1.0, 5.0 / 3.0))
        flag(own, "ramses_dt", self.ramses_dt)
        choice(own, "stop", self.stop, STOPS)
        self._validate_amr(own, set_)

    def _validate_amr(self, own, set_):
        set_("levelmin", integer(own, "levelmin", self.levelmin, 0, 10))
        set_("levelmax", integer(own, "levelmax", self.levelmax, 0, 10))
        choice(own, "refine", self.refine, REFINES)
        set_("err_grad_d", real(own, "err_grad_d", self.err_grad_d, 0, 100))
        set_("m_refine", real(own, "m_refine", self.m_refine, 0, 1e6))
        set_("nexpand", integer(own, "nexpand", self.nexpand, 0, 4))
        set_("regrid_every", integer(own, "regrid_every", self.regrid_every, 1, 1000))
        choice(own, "regrid_schedule", self.regrid_schedule, SCHEDULES)
        if self.levelmin == 0 and self.levelmax == 0:
            return
        if not 3 <= self.levelmin <= self.levelmax:
            raise ValueError(f"SimConfig.levelmin = {self.levelmin} and levelmax = {self.levelmax}: "
                             "an AMR run needs 3 <= levelmin <= levelmax (both 0: uniform)")
        if self.cells not in [2**L for L in range(self.levelmin, self.levelmax + 1)]:
            raise ValueError(f"SimConfig.cells = {self.cells} must be 2^L with levelmin = {self.levelmin}"
                             f" <= L <= levelmax = {self.levelmax} in an AMR run (the initial "
                             "conditions' grid)")
        if self.dtype != "float64":
            raise ValueError(f"SimConfig.dtype = {self.dtype!r}: AMR runs are float64 only")

    @property
    def amr(self) -> bool:
        """True for an AMR-lite run (``levelmax > 0``)."""
        return self.levelmax > 0

    # -- derived quantities -------------------------------------------------------------
    @property
    def map_cells(self) -> int:
        """Pixels per side of the projected maps: ``2^levelmax`` for an AMR-lite run (its
        finest level, so the maps carry the mesh pattern), ``cells`` otherwise."""
        return 2**self.levelmax if self.amr else self.cells

    @property
    def sound_speed(self) -> float:
        """Isothermal sound speed [cm/s]."""
        return units.sound_speed(self.temperature, self.mu)

    @property
    def code_units(self) -> dict:
        """cgs value of one code unit (see :func:`turbsim.units.code_units`)."""
        return units.code_units(self.box, self.density, self.temperature, self.mu)

    @property
    def t_end_code(self) -> float:
        """End time in code units (box / c_s)."""
        return self.t_end * units.MYR / self.code_units["time"]

    @property
    def dx_cm(self) -> float:
        """Cell size [cm]."""
        return self.box * units.PC / self.cells

    # -- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (JSON-serialisable).

        A uniform run whose AMR-lite fields all hold their defaults leaves them out: they
        have no effect, and so its record (and an ensemble's fingerprint, the key of a
        resumed run's part files) is the one earlier versions wrote. :meth:`from_dict`
        restores the defaults, so the round trip is exact.

        Examples
        --------
        >>> "levelmax" in SimConfig().to_dict(), "levelmax" in SimConfig(cells=64, levelmin=5, levelmax=6).to_dict()
        (False, True)
        >>> SimConfig.from_dict(SimConfig().to_dict()) == SimConfig()
        True
        """
        d = dataclasses.asdict(self)
        if all(d[k] == _DEFAULTS[k] for k in AMR_FIELDS):
            for k in AMR_FIELDS:
                del d[k]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SimConfig":
        """Build a config from a dict; unknown keys raise ``ValueError``."""
        if not isinstance(d, dict):
            raise ValueError(f"SimConfig.from_dict needs a dict, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"SimConfig has no field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**d)

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "SimConfig":
        """Inverse of :meth:`to_json`."""
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"SimConfig JSON is not valid: {exc}") from None
        return cls.from_dict(d)

    def replace(self, **changes) -> "SimConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


_DEFAULTS = {f.name: f.default for f in fields(SimConfig)}

_ENTRY = re.compile(r"^    (\w+) : .*$", re.M)


def field_docs(cls: type) -> dict[str, str]:
    """The first sentence of each entry of a class's numpy-style ``Parameters`` section.

    The one source of the help text of a configuration's fields: command-line options
    built from a dataclass (``python -m turbsim.generate``'s) take their help from here.
    Inline markup (````x````, ``:func:`x```) is reduced to plain text.

    Parameters
    ----------
    cls : type
        A class whose docstring has a ``Parameters`` section (``name : type`` lines
        indented by 4 spaces, descriptions by 8).

    Returns
    -------
    dict
        Field name -> first sentence of its description (without a trailing period).

    Examples
    --------
    >>> field_docs(SimConfig)["box"]
    'Box side [pc], in (0, 1e6]'
    >>> field_docs(SimConfig)["cells"]
    'Cells per side of the cubic grid, even, in [4, 4096]'
    """
    doc = cls.__doc__ or ""
    start = doc.find("Parameters\n    ----------")
    if start < 0:
        return {}
    section = doc[start:]
    end = re.search(r"\n\n    [A-Z]\w*\n    -+\n", section)  # the next section, if any
    section = section[: end.start()] if end else section
    out: dict[str, str] = {}
    entries = list(_ENTRY.finditer(section))
    for entry, nxt in zip(entries, entries[1:] + [None]):
        text = section[entry.end(): nxt.start() if nxt else len(section)]
        text = " ".join(text.split())
        text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text).replace("``", "")
        first = re.split(r"(?<=[a-z0-9\])\]])\. ", text + " ", maxsplit=1)[0].strip()
        out[entry.group(1)] = first.rstrip(".")
    return out

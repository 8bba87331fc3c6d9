"""Simulation configuration: one frozen, validated dataclass.

Every field is checked once, at construction; a bad value raises ``ValueError`` naming the
field, the value and the allowed range. A config round-trips through a plain ``dict`` and
JSON, so it can be stored next to every simulation it produced.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

from . import units

SCHEMES = ("first", "muscl")
LIMITERS = ("minmod", "moncen")
DTYPES = ("float64", "float32")
IC_METHODS = ("fourier", "white_noise")
STOPS = ("exact", "after")


def _check_real(name, value, lo, hi, lo_open=False, hi_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"SimConfig.{name} must be a number, got {value!r}")
    v = float(value)
    lo_ok = v > lo if lo_open else v >= lo
    hi_ok = v < hi if hi_open else v <= hi
    if not (math.isfinite(v) and lo_ok and hi_ok):
        rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise ValueError(f"SimConfig.{name} = {value!r} is outside the allowed range {rng}")
    return v


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"SimConfig.{name} = {value!r} is not one of {', '.join(map(repr, choices))}")
    return value


def _check_int(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"SimConfig.{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"SimConfig.{name} = {value!r} is outside the allowed range [{lo}, {hi}]")
    return value


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
        Random seed of the initial velocity field, in [0, 2^63). Default 0.
    cells : int
        Cells per side of the cubic grid, even, in [4, 4096]. Default 128.
    t_end : float
        End time [Myr], in [0, 1e4]. Default 0.5.
    scheme : {"first", "muscl"}
        First-order Godunov or unsplit MUSCL-Hancock (RAMSES's scheme). Default "muscl".
    limiter : {"minmod", "moncen"}
        Slope limiter of MUSCL-Hancock (RAMSES ``slope_type`` 1 and 2). Default "minmod".
    courant : float
        Courant number, in (0, 1]. Default 0.8.
    dtype : {"float64", "float32"}
        Floating-point type of the solver. Default "float64".
    ic : {"fourier", "white_noise"}
        How the random velocity field is drawn: ``"fourier"`` draws Fourier modes so that
        grids of different sizes share their common modes; ``"white_noise"`` follows the
        convention of the shared RAMSES runs (real white noise filtered in Fourier space,
        ``numpy.random.default_rng(seed)``), reproducing their initial conditions.
    gamma : float
        Adiabatic index used *inside* a step, in [1, 5/3]: RAMSES runs isothermal gas as an
        adiabatic step with ``gamma`` (1.0001 in the shared runs) followed by a temperature
        reset, so its Riemann solver and time step use ``c = sqrt(gamma) c_s``. 1 is
        exactly isothermal. Default 1.
    ramses_dt : bool
        Use RAMSES's time-step rule exactly, including the small correction factor of
        ``cmpdt`` when gravity is off. Default False.
    stop : {"exact", "after"}
        ``"exact"``: the last step is shortened so the run ends exactly at ``t_end``.
        ``"after"``: full steps only, ending with the first step that reaches ``t_end``:
        RAMSES writes its outputs so, hence its snapshot times overshoot the requested time
        (0.51-0.57 Myr for 0.5 Myr in the shared 64^3 runs); the time reached is recorded.
        Default "exact".
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

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        set_("box", _check_real("box", self.box, 0, 1e6, lo_open=True))
        set_("density", _check_real("density", self.density, 0, 1.0, lo_open=True))
        set_("temperature", _check_real("temperature", self.temperature, 0, 1e9, lo_open=True))
        set_("mu", _check_real("mu", self.mu, 0, 100, lo_open=True))
        set_("mach", _check_real("mach", self.mach, 0, 100))
        set_("n", _check_real("n", self.n, 0, 10))
        set_("solenoidal", _check_real("solenoidal", self.solenoidal, 0, 1))
        set_("seed", _check_int("seed", self.seed, 0, 2**63 - 1))
        cells = _check_int("cells", self.cells, 4, 4096)
        if cells % 2:
            raise ValueError(f"SimConfig.cells = {cells} must be even (quadrant cuts halve the map)")
        set_("cells", cells)
        set_("t_end", _check_real("t_end", self.t_end, 0, 1e4))
        _check_choice("scheme", self.scheme, SCHEMES)
        _check_choice("limiter", self.limiter, LIMITERS)
        set_("courant", _check_real("courant", self.courant, 0, 1, lo_open=True))
        _check_choice("dtype", self.dtype, DTYPES)
        _check_choice("ic", self.ic, IC_METHODS)
        set_("gamma", _check_real("gamma", self.gamma, 1.0, 5.0 / 3.0))
        if not isinstance(self.ramses_dt, bool):
            raise ValueError(f"SimConfig.ramses_dt must be True or False, got {self.ramses_dt!r}")
        _check_choice("stop", self.stop, STOPS)

    # -- derived quantities -------------------------------------------------------------
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
        """Plain dict of the fields (JSON-serialisable)."""
        return dataclasses.asdict(self)

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

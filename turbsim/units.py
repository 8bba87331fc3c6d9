"""Physical constants and unit conversions (cgs).

Physical inputs are given in astronomers' units (pc, Myr, K, g/cm^3) and converted here,
once. The solver works in *code units*: box length = 1, isothermal sound speed = 1,
mean density = 1, so the code time unit is ``box / c_s``.

The constants are the ones RAMSES uses, so that turbsim and RAMSES agree on the sound speed
of the same gas to round-off:

* ``K_B = 1.3806490e-16`` erg/K (Boltzmann constant),
* ``M_H = 1.6605390e-24`` g (RAMSES's ``mH``: the atomic mass unit),
* ``PC = 3.0857e18`` cm, ``MYR = 3.15576e13`` s (Julian Myr), ``MSUN = 1.989e33`` g.

Sound speed
-----------
The isothermal sound speed is ``c_s = sqrt(k_B T / (mu m_H))``. turbsim's default mean
molecular weight is ``mu = 2.37`` (molecular gas with helium), which gives
``c_s = 0.1873 km/s`` at 10 K. RAMSES's default ``mu_gas = 1`` gives ``0.288 km/s``
(0.287 km/s with the hydrogen-atom mass) at the same temperature, i.e. a 54% faster sound
speed: always set ``mu_gas`` explicitly when comparing with RAMSES.
"""
from __future__ import annotations

import math

K_B = 1.3806490e-16
"""Boltzmann constant [erg/K]."""
M_H = 1.6605390e-24
"""Mass unit of the mean molecular weight [g] (RAMSES's ``mH``)."""
PC = 3.0857e18
"""Parsec [cm]."""
MYR = 3.15576e13
"""Mega-year (Julian) [s]."""
MSUN = 1.989e33
"""Solar mass [g]."""
KM = 1.0e5
"""Kilometre [cm]."""


def sound_speed(temperature: float, mu: float = 2.37) -> float:
    """Isothermal sound speed.

    Parameters
    ----------
    temperature : float
        Gas temperature [K].
    mu : float, optional
        Mean molecular weight in units of ``M_H`` (default 2.37, molecular gas).

    Returns
    -------
    float
        ``sqrt(k_B T / (mu m_H))`` [cm/s].

    Examples
    --------
    >>> round(sound_speed(10.0, 2.37) / 1e5, 4)
    0.1873
    """
    if temperature <= 0 or mu <= 0:
        raise ValueError(f"temperature and mu must be positive, got {temperature!r}, {mu!r}")
    return math.sqrt(K_B * temperature / (mu * M_H))


def code_units(box_pc: float, density: float, temperature: float, mu: float = 2.37) -> dict:
    """The cgs value of one code unit for a simulation.

    Parameters
    ----------
    box_pc : float
        Box side [pc].
    density : float
        Mean density [g/cm^3].
    temperature : float
        Temperature [K].
    mu : float
        Mean molecular weight.

    Returns
    -------
    dict
        ``length`` [cm], ``density`` [g/cm^3], ``velocity`` [cm/s], ``time`` [s],
        ``mass`` [g], ``column_density`` [g/cm^2] of one code unit.
    """
    length = box_pc * PC
    velocity = sound_speed(temperature, mu)
    return {
        "length": length,
        "density": density,
        "velocity": velocity,
        "time": length / velocity,
        "mass": density * length**3,
        "column_density": density * length,
    }

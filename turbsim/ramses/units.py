"""RAMSES code units: the cgs value of one code unit, and which unit each field carries.

RAMSES defines its code units by three numbers of the info file: ``unit_l`` [cm],
``unit_d`` [g/cm^3] and ``unit_t`` [s]; every other unit is derived from them.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["code_units", "field_dimension", "to_cgs"]

_CGS = {"length": "cm", "density": "g/cm^3", "time": "s", "velocity": "cm/s", "mass": "g",
        "pressure": "dyn/cm^2", "column_density": "g/cm^2"}
"""The cgs unit of each code unit (for messages)."""


def code_units(unit_l: float, unit_d: float, unit_t: float) -> dict[str, float]:
    """cgs value of one RAMSES code unit.

    Parameters
    ----------
    unit_l, unit_d, unit_t : float
        Length [cm], density [g/cm^3] and time [s] units from ``info_NNNNN.txt``.

    Returns
    -------
    dict
        ``length`` [cm], ``density`` [g/cm^3], ``time`` [s], ``velocity`` [cm/s],
        ``mass`` [g], ``pressure`` [dyn/cm^2], ``column_density`` [g/cm^2].

    Raises
    ------
    ValueError
        If a unit, given or derived, is not a positive finite number (e.g. ``unit_l =
        1e200`` cm makes the mass unit overflow to infinity); the message names it.

    Examples
    --------
    >>> u = code_units(3.0857e19, 6.77e-22, 3.15576e13)
    >>> round(u["velocity"])
    977799
    >>> code_units(1e200, 6.77e-22, 3.15576e13)
    Traceback (most recent call last):
    ...
    ValueError: unit_l = 1e+200 cm, unit_d = 6.77e-22 g/cm^3, unit_t = 31557600000000.0 s give a mass unit of inf g; every unit must be a positive finite number
    """
    length, density, time = (np.float64(u) for u in (unit_l, unit_d, unit_t))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # checked below
        velocity = length / time
        derived = {"velocity": velocity, "mass": density * length**3, "pressure": density * velocity**2,
                   "column_density": density * length}
    units = {"length": float(unit_l), "density": float(unit_d), "time": float(unit_t),
             **{k: float(v) for k, v in derived.items()}}
    for name, value in units.items():
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"unit_l = {unit_l!r} cm, unit_d = {unit_d!r} g/cm^3, unit_t = {unit_t!r} s "
                             f"give a {name} unit of {value!r} {_CGS[name]}; every unit must be a positive "
                             "finite number")
    return units



def field_dimension(name: str) -> str | None:
    """Which code unit a cell field or table column is measured in.

    Parameters
    ----------
    name : str
        Field name (``density``, ``velocity_x``, ``pressure``, ``x``, ``dx``, ...).

    Returns
    -------
    str or None
        A key of :func:`code_units`, ``"1"`` for dimensionless fields (``level``,
        ``metallicity``, passive scalars), or ``None`` when unknown (e.g. magnetic fields).
    """
    if name in ("x", "y", "z", "dx"):
        return "length"
    if name == "density":
        return "density"
    if name.startswith("velocity_"):
        return "velocity"
    if name.startswith("pressure") or name.startswith("non_thermal_pressure"):
        return "pressure"
    if name in ("level", "metallicity") or name.startswith("scalar_"):
        return "1"
    return None


def to_cgs(table: dict[str, np.ndarray], units: dict[str, float]) -> dict[str, np.ndarray]:
    """Convert a table of code-unit columns to cgs.

    Parameters
    ----------
    table : dict of numpy.ndarray
        Columns in code units (as returned by ``RamsesDataset.cells()``).
    units : dict
        Output of :func:`code_units`.

    Returns
    -------
    dict of numpy.ndarray
        Same keys; known dimensional columns multiplied by their unit, dimensionless ones
        unchanged.

    Raises
    ------
    ValueError
        If a column has no known unit (the caller must convert it explicitly).
    """
    out = {}
    for name, values in table.items():
        dim = field_dimension(name)
        if dim is None:
            raise ValueError(f"field {name!r} has no known cgs unit; convert it explicitly")
        out[name] = values if dim == "1" else values * units[dim]
    return out

"""Validation of configuration fields: one set of checks for every frozen config.

Every configuration dataclass of the project (:class:`turbsim.SimConfig`,
:class:`turbsim.ensemble_plan.EnsembleConfig`, ``learn.config.TrainConfig``) checks its
fields once, at construction, with these functions. Each returns the value in its
canonical type or raises ``ValueError`` whose message names the owner, the field, the
value and what is allowed, e.g. ``SimConfig.box = 1e+400 is outside the allowed range
(0, 1e+06]``. Nothing else (no ``OverflowError``, no ``TypeError``) escapes.

Examples
--------
>>> real("SimConfig", "box", 10, 0, 1e6, lo_open=True)
10.0
>>> real("SimConfig", "box", 10**400, 0, 1e6, lo_open=True)
Traceback (most recent call last):
...
ValueError: SimConfig.box = 10**400 is outside the allowed range (0, 1e+06]
>>> integer("TrainConfig", "epochs", 3.0, 1)
3
>>> choice("SimConfig", "scheme", "second", ("first", "muscl"))
Traceback (most recent call last):
...
ValueError: SimConfig.scheme = 'second' is not one of 'first', 'muscl'
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

INF = math.inf


def _show(value: Any) -> str:
    """``repr`` of a value, short for integers too large to print in full."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        return f"10**{len(str(abs(value))) - 1}" if value > 0 else f"-10**{len(str(abs(value))) - 1}"
    return repr(value)


def _interval(lo: float, hi: float, lo_open: bool, hi_open: bool) -> str:
    return f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"


def real(owner: str, name: str, value: Any, lo: float = -INF, hi: float = INF, *,
         lo_open: bool = False, hi_open: bool = False) -> float:
    """A finite real number in an interval.

    Parameters
    ----------
    owner, name : str
        Class and field named in the error message.
    value : object
        The value to check (``int`` or ``float``; ``bool`` is refused).
    lo, hi : float
        Bounds of the allowed interval.
    lo_open, hi_open : bool
        Exclude the bound itself.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Not a number, not finite, too large for a float, or outside the interval.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{owner}.{name} must be a number, got {_show(value)}")
    rng = _interval(lo, hi, lo_open, hi_open)
    try:
        v = float(value)
    except OverflowError:
        raise ValueError(f"{owner}.{name} = {_show(value)} is outside the allowed range {rng}") from None
    lo_ok = v > lo if lo_open else v >= lo
    hi_ok = v < hi if hi_open else v <= hi
    if not (math.isfinite(v) and lo_ok and hi_ok):
        raise ValueError(f"{owner}.{name} = {_show(value)} is outside the allowed range {rng}")
    return v


def integer(owner: str, name: str, value: Any, lo: float = -INF, hi: float = INF) -> int:
    """An integer in ``[lo, hi]`` (a float with an integral value is accepted).

    Raises
    ------
    ValueError
        Not an integer, or outside the interval.
    """
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{owner}.{name} must be an integer, got {_show(value)}")
    if not lo <= value <= hi:
        show = lambda b: str(b) if isinstance(b, int) else f"{b:g}"  # noqa: E731 (exact integer bounds)
        bounds = f"[{show(lo)}, {show(hi)}]"
        raise ValueError(f"{owner}.{name} = {_show(value)} is outside the allowed range {bounds}")
    return int(value)


def positive(owner: str, name: str, value: Any, *, kind: Callable = int, zero_ok: bool = False) -> Any:
    """A number ``> 0`` (``>= 0`` with ``zero_ok``), an integer when ``kind`` is ``int``."""
    if kind is int:
        return integer(owner, name, value, 0 if zero_ok else 1)
    return real(owner, name, value, 0, INF, lo_open=not zero_ok, hi_open=True)


def choice(owner: str, name: str, value: Any, choices: Sequence) -> Any:
    """One of ``choices`` (returned unchanged).

    Raises
    ------
    ValueError
        Not among the choices (all of them are listed).
    """
    try:
        ok = value in choices
    except TypeError:  # unhashable value against a set
        ok = False
    if not ok:
        raise ValueError(f"{owner}.{name} = {_show(value)} is not one of {', '.join(map(repr, choices))}")
    return value


def flag(owner: str, name: str, value: Any) -> bool:
    """``True`` or ``False`` (nothing else, not even 0 or 1)."""
    if not isinstance(value, bool):
        raise ValueError(f"{owner}.{name} must be True or False, got {_show(value)}")
    return value


def sequence(owner: str, name: str, value: Any, kind: Callable = float, *,
             length: int | None = None) -> tuple:
    """A list or tuple converted element-wise by ``kind`` (a string is not a sequence here).

    Raises
    ------
    ValueError
        Not a sequence, an element ``kind`` refuses, or the wrong length.
    """
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"{owner}.{name} must be a list, got {_show(value)}")
    try:
        out = tuple(kind(v) for v in value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{owner}.{name} = {value!r} must hold {getattr(kind, '__name__', 'valid')} values") from None
    if length is not None and len(out) != length:
        raise ValueError(f"{owner}.{name} = {value!r} must hold {length} values, got {len(out)}")
    return out

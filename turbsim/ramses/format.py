"""RAMSES output format description: the text files and the layout of the binary files.

This module knows *what* a RAMSES output contains (the info file, the hydro field
descriptor, the header records of the ``amr_`` and ``hydro_`` files, the per-oct records);
:mod:`turbsim.ramses.records` knows *how* Fortran records are read, and
:mod:`turbsim.ramses.reader` puts the two together. The layout follows the shared
``FORMAT.md`` (RAMSES ``stable``, 2024) and yt's RAMSES frontend.

Supported: ``ndim = 3``, any ``ncpu``, periodic boxes (``nboundary = 0``) and boxes with
boundary regions (their lists are skipped), Hilbert or bisection ordering, reals of 4 or
8 bytes, default 4-byte integers (no ``LONGINT`` build), no ``QUADHILBERT`` keys.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "RamsesFormatError",
    "InfoFile",
    "FieldSpec",
    "parse_info",
    "parse_descriptor",
    "positional_names",
    "DESCRIPTOR_TYPES",
    "AMR_OCT_RECORDS",
    "HYDRO_HEADER",
]


class RamsesFormatError(ValueError):
    """A RAMSES output is missing, truncated or not what its headers say.

    The message names the offending file and what was expected there.
    """


# Descriptor type codes (``hydro_file_descriptor.txt``, version 1) -> numpy dtype.
DESCRIPTOR_TYPES = {
    "d": np.dtype("<f8"),
    "f": np.dtype("<f4"),
    "i": np.dtype("<i4"),
    "q": np.dtype("<i8"),
    "b": np.dtype("<i1"),
    "h": np.dtype("<i2"),
    "?": np.dtype("<i4"),  # Fortran default logical: 4 bytes
}

# Integer keys of the info file; every other ``name = value`` line is read as a float.
_INFO_INT_KEYS = ("ncpu", "ndim", "levelmin", "levelmax", "ngridmax", "nstep_coarse")
_INFO_REQUIRED = _INFO_INT_KEYS + ("boxlen", "time", "unit_l", "unit_d", "unit_t")

# Info values that must be positive and finite, and what they mean (for error messages).
_INFO_POSITIVE = {"boxlen": "box size [code length]", "aexp": "expansion factor",
                  "unit_l": "length unit [cm]", "unit_d": "density unit [g/cm^3]",
                  "unit_t": "time unit [s]"}

# Old descriptor names (RAMSES before 2018) -> current names.
_OLD_NAMES = {"thermal_pressure": "pressure"}


@dataclass(frozen=True)
class InfoFile:
    """Contents of ``info_NNNNN.txt``.

    Attributes
    ----------
    path : pathlib.Path
        The file that was parsed.
    ncpu, ndim, levelmin, levelmax, ngridmax, nstep_coarse : int
        Run layout: number of CPU files, dimensions, coarsest/finest level, oct slots,
        coarse steps done.
    boxlen : float
        Box size in code length units (per coarse cell).
    time : float
        Snapshot time [code units].
    aexp : float
        Expansion factor (1 for non-cosmological runs).
    unit_l, unit_d, unit_t : float
        cgs value of one code unit of length [cm], density [g/cm^3] and time [s].
    ordering : str
        Domain decomposition (``hilbert``, ``bisection``, ...).
    bound_keys : numpy.ndarray
        ``(ndomain+1,)`` domain boundaries of the ordering (Hilbert keys); may be empty.
    """

    path: Path
    ncpu: int
    ndim: int
    levelmin: int
    levelmax: int
    ngridmax: int
    nstep_coarse: int
    boxlen: float
    time: float
    aexp: float
    unit_l: float
    unit_d: float
    unit_t: float
    ordering: str
    bound_keys: np.ndarray


@dataclass(frozen=True)
class FieldSpec:
    """One variable of the hydro files.

    Attributes
    ----------
    name : str
        Field name as in the current descriptor (``density``, ``velocity_x``, ...,
        ``pressure``, ``scalar_01``, ...).
    dtype : numpy.dtype or None
        Storage type; ``None`` when the descriptor does not say (old form, positional
        names): the reader then takes the real size from the record lengths.
    """

    name: str
    dtype: np.dtype | None


def parse_info(path) -> InfoFile:
    """Parse a RAMSES ``info_NNNNN.txt`` file.

    Parameters
    ----------
    path : str or os.PathLike
        The info file.

    Returns
    -------
    InfoFile
        Parsed values; lengths, densities and times in code units, units in cgs.

    Raises
    ------
    RamsesFormatError
        If the file is missing, a required key is absent, a value cannot be parsed, or a
        unit, ``boxlen`` or ``aexp`` is not a positive finite number (or ``time`` is not
        finite): the message names the file, the key and its text.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise RamsesFormatError(f"{path}: cannot read the info file ({exc.strerror})") from None
    values: dict[str, str] = {}
    ordering = ""
    keys: list[float] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("ordering type"):
            ordering = line.split("=", 1)[1].strip()
            # Domain table: "DOMAIN ind_min ind_max" header then one line per domain.
            for row in lines[i + 2:]:
                parts = row.split()
                if len(parts) != 3:
                    break
                try:
                    lo, hi = float(parts[1]), float(parts[2])
                except ValueError:
                    break
                if not keys:
                    keys.append(lo)
                keys.append(hi)
            break
        if "=" in line:
            name, value = line.split("=", 1)
            values[name.strip()] = value.strip()
    missing = [k for k in _INFO_REQUIRED if k not in values]
    if missing:
        raise RamsesFormatError(f"{path}: info file lacks {', '.join(missing)}")
    parsed: dict[str, object] = {}
    for name in _INFO_REQUIRED + ("aexp",):
        raw = values.get(name, "1.0")
        try:
            parsed[name] = int(raw) if name in _INFO_INT_KEYS else float(raw.replace("D", "E"))
        except ValueError:
            kind = "an integer" if name in _INFO_INT_KEYS else "a number"
            raise RamsesFormatError(f"{path}: {name} = {raw!r} is not {kind}") from None
    if parsed["ncpu"] < 1 or not 1 <= parsed["levelmin"] <= parsed["levelmax"]:
        raise RamsesFormatError(
            f"{path}: expected ncpu >= 1 and 1 <= levelmin <= levelmax, got ncpu={parsed['ncpu']}, "
            f"levelmin={parsed['levelmin']}, levelmax={parsed['levelmax']}"
        )
    if parsed["ndim"] != 3:
        raise RamsesFormatError(f"{path}: only 3D outputs are supported, ndim = {parsed['ndim']}")
    for name, meaning in _INFO_POSITIVE.items():
        if not (math.isfinite(parsed[name]) and parsed[name] > 0):
            raise RamsesFormatError(f"{path}: {name} = {values.get(name, '1.0')} is not a positive finite "
                                    f"number ({meaning})")
    if not math.isfinite(parsed["time"]):
        raise RamsesFormatError(f"{path}: time = {values['time']} is not a finite number")
    return InfoFile(path=path, ordering=ordering, bound_keys=np.asarray(keys, dtype=np.float64),
                    **parsed)


_VERSION_RE = re.compile(r"#\s*version:\s*(\d+)")
_NEW_LINE_RE = re.compile(r"\s*(\d+)\s*,\s*([^\s,]+)\s*,\s*([^\s,]+)\s*$")
_OLD_LINE_RE = re.compile(r"\s*variable\s*#\s*(\d+)\s*:\s*(\S+)\s*$")


def parse_descriptor(path) -> list[FieldSpec]:
    """Parse ``hydro_file_descriptor.txt`` in its current or its old form.

    Current form (RAMSES >= 2018)::

        # version:  1
        # ivar, variable_name, variable_type
         1, density, d

    Old form (no types; reals of the build's precision)::

        nvar        =          5
        variable #  1: density
        variable #  5: thermal_pressure

    Parameters
    ----------
    path : str or os.PathLike
        The descriptor file.

    Returns
    -------
    list of FieldSpec
        Fields in file order. Old names are mapped to current ones
        (``thermal_pressure`` -> ``pressure``).

    Raises
    ------
    RamsesFormatError
        Unknown version, unknown type code, a line that does not parse, or numbering
        that is not 1, 2, 3, ...
    """
    path = Path(path)
    try:
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    except OSError as exc:
        raise RamsesFormatError(f"{path}: cannot read the descriptor ({exc.strerror})") from None
    if not lines:
        raise RamsesFormatError(f"{path}: the descriptor is empty")
    match = _VERSION_RE.match(lines[0])
    specs: list[tuple[int, FieldSpec]] = []
    if match:
        version = int(match.group(1))
        if version != 1:
            raise RamsesFormatError(f"{path}: descriptor version {version} is unknown (expected 1)")
        for ln in lines[1:]:
            if ln.lstrip().startswith("#"):
                continue
            m = _NEW_LINE_RE.match(ln)
            if not m:
                raise RamsesFormatError(f"{path}: cannot parse line {ln!r} (expected 'ivar, name, type')")
            code = m.group(3)
            if code not in DESCRIPTOR_TYPES:
                raise RamsesFormatError(
                    f"{path}: unknown variable type {code!r} for {m.group(2)!r} "
                    f"(expected one of {', '.join(DESCRIPTOR_TYPES)})"
                )
            specs.append((int(m.group(1)), FieldSpec(m.group(2), DESCRIPTOR_TYPES[code])))
    else:
        for ln in lines:
            if ln.strip().startswith("nvar"):
                continue
            m = _OLD_LINE_RE.match(ln)
            if not m:
                raise RamsesFormatError(
                    f"{path}: not a hydro descriptor: line {ln!r} matches neither the current "
                    "form ('# version: 1') nor the old form ('variable # i: name')"
                )
            name = _OLD_NAMES.get(m.group(2), m.group(2))
            specs.append((int(m.group(1)), FieldSpec(name, None)))
    numbers = [i for i, _ in specs]
    if numbers != list(range(1, len(specs) + 1)):
        raise RamsesFormatError(f"{path}: variables are numbered {numbers}, expected 1..{len(specs)}")
    names = [s.name for _, s in specs]
    if len(set(names)) != len(names):
        raise RamsesFormatError(f"{path}: duplicate variable names in {names}")
    return [s for _, s in specs]


def positional_names(nvar: int) -> list[FieldSpec]:
    """Field names by position when there is no descriptor, as yt's RAMSES frontend does.

    Parameters
    ----------
    nvar : int
        Number of variables in the hydro file (from its header).

    Returns
    -------
    list of FieldSpec
        density, velocity_x/y/z, pressure (pure hydro, ``nvar = 5``); with
        ``5 < nvar < 11`` a 6th ``metallicity``; with ``nvar >= 11`` the MHD layout
        (``B_x_left`` ... ``B_z_right`` before ``pressure``, then ``metallicity``);
        any further variable is ``var_<index>`` (0-based, as in yt).

    Raises
    ------
    RamsesFormatError
        If ``nvar < 5`` (yt does not support 1D/2D runs either).
    """
    if nvar < 5:
        raise RamsesFormatError(f"nvar = {nvar} is too small for a 3D hydro run (expected >= 5)")
    base = ["density", "velocity_x", "velocity_y", "velocity_z"]
    if nvar >= 11:
        names = base + [f"B_{d}_{s}" for s in ("left", "right") for d in "xyz"] + ["pressure"]
        if nvar > 11:
            names.append("metallicity")
    else:
        names = base + ["pressure"] + (["metallicity"] if nvar > 5 else [])
    names += [f"var_{i}" for i in range(len(names), nvar)]
    return [FieldSpec(n, None) for n in names]


# ---------------------------------------------------------------------------------------
# Binary layout. Each entry: (name, kind, count); kind "i" = 4-byte int, "r" = real of the
# build precision, "c" = characters; count is a number of values, or a string naming a
# header value ("ncpu", "nlevelmax", ...) that is multiplied out by the reader.

AMR_HEADER_A = (
    ("ncpu", "i", 1), ("ndim", "i", 1), ("nx", "i", 3), ("nlevelmax", "i", 1),
    ("ngridmax", "i", 1), ("nboundary", "i", 1), ("ngrid_current", "i", 1), ("boxlen", "r", 1),
)
"""AMR header records 1-8; these fix the sizes of the ones that follow."""

AMR_HEADER_B = (
    ("noutput_iout_ifout", "i", 3), ("tout", "r", "noutput"), ("aout", "r", "noutput"),
    ("t", "r", 1), ("dtold", "r", "nlevelmax"), ("dtnew", "r", "nlevelmax"), ("nstep", "i", 2),
    ("einit_mass_rho", "r", 3), ("cosmo", "r", 7), ("aexp", "r", 5), ("mass_sph", "r", 1),
    ("headl", "i", "ncpu*nlevelmax"), ("taill", "i", "ncpu*nlevelmax"),
    ("numbl", "i", "ncpu*nlevelmax"), ("numbtot", "i", "10*nlevelmax"),
)
"""AMR header records 9-23."""

AMR_BOUNDARY = (("headb", "i", "nboundary*nlevelmax"), ("tailb", "i", "nboundary*nlevelmax"),
                ("numbb", "i", "nboundary*nlevelmax"))
"""Records 23a-c, present only when ``nboundary > 0``."""

AMR_HEADER_C = (("free_mem", "i", 5), ("ordering", "c", 128))
"""Records 24-25; then the ordering records and the three coarse-cell records."""

AMR_OCT_RECORDS = (
    ("ind_grid", "i"), ("next", "i"), ("prev", "i"), ("x", "r"), ("y", "r"), ("z", "r"),
    ("father", "i"), *[(f"nbor{k}", "i") for k in range(6)],
    *[(f"son{k}", "i") for k in range(8)], *[(f"cpu_map{k}", "i") for k in range(8)],
    *[(f"flag{k}", "i") for k in range(8)],
)
"""The 37 records of one (level, domain) chunk of octs, one value per oct each."""

HYDRO_HEADER = (("ncpu", "i", 1), ("nvar", "i", 1), ("ndim", "i", 1), ("nlevelmax", "i", 1),
                ("nboundary", "i", 1), ("gamma", "r", 1))
"""The 6 header records of a hydro file."""

TWOTONDIM = 8
"""Cells per oct in 3D."""

"""Read RAMSES hydro outputs: leaf cells, uniform cubes and column densities.

A snapshot ``output_NNNNN/`` holds one ``amr_NNNNN.outCCCCC`` (oct tree) and one
``hydro_NNNNN.outCCCCC`` (cell data) file per CPU. :func:`open` reads the chosen CPU
files completely, checks every record marker, keeps the leaf cells (``son == 0``) of the
octs each file *owns* (file ``CCCCC`` also holds ghost copies of its neighbours' octs,
which are dropped), and returns a :class:`RamsesDataset` with the leaf cells grouped by
level. Nothing is returned unless every file read cleanly.

Examples
--------
>>> import turbsim.ramses as tr                                      # doctest: +SKIP
>>> ds = tr.open("kolmo64/output_00002")                             # doctest: +SKIP
>>> rho, vel = ds.to_uniform()          # (64,64,64), (3,64,64,64) code units  # doctest: +SKIP
>>> sigma = ds.column_density(axis=2)   # (64,64) g/cm^2, indexed [ix, iy]       # doctest: +SKIP
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from . import format as fmt
from .format import FieldSpec, InfoFile, RamsesFormatError
from .records import RecordFile
from .units import code_units, to_cgs

logger = logging.getLogger(__name__)

__all__ = ["open", "RamsesDataset", "UniformCube", "LevelCells"]

_INFO_RE = re.compile(r"info_(\d{5})\.txt$")
_OUTPUT_RE = re.compile(r"output_(\d{5})$")
_INT = np.dtype("<i4")
_OCT_INDEX = {name: i for i, (name, _) in enumerate(fmt.AMR_OCT_RECORDS)}
# Offsets (ix, iy, iz) of the 8 cells of an oct (x fastest), shape (8, 3).
_CELL_OFFSETS = np.array([[k & 1, (k >> 1) & 1, k >> 2] for k in range(fmt.TWOTONDIM)])
MAX_DENSITY_CGS = 1e20
"""Largest density a snapshot may hold [g/cm^3]: a million times nuclear density, beyond any
gas RAMSES can evolve; a larger value means a corrupt payload or a wrong ``unit_d``."""


@dataclass(frozen=True)
class LevelCells:
    """The leaf cells of one level.

    Attributes
    ----------
    level : int
        RAMSES level ``l``: cells of size ``boxlen / nx / 2**l``.
    index : numpy.ndarray
        ``(3, m)`` int64 integer cell coordinates on the ``nx * 2**l`` grid of the level.
    values : numpy.ndarray
        ``(nvar, m)`` float64 hydro variables in code units, in descriptor order.
    """

    level: int
    index: np.ndarray
    values: np.ndarray


class UniformCube(NamedTuple):
    """Density and velocity on a uniform grid (unpacks as ``rho, vel = cube``).

    Attributes
    ----------
    density : numpy.ndarray
        ``(N, N, N)`` density [code units], indexed ``[ix, iy, iz]``.
    velocity : numpy.ndarray
        ``(3, N, N, N)`` velocity [code units], indexed ``[component, ix, iy, iz]``.
    """

    density: np.ndarray
    velocity: np.ndarray


def _resolve(path) -> tuple[Path, Path, int]:
    """(output directory, info file, output number) of a snapshot path."""
    path = Path(path)
    if path.is_dir():
        m = _OUTPUT_RE.search(path.name)
        if not m:
            infos = sorted(path.glob("info_?????.txt"))
            if len(infos) != 1:
                raise RamsesFormatError(
                    f"{path}: expected an output_NNNNN folder holding one info_NNNNN.txt")
            return _resolve(infos[0])
        iout = int(m.group(1))
        info = path / f"info_{iout:05d}.txt"
        if not info.is_file():
            raise RamsesFormatError(f"{info}: missing (every RAMSES output folder has one)")
        return path, info, iout
    m = _INFO_RE.search(path.name)
    if not m:
        raise RamsesFormatError(f"{path}: expected an output_NNNNN folder or its info_NNNNN.txt")
    if not path.is_file():
        raise RamsesFormatError(f"{path}: missing")
    return path.parent, path, int(m.group(1))


def _count(spec, header: dict) -> int:
    """Evaluate a record length spec like ``"ncpu*nlevelmax"`` against header values."""
    if isinstance(spec, int):
        return spec
    n = 1
    for token in spec.split("*"):
        n *= int(token) if token.isdigit() else int(header[token])
    return n


def _read_header(rf: RecordFile, layout, header: dict, real: np.dtype) -> None:
    """Read header records of a ``layout`` (see :mod:`.format`) into ``header``."""
    for name, kind, count in layout:
        n = _count(count, header)
        if kind == "c":
            header[name] = rf.read(name, np.uint8, n).tobytes().decode("ascii", "replace").strip()
            continue
        arr = rf.read(name, _INT if kind == "i" else real, n)
        header[name] = arr[0] if n == 1 and name != "nx" else arr
        if name == "noutput_iout_ifout":
            header["noutput"] = int(arr[0])


def _check_header(path: Path, what: str, got, expected) -> None:
    if got != expected:
        raise RamsesFormatError(f"{path}: {what} = {got} in the file header, expected {expected}")


class _CpuFiles:
    """Reads the amr and hydro file of one CPU and keeps the leaf cells it owns."""

    def __init__(self, outdir: Path, iout: int, icpu: int, info: InfoFile,
                 descriptor: list[FieldSpec] | None):
        self.amr_path = outdir / f"amr_{iout:05d}.out{icpu:05d}"
        self.hydro_path = outdir / f"hydro_{iout:05d}.out{icpu:05d}"
        self.icpu = icpu
        self.info = info
        self.descriptor = descriptor

    # -- amr ------------------------------------------------------------------------
    def read_amr(self):
        rf = RecordFile(self.amr_path)
        info, path = self.info, self.amr_path
        h: dict = {}
        _read_header(rf, fmt.AMR_HEADER_A[:7], h, np.dtype("<f8"))
        _check_header(path, "ncpu", int(h["ncpu"]), info.ncpu)
        _check_header(path, "ndim", int(h["ndim"]), info.ndim)
        _check_header(path, "nlevelmax", int(h["nlevelmax"]), info.levelmax)
        nx = [int(v) for v in h["nx"]]
        if len(set(nx)) != 1:
            raise RamsesFormatError(f"{path}: coarse grid nx, ny, nz = {nx}; only cubic coarse grids are supported")
        self.nx = nx[0]
        real_size = rf.peek_size()
        if real_size not in (4, 8):
            raise RamsesFormatError(f"{path}: record 8 (boxlen) has {real_size} bytes, expected 8 or 4 (one real)")
        real = np.dtype(f"<f{real_size}")
        _read_header(rf, fmt.AMR_HEADER_A[7:], h, real)
        boxlen = float(h["boxlen"])
        if not (np.isfinite(boxlen) and boxlen > 0) or abs(boxlen - info.boxlen) > 1e-10 * info.boxlen:
            raise RamsesFormatError(f"{path}: boxlen = {boxlen!r} in the file header, expected the info "
                                    f"file's {info.boxlen!r} [code length]")
        _read_header(rf, fmt.AMR_HEADER_B, h, real)
        nlev, ncpu, nb = int(h["nlevelmax"]), int(h["ncpu"]), int(h["nboundary"])
        counts = h["numbl"].reshape(nlev, ncpu)
        if nb > 0:
            _read_header(rf, fmt.AMR_BOUNDARY, h, real)
            counts = np.concatenate([counts, h["numbb"].reshape(nlev, nb)], axis=1)
        _read_header(rf, fmt.AMR_HEADER_C, h, real)
        nrec_ordering = 5 if h["ordering"].startswith("bisection") else 1
        for k in range(nrec_ordering):
            rf.read(f"ordering record {k + 1}", np.uint8)
        ncoarse = nx[0] ** 3
        for name in ("coarse son", "coarse flag", "coarse cpu_map"):
            rf.read(name, _INT, ncoarse)

        # Oct records: one run over the whole rest of the file, markers checked at once.
        flat = counts.ravel()  # level-major, then domain: file order
        chunks = np.flatnonzero(flat)
        n = flat[chunks].astype(np.int64)
        pattern = np.array([4 if kind == "i" else real.itemsize for _, kind in fmt.AMR_OCT_RECORDS])
        nrec = len(pattern)

        def describe(i):
            c = chunks[i // nrec]
            return (f"level {c // counts.shape[1] + 1}, domain {c % counts.shape[1] + 1}, "
                    f"oct record '{fmt.AMR_OCT_RECORDS[i % nrec][0]}'")

        offsets = rf.run((n[:, None] * pattern[None, :]).ravel(), describe).reshape(-1, nrec)
        rf.expect_end()
        numbtot = h["numbtot"].reshape(nlev, 10)[:, 0]
        octs = {}
        for j, c in enumerate(chunks):
            level, dom = divmod(int(c), counts.shape[1])
            if dom + 1 != self.icpu:
                continue  # ghost copies of other domains' octs, and boundary octs
            m = int(n[j])
            off = offsets[j]
            centre = rf.view(off[_OCT_INDEX["x"]], real, (3, m), real.itemsize * m + 8)
            son = rf.view(off[_OCT_INDEX["son0"]], _INT, (8, m), 4 * m + 8)
            octs[level + 1] = (np.array(centre, dtype=np.float64), np.array(son))
        return {"counts": counts, "octs": octs, "nx": nx[0], "boxlen": boxlen,
                "real": real, "numbtot": numbtot, "t": float(h["t"])}

    # -- hydro ----------------------------------------------------------------------
    def read_hydro(self, amr: dict):
        rf = RecordFile(self.hydro_path)
        path, real = self.hydro_path, amr["real"]
        counts = amr["counts"]
        nlev, nlists = counts.shape
        h: dict = {}
        _read_header(rf, fmt.HYDRO_HEADER[:5], h, real)
        _check_header(path, "ncpu", int(h["ncpu"]), self.info.ncpu)
        _check_header(path, "ndim", int(h["ndim"]), 3)
        _check_header(path, "nlevelmax", int(h["nlevelmax"]), nlev)
        _check_header(path, "nboundary", int(h["nboundary"]), nlists - self.info.ncpu)
        _read_header(rf, fmt.HYDRO_HEADER[5:], h, real)
        gamma = float(h["gamma"])
        if not (np.isfinite(gamma) and gamma > 0):
            raise RamsesFormatError(f"{path}: gamma = {gamma!r} in the file header is not a positive "
                                    "finite adiabatic index")
        nvar = int(h["nvar"])
        specs = self.descriptor if self.descriptor is not None else fmt.positional_names(nvar)
        if len(specs) != nvar:
            raise RamsesFormatError(
                f"{path}: nvar = {nvar} in the file header, but the descriptor lists {len(specs)} "
                f"variables ({', '.join(s.name for s in specs)})")
        dtypes = [s.dtype if s.dtype is not None else real for s in specs]
        fbytes = np.tile([d.itemsize for d in dtypes], fmt.TWOTONDIM)  # cell-major, then var

        flat = counts.ravel().astype(np.int64)
        has = flat > 0
        per_chunk = 2 + has * fbytes.size
        first = np.concatenate(([0], np.cumsum(per_chunk[:-1])))
        sizes = np.empty(int(per_chunk.sum()), np.int64)
        sizes[first] = 4
        sizes[first + 1] = 4
        data_idx = first[has][:, None] + 2 + np.arange(fbytes.size)
        sizes[data_idx] = flat[has][:, None] * fbytes[None, :]

        def describe(i):
            c = int(np.searchsorted(first, i, side="right") - 1)
            k = i - first[c]
            what = ("level number" if k == 0 else "ncache" if k == 1 else
                    f"cell {(k - 2) // nvar + 1}, variable {specs[(k - 2) % nvar].name}")
            return f"level {c // nlists + 1}, domain {c % nlists + 1}, {what}"

        offsets = rf.run(sizes, describe)
        rf.expect_end()
        level_no = np.concatenate([rf.view(o, _INT, (1,)) for o in offsets[first]])
        ncache = np.concatenate([rf.view(o, _INT, (1,)) for o in offsets[first + 1]])
        expect_level = np.repeat(np.arange(1, nlev + 1), nlists)
        bad = (level_no != expect_level) | (ncache != flat)
        if bad.any():
            c = int(np.argmax(bad))
            raise RamsesFormatError(
                f"{path}: level {c // nlists + 1}, domain {c % nlists + 1}: the file says level "
                f"{level_no[c]} with {ncache[c]} octs, expected level {expect_level[c]} with "
                f"{flat[c]} octs (as in {self.amr_path.name})")
        out = {}
        for level, (centre, son) in amr["octs"].items():
            c = (level - 1) * nlists + self.icpu - 1
            m = int(flat[c])
            cols = []
            for j, dt in enumerate(dtypes):
                recs = [rf.view(offsets[first[c] + 2 + k * nvar + j], dt, (m,)) for k in range(8)]
                cols.append(np.stack(recs).astype(np.float64, copy=False))
            values = np.stack(cols, axis=1)  # (8 cells, nvar, m octs)
            out[level] = self._leaves(level, centre, son, values)
            self._check_values(level, *out[level], specs, dtypes)
        return out, specs, gamma

    def _check_values(self, level: int, index: np.ndarray, values: np.ndarray,
                      specs: list[FieldSpec], dtypes: list[np.dtype]) -> None:
        """Raise on a leaf value no RAMSES run can hold: a non-finite real, or a density
        that is not positive or above :data:`MAX_DENSITY_CGS`."""
        for j, (spec, dt) in enumerate(zip(specs, dtypes)):
            if dt.kind != "f":
                continue
            v = values[j]
            bad, why = ~np.isfinite(v), "is not finite"
            if spec.name == "density" and not bad.any():
                bad, why = ~(v > 0), "is not positive"
                if not bad.any():
                    limit = MAX_DENSITY_CGS / self.info.unit_d
                    bad = v > limit
                    why = (f"is above {limit:.3g} code units ({MAX_DENSITY_CGS:g} g/cm^3 with unit_d = "
                           f"{self.info.unit_d!r} g/cm^3)")
            if bad.any():
                k = int(np.argmax(bad))
                raise RamsesFormatError(
                    f"{self.hydro_path}: {spec.name} = {float(v[k])!r} {why} at level {level}, cell "
                    f"{tuple(int(i) for i in index[:, k])} ({int(bad.sum())} such leaf cells)")

    def _leaves(self, level: int, centre: np.ndarray, son: np.ndarray, values: np.ndarray):
        """Integer coordinates (3, k) and values (nvar, k) of the leaf cells of some octs."""
        ncell_side = 2**level * self.nx
        # Oct centre sits on a corner between cells: centre * 2**l = 2 m + 1 (coarse units).
        base = np.rint(centre * 2.0**level).astype(np.int64) - 1  # (3, m)
        leaf = son == 0  # (8, m)
        cell, octi = np.nonzero(leaf)
        index = base[:, octi] + _CELL_OFFSETS[cell].T
        if index.size and (index.min() < 0 or index.max() >= ncell_side):
            raise RamsesFormatError(
                f"{self.amr_path}: level {level} has oct centres outside the box "
                f"(cell index range {index.min()}..{index.max()}, expected 0..{ncell_side - 1})")
        return index, values[cell, :, octi].T



class RamsesDataset:
    """The leaf cells of a RAMSES snapshot, with its header information and units.

    Create with :func:`open`. All geometric quantities are in code units
    (``box = boxlen``); :attr:`units` gives cgs per code unit.

    Attributes
    ----------
    path : pathlib.Path
        The output folder.
    iout : int
        Output number.
    info : InfoFile
        Parsed info file.
    time : float
        Snapshot time [code units]; ``time * units["time"]`` is in seconds.
    units : dict
        cgs per code unit: ``length`` [cm], ``density`` [g/cm^3], ``time`` [s],
        ``velocity`` [cm/s], ``mass`` [g], ``pressure`` [dyn/cm^2], ``column_density``
        [g/cm^2].
    gamma : float
        Adiabatic index from the hydro file header.
    fields : tuple of str
        Hydro variables, in file order.
    levelmin, levelmax : int
        Coarsest and finest level of the run.
    cpus : tuple of int
        The CPU files that were read (1-based).
    levels : dict
        ``{level: LevelCells}`` for every level holding leaf cells.
    """

    def __init__(self, path: Path, iout: int, info: InfoFile, fields: Sequence[str], gamma: float,
                 levels: dict[int, LevelCells], cpus: Sequence[int], nx: int, boxlen: float,
                 units: dict[str, float]):
        self.path = path
        self.iout = iout
        self.info = info
        self.fields = tuple(fields)
        self.gamma = gamma
        self.levels = dict(sorted(levels.items()))
        self.cpus = tuple(cpus)
        self.nx = nx
        self.boxlen = boxlen
        self.time = info.time
        self.levelmin = info.levelmin
        self.levelmax = info.levelmax
        self.units = units
        self._complete = len(self.cpus) == info.ncpu

    def __repr__(self):
        return (f"RamsesDataset({str(self.path)!r}, time={self.time:.6g}, levels={self.levelmin}.."
                f"{self.levelmax}, leaf cells={self.leaf_counts()}, cpus={len(self.cpus)}/{self.info.ncpu})")

    # -- basic quantities ------------------------------------------------------------
    def dx(self, level: int) -> float:
        """Cell size of a level [code length units]."""
        return self.boxlen / self.nx / 2.0**level

    def leaf_counts(self) -> dict[int, int]:
        """Number of leaf cells per level, ``{level: count}``."""
        return {lev: int(c.index.shape[1]) for lev, c in self.levels.items()}

    def field(self, name: str, level: int) -> np.ndarray:
        """Values of one hydro variable on the leaf cells of one level [code units]."""
        try:
            j = self.fields.index(name)
        except ValueError:
            raise KeyError(f"{self.path}: no field {name!r}; fields are {', '.join(self.fields)}") from None
        return self.levels[level].values[j]

    def mass(self) -> float:
        """Total mass of the leaf cells read [code mass units, ``unit_d * unit_l**3``].

        Summed level by level in float64 (``sum(rho) * dx**3``).
        """
        return float(sum(self.field("density", lev).sum() * self.dx(lev) ** 3 for lev in self.levels))

    def cells(self, cgs: bool = False) -> dict[str, np.ndarray]:
        """The leaf cells as a table of columns.

        Parameters
        ----------
        cgs : bool, optional
            Convert to cgs with :attr:`units` (default: code units).

        Returns
        -------
        dict of numpy.ndarray
            ``x, y, z`` (cell centres), ``dx`` (cell size): code length units (or cm);
            ``level`` (int); then every hydro field in code units (or cgs: g/cm^3,
            cm/s, dyn/cm^2). Rows are ordered by level, then by CPU file and oct.
        """
        lev_list = list(self.levels.values())
        table: dict[str, np.ndarray] = {}
        for axis, name in enumerate("xyz"):
            table[name] = np.concatenate(
                [(c.index[axis] + 0.5) * self.dx(c.level) for c in lev_list]) if lev_list else np.empty(0)
        table["level"] = np.concatenate([np.full(c.index.shape[1], c.level, np.int32) for c in lev_list]) \
            if lev_list else np.empty(0, np.int32)
        table["dx"] = np.concatenate([np.full(c.index.shape[1], self.dx(c.level)) for c in lev_list]) \
            if lev_list else np.empty(0)
        for j, name in enumerate(self.fields):
            table[name] = np.concatenate([c.values[j] for c in lev_list]) if lev_list else np.empty(0)
        return to_cgs(table, self.units) if cgs else table

    # -- uniform grids -----------------------------------------------------------------
    def _check_level(self, level):
        level = self.levelmax if level is None else int(level)
        if not 0 <= level <= 12:
            raise ValueError(f"level = {level} is outside 0..12 (grid 1^3 .. 4096^3)")
        return level

    def _deposit(self, level: int, coarse, fine, ndim: int = 3, axis: int | None = None) -> np.ndarray:
        """Sum per-leaf values over the pixels of a uniform grid at ``level``.

        A leaf of level ``l <= level`` puts ``coarse(cells)`` on each of the
        ``f**ndim`` pixels it covers (``f = 2**(level-l)``); a finer leaf adds
        ``fine(cells, r)`` to the one pixel that contains it, with ``r = 2**(level-l) < 1``
        its size in pixels. ``ndim = 2`` sums along ``axis`` (projection); ``coarse`` or
        ``fine`` may be None (those leaves are skipped).
        """
        n = self.nx * 2**level
        out = np.zeros((n,) * ndim)
        keep = [a for a in range(3) if a != axis][:ndim]
        for lev, c in self.levels.items():
            if (coarse if lev <= level else fine) is None:
                continue
            lev_out = min(lev, level)  # leaves are binned at their own level, or at `level`
            n_l = self.nx * 2**lev_out
            flat = np.zeros(c.index.shape[1], np.int64)
            for a in keep:
                flat = flat * n_l + (c.index[a] >> (lev - lev_out))
            vals = coarse(c) if lev <= level else fine(c, 2.0 ** (level - lev))
            grid = np.bincount(flat, weights=vals, minlength=n_l**ndim).reshape((n_l,) * ndim)
            f = 2 ** (level - lev_out)
            if f > 1:  # copy each coarse pixel into its f**ndim children
                spread = grid.reshape(sum(((n_l, 1) for _ in range(ndim)), ()))
                grid = np.broadcast_to(spread, sum(((n_l, f) for _ in range(ndim)), ())).reshape(out.shape)
            out += grid
        return out

    def _normalise(self, cube: np.ndarray, level: int, weight_of) -> np.ndarray:
        """Divide the pixels filled by finer leaves by their summed weight; NaN where no
        leaf was read (``cpus=`` subset)."""
        finer = any(lev > level for lev in self.levels)
        if finer:
            norm = self._deposit(level, None, lambda c, r: weight_of(c) * r**3)
            cube = np.divide(cube, norm, out=cube, where=norm > 0)
        if not self._complete:
            covered = self._deposit(level, lambda c: np.ones(c.index.shape[1]),
                                    lambda c, r: np.full(c.index.shape[1], r**3)) > 0
            cube[~covered] = np.nan
        return cube

    def field_cube(self, name: str, level: int | None = None, weight: str = "volume") -> np.ndarray:
        """One hydro variable on the uniform grid of a level.

        Parameters
        ----------
        name : str
            Field name (see :attr:`fields`).
        level : int, optional
            Grid level, ``N = nx * 2**level`` cells per side (default ``levelmax``).
        weight : {"volume", "mass"}
            How leaves finer than ``level`` are averaged into a pixel. Coarser leaves are
            copied into every pixel they cover, unchanged, either way.

        Returns
        -------
        numpy.ndarray
            ``(N, N, N)`` float64, code units, indexed ``[ix, iy, iz]``. Pixels that no
            leaf read covers (``cpus=`` subset) are NaN.
        """
        level = self._check_level(level)
        if name not in self.fields:
            raise KeyError(f"{self.path}: no field {name!r}; fields are {', '.join(self.fields)}")
        if weight not in ("volume", "mass"):
            raise ValueError(f"weight = {weight!r} is not 'volume' or 'mass'")
        j, rho = self.fields.index(name), self.fields.index("density")
        if weight == "volume":
            w = lambda c: 1.0  # noqa: E731
        else:
            w = lambda c: c.values[rho]  # noqa: E731
        cube = self._deposit(level, lambda c: c.values[j], lambda c, r: c.values[j] * w(c) * r**3)
        return self._normalise(cube, level, w if weight == "mass" else
                               (lambda c: np.ones(c.index.shape[1])))

    def to_uniform(self, level: int | None = None) -> UniformCube:
        """Density and velocity on the uniform grid of a level.

        Leaves coarser than ``level`` are copied into every pixel they cover (as yt's
        ``covering_grid`` does); finer leaves are averaged: density by volume, so the
        mass of every pixel is exactly the mass of the leaves inside it, and velocity by
        mass (momentum / mass), so momentum is conserved too.

        Parameters
        ----------
        level : int, optional
            Grid level, ``N = nx * 2**level`` cells per side (default ``levelmax``).

        Returns
        -------
        UniformCube
            ``density (N,N,N)`` and ``velocity (3,N,N,N)`` in code units, indexed
            ``[ix, iy, iz]``; multiply by ``units["density"]``/``units["velocity"]``
            for g/cm^3 and cm/s.
        """
        level = self._check_level(level)
        rho = self.field_cube("density", level)
        vel = np.stack([self.field_cube(f"velocity_{a}", level, weight="mass") for a in "xyz"])
        return UniformCube(rho, vel)

    def column_density(self, axis: int, level: int | None = None) -> np.ndarray:
        """Column density along one axis, by exact deposition of the leaf cells.

        A leaf of size ``dx`` adds ``rho * dx`` to every pixel it covers, or, when it is
        smaller than a pixel, its mass divided by the pixel area to the pixel under it.

        Parameters
        ----------
        axis : {0, 1, 2}
            Projection axis (x, y, z).
        level : int, optional
            Map level, ``N = nx * 2**level`` pixels per side (default ``levelmax``).

        Returns
        -------
        numpy.ndarray
            ``(N, N)`` float64 column density [g/cm^2], indexed by the two remaining axes
            in order: ``[iy, iz]`` for axis 0, ``[ix, iz]`` for 1, ``[ix, iy]`` for 2.
            Pixels outside the CPU files read get only the columns of what was read.
        """
        if axis not in (0, 1, 2):
            raise ValueError(f"axis = {axis!r} is not 0, 1 or 2")
        level = self._check_level(level)
        rho = self.fields.index("density")
        sigma = self._deposit(level, lambda c: c.values[rho] * self.dx(c.level),
                              lambda c, r: c.values[rho] * self.dx(c.level) * r**2,
                              ndim=2, axis=axis)
        return sigma * self.units["column_density"]


def open(path, cpus: Sequence[int] | None = None) -> RamsesDataset:  # noqa: A001 (mirrors builtins.open)
    """Open a RAMSES snapshot and read its leaf cells.

    Parameters
    ----------
    path : str or os.PathLike
        An ``output_NNNNN`` folder or its ``info_NNNNN.txt``.
    cpus : sequence of int, optional
        CPU files to read (1-based); default all ``ncpu`` of the info file.

    Returns
    -------
    RamsesDataset
        Leaf cells of the owned octs of the files read, in code units.

    Raises
    ------
    RamsesFormatError
        A missing file, a truncated record, a header/footer marker mismatch, an unknown
        descriptor, header values that contradict the info file (e.g. ``ncpu``), a mesh
        that does not tile the box, units that are not positive finite numbers, or a
        leaf value no run can hold (non-finite, or a density that is not positive or
        above :data:`MAX_DENSITY_CGS`); the message names the file, the field and the value.
    """
    outdir, info_path, iout = _resolve(path)
    info = fmt.parse_info(info_path)
    try:
        units = code_units(info.unit_l, info.unit_d, info.unit_t)
    except ValueError as exc:
        raise RamsesFormatError(f"{info_path}: {exc}") from None
    desc_path = outdir / "hydro_file_descriptor.txt"
    descriptor = fmt.parse_descriptor(desc_path) if desc_path.exists() else None
    if descriptor is None:
        logger.info("%s: no hydro_file_descriptor.txt, using positional field names", outdir)
    cpu_list = list(range(1, info.ncpu + 1)) if cpus is None else sorted({int(c) for c in cpus})
    if not cpu_list or cpu_list[0] < 1 or cpu_list[-1] > info.ncpu:
        raise ValueError(f"cpus = {cpus!r}: expected CPU numbers in 1..{info.ncpu} ({info_path})")
    per_level: dict[int, list] = {}
    names, gamma, nx, boxlen, numbtot, own = None, None, 1, info.boxlen, None, {}
    for icpu in cpu_list:
        files = _CpuFiles(outdir, iout, icpu, info, descriptor)
        amr = files.read_amr()
        nx = amr["nx"]
        boxlen, numbtot = amr["boxlen"], amr["numbtot"]
        for lev, (_, son) in amr["octs"].items():
            own[lev] = own.get(lev, 0) + son.shape[1]
        leaves, specs, g = files.read_hydro(amr)
        if names is None:
            names, gamma = [s.name for s in specs], g
        elif g != gamma:
            raise RamsesFormatError(f"{files.hydro_path}: gamma = {g}, but the other CPU files say {gamma}")
        for lev, (index, values) in leaves.items():
            per_level.setdefault(lev, []).append((index, values))
    levels = {}
    for lev, parts in per_level.items():
        index = np.concatenate([p[0] for p in parts], axis=1)
        if index.shape[1]:
            levels[lev] = LevelCells(lev, index, np.concatenate([p[1] for p in parts], axis=1))
    if len(cpu_list) == info.ncpu:
        _check_complete(outdir, info, levels, own, numbtot, nx)
    ds = RamsesDataset(outdir, iout, info, names, gamma, levels, cpu_list, nx, boxlen, units)
    logger.debug("read %r", ds)
    return ds


def _check_complete(outdir: Path, info: InfoFile, levels: dict, own: dict, numbtot, nx: int) -> None:
    """Own octs add up to the header totals and the leaf cells tile the box exactly."""
    for lev in range(1, info.levelmax + 1):
        if own.get(lev, 0) != int(numbtot[lev - 1]):
            raise RamsesFormatError(
                f"{outdir}: level {lev} has {own.get(lev, 0)} owned octs in the CPU files, "
                f"expected numbtot = {int(numbtot[lev - 1])} from the amr headers")
    covered = sum(c.index.shape[1] * 8 ** (info.levelmax - lev) for lev, c in levels.items())
    if covered != (nx * 2**info.levelmax) ** 3:
        raise RamsesFormatError(
            f"{outdir}: the leaf cells cover {covered} of {(nx * 2**info.levelmax) ** 3} finest-level "
            "cells; the mesh is incomplete")


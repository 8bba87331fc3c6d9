"""HDF5 ensembles of labelled simulations: the layout, its writer, checker and lazy reader.

One file holds a whole ensemble: for every simulation its three column-density
projections, its labels (spectral index ``n``, class, split), its full configuration and
its solver statistics. The layout follows The Well's conventions (Ohana et al. 2024):
constant parameters as attributes and 0-d datasets under ``/scalars``, fields under
``/t0_fields`` with one row per trajectory, ``/dimensions`` and ``/boundary_conditions``.

Layout (format ``"turbsim-ensemble"``, version 1; ``S`` simulations of ``N^3`` cells)::

    /                      attrs: format, format_version, dataset_name, preset,
                           ensemble_seed, ensemble_config (JSON), n_trajectories,
                           n_simulations, grid_type="cartesian", n_spatial_dims=2,
                           boundary_conditions="periodic", field_names, simulation_parameters,
                           turbsim_version
    /t0_fields/column_density   float32 (S, 3, N, N) [g/cm^2]; axis 1 = line of sight x, y, z
    /cubes/density              float32 (S, N, N, N) [g/cm^3]  (only if cubes were saved)
    /labels/n                   float64 (S,)  spectral index of the velocity power
    /labels/klass               int8    (S,)  0 kolmogorov, 1 burgers, ..., -1 none
    /labels/split               uint8   (S,)  0 train, 1 test, 2 holdout
    /labels/sim_id              int64   (S,)  == row index
    /labels/seed                int64   (S,)  SimConfig.seed of the simulation
    /config                     str     (S,)  SimConfig JSON of each simulation
    /stats/{steps, wall_time, solver_time, ic_time, mass_error, momentum_error, time_myr}
    /stats/leaf_cells           int64   (S, levels) AMR-lite runs only: leaf cells per level,
                                attrs levels = levelmin..levelmax (maps are 2^levelmax pixels)
    /scalars/<field>            0-d, every SimConfig field that is the same in all sims
    /dimensions/{x, y}          cell centres of the maps [pc]
    /boundary_conditions/{x,y}_periodic   attrs bc_type="PERIODIC", associated_dims

The maps and cubes carry HDF5 Fletcher-32 checksums (one per chunk, i.e. per simulation),
so :func:`verify` detects damaged bytes, not only impossible values.

Rows are written one simulation at a time from small *part* files (see
:func:`write_part`), so an interrupted generation loses nothing; :func:`write_ensemble`
consolidates them into the final file under a temporary name, checks it with
:func:`verify` and only then renames it.

Reading is lazy: :func:`open_ensemble` keeps the file open and reads only the rows asked
for. The ``holdout`` split is locked: reading its rows raises :class:`HoldoutError` unless
the ensemble is opened with ``allow_holdout=True`` or unlocked by
``ens.indices("holdout", allow_holdout=True)``.

Examples
--------
>>> with open_ensemble("binary.h5") as ens:                 # doctest: +SKIP
...     train = ens.indices("train")
...     images, sim_index = ens.images(train[:8])            # (384, N/2, N/2) log10 maps
...     n = ens.labels(train[:8])["n"][sim_index]            # a label per image
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import h5py
import numpy as np

from . import observe
from ._version import __version__
from .atomic import atomic_path
from .config import SimConfig
from .ensemble_plan import SPLITS, EnsembleConfig, plan

FORMAT = "turbsim-ensemble"
FORMAT_VERSION = 1
# SPLITS: split names; the code stored in ``/labels/split`` is the position in this tuple
HOLDOUT = SPLITS.index("holdout")
NO_CLASS = -1
STATS = {
    "steps": np.int64,
    "wall_time": np.float64,
    "solver_time": np.float64,
    "ic_time": np.float64,
    "mass_error": np.float64,
    "momentum_error": np.float64,
    "time_myr": np.float64,
}
"""Solver statistics per simulation and their stored types (times in s, time_myr in Myr)."""
IMAGES_PER_MAP = observe.IMAGES_PER_MAP  # 4 flips x 4 quadrants
FIELD = "column_density"


LABELS = ("n", "klass", "sim_id", "split", "seed")
"""Per-simulation labels under ``/labels`` (see the module docstring for types)."""


class HoldoutError(RuntimeError):
    """Raised when holdout rows are read without asking for them explicitly."""


class LayoutError(ValueError):
    """Raised when a file is not a valid turbsim ensemble (names the file and the problem)."""


@dataclass(frozen=True)
class SimRecord:
    """Everything stored about one simulation.

    Parameters
    ----------
    sim_id : int
        Index of the simulation in its ensemble (its row in the file).
    seed : int
        ``SimConfig.seed`` of the simulation.
    n : float
        Spectral index label.
    klass : int
        Class index (``-1`` for none).
    split : int
        Split code (position in :data:`SPLITS`).
    config : str
        SimConfig JSON.
    column_density : ndarray, shape (3, N, N), float32
        Projections along x, y, z [g/cm^2].
    stats : Mapping[str, float]
        Solver statistics, the keys of :data:`STATS`.
    density : ndarray, shape (N, N, N), float32, optional
        Final density cube [g/cm^3] (stored only when asked for).
    leaf_cells : ndarray, shape (levels,), int64, optional
        Leaf cells per level ``levelmin..levelmax`` of an AMR-lite run (None for a
        uniform run).
    """

    sim_id: int
    seed: int
    n: float
    klass: int
    split: int
    config: str
    column_density: np.ndarray
    stats: Mapping[str, float]
    density: np.ndarray | None = None
    leaf_cells: np.ndarray | None = None

    def __post_init__(self):
        cd = np.asarray(self.column_density)
        if cd.ndim != 3 or cd.shape[0] != 3 or cd.shape[1] != cd.shape[2]:
            raise ValueError(f"SimRecord {self.sim_id}: column_density must be (3, N, N), got {cd.shape}")
        object.__setattr__(self, "column_density", cd.astype(np.float32, copy=False))
        if self.density is not None:
            object.__setattr__(self, "density", np.asarray(self.density, dtype=np.float32))
        if self.leaf_cells is not None:
            object.__setattr__(self, "leaf_cells", np.asarray(self.leaf_cells, dtype=np.int64).reshape(-1))
        missing = set(STATS) - set(self.stats)
        if missing:
            raise ValueError(f"SimRecord {self.sim_id}: stats lack {sorted(missing)}")
        if not 0 <= self.split < len(SPLITS):
            raise ValueError(f"SimRecord {self.sim_id}: split code {self.split} not in 0..{len(SPLITS) - 1}")


@dataclass(frozen=True)
class EnsembleHeader:
    """File-level description of an ensemble.

    Parameters
    ----------
    dataset_name : str
        Name of the data set (The Well's ``dataset_name``).
    preset : str
        Preset it was made from (``"binary"``, ``"sweep"``, ``"demo"`` or ``"custom"``).
    ensemble_seed : int
        Base seed from which every simulation seed and the splits derive.
    ensemble_config : str
        JSON of the full ensemble configuration (enough to regenerate the file).
    class_names : tuple of str
        Name of each class index (empty when there are no classes).
    """

    dataset_name: str
    preset: str
    ensemble_seed: int
    ensemble_config: str = "{}"
    class_names: tuple[str, ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------------------
# writing HDF5 so that a full disk is an OSError, nothing worse
# --------------------------------------------------------------------------------------
class _FileSink(io.RawIOBase):
    """The file under an HDF5 file being written; write errors never reach HDF5.

    HDF5 does not recover from a failed write (disk full, quota, file size limit): the
    file cannot be closed, h5py reports ``RuntimeError`` from object finalisers, and the
    library crashes (segmentation fault) at interpreter exit when it tries to close the
    file again. h5py writes through this object instead (its ``fileobj`` driver, no
    slower for whole-chunk writes): the first ``OSError`` is kept in :attr:`error` and
    every later write is discarded, so HDF5 closes the file cleanly; :meth:`check`
    raises the error, and the caller deletes the half-written temporary file.
    """

    def __init__(self, path: Path):
        super().__init__()
        self._fh = open(path, "r+b", buffering=0)
        self.error: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self._fh.readinto(buffer)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        start = self._fh.tell()
        if self.error is None:
            try:
                done = 0
                while done < len(view):
                    done += self._fh.write(view[done:])
                return len(view)
            except OSError as exc:
                self.error = exc
        self._fh.seek(start + len(view))  # discarded: the file is abandoned
        return len(view)

    def truncate(self, size: int | None = None) -> int:
        if self.error is None:
            try:
                return self._fh.truncate(size)
            except OSError as exc:
                self.error = exc
        return self._fh.tell() if size is None else size

    def close(self) -> None:
        if not self.closed:
            try:
                self._fh.close()
            except OSError as exc:
                self.error = self.error or exc
        super().close()

    def check(self) -> None:
        """Raise the first write error, if any (``OSError``, with its ``errno``)."""
        if self.error is not None:
            raise self.error


@contextlib.contextmanager
def _h5_create(path: Path) -> Iterator[tuple[h5py.File, _FileSink]]:
    """A new HDF5 file at ``path`` (an existing, empty temporary file) whose write errors
    are raised as ``OSError`` when it is closed (or earlier by ``sink.check()``)."""
    sink = _FileSink(path)
    try:
        with h5py.File(sink, "w") as f:
            yield f, sink
    finally:
        sink.close()
    sink.check()


# --------------------------------------------------------------------------------------
# part files: one simulation each
# --------------------------------------------------------------------------------------
def write_part(path: str | os.PathLike, record: SimRecord, *, tag: str = "") -> Path:
    """Write one simulation to its own small HDF5 file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Part file name (written under a temporary name, then renamed).
    record : SimRecord
        The simulation.
    tag : str, optional
        Identifies the ensemble the part belongs to (checked by :func:`read_part`).

    Returns
    -------
    pathlib.Path
        The part file.

    Raises
    ------
    OSError
        Writing failed (disk full, permissions); no file is left behind.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        with _h5_create(tmp) as (f, _):
            f.attrs.update(
                format=FORMAT + "-part", format_version=FORMAT_VERSION, tag=tag,
                sim_id=record.sim_id, seed=record.seed, n=record.n, klass=record.klass,
                split=record.split, config=record.config,
            )
            for k, dtype in STATS.items():
                f.attrs[f"stats_{k}"] = dtype(record.stats[k])
            f.create_dataset(FIELD, data=record.column_density, fletcher32=True)
            if record.density is not None:
                f.create_dataset("density", data=record.density, fletcher32=True)
            if record.leaf_cells is not None:
                f.create_dataset("leaf_cells", data=record.leaf_cells)
    return path


def read_part(path: str | os.PathLike, *, tag: str | None = None) -> SimRecord:
    """Read a part file written by :func:`write_part`.

    Parameters
    ----------
    path : str or os.PathLike
        Part file.
    tag : str, optional
        If given, the part must carry this ensemble tag.

    Returns
    -------
    SimRecord

    Raises
    ------
    LayoutError
        The file is not a readable part, or belongs to another ensemble.
    """
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            a = dict(f.attrs)
            if a.get("format") != FORMAT + "-part":
                raise LayoutError(f"{path}: not a turbsim part file")
            if tag is not None and a.get("tag") != tag:
                raise LayoutError(f"{path}: belongs to another ensemble (tag {a.get('tag')!r}, expected {tag!r})")
            density = f["density"][()] if "density" in f else None
            leaf_cells = f["leaf_cells"][()] if "leaf_cells" in f else None
            return SimRecord(
                sim_id=int(a["sim_id"]), seed=int(a["seed"]), n=float(a["n"]),
                klass=int(a["klass"]), split=int(a["split"]), config=str(a["config"]),
                column_density=f[FIELD][()],
                stats={k: a[f"stats_{k}"] for k in STATS}, density=density, leaf_cells=leaf_cells,
            )
    except (OSError, KeyError) as exc:
        raise LayoutError(f"{path}: unreadable part file ({exc})") from None


# --------------------------------------------------------------------------------------
# the ensemble file
# --------------------------------------------------------------------------------------
def _constant_fields(configs: Iterable[dict]) -> tuple[dict, list[str]]:
    """SimConfig fields equal in every config, and the sorted names of those that vary."""
    const: dict | None = None
    varying: set[str] = set()
    for c in configs:
        if const is None:
            const = dict(c)
            continue
        for k in list(const):
            if c[k] != const[k]:
                varying.add(k)
                del const[k]
    return const or {}, sorted(varying)


def write_ensemble(
    path: str | os.PathLike,
    records: Sequence[SimRecord] | Iterable[SimRecord],
    header: EnsembleHeader,
    *,
    n_sims: int | None = None,
    check: bool = True,
) -> Path:
    """Write an ensemble file from its simulation records, atomically.

    Records are consumed one at a time (pass a generator that reads part files to keep
    memory small); row ``i`` holds the record with ``sim_id == i``.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; written under a temporary name in the same directory and renamed
        when complete, so an existing file stays valid if anything fails.
    records : iterable of SimRecord
        Every simulation exactly once, ``sim_id`` in ``0 .. n_sims-1``, any order.
    header : EnsembleHeader
        File-level attributes.
    n_sims : int, optional
        Number of simulations (default ``len(records)``).
    check : bool, optional
        Run :func:`verify` on the complete temporary file before renaming it (default
        True): a file that fails is never renamed to ``path``.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    LayoutError
        The written file failed verification (the problems are listed); ``path`` is
        untouched.
    ValueError
        A record is missing, duplicated, out of range or of another map size.
    OSError
        Writing failed (disk full, permissions); ``path`` is untouched.
    """
    path = Path(path)
    if n_sims is None:
        n_sims = len(records)  # type: ignore[arg-type]
    if n_sims < 1:
        raise ValueError("an ensemble needs at least one simulation")
    it = iter(records)
    with atomic_path(path) as tmp:
        with _h5_create(tmp) as (f, sink):
            seen = np.zeros(n_sims, bool)
            configs: list[dict] = [None] * n_sims  # type: ignore[list-item]
            table: dict[str, np.ndarray] = {}  # per-simulation scalars, written at the end
            first = True
            for rec in it:
                if first:
                    table = _create_layout(f, header, n_sims, rec)
                    first = False
                i = rec.sim_id
                if not 0 <= i < n_sims:
                    raise ValueError(f"record sim_id {i} outside 0..{n_sims - 1}")
                if seen[i]:
                    raise ValueError(f"record sim_id {i} given twice")
                seen[i] = True
                _write_row(f, i, rec, table)
                sink.check()  # stop at the first failed write (HDF5 writes chunks when they leave its cache)
                configs[i] = SimConfig.from_json(rec.config).to_dict()
            if not seen.all():
                missing = np.flatnonzero(~seen)
                raise ValueError(f"{missing.size} simulation(s) missing, e.g. sim_id {missing[:5].tolist()}")
            for name, values in table.items():  # one write per dataset, not one per row
                f[name][...] = values
            _write_scalars(f, configs)
        if check:
            problems = _problems(tmp)
            if problems:
                raise LayoutError(f"{path}: the written file failed verification, so it was not "
                                  f"renamed into place: {'; '.join(problems[:3])}")
    return path


def _create_layout(f: h5py.File, header: EnsembleHeader, s: int, rec: SimRecord) -> dict[str, np.ndarray]:
    """Create every group and dataset of an ``s``-simulation file shaped like ``rec``;
    return the in-memory columns of the per-simulation scalars (dataset path -> array)."""
    cfg = SimConfig.from_json(rec.config)
    n = rec.column_density.shape[-1]
    f.attrs.update(
        format=FORMAT, format_version=FORMAT_VERSION, dataset_name=header.dataset_name,
        preset=header.preset, ensemble_seed=header.ensemble_seed,
        ensemble_config=header.ensemble_config, n_trajectories=s, n_simulations=s,
        grid_type="cartesian", n_spatial_dims=2, boundary_conditions="periodic",
        field_names=[FIELD], turbsim_version=__version__,
    )
    t0 = f.create_group("t0_fields")
    t0.attrs["field_names"] = [FIELD]
    cd = t0.create_dataset(FIELD, (s, 3, n, n), np.float32, chunks=(1, 3, n, n), fletcher32=True)
    cd.attrs.update(units="g/cm^2", dim_varying=[True, True], sample_varying=True,
                    time_varying=False, axes="sim, line_of_sight(x,y,z), row, col",
                    description="column density sum(rho dx) at t_end, see turbsim.observe")
    if rec.density is not None:
        cubes = f.create_group("cubes")
        d = cubes.create_dataset("density", (s, n, n, n), np.float32, chunks=(1, n, n, n), fletcher32=True)
        d.attrs.update(units="g/cm^3", axes="sim, x, y, z")
    lab = f.create_group("labels")
    lab.create_dataset("n", (s,), np.float64)
    k = lab.create_dataset("klass", (s,), np.int8)
    k.attrs["class_names"] = list(header.class_names) or [""]
    sp = lab.create_dataset("split", (s,), np.uint8)
    sp.attrs["split_names"] = list(SPLITS)
    lab.create_dataset("sim_id", (s,), np.int64)
    lab.create_dataset("seed", (s,), np.int64)
    f.create_dataset("config", (s,), h5py.string_dtype())
    st = f.create_group("stats")
    for name, dtype in STATS.items():
        st.create_dataset(name, (s,), dtype)
    if rec.leaf_cells is not None:
        lc = st.create_dataset("leaf_cells", (s, rec.leaf_cells.size), np.int64)
        lc.attrs.update(levels=np.arange(cfg.levelmin, cfg.levelmax + 1), axes="sim, level",
                        description="AMR-lite leaf cells per level levelmin..levelmax at t_end")
    dims = f.create_group("dimensions")
    dims.attrs["spatial_dims"] = ["x", "y"]
    centres = (np.arange(n) + 0.5) * cfg.box / n
    for ax in ("x", "y"):
        dset = dims.create_dataset(ax, data=centres)
        dset.attrs.update(units="pc", sample_varying=False, time_varying=False)
    bc = f.create_group("boundary_conditions")
    for ax in ("x", "y"):
        g = bc.create_group(f"{ax}_periodic")
        g.attrs.update(bc_type="PERIODIC", associated_dims=[ax], sample_varying=False, time_varying=False)
    columns = [f"labels/{k}" for k in LABELS] + [f"stats/{k}" for k in STATS]
    table = {name: np.zeros(s, f[name].dtype) for name in columns}
    table["config"] = np.empty(s, object)
    return table


def _write_row(f: h5py.File, i: int, rec: SimRecord, table: dict[str, np.ndarray]) -> None:
    """Write the maps (and cube) of row ``i``; put its scalars into ``table``."""
    cd = f["t0_fields"][FIELD]
    if rec.column_density.shape != cd.shape[1:]:
        raise ValueError(f"record {rec.sim_id}: maps {rec.column_density.shape} differ from {cd.shape[1:]}")
    cd[i] = rec.column_density
    if "cubes" in f:
        if rec.density is None:
            raise ValueError(f"record {rec.sim_id} has no density cube, others do")
        f["cubes/density"][i] = rec.density
    if ("stats/leaf_cells" in f) != (rec.leaf_cells is not None):
        raise ValueError(f"record {rec.sim_id}: leaf cells per level given for some simulations only")
    if rec.leaf_cells is not None:
        f["stats/leaf_cells"][i] = rec.leaf_cells
    for key in LABELS:
        table[f"labels/{key}"][i] = getattr(rec, key)
    table["config"][i] = rec.config
    for name in STATS:
        table[f"stats/{name}"][i] = rec.stats[name]


def _write_scalars(f: h5py.File, configs: list[dict]) -> None:
    const, varying = _constant_fields(configs)
    const.pop("seed", None)
    sc = f.create_group("scalars")
    sc.attrs["field_names"] = sorted(const)
    for k, v in sorted(const.items()):
        d = sc.create_dataset(k, data=v)
        d.attrs.update(sample_varying=False, time_varying=False)
    f.attrs["simulation_parameters"] = [k for k in varying if k != "seed"] or [""]


# --------------------------------------------------------------------------------------
# checking
# --------------------------------------------------------------------------------------
def verify(path: str | os.PathLike) -> list[str]:
    """Check an ensemble file; return the problems found (empty if it is valid).

    The one check of an ensemble: ``python -m turbsim.generate --verify`` runs it, and
    :func:`write_ensemble` runs it on every file before renaming it into place.

    Checks: the format attributes; every dataset present with ``S`` rows and the right
    shape; every simulation exactly once (``sim_id`` is ``0 .. S-1``); every map and cube
    readable with its checksum intact, finite and positive; classes and split codes in
    range; every config JSON parses into a :class:`~turbsim.SimConfig` whose ``n``,
    ``seed`` and ``cells`` agree with the labels and maps; the constant scalars agree with
    every config; and, when the file stores the ensemble configuration it was generated
    from (the ``ensemble_config`` attribute, ``"{}"`` for imported files), that every
    simulation's config, class and split is the one its plan
    (:func:`turbsim.ensemble_plan.plan`) gives.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    list of str
        One human-readable sentence per problem, each starting with the file name.
    """
    path = Path(path)
    return [f"{path}: {p}" for p in _problems(path)]


def _problems(path: Path) -> list[str]:
    """The problems of :func:`verify`, without the file name."""
    problems: list[str] = []
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        return [f"cannot be opened as HDF5 ({exc})"]
    with f:
        try:
            _verify_open(f, problems)
        except (KeyError, OSError, ValueError, TypeError) as exc:
            problems.append(f"layout broken: {exc}")
    return problems


def _check_rows(dset: h5py.Dataset, what: str, problems: list[str]) -> None:
    """Read ``dset`` row by row (bounded memory; checksums checked): finite and positive."""
    for i in range(dset.shape[0]):
        try:
            m = dset[i]
        except OSError as exc:  # e.g. "data error detected by Fletcher32 checksum"
            problems.append(f"sim {i}: {what} cannot be read, the file is damaged ({exc})")
            continue
        if not np.all(np.isfinite(m)):
            problems.append(f"sim {i}: {what} has non-finite values")
        elif not np.all(m > 0):
            problems.append(f"sim {i}: {what} has non-positive values")


def _plan_of(f: h5py.File, s: int, problems: list[str]) -> list | None:
    """The plan of the ensemble configuration stored in the file (None if none is)."""
    text = f.attrs.get("ensemble_config", "{}")
    try:
        stored = json.loads(text)
        if not stored:
            return None  # an imported ensemble: no plan to check against
        specs = plan(EnsembleConfig.from_dict(stored))
    except (ValueError, TypeError) as exc:
        problems.append(f"ensemble_config attribute unusable ({exc})")
        return None
    if len(specs) != s:
        problems.append(f"holds {s} simulations, its ensemble_config plans {len(specs)}")
        return None
    return specs


def _verify_open(f: h5py.File, problems: list[str]) -> None:
    if f.attrs.get("format") != FORMAT:
        problems.append(f"attribute format is {f.attrs.get('format')!r}, expected {FORMAT!r}")
        return
    if f.attrs.get("format_version") != FORMAT_VERSION:
        problems.append(f"format_version {f.attrs.get('format_version')!r} is not {FORMAT_VERSION}")
    s = int(f.attrs["n_trajectories"])
    cd = f["t0_fields"][FIELD]
    if cd.ndim != 4 or cd.shape[0] != s or cd.shape[1] != 3 or cd.shape[2] != cd.shape[3]:
        problems.append(f"{FIELD} has shape {cd.shape}, expected ({s}, 3, N, N)")
        return
    n_cells = cd.shape[-1]
    names = [f"labels/{k}" for k in LABELS]
    names += ["config"] + [f"stats/{k}" for k in STATS]
    for name in names:
        if name not in f:
            problems.append(f"dataset /{name} is missing")
        elif f[name].shape != (s,):
            problems.append(f"dataset /{name} has shape {f[name].shape}, expected ({s},)")
    if "cubes" in f and f["cubes/density"].shape != (s, n_cells, n_cells, n_cells):
        problems.append(f"dataset /cubes/density has shape {f['cubes/density'].shape}, "
                        f"expected ({s}, {n_cells}, {n_cells}, {n_cells})")
    if "stats/leaf_cells" in f:
        lc = f["stats/leaf_cells"]
        levels = lc.attrs.get("levels")
        if lc.ndim != 2 or lc.shape[0] != s or levels is None or len(levels) != lc.shape[1]:
            problems.append(f"dataset /stats/leaf_cells has shape {lc.shape} and levels {levels}, expected ({s}, "
                            "one column per level)")
    if problems:
        return
    if "stats/leaf_cells" in f:  # the leaves of every simulation tile the box exactly once
        lc = f["stats/leaf_cells"]
        volume = (lc[()] / 8.0 ** np.asarray(lc.attrs["levels"], float)).sum(axis=1)
        for i in np.flatnonzero(np.abs(volume - 1.0) > 1e-9)[:5]:
            problems.append(f"sim {i}: its leaf cells per level cover {volume[i]:.6g} of the box, not all of it")
    sim_id = f["labels/sim_id"][()]
    if not np.array_equal(sim_id, np.arange(s)):
        dup = np.unique(sim_id)[np.unique(sim_id, return_counts=True)[1] > 1]
        problems.append(f"sim_id is not 0..{s - 1} exactly once (duplicates {dup[:5].tolist()}, "
                        f"{s - np.unique(sim_id).size} missing)")
    _check_rows(cd, "column density", problems)
    if "cubes" in f:
        _check_rows(f["cubes/density"], "density cube", problems)
    split = f["labels/split"][()]
    if split.size and split.max() >= len(SPLITS):
        problems.append(f"split codes {sorted(set(split.tolist()) - set(range(len(SPLITS))))} unknown")
    klass = f["labels/klass"][()]
    n_classes = len([c for c in f["labels/klass"].attrs.get("class_names", []) if c])
    allowed = np.arange(n_classes) if n_classes else np.array([NO_CLASS])
    if not np.all(np.isin(klass, allowed)):
        problems.append(f"class indices {sorted(set(klass.tolist()) - set(allowed.tolist()))} "
                        f"not among {allowed.tolist()}")
    n_lab, seeds = f["labels/n"][()], f["labels/seed"][()]
    scalars = {k: f["scalars"][k][()] for k in f["scalars"].attrs.get("field_names", [])} if "scalars" in f else {}
    specs = _plan_of(f, s, problems)
    for i, text in enumerate(f["config"][()]):
        text = text.decode() if isinstance(text, bytes) else text
        try:
            cfg = SimConfig.from_json(text)
        except ValueError as exc:
            problems.append(f"sim {i}: config does not parse ({exc})")
            continue
        if not math.isclose(cfg.n, n_lab[i], rel_tol=0, abs_tol=1e-12) or cfg.seed != seeds[i]:
            problems.append(f"sim {i}: labels (n={n_lab[i]}, seed={seeds[i]}) disagree with its config")
        if cfg.map_cells != n_cells:
            problems.append(f"sim {i}: config gives {cfg.map_cells}-pixel maps, maps are {n_cells}")
        d = cfg.to_dict()
        for k, v in scalars.items():
            v = v.decode() if isinstance(v, bytes) else v
            if d.get(k) != v:
                problems.append(f"sim {i}: config {k}={d.get(k)!r} disagrees with /scalars/{k}={v!r}")
                break
        if specs is not None and (cfg != specs[i].config or klass[i] != specs[i].klass
                                  or split[i] != specs[i].split):
            problems.append(f"sim {i} (config, class or split) differs from the plan of its ensemble_config")


# --------------------------------------------------------------------------------------
# lazy reader
# --------------------------------------------------------------------------------------
class Ensemble:
    """Lazy, read-only view of an ensemble file (use :func:`open_ensemble`).

    Attributes
    ----------
    path : pathlib.Path
        The file.
    n_sims : int
        Number of simulations ``S``.
    map_size : int
        Side ``N`` of the projections (augmented images are ``N/2``).
    attrs : dict
        File attributes (format, dataset_name, ensemble_seed, ...).
    class_names : tuple of str
        Name of each class index.
    """

    def __init__(self, path: str | os.PathLike, *, allow_holdout: bool = False):
        self.path = Path(path)
        try:
            self._f = h5py.File(self.path, "r")
        except OSError as exc:
            raise LayoutError(f"{self.path}: cannot open as HDF5 ({exc})") from None
        try:
            self.attrs = dict(self._f.attrs)
            if self.attrs.get("format") != FORMAT:
                raise LayoutError(f"{self.path}: not a turbsim ensemble (format={self.attrs.get('format')!r})")
            if self.attrs.get("format_version") != FORMAT_VERSION:
                raise LayoutError(f"{self.path}: format_version {self.attrs.get('format_version')!r} "
                                  f"is not supported (expected {FORMAT_VERSION})")
            for name in (f"t0_fields/{FIELD}", "labels/split", "labels/klass"):
                if name not in self._f:
                    raise LayoutError(f"{self.path}: no /{name} (not a complete turbsim ensemble; "
                                      "check it with python -m turbsim.generate --verify)")
            self._cd = self._f["t0_fields"][FIELD]
            self._split = self._f["labels/split"][()]
            self.class_names = tuple(c for c in self._f["labels/klass"].attrs.get("class_names", []) if c)
        except LayoutError:
            self._f.close()
            raise
        self.n_sims = int(self._cd.shape[0])
        self.map_size = int(self._cd.shape[-1])
        self._holdout_unlocked = bool(allow_holdout)

    # context manager ---------------------------------------------------------------
    def __enter__(self) -> "Ensemble":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._f.close()

    def __repr__(self) -> str:
        counts = {s: int(np.sum(self._split == i)) for i, s in enumerate(SPLITS)}
        return f"Ensemble({str(self.path)!r}, n_sims={self.n_sims}, map_size={self.map_size}, splits={counts})"

    # selection -----------------------------------------------------------------------
    def indices(self, split: str, allow_holdout: bool = False) -> np.ndarray:
        """Rows of one split.

        Parameters
        ----------
        split : {"train", "test", "holdout"}
            The split.
        allow_holdout : bool, optional
            Must be True to get the holdout rows; doing so unlocks reading them from this
            open ensemble.

        Returns
        -------
        ndarray of int64
            Sorted row indices.

        Raises
        ------
        HoldoutError
            ``split == "holdout"`` without ``allow_holdout``.
        """
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
        if split == "holdout":
            if not (allow_holdout or self._holdout_unlocked):
                raise HoldoutError(f"{self.path}: the holdout split is locked; pass allow_holdout=True "
                                   "only for the final evaluation")
            self._holdout_unlocked = True
        return np.flatnonzero(self._split == SPLITS.index(split)).astype(np.int64)

    def _rows(self, indices) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Validated rows; returns (rows, sorted unique rows, inverse) for h5py reads."""
        rows = np.arange(self.n_sims) if indices is None else np.atleast_1d(np.asarray(indices))
        if rows.dtype.kind not in "iu":
            raise TypeError(f"indices must be integers, got dtype {rows.dtype}")
        rows = rows.astype(np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_sims):
            raise IndexError(f"indices must be in 0..{self.n_sims - 1}")
        if not self._holdout_unlocked and np.any(self._split[rows] == HOLDOUT):
            raise HoldoutError(f"{self.path}: the requested rows include holdout simulations; "
                               "call indices('holdout', allow_holdout=True) first to unlock them")
        uniq, inverse = np.unique(rows, return_inverse=True)
        return rows, uniq, inverse

    # reading ---------------------------------------------------------------------------
    def labels(self, indices: Sequence[int] | np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Labels of some simulations.

        Parameters
        ----------
        indices : array_like of int, optional
            Rows (default: all, which needs the holdout unlocked if there is one).

        Returns
        -------
        dict
            ``n`` float64, ``klass`` int8, ``sim_id`` int64, ``split`` uint8, ``seed``
            int64, each of length ``len(indices)``.
        """
        rows, _, _ = self._rows(indices)
        lab = self._f["labels"]
        missing = [k for k in LABELS if k not in lab]
        if missing:
            raise LayoutError(f"{self.path}: no /labels/{missing[0]} (not a complete turbsim ensemble; "
                              "check it with python -m turbsim.generate --verify)")
        return {k: lab[k][()][rows] for k in LABELS}

    def projections(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Column-density maps of some simulations (reads only those rows).

        Parameters
        ----------
        indices : array_like of int
            Rows, any order, repeats allowed.

        Returns
        -------
        ndarray, float32, shape (k, 3, N, N)
            Column density along x, y, z [g/cm^2].
        """
        rows, uniq, inverse = self._rows(indices)
        if uniq.size == 0:
            return np.empty((0, 3, self.map_size, self.map_size), np.float32)
        return self._cd[uniq][inverse.reshape(-1)]

    def images(self, indices: Sequence[int] | np.ndarray, log: bool = True,
               augment: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Images of some simulations, ready for learning.

        Parameters
        ----------
        indices : array_like of int
            Rows.
        log : bool, optional
            Take ``log10`` of the column density [g/cm^2] (default True).
        augment : bool, optional
            Cut every projection into the study's 16 flipped quadrants (default True):
            48 images of side ``N/2`` per simulation. Otherwise 3 maps of side ``N``.

        Returns
        -------
        images : ndarray, float32, shape (k*48, N/2, N/2) or (k*3, N, N)
            Ordered simulation, then axis, then flip, then quadrant
            (see :func:`turbsim.observe.augment`).
        sim_index : ndarray of int64, shape (k*48,) or (k*3,)
            Row of the simulation each image comes from (use it to look up labels).
        """
        rows, _, _ = self._rows(indices)
        maps = self.projections(rows)  # (k, 3, N, N)
        if log:
            maps = observe.log_column(maps)
        images, position = observe.study_images(maps, augment_maps=augment)
        return images, rows[position]

    def config(self, index: int) -> SimConfig:
        """The :class:`~turbsim.SimConfig` of one simulation."""
        self._rows([index])
        text = self._f["config"][index]
        return SimConfig.from_json(text.decode() if isinstance(text, bytes) else text)

    def stats(self, indices: Sequence[int] | np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Solver statistics (keys of :data:`STATS`) of some simulations (default all).

        Statistics carry no label information, so holdout rows are not locked here.
        """
        rows = np.arange(self.n_sims) if indices is None else np.atleast_1d(np.asarray(indices, np.int64))
        return {k: self._f["stats"][k][()][rows] for k in STATS}

    def leaf_cells(self, indices: Sequence[int] | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Leaf cells per level of AMR-lite simulations (default all).

        Returns
        -------
        counts : numpy.ndarray, int64, shape (len(indices), levels)
        levels : numpy.ndarray, int
            The levels of the columns (``levelmin..levelmax``).

        Raises
        ------
        LayoutError
            The ensemble is of uniform runs (it records no levels).
        """
        if "leaf_cells" not in self._f["stats"]:
            raise LayoutError(f"{self.path}: uniform runs, no leaf cells per level (an AMR-lite ensemble has them)")
        rows = np.arange(self.n_sims) if indices is None else np.atleast_1d(np.asarray(indices, np.int64))
        d = self._f["stats/leaf_cells"]
        return d[()][rows], np.asarray(d.attrs["levels"])

    def density(self, index: int) -> np.ndarray:
        """Final 3D density cube [g/cm^3] of one simulation (only if cubes were saved)."""
        self._rows([index])
        if "cubes" not in self._f:
            raise LayoutError(f"{self.path}: no density cubes stored (generate with --save-cubes)")
        return self._f["cubes/density"][index]

    def split_counts(self) -> dict[str, dict[int, int]]:
        """Number of simulations per split and class: ``{split: {klass: count}}``."""
        klass = self._f["labels/klass"][()]
        return {s: {int(k): int(np.sum((self._split == i) & (klass == k))) for k in np.unique(klass)}
                for i, s in enumerate(SPLITS)}


def open_ensemble(path: str | os.PathLike, *, allow_holdout: bool = False) -> Ensemble:
    """Open an ensemble file for lazy reading (use as a context manager).

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    allow_holdout : bool, optional
        Unlock the holdout rows from the start (default False).

    Returns
    -------
    Ensemble

    Raises
    ------
    LayoutError
        The file cannot be opened or is not a turbsim ensemble.
    """
    return Ensemble(path, allow_holdout=allow_holdout)

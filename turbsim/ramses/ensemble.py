"""RAMSES runs as an ensemble: import snapshots into turbsim's HDF5 ensemble layout.

Every network and baseline trained on a turbsim ensemble (:mod:`turbsim.dataset`) reads
column-density maps, labels and configs from that layout; :func:`import_runs` writes the
same layout from RAMSES snapshots, so RAMSES data can be scored unchanged. Maps are the
exact column densities of the leaf cells (:meth:`RamsesDataset.column_density`) at one
chosen level, along x, y and z, in g/cm^2 (float32, like turbsim's).

Labels come from the IC files of the shared RAMSES runs (``ic_<case>.npz``: ``n``,
``seed``, ``mach``, ``T_K``, ``mu``) or from a CSV table (:func:`sources_from_csv`).
Each simulation's config is a :class:`~turbsim.SimConfig` describing the RAMSES run
(box and mean density from the RAMSES units and mass, ``t_end`` the snapshot time,
``ic='white_noise'``, ``gamma`` from the hydro header, ``ramses_dt=True``).

Statistics: ``steps`` is RAMSES's ``nstep_coarse``; ``solver_time`` the ``TOTAL`` of
``timer_NNNNN.txt`` (NaN without it); ``wall_time`` and ``ic_time`` are NaN (not
recorded by RAMSES); ``mass_error`` and ``momentum_error`` are measured against the IC
when one is given (momentum relative to ``sum(rho |v|) dV`` of the IC), NaN otherwise.
"""
from __future__ import annotations

import csv
import dataclasses
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .. import dataset
from ..config import SimConfig
from ..console import progress as progress_bar
from ..ensemble_plan import BURGERS, KOLMOGOROV, default_class_names
from ..units import MYR, PC
from .reader import RamsesDataset
from .reader import open as open_output
from .writer import load_ic

logger = logging.getLogger(__name__)

__all__ = ["RamsesSource", "source_from_ic", "sources_from_csv", "sim_record", "import_runs"]

DEFAULT_CLASS_N = (KOLMOGOROV, BURGERS)
_SIM = {f.name: f.default for f in dataclasses.fields(SimConfig)}
"""SimConfig's defaults: a RAMSES source's physical and scheme parameters default to them."""
_TIMER_TOTAL = re.compile(r"^\s*([0-9.Ee+-]+)\s+[0-9.]+\s+TOTAL\s*$", re.M)


@dataclass(frozen=True)
class RamsesSource:
    """One RAMSES snapshot and its labels.

    Parameters
    ----------
    output : pathlib.Path
        ``output_NNNNN`` folder (or its info file).
    n : float
        Spectral index of the initial velocity power, ``|v_k|^2 ∝ k^-n``.
    seed : int
        Seed of the initial conditions (``>= 0``).
    split : str
        ``"train"``, ``"test"`` or ``"holdout"`` (default ``"test"``: RAMSES data score
        models trained on turbsim).
    ic : pathlib.Path, optional
        The run's IC ``.npz`` (for mass/momentum errors and physical parameters).
    mach, temperature, mu : float
        Initial 3D rms Mach number, temperature [K], mean molecular weight.
    scheme, limiter : str
        RAMSES scheme of the run, as :class:`~turbsim.SimConfig` names it.
    courant : float
        Courant factor of the run, in (0, 1].

    Notes
    -----
    ``mach`` ... ``courant`` default to :class:`~turbsim.SimConfig`'s defaults and are
    checked as it checks them.
    """

    output: Path
    n: float
    seed: int
    split: str = "test"
    ic: Path | None = None
    mach: float = _SIM["mach"]
    temperature: float = _SIM["temperature"]
    mu: float = _SIM["mu"]
    scheme: str = _SIM["scheme"]
    limiter: str = _SIM["limiter"]
    courant: float = _SIM["courant"]

    def __post_init__(self):
        if self.split not in dataset.SPLITS:
            raise ValueError(f"RamsesSource {self.output}: split {self.split!r} is not one of {dataset.SPLITS}")
        try:
            self.sim_config()
        except ValueError as exc:
            raise ValueError(f"RamsesSource {self.output}: {exc}") from None

    def sim_config(self, **fields) -> SimConfig:
        """The :class:`~turbsim.SimConfig` of this source's labels and scheme, with ``fields``."""
        return SimConfig(n=self.n, seed=self.seed, mach=self.mach, temperature=self.temperature,
                         mu=self.mu, scheme=self.scheme, limiter=self.limiter, courant=self.courant,
                         **fields)


def source_from_ic(output, ic, split: str = "test", **overrides) -> RamsesSource:
    """A source labelled from its IC file (``n``, ``seed``, ``mach``, ``T_K``, ``mu``).

    Parameters
    ----------
    output : str or os.PathLike
        Snapshot folder.
    ic : str or os.PathLike
        The run's ``ic_<case>.npz``.
    split : str, optional
        Split name (default ``"test"``).
    **overrides
        Further :class:`RamsesSource` fields (scheme, limiter, courant, ...).

    Returns
    -------
    RamsesSource
    """
    meta = load_ic(ic).meta
    missing = [k for k in ("n", "seed") if k not in meta]
    if missing:
        raise ValueError(f"{ic}: IC file lacks the label(s) {', '.join(missing)}")
    fields = dict(n=float(meta["n"]), seed=int(meta["seed"]), mach=float(meta.get("mach", _SIM["mach"])),
                  temperature=float(meta.get("T_K", _SIM["temperature"])),
                  mu=float(meta.get("mu", _SIM["mu"])))
    fields.update(overrides)
    return RamsesSource(output=Path(output), ic=Path(ic), split=split, **fields)


def sources_from_csv(path) -> list[RamsesSource]:
    """Sources from a CSV table, one snapshot per row.

    Columns: ``output`` (required; relative paths are relative to the CSV's folder), and
    either ``n`` and ``seed`` or ``ic`` (an IC ``.npz`` supplying the labels; explicit
    ``n``/``seed`` columns win); optional ``split``, ``mach``, ``temperature``, ``mu``,
    ``scheme``, ``limiter``, ``courant``. Empty cells mean "not given".

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file.

    Returns
    -------
    list of RamsesSource

    Raises
    ------
    ValueError
        A missing column or value, or a value that does not parse (row and column named).
    """
    path = Path(path)
    try:
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the CSV ({exc.strerror})") from None
    floats = ("n", "mach", "temperature", "mu", "courant")
    sources = []
    for i, row in enumerate(rows, start=2):
        row = {k.strip(): v.strip() for k, v in row.items() if k and v and v.strip()}
        if "output" not in row:
            raise ValueError(f"{path}, line {i}: no 'output' value")
        fields: dict = {}
        try:
            for k in floats:
                if k in row:
                    fields[k] = float(row[k])
            if "seed" in row:
                fields["seed"] = int(row["seed"])
        except ValueError as exc:
            raise ValueError(f"{path}, line {i}: {exc}") from None
        for k in ("split", "scheme", "limiter"):
            if k in row:
                fields[k] = row[k]
        output = path.parent / row["output"]
        if "ic" in row:
            sources.append(source_from_ic(output, path.parent / row["ic"], **fields))
        elif "n" in fields and "seed" in fields:
            sources.append(RamsesSource(output=output, **fields))
        else:
            raise ValueError(f"{path}, line {i}: give 'n' and 'seed', or an 'ic' file")
    if not sources:
        raise ValueError(f"{path}: no rows")
    return sources


def _solver_time(ds: RamsesDataset) -> float:
    timer = ds.path / f"timer_{ds.iout:05d}.txt"
    try:
        m = _TIMER_TOTAL.search(timer.read_text())
    except OSError:
        return math.nan
    return float(m.group(1)) if m else math.nan


def _errors(ds: RamsesDataset, ic_path: Path | None) -> tuple[float, float]:
    """(mass error, momentum error) of a snapshot against its IC, in code units."""
    if ic_path is None:
        return math.nan, math.nan
    ic = load_ic(ic_path)
    dv = ic.dx**3
    m0 = float(ic.density.sum()) * dv
    p0 = (ic.density * ic.velocity).reshape(3, -1).sum(axis=1) * dv
    scale = float((ic.density * np.sqrt((ic.velocity**2).sum(axis=0))).sum()) * dv or 1.0
    rho = ds.fields.index("density")
    p = np.zeros(3)
    for lev, c in ds.levels.items():
        for a in range(3):
            p[a] += float((c.values[rho] * c.values[ds.fields.index(f"velocity_{'xyz'[a]}")]).sum()) * ds.dx(lev) ** 3
    return abs(ds.mass() - m0) / m0, float(np.abs(p - p0).max() / scale)


def _klass(n: float, class_n: Sequence[float]) -> int:
    return next((k for k, v in enumerate(class_n) if math.isclose(n, v, rel_tol=1e-9)), dataset.NO_CLASS)


def sim_record(sim_id: int, source: RamsesSource, level: int | None = None,
               class_n: Sequence[float] = DEFAULT_CLASS_N) -> dataset.SimRecord:
    """Read one RAMSES snapshot into an ensemble row.

    Parameters
    ----------
    sim_id : int
        Row index.
    source : RamsesSource
        Snapshot and labels.
    level : int, optional
        Map level (``2**level`` pixels per side; default the snapshot's ``levelmax``).
    class_n : sequence of float
        Spectral index of each class; ``klass`` is the index of ``source.n`` in it, -1 if
        absent.

    Returns
    -------
    turbsim.dataset.SimRecord
        Column densities along x, y, z [g/cm^2] at ``level``, labels, config, stats.
    """
    ds = open_output(source.output)
    level = ds.levelmax if level is None else int(level)
    maps = np.stack([ds.column_density(a, level) for a in range(3)])
    box_cm = ds.boxlen * ds.units["length"]
    config = source.sim_config(
        box=box_cm / PC, density=ds.mass() * ds.units["mass"] / box_cm**3, cells=ds.nx * 2**level,
        t_end=ds.time * ds.units["time"] / MYR, ic="white_noise",
        gamma=min(max(ds.gamma, 1.0), 5.0 / 3.0), ramses_dt=True,
    )
    mass_error, momentum_error = _errors(ds, source.ic)
    stats = {"steps": ds.info.nstep_coarse, "wall_time": math.nan, "solver_time": _solver_time(ds),
             "ic_time": math.nan, "mass_error": mass_error, "momentum_error": momentum_error,
             "time_myr": config.t_end}
    logger.info("imported %s (n=%g, seed=%d) as row %d", ds.path, source.n, source.seed, sim_id)
    return dataset.SimRecord(
        sim_id=sim_id, seed=int(source.seed), n=float(source.n), klass=_klass(source.n, class_n),
        split=dataset.SPLITS.index(source.split), config=config.to_json(),
        column_density=maps.astype(np.float32), stats=stats)


def import_runs(path, sources: Sequence[RamsesSource], *, level: int | None = None,
                class_n: Sequence[float] = DEFAULT_CLASS_N, dataset_name: str = "ramses",
                progress: bool = False) -> Path:
    """Write RAMSES snapshots as a turbsim ensemble file (HDF5, written atomically).

    Parameters
    ----------
    path : str or os.PathLike
        Output ``.h5`` file.
    sources : sequence of RamsesSource
        The snapshots, one row each, in this order.
    level : int, optional
        Map level for every snapshot (default each snapshot's ``levelmax``; all maps must
        then have the same size).
    class_n : sequence of float
        Spectral index of each class (default Kolmogorov 11/3, Burgers 4).
    dataset_name : str
        Stored as the file's ``dataset_name``.
    progress : bool
        Show progress, one unit per snapshot (:func:`turbsim.console.progress`: a bar on a
        terminal, plain lines when redirected).

    Returns
    -------
    pathlib.Path
        The ensemble file, readable with :func:`turbsim.dataset.open_ensemble`.

    Raises
    ------
    RamsesFormatError
        A snapshot cannot be read (nothing is written).
    ValueError
        Maps of different sizes, or bad labels.
    """
    sources = list(sources)
    if not sources:
        raise ValueError("import_runs needs at least one RAMSES source")
    header = dataset.EnsembleHeader(
        dataset_name=dataset_name, preset="ramses", ensemble_seed=0,
        class_names=default_class_names(class_n) if class_n else ())

    def records() -> Iterator[dataset.SimRecord]:
        with progress_bar(total=len(sources), desc="RAMSES outputs", unit="output",
                          disable=not progress) as bar:
            for i, src in enumerate(sources):
                yield sim_record(i, src, level=level, class_n=class_n)
                bar.update(1)

    return dataset.write_ensemble(path, records(), header, n_sims=len(sources))

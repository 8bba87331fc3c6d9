"""Nuisance data: ensembles that differ by one nuisance, and the maps of one kind.

A *nuisance* is a property of the data that must not decide the answer (the scheme that
made a map, its resolution, its mesh, the output time, the code). This module makes and
reads the data of :mod:`learn.artefacts`'s checks:

* :data:`VARIANTS` and :func:`make_ensembles`: the nuisance ensembles, every one the
  ``ramses64`` preset (RAMSES's conventions at 64^3, MUSCL, 0.5 Myr) with one setting
  changed, from the same seeds; :func:`make_ramses_twin`: turbsim runs of the seeds and
  indices of a RAMSES map file (the code nuisance). :data:`NUISANCES` pairs them.
* :class:`Domain` / :func:`load_domain`: the maps of one kind with labels and split
  (an ensemble file's own split, or :func:`pair_split` for a RAMSES map file);
  :class:`Pair` / :func:`make_pair`: two kinds as the science task's images
  (:data:`IMAGE_SIZE` px, log10 column density, one normalisation).

Examples
--------
>>> sorted(NUISANCES)
['code', 'code_native', 'mesh', 'refinement', 'resolution', 'scheme', 'seed', 'time']
>>> pair_split(8).tolist()
[True, True, False, False, True, True, False, False]
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from turbsim.atomic import atomic_path

log = logging.getLogger(__name__)

IMAGE_SIZE = 64
"""Side of the images every check reads [pixels]: whole maps, resampled to it (block means)."""
VARIANTS: dict[str, dict] = {
    "reference": {},
    "seed": {"seed_offset": 1},
    "first": {"scheme": "first"},
    "cells128": {"cells": 128},
    "t5": {"t_end": 5.0},
    "amr": {"amr_levels": 1, "err_grad_d": 0.1, "regrid_schedule": "nsubcycle"},
}
"""Nuisance ensembles: changes to the ``ramses64`` preset (64^3, MUSCL, 0.5 Myr, RAMSES's
conventions). ``seed`` changes only the ensemble seed (the control: nothing but the
realisations differ); ``amr`` refines the ``cells`` grid (levelmin) by AMR-lite up to
``amr_levels`` finer levels, with RAMSES's subcycling (the schedule that makes RAMSES's own
mesh)."""


@dataclass(frozen=True)
class Nuisance:
    """Two kinds of data that differ by one nuisance.

    Attributes
    ----------
    name : str
    a, b : str
        Data of nuisance value 0 and 1: a variant of :data:`VARIANTS` (``<name>.h5`` in the
        data folder) or ``turbsim`` / ``ramses`` (``turbsim_twin.npz`` / the RAMSES map file).
    real : str
        The side an autoencoder learns as "real" (``a`` or ``b``).
    what : str
        Description for the table.
    """

    name: str
    a: str
    b: str
    real: str
    what: str


NUISANCES: dict[str, Nuisance] = {
    "seed": Nuisance("seed", "reference", "seed", "reference", "ensemble seed only (control)"),
    "scheme": Nuisance("scheme", "reference", "first", "reference", "MUSCL / first order"),
    "resolution": Nuisance("resolution", "cells128", "reference", "cells128", "128^3 / 64^3"),
    "time": Nuisance("time", "reference", "t5", "reference", "0.5 / 5 Myr"),
    "code": Nuisance("code", "ramses", "turbsim", "ramses", "RAMSES / turbsim with RAMSES's conventions"),
    "mesh": Nuisance("mesh", "cells128", "amr", "cells128", "uniform 128^3 / AMR-lite levels 6-7"),
    "refinement": Nuisance("refinement", "reference", "amr", "reference",
                           "uniform 64^3 / AMR-lite levels 6-7"),
    "code_native": Nuisance("code_native", "ramses", "turbsim_native", "ramses",
                            "RAMSES / turbsim with its own conventions"),
}
"""The nuisances (the mesh's levels are those of the default 64^3 reference)."""
TWIN_FILE = "turbsim_twin.npz"
NATIVE_FILE = "turbsim_native.npz"
CONVENTIONS = ("ramses", "turbsim")


# --------------------------------------------------------------------------------------
# nuisance ensembles
# --------------------------------------------------------------------------------------
def variant_config(variant: str, *, sims: int, seed: int, cells: int = 64):
    """The ensemble configuration of a nuisance variant.

    Parameters
    ----------
    variant : str
        A key of :data:`VARIANTS`.
    sims : int
        Simulations (equal in every variant, so that the splits are equal too).
    seed : int
        Ensemble seed (every simulation's seed and the splits derive from it).
    cells : int
        Cells per side of the reference [cells].

    Returns
    -------
    turbsim.ensemble_plan.EnsembleConfig
        ``ramses64`` with train/test splits of one half each and the variant's change.
    """
    from turbsim.ensemble_plan import PRESETS

    if variant not in VARIANTS:
        raise ValueError(f"variant = {variant!r} is not one of {', '.join(VARIANTS)}")
    change = dict(VARIANTS[variant])
    seed = seed + change.pop("seed_offset", 0)
    if "amr_levels" in change:  # initial conditions at levelmin = log2(cells), as RAMSES is given them
        levelmin = int(round(np.log2(cells)))
        if 2**levelmin != cells:
            raise ValueError(f"cells = {cells}: the AMR-lite variant needs a power of two")
        change.update(levelmin=levelmin, levelmax=levelmin + change.pop("amr_levels"))
    kw = {"cells": cells, **change}
    return PRESETS["ramses64"].override(sims=sims, seed=seed, splits=(0.5, 0.5, 0.0), name=variant, **kw)


def make_ensembles(out_dir, variants=tuple(VARIANTS), *, sims: int = 96, seed: int = 17, cells: int = 64,
                   workers: int | None = 1, progress: bool = False) -> dict[str, Path]:
    """Generate the nuisance ensembles ``OUT_DIR/<variant>.h5`` (resumable; a finished file is kept).

    Parameters
    ----------
    out_dir : path-like
    variants : sequence of str
        Keys of :data:`VARIANTS`.
    sims, seed, cells
        As :func:`variant_config`.
    workers : int, optional
        Worker processes of :func:`turbsim.ensemble.run_ensemble` (0: this process).
    progress : bool

    Returns
    -------
    dict
        ``{variant: path}``.
    """
    from turbsim.ensemble import run_ensemble

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for v in variants:
        cfg = variant_config(v, sims=sims, seed=seed, cells=cells)
        paths[v] = out / f"{v}.h5"
        log.info("nuisance ensemble %s: %d simulations, %s", v, sims, VARIANTS[v] or "the reference")
        run_ensemble(cfg, paths[v], workers=workers, progress=progress)
    return paths


def make_ramses_twin(ramses_npz, out, *, conventions: str = "ramses", threads: int = 1,
                     progress: bool = False) -> Path:
    """turbsim runs of a RAMSES map file's simulations: same seeds, indices and grid.

    Every row of the file (``seed``, ``n``, ``klass``, ``columns`` of side N) is simulated
    by turbsim on an N^3 grid, and its three column-density maps written in the same layout.
    With ``conventions="ramses"`` the runs follow RAMSES's conventions (the ``ramses64``
    preset: white-noise initial conditions, gamma 1.0001 with its time step, output after the
    first full step past ``t_requested_myr``): the same simulations, which turbsim reproduces
    to round-off. With ``"turbsim"`` they follow turbsim's own defaults (Fourier initial
    conditions, exactly isothermal, output at ``t_requested_myr``): other realisations of
    the same physics, the realism check proper.

    Parameters
    ----------
    ramses_npz : path-like
        RAMSES map file (``columns``, ``n``, ``seed``, ``klass``; :data:`learn.data.NPZ_LAYOUT`).
    out : path-like
        ``.npz`` written (atomically): ``columns`` [g/cm^2], ``n``, ``seed``, ``klass``,
        ``time_myr``.
    conventions : {"ramses", "turbsim"}
    threads : int
        Solver threads.
    progress : bool

    Returns
    -------
    Path
    """
    from turbsim import SimConfig, simulate
    from turbsim.console import progress as progress_bar
    from turbsim.ensemble_plan import PRESETS
    from turbsim.observe import projections

    src = Path(ramses_npz)
    try:
        with np.load(src, allow_pickle=False) as d:
            seeds, n, klass = d["seed"], d["n"], d["klass"]
            size = int(d["columns"].shape[-1])
            t_req = float(d["t_requested_myr"]) if "t_requested_myr" in d.files else 0.5
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{src}: not a RAMSES map file with columns, n, seed and klass ({exc})") from None
    if conventions not in CONVENTIONS:
        raise ValueError(f"conventions = {conventions!r} is not one of {', '.join(CONVENTIONS)}")
    base = PRESETS["ramses64"].sim if conventions == "ramses" else SimConfig()
    template: SimConfig = base.replace(cells=size, t_end=t_req)
    cols, times = [], []
    for s, ni in progress_bar(list(zip(seeds, n)), desc="turbsim twin", unit="sim", disable=not progress):
        cfg = template.replace(seed=int(s), n=float(ni))
        res = simulate(cfg, threads=threads)
        cols.append(projections(res.density, cfg.dx_cm).astype(np.float32))
        times.append(res.time)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, columns=np.stack(cols), n=np.asarray(n, np.float64), seed=np.asarray(seeds, np.int64),
                     klass=np.asarray(klass), time_myr=np.asarray(times))
    return out


# --------------------------------------------------------------------------------------
# data of one kind
# --------------------------------------------------------------------------------------
def pair_split(n_sims: int) -> np.ndarray:
    """Train mask of a file without splits: simulations in pairs, alternately train and test."""
    return (np.arange(n_sims) // 2) % 2 == 0


@dataclass
class Domain:
    """The maps of one kind of data, with their labels and split.

    Attributes
    ----------
    name : str
    maps : ndarray, float32, shape (S, 3, N, N)
        Column density [g/cm^2].
    klass : ndarray of int, shape (S,)
        0 Kolmogorov, 1 Burgers.
    n : ndarray of float, shape (S,)
    key : ndarray of int, shape (S,)
        The simulation's seed (pairs the same simulation across variants).
    train : ndarray of bool, shape (S,)
    """

    name: str
    maps: np.ndarray
    klass: np.ndarray
    n: np.ndarray
    key: np.ndarray
    train: np.ndarray

    def take(self, rows) -> "Domain":
        rows = np.asarray(rows)
        return Domain(self.name, self.maps[rows], self.klass[rows], self.n[rows], self.key[rows], self.train[rows])


def load_domain(path, name: str | None = None) -> Domain:
    """The maps of an ensemble file (``.h5``, every split but a holdout) or a map file (``.npz``).

    Raises
    ------
    ValueError
        Missing or unreadable file, missing arrays, or simulations without class 0/1
        (names the file).
    """
    from turbsim import dataset

    from .data import load_npz_maps

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: no such data file")
    name = name or p.stem
    if p.suffix == ".npz":
        ms = load_npz_maps(p)
        with np.load(p, allow_pickle=False) as d:
            key = np.asarray(d["seed"], np.int64) if "seed" in d.files else np.arange(len(ms.maps))
        dom = Domain(name, ms.maps, ms.labels["klass"].astype(np.int64), ms.labels["n"], key,
                     pair_split(len(ms.maps)))
    else:
        with dataset.open_ensemble(p) as ens:
            rows = np.r_[ens.indices("train"), ens.indices("test")]
            lab = ens.labels(rows)
            maps = ens.projections(rows)
        dom = Domain(name, maps, lab["klass"].astype(np.int64), lab["n"], lab["seed"].astype(np.int64),
                     lab["split"] == dataset.SPLITS.index("train"))
    if not np.isin(dom.klass, (0, 1)).all():
        raise ValueError(f"{p}: every simulation needs class 0 or 1 (field klass), got "
                         f"{sorted(set(dom.klass.tolist()))}")
    return dom


def nuisance_paths(data_dir, nuisance: Nuisance, ramses: Path | None = None) -> tuple[Path, Path]:
    """Files of the two sides of a nuisance in a data folder (``ramses``: the RAMSES map file)."""
    d = Path(data_dir)

    def one(side):
        if side == "ramses":
            if ramses is None:
                raise ValueError("the code nuisance needs the RAMSES map file (--ramses)")
            return Path(ramses)
        if side == "turbsim":
            return d / TWIN_FILE
        if side == "turbsim_native":
            return d / NATIVE_FILE
        return d / f"{side}.h5"

    return one(nuisance.a), one(nuisance.b)


def log_images(dom: Domain, size: int = IMAGE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """log10 column density of every whole map resampled to ``size`` px: ``(S*3, size, size)``, sim index."""
    from turbsim.observe import log_column

    from .transforms import resample_maps

    x = log_column(resample_maps(dom.maps, size)).astype(np.float32)
    return x.reshape(-1, size, size), np.repeat(np.arange(len(dom.maps)), 3)


@dataclass
class Pair:
    """Images of two domains, normalised together, as a nuisance classification set.

    ``x`` the normalised images, ``sim`` the simulation of each image (domain ``a``'s
    simulations first, then ``b``'s), ``nuisance`` (S,) 0 for ``a`` and 1 for ``b``,
    ``klass`` (S,), ``train`` (S,), ``normaliser``.
    """

    x: np.ndarray
    sim: np.ndarray
    nuisance: np.ndarray
    klass: np.ndarray
    train: np.ndarray
    normaliser: object

    def images(self, train: bool) -> tuple[np.ndarray, np.ndarray]:
        """Images of the train (or test) simulations and their simulation index (into the pair)."""
        sel = self.train[self.sim] == train
        return self.x[sel], self.sim[sel]


def make_pair(a: Domain, b: Domain, size: int = IMAGE_SIZE, normaliser=None) -> Pair:
    """The nuisance classification set of two domains; a global normaliser fitted on their train maps."""
    from .transforms import fit_normaliser

    la, sa = log_images(a, size)
    lb, sb = log_images(b, size)
    x = np.concatenate([la, lb])
    sim = np.r_[sa, sb + len(a.maps)]
    train = np.r_[a.train, b.train]
    if normaliser is None:
        normaliser = fit_normaliser("global", x[train[sim]])
    return Pair(normaliser(x), sim, np.r_[np.zeros(len(a.maps), int), np.ones(len(b.maps), int)],
                np.r_[a.klass, b.klass], train, normaliser)

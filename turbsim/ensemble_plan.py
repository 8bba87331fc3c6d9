"""What an ensemble contains: its configuration, the presets, and the plan of simulations.

An :class:`EnsembleConfig` (frozen, validated) says how many simulations, how their
spectral index ``n`` is chosen (a few classes, or a uniform sweep), how they are split,
and the :class:`~turbsim.SimConfig` they share. :func:`plan` turns it into one
:class:`SimSpec` per simulation: its config (with its own ``n`` and ``seed``), class and
split. Everything is a pure function of the configuration, so any simulation can be
regenerated alone and nothing depends on how many workers run the plan.

Randomness
----------
All of it comes from ``numpy.random.SeedSequence(seed, spawn_key=...)`` with the ensemble
seed as entropy: simulation ``i`` draws its ``SimConfig.seed`` (and, in a sweep, its ``n``)
from spawn key ``(0, i)``; the splits are drawn from spawn key ``(1,)``. Simulation ``i``
is therefore the same whatever the ensemble size, and a larger ensemble extends a
smaller one with the same seed (only the split assignment changes).

Presets
-------
``binary``  1000 simulations at 128^3: 500 Kolmogorov (n = 11/3) and 500 Burgers (n = 4),
            400/50/50 per class in train/test/holdout.
``sweep``   1000 simulations at 128^3, n uniform in [3, 4.5], 800/100/100, stratified in n.
``demo``    300 simulations at 64^3, both classes (120/15/15 per class: enough in the test
            and holdout splits for their scores to mean something); under half a minute on
            two cores.
``ramses64`` ``binary`` at 64^3 with RAMSES's conventions, as the shared RAMSES runs were
            made: white-noise initial conditions, ``gamma`` 1.0001 with its wave speed and
            time step, outputs after the first full step past 0.5 Myr (``stop="after"``).
            Models trained on it are scored on the RAMSES maps (about two minutes).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .config import SimConfig
from .validate import choice, flag, integer, real, sequence

LABEL_MODES = ("classes", "sweep")
SPLITS = ("train", "test", "holdout")
"""Split names; a simulation's split code is the position of its split in this tuple."""
KOLMOGOROV, BURGERS = 11.0 / 3.0, 4.0
SIM_KEY, SPLIT_KEY = 0, 1
"""First element of the SeedSequence spawn keys of simulations and of the split draw."""
PER_SIM_FIELDS = ("n", "seed")
"""SimConfig fields set per simulation by the plan (not overridable in the template)."""


def default_class_names(class_n) -> tuple[str, ...]:
    """``kolmogorov`` for n = 11/3, ``burgers`` for n = 4, ``n=<value>`` otherwise."""
    known = {KOLMOGOROV: "kolmogorov", BURGERS: "burgers"}
    return tuple(next((v for k, v in known.items() if math.isclose(n, k)), f"n={n:g}") for n in class_n)


@dataclass(frozen=True)
class EnsembleConfig:
    """Parameters of an ensemble of simulations.

    Parameters
    ----------
    preset : str
        Name of the preset it starts from (``"binary"``, ``"sweep"``, ``"demo"``,
        ``"custom"``); stored in the file.
    sims : int
        Number of simulations, >= 1.
    seed : int
        Ensemble seed, in [0, 2^63); every simulation seed and the splits derive from it.
    labels : {"classes", "sweep"}
        How ``n`` is chosen: a few classes, or uniform in ``n_range``. ``"classes"``:
        simulation ``i`` gets class ``i % len(class_n)`` and ``n = class_n[class]``
        (balanced classes). ``"sweep"``: ``n`` uniform in ``n_range``, class -1.
    class_n : tuple of float
        Spectral index of each class (default Kolmogorov 11/3 and Burgers 4).
    class_names : tuple of str
        Name of each class, one per ``class_n`` (default ``kolmogorov`` for 11/3,
        ``burgers`` for 4, ``n=<value>`` otherwise: :func:`default_class_names`).
    n_range : (float, float)
        Sweep interval ``[lo, hi)`` of ``n``, within [0, 10].
    splits : (float, float, float)
        Fractions train/test/holdout, non-negative, summing to 1. Applied within each
        stratum (class, or band of ``n`` in a sweep) with largest-remainder rounding.
    save_cubes : bool
        Also store every final 3D density cube (large: ``N^3`` float32 per simulation).
    name : str
        Data-set name stored in the file (default: the preset name).
    sim : SimConfig
        Template of every simulation; its ``n`` and ``seed`` are replaced per simulation.
    """

    preset: str = "custom"
    sims: int = 24
    seed: int = 0
    labels: str = "classes"
    class_n: tuple[float, ...] = (KOLMOGOROV, BURGERS)
    class_names: tuple[str, ...] = ()
    n_range: tuple[float, float] = (3.0, 4.5)
    splits: tuple[float, float, float] = (0.8, 0.1, 0.1)
    save_cubes: bool = False
    name: str = ""
    sim: SimConfig = field(default_factory=SimConfig)

    def __post_init__(self):
        own = "EnsembleConfig"
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        set_("sims", integer(own, "sims", self.sims, 1, 10_000_000))
        set_("seed", integer(own, "seed", self.seed, 0, 2**63 - 1))
        choice(own, "labels", self.labels, LABEL_MODES)
        set_("class_n", sequence(own, "class_n", self.class_n))
        set_("class_names", sequence(own, "class_names", self.class_names, str))
        set_("n_range", sequence(own, "n_range", self.n_range, length=2))
        set_("splits", sequence(own, "splits", self.splits, length=3))
        if not self.class_n or len(self.class_n) > 127:
            raise ValueError(f"EnsembleConfig.class_n must hold 1 to 127 values, got {self.class_n}")
        if not self.class_names:
            set_("class_names", default_class_names(self.class_n))
        if len(self.class_names) != len(self.class_n):
            raise ValueError(f"EnsembleConfig.class_names {self.class_names} must name each of "
                             f"class_n {self.class_n}")
        for i, v in enumerate(self.class_n):  # the range of SimConfig.n
            real(own, f"class_n[{i}]", v, 0, 10)
        lo, hi = self.n_range
        if not 0 <= lo < hi <= 10:
            raise ValueError(f"EnsembleConfig.n_range = {self.n_range} must be (lo, hi) with 0 <= lo < hi <= 10")
        for i, v in enumerate(self.splits):
            real(own, f"splits[{i}]", v, 0, 1)
        if not math.isclose(sum(self.splits), 1.0, abs_tol=1e-9):
            raise ValueError(f"EnsembleConfig.splits = {self.splits} must be 3 fractions "
                             "(train, test, holdout) >= 0 summing to 1")
        flag(own, "save_cubes", self.save_cubes)
        if not isinstance(self.sim, SimConfig):
            raise ValueError(f"EnsembleConfig.sim must be a SimConfig, got {type(self.sim).__name__}")
        if not self.name:
            set_("name", self.preset)

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for a sweep)."""
        return len(self.class_n) if self.labels == "classes" else 0

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable dict (the template as a nested ``sim`` dict)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "sim"}
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
        d["sim"] = self.sim.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EnsembleConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"EnsembleConfig has no field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if "sim" in d and not isinstance(d["sim"], SimConfig):
            d["sim"] = SimConfig.from_dict(dict(d["sim"]))
        return cls(**d)

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict` (sorted keys: equal configs give equal text)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "EnsembleConfig":
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def fingerprint(self) -> str:
        """Short hash of everything that determines the simulations and splits."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def override(self, **changes) -> "EnsembleConfig":
        """A copy with some fields changed; template fields (``cells``, ``t_end``, ...) are
        accepted flat, next to ensemble fields (``sims``, ``seed``, ...).

        Raises
        ------
        ValueError
            A name that is neither, or a per-simulation field (``n``; ``seed`` is the
            ensemble seed).
        """
        own = {f.name for f in dataclasses.fields(self)} - {"sim"}
        sim_fields = {f.name for f in dataclasses.fields(SimConfig)} - set(PER_SIM_FIELDS)
        top = {k: v for k, v in changes.items() if k in own}
        sim = {k: v for k, v in changes.items() if k in sim_fields}
        unknown = sorted(set(changes) - set(top) - set(sim))
        if unknown:
            raise ValueError(f"unknown ensemble setting(s) {', '.join(unknown)}; ensemble: "
                             f"{', '.join(sorted(own))}; simulation: {', '.join(sorted(sim_fields))}")
        if "sim" in changes:
            raise ValueError("pass template fields flat (cells=..., t_end=...), not sim=")
        if "class_n" in top and "class_names" not in top:
            top["class_names"] = ()  # derive names for the new classes
        return dataclasses.replace(self, sim=self.sim.replace(**sim) if sim else self.sim, **top)


PRESETS: dict[str, EnsembleConfig] = {
    "binary": EnsembleConfig(preset="binary", sims=1000, labels="classes", sim=SimConfig(cells=128)),
    "sweep": EnsembleConfig(preset="sweep", sims=1000, labels="sweep", n_range=(3.0, 4.5),
                            sim=SimConfig(cells=128)),
    "demo": EnsembleConfig(preset="demo", sims=300, labels="classes", sim=SimConfig(cells=64)),
    "ramses64": EnsembleConfig(preset="ramses64", sims=1000, labels="classes",
                               sim=SimConfig(cells=64, ic="white_noise", gamma=1.0001, ramses_dt=True,
                                             stop="after")),
}
"""The study's ensembles (see the module docstring)."""


def load_toml(path: str | os.PathLike, base: EnsembleConfig | None = None) -> EnsembleConfig:
    """Read an ensemble configuration from a TOML file.

    The file holds ensemble fields at top level (``preset`` picks the starting preset)
    and template fields in a ``[sim]`` table::

        preset = "binary"
        sims = 200
        seed = 3
        splits = [0.8, 0.1, 0.1]
        [sim]
        cells = 64
        t_end = 0.5
        scheme = "first"

    Parameters
    ----------
    path : str or os.PathLike
        The TOML file.
    base : EnsembleConfig, optional
        Starting point when the file names no preset (default: ``EnsembleConfig()``).

    Returns
    -------
    EnsembleConfig

    Raises
    ------
    ValueError
        The file is missing, is not TOML, or holds an unknown or invalid field (the
        message names the file and the field).
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"config file {path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config file {path}: not valid TOML ({exc})") from None
    preset = data.pop("preset", None)
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"config file {path}: preset {preset!r} is not one of {', '.join(PRESETS)}")
        base = PRESETS[preset]
    base = base or EnsembleConfig()
    sim = data.pop("sim", {})
    if not isinstance(sim, dict):
        raise ValueError(f"config file {path}: [sim] must be a table")
    try:
        return base.override(**data, **sim)
    except ValueError as exc:
        raise ValueError(f"config file {path}: {exc}") from None


@dataclass(frozen=True)
class SimSpec:
    """One planned simulation.

    Parameters
    ----------
    sim_id : int
        Index in the ensemble.
    config : SimConfig
        Its full configuration (``n`` and ``seed`` set).
    klass : int
        Class index, -1 in a sweep.
    split : int
        Split code, the position in :data:`SPLITS` (0 train, 1 test, 2 holdout).
    """

    sim_id: int
    config: SimConfig
    klass: int
    split: int = 0


def simulation(cfg: EnsembleConfig, i: int) -> tuple[SimConfig, int]:
    """Configuration and class of simulation ``i`` (independent of ``cfg.sims``).

    Parameters
    ----------
    cfg : EnsembleConfig
        The ensemble.
    i : int
        Simulation index, >= 0 (may exceed ``cfg.sims``: live streams use that).

    Returns
    -------
    config : SimConfig
        ``cfg.sim`` with ``seed`` and ``n`` of simulation ``i``.
    klass : int
        Class index, or -1 in a sweep.
    """
    words = np.random.SeedSequence(cfg.seed, spawn_key=(SIM_KEY, i)).generate_state(2, np.uint64)
    seed = int(words[0] >> np.uint64(1))  # SimConfig.seed lives in [0, 2^63)
    if cfg.labels == "classes":
        klass = i % len(cfg.class_n)
        n = cfg.class_n[klass]
    else:
        klass = -1
        u = int(words[1] >> np.uint64(11)) * 2.0**-53  # uniform in [0, 1)
        lo, hi = cfg.n_range
        n = lo + (hi - lo) * u
    return cfg.sim.replace(seed=seed, n=n), klass


def split_counts(m: int, fractions: tuple[float, ...]) -> np.ndarray:
    """Largest-remainder rounding of ``m * fractions`` to integers summing to ``m``.

    Examples
    --------
    >>> split_counts(500, (0.8, 0.1, 0.1)).tolist()
    [400, 50, 50]
    >>> split_counts(12, (0.8, 0.1, 0.1)).tolist()
    [10, 1, 1]
    """
    exact = m * np.asarray(fractions, float)
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: m - counts.sum()]] += 1
    return counts


def stratified_splits(strata: np.ndarray, fractions: tuple[float, ...], seed: int) -> np.ndarray:
    """Split members at random into train/test/holdout within each stratum.

    Parameters
    ----------
    strata : ndarray of int, shape (S,)
        Stratum of each simulation (its class, or its band of ``n``).
    fractions : (float, float, float)
        Train, test, holdout fractions; each stratum is split by :func:`split_counts`.
    seed : int
        Ensemble seed (draws from spawn key ``(SPLIT_KEY,)``).

    Returns
    -------
    ndarray of uint8, shape (S,)
        Split code of each simulation.
    """
    strata = np.asarray(strata)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SPLIT_KEY,)))
    out = np.zeros(strata.shape, np.uint8)
    for s in np.unique(strata):
        members = rng.permutation(np.flatnonzero(strata == s))
        bounds = np.cumsum(split_counts(members.size, fractions))
        for code, part in enumerate(np.split(members, bounds[:-1])):
            out[part] = code
    return out


def _sweep_block(fractions: tuple[float, ...]) -> int:
    return max(2, round(1.0 / min(f for f in fractions if f > 0)))


def sweep_strata(n: np.ndarray, fractions: tuple[float, ...]) -> np.ndarray:
    """Bands of consecutive ``n`` for stratifying a sweep.

    Simulations are ranked by ``n`` and grouped in blocks of ``round(1 / smallest
    positive fraction)`` (10 for 80/10/10), so every split covers the whole range of ``n``
    and 1000 simulations split exactly 800/100/100.
    """
    block = _sweep_block(fractions)
    rank = np.empty(len(n), np.int64)
    rank[np.argsort(n, kind="stable")] = np.arange(len(n))
    return rank // block


def plan(cfg: EnsembleConfig) -> list[SimSpec]:
    """Every simulation of an ensemble, in ``sim_id`` order.

    Parameters
    ----------
    cfg : EnsembleConfig
        The ensemble.

    Returns
    -------
    list of SimSpec
        ``cfg.sims`` specs; splits stratified by class (or by band of ``n`` in a sweep),
        deterministic in ``cfg.seed``.
    """
    sims = [simulation(cfg, i) for i in range(cfg.sims)]
    if cfg.labels == "classes":
        strata = np.array([k for _, k in sims])
    else:
        strata = sweep_strata(np.array([c.n for c, _ in sims]), cfg.splits)
    splits = stratified_splits(strata, cfg.splits, cfg.seed)
    return [SimSpec(i, c, k, int(s)) for i, ((c, k), s) in enumerate(zip(sims, splits))]


def split_sizes(cfg: EnsembleConfig, sims: int | None = None) -> np.ndarray:
    """Simulations in each split of the plan of ``cfg``, without drawing the plan.

    The stratified split sizes depend only on the sizes of the strata (classes, or bands
    of ``n`` in a sweep), not on the seed.

    Parameters
    ----------
    cfg : EnsembleConfig
        The ensemble.
    sims : int, optional
        Size of the ensemble (default ``cfg.sims``).

    Returns
    -------
    ndarray of int, shape (3,)
        Train, test, holdout counts, as :func:`plan` assigns them.

    Examples
    --------
    >>> demo = EnsembleConfig(sims=24)
    >>> split_sizes(demo).tolist(), split_sizes(demo, 3).tolist()
    ([20, 2, 2], [3, 0, 0])
    """
    s = cfg.sims if sims is None else sims
    if cfg.labels == "classes":
        c = len(cfg.class_n)
        size, bigger = divmod(s, c)  # `bigger` classes hold one simulation more
        sizes = {size + 1: bigger, size: c - bigger}
    else:
        block = _sweep_block(cfg.splits)
        sizes = {block: s // block, s % block: 1}
    total = np.zeros(len(SPLITS), np.int64)
    for m, count in sizes.items():
        if m and count:
            total += count * split_counts(m, cfg.splits)
    return total


def empty_splits(cfg: EnsembleConfig, sims: int | None = None) -> list[str]:
    """Names of the splits that get a positive fraction but no simulation.

    Examples
    --------
    >>> empty_splits(EnsembleConfig(sims=3))
    ['test', 'holdout']
    >>> empty_splits(EnsembleConfig(sims=3, splits=(1.0, 0.0, 0.0)))
    []
    """
    sizes = split_sizes(cfg, sims)
    return [name for name, f, k in zip(SPLITS, cfg.splits, sizes) if f > 0 and k == 0]


def sims_filling_splits(cfg: EnsembleConfig, limit: int = 10_000_000) -> int | None:
    """The smallest ensemble size ``>= cfg.sims`` that leaves no split of positive
    fraction empty (None if there is none up to ``limit``).

    Examples
    --------
    >>> sims_filling_splits(EnsembleConfig(sims=3))
    13
    """
    for s in range(cfg.sims, limit + 1):
        if not empty_splits(cfg, s):
            return s
    return None

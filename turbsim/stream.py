"""Simulations as records: one planned simulation, or an endless stream of fresh ones.

:func:`simulate_one` runs one planned simulation (a
:class:`~turbsim.ensemble_plan.SimSpec`) and projects it into a
:class:`~turbsim.dataset.SimRecord`: what ``python -m turbsim.generate`` runs in its
workers. :func:`stream` yields freshly simulated, labelled projections from worker
processes, endlessly and reproducibly, for training on never-repeated data.

Examples
--------
>>> from turbsim import SimConfig
>>> live = stream(SimConfig(cells=16, t_end=0.05, scheme="first"), seed=3, workers=0)
>>> first = next(live)
>>> first["projections"].shape, first["klass"], first["index"]
((3, 16, 16), 0, 0)
>>> live.close()
"""
from __future__ import annotations

import collections
import itertools
import time
from typing import Callable, Iterable, Iterator

import numpy as np

from . import observe
from .config import SimConfig
from .dataset import SimRecord
from .ensemble_plan import BURGERS, KOLMOGOROV, EnsembleConfig, SimSpec, simulation
from .parallel import default_workers, process_pool
from .simulate import simulate


def simulate_one(spec: SimSpec, save_cubes: bool = False) -> SimRecord:
    """Run one planned simulation and project it.

    Parameters
    ----------
    spec : SimSpec
        The simulation (config, class, split).
    save_cubes : bool, optional
        Keep the final density cube (float32) in the record.

    Returns
    -------
    dataset.SimRecord
        Column density along x, y, z [g/cm^2] (float32) and solver statistics:
        ``wall_time`` [s] is the whole job in its worker (IC, solver, projections),
        ``solver_time`` and ``ic_time`` [s] come from :class:`turbsim.SimResult`. An
        AMR-lite run's maps are those of its finest level (``2^levelmax`` pixels, deposited
        from the leaf cells) and its record holds the leaf cells per level.
    """
    t0 = time.perf_counter()
    cfg = spec.config
    res = simulate(cfg, threads=1)
    leaf_cells = None
    if cfg.amr:  # maps of the finest level, deposited from the leaves (they carry the mesh pattern)
        column = np.stack([res.column_density(axis) for axis in range(3)]).astype(np.float32)
        counts = res.leaf_counts()
        leaf_cells = [counts.get(level, 0) for level in range(cfg.levelmin, cfg.levelmax + 1)]
    else:
        column = observe.projections(res.density, cfg.dx_cm)
    stats = {
        "steps": res.steps, "wall_time": time.perf_counter() - t0, "solver_time": res.solver_time,
        "ic_time": res.ic_time, "mass_error": res.mass_error, "momentum_error": res.momentum_error,
        "time_myr": res.time,
    }
    return SimRecord(
        sim_id=spec.sim_id, seed=cfg.seed, n=cfg.n, klass=spec.klass, split=spec.split,
        config=cfg.to_json(), column_density=column, stats=stats,
        density=res.density if save_cubes else None, leaf_cells=leaf_cells,
    )


def stream(
    config_template: SimConfig,
    *,
    n_values: Iterable[float] = (KOLMOGOROV, BURGERS),
    n_range: tuple[float, float] | None = None,
    seed: int = 0,
    workers: int | None = None,
    prefetch: int | None = None,
    start: int = 0,
) -> Iterator[dict]:
    """Freshly simulated, labelled projections, endlessly.

    Simulation ``i`` is simulation ``i`` of the ensemble
    ``EnsembleConfig(seed=seed, class_n=n_values or n_range, sim=config_template)``
    (see :func:`turbsim.ensemble_plan.simulation`), so the stream is reproducible; use a
    seed that no stored ensemble uses to never see its simulations.

    Parameters
    ----------
    config_template : SimConfig
        Configuration of every simulation; ``n`` and ``seed`` are set per simulation.
    n_values : iterable of float, optional
        Classes: simulation ``i`` gets class ``i % len(n_values)``, ``n = n_values[class]``
        (default Kolmogorov 11/3 and Burgers 4).
    n_range : (float, float), optional
        If given, draw ``n`` uniformly in ``[lo, hi)`` instead (class -1).
    seed : int, optional
        Seed of the stream (default 0).
    workers : int, optional
        Worker processes (default: all cores but one, at least 1; 0: in this process).
    prefetch : int, optional
        Simulations in flight (default ``2 * workers``).
    start : int, optional
        Index of the first simulation (to continue a stream).

    Yields
    ------
    dict
        ``projections`` float32 (3, N, N) column density [g/cm^2]; ``n`` float;
        ``klass`` int; ``seed`` int; ``index`` int; ``config`` SimConfig. In index order.
    """
    cfg = EnsembleConfig(preset="live", sims=1, seed=seed, sim=config_template,
                         labels="sweep" if n_range is not None else "classes",
                         class_n=tuple(n_values), **({"n_range": n_range} if n_range is not None else {}))
    if workers is None:
        workers = max(1, default_workers() - 1)
    specs = (SimSpec(i, *simulation(cfg, i)) for i in itertools.count(start))
    for rec in _ordered(simulate_one, specs, workers, prefetch or 2 * max(workers, 1)):
        yield {"projections": rec.column_density, "n": rec.n, "klass": rec.klass, "seed": rec.seed,
               "index": rec.sim_id, "config": SimConfig.from_json(rec.config)}


def _ordered(fn: Callable, items: Iterator, workers: int, prefetch: int) -> Iterator:
    """``map(fn, items)`` on a process pool, ``prefetch`` in flight, results in order."""
    if workers == 0:
        yield from map(fn, items)
        return
    ex = process_pool(workers)
    try:
        queue: collections.deque = collections.deque(ex.submit(fn, x) for x in itertools.islice(items, prefetch))
        while queue:
            result = queue.popleft().result()
            queue.extend(ex.submit(fn, x) for x in itertools.islice(items, 1))
            yield result
    finally:
        ex.shutdown(wait=False, cancel_futures=True)

"""``python -m turbsim.generate``: labelled ensembles of simulations to HDF5.

Runs every simulation of an :class:`~turbsim.ensemble_plan.EnsembleConfig` (a preset, a
TOML file, command-line overrides), projects it, and writes the ensemble file described in
:mod:`turbsim.dataset`. In parallel on a local process pool (all cores by default) or on a
Dask cluster (``--scheduler ADDRESS``); every simulation has its own seed from one
``SeedSequence``, so the file does not depend on the number of workers.

Resumable and never corrupt: each finished simulation is written atomically to its own
part file in ``OUTPUT.parts/``; rerunning the same command skips finished parts; the final
file is consolidated from the parts under a temporary name and renamed, then the parts are
removed. ``--verify FILE`` checks an existing file.

:func:`stream` yields freshly simulated labelled projections from worker processes,
endlessly, for training on never-repeated data.

Examples
--------
Command line::

    python -m turbsim.generate demo -o demo.h5
    python -m turbsim.generate binary -o binary.h5 --cells 64 --sims 200 --t-end 0.25
    python -m turbsim.generate --config ensemble.toml -o custom.h5 --scheduler tcp://head:8786
    python -m turbsim.generate --verify binary.h5 --json
"""
from __future__ import annotations

import argparse
import collections
import ctypes
import concurrent.futures as cf
import contextlib
import dataclasses
import errno
import fcntl
import functools
import itertools
import json
import logging
import multiprocessing
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

from . import config as _config
from . import dataset, observe
from .config import SimConfig
from .simulate import simulate
from .ensemble_plan import (KOLMOGOROV, BURGERS, PER_SIM_FIELDS, PRESETS, EnsembleConfig, SimSpec,
                            load_toml, plan, simulation)

log = logging.getLogger(__name__)

PART_GLOB = "[0-9]*.h5"
LOCK_NAME = ".lock"
PLAN_NAME = "ensemble.json"


class GenerateError(RuntimeError):
    """A problem the user can act on (message says what and how); the output stays valid."""


# --------------------------------------------------------------------------------------
# one simulation (runs in a worker)
# --------------------------------------------------------------------------------------
def simulate_one(spec: SimSpec, save_cubes: bool = False) -> dataset.SimRecord:
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
        ``solver_time`` and ``ic_time`` [s] come from :class:`turbsim.SimResult`.
    """
    t0 = time.perf_counter()
    cfg = spec.config
    res = simulate(cfg, threads=1)
    column = observe.projections(res.density, cfg.dx_cm)
    stats = {
        "steps": res.steps, "wall_time": time.perf_counter() - t0, "solver_time": res.solver_time,
        "ic_time": res.ic_time, "mass_error": res.mass_error, "momentum_error": res.momentum_error,
        "time_myr": res.time,
    }
    return dataset.SimRecord(
        sim_id=spec.sim_id, seed=cfg.seed, n=cfg.n, klass=spec.klass, split=spec.split,
        config=cfg.to_json(), column_density=column, stats=stats,
        density=res.density if save_cubes else None,
    )


# --------------------------------------------------------------------------------------
# executors: results as they finish
# --------------------------------------------------------------------------------------
def default_workers() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _exit_with_parent(parent: int, poll_s: float = 1.0) -> None:
    """Worker initializer: end this worker when its parent dies (e.g. killed with SIGKILL),
    instead of finishing a simulation nobody will collect."""
    def watch():
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="turbsim-parent-watch").start()


def keep_freed_memory() -> bool:
    """Make this process's C allocator keep freed memory for reuse (glibc only).

    A simulation allocates and frees the same few large arrays (about 0.3 GB at 128^3).
    By default glibc hands blocks over 32 MB back to the OS when they are freed, and the
    next simulation faults them in again, zeroed (with transparent huge pages, after memory
    compaction): 0.05-0.2 s per 128^3 simulation on a 2-core VM, a sixth of the solver's
    time. With ``mmap`` off and trimming above 1 GiB only, a worker keeps its pages from one
    simulation to the next. Called in every local worker; harmless to call elsewhere.

    Returns
    -------
    bool
        True when the settings took effect (False where the C library is not glibc).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_max = -1, -4  # glibc's <malloc.h> parameter numbers
    return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))


def _init_worker(parent: int) -> None:
    """Initializer of the local workers."""
    _exit_with_parent(parent)
    keep_freed_memory()


def _pool(workers: int) -> cf.ProcessPoolExecutor:
    # "spawn": safe with OpenMP in the solver and with JAX threads in a training parent.
    return cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_init_worker, initargs=(os.getpid(),))


def _as_completed_local(fn, items: list, workers: int) -> Iterator[tuple[Any, Any]]:
    if not items:
        return
    if workers == 0:  # in this process, in order: for debugging and profiling
        for item in items:
            try:
                yield item, fn(item)
            except Exception as exc:  # noqa: BLE001 (reported per simulation)
                yield item, exc
        return
    ex = _pool(workers)
    try:
        futures = {ex.submit(fn, item): item for item in items}
        for fut in cf.as_completed(futures):
            exc = fut.exception()
            yield futures[fut], exc if exc is not None else fut.result()
    finally:
        ex.shutdown(wait=False, cancel_futures=True)


def _as_completed_dask(fn, items: list, scheduler, tag: str) -> Iterator[tuple[Any, Any]]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise GenerateError("--scheduler needs Dask: pip install 'dask[distributed]'") from None
    own = not isinstance(scheduler, Client)
    try:
        client = Client(scheduler, timeout="30s") if own else scheduler
    except (OSError, TimeoutError) as exc:
        raise GenerateError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    try:
        keys = [f"turbsim-{tag}-{item.sim_id}" for item in items]
        by_key = dict(zip(keys, items))
        futures = client.map(fn, items, key=keys)
        try:
            for fut in as_completed(futures):
                exc = fut.exception()
                yield by_key[fut.key], exc if exc is not None else fut.result()
        finally:
            client.cancel(futures)
    finally:
        if own:
            client.close()


def _as_completed(fn, items: list, *, workers: int | None, scheduler, tag: str):
    if scheduler is not None:
        return _as_completed_dask(fn, items, scheduler, tag)
    return _as_completed_local(fn, items, default_workers() if workers is None else workers)


# --------------------------------------------------------------------------------------
# files of a run
# --------------------------------------------------------------------------------------
def parts_dir(output: str | os.PathLike) -> Path:
    """Directory of the part files of ``output`` (``OUTPUT.parts`` next to it)."""
    output = Path(output)
    return output.with_name(output.name + ".parts")


def part_path(parts: Path, sim_id: int) -> Path:
    """Part file of one simulation."""
    return parts / f"{sim_id:07d}.h5"


def _io_error(exc: OSError, what: Path, parts: Path) -> GenerateError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = "the disk is full"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = "permission denied"
    else:
        reason = exc.strerror or str(exc)
    return GenerateError(
        f"cannot write {what}: {reason}. Finished simulations are kept in {parts}/ and any "
        "existing output is unchanged; fix the problem and rerun the same command to resume.")


@contextlib.contextmanager
def _run_lock(parts: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``parts`` (one run per output at a time)."""
    with open(parts / LOCK_NAME, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GenerateError(f"another generate run is writing {parts}/; wait for it or stop it") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _remove_temporaries(parts: Path, output: Path) -> None:
    """Delete temporary files left by a killed run (only while holding the lock)."""
    for tmp in itertools.chain(parts.glob(".*.tmp"), output.parent.glob(f".{output.name}.*.tmp")):
        log.info("removing %s left by an interrupted run", tmp)
        tmp.unlink(missing_ok=True)


def _check_plan_file(parts: Path, cfg: EnsembleConfig) -> None:
    """Record the configuration in the parts directory, or check it is the same one."""
    path = parts / PLAN_NAME
    if path.exists():
        try:
            old = EnsembleConfig.from_json(path.read_text())
        except (ValueError, OSError) as exc:
            raise GenerateError(f"{path} is unreadable ({exc}); remove {parts}/ to start afresh") from None
        if old != cfg:
            a, b = old.to_dict(), cfg.to_dict()
            diff = sorted(k for k in a if a[k] != b[k])
            raise GenerateError(
                f"{parts}/ holds simulations of a different configuration (differs in: {', '.join(diff)}); "
                "rerun with the same options to resume, or remove it / choose another --output")
        return
    from .atomic import atomic_path
    with atomic_path(path) as tmp:
        tmp.write_text(cfg.to_json())


def _finished(parts: Path, specs: list[SimSpec], tag: str) -> set[int]:
    """sim_ids whose part file exists and belongs to this ensemble (cheap attribute check)."""
    import h5py

    done = set()
    wanted = {part_path(parts, s.sim_id): s.sim_id for s in specs}
    for path in parts.glob(PART_GLOB):
        sim_id = wanted.get(path)
        try:
            with h5py.File(path, "r") as f:
                ok = sim_id is not None and f.attrs.get("tag") == tag and int(f.attrs["sim_id"]) == sim_id
        except (OSError, KeyError):
            ok = False
        if ok:
            done.add(sim_id)
        else:
            log.warning("ignoring and removing unusable part %s", path)
            path.unlink(missing_ok=True)
    return done


def _check_space(directory: Path, cfg: EnsembleConfig, n_todo: int) -> None:
    n = cfg.sim.cells
    per_sim = 3 * n * n * 4 + (n**3 * 4 if cfg.save_cubes else 0) + 8192
    need = per_sim * (n_todo + cfg.sims)  # remaining parts + final file
    free = shutil.disk_usage(directory).free
    if free < need:
        raise GenerateError(f"not enough disk space in {directory}: need about {need / 1e9:.2f} GB "
                            f"(parts + final file), {free / 1e9:.2f} GB free")


def header(cfg: EnsembleConfig) -> dataset.EnsembleHeader:
    """File-level attributes of the ensemble made from ``cfg``."""
    return dataset.EnsembleHeader(
        dataset_name=cfg.name, preset=cfg.preset, ensemble_seed=cfg.seed,
        ensemble_config=cfg.to_json(), class_names=cfg.class_names if cfg.n_classes else ())


# --------------------------------------------------------------------------------------
# the library entry points
# --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RunSummary:
    """What a run did.

    Attributes
    ----------
    output : str
        The ensemble file.
    sims : int
        Simulations in the ensemble.
    simulated : int
        Simulations run now.
    resumed : int
        Simulations found finished from an earlier run.
    elapsed_s : float
        Wall time of this run [s].
    sims_per_hour : float
        Throughput of this run (simulations run now per hour of wall time).
    solver_share : float
        Sum of solver times over sum of per-simulation job times of the simulations run
        now (1 - share of IC, projections and worker overhead); NaN if none ran.
    """

    output: str
    sims: int
    simulated: int
    resumed: int
    elapsed_s: float
    sims_per_hour: float
    solver_share: float

    def to_dict(self) -> dict:
        """Plain dict (for ``--json``; NaN becomes None)."""
        return {k: None if isinstance(v, float) and v != v else v
                for k, v in dataclasses.asdict(self).items()}


def run_ensemble(
    cfg: EnsembleConfig,
    output: str | os.PathLike,
    *,
    workers: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
    keep_parts: bool = False,
) -> RunSummary:
    """Generate (or finish) an ensemble file.

    Parameters
    ----------
    cfg : EnsembleConfig
        The ensemble.
    output : str or os.PathLike
        The HDF5 file to make. Part files go to ``OUTPUT.parts/`` next to it.
    workers : int, optional
        Local worker processes (default: all cores; 0 runs in this process). Each runs
        ``turbsim.simulate`` with one thread.
    scheduler : str or distributed.Client, optional
        Dask scheduler address (or a client): run on that cluster instead.
    progress : bool, optional
        Show a progress bar with rate and ETA (default True).
    keep_parts : bool, optional
        Keep the part files after consolidation (default: remove them).

    Returns
    -------
    RunSummary

    Raises
    ------
    GenerateError
        A problem the user can fix (disk full, permissions, a different configuration in
        the way, failed simulations); everything finished so far is kept.
    """
    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    output = Path(output)
    specs = plan(cfg)
    tag = cfg.fingerprint()
    if output.exists():
        _check_existing(output, cfg)
        log.info("%s is already complete", output)
        return RunSummary(str(output), cfg.sims, 0, cfg.sims, 0.0, 0.0, float("nan"))
    parts = parts_dir(output)
    try:
        parts.mkdir(exist_ok=True)
    except OSError as exc:
        raise _io_error(exc, parts, parts) from None
    with _run_lock(parts):
        _remove_temporaries(parts, output)
        _check_plan_file(parts, cfg)
        done = _finished(parts, specs, tag)
        todo = [s for s in specs if s.sim_id not in done]
        _check_space(parts, cfg, len(todo))
        log.info("%s: %d simulations, %d already finished, %d to run", output, cfg.sims, len(done), len(todo))
        times = {"wall": 0.0, "solver": 0.0}
        fn = functools.partial(simulate_one, save_cubes=cfg.save_cubes)
        with tqdm(total=cfg.sims, initial=len(done), unit="sim", desc=output.name,
                  disable=not progress, smoothing=0.05) as bar:

            def records() -> Iterator[dataset.SimRecord]:
                """Every simulation's record: the new ones as they finish (each saved to
                its part file first), then those of earlier runs from their parts."""
                failures: dict[int, str] = {}
                for spec, outcome in _as_completed(fn, todo, workers=workers, scheduler=scheduler, tag=tag):
                    if isinstance(outcome, BaseException):
                        failures[spec.sim_id] = f"{type(outcome).__name__}: {outcome}"
                        log.error("simulation %d failed: %s", spec.sim_id, failures[spec.sim_id])
                        continue
                    path = part_path(parts, spec.sim_id)
                    try:
                        dataset.write_part(path, outcome, tag=tag)
                    except OSError as exc:
                        raise _io_error(exc, path, parts) from None
                    times["wall"] += outcome.stats["wall_time"]
                    times["solver"] += outcome.stats["solver_time"]
                    bar.update(1)
                    yield outcome
                if failures:
                    first = next(iter(sorted(failures.items())))
                    raise GenerateError(
                        f"{len(failures)} simulation(s) failed (e.g. sim {first[0]}: {first[1]}); "
                        f"the {cfg.sims - len(failures)} others are kept in {parts}/; rerun to retry the failed ones")
                for i in sorted(done):
                    yield dataset.read_part(part_path(parts, i), tag=tag)

            # the final file is written while the simulations run (under a temporary name,
            # renamed once complete and verified): no pass over all the parts at the end
            _consolidate(cfg, output, parts, records())
    if not keep_parts:
        shutil.rmtree(parts, ignore_errors=True)
    elapsed = time.perf_counter() - t_start
    return RunSummary(str(output), cfg.sims, len(todo), len(done), elapsed,
                      3600.0 * len(todo) / elapsed if todo else 0.0,
                      times["solver"] / times["wall"] if times["wall"] > 0 else float("nan"))


def _check_existing(output: Path, cfg: EnsembleConfig) -> None:
    problems = verify_ensemble(output)
    if problems:
        raise GenerateError(f"{output} exists but is not a valid ensemble ({problems[0]}); "
                            "remove it to generate it again")
    with dataset.open_ensemble(output) as ens:
        same = ens.attrs.get("ensemble_config") == cfg.to_json()
    if not same:
        raise GenerateError(f"{output} exists and was made with a different configuration; "
                            "choose another --output or remove it")


def _consolidate(cfg: EnsembleConfig, output: Path, parts: Path, records: Iterable[dataset.SimRecord]) -> None:
    """Write the final file from every simulation's record (temporary name, then rename)
    and verify it; an exception from ``records`` leaves no file behind."""
    try:
        dataset.write_ensemble(output, records, header(cfg), n_sims=cfg.sims)
    except OSError as exc:
        raise _io_error(exc, output, parts) from None
    except dataset.LayoutError as exc:
        raise GenerateError(f"cannot consolidate: {exc}; remove that part and rerun") from None
    problems = verify_ensemble(output)
    if problems:  # should not happen: keep the parts to investigate
        raise GenerateError(f"{output} failed verification after writing: {'; '.join(problems[:3])}")
    log.info("wrote %s", output)


def verify_ensemble(path: str | os.PathLike) -> list[str]:
    """Check an ensemble file: its layout (:func:`turbsim.dataset.verify`) and that every
    simulation, label, seed and split is the one its stored ensemble configuration plans.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    list of str
        Problems found (empty if the file is valid).
    """
    problems = dataset.verify(path)
    if problems:
        return problems
    with dataset.open_ensemble(path, allow_holdout=True) as ens:
        try:
            cfg = EnsembleConfig.from_json(ens.attrs["ensemble_config"])
        except (KeyError, ValueError) as exc:
            return [f"{path}: ensemble_config attribute unusable ({exc})"]
        specs = plan(cfg)
        if len(specs) != ens.n_sims:
            return [f"{path}: holds {ens.n_sims} simulations, its configuration plans {len(specs)}"]
        lab = ens.labels()
        for spec in specs:
            i = spec.sim_id
            if (ens.config(i) != spec.config or lab["klass"][i] != spec.klass
                    or lab["split"][i] != spec.split):
                problems.append(f"{path}: sim {i} (config, class or split) differs from the plan "
                                f"of its ensemble_config")
    return problems


# --------------------------------------------------------------------------------------
# live source
# --------------------------------------------------------------------------------------
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


def _ordered(fn, items: Iterator, workers: int, prefetch: int) -> Iterator:
    """``map(fn, items)`` on a process pool, ``prefetch`` in flight, results in order."""
    if workers == 0:
        yield from map(fn, items)
        return
    ex = _pool(workers)
    try:
        queue: collections.deque = collections.deque(ex.submit(fn, x) for x in itertools.islice(items, prefetch))
        while queue:
            result = queue.popleft().result()
            queue.extend(ex.submit(fn, x) for x in itertools.islice(items, 1))
            yield result
    finally:
        ex.shutdown(wait=False, cancel_futures=True)


# --------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------
_CHOICES = {"scheme": _config.SCHEMES, "limiter": _config.LIMITERS, "dtype": _config.DTYPES,
            "ic": _config.IC_METHODS, "stop": _config.STOPS}
_UNITS = {"box": "pc", "density": "g/cm^3", "temperature": "K", "t_end": "Myr"}


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (every preset field is an option)."""
    p = argparse.ArgumentParser(
        prog="python -m turbsim.generate",
        description="Generate a labelled ensemble of turbulence simulations into one HDF5 file "
                    "(parallel, resumable: rerun the same command after an interruption).",
        epilog="Presets: " + "; ".join(
            f"{k}: {c.sims} sims at {c.sim.cells}^3, {c.labels}" for k, c in PRESETS.items())
        + ". Precedence: preset < --config TOML < options.")
    p.add_argument("preset", nargs="?", choices=sorted(PRESETS), help="starting preset (default demo)")
    p.add_argument("-o", "--output", type=Path, help="HDF5 file to write (default PRESET.h5)")
    p.add_argument("--config", type=Path, metavar="TOML", help="ensemble configuration file")
    p.add_argument("--verify", type=Path, metavar="FILE", help="check an existing file and exit")
    run = p.add_argument_group("execution")
    run.add_argument("--workers", type=int, help="local worker processes (default: all cores)")
    run.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://host:8786")
    run.add_argument("--keep-parts", action="store_true", help="keep OUTPUT.parts/ after consolidation")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--json", action="store_true", help="print a JSON summary line on stdout")
    run.add_argument("-v", "--verbose", action="store_true", help="log every step")
    ens = p.add_argument_group("ensemble (override the preset)")
    ens.add_argument("--sims", type=int, help="number of simulations")
    ens.add_argument("--seed", type=int, help="ensemble seed (every simulation seed derives from it)")
    ens.add_argument("--labels", choices=("classes", "sweep"), help="classes of n, or n uniform in --n-range")
    ens.add_argument("--class-n", type=float, nargs="+", metavar="N", help="n of each class")
    ens.add_argument("--class-names", nargs="+", metavar="NAME", help="name of each class")
    ens.add_argument("--n-range", type=float, nargs=2, metavar=("LO", "HI"), help="sweep range of n")
    ens.add_argument("--splits", type=float, nargs=3, metavar=("TRAIN", "TEST", "HOLDOUT"),
                     help="split fractions (sum 1)")
    ens.add_argument("--save-cubes", action=argparse.BooleanOptionalAction, default=None,
                     help="also store the 3D density cubes (large)")
    ens.add_argument("--name", help="data-set name stored in the file")
    sim = p.add_argument_group("every simulation (SimConfig fields)")
    for f in dataclasses.fields(SimConfig):
        if f.name in PER_SIM_FIELDS:
            continue
        flag = "--" + f.name.replace("_", "-")
        unit = f" [{_UNITS[f.name]}]" if f.name in _UNITS else ""
        if isinstance(f.default, bool):
            sim.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                             help=f"SimConfig.{f.name}")
        else:
            sim.add_argument(flag, dest=f.name, type=type(f.default), choices=_CHOICES.get(f.name),
                             help=f"SimConfig.{f.name}{unit}")
    return p


_RUN_OPTIONS = {"preset", "output", "config", "verify", "workers", "scheduler", "keep_parts",
                "no_progress", "json", "verbose"}


def config_from_args(args: argparse.Namespace) -> EnsembleConfig:
    """The ensemble configuration: preset, then TOML file, then command-line overrides.

    Raises
    ------
    ValueError
        An invalid value (the message names the option or file field).
    """
    base = PRESETS[args.preset or "demo"]
    if args.config is not None:
        base = load_toml(args.config, base=base)
        if args.preset is not None:  # an explicit preset on the command line wins over the file's
            base = dataclasses.replace(base, preset=args.preset)
    overrides = {k: v for k, v in vars(args).items() if k not in _RUN_OPTIONS and v is not None}
    return base.override(**overrides)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 1 failure, 2 bad arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.verify is not None:
        if not args.verify.exists():
            parser.error(f"--verify: {args.verify} does not exist")
        problems = verify_ensemble(args.verify)
        if args.json:
            print(json.dumps({"file": str(args.verify), "valid": not problems, "problems": problems}))
        for line in problems:
            print(line, file=sys.stderr)
        if not problems and not args.json:
            print(f"{args.verify}: valid")
        return 1 if problems else 0
    if args.workers is not None and args.workers < 0:
        parser.error(f"--workers must be >= 0, got {args.workers}")
    if args.workers is not None and args.scheduler is not None:
        parser.error("--workers and --scheduler exclude each other (the cluster decides its workers)")
    try:
        cfg = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    output = args.output or Path(f"{cfg.name}.h5")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"--output: cannot create directory {output.parent}: {exc.strerror}")
    try:
        summary = run_ensemble(cfg, output, workers=args.workers, scheduler=args.scheduler,
                               progress=not args.no_progress, keep_parts=args.keep_parts)
    except GenerateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted: finished simulations are kept in {parts_dir(output)}/; "
              "rerun the same command to resume", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(summary.to_dict()))
    return 0


if __name__ == "__main__":
    # Run the imported module's main, so that worker processes find simulate_one under
    # its importable name turbsim.generate (not __main__).
    from turbsim.generate import main as _main

    sys.exit(_main())

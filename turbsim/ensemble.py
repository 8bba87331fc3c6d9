"""The ensemble run behind ``python -m turbsim.generate``: resumable, parallel, never corrupt.

:func:`run_ensemble` runs every simulation of an :class:`~turbsim.ensemble_plan.EnsembleConfig`,
projects it (:func:`turbsim.stream.simulate_one`) and writes the ensemble file described
in :mod:`turbsim.dataset`, on a local process pool (all cores by default) or a Dask
cluster (:mod:`turbsim.parallel`); every simulation has its own seed from one
``SeedSequence``, so the file does not depend on the number of workers.

Each finished simulation is written atomically to its own part file in ``OUTPUT.parts/``;
a rerun skips finished parts. The final file is written from the parts under a temporary
name, verified (:func:`turbsim.dataset.verify`), and only then renamed; the parts are
removed last (a rerun that finds the complete file removes parts left by a run killed
before it could).

This is a library module (the command line is :mod:`turbsim.generate`): code that needs
ensembles, such as :mod:`learn`, calls it without importing a command module.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import functools
import itertools
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

from . import dataset
from .atomic import atomic_path
from .console import progress as progress_bar
from .ensemble_plan import EnsembleConfig, SimSpec, empty_splits, plan, sims_filling_splits, split_sizes
from .parallel import RunError, WorkerDied, as_completed
from .stream import simulate_one

__all__ = ["run_ensemble", "RunSummary", "GenerateError", "header", "parts_dir", "part_path",
           "empty_split_message", "human_bytes"]

log = logging.getLogger(__name__)

GenerateError = RunError
"""A problem the user can act on (the message says what and how); the output stays valid.
The same class as :class:`turbsim.parallel.RunError`."""


PART_GLOB = "[0-9]*.h5"
LOCK_NAME = ".lock"
PLAN_NAME = "ensemble.json"


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
    elif exc.errno == errno.EFBIG:
        reason = "the file size limit was reached (File too large)"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = "permission denied"
    else:
        reason = exc.strerror or str(exc)
    return GenerateError(
        f"cannot write {what}: {reason}. Finished simulations are kept in {parts}/ and any "
        "existing output is unchanged; fix the problem and rerun the same command to resume.")


@contextlib.contextmanager
def _run_lock(parts: Path, busy_ok: bool = False) -> Iterator[bool]:
    """Hold an exclusive lock on ``parts`` (one run per output at a time).

    Yields True when the lock is held. A lock held by another run raises
    :class:`GenerateError`, or yields False with ``busy_ok``.
    """
    with open(parts / LOCK_NAME, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if busy_ok:
                yield False
                return
            raise GenerateError(f"another generate run is writing {parts}/; wait for it or stop it") from None
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _remove_temporaries(parts: Path, output: Path) -> None:
    """Delete temporary files left by a killed run (only while holding the lock)."""
    for tmp in itertools.chain(parts.glob(".*.tmp"), output.parent.glob(f".{output.name}.*.tmp")):
        log.info("removing %s left by an interrupted run", tmp)
        tmp.unlink(missing_ok=True)


def _stored_plan(parts: Path) -> EnsembleConfig | None:
    """The configuration recorded in ``parts`` (None if there is none)."""
    path = parts / PLAN_NAME
    if not path.exists():
        return None
    try:
        return EnsembleConfig.from_json(path.read_text())
    except (ValueError, OSError) as exc:
        raise GenerateError(f"{path} is unreadable ({exc}); remove {parts}/ to start afresh") from None


def _check_plan_file(parts: Path, cfg: EnsembleConfig) -> None:
    """Record the configuration in the parts directory, or check it is the same one."""
    old = _stored_plan(parts)
    if old is None:
        with atomic_path(parts / PLAN_NAME) as tmp:
            tmp.write_text(cfg.to_json())
    elif old != cfg:
        a, b = old.to_dict(), cfg.to_dict()
        diff = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        raise GenerateError(
            f"{parts}/ holds simulations of a different configuration (differs in: {', '.join(diff)}); "
            "rerun with the same options to resume, or remove it / choose another --output")


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


def human_bytes(n: float) -> str:
    """A size in bytes in the unit that suits it (decimal: kB, MB, GB, TB).

    Examples
    --------
    >>> human_bytes(512), human_bytes(49_152), human_bytes(2.75e6), human_bytes(1.2e12)
    ('512 B', '49.2 kB', '2.75 MB', '1.20 TB')
    """
    if n < 1000:
        return f"{n:.0f} B"
    for unit in ("kB", "MB", "GB", "TB"):
        n /= 1000.0
        if n < 999.5 or unit == "TB":
            break
    return f"{n:.{2 if n < 9.995 else 1 if n < 99.95 else 0}f} {unit}"


def _check_space(directory: Path, cfg: EnsembleConfig, n_todo: int) -> None:
    n = cfg.sim.map_cells
    per_sim = 3 * n * n * 4 + (n**3 * 4 if cfg.save_cubes else 0) + 8192
    need = per_sim * (n_todo + cfg.sims)  # remaining parts + final file
    free = shutil.disk_usage(directory).free
    if free < need:
        raise GenerateError(f"not enough disk space in {directory}: need about {human_bytes(need)} "
                            f"(parts + final file), {human_bytes(free)} free")


def header(cfg: EnsembleConfig) -> dataset.EnsembleHeader:
    """File-level attributes of the ensemble made from ``cfg``."""
    return dataset.EnsembleHeader(
        dataset_name=cfg.name, preset=cfg.preset, ensemble_seed=cfg.seed,
        ensemble_config=cfg.to_json(), class_names=cfg.class_names if cfg.n_classes else ())


def empty_split_message(cfg: EnsembleConfig, fix: str = "") -> str | None:
    """Why ``cfg`` would make an ensemble that learning refuses (a split with a positive
    fraction but no simulation), or None if every such split gets simulations.

    Parameters
    ----------
    cfg : EnsembleConfig
        The ensemble.
    fix : str, optional
        How the user turns the refusal off, appended to the advice (the command line:
        ``"pass --allow-empty-splits"``).

    Examples
    --------
    >>> from turbsim.ensemble_plan import PRESETS
    >>> print(empty_split_message(PRESETS["demo"].override(sims=3)))
    3 simulation(s) leave the test and holdout splits empty (train 3, test 0, holdout 0 with splits 0.8/0.1/0.1), and learning needs every split: use 13 or more simulations or other splits
    """
    empty = empty_splits(cfg)
    if not empty:
        return None
    sizes = ", ".join(f"{name} {k}" for name, k in zip(dataset.SPLITS, split_sizes(cfg)))
    need = sims_filling_splits(cfg)
    advice = [f"{need} or more simulations"] if need is not None else []
    advice += ["other splits"] + ([fix] if fix else [])
    return (f"{cfg.sims} simulation(s) leave the {' and '.join(empty)} split{'s' if len(empty) > 1 else ''} "
            f"empty ({sizes} with splits {'/'.join(f'{f:g}' for f in cfg.splits)}), and learning needs "
            f"every split: use {', '.join(advice[:-1])}{',' if len(advice) > 2 else ''} or {advice[-1]}")


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
    allow_empty_splits: bool = False,
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
        Show progress (default True): a bar on a terminal, plain lines when standard
        error is redirected (:func:`turbsim.console.progress`).
    keep_parts : bool, optional
        Keep the part files after consolidation (default: remove them).
    allow_empty_splits : bool, optional
        Say nothing of a split that gets no simulation. By default such an ensemble is
        made with a warning (:func:`empty_split_message`), since learning refuses it; the
        command line refuses it unless ``--allow-empty-splits``.

    Returns
    -------
    RunSummary

    Raises
    ------
    GenerateError
        A problem the user can fix (disk full, permissions, a different configuration in
        the way, failed simulations, a dead worker); everything finished so far is kept.
    """
    t_start = time.perf_counter()
    output = Path(output)
    parts = parts_dir(output)
    try:
        if output.exists():
            _check_existing(output, cfg)
            if not keep_parts:
                _remove_leftover_parts(parts, cfg)
            log.info("%s is already complete", output)
            return RunSummary(str(output), cfg.sims, 0, cfg.sims, 0.0, 0.0, float("nan"))
        message = None if allow_empty_splits else empty_split_message(cfg)
        if message:
            log.warning("%s: %s", output, message)
        parts.mkdir(exist_ok=True)
        with _run_lock(parts):
            simulated, resumed, times = _run_locked(cfg, output, parts, workers, scheduler, progress)
    except OSError as exc:  # anything not caught closer to its file
        raise _io_error(exc, Path(exc.filename) if exc.filename else output, parts) from None
    if not keep_parts:
        shutil.rmtree(parts, ignore_errors=True)
    elapsed = time.perf_counter() - t_start
    return RunSummary(str(output), cfg.sims, simulated, resumed, elapsed,
                      3600.0 * simulated / elapsed if simulated else 0.0,
                      times["solver"] / times["wall"] if times["wall"] > 0 else float("nan"))


def _run_locked(cfg: EnsembleConfig, output: Path, parts: Path, workers: int | None, scheduler: Any,
                progress: bool) -> tuple[int, int, dict]:
    """The run, while holding the lock of ``parts``: (simulated, resumed, job times)."""
    specs = plan(cfg)
    tag = cfg.fingerprint()
    _remove_temporaries(parts, output)
    _check_plan_file(parts, cfg)
    done = _finished(parts, specs, tag)
    todo = [s for s in specs if s.sim_id not in done]
    _check_space(parts, cfg, len(todo))
    log.info("%s: %d simulations, %d already finished, %d to run", output, cfg.sims, len(done), len(todo))
    times = {"wall": 0.0, "solver": 0.0}
    fn = functools.partial(simulate_one, save_cubes=cfg.save_cubes)
    with progress_bar(total=cfg.sims, initial=len(done), unit="sim", desc=output.name,
                      disable=not progress) as bar:

        def records() -> Iterator[dataset.SimRecord]:
            """Every simulation's record: the new ones as they finish (each saved to its
            part file first), then those of earlier runs from their parts."""
            failures: dict[int, str] = {}
            lost: WorkerDied | None = None
            results = as_completed(fn, todo, workers=workers, scheduler=scheduler,
                                   key=lambda spec: f"turbsim-{tag}-{spec.sim_id}")
            with contextlib.closing(results):
                try:
                    for spec, outcome in results:
                        if isinstance(outcome, BaseException):
                            failures[spec.sim_id] = f"{type(outcome).__name__}: {outcome}"
                            # the first failure in full; the count comes at the end
                            (log.error if len(failures) == 1 else log.info)(
                                "simulation %d failed: %s", spec.sim_id, failures[spec.sim_id])
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
                except WorkerDied as exc:
                    lost = exc
            if failures or lost:
                raise GenerateError(_failure_message(cfg, parts, failures, lost))
            for i in sorted(done):
                yield dataset.read_part(part_path(parts, i), tag=tag)

        # the final file is written while the simulations run (under a temporary name,
        # verified, then renamed): no pass over all the parts at the end
        _consolidate(cfg, output, parts, records())
    return len(todo), len(done), times


def _failure_message(cfg: EnsembleConfig, parts: Path, failures: dict[int, str], lost: WorkerDied | None) -> str:
    """One message for every simulation that did not finish."""
    kept = len(list(parts.glob(PART_GLOB)))
    what = []
    if lost is not None:
        what.append(f"{len(lost.lost)} simulation(s) did not run: a worker process died ({lost.cause})")
    if failures:
        first = min(failures)
        what.append(f"{len(failures)} simulation(s) failed (e.g. sim {first}: {failures[first]})")
    hint = " (with fewer --workers if memory ran out)" if lost is not None else ""
    return (f"{'; '.join(what)}. The {kept} finished simulation(s) of {cfg.sims} are kept in {parts}/; "
            f"rerun the same command to run the others{hint}")


def _check_existing(output: Path, cfg: EnsembleConfig) -> None:
    problems = dataset.verify(output)
    if problems:
        raise GenerateError(f"{output} exists but is not a valid ensemble ({problems[0]}); "
                            "remove it to generate it again")
    with dataset.open_ensemble(output) as ens:
        same = ens.attrs.get("ensemble_config") == cfg.to_json()
    if not same:
        raise GenerateError(f"{output} exists and was made with a different configuration; "
                            "choose another --output or remove it")


def _remove_leftover_parts(parts: Path, cfg: EnsembleConfig) -> None:
    """Remove the parts of a run killed between the rename of its complete, valid output
    and the removal of its parts (only parts of the same configuration, not in use)."""
    if not parts.is_dir():
        return
    try:
        same = _stored_plan(parts) == cfg
    except GenerateError:
        same = False
    if not same:
        log.warning("%s/ does not hold parts of %s's configuration; left alone", parts, parts.name[:-6])
        return
    with _run_lock(parts, busy_ok=True) as held:
        if not held:  # another run uses it: not ours to remove
            return
        log.info("removing %s/, left by a run interrupted after its output was complete", parts)
        shutil.rmtree(parts, ignore_errors=True)


def _consolidate(cfg: EnsembleConfig, output: Path, parts: Path, records: Iterable[dataset.SimRecord]) -> None:
    """Write the final file from every simulation's record (temporary name, verified, then
    renamed); an exception from ``records`` or a failed verification leaves no file."""
    try:
        dataset.write_ensemble(output, records, header(cfg), n_sims=cfg.sims, check=True)
    except OSError as exc:
        raise _io_error(exc, output, parts) from None
    except dataset.LayoutError as exc:
        raise GenerateError(f"cannot consolidate {output}: {exc}. The finished simulations are kept in "
                            f"{parts}/; remove a damaged part named above and rerun") from None
    log.info("wrote %s", output)

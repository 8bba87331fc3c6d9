"""Where simulations run: local process pools and Dask clusters, results as they finish.

Engines only: this module knows nothing of simulations. It maps a picklable function over
items on a local process pool (``spawn`` start method, one worker per core by default) or
on a Dask cluster, and yields ``(item, result or exception)`` pairs as they finish
(:func:`as_completed`), in the spirit of ``distributed.as_completed``. Local workers end
themselves when their parent dies and keep their freed memory for the next task
(:func:`keep_freed_memory`).

Examples
--------
>>> pairs = sorted(as_completed(abs, [-2, 1, -3], workers=0))
>>> pairs
[(-3, 3), (-2, 2), (1, 1)]
"""
from __future__ import annotations

import concurrent.futures as cf
import ctypes
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Iterator

log = logging.getLogger(__name__)


class RunError(RuntimeError):
    """A run stopped for a reason the user can act on; the message says what and how.

    Whatever the run finished before it stopped is kept (``turbsim.generate`` raises it
    as ``GenerateError``, an alias).
    """


class WorkerDied(RunError):
    """A local worker process ended abruptly (killed, out of memory, crashed).

    Raised by :func:`as_completed` once every result that did arrive has been yielded;
    the items that never ran are in :attr:`lost`.

    Attributes
    ----------
    lost : list
        The items whose results never came back.
    cause : str
        What is known of the death (e.g. ``"worker 1234 was killed by SIGKILL"``).
    """

    def __init__(self, cause: str, lost: list):
        self.cause, self.lost = cause, lost
        super().__init__(f"a worker process died ({cause}); {len(lost)} task(s) did not finish")


def default_workers() -> int:
    """All cores this process may use.

    Returns
    -------
    int
        The size of this process's CPU affinity set (the CPU count where that is not
        available), at least 1.
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _exit_with_parent(parent: int, poll_s: float = 1.0) -> None:
    """End this worker when its parent dies (e.g. killed with SIGKILL), instead of
    finishing a task nobody will collect; checked every ``poll_s`` seconds [s]."""
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


def process_pool(workers: int) -> cf.ProcessPoolExecutor:
    """A local pool of ``workers`` processes, each set up by :func:`keep_freed_memory`
    and ending with its parent.

    The ``spawn`` start method keeps it safe with OpenMP in the solver and with JAX
    threads in a training parent.
    """
    return cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_init_worker, initargs=(os.getpid(),))


def death_cause(processes: Iterable) -> str:
    """What is known of a broken pool's dead worker, from its processes' exit codes.

    Parameters
    ----------
    processes : iterable of multiprocessing.Process
        The pool's worker processes (snapshot taken while it ran).

    Returns
    -------
    str
        E.g. ``"worker 1234 was killed by SIGKILL, by the out-of-memory killer or a
        user"``, or a
        generic sentence when no exit code tells.
    """
    codes = [(p.pid, p.exitcode) for p in processes if p.exitcode not in (None, 0)]
    # the pool terminates the survivors with SIGTERM once one has died: prefer another code
    codes.sort(key=lambda pc: pc[1] == -signal.SIGTERM)
    if not codes:
        return "it ended without an exit status"
    pid, code = codes[0]
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = ", by the out-of-memory killer or a user" if -code == signal.SIGKILL else ""
        return f"worker {pid} was killed by {name}{hint}"
    return f"worker {pid} exited with status {code}"


def _as_completed_local(fn: Callable, items: list, workers: int) -> Iterator[tuple[Any, Any]]:
    if not items:
        return
    if workers == 0:  # in this process, in order: for debugging and profiling
        for item in items:
            try:
                yield item, fn(item)
            except Exception as exc:  # noqa: BLE001 (reported per item)
                yield item, exc
        return
    ex = process_pool(workers)
    try:
        futures = {ex.submit(fn, item): item for item in items}
        processes = list(getattr(ex, "_processes", {}).values())  # for the cause of a death
        lost = []
        for fut in cf.as_completed(futures):
            exc = fut.exception()
            if isinstance(exc, BrokenProcessPool):
                lost.append(futures[fut])  # one death fails every pending task: say it once
                continue
            yield futures[fut], exc if exc is not None else fut.result()
        if lost:
            processes += [p for p in getattr(ex, "_processes", {}).values() if p not in processes]
            for p in processes:
                p.join(timeout=5)
            raise WorkerDied(death_cause(processes), lost)
    finally:
        ex.shutdown(wait=False, cancel_futures=True)


def _as_completed_dask(fn: Callable, items: list, scheduler: Any, key: Callable) -> Iterator[tuple[Any, Any]]:
    try:
        from distributed import Client, as_completed as dask_as_completed
    except ImportError:
        raise RunError("--scheduler needs Dask: pip install 'dask[distributed]'") from None
    own = not isinstance(scheduler, Client)
    try:
        client = Client(scheduler, timeout="30s") if own else scheduler
    except (OSError, TimeoutError) as exc:
        raise RunError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    try:
        keys = [key(item) for item in items]
        by_key = dict(zip(keys, items))
        futures = client.map(fn, items, key=keys)
        try:
            for fut in dask_as_completed(futures):
                exc = fut.exception()
                yield by_key[fut.key], exc if exc is not None else fut.result()
        finally:
            client.cancel(futures)
    finally:
        if own:
            client.close()


def as_completed(fn: Callable, items: Iterable, *, workers: int | None = None, scheduler: Any = None,
                 key: Callable[[Any], str] | None = None) -> Iterator[tuple[Any, Any]]:
    """Run ``fn`` on every item; yield ``(item, result)`` pairs as they finish.

    Parameters
    ----------
    fn : callable
        A picklable function of one item (module-level, or a ``functools.partial`` of one).
    items : iterable
        The items (picklable).
    workers : int, optional
        Local worker processes (default :func:`default_workers`; 0 runs in this process,
        in order).
    scheduler : str or distributed.Client, optional
        Dask scheduler address (or a client): run on that cluster instead of locally.
    key : callable, optional
        Dask task key of an item (unique per item; default ``"turbsim-<index>"``).

    Yields
    ------
    (item, result)
        ``result`` is what ``fn`` returned, or the exception it raised (the iteration
        goes on; the caller decides what a failure means).

    Raises
    ------
    WorkerDied
        A local worker process died: raised after every result that did arrive, naming
        the cause once and listing the items that did not run.
    RunError
        Dask is not installed, or its scheduler cannot be reached.
    """
    items = list(items)
    if scheduler is not None:
        if key is None:
            index = {id(item): i for i, item in enumerate(items)}
            key = lambda item: f"turbsim-{index[id(item)]}"  # noqa: E731
        return _as_completed_dask(fn, items, scheduler, key)
    return _as_completed_local(fn, items, default_workers() if workers is None else workers)

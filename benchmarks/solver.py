"""Solver throughput: cell-updates per second of the native kernels against a NumPy baseline.

One cell update = one cell advanced by one time step; the figure is
``cells x steps / seconds of the stepping loop``. The baseline is a plain vectorised NumPy
implementation of the same first-order LLF scheme, timed in the same process, so the
ratios are meaningful on any machine.

``--against`` compares with another build of the kernels (an older commit, another
compiler), timed in the same process and interleaved with this one (ABAB, the order
swapped every repetition) on the same state; it reports the median ratio of each pair and
its spread, and checks that both builds give the same state bit for bit. Build the other
commit in a scratch directory first, e.g.::

    git worktree add OLD COMMIT && (cd OLD && python setup.py build_ext --inplace)
    python benchmarks/solver.py --against OLD/turbsim/_solver/_kernels*.so

``--threads`` prints a thread-scaling table instead: every thread count is timed on the
same state, the counts interleaved (their order rotated every repetition); rates are
medians, a speed-up is the median of the per-repetition ratios to the smallest count,
with its range; counts above the cores this process may use are marked as such (their
figures measure oversubscription, not scaling), and the final states of all counts are
checked to be bit-identical.

On a machine shared with other work, time one thread by CPU time (``--clock cpu``) and
compare builds with ``--against``: absolute figures then vary with the load (printed in
the header), ratios much less.

Usage::

    python benchmarks/solver.py            # table
    python benchmarks/solver.py --json     # one JSON object per line
    python benchmarks/solver.py --threads 1 2 4 8 16 --cells 128 256
    python benchmarks/solver.py --cells 128 --dtypes float64 --clock cpu --against OLD.so --repeat 9
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import time

import numpy as np

from turbsim import SimConfig
from turbsim._solver import _kernels
from turbsim.ic import initial_conditions
from turbsim.solver import LIMITER_CODES, SCHEME_CODES, openmp_threads, to_conserved


def numpy_first_order(rho, mom, dx, cs, courant, steps):
    """First-order LLF isothermal solver in plain NumPy (the baseline). Returns seconds."""
    U = np.concatenate([rho[None], mom])
    t0 = _clock()
    for _ in range(steps):
        r = U[0]
        v = U[1:] / r
        smax = (np.abs(v).sum(axis=0)).max() + 3 * cs
        dtdx = courant / smax
        dU = np.zeros_like(U)
        for d in range(3):
            Ur = np.roll(U, -1, axis=d + 1)
            rr, vr = Ur[0], Ur[1:] / Ur[0]
            s = np.maximum(np.abs(v[d]), np.abs(vr[d])) + cs
            fl = U * v[d]
            fr = Ur * vr[d]
            fl[d + 1] += cs * cs * r
            fr[d + 1] += cs * cs * rr
            F = 0.5 * (fl + fr - s * (Ur - U))
            dU += np.roll(F, 1, axis=d + 1) - F
        U = U + dtdx * dU
    return _clock() - t0


def load_kernels(path):
    """Import another build of the ``_kernels`` extension from the file ``path``."""
    name = os.path.basename(path).split(".")[0]   # the name its init function carries
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: The clock of the timings: "wall" (``time.perf_counter``) or "cpu" (the process's CPU
#: time, ``time.process_time``: on a shared machine it leaves out the time the process
#: waits for a core, which makes one-thread figures steadier; with several threads it sums
#: the threads' time, so speed-ups are always timed by the wall clock). Set by ``--clock``.
CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = CLOCK["wall"]


def native_run(kernels, U0, scheme, threads, steps):
    """Take ``steps`` MUSCL or first-order steps from ``U0`` (4, n, n, n) with ``kernels``.

    Returns the final state and the rate in cell-updates per second of the stepping loop.
    The state and the work buffer are written before the clock starts, so the figure holds
    no first-touch page faults (on this kind of virtual machine, zeroing fresh pages costs
    as much as a 128^3 step).
    """
    n = U0.shape[1]
    U, work = U0.copy(), np.zeros_like(U0)
    clock = _clock if threads == 1 else time.perf_counter
    t0 = clock()
    status, _, taken, _, _ = kernels.run(U, work, 1.0 / n, 1.0, 1.0, 0.8, int(SCHEME_CODES[scheme]),
                                         int(LIMITER_CODES["minmod"]), 0, threads, 0.0, steps,
                                         0.0, float("inf"), 1)
    seconds = clock() - t0
    if taken != steps:
        raise RuntimeError(f"{scheme}: {taken} of {steps} steps (status {status})")
    return U, n**3 * steps / seconds


def compare(other, U0, scheme, threads, steps, repeat):
    """Interleaved timing of this build against ``other``: rates, paired ratios, identity."""
    mine, theirs = native_run(_kernels, U0, scheme, threads, 1)[0], native_run(other, U0, scheme, threads, 1)[0]
    rates = {"new": [], "old": []}
    for r in range(repeat):
        for who in (("new", "old") if r % 2 == 0 else ("old", "new")):
            rates[who].append(native_run(_kernels if who == "new" else other, U0, scheme, threads,
                                         steps)[1])
    ratios = [a / b for a, b in zip(rates["new"], rates["old"])]
    return dict(load=os.getloadavg()[0], cell_updates_per_s=statistics.median(rates["new"]),
                other_cell_updates_per_s=statistics.median(rates["old"]),
                ratio_median=statistics.median(ratios), ratio_min=min(ratios), ratio_max=max(ratios),
                bit_identical=bool(np.array_equal(mine, theirs)))


def available_cores():
    """Cores this process may run on (its CPU affinity where the OS reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def scaling(U0, scheme, thread_counts, steps, repeat):
    """Rates of ``scheme`` from ``U0`` at each thread count, interleaved; see the module doc.

    Returns one dict per thread count: median rate, speed-up to the smallest count (median
    and range over the repetitions), and whether the final state equals the smallest
    count's bit for bit.
    """
    counts = sorted(set(thread_counts))
    rates = {t: [] for t in counts}
    final = {}
    for r in range(repeat):
        order = counts[r % len(counts):] + counts[:r % len(counts)]
        for t in order:
            U, rate = native_run(_kernels, U0, scheme, t, steps)
            rates[t].append(rate)
            final.setdefault(t, U)
    base = counts[0]
    rows = []
    for t in counts:
        ratios = [a / b for a, b in zip(rates[t], rates[base])]
        rows.append(dict(threads=t, cell_updates_per_s=statistics.median(rates[t]),
                         speedup=statistics.median(ratios), speedup_min=min(ratios),
                         speedup_max=max(ratios), reference_threads=base,
                         bit_identical=bool(np.array_equal(final[t], final[base]))))
    return rows


def print_scaling(rows, cores):
    print(f"{'scheme':6s} {'cells':>6s} {'dtype':>8s} {'threads':>7s} {'cell-upd/s':>11s} "
          f"{'speed-up (range)':>20s} {'efficiency':>10s}  note")
    for r in rows:
        note = [] if r["bit_identical"] else ["NOT bit-identical"]
        if r["threads"] > cores:
            note.append(f"oversubscribed: {cores} cores")
        span = f"{r['speedup']:.2f} ({r['speedup_min']:.2f}-{r['speedup_max']:.2f})"
        eff = r["speedup"] * r["reference_threads"] / r["threads"]
        print(f"{r['scheme']:6s} {r['cells']:5d}^3 {r['dtype']:>8s} {r['threads']:7d} "
              f"{r['cell_updates_per_s']:11.3e} {span:>20s} {eff:10.0%}  {'; '.join(note)}",
              flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object per line")
    ap.add_argument("--cells", type=int, nargs="+", default=[64, 128], help="grid sizes")
    ap.add_argument("--steps", type=int, default=20, help="steps per native measurement at 64^3 "
                    "(scaled by (64/cells)^3, at least 4)")
    ap.add_argument("--clock", choices=sorted(CLOCK), default="wall",
                    help="clock of the one-thread timings: wall, or the process's CPU time (steadier "
                    "on a shared machine; thread counts above one are always timed by the wall clock)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="measurements per case: the best is reported (with --against: the median)")
    ap.add_argument("--against", metavar="SO", help="another build of turbsim/_solver/_kernels "
                    "(the compiled extension file) to time interleaved with this one")
    ap.add_argument("--dtypes", nargs="+", default=["float64", "float32"], choices=["float64", "float32"])
    ap.add_argument("--threads", type=int, nargs="+", metavar="T",
                    help="print a thread-scaling table over these thread counts (e.g. 1 2 4 8 16)")
    args = ap.parse_args(argv)
    global _clock
    _clock = CLOCK[args.clock]
    if not args.json:
        print(f"load average (1 min): {os.getloadavg()[0]:.2f} on {available_cores()} cores; "
              f"one-thread clock: {args.clock}", flush=True)
    if args.threads is not None:
        if min(args.threads) < 1:
            ap.error("--threads counts must be >= 1")
        if args.against:
            ap.error("--threads and --against are separate measurements")
        cores = available_cores()
        if not args.json:
            print(f"cores available to this process: {cores}; OpenMP threads by default: "
                  f"{openmp_threads()}")
        for n in args.cells:
            rho, vel = initial_conditions(SimConfig(cells=n, seed=1))
            steps = max(4, round(args.steps * (64 / n) ** 3))
            for dtype in args.dtypes:
                U0 = to_conserved(rho, vel, np.dtype(dtype))
                for scheme in ("first", "muscl"):
                    rows = [dict(scheme=scheme, cells=n, dtype=dtype, cores=cores, **r)
                            for r in scaling(U0, scheme, args.threads, steps, args.repeat)]
                    if args.json:
                        for r in rows:
                            print(json.dumps(r), flush=True)
                    else:
                        print_scaling(rows, cores)
        return
    other = load_kernels(args.against) if args.against else None
    rows = []
    threads_list = sorted({1, min(2, openmp_threads())})
    for n in args.cells:
        rho, vel = initial_conditions(SimConfig(cells=n, seed=1))
        steps = max(4, round(args.steps * (64 / n) ** 3))
        if other is None:
            base_steps = max(2, 4 * (64 // n) ** 3)
            base = n**3 * base_steps / min(numpy_first_order(rho, rho * vel, 1 / n, 1.0, 0.8, base_steps)
                                          for _ in range(args.repeat))
            rows.append(dict(scheme="numpy-first", cells=n, threads=1, dtype="float64",
                             cell_updates_per_s=base, numpy_ratio=1.0))
        for dtype in args.dtypes:
            U0 = to_conserved(rho, vel, np.dtype(dtype))
            for scheme in ("first", "muscl"):
                for th in threads_list:
                    row = dict(scheme=scheme, cells=n, threads=th, dtype=dtype)
                    if other is None:
                        rate = max(native_run(_kernels, U0, scheme, th, steps)[1] for _ in range(args.repeat))
                        row.update(cell_updates_per_s=rate, numpy_ratio=rate / base)
                    else:
                        row.update(compare(other, U0, scheme, th, steps, args.repeat))
                    rows.append(row)
                    if other is not None and not args.json:
                        print_comparison(row)
    if args.json:
        for r in rows:
            print(json.dumps(r))
    elif other is None:
        print_table(rows, args.cells)


def print_comparison(r):
    per_core = r["threads"]
    print(f"{r['scheme']:6s} {r['cells']:4d}^3 {r['dtype']:>8s} {r['threads']} thr  per core: this "
          f"{r['cell_updates_per_s'] / per_core:.3e}  other {r['other_cell_updates_per_s'] / per_core:.3e}  "
          f"this/other median {r['ratio_median']:.3f} (range {r['ratio_min']:.3f}-{r['ratio_max']:.3f})  "
          f"bit-identical {r['bit_identical']}", flush=True)


def print_table(rows, cells):
    print(f"{'scheme':12s} {'cells':>6s} {'dtype':>8s} {'threads':>7s} {'cell-upd/s':>12s} "
          f"{'per core':>10s} {'x numpy':>8s}")
    for r in rows:
        print(f"{r['scheme']:12s} {r['cells']:5d}^3 {r['dtype']:>8s} {r['threads']:7d} "
              f"{r['cell_updates_per_s']:12.3e} {r['cell_updates_per_s'] / r['threads']:10.3e} "
              f"{r['numpy_ratio']:8.1f}")
    if _clock is not CLOCK["wall"]:
        print("(one thread timed by CPU time, two by the wall clock: for speed-ups use --threads)")
        return
    for n in cells:
        for scheme in ("first", "muscl"):
            sel = {r["threads"]: r["cell_updates_per_s"] for r in rows
                   if r["cells"] == n and r["scheme"] == scheme and r["dtype"] == "float64"}
            if 2 in sel:
                print(f"2-thread speed-up, {scheme}, {n}^3: {sel[2] / sel[1]:.2f}x")


if __name__ == "__main__":
    main()

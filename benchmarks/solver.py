"""Solver throughput: cell-updates per second of the native kernels against a NumPy baseline.

One cell update = one cell advanced by one time step; the figure is
``cells x steps / seconds of the stepping loop``. The baseline is a plain vectorised NumPy
implementation of the same first-order LLF scheme, timed in the same process, so the
ratios are meaningful on any machine.

Usage::

    python benchmarks/solver.py            # table
    python benchmarks/solver.py --json     # one JSON object per line
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from turbsim import SimConfig
from turbsim.ic import initial_conditions
from turbsim.solver import evolve, max_signal_speed, openmp_threads


def numpy_first_order(rho, mom, dx, cs, courant, steps):
    """First-order LLF isothermal solver in plain NumPy (the baseline). Returns seconds."""
    U = np.concatenate([rho[None], mom])
    t0 = time.perf_counter()
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
    return time.perf_counter() - t0


def native_rate(rho, vel, scheme, threads, steps, dtype):
    n = rho.shape[0]
    t_end = steps * 0.8 / n / max_signal_speed(rho, vel, 1.0)
    res = evolve(rho, vel, dx=1 / n, cs=1.0, t_end=t_end, scheme=scheme, threads=threads,
                 dtype=dtype)
    return n**3 * res.steps / res.wall_time


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object per line")
    ap.add_argument("--cells", type=int, nargs="+", default=[64, 128], help="grid sizes")
    ap.add_argument("--steps", type=int, default=20, help="steps per native measurement")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many measurements")
    args = ap.parse_args(argv)
    rows = []
    threads_list = sorted({1, min(2, openmp_threads())})
    for n in args.cells:
        rho, vel = initial_conditions(SimConfig(cells=n, seed=1))
        base_steps = max(2, 4 * (64 // n) ** 3)
        base = n**3 * base_steps / min(numpy_first_order(rho, rho * vel, 1 / n, 1.0, 0.8, base_steps)
                                      for _ in range(args.repeat))
        rows.append(dict(scheme="numpy-first", cells=n, threads=1, dtype="float64",
                         cell_updates_per_s=base, numpy_ratio=1.0))
        for dtype in ("float64", "float32"):
            for scheme in ("first", "muscl"):
                for th in threads_list:
                    rate = max(native_rate(rho, vel, scheme, th, args.steps, dtype)
                               for _ in range(args.repeat))
                    rows.append(dict(scheme=scheme, cells=n, threads=th, dtype=dtype,
                                     cell_updates_per_s=rate, numpy_ratio=rate / base))
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return
    print(f"{'scheme':12s} {'cells':>6s} {'dtype':>8s} {'threads':>7s} {'cell-upd/s':>12s} "
          f"{'per core':>10s} {'x numpy':>8s}")
    for r in rows:
        print(f"{r['scheme']:12s} {r['cells']:5d}^3 {r['dtype']:>8s} {r['threads']:7d} "
              f"{r['cell_updates_per_s']:12.3e} {r['cell_updates_per_s'] / r['threads']:10.3e} "
              f"{r['numpy_ratio']:8.1f}")
    for n in args.cells:
        for scheme in ("first", "muscl"):
            sel = {r["threads"]: r["cell_updates_per_s"] for r in rows
                   if r["cells"] == n and r["scheme"] == scheme and r["dtype"] == "float64"}
            if 2 in sel:
                print(f"2-thread speed-up, {scheme}, {n}^3: {sel[2] / sel[1]:.2f}x")


if __name__ == "__main__":
    main()

"""Throughput of ``turbsim.generate``: simulations per hour, and where the time goes.

Runs small ensembles of the ``binary`` preset (its solver settings) at each grid size
through the real pipeline (process pool, part files, consolidation, verification) and
reports, for the largest one:

* ``sims_per_hour``: simulations per hour of wall time on all workers;
* the mean time per simulation in a worker, split into initial conditions, solver
  (``SimResult.solver_time``) and the rest of the job (unit conversion, projections);
* ``outside_solver``: 1 - (solver seconds) / (worker seconds = workers x wall time): the
  share of the machine spent outside the stepping loop, including initial conditions,
  projections, I/O, pool start-up and idle workers at the end;
* ``outside_jobs``: 1 - (solver seconds) / (seconds of the simulation jobs): the same
  share without the pool's start-up and tail.

The full 1000-simulation preset is **extrapolated**, not run: with two or more ensemble
sizes (``--sims 4 12``, the default at 128^3) the wall time is fitted as
``elapsed = fixed + sims x per_sim`` through the measured runs (least squares), so the
start-up, the tail and the final verification are in ``fixed``, and everything that grows
with the ensemble (jobs, part files, consolidation, verification per simulation) in
``per_sim``; ``binary_preset_min`` is that line at 1000 and ``outside_solver_1000`` the
share outside the solver it implies (the mean solver time per simulation times 1000, over
workers x that wall time). It assumes the per-simulation cost of the small runs holds for
1000 (same preset, classes alternating). With one size the fixed part is taken as the
elapsed time minus ``sims x job / workers`` (busy workers assumed), and says so.

Usage::

    python benchmarks/generate.py                 # 64^3 and 128^3, table
    python benchmarks/generate.py --cells 128 --sims 4 16 --json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from turbsim import dataset, ensemble, ensemble_plan, parallel


def measure(cells: int, sims: int, workers: int, **overrides) -> dict:
    """Generate ``sims`` simulations of the binary preset at ``cells^3``; time them.

    Parameters
    ----------
    cells : int
        Grid cells per side.
    sims : int
        Simulations to run.
    workers : int
        Local worker processes.
    **overrides
        Other preset fields (``t_end``, ``scheme``, ...).

    Returns
    -------
    dict
        Figures described in the module docstring (times in s).
    """
    cfg = ensemble_plan.PRESETS["binary"].override(cells=cells, sims=sims, **overrides)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.h5"
        t0 = time.perf_counter()
        ensemble.run_ensemble(cfg, out, workers=workers, progress=False, allow_empty_splits=True)
        elapsed = time.perf_counter() - t0
        with dataset.open_ensemble(out) as ens:
            st = ens.stats()
    solver, ic, job = st["solver_time"], st["ic_time"], st["wall_time"]
    per_hour = 3600.0 * sims / elapsed
    return {
        "load": os.getloadavg()[0],   # 1-minute load average at the end (a shared machine's
                                      # other work slows every figure but the shares)
        "cells": cells, "sims": sims, "workers": workers, "scheme": cfg.sim.scheme,
        "t_end_myr": cfg.sim.t_end, "steps": float(np.mean(st["steps"])),
        "elapsed_s": elapsed, "sims_per_hour": per_hour,
        "job_s": float(np.mean(job)), "ic_s": float(np.mean(ic)), "solver_s": float(np.mean(solver)),
        "rest_of_job_s": float(np.mean(job - ic - solver)),
        "outside_solver": 1.0 - float(np.sum(solver)) / (workers * elapsed),
        "outside_jobs": 1.0 - float(np.sum(solver)) / float(np.sum(job)),
    }


def extrapolate(runs: list[dict], target: int = 1000) -> dict:
    """The wall time of ``target`` simulations from measured runs (see the module doc).

    Returns ``fixed_s``, ``per_sim_s``, ``method`` (``"fit"`` or ``"busy workers"``),
    ``binary_preset_min`` and ``outside_solver_1000``.
    """
    sims = np.array([r["sims"] for r in runs], float)
    elapsed = np.array([r["elapsed_s"] for r in runs])
    last = runs[-1]
    per_sim = 0.0
    if len(set(sims)) >= 2:
        per_sim, fixed = np.polyfit(sims, elapsed, 1)
        method = f"fit through {len(runs)} runs ({', '.join(str(int(n)) for n in sims)} sims)"
    if per_sim <= 0:  # one size, or runs too short for the fit to see the slope
        if len(set(sims)) >= 2:
            method = "fit through the runs not increasing (too short): busy workers assumed"
        else:
            method = f"one run of {int(sims[-1])} sims, busy workers assumed"
        per_sim = last["job_s"] / last["workers"]
        fixed = last["elapsed_s"] - last["sims"] * per_sim
    wall = fixed + target * per_sim
    solver = np.mean([r["solver_s"] for r in runs])
    return {"fixed_s": float(fixed), "per_sim_s": float(per_sim), "method": method,
            "binary_preset_min": float(wall / 60.0),
            "outside_solver_1000": float(1.0 - target * solver / (last["workers"] * wall))}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cells", type=int, nargs="+", default=[64, 128], help="grid sizes (default 64 128)")
    p.add_argument("--sims", type=int, nargs="+",
                   help="ensemble sizes measured per grid size (default 8 24 at <=64^3, 4 12 above)")
    p.add_argument("--workers", type=int, default=parallel.default_workers(), help="worker processes (default: all cores)")
    p.add_argument("--t-end", type=float, help="end time [Myr] (default: the preset's)")
    p.add_argument("--scheme", choices=("first", "muscl"), help="solver scheme (default: the preset's)")
    p.add_argument("--json", action="store_true", help="one JSON line per size instead of a table")
    args = p.parse_args(argv)
    if args.workers < 1 or (args.sims is not None and min(args.sims) < 1):
        p.error("--workers and --sims must be >= 1")
    overrides = {k: v for k, v in (("t_end", args.t_end), ("scheme", args.scheme)) if v is not None}
    rows = []
    for cells in args.cells:
        sizes = sorted(args.sims or ([8, 24] if cells <= 64 else [4, 12]))
        try:
            runs = [measure(cells, n, args.workers, **overrides) for n in sizes]
        except ValueError as exc:
            p.error(str(exc))
        row = {**runs[-1], **extrapolate(runs)}
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)
    if not args.json:
        head = f"{'cells':>6} {'sims':>5} {'steps':>6} {'sims/h':>9} {'job s':>7} {'IC s':>7} " \
               f"{'solver s':>8} {'rest s':>7} {'outside':>8} {'in jobs':>8} | " \
               f"{'fixed s':>7} {'per sim':>7} {'1000 min':>8} {'outside':>8}"
        print(head)
        for r in rows:
            print(f"{r['cells']:>6} {r['sims']:>5} {r['steps']:>6.1f} {r['sims_per_hour']:>9.0f} "
                  f"{r['job_s']:>7.3f} {r['ic_s']:>7.3f} {r['solver_s']:>8.3f} {r['rest_of_job_s']:>7.3f} "
                  f"{r['outside_solver']:>8.1%} {r['outside_jobs']:>8.1%} | {r['fixed_s']:>7.2f} "
                  f"{r['per_sim_s']:>7.3f} {r['binary_preset_min']:>8.1f} {r['outside_solver_1000']:>8.1%}")
        print("left of |: the largest measured run; right: the binary preset (1000 simulations) "
              "extrapolated, not run: " + "; ".join(f"{r['cells']}^3 {r['method']}" for r in rows))
        print("load average (1 min) after each size: "
              + ", ".join(f"{r['cells']}^3 {r['load']:.2f}" for r in rows) + f" on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())

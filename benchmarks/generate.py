"""Throughput of ``turbsim.generate``: simulations per hour, and where the time goes.

Runs a small ensemble of the ``binary`` preset (its solver settings) at each grid size
through the real pipeline (process pool, part files, consolidation, verification) and
reports:

* ``sims_per_hour``: simulations per hour of wall time on all workers;
* ``binary_preset_min``: the full 1000-simulation preset extrapolated [min];
* the mean time per simulation in a worker, split into initial conditions, solver
  (``SimResult.solver_time``) and the rest of the job (unit conversion, projections);
* ``outside_solver``: 1 - (solver seconds) / (worker seconds = workers x wall time): the
  share of the machine spent outside the stepping loop, including initial conditions,
  projections, I/O, pool start-up and idle workers at the end;
* ``outside_jobs``: 1 - (solver seconds) / (seconds of the simulation jobs): the same
  share without the pool's start-up and tail, which a 1000-simulation ensemble amortises
  (what ``outside_solver`` tends to as the ensemble grows).

Usage::

    python benchmarks/generate.py                 # 64^3 and 128^3, table
    python benchmarks/generate.py --cells 128 --sims 8 --json
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from turbsim import dataset, ensemble_plan, generate, parallel


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
        generate.run_ensemble(cfg, out, workers=workers, progress=False, allow_empty_splits=True)
        elapsed = time.perf_counter() - t0
        with dataset.open_ensemble(out) as ens:
            st = ens.stats()
    solver, ic, job = st["solver_time"], st["ic_time"], st["wall_time"]
    per_hour = 3600.0 * sims / elapsed
    return {
        "cells": cells, "sims": sims, "workers": workers, "scheme": cfg.sim.scheme,
        "t_end_myr": cfg.sim.t_end, "steps": float(np.mean(st["steps"])),
        "elapsed_s": elapsed, "sims_per_hour": per_hour,
        "binary_preset_min": 60.0 * 1000 / per_hour,
        "job_s": float(np.mean(job)), "ic_s": float(np.mean(ic)), "solver_s": float(np.mean(solver)),
        "rest_of_job_s": float(np.mean(job - ic - solver)),
        "outside_solver": 1.0 - float(np.sum(solver)) / (workers * elapsed),
        "outside_jobs": 1.0 - float(np.sum(solver)) / float(np.sum(job)),
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cells", type=int, nargs="+", default=[64, 128], help="grid sizes (default 64 128)")
    p.add_argument("--sims", type=int, help="simulations per size (default 16 at <=64^3, 6 above)")
    p.add_argument("--workers", type=int, default=parallel.default_workers(), help="worker processes (default: all cores)")
    p.add_argument("--t-end", type=float, help="end time [Myr] (default: the preset's)")
    p.add_argument("--scheme", choices=("first", "muscl"), help="solver scheme (default: the preset's)")
    p.add_argument("--json", action="store_true", help="one JSON line per size instead of a table")
    args = p.parse_args(argv)
    if args.workers < 1 or (args.sims is not None and args.sims < 1):
        p.error("--workers and --sims must be >= 1")
    overrides = {k: v for k, v in (("t_end", args.t_end), ("scheme", args.scheme)) if v is not None}
    rows = []
    for cells in args.cells:
        sims = args.sims or (16 if cells <= 64 else 6)
        try:
            row = measure(cells, sims, args.workers, **overrides)
        except ValueError as exc:
            p.error(str(exc))
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)
    if not args.json:
        head = f"{'cells':>6} {'sims':>5} {'steps':>6} {'sims/h':>9} {'binary min':>10} " \
               f"{'job s':>7} {'IC s':>7} {'solver s':>8} {'rest s':>7} {'outside':>8} {'in jobs':>8}"
        print(head)
        for r in rows:
            print(f"{r['cells']:>6} {r['sims']:>5} {r['steps']:>6.1f} {r['sims_per_hour']:>9.0f} "
                  f"{r['binary_preset_min']:>10.1f} {r['job_s']:>7.3f} {r['ic_s']:>7.3f} "
                  f"{r['solver_s']:>8.3f} {r['rest_of_job_s']:>7.3f} {r['outside_solver']:>8.1%} "
                  f"{r['outside_jobs']:>8.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""AMR-lite: its cost against the uniform grid at its finest level, and its agreement with
RAMSES's own AMR run.

``cost``: the same turbulent initial conditions (drawn on the ``2^levelmin`` grid, as
RAMSES is given them) run with AMR-lite at ``levelmin..levelmax`` and on the uniform
``2^levelmax`` grid (whose initial conditions share the coarse grid's Fourier modes), both
to each end time, timed in the same process: seconds per simulated Myr, their ratio, the
leaf updates per second of AMR-lite against the cell updates per second of the uniform
kernel, and the volume fraction covered by each level at the end.

``ramses``: AMR-lite started from the initial conditions RAMSES read
(``shared/ramses/amr``: levels 5-7, ``err_grad_d = 0.1``, ``nexpand = 1``, RAMSES's
gamma and time-step rule) and run to the snapshot's time, against the snapshot (the
library's :func:`turbsim.ramses.amrcheck.amr_cross_validate`, which
``python -m turbsim.compare`` runs on an AMR output): leaf
cells per level, the PDF of ln(rho) at levelmax, the power spectrum of the column-density
map along z, and the difference/signal of the density on the uniform grid of each level
(``||rho_turbsim - rho_ramses||_1 / ||rho_ramses - 1||_1``). It will not be round-off:
the codes are alike, not the same instructions; ``--schedule`` picks AMR-lite's
(default its subcycling, ``nsubcycle``, as RAMSES's; ``subcycle`` and ``global`` take
one global step). The uniform run at levelmin is given as a yardstick.

Usage::

    python benchmarks/amr.py ramses                      # against shared/ramses/amr
    python benchmarks/amr.py cost --levels 5 7 --t-end 0.5 2
    python benchmarks/amr.py cost --levels 6 8 --t-end 0.5 5 --json   # the issue's case
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from turbsim import SimConfig, simulate  # noqa: E402
from turbsim.ramses.amrcheck import DEFAULT_SCHEDULE, schedules  # noqa: E402


def shared_dir() -> Path:
    """The shared data folder beside the repository (override with TURBSIM_SHARED)."""
    env = os.environ.get("TURBSIM_SHARED")
    return Path(env) if env else REPO.parent / "shared"


def ramses_comparison(case: Path | None = None, schedule: str = DEFAULT_SCHEDULE,
                      threads: int | None = None) -> dict:
    """AMR-lite against a RAMSES AMR snapshot from its initial conditions.

    A thin wrapper of :func:`turbsim.ramses.amrcheck.amr_cross_validate` (what
    ``python -m turbsim.compare`` runs on an AMR output), with the shared case's
    refinement parameters (``err_grad_d = 0.1``, ``nexpand = 1``: its outputs carry no
    namelist).

    Parameters
    ----------
    case : path, optional
        A case folder holding ``ic_*.npz`` and ``output_00002`` (default
        ``shared/ramses/amr``).
    schedule : str
        When AMR-lite flags each level (:func:`turbsim.amr.evolve`).
    threads : int, optional
        Solver threads.

    Returns
    -------
    dict
        ``leaves`` ``{level: [turbsim, ramses, turbsim / ramses - 1]}``; ``pdf_l1``: the L1
        distance of the two ln(rho) histograms (40 bins, each summing to 1) at levelmax;
        ``std_lnrho`` (turbsim, ramses); ``power_ratio``: the column-density map's power
        spectrum of turbsim over RAMSES's for k = 1..N/2 (N the levelmax grid), with its
        ``power_max_dev`` over k <= N/4 and over all; ``diff_over_signal`` per level, and
        ``uniform_diff_over_signal`` of the uniform levelmin run; ``steps``, ``seconds``.
    """
    from turbsim.ramses.amrcheck import amr_cross_validate

    case = Path(case) if case is not None else shared_dir() / "ramses" / "amr"
    check = amr_cross_validate(case / "output_00002", next(case.glob("ic_*.npz")), err_grad_d=0.1,
                               nexpand=1, schedule=schedule, threads=threads)
    ratio = np.array(check.power_ratio)
    return {"case": case.name, "schedule": schedule, "time": check.time, "steps": check.steps,
            "seconds": check.seconds, "leaves": {L: list(v) for L, v in check.leaves.items()},
            "pdf_l1": check.pdf_l1, "std_lnrho": list(check.std_lnrho), "power_ratio": ratio.tolist(),
            "power_max_dev": [float(np.abs(ratio[: ratio.size // 2] - 1).max()), check.power_max_dev],
            "diff_over_signal": check.diff_over_signal_per_level,
            "uniform_diff_over_signal": check.uniform_diff_over_signal}


def cost(levels=(6, 8), t_ends=(0.5, 5.0), seed: int = 1, n: float = 11 / 3,
         schedule: str = "global", regrid_every: int = 1, threads: int | None = None) -> list[dict]:
    """AMR-lite against the uniform grid at its finest level (see the module docstring)."""
    lmin, lmax = levels
    rows = []
    for t_end in t_ends:
        base = dict(n=n, seed=seed, t_end=t_end)
        amr = simulate(SimConfig(cells=2**lmin, levelmin=lmin, levelmax=lmax,
                                 regrid_every=regrid_every, regrid_schedule=schedule, **base),
                       threads=threads)
        uni = simulate(SimConfig(cells=2**lmax, **base), threads=threads)
        uni_rate = 8**lmax * uni.steps / uni.solver_time
        amr_rate = amr.cell_updates / max(amr.solver_time - amr.regrid_time, 1e-12)
        rows.append({
            "levels": [lmin, lmax], "t_end_myr": t_end, "schedule": schedule,
            "regrid_every": regrid_every,
            "amr_s_per_myr": amr.solver_time / t_end, "uniform_s_per_myr": uni.solver_time / t_end,
            "speedup": uni.solver_time / amr.solver_time,
            "amr_steps": amr.steps, "uniform_steps": uni.steps,
            "regrid_share": amr.regrid_time / amr.solver_time,
            "amr_updates_per_s": amr_rate, "uniform_updates_per_s": uni_rate,
            "rate_ratio": uni_rate / amr_rate,
            "refined_fraction": {str(k): v for k, v in amr.refined_fraction().items()},
            "leaves": {str(k): v for k, v in amr.leaf_counts().items()},
        })
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    r = sub.add_parser("ramses", help="against RAMSES's AMR run")
    r.add_argument("--case", type=Path, help="case folder (default shared/ramses/amr)")
    r.add_argument("--schedule", choices=schedules(), default=DEFAULT_SCHEDULE)
    c = sub.add_parser("cost", help="cost against the uniform grid at levelmax")
    c.add_argument("--levels", type=int, nargs=2, default=[6, 8], metavar=("LMIN", "LMAX"))
    c.add_argument("--t-end", type=float, nargs="+", default=[0.5, 5.0], help="end times [Myr]")
    c.add_argument("--schedule", choices=schedules(), default="global")
    c.add_argument("--regrid-every", type=int, default=1)
    for p in (r, c):
        p.add_argument("--threads", type=int, help="solver threads (default all)")
        p.add_argument("--json", action="store_true", help="print JSON")
    args = ap.parse_args(argv)
    if args.what == "ramses":
        case = args.case or shared_dir() / "ramses" / "amr"
        if not (case / "output_00002").is_dir():
            ap.error(f"no RAMSES case at {case}")
        res = ramses_comparison(case, args.schedule, args.threads)
        if args.json:
            print(json.dumps(res))
            return 0
        print(f"{res['case']} at t = {res['time']:.6g} Myr, schedule {res['schedule']}: "
              f"{res['steps']} steps in {res['seconds']:.1f} s")
        for L, (a, b, d) in res["leaves"].items():
            print(f"  level {L}: turbsim {a:7d} leaves, RAMSES {b:7d} ({d:+.1%})")
        print(f"  ln(rho) PDF L1 distance {res['pdf_l1']:.4f}; std ln(rho) turbsim "
              f"{res['std_lnrho'][0]:.5f}, RAMSES {res['std_lnrho'][1]:.5f}")
        print(f"  column-density power, turbsim / RAMSES: largest |ratio - 1| "
              f"{res['power_max_dev'][0]:.3f} for k <= N/4, {res['power_max_dev'][1]:.3f} for k <= N/2")
        print("  density difference/signal per level: " + ", ".join(
            f"{L}: {v:.3f}" for L, v in res["diff_over_signal"].items())
            + f" (uniform levelmin run: {res['uniform_diff_over_signal']:.3f})")
        return 0
    if args.levels[0] > args.levels[1] or args.levels[0] < 3:
        ap.error(f"--levels must satisfy 3 <= LMIN <= LMAX, got {args.levels}")
    rows = (row for t_end in args.t_end   # each end time printed as soon as it is measured
            for row in cost(tuple(args.levels), (t_end,), schedule=args.schedule,
                            regrid_every=args.regrid_every, threads=args.threads))
    for row in rows:
        if args.json:
            print(json.dumps(row), flush=True)
            continue
        print(f"levels {row['levels'][0]}-{row['levels'][1]} to {row['t_end_myr']} Myr: AMR "
              f"{row['amr_s_per_myr']:.2f} s/Myr ({row['amr_steps']} steps, regrid "
              f"{row['regrid_share']:.0%}), uniform {row['uniform_s_per_myr']:.2f} s/Myr: "
              f"speed-up {row['speedup']:.2f}; updates/s AMR {row['amr_updates_per_s'] / 1e6:.2f} M, "
              f"uniform {row['uniform_updates_per_s'] / 1e6:.2f} M (ratio {row['rate_ratio']:.2f}); "
              f"volume per level {row['refined_fraction']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

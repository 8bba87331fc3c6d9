"""``python -m turbsim.compare OUTPUT --ic IC.npz``: turbsim against a RAMSES snapshot.

A uniform RAMSES run (``levelmin = levelmax``): runs turbsim's solver from the initial
condition RAMSES started from to the snapshot's time, with RAMSES's scheme (see
:mod:`turbsim.ramses.crosscheck`), and reports the density difference measured against the
signal, the density PDFs and the column-density power spectra; ``--plot`` writes a figure
(RAMSES | turbsim | difference, PDF, spectra). Agreement: difference/signal at most
``--tolerance`` (default 1e-3; measured below 1e-9 on the shared uniform runs).

An AMR RAMSES run (``levelmax > levelmin`` in its info file): runs AMR-lite
(:mod:`turbsim.amr`) from the IC with the snapshot's levels and RAMSES's refinement
parameters (``namelist.txt`` in the output folder, or ``--namelist``, options overriding;
without a namelist AMR-lite's defaults ``err_grad_d = 0.1``, ``nexpand = 1``, with a
warning; what AMR-lite does not implement is refused naming the parameter), with
AMR-lite's subcycling (``--schedule nsubcycle``, RAMSES's ``nsubcycle = 2``) by default
(``global`` for a namelist with ``nsubcycle = 1``), and prints a per-level table
(see :mod:`turbsim.ramses.amrcheck`): leaf cells of AMR-lite and RAMSES and their relative
difference, the density difference/signal on the uniform grid of each level; then std
ln(rho), the L1 distance of the ln(rho) PDFs at levelmax and the largest deviation of the
column-density power spectra. ``--plot`` draws RAMSES | AMR-lite | difference of the
column density at levelmax, the finest leaf level along each line of sight, the PDFs,
leaves per level and spectra. Agreement, since the two codes are alike but not the same
instructions: leaves of every level within ``--leaf-tolerance`` (default 0.1),
difference/signal of every level within ``--tolerance`` (default 0.02 for AMR), PDF L1
within ``--pdf-tolerance`` (0.01), power within ``--power-tolerance`` (0.1). Measured on
the shared AMR run (levels 5-7): RAMSES's leaves cell for cell at every level;
difference/signal 3e-7, 9e-7, 9e-7; PDF L1 0; power 1.4e-6 (``--schedule subcycle``: +15 %
leaves at level 6 and difference/signal 0.076, a disagreement).

The IC is checked against the snapshot first (grid, units, mass, sound speed, the time
the IC file records for the output, the t = 0 snapshot when there is one): an IC that
cannot belong to the snapshot is refused.

Exit status: 0 turbsim reproduces the snapshot within the tolerances (or ``--force``); 1 a
figure above its tolerance (a warning names it); 2 bad arguments, unreadable input, a
RAMSES parameter AMR-lite does not implement, or an IC that cannot belong to the snapshot.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from .amr import AmrError
from .console import ArgumentParser, configure_logging
from .ramses import RamsesFormatError
from .ramses import amrcheck
from .ramses import open as open_output
from .ramses.crosscheck import TOLERANCE, CrossCheck, IcMismatchError, cross_validate, plot_cross_check

log = logging.getLogger("turbsim.compare")
_AMR_OPTIONS = ("namelist", "err_grad_d", "m_refine", "nexpand", "schedule")


def _number(kind, ok, what: str):
    """An argparse ``type`` reading ``kind`` and refusing values ``ok`` rejects."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return value
    return parse


def build_parser() -> ArgumentParser:
    """The command-line parser (every option with its unit or range)."""
    ap = ArgumentParser(
        prog="python -m turbsim.compare", short_usage="OUTPUT --ic IC.npz [options]",
        description="Evolve turbsim from a RAMSES initial condition to a RAMSES snapshot's "
                    "time with the same scheme, and compare the density fields.",
        epilog="An AMR output (levelmax > levelmin) is compared with AMR-lite run with RAMSES's "
               "refinement parameters, level by level. Exit status: 0 agreement (uniform: "
               "difference/signal <= --tolerance; AMR: leaves of every level within "
               "--leaf-tolerance, difference/signal of every level within --tolerance, PDF and "
               "power within --pdf-tolerance and --power-tolerance), or --force; 1 disagreement; "
               "2 bad arguments, unreadable input, a RAMSES parameter AMR-lite does not "
               "implement, or an IC that cannot belong to the snapshot.")
    ap.add_argument("output", help="RAMSES output folder (output_NNNNN) or its info_NNNNN.txt")
    ap.add_argument("--ic", required=True, metavar="IC.npz",
                    help="the .npz initial condition RAMSES started from (arrays in RAMSES code "
                         "units: box = 1, initial density = 1)")
    ap.add_argument("--scheme", choices=["first", "muscl"],
                    help="spatial scheme: first order or MUSCL-Hancock (default: from namelist.txt "
                         "in the output, else muscl)")
    ap.add_argument("--limiter", choices=["minmod", "moncen"],
                    help="MUSCL slope limiter (default: from namelist.txt, else minmod)")
    ap.add_argument("--courant", type=_number(float, lambda v: 0 < v <= 1, "a number in (0, 1]"),
                    metavar="C",
                    help="Courant number, dimensionless, in (0, 1] (default: namelist, else 0.8)")
    ap.add_argument("--threads", type=_number(int, lambda v: v >= 1, "an integer >= 1"), metavar="N",
                    help="solver threads, >= 1 (default: all cores)")
    ap.add_argument("--tolerance", type=_number(float, lambda v: v > 0, "a number > 0"),
                    metavar="X",
                    help="largest difference/signal ||rho_turbsim - rho_ramses||_1 / "
                         "||rho_ramses - rho_0||_1 (dimensionless, > 0) still reported as agreement "
                         f"(default {TOLERANCE:g} for a uniform run; {amrcheck.TOLERANCE:g} for an AMR "
                         "run, on the uniform grid of every level)")
    amr = ap.add_argument_group(
        "AMR outputs (levelmax > levelmin)",
        "AMR-lite is run with RAMSES's refinement parameters: from namelist.txt in the output "
        "folder or --namelist, these options overriding; without a namelist AMR-lite's defaults "
        "(err_grad_d 0.1, nexpand 1, no mass criterion).")
    amr.add_argument("--namelist", metavar="FILE",
                     help="the run's RAMSES namelist (default: OUTPUT/namelist.txt when present)")
    amr.add_argument("--err-grad-d", type=_number(float, lambda v: v >= 0, "a number >= 0"), metavar="X",
                     help="density-gradient refinement threshold, dimensionless, >= 0")
    amr.add_argument("--m-refine", type=_number(float, lambda v: v > 0, "a number > 0"), metavar="X",
                     help="mass refinement criterion, in mean masses of a levelmin cell, > 0")
    amr.add_argument("--nexpand", type=_number(int, lambda v: v >= 0, "an integer >= 0"), metavar="N",
                     help="buffer cells grown around the flagged cells, >= 0")
    amr.add_argument("--schedule", choices=amrcheck.schedules(),
                     help="AMR-lite's schedule of steps and regrids (turbsim.amr.evolve; default "
                          f"'{amrcheck.DEFAULT_SCHEDULE}', the closest to RAMSES's subcycling, or "
                          "'global' for a namelist with nsubcycle = 1)")
    amr.add_argument("--leaf-tolerance", type=_number(float, lambda v: v >= 0, "a number >= 0"),
                     default=amrcheck.LEAF_TOLERANCE, metavar="X",
                     help="largest |leaves_AMR-lite / leaves_RAMSES - 1| of any level, dimensionless "
                          f"(default {amrcheck.LEAF_TOLERANCE:g})")
    amr.add_argument("--pdf-tolerance", type=_number(float, lambda v: v >= 0, "a number >= 0"),
                     default=amrcheck.PDF_TOLERANCE, metavar="X",
                     help="largest L1 distance of the ln(rho) histograms at levelmax, in [0, 2] "
                          f"(default {amrcheck.PDF_TOLERANCE:g})")
    amr.add_argument("--power-tolerance", type=_number(float, lambda v: v >= 0, "a number >= 0"),
                     default=amrcheck.POWER_TOLERANCE, metavar="X",
                     help="largest |P_AMR-lite(k) / P_RAMSES(k) - 1| of the column-density power "
                          f"along z, k <= N/2 (default {amrcheck.POWER_TOLERANCE:g})")
    ap.add_argument("--force", action="store_true",
                    help="compare even an IC that cannot belong to the snapshot, and exit 0 on a "
                         "disagreement (both are still reported as warnings)")
    ap.add_argument("--json", action="store_true",
                    help="print the full result as one JSON object (densities in code units, "
                         "time in code units and Myr, box in pc)")
    ap.add_argument("--plot", metavar="FILE.png",
                    help="write the comparison figure (column densities with axes in pc, PDFs, "
                         "power spectra) as PNG")
    return ap


def _disagreement(check: CrossCheck, tolerance: float) -> str:
    """The warning printed when turbsim does not reproduce the snapshot."""
    text = (f"WARNING: turbsim and RAMSES disagree: difference/signal = {check.diff_over_signal:.3g} > "
            f"tolerance {tolerance:.0e}. ")
    if check.ic_mismatches:
        text += "The IC does not belong to this snapshot (see above)."
    else:
        text += ("Check that the IC is the one this run started from, and the scheme "
                 "(--scheme, --limiter, --courant).")
    return text


def _print_amr(check: amrcheck.AmrCheck, args, failures: list[str]) -> None:
    """The AMR comparison as text: a header, the per-level table, the statistics."""
    p = check.parameters
    lmin, lmax = check.levels
    crit = ", ".join(f"{k} {v:g}" for k, v in (("err_grad_d", p.err_grad_d), ("m_refine", p.m_refine))
                     if v is not None)
    print(f"{check.output}: t = {check.time:.6g} ({check.time_myr:.6g} Myr), AMR levels {lmin}-{lmax}; "
          f"AMR-lite: {p.scheme} ({p.limiter}), Courant {p.courant}, gamma {check.gamma}, {crit}, "
          f"nexpand {p.nexpand}, schedule {p.schedule}: {check.steps} steps, {check.regrids} regrids "
          f"in {check.seconds:.1f} s")
    defaults = sorted(k for k, v in p.sources.items() if v == "default")
    if defaults:
        print(f"  (no namelist: {', '.join(defaults)} at their defaults)")
    print("  level   leaves AMR-lite   leaves RAMSES   difference   difference/signal")
    for L, (a, b, d) in check.leaves.items():
        print(f"  {L:5d}   {a:15d}   {b:13d}   {d:+10.1%}   {check.diff_over_signal_per_level[L]:17.3g}")
    if check.uniform_diff_over_signal is not None:
        print(f"  uniform {2**lmin}^3 run from the same IC (no refinement): difference/signal "
              f"{check.uniform_diff_over_signal:.4f} at level {lmin}")
    ta, tr = check.std_lnrho
    rel = f" ({ta / tr - 1:+.1%})" if tr > 0 else ""
    print(f"  std ln(rho) at level {lmax}: AMR-lite {ta:.5f}, RAMSES {tr:.5f}{rel}")
    print(f"  ln(rho) PDF L1 distance at level {lmax}: {check.pdf_l1:.3g}")
    n = 2**lmax
    print(f"  column-density power along z ({n}^2), largest |AMR-lite / RAMSES - 1| for k <= {n // 2}: "
          f"{check.power_max_dev:.3g}")
    print(f"  tolerances: leaves {args.leaf_tolerance:g}, difference/signal {args.tolerance:g}, PDF L1 "
          f"{args.pdf_tolerance:g}, power {args.power_tolerance:g}: "
          + ("all within" if not failures else f"{len(failures)} above"))
    if args.plot:
        print(f"  figure: {args.plot}")


def _main_amr(ds, args) -> int:
    """Compare an AMR snapshot with AMR-lite (the part of :func:`main` for AMR outputs)."""
    if args.tolerance is None:
        args.tolerance = amrcheck.TOLERANCE
    check, maps = amrcheck.amr_cross_validate(
        ds, args.ic, namelist=args.namelist, err_grad_d=args.err_grad_d, m_refine=args.m_refine,
        nexpand=args.nexpand, scheme=args.scheme, limiter=args.limiter, courant=args.courant,
        schedule=args.schedule, threads=args.threads, force=args.force, return_maps=True)
    failures = check.failures(args.leaf_tolerance, args.tolerance, args.pdf_tolerance, args.power_tolerance)
    if args.plot:
        amrcheck.plot_amr_check(check, maps, args.plot)
    if args.json:
        tolerances = {"leaves": args.leaf_tolerance, "diff_over_signal": args.tolerance,
                      "pdf_l1": args.pdf_tolerance, "power": args.power_tolerance}
        print(json.dumps({**check.to_dict(), "tolerance": args.tolerance, "tolerances": tolerances,
                          "failures": failures, "agrees": not failures}))
    else:
        _print_amr(check, args, failures)
    if failures:
        text = "WARNING: AMR-lite and RAMSES disagree: " + "; ".join(failures) + "."
        if check.ic_mismatches:
            text += " The IC does not belong to this snapshot (see above)."
        else:
            text += (" Check the refinement parameters (--namelist, --err-grad-d, --nexpand, "
                     "--m-refine), the schedule (--schedule) and the scheme.")
        print(text, file=sys.stderr)
    return 0 if not failures or args.force else 1


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0, 1 or 2, see the module docstring)."""
    ap = build_parser()
    args = ap.parse_args(argv)
    configure_logging(False, names=True)
    try:
        ds = open_output(args.output)
        if amrcheck.is_amr(ds):
            return _main_amr(ds, args)
        given = [f"--{k.replace('_', '-')}" for k in _AMR_OPTIONS if getattr(args, k) is not None]
        if given:
            log.warning("%s is a uniform run: %s apply to AMR outputs only (ignored)",
                        ds.path, ", ".join(given))
        if args.tolerance is None:
            args.tolerance = TOLERANCE
        check, rho_r, rho_t = cross_validate(ds, args.ic, scheme=args.scheme,
                                             limiter=args.limiter, courant=args.courant,
                                             threads=args.threads, force=args.force, return_fields=True)
    except IcMismatchError as exc:
        print(f"error: {exc}\n(pass --force to compare anyway)", file=sys.stderr)
        return 2
    except (RamsesFormatError, ValueError, FileNotFoundError, MemoryError, AmrError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    agrees = check.agrees(args.tolerance)
    if args.plot:
        plot_cross_check(check, rho_r, rho_t, args.plot)
    if args.json:
        print(json.dumps({**check.to_dict(), "tolerance": args.tolerance, "agrees": agrees}))
    else:
        print(f"{check.output}: t = {check.time:.6g} ({check.time_myr:.6g} Myr), {check.scheme} "
              f"({check.limiter}), Courant {check.courant}, gamma {check.gamma}, {check.steps} steps")
        print(f"  difference/signal ||rho_turbsim - rho_ramses||_1 / ||rho_ramses - rho_0||_1 = "
              f"{check.diff_over_signal:.3e} ({'within' if agrees else 'above'} the tolerance "
              f"{args.tolerance:.0e})")
        print(f"  max |difference| = {check.max_abs_diff:.3e} (relative {check.max_rel_diff:.3e}); "
              f"mean |rho - rho_0| = {check.signal:.3e} (code density)")
        if args.plot:
            print(f"  figure: {args.plot}")
    if not agrees:
        print(_disagreement(check, args.tolerance), file=sys.stderr)
    return 0 if agrees or args.force else 1


if __name__ == "__main__":
    sys.exit(main())

"""``python -m turbsim.compare OUTPUT --ic IC.npz``: turbsim against a RAMSES snapshot.

Runs turbsim's solver from the initial condition RAMSES started from to the snapshot's
time, with RAMSES's scheme (see :mod:`turbsim.ramses.crosscheck`), and reports the density
difference measured against the signal, the density PDFs and the column-density power
spectra; ``--plot`` writes a figure (RAMSES | turbsim | difference, PDF, spectra).

The IC is checked against the snapshot first (grid, units, mass, sound speed, the time
the IC file records for the output, the t = 0 snapshot when there is one): an IC that
cannot belong to the snapshot is refused. A difference/signal above ``--tolerance`` is
reported as a disagreement.

Exit status: 0 turbsim reproduces the snapshot (or ``--force``); 1 difference/signal above
``--tolerance``; 2 bad arguments, unreadable input, or an IC that cannot belong to the
snapshot.
"""
from __future__ import annotations

import argparse
import json
import sys

from .console import ArgumentParser, configure_logging
from .ramses import RamsesFormatError
from .ramses.crosscheck import TOLERANCE, CrossCheck, IcMismatchError, cross_validate, plot_cross_check


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
        epilog="Exit status: 0 agreement (difference/signal <= --tolerance, or --force); 1 "
               "disagreement; 2 bad arguments, unreadable input, or an IC that cannot belong "
               "to the snapshot.")
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
                    default=TOLERANCE, metavar="X",
                    help="largest difference/signal ||rho_turbsim - rho_ramses||_1 / "
                         "||rho_ramses - rho_0||_1 (dimensionless, > 0) still reported as agreement "
                         f"(default {TOLERANCE:g})")
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
    if check.amr:
        text += (f"The snapshot is AMR (levels {check.levels[0]}..{check.levels[1]}); turbsim's uniform "
                 f"{check.cells}^3 grid does not refine, so it cannot agree closely.")
    elif check.ic_mismatches:
        text += "The IC does not belong to this snapshot (see above)."
    else:
        text += ("Check that the IC is the one this run started from, and the scheme "
                 "(--scheme, --limiter, --courant).")
    return text


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0, 1 or 2, see the module docstring)."""
    ap = build_parser()
    args = ap.parse_args(argv)
    configure_logging(False, names=True)
    try:
        check, rho_r, rho_t = cross_validate(args.output, args.ic, scheme=args.scheme,
                                             limiter=args.limiter, courant=args.courant,
                                             threads=args.threads, force=args.force, return_fields=True)
    except IcMismatchError as exc:
        print(f"error: {exc}\n(pass --force to compare anyway)", file=sys.stderr)
        return 2
    except (RamsesFormatError, ValueError, FileNotFoundError) as exc:
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

"""``python -m turbsim.compare OUTPUT --ic IC.npz``: turbsim against a RAMSES snapshot.

Runs turbsim's solver from the initial condition RAMSES started from to the snapshot's
time, with RAMSES's scheme (see :mod:`turbsim.ramses.crosscheck`), and reports the density
difference measured against the signal, the density PDFs and the column-density power
spectra; ``--plot`` writes a figure (RAMSES | turbsim | difference, PDF, spectra).

Exit codes: 0 success, 2 bad arguments or unreadable input.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from .ramses import RamsesFormatError
from .ramses.crosscheck import cross_validate, plot_cross_check


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m turbsim.compare",
        description="Evolve turbsim from a RAMSES initial condition to a RAMSES snapshot's "
                    "time with the same scheme, and compare the density fields.")
    ap.add_argument("output", help="RAMSES output folder (output_NNNNN) or its info_NNNNN.txt")
    ap.add_argument("--ic", required=True, help="the .npz initial condition RAMSES started from")
    ap.add_argument("--scheme", choices=["first", "muscl"],
                    help="scheme (default: from namelist.txt in the output, else muscl)")
    ap.add_argument("--limiter", choices=["minmod", "moncen"],
                    help="slope limiter (default: from namelist.txt, else minmod)")
    ap.add_argument("--courant", type=float, help="Courant number (default: namelist, else 0.8)")
    ap.add_argument("--threads", type=int, help="solver threads (default: all)")
    ap.add_argument("--json", action="store_true", help="print the full result as JSON")
    ap.add_argument("--plot", metavar="FILE.png", help="write the comparison figure")
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.courant is not None and not 0 < args.courant <= 1:
        ap.error(f"--courant must be in (0, 1], got {args.courant}")
    try:
        check, rho_r, rho_t = cross_validate(args.output, args.ic, scheme=args.scheme,
                                             limiter=args.limiter, courant=args.courant,
                                             threads=args.threads, return_fields=True)
    except (RamsesFormatError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.plot:
        plot_cross_check(check, rho_r, rho_t, args.plot)
    if args.json:
        print(json.dumps(check.to_dict()))
    else:
        print(f"{check.output}: t = {check.time:.6g}, {check.scheme} ({check.limiter}), "
              f"Courant {check.courant}, gamma {check.gamma}, {check.steps} steps")
        print(f"  ||rho_turbsim - rho_ramses||_1 / ||rho_ramses - rho_0||_1 = {check.diff_over_signal:.3e}")
        print(f"  max |difference| = {check.max_abs_diff:.3e} (relative {check.max_rel_diff:.3e}); "
              f"mean |rho - rho_0| = {check.signal:.3e}")
        if args.plot:
            print(f"  figure: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

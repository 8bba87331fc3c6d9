"""Cross-check turbsim against the shared RAMSES runs (the library behind turbsim.compare).

    python examples/compare_with_ramses.py RAMSES_DIR [--cases kolmo64 burgers64] [--out DIR]

``RAMSES_DIR`` holds one folder per case (``kolmo64/output_00002``, ``kolmo64/ic_kolmo64.npz``,
...); default ``$TURBSIM_SHARED/ramses``. Prints difference/signal per case and writes the
comparison figure ``<case>.png`` to ``--out`` (default ``example_output/compare_with_ramses``).
"""
import os
import sys
from pathlib import Path

from turbsim.console import ArgumentParser
from turbsim.ramses.crosscheck import TOLERANCE, cross_validate, plot_cross_check

CASES = {"kolmo64_first_order": "first", "kolmo64": "muscl", "burgers64": "muscl"}
DEFAULT_OUT = Path("example_output") / "compare_with_ramses"


def build_parser() -> ArgumentParser:
    shared = os.environ.get("TURBSIM_SHARED")
    ap = ArgumentParser(description=__doc__.split("\n\n")[0], short_usage="[RAMSES_DIR] [options]")
    ap.add_argument("root", nargs="?", type=Path, default=Path(shared) / "ramses" if shared else None,
                    metavar="RAMSES_DIR", help="folder of the RAMSES cases (default $TURBSIM_SHARED/ramses)")
    ap.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES), metavar="CASE",
                    help=f"cases to compare, of {', '.join(CASES)} (default: all)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="folder for the comparison figures, PNG (created; default %(default)s)")
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.root is None:
        ap.error("give RAMSES_DIR (or set TURBSIM_SHARED)")
    args.out.mkdir(parents=True, exist_ok=True)
    worst = 0.0
    for case in args.cases:
        scheme = CASES[case]
        check, rho_r, rho_t = cross_validate(args.root / case / "output_00002",
                                             args.root / case / f"ic_{case}.npz", scheme=scheme,
                                             return_fields=True)
        png = plot_cross_check(check, rho_r, rho_t, args.out / f"{case}.png")
        print(f"{case:22s} {scheme:6s} steps {check.steps}  difference/signal "
              f"{check.diff_over_signal:.2e}  figure {png}")
        worst = max(worst, check.diff_over_signal)
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())

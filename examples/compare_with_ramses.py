"""Cross-check turbsim against the shared RAMSES runs (library version of turbsim.compare).

    python examples/compare_with_ramses.py ../shared/ramses
"""
import sys
from pathlib import Path

from turbsim.ramses.crosscheck import cross_validate

CASES = {"kolmo64_first_order": "first", "kolmo64": "muscl", "burgers64": "muscl"}


def main(root):
    for case, scheme in CASES.items():
        out = Path(root) / case / "output_00002"
        check = cross_validate(out, Path(root) / case / f"ic_{case}.npz", scheme=scheme)
        print(f"{case:22s} {scheme:6s} steps {check.steps}  difference/signal {check.diff_over_signal:.2e}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/ramses")

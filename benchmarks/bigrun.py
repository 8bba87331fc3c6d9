"""Big single runs: peak memory against the solver state, and time per step.

Each size runs ``turbsim.simulate`` in a fresh Python process, for a few steps only (the
end time is set from the first time step's estimate, so the step count is close to
``--steps``), and reports:

* ``state_gib``: the solver state, 4 fields x N^3 x itemsize [GiB];
* ``peak_gib``: the process's peak resident memory (``VmHWM``) minus its resident memory
  after the imports, i.e. what the run added at its peak [GiB], and ``peak_over_state``;
* ``estimate_gib``: ``turbsim.simulate.memory_estimate`` of the run [GiB];
* ``s_per_step`` and ``cell_updates_per_s`` of the solver, ``ic_s`` of the initial
  conditions.

Usage::

    python benchmarks/bigrun.py                          # 512^3 float32, 256^3 float64
    python benchmarks/bigrun.py --run 256:float32 --steps 5 --json

The runs import ``turbsim`` from the current directory first: run the script from another
checkout's root to measure that version (it then reports no estimate).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np

def status(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return None

from turbsim import SimConfig, simulate, units
try:
    from turbsim.simulate import memory_estimate
except ImportError:  # an older turbsim, measured for comparison
    memory_estimate = None
cells, dtype, scheme, steps, threads = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
cells, steps, threads = int(cells), int(steps), (int(threads) or None)
base = status("VmRSS")
probe = SimConfig(cells=cells, dtype=dtype, scheme=scheme)
# CFL step of the initial field: |v| sums to a few Mach numbers at its largest
dt_code = probe.courant / cells / (5.0 * probe.mach + 3.0)
t_end = steps * dt_code * probe.code_units["time"] / units.MYR
cfg = probe.replace(t_end=t_end)
state = 4 * cells ** 3 * np.dtype(dtype).itemsize
est = memory_estimate(cfg, threads=threads) if memory_estimate else {"state": state, "peak": float("nan")}
t0 = time.perf_counter()
res = simulate(cfg, threads=threads)
wall = time.perf_counter() - t0
peak = status("VmHWM")
gib = 2.0 ** 30
print(json.dumps(dict(
    cells=cells, dtype=dtype, scheme=scheme, threads=threads or 0, steps=res.steps,
    state_gib=est["state"] / gib, peak_gib=(peak - base) / gib,
    peak_over_state=(peak - base) / est["state"], estimate_gib=est["peak"] / gib,
    estimate_over_state=est["peak"] / est["state"], ic_s=res.ic_time,
    s_per_step=res.solver_time / max(res.steps, 1),
    cell_updates_per_s=cells ** 3 * res.steps / res.solver_time, wall_s=wall)))
"""


def measure(cells: int, dtype: str, scheme: str, steps: int, threads: int) -> dict:
    """One run in a fresh interpreter; returns the figures described in the module doc."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(cells), dtype, scheme, str(steps),
                          str(threads)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{cells}^3 {dtype} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", nargs="+", default=["512:float32", "256:float64"], metavar="N:DTYPE",
                   help="runs as cells:dtype (default 512:float32 256:float64)")
    p.add_argument("--scheme", choices=("first", "muscl"), default="muscl")
    p.add_argument("--steps", type=int, default=3, help="steps per run (about; default 3)")
    p.add_argument("--threads", type=int, default=0, help="solver threads (default: all)")
    p.add_argument("--json", action="store_true", help="one JSON line per run")
    args = p.parse_args(argv)
    runs = []
    for item in args.run:
        try:
            cells, dtype = item.split(":")
            runs.append((int(cells), dtype))
        except ValueError:
            p.error(f"--run takes cells:dtype, got {item!r}")
        if dtype not in ("float32", "float64"):
            p.error(f"dtype must be float32 or float64, got {dtype!r}")
    if not args.json:
        print(f"{'run':>14} {'steps':>5} {'state GiB':>9} {'peak GiB':>8} {'peak/state':>10} "
              f"{'estimate':>8} {'IC s':>6} {'s/step':>7} {'cell-upd/s':>10}")
    for cells, dtype in runs:
        r = measure(cells, dtype, args.scheme, args.steps, args.threads)
        if args.json:
            print(json.dumps(r), flush=True)
        else:
            print(f"{cells:>5}^3 {dtype:>7} {r['steps']:>5} {r['state_gib']:>9.2f} {r['peak_gib']:>8.2f} "
                  f"{r['peak_over_state']:>10.2f} {r['estimate_over_state']:>7.2f}x {r['ic_s']:>6.1f} "
                  f"{r['s_per_step']:>7.2f} {r['cell_updates_per_s']:>10.2e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

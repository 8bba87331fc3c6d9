"""Run one turbulent-cloud simulation, print its summary and save its log column-density maps.

    python examples/single_simulation.py [--n 3.6667] [--cells 64] [--seed 1] [--out DIR]

Writes ``log_sigma_x.png``, ``log_sigma_y.png`` and ``log_sigma_z.png`` (axes in pc, title
with n, axis and time) to ``--out`` (default ``example_output/single_simulation``).
"""
from pathlib import Path
import json

from turbsim import SimConfig, simulate
from turbsim.console import ArgumentParser
from turbsim.figures import save_map_png
from turbsim.observe import log_column, projections

DEFAULT_OUT = Path("example_output") / "single_simulation"


def build_parser() -> ArgumentParser:
    defaults = SimConfig()
    ap = ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=float, default=defaults.n,
                    help="spectral index of the initial velocity power |v_k|^2 ~ k^-n, in [0, 10] "
                         "(11/3 Kolmogorov, 4 Burgers; default %(default).4g)")
    ap.add_argument("--cells", type=int, default=64,
                    help="grid cells per side, even, in [4, 4096] (default %(default)s)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the initial velocity field, >= 0 "
                                                       "(default %(default)s)")
    ap.add_argument("--t-end", type=float, default=defaults.t_end,
                    help="end time [Myr], in [0, 1e4] (default %(default)s)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="folder for the PNG maps (created; default %(default)s)")
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        config = SimConfig(n=args.n, cells=args.cells, seed=args.seed, t_end=args.t_end)
    except ValueError as exc:
        ap.error(str(exc))
    result = simulate(config, progress=True)
    print(json.dumps(result.summary(), indent=2))

    args.out.mkdir(parents=True, exist_ok=True)
    maps = log_column(projections(result.density, config.dx_cm))
    for axis, image in enumerate(maps):
        path = save_map_png(args.out / f"log_sigma_{'xyz'[axis]}.png", image, config.box,
                            n=config.n, axis=axis, time_myr=result.time)
        print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

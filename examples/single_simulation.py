"""Run one turbulent-cloud simulation, print its summary and save its log column-density maps.

    python examples/single_simulation.py [--n 4] [--cells 64] [--out maps]
"""
import argparse
import json
from pathlib import Path

from turbsim import SimConfig, simulate
from turbsim.observe import log_column, projections, save_png


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=float, default=11 / 3, help="spectral index (11/3 Kolmogorov, 4 Burgers)")
    ap.add_argument("--cells", type=int, default=64, help="cells per side")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="maps", help="folder for the PNG maps")
    args = ap.parse_args()

    config = SimConfig(n=args.n, cells=args.cells, seed=args.seed)
    result = simulate(config, progress=True)
    print(json.dumps(result.summary(), indent=2))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    maps = log_column(projections(result.density, config.dx_cm))
    for axis, image in zip("xyz", maps):
        path = save_png(image, out / f"log_sigma_{axis}.png", cmap="magma", colorbar=True,
                        label="log10 Sigma [g/cm^2]")
        print("wrote", path)


if __name__ == "__main__":
    main()

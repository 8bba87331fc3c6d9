"""AMR-lite: where the seconds of a run go, and how two builds of it compare.

``profile``: one turbulent run (initial conditions on the ``2^levelmin`` grid, as
``benchmarks/amr.py cost`` draws them, the global schedule, a regrid every step), with
every kernel of ``turbsim._solver._amr`` and the main :class:`turbsim.amr.Mesh` methods
timed (CPU time): seconds and share of the run per kernel, and the leaf updates per second
of the steps (regrids excluded).

``run``: the same run, printed as one JSON line (CPU seconds of the loop and of its
regrids, steps, leaf updates).

``compare``: this checkout against another one (``--against``, built in place), the
cases run alternately in fresh processes, ``--repeat`` rounds: the median CPU time per
case of each, and their ratio (this / other; below 1 is faster). CPU time, not wall time,
so that other work on the machine disturbs the ratio less; the rounds are interleaved for
the same reason.

``same``: this checkout against another one, run for run, array by array: turbulent runs
(levels 5-7 and 6-8, both schemes, the three schedules, one and two threads) and a dense blob
advected across the refinement (with the mass criterion, a regrid every 2 steps, the
moncen limiter), every level's cell kinds and whole state (ghost values included), the
steps, times, conservation errors and regrid histories: a change meant to leave results
alone must print no difference.

Usage::

    python benchmarks/amr_profile.py profile --levels 5 7 --t-end 2 --threads 1
    python benchmarks/amr_profile.py compare --against ../other-checkout --repeat 5 \\
        --case 6 8 0.5 --case 5 7 2
    python benchmarks/amr_profile.py same --against ../other-checkout
"""
from __future__ import annotations

import argparse
import collections
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _setup(levels, t_end, seed=1):
    """Mesh and evolve() arguments of the turbulent case (as ``benchmarks/amr.py cost``)."""
    import numpy as np

    from turbsim import SimConfig, ic
    from turbsim.amr import Mesh

    lmin, lmax = levels
    cfg = SimConfig(cells=2**lmin, levelmin=lmin, levelmax=lmax, t_end=t_end, n=11 / 3, seed=seed)
    vel = ic.velocity_field(cfg.cells, cfg.n, cfg.seed, mach=cfg.mach,
                            solenoidal=cfg.solenoidal, method=cfg.ic)
    mesh = Mesh.from_uniform(np.ones((cfg.cells,) * 3), vel, lmin, lmax)
    kw = dict(cs=1.0, limiter=cfg.limiter, courant=cfg.courant, gamma=cfg.gamma,
              ramses_dt=cfg.ramses_dt, stop=cfg.stop, refine=cfg.refine,
              err_grad_d=cfg.err_grad_d, m_refine=cfg.m_refine, nexpand=cfg.nexpand,
              regrid_every=1, schedule="global")
    return mesh, cfg.t_end_code, kw


def _timed(acc, cnt, label, f):
    def g(*a, **k):
        t0 = time.process_time()
        try:
            return f(*a, **k)
        finally:
            acc[label] += time.process_time() - t0
            cnt[label] += 1
    return g


def run_case(levels, t_end, scheme="muscl", threads=1, kernels=False) -> dict:
    """One run, timed in CPU seconds; with ``kernels`` the time of each kernel too."""
    from turbsim import amr, amr_mesh, amr_step

    mesh, t_code, kw = _setup(levels, t_end)
    acc, cnt = collections.defaultdict(float), collections.Counter()
    amr.Mesh.regrid = _timed(acc, cnt, "Mesh.regrid", amr.Mesh.regrid)
    if kernels:
        real = amr_mesh._amr

        class Timed:
            def __getattr__(self, name):
                f = getattr(real, name)
                return _timed(acc, cnt, name, f) if callable(f) else f

        amr_mesh._amr = amr_step._amr = Timed()   # the kernels the mesh and the step call
        for m in ("flag", "_rebuild", "restrict", "fill_ghosts", "totals"):
            setattr(amr.Mesh, m, _timed(acc, cnt, "Mesh." + m, getattr(amr.Mesh, m)))
    t0 = time.process_time()
    res = amr.evolve(mesh, t_code, scheme=scheme, threads=threads, **kw)
    cpu = time.process_time() - t0
    regrid = acc["Mesh.regrid"]
    return {"levels": list(levels), "t_end_myr": t_end, "scheme": scheme, "threads": threads,
            "steps": res.steps, "updates": res.cell_updates, "cpu_s": cpu, "regrid_cpu_s": regrid,
            "step_updates_per_cpu_s": res.cell_updates / max(cpu - regrid, 1e-12),
            "refined_fraction": {str(k): v for k, v in mesh.refined_fraction().items()},
            "kernels": {k: [acc[k], cnt[k]] for k in acc} if kernels else {}}


def compare(against: Path, cases, repeat: int, scheme: str, threads: int) -> list[dict]:
    """Interleaved runs of this checkout and ``against``: medians and ratios per case."""
    def one(root, case):
        cmd = [sys.executable, str(Path(__file__).resolve()), "run", "--root", str(root),
               "--levels", str(case[0]),
               str(case[1]), "--t-end", str(case[2]), "--scheme", scheme,
               "--threads", str(threads), "--json"]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=root)
        return json.loads(out.stdout.strip().splitlines()[-1])

    rows = []
    for case in cases:
        this, other = [], []
        for r in range(repeat):
            pair = [(REPO, this), (against, other)]
            for root, store in (pair if r % 2 == 0 else pair[::-1]):
                store.append(one(root, case))
        med = {k: [statistics.median(x[k] for x in s) for s in (this, other)]
               for k in ("cpu_s", "regrid_cpu_s", "step_updates_per_cpu_s")}
        rows.append({"case": list(case), "scheme": scheme, "threads": threads, "repeat": repeat,
                     "steps": [this[0]["steps"], other[0]["steps"]],
                     "cpu_s": med["cpu_s"], "regrid_cpu_s": med["regrid_cpu_s"],
                     "step_updates_per_cpu_s": med["step_updates_per_cpu_s"],
                     "cpu_ratio": med["cpu_s"][0] / med["cpu_s"][1],
                     "cpu_ratios_per_round": [a["cpu_s"] / b["cpu_s"]
                                              for a, b in zip(this, other)]})
    return rows


def _blob(n):
    """A Gaussian density bump of contrast 3 (as the tests' moving blob)."""
    import numpy as np

    x = (np.arange(n) + 0.5) / n
    X, Y, Z = np.meshgrid(x, x, x, indexing="ij")
    return 1.0 + 2.0 * np.exp(-((X - 0.5) ** 2 + (Y - 0.4) ** 2 + (Z - 0.5) ** 2) / 0.01)


SAME_CASES = [  # name, scheme, levels, end time (Myr for turbulence, code units for blobs),
    # schedule, regrid_every, threads
    *[c for sc in ("muscl", "first") for c in (
        ("turb", sc, (5, 7), 0.9, "global", 1, 2), ("turb", sc, (6, 8), 0.45, "global", 1, 1),
        ("turb", sc, (5, 7), 0.9, "subcycle", 1, 1), ("turb", sc, (5, 7), 0.9, "nsubcycle", 1, 2),
        ("blob", sc, (3, 5), 0.3, "global", 1, 1), ("blob", sc, (3, 6), 0.3, "nsubcycle", 1, 1),
        ("blob-mass", sc, (3, 6), 0.2, "global", 2, 2))],
    ("blob-moncen", "muscl", (3, 5), 0.3, "global", 1, 1),
]


def dump_runs(path: Path) -> None:
    """Run :data:`SAME_CASES` and save what :func:`same` compares to ``path`` (npz)."""
    import numpy as np

    from turbsim.amr import Mesh, evolve

    out = {}
    for i, (name, scheme, levels, t, schedule, every, threads) in enumerate(SAME_CASES):
        if name == "turb":
            mesh, t, kw = _setup(levels, t)
            kw.update(regrid_every=every, schedule=schedule)
        else:
            vel = np.zeros((3, 16, 16, 16))
            vel[0] = 1.0
            mesh = Mesh.from_uniform(_blob(16), vel, *levels)
            kw = dict(gamma=1.0001 if scheme == "first" else 1.0, err_grad_d=0.05,
                      refine="gradient+mass" if name == "blob-mass" else "gradient",
                      m_refine=2.0 if name == "blob-mass" else 0.0, regrid_every=every,
                      schedule=schedule, limiter="moncen" if name == "blob-moncen" else "minmod")
        res = evolve(mesh, t, scheme=scheme, threads=threads,
                     on_regrid=lambda m: m.check_nesting(), **kw)
        key = f"{i}-{name}-{scheme}"
        for L in mesh.levels:
            out[f"{key}-kind{L}"] = mesh.kind[L]
            out[f"{key}-U{L}"] = mesh.U[L]
        out[f"{key}-run"] = np.array([res.steps, res.regrids, res.time, res.cell_updates,
                                      res.mass_error, res.momentum_error])
        out[f"{key}-history"] = np.array(
            [[h["step"], h["time"]] + [h[k].get(L, -1) for k in ("leaves", "created", "removed")
                                       for L in mesh.levels] for h in res.history])
    np.savez(path, **out)


def same(against: Path) -> int:
    """Differences between the runs of this checkout and ``against`` (0: none)."""
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for k, root in enumerate((REPO, against)):
            f = Path(tmp) / f"{k}.npz"
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "dump", str(f),
                            "--root", str(root)], check=True, cwd=root)
            files.append(f)
        a, b = np.load(files[0]), np.load(files[1])
        keys = sorted(set(a.files) | set(b.files))
        bad = [k for k in keys if k not in a.files or k not in b.files
               or a[k].shape != b[k].shape or not np.array_equal(a[k], b[k], equal_nan=True)]
    for k in bad:
        print(f"differs: {k}")
    print(f"{len(keys)} arrays compared, {len(bad)} differ")
    return len(bad)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("profile", help="seconds per kernel of one run")
    r = sub.add_parser("run", help="one run as JSON")
    c = sub.add_parser("compare", help="this checkout against another, interleaved")
    for q in (p, r):
        q.add_argument("--levels", type=int, nargs=2, default=[5, 7], metavar=("LMIN", "LMAX"))
        q.add_argument("--t-end", type=float, default=2.0, help="end time [Myr]")
    for q in (p, r, c):
        q.add_argument("--scheme", choices=("muscl", "first"), default="muscl")
        q.add_argument("--threads", type=int, default=1)
    r.add_argument("--json", action="store_true", help="print JSON (the default output)")
    for q in (p, r):
        q.add_argument("--root", type=Path, default=REPO,
                       help="the checkout to import turbsim from")
    c.add_argument("--against", type=Path, required=True, help="the other checkout (built)")
    c.add_argument("--case", type=float, nargs=3, action="append", metavar=("LMIN", "LMAX", "T"),
                   help="levels and end time [Myr] (repeatable; default 6 8 0.5 and 5 7 2)")
    c.add_argument("--repeat", type=int, default=5)
    m = sub.add_parser("same", help="this checkout against another, array by array")
    m.add_argument("--against", type=Path, required=True, help="the other checkout (built)")
    d = sub.add_parser("dump", help="(used by same) save the runs to an npz file")
    d.add_argument("path", type=Path)
    d.add_argument("--root", type=Path, default=REPO, help="the checkout to import turbsim from")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(getattr(args, "root", REPO)))
    if args.what == "same":
        return 1 if same(args.against.resolve()) else 0
    if args.what == "dump":
        dump_runs(args.path)
    elif args.what == "run":
        print(json.dumps(run_case(tuple(args.levels), args.t_end, args.scheme, args.threads)))
    elif args.what == "profile":
        row = run_case(tuple(args.levels), args.t_end, args.scheme, args.threads, kernels=True)
        print(f"levels {row['levels']} to {row['t_end_myr']} Myr, {row['scheme']}, "
              f"{row['threads']} thread(s): {row['steps']} steps, {row['cpu_s']:.3f} CPU s "
              f"(regrids {row['regrid_cpu_s'] / row['cpu_s']:.0%}), "
              f"{row['step_updates_per_cpu_s'] / 1e6:.2f} M leaf updates per CPU s of the steps; "
              f"volume per level {row['refined_fraction']}")
        for k, (s, n) in sorted(row["kernels"].items(), key=lambda kv: -kv[1][0]):
            print(f"  {k:18s} {s:8.3f} s {s / row['cpu_s']:6.1%}  ({n} calls)")
    else:
        cases = [(int(a), int(b), t) for a, b, t in (args.case or [(6, 8, 0.5), (5, 7, 2.0)])]
        for row in compare(args.against.resolve(), cases, args.repeat, args.scheme, args.threads):
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

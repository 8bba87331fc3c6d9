"""Steps of the device check (``benchmarks/device_check.sh``) written in Python, and its summary.

Subcommands (each prints one JSON line with ``--json``, else a few readable lines):

``env``
    Python, the versions of the packages the project uses (and of PyTorch, Cython,
    setuptools) against the project's pins, JAX's backend and devices, whether JAX, Flax
    and learn import (the learning steps' skip reason), the CPUs and the GPUs.
``kernels``
    Import turbsim from ``PYTHONPATH`` (the freshly built tree), name the extension file
    that was loaded and whether it has OpenMP, and run one small simulation.
``live``
    Train on live simulations (``learn.train.train_and_evaluate`` with ``live=True``,
    simulation workers on all cores but one) for a fixed time, and report the share of the
    training time the loop waited for data (:class:`learn.train.DataWait`) per epoch,
    after the first epoch (which holds the compilation and the workers' start), the
    images/s, the simulations/s, and the rate the device reached while it had data.
``summary``
    Read the steps' outputs and statuses from the check's work folder, write one line per
    step (its figures, or why it was skipped or failed), the targets (study_cnn against
    PyTorch eager at each batch size, the live data wait, the solver's 16-thread speed-up)
    and the JSON file of all figures.

Usage::

    python benchmarks/device_steps.py env --json
    python benchmarks/device_steps.py kernels --json
    python benchmarks/device_steps.py live --seconds 40 --out /tmp/live --json
    python benchmarks/device_steps.py summary --work WORK --json-out device_check.json
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PACKAGES = ("numpy", "scipy", "h5py", "matplotlib", "tqdm", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint",
            "scikit-learn", "scikit-image", "torch", "Cython", "setuptools")
"""Packages whose versions the environment step reports."""

STEPS = ("env", "build", "import", "train", "torch", "live", "solver", "ramses_generate", "ramses_fit")
"""The steps of the device check, in order (the summary's lines and the JSON's keys)."""

TARGETS = {"torch_ratio": 1.0, "live_wait": 0.20, "solver_speedup_16": 12.0}
"""Targets: study_cnn's images/s at least PyTorch eager's; the device waiting for data under
20 % of the live training time; 16 threads at least 12x one thread at 256^3."""


# --------------------------------------------------------------------------------------
# env
# --------------------------------------------------------------------------------------
def pins() -> dict[str, str]:
    """The version specifiers of the project's dependencies (``pyproject.toml``), by package name."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        return {}
    try:
        meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    except (OSError, KeyError, ValueError):
        return {}
    reqs = list(meta.get("dependencies", [])) + list(meta.get("optional-dependencies", {}).get("learn", []))
    out = {}
    for r in reqs:
        name = r.split(";")[0]
        for i, ch in enumerate(name):
            if ch in "<>=!~[ ":
                out[name[:i].strip().lower()] = name[i:].strip()
                break
    return out


def in_pin(version: str | None, spec: str | None) -> bool | None:
    """Whether ``version`` satisfies ``spec`` (None where either is missing or ``packaging`` is absent)."""
    if not version or not spec:
        return None
    try:
        from packaging.specifiers import SpecifierSet
    except ImportError:
        return None
    try:
        return SpecifierSet(spec.split("]")[-1]).contains(version, prereleases=True)
    except Exception:  # noqa: BLE001 (an odd version string: unknown)
        return None


def cpu_model() -> str | None:
    """The processor's model name (``/proc/cpuinfo``), or None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def gpus() -> list[str]:
    """One line per NVIDIA GPU from ``nvidia-smi`` (name, memory, driver, max SM clock), or none."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        res = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.SubprocessError):
        return []
    return [ln.strip() for ln in res.stdout.splitlines() if ln.strip()]


def env_info() -> dict:
    """Python, package versions against the pins, JAX's backend and devices, CPUs."""
    from importlib import metadata

    spec = pins()
    packages = {}
    for name in PACKAGES:
        try:
            v = metadata.version(name)
        except metadata.PackageNotFoundError:
            v = None
        packages[name] = {"version": v, "pin": spec.get(name.lower()), "in_pin": in_pin(v, spec.get(name.lower()))}
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count()
    info = {"python": platform.python_version(), "executable": sys.executable, "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "cores_available": cores, "cpu_model": cpu_model(), "gpus": gpus(),
            "packages": packages,
            "jax_platforms": os.environ.get("JAX_PLATFORMS", ""), "xla_flags": os.environ.get("XLA_FLAGS", "")}
    try:
        import jax

        devs = jax.devices()
        info.update(jax_backend=jax.default_backend(), jax_devices=[str(d) for d in devs],
                    jax_device_kinds=sorted({getattr(d, "device_kind", "?") for d in devs}))
    except Exception as exc:  # noqa: BLE001 (report it: the JAX steps will say they cannot run)
        info.update(jax_backend=None, jax_devices=[], jax_error=f"{type(exc).__name__}: {exc}"[:300])
    try:  # what the learning steps import: their skip reason when it fails
        import flax  # noqa: F401
        import optax  # noqa: F401

        import learn.train  # noqa: F401
        info["learn_import_error"] = None
    except Exception as exc:  # noqa: BLE001
        info["learn_import_error"] = f"{type(exc).__name__}: {exc}"[:300]
    return info


def print_env(info: dict) -> None:
    print(f"python {info['python']} ({info['executable']}), {info['platform']}")
    print(f"CPUs: {info['cpu_count']} ({info['cores_available']} available to this process), {info['cpu_model']}")
    print(f"GPUs: {'; '.join(info['gpus']) or 'none (no nvidia-smi)'}")
    for name, p in info["packages"].items():
        pin = "" if p["pin"] is None else f"  (project pins {p['pin']}: {'in' if p['in_pin'] else 'OUT OF'} range)" \
            if p["in_pin"] is not None else f"  (project pins {p['pin']})"
        print(f"  {name:<17} {p['version'] or 'not installed'}{pin}")
    print(f"JAX backend {info['jax_backend']}, devices {info['jax_devices']}" +
          (f"; JAX error: {info['jax_error']}" if info.get("jax_error") else ""))
    print(f"learn imports: {info['learn_import_error'] or 'ok'}")


# --------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------
def kernels_info(cells: int = 32) -> dict:
    """Where turbsim and its extension were imported from, OpenMP, and one small simulation."""
    import turbsim
    from turbsim import SimConfig, simulate
    from turbsim._solver import _kernels
    from turbsim.solver import openmp_threads

    t0 = time.perf_counter()
    res = simulate(SimConfig(cells=cells, scheme="muscl", t_end=0.05, seed=1))
    wall = time.perf_counter() - t0
    ok = bool(math.isfinite(res.mass_error) and abs(res.mass_error) < 1e-10 and res.steps > 0)
    return {"turbsim": str(Path(turbsim.__file__).parent), "extension": _kernels.__file__,
            "openmp": bool(_kernels.openmp_available()), "openmp_threads": openmp_threads(),
            "simulate_cells": cells, "simulate_steps": res.steps, "simulate_s": round(wall, 3),
            "cell_updates_per_s": res.summary().get("cell_updates_per_s"), "mass_error": res.mass_error, "ok": ok}


# --------------------------------------------------------------------------------------
# live
# --------------------------------------------------------------------------------------
class _Budget(Exception):
    """Raised after the epoch that used up the live step's time."""


def live_run(*, seconds: float, out: Path, model: str, cells: int, scheme: str, t_end: float, batch: int,
             sims_per_epoch: int, workers: int | None, steps_per_call: int, augment: tuple[str, ...],
             min_epochs: int = 2) -> dict:
    """Train on live simulations for about ``seconds`` (whole epochs, at least ``min_epochs``); report the data wait.

    Returns
    -------
    dict
        Per epoch (``epochs``: images/s, seconds, data-wait fraction), and over the
        epochs after the first: ``data_wait_fraction`` (waiting time over training time),
        ``images_per_s``, ``busy_images_per_s`` (images over the time not spent waiting),
        ``sims_per_s``, ``n_epochs``, ``train_s``; the same over all epochs as ``*_all``.
    """
    from learn.config import TrainConfig
    from learn.train import train_and_evaluate
    from turbsim.parallel import default_workers

    cfg = TrainConfig(live=True, data=None, model=model, batch_size=batch, epochs=10_000, patience=0, seed=0,
                      normalisation="per_image", augment=augment, steps_per_call=steps_per_call,
                      live_sims_per_epoch=sims_per_epoch, live_workers=workers,
                      live_sim=(("cells", cells), ("t_end", t_end), ("scheme", scheme)))
    recs: list[dict] = []
    t0 = time.perf_counter()

    def on_end(epoch: int, rec: dict) -> None:
        recs.append(dict(rec))
        if time.perf_counter() - t0 >= seconds and len(recs) >= min_epochs:
            raise _Budget

    try:
        train_and_evaluate(cfg, out, on_epoch_end=on_end, progress=False)
    except _Budget:
        pass
    wall = time.perf_counter() - t0

    def over(rs):
        if not rs:
            return {}
        ep = sum(r["epoch_s"] for r in rs)
        wait = sum(r["data_wait_s"] for r in rs)
        imgs = sum(r["images_per_s"] * r["epoch_s"] for r in rs)
        return {"data_wait_fraction": wait / ep, "images_per_s": imgs / ep,
                "busy_images_per_s": imgs / (ep - wait) if ep > wait else None,
                "sims_per_s": sims_per_epoch * len(rs) / ep, "n_epochs": len(rs), "train_s": ep}

    steady, every = over(recs[1:]), over(recs)
    return {"model": model, "cells": cells, "scheme": scheme, "t_end": t_end, "batch_size": batch,
            "augment": list(augment), "sims_per_epoch": sims_per_epoch,
            "workers": workers if workers is not None else max(1, default_workers() - 1),
            "budget_s": seconds, "wall_s": wall,
            "epochs": [{"epoch": r["epoch"], "images_per_s": r["images_per_s"], "epoch_s": r["epoch_s"],
                        "data_wait_fraction": r["data_wait_fraction"]} for r in recs],
            **steady, **{k + "_all": v for k, v in every.items()}}


# --------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------
def json_lines(path: Path) -> list[dict]:
    """The JSON objects among the lines of a file (other lines ignored)."""
    out = []
    if not path.is_file():
        return out
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def read_status(work: Path, step: str) -> dict:
    """The status the shell script wrote for a step (``STEP.status``: status, rc, seconds, timeout, reason)."""
    path = work / f"{step}.status"
    if not path.is_file():
        return {"status": "not run", "reason": "not among the selected steps"}
    parts = path.read_text().rstrip("\n").split("\t")
    parts += [""] * (5 - len(parts))
    status, rc, secs, limit, reason = parts[:5]
    return {"status": status, "rc": int(rc) if rc.lstrip("-").isdigit() else None,
            "seconds": float(secs) if secs else None, "timeout_s": float(limit) if limit else None,
            "reason": reason or None}


def step_figures(work: Path, step: str) -> dict:
    """The figures of one step, from its output (``STEP.out``)."""
    lines = json_lines(work / f"{step}.out")
    if step == "env":
        return lines[-1] if lines else {}
    if step == "build":
        return lines[-1] if lines else {}
    if step == "import":
        return lines[-1] if lines else {}
    if step in ("train", "torch"):
        results = [r for r in lines if "images_per_s" in r or "error" in r]
        info = next((r for r in reversed(lines) if "results" not in r and "images_per_s" not in r
                     and "error" not in r), {})
        return {"info": info, "results": results}
    if step == "live":
        return lines[-1] if lines else {}
    if step == "solver":
        return {"rows": [r for r in lines if "threads" in r]}
    if step in ("ramses_generate", "ramses_fit"):
        return lines[-1] if lines else {}
    return {}


def describe(step: str, fig: dict) -> str:
    """One line of a step's figures."""
    if not fig:
        return "no figures"
    if step == "env":
        pk = fig.get("packages", {})
        vers = ", ".join(f"{k} {v['version']}" for k, v in pk.items() if v.get("version") and k in
                         ("jax", "flax", "optax", "torch", "Cython", "numpy"))
        return (f"python {fig.get('python')}; {vers}; JAX backend {fig.get('jax_backend')} "
                f"{fig.get('jax_device_kinds', '')}; GPU {'; '.join(fig.get('gpus') or []) or 'none'}; "
                f"{fig.get('cpu_count')} CPUs ({fig.get('cpu_model')})")
    if step == "build":
        return (f"{Path(fig.get('path', '?')).name}: OpenMP {'on' if fig.get('openmp') else 'off'}, "
                f"cython {fig.get('cython_s', 0):.1f} s, compile and link {fig.get('compile_s', 0):.1f} s"
                + (f" (OpenMP build failed: {fig['openmp_error']})" if fig.get("openmp_error") else ""))
    if step == "import":
        return (f"turbsim from {fig.get('turbsim')}; OpenMP threads {fig.get('openmp_threads')}; "
                f"{fig.get('simulate_cells')}^3 MUSCL, {fig.get('simulate_steps')} steps in {fig.get('simulate_s')} s, "
                f"mass error {fig.get('mass_error'):.1e}, {'ok' if fig.get('ok') else 'NOT OK'}")
    if step in ("train", "torch"):
        rs = fig.get("results", [])
        if not rs:
            return "no results"
        return "; ".join(
            f"{r.get('model')} {r.get('size')} px batch {r.get('batch_size')}"
            + (f" [{r['variant']}]" if step == "torch" or r.get("variant") not in ("split_auto",) else "")
            + (f": {r['images_per_s']:.0f} img/s (1st call {r.get('first_call_s', 0):.1f} s)" if "images_per_s" in r
               else f": failed ({r.get('error')})") for r in rs)
    if step == "live":
        if "data_wait_fraction" not in fig:
            ep = fig.get("epochs", [])
            if not ep:
                return "no epoch finished"
            return (f"{len(ep)} epoch only (compilation and the workers' start): "
                    f"{100 * fig.get('data_wait_fraction_all', 0):.0f} % waiting for data")
        return (f"{fig['model']} on {fig['cells']}^3 live simulations ({fig['workers']} workers, batch "
                f"{fig['batch_size']}): {100 * fig['data_wait_fraction']:.0f} % of the time waiting for data after the "
                f"first epoch ({100 * fig.get('data_wait_fraction_all', 0):.0f} % with it), {fig['images_per_s']:.0f} "
                f"img/s, {fig['sims_per_s']:.1f} sims/s, {fig['busy_images_per_s'] or 0:.0f} img/s while fed, "
                f"{fig.get('n_epochs_all', fig['n_epochs'] + 1)} epochs")
    if step == "solver":
        rows = fig.get("rows", [])
        if not rows:
            return "no rows"
        parts = []
        for r in rows:
            if r["threads"] == max(x["threads"] for x in rows if x["cells"] == r["cells"]
                                   and x["scheme"] == r["scheme"] and x["dtype"] == r["dtype"]):
                parts.append(f"{r['scheme']} {r['cells']}^3 {r['dtype']} {r['threads']} threads: "
                             f"{r['speedup']:.2f}x ({r['cell_updates_per_s']:.2e} cell-upd/s"
                             + ("" if r.get("bit_identical") else ", NOT bit-identical") + ")")
        return "; ".join(parts)
    if step == "ramses_generate":
        return (f"{fig.get('sims')} simulations in {fig.get('elapsed_s', 0):.1f} s "
                f"({fig.get('sims_per_hour', 0):.0f} per hour), solver share {fig.get('solver_share', 0):.0%}")
    if step == "ramses_fit":
        tr = fig.get("train", {})
        parts = [f"{tr.get('epochs_run')} epochs in {tr.get('train_wall_s', 0):.0f} s "
                 f"({tr.get('images_per_s', 0):.0f} img/s, {100 * (tr.get('data_wait_fraction') or 0):.0f} % waiting)"]
        for key, sc in fig.items():
            if isinstance(sc, dict) and "per_image.accuracy" in sc:
                parts.append(f"{key} {100 * sc['per_image.accuracy']:.1f} % / {100 * sc['per_sim.accuracy']:.0f} %"
                             + (f" (AUC {sc['per_image.auc']:.3f})" if sc.get("per_image.auc") is not None else ""))
        return "; ".join(parts)
    return json.dumps(fig)[:300]


def targets(figs: dict) -> list[dict]:
    """The targets of the issue, computed from the figures where they were measured."""
    out = []
    jax_rs = {(r["size"], r["batch_size"]): r["images_per_s"] for r in figs.get("train", {}).get("results", [])
              if r.get("model") == "study_cnn" and r.get("variant") == "split_auto" and "images_per_s" in r}
    torch_rs = {(r["size"], r["batch_size"]): r["images_per_s"] for r in figs.get("torch", {}).get("results", [])
                if r.get("variant") == "eager" and "images_per_s" in r}
    for key in sorted(set(jax_rs) & set(torch_rs)):
        ratio = jax_rs[key] / torch_rs[key]
        out.append({"target": f"study_cnn / PyTorch eager, {key[0]} px, batch {key[1]}", "value": round(ratio, 3),
                    "threshold": f">= {TARGETS['torch_ratio']}", "met": ratio >= TARGETS["torch_ratio"],
                    "jax_images_per_s": jax_rs[key], "torch_images_per_s": torch_rs[key]})
    live = figs.get("live", {})
    if "data_wait_fraction" in live:
        w = live["data_wait_fraction"]
        out.append({"target": "live training: share of the time waiting for data (after the first epoch)",
                    "value": round(w, 3), "threshold": f"< {TARGETS['live_wait']}", "met": w < TARGETS["live_wait"]})
    rows = [r for r in figs.get("solver", {}).get("rows", []) if r.get("threads") == 16 and r.get("cells") == 256]
    for r in rows:
        out.append({"target": f"solver {r['scheme']} {r['dtype']} 256^3: 16 threads against 1",
                    "value": round(r["speedup"], 2), "threshold": f">= {TARGETS['solver_speedup_16']}",
                    "met": r["speedup"] >= TARGETS["solver_speedup_16"] and r.get("reference_threads") == 1})
    return out


FLAGS = ("dry_run", "gpu")
"""Facts of the run that are 0/1 flags (booleans in the JSON)."""
NUMBERS = ("started", "wall_s", "budget_s")
"""Facts of the run that are numbers (the others are kept as text)."""


def parse_meta(pairs: list[str]) -> dict:
    """``KEY=VALUE`` pairs as a dict: :data:`FLAGS` as booleans, :data:`NUMBERS` as numbers, the rest as text."""
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key in FLAGS:
            out[key] = value == "1"
            continue
        if key not in NUMBERS:
            out[key] = value
            continue
        for kind in (int, float):
            try:
                out[key] = kind(value)
                break
            except ValueError:
                continue
        else:
            out[key] = value
    return out


def summary(work: Path, json_out: Path, meta: dict) -> list[str]:
    """The summary lines (one per step, then the targets); writes the JSON of all figures."""
    steps, lines = {}, []
    figs = {}
    for step in STEPS:
        st = read_status(work, step)
        fig = step_figures(work, step) if st["status"] in ("ok", "failed", "timed out") else {}
        figs[step] = fig
        steps[step] = {**st, "figures": fig}
        if st["status"] == "ok":
            text = describe(step, fig)
            note = f" [{st['reason']}]" if st.get("reason") else ""
            lines.append(f"step {step}: ok in {st['seconds']:.0f} s: {text}{note}")
        elif st["status"] in ("failed", "timed out"):
            partial = describe(step, fig) if fig else ""
            lines.append(f"step {step}: {st['status']} after {st['seconds'] or 0:.0f} s: {st['reason']}"
                         + (f"; partial figures: {partial}" if partial and partial != "no figures" else ""))
        else:
            lines.append(f"step {step}: {st['status']}: {st['reason']}")
    tg = targets(figs)
    for t in tg:
        lines.append(f"target {t['target']}: {t['value']} ({t['threshold']}): {'met' if t['met'] else 'NOT met'}")
    if not tg:
        lines.append("target: none could be computed (the steps they need did not run)")
    doc = {**meta, "steps": steps, "targets": tg}
    tmp = json_out.with_name(json_out.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    os.replace(tmp, json_out)
    return lines


# --------------------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("env", help="versions, devices, CPUs")
    e.add_argument("--json", action="store_true")
    k = sub.add_parser("kernels", help="import turbsim and run one small simulation")
    k.add_argument("--cells", type=int, default=32)
    k.add_argument("--json", action="store_true")
    lv = sub.add_parser("live", help="live training for a fixed time, with the data wait")
    lv.add_argument("--seconds", type=float, default=40.0, help="training time (whole epochs; the last may overrun)")
    lv.add_argument("--min-epochs", type=int, default=2, help="epochs at least (the first holds the compilation)")
    lv.add_argument("--out", type=Path, required=True, help="run directory (must not hold another run)")
    lv.add_argument("--model", default="study_cnn", choices=("study_cnn", "resnet", "pyramid"))
    lv.add_argument("--cells", type=int, default=64)
    lv.add_argument("--scheme", default="muscl", choices=("first", "muscl"))
    lv.add_argument("--t-end", type=float, default=0.5)
    lv.add_argument("--batch-size", type=int, default=64)
    lv.add_argument("--sims-per-epoch", type=int, default=480)
    lv.add_argument("--workers", type=int, default=None, help="simulation workers (default: all cores but one)")
    lv.add_argument("--steps-per-call", type=int, default=1)
    lv.add_argument("--augment", nargs="*", default=["flip", "quadrant"])
    lv.add_argument("--json", action="store_true")
    s = sub.add_parser("summary", help="the per-step lines, the targets and the JSON of the figures")
    s.add_argument("--work", type=Path, required=True, help="the check's work folder (STEP.out, STEP.status)")
    s.add_argument("--json-out", type=Path, required=True)
    s.add_argument("--meta", nargs="*", default=[], metavar="KEY=VALUE",
                   help="facts of the run kept in the JSON (numbers and 0/1 flags as numbers and booleans)")
    args = ap.parse_args(argv)

    if args.cmd == "env":
        info = env_info()
        print(json.dumps(info)) if args.json else print_env(info)
        return 0
    if args.cmd == "kernels":
        info = kernels_info(args.cells)
        print(json.dumps(info) if args.json else "\n".join(f"{k}: {v}" for k, v in info.items()))
        return 0 if info["ok"] else 1
    if args.cmd == "live":
        if args.out.exists() and any(args.out.iterdir()):
            ap.error(f"{args.out} is not empty")
        info = live_run(seconds=args.seconds, out=args.out, model=args.model, cells=args.cells, scheme=args.scheme,
                        t_end=args.t_end, batch=args.batch_size, sims_per_epoch=args.sims_per_epoch,
                        workers=args.workers, steps_per_call=args.steps_per_call, augment=tuple(args.augment),
                        min_epochs=args.min_epochs)
        print(json.dumps(info) if args.json else describe("live", info))
        return 0
    lines = summary(args.work, args.json_out, parse_meta(args.meta))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m turbsim.generate``: labelled ensembles of simulations to HDF5.

Runs every simulation of an :class:`~turbsim.ensemble_plan.EnsembleConfig` (a preset, a
TOML file, command-line overrides) through :func:`turbsim.ensemble.run_ensemble` (the
library this command is a shell over), projects it (:func:`turbsim.stream.simulate_one`),
and writes the ensemble file described in :mod:`turbsim.dataset`. In parallel on a local
process pool (all cores by default) or on a Dask cluster (``--scheduler ADDRESS``), see
:mod:`turbsim.parallel`; every simulation has its own seed from one ``SeedSequence``, so
the file does not depend on the number of workers.

Resumable and never corrupt: each finished simulation is written atomically to its own
part file in ``OUTPUT.parts/``; rerunning the same command skips finished parts. The final
file is written from the parts under a temporary name, verified
(:func:`turbsim.dataset.verify`), and only then renamed; the parts are removed last (a
rerun that finds the complete file removes parts left by a run killed before it could).
``--verify FILE`` checks an existing file.

The live stream of simulations for training lives in :mod:`turbsim.stream`; the pools in
:mod:`turbsim.parallel`. Their names (``stream``, ``simulate_one``, ``default_workers``,
``keep_freed_memory``, ``GenerateError``, ``verify_ensemble``) are still importable from
here for one release.

Examples
--------
Command line::

    python -m turbsim.generate demo -o demo.h5
    python -m turbsim.generate binary -o binary.h5 --cells 64 --sims 200 --t-end 0.25
    python -m turbsim.generate --config ensemble.toml -o custom.h5 --scheduler tcp://head:8786
    python -m turbsim.generate --verify binary.h5 --json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

from . import config as _config
from . import dataset
from .config import SimConfig, field_docs
from .console import ArgumentParser
from .ensemble import GenerateError, RunSummary, empty_split_message, header, human_bytes, part_path, parts_dir, \
    run_ensemble
from .ensemble_plan import LABEL_MODES, PER_SIM_FIELDS, PRESETS, EnsembleConfig, load_toml
# Moved to turbsim.stream and turbsim.parallel; importable from here for one release.
from .parallel import default_workers, keep_freed_memory
from .stream import simulate_one, stream

__all__ = [
    "run_ensemble", "RunSummary", "main", "build_parser", "config_from_args", "header", "parts_dir",
    "part_path", "empty_split_message", "human_bytes", "GenerateError",
    # moved, importable from here for one release
    "stream", "simulate_one", "default_workers", "keep_freed_memory", "verify_ensemble",
]

log = logging.getLogger(__name__)

verify_ensemble = dataset.verify
"""Deprecated name of :func:`turbsim.dataset.verify` (the one check of an ensemble file)."""


# --------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------
_CHOICES = {"scheme": _config.SCHEMES, "limiter": _config.LIMITERS, "dtype": _config.DTYPES,
            "ic": _config.IC_METHODS, "stop": _config.STOPS, "labels": LABEL_MODES, "refine": _config.REFINES,
            "regrid_schedule": _config.SCHEDULES}
_METAVARS = {"class_n": "N", "class_names": "NAME", "n_range": ("LO", "HI"),
             "splits": ("TRAIN", "TEST", "HOLDOUT")}
_ENSEMBLE_OPTIONS = ("sims", "seed", "labels", "class_n", "class_names", "n_range", "splits", "save_cubes", "name")


def _help(text: str) -> str:
    """Option help from a field's docstring sentence (argparse formats ``%``)."""
    return text.replace("%", "%%")


def _add_field(group: argparse._ArgumentGroup, f: dataclasses.Field, text: str) -> None:
    """An option for one dataclass field, its help from the field's docstring."""
    flag = "--" + f.name.replace("_", "-")
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    if isinstance(default, bool):
        group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                           help=_help(text))
    elif isinstance(default, tuple):
        kind = type(default[0]) if default else str
        nargs = "+" if f.name in ("class_n", "class_names") else len(default)
        group.add_argument(flag, dest=f.name, type=kind, nargs=nargs, metavar=_METAVARS.get(f.name),
                           help=_help(text))
    else:
        group.add_argument(flag, dest=f.name, type=type(default), choices=_CHOICES.get(f.name),
                           help=_help(text))


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (every preset field is an option, its help text taken from
    the field's docstring: :func:`turbsim.config.field_docs`)."""
    p = ArgumentParser(
        prog="python -m turbsim.generate",
        short_usage="[PRESET] [-o OUTPUT] [options]",
        description="Generate a labelled ensemble of turbulence simulations into one HDF5 file "
                    "(parallel, resumable: rerun the same command after an interruption).",
        epilog="Presets: " + "; ".join(
            f"{k}: {c.sims} sims at {c.sim.cells}^3, {c.labels}" for k, c in PRESETS.items())
        + ". Precedence: preset < --config TOML < options. Exit status: 0 done (or valid), "
          "1 failed (or problems found), 2 bad arguments.")
    p.add_argument("preset", nargs="?", choices=sorted(PRESETS),
                   help="starting preset (default demo); see the list below")
    p.add_argument("-o", "--output", type=Path, help="HDF5 file to write (default PRESET.h5); "
                   "parts go to OUTPUT.parts/ next to it until the file is complete")
    p.add_argument("--config", type=Path, metavar="TOML",
                   help="ensemble configuration file (ensemble fields, and SimConfig fields in [sim])")
    p.add_argument("--verify", type=Path, metavar="FILE",
                   help="check an existing ensemble file (layout, checksums, plan) and exit")
    run = p.add_argument_group("execution")
    run.add_argument("--workers", type=int, metavar="N",
                     help="local worker processes, >= 0 (default: all cores; 0: in this process)")
    run.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://host:8786 "
                     "(run on that cluster instead of local workers)")
    run.add_argument("--keep-parts", action="store_true", help="keep OUTPUT.parts/ after consolidation")
    run.add_argument("--allow-empty-splits", action="store_true",
                     help="generate even if a split with a positive fraction gets no simulation "
                          "(refused by default: learning needs every split)")
    run.add_argument("--no-progress", action="store_true",
                     help="no progress output (default: a bar on a terminal, a line every 10 s otherwise)")
    run.add_argument("--json", action="store_true", help="print a JSON summary line on stdout")
    run.add_argument("-v", "--verbose", action="store_true", help="log every step")
    ens = p.add_argument_group("ensemble (override the preset; EnsembleConfig fields)")
    ens_docs = field_docs(EnsembleConfig)
    ens_fields = {f.name: f for f in dataclasses.fields(EnsembleConfig)}
    for name in _ENSEMBLE_OPTIONS:
        _add_field(ens, ens_fields[name], ens_docs[name])
    sim = p.add_argument_group("every simulation (override the preset; SimConfig fields)")
    sim_docs = field_docs(SimConfig)
    for f in dataclasses.fields(SimConfig):
        if f.name not in PER_SIM_FIELDS:
            _add_field(sim, f, sim_docs[f.name])
    return p


_RUN_OPTIONS = {"preset", "output", "config", "verify", "workers", "scheduler", "keep_parts",
                "allow_empty_splits", "no_progress", "json", "verbose"}


def config_from_args(args: argparse.Namespace) -> EnsembleConfig:
    """The ensemble configuration: preset, then TOML file, then command-line overrides.

    Raises
    ------
    ValueError
        An invalid value (the message names the option or file field).
    """
    base = PRESETS[args.preset or "demo"]
    if args.config is not None:
        base = load_toml(args.config, base=base)
        if args.preset is not None:  # an explicit preset on the command line wins over the file's
            base = dataclasses.replace(base, preset=args.preset)
    overrides = {k: v for k, v in vars(args).items() if k not in _RUN_OPTIONS and v is not None}
    return base.override(**overrides)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 1 failure, 2 bad arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.verify is not None:
        if not args.verify.exists():
            parser.error(f"--verify: {args.verify} does not exist")
        problems = dataset.verify(args.verify)
        if args.json:
            print(json.dumps({"file": str(args.verify), "valid": not problems, "problems": problems}))
        for line in problems:
            print(line, file=sys.stderr)
        if not problems and not args.json:
            print(f"{args.verify}: valid")
        return 1 if problems else 0
    if args.workers is not None and args.workers < 0:
        parser.error(f"--workers must be >= 0, got {args.workers}")
    if args.workers is not None and args.scheduler is not None:
        parser.error("--workers and --scheduler exclude each other (the cluster decides its workers)")
    try:
        cfg = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    output = args.output or Path(f"{cfg.name}.h5")
    empty = empty_split_message(cfg, fix="pass --allow-empty-splits")
    if empty and not args.allow_empty_splits and not output.exists():
        parser.error(empty)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"--output: cannot create directory {output.parent}: {exc.strerror}")
    try:
        summary = run_ensemble(cfg, output, workers=args.workers, scheduler=args.scheduler,
                               progress=not args.no_progress, keep_parts=args.keep_parts,
                               allow_empty_splits=args.allow_empty_splits)
    except GenerateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted: finished simulations are kept in {parts_dir(output)}/; "
              "rerun the same command to resume", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(summary.to_dict()))
    return 0


if __name__ == "__main__":
    # Run the imported module's main, so that worker processes find what they run under
    # importable names (turbsim.stream.simulate_one, not __main__'s).
    from turbsim.generate import main as _main

    sys.exit(_main())

"""Build turbsim's native kernels without setuptools: Cython, then the C compiler directly.

``setup.py build_ext --inplace`` needs the setuptools the project pins; a machine whose
image has another (an old one, say) and where nothing can be installed can still build the
extension with this script: the ``.pyx`` is translated with Cython's command line
(``python -m cython``), and the C files are compiled and linked with the C compiler named
by ``CC`` or by this interpreter's ``sysconfig``, with the include directories of Python
and NumPy and the extension suffix of this interpreter. The flags are those of
``setup.py`` (``-O3``, no fused multiply-adds, ``-march=native``, OpenMP where the compiler
accepts it: the build is tried without OpenMP when the OpenMP build fails).

The extension is written into ``ROOT/turbsim/_solver/`` (the source tree, in place), so
``import turbsim`` works from ``ROOT`` without installing (put ``ROOT`` on
``PYTHONPATH``). ``--root`` builds another copy of the tree (a scratch copy, say, so
that the working tree's extension is left alone).

Usage::

    python benchmarks/build_kernels.py                  # build in this repository, in place
    python benchmarks/build_kernels.py --root COPY      # build the tree at COPY instead
    python benchmarks/build_kernels.py --json           # one JSON line: times, flags, OpenMP, the file
    python benchmarks/build_kernels.py --opt-level 0    # fast to build, slow to run (a dry run)

Exit status 0 when the extension was built (with or without OpenMP), 1 when it was not.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import subprocess
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger("build_kernels")

REPO = Path(__file__).resolve().parents[1]
SOLVER = Path("turbsim") / "_solver"
MODULE = "_kernels"
AMR_MODULE = "_amr"
"""The AMR-lite kernels' extension (``_amr.pyx`` with ``amr.c``), built beside ``_kernels``."""
AMR_SOURCES = ("amr.c",)

BASE_FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]
"""The compile flags of ``setup.py`` (the tests check that the two agree)."""
NATIVE_FLAGS = ["-march=native"]
OPENMP_FLAGS = ["-fopenmp"]
DIRECTIVES = "boundscheck=False,wraparound=False"
"""Cython compiler directives of ``setup.py``."""


class BuildError(RuntimeError):
    """A step of the build failed; the message holds the command and the compiler's last lines."""


def compiler() -> list[str]:
    """The C compiler command: ``CC`` from the environment, else this interpreter's, else ``cc``."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(cc)


def include_dirs(root: Path) -> list[str]:
    """Python's and NumPy's header folders and the kernels' own."""
    import numpy as np

    dirs = [sysconfig.get_paths()["include"], sysconfig.get_paths().get("platinclude", ""), np.get_include(),
            str(root / SOLVER)]
    return list(dict.fromkeys(d for d in dirs if d))


def c_sources(root: Path) -> list[Path]:
    """The hand-written C files of the uniform kernels (every ``*.c`` beside the ``.pyx`` but
    Cython's output and the AMR-lite kernels' files, which make their own extension)."""
    skip = {f"{MODULE}.c", f"{AMR_MODULE}.c", *AMR_SOURCES}
    return sorted(p for p in (root / SOLVER).glob("*.c") if p.name not in skip)


def run(cmd: list[str], what: str, timeout: float = 600.0) -> float:
    """Run a command; return its wall time [s]. Raises :class:`BuildError` with its output's tail."""
    log.info("%s: %s", what, " ".join(cmd))
    t0 = time.perf_counter()
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        raise BuildError(f"{what}: {exc}") from exc
    if res.returncode != 0:
        tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-15:])
        raise BuildError(f"{what} failed (exit {res.returncode}): {' '.join(cmd)}\n{tail}")
    return time.perf_counter() - t0


def cythonize(root: Path, module: str = MODULE, out_dir: Path | None = None) -> tuple[Path, float]:
    """Translate ``<module>.pyx`` to C with Cython's command line (into ``out_dir``, default
    beside the ``.pyx``). Returns the C file and the time [s]."""
    pyx = root / SOLVER / f"{module}.pyx"
    out = pyx.with_suffix(".c") if out_dir is None else Path(out_dir) / f"{module}.c"
    dt = run([sys.executable, "-m", "cython", "-3", "--directive", DIRECTIVES, "-o", str(out), str(pyx)],
             "cython")
    return out, dt


def compile_and_link(root: Path, sources: list[Path], flags: list[str], openmp: bool, workdir: Path,
                     dest: Path) -> float:
    """Compile every source to an object (in parallel) and link them into ``dest``. Returns the time [s]."""
    cc = compiler()
    macros = ["-DNPY_NO_DEPRECATED_API=NPY_1_7_API_VERSION"] + (["-DTURBSIM_OPENMP=1"] if openmp else [])
    incs = [f"-I{d}" for d in include_dirs(root)]
    t0 = time.perf_counter()

    def one(src: Path) -> Path:
        obj = workdir / (src.stem + ".o")
        run(cc + ["-fPIC", *flags, *macros, *incs, "-c", str(src), "-o", str(obj)], f"compile {src.name}")
        return obj

    with ThreadPoolExecutor(max_workers=max(1, min(len(sources), os.cpu_count() or 1))) as pool:
        objs = list(pool.map(one, sources))
    tmp = dest.with_name(dest.name + ".tmp")
    run(cc + ["-shared", *flags, *(str(o) for o in objs), "-o", str(tmp)], "link")
    os.replace(tmp, dest)  # written whole, then renamed
    return time.perf_counter() - t0


def build(root: Path = REPO, *, native: bool = True, openmp: bool = True, opt: str | None = None) -> dict:
    """Build the kernels of the tree at ``root`` in place.

    Parameters
    ----------
    root : path-like
        Repository root (holds ``turbsim/_solver``).
    native : bool
        Tune for this machine (``-march=native``), as ``setup.py`` does.
    openmp : bool
        Try OpenMP first (the build falls back to serial when the compiler refuses it).
    opt : str, optional
        Replace ``-O3`` (``"-O0"`` for a fast build that is only to be imported and run
        briefly, e.g. in a dry run).

    Returns
    -------
    dict
        ``path`` of the extension, ``openmp`` (built with it), ``flags``, ``cython_s``,
        ``compile_s`` [s], ``compiler``, ``openmp_error`` (why the OpenMP build failed, or None).

    Raises
    ------
    BuildError
        Cython or the compiler failed (without OpenMP too).
    """
    root = Path(root).resolve()
    flags = list(BASE_FLAGS) + (NATIVE_FLAGS if native else [])
    if opt:
        flags[0] = opt
    c_file, cython_s = cythonize(root)
    sources = [c_file] + c_sources(root)
    dest = root / SOLVER / (MODULE + sysconfig.get_config_var("EXT_SUFFIX"))
    omp_error = None
    with tempfile.TemporaryDirectory(prefix="turbsim-build-") as tmp:
        if openmp:
            try:
                dt = compile_and_link(root, sources, flags + OPENMP_FLAGS, True, Path(tmp), dest)
                dt += _build_amr(root, flags + OPENMP_FLAGS, True, Path(tmp))
                return dict(path=str(dest), openmp=True, flags=flags + OPENMP_FLAGS, cython_s=cython_s,
                            compile_s=dt, compiler=" ".join(compiler()), openmp_error=None)
            except BuildError as exc:
                omp_error = str(exc).splitlines()[0]
                log.warning("the OpenMP build failed (%s); building without OpenMP", omp_error)
        dt = compile_and_link(root, sources, flags, False, Path(tmp), dest)
        dt += _build_amr(root, flags, False, Path(tmp))
    return dict(path=str(dest), openmp=False, flags=flags, cython_s=cython_s, compile_s=dt,
                compiler=" ".join(compiler()), openmp_error=omp_error)


def _build_amr(root: Path, flags: list[str], openmp: bool, workdir: Path) -> float:
    """Build the AMR-lite extension (when the tree has it) with the same flags. Returns the time [s]."""
    if not (root / SOLVER / f"{AMR_MODULE}.pyx").is_file():
        return 0.0
    sub = workdir / AMR_MODULE
    sub.mkdir(exist_ok=True)
    c_file, dt = cythonize(root, AMR_MODULE, out_dir=sub)   # Cython's output stays out of the tree
    dest = root / SOLVER / (AMR_MODULE + sysconfig.get_config_var("EXT_SUFFIX"))
    sources = [c_file] + [root / SOLVER / name for name in AMR_SOURCES]
    return dt + compile_and_link(root, sources, flags, openmp, sub, dest)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=REPO, help="repository root to build in place (default: this one)")
    ap.add_argument("--no-openmp", action="store_true", help="build serial code (no OpenMP)")
    ap.add_argument("--portable", action="store_true", help="no -march=native")
    ap.add_argument("--opt-level", choices=("0", "1", "2", "3"), default="3",
                    help="optimisation level (-ON); below 3 only for a fast build that is run briefly (a dry run)")
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every command")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not (args.root / SOLVER / f"{MODULE}.pyx").is_file():
        ap.error(f"{args.root} holds no {SOLVER / (MODULE + '.pyx')}")
    try:
        info = build(args.root, native=not args.portable, openmp=not args.no_openmp, opt=f"-O{args.opt_level}")
    except BuildError as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(info))
    else:
        print(f"built {info['path']} (OpenMP {'on' if info['openmp'] else 'off'}; cython {info['cython_s']:.1f} s, "
              f"compile and link {info['compile_s']:.1f} s; {info['compiler']} {' '.join(info['flags'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Build the native kernels of turbsim.

The hot loops live in ``turbsim/_solver/kernels.c`` and the headers it includes (plain C99,
no Python objects; ``kernels.h`` maps them) and are wrapped by the Cython module
``turbsim/_solver/_kernels.pyx``. They are compiled with
``-O3`` and OpenMP when the compiler supports it; without OpenMP the same code builds serial.
"""
import glob
import os
import sys
import tempfile
import subprocess
import sysconfig

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup


def _compiler_accepts(flags):
    """Return True when the C compiler builds and links a trivial OpenMP program with *flags*."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cc = cc.split()
    src = "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.c")
        with open(path, "w") as fh:
            fh.write(src)
        try:
            res = subprocess.run(cc + [path, *flags, "-o", os.path.join(tmp, "t")],
                                 capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return False
        return res.returncode == 0


compile_args = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]
link_args = []
macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
if sys.platform != "win32":
    if os.environ.get("TURBSIM_NO_OPENMP") != "1" and _compiler_accepts(["-fopenmp"]):
        compile_args.append("-fopenmp")
        link_args.append("-fopenmp")
        macros.append(("TURBSIM_OPENMP", "1"))
    if os.environ.get("TURBSIM_PORTABLE") != "1":
        # Tune for the build machine unless a portable wheel is requested.
        compile_args.append("-march=native")

extensions = [
    Extension(
        "turbsim._solver._kernels",
        sources=["turbsim/_solver/_kernels.pyx", "turbsim/_solver/kernels.c",
                 "turbsim/_solver/modes.c"],
        include_dirs=[np.get_include(), "turbsim/_solver"],
        depends=sorted(glob.glob("turbsim/_solver/*.h")),  # rebuild when a header changes
        extra_compile_args=compile_args,
        extra_link_args=link_args,
        define_macros=macros,
    ),
]
amr_extension = Extension(   # AMR-lite's kernels; its Cython output goes under build/
    "turbsim._solver._amr",
    sources=["turbsim/_solver/_amr.pyx", "turbsim/_solver/amr.c"],
    include_dirs=[np.get_include(), "turbsim/_solver"],
    depends=["turbsim/_solver/amr.h"],
    extra_compile_args=compile_args,
    extra_link_args=link_args,
    define_macros=macros,
)

directives = {"boundscheck": False, "wraparound": False}
setup(ext_modules=cythonize(extensions, language_level=3, compiler_directives=directives)
      + cythonize([amr_extension], language_level=3, compiler_directives=directives,
                  build_dir="build"))

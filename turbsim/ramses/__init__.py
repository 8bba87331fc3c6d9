"""RAMSES I/O: read RAMSES outputs, write RAMSES initial conditions.

Three layers, as in yt's RAMSES frontend but in one small package:

* :mod:`.format`: what the files contain (info file, hydro descriptor, record layouts),
* :mod:`.records`: how Fortran records are read (markers checked, vectorised),
* :mod:`.units`: code units and field dimensions,

with :mod:`.reader` (leaf cells, uniform cubes, column densities) and :mod:`.writer`
(grafic initial conditions + namelist, loading the shared ``.npz`` ICs) on top;
:mod:`.nml` reads namelists back. The cross-checks against turbsim are
:mod:`.crosscheck` (uniform runs) and :mod:`.amrcheck` (AMR runs, with AMR-lite).

Public API
----------
open(path, cpus=None) -> RamsesDataset
RamsesFormatError
RamsesRun, run_from_config(config), namelist(run)
write_ic(directory, density, velocity, run), write_ic_from_config(directory, config)
load_ic(path) -> InitialConditions
"""
from __future__ import annotations

from .format import RamsesFormatError
from .reader import RamsesDataset, UniformCube, open  # noqa: A004
from .writer import (RAMSES_GAMMA, InitialConditions, RamsesRun, load_ic, namelist,
                     run_from_config, write_ic, write_ic_from_config)

__all__ = ["open", "RamsesDataset", "UniformCube", "RamsesFormatError", "RAMSES_GAMMA",
           "InitialConditions", "RamsesRun", "load_ic", "namelist", "run_from_config",
           "write_ic", "write_ic_from_config"]

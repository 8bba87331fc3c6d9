"""turbsim: turbulent molecular-cloud simulations and the column-density maps they make.

Public API
----------
SimConfig
    Frozen, validated parameters of one simulation.
simulate(config, outputs=None, threads=None)
    Run one simulation from its initial conditions; returns a :class:`SimResult`.
__version__
    The package version (defined once, in :mod:`turbsim._version`).

Public modules, by layer (each imports only the layers above it)
----------------------------------------------------------------
ground
    :mod:`turbsim.units` (physical constants, code units), :mod:`turbsim.atomic`
    (write to a temporary name, then rename), :mod:`turbsim.spectra` (velocity power
    spectra), :mod:`turbsim.exact` (exact Riemann solutions), :mod:`turbsim.validate`
    (field checks), :mod:`turbsim.console` (command-line parser, progress).
physics
    :mod:`turbsim.config` (:class:`SimConfig`), :mod:`turbsim.ic` (initial velocity
    field), :mod:`turbsim.solver` (the native isothermal Euler solver),
    :mod:`turbsim.observe` (projections, log column density, flips, quadrant cuts).
data
    :mod:`turbsim.dataset` (the HDF5 ensemble format: writer, verifier, lazy reader),
    :mod:`turbsim.ensemble_plan` (ensemble configurations, presets, the plan of
    simulations), :mod:`turbsim.ramses` (RAMSES outputs and initial conditions).
one trip
    :mod:`turbsim.simulate` (one config in, one result out), :mod:`turbsim.stream`
    (one planned simulation as a record; live simulations as a generator).
engines
    :mod:`turbsim.parallel` (process pools, Dask, worker set-up).
commands
    :mod:`turbsim.generate` (``python -m turbsim.generate``: ensembles to HDF5),
    :mod:`turbsim.compare` (``python -m turbsim.compare``: turbsim against RAMSES).

``import turbsim`` (or any data-layer module) does not load the native solver: ``simulate``
and ``SimResult`` are imported on first use.
"""
from __future__ import annotations

import importlib as _importlib
import sys as _sys
import types as _types

from ._version import __version__
from .config import SimConfig

__all__ = ["SimConfig", "simulate", "SimResult", "__version__"]

_LAZY = {"simulate": "turbsim.simulate", "SimResult": "turbsim.simulate"}
"""Names loaded on first use (their module imports the native solver)."""


def __getattr__(name: str):
    """Import ``simulate`` and ``SimResult`` on first access."""
    if name in _LAZY:
        return getattr(_importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'turbsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(_types.ModuleType):
    """The package module: ``turbsim.simulate`` stays the function, not its module.

    Importing the submodule ``turbsim.simulate`` (from anywhere) makes the import system
    set it as an attribute of the package; the function of the same name takes its place.
    """

    def __setattr__(self, name: str, value) -> None:
        if name == "simulate" and isinstance(value, _types.ModuleType):
            value = value.simulate
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package

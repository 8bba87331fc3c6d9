"""turbsim: turbulent molecular-cloud simulations and the column-density maps they make.

Public API
----------
SimConfig
    Frozen, validated parameters of one simulation.
simulate(config, outputs=None, threads=None)
    Run one simulation from its initial conditions; returns a :class:`SimResult`.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .config import SimConfig  # noqa: E402
# The function shadows its module's name on the package on purpose: `turbsim.simulate(...)`.
from .simulate import SimResult, simulate  # noqa: E402

__all__ = ["SimConfig", "simulate", "SimResult", "__version__"]

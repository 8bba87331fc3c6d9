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

__all__ = ["SimConfig", "simulate", "SimResult", "__version__"]


def __getattr__(name):
    # Lazy import keeps `import turbsim` light and free of import cycles.
    if name in ("simulate", "SimResult"):
        from . import simulate as _sim
        return getattr(_sim, name)
    raise AttributeError(f"module 'turbsim' has no attribute {name!r}")

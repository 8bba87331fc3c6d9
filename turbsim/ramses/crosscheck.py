"""Cross-validation of turbsim's solver against a RAMSES snapshot.

turbsim's solver is started from the initial condition RAMSES read and evolved to the
snapshot's time with the scheme RAMSES used: local Lax-Friedrichs fluxes, first order or
MUSCL-Hancock with the same limiter and Courant number, RAMSES's wave speed
``sqrt(gamma) c_s`` (its isothermal gas is an adiabatic step with index ``gamma``, 1.0001 in
the shared runs, followed by a temperature reset) and RAMSES's time-step rule. RAMSES
writes a snapshot at the first coarse step at or after the requested time, so the target
time is the snapshot's own time, read from its info file.

The density difference is measured against the signal, i.e. the density fluctuations:
``||rho_turbsim - rho_ramses||_1 / ||rho_ramses - rho_0||_1`` with ``rho_0`` the mean
initial density. At 0.5 Myr the fluctuations are only a few percent of ``rho_0``, so a
plain relative difference would say little.

Scheme parameters are taken from ``namelist.txt`` in the output folder when RAMSES left
one there (``slope_type``, ``courant_factor``, ``scheme``, ``riemann``); arguments override.
"""
from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import solver, spectra
from .reader import open as open_output
from .writer import load_ic

log = logging.getLogger(__name__)

SLOPE_TYPES = {0: ("first", "minmod"), 1: ("muscl", "minmod"), 2: ("muscl", "moncen")}


@dataclass(frozen=True)
class CrossCheck:
    """Result of :func:`cross_validate`.

    Attributes
    ----------
    output : str
        The RAMSES output folder.
    time : float
        Snapshot time [code units of the run].
    scheme, limiter : str
        Scheme used for turbsim.
    courant, gamma : float
        Courant number and the adiabatic index of the wave speed.
    steps : int
        turbsim's time steps.
    diff_over_signal : float
        ``||rho_t - rho_r||_1 / ||rho_r - rho_0||_1``.
    max_abs_diff : float
        ``max |rho_t - rho_r|`` [code density].
    max_rel_diff : float
        ``max |rho_t - rho_r| / rho_r``.
    signal : float
        ``mean |rho_r - rho_0|`` [code density].
    pdf_edges, pdf_ramses, pdf_turbsim : list of float
        Histograms (probability density) of ``ln(rho / rho_0)``.
    k, power_ramses, power_turbsim : list of float
        Per-mode power spectra of the column density along z, normalised by the mean.
    """

    output: str
    time: float
    scheme: str
    limiter: str
    courant: float
    gamma: float
    steps: int
    diff_over_signal: float
    max_abs_diff: float
    max_rel_diff: float
    signal: float
    pdf_edges: list = field(repr=False)
    pdf_ramses: list = field(repr=False)
    pdf_turbsim: list = field(repr=False)
    k: list = field(repr=False)
    power_ramses: list = field(repr=False)
    power_turbsim: list = field(repr=False)

    def to_dict(self) -> dict:
        """JSON-friendly dict."""
        return asdict(self)


@dataclass(frozen=True)
class _Fields:
    rho_ramses: np.ndarray
    rho_turbsim: np.ndarray
    rho0: float


def read_namelist(output) -> dict:
    """Scheme parameters from ``namelist.txt`` in a RAMSES output folder, if present.

    Returns
    -------
    dict
        Any of ``slope_type`` (int), ``courant_factor`` (float), ``scheme`` and ``riemann``
        (str) found; empty when there is no namelist.
    """
    path = Path(output) / "namelist.txt"
    if not path.is_file():
        return {}
    text = path.read_text(errors="replace")
    found = {}
    for key, cast in (("slope_type", int), ("courant_factor", float), ("scheme", str),
                      ("riemann", str)):
        m = re.search(rf"^\s*{key}\s*=\s*'?([^'\s,!/]+)'?", text, re.IGNORECASE | re.MULTILINE)
        if m:
            try:
                found[key] = cast(m.group(1).replace("d", "e").replace("D", "e")
                                  if cast is float else m.group(1))
            except ValueError:
                log.warning("%s: cannot read %s = %r", path, key, m.group(1))
    return found


def scheme_from_namelist(nml: dict, scheme=None, limiter=None, courant=None):
    """Combine namelist values and explicit choices into (scheme, limiter, courant)."""
    if nml.get("riemann", "llf").lower() != "llf":
        raise ValueError(f"RAMSES used riemann='{nml['riemann']}'; turbsim implements 'llf' only")
    if nml.get("scheme", "muscl").lower() != "muscl":
        raise ValueError(f"RAMSES used scheme='{nml['scheme']}'; turbsim matches 'muscl' only")
    st_scheme, st_limiter = SLOPE_TYPES.get(nml.get("slope_type", 1), (None, None))
    if st_scheme is None:
        raise ValueError(f"RAMSES slope_type={nml['slope_type']} has no turbsim equivalent (0, 1, 2)")
    return (scheme or st_scheme, limiter or st_limiter,
            float(courant if courant is not None else nml.get("courant_factor", 0.8)))


def _pdf(rho, rho0, edges):
    h, _ = np.histogram(np.log(rho / rho0), bins=edges, density=True)
    return h


def cross_validate(output, ic, *, scheme=None, limiter=None, courant=None, threads=None,
                   return_fields=False):
    """Run turbsim from a RAMSES initial condition to a RAMSES snapshot and compare.

    Parameters
    ----------
    output : str or os.PathLike
        RAMSES ``output_NNNNN`` folder (uniform grid, or AMR compared at levelmax).
    ic : str or os.PathLike
        The ``.npz`` initial condition RAMSES started from (see :func:`load_ic`).
    scheme : {"first", "muscl"}, optional
        Overrides the namelist / default (MUSCL-Hancock).
    limiter : {"minmod", "moncen"}, optional
        Overrides the namelist / default (minmod).
    courant : float, optional
        Overrides the namelist / default (0.8).
    threads : int, optional
        Solver threads.
    return_fields : bool
        Also return the two density cubes (for plotting).

    Returns
    -------
    CrossCheck, or (CrossCheck, rho_ramses, rho_turbsim)
    """
    ds = open_output(output)
    init = load_ic(ic)
    scheme, limiter, courant = scheme_from_namelist(read_namelist(ds.path), scheme, limiter, courant)
    n = init.density.shape[0]
    level = int(round(np.log2(n)))
    if 2**level != n:
        raise ValueError(f"{ic}: IC size {n} is not a power of two")
    if ds.levelmax != level:
        log.warning("%s: levelmax %d differs from the IC level %d; comparing at the IC level",
                    ds.path, ds.levelmax, level)
    rho_r = ds.to_uniform(level).density
    res = solver.evolve(init.density, init.velocity, dx=init.dx, cs=init.cs, t_end=ds.time,
                        scheme=scheme, limiter=limiter, courant=courant, gamma=ds.gamma,
                        ramses_dt=True, threads=threads)
    rho_t = res.rho
    rho0 = float(init.density.mean())
    diff = np.abs(rho_t - rho_r)
    signal = np.abs(rho_r - rho0)
    lo = min(rho_r.min(), rho_t.min()) / rho0
    hi = max(rho_r.max(), rho_t.max()) / rho0
    edges = np.linspace(np.log(lo), np.log(hi), 41)
    k, p_r = spectra.power_spectrum(rho_r.sum(axis=2) / rho_r.sum(axis=2).mean())
    _, p_t = spectra.power_spectrum(rho_t.sum(axis=2) / rho_t.sum(axis=2).mean())
    check = CrossCheck(
        output=str(ds.path), time=float(ds.time), scheme=scheme, limiter=limiter,
        courant=courant, gamma=float(ds.gamma), steps=res.steps,
        diff_over_signal=float(diff.sum() / signal.sum()),
        max_abs_diff=float(diff.max()), max_rel_diff=float((diff / rho_r).max()),
        signal=float(signal.mean()), pdf_edges=edges.tolist(),
        pdf_ramses=_pdf(rho_r, rho0, edges).tolist(), pdf_turbsim=_pdf(rho_t, rho0, edges).tolist(),
        k=k[1:].tolist(), power_ramses=p_r[1:].tolist(), power_turbsim=p_t[1:].tolist())
    if return_fields:
        return check, rho_r, rho_t
    return check


def plot_cross_check(check: CrossCheck, rho_ramses, rho_turbsim, path):
    """Figure: column density of RAMSES | turbsim | difference, the density PDFs and the
    column-density power spectra. Written atomically to ``path`` (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..atomic import atomic_path

    col_r = rho_ramses.sum(axis=2) / rho_ramses.shape[2]
    col_t = rho_turbsim.sum(axis=2) / rho_turbsim.shape[2]
    fig, ax = plt.subplots(1, 5, figsize=(22, 4.2))
    vmin, vmax = min(col_r.min(), col_t.min()), max(col_r.max(), col_t.max())
    for a, img, title in ((ax[0], col_r, "RAMSES"), (ax[1], col_t, "turbsim")):
        im = a.imshow(img.T, origin="lower", vmin=vmin, vmax=vmax, cmap="magma")
        a.set_title(f"{title}: column density / mean (z)")
        fig.colorbar(im, ax=a, fraction=0.046)
    d = (col_t - col_r).T
    lim = np.abs(d).max() or 1.0
    im = ax[2].imshow(d, origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax[2].set_title(f"turbsim - RAMSES (diff/signal {check.diff_over_signal:.1e})")
    fig.colorbar(im, ax=ax[2], fraction=0.046)
    centres = 0.5 * (np.array(check.pdf_edges[1:]) + np.array(check.pdf_edges[:-1]))
    ax[3].semilogy(centres, check.pdf_ramses, "k-", label="RAMSES")
    ax[3].semilogy(centres, check.pdf_turbsim, "r--", label="turbsim")
    ax[3].set_xlabel(r"$\ln(\rho/\rho_0)$")
    ax[3].set_title("density PDF")
    ax[3].legend()
    ax[4].loglog(check.k, check.power_ramses, "k-", label="RAMSES")
    ax[4].loglog(check.k, check.power_turbsim, "r--", label="turbsim")
    ax[4].set_xlabel("k [2π/L]")
    ax[4].set_title("column-density power per mode")
    ax[4].legend()
    fig.suptitle(f"{Path(check.output).parent.name}/{Path(check.output).name}: t = {check.time:.4f}, "
                 f"{check.scheme} ({check.limiter}), Courant {check.courant}, {check.steps} steps")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return Path(path)

"""Turbulent initial conditions: a Gaussian random velocity field on a uniform density.

Physics layer: imports numpy and the ground layer only.

Units
-----
Code units throughout: box side ``L = 1``, isothermal sound speed ``c_s = 1`` (so velocities
are Mach numbers), mean density ``rho_0 = 1``. Multiply velocities by ``c_s`` [cm/s] (or by
RAMSES's ``cs_code``) to convert.

Spectrum convention
-------------------
Wavenumbers are integers in units of the fundamental ``2 pi / L``. Every Fourier mode of
the velocity has the expected power ``<|v_k|^2> ∝ |k|^-n`` (*per-mode* power; the solenoidal
projection removes a fixed fraction of it, independent of ``k``). The shell-integrated
spectrum is then ``E(k) ∝ 4 pi k^2 k^-n = k^(2-n)``: ``n = 11/3`` gives Kolmogorov's
``E ∝ k^-5/3``, ``n = 4`` Burgers' ``E ∝ k^-2``. ``k = 0`` carries no power (zero mean).

Helmholtz projection
--------------------
Each mode is projected with the solenoidal fraction ``zeta`` as in the turbulence forcing of
Federrath et al. (2010):

    v_k -> zeta P_perp v_k + (1 - zeta) P_par v_k,  P_perp = I - k k^T / k^2,  P_par = k k^T / k^2,

so ``zeta = 1`` is divergence-free, ``zeta = 0`` curl-free; a mixture scales the solenoidal
and compressive parts by ``zeta`` and ``1 - zeta`` (power ratio
``2 zeta^2 : (1 - zeta)^2`` for isotropic noise).

Normalisation
-------------
The real field is shifted to zero mean per component and scaled so that its 3D rms
``sqrt(<vx^2 + vy^2 + vz^2>)`` equals ``mach`` exactly in float64 (to the last bits); the
float32 output is that field rounded, so its rms is ``mach`` to about ``1e-7`` relative.

Two ways to draw the random modes (``method``)
----------------------------------------------
``"fourier"`` (default)
    Complex Gaussian modes are drawn directly in k-space from
    ``numpy.random.SeedSequence(seed)``, by octave shells of ``m = max(|kx|, |ky|, |kz|)``:
    shell ``j`` holds ``K/2 < m <= K`` with ``K = 2^j`` and has its own generator,
    ``SeedSequence(seed, spawn_key=(j,))`` (what ``spawn`` would give). Within a shell the
    draws go slab by slab, ``kx = -K .. K``, and within a slab in row-major ``(ky, kz)`` order
    over the whole slab of the shell, whether or not the grid holds those modes. So a mode's
    random number does not depend on the grid size. The field is the real part of the
    Fourier series of these modes (equivalently, mode ``k`` gets ``(F_k + conj F_-k) / 2``)
    sampled at the cell centres ``x_i = (i + 1/2) / N``. Hence a 64^3 and a 128^3 field of
    the same seed share every Fourier coefficient with all ``|k_i| <= 31``, up to one
    overall factor (each field is normalised to its own rms): the same large scales, at the
    same place in the box. The Nyquist planes (``|k_i| = N/2``) are left empty, so the
    field is exactly divergence-free (``zeta = 1``) spectrally. Any ``cells >= 4`` works
    (even or odd, powers of 2 or not). Memory: about 1.5 complex cubes of modes plus the
    float64 output, ~1 GB at 256^3.
``"white_noise"``
    The convention of the shared RAMSES runs: real white noise
    ``numpy.random.default_rng(seed).standard_normal((3, N, N, N))`` Fourier transformed,
    multiplied by ``|k|^(-n/2)``, ``k = 0`` zeroed, projected, inverse transformed (real
    part), mean removed, rms scaled. All modes up to Nyquist are kept; on the Nyquist planes
    taking the real part averages the projection of ``k`` and of its alias, so only the
    non-Nyquist modes are exactly projected. With ``seed=1, n=11/3, cells=64, mach=1.41``,
    ``(velocity_field(...) * cs_code).astype(float32)`` reproduces ``vx, vy, vz`` of the
    shared ``kolmo64`` initial condition bit for bit (likewise ``burgers64``, seed 2, n = 4,
    and the 32^3 ``amr`` case, seed 3). The large-scale modes change with the grid size.

References
----------
Federrath, C., Roman-Duval, J., Klessen, R. S., Schmidt, W., Mac Low, M.-M. (2010),
A&A 512, A81: "Comparing the statistics of interstellar turbulence in simulations and
observations", section 2.1 (the projection operator with solenoidal weight zeta).
"""
from __future__ import annotations

import logging
import math
import numbers
import time

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["velocity_field", "initial_conditions", "METHODS"]

METHODS = ("fourier", "white_noise")
"""Names of the ways to draw the random modes (see the module docstring)."""


# -- argument checks ----------------------------------------------------------------------
def _check_args(cells, n, solenoidal, method):
    if isinstance(cells, bool) or not isinstance(cells, numbers.Integral) or cells < 4:
        raise ValueError(f"cells = {cells!r} must be an integer >= 4")
    if isinstance(n, bool) or not isinstance(n, numbers.Real) or not math.isfinite(n):
        raise ValueError(f"spectral index n = {n!r} must be a finite real number")
    if (isinstance(solenoidal, bool) or not isinstance(solenoidal, numbers.Real)
            or not 0.0 <= solenoidal <= 1.0):
        raise ValueError(f"solenoidal = {solenoidal!r} must be a number in [0, 1]")
    if method not in METHODS:
        raise ValueError(f"method = {method!r} is not one of {', '.join(map(repr, METHODS))}")


def _check_dtype(dtype):
    """``numpy.dtype`` of ``dtype``, which must name float64 or float32."""
    try:
        out_type = np.dtype(dtype) if dtype is not None else None
    except TypeError:
        out_type = None
    if out_type is None or out_type.name not in ("float64", "float32"):
        raise ValueError(f"dtype = {dtype!r} must be float64 or float32")
    return out_type


def _seed_sequence(seed):
    """The root ``SeedSequence`` of ``seed`` (an int >= 0 or a ``SeedSequence``, not mutated)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed = {seed!r} must be a non-negative integer or a numpy SeedSequence")
    return np.random.SeedSequence(int(seed))


def _shell_generator(root, j):
    """Generator of octave shell ``j``: the ``j``-th spawned child of ``root``, built
    explicitly so that ``root`` is not mutated."""
    child = np.random.SeedSequence(root.entropy, spawn_key=tuple(root.spawn_key) + (j,),
                                   pool_size=root.pool_size)
    return np.random.default_rng(child)


# -- drawing the modes --------------------------------------------------------------------
def _fourier_noise(cells, root):
    """Complex white noise in the ``rfftn`` layout, resolution-independent (``"fourier"``).

    Returns ``H`` of shape (3, N, N, N//2 + 1) complex128 with ``H_k = (F_k + conj F_-k) / 2``
    for independent standard complex Gaussians ``F_k`` (real and imaginary parts N(0, 1)),
    zero at ``k = 0`` and on the Nyquist planes."""
    kmax = (cells - 1) // 2  # largest |k_i| kept on each axis (Nyquist -N/2 dropped)
    noise = np.zeros((3, cells, cells, cells // 2 + 1), dtype=np.complex128)
    big, j = 1, 0
    while big // 2 + 1 <= kmax:  # shell j = modes with big/2 < max|k_i| <= big, big = 2^j
        rng = _shell_generator(root, j)
        side = np.arange(-big, big + 1)
        ring = np.maximum(np.abs(side)[:, None], np.abs(side)[None, :])
        edge = min(big, kmax)  # the slab's (ky, kz) in [-edge, edge] are on the grid
        window = slice(big - edge, big + edge + 1)
        slab = np.empty((3, 2 * big + 1, 2 * big + 1), dtype=np.complex128)
        for kx in side:
            member = np.maximum(ring, abs(kx)) > big // 2
            z = rng.standard_normal((np.count_nonzero(member), 3, 2))
            if abs(kx) > kmax:
                continue  # drawn (keeps the stream canonical) but not on this grid
            slab.fill(0.0)
            slab[:, member] = 0.5 * z.view(np.complex128)[..., 0].T  # (re, im) pairs
            on = slab[:, window, window]  # indexed [c, ky + edge, kz + edge]
            # F_k / 2 goes to kz >= 0; conj(F_k) / 2 to -k for kz <= 0
            _add_half(noise[:, kx % cells], on[:, :, edge:], edge)
            _add_half(noise[:, -kx % cells], np.conj(on[:, ::-1, edge::-1]), edge)
        big, j = 2 * big, j + 1
    return noise


def _add_half(target, block, edge):
    """``target[:, ky % N, kz] += block[:, ky + edge, kz]`` for ``|ky|, kz <= edge``."""
    target[:, :edge + 1, :edge + 1] += block[:, edge:]
    target[:, target.shape[1] - edge:, :edge + 1] += block[:, :edge]


def _white_noise(cells, root):
    """``rfftn`` of ``default_rng(root).standard_normal((3, N, N, N))`` (``"white_noise"``;
    ``default_rng(SeedSequence(s))`` is ``default_rng(s)``).

    The three components are drawn one after the other, which consumes the generator
    exactly as one ``(3, N, N, N)`` draw does (checked against the shared RAMSES ICs)."""
    rng = np.random.default_rng(root)
    noise = np.empty((3, cells, cells, cells // 2 + 1), dtype=np.complex128)
    for c in range(3):
        noise[c] = np.fft.rfftn(rng.standard_normal((cells, cells, cells)))
    return noise


def _filter(modes, n, solenoidal, centred):
    """Multiply modes by ``|k|^(-n/2)`` and Helmholtz-project them, in place, slab by slab.

    With ``centred``, also multiply by ``exp(i pi (kx + ky + kz) / N)``: the inverse FFT then
    samples the field's Fourier series at the cell centres ``(i + 1/2) / N`` rather than at
    ``i / N``, so grids of different sizes sample the same continuous field.

    ``modes`` is (3, N, N, N//2 + 1) in the ``rfftn`` layout. On a Nyquist plane the
    wavevector of a real field is ambiguous (``k`` and its alias are the same coefficient);
    there the projection uses ``(P(k) + P(alias)) / 2``, which is what taking the real part of
    a full complex inverse transform does: the products ``k_i k_j`` between one Nyquist and
    one non-Nyquist component cancel."""
    cells = modes.shape[1]
    half = cells / 2.0
    ky = (np.fft.fftfreq(cells) * cells)[:, None]
    kz = (np.fft.rfftfreq(cells) * cells)[None, :]
    if cells % 2 == 0:
        kz[0, -1] = -half  # the Nyquist wavenumber is -N/2 on every axis (fftfreq's sign)
    ky_nyq = np.where(np.abs(ky) == half, ky, 0.0)
    kz_nyq = np.where(np.abs(kz) == half, kz, 0.0)
    ky_reg, kz_reg = ky - ky_nyq, kz - kz_nyq
    zeta = float(solenoidal)
    for ix, kx in enumerate(np.fft.fftfreq(cells) * cells):
        kx_nyq = kx if abs(kx) == half else 0.0
        kx_reg = kx - kx_nyq
        k2 = kx ** 2 + ky ** 2 + kz ** 2
        with np.errstate(divide="ignore"):
            amp = np.sqrt(k2) ** (-n / 2.0)
        if ix == 0:
            amp[0, 0] = 0.0
            k2[0, 0] = 1.0
        if centred:
            amp = amp * np.exp(1j * np.pi / cells * (kx + ky + kz))
        v = modes[:, ix] * amp
        dot_reg = kx_reg * v[0] + ky_reg * v[1] + kz_reg * v[2]
        dot_nyq = kx_nyq * v[0] + ky_nyq * v[1] + kz_nyq * v[2]
        for c, (k_reg, k_nyq) in enumerate(((kx_reg, kx_nyq), (ky_reg, ky_nyq), (kz_reg, kz_nyq))):
            par = (k_reg * dot_reg + k_nyq * dot_nyq) / k2
            # zeta (v - par) + (1 - zeta) par; for zeta = 1 this is exactly v - par
            modes[c, ix] = zeta * v[c] + (1.0 - 2.0 * zeta) * par
    return modes


def _modes(cells, n, seed, solenoidal, method):
    """Filtered modes (3, N, N, N//2 + 1), unnormalised: the field is their ``irfftn``."""
    root = _seed_sequence(seed)
    if method == "fourier":
        return _filter(_fourier_noise(cells, root), n, solenoidal, centred=True)
    return _filter(_white_noise(cells, root), n, solenoidal, centred=False)


def _normalise(v, mach):
    """Remove each component's mean and scale to 3D rms ``mach``, in place."""
    for c in range(v.shape[0]):
        v[c] -= v[c].mean()
    square = v[0] ** 2
    for c in range(1, v.shape[0]):
        square += v[c] ** 2
    rms = math.sqrt(float(np.mean(square)))
    if rms == 0.0:
        raise ValueError(f"the velocity field of {v.shape[1]}^3 cells has no power to normalise")
    v *= mach / rms
    return v


# -- public API ---------------------------------------------------------------------------
def velocity_field(cells, n, seed, *, mach=1.0, solenoidal=1.0, method="fourier",
                   dtype=np.float64):
    """Gaussian random velocity field with per-mode power ``|v_k|^2 ∝ k^-n``.

    Parameters
    ----------
    cells : int
        Cells per side ``N`` of the periodic cube (>= 4; any size, powers of 2 not needed).
    n : float
        Spectral index of the per-mode power (11/3 Kolmogorov, 4 Burgers); the shell
        spectrum is ``E(k) ∝ k^(2-n)``.
    seed : int or numpy.random.SeedSequence
        Random seed; the same seed always gives the same field.
    mach : float
        3D rms Mach number ``sqrt(<vx^2 + vy^2 + vz^2>)`` (= rms velocity in units of
        ``c_s``), >= 0. Default 1.
    solenoidal : float
        Solenoidal fraction ``zeta`` in [0, 1] of the Helmholtz projection
        ``zeta P_perp + (1 - zeta) P_par``. Default 1 (divergence-free).
    method : {"fourier", "white_noise"}
        ``"fourier"``: modes drawn in k-space, shared across resolutions (default).
        ``"white_noise"``: the shared RAMSES runs' convention (bit-for-bit reproduction).
    dtype : {numpy.float64, numpy.float32} or str
        Output type. The field is always computed in float64 and rounded at the end.

    Returns
    -------
    ndarray, shape (3, N, N, N)
        Velocity in code units (``c_s = 1``), indexed ``[component, ix, iy, iz]``; cell
        ``ix`` has centre ``x = (ix + 0.5) / N`` (box = 1). Each component has zero mean;
        the 3D rms equals ``mach`` (exactly in float64, to float32 rounding in float32).

    Examples
    --------
    >>> import numpy as np
    >>> v = velocity_field(32, 11 / 3, seed=1, mach=1.41)
    >>> v.shape, round(float(np.sqrt((v ** 2).sum(axis=0).mean())), 12)
    ((3, 32, 32, 32), 1.41)
    >>> from turbsim.spectra import spectral_divergence
    >>> spectral_divergence(v) < 1e-12
    True
    """
    _check_args(cells, n, solenoidal, method)
    if (isinstance(mach, bool) or not isinstance(mach, numbers.Real)
            or not (math.isfinite(mach) and mach >= 0)):
        raise ValueError(f"mach = {mach!r} must be a finite number >= 0")
    out_type = _check_dtype(dtype)
    cells = int(cells)
    start = time.perf_counter()
    modes = _modes(cells, float(n), seed, solenoidal, method)
    v = np.empty((3, cells, cells, cells), dtype=np.float64)
    for c in range(3):
        v[c] = np.fft.irfftn(modes[c], s=(cells, cells, cells), axes=(0, 1, 2))
    del modes
    _normalise(v, float(mach))
    logger.debug("velocity_field: %d^3 cells, n=%g, method=%s in %.3f s",
                 cells, n, method, time.perf_counter() - start)
    return v.astype(out_type, copy=False)


def initial_conditions(config):
    """Uniform density and turbulent velocity of a simulation, in code units.

    Parameters
    ----------
    config : turbsim.SimConfig
        Uses ``cells``, ``n``, ``seed``, ``mach``, ``solenoidal``, ``ic`` (method) and
        ``dtype``.

    Returns
    -------
    rho : ndarray, shape (N, N, N)
        Density in units of the mean density (all 1).
    velocity : ndarray, shape (3, N, N, N)
        Velocity in units of the sound speed (see :func:`velocity_field`).

    Examples
    --------
    >>> from turbsim.config import SimConfig
    >>> rho, v = initial_conditions(SimConfig(cells=16, seed=3, dtype="float32"))
    >>> rho.shape, v.shape, v.dtype.name, float(rho.mean())
    ((16, 16, 16), (3, 16, 16, 16), 'float32', 1.0)
    """
    velocity = velocity_field(config.cells, config.n, config.seed, mach=config.mach,
                              solenoidal=config.solenoidal, method=config.ic,
                              dtype=config.dtype)
    rho = np.ones((config.cells,) * 3, dtype=velocity.dtype)
    return rho, velocity

"""Turbulent initial conditions: a Gaussian random velocity field on a uniform density.

Physics layer: imports numpy, the ground layer and :mod:`turbsim.config` (the method names).

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
``2 zeta^2 : (1 - zeta)^2`` for isotropic noise). ``"white_noise"`` projects its noise so;
``"fourier"`` draws the projected modes directly, in the basis ``(e1, e2, k/|k|)``
(below), which gives the same Gaussian statistics with two thirds of the random numbers.

Normalisation
-------------
The real field is shifted to zero mean per component and scaled so that its 3D rms
``sqrt(<vx^2 + vy^2 + vz^2>)`` equals ``mach`` exactly in float64 (to the last bits); the
float32 output is that field rounded, so its rms is ``mach`` to about ``1e-7`` relative.

Two ways to draw the random modes (``method``)
----------------------------------------------
``"fourier"`` (default)
    Complex Gaussian modes are drawn directly in k-space from
    ``numpy.random.SeedSequence(seed)``, for the half space ``kz >= 0`` only (the rest
    follows from the field being real), by shells of ``m = max(|kx|, |ky|, |kz|)``: shell 0
    holds ``0 < m <= 8``, shell ``j >= 1`` the octave ``K/2 < m <= K``, ``K = 2^(j+3)``.
    Each shell has two streams, ``PCG64(SeedSequence(seed, spawn_key=(j, 0)))`` for the
    solenoidal and ``(j, 1)`` for the compressive part (what ``spawn`` would give), a stream
    being used only when its weight ``zeta`` or ``1 - zeta`` is not 0. A shell is drawn as
    boxes in a fixed order (``kz > K/2``; then, with ``kz <= K/2``: ``ky > K/2``,
    ``ky < -K/2``, and with ``|ky| <= K/2``: ``kx > K/2``, ``kx < -K/2``; each box split at
    ``kx = 0``, then at ``ky = 0``, negative part first), each box in row-major ``(kx,
    component, ky, kz)`` order over the whole box, whether or not the grid holds those
    modes (rows of ``kx`` off the grid are skipped with ``advance``). So a mode's random
    numbers do not depend on the grid size. Each complex number ``G`` takes one 64-bit word
    (Box-Muller in float32: the top 24 bits give the radius, the low 24 bits the phase), so
    its real and imaginary parts are independent ``N(0, 1)`` to float32 rounding, cut at
    ``5.8 sigma``. The mode is

        v_k = |k|^(-n/2) [zeta (G1 e1 + G2 e2) + (1 - zeta) G3 k/|k|],
        e1 = (-ky, kx, 0) / kp,  e2 = (kx kz, ky kz, -kp^2) / (|k| kp),  kp^2 = kx^2 + ky^2

    (``e1 = x``, ``e2 = y`` on the ``kz`` axis): ``(e1, e2)`` span the plane normal to
    ``k``, so ``P_perp`` of isotropic noise is ``G1 e1 + G2 e2`` in distribution. The
    field's Fourier coefficient (referred to the box origin) is ``v_k`` for ``kz > 0``,
    ``conj(v_-k)`` for ``kz < 0``, and ``(v_k + conj v_-k) / sqrt(2)`` on the plane
    ``kz = 0``: every mode has the same variance, and the field, sampled at the cell
    centres ``x_i = (i + 1/2) / N``, is real. Hence a 64^3 and a 128^3 field of the same
    seed share every Fourier coefficient with all ``|k_i| <= 31`` (to float64 rounding), up
    to one overall factor (each field is normalised to its own rms): the same large scales,
    at the same place in the box. The Nyquist planes (``|k_i| = N/2``) are left empty, so the field is exactly
    divergence-free (``zeta = 1``) spectrally. Any ``cells >= 4`` works (even or odd, powers
    of 2 or not; for other sizes part of the outermost shell's draws is wasted). Memory:
    one complex half cube of modes, ``3 N^2 (N/2 + 1)`` complex128, over which the float64
    field is written (~0.4 GB at 256^3). Time on one core: ~0.1 s at 128^3, half of it the
    inverse FFT.
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

from turbsim._solver import _kernels

from .config import IC_METHODS as METHODS  # the names of the ways to draw the random modes

logger = logging.getLogger(__name__)

__all__ = ["velocity_field", "initial_conditions", "METHODS"]


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


def _shell_generator(root, key):
    """Bit generator of the shell stream ``key`` (a tuple of ints): ``PCG64`` seeded with the
    descendant ``root.spawn(...)`` would give at that key, built explicitly so that ``root``
    is not mutated."""
    child = np.random.SeedSequence(root.entropy, spawn_key=tuple(root.spawn_key) + tuple(key),
                                   pool_size=root.pool_size)
    return np.random.PCG64(child)


# -- "fourier": modes drawn in k-space ----------------------------------------------------
_HALF_BITS = 24
"""Bits of each 64-bit word used for the radius (top bits) and for the phase (low bits)."""

_FIRST_SHELL = 8
"""Outer edge of the first shell of the ``"fourier"`` draws (the shells after it are octaves)."""

_BLOCK = 1 << 14
"""Modes (or cells) per block of the vectorised loops: small enough for the temporaries to
stay in the CPU cache, large enough to amortise the per-call overhead."""


class _Workspace:
    """Flat scratch buffers reused by the blocks of one call, by name.

    Reusing a buffer is much faster than a fresh temporary per block, whose pages the
    allocator returns to the OS and the OS must fault in (zeroed) again."""

    def __init__(self):
        self._buffers = {}

    def __call__(self, name, shape, dtype=np.float64):
        """Buffer ``name`` viewed as ``shape`` (contents undefined; one dtype per name)."""
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size:
            buffer = self._buffers[name] = np.empty(size, dtype)
        return buffer[:size].reshape(shape)


def _unit_normals(words, out, work):
    """Standard complex normals ``G`` (real and imaginary parts ``N(0, 1)``), one per 64-bit
    word, by Box-Muller in float32, into ``out``.

    With ``a`` the top and ``b`` the low 24 bits of a word, ``G = sqrt(-2 ln u) exp(2 pi i
    b / 2^24)``, ``u = 1 - a / 2^24`` in ``(0, 1]``: the radius is cut at ``sqrt(2 ln 2^24)
    = 5.8``. Elementwise, so a word's number never depends on the shape of ``words``.

    Parameters
    ----------
    words : ndarray of uint64
        Random words, any shape.
    out : ndarray of complex128
        Result, the shape of ``words``.
    work : _Workspace
        Scratch buffers.
    """
    unit = np.float32(2.0 ** -_HALF_BITS)
    bits = work("bits", words.shape, np.uint64)
    radius = work("radius", words.shape, np.float32)
    angle = work("angle", words.shape, np.float32)
    np.right_shift(words, np.uint64(64 - _HALF_BITS), out=bits)
    np.copyto(radius, bits, casting="unsafe")  # exact: < 2^24
    radius *= -unit
    radius += np.float32(1.0)
    np.log(radius, out=radius)
    radius *= np.float32(-2.0)
    np.sqrt(radius, out=radius)
    np.bitwise_and(words, np.uint64((1 << _HALF_BITS) - 1), out=bits)
    np.copyto(angle, bits, casting="unsafe")
    angle *= np.float32(2.0 * np.pi) * unit
    cos = work("cos", words.shape, np.float32)
    np.multiply(radius, np.cos(angle, out=cos), out=out.real, dtype=np.float64)
    np.multiply(radius, np.sin(angle, out=angle), out=out.imag, dtype=np.float64)
    return out


def _shell_boxes(half, big):
    """Boxes ``(kx, ky, kz)`` (inclusive ranges, each of one sign in ``kx`` and in ``ky``) that
    tile the half-space shell ``half < max(|kx|, |ky|, |kz|) <= big``, ``kz >= 0``, in their
    drawing order."""
    whole, outer_up, outer_down = (-big, big), (half + 1, big), (-big, -half - 1)
    low, inner = (0, half), (-half, half)
    boxes = []
    for kx, ky, kz in ((whole, whole, outer_up), (whole, outer_up, low),
                       (whole, outer_down, low), (outer_up, inner, low), (outer_down, inner, low)):
        boxes += [(x, y, kz) for x in _split_at_zero(kx) for y in _split_at_zero(ky)]
    return boxes


def _split_at_zero(k_range):
    """The non-empty parts ``k < 0`` and ``k >= 0`` of the inclusive range ``k_range``."""
    first, last = k_range
    return [(a, b) for a, b in ((first, min(last, -1)), (max(first, 0), last)) if a <= b]


def _amplitudes(n, kmax):
    """Tables over the integer ``q = |k|^2 <= 3 kmax^2``: ``|k|^(-n/2)`` and ``|k|^(-n/2-1)``
    (0 at ``q = 0``): looking the amplitudes up is much cheaper than powers per mode."""
    q = np.arange(3 * kmax ** 2 + 1, dtype=np.float64)
    q[0] = 1.0
    tables = np.power(q, -n / 4.0), np.power(q, -(n + 2.0) / 4.0)
    for table in tables:
        table[0] = 0.0
    return tables


def _draw_box(modes, box, generators, weights, tables, work):
    """Draw one box of a shell (see :func:`_shell_boxes`) and write its velocity modes into
    ``modes`` (the ``rfftn`` layout), in place; all the box's words are consumed."""
    cells = modes.shape[1]
    kmax = (cells - 1) // 2
    (x0, x1), ky, kz = box
    ny, nz = (last - first + 1 for first, last in (ky, kz))
    on_y, on_z = ((max(a, -kmax), min(b, kmax)) for a, b in (ky, kz))
    lo, hi = max(x0, -kmax), min(x1, kmax)
    if on_y[0] > on_y[1] or on_z[0] > on_z[1] or lo > hi:  # nothing on the grid
        lo, hi = x1 + 1, x1
    sy, sz = (slice(a - k[0], b - k[0] + 1) for (a, b), k in ((on_y, ky), (on_z, kz)))
    streams = [(gen, c) for gen, c in zip(generators, (2, 1)) if gen is not None]
    for gen, c in streams:
        gen.advance(c * ny * nz * (lo - x0))  # rows off the grid: skipped exactly
    rows = max(1, _BLOCK // (ny * nz))
    for start in range(lo, hi + 1, rows):
        count = min(rows, hi + 1 - start)
        normals = [None, None]
        for part, (gen, c) in enumerate(zip(generators, (2, 1))):
            if gen is not None:
                words = gen.random_raw(c * ny * nz * count).reshape(count, c, ny, nz)[..., sy, sz]
                normals[part] = _unit_normals(words, work(f"g{part}", words.shape, np.complex128),
                                              work)
        # the native kernel forms the modes and stores them into their places in ``modes``
        _kernels.fourier_block(modes, start, on_y[0], on_z[0], normals[0], normals[1],
                               weights[0], *tables)
    for gen, c in streams:
        gen.advance(c * ny * nz * (x1 - hi))


def _make_hermitian(modes):
    """Replace the ``kz = 0`` plane of ``modes`` by ``(v_k + conj v_-k) / sqrt(2)``, in place:
    the Hermitian part, scaled to the variance of the other modes."""
    plane = modes[..., 0]
    mirror = np.roll(plane[:, ::-1, ::-1], 1, axis=(1, 2))  # mirror[c, i, j] = G at -k
    modes[..., 0] = (plane + np.conj(mirror)) * math.sqrt(0.5)
    return modes


def _fourier_modes(cells, n, solenoidal, root):
    """Velocity modes (3, N, N, N//2 + 1) in the ``rfftn`` layout of the ``"fourier"`` method
    (see the module docstring), unnormalised; zero at ``k = 0`` and on the Nyquist planes."""
    kmax = (cells - 1) // 2  # largest |k_i| kept on each axis (Nyquist -N/2 dropped)
    weights = (float(solenoidal), 1.0 - float(solenoidal))
    modes = np.zeros((3, cells, cells, cells // 2 + 1), dtype=np.complex128)
    work, tables = _Workspace(), _amplitudes(n, kmax)
    half, big, j = 0, _FIRST_SHELL, 0
    while half < kmax:  # shell j holds the modes with half < max|k_i| <= big
        generators = [_shell_generator(root, (j, part)) if w > 0 else None
                      for part, w in enumerate(weights)]
        for box in _shell_boxes(half, big):
            _draw_box(modes, box, generators, weights, tables, work)
        half, big, j = big, 2 * big, j + 1
    return _make_hermitian(modes)


# -- "white_noise": the RAMSES convention ---------------------------------------------------
def _white_noise(cells, root):
    """``rfftn`` of ``default_rng(root).standard_normal((3, N, N, N))`` (``"white_noise"``;
    ``default_rng(SeedSequence(s))`` is ``default_rng(s)``).

    The three components are drawn one after the other, which consumes the generator
    exactly as one ``(3, N, N, N)`` draw does (checked against the shared RAMSES ICs)."""
    rng = np.random.default_rng(root)
    noise = np.empty((3, cells, cells, cells // 2 + 1), dtype=np.complex128)
    draw = np.empty((cells, cells, cells))
    for c in range(3):
        np.fft.rfftn(rng.standard_normal(out=draw), out=noise[c])
    return noise


def _filter_block(g, parts, n, zeta, work):
    """Multiply a block of modes by ``|k|^(-n/2)`` and Helmholtz-project it, in place.

    Parameters
    ----------
    g : ndarray, shape (3, ...), complex128
        Modes of the block.
    parts : list of 3-tuples of ndarray
        The wavevector ``(kx, ky, kz)`` of the block, arrays broadcasting to ``g.shape[1:]``,
        split into parts with disjoint nonzero components: ``[k]``, or ``[k_regular,
        k_nyquist]`` on a Nyquist plane, where the projection is averaged over the two
        aliases ``+-N/2`` (the cross terms between the parts cancel).
    n : float
        Spectral index.
    zeta : float
        Solenoidal fraction.
    work : _Workspace
        Scratch buffers.

    Notes
    -----
    Real factors are applied as complex numbers with zero imaginary part: the products
    are the same, and complex-by-complex loops are much faster than mixed ones.
    """
    shape = g.shape[1:]
    k2 = sum(p ** 2 for part in parts for p in part)
    origin = k2 == 0.0
    inv_k2 = np.divide(1.0, k2, out=np.zeros(k2.shape), where=~origin)
    with np.errstate(divide="ignore"):
        amp = np.power(inv_k2, n / 4.0)
    amp[origin] = 0.0
    amp_c, weight = work("amp", shape, np.complex128), work("weight", shape, np.complex128)
    amp_c[...] = amp
    weight[...] = (1.0 - 2.0 * zeta) * inv_k2
    parts = [[p.astype(np.complex128) for p in part] for part in parts]
    term = work("term", shape, np.complex128)
    projected = []
    for i, part in enumerate(parts):  # (1 - 2 zeta) (k . g) / k^2 for this part of k
        dot = np.multiply(g[0], part[0], out=work(f"dot{i}", shape, np.complex128))
        for c in (1, 2):
            dot += np.multiply(g[c], part[c], out=term)
        dot *= weight
        projected.append(dot)
    for c in range(3):
        if zeta != 1.0:
            g[c] *= zeta
        for part, dot in zip(parts, projected):
            # zeta g + (1 - 2 zeta) par = zeta (g - par) + (1 - zeta) par
            g[c] += np.multiply(dot, part[c], out=term)
        g[c] *= amp_c
    return g


def _filter(modes, n, solenoidal):
    """Multiply modes by ``|k|^(-n/2)`` and Helmholtz-project them, in place, in blocks.

    ``modes`` is (3, N, N, N//2 + 1) in the ``rfftn`` layout. On a Nyquist plane the
    wavevector of a real field is ambiguous (``k`` and its alias are the same coefficient);
    there the projection uses ``(P(k) + P(alias)) / 2``, which is what taking the real part of
    a full complex inverse transform does: the products ``k_i k_j`` between one Nyquist and
    one non-Nyquist component cancel."""
    cells = modes.shape[1]
    k = np.fft.fftfreq(cells, 1.0 / cells)  # integers; the Nyquist wavenumber is -N/2
    kz = k[: cells // 2 + 1].copy()
    kz[-1] = k[cells // 2]  # -N/2 on every axis, as in a full complex FFT: the product of two
    # Nyquist components keeps its sign in the alias-averaged projection below
    zeta, work = float(solenoidal), _Workspace()
    wheres = ((cells // 2,), (slice(None), cells // 2), (Ellipsis, -1)) if cells % 2 == 0 else ()
    planes = [modes[(slice(None),) + where].copy() for where in wheres]  # redone below
    rows = max(1, _BLOCK // (cells * kz.size))
    for start in range(0, cells, rows):
        kx = k[start:start + rows, None, None]
        _filter_block(modes[:, start:start + rows], [(kx, k[None, :, None], kz)], n, zeta, work)
    # the Nyquist planes, from their copies, with the alias-averaged projection
    shape = modes.shape[1:]
    grid = [np.broadcast_to(kc, shape) for kc in (k[:, None, None], k[None, :, None], kz)]
    for where, plane in zip(wheres, planes):
        plane_k = [kc[where] for kc in grid]
        regular = [np.where(np.abs(kc) == cells // 2, 0.0, kc) for kc in plane_k]
        aliased = [kc - r for kc, r in zip(plane_k, regular)]
        modes[(slice(None),) + where] = _filter_block(plane, [regular, aliased], n, zeta, work)
    return modes


# -- from modes to the normalised field ---------------------------------------------------
def _modes(cells, n, seed, solenoidal, method):
    """Velocity modes (3, N, N, N//2 + 1), unnormalised: the field is their ``irfftn``."""
    root = _seed_sequence(seed)
    if method == "fourier":
        return _fourier_modes(cells, n, solenoidal, root)
    return _filter(_white_noise(cells, root), n, solenoidal)


def _synthesise(modes, mach):
    """The real field of ``modes``, normalised: each component's mean removed, the 3D rms
    scaled to ``mach``.

    Parameters
    ----------
    modes : ndarray, shape (3, N, N, N//2 + 1), complex128, C-contiguous
        Modes in the ``rfftn`` layout; consumed: the field is written over them.
    mach : float
        3D rms of the result.

    Returns
    -------
    ndarray, shape (3, N, N, N), float64
        ``irfftn`` of each component, normalised; a view of the memory of ``modes``.

    Notes
    -----
    The transforms run axis by axis in place; the last one (complex to real) writes each
    component's rows to the front of the buffer, ``N`` floats for every ``2 (N//2 + 1)`` it
    reads, so it never overwrites a row it has yet to read (the padded in-place layout of
    real FFTs). No second cube is allocated.
    """
    cells = modes.shape[1]
    flat = modes.view(np.float64).reshape(-1)
    v = flat[:3 * cells ** 3].reshape(3, cells, cells, cells)
    rows = max(1, 4 * _BLOCK // (cells * modes.shape[3]))
    for c in range(3):
        np.fft.ifft(modes[c], axis=0, out=modes[c])
        for start in range(0, cells, rows):  # v[c] starts at or before modes[c]
            block = modes[c, start:start + rows]
            np.fft.ifft(block, axis=1, out=block)
            np.fft.irfft(block, n=cells, axis=2, out=v[c, start:start + rows])
    v = v.reshape(3, -1)
    mean = v.mean(axis=1)
    square = sum(float(np.einsum("i,i->", f, f)) for f in v) / v.shape[1] - float(np.sum(mean ** 2))
    if square <= 0.0:
        raise ValueError(f"the velocity field of {cells}^3 cells has no power to normalise")
    scale = mach / math.sqrt(square)
    for c in range(3):  # (v - mean) * scale, a cache-sized block at a time
        for start in range(0, v.shape[1], _BLOCK):
            block = v[c, start:start + _BLOCK]
            block -= mean[c]
            block *= scale
    return v.reshape(3, cells, cells, cells)


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
    v = _synthesise(_modes(cells, float(n), seed, solenoidal, method), float(mach))
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

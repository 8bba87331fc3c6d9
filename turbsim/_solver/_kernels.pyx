# cython: language_level=3
"""Thin Cython bridge to the C kernels (private: use :mod:`turbsim.solver`).

The option and status codes are the C enums of ``codes.h``, exported as IntEnum classes:
:class:`Scheme`, :class:`Limiter` and :class:`Status`.
"""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t

cnp.import_array()

cdef extern from "codes.h":
    cpdef enum Scheme "ts_scheme":
        FIRST "TS_SCHEME_FIRST"
        MUSCL "TS_SCHEME_MUSCL"
    cpdef enum Limiter "ts_limiter":
        MINMOD "TS_LIMITER_MINMOD"
        MONCEN "TS_LIMITER_MONCEN"
    cpdef enum Status "ts_status":
        OK "TS_OK"
        BAD_STATE "TS_BAD_STATE"
        MAX_STEPS "TS_MAX_STEPS"
        BAD_DT "TS_BAD_DT"
        NO_MEMORY "TS_NO_MEMORY"
        BAD_OPTION "TS_BAD_OPTION"

cdef extern from "kernels.h" nogil:
    ctypedef struct ts_params:
        int64_t nx, ny, nz
        double dx, cs, gamma, courant
        Scheme scheme
        Limiter limiter
        int ramses_dt, threads
        double density_floor
        int land
        int64_t max_steps
    ctypedef struct ts_report:
        double time
        int64_t steps
        double last_dt
        int64_t bad_index
    Status ts_run_f64(const ts_params *p, double *rho, double *mx, double *my, double *mz,
                      double *rho2, double *mx2, double *my2, double *mz2,
                      double t0, double t_end, ts_report *rep)
    Status ts_run_f32(const ts_params *p, float *rho, float *mx, float *my, float *mz,
                      float *rho2, float *mx2, float *my2, float *mz2,
                      double t0, double t_end, ts_report *rep)
    int ts_run_threads(const ts_params *p)
    int64_t ts_work_bytes_f64(const ts_params *p)
    int64_t ts_work_bytes_f32(const ts_params *p)
    double ts_max_speed_f64(const ts_params *p, const double *rho, const double *mx,
                            const double *my, const double *mz)
    double ts_max_speed_f32(const ts_params *p, const float *rho, const float *mx,
                            const float *my, const float *mz)
    int ts_openmp_available()
    int ts_max_threads()

cdef extern from "modes.h" nogil:
    ctypedef struct ts_mode_block:
        int64_t cells, kx0, nkx, ky0, nky, kz0, nkz
        double zeta, rest
        const double *amp
        const double *amp_k
        int64_t table_size
    int ts_fourier_block(const ts_mode_block *b, const double *solenoidal,
                         const double *compressive, double *modes)


def openmp_available():
    """True when the kernels were compiled with OpenMP."""
    return bool(ts_openmp_available())


def max_threads():
    """Threads OpenMP would use by default."""
    return ts_max_threads()


cdef ts_params _params(tuple shape, double dx, double cs, double gamma, double courant,
                       int scheme, int limiter, int ramses_dt, int threads,
                       double density_floor, int64_t max_steps, int land=1):
    cdef ts_params p
    p.nx = shape[0]; p.ny = shape[1]; p.nz = shape[2]
    p.dx = dx; p.cs = cs; p.gamma = gamma; p.courant = courant
    p.scheme = <Scheme>scheme; p.limiter = <Limiter>limiter
    p.ramses_dt = ramses_dt; p.threads = threads
    p.density_floor = density_floor; p.max_steps = max_steps; p.land = land
    return p


def run(cnp.ndarray U not None, cnp.ndarray work not None, double dx, double cs,
        double gamma, double courant, int scheme, int limiter, int ramses_dt, int threads,
        double density_floor, int64_t max_steps, double t0, double t_end, int land=1):
    """Advance the conserved state ``U`` (4, nx, ny, nz), C-contiguous, in place.

    ``work`` is a buffer of the same shape and dtype. ``land=1`` shortens the last step
    to end exactly at ``t_end``; ``land=0`` takes full steps until ``t >= t_end``.
    ``scheme`` and ``limiter`` are :class:`Scheme` and :class:`Limiter` codes. Returns
    ``(status, time, steps, last_dt, bad_index)``, ``status`` a :class:`Status`.
    """
    if U.ndim != 4 or U.shape[0] != 4 or not U.flags.c_contiguous:
        raise ValueError("U must be a C-contiguous (4, nx, ny, nz) array")
    if work.dtype != U.dtype or (<object>work).shape != (<object>U).shape \
            or not work.flags.c_contiguous:
        raise ValueError("work must match U in shape, dtype and layout")
    cdef tuple shape = (U.shape[1], U.shape[2], U.shape[3])
    cdef ts_params p = _params(shape, dx, cs, gamma, courant, scheme, limiter, ramses_dt,
                               threads, density_floor, max_steps, land)
    cdef ts_report rep
    cdef Status status
    cdef double[:, :, :, ::1] u64, w64
    cdef float[:, :, :, ::1] u32, w32
    if U.dtype == np.float64:
        u64 = U; w64 = work
        with nogil:
            status = ts_run_f64(&p, &u64[0, 0, 0, 0], &u64[1, 0, 0, 0], &u64[2, 0, 0, 0],
                                &u64[3, 0, 0, 0], &w64[0, 0, 0, 0], &w64[1, 0, 0, 0],
                                &w64[2, 0, 0, 0], &w64[3, 0, 0, 0], t0, t_end, &rep)
    elif U.dtype == np.float32:
        u32 = U; w32 = work
        with nogil:
            status = ts_run_f32(&p, &u32[0, 0, 0, 0], &u32[1, 0, 0, 0], &u32[2, 0, 0, 0],
                                &u32[3, 0, 0, 0], &w32[0, 0, 0, 0], &w32[1, 0, 0, 0],
                                &w32[2, 0, 0, 0], &w32[3, 0, 0, 0], t0, t_end, &rep)
    else:
        raise ValueError(f"unsupported dtype {U.dtype}; use float64 or float32")
    return Status(status), rep.time, rep.steps, rep.last_dt, rep.bad_index


def run_threads(tuple shape, int threads):
    """Threads a run of a grid of ``shape`` (nx, ny, nz) uses when asked for ``threads``
    (<= 0: all available): at most one per two x slabs."""
    cdef ts_params p = _params(shape, 1.0, 1.0, 1.0, 0.8, FIRST, MINMOD, 0, threads, 0.0, 0)
    return ts_run_threads(&p)


def work_bytes(tuple shape, object dtype, int scheme, int limiter, double gamma, int threads):
    """Bytes of work buffers the kernels allocate for a run (all threads), besides the two
    state buffers the caller passes; 0 for an unknown scheme or limiter code."""
    cdef ts_params p = _params(shape, 1.0, 1.0, gamma, 0.8, scheme, limiter, 0, threads, 0.0, 0)
    if np.dtype(dtype) == np.float64:
        return ts_work_bytes_f64(&p)
    if np.dtype(dtype) == np.float32:
        return ts_work_bytes_f32(&p)
    raise ValueError(f"unsupported dtype {dtype}; use float64 or float32")


def max_signal_speed(cnp.ndarray U not None, double cs, double gamma):
    """max over cells of sum_d |v_d| + ndim sqrt(gamma) cs (active axes only)."""
    cdef tuple shape = (U.shape[1], U.shape[2], U.shape[3])
    cdef ts_params p = _params(shape, 1.0, cs, gamma, 1.0, FIRST, MINMOD, 0, 1, 0.0, 0)
    cdef double[:, :, :, ::1] u64
    cdef float[:, :, :, ::1] u32
    if U.dtype == np.float64:
        u64 = U
        return ts_max_speed_f64(&p, &u64[0, 0, 0, 0], &u64[1, 0, 0, 0], &u64[2, 0, 0, 0], &u64[3, 0, 0, 0])
    u32 = U
    return ts_max_speed_f32(&p, &u32[0, 0, 0, 0], &u32[1, 0, 0, 0], &u32[2, 0, 0, 0], &u32[3, 0, 0, 0])


def fourier_block(cnp.ndarray modes not None, int64_t kx0, int64_t ky0, int64_t kz0,
                  object solenoidal, object compressive, double zeta,
                  cnp.ndarray amp not None, cnp.ndarray amp_k not None):
    """Write a block of "fourier" IC modes into ``modes`` (3, N, N, N//2+1) complex128.

    ``solenoidal`` (a, 2, b, c) and ``compressive`` (a, 1, b, c) are C-contiguous complex128
    unit normals or None; the block is ``kx0 .. kx0 + a - 1`` (likewise y, z). See modes.h.
    """
    cdef int64_t N = modes.shape[1]
    if (modes.dtype != np.complex128 or modes.ndim != 4 or modes.shape[0] != 3
            or modes.shape[2] != N or modes.shape[3] != N // 2 + 1
            or not modes.flags.c_contiguous):
        raise ValueError("modes must be a C-contiguous complex128 (3, N, N, N//2+1) array")
    shape = None
    for name, g, parts in (("solenoidal", solenoidal, 2), ("compressive", compressive, 1)):
        if g is None:
            continue
        if (g.dtype != np.complex128 or g.ndim != 4 or g.shape[1] != parts
                or not g.flags.c_contiguous):
            raise ValueError(f"{name} must be a C-contiguous complex128 (a, {parts}, b, c) array")
        gshape = (g.shape[0], g.shape[2], g.shape[3])
        if shape is not None and gshape != shape:
            raise ValueError("solenoidal and compressive blocks differ in shape")
        shape = gshape
    if shape is None:
        raise ValueError("at least one of solenoidal and compressive is needed")
    cdef double[::1] t0 = np.ascontiguousarray(amp, dtype=np.float64)
    cdef double[::1] t1 = np.ascontiguousarray(amp_k, dtype=np.float64)
    if t0.shape[0] != t1.shape[0]:
        raise ValueError("amp and amp_k tables differ in length")
    cdef ts_mode_block b
    b.cells = N; b.kx0 = kx0; b.nkx = shape[0]; b.ky0 = ky0; b.nky = shape[1]
    b.kz0 = kz0; b.nkz = shape[2]; b.zeta = zeta; b.rest = 1.0 - zeta
    b.amp = &t0[0]; b.amp_k = &t1[0]; b.table_size = t0.shape[0]
    if kz0 < 0 or kz0 + b.nkz > N // 2 + 1 or max(abs(kx0), abs(kx0 + b.nkx - 1)) > N // 2 \
            or max(abs(ky0), abs(ky0 + b.nky - 1)) > N // 2:
        raise ValueError("block outside the grid's half space")
    cdef double complex[:, :, :, ::1] m = modes
    cdef double complex[:, :, :, ::1] gs
    cdef double complex[:, :, :, ::1] gc
    cdef const double *ps = NULL
    cdef const double *pc = NULL
    if solenoidal is not None:
        gs = solenoidal
        ps = <const double *> &gs[0, 0, 0, 0]
    if compressive is not None:
        gc = compressive
        pc = <const double *> &gc[0, 0, 0, 0]
    cdef int status
    with nogil:
        status = ts_fourier_block(&b, ps, pc, <double *> &m[0, 0, 0, 0])
    if status == 1:
        raise ValueError("a |k|^2 of the block lies outside the amplitude tables")
    if status == 2:
        raise MemoryError("fourier_block could not allocate its phase rows")

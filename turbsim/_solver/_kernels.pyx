# cython: language_level=3
"""Thin Cython bridge to the C kernels (private: use :mod:`turbsim.solver`)."""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t

cnp.import_array()

cdef extern from "kernels.h" nogil:
    ctypedef struct ts_params:
        int64_t nx, ny, nz
        double dx, cs, gamma, courant
        int scheme, limiter, ramses_dt, threads
        double density_floor
        int64_t max_steps
    ctypedef struct ts_report:
        double time
        int64_t steps
        double last_dt
        int64_t bad_index
    int ts_run_f64(const ts_params *p, double *rho, double *mx, double *my, double *mz,
                   double *rho2, double *mx2, double *my2, double *mz2,
                   double t0, double t_end, ts_report *rep)
    int ts_run_f32(const ts_params *p, float *rho, float *mx, float *my, float *mz,
                   float *rho2, float *mx2, float *my2, float *mz2,
                   double t0, double t_end, ts_report *rep)
    double ts_max_speed_f64(const ts_params *p, const double *rho, const double *mx,
                            const double *my, const double *mz)
    double ts_max_speed_f32(const ts_params *p, const float *rho, const float *mx,
                            const float *my, const float *mz)
    int ts_openmp_available()
    int ts_max_threads()

STATUS = {0: "ok", 1: "bad_state", 2: "max_steps", 3: "bad_dt", 4: "no_memory"}


def openmp_available():
    """True when the kernels were compiled with OpenMP."""
    return bool(ts_openmp_available())


def max_threads():
    """Threads OpenMP would use by default."""
    return ts_max_threads()


cdef ts_params _params(tuple shape, double dx, double cs, double gamma, double courant,
                       int scheme, int limiter, int ramses_dt, int threads,
                       double density_floor, int64_t max_steps):
    cdef ts_params p
    p.nx = shape[0]; p.ny = shape[1]; p.nz = shape[2]
    p.dx = dx; p.cs = cs; p.gamma = gamma; p.courant = courant
    p.scheme = scheme; p.limiter = limiter; p.ramses_dt = ramses_dt; p.threads = threads
    p.density_floor = density_floor; p.max_steps = max_steps
    return p


def run(cnp.ndarray U not None, cnp.ndarray work not None, double dx, double cs,
        double gamma, double courant, int scheme, int limiter, int ramses_dt, int threads,
        double density_floor, int64_t max_steps, double t0, double t_end):
    """Advance the conserved state ``U`` (4, nx, ny, nz), C-contiguous, in place.

    ``work`` is a buffer of the same shape and dtype. Returns
    ``(status, time, steps, last_dt, bad_index)``.
    """
    if U.ndim != 4 or U.shape[0] != 4 or not U.flags.c_contiguous:
        raise ValueError("U must be a C-contiguous (4, nx, ny, nz) array")
    if work.dtype != U.dtype or (<object>work).shape != (<object>U).shape \
            or not work.flags.c_contiguous:
        raise ValueError("work must match U in shape, dtype and layout")
    cdef tuple shape = (U.shape[1], U.shape[2], U.shape[3])
    cdef ts_params p = _params(shape, dx, cs, gamma, courant, scheme, limiter, ramses_dt,
                               threads, density_floor, max_steps)
    cdef ts_report rep
    cdef int status
    cdef int64_t n = shape[0] * shape[1] * shape[2]
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
    return status, rep.time, rep.steps, rep.last_dt, rep.bad_index


def max_signal_speed(cnp.ndarray U not None, double cs, double gamma):
    """max over cells of sum_d |v_d| + ndim sqrt(gamma) cs (active axes only)."""
    cdef tuple shape = (U.shape[1], U.shape[2], U.shape[3])
    cdef ts_params p = _params(shape, 1.0, cs, gamma, 1.0, 0, 1, 0, 1, 0.0, 0)
    cdef double[:, :, :, ::1] u64
    cdef float[:, :, :, ::1] u32
    if U.dtype == np.float64:
        u64 = U
        return ts_max_speed_f64(&p, &u64[0, 0, 0, 0], &u64[1, 0, 0, 0], &u64[2, 0, 0, 0], &u64[3, 0, 0, 0])
    u32 = U
    return ts_max_speed_f32(&p, &u32[0, 0, 0, 0], &u32[1, 0, 0, 0], &u32[2, 0, 0, 0], &u32[3, 0, 0, 0])

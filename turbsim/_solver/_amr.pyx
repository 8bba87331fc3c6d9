# cython: language_level=3
"""Thin Cython bridge to the AMR-lite kernels of ``amr.c`` (private: use :mod:`turbsim.amr`).

Arrays only: the dense level arrays (float64, C-contiguous), the cell kinds (uint8), the
tile and cell lists. The kernels run without the GIL.
"""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t, int32_t, uint8_t

cnp.import_array()

TILE = 8
"""Cells per side of the tiles the step works on (``TS_AMR_TILE`` of ``amr.h``)."""

cdef extern from "amr.h" nogil:
    ctypedef struct ts_amr_params:
        double cs, gamma
        int scheme, limiter, threads
        double density_floor
    int ts_amr_sweep(const ts_amr_params *p, int64_t n, double dtdx, const double *U,
                     const uint8_t *kind, const int32_t *tiles, int64_t ntiles,
                     const double *fc_in, double fc_scale, double *fc_out, double fc_w,
                     int fc_acc, double *out)
    void ts_amr_scatter(const ts_amr_params *p, int64_t n, double *U, const uint8_t *kind,
                        const int32_t *tiles, int64_t ntiles, const double *out,
                        double *smax, int64_t *bad)
    void ts_amr_leaf_speed(const ts_amr_params *p, int64_t n, const double *U,
                           const uint8_t *kind, double *smax, int64_t *bad)
    void ts_amr_restrict(const ts_amr_params *p, int64_t nc, double *Uc, const double *Uf,
                         const int64_t *cells, int64_t ncells)
    void ts_amr_prolong(const ts_amr_params *p, int64_t nc, const double *Uc, double *Uf,
                        const int64_t *cells, int64_t ncells)
    void ts_amr_flag_gradient(const ts_amr_params *p, int64_t n, const double *rho,
                              const uint8_t *kind, const double *rho_c, double err,
                              double floor_d, uint8_t *flag)
    void ts_amr_smooth(const ts_amr_params *p, int64_t n, uint8_t *flag, const uint8_t *kind,
                       uint8_t *work)
    void ts_amr_nest_ok(const ts_amr_params *p, int64_t n, const uint8_t *kind, uint8_t *flag)
    void ts_amr_any_child(int64_t nc, const uint8_t *fine, uint8_t value, uint8_t *out)
    int64_t ts_amr_apply(int64_t nc, uint8_t *kind_c, const uint8_t *flag, uint8_t *kind_f,
                         int64_t *fresh, int64_t *removed)
    int64_t ts_amr_tiles(int64_t n, const uint8_t *kind, int32_t *tiles, int64_t *nleaves)
    int64_t ts_amr_ghosts(int64_t nc, const uint8_t *kind_c, uint8_t *mark, int64_t *ghosts)
    void ts_amr_tile_speed(const ts_amr_params *p, int64_t n, const double *U,
                           const uint8_t *kind, const int32_t *tiles, int64_t ntiles,
                           double *smax, int64_t *bad)


cdef ts_amr_params _params(double cs, double gamma, int scheme, int limiter, int threads,
                           double floor):
    cdef ts_amr_params p
    p.cs = cs
    p.gamma = gamma
    p.scheme = scheme
    p.limiter = limiter
    p.threads = threads
    p.density_floor = floor
    return p


def sweep(double[:, :, :, ::1] U, const uint8_t[:, :, ::1] kind, const int32_t[:, ::1] tiles,
          double dtdx, double cs, double gamma, int scheme, int limiter, int threads,
          fc_in, fc_out, double[::1] out, double fc_scale=1.0, double fc_w=1.0,
          bint fc_acc=False):
    """One step of a level's leaves into ``out`` (see ``ts_amr_sweep``); returns the status.

    ``fc_in`` is read times ``fc_scale``; ``fc_w`` times this level's coarse-fine fluxes
    are written to ``fc_out``, or added to it with ``fc_acc`` (subcycling).
    """
    cdef ts_amr_params p = _params(cs, gamma, scheme, limiter, threads, 0.0)
    cdef int64_t n = U.shape[1]
    cdef int64_t ntiles = tiles.shape[0]
    cdef double[:, :, :, :, ::1] fin
    cdef double[:, :, :, :, ::1] fout
    cdef const double *pin = NULL
    cdef double *pout = NULL
    cdef int st
    if fc_in is not None:
        fin = fc_in
        pin = &fin[0, 0, 0, 0, 0]
    if fc_out is not None:
        fout = fc_out
        pout = &fout[0, 0, 0, 0, 0]
    if ntiles == 0:
        return 0
    with nogil:
        st = ts_amr_sweep(&p, n, dtdx, &U[0, 0, 0, 0], &kind[0, 0, 0], &tiles[0, 0], ntiles,
                          pin, fc_scale, pout, fc_w, fc_acc, &out[0])
    return st


def scatter(double[:, :, :, ::1] U, const uint8_t[:, :, ::1] kind, const int32_t[:, ::1] tiles,
            const double[::1] out, double floor, int threads):
    """Copy the tiles' new leaf states into U; returns (largest speed, first invalid cell)."""
    cdef ts_amr_params p = _params(1.0, 1.0, 0, 1, threads, floor)
    cdef double smax = 0.0
    cdef int64_t bad = -1
    if tiles.shape[0] == 0:
        return 0.0, -1
    with nogil:
        ts_amr_scatter(&p, U.shape[1], &U[0, 0, 0, 0], &kind[0, 0, 0], &tiles[0, 0],
                       tiles.shape[0], &out[0], &smax, &bad)
    return smax, bad


def leaf_speed(const double[:, :, :, ::1] U, const uint8_t[:, :, ::1] kind, double floor,
               int threads):
    """Largest speed sum_d |v_d| of the leaves and the first invalid leaf (or -1)."""
    cdef ts_amr_params p = _params(1.0, 1.0, 0, 1, threads, floor)
    cdef double smax = 0.0
    cdef int64_t bad = -1
    with nogil:
        ts_amr_leaf_speed(&p, U.shape[1], &U[0, 0, 0, 0], &kind[0, 0, 0], &smax, &bad)
    return smax, bad


def restrict(double[:, :, :, ::1] Uc, const double[:, :, :, ::1] Uf, const int64_t[::1] cells,
             int threads):
    """Volume average of the children of ``cells`` (flat coarse indices) into Uc."""
    cdef ts_amr_params p = _params(1.0, 1.0, 0, 1, threads, 0.0)
    if cells.shape[0] == 0:
        return
    with nogil:
        ts_amr_restrict(&p, Uc.shape[1], &Uc[0, 0, 0, 0], &Uf[0, 0, 0, 0], &cells[0],
                        cells.shape[0])


def prolong(const double[:, :, :, ::1] Uc, double[:, :, :, ::1] Uf, const int64_t[::1] cells,
            int threads):
    """Minmod-limited linear prolongation into the 8 children of ``cells`` (flat coarse
    indices)."""
    cdef ts_amr_params p = _params(1.0, 1.0, 0, 1, threads, 0.0)
    if cells.shape[0] == 0:
        return
    with nogil:
        ts_amr_prolong(&p, Uc.shape[1], &Uc[0, 0, 0, 0], &Uf[0, 0, 0, 0], &cells[0],
                       cells.shape[0])


def flag_gradient(const double[:, :, ::1] rho, const uint8_t[:, :, ::1] kind, rho_c,
                  double err, double floor_d, uint8_t[:, :, ::1] flag, int threads):
    """Set ``flag`` where RAMSES's density-gradient criterion holds (see ``amr.h``)."""
    cdef ts_amr_params p = _params(1.0, 1.0, 0, 1, threads, 0.0)
    cdef const double[:, :, ::1] rc
    cdef const double *prc = NULL
    if rho_c is not None:
        rc = rho_c
        prc = &rc[0, 0, 0]
    with nogil:
        ts_amr_flag_gradient(&p, rho.shape[0], &rho[0, 0, 0], &kind[0, 0, 0], prc, err, floor_d,
                             &flag[0, 0, 0])


def smooth(uint8_t[:, :, ::1] flag, const uint8_t[:, :, ::1] kind, int threads):
    """RAMSES's smooth_fine on ``flag`` in place (see ``amr.h``)."""
    cdef ts_amr_params p = _params(1.0, 1.0, 0, 1, threads, 0.0)
    cdef uint8_t[:, :, ::1] work = np.empty_like(np.asarray(flag))
    with nogil:
        ts_amr_smooth(&p, flag.shape[0], &flag[0, 0, 0], &kind[0, 0, 0], &work[0, 0, 0])


def nest_ok(const uint8_t[:, :, ::1] kind, uint8_t[:, :, ::1] flag, int threads):
    """Clear the flags of cells with an absent neighbour (see ``amr.h``)."""
    cdef ts_amr_params p = _params(1.0, 1.0, 0, 1, threads, 0.0)
    with nogil:
        ts_amr_nest_ok(&p, flag.shape[0], &kind[0, 0, 0], &flag[0, 0, 0])


def any_child(const uint8_t[:, :, ::1] fine, int value):
    """Coarse mask: any of the 8 children has kind ``value``."""
    cdef int64_t nc = fine.shape[0] // 2
    out = np.empty((nc, nc, nc), np.uint8)
    cdef uint8_t[:, :, ::1] o = out
    with nogil:
        ts_amr_any_child(nc, &fine[0, 0, 0], <uint8_t>value, &o[0, 0, 0])
    return out.view(bool)


def apply(uint8_t[:, :, ::1] kind_c, const uint8_t[:, :, ::1] flag, uint8_t[:, :, ::1] kind_f):
    """Refine where flagged, derefine elsewhere; returns (the newly refined cells as flat
    coarse indices, whose children are to be prolongated; the number of cells that lost
    their children)."""
    cdef int64_t nc = kind_c.shape[0]
    cdef int64_t m, removed = 0
    with nogil:
        m = ts_amr_apply(nc, &kind_c[0, 0, 0], &flag[0, 0, 0], &kind_f[0, 0, 0], NULL, &removed)
    fresh = np.empty(max(m, 1), np.int64)
    cdef int64_t[::1] fr = fresh
    with nogil:
        m = ts_amr_apply(nc, &kind_c[0, 0, 0], &flag[0, 0, 0], &kind_f[0, 0, 0], &fr[0], NULL)
    return fresh[:m], removed


def tiles(const uint8_t[:, :, ::1] kind):
    """(tiles holding a leaf as an (m, 3) int32 array, number of leaves)."""
    cdef int64_t nl = 0, m
    cdef int64_t nt = kind.shape[0] // TILE
    out = np.empty((nt * nt * nt, 3), np.int32)
    cdef int32_t[:, ::1] o = out
    with nogil:
        m = ts_amr_tiles(kind.shape[0], &kind[0, 0, 0], &o[0, 0], &nl)
    if m < 0:
        raise MemoryError("the AMR tile list could not be made")
    return out[:m].copy(), nl


def ghosts(const uint8_t[:, :, ::1] kind_c):
    """Flat indices of the coarse cells next to a refined one that are not refined: their
    children are the ghost cells of the finer level."""
    cdef int64_t m
    cdef uint8_t[:, :, ::1] mark = np.empty_like(np.asarray(kind_c))
    with nogil:
        m = ts_amr_ghosts(kind_c.shape[0], &kind_c[0, 0, 0], &mark[0, 0, 0], NULL)
    out = np.empty(m, np.int64)
    cdef int64_t[::1] o = out
    if m:
        with nogil:
            ts_amr_ghosts(kind_c.shape[0], &kind_c[0, 0, 0], &mark[0, 0, 0], &o[0])
    return out


def tile_speed(const double[:, :, :, ::1] U, const uint8_t[:, :, ::1] kind,
               const int32_t[:, ::1] tiles, double floor, int threads):
    """Largest speed and first invalid leaf over the listed tiles (as leaf_speed)."""
    cdef ts_amr_params p = _params(1.0, 1.0, 0, 1, threads, floor)
    cdef double smax = 0.0
    cdef int64_t bad = -1
    if tiles.shape[0] == 0:
        return 0.0, -1
    with nogil:
        ts_amr_tile_speed(&p, U.shape[1], &U[0, 0, 0, 0], &kind[0, 0, 0], &tiles[0, 0],
                          tiles.shape[0], &smax, &bad)
    return smax, bad

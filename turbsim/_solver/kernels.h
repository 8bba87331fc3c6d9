/*
 * turbsim native kernels: isothermal Euler equations on a periodic 3D grid.
 *
 * Conserved variables (rho, rho*vx, rho*vy, rho*vz) are stored as four C-ordered arrays
 * of shape (nx, ny, nz); z is the contiguous axis. The kernels know nothing of Python:
 * plain arrays and scalars in, status code out.
 *
 * Schemes (codes.h): a reconstruction of the face states followed by local Lax-Friedrichs
 * (Rusanov) fluxes, Toro (2009) eq. 10.56, at the six faces of every cell:
 *   - first order Godunov: piecewise-constant states (reconstruct_impl.h);
 *   - unsplit MUSCL-Hancock as in RAMSES (Teyssier 2002, A&A 385, 337; Toro 2009,
 *     ch. 13-14): limited slopes of the primitive variables, a half-step predictor that
 *     includes the transverse derivatives (muscl_impl.h).
 *
 * Isothermal gas, pressure p = cs^2 rho. RAMSES runs isothermal gas as an adiabatic step
 * with index gamma followed by a temperature reset; with gamma != 1 the kernel reproduces
 * the predicted face pressure and the wave speed sqrt(gamma p / rho) of that scheme.
 *
 * Where the parts live (kernels.c includes solver_impl.h, and so every *_impl.h, once per
 * floating-point type):
 *   codes.h             scheme, limiter and status codes (shared with the Cython bridge)
 *   layout.h            variable and axis names
 *   state_impl.h        the face-state interface, run constants, work buffers, primitive
 *                       planes, signal speed
 *   llf_impl.h          the Riemann solver (LLF / Rusanov flux)
 *   reconstruct_impl.h  piecewise-constant face states (first order)
 *   muscl_impl.h        MUSCL-Hancock face states
 *   sweep_impl.h        one time step over a block of x slabs, and the boundary step
 *                       that completes it where two blocks meet
 *   timeloop_impl.h     CFL time step and the loop to the end time, in one parallel
 *                       region
 */
#ifndef TURBSIM_KERNELS_H
#define TURBSIM_KERNELS_H

#include <stdint.h>

#include "codes.h"

typedef struct {
    int64_t nx, ny, nz;     /* grid shape (any axis may be 1) */
    double dx;              /* cell size (same along every axis) */
    double cs;              /* isothermal sound speed */
    double gamma;           /* adiabatic index inside a step (1 = exactly isothermal) */
    double courant;         /* Courant number */
    ts_scheme scheme;       /* reconstruction of the face states */
    ts_limiter limiter;     /* slope limiter (MUSCL-Hancock only) */
    int ramses_dt;          /* 1: RAMSES's cmpdt rule with its gravity-free correction */
    int threads;            /* OpenMP threads (<= 0: all available) */
    double density_floor;   /* a density at or below this is an error */
    int land;               /* 1: shorten the last step to end exactly at t_end; 0: full
                               steps until t >= t_end (when RAMSES writes an output) */
    int64_t max_steps;      /* upper bound on the number of steps of one call */
} ts_params;

typedef struct {
    double time;            /* time reached */
    int64_t steps;          /* steps taken in this call */
    double last_dt;         /* last CFL time step (before shortening to land on t_end) */
    int64_t bad_index;      /* flat index of the offending cell when status is TS_BAD_STATE */
} ts_report;

/* Advance (rho, mx, my, mz) in place from time t0 to t_end. Work buffers of the same shape
 * (rho2..mz2) are used for double buffering; on return the state is in the first set. */
ts_status ts_run_f64(const ts_params *p, double *rho, double *mx, double *my, double *mz,
                     double *rho2, double *mx2, double *my2, double *mz2,
                     double t0, double t_end, ts_report *rep);
ts_status ts_run_f32(const ts_params *p, float *rho, float *mx, float *my, float *mz,
                     float *rho2, float *mx2, float *my2, float *mz2,
                     double t0, double t_end, ts_report *rep);

/* Largest signal speed sum_d |v_d| + ndim * c over the grid (for tests and diagnostics). */
double ts_max_speed_f64(const ts_params *p, const double *rho, const double *mx,
                        const double *my, const double *mz);
double ts_max_speed_f32(const ts_params *p, const float *rho, const float *mx,
                        const float *my, const float *mz);

/* Threads a run with these parameters uses, and the bytes of work buffers it allocates
 * besides the caller's two state buffers (all threads; 0 for an invalid option). */
int ts_run_threads(const ts_params *p);
int64_t ts_work_bytes_f64(const ts_params *p);
int64_t ts_work_bytes_f32(const ts_params *p);

int ts_openmp_available(void);
int ts_max_threads(void);

#endif

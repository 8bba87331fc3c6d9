/*
 * turbsim native kernels: the option and status codes, shared by C, the Cython bridge and
 * Python.
 *
 * _kernels.pyx declares these enums with `cpdef enum`, which exports them to Python as the
 * IntEnum classes Scheme, Limiter and Status; turbsim/solver.py takes its option names from
 * them (a member's lower-case name, e.g. Scheme.MUSCL for scheme="muscl"). Values are part
 * of the interface: add new codes at the end.
 */
#ifndef TURBSIM_CODES_H
#define TURBSIM_CODES_H

/* Reconstruction of the face states (see reconstruct_impl.h). */
typedef enum ts_scheme {
    TS_SCHEME_FIRST = 0,    /* piecewise constant: first-order Godunov */
    TS_SCHEME_MUSCL = 1     /* MUSCL-Hancock: limited linear slopes, half-step predictor */
} ts_scheme;

/* Slope limiter of MUSCL-Hancock; the value is RAMSES's slope_type. */
typedef enum ts_limiter {
    TS_LIMITER_MINMOD = 1,
    TS_LIMITER_MONCEN = 2   /* monotonised central */
} ts_limiter;

/* Outcome of a run. */
typedef enum ts_status {
    TS_OK = 0,
    TS_BAD_STATE = 1,       /* density at or below the floor, or a non-finite value */
    TS_MAX_STEPS = 2,       /* step limit reached before the target time */
    TS_BAD_DT = 3,          /* time step non-positive or not finite */
    TS_NO_MEMORY = 4,       /* work buffers could not be allocated */
    TS_BAD_OPTION = 5       /* unknown scheme or limiter code */
} ts_status;

#endif

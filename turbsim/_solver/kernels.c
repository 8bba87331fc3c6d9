/*
 * turbsim native kernels: the solver instantiated for double and float (solver_impl.h).
 * See kernels.h for the interface and the map of the *_impl.h files.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"
#include "layout.h"
#ifdef TURBSIM_OPENMP
#include <omp.h>
#endif

int ts_openmp_available(void)
{
#ifdef TURBSIM_OPENMP
    return 1;
#else
    return 0;
#endif
}

/* Number of the calling thread inside a parallel region (0 without OpenMP). */
static inline int ts_thread_id(void)
{
#ifdef TURBSIM_OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Size of the calling thread's team (1 without OpenMP). */
static inline int ts_team_size(void)
{
#ifdef TURBSIM_OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

int ts_max_threads(void)
{
#ifdef TURBSIM_OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* ---- double precision ---- */
#define REAL double
#define FN(name) name##_f64
#define FABS fabs
#define SQRT sqrt
#define REAL_BIG 1e300
#include "solver_impl.h"

/* ---- single precision ---- */
#define REAL float
#define FN(name) name##_f32
#define FABS fabsf
#define SQRT sqrtf
#define REAL_BIG 1e37f
#include "solver_impl.h"

/* The thread count does not depend on the floating-point type. */
int ts_run_threads(const ts_params *p)
{
    return nthreads_f64(p);
}

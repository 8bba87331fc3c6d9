/*
 * The solver for one floating-point type. The includer defines REAL (the type), FN(name)
 * (appends the type's suffix to a name), FABS, SQRT and REAL_BIG (a finite value above any
 * physical signal speed); they are undefined at the end, ready for the next type.
 */
#include "state_impl.h"         /* face-state interface, run constants, work buffers */
#include "llf_impl.h"           /* Riemann solver */
#include "reconstruct_impl.h"   /* piecewise-constant face states (first order) */
#include "muscl_impl.h"         /* MUSCL-Hancock face states */
#include "sweep_impl.h"         /* one step over a block of x slabs */
#include "timeloop_impl.h"      /* time step and time loop */

#undef REAL
#undef FN
#undef FABS
#undef SQRT
#undef REAL_BIG

/*
 * The Riemann solver: local Lax-Friedrichs (Rusanov) fluxes of the isothermal Euler
 * equations, Toro (2009) sec. 10.5.1, eq. 10.56,
 *
 *   F = 1/2 [F(U_L) + F(U_R) - S+ (U_R - U_L)],   S+ = max(|u_L| + c_L, |u_R| + c_R),
 *
 * with U = (rho, rho u_n, rho u_t1, rho u_t2) in the frame of the face (normal velocity
 * u_n first) and F(U) = u_n U + (0, p, 0, 0).
 *
 * Two closures; each sweep is made for one of them (sweep_impl.h), chosen once per run:
 *   isothermal           p = cs^2 rho, and c = sqrt(gamma) cs at every face;
 *   pressure corrected   the states carry RAMSES's h (muscl_impl.h): p = cs^2 (rho - h)
 *                        and c = sqrt(gamma p / rho) per state.
 *
 * The run's constants are read into locals before the loop: read through k inside it,
 * they would be loaded again at every iteration (the compiler cannot tell that the flux
 * stores leave k alone). Each variable's momenta are formed next to the flux that uses
 * them, which keeps few values alive at a time (forming both sides' whole flux states
 * first spills registers: 40 % more time per face).
 */

/* LLF fluxes between two rows of face states; with twice = 1, 2F (the factor 1/2 left to
 * the caller, see llf2_isothermal). */
static inline __attribute__((always_inline)) void
FN(llf_core)(const FN(kcon) *k, int64_t n, const FN(face) *L, int64_t off_l, const FN(face) *R,
             int64_t off_r, ts_axis axis, REAL *const F[NV], int64_t off_f, const int has_h,
             const int twice)
{
    const int *vel = ts_velocity_frame[axis];
    const REAL cs2 = k->cs2, c0 = k->c0, gam = k->gamma, half = twice ? (REAL)1 : (REAL)0.5;
    const REAL *restrict rl = L->q[IDN] + off_l, *restrict ul = L->q[vel[0]] + off_l;
    const REAL *restrict al = L->q[vel[1]] + off_l, *restrict bl = L->q[vel[2]] + off_l;
    const REAL *restrict rr = R->q[IDN] + off_r, *restrict ur = R->q[vel[0]] + off_r;
    const REAL *restrict ar = R->q[vel[1]] + off_r, *restrict br = R->q[vel[2]] + off_r;
    const REAL *restrict hl = has_h ? L->q[IH] + off_l : rl;
    const REAL *restrict hr = has_h ? R->q[IH] + off_r : rr;
    REAL *restrict f0 = F[IDN] + off_f, *restrict fn = F[vel[0]] + off_f;
    REAL *restrict fa = F[vel[1]] + off_f, *restrict fb = F[vel[2]] + off_f;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        /* 1. left and right states: density and normal velocity */
        const REAL dl = rl[i], dr = rr[i], vl = ul[i], vr = ur[i];
        /* 2. pressure and sound speed of each state, and 3. the largest wave speed S+ of
         * the two states. Isothermal: c is the same constant on both sides, and
         * max(|u_L| + c, |u_R| + c) = max(|u_L|, |u_R|) + c in floating point too (the
         * rounded sum is monotonic in |u|; also when one of them is NaN): one addition. */
        REAL pl, pr, s;
        if (has_h) {
            pl = cs2 * (dl - hl[i]);
            pr = cs2 * (dr - hr[i]);
            const REAL sl = FABS(vl) + SQRT(gam * pl / dl), sr = FABS(vr) + SQRT(gam * pr / dr);
            s = sl > sr ? sl : sr;
        } else {
            pl = cs2 * dl;
            pr = cs2 * dr;
            const REAL avl = FABS(vl), avr = FABS(vr);
            s = (avl > avr ? avl : avr) + c0;
        }
        /* 4. momenta: normal (ml, mr) and transverse (tal, tar; tbl, tbr) */
        const REAL ml = dl * vl, mr = dr * vr;
        const REAL tal = dl * al[i], tar = dr * ar[i];
        const REAL tbl = dl * bl[i], tbr = dr * br[i];
        /* 5. the LLF flux, eq. 10.56, of each conserved variable: F(U) = u_n U + p e_n */
        f0[i] = half * ((ml + mr) - s * (dr - dl));
        fn[i] = half * (((vl * ml + pl) + (vr * mr + pr)) - s * (mr - ml));
        fa[i] = half * ((vl * tal + vr * tar) - s * (tar - tal));
        fb[i] = half * ((vl * tbl + vr * tbr) - s * (tbr - tbl));
    }
}

/* The fluxes F of one face each (the interface other includers use). */
static inline __attribute__((always_inline)) void
FN(llf)(const FN(kcon) *k, int64_t n, const FN(face) *L, int64_t off_l, const FN(face) *R,
        int64_t off_r, ts_axis axis, REAL *const F[NV], int64_t off_f, const int has_h)
{
    FN(llf_core)(k, n, L, off_l, R, off_r, axis, F, off_f, has_h, 0);
}

static inline __attribute__((always_inline)) void
FN(llf_isothermal)(const FN(kcon) *k, int64_t n, const FN(face) *L, int64_t off_l,
                   const FN(face) *R, int64_t off_r, ts_axis axis, REAL *const F[NV],
                   int64_t off_f)
{
    FN(llf)(k, n, L, off_l, R, off_r, axis, F, off_f, 0);
}

static inline __attribute__((always_inline)) void
FN(llf_corrected)(const FN(kcon) *k, int64_t n, const FN(face) *L, int64_t off_l,
                  const FN(face) *R, int64_t off_r, ts_axis axis, REAL *const F[NV],
                  int64_t off_f)
{
    FN(llf)(k, n, L, off_l, R, off_r, axis, F, off_f, 1);
}

/* The closures as the sweep uses them: 2F instead of F, and the sweep multiplies by
 * dt/(2 dx) (kcon.fdtdx) instead of dt/dx. Scaling by 1/2 is exact, so
 * dt/dx (F_a - F_b) = dt/(2 dx) (2F_a - 2F_b) bit for bit (barring fluxes below the
 * smallest normal number): four products per face fewer. */
static inline __attribute__((always_inline)) void
FN(llf2_isothermal)(const FN(kcon) *k, int64_t n, const FN(face) *L, int64_t off_l,
                    const FN(face) *R, int64_t off_r, ts_axis axis, REAL *const F[NV],
                    int64_t off_f)
{
    FN(llf_core)(k, n, L, off_l, R, off_r, axis, F, off_f, 0, 1);
}

static inline __attribute__((always_inline)) void
FN(llf2_corrected)(const FN(kcon) *k, int64_t n, const FN(face) *L, int64_t off_l,
                   const FN(face) *R, int64_t off_r, ts_axis axis, REAL *const F[NV],
                   int64_t off_f)
{
    FN(llf_core)(k, n, L, off_l, R, off_r, axis, F, off_f, 1, 1);
}

/*
 * One time step for the x slabs [a, b) of one thread: the conservative update
 *
 *   U_new = U + dt/dx sum over the axes of (F at the low face - F at the high face)
 *
 * (the conservative formula of Godunov-type schemes, Toro 2009 ch. 6, summed over the three
 * directions, unsplit), every loop running along the contiguous z axis of one row
 * ("pencil"). For each slab s from a - 1 (whose x+ states are the left states of the
 * face a - 1/2) to b (whose x- states are the right states of the face b - 1/2):
 *   1. the primitive planes W: a ring of three (slabs s - 1, s, s + 1), of which the
 *      reconstruction reads slabs s - width .. s + width; slab s + width is new;
 *   2. for each row j: the face states of its cells, from the reconstruction;
 *   3. LLF fluxes through the z faces of the row, and the row's new state from them;
 *   4. the flux through the x face s - 1/2 (left: the x+ states kept from slab s - 1),
 *      added to both slabs that share it;
 *   5. the flux through the y face j - 1/2 (left: the y+ states kept from row j - 1), and
 *      after the last row the periodic face;
 *   6. slab s - 1 is complete once its face s - 1/2 has been added: its signal speed and
 *      the validity of its cells.
 * Each flux is computed once and added to both cells that share the face. The order of
 * the additions is the same for every cell whatever the thread partition, so the result
 * is bit-identical for any number of threads.
 */

/* un = u + dtdx * (F[i-1/2] - F[i+1/2]) along z; fz holds face i+1/2 at position i+1 */
static void FN(update_z)(const FN(kcon) *k, REAL *const F[NV], REAL *const U[NV],
                         REAL *const Un[NV], int64_t base)
{
    const int64_t nz = k->nz;
    const REAL dtdx = k->dtdx;
    for (int v = 0; v < NV; v++) {
        F[v][0] = F[v][nz];
        const REAL *restrict f = F[v], *restrict u = U[v] + base;
        REAL *restrict un = Un[v] + base;
        if (k->skip_z) {
            for (int64_t i = 0; i < nz; i++) un[i] = u[i];
        } else {
#pragma omp simd
            for (int64_t i = 0; i < nz; i++) un[i] = u[i] + dtdx * (f[i] - f[i + 1]);
        }
    }
}

/* un += sign * dtdx * F over one row */
static void FN(add_flux)(const FN(kcon) *k, REAL *const F[NV], REAL *const Un[NV],
                         int64_t base, REAL sign)
{
    const int64_t nz = k->nz;
    const REAL c = sign * k->dtdx;
    for (int v = 0; v < NV; v++) {
        const REAL *restrict f = F[v];
        REAL *restrict un = Un[v] + base;
#pragma omp simd
        for (int64_t i = 0; i < nz; i++) un[i] += c * f[i];
    }
}

/* un += dtdx * (Flo - Fhi) over one row */
static void FN(add_flux_diff)(const FN(kcon) *k, REAL *const Flo[NV], REAL *const Fhi[NV],
                              REAL *const Un[NV], int64_t base)
{
    const int64_t nz = k->nz;
    const REAL c = k->dtdx;
    for (int v = 0; v < NV; v++) {
        const REAL *restrict lo = Flo[v], *restrict hi = Fhi[v];
        REAL *restrict un = Un[v] + base;
#pragma omp simd
        for (int64_t i = 0; i < nz; i++) un[i] += c * (lo[i] - hi[i]);
    }
}

static void FN(copy_flux)(const FN(kcon) *k, REAL *const dst[NV], REAL *const src[NV])
{
    for (int v = 0; v < NV; v++)
        memcpy(dst[v], src[v], (size_t)k->nz * sizeof(REAL));
}

static void FN(swap_flux)(REAL *a[NV], REAL *b[NV])
{
    for (int v = 0; v < NV; v++) { REAL *t = a[v]; a[v] = b[v]; b[v] = t; }
}

static inline __attribute__((always_inline)) void
FN(sweep)(const FN(kcon) *k, FN(work) *w, REAL *const U[NV], REAL *const Un[NV], int64_t a,
          int64_t b, REAL *smax_out, int64_t *bad, const FN(reconstruction) *rec,
          FN(riemann_fn) riemann)
{
    const int64_t nx = k->nx, ny = k->ny, nz = k->nz, nyz = ny * nz;
    const int width = rec->width;
    const int64_t lo = k->skip_x ? a : a - 1;            /* first slab whose states we need */
    const int64_t hi = k->skip_x ? b - 1 : b;            /* last one */
    REAL *W[3][NV];
    FN(face) *xp_prev = w->xp_prev;                      /* x+ states of slab s - 1, by row */
    FN(face) yp_prev = {{NULL}}, ym_row0 = {{NULL}};      /* y+ of row j - 1, y- of row 0 */
    FN(row_faces) f;
    REAL smax = 0;
#define WRAP(s) ((((s) % nx) + nx) % nx)
    /* 1. the ring before slab lo: W[2 + e] holds slab lo + e, e = -width .. width - 1 */
    for (int r = 0; r < 3; r++)
        for (int v = 0; v < NV; v++) W[r][v] = w->W[r][v];
    for (int e = -width; e < width; e++)
        FN(primitive_plane)(k, W[2 + e], U, WRAP(lo + e));

    for (int64_t s = lo; s <= hi; s++) {
        /* 1. advance the ring: W[0], W[1], W[2] = slabs s - 1, s, s + 1 */
        for (int v = 0; v < NV; v++) {
            REAL *t = W[0][v]; W[0][v] = W[1][v]; W[1][v] = W[2][v]; W[2][v] = t;
        }
        FN(primitive_plane)(k, W[1 + width], U, WRAP(s + width));
        const int own = (s >= a && s < b);          /* this thread updates slab s */
        const int64_t sw = WRAP(s), sprev = WRAP(s - 1);

        for (int64_t j = 0; j < ny; j++) {
            const int64_t base = sw * nyz + j * nz;
            /* 2. face states of the row */
            rec->row(k, w, W, s, j, &f);
            if (own) {
                /* 3. z faces i + 1/2 (left: z+ of cell i, right: z- of cell i + 1) */
                if (!k->skip_z)
                    riemann(k, nz, &f.zp, 1, &f.zm, 2, AXIS_Z, w->fz, 1);
                FN(update_z)(k, w->fz, U, Un, base);
            }
            if (!k->skip_x && s > lo) {
                /* 4. x face s - 1/2 (left: x+ of slab s - 1, right: x- of slab s) */
                riemann(k, nz, &xp_prev[j], 1, &f.xm, 1, AXIS_X, w->fx, 0);
                if (own)
                    FN(add_flux)(k, w->fx, Un, base, (REAL)1);
                if (s - 1 >= a && s - 1 < b)
                    FN(add_flux)(k, w->fx, Un, sprev * nyz + j * nz, (REAL)-1);
            }
            xp_prev[j] = f.xp;
            if (own && !k->skip_y) {
                /* 5. y face j - 1/2 (left: y+ of row j - 1, right: y- of row j); each row
                 * gets F(j - 1/2) - F(j + 1/2) once both are known, row 0 at the end */
                if (j == 0) {
                    ym_row0 = f.ym;
                } else {
                    riemann(k, nz, &yp_prev, 1, &f.ym, 1, AXIS_Y, w->fy, 0);
                    if (j == 1)
                        FN(copy_flux)(k, w->fy1, w->fy);
                    else
                        FN(add_flux_diff)(k, w->fy_lo, w->fy, Un, base - nz);
                    FN(swap_flux)(w->fy_lo, w->fy);
                }
                yp_prev = f.yp;
            }
        }
        if (own && !k->skip_y) {
            /* 5. the periodic y face between the last row and row 0 */
            const int64_t b0 = sw * nyz;
            riemann(k, nz, &yp_prev, 1, &ym_row0, 1, AXIS_Y, w->fy, 0);
            FN(add_flux_diff)(k, w->fy_lo, w->fy, Un, b0 + (ny - 1) * nz);
            FN(add_flux_diff)(k, w->fy, w->fy1, Un, b0);
        }
        /* 6. slab s - 1 is complete once the x face s - 1/2 has been added */
        if (k->skip_x) {
            if (own) {
                REAL sm = FN(slab_speed)(k, Un, sw, bad);
                if (sm > smax) smax = sm;
            }
        } else if (s - 1 >= a && s - 1 < b) {
            REAL sm = FN(slab_speed)(k, Un, sprev, bad);
            if (sm > smax) smax = sm;
        }
    }
#undef WRAP
    *smax_out = smax;
}

/* The sweeps the time loop chooses from, one per pair of reconstruction and closure of the
 * Riemann solver: each is the sweep above with its methods known to the compiler, so their
 * calls are direct and inlined (calls through pointers, once per row and face, cost the
 * first-order step 3-5 %). */
#define SWEEP_ARGS const FN(kcon) *k, FN(work) *w, REAL *const U[NV], REAL *const Un[NV], \
    int64_t a, int64_t b, REAL *smax_out, int64_t *bad

static void FN(sweep_first)(SWEEP_ARGS)
{
    FN(sweep)(k, w, U, Un, a, b, smax_out, bad, &FN(piecewise_constant), FN(llf_isothermal));
}

static void FN(sweep_muscl)(SWEEP_ARGS)
{
    FN(sweep)(k, w, U, Un, a, b, smax_out, bad, &FN(muscl_hancock), FN(llf_isothermal));
}

static void FN(sweep_muscl_corrected)(SWEEP_ARGS)
{
    FN(sweep)(k, w, U, Un, a, b, smax_out, bad, &FN(muscl_hancock), FN(llf_corrected));
}
#undef SWEEP_ARGS

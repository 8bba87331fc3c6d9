/*
 * Body of the solver, included twice by kernels.c: once with REAL = double, once with
 * REAL = float. FN(name) appends the type suffix. Every loop over cells runs along the
 * contiguous z axis of one row ("pencil") so that the compiler vectorises it.
 *
 * Layout of the work buffers: a *plane* holds one x-slab (ny rows); every row has nz + 2
 * entries, cell iz at position iz + 1, with periodic ghost copies at positions 0 and nz + 1.
 *
 * Order of the work inside one step, for a thread that owns the slabs [a, b):
 *   1. primitive planes W = (rho, vx, vy, vz) are kept for slabs s-1, s, s+1 (a ring);
 *   2. for each slab s and each row: face states (MUSCL-Hancock predictor, or the cell
 *      values for first order), then LLF fluxes through the z faces of the row, the x face
 *      shared with slab s-1 and the y face shared with the previous row;
 *   3. each flux is computed once and added to both cells that share the face. The order
 *      of the additions is the same for every cell whatever the thread partition, so the
 *      result is bit-identical for any number of threads.
 */

#define NV 4   /* conserved variables: rho, rho vx, rho vy, rho vz */
#define NF 5   /* face state: rho, vx, vy, vz, h (pressure correction, see below) */

typedef struct {
    REAL *q[NF];
} FN(face);

typedef struct {
    /* primitive planes, ring of three: slabs s-1, s, s+1 */
    REAL *W[3][NV];
    /* MUSCL only: x+ face states of the previous and current slab (planes) */
    FN(face) xp_prev, xp_cur;
    /* MUSCL only: row face states */
    FN(face) xm, ym, yp, yp_prev, ym0, zm, zp;
    /* flux rows */
    REAL *fz[NV], *fx[NV], *fy[NV], *fy_lo[NV], *fy1[NV];
    void *block;
} FN(work);

typedef struct {
    int64_t nx, ny, nz, nzp, plane;   /* plane = ny * nzp */
    REAL dtdx, hdtdx, cs2, c0, gm1, gamma, st, rfloor;
    int muscl, has_h, skip_x, skip_y, skip_z, ndim;
} FN(kcon);

/* ---------------------------------------------------------------------------------- */
/* Work buffers: allocated once per run, never per step.                               */

static void FN(work_free)(FN(work) *w)
{
    free(w->block);
    w->block = NULL;
}

static int FN(work_alloc)(FN(work) *w, int64_t ny, int64_t nz, int muscl)
{
    int64_t nzp = nz + 2, plane = ny * nzp;
    int64_t n = 3 * NV * plane + 5 * NV * nzp;
    if (muscl)
        n += 2 * NF * plane + 7 * NF * nzp;
    REAL *p = (REAL *)calloc((size_t)n, sizeof(REAL));
    if (!p)
        return TS_NO_MEMORY;
    w->block = p;
    for (int k = 0; k < 3; k++)
        for (int v = 0; v < NV; v++) { w->W[k][v] = p; p += plane; }
    for (int v = 0; v < NV; v++) {
        w->fz[v] = p; p += nzp;
        w->fx[v] = p; p += nzp;
        w->fy[v] = p; p += nzp;
        w->fy_lo[v] = p; p += nzp;
        w->fy1[v] = p; p += nzp;
    }
    if (muscl) {
        for (int v = 0; v < NF; v++) { w->xp_prev.q[v] = p; p += plane; }
        for (int v = 0; v < NF; v++) { w->xp_cur.q[v] = p; p += plane; }
        FN(face) *rows[7] = {&w->xm, &w->ym, &w->yp, &w->yp_prev, &w->ym0, &w->zm, &w->zp};
        for (int r = 0; r < 7; r++)
            for (int v = 0; v < NF; v++) { rows[r]->q[v] = p; p += nzp; }
    }
    return TS_OK;
}

/* ---------------------------------------------------------------------------------- */
/* Step 1: primitive variables of one slab, with periodic ghosts along z.              */

static void FN(primitive_plane)(const FN(kcon) *k, REAL *const W[NV], const REAL *rho,
                                const REAL *mx, const REAL *my, const REAL *mz, int64_t slab)
{
    const int64_t ny = k->ny, nz = k->nz, nzp = k->nzp;
    for (int64_t j = 0; j < ny; j++) {
        const int64_t src = (slab * ny + j) * nz;
        REAL *restrict r = W[0] + j * nzp + 1, *restrict u = W[1] + j * nzp + 1;
        REAL *restrict v = W[2] + j * nzp + 1, *restrict w = W[3] + j * nzp + 1;
        const REAL *restrict d = rho + src, *restrict px = mx + src;
        const REAL *restrict py = my + src, *restrict pz = mz + src;
#pragma omp simd
        for (int64_t i = 0; i < nz; i++) {
            const REAL inv = (REAL)1 / d[i];
            r[i] = d[i];
            u[i] = px[i] * inv;
            v[i] = py[i] * inv;
            w[i] = pz[i] * inv;
        }
        for (int q = 0; q < NV; q++) {
            REAL *row = W[q] + j * nzp;
            row[0] = row[nz];
            row[nz + 1] = row[1];
        }
    }
}

/* ---------------------------------------------------------------------------------- */
/* Step 2a: limited slope (RAMSES uslope, slope_type 1 = minmod, 2 = moncen).          */

static inline REAL FN(slope)(REAL qm, REAL q0, REAL qp, REAL st)
{
    const REAL dl = st * (q0 - qm), dr = st * (qp - q0);
    const REAL dc = (REAL)0.5 * (dl + dr) / st;
    const REAL lim = (dl * dr > 0) ? (FABS(dl) < FABS(dr) ? FABS(dl) : FABS(dr)) : (REAL)0;
    const REAL m = lim < FABS(dc) ? lim : FABS(dc);
    return dc < 0 ? -m : m;
}

/* Step 2b: MUSCL-Hancock face states of one row of slab s (Toro 2009, sec. 14.4;
 * RAMSES trace3d). Half a time step of the primitive equations, with the derivatives of
 * all three directions, predicts the cell-centred state; each face state adds half the
 * limited slope of its direction. The isothermal pressure is p = cs^2 (rho - h), with
 * h = (gamma - 1) * (half step of rho div v), which vanishes for gamma = 1. */
static void FN(muscl_row)(const FN(kcon) *k, REAL *const Wm[NV], REAL *const Wc[NV],
                          REAL *const Wp[NV], int64_t j, FN(face) *xm, FN(face) *xp_plane,
                          FN(face) *ym, FN(face) *yp, FN(face) *zm, FN(face) *zp)
{
    const int64_t ny = k->ny, nz = k->nz, nzp = k->nzp;
    const int64_t jm = (j == 0) ? ny - 1 : j - 1, jp = (j == ny - 1) ? 0 : j + 1;
    const int64_t oc = j * nzp + 1, om = jm * nzp + 1, op = jp * nzp + 1;
    const REAL st = k->st, hdt = k->hdtdx, cs2 = k->cs2, gm1 = k->gm1, half = (REAL)0.5;
    const REAL *restrict r = Wc[0] + oc, *restrict u = Wc[1] + oc;
    const REAL *restrict v = Wc[2] + oc, *restrict w = Wc[3] + oc;
    const REAL *restrict rxm = Wm[0] + oc, *restrict uxm = Wm[1] + oc;
    const REAL *restrict vxm = Wm[2] + oc, *restrict wxm = Wm[3] + oc;
    const REAL *restrict rxp = Wp[0] + oc, *restrict uxp = Wp[1] + oc;
    const REAL *restrict vxp = Wp[2] + oc, *restrict wxp = Wp[3] + oc;
    const REAL *restrict rym = Wc[0] + om, *restrict uym = Wc[1] + om;
    const REAL *restrict vym = Wc[2] + om, *restrict wym = Wc[3] + om;
    const REAL *restrict ryp = Wc[0] + op, *restrict uyp = Wc[1] + op;
    const REAL *restrict vyp = Wc[2] + op, *restrict wyp = Wc[3] + op;
    REAL *restrict xm0 = xm->q[0] + 1, *restrict xm1 = xm->q[1] + 1, *restrict xm2 = xm->q[2] + 1,
         *restrict xm3 = xm->q[3] + 1, *restrict xm4 = xm->q[4] + 1;
    REAL *restrict xp0 = xp_plane->q[0] + oc, *restrict xp1 = xp_plane->q[1] + oc,
         *restrict xp2 = xp_plane->q[2] + oc, *restrict xp3 = xp_plane->q[3] + oc,
         *restrict xp4 = xp_plane->q[4] + oc;
    REAL *restrict ym0 = ym->q[0] + 1, *restrict ym1 = ym->q[1] + 1, *restrict ym2 = ym->q[2] + 1,
         *restrict ym3 = ym->q[3] + 1, *restrict ym4 = ym->q[4] + 1;
    REAL *restrict yp0 = yp->q[0] + 1, *restrict yp1 = yp->q[1] + 1, *restrict yp2 = yp->q[2] + 1,
         *restrict yp3 = yp->q[3] + 1, *restrict yp4 = yp->q[4] + 1;
    REAL *restrict zm0 = zm->q[0] + 1, *restrict zm1 = zm->q[1] + 1, *restrict zm2 = zm->q[2] + 1,
         *restrict zm3 = zm->q[3] + 1, *restrict zm4 = zm->q[4] + 1;
    REAL *restrict zp0 = zp->q[0] + 1, *restrict zp1 = zp->q[1] + 1, *restrict zp2 = zp->q[2] + 1,
         *restrict zp3 = zp->q[3] + 1, *restrict zp4 = zp->q[4] + 1;

#pragma omp simd
    for (int64_t i = 0; i < nz; i++) {
        /* (1) limited slopes of the primitive variables along x, y, z */
        const REAL drx = FN(slope)(rxm[i], r[i], rxp[i], st), dry = FN(slope)(rym[i], r[i], ryp[i], st);
        const REAL drz = FN(slope)(r[i - 1], r[i], r[i + 1], st);
        const REAL dux = FN(slope)(uxm[i], u[i], uxp[i], st), duy = FN(slope)(uym[i], u[i], uyp[i], st);
        const REAL duz = FN(slope)(u[i - 1], u[i], u[i + 1], st);
        const REAL dvx = FN(slope)(vxm[i], v[i], vxp[i], st), dvy = FN(slope)(vym[i], v[i], vyp[i], st);
        const REAL dvz = FN(slope)(v[i - 1], v[i], v[i + 1], st);
        const REAL dwx = FN(slope)(wxm[i], w[i], wxp[i], st), dwy = FN(slope)(wym[i], w[i], wyp[i], st);
        const REAL dwz = FN(slope)(w[i - 1], w[i], w[i + 1], st);
        /* (2) half-step predictor: advection by the cell velocity ... */
        const REAL ui = u[i], vi = v[i], wi = w[i], ri = r[i], inv = (REAL)1 / ri;
        const REAL br = (-ui * drx - vi * dry - wi * drz) * hdt;
        const REAL bu = (-ui * dux - vi * duy - wi * duz) * hdt;
        const REAL bv = (-ui * dvx - vi * dvy - wi * dvz) * hdt;
        const REAL bw = (-ui * dwx - vi * dwy - wi * dwz) * hdt;
        /* ... compression (rho div v) and the pressure gradient (cs^2 grad rho / rho) */
        const REAL sr = (dux + dvy + dwz) * ri * hdt;
        const REAL rc = ri + br - sr;
        const REAL uc = ui + bu - cs2 * drx * inv * hdt;
        const REAL vc = vi + bv - cs2 * dry * inv * hdt;
        const REAL wc = wi + bw - cs2 * drz * inv * hdt;
        const REAL h = gm1 * sr;
        /* (3) face states: centre -/+ half slope; a non-positive density falls back to the
         * cell value, as in RAMSES */
        REAL t;
        t = rc - half * drx; xm0[i] = t > 0 ? t : ri;
        t = rc + half * drx; xp0[i] = t > 0 ? t : ri;
        t = rc - half * dry; ym0[i] = t > 0 ? t : ri;
        t = rc + half * dry; yp0[i] = t > 0 ? t : ri;
        t = rc - half * drz; zm0[i] = t > 0 ? t : ri;
        t = rc + half * drz; zp0[i] = t > 0 ? t : ri;
        xm1[i] = uc - half * dux; xp1[i] = uc + half * dux;
        xm2[i] = vc - half * dvx; xp2[i] = vc + half * dvx;
        xm3[i] = wc - half * dwx; xp3[i] = wc + half * dwx;
        ym1[i] = uc - half * duy; yp1[i] = uc + half * duy;
        ym2[i] = vc - half * dvy; yp2[i] = vc + half * dvy;
        ym3[i] = wc - half * dwy; yp3[i] = wc + half * dwy;
        zm1[i] = uc - half * duz; zp1[i] = uc + half * duz;
        zm2[i] = vc - half * dvz; zp2[i] = vc + half * dvz;
        zm3[i] = wc - half * dwz; zp3[i] = wc + half * dwz;
        xm4[i] = h; xp4[i] = h; ym4[i] = h; yp4[i] = h; zm4[i] = h; zp4[i] = h;
    }
    /* periodic ghost of the z- face of the first cell, for the last z face */
    for (int v = 0; v < NF; v++)
        zm->q[v][nz + 1] = zm->q[v][1];
}

/* ---------------------------------------------------------------------------------- */
/* Step 3: local Lax-Friedrichs (Rusanov) flux, Toro (2009) eq. 10.56, for n faces.
 * L and R point at the left and right states of face 0; dn is the index of the normal
 * velocity (1, 2, 3), t1 and t2 those of the transverse ones. F receives the flux of
 * (rho, rho vx, rho vy, rho vz). has_h: the states carry the RAMSES pressure correction
 * and the wave speed is sqrt(gamma p / rho) per face; otherwise c0 everywhere. */
static inline __attribute__((always_inline)) void
FN(llf)(const FN(kcon) *k, int64_t n, REAL *const L[NF], REAL *const R[NF], int64_t off_l,
        int64_t off_r, int dn, int t1, int t2, REAL *const F[NV], int64_t off_f, int has_h)
{
    const REAL cs2 = k->cs2, c0 = k->c0, gam = k->gamma, half = (REAL)0.5;
    const REAL *restrict rl = L[0] + off_l, *restrict ul = L[dn] + off_l;
    const REAL *restrict al = L[t1] + off_l, *restrict bl = L[t2] + off_l;
    const REAL *restrict rr = R[0] + off_r, *restrict ur = R[dn] + off_r;
    const REAL *restrict ar = R[t1] + off_r, *restrict br = R[t2] + off_r;
    const REAL *restrict hl = has_h ? L[4] + off_l : rl;
    const REAL *restrict hr = has_h ? R[4] + off_r : rr;
    REAL *restrict f0 = F[0] + off_f, *restrict fn = F[dn] + off_f;
    REAL *restrict fa = F[t1] + off_f, *restrict fb = F[t2] + off_f;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        const REAL dl = rl[i], dr = rr[i], vl = ul[i], vr = ur[i];
        REAL pl, pr, cl, cr;
        if (has_h) {
            pl = cs2 * (dl - hl[i]);
            pr = cs2 * (dr - hr[i]);
            cl = SQRT(gam * pl / dl);
            cr = SQRT(gam * pr / dr);
        } else {
            pl = cs2 * dl;
            pr = cs2 * dr;
            cl = c0;
            cr = c0;
        }
        const REAL sl = FABS(vl) + cl, sr = FABS(vr) + cr;
        const REAL s = sl > sr ? sl : sr;              /* largest local wave speed */
        const REAL ml = dl * vl, mr = dr * vr;           /* normal momenta */
        const REAL tal = dl * al[i], tar = dr * ar[i];   /* transverse momenta */
        const REAL tbl = dl * bl[i], tbr = dr * br[i];
        f0[i] = half * (vl * dl + vr * dr - s * (dr - dl));
        fn[i] = half * ((vl * ml + pl) + (vr * mr + pr) - s * (mr - ml));
        fa[i] = half * (vl * tal + vr * tar - s * (tar - tal));
        fb[i] = half * (vl * tbl + vr * tbr - s * (tbr - tbl));
    }
}

static inline __attribute__((always_inline)) void
FN(flux)(const FN(kcon) *k, int64_t n, REAL *const L[NF], REAL *const R[NF], int64_t off_l,
         int64_t off_r, int dn, int t1, int t2, REAL *const F[NV], int64_t off_f)
{
    if (k->has_h)
        FN(llf)(k, n, L, R, off_l, off_r, dn, t1, t2, F, off_f, 1);
    else
        FN(llf)(k, n, L, R, off_l, off_r, dn, t1, t2, F, off_f, 0);
}

/* ---------------------------------------------------------------------------------- */
/* Accumulation of the flux differences into the new state.                            */

/* unew = u + dtdx * (F[i-1/2] - F[i+1/2]) along z; fz holds face i+1/2 at position i+1 */
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
        const REAL *restrict a = Flo[v], *restrict b = Fhi[v];
        REAL *restrict un = Un[v] + base;
#pragma omp simd
        for (int64_t i = 0; i < nz; i++) un[i] += c * (a[i] - b[i]);
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

/* ---------------------------------------------------------------------------------- */
/* Largest signal speed of one slab and the validity check of its cells.               */

static REAL FN(slab_speed)(const FN(kcon) *k, REAL *const U[NV], int64_t slab, int64_t *bad)
{
    const int64_t n = k->ny * k->nz, base = slab * n;
    const REAL *restrict d = U[0] + base, *restrict px = U[1] + base;
    const REAL *restrict py = U[2] + base, *restrict pz = U[3] + base;
    const REAL ax = k->skip_x ? 0 : 1, ay = k->skip_y ? 0 : 1, az = k->skip_z ? 0 : 1;
    const REAL floor_ = k->rfloor, big = REAL_BIG;
    REAL smax = 0;
    int64_t nbad = 0;
#pragma omp simd reduction(max : smax) reduction(+ : nbad)
    for (int64_t i = 0; i < n; i++) {
        const REAL inv = (REAL)1 / d[i];
        const REAL s = (ax * FABS(px[i]) + ay * FABS(py[i]) + az * FABS(pz[i])) * inv;
        const int ok = (d[i] > floor_) && (s < big);
        nbad += ok ? 0 : 1;
        smax = (ok && s > smax) ? s : smax;
    }
    if (nbad) {
        for (int64_t i = 0; i < n; i++) {
            const REAL s = (FABS(px[i]) + FABS(py[i]) + FABS(pz[i])) / d[i];
            if (!(d[i] > floor_) || !(s < big)) { *bad = base + i; break; }
        }
    }
    return smax;
}

/* ---------------------------------------------------------------------------------- */
/* One step for the slabs [a, b) of one thread.                                         */

static void FN(step_block)(const FN(kcon) *k, FN(work) *w, REAL *const U[NV], REAL *const Un[NV],
                           int64_t a, int64_t b, REAL *smax_out, int64_t *bad)
{
    const int64_t nx = k->nx, ny = k->ny, nz = k->nz, nzp = k->nzp, nyz = ny * nz;
    REAL *Wm[NV], *Wc[NV], *Wp[NV], *Wt[NV];
    FN(face) *xp_prev = &w->xp_prev, *xp_cur = &w->xp_cur;
    REAL smax = 0;
    const int muscl = k->muscl;
    const int64_t lo = k->skip_x ? a : a - 1;            /* first slab whose states we need */
    const int64_t hi = k->skip_x ? b - 1 : b;            /* last one */
#define WRAP(s) ((((s) % nx) + nx) % nx)
    for (int v = 0; v < NV; v++) { Wm[v] = w->W[0][v]; Wc[v] = w->W[1][v]; Wp[v] = w->W[2][v]; }
    FN(primitive_plane)(k, Wc, U[0], U[1], U[2], U[3], WRAP(lo - 1));
    if (muscl)
        FN(primitive_plane)(k, Wp, U[0], U[1], U[2], U[3], WRAP(lo));

    for (int64_t s = lo; s <= hi; s++) {
        /* advance the ring: Wm = W(s-1), Wc = W(s), Wp = W(s+1) */
        for (int v = 0; v < NV; v++) { Wt[v] = Wm[v]; Wm[v] = Wc[v]; Wc[v] = Wp[v]; Wp[v] = Wt[v]; }
        if (muscl)
            FN(primitive_plane)(k, Wp, U[0], U[1], U[2], U[3], WRAP(s + 1));
        else
            FN(primitive_plane)(k, Wc, U[0], U[1], U[2], U[3], WRAP(s));
        const int own = (s >= a && s < b);          /* this thread updates slab s */
        const int64_t sw = WRAP(s), sprev = WRAP(s - 1);
        /* first order: face states are the cell values (pointers into the planes) */
        FN(face) fc, fm;
        for (int v = 0; v < NV; v++) { fc.q[v] = Wc[v]; fm.q[v] = Wm[v]; }
        fc.q[4] = fm.q[4] = NULL;

        for (int64_t j = 0; j < ny; j++) {
            const int64_t base = sw * nyz + j * nz, oc = j * nzp + 1;
            FN(face) *ym, *yp;
            FN(face) rowc;
            if (muscl) {
                FN(muscl_row)(k, Wm, Wc, Wp, j, &w->xm, xp_cur, &w->ym, &w->yp, &w->zm, &w->zp);
                ym = &w->ym;
                yp = &w->yp;
            } else {
                for (int v = 0; v < NV; v++) rowc.q[v] = Wc[v] + j * nzp;
                rowc.q[4] = NULL;
                ym = yp = &rowc;
            }
            if (own) {
                /* z faces of the row, then the cells' new state from the z fluxes */
                if (!k->skip_z) {
                    if (muscl)
                        FN(flux)(k, nz, w->zp.q, w->zm.q, 1, 2, 3, 1, 2, w->fz, 1);
                    else
                        FN(flux)(k, nz, rowc.q, rowc.q, 1, 2, 3, 1, 2, w->fz, 1);
                }
                FN(update_z)(k, w->fz, U, Un, base);
            }
            if (!k->skip_x && s > lo) {
                /* x face between slab s-1 and s: left = x+ state of s-1, right = x- of s */
                if (muscl)
                    FN(flux)(k, nz, xp_prev->q, w->xm.q, oc, 1, 1, 2, 3, w->fx, 0);
                else
                    FN(flux)(k, nz, fm.q, fc.q, oc, oc, 1, 2, 3, w->fx, 0);
                if (own)
                    FN(add_flux)(k, w->fx, Un, base, (REAL)1);
                if (s - 1 >= a && s - 1 < b)
                    FN(add_flux)(k, w->fx, Un, sprev * nyz + j * nz, (REAL)-1);
            }
            if (own && !k->skip_y) {
                /* y face between row j-1 and j */
                if (j == 0) {
                    if (muscl)
                        for (int v = 0; v < NF; v++)
                            memcpy(w->ym0.q[v], ym->q[v], (size_t)nzp * sizeof(REAL));
                } else {
                    if (muscl)
                        FN(flux)(k, nz, w->yp_prev.q, ym->q, 1, 1, 2, 1, 3, w->fy, 0);
                    else
                        FN(flux)(k, nz, fc.q, fc.q, (j - 1) * nzp + 1, oc, 2, 1, 3, w->fy, 0);
                    if (j == 1)
                        FN(copy_flux)(k, w->fy1, w->fy);
                    else
                        FN(add_flux_diff)(k, w->fy_lo, w->fy, Un, base - nz);
                    FN(swap_flux)(w->fy_lo, w->fy);
                }
                if (muscl) {
                    FN(face) t = w->yp_prev; w->yp_prev = w->yp; w->yp = t;
                }
            }
        }
        if (own && !k->skip_y) {
            /* periodic y face between the last row and row 0 */
            const int64_t b0 = sw * nyz;
            if (muscl)
                FN(flux)(k, nz, w->yp_prev.q, w->ym0.q, 1, 1, 2, 1, 3, w->fy, 0);
            else
                FN(flux)(k, nz, fc.q, fc.q, (ny - 1) * nzp + 1, 1, 2, 1, 3, w->fy, 0);
            FN(add_flux_diff)(k, w->fy_lo, w->fy, Un, b0 + (ny - 1) * nz);
            FN(add_flux_diff)(k, w->fy, w->fy1, Un, b0);
        }
        if (muscl) {
            FN(face) t = *xp_prev; *xp_prev = *xp_cur; *xp_cur = t;
        }
        /* slab s-1 is complete once the x face s-1/2 has been added */
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

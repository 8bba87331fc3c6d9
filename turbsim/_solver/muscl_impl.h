/*
 * MUSCL-Hancock reconstruction as in RAMSES (uslope and trace3d; Teyssier 2002; Toro 2009,
 * ch. 13-14, sec. 14.4), on the primitive variables W = (rho, vx, vy, vz):
 *   1. limited slopes of W along x, y and z;
 *   2. a half-step predictor of the cell-centred state, with the derivatives of all three
 *      directions (the transverse terms make the scheme unsplit);
 *   3. face states: the predicted centre minus or plus half the slope of the face's
 *      direction.
 * With gamma != 1 RAMSES's adiabatic step predicts a pressure below cs^2 rho; the face
 * states carry the difference as h = (gamma - 1) (dt/2 rho div v), with p = cs^2 (rho - h)
 * (llf_impl.h, pressure-corrected closure). h vanishes for gamma = 1, and is then neither
 * stored nor read.
 *
 * One row function is made per limiter and per presence of h, so that the limiter's
 * constant is known to the compiler: with minmod (st = 1) the products by st vanish, with
 * the monotonised central limiter (st = 2) the division by st is a product by 1/2. Both are
 * exact, so the slopes are those of the general formula bit for bit.
 *
 * Buffers (lifetimes as state_impl.h asks): the x+ states of a slab go to the plane the
 * sweep names (one of two, alternating), the x- states to row[0], or to the plane xfirst
 * on the thread's first slab; the y+ states of a row to row[3 + (j & 1)], so those of row
 * j - 1 survive; the y- states to row[2], those of row 0 to row[1].
 */

/* Step 1: limited slope from the left, centre and right values (RAMSES uslope,
 * st = slope_type: 1 minmod, 2 monotonised central). */
static inline __attribute__((always_inline)) REAL FN(slope)(REAL qm, REAL q0, REAL qp, REAL st)
{
    const REAL dl = st * (q0 - qm), dr = st * (qp - q0);
    if (st == 1) {
        /* minmod, the same value in fewer operations: when dl dr > 0, |dc| = |dl + dr| / 2
         * is at least min(|dl|, |dr|) also in floating point (the rounded sum of two
         * numbers of one sign is at least twice the smaller), so m is that minimum, and 0
         * otherwise; the sign of dc is that of dl + dr (halving keeps it, unless dl + dr
         * is the smallest subnormal). */
        const REAL adl = FABS(dl), adr = FABS(dr);
        const REAL m = (dl * dr > 0) ? (adl < adr ? adl : adr) : (REAL)0;
        return (dl + dr) < 0 ? -m : m;
    }
    const REAL dc = (REAL)0.5 * (dl + dr) / st;
    const REAL lim = (dl * dr > 0) ? (FABS(dl) < FABS(dr) ? FABS(dl) : FABS(dr)) : (REAL)0;
    const REAL m = lim < FABS(dc) ? lim : FABS(dc);
    return dc < 0 ? -m : m;
}

static inline __attribute__((always_inline)) void
FN(muscl_row)(const FN(kcon) *k, const FN(work) *wk, REAL *const W[3][NV], int64_t j,
              const FN(face) *xplane, const FN(face) *xfirst, FN(row_faces) *f,
              const REAL st, const int has_h)
{
    const int64_t ny = k->ny, nz = k->nz, nzp = k->nzp, o = k->o;
    const int64_t jm = (j == 0) ? ny - 1 : j - 1, jp = (j == ny - 1) ? 0 : j + 1;
    const int64_t oc = j * nzp + o, om = jm * nzp + o, op = jp * nzp + o;
    const REAL hdt = k->hdtdx, cs2 = k->cs2, gm1 = k->gm1, half = (REAL)0.5;
    REAL *const *Wm = W[0], *const *Wc = W[1], *const *Wp = W[2];
    /* where the face states of this row go */
    f->xp = FN(face_row)(xplane, NF, j, nzp);
    f->xm = xfirst ? FN(face_row)(xfirst, NF, j, nzp) : wk->row[0];
    f->ym = wk->row[j == 0 ? 1 : 2];
    f->yp = wk->row[3 + (j & 1)];
    f->zm = wk->row[5];
    f->zp = wk->row[6];
    if (!has_h)
        f->xm.q[IH] = f->xp.q[IH] = f->ym.q[IH] = f->yp.q[IH] = f->zm.q[IH] = f->zp.q[IH] = NULL;

    const REAL *restrict r = Wc[IDN] + oc, *restrict u = Wc[IVX] + oc;
    const REAL *restrict v = Wc[IVY] + oc, *restrict w = Wc[IVZ] + oc;
    const REAL *restrict rxm = Wm[IDN] + oc, *restrict uxm = Wm[IVX] + oc;
    const REAL *restrict vxm = Wm[IVY] + oc, *restrict wxm = Wm[IVZ] + oc;
    const REAL *restrict rxp = Wp[IDN] + oc, *restrict uxp = Wp[IVX] + oc;
    const REAL *restrict vxp = Wp[IVY] + oc, *restrict wxp = Wp[IVZ] + oc;
    const REAL *restrict rym = Wc[IDN] + om, *restrict uym = Wc[IVX] + om;
    const REAL *restrict vym = Wc[IVY] + om, *restrict wym = Wc[IVZ] + om;
    const REAL *restrict ryp = Wc[IDN] + op, *restrict uyp = Wc[IVX] + op;
    const REAL *restrict vyp = Wc[IVY] + op, *restrict wyp = Wc[IVZ] + op;
    REAL *restrict xm0 = f->xm.q[0] + o, *restrict xm1 = f->xm.q[1] + o, *restrict xm2 = f->xm.q[2] + o,
         *restrict xm3 = f->xm.q[3] + o;
    REAL *restrict xp0 = f->xp.q[0] + o, *restrict xp1 = f->xp.q[1] + o, *restrict xp2 = f->xp.q[2] + o,
         *restrict xp3 = f->xp.q[3] + o;
    REAL *restrict ym0 = f->ym.q[0] + o, *restrict ym1 = f->ym.q[1] + o, *restrict ym2 = f->ym.q[2] + o,
         *restrict ym3 = f->ym.q[3] + o;
    REAL *restrict yp0 = f->yp.q[0] + o, *restrict yp1 = f->yp.q[1] + o, *restrict yp2 = f->yp.q[2] + o,
         *restrict yp3 = f->yp.q[3] + o;
    REAL *restrict zm0 = f->zm.q[0] + o, *restrict zm1 = f->zm.q[1] + o, *restrict zm2 = f->zm.q[2] + o,
         *restrict zm3 = f->zm.q[3] + o;
    REAL *restrict zp0 = f->zp.q[0] + o, *restrict zp1 = f->zp.q[1] + o, *restrict zp2 = f->zp.q[2] + o,
         *restrict zp3 = f->zp.q[3] + o;
    /* h of the six faces (only with has_h; otherwise never written) */
    REAL *restrict xm4 = has_h ? f->xm.q[IH] + o : NULL, *restrict xp4 = has_h ? f->xp.q[IH] + o : NULL;
    REAL *restrict ym4 = has_h ? f->ym.q[IH] + o : NULL, *restrict yp4 = has_h ? f->yp.q[IH] + o : NULL;
    REAL *restrict zm4 = has_h ? f->zm.q[IH] + o : NULL, *restrict zp4 = has_h ? f->zp.q[IH] + o : NULL;

#pragma omp simd
    for (int64_t i = 0; i < nz; i++) {
        /* 1. limited slopes of the primitive variables along x, y, z */
        const REAL drx = FN(slope)(rxm[i], r[i], rxp[i], st), dry = FN(slope)(rym[i], r[i], ryp[i], st);
        const REAL drz = FN(slope)(r[i - 1], r[i], r[i + 1], st);
        const REAL dux = FN(slope)(uxm[i], u[i], uxp[i], st), duy = FN(slope)(uym[i], u[i], uyp[i], st);
        const REAL duz = FN(slope)(u[i - 1], u[i], u[i + 1], st);
        const REAL dvx = FN(slope)(vxm[i], v[i], vxp[i], st), dvy = FN(slope)(vym[i], v[i], vyp[i], st);
        const REAL dvz = FN(slope)(v[i - 1], v[i], v[i + 1], st);
        const REAL dwx = FN(slope)(wxm[i], w[i], wxp[i], st), dwy = FN(slope)(wym[i], w[i], wyp[i], st);
        const REAL dwz = FN(slope)(w[i - 1], w[i], w[i + 1], st);
        /* 2. half-step predictor: advection by the cell velocity ... */
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
        /* 3. face states: centre -/+ half slope; a non-positive density falls back to the
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
        if (has_h) {
            const REAL h = gm1 * sr;
            xm4[i] = h; xp4[i] = h; ym4[i] = h; yp4[i] = h; zm4[i] = h; zp4[i] = h;
        }
    }
    /* periodic ghost of the z- face of the first cell, for the last z face */
    for (int q = 0; q < (has_h ? NF : NV); q++)
        f->zm.q[q][o + nz] = f->zm.q[q][o];
}

/* The row functions and reconstructions, one per limiter (RAMSES's slope_type: 1 minmod,
 * 2 monotonised central) and per presence of h (_h: gamma != 1). */
#define TS_MUSCL(name, ST, HAS_H)                                                              \
    static void FN(muscl_row_##name)(const FN(kcon) *k, const FN(work) *w,                   \
                                     REAL *const W[3][NV], int64_t j, const FN(face) *xp,      \
                                     const FN(face) *xm, FN(row_faces) *f)                     \
    {                                                                                          \
        FN(muscl_row)(k, w, W, j, xp, xm, f, (REAL)(ST), HAS_H);                               \
    }                                                                                          \
    static const FN(reconstruction) FN(muscl_##name) = {                                       \
        .width = 1, .nq = NF, .rows = 7, .slab = NULL, .row = FN(muscl_row_##name),            \
    };
TS_MUSCL(minmod, 1, 0)
TS_MUSCL(moncen, 2, 0)
TS_MUSCL(minmod_h, 1, 1)
TS_MUSCL(moncen_h, 2, 1)
#undef TS_MUSCL

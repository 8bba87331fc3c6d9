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
 * (llf_impl.h, pressure-corrected closure). h vanishes for gamma = 1.
 *
 * Buffers (lifetimes as state_impl.h asks): the x+ states of a slab go to plane[s & 1],
 * so those of slab s - 1 survive while slab s is swept; the y+ states of a row to
 * row[3 + (j & 1)], so those of row j - 1 survive; the y- states of row 0 to row[1].
 */

/* Step 1: limited slope from the left, centre and right values (RAMSES uslope,
 * st = slope_type: 1 minmod, 2 monotonised central). */
static inline REAL FN(slope)(REAL qm, REAL q0, REAL qp, REAL st)
{
    const REAL dl = st * (q0 - qm), dr = st * (qp - q0);
    const REAL dc = (REAL)0.5 * (dl + dr) / st;
    const REAL lim = (dl * dr > 0) ? (FABS(dl) < FABS(dr) ? FABS(dl) : FABS(dr)) : (REAL)0;
    const REAL m = lim < FABS(dc) ? lim : FABS(dc);
    return dc < 0 ? -m : m;
}

static void FN(muscl_row)(const FN(kcon) *k, const FN(work) *wk, REAL *W[3][NV],
                          int64_t s, int64_t j, FN(row_faces) *f)
{
    const int64_t ny = k->ny, nz = k->nz, nzp = k->nzp;
    const int64_t jm = (j == 0) ? ny - 1 : j - 1, jp = (j == ny - 1) ? 0 : j + 1;
    const int64_t oc = j * nzp + 1, om = jm * nzp + 1, op = jp * nzp + 1;
    const REAL st = k->st, hdt = k->hdtdx, cs2 = k->cs2, gm1 = k->gm1, half = (REAL)0.5;
    REAL *const *Wm = W[0], *const *Wc = W[1], *const *Wp = W[2];
    /* where the face states of this row go */
    for (int v = 0; v < NF; v++)
        f->xp.q[v] = wk->plane[s & 1].q[v] + j * nzp;
    f->xm = wk->row[0];
    f->ym = wk->row[j == 0 ? 1 : 2];
    f->yp = wk->row[3 + (j & 1)];
    f->zm = wk->row[5];
    f->zp = wk->row[6];

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
    REAL *restrict xm0 = f->xm.q[0] + 1, *restrict xm1 = f->xm.q[1] + 1, *restrict xm2 = f->xm.q[2] + 1,
         *restrict xm3 = f->xm.q[3] + 1, *restrict xm4 = f->xm.q[4] + 1;
    REAL *restrict xp0 = f->xp.q[0] + 1, *restrict xp1 = f->xp.q[1] + 1, *restrict xp2 = f->xp.q[2] + 1,
         *restrict xp3 = f->xp.q[3] + 1, *restrict xp4 = f->xp.q[4] + 1;
    REAL *restrict ym0 = f->ym.q[0] + 1, *restrict ym1 = f->ym.q[1] + 1, *restrict ym2 = f->ym.q[2] + 1,
         *restrict ym3 = f->ym.q[3] + 1, *restrict ym4 = f->ym.q[4] + 1;
    REAL *restrict yp0 = f->yp.q[0] + 1, *restrict yp1 = f->yp.q[1] + 1, *restrict yp2 = f->yp.q[2] + 1,
         *restrict yp3 = f->yp.q[3] + 1, *restrict yp4 = f->yp.q[4] + 1;
    REAL *restrict zm0 = f->zm.q[0] + 1, *restrict zm1 = f->zm.q[1] + 1, *restrict zm2 = f->zm.q[2] + 1,
         *restrict zm3 = f->zm.q[3] + 1, *restrict zm4 = f->zm.q[4] + 1;
    REAL *restrict zp0 = f->zp.q[0] + 1, *restrict zp1 = f->zp.q[1] + 1, *restrict zp2 = f->zp.q[2] + 1,
         *restrict zp3 = f->zp.q[3] + 1, *restrict zp4 = f->zp.q[4] + 1;

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
        const REAL h = gm1 * sr;
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
        xm4[i] = h; xp4[i] = h; ym4[i] = h; yp4[i] = h; zm4[i] = h; zp4[i] = h;
    }
    /* periodic ghost of the z- face of the first cell, for the last z face */
    for (int q = 0; q < NF; q++)
        f->zm.q[q][nz + 1] = f->zm.q[q][1];
}

static const FN(reconstruction) FN(muscl_hancock) = {
    .width = 1, .planes = 2, .rows = 7, .row = FN(muscl_row),
};

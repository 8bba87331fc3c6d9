/*
 * turbsim AMR-lite kernels (see amr.h for the mesh and the interface).
 *
 * The per-cell physics is that of the uniform kernels, written for a tile: primitive
 * variables (rho, vx, vy, vz); face states piecewise constant (first order) or
 * MUSCL-Hancock as in RAMSES (limited slopes, half-step predictor with the transverse
 * terms, face state = predicted centre -/+ half slope; muscl_impl.h); LLF fluxes (Toro 2009,
 * eq. 10.56; llf_impl.h), with RAMSES's pressure correction h when gamma != 1; and the
 * update of every cell in the uniform kernels' order of operations (sweep_impl.h):
 *
 *   P1 = u + dtdx (Fz[k - 1/2] - Fz[k + 1/2]),  P2 = P1 + dtdx Fx[i - 1/2],
 *   P3 = P2 + dtdx (Fy[j - 1/2] - Fy[j + 1/2]), un = P3 - dtdx Fx[i + 1/2],
 *
 * so a level whose every cell is a leaf is stepped exactly as the uniform grid.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "amr.h"
#ifdef TURBSIM_OPENMP
#include <omp.h>
#endif

#define T TS_AMR_TILE
#define G 2                 /* ghost layers read around a tile */
#define S (T + 2 * G)       /* side of the primitive block */
#define R (T + 2)           /* side of the block of cells with face states */
#define NVAR 4
#define NFS 5               /* variables of a face state: rho, vx, vy, vz, h */

static int amr_threads(const ts_amr_params *p)
{
#ifdef TURBSIM_OPENMP
    return p->threads > 0 ? p->threads : omp_get_max_threads();
#else
    (void)p;
    return 1;
#endif
}

/* l with n = 2^l (the sides of the levels are powers of 2) */
static inline int amr_log2(int64_t n)
{
    int l = 0;
    while (((int64_t)1 << l) < n) l++;
    return l;
}

static inline int64_t wrap(int64_t i, int64_t n)
{
    return i < 0 ? i + n : (i >= n ? i - n : i);
}

/* Limited slope (RAMSES uslope; st = slope_type), as muscl_impl.h; ist = 1 / st, exact
 * (st is 1 or 2), so that the product by ist is the quotient by st, bit for bit, without a
 * division. */
static inline double amr_slope(double qm, double q0, double qp, double st, double ist)
{
    const double dl = st * (q0 - qm), dr = st * (qp - q0);
    const double dc = 0.5 * (dl + dr) * ist;
    const double lim = (dl * dr > 0) ? (fabs(dl) < fabs(dr) ? fabs(dl) : fabs(dr)) : 0.0;
    const double m = lim < fabs(dc) ? lim : fabs(dc);
    return dc < 0 ? -m : m;
}

/* Parallel regions are entered only when there is enough work to pay for waking the
 * threads (the if clauses); the results do not depend on it. */

/* Work space of one thread for one tile. */
typedef struct {
    double w[NVAR][S * S * S];          /* primitives of the tile and 2 layers */
    double fs[6][NFS][R * R * R];       /* face states x-, x+, y-, y+, z-, z+ of the cells
                                           of the tile and 1 layer */
    double fx[NVAR][(T + 1) * T * T];   /* flux through x face f (between cells f-1, f) */
    double fy[NVAR][T * (T + 1) * T];
    double fz[NVAR][T * T * (T + 1)];
    uint8_t row[R][R];                  /* rows (i, j), -1..T, holding a leaf of the level */
    int8_t lo[R][R], hi[R][R];          /* their first and last leaf (k); T, -1 without */
    int absent;                         /* an absent cell in the tile or beside it */
} amr_work;

#define WI(i, j, k) ((((i) + G) * S + ((j) + G)) * S + ((k) + G))
#define RI(i, j, k) ((((i) + 1) * R + ((j) + 1)) * R + ((k) + 1))
#define FXI(f, j, k) (((f) * T + (j)) * T + (k))
#define FYI(i, f, k) (((i) * (T + 1) + (f)) * T + (k))
#define FZI(i, j, f) (((i) * T + (j)) * (T + 1) + (f))

/* 0. which rows (i, j) of the tile and 1 layer hold a leaf: only their faces are needed
 * (a leaf's faces, and the coarse-fine faces next to it; a flux of a row without leaves is
 * read by no update) */
static void amr_rows(int64_t n, const uint8_t *kind, int64_t x0, int64_t y0, int64_t z0,
                     amr_work *wk)
{
    int absent = 0;
    for (int i = -1; i <= T; i++) {
        const int64_t gx = wrap(x0 + i, n);
        for (int j = -1; j <= T; j++) {
            const int64_t gy = wrap(y0 + j, n);
            const uint8_t *k = kind + (gx * n + gy) * n + z0;
            int lo = T, hi = -1;
            for (int c = 0; c < T; c++) absent |= k[c] == TS_AMR_ABSENT;
            if (i >= 0 && i < T && j >= 0 && j < T) {
                absent |= kind[(gx * n + gy) * n + wrap(z0 - 1, n)] == TS_AMR_ABSENT;
                absent |= kind[(gx * n + gy) * n + wrap(z0 + T, n)] == TS_AMR_ABSENT;
            }
            if (i >= 0 && i < T && j >= 0 && j < T)
                for (int c = 0; c < T; c++)
                    if (k[c] == TS_AMR_LEAF) {
                        if (lo == T) lo = c;
                        hi = c;
                    }
            wk->row[i + 1][j + 1] = hi >= 0;
            wk->lo[i + 1][j + 1] = (int8_t)lo;
            wk->hi[i + 1][j + 1] = (int8_t)hi;
        }
    }
    wk->absent = absent;
}

/* 1. primitives of the tile and its ghost layers (periodic); a row whose S cells do not
 * wrap around the box is read as one contiguous run */
static void amr_load(int64_t n, const double *U, int64_t x0, int64_t y0, int64_t z0,
                     amr_work *wk)
{
    const int64_t n3 = n * n * n;
    const int contiguous = z0 >= G && z0 + T + G <= n;
    /* the rows read: the face states of the rows beside a row with leaves (amr_faces) and
     * the cells beside those (their slopes); the first order reads fewer. Other rows of w
     * keep what they held and are never read. */
    uint8_t face[R + 2][R + 2], cell[S][S];
    memset(face, 0, sizeof(face));
    for (int i = 0; i < R; i++)
        for (int j = 0; j < R; j++) {
            int need = wk->row[i][j];
            if (i > 0) need |= wk->row[i - 1][j];
            if (i < R - 1) need |= wk->row[i + 1][j];
            if (j > 0) need |= wk->row[i][j - 1];
            if (j < R - 1) need |= wk->row[i][j + 1];
            face[i + 1][j + 1] = (uint8_t)need;
        }
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++)
            cell[i][j] = face[i][j] | (i > 0 ? face[i - 1][j] : 0) | (i < S - 1 ? face[i + 1][j] : 0)
                         | (j > 0 ? face[i][j - 1] : 0) | (j < S - 1 ? face[i][j + 1] : 0);
    for (int i = -G; i < T + G; i++) {
        const int64_t gx = wrap(x0 + i, n);
        for (int j = -G; j < T + G; j++) {
            if (!cell[i + G][j + G])
                continue;
            const int64_t gy = wrap(y0 + j, n);
            const int64_t row = (gx * n + gy) * n;
            const int64_t l0 = WI(i, j, -G);
            double *restrict w0 = wk->w[0] + l0, *restrict w1 = wk->w[1] + l0;
            double *restrict w2 = wk->w[2] + l0, *restrict w3 = wk->w[3] + l0;
            if (contiguous) {
                const double *restrict u0 = U + row + z0 - G, *restrict u1 = u0 + n3;
                const double *restrict u2 = u1 + n3, *restrict u3 = u2 + n3;
#pragma omp simd
                for (int k = 0; k < S; k++) {
                    const double d = u0[k], inv = 1.0 / d;
                    w0[k] = d;
                    w1[k] = u1[k] * inv;
                    w2[k] = u2[k] * inv;
                    w3[k] = u3[k] * inv;
                }
                continue;
            }
            for (int k = 0; k < S; k++) {
                const int64_t g = row + wrap(z0 + k - G, n);
                const double d = U[g], inv = 1.0 / d;
                w0[k] = d;
                w1[k] = U[n3 + g] * inv;
                w2[k] = U[2 * n3 + g] * inv;
                w3[k] = U[3 * n3 + g] * inv;
            }
        }
    }
}

static inline int amr_min(int a, int b) { return a < b ? a : b; }
static inline int amr_max(int a, int b) { return a > b ? a : b; }

/* 2. face states of the cells of the tile and 1 layer, one pencil along z at a time (the
 * part of it the fluxes of the leaves read) */
static void amr_faces(const ts_amr_params *p, double hdt, amr_work *wk)
{
    const double cs2 = p->cs * p->cs, gm1 = p->gamma - 1.0, half = 0.5;
    const double st = p->limiter == 2 ? 2.0 : 1.0, ist = p->limiter == 2 ? 0.5 : 1.0;
    const int has_h = p->gamma != 1.0;
    const int dxs = S * S, dys = S;
    if (p->scheme == 0)     /* first order: the fluxes read the cells' own states (w) */
        return;
    for (int i = -1; i <= T; i++)
        for (int j = -1; j <= T; j++) {
            /* the face states of a row are read by the fluxes of its own leaves (from the
             * cell before the first to the cell after the last) and of the leaves of the
             * 4 rows beside it (the same cells as those leaves) */
            int a = wk->lo[i + 1][j + 1] - 1, b = wk->hi[i + 1][j + 1] + 1;
            if (a > b) { a = T + 1; b = -2; }
            if (i > -1) { a = amr_min(a, wk->lo[i][j + 1]); b = amr_max(b, wk->hi[i][j + 1]); }
            if (i < T) { a = amr_min(a, wk->lo[i + 2][j + 1]); b = amr_max(b, wk->hi[i + 2][j + 1]); }
            if (j > -1) { a = amr_min(a, wk->lo[i + 1][j]); b = amr_max(b, wk->hi[i + 1][j]); }
            if (j < T) { a = amr_min(a, wk->lo[i + 1][j + 2]); b = amr_max(b, wk->hi[i + 1][j + 2]); }
            if (a > b)
                continue;
            const int kend = b - a + 1;
            const int64_t c0 = WI(i, j, a), f0 = RI(i, j, a);
            const double *restrict r = wk->w[0] + c0, *restrict u = wk->w[1] + c0;
            const double *restrict v = wk->w[2] + c0, *restrict w = wk->w[3] + c0;
            double *restrict xm0 = wk->fs[0][0] + f0, *restrict xm1 = wk->fs[0][1] + f0,
                   *restrict xm2 = wk->fs[0][2] + f0, *restrict xm3 = wk->fs[0][3] + f0,
                   *restrict xm4 = wk->fs[0][4] + f0;
            double *restrict xp0 = wk->fs[1][0] + f0, *restrict xp1 = wk->fs[1][1] + f0,
                   *restrict xp2 = wk->fs[1][2] + f0, *restrict xp3 = wk->fs[1][3] + f0,
                   *restrict xp4 = wk->fs[1][4] + f0;
            double *restrict ym0 = wk->fs[2][0] + f0, *restrict ym1 = wk->fs[2][1] + f0,
                   *restrict ym2 = wk->fs[2][2] + f0, *restrict ym3 = wk->fs[2][3] + f0,
                   *restrict ym4 = wk->fs[2][4] + f0;
            double *restrict yp0 = wk->fs[3][0] + f0, *restrict yp1 = wk->fs[3][1] + f0,
                   *restrict yp2 = wk->fs[3][2] + f0, *restrict yp3 = wk->fs[3][3] + f0,
                   *restrict yp4 = wk->fs[3][4] + f0;
            double *restrict zm0 = wk->fs[4][0] + f0, *restrict zm1 = wk->fs[4][1] + f0,
                   *restrict zm2 = wk->fs[4][2] + f0, *restrict zm3 = wk->fs[4][3] + f0,
                   *restrict zm4 = wk->fs[4][4] + f0;
            double *restrict zp0 = wk->fs[5][0] + f0, *restrict zp1 = wk->fs[5][1] + f0,
                   *restrict zp2 = wk->fs[5][2] + f0, *restrict zp3 = wk->fs[5][3] + f0,
                   *restrict zp4 = wk->fs[5][4] + f0;
#pragma omp simd
            for (int k = 0; k < kend; k++) {
                const double drx = amr_slope(r[k - dxs], r[k], r[k + dxs], st, ist);
                const double dry = amr_slope(r[k - dys], r[k], r[k + dys], st, ist);
                const double drz = amr_slope(r[k - 1], r[k], r[k + 1], st, ist);
                const double dux = amr_slope(u[k - dxs], u[k], u[k + dxs], st, ist);
                const double duy = amr_slope(u[k - dys], u[k], u[k + dys], st, ist);
                const double duz = amr_slope(u[k - 1], u[k], u[k + 1], st, ist);
                const double dvx = amr_slope(v[k - dxs], v[k], v[k + dxs], st, ist);
                const double dvy = amr_slope(v[k - dys], v[k], v[k + dys], st, ist);
                const double dvz = amr_slope(v[k - 1], v[k], v[k + 1], st, ist);
                const double dwx = amr_slope(w[k - dxs], w[k], w[k + dxs], st, ist);
                const double dwy = amr_slope(w[k - dys], w[k], w[k + dys], st, ist);
                const double dwz = amr_slope(w[k - 1], w[k], w[k + 1], st, ist);
                /* half-step predictor (muscl_impl.h, step 2) */
                const double ui = u[k], vi = v[k], wi = w[k], ri = r[k], inv = 1.0 / ri;
                const double br = (-ui * drx - vi * dry - wi * drz) * hdt;
                const double bu = (-ui * dux - vi * duy - wi * duz) * hdt;
                const double bv = (-ui * dvx - vi * dvy - wi * dvz) * hdt;
                const double bw = (-ui * dwx - vi * dwy - wi * dwz) * hdt;
                const double sr = (dux + dvy + dwz) * ri * hdt;
                const double rc = ri + br - sr;
                const double uc = ui + bu - cs2 * drx * inv * hdt;
                const double vc = vi + bv - cs2 * dry * inv * hdt;
                const double wc = wi + bw - cs2 * drz * inv * hdt;
                /* face states (step 3) */
                double t;
                t = rc - half * drx; xm0[k] = t > 0 ? t : ri;
                t = rc + half * drx; xp0[k] = t > 0 ? t : ri;
                t = rc - half * dry; ym0[k] = t > 0 ? t : ri;
                t = rc + half * dry; yp0[k] = t > 0 ? t : ri;
                t = rc - half * drz; zm0[k] = t > 0 ? t : ri;
                t = rc + half * drz; zp0[k] = t > 0 ? t : ri;
                xm1[k] = uc - half * dux; xp1[k] = uc + half * dux;
                xm2[k] = vc - half * dvx; xp2[k] = vc + half * dvx;
                xm3[k] = wc - half * dwx; xp3[k] = wc + half * dwx;
                ym1[k] = uc - half * duy; yp1[k] = uc + half * duy;
                ym2[k] = vc - half * dvy; yp2[k] = vc + half * dvy;
                ym3[k] = wc - half * dwy; yp3[k] = wc + half * dwy;
                zm1[k] = uc - half * duz; zp1[k] = uc + half * duz;
                zm2[k] = vc - half * dvz; zp2[k] = vc + half * dvz;
                zm3[k] = wc - half * dwz; zp3[k] = wc + half * dwz;
                if (has_h) {   /* read by the fluxes only when gamma != 1 */
                    const double h = gm1 * sr;
                    xm4[k] = h; xp4[k] = h; ym4[k] = h; yp4[k] = h; zm4[k] = h; zp4[k] = h;
                }
            }
        }
}

/* LLF fluxes (llf_impl.h) through nf faces along a pencil: left states of face f at
 * ql[m][f], right states at qr[m][f] (m: rho, vx, vy, vz, h; h is read only when
 * gamma != 1); fluxes (lab frame: rho, mx, my, mz) to F[v][off + f]. */
static inline __attribute__((always_inline)) void
amr_llf_core(const ts_amr_params *p, const double *const ql[NFS], const double *const qr[NFS],
             int axis, int nf, double *const F[NVAR], int64_t off, const int has_h)
{
    static const int frame[3][3] = {{1, 2, 3}, {2, 1, 3}, {3, 1, 2}};
    const int *vel = frame[axis];
    const double cs2 = p->cs * p->cs, gam = p->gamma, half = 0.5;
    const double c0 = sqrt(p->gamma) * p->cs;
    const double *restrict rl = ql[0], *restrict rr = qr[0];
    const double *restrict ul = ql[vel[0]], *restrict ur = qr[vel[0]];
    const double *restrict al = ql[vel[1]], *restrict ar = qr[vel[1]];
    const double *restrict bl = ql[vel[2]], *restrict bt = qr[vel[2]];
    const double *restrict hl = ql[4], *restrict hr = qr[4];
    double *restrict f0 = F[0] + off, *restrict fn = F[vel[0]] + off;
    double *restrict fa = F[vel[1]] + off, *restrict fb = F[vel[2]] + off;
#pragma omp simd
    for (int f = 0; f < nf; f++) {
        const double dl = rl[f], dr = rr[f], vl = ul[f], vr = ur[f];
        double pl, pr, cl, cr;
        if (has_h) {
            pl = cs2 * (dl - hl[f]);
            pr = cs2 * (dr - hr[f]);
            cl = sqrt(gam * pl / dl);
            cr = sqrt(gam * pr / dr);
        } else {
            pl = cs2 * dl;
            pr = cs2 * dr;
            cl = c0;
            cr = c0;
        }
        const double sl = fabs(vl) + cl, sr = fabs(vr) + cr;
        const double s = sl > sr ? sl : sr;
        const double ml = dl * vl, mr = dr * vr;
        const double tal = dl * al[f], tar = dr * ar[f];
        const double tbl = dl * bl[f], tbr = dr * bt[f];
        f0[f] = half * ((ml + mr) - s * (dr - dl));
        fn[f] = half * (((vl * ml + pl) + (vr * mr + pr)) - s * (mr - ml));
        fa[f] = half * ((vl * tal + vr * tar) - s * (tar - tal));
        fb[f] = half * ((vl * tbl + vr * tbr) - s * (tbr - tbl));
    }
}

/* the loop compiled once per closure, so that the isothermal one carries no square root */
static inline void amr_llf_row(const ts_amr_params *p, const double *const ql[NFS],
                               const double *const qr[NFS], int axis, int nf,
                               double *const F[NVAR], int64_t off)
{
    if (p->gamma != 1.0)
        amr_llf_core(p, ql, qr, axis, nf, F, off, 1);
    else
        amr_llf_core(p, ql, qr, axis, nf, F, off, 0);
}

/* the states of a pencil starting at index l: face states q (MUSCL-Hancock), or the
 * cells' own states (first order: index l of w, which has the layout of w, and h = 0) */
static inline void amr_states(const amr_work *wk, int first, int q, int64_t l,
                              const double *st[NFS])
{
    static const double zero[T + 1];
    for (int m = 0; m < NVAR; m++)
        st[m] = first ? wk->w[m] + l : wk->fs[q][m] + l;
    st[4] = first ? zero : wk->fs[q][4] + l;
}

/* 3. fluxes through the faces of the tile's cells, pencil by pencil along z */
static void amr_fluxes(const ts_amr_params *p, amr_work *wk)
{
    double *Fx[NVAR], *Fy[NVAR], *Fz[NVAR];
    const double *ql[NFS], *qr[NFS];
    const int first = p->scheme == 0;
    for (int m = 0; m < NVAR; m++) { Fx[m] = wk->fx[m]; Fy[m] = wk->fy[m]; Fz[m] = wk->fz[m]; }
    /* only the faces of rows that hold a leaf (the others are never read); a face's left
     * state is the + state of the cell below it, its right state the - state of the cell
     * above */
#define IDX(i, j, k) (first ? WI(i, j, k) : RI(i, j, k))
    for (int f = 0; f <= T; f++)
        for (int j = 0; j < T; j++)
            if (wk->row[f][j + 1] | wk->row[f + 1][j + 1]) {
                const int a = amr_min(wk->lo[f][j + 1], wk->lo[f + 1][j + 1]);
                const int b = amr_max(wk->hi[f][j + 1], wk->hi[f + 1][j + 1]);
                amr_states(wk, first, 1, IDX(f - 1, j, a), ql);
                amr_states(wk, first, 0, IDX(f, j, a), qr);
                amr_llf_row(p, ql, qr, 0, b - a + 1, Fx, FXI(f, j, a));
            }
    for (int i = 0; i < T; i++)
        for (int f = 0; f <= T; f++)
            if (wk->row[i + 1][f] | wk->row[i + 1][f + 1]) {
                const int a = amr_min(wk->lo[i + 1][f], wk->lo[i + 1][f + 1]);
                const int b = amr_max(wk->hi[i + 1][f], wk->hi[i + 1][f + 1]);
                amr_states(wk, first, 3, IDX(i, f - 1, a), ql);
                amr_states(wk, first, 2, IDX(i, f, a), qr);
                amr_llf_row(p, ql, qr, 1, b - a + 1, Fy, FYI(i, f, a));
            }
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++)
            if (wk->row[i + 1][j + 1]) {
                const int a = wk->lo[i + 1][j + 1], b = wk->hi[i + 1][j + 1];
                amr_states(wk, first, 5, IDX(i, j, a - 1), ql);
                amr_states(wk, first, 4, IDX(i, j, a), qr);
                amr_llf_row(p, ql, qr, 2, b - a + 2, Fz, FZI(i, j, a));
            }
#undef IDX
}

/* 4. averaged fluxes of the coarse-fine faces of the tile into the coarse level's array:
 * the face between a leaf of this level and an absent cell (a coarse leaf) covers 4 fine
 * faces; the tile holding the leaf writes fc_w times their average, once (fc_acc = 0), or
 * adds it to the value there (fc_acc = 1: the second substep of a subcycled level). */
static void amr_coarse_faces(int64_t n, const uint8_t *kind, int64_t x0, int64_t y0,
                             int64_t z0, const amr_work *wk, double fc_w, int fc_acc,
                             double *fc_out)
{
    const int64_t m = n / 2, m3 = m * m * m;
    for (int axis = 0; axis < 3; axis++)
        for (int f = 0; f <= T; f += 2)
            for (int a = 0; a < T; a += 2)
                for (int b = 0; b < T; b += 2) {
                    /* fine cells below (lo) and above (hi) the face, local coordinates */
                    int lx, ly, lz;
                    if (axis == 0) { lx = f; ly = a; lz = b; }
                    else if (axis == 1) { lx = a; ly = f; lz = b; }
                    else { lx = a; ly = b; lz = f; }
                    const int64_t hx = wrap(x0 + lx, n), hy = wrap(y0 + ly, n), hz = wrap(z0 + lz, n);
                    const int64_t ox = axis == 0, oy = axis == 1, oz = axis == 2;
                    const int64_t bx = wrap(x0 + lx - ox, n), by = wrap(y0 + ly - oy, n),
                                  bz = wrap(z0 + lz - oz, n);
                    const uint8_t khi = kind[(hx * n + hy) * n + hz];
                    const uint8_t klo = kind[(bx * n + by) * n + bz];
                    const int write = (f < T && khi == TS_AMR_LEAF && klo == TS_AMR_ABSENT)
                                      || (f >= 1 && klo == TS_AMR_LEAF && khi == TS_AMR_ABSENT);
                    if (!write)
                        continue;
                    const int64_t c = ((hx / 2) * m + hy / 2) * m + hz / 2;
                    for (int v = 0; v < NVAR; v++) {
                        double f00, f01, f10, f11;
                        if (axis == 0) {
                            const double *F = wk->fx[v];
                            f00 = F[FXI(f, a, b)]; f01 = F[FXI(f, a, b + 1)];
                            f10 = F[FXI(f, a + 1, b)]; f11 = F[FXI(f, a + 1, b + 1)];
                        } else if (axis == 1) {
                            const double *F = wk->fy[v];
                            f00 = F[FYI(a, f, b)]; f01 = F[FYI(a, f, b + 1)];
                            f10 = F[FYI(a + 1, f, b)]; f11 = F[FYI(a + 1, f, b + 1)];
                        } else {
                            const double *F = wk->fz[v];
                            f00 = F[FZI(a, b, f)]; f01 = F[FZI(a, b + 1, f)];
                            f10 = F[FZI(a + 1, b, f)]; f11 = F[FZI(a + 1, b + 1, f)];
                        }
                        const double avg = fc_w * (0.25 * ((f00 + f01) + (f10 + f11)));
                        double *dst = fc_out + (axis * NVAR + v) * m3 + c;
                        *dst = fc_acc ? *dst + avg : avg;
                    }
                }
}

/* whether the T kinds at k are all leaves */
static inline int amr_all_leaves(const uint8_t *k)
{
    uint64_t w;
    memcpy(&w, k, 8);
    return T == 8 && w == 0x0101010101010101ULL;
}

/* whether one of the T kinds at k is refined (kinds are 0, 1, 2: bit 1 marks it) */
static inline int amr_any_refined(const uint8_t *k)
{
    uint64_t w;
    memcpy(&w, k, 8);
    return T != 8 || (w & 0x0202020202020202ULL) != 0;
}

/* 5. new state of the tile's leaves, in the uniform kernels' order of operations; a face
 * whose neighbour is refined takes the averaged fine flux (fc_in times fc_scale). */
static void amr_update(int64_t n, double dtdx, const double *U, const uint8_t *kind,
                       int64_t x0, int64_t y0, int64_t z0, const amr_work *wk,
                       const double *fc_in, double fc_scale, double *out)
{
    const int64_t n3 = n * n * n;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
            const int64_t gx = x0 + i, gy = y0 + j;
            const int64_t r0 = (gx * n + gy) * n;
            /* a row with leaves, none of its cells and none of their face neighbours
             * refined (the usual case, always at the finest level): every face of its
             * leaves takes the tile's flux, one vector loop per variable (the leaves
             * stored, other cells left as they were) */
            const uint8_t *restrict kr = kind + r0 + z0;
            if (!amr_any_refined(kr)
                && !amr_any_refined(kind + (wrap(gx - 1, n) * n + gy) * n + z0)
                && !amr_any_refined(kind + (wrap(gx + 1, n) * n + gy) * n + z0)
                && !amr_any_refined(kind + (gx * n + wrap(gy - 1, n)) * n + z0)
                && !amr_any_refined(kind + (gx * n + wrap(gy + 1, n)) * n + z0)
                && kind[r0 + wrap(z0 - 1, n)] != TS_AMR_REFINED
                && kind[r0 + wrap(z0 + T, n)] != TS_AMR_REFINED) {
                if (!wk->row[i + 1][j + 1])
                    continue;
                const int all = amr_all_leaves(kr);
                for (int v = 0; v < NVAR; v++) {
                    const double *restrict u = U + v * n3 + r0 + z0;
                    const double *restrict fxl = wk->fx[v] + FXI(i, j, 0);
                    const double *restrict fxh = wk->fx[v] + FXI(i + 1, j, 0);
                    const double *restrict fyl = wk->fy[v] + FYI(i, j, 0);
                    const double *restrict fyh = wk->fy[v] + FYI(i, j + 1, 0);
                    const double *restrict fz = wk->fz[v] + FZI(i, j, 0);
                    double *restrict o = out + (v * T + i) * T * T + j * T;
                    if (all) {
#pragma omp simd
                        for (int k = 0; k < T; k++) {
                            double q = u[k] + dtdx * (fz[k] - fz[k + 1]);
                            q = q + dtdx * fxl[k];
                            q = q + dtdx * (fyl[k] - fyh[k]);
                            o[k] = q - dtdx * fxh[k];
                        }
                    } else {
#pragma omp simd
                        for (int k = 0; k < T; k++) {
                            double q = u[k] + dtdx * (fz[k] - fz[k + 1]);
                            q = q + dtdx * fxl[k];
                            q = q + dtdx * (fyl[k] - fyh[k]);
                            q = q - dtdx * fxh[k];
                            o[k] = kr[k] == TS_AMR_LEAF ? q : o[k];
                        }
                    }
                }
                continue;
            }
            if (!wk->row[i + 1][j + 1])
                continue;
            /* beside a refined cell: each face of a leaf takes the averaged fine flux
             * where its neighbour is refined, the tile's flux elsewhere; the neighbours'
             * rows found once per row, the kinds along z with the two ends wrapped */
            const int64_t rxm = (wrap(gx - 1, n) * n + gy) * n + z0, rxp = (wrap(gx + 1, n) * n + gy) * n + z0;
            const int64_t rym = (gx * n + wrap(gy - 1, n)) * n + z0, ryp = (gx * n + wrap(gy + 1, n)) * n + z0;
            const int64_t g0 = r0 + z0;
            uint8_t kz[T + 2];
            int64_t zp[T];
            kz[0] = kind[r0 + wrap(z0 - 1, n)];
            for (int k = 0; k < T; k++) {
                kz[k + 1] = kr[k];
                zp[k] = r0 + wrap(z0 + k + 1, n);
            }
            kz[T + 1] = kind[r0 + wrap(z0 + T, n)];
            for (int v = 0; v < NVAR; v++) {
                const double *fc0 = fc_in ? fc_in + (0 * NVAR + v) * n3 : NULL;
                const double *fc1 = fc_in ? fc_in + (1 * NVAR + v) * n3 : NULL;
                const double *fc2 = fc_in ? fc_in + (2 * NVAR + v) * n3 : NULL;
                const double *u = U + v * n3 + g0;
                const double *fx = wk->fx[v], *fy = wk->fy[v], *fz = wk->fz[v];
                double *o = out + (v * T + i) * T * T + j * T;
                for (int k = 0; k < T; k++) {
                    if (kr[k] != TS_AMR_LEAF)
                        continue;
                    const int64_t g = g0 + k;
                    const double fxl = kind[rxm + k] == TS_AMR_REFINED ? fc0[g] * fc_scale : fx[FXI(i, j, k)];
                    const double fxh = kind[rxp + k] == TS_AMR_REFINED ? fc0[rxp + k] * fc_scale : fx[FXI(i + 1, j, k)];
                    const double fyl = kind[rym + k] == TS_AMR_REFINED ? fc1[g] * fc_scale : fy[FYI(i, j, k)];
                    const double fyh = kind[ryp + k] == TS_AMR_REFINED ? fc1[ryp + k] * fc_scale : fy[FYI(i, j + 1, k)];
                    const double fzl = kz[k] == TS_AMR_REFINED ? fc2[g] * fc_scale : fz[FZI(i, j, k)];
                    const double fzh = kz[k + 2] == TS_AMR_REFINED ? fc2[zp[k]] * fc_scale : fz[FZI(i, j, k + 1)];
                    double q = u[k] + dtdx * (fzl - fzh);
                    q = q + dtdx * fxl;
                    q = q + dtdx * (fyl - fyh);
                    o[k] = q - dtdx * fxh;
                }
            }
        }
}

int ts_amr_sweep(const ts_amr_params *p, int64_t n, double dtdx, const double *U,
                 const uint8_t *kind, const int32_t *tiles, int64_t ntiles,
                 const double *fc_in, double fc_scale, double *fc_out, double fc_w,
                 int fc_acc, double *out)
{
    if (p->scheme != 0 && p->scheme != 1)
        return 5;
    if (p->limiter != 1 && p->limiter != 2)
        return 5;
    const double hdt = 0.5 * dtdx;
    int fail = 0;
#ifdef TURBSIM_OPENMP
#pragma omp parallel num_threads(amr_threads(p)) reduction(| : fail) if (ntiles > 2)
#endif
    {
        amr_work *wk = (amr_work *)malloc(sizeof(amr_work));
        if (!wk) {
            fail = 1;
        }
#ifdef TURBSIM_OPENMP
#pragma omp for schedule(dynamic, 4)
#endif
        for (int64_t t = 0; t < ntiles; t++) {
            if (!wk) continue;
            const int64_t x0 = (int64_t)tiles[3 * t] * T, y0 = (int64_t)tiles[3 * t + 1] * T;
            const int64_t z0 = (int64_t)tiles[3 * t + 2] * T;
            amr_rows(n, kind, x0, y0, z0, wk);
            amr_load(n, U, x0, y0, z0, wk);
            amr_faces(p, hdt, wk);
            amr_fluxes(p, wk);
            if (fc_out && wk->absent)   /* coarse-fine faces only beside an absent cell */
                amr_coarse_faces(n, kind, x0, y0, z0, wk, fc_w, fc_acc, fc_out);
            amr_update(n, dtdx, U, kind, x0, y0, z0, wk, fc_in, fc_scale,
                       out + t * NVAR * T * T * T);
        }
        free(wk);
    }
    (void)amr_threads;
    return fail ? 4 : 0;
}

static inline double amr_speed(double d, double px, double py, double pz, double rfloor,
                               int *ok)
{
    const double inv = 1.0 / d;
    const double s = (fabs(px) + fabs(py) + fabs(pz)) * inv;
    *ok = (d > rfloor) && (s < 1e300);
    return s;
}


/* the largest speed of the T leaves of a row starting at flat index g (all valid), or -1
 * when one is invalid (then the row is to be taken cell by cell) */
static inline double amr_row_speed(const double *U, int64_t n3, int64_t g, double rfloor)
{
    const double *restrict d = U + g, *restrict px = U + n3 + g;
    const double *restrict py = U + 2 * n3 + g, *restrict pz = U + 3 * n3 + g;
    double sm = 0.0;
    int all = 1;
#pragma omp simd reduction(max : sm) reduction(& : all)
    for (int k = 0; k < T; k++) {
        const double s = (fabs(px[k]) + fabs(py[k]) + fabs(pz[k])) * (1.0 / d[k]);
        const int ok = (d[k] > rfloor) & (s < 1e300);
        all &= ok;
        sm = sm > s ? sm : s;
    }
    return all ? sm : -1.0;
}

/* the speeds of the leaves of the row of T cells at flat index g0: the largest goes into *sm,
 * the first invalid leaf (density at or below the floor, or no finite speed) into *bd */
static inline void amr_row_check(const double *U, const uint8_t *kind, int64_t n3, int64_t g0,
                                 double rfloor, double *sm, int64_t *bd)
{
    if (amr_all_leaves(kind + g0)) {
        const double s = amr_row_speed(U, n3, g0, rfloor);
        if (s >= 0.0) {
            if (s > *sm) *sm = s;
            return;
        }
    }
    for (int k = 0; k < T; k++) {
        const int64_t g = g0 + k;
        if (kind[g] != TS_AMR_LEAF)
            continue;
        int ok;
        const double s = amr_speed(U[g], U[n3 + g], U[2 * n3 + g], U[3 * n3 + g], rfloor, &ok);
        if (!ok) { if (g < *bd) *bd = g; }
        else if (s > *sm) *sm = s;
    }
}

void ts_amr_scatter(const ts_amr_params *p, int64_t n, double *U, const uint8_t *kind,
                    const int32_t *tiles, int64_t ntiles, const double *out,
                    double *smax, int64_t *bad)
{
    const int64_t n3 = n * n * n;
    double sm = 0.0;
    int64_t bd = INT64_MAX;
#ifdef TURBSIM_OPENMP
#pragma omp parallel for num_threads(amr_threads(p)) schedule(static) reduction(max : sm) reduction(min : bd) if (ntiles > 64)
#endif
    for (int64_t t = 0; t < ntiles; t++) {
        const int64_t x0 = (int64_t)tiles[3 * t] * T, y0 = (int64_t)tiles[3 * t + 1] * T;
        const int64_t z0 = (int64_t)tiles[3 * t + 2] * T;
        const double *o = out + t * NVAR * T * T * T;
        for (int i = 0; i < T; i++)
            for (int j = 0; j < T; j++) {
                const int64_t g0 = ((x0 + i) * n + y0 + j) * n + z0;
                if (amr_all_leaves(kind + g0)) {   /* a row of leaves: copied whole */
                    for (int v = 0; v < NVAR; v++)
                        memcpy(U + v * n3 + g0, o + v * T * T * T + (i * T + j) * T,
                               T * sizeof(double));
                } else {
                    for (int k = 0; k < T; k++)
                        if (kind[g0 + k] == TS_AMR_LEAF)
                            for (int v = 0; v < NVAR; v++)
                                U[v * n3 + g0 + k] = o[v * T * T * T + (i * T + j) * T + k];
                }
                amr_row_check(U, kind, n3, g0, p->density_floor, &sm, &bd);
            }
    }
    *smax = sm;
    *bad = bd == INT64_MAX ? -1 : bd;
}

void ts_amr_leaf_speed(const ts_amr_params *p, int64_t n, const double *U,
                       const uint8_t *kind, double *smax, int64_t *bad)
{
    const int64_t n3 = n * n * n;
    double sm = 0.0;
    int64_t bd = INT64_MAX;
#ifdef TURBSIM_OPENMP
#pragma omp parallel for num_threads(amr_threads(p)) schedule(static) reduction(max : sm) reduction(min : bd) if (n3 > 262144)
#endif
    for (int64_t g = 0; g < n3; g++) {
        if (kind[g] != TS_AMR_LEAF)
            continue;
        int ok;
        const double s = amr_speed(U[g], U[n3 + g], U[2 * n3 + g], U[3 * n3 + g],
                                   p->density_floor, &ok);
        if (!ok) { if (g < bd) bd = g; }
        else if (s > sm) sm = s;
    }
    *smax = sm;
    *bad = bd == INT64_MAX ? -1 : bd;
}

void ts_amr_restrict(const ts_amr_params *p, int64_t nc, double *Uc, const double *Uf,
                     const int64_t *cells, int64_t ncells)
{
    const int64_t nf = 2 * nc, nc3 = nc * nc * nc, nf3 = nf * nf * nf;
    const int lc = amr_log2(nc);
#ifdef TURBSIM_OPENMP
#pragma omp parallel for num_threads(amr_threads(p)) schedule(static) if (ncells > 65536)
#endif
    for (int64_t q = 0; q < ncells; q++) {
        const int64_t c = cells[q];
        const int64_t cx = c >> (2 * lc), cy = (c >> lc) & (nc - 1), cz = c & (nc - 1);
        const int64_t f0 = ((2 * cx) * nf + 2 * cy) * nf + 2 * cz;
        const int64_t dx = nf * nf, dy = nf;
        for (int v = 0; v < NVAR; v++) {
            const double *F = Uf + v * nf3 + f0;
            const double s0 = (F[0] + F[1]) + (F[dy] + F[dy + 1]);
            const double s1 = (F[dx] + F[dx + 1]) + (F[dx + dy] + F[dx + dy + 1]);
            Uc[v * nc3 + c] = 0.125 * (s0 + s1);
        }
    }
}

static inline double amr_minmod(double a, double b)
{
    if (a * b <= 0) return 0.0;
    return fabs(a) < fabs(b) ? a : b;
}

void ts_amr_prolong(const ts_amr_params *p, int64_t nc, const double *Uc, double *Uf,
                    const int64_t *cells, int64_t ncells)
{
    const int64_t nf = 2 * nc, nc3 = nc * nc * nc, nf3 = nf * nf * nf;
    const int lc = amr_log2(nc);
#ifdef TURBSIM_OPENMP
#pragma omp parallel for num_threads(amr_threads(p)) schedule(static) if (ncells > 8192)
#endif
    for (int64_t q = 0; q < ncells; q++) {
        const int64_t c = cells[q];
        const int64_t cx = c >> (2 * lc), cy = (c >> lc) & (nc - 1), cz = c & (nc - 1);
        const int64_t xm = (wrap(cx - 1, nc) * nc + cy) * nc + cz, xp = (wrap(cx + 1, nc) * nc + cy) * nc + cz;
        const int64_t ym = (cx * nc + wrap(cy - 1, nc)) * nc + cz, yp = (cx * nc + wrap(cy + 1, nc)) * nc + cz;
        const int64_t zm = (cx * nc + cy) * nc + wrap(cz - 1, nc), zp = (cx * nc + cy) * nc + wrap(cz + 1, nc);
        const int64_t g0 = ((2 * cx) * nf + 2 * cy) * nf + 2 * cz;
        for (int v = 0; v < NVAR; v++) {
            const double *C = Uc + v * nc3;
            double *F = Uf + v * nf3 + g0;
            const double u0 = C[c];
            const double sx = amr_minmod(u0 - C[xm], C[xp] - u0);
            const double sy = amr_minmod(u0 - C[ym], C[yp] - u0);
            const double sz = amr_minmod(u0 - C[zm], C[zp] - u0);
            /* the child at offset (a, b, e) lies at (+-1/4, +-1/4, +-1/4) of the parent */
            for (int a = 0; a < 2; a++)
                for (int b = 0; b < 2; b++) {
                    const double tx = (a ? 0.25 : -0.25) * sx, ty = (b ? 0.25 : -0.25) * sy;
                    const double txy = tx + ty;
                    double *row = F + a * nf * nf + b * nf;
                    row[0] = u0 + (txy + -0.25 * sz);
                    row[1] = u0 + (txy + 0.25 * sz);
                }
        }
    }
}

/* ---------------------------------------------------------------------------------- */
/* Regrid stencils (RAMSES's flag_fine), one pass over a level each.                   */

/* density of cell (x, y, z) of level n, or of its coarser covering cell when absent */
static inline double amr_rho_or_parent(int64_t n, const double *rho, const uint8_t *kind,
                                       const double *rho_c, int64_t x, int64_t y, int64_t z)
{
    const int64_t g = (x * n + y) * n + z;
    if (kind[g] != TS_AMR_ABSENT || !rho_c)
        return rho[g];
    const int64_t m = n / 2;
    return rho_c[((x / 2) * m + y / 2) * m + z / 2];
}

/* RAMSES's criterion along one axis, from the densities below (dg), at (d) and above (dd) */
static inline int amr_grad_flag(double dg, double d, double dd, double err, double floor_d)
{
    const double e1 = fabs((dd - d) / (dd + d + floor_d));
    const double e2 = fabs((d - dg) / (d + dg + floor_d));
    return 2.0 * (e1 > e2 ? e1 : e2) > err;
}

/* 0: no cell of the row exists, 2: every cell does, 1: some do */
static inline uint8_t amr_row_state(const uint8_t *k, int64_t n)
{
    int64_t m = 0;
    for (int64_t z = 0; z < n; z++) m += k[z] != TS_AMR_ABSENT;
    return m == 0 ? 0 : (m == n ? 2 : 1);
}

void ts_amr_flag_gradient(const ts_amr_params *p, int64_t n, const double *rho,
                          const uint8_t *kind, const double *rho_c, double err,
                          double floor_d, uint8_t *flag)
{
    uint8_t *state = (uint8_t *)malloc((size_t)(n * n));
    if (state)
        for (int64_t r = 0; r < n * n; r++) state[r] = amr_row_state(kind + r * n, n);
#ifdef TURBSIM_OPENMP
#pragma omp parallel for num_threads(amr_threads(p)) schedule(static) if (n * n * n > 262144)
#endif
    for (int64_t x = 0; x < n; x++)
        for (int64_t y = 0; y < n; y++) {
            const int64_t xm = wrap(x - 1, n), xp = wrap(x + 1, n);
            const int64_t ym = wrap(y - 1, n), yp = wrap(y + 1, n);
            int64_t zlo = 0, zhi = n;   /* cells left to the per-cell path */
            if (state) {
                if (state[x * n + y] == 0)
                    continue;
                if ((state[x * n + y] & state[xm * n + y] & state[xp * n + y]
                     & state[x * n + ym] & state[x * n + yp]) == 2) {
                    /* the row and its 4 neighbour rows all exist: no covering cells */
                    const double *restrict c = rho + (x * n + y) * n;
                    const double *restrict a0 = rho + (xm * n + y) * n, *restrict a1 = rho + (xp * n + y) * n;
                    const double *restrict b0 = rho + (x * n + ym) * n, *restrict b1 = rho + (x * n + yp) * n;
                    uint8_t *restrict f = flag + (x * n + y) * n;
#pragma omp simd
                    for (int64_t z = 1; z < n - 1; z++) {
                        const double d = c[z];
                        const int ok = amr_grad_flag(a0[z], d, a1[z], err, floor_d)
                                       | amr_grad_flag(b0[z], d, b1[z], err, floor_d)
                                       | amr_grad_flag(c[z - 1], d, c[z + 1], err, floor_d);
                        f[z] |= (uint8_t)ok;
                    }
                    zlo = n - 1;   /* the two ends below: z = 0 and n - 1 */
                    zhi = n + 1;
                }
            }
            for (int64_t zz = zlo; zz < zhi; zz++) {
                const int64_t z = zz == n ? 0 : zz;
                const int64_t g = (x * n + y) * n + z;
                if (kind[g] == TS_AMR_ABSENT)
                    continue;
                const double d = rho[g];
                int ok = 0;
                for (int a = 0; a < 3 && !ok; a++) {
                    const int64_t ox = a == 0, oy = a == 1, oz = a == 2;
                    const double dg = amr_rho_or_parent(n, rho, kind, rho_c, wrap(x - ox, n),
                                                        wrap(y - oy, n), wrap(z - oz, n));
                    const double dd = amr_rho_or_parent(n, rho, kind, rho_c, wrap(x + ox, n),
                                                        wrap(y + oy, n), wrap(z + oz, n));
                    ok = amr_grad_flag(dg, d, dd, err, floor_d);
                }
                if (ok) flag[g] = 1;
            }
        }
    free(state);
}

void ts_amr_smooth(const ts_amr_params *p, int64_t n, uint8_t *flag, const uint8_t *kind,
                   uint8_t *work)
{
    static const int least[3] = {1, 2, 2};
    const int64_t n3 = n * n * n;
    /* the passes alternate between flag and work (the last one lands in work) */
    for (int pass = 0; pass < 3; pass++) {
        const uint8_t *src = pass == 1 ? work : flag;
        uint8_t *dst = pass == 1 ? flag : work;
        const int lst = least[pass];
#ifdef TURBSIM_OPENMP
#pragma omp parallel for num_threads(amr_threads(p)) schedule(static) if (n3 > 262144)
#endif
        for (int64_t x = 0; x < n; x++)
            for (int64_t y = 0; y < n; y++) {
                const int64_t xm = wrap(x - 1, n), xp = wrap(x + 1, n);
                const int64_t ym = wrap(y - 1, n), yp = wrap(y + 1, n);
                const uint8_t *restrict c = src + (x * n + y) * n;
                const uint8_t *restrict a0 = src + (xm * n + y) * n, *restrict a1 = src + (xp * n + y) * n;
                const uint8_t *restrict b0 = src + (x * n + ym) * n, *restrict b1 = src + (x * n + yp) * n;
                const uint8_t *restrict k = kind + (x * n + y) * n;
                uint8_t *restrict w = dst + (x * n + y) * n;
                /* the two ends wrap around the box, the rest is one vector loop */
                for (int64_t z = 0; z < n; z += n - 1) {
                    const int cnt = a0[z] + a1[z] + b0[z] + b1[z] + c[wrap(z - 1, n)] + c[wrap(z + 1, n)];
                    w[z] = c[z] | (k[z] != TS_AMR_ABSENT && cnt >= lst);
                }
#pragma omp simd
                for (int64_t z = 1; z < n - 1; z++) {
                    const uint8_t cnt = (uint8_t)(a0[z] + a1[z] + b0[z] + b1[z] + c[z - 1] + c[z + 1]);
                    w[z] = c[z] | (uint8_t)((k[z] != TS_AMR_ABSENT) & (cnt >= lst));
                }
            }
    }
    memcpy(flag, work, (size_t)n3);
}

/* out = the OR (dilate) or the AND (erode) of in over the 3x3x3 cube around each cell
 * (periodic), one axis at a time; in, out and tmp hold n^3 bytes 0/1 (in may be out) */
static void amr_box3(int nthreads, int64_t n, const uint8_t *in, uint8_t *out,
                     uint8_t *tmp, int dilate)
{
    const int64_t n3 = n * n * n;
    (void)nthreads;
    /* along z: in -> tmp */
#ifdef TURBSIM_OPENMP
#pragma omp parallel for num_threads(nthreads) schedule(static) if (n3 > 262144)
#endif
    for (int64_t r = 0; r < n * n; r++) {
        const uint8_t *restrict a = in + r * n;
        uint8_t *restrict b = tmp + r * n;
        for (int64_t z = 0; z < n; z += n - 1) {
            const uint8_t u = a[wrap(z - 1, n)], v = a[z], w = a[wrap(z + 1, n)];
            b[z] = dilate ? (u | v | w) : (u & v & w);
        }
        if (dilate) {
#pragma omp simd
            for (int64_t z = 1; z < n - 1; z++) b[z] = a[z - 1] | a[z] | a[z + 1];
        } else {
#pragma omp simd
            for (int64_t z = 1; z < n - 1; z++) b[z] = a[z - 1] & a[z] & a[z + 1];
        }
    }
    /* along y, then x: rows combined whole (tmp -> out -> tmp), then copied to out */
    for (int axis = 0; axis < 2; axis++) {
        const uint8_t *src = axis == 0 ? tmp : out;
        uint8_t *dst = axis == 0 ? out : tmp;
#ifdef TURBSIM_OPENMP
#pragma omp parallel for num_threads(nthreads) schedule(static) if (n3 > 262144)
#endif
        for (int64_t x = 0; x < n; x++)
            for (int64_t y = 0; y < n; y++) {
                int64_t m0, m1;
                if (axis == 0) {
                    m0 = (x * n + wrap(y - 1, n)) * n;
                    m1 = (x * n + wrap(y + 1, n)) * n;
                } else {
                    m0 = (wrap(x - 1, n) * n + y) * n;
                    m1 = (wrap(x + 1, n) * n + y) * n;
                }
                const uint8_t *restrict u = src + m0, *restrict v = src + (x * n + y) * n;
                const uint8_t *restrict w = src + m1;
                uint8_t *restrict b = dst + (x * n + y) * n;
                if (dilate) {
#pragma omp simd
                    for (int64_t z = 0; z < n; z++) b[z] = u[z] | v[z] | w[z];
                } else {
#pragma omp simd
                    for (int64_t z = 0; z < n; z++) b[z] = u[z] & v[z] & w[z];
                }
            }
    }
    memcpy(out, tmp, (size_t)n3);
}

void ts_amr_nest_ok(const ts_amr_params *p, int64_t n, const uint8_t *kind, uint8_t *flag)
{
    const int64_t n3 = n * n * n;
    uint8_t *ok = (uint8_t *)malloc((size_t)n3), *tmp = (uint8_t *)malloc((size_t)n3);
    if (ok && tmp) {
        /* cells whose 27-cube exists: the erosion of the existing cells */
        for (int64_t g = 0; g < n3; g++) ok[g] = kind[g] != TS_AMR_ABSENT;
        amr_box3(amr_threads(p), n, ok, ok, tmp, 0);
        for (int64_t g = 0; g < n3; g++) flag[g] = flag[g] & ok[g];
        free(ok);
        free(tmp);
        return;
    }
    free(ok);
    free(tmp);
    /* without the memory: cell by cell */
#ifdef TURBSIM_OPENMP
#pragma omp parallel for num_threads(amr_threads(p)) schedule(static) if (n * n * n > 262144)
#endif
    for (int64_t x = 0; x < n; x++)
        for (int64_t y = 0; y < n; y++)
            for (int64_t z = 0; z < n; z++) {
                const int64_t g = (x * n + y) * n + z;
                if (!flag[g])
                    continue;
                int ok = 1;
                for (int a = -1; a <= 1 && ok; a++)
                    for (int b = -1; b <= 1 && ok; b++)
                        for (int c = -1; c <= 1 && ok; c++)
                            ok = kind[(wrap(x + a, n) * n + wrap(y + b, n)) * n + wrap(z + c, n)]
                                 != TS_AMR_ABSENT;
                flag[g] = (uint8_t)ok;
            }
}

/* ---------------------------------------------------------------------------------- */
/* Bookkeeping of the mesh (serial: one pass over a level; orders are fixed).          */

void ts_amr_any_child(int64_t nc, const uint8_t *fine, uint8_t value, uint8_t *out)
{
    const int64_t nf = 2 * nc;
    for (int64_t x = 0; x < nc; x++)
        for (int64_t y = 0; y < nc; y++)
            for (int64_t z = 0; z < nc; z++) {
                uint8_t any = 0;
                for (int a = 0; a < 2; a++)
                    for (int b = 0; b < 2; b++) {
                        const uint8_t *f = fine + ((2 * x + a) * nf + 2 * y + b) * nf + 2 * z;
                        any |= (f[0] == value) | (f[1] == value);
                    }
                out[(x * nc + y) * nc + z] = any;
            }
}

/* number of the 8 children of coarse cell (x, y, z) whose kind is v (fine level nf) */
static inline int amr_oct_count(const uint8_t *kind_f, int64_t nf, int64_t x, int64_t y,
                                int64_t z, uint8_t v)
{
    int m = 0;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            const uint8_t *f = kind_f + ((2 * x + a) * nf + 2 * y + b) * nf + 2 * z;
            m += (f[0] == v) + (f[1] == v);
        }
    return m;
}

/* whether the len bytes at k are all 0 */
static inline int amr_zero(const uint8_t *k, int64_t len)
{
    uint64_t acc = 0;
    int64_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, k + i, 8);
        acc |= w;
    }
    for (; i < len; i++) acc |= k[i];
    return acc == 0;
}

int64_t ts_amr_apply(int64_t nc, uint8_t *kind_c, const uint8_t *flag, uint8_t *kind_f,
                     int64_t *fresh, int64_t *removed)
{
    const int64_t nf = 2 * nc;
    int64_t nfresh = 0, nremoved = 0;
    for (int64_t x = 0; x < nc; x++)
        for (int64_t y = 0; y < nc; y++) {
            const int64_t r = (x * nc + y) * nc;
            /* a row of absent cells without children (the usual case) */
            if (amr_zero(kind_c + r, nc)) {
                int empty = 1;
                for (int a = 0; a < 2 && empty; a++)
                    for (int b = 0; b < 2 && empty; b++)
                        empty = amr_zero(kind_f + ((2 * x + a) * nf + 2 * y + b) * nf, nf);
                if (empty)
                    continue;
            }
            for (int64_t z = 0; z < nc; z++) {
                const int64_t c = r + z;
                const uint8_t k = kind_c[c];
                const int ref = k != TS_AMR_ABSENT && flag[c];
                /* nothing changes where a leaf stays a leaf or a refined cell stays
                 * refined with its 8 children (octs are whole); an absent cell has no
                 * children unless its parent was just removed */
                if (k == TS_AMR_LEAF && !ref)
                    continue;
                if (ref) {
                    if (k == TS_AMR_REFINED && amr_oct_count(kind_f, nf, x, y, z, TS_AMR_ABSENT) == 0)
                        continue;
                } else if (amr_oct_count(kind_f, nf, x, y, z, TS_AMR_ABSENT) == 8) {
                    continue;
                }
                /* changed: counted (first call) or applied and listed (second call) */
                if (!fresh) {
                    nfresh += ref;
                    nremoved += k == TS_AMR_REFINED && !ref;
                    continue;
                }
                if (k != TS_AMR_ABSENT) kind_c[c] = ref ? TS_AMR_REFINED : TS_AMR_LEAF;
                for (int a = 0; a < 2; a++)
                    for (int b = 0; b < 2; b++) {
                        uint8_t *f = kind_f + ((2 * x + a) * nf + 2 * y + b) * nf + 2 * z;
                        for (int e = 0; e < 2; e++)
                            f[e] = ref ? (f[e] == TS_AMR_ABSENT ? TS_AMR_LEAF : f[e]) : TS_AMR_ABSENT;
                    }
                if (ref)
                    fresh[nfresh++] = c;
            }
        }
    if (removed && !fresh) *removed = nremoved;
    return nfresh;
}

/* leaves (kind 1) among the 8 kinds of a row segment: kinds are 0, 1, 2, so the low bit
 * of each byte marks a leaf */
static inline int amr_leaves8(const uint8_t *k)
{
    uint64_t w;
    memcpy(&w, k, 8);
    return w ? __builtin_popcountll(w & 0x0101010101010101ULL) : 0;
}

int64_t ts_amr_tiles(int64_t n, const uint8_t *kind, int32_t *tiles, int64_t *nleaves)
{
    const int64_t nt = n / T, nt3 = nt * nt * nt;
    int64_t count = 0, leaves = 0;
    /* leaves per tile, the level read in its storage order */
    int64_t *here = (int64_t *)calloc((size_t)nt3, sizeof(int64_t));
    if (!here)
        return -1;
    for (int64_t x = 0; x < n; x++)
        for (int64_t y = 0; y < n; y++) {
            const uint8_t *k = kind + (x * n + y) * n;
            int64_t *h = here + ((x / T) * nt + y / T) * nt;
            for (int64_t c = 0; c < nt; c++)
                h[c] += amr_leaves8(k + c * T);
        }
    for (int64_t t = 0; t < nt3; t++) {
        leaves += here[t];
        if (here[t]) {
            if (tiles) {
                tiles[3 * count] = (int32_t)(t / (nt * nt));
                tiles[3 * count + 1] = (int32_t)((t / nt) % nt);
                tiles[3 * count + 2] = (int32_t)(t % nt);
            }
            count++;
        }
    }
    free(here);
    if (nleaves) *nleaves = leaves;
    return count;
}

int64_t ts_amr_ghosts(int64_t nc, const uint8_t *kind_c, uint8_t *mark, int64_t *ghosts)
{
    const int64_t nc3 = nc * nc * nc;
    int64_t count = 0;
    if (!ghosts) {
        /* mark the cells that are not refined but touch a refined one: the dilation of
         * the refined cells, less themselves */
        uint8_t *ref = (uint8_t *)malloc((size_t)nc3), *tmp = (uint8_t *)malloc((size_t)nc3);
        if (ref && tmp) {
            for (int64_t c = 0; c < nc3; c++) ref[c] = kind_c[c] == TS_AMR_REFINED;
            amr_box3(1, nc, ref, mark, tmp, 1);
            for (int64_t c = 0; c < nc3; c++) mark[c] = mark[c] & (uint8_t)!ref[c];
        } else {
            memset(mark, 0, (size_t)nc3);
            for (int64_t x = 0; x < nc; x++)
                for (int64_t y = 0; y < nc; y++)
                    for (int64_t z = 0; z < nc; z++) {
                        if (kind_c[(x * nc + y) * nc + z] != TS_AMR_REFINED)
                            continue;
                        for (int a = -1; a <= 1; a++)
                            for (int b = -1; b <= 1; b++)
                                for (int e = -1; e <= 1; e++) {
                                    const int64_t c = (wrap(x + a, nc) * nc + wrap(y + b, nc)) * nc
                                                      + wrap(z + e, nc);
                                    if (kind_c[c] != TS_AMR_REFINED) mark[c] = 1;
                                }
                    }
        }
        free(ref);
        free(tmp);
        for (int64_t c = 0; c < nc3; c++) count += mark[c];
        return count;
    }
    for (int64_t c = 0; c < nc3; c++)
        if (mark[c])
            ghosts[count++] = c;
    return count;
}

void ts_amr_tile_speed(const ts_amr_params *p, int64_t n, const double *U, const uint8_t *kind,
                       const int32_t *tiles, int64_t ntiles, double *smax, int64_t *bad)
{
    const int64_t n3 = n * n * n;
    double sm = 0.0;
    int64_t bd = INT64_MAX;
#ifdef TURBSIM_OPENMP
#pragma omp parallel for num_threads(amr_threads(p)) schedule(static) reduction(max : sm) reduction(min : bd) if (ntiles > 64)
#endif
    for (int64_t t = 0; t < ntiles; t++) {
        const int64_t x0 = (int64_t)tiles[3 * t] * T, y0 = (int64_t)tiles[3 * t + 1] * T;
        const int64_t z0 = (int64_t)tiles[3 * t + 2] * T;
        for (int i = 0; i < T; i++)
            for (int j = 0; j < T; j++) {
                const int64_t g0 = ((x0 + i) * n + y0 + j) * n + z0;
                amr_row_check(U, kind, n3, g0, p->density_floor, &sm, &bd);
            }
    }
    *smax = sm;
    *bad = bd == INT64_MAX ? -1 : bd;
}

/*
 * One time step for the x slabs [a, b) of one thread, and the boundary step that completes
 * it: the conservative update of Godunov-type schemes (Toro 2009, ch. 6) summed over the
 * three directions (unsplit),
 *
 *   U_new = U + dt/dx sum over the axes of (F at the low face - F at the high face),
 *
 * evaluated for every cell in one fixed order of operations:
 *
 *   P1 = u + dtdx (Fz[i - 1/2] - Fz[i + 1/2])     (u itself when z has one cell)
 *   P2 = P1 + dtdx Fx[s - 1/2]
 *   P3 = P2 + dtdx (Fy[j - 1/2] - Fy[j + 1/2])
 *   un = P3 - dtdx Fx[s + 1/2]
 *
 * (the terms of an axis with one cell are left out; the fluxes are held as 2F and dtdx is
 * dt/(2 dx), kcon.fdtdx, which gives the same bits: llf_impl.h). Each flux is computed
 * once, and the order is the same for every cell whatever the thread partition, so the
 * result is bit-identical for any number of threads.
 *
 * Every loop runs along the contiguous z axis of one row ("pencil"). For each slab s of
 * the thread and each row j:
 *   1. the primitive planes W: a ring of three (slabs s - 1, s, s + 1), kept when the
 *      reconstruction reads the neighbouring slabs; slab s + 1 is new;
 *   2. the face states of the row's cells, from the reconstruction;
 *   3. LLF fluxes through the z faces of the row;
 *   4. the flux through the x face s - 1/2 (left: the x+ states kept from slab s - 1): it
 *      completes row j of slab s - 1 (un = P3 - ..., with its signal speed and validity);
 *   5. the flux through the y face j - 1/2 (left: the y+ states kept from row j - 1): it
 *      gives P3 of row j - 1, written to Un; after the last row, the periodic face, and
 *      P3 of the last row and of row 0.
 * The thread's first slab a has no x face below yet: the left state of a - 1/2 is made by
 * the thread that owns slab a - 1, at the end of its sweep. So slab a keeps P1 in Un, its y
 * flux differences and the fluxes through its x+ faces, and its x- states; after all
 * threads have swept, the boundary step computes the flux through a - 1/2 once and
 * completes both slab a - 1 (of the left thread; with one thread, the periodic neighbour)
 * and slab a. No slab is reconstructed twice and no flux computed twice; only the
 * primitive planes of slabs a - 1 and b, which the reconstruction reads, are made by both
 * threads that read them.
 */

/* P3 of the cells of row j of slab s (see above) into Un. On the thread's first slab
 * (first): P1 into Un, and the y flux differences into dfirst. With no x axis: un itself,
 * and the speeds of the completed cells. fz: z fluxes (face i + 1/2 at o + i), fx: x
 * fluxes of the face below, fyl and fyh: y fluxes below and above (cell i at i). */
static inline __attribute__((always_inline)) void
FN(row_update)(const FN(kcon) *k, FN(work) *w, REAL *const U[NV], REAL *const Un[NV],
               int64_t s, int64_t j, const int first, REAL *const fz[NV], REAL *const fx[NV],
               REAL *const fyl[NV], REAL *const fyh[NV])
{
    const int64_t nz = k->nz, o = k->o, base = (s * k->ny + j) * nz;
    const int hz = !k->skip_z, hx = !k->skip_x && !first, hy = !k->skip_y;
    const REAL dtdx = k->fdtdx;     /* for the sweep's fluxes, 2F */
    /* one loop per variable: six streams, few enough to stay in registers */
    for (int v = 0; v < NV; v++) {
        const REAL *restrict u = U[v] + base, *restrict z = fz[v] + o - 1;
        const REAL *restrict x = fx[v], *restrict yl = hy ? fyl[v] : u, *restrict yh = hy ? fyh[v] : u;
        REAL *restrict un = Un[v] + base, *restrict dy = w->dfirst[v] + j * nz;
        if (first) {
            /* P1, and the y differences for the boundary step */
#pragma omp simd
            for (int64_t i = 0; i < nz; i++)
                un[i] = hz ? u[i] + dtdx * (z[i] - z[i + 1]) : u[i];
            if (hy)
#pragma omp simd
                for (int64_t i = 0; i < nz; i++)
                    dy[i] = yl[i] - yh[i];
        } else {
#pragma omp simd
            for (int64_t i = 0; i < nz; i++) {
                REAL p = hz ? u[i] + dtdx * (z[i] - z[i + 1]) : u[i];
                if (hx) p = p + dtdx * x[i];
                if (hy) p = p + dtdx * (yl[i] - yh[i]);
                un[i] = p;
            }
        }
    }
    if (k->skip_x)
        FN(row_speed)(k, w, Un, base, nz);
}

/* Complete the n cells of Un at base through their x+ faces: un = P3 - dtdx Fx[s + 1/2],
 * with their speeds and validity. */
static inline __attribute__((always_inline)) void
FN(row_complete)(const FN(kcon) *k, FN(work) *w, REAL *const Un[NV], int64_t base,
                 REAL *const fx[NV], int64_t n)
{
    const REAL dtdx = k->fdtdx;     /* for the sweep's fluxes, 2F */
    REAL *restrict d = Un[IDN] + base, *restrict px = Un[IVX] + base;
    REAL *restrict py = Un[IVY] + base, *restrict pz = Un[IVZ] + base;
    const REAL *restrict f0 = fx[IDN], *restrict f1 = fx[IVX];
    const REAL *restrict f2 = fx[IVY], *restrict f3 = fx[IVZ];
    const FN(speed_con) c = FN(speed_constants)(k);
    REAL smax = w->smax;
    int64_t nbad = 0;
#pragma omp simd reduction(max : smax) reduction(+ : nbad)
    for (int64_t i = 0; i < n; i++) {
        const REAL d1 = d[i] - dtdx * f0[i], x1 = px[i] - dtdx * f1[i];
        const REAL y1 = py[i] - dtdx * f2[i], z1 = pz[i] - dtdx * f3[i];
        d[i] = d1; px[i] = x1; py[i] = y1; pz[i] = z1;
        /* 6. the completed cell's signal speed and validity */
        int ok;
        const REAL sp = FN(cell_speed)(c, d1, x1, y1, z1, &ok);
        nbad += ok ? 0 : 1;
        smax = (ok && sp > smax) ? sp : smax;
    }
    w->smax = smax;
    if (nbad)
        FN(row_speed)(k, w, Un, base, n);     /* finds the first invalid cell */
}

/* Complete the n cells of the thread's first slab at base, once the flux fx through their
 * x- faces is known: un = ((P1 + dtdx Fx[a - 1/2]) + dtdx dy) - dtdx Fx[a + 1/2]. */
static inline __attribute__((always_inline)) void
FN(row_first)(const FN(kcon) *k, FN(work) *w, REAL *const Un[NV], int64_t base,
              REAL *const fx[NV], int64_t off, int64_t n)
{
    const REAL dtdx = k->fdtdx;     /* for the sweep's fluxes, 2F */
    const int hy = !k->skip_y;
    for (int v = 0; v < NV; v++) {
        REAL *restrict un = Un[v] + base;
        const REAL *restrict lo = fx[v], *restrict hi = w->fxh[v] + off;
        const REAL *restrict dy = w->dfirst[v] + off;
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            REAL p = un[i] + dtdx * lo[i];
            if (hy) p = p + dtdx * dy[i];
            un[i] = p - dtdx * hi[i];
        }
    }
    FN(row_speed)(k, w, Un, base, n);
}

static void FN(copy_flux)(int64_t n, REAL *const dst[NV], int64_t off, REAL *const src[NV])
{
    for (int v = 0; v < NV; v++)
        memcpy(dst[v] + off, src[v], (size_t)n * sizeof(REAL));
}

static void FN(swap_flux)(REAL *a[NV], REAL *b[NV])
{
    for (int v = 0; v < NV; v++) { REAL *t = a[v]; a[v] = b[v]; b[v] = t; }
}

static inline __attribute__((always_inline)) void
FN(sweep)(const FN(kcon) *k, FN(work) *w, REAL *const U[NV], REAL *const Un[NV], int64_t a,
          int64_t b, const FN(reconstruction) *rec, FN(riemann_fn) riemann)
{
    const int64_t nx = k->nx, ny = k->ny, nz = k->nz, nyz = ny * nz, o = k->o;
    REAL *W[3][NV];
    FN(face) yp_prev = {{NULL}}, ym_row0 = {{NULL}};     /* y+ of row j - 1, y- of row 0 */
    FN(row_faces) f;
    w->smax = 0;
    w->bad = -1;
#define WRAP(s) ((((s) % nx) + nx) % nx)
    /* 1. the ring before slab a: W[1], W[2] = slabs a - 1, a */
    if (rec->width > 0) {
        for (int r = 0; r < 3; r++)
            for (int v = 0; v < NV; v++) W[r][v] = w->W[r][v];
        FN(primitive_plane)(k, W[1], U, WRAP(a - 1));
        FN(primitive_plane)(k, W[2], U, a);
    }
    for (int64_t s = a; s < b; s++) {
        const int first = (s == a) && !k->skip_x;
        if (rec->width > 0) {
            /* 1. advance the ring: W[0], W[1], W[2] = slabs s - 1, s, s + 1 */
            for (int v = 0; v < NV; v++) {
                REAL *t = W[0][v]; W[0][v] = W[1][v]; W[1][v] = W[2][v]; W[2][v] = t;
            }
            FN(primitive_plane)(k, W[2], U, WRAP(s + 1));
        }
        const FN(face) *xp = &w->xplane[(s - a) & 1], *xm = first ? &w->xfirst : NULL;
        if (rec->slab)
            rec->slab(k, U, s, xm ? xm : xp);
        for (int64_t j = 0; j < ny; j++) {
            const int r = j == 0 ? 0 : 1 + (int)(j & 1);   /* flux rows of row j */
            /* 2. face states of the row */
            rec->row(k, w, W, j, xp, xm, &f);
            /* 3. z faces i + 1/2 (left: z+ of cell i, right: z- of cell i + 1) */
            if (!k->skip_z) {
                riemann(k, nz, &f.zp, o, &f.zm, o + 1, AXIS_Z, w->fz[r], o);
                for (int v = 0; v < NV; v++) w->fz[r][v][o - 1] = w->fz[r][v][o + nz - 1];
            }
            /* 4. x face s - 1/2 (left: x+ of slab s - 1, right: x- of slab s); it completes
             * row j of slab s - 1, or is kept when s - 1 is the thread's first slab */
            if (!k->skip_x && !first) {
                riemann(k, nz, &w->xp_prev[j], o, &f.xm, o, AXIS_X, w->fx[r], 0);
                if (s - 1 == a)
                    FN(copy_flux)(nz, w->fxh, j * nz, w->fx[r]);
                else
                    FN(row_complete)(k, w, Un, (s - 1) * nyz + j * nz, w->fx[r], nz);
            }
            w->xp_prev[j] = f.xp;
            /* 5. y face j - 1/2 (left: y+ of row j - 1, right: y- of row j); row 0 waits for
             * the periodic face */
            if (k->skip_y) {
                FN(row_update)(k, w, U, Un, s, j, first, w->fz[r], w->fx[r], NULL, NULL);
            } else {
                if (j == 0) {
                    ym_row0 = f.ym;
                } else {
                    riemann(k, nz, &yp_prev, o, &f.ym, o, AXIS_Y, w->fy, 0);
                    if (j == 1) {
                        FN(copy_flux)(nz, w->fy1, 0, w->fy);
                    } else {
                        const int rp = 1 + (int)((j - 1) & 1);
                        FN(row_update)(k, w, U, Un, s, j - 1, first, w->fz[rp], w->fx[rp],
                                       w->fy_lo, w->fy);
                    }
                    FN(swap_flux)(w->fy_lo, w->fy);
                }
                yp_prev = f.yp;
            }
        }
        if (!k->skip_y) {
            /* 5. the periodic y face between the last row and row 0 */
            const int rl = ny - 1 == 0 ? 0 : 1 + (int)((ny - 1) & 1);
            riemann(k, nz, &yp_prev, o, &ym_row0, o, AXIS_Y, w->fy, 0);
            FN(row_update)(k, w, U, Un, s, ny - 1, first, w->fz[rl], w->fx[rl], w->fy_lo, w->fy);
            FN(row_update)(k, w, U, Un, s, 0, first, w->fz[0], w->fx[0], w->fy, w->fy1);
        }
    }
#undef WRAP
}

/* The boundary step of a thread whose first slab is a (after every thread has swept):
 * the flux through the face a - 1/2, between the x+ states of the left thread's last slab
 * and the x- states of slab a, completes both slabs. */
static inline __attribute__((always_inline)) void
FN(boundary)(const FN(kcon) *k, FN(work) *w, const FN(work) *left, REAL *const Un[NV],
             int64_t a, const FN(reconstruction) *rec, FN(riemann_fn) riemann)
{
    if (k->skip_x)
        return;
    const int64_t nx = k->nx, ny = k->ny, nz = k->nz, nyz = ny * nz, o = k->o;
    const int64_t am = (a + nx - 1) % nx;
    for (int64_t j = 0; j < ny; j++) {
        const FN(face) xm = FN(face_row)(&w->xfirst, rec->nq, j, k->nzp);
        riemann(k, nz, &left->xp_prev[j], o, &xm, o, AXIS_X, w->fx[0], 0);
        FN(row_complete)(k, w, Un, am * nyz + j * nz, w->fx[0], nz);
        FN(row_first)(k, w, Un, a * nyz + j * nz, w->fx[0], j * nz, nz);
    }
}

/* ---------------------------------------------------------------------------------- */
/* First order, fused: one loop per row forms the six face fluxes of each cell in        */
/* registers from the primitive states of the cell and its six neighbours and writes    */
/* the new state once. Every face is evaluated by both its cells (the same operands and */
/* operations, so the same bits), nothing is stored but the primitive planes and the    */
/* state, and a thread needs nothing from another during a step: no boundary step.     */
/* The fluxes are 2F (llf2_isothermal's arithmetic), the update the order of the sweep  */
/* above. Used for grids with more than one cell along every axis.                      */

/* 2F of one isothermal LLF face (llf_core with twice = 1, has_h = 0): left state
 * (dl, vl, al, bl), right (dr, vr, ar, br), normal velocity first. */
static inline __attribute__((always_inline)) void
FN(llf2_face)(REAL cs2, REAL c0, REAL dl, REAL vl, REAL al, REAL bl, REAL dr, REAL vr,
              REAL ar, REAL br, REAL *f0, REAL *fn, REAL *fa, REAL *fb)
{
    const REAL pl = cs2 * dl, pr = cs2 * dr;
    const REAL avl = FABS(vl), avr = FABS(vr);
    const REAL s = (avl > avr ? avl : avr) + c0;
    const REAL ml = dl * vl, mr = dr * vr;
    const REAL tal = dl * al, tar = dr * ar;
    const REAL tbl = dl * bl, tbr = dr * br;
    *f0 = (ml + mr) - s * (dr - dl);
    *fn = ((vl * ml + pl) + (vr * mr + pr)) - s * (mr - ml);
    *fa = (vl * tal + vr * tar) - s * (tar - tal);
    *fb = (vl * tbl + vr * tbr) - s * (tbr - tbl);
}

static void FN(sweep_first_fused)(const FN(kcon) *k, FN(work) *w, REAL *const U[NV],
                                  REAL *const Un[NV], int64_t a, int64_t b)
{
    const int64_t nx = k->nx, ny = k->ny, nz = k->nz, nzp = k->nzp, o = k->o;
    const REAL dtdx = k->fdtdx, cs2 = k->cs2, c0 = k->c0;
    const FN(speed_con) c = FN(speed_constants)(k);
    REAL *W[3][NV];
    REAL *fz[NV], *fyl[NV], *fyh[NV];
    for (int v = 0; v < NV; v++) { fz[v] = w->fz[0][v]; fyl[v] = w->fy_lo[v]; fyh[v] = w->fy[v]; }
    w->smax = 0;
    w->bad = -1;
    for (int r = 0; r < 3; r++)
        for (int v = 0; v < NV; v++) W[r][v] = w->W[r][v];
    FN(primitive_plane)(k, W[1], U, (a - 1 + nx) % nx);
    FN(primitive_plane)(k, W[2], U, a);
    for (int64_t s = a; s < b; s++) {
        for (int v = 0; v < NV; v++) {
            REAL *t = W[0][v]; W[0][v] = W[1][v]; W[1][v] = W[2][v]; W[2][v] = t;
        }
        FN(primitive_plane)(k, W[2], U, (s + 1) % nx);
        const FN(face) plane = {{W[1][IDN], W[1][IVX], W[1][IVY], W[1][IVZ], NULL}};
        {
            /* the y face -1/2 (between the last row and row 0); the others come from the
             * row below them */
            const FN(face) last = FN(face_row)(&plane, NV, ny - 1, nzp);
            const FN(face) row0 = FN(face_row)(&plane, NV, 0, nzp);
            FN(llf2_isothermal)(k, nz, &last, o, &row0, o, AXIS_Y, fyl, 0);
        }
        for (int64_t j = 0; j < ny; j++) {
            const int64_t jp = j == ny - 1 ? 0 : j + 1;
            const int64_t oc = j * nzp + o, op = jp * nzp + o;
            const int64_t base = (s * ny + j) * nz;
            /* the z faces -1/2 .. nz - 1/2 of the row (periodic ghosts of the plane) */
            const FN(face) cr = FN(face_row)(&plane, NV, j, nzp);
            FN(llf2_isothermal)(k, nz + 1, &cr, o - 1, &cr, o, AXIS_Z, fz, o - 1);
            const REAL *restrict r = W[1][IDN] + oc, *restrict u = W[1][IVX] + oc;
            const REAL *restrict v = W[1][IVY] + oc, *restrict ww = W[1][IVZ] + oc;
            const REAL *restrict rxm = W[0][IDN] + oc, *restrict uxm = W[0][IVX] + oc;
            const REAL *restrict vxm = W[0][IVY] + oc, *restrict wxm = W[0][IVZ] + oc;
            const REAL *restrict rxp = W[2][IDN] + oc, *restrict uxp = W[2][IVX] + oc;
            const REAL *restrict vxp = W[2][IVY] + oc, *restrict wxp = W[2][IVZ] + oc;
            const REAL *restrict ryp = W[1][IDN] + op, *restrict uyp = W[1][IVX] + op;
            const REAL *restrict vyp = W[1][IVY] + op, *restrict wyp = W[1][IVZ] + op;
            const REAL *restrict z0 = fz[IDN] + o - 1, *restrict z1 = fz[IVX] + o - 1;
            const REAL *restrict z2 = fz[IVY] + o - 1, *restrict z3 = fz[IVZ] + o - 1;
            const REAL *restrict yl0 = fyl[IDN], *restrict yl1 = fyl[IVX];
            const REAL *restrict yl2 = fyl[IVY], *restrict yl3 = fyl[IVZ];
            REAL *restrict yh0 = fyh[IDN], *restrict yh1 = fyh[IVX];
            REAL *restrict yh2 = fyh[IVY], *restrict yh3 = fyh[IVZ];
            const REAL *restrict u0 = U[IDN] + base, *restrict u1 = U[IVX] + base;
            const REAL *restrict u2 = U[IVY] + base, *restrict u3 = U[IVZ] + base;
            REAL *restrict n0 = Un[IDN] + base, *restrict n1 = Un[IVX] + base;
            REAL *restrict n2 = Un[IVY] + base, *restrict n3 = Un[IVZ] + base;
            REAL smax = w->smax;
            int64_t nbad = 0;
#pragma omp simd reduction(max : smax) reduction(+ : nbad)
            for (int64_t i = 0; i < nz; i++) {
                /* x faces s -+ 1/2 (both here: no plane of fluxes carried between slabs)
                 * and the y face j + 1/2 (kept for the next row); the normal velocity first
                 * in each call, then the other two in order */
                REAL xl0, xl1, xl2, xl3, xh0, xh1, xh2, xh3, h0, h1, h2, h3;
                FN(llf2_face)(cs2, c0, rxm[i], uxm[i], vxm[i], wxm[i], r[i], u[i], v[i], ww[i],
                              &xl0, &xl1, &xl2, &xl3);
                FN(llf2_face)(cs2, c0, r[i], u[i], v[i], ww[i], rxp[i], uxp[i], vxp[i], wxp[i],
                              &xh0, &xh1, &xh2, &xh3);
                FN(llf2_face)(cs2, c0, r[i], v[i], u[i], ww[i], ryp[i], vyp[i], uyp[i], wyp[i],
                              &h0, &h2, &h1, &h3);
                yh0[i] = h0; yh1[i] = h1; yh2[i] = h2; yh3[i] = h3;
                /* the update, in the order of the sweep above */
                const REAL d1 = (((u0[i] + dtdx * (z0[i] - z0[i + 1])) + dtdx * xl0) + dtdx * (yl0[i] - h0)) - dtdx * xh0;
                const REAL x1 = (((u1[i] + dtdx * (z1[i] - z1[i + 1])) + dtdx * xl1) + dtdx * (yl1[i] - h1)) - dtdx * xh1;
                const REAL y1 = (((u2[i] + dtdx * (z2[i] - z2[i + 1])) + dtdx * xl2) + dtdx * (yl2[i] - h2)) - dtdx * xh2;
                const REAL q1 = (((u3[i] + dtdx * (z3[i] - z3[i + 1])) + dtdx * xl3) + dtdx * (yl3[i] - h3)) - dtdx * xh3;
                n0[i] = d1; n1[i] = x1; n2[i] = y1; n3[i] = q1;
                int ok;
                const REAL sp = FN(cell_speed)(c, d1, x1, y1, q1, &ok);
                nbad += ok ? 0 : 1;
                smax = (ok && sp > smax) ? sp : smax;
            }
            w->smax = smax;
            if (nbad)
                FN(row_speed)(k, w, Un, base, nz);     /* finds the first invalid cell */
            FN(swap_flux)(fyl, fyh);
        }
    }
}

/* Its buffers: the ring of three primitive planes, nothing else. */
static const FN(reconstruction) FN(piecewise_constant_fused) = {
    .width = 1, .nq = 0, .rows = 0, .slab = NULL, .row = NULL,
};

/* The sweeps the time loop chooses from, one per pair of reconstruction and closure of the
 * Riemann solver: each is the sweep above with its methods known to the compiler, so their
 * calls are direct and inlined (calls through pointers, once per row and face, cost the
 * first-order step 3-5 %). */
#define TS_SWEEP(name, REC, RIEMANN)                                                          \
    static void FN(sweep_##name)(const FN(kcon) *k, FN(work) *w, REAL *const U[NV],          \
                                 REAL *const Un[NV], int64_t a, int64_t b)                   \
    {                                                                                        \
        FN(sweep)(k, w, U, Un, a, b, &REC, RIEMANN);                                         \
    }                                                                                        \
    static void FN(boundary_##name)(const FN(kcon) *k, FN(work) *w, const FN(work) *left,    \
                                    REAL *const Un[NV], int64_t a)                           \
    {                                                                                        \
        FN(boundary)(k, w, left, Un, a, &REC, RIEMANN);                                      \
    }
TS_SWEEP(first, FN(piecewise_constant), FN(llf2_isothermal))
TS_SWEEP(muscl_minmod, FN(muscl_minmod), FN(llf2_isothermal))
TS_SWEEP(muscl_moncen, FN(muscl_moncen), FN(llf2_isothermal))
TS_SWEEP(muscl_minmod_h, FN(muscl_minmod_h), FN(llf2_corrected))
TS_SWEEP(muscl_moncen_h, FN(muscl_moncen_h), FN(llf2_corrected))
#undef TS_SWEEP

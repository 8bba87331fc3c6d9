/*
 * What the parts of one step share (included through solver_impl.h once per float type;
 * REAL is the type, FN(name) appends its suffix).
 *
 * Rows and planes
 * ---------------
 * A work *row* holds one pencil along z: k->nzp entries, cell iz at position k->o + iz,
 * with periodic ghost copies at k->o - 1 and k->o + nz. k->o is 32 bytes of reals, so the
 * vector loops start every row on a 32-byte boundary (10 % faster steps when the data are
 * in cache, than with cell 0 at position 1). A *plane* holds ny rows (one x slab), row j
 * starting at j * k->nzp.
 *
 * The face-state interface
 * ------------------------
 * A reconstruction turns the grid into *face states*: for every cell of one row, the state
 * at each of its six faces (row_faces). The sweep (sweep_impl.h) pairs the states of the two
 * cells that share a face and hands them to the Riemann solver (llf_impl.h); it never asks
 * which reconstruction made them. A face state is a set of row pointers, q[v][o + iz] =
 * variable v of cell iz, so a piecewise-constant state is the row of the slab's primitive
 * plane itself (no copy) and a MUSCL-Hancock state is a row of its own buffers. The
 * reconstruction keeps its states valid for as long as the sweep pairs them:
 *   xp   in the plane the sweep names, until the next slab has been swept (left state of
 *        the face s + 1/2), and the last slab's until the boundary step;
 *   xm   of the thread's first slab, in the plane xfirst, until the boundary step;
 *   yp   until the next row has been swept (left state of the face j + 1/2);
 *   ym   of row 0, until the slab is done (right state of the periodic face -1/2);
 *   zm   with the periodic ghost zm[o + nz] = zm[o] (right state of the last z face);
 *   the others until the next row is reconstructed.
 */

/* A face state along one row (see above); q[IH] is NULL when the states carry no h. */
typedef struct {
    REAL *q[NF];
} FN(face);

/* Face states of the cells of one row: x-, x+, y-, y+, z-, z+. */
typedef struct {
    FN(face) xm, xp, ym, yp, zm, zp;
} FN(row_faces);

typedef struct FN(kcon_s) FN(kcon);
typedef struct FN(work_s) FN(work);

/* A reconstruction: chosen once per run (timeloop_impl.h), called once per slab and once
 * per row. */
typedef struct {
    int width;              /* slabs of stencil on either side of the cell along x; > 0:
                               the sweep keeps primitive planes of slabs s - 1, s, s + 1 */
    int nq;                 /* variables of one face state (NV or NF) */
    int rows;               /* row buffers of face states it needs (nq arrays each) */
    /* when not NULL: called as the sweep reaches slab s, with the plane its x+ states go
     * to (the thread's first slab: xfirst) */
    void (*slab)(const FN(kcon) *k, REAL *const U[NV], int64_t s, const FN(face) *plane);
    /* face states of row j of the slab (W[0..2]: primitive planes of slabs s - 1, s,
     * s + 1, when width > 0); x+ states go to row j of the plane xp, x- states to row j of
     * the plane xm when it is not NULL (the thread's first slab) */
    void (*row)(const FN(kcon) *k, const FN(work) *w, REAL *const W[3][NV], int64_t j,
                const FN(face) *xp, const FN(face) *xm, FN(row_faces) *f);
} FN(reconstruction);

/* A Riemann solver: fluxes F through n faces normal to `axis`; face f has the left state
 * L.q[v][off_l + f], the right state R.q[v][off_r + f] and its flux goes to F[v][off_f + f]. */
typedef void (*FN(riemann_fn))(const FN(kcon) *k, int64_t n, const FN(face) *L, int64_t off_l,
                               const FN(face) *R, int64_t off_r, ts_axis axis,
                               REAL *const F[NV], int64_t off_f);

/* Constants of a run (dtdx, hdtdx, fdtdx: of the current step; each thread holds a copy). */
struct FN(kcon_s) {
    int64_t nx, ny, nz, nzp, o;
    REAL dtdx, hdtdx, cs2, c0, gm1, gamma, rfloor;
    REAL fdtdx;             /* dt/dx times the scale of the sweep's fluxes: 1/2 (llf2_*) */
    int skip_x, skip_y, skip_z, ndim;
    const FN(reconstruction) *rec;     /* the face states (and the buffers they need) */
    /* one step for the x slabs [a, b) of a thread, made for rec and a closure of the
     * Riemann solver (sweep_impl.h), and the boundary step that completes it */
    void (*sweep)(const FN(kcon) *k, FN(work) *w, REAL *const U[NV], REAL *const Un[NV],
                  int64_t a, int64_t b);
    void (*boundary)(const FN(kcon) *k, FN(work) *w, const FN(work) *left,
                     REAL *const Un[NV], int64_t a);
};

/* ---------------------------------------------------------------------------------- */
/* Work buffers of one thread: allocated once per run, never per step.                 */

#define MAX_FACE_ROWS 7

struct FN(work_s) {
    REAL *W[3][NV];                     /* primitive planes, a ring: slabs s-1, s, s+1 */
    FN(face) xplane[2];                 /* x+ states of the slabs s - 1 and s */
    FN(face) xfirst;                    /* x- states of the thread's first slab */
    FN(face) row[MAX_FACE_ROWS];        /* row buffers of the reconstruction */
    REAL *fz[3][NV], *fx[3][NV];        /* z and x fluxes: [0] of row 0, [1 + (j & 1)] of
                                           row j > 0 (z: faces at o - 1 .. o + nz - 1) */
    REAL *fy_lo[NV], *fy[NV], *fy1[NV]; /* y fluxes: below and above the row being
                                           completed, and the face 1/2 */
    REAL *dfirst[NV], *fxh[NV];         /* the thread's first slab: y flux differences and
                                           fluxes through its x+ faces (ny * nz each) */
    FN(face) *xp_prev;                  /* x+ states of the previous slab, one per row */
    REAL smax;                          /* largest signal speed of the cells completed */
    int64_t bad;                        /* smallest flat index of an invalid cell, or -1 */
    REAL pub_smax[2];                   /* smax and bad as published after a step, in two */
    int64_t pub_bad[2];                 /* slots (by step parity) read by every thread */
    void *block;
};

static void FN(work_free)(FN(work) *w)
{
    free(w->block);
    free(w->xp_prev);
    w->block = NULL;
    w->xp_prev = NULL;
}

/* Buffers are 64-byte aligned: every array starts on a multiple of TS_ALIGN bytes. */
#define TS_ALIGN 64

static int64_t FN(align_up)(int64_t n)
{
    const int64_t al = TS_ALIGN / (int64_t)sizeof(REAL);
    return (n + al - 1) / al * al;
}

/* Reals of one thread's work buffers (one block). */
static int64_t FN(work_reals)(const FN(kcon) *k)
{
    const FN(reconstruction) *rec = k->rec;
    const int64_t plane = FN(align_up)(k->ny * k->nzp), row = FN(align_up)(k->nzp);
    const int64_t nw = rec->width > 0 ? 3 * NV : 0;
    return (nw + 3 * rec->nq) * plane + rec->rows * rec->nq * row + 9 * NV * row
           + 2 * NV * FN(align_up)(k->ny * k->nz);
}

/* Bytes of work buffers per thread (for the memory estimate of the Python side). */
static int64_t FN(work_bytes)(const FN(kcon) *k)
{
    return FN(work_reals)(k) * (int64_t)sizeof(REAL) + k->ny * (int64_t)sizeof(FN(face));
}

static ts_status FN(work_alloc)(FN(work) *w, const FN(kcon) *k)
{
    const FN(reconstruction) *rec = k->rec;
    const int64_t plane = FN(align_up)(k->ny * k->nzp), row = FN(align_up)(k->nzp);
    const int64_t cells = FN(align_up)(k->ny * k->nz);
    const int64_t n = FN(work_reals)(k);
    void *block = NULL;
    memset(w, 0, sizeof(*w));
    if (posix_memalign(&block, TS_ALIGN, (size_t)n * sizeof(REAL)) != 0)
        block = NULL;
    w->block = block;
    w->xp_prev = (FN(face) *)calloc((size_t)k->ny, sizeof(FN(face)));
    w->bad = -1;
    if (!block || !w->xp_prev)
        return TS_NO_MEMORY;
    REAL *p = (REAL *)block;
    memset(p, 0, (size_t)n * sizeof(REAL));     /* first touch by the thread that uses it */
    if (rec->width > 0)
        for (int r = 0; r < 3; r++)
            for (int v = 0; v < NV; v++) { w->W[r][v] = p; p += plane; }
    for (int b = 0; b < 2; b++)
        for (int v = 0; v < rec->nq; v++) { w->xplane[b].q[v] = p; p += plane; }
    for (int v = 0; v < rec->nq; v++) { w->xfirst.q[v] = p; p += plane; }
    for (int b = 0; b < rec->rows; b++)
        for (int v = 0; v < rec->nq; v++) { w->row[b].q[v] = p; p += row; }
    for (int v = 0; v < NV; v++) {
        for (int r = 0; r < 3; r++) {
            w->fz[r][v] = p; p += row;
            w->fx[r][v] = p; p += row;
        }
        w->fy_lo[v] = p; p += row;
        w->fy[v] = p; p += row;
        w->fy1[v] = p; p += row;
        w->dfirst[v] = p; p += cells;
        w->fxh[v] = p; p += cells;
    }
    return TS_OK;
}

/* The view of row j of a plane of face states. */
static inline FN(face) FN(face_row)(const FN(face) *plane, int nq, int64_t j, int64_t nzp)
{
    FN(face) f = {{NULL}};
    for (int v = 0; v < nq; v++)
        f.q[v] = plane->q[v] + j * nzp;
    return f;
}

/* ---------------------------------------------------------------------------------- */
/* Primitive variables of one slab, with periodic ghosts along z.                      */

static void FN(primitive_plane)(const FN(kcon) *k, REAL *const W[NV], REAL *const U[NV],
                                int64_t slab)
{
    const int64_t ny = k->ny, nz = k->nz, nzp = k->nzp, o = k->o;
    for (int64_t j = 0; j < ny; j++) {
        const int64_t src = (slab * ny + j) * nz;
        REAL *restrict r = W[IDN] + j * nzp + o, *restrict u = W[IVX] + j * nzp + o;
        REAL *restrict v = W[IVY] + j * nzp + o, *restrict w = W[IVZ] + j * nzp + o;
        const REAL *restrict d = U[IDN] + src, *restrict px = U[IVX] + src;
        const REAL *restrict py = U[IVY] + src, *restrict pz = U[IVZ] + src;
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
            row[o - 1] = row[o + nz - 1];
            row[o + nz] = row[o];
        }
    }
}

/* ---------------------------------------------------------------------------------- */
/* Signal speed sum_d |v_d| of a completed cell (velocity part; the time loop adds      */
/* ndim c), and its validity: density above the floor and a finite speed.              */

/* The constants of the check, read once before a loop (see llf_impl.h). */
typedef struct {
    REAL ax, ay, az, rfloor, big;
} FN(speed_con);

static inline FN(speed_con) FN(speed_constants)(const FN(kcon) *k)
{
    FN(speed_con) c = {k->skip_x ? (REAL)0 : (REAL)1, k->skip_y ? (REAL)0 : (REAL)1,
                       k->skip_z ? (REAL)0 : (REAL)1, k->rfloor, (REAL)REAL_BIG};
    return c;
}

static inline __attribute__((always_inline)) REAL
FN(cell_speed)(FN(speed_con) c, REAL d, REAL px, REAL py, REAL pz, int *ok)
{
    const REAL inv = (REAL)1 / d;
    const REAL s = (c.ax * FABS(px) + c.ay * FABS(py) + c.az * FABS(pz)) * inv;
    *ok = (d > c.rfloor) && (s < c.big);
    return s;
}

/* Largest speed of the n completed cells at U[.] + base, and the first invalid one into
 * w->bad (the smallest flat index). Cells are checked in one vector loop; only a row with
 * an invalid cell is searched again. */
static inline __attribute__((always_inline)) void
FN(row_speed)(const FN(kcon) *k, FN(work) *w, REAL *const U[NV], int64_t base, int64_t n)
{
    const REAL *restrict d = U[IDN] + base, *restrict px = U[IVX] + base;
    const REAL *restrict py = U[IVY] + base, *restrict pz = U[IVZ] + base;
    const FN(speed_con) c = FN(speed_constants)(k);
    REAL smax = w->smax;
    int64_t nbad = 0;
#pragma omp simd reduction(max : smax) reduction(+ : nbad)
    for (int64_t i = 0; i < n; i++) {
        int ok;
        const REAL s = FN(cell_speed)(c, d[i], px[i], py[i], pz[i], &ok);
        nbad += ok ? 0 : 1;
        smax = (ok && s > smax) ? s : smax;
    }
    w->smax = smax;
    if (nbad)
        for (int64_t i = 0; i < n; i++) {
            int ok;
            (void)FN(cell_speed)(c, d[i], px[i], py[i], pz[i], &ok);
            if (!ok) {
                if (w->bad < 0 || base + i < w->bad) w->bad = base + i;
                break;
            }
        }
}

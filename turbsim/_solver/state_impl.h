/*
 * What the parts of one step share (included through solver_impl.h once per float type;
 * REAL is the type, FN(name) appends its suffix).
 *
 * Layout of the work planes: a *plane* holds one x slab (ny rows); every row has nz + 2
 * entries, cell iz at position iz + 1, with periodic ghost copies at positions 0 and nz + 1.
 *
 * The face-state interface
 * ------------------------
 * A reconstruction turns the primitive planes into *face states*: for every cell of one
 * row, the state at each of its six faces (row_faces). The sweep (sweep_impl.h) pairs the
 * states of the two cells that share a face and hands them to the Riemann solver
 * (llf_impl.h); it never asks which reconstruction made them. A face state is a set of
 * row pointers, q[v][iz + 1] = variable v of cell iz, so a piecewise-constant state is the
 * primitive row itself (no copy) and a MUSCL-Hancock state is a row of its own buffers.
 * The reconstruction keeps its states valid for as long as the sweep pairs them:
 *   xp   until row j of the next slab has been swept (left state of the face s + 1/2);
 *   yp   until the next row has been swept (left state of the face j + 1/2);
 *   ym   of row 0, until the slab is done (right state of the periodic face -1/2);
 *   zm   with the periodic ghost zm[nz + 1] = zm[1] (right state of the last z face);
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

/* A reconstruction: chosen once per run (timeloop_impl.h), called once per row. */
typedef struct {
    int width;              /* slabs of stencil on either side of the cell along x */
    int planes, rows;       /* face-state buffers it needs: planes, rows (NF variables) */
    /* face states of row j of slab s from the primitive planes W[0..2] = slabs s-1, s, s+1 */
    void (*row)(const FN(kcon) *k, const FN(work) *w, REAL *W[3][NV], int64_t s,
                int64_t j, FN(row_faces) *f);
} FN(reconstruction);

/* A Riemann solver: fluxes F through n faces normal to `axis`; face f has the left state
 * L.q[v][off_l + f], the right state R.q[v][off_r + f] and its flux goes to F[v][off_f + f]. */
typedef void (*FN(riemann_fn))(const FN(kcon) *k, int64_t n, const FN(face) *L, int64_t off_l,
                               const FN(face) *R, int64_t off_r, ts_axis axis,
                               REAL *const F[NV], int64_t off_f);

/* Constants of a run (dtdx and hdtdx: of the current step). */
struct FN(kcon_s) {
    int64_t nx, ny, nz, nzp;
    REAL dtdx, hdtdx, cs2, c0, gm1, gamma, st, rfloor;
    int skip_x, skip_y, skip_z, ndim;
    const FN(reconstruction) *rec;     /* the face states (and the buffers they need) */
    /* one step for the x slabs [a, b) of a thread, made for rec and a closure of the
     * Riemann solver (sweep_impl.h) */
    void (*sweep)(const FN(kcon) *k, FN(work) *w, REAL *const U[NV], REAL *const Un[NV],
                  int64_t a, int64_t b, REAL *smax_out, int64_t *bad);
};

/* ---------------------------------------------------------------------------------- */
/* Work buffers of one thread: allocated once per run, never per step.                 */

#define MAX_FACE_PLANES 2
#define MAX_FACE_ROWS 7

struct FN(work_s) {
    REAL *W[3][NV];                     /* primitive planes, a ring: slabs s-1, s, s+1 */
    REAL *fz[NV], *fx[NV], *fy[NV];     /* flux rows of the faces being swept */
    REAL *fy_lo[NV], *fy1[NV];          /* y fluxes kept for the next row and for row 0 */
    FN(face) plane[MAX_FACE_PLANES];    /* face-state buffers of the reconstruction */
    FN(face) row[MAX_FACE_ROWS];
    FN(face) *xp_prev;                  /* x+ states of the previous slab, one per row */
    void *block;
};

static void FN(work_free)(FN(work) *w)
{
    free(w->block);
    free(w->xp_prev);
    w->block = NULL;
    w->xp_prev = NULL;
}

static ts_status FN(work_alloc)(FN(work) *w, const FN(reconstruction) *rec, int64_t ny,
                                int64_t nz)
{
    const int64_t nzp = nz + 2, plane = ny * nzp;
    const int64_t n = 3 * NV * plane + 5 * NV * nzp + NF * (rec->planes * plane + rec->rows * nzp);
    REAL *p = (REAL *)calloc((size_t)n, sizeof(REAL));
    w->block = p;
    w->xp_prev = (FN(face) *)calloc((size_t)ny, sizeof(FN(face)));
    if (!p || !w->xp_prev)
        return TS_NO_MEMORY;
    for (int k = 0; k < 3; k++)
        for (int v = 0; v < NV; v++) { w->W[k][v] = p; p += plane; }
    for (int v = 0; v < NV; v++) {
        w->fz[v] = p; p += nzp;
        w->fx[v] = p; p += nzp;
        w->fy[v] = p; p += nzp;
        w->fy_lo[v] = p; p += nzp;
        w->fy1[v] = p; p += nzp;
    }
    for (int b = 0; b < rec->planes; b++)
        for (int v = 0; v < NF; v++) { w->plane[b].q[v] = p; p += plane; }
    for (int b = 0; b < rec->rows; b++)
        for (int v = 0; v < NF; v++) { w->row[b].q[v] = p; p += nzp; }
    return TS_OK;
}

/* ---------------------------------------------------------------------------------- */
/* Primitive variables of one slab, with periodic ghosts along z.                      */

static void FN(primitive_plane)(const FN(kcon) *k, REAL *const W[NV], REAL *const U[NV],
                                int64_t slab)
{
    const int64_t ny = k->ny, nz = k->nz, nzp = k->nzp;
    for (int64_t j = 0; j < ny; j++) {
        const int64_t src = (slab * ny + j) * nz;
        REAL *restrict r = W[IDN] + j * nzp + 1, *restrict u = W[IVX] + j * nzp + 1;
        REAL *restrict v = W[IVY] + j * nzp + 1, *restrict w = W[IVZ] + j * nzp + 1;
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
            row[0] = row[nz];
            row[nz + 1] = row[1];
        }
    }
}

/* ---------------------------------------------------------------------------------- */
/* Largest signal speed sum_d |v_d| of one slab, and the validity check of its cells.  */

static REAL FN(slab_speed)(const FN(kcon) *k, REAL *const U[NV], int64_t slab, int64_t *bad)
{
    const int64_t n = k->ny * k->nz, base = slab * n;
    const REAL *restrict d = U[IDN] + base, *restrict px = U[IVX] + base;
    const REAL *restrict py = U[IVY] + base, *restrict pz = U[IVZ] + base;
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

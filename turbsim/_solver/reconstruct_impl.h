/*
 * Piecewise-constant reconstruction: first-order Godunov (Toro 2009, ch. 6). Each face of
 * a cell sees the cell's own primitive state, so the face states are the rows of the
 * slab's primitive plane themselves: nothing is computed or copied per face, and they
 * carry no h.
 *
 * Buffers (lifetimes as state_impl.h asks): the plane of slab s is the plane the sweep
 * names for its x+ states (the thread's first slab: xfirst), made in one pass over the
 * slab when the sweep reaches it (one long sequential read of U per slab, which the
 * hardware prefetchers stream better than row by row: 8 % at 128^3); it stays while slab
 * s + 1 is swept, as the interface asks of xp.
 */

static void FN(constant_slab)(const FN(kcon) *k, REAL *const U[NV], int64_t s,
                              const FN(face) *plane)
{
    FN(primitive_plane)(k, plane->q, U, s);
}

static void FN(constant_row)(const FN(kcon) *k, const FN(work) *w, REAL *const W[3][NV],
                             int64_t j, const FN(face) *xp, const FN(face) *xm,
                             FN(row_faces) *f)
{
    (void)w; (void)W;
    const FN(face) c = FN(face_row)(xm ? xm : xp, NV, j, k->nzp);
    f->xm = f->xp = f->ym = f->yp = f->zm = f->zp = c;
}

static const FN(reconstruction) FN(piecewise_constant) = {
    .width = 0, .nq = NV, .rows = 0, .slab = FN(constant_slab), .row = FN(constant_row),
};

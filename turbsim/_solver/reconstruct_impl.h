/*
 * Piecewise-constant reconstruction: first-order Godunov (Toro 2009, ch. 6). Each face of
 * a cell sees the cell's own primitive state, so the face states are the rows of the
 * primitive plane themselves: nothing is computed or copied, and they carry no h. The
 * plane of slab s stays in the ring while slab s + 1 is swept, as the interface asks of xp.
 */

static void FN(constant_row)(const FN(kcon) *k, const FN(work) *w, REAL *W[3][NV],
                             int64_t s, int64_t j, FN(row_faces) *f)
{
    (void)w; (void)s;
    FN(face) c;
    for (int v = 0; v < NV; v++)
        c.q[v] = W[1][v] + j * k->nzp;
    c.q[IH] = NULL;
    f->xm = f->xp = f->ym = f->yp = f->zm = f->zp = c;
}

static const FN(reconstruction) FN(piecewise_constant) = {
    .width = 0, .planes = 0, .rows = 0, .row = FN(constant_row),
};

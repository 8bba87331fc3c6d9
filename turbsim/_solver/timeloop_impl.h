/*
 * The time loop: CFL time step, one parallel step over x-slab blocks, landing exactly on
 * the requested end time (or, with land = 0, stopping at the first step that reaches it).
 */

/* Time step from the largest signal speed smax = max over cells of sum_d |v_d|
 * (velocity part; ndim * c is added here). RAMSES (cmpdt, no gravity) uses
 * dt = dx / S * (sqrt(1 + 2 C eps) - 1) / eps with eps = 1e-4, a hair below C dx / S. */
static double FN(cfl_dt)(const ts_params *p, int ndim, double c_dt, double smax)
{
    const double S = smax + (double)ndim * c_dt;
    if (p->ramses_dt) {
        const double eps = 1.0e-4;
        return p->dx / S * (sqrt(1.0 + 2.0 * p->courant * eps) - 1.0) / eps;
    }
    return p->courant * p->dx / S;
}

/* The run's constants, and its methods, chosen here once: the reconstruction named by the
 * scheme code and the sweep made for it and for the closure of the Riemann solver, which
 * is pressure corrected only when the face states carry h (MUSCL-Hancock with gamma != 1;
 * piecewise-constant states have none, and MUSCL-Hancock's h vanishes for gamma = 1). */
static ts_status FN(make_kcon)(const ts_params *p, FN(kcon) *k)
{
    switch (p->scheme) {
    case TS_SCHEME_FIRST:
        k->rec = &FN(piecewise_constant);
        k->sweep = FN(sweep_first);
        break;
    case TS_SCHEME_MUSCL:
        k->rec = &FN(muscl_hancock);
        k->sweep = p->gamma != 1.0 ? FN(sweep_muscl_corrected) : FN(sweep_muscl);
        break;
    default:
        return TS_BAD_OPTION;
    }
    if (p->limiter != TS_LIMITER_MINMOD && p->limiter != TS_LIMITER_MONCEN)
        return TS_BAD_OPTION;
    k->nx = p->nx; k->ny = p->ny; k->nz = p->nz;
    k->nzp = p->nz + 2;
    k->cs2 = (REAL)(p->cs * p->cs);
    k->gamma = (REAL)p->gamma;
    k->gm1 = (REAL)(p->gamma - 1.0);
    k->c0 = (REAL)(sqrt(p->gamma) * p->cs);
    k->st = (REAL)p->limiter;                   /* RAMSES's slope_type */
    k->rfloor = (REAL)p->density_floor;
    k->dtdx = k->hdtdx = 0;
    k->skip_x = p->nx == 1; k->skip_y = p->ny == 1; k->skip_z = p->nz == 1;
    k->ndim = (p->nx > 1) + (p->ny > 1) + (p->nz > 1);
    if (k->ndim == 0) k->ndim = 1;
    return TS_OK;
}

static int FN(nthreads)(const ts_params *p)
{
    int nt = p->threads > 0 ? p->threads : ts_max_threads();
#ifndef TURBSIM_OPENMP
    nt = 1;
#endif
    if (nt > p->nx) nt = (int)p->nx;
    if (nt < 1) nt = 1;
    return nt;
}

ts_status FN(ts_run)(const ts_params *p, REAL *rho, REAL *mx, REAL *my, REAL *mz,
                     REAL *rho2, REAL *mx2, REAL *my2, REAL *mz2,
                     double t0, double t_end, ts_report *rep)
{
    FN(kcon) k;
    rep->time = t0; rep->steps = 0; rep->last_dt = 0; rep->bad_index = -1;
    ts_status status = FN(make_kcon)(p, &k);
    if (status != TS_OK)
        return status;
    const int nt = FN(nthreads)(p);
    const double c_dt = sqrt(p->gamma) * p->cs;
    REAL *A[NV] = {rho, mx, my, mz}, *B[NV] = {rho2, mx2, my2, mz2};
    REAL **U = A, **Un = B;
    FN(work) *works = (FN(work) *)calloc((size_t)nt, sizeof(FN(work)));
    REAL *smax_t = (REAL *)calloc((size_t)nt, sizeof(REAL));
    int64_t *bad_t = (int64_t *)malloc((size_t)nt * sizeof(int64_t));
    int alloc_fail = 0;
    if (!works || !smax_t || !bad_t) { status = TS_NO_MEMORY; goto done; }

#ifdef TURBSIM_OPENMP
#pragma omp parallel num_threads(nt) reduction(| : alloc_fail)
#endif
    {
        const int tid = ts_thread_id();
        /* allocated by the thread that uses it (first touch) */
        alloc_fail |= FN(work_alloc)(&works[tid], k.rec, p->ny, p->nz) != TS_OK;
    }
    if (alloc_fail) { status = TS_NO_MEMORY; goto done; }

    /* signal speed of the initial state, and its validity */
    double smax = 0;
    {
        int64_t bad = -1;
        for (int64_t s = 0; s < p->nx; s++) {
            REAL sm = FN(slab_speed)(&k, U, s, &bad);
            if (sm > smax) smax = sm;
            if (bad >= 0) { rep->bad_index = bad; status = TS_BAD_STATE; goto done; }
        }
    }

    double t = t0;
    while (t < t_end) {
        if (rep->steps >= p->max_steps) { status = TS_MAX_STEPS; break; }
        double dt = FN(cfl_dt)(p, k.ndim, c_dt, smax);
        if (!(dt > 0) || !isfinite(dt)) { status = TS_BAD_DT; break; }
        rep->last_dt = dt;
        int last = 0;
        if (p->land && t + dt * (1.0 + 1e-10) >= t_end) { dt = t_end - t; last = 1; }
        k.dtdx = (REAL)(dt / p->dx);
        k.hdtdx = (REAL)(0.5 * dt / p->dx);
#ifdef TURBSIM_OPENMP
#pragma omp parallel num_threads(nt)
#endif
        {
            const int tid = ts_thread_id();
            const int64_t a = p->nx * tid / nt, b = p->nx * (tid + 1) / nt;
            bad_t[tid] = -1;
            k.sweep(&k, &works[tid], U, Un, a, b, &smax_t[tid], &bad_t[tid]);
        }
        smax = 0;
        for (int i = 0; i < nt; i++) {
            if (smax_t[i] > smax) smax = smax_t[i];
            if (bad_t[i] >= 0 && rep->bad_index < 0) rep->bad_index = bad_t[i];
        }
        REAL **tmp = U; U = Un; Un = tmp;
        t = last ? t_end : t + dt;
        rep->steps++;
        rep->time = t;
        if (rep->bad_index >= 0) { status = TS_BAD_STATE; break; }
    }

done:
    /* the caller's first buffer set holds the result */
    if (U != A)
        for (int v = 0; v < NV; v++)
            memcpy(A[v], U[v], (size_t)(p->nx * p->ny * p->nz) * sizeof(REAL));
    if (works)
        for (int i = 0; i < nt; i++) FN(work_free)(&works[i]);
    free(works);
    free(smax_t);
    free(bad_t);
    return status;
}

double FN(ts_max_speed)(const ts_params *p, const REAL *rho, const REAL *mx,
                        const REAL *my, const REAL *mz)
{
    FN(kcon) k;
    if (FN(make_kcon)(p, &k) != TS_OK)
        return NAN;
    REAL *U[NV] = {(REAL *)rho, (REAL *)mx, (REAL *)my, (REAL *)mz};
    double smax = 0;
    int64_t bad = -1;
    for (int64_t s = 0; s < p->nx; s++) {
        REAL sm = FN(slab_speed)(&k, U, s, &bad);
        if (sm > smax) smax = sm;
    }
    return smax + (double)k.ndim * sqrt(p->gamma) * p->cs;
}

/*
 * The time loop: CFL time step, one step over x-slab blocks, landing exactly on the
 * requested end time (or, with land = 0, stopping at the first step that reaches it).
 *
 * Threads: one parallel region for the whole call. Each thread owns a block of x slabs
 * (at least two) and its work buffers. A step is its sweep, a barrier, its boundary step
 * (sweep_impl.h), a barrier; then every thread reads the largest signal speed and the
 * first invalid cell of all threads, in thread order, and takes the same decisions (the
 * next time step, whether to stop) from the same numbers. The fused first-order sweep
 * needs no boundary step, and its step has one barrier. A maximum and a minimum do not
 * depend on the order in which they are taken, so dt is bit-identical for any number of
 * threads.
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
 * scheme code (for MUSCL-Hancock, made for the limiter and for whether its states carry h)
 * and the sweep made for it and for the closure of the Riemann solver, which is pressure
 * corrected only when the face states carry h (MUSCL-Hancock with gamma != 1;
 * piecewise-constant states have none, and MUSCL-Hancock's h vanishes for gamma = 1). */
static ts_status FN(make_kcon)(const ts_params *p, FN(kcon) *k)
{
    if (p->limiter != TS_LIMITER_MINMOD && p->limiter != TS_LIMITER_MONCEN)
        return TS_BAD_OPTION;
    const int moncen = p->limiter == TS_LIMITER_MONCEN, has_h = p->gamma != 1.0;
    switch (p->scheme) {
    case TS_SCHEME_FIRST:
        if (p->nx > 1 && p->ny > 1 && p->nz > 1) {
            /* every axis active: the fused sweep, which needs no boundary step */
            k->rec = &FN(piecewise_constant_fused);
            k->sweep = FN(sweep_first_fused);
            k->boundary = NULL;
        } else {
            k->rec = &FN(piecewise_constant);
            k->sweep = FN(sweep_first);
            k->boundary = FN(boundary_first);
        }
        break;
    case TS_SCHEME_MUSCL:
        if (has_h) {
            k->rec = moncen ? &FN(muscl_moncen_h) : &FN(muscl_minmod_h);
            k->sweep = moncen ? FN(sweep_muscl_moncen_h) : FN(sweep_muscl_minmod_h);
            k->boundary = moncen ? FN(boundary_muscl_moncen_h) : FN(boundary_muscl_minmod_h);
        } else {
            k->rec = moncen ? &FN(muscl_moncen) : &FN(muscl_minmod);
            k->sweep = moncen ? FN(sweep_muscl_moncen) : FN(sweep_muscl_minmod);
            k->boundary = moncen ? FN(boundary_muscl_moncen) : FN(boundary_muscl_minmod);
        }
        break;
    default:
        return TS_BAD_OPTION;
    }
    k->nx = p->nx; k->ny = p->ny; k->nz = p->nz;
    {
        /* work rows: cell 0 on a 32-byte boundary (a ghost before it), rows a multiple
         * of 64 bytes long */
        const int64_t vec = 32 / (int64_t)sizeof(REAL), line = 64 / (int64_t)sizeof(REAL);
        k->o = vec;
        k->nzp = (k->o + p->nz + 1 + line - 1) / line * line;
    }
    k->cs2 = (REAL)(p->cs * p->cs);
    k->gamma = (REAL)p->gamma;
    k->gm1 = (REAL)(p->gamma - 1.0);
    k->c0 = (REAL)(sqrt(p->gamma) * p->cs);
    k->rfloor = (REAL)p->density_floor;
    k->dtdx = k->hdtdx = k->fdtdx = 0;
    k->skip_x = p->nx == 1; k->skip_y = p->ny == 1; k->skip_z = p->nz == 1;
    k->ndim = (p->nx > 1) + (p->ny > 1) + (p->nz > 1);
    if (k->ndim == 0) k->ndim = 1;
    return TS_OK;
}

/* Threads of a run: as asked (all when threads <= 0), at most one per two x slabs. */
static int FN(nthreads)(const ts_params *p)
{
    int nt = p->threads > 0 ? p->threads : ts_max_threads();
#ifndef TURBSIM_OPENMP
    nt = 1;
#endif
    if (nt > p->nx / 2) nt = (int)(p->nx / 2);
    if (nt < 1) nt = 1;
    return nt;
}

static inline void FN(barrier)(void)
{
#ifdef TURBSIM_OPENMP
#pragma omp barrier
#endif
}

/* What every thread decides alike after a step: the largest speed and first invalid cell
 * of all threads, read in thread order from the slot `par` they were published to (a
 * thread may already be sweeping the next step, which publishes to the other slot). */
static void FN(gather)(const FN(work) *works, int nt, int par, double *smax, int64_t *bad)
{
    double s = 0;
    int64_t b = -1;
    for (int i = 0; i < nt; i++) {
        const int64_t bi = works[i].pub_bad[par];
        if (works[i].pub_smax[par] > s) s = works[i].pub_smax[par];
        if (bi >= 0 && (b < 0 || bi < b)) b = bi;
    }
    *smax = s;
    *bad = b;
}

ts_status FN(ts_run)(const ts_params *p, REAL *rho, REAL *mx, REAL *my, REAL *mz,
                     REAL *rho2, REAL *mx2, REAL *my2, REAL *mz2,
                     double t0, double t_end, ts_report *rep)
{
    FN(kcon) k0;
    rep->time = t0; rep->steps = 0; rep->last_dt = 0; rep->bad_index = -1;
    ts_status status = FN(make_kcon)(p, &k0);
    if (status != TS_OK)
        return status;
    const int nt = FN(nthreads)(p);
    const double c_dt = sqrt(p->gamma) * p->cs;
    REAL *A[NV] = {rho, mx, my, mz}, *B[NV] = {rho2, mx2, my2, mz2};
    const int64_t nyz = p->ny * p->nz;
    FN(work) *works = (FN(work) *)calloc((size_t)nt, sizeof(FN(work)));
    int *fail = (int *)calloc((size_t)nt, sizeof(int));
    if (!works || !fail) {
        free(works);
        free(fail);
        return TS_NO_MEMORY;
    }

#ifdef TURBSIM_OPENMP
#pragma omp parallel num_threads(nt)
#endif
    {
        /* the team OpenMP granted (at most nt; fewer under a thread limit) */
        const int tid = ts_thread_id(), team = ts_team_size();
        const int64_t a = p->nx * tid / team, b = p->nx * (tid + 1) / team;
        FN(kcon) k = k0;                        /* this thread's copy (dtdx per step) */
        FN(work) *w = &works[tid];
        const FN(work) *left = &works[(tid + team - 1) % team];
        REAL **U = A, **Un = B;
        ts_status st = TS_OK;
        double t = t0, smax = 0;
        int64_t steps = 0, bad = -1;
        int par = 0;                            /* slot of the published results */

        /* work buffers, allocated and first touched by the thread that uses them */
        fail[tid] = FN(work_alloc)(w, &k) != TS_OK;
        FN(barrier)();
        for (int i = 0; i < team; i++)
            if (fail[i]) st = TS_NO_MEMORY;

        if (st == TS_OK) {
            /* signal speed of the initial state, and its validity */
            w->smax = 0;
            w->bad = -1;
            FN(row_speed)(&k, w, U, a * nyz, (b - a) * nyz);
            w->pub_smax[par] = w->smax;
            w->pub_bad[par] = w->bad;
            FN(barrier)();
            FN(gather)(works, team, par, &smax, &bad);
            if (bad >= 0) st = TS_BAD_STATE;
        }
        while (st == TS_OK && t < t_end) {
            if (steps >= p->max_steps) { st = TS_MAX_STEPS; break; }
            double dt = FN(cfl_dt)(p, k.ndim, c_dt, smax);
            if (!(dt > 0) || !isfinite(dt)) { st = TS_BAD_DT; break; }
            const double dt_cfl = dt;
            int last = 0;
            if (p->land && t + dt * (1.0 + 1e-10) >= t_end) { dt = t_end - t; last = 1; }
            k.dtdx = (REAL)(dt / p->dx);
            k.hdtdx = (REAL)(0.5 * dt / p->dx);
            k.fdtdx = (REAL)0.5 * k.dtdx;       /* exact */
            k.sweep(&k, w, U, Un, a, b);
            if (k.boundary) {
                FN(barrier)();
                k.boundary(&k, w, left, Un, a);
            }
            par ^= 1;
            w->pub_smax[par] = w->smax;
            w->pub_bad[par] = w->bad;
            FN(barrier)();
            FN(gather)(works, team, par, &smax, &bad);
            REAL **tmp = U; U = Un; Un = tmp;
            t = last ? t_end : t + dt;
            steps++;
            if (tid == 0) { rep->last_dt = dt_cfl; rep->steps = steps; rep->time = t; }
            if (bad >= 0) st = TS_BAD_STATE;
        }
        /* the caller's first buffer set holds the result: each thread copies its slabs */
        if (U != A && st != TS_NO_MEMORY)
            for (int v = 0; v < NV; v++)
                memcpy(A[v] + a * nyz, U[v] + a * nyz, (size_t)((b - a) * nyz) * sizeof(REAL));
        if (tid == 0) {
            status = st;
            if (st == TS_BAD_STATE) rep->bad_index = bad;
        }
    }
    for (int i = 0; i < nt; i++) FN(work_free)(&works[i]);
    free(works);
    free(fail);
    return status;
}

int64_t FN(ts_work_bytes)(const ts_params *p)
{
    FN(kcon) k;
    if (FN(make_kcon)(p, &k) != TS_OK)
        return 0;
    const int nt = FN(nthreads)(p);
    return (int64_t)nt * (FN(work_bytes)(&k) + (int64_t)sizeof(FN(work)) + (int64_t)sizeof(int));
}

double FN(ts_max_speed)(const ts_params *p, const REAL *rho, const REAL *mx,
                        const REAL *my, const REAL *mz)
{
    FN(kcon) k;
    if (FN(make_kcon)(p, &k) != TS_OK)
        return NAN;
    REAL *U[NV] = {(REAL *)rho, (REAL *)mx, (REAL *)my, (REAL *)mz};
    FN(work) w;
    w.smax = 0;
    w.bad = -1;
    FN(row_speed)(&k, &w, U, 0, p->nx * p->ny * p->nz);
    return (double)w.smax + (double)k.ndim * sqrt(p->gamma) * p->cs;
}

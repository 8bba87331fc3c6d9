/*
 * turbsim AMR-lite kernels: the isothermal Euler step on one level of a refined mesh, and
 * the transfers between levels (restriction, prolongation). Double precision only.
 *
 * The mesh (turbsim/amr.py) keeps each level L as a dense periodic array of n = 2^L cells
 * per side, indexed [ix, iy, iz] (z contiguous), with a kind per cell:
 *   0  absent: no cell of level L there (covered by a coarser leaf); the array may hold a
 *      ghost value there (prolongated from level L - 1) that the stencils of nearby cells
 *      read;
 *   1  leaf: a cell of the mesh, updated by the step;
 *   2  refined: a cell with 8 children at level L + 1; it holds their volume average
 *      (restriction) and is read by the stencils of its neighbours, never updated.
 * Refinement is by octs (the 8 children of one cell), as RAMSES.
 *
 * The step on a level works tile by tile: tiles of TS_AMR_TILE^3 cells that hold at least
 * one leaf. A tile reads its cells and 2 layers around them (MUSCL-Hancock needs 2),
 * computes the face states and the LLF fluxes of its cells (the same formulas as the
 * uniform kernels: muscl_impl.h, llf_impl.h), and writes the new state of its leaves to its
 * own slot of an output buffer; tiles are independent, so the result does not depend on
 * the number of threads. Coarse-fine faces (flux correction, "refluxing"): the fluxes
 * through the 4 fine faces covering one face of a coarse leaf are averaged into the coarse
 * level's face array (fc_out, written by exactly one tile), and the coarse leaf uses that
 * average instead of its own flux (fc_in): total mass and momentum are conserved to
 * round-off.
 */
#ifndef TURBSIM_AMR_H
#define TURBSIM_AMR_H

#include <stdint.h>

#define TS_AMR_TILE 8       /* cells per side of a tile (even: coarse faces within a tile) */

enum { TS_AMR_ABSENT = 0, TS_AMR_LEAF = 1, TS_AMR_REFINED = 2 };

typedef struct {
    double cs;              /* isothermal sound speed */
    double gamma;           /* adiabatic index inside a step (1 = exactly isothermal) */
    int scheme;             /* ts_scheme: 0 first order, 1 MUSCL-Hancock */
    int limiter;            /* ts_limiter: 1 minmod, 2 monotonised central */
    int threads;            /* OpenMP threads (<= 0: all available) */
    double density_floor;   /* a density at or below this is an error */
} ts_amr_params;

/* One step of the leaves of a level of n^3 cells: U (4 n^3: rho, mx, my, mz) and kind
 * (n^3) as above; tiles: ntiles (ix, iy, iz) tile coordinates; dtdx = dt / dx of this
 * level. fc_in (3 * 4 * n^3, may be NULL when no cell is refined): [axis][var][cell] the
 * averaged fine flux through the low face of the cell along axis, read (times fc_scale)
 * where the neighbour across a leaf's face is refined. fc_out (3 * 4 * (n/2)^3, NULL at
 * the coarsest level): the same array of the level below, where this level's averaged
 * fluxes through the coarse-fine faces go, times fc_w: written when fc_acc is 0, added
 * when 1. One global step: fc_w = fc_scale = 1, fc_acc = 0. Subcycling (two fine steps
 * dt1, dt2 per coarse step dt1 + dt2): fc_w = dt_i with fc_acc = 0 then 1, and the coarse
 * step reads with fc_scale = 1 / (dt1 + dt2), so that it takes the time-integrated fine
 * fluxes. out (ntiles * 4 * TILE^3): the new state of each tile's leaves (other entries
 * untouched). Returns 0, or 4 (no memory) / 5 (bad option). */
int ts_amr_sweep(const ts_amr_params *p, int64_t n, double dtdx, const double *U,
                 const uint8_t *kind, const int32_t *tiles, int64_t ntiles,
                 const double *fc_in, double fc_scale, double *fc_out, double fc_w,
                 int fc_acc, double *out);

/* Copy the tiles' new leaf states from out into U, and return the largest signal speed
 * sum_d |v_d| of the leaves (velocity part) in *smax, the smallest flat index of a leaf at
 * or below the density floor or with a non-finite speed in *bad (-1 if none). */
void ts_amr_scatter(const ts_amr_params *p, int64_t n, double *U, const uint8_t *kind,
                    const int32_t *tiles, int64_t ntiles, const double *out,
                    double *smax, int64_t *bad);

/* Largest signal speed and first invalid cell of the leaves of a level (as scatter). */
void ts_amr_leaf_speed(const ts_amr_params *p, int64_t n, const double *U,
                       const uint8_t *kind, double *smax, int64_t *bad);

/* Restriction: for each of the ncells flat indices c of the coarse level (nc^3), the
 * volume average of its 8 children in Uf ((2 nc)^3) into Uc, in a fixed order. */
void ts_amr_restrict(const ts_amr_params *p, int64_t nc, double *Uc, const double *Uf,
                     const int64_t *cells, int64_t ncells);

/* Prolongation: for each of the ncells flat indices c of the coarse level (nc^3), its 8
 * children in Uf ((2 nc)^3): the value of c in Uc plus the minmod-limited slopes of the
 * conserved variables (RAMSES's interpol_type = 1, interpol_var = 0) times the offset of
 * the child's centre (+-1/4 of the parent's width along each axis), the slopes computed
 * once per parent: the 8 children average to it (to round-off). */
void ts_amr_prolong(const ts_amr_params *p, int64_t nc, const double *Uc, double *Uf,
                    const int64_t *cells, int64_t ncells);

/* Regrid stencils (flags are uint8 0/1 arrays of the level, n^3):
 * flag_gradient: set flag where a cell of the level (kind != absent) has RAMSES's relative
 *   density gradient 2 max(|d+ - d| / (d+ + d + floor_d), |d - d-| / (d + d- + floor_d)) >
 *   err along an axis; an absent neighbour takes its coarser covering cell's density
 *   (rho_c, level n/2; NULL at the coarsest level);
 * smooth: RAMSES's smooth_fine, three passes setting the existing cells with at least 1, 2,
 *   2 flagged face neighbours (work: n^3 scratch);
 * nest_ok: clear the flags of cells with an absent cell among their 26 neighbours. */
void ts_amr_flag_gradient(const ts_amr_params *p, int64_t n, const double *rho,
                          const uint8_t *kind, const double *rho_c, double err,
                          double floor_d, uint8_t *flag);
void ts_amr_smooth(const ts_amr_params *p, int64_t n, uint8_t *flag, const uint8_t *kind,
                   uint8_t *work);
void ts_amr_nest_ok(const ts_amr_params *p, int64_t n, const uint8_t *kind, uint8_t *flag);

/* Bookkeeping (serial, fixed order). any_child: out[c] = any child of c (fine level 2 nc)
 * has kind value. apply: the coarse cells of the level that exist become refined where
 * flag is set, leaves elsewhere; their children exist exactly under refined cells (new
 * ones become leaves); called with fresh NULL it changes nothing and returns the number of
 * cells to be newly refined (and those to lose their children in *removed, when not NULL),
 * otherwise it applies the flags and lists those cells in fresh (coarse indices). tiles: the tiles holding a leaf, (ix, iy, iz) triplets (when not
 * NULL), their number returned (-1: no memory) and the leaves counted in *nleaves.
 * ghosts: the coarse cells that are not refined but touch a refined one (listed when not
 * NULL; the number returned): their children are the absent cells within 2 cells of the
 * finer level's cells; it marks them in mark (nc^3) when called with ghosts NULL, and
 * lists from the marks otherwise (called twice, to count and then to fill). */
void ts_amr_any_child(int64_t nc, const uint8_t *fine, uint8_t value, uint8_t *out);
int64_t ts_amr_apply(int64_t nc, uint8_t *kind_c, const uint8_t *flag, uint8_t *kind_f,
                     int64_t *fresh, int64_t *removed);
int64_t ts_amr_tiles(int64_t n, const uint8_t *kind, int32_t *tiles, int64_t *nleaves);
int64_t ts_amr_ghosts(int64_t nc, const uint8_t *kind_c, uint8_t *mark, int64_t *ghosts);

/* As ts_amr_leaf_speed, over the leaves of the listed tiles only. */
void ts_amr_tile_speed(const ts_amr_params *p, int64_t n, const double *U, const uint8_t *kind,
                       const int32_t *tiles, int64_t ntiles, double *smax, int64_t *bad);

#endif

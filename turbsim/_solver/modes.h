/*
 * turbsim native kernels: Fourier modes of the "fourier" initial-condition method.
 *
 * Assembles a block of velocity modes from unit complex normals and writes it into the
 * half-space (rfftn) layout of the whole mode array; the mathematics is in turbsim/ic.py's
 * module docstring:
 *
 *   v_k = |k|^(-n/2) exp(i pi (kx + ky + kz) / N) [zeta (G1 e1 + G2 e2) + (1 - zeta) G3 k/|k|]
 *   e1 = (-ky, kx, 0) / kp,  e2 = (kx kz, ky kz, -kp^2) / (|k| kp),  kp^2 = kx^2 + ky^2
 *
 * with e1 = x, e2 = y on the kz axis (kp = 0). Complex numbers are stored as (re, im)
 * pairs of doubles, as numpy's complex128.
 */
#ifndef TURBSIM_MODES_H
#define TURBSIM_MODES_H

#include <stdint.h>

typedef struct {
    int64_t cells;          /* grid size N: modes has shape (3, N, N, N/2 + 1) */
    int64_t kx0, nkx;       /* the block: kx0 .. kx0 + nkx - 1 (one sign, |k| <= kmax) */
    int64_t ky0, nky;       /* ky0 .. ky0 + nky - 1 (one sign) */
    int64_t kz0, nkz;       /* kz0 .. kz0 + nkz - 1 (kz >= 0) */
    double zeta;            /* weight of the solenoidal part */
    double rest;            /* weight of the compressive part, 1 - zeta */
    const double *amp;      /* amp[q] = q^(-n/4) = |k|^(-n/2) for q = |k|^2 (amp[0] = 0) */
    const double *amp_k;    /* amp_k[q] = |k|^(-n/2 - 1) (amp_k[0] = 0) */
    int64_t table_size;     /* entries of amp and amp_k (> 3 kmax^2) */
} ts_mode_block;

/*
 * Write the block's modes into `modes` (complex, (3, N, N, N/2 + 1), C order).
 * `solenoidal`: unit normals (nkx, 2, nky, nkz) for G1, G2, or NULL when zeta = 0;
 * `compressive`: unit normals (nkx, 1, nky, nkz) for G3, or NULL when 1 - zeta = 0.
 * Returns 0, or 1 when a |k|^2 falls outside the tables (nothing is written then).
 */
int ts_fourier_block(const ts_mode_block *b, const double *solenoidal,
                     const double *compressive, double *modes);

#endif

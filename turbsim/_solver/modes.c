/* Fourier modes of the "fourier" initial conditions: see modes.h. */
#include <math.h>
#include <stdlib.h>

#include "modes.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* exp(i pi k / N) for k = k0 .. k0 + n - 1, as (re, im) pairs */
static void phase_row(int64_t k0, int64_t n, int64_t cells, double *out)
{
    for (int64_t i = 0; i < n; i++) {
        double a = M_PI * (double)(k0 + i) / (double)cells;
        out[2 * i] = cos(a);
        out[2 * i + 1] = sin(a);
    }
}

int ts_fourier_block(const ts_mode_block *b, const double *solenoidal,
                     const double *compressive, double *modes)
{
    const int64_t N = b->cells, nzh = N / 2 + 1;
    const int64_t nkx = b->nkx, nky = b->nky, nkz = b->nkz;
    const int64_t plane = nky * nkz, comp = N * N * nzh;
    int64_t kxmax = llabs(b->kx0) > llabs(b->kx0 + nkx - 1) ? llabs(b->kx0) : llabs(b->kx0 + nkx - 1);
    int64_t kymax = llabs(b->ky0) > llabs(b->ky0 + nky - 1) ? llabs(b->ky0) : llabs(b->ky0 + nky - 1);
    int64_t kzmax = b->kz0 + nkz - 1;
    if (nkx <= 0 || nky <= 0 || nkz <= 0)
        return 0;
    if (kxmax * kxmax + kymax * kymax + kzmax * kzmax >= b->table_size || b->kz0 < 0)
        return 1;
    double *ph = malloc(sizeof(double) * 2 * (size_t)(nkx + nky + nkz));
    if (!ph)
        return 2;
    double *px = ph, *py = ph + 2 * nkx, *pz = py + 2 * nky;
    phase_row(b->kx0, nkx, N, px);
    phase_row(b->ky0, nky, N, py);
    phase_row(b->kz0, nkz, N, pz);

    for (int64_t i = 0; i < nkx; i++) {
        const double kx = (double)(b->kx0 + i);
        const int64_t ix = ((b->kx0 + i) % N + N) % N;
        for (int64_t j = 0; j < nky; j++) {
            const double ky = (double)(b->ky0 + j);
            const int64_t iy = ((b->ky0 + j) % N + N) % N;
            const double kp2 = kx * kx + ky * ky;
            const int axis = kp2 == 0.0;  /* the kz axis: e1 = x, e2 = y */
            const double inv_kp = b->zeta / sqrt(axis ? 1.0 : kp2);
            /* exp(i pi (kx + ky) / N), as numpy forms it: x times y, then times z */
            const double sxy_re = px[2 * i] * py[2 * j] - px[2 * i + 1] * py[2 * j + 1];
            const double sxy_im = px[2 * i] * py[2 * j + 1] + px[2 * i + 1] * py[2 * j];
            double *o0 = modes + 2 * ((ix * N + iy) * nzh + b->kz0);
            double *o1 = o0 + 2 * comp, *o2 = o1 + 2 * comp;
            for (int64_t l = 0; l < nkz; l++) {
                const double kz = (double)(b->kz0 + l);
                const int64_t q = (int64_t)(kp2 + kz * kz);
                const double s_re = sxy_re * pz[2 * l] - sxy_im * pz[2 * l + 1];
                const double s_im = sxy_re * pz[2 * l + 1] + sxy_im * pz[2 * l];
                double v0r = 0.0, v0i = 0.0, v1r = 0.0, v1i = 0.0, v2r = 0.0, v2i = 0.0;
                if (solenoidal) {
                    const double *g1 = solenoidal + 2 * ((i * 2 * nky + j) * nkz + l);
                    const double *g2 = g1 + 2 * plane;
                    const double a1 = b->amp[q] * inv_kp;
                    const double a2 = axis ? a1 : b->amp_k[q] * inv_kp;
                    /* first = a1 G1 shift, second = a2 G2 shift */
                    const double f_re = a1 * (g1[0] * s_re - g1[1] * s_im);
                    const double f_im = a1 * (g1[0] * s_im + g1[1] * s_re);
                    const double s2_re = a2 * (g2[0] * s_re - g2[1] * s_im);
                    const double s2_im = a2 * (g2[0] * s_im + g2[1] * s_re);
                    if (axis) {
                        v0r = f_re; v0i = f_im; v1r = s2_re; v1i = s2_im;
                    } else {
                        v0r = -ky * f_re + kx * kz * s2_re;
                        v0i = -ky * f_im + kx * kz * s2_im;
                        v1r = kx * f_re + ky * kz * s2_re;
                        v1i = kx * f_im + ky * kz * s2_im;
                        v2r = -kp2 * s2_re;
                        v2i = -kp2 * s2_im;
                    }
                }
                if (compressive) {
                    const double *g3 = compressive + 2 * ((i * nky + j) * nkz + l);
                    const double a3 = b->amp_k[q] * b->rest;
                    const double c_re = a3 * (g3[0] * s_re - g3[1] * s_im);
                    const double c_im = a3 * (g3[0] * s_im + g3[1] * s_re);
                    v0r += kx * c_re; v0i += kx * c_im;
                    v1r += ky * c_re; v1i += ky * c_im;
                    v2r += kz * c_re; v2i += kz * c_im;
                }
                o0[2 * l] = v0r; o0[2 * l + 1] = v0i;
                o1[2 * l] = v1r; o1[2 * l + 1] = v1i;
                o2[2 * l] = v2r; o2[2 * l + 1] = v2i;
            }
        }
    }
    free(ph);
    return 0;
}

/* Oriented half-disc chi^2 histogram gradients, the BSR release's lib_image::hist_gradient_2D
 * (Arbelaez et al. 2011), for wnet/postprocess/gpb/gradients.py. Built by wnet/cbuild.py.
 *
 * For each output pixel: count the labels of every disc offset into its slice histogram
 * (2 n_ori slices), normalise each slice by its mass after bin smoothing (smoothing matrix S,
 * row k = what one pixel of label k adds; NULL = none), smooth the non-zero bins, then spin the
 * half discs and take chi^2 = 1/2 sum (g - h)^2 / (g + h) over the bins where g != h.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int64_t hist_gradient(
    const int32_t *labels, int64_t wc,           /* canvas, row-major, row stride wc */
    int64_t k_bins,
    const int64_t *off_lin, const int32_t *off_slice, int64_t n_off, /* disc offsets */
    const double *smooth, const double *mass,    /* K x K and K (NULL, NULL: no smoothing) */
    int64_t n_ori, int64_t row0, int64_t row1, int64_t col0, int64_t col1,
    float *out)                                  /* n_ori x (row1 - row0) x (col1 - col0) */
{
    const int64_t n_sl = 2 * n_ori, h = row1 - row0, w = col1 - col0;
    double *cnt = malloc(sizeof(double) * n_sl * k_bins);
    double *u = malloc(sizeof(double) * n_sl * k_bins);
    double *g = malloc(sizeof(double) * k_bins);
    double *hh = malloc(sizeof(double) * k_bins);
    if (!cnt || !u || !g || !hh) { free(cnt); free(u); free(g); free(hh); return -1; }
    for (int64_t y = row0; y < row1; y++) {
        for (int64_t x = col0; x < col1; x++) {
            const int32_t *base = labels + y * wc + x;
            memset(cnt, 0, sizeof(double) * n_sl * k_bins);
            for (int64_t j = 0; j < n_off; j++)
                cnt[(int64_t)off_slice[j] * k_bins + base[off_lin[j]]] += 1.0;
            for (int64_t s = 0; s < n_sl; s++) {
                double *c = cnt + s * k_bins, *us = u + s * k_bins, z = 0.0;
                if (smooth) {
                    for (int64_t k = 0; k < k_bins; k++) z += c[k] * mass[k];
                    memset(us, 0, sizeof(double) * k_bins);
                    if (z == 0.0) continue;
                    for (int64_t k = 0; k < k_bins; k++) {
                        if (c[k] == 0.0) continue;
                        const double a = c[k] / z, *row = smooth + k * k_bins;
                        for (int64_t b = 0; b < k_bins; b++) us[b] += a * row[b];
                    }
                } else {
                    for (int64_t k = 0; k < k_bins; k++) z += c[k];
                    const double inv = z != 0.0 ? 1.0 / z : 0.0;
                    for (int64_t k = 0; k < k_bins; k++) us[k] = c[k] * inv;
                }
            }
            memset(g, 0, sizeof(double) * k_bins);
            memset(hh, 0, sizeof(double) * k_bins);
            for (int64_t s = 0; s < n_ori; s++)
                for (int64_t k = 0; k < k_bins; k++) {
                    g[k] += u[s * k_bins + k];
                    hh[k] += u[(s + n_ori) * k_bins + k];
                }
            for (int64_t o = 0; o < n_ori; o++) {
                double acc = 0.0;
                for (int64_t k = 0; k < k_bins; k++) {
                    const double d = g[k] - hh[k];
                    if (d != 0.0) acc += d * d / (g[k] + hh[k]);
                }
                out[(o * h + (y - row0)) * w + (x - col0)] = (float)(0.5 * acc);
                const double *a = u + o * k_bins, *b = u + (o + n_ori) * k_bins;
                for (int64_t k = 0; k < k_bins; k++) {
                    g[k] += b[k] - a[k];
                    hh[k] += a[k] - b[k];
                }
            }
        }
    }
    free(cnt); free(u); free(g); free(hh);
    return 0;
}

/* SIMD kernels of depthwise_direct: one output row segment, every tap of the window.
 * The window is `rows` input rows (x_row floats apart) of the kernel rows that fall inside
 * the input, x at the first of them and at the input position of the segment's first
 * output's first tap; w is the kernel at that first row. No bounds checks inside: the
 * caller provides zero-padded copies where the window leaves the input. */
#ifndef CONVBLAS_DEPTHWISE_KERNELS_H
#define CONVBLAS_DEPTHWISE_KERNELS_H

#include <stdint.h>

/* dst[t * dst_ld + o] = sum_{i < rows, j < kw} x[i * x_row + (t * s + j * d) * cs + o] *
 *                       w[(i * kw + j) * ctot + o], for t < count, o < nch. */
void cb_dw_channels_last(const float *x, int64_t x_row, int64_t rows, int64_t kw, int64_t s,
                         int64_t d, int64_t cs, const float *w, int64_t ctot, float *dst,
                         int64_t dst_ld, int64_t count, int64_t nch);

/* dst[t] = sum_{i < rows, j < kw} x[i * x_row + t * s + j * d] * w[(i * kw + j) * w_tap],
 * for t < count: one channel. */
void cb_dw_channels_first(const float *x, int64_t x_row, int64_t rows, int64_t kw, int64_t s,
                          int64_t d, const float *w, int64_t w_tap, float *dst, int64_t count);

#endif

/* The SIMD kernels of depthwise_direct. Written once with GCC/Clang vector extensions and
 * compiled for AVX-512, AVX2 and baseline x86-64 (target_clones): the loader picks the
 * best the CPU has, at run time. Other architectures get the portable build. */
#include "depthwise_kernels.h"

#include "simd.h"

/* channels_last, one block of VL channels at offset o, RB positions at a time: the weight
 * vector of a tap is loaded once for RB outputs. */
enum { RB = 4 };

VINLINE void cl_block(const float *x, int64_t x_row, int64_t rows, int64_t kw, int64_t s, int64_t d,
                      int64_t cs, const float *w, int64_t ctot, float *dst, int64_t dst_ld,
                      int64_t t, int64_t o) {
    vf acc[RB] = {{0}};
    for (int64_t i = 0; i < rows; i++) {
        const float *xr = x + i * x_row + o;
        const float *wr = w + i * kw * ctot + o;
        for (int64_t j = 0; j < kw; j++) {
            vf wv = vload(wr + j * ctot);
            const float *xp = xr + (t * s + j * d) * cs;
            for (int r = 0; r < RB; r++) acc[r] += vload(xp + r * s * cs) * wv;
        }
    }
    for (int r = 0; r < RB; r++) vstore(dst + (t + r) * dst_ld + o, acc[r]);
}

VINLINE void cl_single(const float *x, int64_t x_row, int64_t rows, int64_t kw, int64_t s,
                       int64_t d, int64_t cs, const float *w, int64_t ctot, float *dst,
                       int64_t dst_ld, int64_t t, int64_t o) {
    vf acc = {0};
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < kw; j++)
            acc += vload(x + i * x_row + (t * s + j * d) * cs + o) *
                   vload(w + (i * kw + j) * ctot + o);
    vstore(dst + t * dst_ld + o, acc);
}

/* Channels past the last full vector: plain loops. */
static void cl_tail(const float *x, int64_t x_row, int64_t rows, int64_t kw, int64_t s, int64_t d,
                    int64_t cs, const float *w, int64_t ctot, float *dst, int64_t dst_ld,
                    int64_t count, int64_t o0, int64_t nch) {
    for (int64_t t = 0; t < count; t++)
        for (int64_t o = o0; o < nch; o++) {
            float acc = 0.0f;
            for (int64_t i = 0; i < rows; i++)
                for (int64_t j = 0; j < kw; j++)
                    acc += x[i * x_row + (t * s + j * d) * cs + o] * w[(i * kw + j) * ctot + o];
            dst[t * dst_ld + o] = acc;
        }
}

SIMD_CLONES
void cb_dw_channels_last(const float *x, int64_t x_row, int64_t rows, int64_t kw, int64_t s,
                         int64_t d, int64_t cs, const float *w, int64_t ctot, float *dst,
                         int64_t dst_ld, int64_t count, int64_t nch) {
    if (nch < VL) {
        cl_tail(x, x_row, rows, kw, s, d, cs, w, ctot, dst, dst_ld, count, 0, nch);
        return;
    }
    /* The last block overlaps the one before when nch is not a multiple of VL: it writes
     * the same values again, and no lane is left to scalar code. */
    for (int64_t o = 0; o < nch; o += VL) {
        int64_t ob = o + VL <= nch ? o : nch - VL;
        int64_t t = 0;
        for (; t + RB <= count; t += RB)
            cl_block(x, x_row, rows, kw, s, d, cs, w, ctot, dst, dst_ld, t, ob);
        for (; t < count; t++) cl_single(x, x_row, rows, kw, s, d, cs, w, ctot, dst, dst_ld, t, ob);
    }
}

/* channels_first, stride 1: RB vectors of consecutive positions; each tap's weight is one
 * broadcast for RB * VL outputs. */
VINLINE void cf_block(const float *x, int64_t x_row, int64_t rows, int64_t kw, int64_t d,
                      const float *w, int64_t w_tap, float *dst, int64_t t) {
    vf acc[RB] = {{0}};
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < kw; j++) {
            vf wv = vsplat(w[(i * kw + j) * w_tap]);
            const float *xp = x + i * x_row + t + j * d;
            for (int r = 0; r < RB; r++) acc[r] += vload(xp + r * VL) * wv;
        }
    for (int r = 0; r < RB; r++) vstore(dst + t + r * VL, acc[r]);
}

static inline void cf_single(const float *x, int64_t x_row, int64_t rows, int64_t kw, int64_t d,
                             const float *w, int64_t w_tap, float *dst, int64_t t) {
    vf acc = {0};
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < kw; j++)
            acc += vload(x + i * x_row + t + j * d) * vsplat(w[(i * kw + j) * w_tap]);
    vstore(dst + t, acc);
}

SIMD_CLONES
void cb_dw_channels_first(const float *x, int64_t x_row, int64_t rows, int64_t kw, int64_t s,
                          int64_t d, const float *w, int64_t w_tap, float *dst, int64_t count) {
    int64_t t = 0;
    if (s == 1 && count >= VL) {
        for (; t + RB * VL <= count; t += RB * VL)
            cf_block(x, x_row, rows, kw, d, w, w_tap, dst, t);
        for (; t + VL <= count; t += VL) cf_single(x, x_row, rows, kw, d, w, w_tap, dst, t);
        /* The rest as one vector overlapping the last: same values written again. */
        if (t < count) cf_single(x, x_row, rows, kw, d, w, w_tap, dst, count - VL);
        return;
    }
    for (; t < count; t++) {
        float acc = 0.0f;
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < kw; j++)
                acc += x[i * x_row + t * s + j * d] * w[(i * kw + j) * w_tap];
        dst[t] = acc;
    }
}

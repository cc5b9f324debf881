/* Our AVX-512 GEMM micro-kernel and the two small drivers around it, for the products
 * that OpenBLAS's sgemm runs at about 90% of the FMA units' rate on Zen 4 (103 GFLOP/s
 * against 110-118 for a kernel of our own): dense_direct's unfolded convolutions and the
 * pointwise stage of depthwise_direct's separable layers.
 *
 * - The block: 14 rows x 32 columns of sums in 28 zmm registers over the whole sum, each
 *   step loading one row of b (two vectors) and feeding each of a's 14 values to two FMAs
 *   as a broadcast memory operand ({1to16}): 30 instructions a step. With the broadcast
 *   in a register of its own (what the compiler makes of _mm512_set1_ps), the step took
 *   44 and the loop reloaded pointers from the stack: 109 GFLOP/s against 112-113 now
 *   (1x1, 800 x 256 x 256, 1 thread; oneDNN 111-115, XNNPACK 113-115 in the same runs).
 * - Rows-major ("last": channels_last): c = a (positions x k) times the weights packed in
 *   panels of 32 columns (k rows of 128 bytes each: streamed from the L2 cache without
 *   the cache-set conflicts that the weights' own rows, often 2 KiB apart, would have).
 * - Columns-major ("first": channels_first): the transposed product, 32 positions in the
 *   lanes and 14 filters a block's rows, from the weights transposed (a filter's weights
 *   contiguous, rows an odd multiple of 64 bytes apart for the same reason).
 * - The bias starts the sums; linear, relu and relu6 are a clamp in registers before the
 *   store; any other activation runs on a block's rows as soon as they are done, in L1. */
#include "convblas_internal.h"
#include "simd.h"

#include <math.h>

enum { MR = CB_MICRO_ROWS, NR = CB_MICRO_COLS };

int64_t cb_micro_row_stride(int64_t k) {
    int64_t r = cb_ceil_div(k, 16) * 16;
    return r / 16 % 2 ? r : r + 16;
}

static int64_t panels(int64_t n) {
    return cb_ceil_div(n, NR);
}

int64_t cb_micro_packed_floats(convblas_data_format f, int64_t k, int64_t n) {
    return f == CONVBLAS_CHANNELS_LAST ? cb_mul_sat(panels(n) * NR, k)
                                       : cb_mul_sat(n, cb_micro_row_stride(k));
}

void cb_micro_pack(convblas_data_format f, const float *w, int64_t k, int64_t n, float *packed,
                   int64_t part, int64_t parts) {
    if (f != CONVBLAS_CHANNELS_LAST) {
        /* column j of w (k x n, row-major) as row j, row_stride apart */
        int64_t ld = cb_micro_row_stride(k);
        for (int64_t j = part * n / parts; j < (part + 1) * n / parts; j++)
            for (int64_t r = 0; r < k; r++) packed[j * ld + r] = w[r * n + j];
        return;
    }
    /* Row by row of w, so that its reads stream; a panel's part of a row is two vectors. */
    int64_t P = panels(n), q0 = part * P / parts, q1 = (part + 1) * P / parts;
    for (int64_t r = 0; r < k; r++)
        for (int64_t q = q0; q < q1; q++) {
            float *dst = packed + (q * k + r) * NR;
            const float *src = w + r * n + q * NR;
            int64_t cols = cb_min(NR, n - q * NR);
            if (cols == NR)
                for (int c = 0; c < NR; c++) dst[c] = src[c];
            else
                for (int c = 0; c < NR; c++) dst[c] = c < cols ? src[c] : 0.0f;
        }
}

double cb_micro_rate(int64_t lanes, int64_t k) {
    /* Measured on Zen 4 in the same runs: 111-113 GFLOP/s against sgemm's 101-103. */
    const double speed = 1.09;
    /* A block's fixed cost in steps of its sum: the accumulators' start and store. */
    const double block_steps = 16.0;
    int64_t last = lanes - (panels(lanes) - 1) * NR;
    int64_t computed = (panels(lanes) - 1) * NR + (last > 16 ? NR : 16);
    return cb_machine.gemm_flops * speed * (double)lanes / (double)computed * (double)k /
           ((double)k + block_steps);
}

cb_problem cb_micro_rest(const cb_problem *p, cb_micro_out *o) {
    cb_problem q = *p;
    q.use_bias = false;
    o->lo = -INFINITY, o->hi = INFINITY;
    if (p->activation == CONVBLAS_RELU || p->activation == CONVBLAS_RELU6) o->lo = 0.0f;
    if (p->activation == CONVBLAS_RELU6) o->hi = 6.0f;
    if (p->activation == CONVBLAS_LINEAR || p->activation == CONVBLAS_RELU ||
        p->activation == CONVBLAS_RELU6)
        q.activation = CONVBLAS_LINEAR;
    return q;
}

#ifdef CB_TARGET_V4
#include <immintrin.h>

#define V4 CB_TARGET_V4 static inline __attribute__((always_inline))

/* c[mr x 16 nv] = clamp(bias + a[mr x k] (rows lda apart) b[k x 16 nv] (rows ldb apart),
 * lo, hi); the bias is a vector per column (col_bias) or a float per row (row_bias). The
 * lanes of m0/m1 are stored, the others are columns past the last. max(lo, x) and
 * min(hi, x) return x where x is NaN: relu(NaN) is NaN, as the reference's. */
V4 void block(const int mr, const int nv, const cb_micro_a *a, const float *b, int64_t ldb,
              const float *col_bias, const float *row_bias, __m512 lo, __m512 hi, float *c,
              int64_t ldc, __mmask16 m0, __mmask16 m1) {
    __m512 acc[MR][2];
    __m512 z0 = col_bias ? _mm512_maskz_loadu_ps(m0, col_bias) : _mm512_setzero_ps();
    __m512 z1 = col_bias && nv > 1 ? _mm512_maskz_loadu_ps(m1, col_bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++) {
        __m512 r = _mm512_set1_ps(row_bias ? row_bias[i] : 0.0f);
        acc[i][0] = _mm512_add_ps(z0, r), acc[i][1] = _mm512_add_ps(z1, r);
    }
    int64_t lda = a->lda, len = a->len;
    for (int s = 0; s < a->runs; s++) {
        const float *as = a->a + a->off[s], *bs = b + s * len * ldb;
        for (int64_t t = 0; t < len; t++) {
            /* masked: a row of b may end where the buffer does */
            __m512 b0 = _mm512_maskz_loadu_ps(m0, bs + t * ldb);
            __m512 b1 = nv > 1 ? _mm512_maskz_loadu_ps(m1, bs + t * ldb + 16) : b0;
#pragma GCC unroll 14
            for (int i = 0; i < mr; i++) {
                /* a's value as each FMA's broadcast operand (see the top of the file) */
                const float *ai = as + i * lda + t;
                __asm__("vfmadd231ps %[a]%{1to16%}, %[b], %[c]"
                        : [c] "+v"(acc[i][0])
                        : [b] "v"(b0), [a] "m"(*ai));
                if (nv > 1)
                    __asm__("vfmadd231ps %[a]%{1to16%}, %[b], %[c]"
                            : [c] "+v"(acc[i][1])
                            : [b] "v"(b1), [a] "m"(*ai));
            }
        }
    }
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++) {
        _mm512_mask_storeu_ps(c + i * ldc, m0, _mm512_min_ps(hi, _mm512_max_ps(lo, acc[i][0])));
        if (nv > 1)
            _mm512_mask_storeu_ps(c + i * ldc + 16, m1,
                                  _mm512_min_ps(hi, _mm512_max_ps(lo, acc[i][1])));
    }
}

/* One instance per row count and width: each keeps its accumulators in registers. A last
 * panel of 16 columns or fewer takes one vector (F = 100: 112 lanes computed, not 128).
 * Only b's first `cols` columns are read. */
CB_TARGET_V4 static void block_rows(int mr, const cb_micro_a *a, const float *b, int64_t ldb,
                                    const cb_micro_out *o, const float *col_bias,
                                    const float *row_bias, float *c, int64_t cols) {
    __mmask16 m0 = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1);
    __mmask16 m1 = cols >= 32 ? 0xFFFF : cols > 16 ? (__mmask16)((1u << (cols - 16)) - 1) : 0;
    __m512 lo = _mm512_set1_ps(o->lo), hi = _mm512_set1_ps(o->hi);
    switch (mr) {
#define ROWS(n)                                                                                    \
    case n:                                                                                        \
        if (cols > 16)                                                                             \
            block(n, 2, a, b, ldb, col_bias, row_bias, lo, hi, c, o->ldc, m0, m1);                 \
        else                                                                                       \
            block(n, 1, a, b, ldb, col_bias, row_bias, lo, hi, c, o->ldc, m0, m1);                 \
        break;
        ROWS(1)
        ROWS(2)
        ROWS(3)
        ROWS(4) ROWS(5) ROWS(6) ROWS(7) ROWS(8) ROWS(9) ROWS(10) ROWS(11) ROWS(12) ROWS(13) ROWS(14)
#undef ROWS
    }
}

bool cb_micro_available(void) {
    return cb_cpu_v4();
}
#else
static void block_rows(int mr, const cb_micro_a *a, const float *b, int64_t ldb,
                       const cb_micro_out *o, const float *col_bias, const float *row_bias,
                       float *c, int64_t cols) {
    (void)mr, (void)a, (void)b, (void)ldb, (void)o, (void)col_bias;
    (void)row_bias, (void)c, (void)cols;
}

bool cb_micro_available(void) {
    return false;
}
#endif

static const int64_t at_start = 0;

cb_micro_a cb_micro_matrix(const float *a, int64_t lda, int64_t k) {
    return (cb_micro_a){.a = a, .lda = lda, .len = k, .runs = 1, .off = &at_start};
}

void cb_micro_gemm_last(int64_t m, int64_t n, const cb_micro_a *a, const float *packed,
                        const cb_micro_out *o, const cb_problem *rest, float *c) {
    int64_t k = a->runs * a->len;
    for (int64_t i0 = 0; i0 < m; i0 += MR) {
        int mr = (int)cb_min(MR, m - i0);
        cb_micro_a rows = *a;
        rows.a += i0 * a->lda;
        for (int64_t q = 0; q < panels(n); q++)
            block_rows(mr, &rows, packed + q * k * NR, NR, o, o->bias ? o->bias + q * NR : NULL,
                       NULL, c + i0 * o->ldc + q * NR, cb_min(NR, n - q * NR));
        cb_epilogue(rest, NULL, c + i0 * o->ldc, mr, o->ldc);
    }
}

void cb_micro_gemm_first(int64_t m, int64_t n, int64_t k, const float *wt, const float *b,
                         int64_t ldb, const cb_micro_out *o, const cb_problem *rest, float *c) {
    int64_t ldw = cb_micro_row_stride(k);
    for (int64_t j0 = 0; j0 < n; j0 += NR) {
        int64_t nc = cb_min(NR, n - j0);
        for (int64_t i0 = 0; i0 < m; i0 += MR) {
            cb_micro_a w = cb_micro_matrix(wt + i0 * ldw, ldw, k);
            block_rows((int)cb_min(MR, m - i0), &w, b + j0, ldb, o, NULL,
                       o->bias ? o->bias + i0 : NULL, c + i0 * o->ldc + j0, nc);
        }
        cb_epilogue(rest, NULL, c + j0, nc, o->ldc);
    }
}

void cb_pointwise_finish(const cb_exec *e, const float *mid, const float *packed, int64_t n,
                         int64_t p0, int64_t positions) {
    const cb_problem *p = e->p;
    int64_t ld;
    float *out = cb_output_tile(e, n, p0, &ld);
    if (!packed) {
        cb_pointwise_stage(e, mid, n, p0, positions);
        cb_epilogue(p, e->bias, out, positions, ld);
        return;
    }
    cb_micro_out o = {.ldc = ld, .bias = p->use_bias ? e->bias : NULL};
    cb_problem rest = cb_micro_rest(p, &o);
    if (p->format == CONVBLAS_CHANNELS_LAST) {
        cb_micro_a a = cb_micro_matrix(mid, p->mid_channels, p->mid_channels);
        cb_micro_gemm_last(positions, p->out_channels, &a, packed, &o, &rest, out);
    } else
        cb_micro_gemm_first(p->out_channels, positions, p->mid_channels, packed, mid, positions, &o,
                            &rest, out);
}

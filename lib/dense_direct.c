/* dense_direct: ungrouped convolutions on our own AVX-512 GEMM micro-kernel
 * instead of OpenBLAS's sgemm, which on Zen 4 runs at about 90% of what the FMA units give
 * (103 GFLOP/s against the 110-115 of oneDNN's and XNNPACK's own kernels).
 *
 * - prepare: the kernel, (taps x channels) x filters, is repacked once per call into
 *   panels of 32 filters, each panel's rows contiguous (128 bytes a row): the micro-kernel
 *   streams a panel from the L2 cache with no cache-set conflicts, which the kernel's own
 *   rows (filters x 4 bytes apart, often 2 KiB) would have.
 * - a task is a tile of output positions (across rows where rows are short); per block of
 *   MR = 14 positions it unfolds the receptive fields into MR rows (im2col, zeros where a
 *   window leaves the input), so any padding, stride and dilation is the same code; then
 *   for each panel the micro-kernel keeps 14 x 32 sums in 28 zmm registers over the whole
 *   sum, each step loading the panel's row once and broadcasting each position's input
 *   into the FMA. The rows' stride is an odd multiple of 64 bytes, so the 14 rows never
 *   share a set of the L1 cache (rows 12 KiB apart ran 20% slower).
 * - channels_first is the same product transposed: 32 positions in the vector lanes (a
 *   panel of their receptive fields, unfolded per block of 32) and 14 filters a block's
 *   rows, from the kernel transposed once per call (a filter's weights contiguous).
 * - the bias starts the sums; linear, relu and relu6 are a clamp in registers before the
 *   store; other activations run on a block's rows as soon as they are done, in L1.
 * Measured alone (1 thread, 1498 x 384 x 1152): 108-111 GFLOP/s, sgemm 99-103 in the
 * same runs. AVX-512 only: with AVX2's 16 registers the block would be a third of this. */
#include "convblas_internal.h"
#include "simd.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum {
    MR = 14,    /* positions of a block: 14 x 2 accumulators + 2 panel rows + a broadcast */
    NR = 32,    /* filters of a panel: two zmm */
    ALIGN = 16, /* floats of slack to start a buffer on a 64-byte boundary */
    /* fixed cost of one block's panel, in steps of its sum: the 28 accumulators' start and
     * store, the loop's entry */
    BLOCK_STEPS = 16
};

/* Our kernel's rate over cb_machine.gemm_flops (sgemm on large blocks), measured on Zen 4
 * in the same runs: 108-111 against 99-103 GFLOP/s. */
static const double kernel_speed = 1.06;

static int64_t panels_of(const cb_problem *p) {
    return cb_ceil_div(p->out_channels, NR);
}

/* Filter lanes computed: whole panels, the last one 16 wide where it can be. */
static int64_t lanes_of(const cb_problem *p) {
    int64_t last = p->out_channels - (panels_of(p) - 1) * NR;
    return (panels_of(p) - 1) * NR + (last > 16 ? NR : 16);
}

/* Floats of one unfolded row: the sum's length rounded up to an odd multiple of 16. */
static int64_t row_stride(const cb_problem *p) {
    int64_t k = cb_ceil_div(p->kernel_elems / p->out_channels, 16) * 16;
    return k / 16 % 2 ? k : k + 16;
}

/* Where a block's sums go: the output's leading dimension, the bias they start from (a
 * vector per filter lane, or a float per row) and the clamp applied in registers before
 * the store, [lo, hi]: linear, relu and relu6 need nothing more; other activations run on
 * the block's rows right after (still in the L1 cache). */
typedef struct block_out {
    int64_t ldc;
    const float *col_bias, *row_bias;
    float lo, hi;
} block_out;

/* The clamp that is the whole activation, or false where it is not one. */
static bool clamp_of(convblas_activation a, float *lo, float *hi) {
    *lo = -INFINITY, *hi = INFINITY;
    if (a == CONVBLAS_RELU || a == CONVBLAS_RELU6) *lo = 0.0f;
    if (a == CONVBLAS_RELU6) *hi = 6.0f;
    return a == CONVBLAS_LINEAR || a == CONVBLAS_RELU || a == CONVBLAS_RELU6;
}

#ifdef CB_TARGET_V4
#include <immintrin.h>

#define V4 CB_TARGET_V4 static inline __attribute__((always_inline))

/* c[mr x 16 nv] = clamp(bias + a[mr x k] (rows lda apart) * b[k x 16 nv], lo, hi), b a
 * panel's first nv vectors; the bias is a vector per lane (col_bias, channels_last) or a
 * float per row (row_bias, channels_first). The lanes of m0/m1 are stored, the others are
 * filters past the last. max(lo, x) and min(hi, x) return x where x is NaN: relu(NaN) is
 * NaN, as the reference's. */
V4 void block(const int mr, const int nv, int64_t k, const float *a, int64_t lda, const float *b,
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
    for (int64_t t = 0; t < k; t++) {
        __m512 b0 = _mm512_load_ps(b + t * NR), b1 = nv > 1 ? _mm512_load_ps(b + t * NR + 16) : b0;
#pragma GCC unroll 14
        for (int i = 0; i < mr; i++) {
            __m512 x = _mm512_set1_ps(a[i * lda + t]);
            acc[i][0] = _mm512_fmadd_ps(x, b0, acc[i][0]);
            if (nv > 1) acc[i][1] = _mm512_fmadd_ps(x, b1, acc[i][1]);
        }
    }
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++) {
        __m512 y0 = _mm512_min_ps(hi, _mm512_max_ps(lo, acc[i][0]));
        _mm512_mask_storeu_ps(c + i * ldc, m0, y0);
        if (nv > 1)
            _mm512_mask_storeu_ps(c + i * ldc + 16, m1,
                                  _mm512_min_ps(hi, _mm512_max_ps(lo, acc[i][1])));
    }
}

/* One instance per row count and width: each keeps its accumulators in registers. A last
 * panel of 16 filters or fewer takes one vector (F = 100: 112 lanes computed, not 128). */
CB_TARGET_V4 static void block_rows(int mr, int64_t k, const float *a, int64_t lda, const float *b,
                                    const block_out *o, float *c, int64_t cols) {
    __mmask16 m0 = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1);
    __mmask16 m1 = cols >= 32 ? 0xFFFF : cols > 16 ? (__mmask16)((1u << (cols - 16)) - 1) : 0;
    __m512 lo = _mm512_set1_ps(o->lo), hi = _mm512_set1_ps(o->hi);
    switch (mr) {
#define ROWS(n)                                                                                    \
    case n:                                                                                        \
        if (cols > 16)                                                                             \
            block(n, 2, k, a, lda, b, o->col_bias, o->row_bias, lo, hi, c, o->ldc, m0, m1);        \
        else                                                                                       \
            block(n, 1, k, a, lda, b, o->col_bias, o->row_bias, lo, hi, c, o->ldc, m0, m1);        \
        break;
        ROWS(1)
        ROWS(2)
        ROWS(3)
        ROWS(4) ROWS(5) ROWS(6) ROWS(7) ROWS(8) ROWS(9) ROWS(10) ROWS(11) ROWS(12) ROWS(13) ROWS(14)
#undef ROWS
    }
}

static bool cpu_ok(void) {
    return cb_cpu_v4();
}
#else
static bool cpu_ok(void) {
    return false;
}
static void block_rows(int mr, int64_t k, const float *a, int64_t lda, const float *b,
                       const block_out *o, float *c, int64_t cols) {
    (void)mr, (void)k, (void)a, (void)lda, (void)b, (void)o, (void)c, (void)cols;
}
#endif

static bool applicable(const cb_problem *p, char *why, size_t n) {
    const char *no = p->op != CONVBLAS_CONV ? "only for CONV"
                     : p->groups > 1        ? "needs groups = 1 (grouped layers: grouped_direct, "
                                              "or the GEMM lowerings' per-group calls)"
                     : !cpu_ok() ? "needs AVX-512 (x86-64-v4), in a build with the library's "
                                   "target attributes (GCC)"
                                 : NULL;
    if (no) snprintf(why, n, "%s", no);
    return no == NULL;
}

static bool last_format(const cb_problem *p) {
    return p->format == CONVBLAS_CHANNELS_LAST;
}

/* Tiles of output positions (of one image), the output tile about a quarter of
 * tuning->tile_bytes and a multiple of a block (MR positions; channels_first: NR); more
 * tiles where the batch alone gives the workers too few. The packed kernel is shared; a
 * worker unfolds one block at a time. */
static void configure(const cb_problem *p, const cb_tuning *t, cb_params *params) {
    int64_t per_position = cb_mul_sat(p->out_channels, (int64_t)sizeof(float) * 4);
    int64_t k = p->kernel_elems / p->out_channels;
    int64_t unit = last_format(p) ? MR : NR;
    int64_t tile = cb_max((int64_t)t->tile_bytes / per_position, unit) / unit * unit;
    int64_t images_tasks = p->batch * cb_ceil_div(p->out_plane, tile);
    if (images_tasks < 4 * (int64_t)t->threads && t->threads > 1) {
        int64_t want = cb_ceil_div(4 * (int64_t)t->threads, cb_max(p->batch, 1));
        tile = cb_max(cb_ceil_div(cb_ceil_div(p->out_plane, want), unit) * unit, unit);
    }
    /* Equal shares for the workers where tasks are few: 9 tasks on 2 workers ran 11% slower
     * than 10 would (whisper_c2). */
    int64_t per_image = cb_ceil_div(p->out_plane, cb_max(tile, 1)), T = t->threads;
    if (T > 1 && p->batch * per_image < 16 * T) {
        int64_t even = per_image;
        while ((p->batch * even) % T != 0 && even < per_image + T) even++;
        if ((p->batch * even) % T == 0)
            tile = cb_ceil_div(cb_ceil_div(p->out_plane, even), unit) * unit;
    }
    params->tile = cb_max(cb_min(tile, p->out_plane), 1);
    params->tasks = p->batch * cb_ceil_div(p->out_plane, params->tile);
    /* the kernel in panels of 32 filters, or transposed: a row of k per filter */
    int64_t packed = last_format(p) ? cb_mul_sat(panels_of(p) * NR, k)
                                    : cb_mul_sat(p->out_channels, row_stride(p));
    params->shared_floats = (size_t)(packed > INT64_MAX - ALIGN ? INT64_MAX : packed + ALIGN);
    params->worker_floats =
        (size_t)cb_mul_sat(last_format(p) ? MR : k, last_format(p) ? row_stride(p) : NR) + ALIGN;
}

static double cost(const cb_problem *p, const cb_params *params) {
    double k = (double)(p->kernel_elems / p->out_channels);
    /* channels_last: filters in the lanes; channels_first: positions, F in blocks of MR */
    int64_t cols = last_format(p) ? p->out_channels : cb_min(params->tile, p->out_plane);
    double lanes = last_format(p) ? (double)cols / (double)lanes_of(p)
                                  : (double)cols / (double)(cb_ceil_div(cols, NR) * NR);
    double rate = cb_machine.gemm_flops * kernel_speed * lanes * k / (k + BLOCK_STEPS);
    /* unfolding: each position's row written and read once, in cache; the packing */
    double unfold = (double)p->batch * (double)p->out_plane * k * 2.0 * sizeof(float);
    double pack = (double)panels_of(p) * NR * k * 2.0 * sizeof(float);
    int64_t workers = cb_min(params->threads, cb_max(params->tasks, 1));
    double t = (p->flops / rate + unfold / cb_machine.copy_bytes) / (double)workers +
               pack / cb_machine.copy_bytes / (double)params->threads +
               (double)params->tasks * cb_machine.call_cost;
    return t;
}

/* channels_first: filter f's weights, k of them, as row f (row_stride apart), for the
 * filters [part * F / parts, (part + 1) * F / parts). */
static void transpose_kernel(const cb_exec *e, int64_t part, int64_t parts) {
    const cb_problem *p = e->p;
    int64_t F = p->out_channels, k = p->kernel_elems / F, lda = row_stride(p);
    float *wt = cb_align64(e->shared);
    for (int64_t f = part * F / parts; f < (part + 1) * F / parts; f++)
        for (int64_t r = 0; r < k; r++) wt[f * lda + r] = e->kernel[r * F + f];
}

/* Panels [part * P / parts, (part + 1) * P / parts): panel q holds filters [32q, 32q + 32)
 * of every row of the kernel, zeros past the last filter. */
static void prepare(const cb_exec *e, int64_t part, int64_t parts) {
    const cb_problem *p = e->p;
    if (!last_format(p)) {
        transpose_kernel(e, part, parts);
        return;
    }
    int64_t F = p->out_channels, k = p->kernel_elems / F, P = panels_of(p);
    float *packed = cb_align64(e->shared);
    for (int64_t q = part * P / parts; q < (part + 1) * P / parts; q++) {
        int64_t cols = cb_min(NR, F - q * NR);
        float *dst = packed + q * k * NR;
        for (int64_t r = 0; r < k; r++) {
            memcpy(dst + r * NR, e->kernel + r * F + q * NR, (size_t)cols * sizeof(float));
            memset(dst + r * NR + cols, 0, (size_t)(NR - cols) * sizeof(float));
        }
    }
}

/* Row r of the block: the receptive field of output position pos (of image img), in the
 * kernel's order (kernel row, tap, channel), zeros outside the input. */
static void unfold_row(const cb_problem *p, const float *img, int64_t pos, float *row) {
    int64_t C = p->channels, oh = pos / p->out_w, ow = pos % p->out_w;
    for (int64_t i = 0; i < p->k_h; i++) {
        int64_t ih = cb_input_coord(oh, p->s_h, i, p->d_h, p->pad_top);
        bool row_in = ih >= 0 && ih < p->in_h;
        int64_t iw0 = cb_input_coord(ow, p->s_w, 0, p->d_w, p->pad_left);
        if (row_in && p->d_w == 1 && iw0 >= 0 && iw0 <= p->in_w - p->k_w) {
            /* the kernel row's taps are adjacent columns: one copy (C = 1: one, not k_w) */
            memcpy(row + i * p->k_w * C, img + (ih * p->in_w + iw0) * C,
                   (size_t)(p->k_w * C) * sizeof(float));
            continue;
        }
        for (int64_t j = 0; j < p->k_w; j++) {
            int64_t iw = cb_input_coord(ow, p->s_w, j, p->d_w, p->pad_left);
            float *dst = row + (i * p->k_w + j) * C;
            if (row_in && iw >= 0 && iw < p->in_w)
                memcpy(dst, img + (ih * p->in_w + iw) * C, (size_t)C * sizeof(float));
            else
                memset(dst, 0, (size_t)C * sizeof(float));
        }
    }
}

/* channels_first: the receptive fields of np <= 32 positions from pos, as a panel of k rows
 * of 32 (kernel order; zeros outside the input and past np). A tap's input offsets are
 * found once and serve every channel; adjacent and inside, a row is one copy. */
static void unfold_panel(const cb_problem *p, const float *img, int64_t pos, int64_t np,
                         float *panel) {
    int64_t off[NR];
    for (int64_t tap = 0; tap < p->taps; tap++) {
        int64_t i = tap / p->k_w, j = tap % p->k_w;
        bool adjacent = true;
        for (int64_t q = 0; q < np; q++) {
            int64_t oh = (pos + q) / p->out_w, ow = (pos + q) % p->out_w;
            int64_t ih = cb_input_coord(oh, p->s_h, i, p->d_h, p->pad_top);
            int64_t iw = cb_input_coord(ow, p->s_w, j, p->d_w, p->pad_left);
            off[q] = ih >= 0 && ih < p->in_h && iw >= 0 && iw < p->in_w ? ih * p->in_w + iw : -1;
            adjacent = adjacent && off[q] >= 0 && (q == 0 || off[q] == off[q - 1] + 1);
        }
        for (int64_t c = 0; c < p->channels; c++) {
            const float *plane = img + c * p->in_plane;
            float *dst = panel + (tap * p->channels + c) * NR;
            if (adjacent) {
                memcpy(dst, plane + off[0], (size_t)np * sizeof(float));
            } else {
                for (int64_t q = 0; q < np; q++) dst[q] = off[q] >= 0 ? plane[off[q]] : 0.0f;
            }
            memset(dst + np, 0, (size_t)(NR - np) * sizeof(float));
        }
    }
}

/* The activation left after the clamp, on rows already biased; linear where the clamp was
 * all of it. */
static cb_problem rest_of(const cb_problem *p, block_out *o) {
    cb_problem q = *p;
    q.use_bias = false;
    if (clamp_of(p->activation, &o->lo, &o->hi)) q.activation = CONVBLAS_LINEAR;
    return q;
}

/* channels_first: blocks of 32 positions in the lanes, MR filters a block's rows. */
static void run_first(const cb_exec *e, int64_t n, int64_t p0, int64_t count, float *ws) {
    const cb_problem *p = e->p;
    int64_t F = p->out_channels, k = p->kernel_elems / F, lda = row_stride(p), ld;
    const float *img = e->in + n * p->in_plane * p->channels, *wt = cb_align64(e->shared);
    float *panel = cb_align64(ws), *out = cb_output_tile(e, n, p0, &ld);
    block_out o = {.ldc = ld};
    cb_problem rest = rest_of(p, &o);
    for (int64_t b0 = 0; b0 < count; b0 += NR) {
        int64_t np = cb_min(NR, count - b0);
        unfold_panel(p, img, p0 + b0, np, panel);
        for (int64_t f0 = 0; f0 < F; f0 += MR) {
            o.row_bias = p->use_bias ? e->bias + f0 : NULL;
            block_rows((int)cb_min(MR, F - f0), k, wt + f0 * lda, lda, panel, &o,
                       out + f0 * ld + b0, np);
        }
        cb_epilogue(&rest, NULL, out + b0, np, ld);
    }
}

static void run_task(const cb_exec *e, int64_t task, float *ws) {
    const cb_problem *p = e->p;
    int64_t n, p0, count = cb_locate_position_tile(p, e->params->tile, task, &n, &p0), ld;
    if (!last_format(p)) {
        run_first(e, n, p0, count, ws);
        return;
    }
    int64_t F = p->out_channels, k = p->kernel_elems / F, lda = row_stride(p);
    const float *img = e->in + n * p->in_plane * p->channels;
    const float *packed = cb_align64(e->shared);
    float *rows = cb_align64(ws), *out = cb_output_tile(e, n, p0, &ld);
    block_out o = {.ldc = ld};
    cb_problem rest = rest_of(p, &o);
    for (int64_t b0 = 0; b0 < count; b0 += MR) {
        int mr = (int)cb_min(MR, count - b0);
        for (int r = 0; r < mr; r++) unfold_row(p, img, p0 + b0 + r, rows + r * lda);
        for (int64_t q = 0; q < panels_of(p); q++) {
            o.col_bias = p->use_bias ? e->bias + q * NR : NULL;
            block_rows(mr, k, rows, lda, packed + q * k * NR, &o, out + b0 * ld + q * NR,
                       cb_min(NR, F - q * NR));
        }
        cb_epilogue(&rest, NULL, out + b0 * ld, mr, ld);
    }
}

const cb_strategy cb_dense_direct = {
    .name = "dense_direct",
    .summary = "own AVX-512 GEMM micro-kernel: 14 unfolded positions x 32 filters in "
               "registers (channels_first: 14 filters x 32 positions), the kernel repacked "
               "once per call",
    .parallel = "images x tiles of output positions (the repacking: shares of the filters)",
    .applicable = applicable,
    .configure = configure,
    .cost = cost,
    .run_task = run_task,
    .prepare = prepare,
};

/* grouped_direct: a direct, vectorized kernel for grouped convolutions with small groups
 * (not BLAS), where the per-group GEMMs of the other lowerings are too small to run fast.
 * channels_last only.
 *
 * A task is a band of output rows of one image (rows narrower than a chunk) or a segment
 * of one row, and where those are too few for the workers, a share of the groups. It runs
 * in chunks of columns; for a chunk, batches of groups (an L2 cache's worth of staging):
 *  - staging: the input rows the windows read, copied column by column (one sequential
 *    read of the input) into a buffer per group: 8 channels per column, consecutive output
 *    positions reading consecutive columns (a strided layer's columns split by phase),
 *    zeros where a window leaves the input, so the edges take the blocked path too;
 *  - per group and output row: blocks of np positions. A group's outputs are 8-lane
 *    vectors; a block's np x nv accumulators stay in registers, and each (tap, input
 *    channel) loads its weight vectors once and feeds every position, the input value
 *    broadcast into the FMA from a constant displacement (the staged column stride is a
 *    constant: with the caller's layout, np runtime offsets would spill). Bias starts the
 *    sums, relu and relu6 clamp them before the one store; other activations run on the
 *    finished chunk while it is in cache.
 * AVX-512's 32 registers hold blocks twice AVX2's (ymm: Zen 4 runs a zmm as two halves);
 * both are compiled with explicit targets and chosen by a CPU check, with a portable build
 * of the same code (the only one where target attributes are off). */
#include "convblas_internal.h"
#include "simd.h"

#include <stdio.h>
#include <string.h>

enum {
    V8 = 8,               /* floats per vector of the kernels, and channels per staged column */
    MAX_NV = 4,           /* vectors of a group's outputs: group_out <= 32 */
    MAX_GIN = 64,         /* input channels per group */
    MAX_NP = 24,          /* positions of the largest block */
    MIN_SEG = 32,         /* the fewest positions worth a task of their own */
    CHUNK = 192,          /* positions of a chunk */
    ALIGN = 16,           /* floats of slack to start a buffer on a 64-byte boundary */
    STAGE_FLOATS = 32768, /* staged input of a batch of groups: 128 KiB, in the L2 cache */
    AHEAD = 16            /* columns the staging prefetches ahead */
};

/* Multiply-adds worth a task of their own (a few tens of microseconds). */
static const double min_task_macs = 524288.0;

typedef float v8 __attribute__((vector_size(V8 * sizeof(float)), aligned(sizeof(float))));
typedef int32_t i8 __attribute__((vector_size(V8 * sizeof(int32_t)), aligned(sizeof(int32_t))));

VINLINE v8 load8(const float *p) {
    v8 v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* ---- layout of the staged input -------------------------------------------------------- */

static int64_t vectors_of(const cb_problem *p) {
    return cb_ceil_div(p->group_out, V8);
}

/* group_out not a multiple of 8: each task copies the weights and bias into vectors padded
 * with zeros (the kernels read whole vectors). */
static bool staged_weights(const cb_problem *p) {
    return p->group_out % V8 != 0;
}

/* One kernel row's input for a chunk, per block of 8 channels: `rows` staged rows of `len`
 * columns. By phase (stride s <= kernel taps): row r holds input columns x0 + r + k * s,
 * and tap j reads row (j * d) % s from column (j * d) / s on. By tap (a stride wider than
 * the kernel, or a dilation wide enough that most of the phases' columns would be skipped):
 * row j holds x0 + j * d + k * s. Either way output position q of the chunk reads column q
 * of its tap's row onwards. */
typedef struct gd_layout {
    bool by_phase;
    int64_t rows, len;
    int64_t cblocks; /* blocks of 8 input channels */
    int64_t plane;   /* floats of one block of channels: rows * len * 8 */
    int64_t krow;    /* floats of one kernel row: cblocks * plane */
} gd_layout;

static gd_layout layout_of(const cb_problem *p) {
    gd_layout l;
    /* a chunk's positions, and up to a small block (8) more: the last one's, not stored */
    int64_t q = cb_min(CHUNK, p->out_w) + V8, reach = cb_mul_sat(p->k_w - 1, p->d_w) / p->s_w;
    /* Floats staged either way, compared as doubles: a dilation may be near INT64_MAX. */
    double phase = (double)p->s_w * ((double)q + (double)reach), tap = (double)p->k_w * (double)q;
    l.by_phase = p->s_w <= p->k_w && phase <= tap;
    l.rows = l.by_phase ? p->s_w : p->k_w;
    l.len = l.by_phase ? q + reach : q;
    l.cblocks = cb_ceil_div(p->group_in, V8);
    l.plane = cb_mul_sat(cb_mul_sat(l.rows, l.len), V8);
    l.krow = cb_mul_sat(l.cblocks, l.plane);
    return l;
}

static int64_t weight_floats(const cb_problem *p) {
    if (!staged_weights(p)) return 0;
    int64_t per_group = cb_mul_sat(cb_mul_sat(p->taps, p->group_in) + 1, vectors_of(p) * V8);
    return cb_mul_sat(per_group, p->groups);
}

/* Output rows of a band, a task's rows: rows narrower than a chunk go CHUNK positions at a
 * time, several rows (so that a group's weights serve them all while in cache; each input
 * row staged once), where the rows' windows are contiguous (no dilation along the height). */
static int64_t band_of(const cb_problem *p) {
    if (p->d_h != 1 || p->out_w >= CHUNK) return 1;
    return cb_max(1, cb_min(p->out_h, CHUNK / p->out_w));
}

/* Input rows staged for a band: slot r is input row (band's first) * s_h - pad + r * d_h, and
 * output row t of the band reads slot t * s_h + i for kernel row i (one row: slot i). */
static int64_t window_rows(const cb_problem *p, int64_t band) {
    return band > 1 ? (band - 1) * p->s_h + p->k_h : p->k_h;
}

/* Floats of one group's staged input. */
static int64_t group_floats(const cb_problem *p) {
    return cb_mul_sat(window_rows(p, band_of(p)), layout_of(p).krow);
}

/* Groups staged together: as many as fit STAGE_FLOATS, so that a batch stays in the L2
 * cache while its groups run. */
static int64_t batch_of(const cb_problem *p) {
    return cb_max(1, cb_min(p->groups, STAGE_FLOATS / group_floats(p)));
}

/* The last group of a task, where its vectors reach past the task's outputs. */
static int64_t part_floats(const cb_problem *p) {
    return (CHUNK + V8) * vectors_of(p) * V8;
}

/* The steps of the sum (gd_group.seg) of each row of a band, two int64 each, and each
 * row's first step, step count and first kernel row. */
static int64_t seg_floats(const cb_problem *p) {
    int64_t steps = cb_mul_sat(cb_mul_sat(p->taps, cb_ceil_div(p->group_in, V8)), band_of(p));
    return cb_mul_sat(steps + 2 * band_of(p), 4);
}

static int64_t worker_floats(const cb_problem *p) {
    int64_t x = cb_mul_sat(batch_of(p), group_floats(p)), sg = seg_floats(p);
    int64_t w = weight_floats(p) + part_floats(p); /* both fit: they are about the kernel */
    x = x > INT64_MAX - sg ? INT64_MAX : x + sg;
    return x > INT64_MAX - w - ALIGN ? INT64_MAX : x + w + ALIGN;
}

/* ---- applicability, tasks, cost ------------------------------------------------------ */

static bool applicable(const cb_problem *p, char *why, size_t n) {
    if (p->op == CONVBLAS_CONV && p->groups > 1 &&
        (p->group_out > MAX_NV * V8 || p->group_in > MAX_GIN))
        return cb_decline(
            why, n,
            "groups of %lld inputs and %lld outputs are too large (at most %d and %d): "
            "their GEMMs run well",
            (long long)p->group_in, (long long)p->group_out, MAX_GIN, MAX_NV * V8);
    const char *no =
        p->op != CONVBLAS_CONV ? "only for CONV with groups (depthwise layers have their own "
                                 "kernels)"
        : p->groups == 1       ? "needs groups > 1: an ungrouped convolution is one large GEMM "
                                 "per tile (im2col_gemm, tap_gemm)"
        : p->group_in == 1     ? "one input channel per group is a depthwise convolution: "
                                 "depthwise_direct and depthwise_gemm run it"
        : p->format != CONVBLAS_CHANNELS_LAST
            ? "channels_last only: channels_first would want a kernel of its own (SIMD across "
              "positions), and there tap_gemm's per-group GEMMs run along whole rows (resnext1d "
              "in channels_first: 1.8 ms, this kernel's channels_last time)"
        : p->taps == 1 ? "a 1x1 kernel gives a block too few steps to pay for its staging: the "
                         "per-group GEMMs run it faster (8 x 1000 positions, 8 in / 8 out per "
                         "group: 1.49 ms, pointwise_gemm 1.44; 4 / 4: 3.1, 1.6)"
                       : NULL;
    return no ? cb_decline(why, n, "%s", no) : true;
}

/* A task: an image's band of output rows, or one row's segment of columns, and a share of
 * the groups, as many as four per worker where the work is worth that many. params->tile
 * is band * out_w, or the segment's columns when the band is one row; the shares follow
 * from params->tasks. */
typedef struct gd_cut {
    int64_t band, seg, bands, segs, parts;
} gd_cut;

static gd_cut cut_of(const cb_problem *p, int64_t tile, int64_t tasks) {
    gd_cut c = {.band = tile > p->out_w ? tile / p->out_w : 1};
    c.seg = c.band > 1 ? p->out_w : cb_max(tile, 1);
    c.bands = cb_ceil_div(p->out_h, c.band);
    c.segs = cb_ceil_div(p->out_w, c.seg);
    int64_t tiles = p->batch * c.bands * c.segs;
    c.parts = tiles > 0 ? cb_max(tasks / tiles, 1) : 1;
    return c;
}

static void configure(const cb_problem *p, const cb_tuning *t, cb_params *params) {
    double worth = p->flops / 2.0 / min_task_macs;
    int64_t want = t->threads <= 1 ? 1 : (int64_t)cb_min(4 * (int64_t)t->threads, (int64_t)worth);
    int64_t band = band_of(p), seg = p->out_w;
    int64_t tiles = p->batch * cb_ceil_div(p->out_h, band);
    /* Shares of the groups first: they stage nothing twice and split the weights (thinner
     * bands each read every group's weights again: 7x7, 1024 channels, 32 per group, 2
     * threads ran 1.3x slower so). Then bands, then segments of a row. */
    int64_t parts = tiles > 0 && tiles < want ? cb_min(cb_ceil_div(want, tiles), p->groups) : 1;
    if (tiles * parts < want) {
        band = cb_max(1, cb_ceil_div(p->out_h, cb_ceil_div(want, cb_max(p->batch * parts, 1))));
        tiles = p->batch * cb_ceil_div(p->out_h, band);
    }
    if (band == 1 && tiles * parts < want)
        seg = cb_min(
            cb_max(cb_ceil_div(p->out_w, cb_ceil_div(want, cb_max(tiles * parts, 1))), MIN_SEG),
            p->out_w);
    seg = cb_max(seg, 1);
    tiles *= cb_ceil_div(p->out_w, seg);
    params->tile = band > 1 ? band * p->out_w : seg;
    params->tasks = tiles * parts;
    params->worker_floats = (size_t)worker_floats(p);
}

/* ---- the kernels --------------------------------------------------------------------- */

typedef enum { CLAMP_NONE, CLAMP_LOW, CLAMP_BOTH } clamp_kind;

/* One group of one chunk, staged. */
typedef struct gd_group {
    const float *xs; /* the group's staged input (gd_layout), the window's first row */
    /* The steps of the sum, in the weights' order (kernel row, tap, block of 8 inputs):
     * seg[2t] floats from xs to step t's column of position 0, seg[2t + 1] its inputs. A
     * list rather than the loops it comes from: their counters would take the registers
     * (GCC moved them to vector registers and spilled accumulators). */
    const int64_t *seg;
    int64_t nseg;
    const float *w;    /* the first existing kernel row's tap 0, input 0, the group's output 0 */
    int64_t wc;        /* floats from one (tap, input) weight row to the next */
    const float *bias; /* the group's (whole vectors: padded when staged), or NULL */
    clamp_kind clamp;  /* relu: at 0; relu6: at 0 and 6 */
    float *out;        /* the chunk's position 0, the group's output 0 */
    int64_t F;         /* floats from one output position to the next */
} gd_group;

/* relu and relu6 as clamps, NaN kept as the epilogue keeps it. The bounds are constants:
 * GCC builds a vector of a variable lane by lane in a target-attribute function; and the
 * vector goes by pointer: GCC notes an ABI change for one passed by value. */
VINLINE void finish(clamp_kind clamp, v8 *v) {
    if (clamp == CLAMP_NONE) return;
    const v8 six = {6, 6, 6, 6, 6, 6, 6, 6};
    i8 x, h, below = *v < 0.0f, above = clamp == CLAMP_BOTH ? *v > 6.0f : (i8){0};
    memcpy(&x, v, sizeof x);
    memcpy(&h, &six, sizeof h);
    x = (h & above) | (x & ~(below | above));
    memcpy(v, &x, sizeof x);
}

/* One input channel's step: its weight vectors (at w) times each position's value (at x,
 * 8 floats apart), into the accumulators. Scalar * vector broadcasts: GCC builds a
 * (v8){x, ...} lane by lane. */
VINLINE void channel(v8 (*acc)[MAX_NV], const float *x, const float *w, const int nv,
                     const int np) {
    v8 wv[MAX_NV];
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) wv[v] = load8(w + v * V8);
#pragma GCC unroll 24
    for (int q = 0; q < np; q++) {
        float xq = x[q * V8];
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) acc[q][v] += xq * wv[v];
    }
}

/* np positions from the chunk's position q0, of which the first n are stored, whole
 * vectors: past group_out, the lanes land on the next groups' outputs, which those write
 * later (run_task gives the last group of a task a buffer of its own). The fields are read
 * into locals first: the stores (memcpy) may alias anything, *a included. */
VINLINE void block(const gd_group *a, int64_t q0, int64_t n, const int nv, const int np) {
    const int64_t wc = a->wc, F = a->F, nseg = a->nseg, *seg = a->seg;
    const clamp_kind clamp = a->clamp;
    const float *x0 = a->xs + q0 * V8, *wp = a->w;
    float *out = a->out + q0 * F;
    v8 acc[MAX_NP][MAX_NV], b[MAX_NV];
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) b[v] = a->bias ? load8(a->bias + v * V8) : (v8){0};
#pragma GCC unroll 24
    for (int q = 0; q < np; q++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) acc[q][v] = b[v];
    for (int64_t t = 0; t < nseg; t++) {
        const float *xp = x0 + seg[2 * t];
        for (int64_t c = 0, cn = seg[2 * t + 1]; c < cn; c++, wp += wc)
            channel(acc, xp + c, wp, nv, np);
    }
#pragma GCC unroll 24
    for (int q = 0; q < np; q++) {
        if (q >= n) break;
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) {
            finish(clamp, &acc[q][v]);
            memcpy(out + q * F + v * V8, &acc[q][v], sizeof(v8));
        }
    }
}

/* The blocks, compiled per CPU level, each in a function of its own (inlined together, GCC's
 * register allocation gave up on the larger ones and spilled accumulators): for each
 * vector count, a large block and a small one (for chunks shorter than the large). AVX-512
 * and AVX2 + FMA are compiled with explicit targets and chosen by a CPU check; the
 * baseline is the build's own target (and the only one where target attributes are off). */
typedef void (*gd_block_fn)(const gd_group *a, int64_t q0, int64_t n);
typedef struct gd_kernels {
    gd_block_fn big[MAX_NV], small[MAX_NV];
    int np[MAX_NV], ns[MAX_NV];
    double speed; /* relative to the AVX-512 set's, for the cost */
} gd_kernels;

#define GD_BLOCK(name, attr, nv, np)                                                               \
    attr __attribute__((noinline)) static void name(const gd_group *a, int64_t q0, int64_t n) {    \
        block(a, q0, n, nv, np);                                                                   \
    }
#define GD_KERNELS(level, attr, b1, s1, b2, s2, b3, s3, b4, s4, rel)                               \
    GD_BLOCK(level##_b1, attr, 1, b1)                                                              \
    GD_BLOCK(level##_s1, attr, 1, s1)                                                              \
    GD_BLOCK(level##_b2, attr, 2, b2)                                                              \
    GD_BLOCK(level##_s2, attr, 2, s2)                                                              \
    GD_BLOCK(level##_b3, attr, 3, b3)                                                              \
    GD_BLOCK(level##_s3, attr, 3, s3)                                                              \
    GD_BLOCK(level##_b4, attr, 4, b4)                                                              \
    GD_BLOCK(level##_s4, attr, 4, s4)                                                              \
    static const gd_kernels level = {.big = {level##_b1, level##_b2, level##_b3, level##_b4},      \
                                     .small = {level##_s1, level##_s2, level##_s3, level##_s4},    \
                                     .np = {b1, b2, b3, b4},                                       \
                                     .ns = {s1, s2, s3, s4},                                       \
                                     .speed = rel};

/* Accumulators and weights in registers, one more for the broadcast: 32 registers
 * (AVX-512), 16 (AVX2), 16 of half width (baseline SSE: each vector is two). Relative
 * speed, resnext1d on one Zen 4 core: AVX-512 1.85 ms, AVX2 2.48, baseline 9.6. */
#ifdef CB_TARGET_V4
GD_KERNELS(gd_v4, CB_TARGET_V4, 24, 8, 12, 4, 8, 3, 6, 2, 1.0)
GD_KERNELS(gd_v3, __attribute__((target("avx2,fma"))), 12, 4, 6, 2, 3, 1, 2, 1, 0.75)
#endif
GD_KERNELS(gd_base, , 6, 2, 3, 1, 2, 1, 1, 1, 0.2)

static const gd_kernels *kernels_for_cpu(void) {
#ifdef CB_TARGET_V4
    if (cb_cpu_v4()) return &gd_v4;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &gd_v3;
#endif
    return &gd_base;
}

/* Positions [0, n) of the chunk: blocks of np; the rest in small blocks (the last stored in
 * part) where they compute a third of a large block or less, else as one large block
 * overlapping the one before (the same values again). */
static void run_group(const gd_kernels *k, const gd_group *a, int64_t n, int64_t nv) {
    gd_block_fn big = k->big[nv - 1], small = k->small[nv - 1];
    int64_t np = k->np[nv - 1], ns = k->ns[nv - 1], q = 0;
    for (; q + np <= n; q += np) big(a, q, np);
    if (q == n) return;
    if (q > 0 && 3 * cb_ceil_div(n - q, ns) * ns > np) {
        big(a, n - np, np);
        return;
    }
    for (; q < n; q += ns) small(a, q, cb_min(ns, n - q));
}

/* ---- cost ---------------------------------------------------------------------------- */

/* The AVX-512 blocks' rate, as a fraction of cb_machine.gemm_flops, is s / (s + STEPS_HALF)
 * of the lanes in use, s the steps of a block's sum (taps x inputs per group): a block
 * loads, finishes and stores its accumulators once, worth about 24 steps. The staging
 * copies each row a band's windows read once per chunk, at 3x copy_bytes. Against times on
 * Zen 4 (sgemm 115 GFLOP/s, 1 thread, 8 x 1000 positions, kernel 3; estimate / best of 3):
 * 8 in / 8 out per group 2.36 / 1.79 ms, 4/4 3.58 / 2.72, 16/16 3.35 / 2.33, 32/32 5.41 /
 * 4.25, kernel 5 3.04 / 2.58, stride 2 1.42 / 1.18; 2D 4 x 14x14, 8/8 0.60 / 0.50. Over
 * the times by 1.2-1.5x, as the GEMM lowerings' estimates are (2-3x) on grouped layers. */
enum { STEPS_HALF = 24 };

static double cost(const cb_problem *p, const cb_params *params) {
    const gd_kernels *k = kernels_for_cpu();
    int64_t nv = vectors_of(p), np = k->np[nv - 1], ns = k->ns[nv - 1];
    double steps = (double)p->taps * (double)p->group_in;
    double rate = cb_machine.gemm_flops * k->speed * steps / (steps + STEPS_HALF) *
                  (double)p->group_out / (double)(nv * V8);
    /* a chunk's positions in blocks as run_group has them, a small block's position costing
     * 1 + 0.3 nv of a large one's (measured per position, rows of one block, kernel 3, 8 in /
     * 8 out per group: 1.3x; 32 / 32: 1.9x) */
    int64_t n = cb_min(CHUNK, p->out_w), r = n % np, chunks = cb_ceil_div(p->out_w, n);
    double run = (double)(n - r);
    if (r > 0)
        run += n >= np && 3 * cb_ceil_div(r, ns) * ns > np
                   ? (double)np
                   : (1.0 + 0.3 * (double)nv) * (double)(cb_ceil_div(r, ns) * ns);
    run *= (double)chunks;
    /* each band stages its window's input rows, each chunk's columns */
    gd_cut cut = cut_of(p, params->tile, params->tasks);
    double columns =
        (double)chunks * ((double)n * (double)p->s_w + (double)(p->k_w - 1) * (double)p->d_w);
    double staged = (double)p->batch * (double)cut.bands * (double)window_rows(p, cut.band) *
                    columns * (double)p->channels * 2.0 * sizeof(float);
    /* a group's weights past the L1 cache, read again by each block of a short row (7x7,
     * 32/32: 1.09 ms, im2col_gemm 0.88) */
    double slow = steps * (double)(nv * V8 * 4) > 32768.0 && p->out_w < 2 * np ? 2.0 : 1.0;
    double t = slow * p->flops * run / (double)p->out_w / rate +
               staged / (3.0 * cb_machine.copy_bytes) +
               (double)params->tasks * cb_machine.call_cost;
    return t / (double)cb_min(params->threads, cb_max(params->tasks, 1));
}

/* ---- one task ------------------------------------------------------------------------ */

/* The indices j in [*j0, *j1) of [0, k) for which u0 + j * d lies in [0, n). Without
 * overflow for any u0 > INT64_MIN and d > 0 (strides and dilations may be near INT64_MAX):
 * no u0 + j * d is formed but the first inside, which is in [0, n). */
static void inside(int64_t u0, int64_t d, int64_t k, int64_t n, int64_t *j0, int64_t *j1) {
    int64_t first = u0;
    *j0 = 0;
    if (u0 < 0) {
        int64_t m = -u0; /* the first index at or past 0 is ceil(m / d), at m % d before d */
        *j0 = m / d + (m % d != 0);
        first = m % d == 0 ? 0 : d - m % d;
    }
    if (*j0 >= k || first >= n) {
        *j0 = *j1 = cb_min(*j0, k);
        return;
    }
    *j1 = cb_min(k, *j0 + cb_ceil_div(n - first, d));
}

/* Zeros n columns of 8 floats (memset's call costs more than the few columns at an edge). */
static void zero_columns(float *d, int64_t n) {
    for (int64_t k = 0; k < n * V8; k++) d[k] = 0.0f;
}

/* Stages one input row's columns for groups [g0, g1) (src: the row, column 0, channel 0)
 * into rows of l->len per group (gsz floats apart): row r is columns base_r + k * s, zeros
 * where outside the input. Column by column, each column's channels of the groups in
 * order: the input is read as one sequential stream (group by group, the same copies ran
 * 1.3x slower while another process loaded the memory), prefetched AHEAD columns on (the
 * hardware's prefetchers stop at each 4 KiB page: resnext1d 2.10 -> 1.93 ms). */
static void stage_row(const cb_problem *p, const gd_layout *l, const float *src, int64_t x0,
                      int64_t g0, int64_t g1, float *dst, int64_t gsz) {
    int64_t C = p->channels, s = p->s_w, Cg = p->group_in;
    for (int64_t r = 0; r < l->rows; r++) {
        /* x0 + j * d fits: it is a window's column, at most the input and the padding. */
        int64_t base = l->by_phase ? x0 + r : x0 + r * p->d_w, k0, k1, kf;
        inside(base, s, l->len, p->in_w, &k0, &k1);
        inside(base, s, l->len + AHEAD, p->in_w, &k0, &kf);
        float *d = dst + r * l->len * V8;
        for (int64_t g = 0; g < g1 - g0; g++)
            for (int64_t cb = 0; cb < l->cblocks; cb++) {
                zero_columns(d + g * gsz + cb * l->plane, k0);
                zero_columns(d + g * gsz + cb * l->plane + k1 * V8, l->len - k1);
            }
        if (k1 <= k0) continue;
        const float *from = src + (base + k0 * s) * C + g0 * Cg; /* a column inside */
        for (int64_t k = k0; k < k1; k++) {
            float *dk = d + k * V8;
            if (k + AHEAD < kf) /* a column inside the input */
                for (int64_t c = 0; c < (g1 - g0) * Cg; c += 16)
                    __builtin_prefetch(from + AHEAD * s * C + c);
            /* 8 channels at a time, the lanes past a group's channels included (never
             * read), except where that would read past the column's channels */
            for (int64_t g = 0; g < g1 - g0; g++)
                for (int64_t cb = 0, c = g * Cg; cb < l->cblocks; cb++, c += V8) {
                    float *t = dk + g * gsz + cb * l->plane;
                    if (g0 * Cg + c + V8 <= C)
                        memcpy(t, from + c, V8 * sizeof(float));
                    else
                        for (int64_t e = 0; e < cb_min(V8, (g + 1) * Cg - c); e++)
                            t[e] = from[c + e];
                }
            if (k + 1 < k1) from += s * C; /* a next column exists: s * C fits */
        }
    }
}

/* Copies the kernel and bias of groups [g0, g1) into vectors of vectors_of(p) * 8 lanes,
 * zeros in the lanes beyond group_out. */
static void stage_weights(const cb_exec *e, int64_t g0, int64_t g1, float *ws) {
    const cb_problem *p = e->p;
    int64_t wc = vectors_of(p) * V8, Fg = p->group_out, rows = p->taps * p->group_in;
    for (int64_t g = g0; g < g1; g++) {
        float *dst = ws + (g - g0) * (rows + 1) * wc;
        for (int64_t r = 0; r < rows; r++) {
            memcpy(dst + r * wc, e->kernel + r * p->out_channels + g * Fg,
                   (size_t)Fg * sizeof(float));
            memset(dst + r * wc + Fg, 0, (size_t)(wc - Fg) * sizeof(float));
        }
        float *b = dst + rows * wc;
        memset(b, 0, (size_t)wc * sizeof(float));
        if (p->use_bias) memcpy(b, e->bias + g * Fg, (size_t)Fg * sizeof(float));
    }
}

/* The steps of output row oh's sum (band row t): seg as gd_group has it; returns their
 * count and sets *i0, the first kernel row whose input row exists. */
static int64_t row_steps(const cb_problem *p, const gd_layout *l, int64_t oh, int64_t t,
                         int64_t *seg, int64_t *i0) {
    int64_t i1, n = 0;
    inside(oh * p->s_h - p->pad_top, p->d_h, p->k_h, p->in_h, i0, &i1); /* rows that exist */
    for (int64_t i = *i0; i < i1; i++) {
        /* tap j reads staged row (j * d) % s from column (j * d) / s (by phase), or row j */
        int64_t row = 0, idx = 0, drow = l->by_phase ? p->d_w % p->s_w : 1;
        int64_t didx = l->by_phase ? p->d_w / p->s_w : 0, wrap = l->by_phase ? p->s_w : INT64_MAX;
        for (int64_t j = 0; j < p->k_w; j++) {
            for (int64_t cb = 0; cb < l->cblocks; cb++, n++) {
                seg[2 * n] = (t * p->s_h + i) * l->krow + cb * l->plane + (row * l->len + idx) * V8;
                seg[2 * n + 1] = cb_min(V8, p->group_in - cb * V8);
            }
            row += drow, idx += didx;
            if (row >= wrap) row -= wrap, idx++;
        }
    }
    return n;
}

static void run_task(const cb_exec *e, int64_t task, float *ws) {
    const cb_problem *p = e->p;
    gd_cut cut = cut_of(p, e->params->tile, e->params->tasks);
    int64_t part = task % cut.parts, rest = task / cut.parts;
    int64_t ow0 = rest % cut.segs * cut.seg, oh0 = rest / cut.segs % cut.bands * cut.band;
    int64_t n_img = rest / cut.segs / cut.bands, ld;
    int64_t count = cb_min(cut.seg, p->out_w - ow0), band = cb_min(cut.band, p->out_h - oh0);
    int64_t g0 = part * p->groups / cut.parts, g1 = (part + 1) * p->groups / cut.parts;
    int64_t C = p->channels, F = p->out_channels, Cg = p->group_in, Fg = p->group_out;
    int64_t nv = vectors_of(p), taps_cg = p->taps * Cg;
    gd_layout l = layout_of(p);
    const gd_kernels *k = kernels_for_cpu();
    int64_t gsz = group_floats(p), batch = batch_of(p);
    float *xs = cb_align64(ws), *wst = xs + batch * gsz, *pbuf = wst + weight_floats(p);
    bool staged = staged_weights(p);
    if (staged) stage_weights(e, g0, g1, wst);

    /* each band row's steps: a header (first step, count, first kernel row), then steps */
    int64_t *hdr = (int64_t *)(void *)(pbuf + part_floats(p)), *seg = hdr + 3 * band, used = 0;
    for (int64_t t = 0; t < band; t++) {
        hdr[3 * t] = used;
        hdr[3 * t + 1] = row_steps(p, &l, oh0 + t, t, seg + 2 * used, &hdr[3 * t + 2]);
        used += hdr[3 * t + 1];
    }
    float *out = cb_output_tile(e, n_img, oh0 * p->out_w + ow0, &ld);
    const float *img = e->in + n_img * p->in_plane * C;
    gd_group a = {.wc = staged ? nv * V8 : F};
    a.clamp = p->activation == CONVBLAS_RELU    ? CLAMP_LOW
              : p->activation == CONVBLAS_RELU6 ? CLAMP_BOTH
                                                : CLAMP_NONE;
    cb_problem q = *p; /* the activation alone on the chunk (the kernels added the bias) */
    q.use_bias = false;
    q.out_channels = (g1 - g0) * Fg;
    for (int64_t c0 = 0; c0 < count; c0 += CHUNK) {
        int64_t n = cb_min(CHUNK, count - c0);
        int64_t x0 = (ow0 + c0) * p->s_w - p->pad_left; /* the chunk's first window */
        for (int64_t gb = g0; gb < g1; gb += batch) {
            int64_t ge = cb_min(g1, gb + batch);
            for (int64_t r = 0; r < window_rows(p, cut.band); r++) {
                /* r * d_h fits: a window's row; rows outside the input are never read */
                int64_t ih = oh0 * p->s_h - p->pad_top + r * p->d_h;
                if (ih >= 0 && ih < p->in_h)
                    stage_row(p, &l, img + ih * p->in_w * C, x0, gb, ge, xs + r * l.krow, gsz);
            }
            for (int64_t g = gb; g < ge; g++) {
                const float *wg =
                    staged ? wst + (g - g0) * (taps_cg + 1) * a.wc : e->kernel + g * Fg;
                a.xs = xs + (g - gb) * gsz;
                a.bias = !p->use_bias ? NULL : staged ? wg + taps_cg * a.wc : e->bias + g * Fg;
                /* whole vectors past the task's outputs: into the buffer, then the lanes */
                bool past = g * Fg + nv * V8 > g1 * Fg;
                a.F = past ? nv * V8 : F;
                for (int64_t t = 0; t < band; t++) {
                    float *o = out + (t * p->out_w + c0) * ld + g * Fg;
                    a.seg = seg + 2 * hdr[3 * t];
                    a.nseg = hdr[3 * t + 1];
                    a.w = wg + hdr[3 * t + 2] * p->k_w * Cg * a.wc;
                    a.out = past ? pbuf : o;
                    run_group(k, &a, n, nv);
                    for (int64_t u = 0; past && u < n; u++)
                        memcpy(o + u * ld, pbuf + u * a.F, (size_t)Fg * sizeof(float));
                }
            }
        }
        /* the activations the kernels did not apply (relu, relu6 and linear they did) */
        for (int64_t t = 0; a.clamp == CLAMP_NONE && p->activation != CONVBLAS_LINEAR && t < band;
             t++)
            cb_epilogue(&q, NULL, out + (t * p->out_w + c0) * ld + g0 * Fg, n, ld);
    }
}

const cb_strategy cb_grouped_direct = {
    .name = "grouped_direct",
    .summary = "vectorized direct kernel for small groups: each group's outputs in vector "
               "registers over a block of positions, the input broadcast into the FMAs",
    .parallel = "images x bands of output rows, or segments of a row (x shares of the groups)",
    .applicable = applicable,
    .configure = configure,
    .cost = cost,
    .run_task = run_task,
};

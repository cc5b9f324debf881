/* Internal declarations shared by the files of lib/. Not installed.
 *
 * The flow: descriptor -> cb_problem (checked, every shape and pad derived once, in
 * problem.c) -> plan (a strategy from the table in strategies.c, its parameters and
 * workspace, in planner.c) -> execute (the strategy's tasks, in parallel, in execute.c),
 * each task finishing its output tile with the epilogue (epilogue.c). */
#ifndef CONVBLAS_INTERNAL_H
#define CONVBLAS_INTERNAL_H

#include "convblas.h"

#include <stdarg.h>

/* ---- errors.c ---------------------------------------------------------------------- */

/* Records a printf-style message as this thread's last error and returns status. */
convblas_status cb_fail(convblas_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Formats a strategy's reason for declining a layer into why (n bytes); returns false. */
bool cb_decline(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- alloc.c: every allocation of the library goes through these -------------------- */

void *cb_malloc(size_t bytes);
void *cb_calloc(size_t count, size_t size);
void cb_free(void *ptr);

/* ---- checked arithmetic ------------------------------------------------------------ */

static inline bool cb_mul(int64_t a, int64_t b, int64_t *r) {
    return !__builtin_mul_overflow(a, b, r);
}
static inline bool cb_add(int64_t a, int64_t b, int64_t *r) {
    return !__builtin_add_overflow(a, b, r);
}
/* a * b, or INT64_MAX when it overflows: for sizes that are compared against a limit. */
static inline int64_t cb_mul_sat(int64_t a, int64_t b) {
    int64_t r;
    return cb_mul(a, b, &r) ? r : INT64_MAX;
}
static inline int64_t cb_min(int64_t a, int64_t b) {
    return a < b ? a : b;
}
static inline int64_t cb_max(int64_t a, int64_t b) {
    return a > b ? a : b;
}
/* For a >= 0, b > 0; no a + b - 1 that could overflow. */
static inline int64_t cb_ceil_div(int64_t a, int64_t b) {
    return a / b + (a % b != 0);
}

/* The first 64-byte boundary at or after f, for a workspace slice (strategies reserve 16
 * floats of slack for it). */
static inline float *cb_align64(float *f) {
    return f + ((64 - (uintptr_t)f % 64) % 64) / sizeof(float);
}

/* Input coordinate of tap t of output o along one dimension. Keep this order: o * s - pad
 * and t * d each fit, and so does their sum (it lies in [-pad_before, in + pad_after)),
 * while o * s + t * d can overflow for extreme but valid dilations (INT64_MAX - 1). */
static inline int64_t cb_input_coord(int64_t o, int64_t s, int64_t t, int64_t d, int64_t pad) {
    return (o * s - pad) + t * d;
}

/* The k in [0, n) with start + k * step in [0, limit), as [*lo, *hi); step > 0, limit >= 0.
 * Exact for every int64_t start: the distances are taken in uint64_t, where they fit even
 * when start is near -INT64_MAX (a causal pad of an extreme dilation). */
static inline void cb_steps_inside(int64_t start, int64_t step, int64_t limit, int64_t n,
                                   int64_t *lo, int64_t *hi) {
    uint64_t s = (uint64_t)step, below = start < 0 ? 0 - (uint64_t)start : 0;
    uint64_t room = start < limit ? (uint64_t)limit - (uint64_t)start : 0;
    uint64_t first = below / s + (below % s != 0), end = room / s + (room % s != 0);
    *hi = end < (uint64_t)n ? (int64_t)end : n;
    *lo = first < (uint64_t)*hi ? (int64_t)first : *hi;
}

/* ---- problem.c: the checked problem ------------------------------------------------ */

/* Every layer is one or two stages. Stage 1 is a grouped 2D convolution (rank 1 is the
 * 2D case with height 1): CONV as given; DEPTHWISE as groups = channels, one input and
 * depth_multiplier outputs per group, whose Keras kernel (k..., C, M) is exactly the
 * grouped kernel (k..., 1, C*M). SEPARABLE adds stage 2, a 1x1 convolution (pointwise)
 * from the stage-1 channels to filters. Bias and activation come after the last stage. */
typedef struct cb_problem {
    convblas_layer_desc desc; /* as given, defaults resolved */
    convblas_shape input, output;
    convblas_op op;
    convblas_data_format format;
    convblas_activation activation;
    float alpha; /* resolved: elu 1, leaky_relu 0.2 unless given */
    bool use_bias;

    int64_t batch;
    int64_t in_h, in_w, channels;
    int64_t out_h, out_w;
    int64_t k_h, k_w, s_h, s_w, d_h, d_w;
    int64_t pad_top, pad_left, pad_bottom, pad_right;
    int64_t taps; /* k_h * k_w */

    int64_t groups, group_in, group_out; /* stage 1 as a grouped convolution */
    int64_t mid_channels;                /* stage 1 output channels: groups * group_out */
    bool has_pointwise;                  /* SEPARABLE: stage 2 from mid_channels */
    int64_t out_channels;                /* channels of the layer's output */

    int64_t in_plane, out_plane; /* spatial elements per channel */
    int64_t in_elems, out_elems; /* whole tensors, batch included */
    int64_t kernel_elems, pointwise_elems;
    double flops; /* 2 per multiply-add of the mathematical layer */
} cb_problem;

/* Validates and derives; on failure sets the last error and returns its status. */
convblas_status cb_problem_init(cb_problem *p, const convblas_layer_desc *desc,
                                const convblas_shape *input);

/* ---- epilogue.c -------------------------------------------------------------------- */

/* Adds bias and applies the activation to `positions` output positions of every output
 * channel, starting at c: channels_last rows of out_channels (ld = out_channels), or
 * channels_first rows of positions per channel (ld = distance between channels). */
void cb_epilogue(const cb_problem *p, const float *bias, float *c, int64_t positions, int64_t ld);

/* Bias (bias_vec[i], or bias_one for all) plus activation over n consecutive values. */
typedef void (*cb_span_fn)(float *x, int64_t n, const float *bias_vec, float bias_one);
/* epilogue_avx512.c: the AVX-512 span of activation a when it has one and the CPU runs
 * it, else NULL (the portable code of epilogue.c then runs). */
cb_span_fn cb_activation_span_v4(convblas_activation a);

/* ---- padding_fixup.c: padding contributes nothing, even against Inf/NaN weights ---- */

/* Whether the layer pads and its stage-1 kernel holds an Inf or NaN: then the strategies
 * that multiply zeros in for the padding would turn 0 * Inf into NaN. */
bool cb_needs_border_fixup(const cb_problem *p, const float *kernel);
/* Recomputes every output whose window reaches into the padding from the definition.
 * mid: mid_channels floats of scratch for SEPARABLE (NULL otherwise). */
struct cb_exec;
void cb_fix_padded_borders(const struct cb_exec *e, float *mid);

/* ---- blas.c: the one file that includes the CBLAS header ---------------------------- */

typedef enum { CB_NO_TRANS, CB_TRANS } cb_trans;

/* Row-major C = A(op) * B(op) + beta C; dimensions already known to fit the BLAS int. */
void cb_sgemm(cb_trans ta, cb_trans tb, int64_t m, int64_t n, int64_t k, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
/* The largest dimension or leading dimension the BLAS accepts. */
int64_t cb_blas_int_max(void);
/* Makes the BLAS single-threaded while convblas's own threads run its calls, and puts the
 * caller's setting back when the last concurrent convblas call leaves. */
void cb_blas_serial_enter(void);
void cb_blas_serial_leave(void);
/* The BLAS's name and core ("OpenBLAS 0.3.21 SkylakeX"), for build_info and the bench. */
const char *cb_blas_description(void);

/* ---- parallel.c -------------------------------------------------------------------- */

/* Runs fn(ctx, worker, task) for every task in [0, tasks) on up to `workers` threads
 * (the caller is worker 0). Tasks are handed out dynamically; a worker index is unique
 * among concurrently running workers of this call, so it can select a workspace slice. */
void cb_parallel_for(int workers, int64_t tasks, void (*fn)(void *ctx, int worker, int64_t task),
                     void *ctx);
int cb_online_cpus(void);

/* ---- strategies -------------------------------------------------------------------- */

/* What plan creation decides for a strategy, and what its tasks read. */
typedef struct cb_params {
    int64_t tile;         /* output positions per task (strategy-specific unit) */
    int64_t tasks;        /* independent pieces of work */
    int64_t split;        /* strategy-specific: how the tasks cut the work (0: unused) */
    int threads;          /* workers that execute runs: <= tasks */
    size_t worker_floats; /* workspace floats each worker needs */
    size_t worker_stride; /* floats from one worker's slice to the next (the planner's) */
    size_t shared_floats; /* workspace floats all workers read (prepare's output), first */
    size_t workspace;     /* bytes: (shared_floats + threads * worker_stride) * sizeof(float) */
    bool prefetch;        /* tasks prefetch what they touch next (cb_streams_from_memory) */
} cb_params;

/* Build-time and per-plan knobs the strategies size themselves with. */
typedef struct cb_tuning {
    size_t tile_bytes;      /* per worker: the cache-sized working set to aim for */
    size_t workspace_limit; /* bytes for the whole plan */
    int threads;
} cb_tuning;

/* One call's operands. */
typedef struct cb_exec {
    const cb_problem *p;
    const cb_params *params;
    const float *in;
    const float *kernel, *pointwise, *bias;
    float *out;
    float *workspace; /* params->threads slices of params->worker_floats, worker_stride apart */
    float *shared;    /* params->shared_floats, written by prepare before any task */
} cb_exec;

/* A lowering: one file each, listed once in strategies.c. */
typedef struct cb_strategy {
    const char *name;
    const char *summary;  /* one line: how it lowers the layer */
    const char *parallel; /* what a task is, e.g. "output row segments of tile positions" */
    /* Whether it can run p; if not, a reason in why. */
    bool (*applicable)(const cb_problem *p, char *why, size_t why_size);
    /* Chooses tile and task count for a per-worker budget of tuning->tile_bytes; fills
     * tile, tasks and worker_floats (threads and workspace are the planner's). */
    void (*configure)(const cb_problem *p, const cb_tuning *tuning, cb_params *params);
    /* Estimated seconds on `threads` workers. */
    double (*cost)(const cb_problem *p, const cb_params *params);
    /* One task; ws is this worker's slice. */
    void (*run_task)(const cb_exec *e, int64_t task, float *ws);
    /* Optional (NULL for most): part `part` of `parts` of the work every task reads, such
     * as repacked weights, into e->shared; all parts finish before the first task. */
    void (*prepare)(const cb_exec *e, int64_t part, int64_t parts);
} cb_strategy;

extern const cb_strategy *const cb_strategies[];
extern const int cb_strategy_total;

/* Cost-model constants, shared by the strategies' cost functions (cost_model.c). */
typedef struct cb_machine_model {
    double gemm_flops;  /* single-thread sgemm rate on large blocks, flop/s */
    double copy_bytes;  /* single-thread streaming copy rate, bytes read + written per s */
    double call_cost;   /* fixed cost of one small BLAS call, s */
    const char *source; /* where the numbers came from, for describe */
    size_t cache_bytes; /* the last-level cache (Linux's sysfs); 0 where unknown */
} cb_machine_model;
/* Read-only after cb_machine_calibrate(), which the planner calls before any cost. */
extern cb_machine_model cb_machine;
/* Measures the constants once per process (or takes CONVBLAS_COST_MODEL); thread-safe. */
void cb_machine_calibrate(void);
/* Whether the layer's input and output together outgrow half the last-level cache, so that
 * a run reads and writes them from memory (measured on 8 x 56 x 56 x 144 depthwise: from
 * 18 MiB on; half, because the cache keeps other data and another tenant's). False where the
 * cache size is unknown. */
bool cb_streams_from_memory(const cb_problem *p);

/* Our AVX-512 GEMM micro-kernel (micro_gemm.c): blocks of CB_MICRO_ROWS x CB_MICRO_COLS
 * sums in registers, for dense_direct and the pointwise stage of depthwise_direct. */
enum { CB_MICRO_ROWS = 14, CB_MICRO_COLS = 32 };

/* Where a product's sums go: c's leading dimension, the bias they start from (one per
 * column of c in the rows-major product, per row in the columns-major one; NULL for
 * none) and the clamp [lo, hi] applied in registers before the store. */
typedef struct cb_micro_out {
    int64_t ldc;
    const float *bias;
    float lo, hi;
} cb_micro_out;

/* Whether this CPU (and build) runs the micro-kernel. */
bool cb_micro_available(void);
/* Floats of one row of the transposed weights: k rounded up to an odd multiple of 16, so
 * that 14 rows never share an L1 cache set. */
int64_t cb_micro_row_stride(int64_t k);
/* Floats of w (k x n, row-major) packed for format f: channels_last, panels of 32 columns
 * (k rows of 32, zeros past n); channels_first, w transposed (n rows, row_stride apart). */
int64_t cb_micro_packed_floats(convblas_data_format f, int64_t k, int64_t n);
/* Part `part` of `parts` of that packing (for cb_strategy.prepare). */
void cb_micro_pack(convblas_data_format f, const float *w, int64_t k, int64_t n, float *packed,
                   int64_t part, int64_t parts);
/* The micro-kernel's flop/s for products with `lanes` columns in its vectors (computed in
 * panels of 32, the last one 16 wide where it can be) and sums of k. */
double cb_micro_rate(int64_t lanes, int64_t k);
/* The clamp of p's activation into o (the whole of linear, relu and relu6), and p with
 * what is left to run after it: no bias (it starts the sums), the other activations. */
cb_problem cb_micro_rest(const cb_problem *p, cb_micro_out *o);
/* The rows-major product's a: row i's k = runs x len values are `runs` runs of `len`
 * adjacent floats, run r at a + off[r] + i * lda. One run is a plain matrix; a
 * convolution's receptive fields read in place are a run per kernel row (or per tap). */
typedef struct cb_micro_a {
    const float *a;
    int64_t lda, len;
    int runs;
    const int64_t *off;
} cb_micro_a;
/* a[m x k], rows lda apart, as one run. */
cb_micro_a cb_micro_matrix(const float *a, int64_t lda, int64_t k);
/* channels_last: c[m x n] = a times w packed (k x n), then rest's epilogue on each block of
 * rows. */
void cb_micro_gemm_last(int64_t m, int64_t n, const cb_micro_a *a, const float *packed,
                        const cb_micro_out *o, const cb_problem *rest, float *c);
/* channels_first: c[m x n] = wt (m x k, transposed and packed) times b[k x n] (rows ldb
 * apart), then rest's epilogue on each block of 32 columns. */
void cb_micro_gemm_first(int64_t m, int64_t n, int64_t k, const float *wt, const float *b,
                         int64_t ldb, const cb_micro_out *o, const cb_problem *rest, float *c);

/* SEPARABLE's pointwise stage and the epilogue for `positions` positions of image n from
 * p0, mid as in cb_pointwise_stage: on the micro-kernel from the pointwise kernel packed by
 * cb_micro_pack, or through sgemm where packed is NULL. */
void cb_pointwise_finish(const cb_exec *e, const float *mid, const float *packed, int64_t n,
                         int64_t p0, int64_t positions);

/* Small shared pieces of the GEMM lowerings. */

/* The GEMM rate for a call of this shape, relative to the large-block rate: small m, n or
 * k run far below peak. */
double cb_gemm_efficiency(int64_t m, int64_t n, int64_t k);

/* Stage 2 of SEPARABLE for `positions` positions of image n starting at p0: out tile =
 * pointwise x mid, where mid holds the stage-1 result of those positions (channels_last:
 * positions x mid_channels; channels_first: mid_channels x positions). */
void cb_pointwise_stage(const cb_exec *e, const float *mid, int64_t n, int64_t p0,
                        int64_t positions);

/* A task of the row-segment lowerings (depthwise_direct, tap_gemm): `count` outputs of row
 * oh of image n from column ow0; the kernel rows [i0, i1) whose input row exists; the
 * input columns [x0, x0 + span) the window covers, and whether they all exist. Tasks are
 * numbered image-major, then row, then segment of `tile` columns. */
typedef struct cb_segment {
    int64_t n, oh, ow0, count;
    int64_t i0, i1;
    int64_t x0, span;
    bool inside;
} cb_segment;
cb_segment cb_locate_segment(const cb_problem *p, int64_t tile, int64_t task);
int64_t cb_segment_tasks(const cb_problem *p, int64_t tile);
/* Input columns spanned by the windows of `count` consecutive outputs. */
int64_t cb_window_span(const cb_problem *p, int64_t count);

/* The output tile of image n at position p0 and its leading dimension. */
float *cb_output_tile(const cb_exec *e, int64_t n, int64_t p0, int64_t *ld);

/* Tasks of the unfolding lowerings (im2col_gemm, depthwise_gemm): tiles of `tile` output
 * positions of one image, sized so that per_position workspace floats and the output tile
 * fit tuning->tile_bytes; fills tile, tasks and worker_floats. */
void cb_position_tiles(const cb_problem *p, const cb_tuning *t, int64_t per_position,
                       cb_params *params);
/* Task `task` of those: its image *n and first position *p0; returns its position count. */
int64_t cb_locate_position_tile(const cb_problem *p, int64_t tile, int64_t task, int64_t *n,
                                int64_t *p0);

/* Stage 1 of an unfolding lowering: `count` positions from its buffer col into dst. */
typedef void (*cb_stage_fn)(const cb_exec *e, const float *col, int64_t count, float *dst,
                            int64_t ld);
/* The rest of a position-tile task once col is unfolded: stage 1 into the output tile, or
 * for SEPARABLE into mid and then the pointwise GEMM; then the epilogue on the tile. */
void cb_finish_tile(const cb_exec *e, cb_stage_fn stage, const float *col, float *mid, int64_t n,
                    int64_t p0, int64_t count);

#endif

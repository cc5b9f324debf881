/* dense_direct: ungrouped convolutions on our own AVX-512 GEMM micro-kernel
 * (micro_gemm.c) instead of OpenBLAS's sgemm, which on Zen 4 runs at about 90% of what the
 * FMA units give (103 GFLOP/s against the 110-115 of oneDNN's and XNNPACK's own kernels).
 *
 * - prepare: the kernel, (taps x channels) x filters, is packed once per call into panels
 *   of 32 filters (channels_first: transposed, a filter's weights contiguous).
 * - a task is a tile of output positions (across rows where rows are short), run in
 *   blocks of MR = 14 positions. channels_last reads a block's receptive fields in place
 *   where they lie inside the input (a run per kernel row, or per tap where dilated: the
 *   micro-kernel takes its rows as runs at offsets). Elsewhere it unfolds them into MR rows
 *   (im2col, zeros where a window leaves the input), so any padding, stride and dilation
 *   is the same code; the rows' stride is an odd multiple of 64 bytes, so the 14 rows
 *   never share a set of the L1 cache (rows 12 KiB apart ran 20% slower).
 * - channels_first is the same product transposed: 32 positions in the vector lanes (a
 *   panel of their receptive fields, unfolded per block of 32) and 14 filters a block's
 *   rows.
 * Measured alone (1 thread, 1498 x 384 x 1152): 108-111 GFLOP/s, sgemm 99-103 in the
 * same runs. AVX-512 only: with AVX2's 16 registers the block would be a third of this. */
#include "convblas_internal.h"
#include "simd.h"

#include <stdio.h>
#include <string.h>

enum {
    MR = CB_MICRO_ROWS, /* positions of a block (channels_first: filters) */
    NR = CB_MICRO_COLS, /* filters of a panel (channels_first: positions) */
    ALIGN = 16,         /* floats of slack to start a buffer on a 64-byte boundary */
    MAX_RUNS = 32,      /* in place: the most runs of a receptive field (kernel rows or taps) */
    MIN_RUN = 16,       /* in place: the fewest floats of a run, where there are several */
    MAX_SHARED_SET = 4  /* in place: the most of a block's rows in one L1 cache set */
};

static int64_t panels_of(const cb_problem *p) {
    return cb_ceil_div(p->out_channels, NR);
}

/* Floats of one unfolded row (channels_first: of a filter's weights). */
static int64_t row_stride(const cb_problem *p) {
    return cb_micro_row_stride(p->kernel_elems / p->out_channels);
}

static bool applicable(const cb_problem *p, char *why, size_t n) {
    const char *no = p->op != CONVBLAS_CONV ? "only for CONV"
                     : p->groups > 1        ? "needs groups = 1 (grouped layers: grouped_direct, "
                                              "or the GEMM lowerings' per-group calls)"
                     : !cb_micro_available()
                         ? "needs AVX-512 (x86-64-v4), in a build with the library's "
                           "target attributes (GCC)"
                         : NULL;
    return no ? cb_decline(why, n, "%s", no) : true;
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
    int64_t packed = cb_micro_packed_floats(p->format, k, p->out_channels);
    params->shared_floats = (size_t)(packed > INT64_MAX - ALIGN ? INT64_MAX : packed + ALIGN);
    params->worker_floats =
        (size_t)cb_mul_sat(last_format(p) ? MR : k, last_format(p) ? row_stride(p) : NR) + ALIGN;
}

/* Whether a block's MR rows, lda floats apart, crowd an L1 set (64 sets of 64 bytes): rows
 * 4 KiB apart all fall in one. Line i * lda / 16 modulo 64, from lda modulo 1024. */
static bool crowded(int64_t lda) {
    int count[64] = {0};
    for (int64_t i = 0; i < MR; i++)
        if (++count[i * (lda % 1024) % 1024 / 16] > MAX_SHARED_SET) return true;
    return false;
}

/* channels_last reads a block's receptive fields in place where they lie inside the
 * input: a position's field is a run of k_w x C adjacent floats per kernel row (a run of C
 * per tap where dilated), and consecutive positions of one output row are s_w x C floats
 * apart, so the block is the micro-kernel's a as it is. Measured (1 thread): unfolding
 * took 8-12% of tcn_causal and textcnn. Returns the runs (0: unfold every block), their
 * length and offsets (with off non-NULL). */
static int in_place_runs(const cb_problem *p, int64_t *len, int64_t *off) {
    /* no window inside the input anywhere (nor an overflow below) */
    if (!last_format(p) || cb_mul_sat(p->k_h - 1, p->d_h) >= p->in_h ||
        cb_mul_sat(p->k_w - 1, p->d_w) >= p->in_w)
        return 0;
    int64_t C = p->channels;
    bool joined = p->d_w == 1;
    int64_t runs = joined ? p->k_h : p->taps;
    *len = joined ? p->k_w * C : C;
    if (runs > MAX_RUNS || (runs > 1 && *len < MIN_RUN) || crowded(cb_mul_sat(p->s_w, C))) return 0;
    for (int64_t r = 0; off && r < runs; r++) {
        int64_t i = joined ? r : r / p->k_w, j = joined ? 0 : r % p->k_w;
        off[r] = (i * p->d_h * p->in_w + j * p->d_w) * C;
    }
    return (int)runs;
}

/* Output coordinates [0, out) whose window (of `span` inputs from o s - pad) lies inside
 * [0, in): how many. */
static int64_t inside_count(int64_t out, int64_t in, int64_t s, int64_t pad, int64_t span) {
    int64_t lo = cb_ceil_div(pad, s), room = in - span + pad;
    int64_t hi = room < 0 ? 0 : cb_min(room / s + 1, out);
    return cb_max(hi - lo, 0);
}

/* The share of output positions read in place (an estimate: blocks that straddle a row
 * or an edge unfold). */
static double in_place_share(const cb_problem *p) {
    int64_t len;
    if (!in_place_runs(p, &len, NULL) || p->out_plane == 0) return 0.0;
    int64_t rows = inside_count(p->out_h, p->in_h, p->s_h, p->pad_top, (p->k_h - 1) * p->d_h + 1);
    int64_t cols = inside_count(p->out_w, p->in_w, p->s_w, p->pad_left, (p->k_w - 1) * p->d_w + 1);
    return (double)rows * (double)cols / (double)p->out_plane;
}

static double cost(const cb_problem *p, const cb_params *params) {
    double k = (double)(p->kernel_elems / p->out_channels);
    /* channels_last: filters in the lanes; channels_first: positions, F in blocks of MR */
    int64_t cols = last_format(p) ? p->out_channels : cb_min(params->tile, p->out_plane);
    double rate = cb_micro_rate(cols, (int64_t)k);
    /* unfolding: each position's row written and read once, in cache; the packing */
    double unfold = (double)p->batch * (double)p->out_plane * k * 2.0 * sizeof(float) *
                    (1.0 - in_place_share(p));
    double pack = (double)panels_of(p) * NR * k * 2.0 * sizeof(float);
    int64_t workers = cb_min(params->threads, cb_max(params->tasks, 1));
    double t = (p->flops / rate + unfold / cb_machine.copy_bytes) / (double)workers +
               pack / cb_machine.copy_bytes / (double)params->threads +
               (double)params->tasks * cb_machine.call_cost;
    return t;
}

/* The kernel, (taps x channels) x filters, packed for the micro-kernel. */
static void prepare(const cb_exec *e, int64_t part, int64_t parts) {
    const cb_problem *p = e->p;
    int64_t F = p->out_channels;
    cb_micro_pack(p->format, e->kernel, p->kernel_elems / F, F, cb_align64(e->shared), part, parts);
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

/* The first input of the block of mr positions from pos, where their receptive fields
 * lie inside the input and they are on one output row; NULL where not. */
static const float *block_in_place(const cb_problem *p, const float *img, int64_t pos, int64_t mr) {
    int64_t oh = pos / p->out_w, ow = pos % p->out_w;
    int64_t ih = oh * p->s_h - p->pad_top, iw = ow * p->s_w - p->pad_left;
    bool inside = ow + mr <= p->out_w && ih >= 0 && ih + (p->k_h - 1) * p->d_h < p->in_h &&
                  iw >= 0 && iw + (mr - 1) * p->s_w + (p->k_w - 1) * p->d_w < p->in_w;
    return inside ? img + (ih * p->in_w + iw) * p->channels : NULL;
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

/* channels_first: blocks of 32 positions in the lanes, MR filters a block's rows. */
static void run_first(const cb_exec *e, int64_t n, int64_t p0, int64_t count, float *ws) {
    const cb_problem *p = e->p;
    int64_t F = p->out_channels, k = p->kernel_elems / F, ld;
    const float *img = e->in + n * p->in_plane * p->channels;
    float *panel = cb_align64(ws), *out = cb_output_tile(e, n, p0, &ld);
    cb_micro_out o = {.ldc = ld, .bias = p->use_bias ? e->bias : NULL};
    cb_problem rest = cb_micro_rest(p, &o), none = rest;
    none.activation = CONVBLAS_LINEAR;
    for (int64_t b0 = 0; b0 < count; b0 += NR) {
        int64_t np = cb_min(NR, count - b0);
        unfold_panel(p, img, p0 + b0, np, panel);
        cb_micro_gemm_first(F, np, k, cb_align64(e->shared), panel, NR, &o, &none, out + b0);
    }
    /* The activation once on the tile (in L2), not on each block's 32 columns: its vector
     * loops interleave 4 vectors of a row (gelu on whisper_c1_ncw: 1.15 -> 0.65 ms). */
    cb_epilogue(&rest, NULL, out, count, ld);
}

static void run_task(const cb_exec *e, int64_t task, float *ws) {
    const cb_problem *p = e->p;
    int64_t n, p0, count = cb_locate_position_tile(p, e->params->tile, task, &n, &p0), ld;
    if (!last_format(p)) {
        run_first(e, n, p0, count, ws);
        return;
    }
    int64_t F = p->out_channels, k = p->kernel_elems / F, lda = row_stride(p), len = 0;
    int64_t off[MAX_RUNS];
    int runs = in_place_runs(p, &len, off);
    const float *img = e->in + n * p->in_plane * p->channels;
    float *rows = cb_align64(ws), *out = cb_output_tile(e, n, p0, &ld);
    cb_micro_out o = {.ldc = ld, .bias = p->use_bias ? e->bias : NULL};
    cb_problem rest = cb_micro_rest(p, &o);
    for (int64_t b0 = 0; b0 < count; b0 += MR) {
        int64_t mr = cb_min(MR, count - b0);
        const float *at = runs ? block_in_place(p, img, p0 + b0, mr) : NULL;
        cb_micro_a a = {
            .a = at, .lda = cb_mul_sat(p->s_w, p->channels), .len = len, .runs = runs, .off = off};
        if (!at) {
            for (int64_t r = 0; r < mr; r++) unfold_row(p, img, p0 + b0 + r, rows + r * lda);
            a = cb_micro_matrix(rows, lda, k);
        }
        cb_micro_gemm_last(mr, F, &a, cb_align64(e->shared), &o, &rest, out + b0 * ld);
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

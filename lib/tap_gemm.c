/* tap_gemm (kn2row, shift-and-accumulate): one GEMM per kernel tap on a strided view of
 * the input, accumulated into the output tile, with no column buffer. channels_last: the
 * positions of one output row segment read the input at stride s * C, a plain lda. A tap
 * whose window leaves the input at the edges just covers fewer rows (padding by clipping).
 * channels_first: the equivalent with transposed operands, for stride 1 only (a stride
 * would make the positions a non-unit column stride, which GEMM has not). */
#include "convblas_internal.h"

#include <stdio.h>
#include <string.h>

static bool applicable(const cb_problem *p, char *why, size_t n) {
    if (p->op != CONVBLAS_CONV)
        return cb_decline(why, n, "only for CONV (depthwise taps would be GEMMs of one channel)");
    if (p->format == CONVBLAS_CHANNELS_FIRST && p->s_w != 1)
        return cb_decline(why, n,
                          "channels_first needs stride 1 along the width (stride %lld: the "
                          "positions of a tap are not a GEMM operand)",
                          (long long)p->s_w);
    int64_t ld =
        p->format == CONVBLAS_CHANNELS_LAST ? cb_mul_sat(p->s_w, p->channels) : p->in_plane;
    if (cb_max(ld, cb_max(p->out_channels, p->out_plane)) > cb_blas_int_max())
        return cb_decline(why, n, "a leading dimension exceeds the BLAS integer range");
    return true;
}

static void configure(const cb_problem *p, const cb_tuning *t, cb_params *params) {
    int64_t rows = p->batch * p->out_h;
    /* An output tile of about tile_bytes, split further only when rows are too few. */
    int64_t seg = (int64_t)t->tile_bytes / (p->out_channels * (int64_t)sizeof(float));
    if (rows < 2 * (int64_t)t->threads)
        seg = cb_min(seg,
                     cb_ceil_div(p->out_w, cb_ceil_div(2 * (int64_t)t->threads, cb_max(rows, 1))));
    seg = cb_min(cb_max(seg, 16), p->out_w);
    params->tile = seg;
    params->tasks = cb_segment_tasks(p, seg);
    params->worker_floats = 0;
}

static double cost(const cb_problem *p, const cb_params *params) {
    double eff = cb_gemm_efficiency(params->tile, p->group_out, p->group_in);
    double calls = (double)params->tasks * (double)(p->taps * p->groups);
    /* Each tap re-reads and re-writes the output tile (in cache): a copy's worth each. */
    double tile_traffic = (double)p->out_elems * sizeof(float) * (double)p->taps * 0.25;
    double t = p->flops / (cb_machine.gemm_flops * eff) + calls * cb_machine.call_cost +
               tile_traffic / cb_machine.copy_bytes;
    return t / cb_min(params->threads, cb_max(params->tasks, 1));
}

/* Outputs [lo, hi) of the segment whose input column for tap j exists. */
static void tap_range(const cb_problem *p, const cb_segment *s, int64_t j, int64_t *lo,
                      int64_t *hi) {
    int64_t first = s->x0 + j * p->d_w; /* input column of output 0 */
    cb_steps_inside(first, p->s_w, p->in_w, s->count, lo, hi);
}

static void zero_tile(const cb_problem *p, float *out, int64_t count, int64_t ld) {
    if (p->format == CONVBLAS_CHANNELS_LAST)
        for (int64_t t = 0; t < count; t++)
            memset(out + t * ld, 0, (size_t)p->out_channels * sizeof(float));
    else
        for (int64_t f = 0; f < p->out_channels; f++)
            memset(out + f * ld, 0, (size_t)count * sizeof(float));
}

static void tap(const cb_exec *e, const cb_segment *s, int64_t i, int64_t j, float beta, float *out,
                int64_t ld) {
    const cb_problem *p = e->p;
    int64_t lo, hi;
    tap_range(p, s, j, &lo, &hi);
    if (lo >= hi) return;
    int64_t C = p->channels, F = p->out_channels, Cg = p->group_in, Fg = p->group_out;
    int64_t ih = cb_input_coord(s->oh, p->s_h, i, p->d_h, p->pad_top);
    int64_t iw = s->x0 + j * p->d_w + lo * p->s_w;
    const float *w = e->kernel + (i * p->k_w + j) * Cg * F;
    const float *img = e->in + s->n * p->in_plane * C;
    for (int64_t g = 0; g < p->groups; g++) {
        if (p->format == CONVBLAS_CHANNELS_LAST)
            cb_sgemm(CB_NO_TRANS, CB_NO_TRANS, hi - lo, Fg, Cg,
                     img + (ih * p->in_w + iw) * C + g * Cg, p->s_w * C, w + g * Fg, F, beta,
                     out + lo * ld + g * Fg, ld);
        else
            cb_sgemm(CB_TRANS, CB_NO_TRANS, Fg, hi - lo, Cg, w + g * Fg, F,
                     img + g * Cg * p->in_plane + ih * p->in_w + iw, p->in_plane, beta,
                     out + g * Fg * ld + lo, ld);
    }
}

/* A kernel column whose tap covers every output of the segment, or -1: its GEMM can
 * write the tile (beta 0) instead of a zeroing pass before the first accumulation. */
static int64_t covering_column(const cb_problem *p, const cb_segment *s) {
    for (int64_t j = 0; j < p->k_w; j++) {
        int64_t lo, hi;
        tap_range(p, s, j, &lo, &hi);
        if (lo == 0 && hi == s->count) return j;
    }
    return -1;
}

static void run_task(const cb_exec *e, int64_t task, float *ws) {
    (void)ws;
    const cb_problem *p = e->p;
    cb_segment s = cb_locate_segment(p, e->params->tile, task);
    int64_t ld;
    float *out = cb_output_tile(e, s.n, s.oh * p->out_w + s.ow0, &ld);
    int64_t first = s.i0 < s.i1 ? covering_column(p, &s) : -1;
    if (first >= 0)
        tap(e, &s, s.i0, first, 0.0f, out, ld);
    else
        zero_tile(p, out, s.count, ld);
    for (int64_t i = s.i0; i < s.i1; i++)
        for (int64_t j = 0; j < p->k_w; j++)
            if (i != s.i0 || j != first) tap(e, &s, i, j, 1.0f, out, ld);
    cb_epilogue(p, e->bias, out, s.count, ld);
}

const cb_strategy cb_tap_gemm = {
    .name = "tap_gemm",
    .summary = "one GEMM per kernel tap on a strided view of the input, accumulated in the "
               "output tile (no column buffer)",
    .parallel = "images x output rows x segments of tile positions",
    .applicable = applicable,
    .configure = configure,
    .cost = cost,
    .run_task = run_task,
};

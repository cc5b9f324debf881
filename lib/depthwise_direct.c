/* depthwise_direct: a direct, vectorized depthwise convolution (not BLAS): SIMD across
 * channels in channels_last, across positions in channels_first (depthwise_kernels.c).
 * A task is one output row segment of one image; where its window leaves the input (or
 * channels_last has depth_multiplier > 1) the window is first copied, zero-padded and
 * expanded, so the kernels never test bounds. SEPARABLE runs the depthwise stage of each
 * segment into a tile buffer and feeds it straight to the pointwise GEMM: the intermediate
 * tensor never goes to memory whole. */
#include "convblas_internal.h"
#include "depthwise_kernels.h"

#include <stdio.h>
#include <string.h>

/* The rate of the direct kernels on one core, for the cost model. */
static const double direct_flops = 60e9;

static bool applicable(const cb_problem *p, char *why, size_t n) {
    if (p->group_in != 1) {
        snprintf(why, n, "needs one input channel per group (depthwise); this layer has %lld",
                 (long long)p->group_in);
        return false;
    }
    if (p->has_pointwise && cb_max(p->mid_channels, p->out_channels) > cb_blas_int_max()) {
        snprintf(why, n, "a pointwise GEMM dimension exceeds the BLAS integer range");
        return false;
    }
    return true;
}

/* Floats of one worker's buffers for a segment of `count` positions. */
static int64_t worker_floats(const cb_problem *p, int64_t count) {
    int64_t lanes = p->format == CONVBLAS_CHANNELS_LAST ? p->mid_channels : 1;
    int64_t window = cb_mul_sat(cb_mul_sat(p->k_h, cb_window_span(p, count)), lanes);
    int64_t mid = p->has_pointwise ? cb_mul_sat(count, p->mid_channels) : 0;
    return mid > INT64_MAX - window ? INT64_MAX : window + mid;
}

static void configure(const cb_problem *p, const cb_tuning *t, cb_params *params) {
    int64_t rows = p->batch * p->out_h;
    int64_t seg = p->out_w;
    /* Split rows into segments only when there are too few rows for the workers. */
    if (rows < 4 * (int64_t)t->threads)
        seg = cb_ceil_div(p->out_w, cb_ceil_div(4 * t->threads, cb_max(rows, 1)));
    seg = cb_min(cb_max(seg, 64), p->out_w);
    while (seg > 1 && worker_floats(p, seg) > (int64_t)(t->tile_bytes / sizeof(float))) seg /= 2;
    params->tile = seg;
    params->tasks = cb_segment_tasks(p, seg);
    params->worker_floats = (size_t)worker_floats(p, seg);
}

static double cost(const cb_problem *p, const cb_params *params) {
    double positions = (double)p->batch * (double)p->out_plane;
    double dw_flops = 2.0 * positions * (double)p->mid_channels * (double)p->taps;
    double bytes = (double)(p->in_elems + p->out_elems) * sizeof(float);
    double t = dw_flops / direct_flops + bytes / cb_machine.copy_bytes +
               (double)params->tasks * cb_machine.call_cost;
    if (p->has_pointwise)
        t += (p->flops - dw_flops) /
                 (cb_machine.gemm_flops *
                  cb_gemm_efficiency(params->tile, p->out_channels, p->mid_channels)) +
             (double)params->tasks * cb_machine.call_cost;
    return t / cb_min(params->threads, cb_max(params->tasks, 1));
}

static int64_t first_row(const cb_problem *p, const cb_segment *s) {
    return s->oh * p->s_h + s->i0 * p->d_h - p->pad_top;
}

/* channels_last window copy: zero-padded, each channel repeated depth_multiplier times so
 * that the kernel sees one input lane per output channel. */
static void copy_window_cl(const cb_problem *p, const float *img, const cb_segment *s, float *buf) {
    int64_t C = p->channels, M = p->group_out, ctot = p->mid_channels;
    for (int64_t r = 0; r < s->i1 - s->i0; r++) {
        const float *row = img + (first_row(p, s) + r * p->d_h) * p->in_w * C;
        for (int64_t u = 0; u < s->span; u++) {
            float *dst = buf + (r * s->span + u) * ctot;
            int64_t iw = s->x0 + u;
            if (iw < 0 || iw >= p->in_w)
                memset(dst, 0, (size_t)ctot * sizeof(float));
            else if (M == 1)
                memcpy(dst, row + iw * C, (size_t)C * sizeof(float));
            else
                for (int64_t c = 0; c < C; c++)
                    for (int64_t m = 0; m < M; m++) dst[c * M + m] = row[iw * C + c];
        }
    }
}

static void depthwise_cl(const cb_exec *e, const cb_segment *s, float *buf, float *dst,
                         int64_t dst_ld) {
    const cb_problem *p = e->p;
    int64_t C = p->channels, ctot = p->mid_channels;
    const float *img = e->in + s->n * p->in_plane * C;
    const float *w = e->kernel + s->i0 * p->k_w * ctot;
    int64_t rows = s->i1 - s->i0;
    if (s->inside && p->group_out == 1) {
        const float *x = img + (first_row(p, s) * p->in_w + s->x0) * C;
        cb_dw_channels_last(x, p->d_h * p->in_w * C, rows, p->k_w, p->s_w, p->d_w, C, w, ctot, dst,
                            dst_ld, s->count, ctot);
        return;
    }
    copy_window_cl(p, img, s, buf);
    cb_dw_channels_last(buf, s->span * ctot, rows, p->k_w, p->s_w, p->d_w, ctot, w, ctot, dst,
                        dst_ld, s->count, ctot);
}

static void depthwise_cf(const cb_exec *e, const cb_segment *s, float *buf, float *dst,
                         int64_t dst_cs) {
    const cb_problem *p = e->p;
    int64_t M = p->group_out, ctot = p->mid_channels, rows = s->i1 - s->i0;
    for (int64_t c = 0; c < p->channels; c++) {
        const float *plane = e->in + (s->n * p->channels + c) * p->in_plane;
        const float *x = plane + first_row(p, s) * p->in_w + s->x0;
        int64_t x_row = p->d_h * p->in_w;
        if (!s->inside) {
            for (int64_t r = 0; r < rows; r++) {
                const float *row = plane + (first_row(p, s) + r * p->d_h) * p->in_w;
                for (int64_t u = 0; u < s->span; u++) {
                    int64_t iw = s->x0 + u;
                    buf[r * s->span + u] = iw >= 0 && iw < p->in_w ? row[iw] : 0.0f;
                }
            }
            x = buf, x_row = s->span;
        }
        for (int64_t m = 0; m < M; m++) {
            int64_t o = c * M + m;
            cb_dw_channels_first(x, x_row, rows, p->k_w, p->s_w, p->d_w,
                                 e->kernel + s->i0 * p->k_w * ctot + o, ctot, dst + o * dst_cs,
                                 s->count);
        }
    }
}

/* Outputs [t0, t1) of segment s, as a segment of their own. */
static cb_segment sub_segment(const cb_problem *p, const cb_segment *s, int64_t t0, int64_t t1) {
    cb_segment r = *s;
    r.ow0 = s->ow0 + t0;
    r.count = t1 - t0;
    r.x0 = s->x0 + t0 * p->s_w;
    r.span = cb_window_span(p, r.count);
    r.inside = r.x0 >= 0 && r.x0 + r.span <= p->in_w;
    return r;
}

/* The segment in up to three pieces: the outputs whose windows lie inside the input read
 * it in place; only the edge outputs go through a padded copy. */
static void depthwise_pieces(const cb_exec *e, const cb_segment *s, float *buf, float *dst,
                             int64_t dst_ld) {
    const cb_problem *p = e->p;
    bool last = p->format == CONVBLAS_CHANNELS_LAST;
    int64_t lo = s->x0 >= 0 ? 0 : cb_ceil_div(-s->x0, p->s_w);
    int64_t room = p->in_w - 1 - (p->k_w - 1) * p->d_w - s->x0; /* last start inside */
    int64_t hi = room < 0 ? 0 : room / p->s_w + 1;
    lo = cb_min(lo, s->count);
    hi = cb_min(cb_max(hi, lo), s->count);
    int64_t cut[4] = {0, lo, hi, s->count};
    for (int k = 0; k < 3; k++) {
        if (cut[k] == cut[k + 1]) continue;
        cb_segment piece = sub_segment(p, s, cut[k], cut[k + 1]);
        if (last)
            depthwise_cl(e, &piece, buf, dst + cut[k] * dst_ld, dst_ld);
        else
            depthwise_cf(e, &piece, buf, dst + cut[k], dst_ld);
    }
}

static void run_task(const cb_exec *e, int64_t task, float *ws) {
    const cb_problem *p = e->p;
    cb_segment s = cb_locate_segment(e->p, e->params->tile, task);
    int64_t p0 = s.oh * p->out_w + s.ow0, ld;
    float *out = cb_output_tile(e, s.n, p0, &ld);
    float *mid =
        ws + (worker_floats(p, s.count) - (p->has_pointwise ? s.count * p->mid_channels : 0));
    bool last = p->format == CONVBLAS_CHANNELS_LAST;
    float *dst = p->has_pointwise ? mid : out;
    int64_t dst_ld = p->has_pointwise ? (last ? p->mid_channels : s.count) : ld;
    if (s.i1 == s.i0) { /* the window misses the input entirely: zeros */
        for (int64_t o = 0; o < p->mid_channels; o++)
            for (int64_t t = 0; t < s.count; t++)
                dst[last ? t * dst_ld + o : o * dst_ld + t] = 0.0f;
    } else {
        depthwise_pieces(e, &s, ws, dst, dst_ld);
    }
    if (p->has_pointwise) cb_pointwise_stage(e, mid, s.n, p0, s.count);
    cb_epilogue(p, e->bias, out, s.count, ld);
}

const cb_strategy cb_depthwise_direct = {
    .name = "depthwise_direct",
    .summary = "vectorized direct depthwise kernel per row segment (separable: fused with "
               "the pointwise GEMM per segment)",
    .parallel = "images x output rows x segments of tile positions",
    .applicable = applicable,
    .configure = configure,
    .cost = cost,
    .run_task = run_task,
};

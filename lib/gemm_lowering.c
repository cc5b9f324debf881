/* Pieces every GEMM lowering shares: where an output tile lives, the pointwise stage of
 * SEPARABLE, the GEMM efficiency curve of the cost model. */
#include "convblas_internal.h"

double cb_gemm_efficiency(int64_t m, int64_t n, int64_t k) {
    /* The register tile and the packing overhead make each dimension count as
     * x / (x + half), where half is the size at which it reaches half speed. */
    double dm = (double)m, dn = (double)n, dk = (double)k;
    return dm / (dm + 8.0) * dn / (dn + 12.0) * dk / (dk + 24.0);
}

float *cb_output_tile(const cb_exec *e, int64_t n, int64_t p0, int64_t *ld) {
    const cb_problem *p = e->p;
    if (p->format == CONVBLAS_CHANNELS_LAST) {
        *ld = p->out_channels;
        return e->out + (n * p->out_plane + p0) * p->out_channels;
    }
    *ld = p->out_plane;
    return e->out + n * p->out_channels * p->out_plane + p0;
}

void cb_pointwise_stage(const cb_exec *e, const float *mid, int64_t n, int64_t p0,
                        int64_t positions) {
    const cb_problem *p = e->p;
    int64_t ld;
    float *out = cb_output_tile(e, n, p0, &ld);
    if (p->format == CONVBLAS_CHANNELS_LAST)
        cb_sgemm(CB_NO_TRANS, CB_NO_TRANS, positions, p->out_channels, p->mid_channels, mid,
                 p->mid_channels, e->pointwise, p->out_channels, 0.0f, out, ld);
    else
        cb_sgemm(CB_TRANS, CB_NO_TRANS, p->out_channels, positions, p->mid_channels, e->pointwise,
                 p->out_channels, mid, positions, 0.0f, out, ld);
}

/* Saturates at INT64_MAX: (count - 1) * s_w + the effective kernel can pass it for extreme
 * (valid) strides and dilations. */
int64_t cb_window_span(const cb_problem *p, int64_t count) {
    int64_t span;
    return cb_add(cb_mul_sat(count - 1, p->s_w), (p->k_w - 1) * p->d_w + 1, &span) ? span
                                                                                   : INT64_MAX;
}

int64_t cb_segment_tasks(const cb_problem *p, int64_t tile) {
    return p->batch * p->out_h * cb_ceil_div(p->out_w, tile);
}

cb_segment cb_locate_segment(const cb_problem *p, int64_t tile, int64_t task) {
    int64_t segs = cb_ceil_div(p->out_w, tile);
    cb_segment s = {
        .n = task / segs / p->out_h, .oh = task / segs % p->out_h, .ow0 = task % segs * tile};
    s.count = cb_min(tile, p->out_w - s.ow0);
    /* Kernel rows whose input row exists: ih = oh * s_h + i * d_h - pad_top in [0, in_h). */
    int64_t top = s.oh * p->s_h - p->pad_top;
    while (s.i0 < p->k_h && top + s.i0 * p->d_h < 0) s.i0++;
    s.i1 = s.i0;
    while (s.i1 < p->k_h && top + s.i1 * p->d_h < p->in_h) s.i1++;
    s.x0 = s.ow0 * p->s_w - p->pad_left;
    s.span = cb_window_span(p, s.count);
    s.inside = s.x0 >= 0 && s.span <= p->in_w - s.x0;
    return s;
}

void cb_finish_tile(const cb_exec *e, cb_stage_fn stage, const float *col, float *mid, int64_t n,
                    int64_t p0, int64_t count) {
    const cb_problem *p = e->p;
    int64_t ld;
    float *out = cb_output_tile(e, n, p0, &ld);
    if (p->has_pointwise) {
        stage(e, col, count, mid, p->format == CONVBLAS_CHANNELS_LAST ? p->mid_channels : count);
        cb_pointwise_stage(e, mid, n, p0, count);
    } else {
        stage(e, col, count, out, ld);
    }
    cb_epilogue(p, e->bias, out, count, ld);
}

void cb_position_tiles(const cb_problem *p, const cb_tuning *t, int64_t per_position,
                       cb_params *params) {
    /* The output tile shares the cache budget: the epilogue (and the pointwise GEMM) must
     * find it there, not make another pass over memory. */
    int64_t working_set =
        per_position > INT64_MAX - p->out_channels ? INT64_MAX : per_position + p->out_channels;
    int64_t tile = cb_max((int64_t)(t->tile_bytes / sizeof(float)) / working_set, 1);
    /* Enough tiles for every worker when the batch alone does not provide them. */
    if (p->batch < t->threads)
        tile = cb_min(tile, cb_max(cb_ceil_div(p->out_plane * p->batch, t->threads), 8));
    tile = cb_min(tile, p->out_plane);
    params->tile = tile;
    params->tasks = p->batch * cb_ceil_div(p->out_plane, tile);
    params->worker_floats = (size_t)cb_mul_sat(tile, per_position);
}

int64_t cb_locate_position_tile(const cb_problem *p, int64_t tile, int64_t task, int64_t *n,
                                int64_t *p0) {
    int64_t tiles = cb_ceil_div(p->out_plane, tile);
    *n = task / tiles;
    *p0 = task % tiles * tile;
    return cb_min(tile, p->out_plane - *p0);
}

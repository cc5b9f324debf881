/* pointwise_gemm: a 1x1, stride-1, unpadded convolution is a GEMM on the input as it lies
 * in memory: channels_last (rows x C) * kernel (C x F); channels_first kernel^T (F x C) *
 * image (C x positions). No copy, no workspace; each task is a band of positions, so the
 * epilogue finds its tile in cache. */
#include "convblas_internal.h"

#include <stdio.h>

static bool applicable(const cb_problem *p, char *why, size_t n) {
    if (p->op != CONVBLAS_CONV)
        return cb_decline(why, n,
                          "only for CONV (the pointwise stage of SEPARABLE runs inside the "
                          "separable lowerings)");
    if (p->taps != 1 || p->s_h != 1 || p->s_w != 1)
        return cb_decline(
            why, n, "needs kernel 1 and stride 1 (kernel %lldx%lld, stride %lldx%lld)",
            (long long)p->k_h, (long long)p->k_w, (long long)p->s_h, (long long)p->s_w);
    int64_t big = cb_max(cb_max(p->channels, p->out_channels), p->out_plane);
    if (big > cb_blas_int_max() || p->batch * p->out_plane > cb_blas_int_max())
        return cb_decline(why, n, "a dimension exceeds the BLAS integer range");
    return true;
}

/* channels_last: tasks are bands of rows over batch x positions (contiguous);
 * channels_first: tasks are bands of positions within one image. */
static int64_t band_space(const cb_problem *p) {
    return p->format == CONVBLAS_CHANNELS_LAST ? p->batch * p->out_plane : p->out_plane;
}

static void configure(const cb_problem *p, const cb_tuning *t, cb_params *params) {
    int64_t space = cb_max(band_space(p), 1);
    int64_t images = p->format == CONVBLAS_CHANNELS_LAST ? 1 : p->batch;
    int64_t row_bytes = (p->channels + p->out_channels) * (int64_t)sizeof(float);
    int64_t tile = cb_max((int64_t)t->tile_bytes / row_bytes, 64);
    /* Enough bands for every worker. */
    int64_t per_worker = cb_ceil_div(space * images, t->threads);
    if (images < t->threads) tile = cb_min(tile, cb_max(per_worker, 16));
    tile = cb_min(tile, space);
    params->tile = tile;
    params->tasks = images * cb_ceil_div(space, tile);
    params->worker_floats = 0;
}

static double cost(const cb_problem *p, const cb_params *params) {
    double eff = cb_gemm_efficiency(params->tile, p->group_out, p->group_in);
    double calls = (double)params->tasks * (double)p->groups;
    double t = p->flops / (cb_machine.gemm_flops * eff) + calls * cb_machine.call_cost;
    return t / cb_min(params->threads, params->tasks > 0 ? params->tasks : 1);
}

static void run_task(const cb_exec *e, int64_t task, float *ws) {
    (void)ws;
    const cb_problem *p = e->p;
    int64_t bands = cb_ceil_div(band_space(p), e->params->tile);
    int64_t n = task / bands, p0 = (task % bands) * e->params->tile;
    int64_t rows = cb_min(e->params->tile, band_space(p) - p0);
    int64_t ld;
    float *out = cb_output_tile(e, n, p0, &ld);
    int64_t C = p->channels, F = p->out_channels, Cg = p->group_in, Fg = p->group_out;
    for (int64_t g = 0; g < p->groups; g++) {
        if (p->format == CONVBLAS_CHANNELS_LAST)
            cb_sgemm(CB_NO_TRANS, CB_NO_TRANS, rows, Fg, Cg, e->in + p0 * C + g * Cg, C,
                     e->kernel + g * Fg, F, 0.0f, out + g * Fg, ld);
        else
            cb_sgemm(CB_TRANS, CB_NO_TRANS, Fg, rows, Cg, e->kernel + g * Fg, F,
                     e->in + (n * C + g * Cg) * p->in_plane + p0, p->in_plane, 0.0f,
                     out + g * Fg * ld, ld);
    }
    cb_epilogue(p, e->bias, out, rows, ld);
}

const cb_strategy cb_pointwise_gemm = {
    .name = "pointwise_gemm",
    .summary = "1x1 convolution as one GEMM per band of positions on the input in place",
    .parallel =
        "bands of tile positions (channels_last: across images; channels_first: within one)",
    .applicable = applicable,
    .configure = configure,
    .cost = cost,
    .run_task = run_task,
};

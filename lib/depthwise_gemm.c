/* depthwise_gemm: depthwise lowered to one small GEMM per channel. For a tile of output
 * positions of one image, each channel's receptive fields are unfolded into a block of
 * its own (positions x taps, or taps x positions in channels_first), and the channel's
 * depth_multiplier outputs come from one GEMM against its (taps x multiplier) slice of the
 * Keras kernel, addressed in place (ld = channels * multiplier). Worth it when the
 * multiplier is large enough to give the GEMM a real n dimension. SEPARABLE feeds the
 * tile straight to the pointwise GEMM. */
#include "convblas_internal.h"

#include <stdio.h>

static bool applicable(const cb_problem *p, char *why, size_t n) {
    if (p->group_in != 1)
        return cb_decline(why, n,
                          "needs one input channel per group (depthwise); this layer has %lld",
                          (long long)p->group_in);
    int64_t big = cb_max(cb_max(p->mid_channels, p->out_channels), p->out_plane);
    if (big > cb_blas_int_max())
        return cb_decline(why, n, "a GEMM dimension exceeds the BLAS integer range");
    return true;
}

/* Floats per output position: every channel's taps, plus the stage-1 tile of SEPARABLE. */
static int64_t per_position(const cb_problem *p) {
    int64_t col = cb_mul_sat(p->channels, p->taps);
    if (!p->has_pointwise) return col;
    return col > INT64_MAX - p->mid_channels ? INT64_MAX : col + p->mid_channels;
}

static void configure(const cb_problem *p, const cb_tuning *t, cb_params *params) {
    cb_position_tiles(p, t, per_position(p), params);
}

static double cost(const cb_problem *p, const cb_params *params) {
    double positions = (double)p->batch * (double)p->out_plane;
    double copy = positions * (double)(p->channels * p->taps) * 2.0 * sizeof(float);
    double dw_flops = 2.0 * positions * (double)p->mid_channels * (double)p->taps;
    double eff = cb_gemm_efficiency(params->tile, p->group_out, p->taps);
    double tiles = (double)params->tasks;
    double t = copy / cb_machine.copy_bytes + dw_flops / (cb_machine.gemm_flops * eff) +
               tiles * (double)p->channels * cb_machine.call_cost;
    if (p->has_pointwise)
        t += (p->flops - dw_flops) /
                 (cb_machine.gemm_flops *
                  cb_gemm_efficiency(params->tile, p->out_channels, p->mid_channels)) +
             tiles * cb_machine.call_cost;
    return t / cb_min(params->threads, params->tasks > 0 ? params->tasks : 1);
}

/* col holds channel c's block at c * count * taps: rows of taps in channels_last (the
 * GEMM's A is positions x taps), rows of positions in channels_first (A^T). The loops
 * walk the input in its own order: positions outside in channels_last, channels outside
 * in channels_first. */
static void unfold_channels_last(const cb_problem *p, const float *img, int64_t p0, int64_t count,
                                 float *col) {
    int64_t C = p->channels, block = count * p->taps;
    int64_t oh = p0 / p->out_w, ow = p0 % p->out_w;
    for (int64_t q = 0; q < count; q++) {
        for (int64_t i = 0; i < p->k_h; i++) {
            int64_t ih = cb_input_coord(oh, p->s_h, i, p->d_h, p->pad_top);
            for (int64_t j = 0; j < p->k_w; j++) {
                int64_t iw = cb_input_coord(ow, p->s_w, j, p->d_w, p->pad_left);
                float *dst = col + q * p->taps + i * p->k_w + j;
                if (ih < 0 || ih >= p->in_h || iw < 0 || iw >= p->in_w) {
                    for (int64_t c = 0; c < C; c++) dst[c * block] = 0.0f;
                    continue;
                }
                const float *src = img + (ih * p->in_w + iw) * C;
                for (int64_t c = 0; c < C; c++) dst[c * block] = src[c];
            }
        }
        if (++ow == p->out_w) ow = 0, oh++;
    }
}

static void unfold_channels_first(const cb_problem *p, const float *img, int64_t p0, int64_t count,
                                  float *col) {
    for (int64_t c = 0; c < p->channels; c++) {
        const float *plane = img + c * p->in_plane;
        for (int64_t i = 0; i < p->k_h; i++) {
            for (int64_t j = 0; j < p->k_w; j++) {
                float *dst = col + (c * p->taps + i * p->k_w + j) * count;
                int64_t oh = p0 / p->out_w, ow = p0 % p->out_w;
                for (int64_t q = 0; q < count; q++) {
                    int64_t ih = cb_input_coord(oh, p->s_h, i, p->d_h, p->pad_top);
                    int64_t iw = cb_input_coord(ow, p->s_w, j, p->d_w, p->pad_left);
                    bool inside = ih >= 0 && ih < p->in_h && iw >= 0 && iw < p->in_w;
                    dst[q] = inside ? plane[ih * p->in_w + iw] : 0.0f;
                    if (++ow == p->out_w) ow = 0, oh++;
                }
            }
        }
    }
}

/* Stage 1 of one tile: channel c's multiplier outputs = its block x its kernel slice. */
static void channel_gemms(const cb_exec *e, const float *col, int64_t count, float *dst,
                          int64_t ld) {
    const cb_problem *p = e->p;
    int64_t M = p->group_out, K = p->taps, block = count * K;
    for (int64_t c = 0; c < p->channels; c++) {
        if (p->format == CONVBLAS_CHANNELS_LAST)
            cb_sgemm(CB_NO_TRANS, CB_NO_TRANS, count, M, K, col + c * block, K, e->kernel + c * M,
                     p->mid_channels, 0.0f, dst + c * M, ld);
        else
            cb_sgemm(CB_TRANS, CB_NO_TRANS, M, count, K, e->kernel + c * M, p->mid_channels,
                     col + c * block, count, 0.0f, dst + c * M * ld, ld);
    }
}

static void run_task(const cb_exec *e, int64_t task, float *ws) {
    const cb_problem *p = e->p;
    int64_t n, p0, count = cb_locate_position_tile(p, e->params->tile, task, &n, &p0);
    const float *img = e->in + n * p->in_plane * p->channels;
    if (p->format == CONVBLAS_CHANNELS_LAST)
        unfold_channels_last(p, img, p0, count, ws);
    else
        unfold_channels_first(p, img, p0, count, ws);
    cb_finish_tile(e, channel_gemms, ws, ws + count * p->channels * p->taps, n, p0, count);
}

const cb_strategy cb_depthwise_gemm = {
    .name = "depthwise_gemm",
    .summary = "per channel, unfold its receptive fields and one GEMM (taps x multiplier)",
    .parallel = "images x tiles of tile output positions",
    .applicable = applicable,
    .configure = configure,
    .cost = cost,
    .run_task = run_task,
};

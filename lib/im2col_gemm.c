/* im2col_gemm: the general lowering. For a tile of output positions of one image, unfold
 * every receptive field into a column buffer whose rows follow the Keras kernel's row
 * order (tap, channel), then one GEMM per group against the kernel in place. The buffer
 * holds one tile, so the workspace is bounded however long the input. SEPARABLE runs its
 * depthwise stage this way into a tile buffer, then the pointwise GEMM. */
#include "convblas_internal.h"

#include <stdio.h>
#include <string.h>

static int64_t row_floats(const cb_problem *p) {
    return p->taps * p->channels;
}

static bool applicable(const cb_problem *p, char *why, size_t n) {
    int64_t big = cb_max(cb_max(row_floats(p), p->mid_channels), p->out_channels);
    if (big > cb_blas_int_max() || p->out_plane > cb_blas_int_max())
        return cb_decline(why, n, "a GEMM dimension exceeds the BLAS integer range");
    return true;
}

static void configure(const cb_problem *p, const cb_tuning *t, cb_params *params) {
    cb_position_tiles(p, t, row_floats(p) + (p->has_pointwise ? p->mid_channels : 0), params);
}

static double cost(const cb_problem *p, const cb_params *params) {
    double positions = (double)p->batch * (double)p->out_plane;
    double copy = positions * (double)row_floats(p) * 2.0 * sizeof(float);
    double eff = cb_gemm_efficiency(params->tile, p->group_out, p->taps * p->group_in);
    double calls = (double)params->tasks * (double)(p->groups + p->has_pointwise);
    double t = copy / cb_machine.copy_bytes + p->flops / (cb_machine.gemm_flops * eff) +
               calls * cb_machine.call_cost;
    return t / cb_min(params->threads, params->tasks > 0 ? params->tasks : 1);
}

/* channels_last: row q of col is position p0 + q; its floats run (group, tap, channel of
 * the group), so group g's GEMM operand starts at g * taps * Cg with lda = taps * C. */
static void unfold_channels_last(const cb_problem *p, const float *img, int64_t p0, int64_t count,
                                 float *col) {
    int64_t C = p->channels, Cg = p->group_in, Kg = p->taps * Cg;
    for (int64_t q = 0; q < count; q++) {
        int64_t oh = (p0 + q) / p->out_w, ow = (p0 + q) % p->out_w;
        float *row = col + q * row_floats(p);
        for (int64_t i = 0; i < p->k_h; i++) {
            int64_t ih = cb_input_coord(oh, p->s_h, i, p->d_h, p->pad_top);
            for (int64_t j = 0; j < p->k_w; j++) {
                int64_t iw = cb_input_coord(ow, p->s_w, j, p->d_w, p->pad_left);
                int64_t tap = i * p->k_w + j;
                bool inside = ih >= 0 && ih < p->in_h && iw >= 0 && iw < p->in_w;
                const float *src = inside ? img + (ih * p->in_w + iw) * C : NULL;
                if (p->groups == 1) {
                    if (inside)
                        memcpy(row + tap * C, src, (size_t)C * sizeof(float));
                    else
                        memset(row + tap * C, 0, (size_t)C * sizeof(float));
                    continue;
                }
                for (int64_t g = 0; g < p->groups; g++) {
                    float *dst = row + g * Kg + tap * Cg;
                    for (int64_t c = 0; c < Cg; c++) dst[c] = inside ? src[g * Cg + c] : 0.0f;
                }
            }
        }
    }
}

/* channels_first: col is (group, tap, channel of the group) rows of `count` positions, the
 * transpose of the channels_last layout, so the GEMM produces channel-major output. */
static void unfold_channels_first(const cb_problem *p, const float *img, int64_t p0, int64_t count,
                                  float *col) {
    int64_t Cg = p->group_in, Kg = p->taps * Cg;
    for (int64_t c = 0; c < p->channels; c++) {
        const float *plane = img + c * p->in_plane;
        int64_t g = c / Cg, cg = c % Cg;
        for (int64_t i = 0; i < p->k_h; i++) {
            for (int64_t j = 0; j < p->k_w; j++) {
                float *dst = col + (g * Kg + (i * p->k_w + j) * Cg + cg) * count;
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

/* Stage 1 for one tile: grouped GEMMs from col into dst (ld as the layout needs). */
static void stage_one(const cb_exec *e, const float *col, int64_t count, float *dst, int64_t ld) {
    const cb_problem *p = e->p;
    int64_t Kg = p->taps * p->group_in, Fg = p->group_out, M = p->mid_channels;
    for (int64_t g = 0; g < p->groups; g++) {
        if (p->format == CONVBLAS_CHANNELS_LAST)
            cb_sgemm(CB_NO_TRANS, CB_NO_TRANS, count, Fg, Kg, col + g * Kg, row_floats(p),
                     e->kernel + g * Fg, M, 0.0f, dst + g * Fg, ld);
        else
            cb_sgemm(CB_TRANS, CB_NO_TRANS, Fg, count, Kg, e->kernel + g * Fg, M,
                     col + g * Kg * count, count, 0.0f, dst + g * Fg * ld, ld);
    }
}

static void run_task(const cb_exec *e, int64_t task, float *ws) {
    const cb_problem *p = e->p;
    int64_t n, p0, count = cb_locate_position_tile(p, e->params->tile, task, &n, &p0);
    const float *img = e->in + n * p->in_plane * p->channels;
    float *col = ws;
    if (p->format == CONVBLAS_CHANNELS_LAST)
        unfold_channels_last(p, img, p0, count, col);
    else
        unfold_channels_first(p, img, p0, count, col);
    cb_finish_tile(e, stage_one, col, col + count * row_floats(p), n, p0, count);
}

const cb_strategy cb_im2col_gemm = {
    .name = "im2col_gemm",
    .summary = "unfold a tile of receptive fields into a column buffer, one GEMM per group",
    .parallel = "images x tiles of tile output positions",
    .applicable = applicable,
    .configure = configure,
    .cost = cost,
    .run_task = run_task,
};

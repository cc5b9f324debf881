/* Padding contributes nothing: an output is the sum over the taps whose input exists
 * (design section 2's index rule). The lowerings that copy zeros in for the padding
 * (im2col_gemm, depthwise_gemm, depthwise_direct) compute the same sum, except when a
 * kernel weight is Inf or NaN: 0 * Inf is NaN, and an output that should be finite or Inf
 * would read NaN. Checking the kernel costs one pass over it, far less than the layer; when
 * it holds a non-finite weight, the outputs whose windows reach into the padding are
 * recomputed here from the definition, bias and activation included, so every strategy
 * gives the IEEE result of the same sum. */
#include "convblas_internal.h"

#include "simd.h"

#include <string.h>

SIMD_CLONES static float self_difference(const float *kernel, int64_t n) {
    /* x - x is 0 for every finite x and NaN for Inf and NaN. */
    vf acc = vsplat(0.0f);
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        vf v = vload(kernel + i);
        acc += v - v;
    }
    float sum = 0.0f;
    for (; i < n; i++) sum += kernel[i] - kernel[i];
    for (int l = 0; l < VL; l++) sum += acc[l];
    return sum;
}

bool cb_needs_border_fixup(const cb_problem *p, const float *kernel) {
    if (p->pad_top + p->pad_bottom + p->pad_left + p->pad_right == 0) return false;
    float d = self_difference(kernel, p->kernel_elems);
    return d != d;
}

static bool window_leaves_input(const cb_problem *p, int64_t oh, int64_t ow) {
    int64_t top = oh * p->s_h - p->pad_top, left = ow * p->s_w - p->pad_left;
    return top < 0 || top + (p->k_h - 1) * p->d_h >= p->in_h || left < 0 ||
           left + (p->k_w - 1) * p->d_w >= p->in_w;
}

static const float *input_at(const cb_problem *p, const float *img, int64_t ih, int64_t iw,
                             int64_t c) {
    if (p->format == CONVBLAS_CHANNELS_LAST) return img + (ih * p->in_w + iw) * p->channels + c;
    return img + c * p->in_plane + ih * p->in_w + iw;
}

/* Stage-1 output channel m at (oh, ow) of image img, over the existing taps only. */
static float stage_one(const cb_problem *p, const float *img, const float *kernel, int64_t oh,
                       int64_t ow, int64_t m) {
    int64_t g = m / p->group_out, Cg = p->group_in;
    double sum = 0.0;
    for (int64_t i = 0; i < p->k_h; i++) {
        int64_t ih = cb_input_coord(oh, p->s_h, i, p->d_h, p->pad_top);
        if (ih < 0 || ih >= p->in_h) continue;
        for (int64_t j = 0; j < p->k_w; j++) {
            int64_t iw = cb_input_coord(ow, p->s_w, j, p->d_w, p->pad_left);
            if (iw < 0 || iw >= p->in_w) continue;
            const float *w = kernel + (i * p->k_w + j) * Cg * p->mid_channels + m;
            for (int64_t c = 0; c < Cg; c++)
                sum +=
                    (double)*input_at(p, img, ih, iw, g * Cg + c) * (double)w[c * p->mid_channels];
        }
    }
    return (float)sum;
}

static void fix_position(const cb_exec *e, int64_t n, int64_t oh, int64_t ow, float *mid) {
    const cb_problem *p = e->p;
    const float *img = e->in + n * p->in_plane * p->channels;
    int64_t ld;
    float *out = cb_output_tile(e, n, oh * p->out_w + ow, &ld);
    int64_t step = p->format == CONVBLAS_CHANNELS_LAST ? 1 : ld;
    if (!p->has_pointwise) {
        for (int64_t m = 0; m < p->mid_channels; m++)
            out[m * step] = stage_one(p, img, e->kernel, oh, ow, m);
    } else {
        for (int64_t m = 0; m < p->mid_channels; m++)
            mid[m] = stage_one(p, img, e->kernel, oh, ow, m);
        for (int64_t f = 0; f < p->out_channels; f++) {
            double sum = 0.0;
            for (int64_t m = 0; m < p->mid_channels; m++)
                sum += (double)mid[m] * (double)e->pointwise[m * p->out_channels + f];
            out[f * step] = (float)sum;
        }
    }
    cb_epilogue(p, e->bias, out, 1, ld);
}

void cb_fix_padded_borders(const cb_exec *e, float *mid) {
    const cb_problem *p = e->p;
    for (int64_t n = 0; n < p->batch; n++)
        for (int64_t oh = 0; oh < p->out_h; oh++)
            for (int64_t ow = 0; ow < p->out_w; ow++)
                if (window_leaves_input(p, oh, ow)) fix_position(e, n, oh, ow, mid);
}

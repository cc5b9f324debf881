/* The reference convolution: direct loops over design.md section 2, double accumulation.
 * Deliberately naive: no tiling, no lowering, no shared code with lib/. */
#include "reference.h"

#include <math.h>
#include <stdlib.h>

/* The layer with every default applied, as a rank-2 problem: rank 1 is height 1, kernel 1,
 * stride 1, dilation 1, no padding in the first dimension and its length as the width. */
typedef struct geom {
    int64_t n, c, h, w; /* input */
    int64_t oc, oh, ow; /* output channels and spatial */
    int64_t kh, kw, sh, sw, dh, dw;
    int64_t ph, pw; /* padding before */
    int64_t groups, mult;
} geom;

static int64_t ceil_div(int64_t a, int64_t b) {
    return (a + b - 1) / b;
}

/* One spatial dimension: out and pad_before, or -1 when invalid. */
static int dim(int64_t in, int64_t k, int64_t s, int64_t d, convblas_padding p, int64_t *out,
               int64_t *pad_before) {
    int64_t ek = (k - 1) * d + 1;
    if (p == CONVBLAS_VALID) {
        if (in < ek) return -1;
        *out = (in - ek) / s + 1;
        *pad_before = 0;
    } else if (p == CONVBLAS_SAME) {
        *out = ceil_div(in, s);
        int64_t total = (*out - 1) * s + ek - in;
        if (total < 0) total = 0;
        *pad_before = total / 2;
    } else { /* causal */
        *out = ceil_div(in, s);
        *pad_before = ek - 1;
    }
    return 0;
}

static convblas_status make_geom(const convblas_layer_desc *d, const convblas_shape *in, geom *g) {
    if (!d || !in) return CONVBLAS_INVALID_ARGUMENT;
    if (d->rank != 1 && d->rank != 2) return CONVBLAS_INVALID_ARGUMENT;
    if (d->op != CONVBLAS_CONV && d->op != CONVBLAS_DEPTHWISE && d->op != CONVBLAS_SEPARABLE)
        return CONVBLAS_INVALID_ARGUMENT;
    if (d->padding != CONVBLAS_VALID && d->padding != CONVBLAS_SAME &&
        d->padding != CONVBLAS_CAUSAL)
        return CONVBLAS_INVALID_ARGUMENT;
    if (d->padding == CONVBLAS_CAUSAL && d->rank != 1) return CONVBLAS_INVALID_ARGUMENT;
    if (d->data_format != CONVBLAS_CHANNELS_LAST && d->data_format != CONVBLAS_CHANNELS_FIRST)
        return CONVBLAS_INVALID_ARGUMENT;
    if ((int)d->activation < 0 || (int)d->activation > (int)CONVBLAS_LEAKY_RELU)
        return CONVBLAS_INVALID_ARGUMENT;

    int r = d->rank;
    int64_t k[2] = {1, 1}, s[2] = {1, 1}, dl[2] = {1, 1}, sp[2] = {1, 1};
    for (int i = 0; i < r; i++) {
        int j = r == 1 ? 1 : i; /* rank 1 lives in the second (width) slot */
        if (d->kernel_size[i] <= 0) return CONVBLAS_INVALID_ARGUMENT;
        if (d->strides[i] < 0 || d->dilation_rate[i] < 0) return CONVBLAS_INVALID_ARGUMENT;
        if (in->spatial[i] <= 0) return CONVBLAS_INVALID_ARGUMENT;
        k[j] = d->kernel_size[i];
        s[j] = d->strides[i] ? d->strides[i] : 1;
        dl[j] = d->dilation_rate[i] ? d->dilation_rate[i] : 1;
        sp[j] = in->spatial[i];
    }
    if (in->batch < 0 || in->channels <= 0) return CONVBLAS_INVALID_ARGUMENT;

    g->n = in->batch;
    g->c = in->channels;
    g->h = sp[0];
    g->w = sp[1];
    g->kh = k[0];
    g->kw = k[1];
    g->sh = s[0];
    g->sw = s[1];
    g->dh = dl[0];
    g->dw = dl[1];
    g->groups = 1;
    g->mult = 1;
    if (d->op == CONVBLAS_CONV) {
        if (d->groups < 0) return CONVBLAS_INVALID_ARGUMENT;
        g->groups = d->groups ? d->groups : 1;
    } else {
        if (d->depth_multiplier < 0) return CONVBLAS_INVALID_ARGUMENT;
        g->mult = d->depth_multiplier ? d->depth_multiplier : 1;
    }
    if (d->op != CONVBLAS_DEPTHWISE && d->filters <= 0) return CONVBLAS_INVALID_ARGUMENT;
    if (d->op == CONVBLAS_CONV && (g->c % g->groups || d->filters % g->groups))
        return CONVBLAS_INVALID_ARGUMENT;
    g->oc = d->op == CONVBLAS_DEPTHWISE ? g->c * g->mult : d->filters;

    if (r == 1) {
        g->oh = 1;
        g->ph = 0;
    } else if (dim(g->h, g->kh, g->sh, g->dh, d->padding, &g->oh, &g->ph)) {
        return CONVBLAS_INVALID_ARGUMENT;
    }
    if (dim(g->w, g->kw, g->sw, g->dw, d->padding, &g->ow, &g->pw))
        return CONVBLAS_INVALID_ARGUMENT;
    return CONVBLAS_OK;
}

static void geom_shape(const convblas_layer_desc *d, const geom *g, convblas_shape *out) {
    out->batch = g->n;
    out->channels = g->oc;
    if (d->rank == 1) {
        out->spatial[0] = g->ow;
        out->spatial[1] = 0;
    } else {
        out->spatial[0] = g->oh;
        out->spatial[1] = g->ow;
    }
}

convblas_status ref_output_shape(const convblas_layer_desc *desc, const convblas_shape *in,
                                 convblas_shape *out) {
    geom g;
    convblas_status st = make_geom(desc, in, &g);
    if (st == CONVBLAS_OK && out) geom_shape(desc, &g, out);
    return st;
}

convblas_status ref_layer_sizes(const convblas_layer_desc *desc, const convblas_shape *in,
                                ref_sizes *sz) {
    geom g;
    convblas_status st = make_geom(desc, in, &g);
    if (st != CONVBLAS_OK) return st;
    geom_shape(desc, &g, &sz->out);
    size_t taps = (size_t)(g.kh * g.kw);
    sz->input = (size_t)(g.n * g.c * g.h * g.w);
    sz->output = (size_t)(g.n * g.oc * g.oh * g.ow);
    sz->pointwise = 0;
    if (desc->op == CONVBLAS_CONV) {
        sz->kernel = taps * (size_t)(g.c / g.groups) * (size_t)g.oc;
    } else {
        sz->kernel = taps * (size_t)g.c * (size_t)g.mult;
        if (desc->op == CONVBLAS_SEPARABLE) sz->pointwise = (size_t)(g.c * g.mult * g.oc);
    }
    sz->bias = desc->use_bias ? (size_t)g.oc : 0;
    return CONVBLAS_OK;
}

double ref_activation(convblas_activation act, double alpha, double x) {
    switch (act) {
    case CONVBLAS_LINEAR:
        return x;
    case CONVBLAS_RELU: /* NaN stays NaN, as tf.nn.relu */
        return x < 0 ? 0 : x;
    case CONVBLAS_RELU6:
        return x < 0 ? 0 : x > 6 ? 6 : x;
    case CONVBLAS_SIGMOID:
        return 1.0 / (1.0 + exp(-x));
    case CONVBLAS_TANH:
        return tanh(x);
    case CONVBLAS_GELU:
        /* = 0.5 x (1 + erf(x / sqrt 2)), without its cancellation for x < 0 */
        return 0.5 * x * erfc(-x / sqrt(2.0));
    case CONVBLAS_SWISH:
        return x / (1.0 + exp(-x));
    case CONVBLAS_ELU:
        return x > 0 ? x : (alpha != 0 ? alpha : 1.0) * expm1(x);
    case CONVBLAS_SOFTPLUS: /* log(exp(x) + 1) = max(x, 0) + log1p(exp(-|x|)) */
        return (x > 0 ? x : 0) + log1p(exp(-fabs(x)));
    case CONVBLAS_HARD_SIGMOID: {
        double v = 0.2 * x + 0.5;
        return v < 0 ? 0 : v > 1 ? 1 : v;
    }
    case CONVBLAS_HARD_SWISH: {
        double v = x + 3;
        v = v < 0 ? 0 : v > 6 ? 6 : v;
        return x * v / 6.0;
    }
    case CONVBLAS_LEAKY_RELU:
        return x > 0 ? x : (alpha != 0 ? alpha : 0.2) * x;
    }
    return NAN;
}

/* Index of (n, c, h, w) in a tensor of c_total channels and h_total x w_total positions. */
static size_t at(convblas_data_format f, int64_t n, int64_t c, int64_t h, int64_t w,
                 int64_t c_total, int64_t h_total, int64_t w_total) {
    if (f == CONVBLAS_CHANNELS_LAST)
        return (size_t)(((n * h_total + h) * w_total + w) * c_total + c);
    return (size_t)(((n * c_total + c) * h_total + h) * w_total + w);
}

convblas_status ref_forward(const convblas_layer_desc *d, const convblas_shape *in, const float *x,
                            const convblas_weights *wt, float *y, convblas_shape *out_shape) {
    geom g;
    convblas_status st = make_geom(d, in, &g);
    if (st != CONVBLAS_OK) return st;
    if (out_shape) geom_shape(d, &g, out_shape);
    const convblas_data_format f = d->data_format;
    const int64_t C = g.c, M = g.mult, OC = g.oc;
    const double alpha = d->activation_alpha;

    /* SEPARABLE: the depthwise stage first, into a double (n, oh, ow, C*M) buffer. */
    double *mid = NULL;
    if (d->op == CONVBLAS_SEPARABLE) {
        size_t cnt = (size_t)(g.n * g.oh * g.ow * C * M);
        mid = calloc(cnt ? cnt : 1, sizeof *mid);
        if (!mid) return CONVBLAS_OUT_OF_MEMORY;
    }

    for (int64_t n = 0; n < g.n; n++) {
        for (int64_t oh = 0; oh < g.oh; oh++) {
            for (int64_t ow = 0; ow < g.ow; ow++) {
                for (int64_t oc = 0; oc < OC; oc++) {
                    double acc = 0;
                    if (d->op == CONVBLAS_CONV) {
                        const int64_t cg = C / g.groups, fg = OC / g.groups;
                        const int64_t grp = oc / fg;
                        for (int64_t i = 0; i < g.kh; i++) {
                            int64_t ih = oh * g.sh + i * g.dh - g.ph;
                            if (ih < 0 || ih >= g.h) continue;
                            for (int64_t j = 0; j < g.kw; j++) {
                                int64_t iw = ow * g.sw + j * g.dw - g.pw;
                                if (iw < 0 || iw >= g.w) continue;
                                for (int64_t ci = 0; ci < cg; ci++) {
                                    int64_t c = grp * cg + ci;
                                    double xv = x[at(f, n, c, ih, iw, C, g.h, g.w)];
                                    double kv = wt->kernel[((i * g.kw + j) * cg + ci) * OC + oc];
                                    acc += xv * kv;
                                }
                            }
                        }
                    } else if (d->op == CONVBLAS_DEPTHWISE) {
                        const int64_t c = oc / M, m = oc % M;
                        for (int64_t i = 0; i < g.kh; i++) {
                            int64_t ih = oh * g.sh + i * g.dh - g.ph;
                            if (ih < 0 || ih >= g.h) continue;
                            for (int64_t j = 0; j < g.kw; j++) {
                                int64_t iw = ow * g.sw + j * g.dw - g.pw;
                                if (iw < 0 || iw >= g.w) continue;
                                double xv = x[at(f, n, c, ih, iw, C, g.h, g.w)];
                                double kv = wt->kernel[((i * g.kw + j) * C + c) * M + m];
                                acc += xv * kv;
                            }
                        }
                    } else {
                        /* depthwise stage (once per position), then pointwise */
                        double *mp = mid + ((n * g.oh + oh) * g.ow + ow) * C * M;
                        if (oc == 0) {
                            for (int64_t q = 0; q < C * M; q++) {
                                const int64_t c = q / M, m = q % M;
                                double a = 0;
                                for (int64_t i = 0; i < g.kh; i++) {
                                    int64_t ih = oh * g.sh + i * g.dh - g.ph;
                                    if (ih < 0 || ih >= g.h) continue;
                                    for (int64_t j = 0; j < g.kw; j++) {
                                        int64_t iw = ow * g.sw + j * g.dw - g.pw;
                                        if (iw < 0 || iw >= g.w) continue;
                                        double xv = x[at(f, n, c, ih, iw, C, g.h, g.w)];
                                        double kv = wt->kernel[((i * g.kw + j) * C + c) * M + m];
                                        a += xv * kv;
                                    }
                                }
                                mp[q] = a;
                            }
                        }
                        for (int64_t q = 0; q < C * M; q++)
                            acc += mp[q] * (double)wt->pointwise_kernel[q * OC + oc];
                    }
                    if (d->use_bias) acc += wt->bias[oc];
                    acc = ref_activation(d->activation, alpha, acc);
                    y[at(f, n, oc, oh, ow, OC, g.oh, g.ow)] = (float)acc;
                }
            }
        }
    }
    free(mid);
    return CONVBLAS_OK;
}

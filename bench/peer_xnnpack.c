/* The XNNPACK peer: the layer through XNNPACK's operator API, as a user with Keras-layout
 * (channels_last) tensors would run it. XNNPACK convolutions are NHWC only, so a
 * channels_first case is declined ("XNNPACK runs channels_last only").
 *
 * Mapping (every layer is xnn_create_convolution2d_nhwc_f32; a 1D layer is 2D with height 1,
 * kernel height 1, no padding on top or bottom):
 *  - Padding per spatial dimension, explicit, from the Keras rules: VALID 0/0; SAME
 *    pad_total split floor(total / 2) before, the rest after (TensorFlow's rule); CAUSAL
 *    ek - 1 on the left. Strides and dilations (XNNPACK's are 1-based) as they are.
 *  - CONV: groups G, C/G input and F/G output channels per group. XNNPACK wants the kernel
 *    as [G][F/G][kh][kw][C/G] (OHWI per group); the Keras kernel (kh, kw, C/G, F) is
 *    transposed once in prepare.
 *  - DEPTHWISE: groups = C, 1 input and M = depth_multiplier output channels per group, with
 *    XNN_FLAG_DEPTHWISE_CONVOLUTION, under which XNNPACK reads the kernel as
 *    [kh][kw][groups][group_output_channels] ("HWGo"): exactly Keras's depthwise kernel
 *    (k..., C, M) with output channel c * M + m, so it is passed unchanged (the flag is valid
 *    for any M, only group_input_channels must be 1). XNNPACK uses its dwconv microkernels
 *    when M = 1 and the tap count has one (3x3, 5x5, ...), else a grouped GEMM.
 *  - SEPARABLE: that depthwise operator (no bias, no clamp) into an intermediate buffer,
 *    then a 1x1 convolution with the pointwise kernel (1..., C*M, F) transposed to [F][C*M],
 *    carrying the bias and the activation.
 *  - Bias: the convolution's bias (packed with the weights at creation).
 *  - Activation: relu and relu6 are the convolution's output_min/output_max clamp; sigmoid,
 *    elu, leaky_relu and hard_swish are XNNPACK's own operators (sigmoid_nc, elu_nc,
 *    leaky_relu_nc, hardswish_nc), run after the convolution; swish is x * sigmoid(x) as a
 *    TFLite graph lowers it: sigmoid_nc then multiply_nd. This XNNPACK (2022-02) has no f32
 *    tanh, gelu, softplus or hard_sigmoid operator, so those are a plain C loop over the
 *    output (libm tanhf/erff/expf/log1pf), split over the same pthreadpool.
 *
 * Untimed (prepare): xnn_initialize (once per process), the thread pool, the weight
 * transposes, operator creation (which packs the weights), the intermediate buffers.
 * Timed (run): the operators' runs and the activation pass. xnn_setup_* binds the operators
 * to the input and output arrays (for a convolution it also builds the indirection buffer);
 * it is done on the first run and again only when run is given other arrays, as a
 * framework re-runs setup only when its tensors move.
 *
 * Threads: pthreadpool_create(threads) for threads > 1; with 1 thread no pool (NULL), so
 * everything runs on the calling thread. Arrays XNNPACK reads may be over-read by
 * XNN_EXTRA_BYTES (16) bytes: the intermediate buffers here have that slack, and the
 * caller's input should too. */
#include "peer.h"

#include <xnnpack.h>
#include <pthreadpool.h>

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    XP_ACT_NONE,    /* linear, relu, relu6: the convolution's clamp is the whole activation */
    XP_ACT_SIGMOID, /* operator */
    XP_ACT_ELU,
    XP_ACT_LEAKY_RELU,
    XP_ACT_HARDSWISH,
    XP_ACT_SWISH, /* sigmoid operator, then multiply operator */
    XP_ACT_LOOP   /* plain C loop: tanh, gelu, softplus, hard_sigmoid */
} xp_act_kind;

typedef struct xp_state {
    pthreadpool_t pool;  /* NULL for one thread */
    xnn_operator_t conv; /* the layer's convolution; SEPARABLE: its depthwise stage */
    xnn_operator_t pw;   /* SEPARABLE: the 1x1 convolution */
    xnn_operator_t act;  /* activation operator (sigmoid for swish) */
    xnn_operator_t mul;  /* swish: pre * sigmoid(pre) */
    float *mid;          /* SEPARABLE: depthwise output */
    float *pre;          /* the convolution's output when an operator applies the activation */
    xp_act_kind kind;
    convblas_activation activation;
    size_t batch, in_h, in_w, out_h, out_w, out_c, pixels, out_elems;
    bool bound; /* set up for bound_input / bound_output */
    const float *bound_input;
    float *bound_output;
} xp_state;

static const char *xp_version(void) {
    return "0.0~git20220216.ae108ef (Debian libxnnpack0)";
}

static pthread_once_t xp_once = PTHREAD_ONCE_INIT;
static enum xnn_status xp_init_status = xnn_status_uninitialized;
static void xp_init(void) {
    xp_init_status = xnn_initialize(NULL);
}

static void xp_release(void *state) {
    xp_state *s = state;
    if (!s) return;
    if (s->conv) xnn_delete_operator(s->conv);
    if (s->pw) xnn_delete_operator(s->pw);
    if (s->act) xnn_delete_operator(s->act);
    if (s->mul) xnn_delete_operator(s->mul);
    if (s->pool) pthreadpool_destroy(s->pool);
    free(s->mid);
    free(s->pre);
    free(s);
}

static void keras_pads(const convblas_layer_desc *d, int64_t in, int64_t out, int64_t k,
                       int64_t stride, int64_t dil, uint32_t *before, uint32_t *after) {
    int64_t ek = (k - 1) * dil + 1, b = 0, a = 0;
    if (d->padding == CONVBLAS_CAUSAL) {
        b = ek - 1;
    } else if (d->padding == CONVBLAS_SAME) {
        int64_t total = (out - 1) * stride + ek - in;
        if (total < 0) total = 0;
        b = total / 2;
        a = total - b;
    }
    *before = (uint32_t)b;
    *after = (uint32_t)a;
}

static float *alloc_floats(size_t n) {
    return malloc(n * sizeof(float) + XNN_EXTRA_BYTES); /* XNNPACK may over-read */
}

#define TRY(call, what)                                                                            \
    do {                                                                                           \
        enum xnn_status st_ = (call);                                                              \
        if (st_ != xnn_status_success) {                                                           \
            snprintf(why, why_size, "XNNPACK %s failed (status %d)", what, (int)st_);              \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

static void *xp_prepare(const bench_case *c, int threads, char *why, size_t why_size) {
    const convblas_layer_desc *d = &c->desc;
    char dummy[1];
    float *packed = NULL, *pw_packed = NULL;
    if (!why || why_size == 0) why = dummy, why_size = sizeof dummy;
    if (d->data_format != CONVBLAS_CHANNELS_LAST) {
        snprintf(why, why_size, "XNNPACK runs channels_last only");
        return NULL;
    }
    if (threads < 1) {
        snprintf(why, why_size, "thread count must be positive");
        return NULL;
    }
    pthread_once(&xp_once, xp_init);
    if (xp_init_status != xnn_status_success) {
        snprintf(why, why_size, "xnn_initialize failed (status %d)", (int)xp_init_status);
        return NULL;
    }
    xp_state *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    if (threads > 1 && !(s->pool = pthreadpool_create((size_t)threads))) {
        snprintf(why, why_size, "pthreadpool_create failed");
        goto fail;
    }

    const bool two_d = d->rank == 2;
    const int wi = two_d ? 1 : 0; /* the index of the width dimension in the desc arrays */
    const size_t C = (size_t)c->input.channels, Cout = (size_t)c->output.channels;
    const size_t M = d->depth_multiplier > 0 ? (size_t)d->depth_multiplier : 1;
    const size_t G = d->op == CONVBLAS_CONV && d->groups > 1 ? (size_t)d->groups : 1;
    const uint32_t kh = two_d ? (uint32_t)d->kernel_size[0] : 1;
    const uint32_t kw = (uint32_t)d->kernel_size[wi];
    uint32_t sh = 1, sw = 1, dh = 1, dw = 1, pt = 0, pb = 0, pl = 0, pr = 0;
    if (two_d) {
        sh = d->strides[0] > 0 ? (uint32_t)d->strides[0] : 1;
        dh = d->dilation_rate[0] > 0 ? (uint32_t)d->dilation_rate[0] : 1;
        keras_pads(d, c->input.spatial[0], c->output.spatial[0], kh, sh, dh, &pt, &pb);
    }
    sw = d->strides[wi] > 0 ? (uint32_t)d->strides[wi] : 1;
    dw = d->dilation_rate[wi] > 0 ? (uint32_t)d->dilation_rate[wi] : 1;
    keras_pads(d, c->input.spatial[wi], c->output.spatial[wi], kw, sw, dw, &pl, &pr);

    s->batch = (size_t)c->input.batch;
    s->in_h = two_d ? (size_t)c->input.spatial[0] : 1;
    s->in_w = (size_t)c->input.spatial[wi];
    s->out_h = two_d ? (size_t)c->output.spatial[0] : 1;
    s->out_w = (size_t)c->output.spatial[wi];
    s->out_c = Cout;
    s->pixels = s->batch * s->out_h * s->out_w;
    s->out_elems = s->pixels * Cout;
    s->activation = d->activation;

    float out_min = -INFINITY, out_max = INFINITY;
    switch (d->activation) {
    case CONVBLAS_LINEAR:
        s->kind = XP_ACT_NONE;
        break;
    case CONVBLAS_RELU:
        s->kind = XP_ACT_NONE, out_min = 0.0f;
        break;
    case CONVBLAS_RELU6:
        s->kind = XP_ACT_NONE, out_min = 0.0f, out_max = 6.0f;
        break;
    case CONVBLAS_SIGMOID:
        s->kind = XP_ACT_SIGMOID;
        break;
    case CONVBLAS_ELU:
        s->kind = XP_ACT_ELU;
        break;
    case CONVBLAS_LEAKY_RELU:
        s->kind = XP_ACT_LEAKY_RELU;
        break;
    case CONVBLAS_HARD_SWISH:
        s->kind = XP_ACT_HARDSWISH;
        break;
    case CONVBLAS_SWISH:
        s->kind = XP_ACT_SWISH;
        break;
    default:
        s->kind = XP_ACT_LOOP;
        break; /* tanh, gelu, softplus, hard_sigmoid */
    }
    const float *bias = d->use_bias ? c->bias : NULL;
    const size_t taps = (size_t)kh * kw;

    if (d->op == CONVBLAS_CONV) {
        /* Keras (kh, kw, C/G, F) -> XNNPACK [F][kh][kw][C/G] (F = G * F/G, group-major). */
        const size_t Cg = C / G;
        if (!(packed = malloc(taps * Cg * Cout * sizeof(float)))) {
            snprintf(why, why_size, "out of memory");
            goto fail;
        }
        for (size_t t = 0; t < taps; t++)
            for (size_t i = 0; i < Cg; i++)
                for (size_t f = 0; f < Cout; f++)
                    packed[(f * taps + t) * Cg + i] = c->kernel[(t * Cg + i) * Cout + f];
        TRY(xnn_create_convolution2d_nhwc_f32(pt, pr, pb, pl, kh, kw, sh, sw, dh, dw, (uint32_t)G,
                                              Cg, Cout / G, C, Cout, packed, bias, out_min, out_max,
                                              0, &s->conv),
            "convolution create");
    } else if (d->op == CONVBLAS_DEPTHWISE) {
        TRY(xnn_create_convolution2d_nhwc_f32(pt, pr, pb, pl, kh, kw, sh, sw, dh, dw, (uint32_t)C,
                                              1, M, C, C * M, c->kernel, bias, out_min, out_max,
                                              XNN_FLAG_DEPTHWISE_CONVOLUTION, &s->conv),
            "depthwise convolution create");
    } else {
        TRY(xnn_create_convolution2d_nhwc_f32(pt, pr, pb, pl, kh, kw, sh, sw, dh, dw, (uint32_t)C,
                                              1, M, C, C * M, c->kernel, NULL, -INFINITY, INFINITY,
                                              XNN_FLAG_DEPTHWISE_CONVOLUTION, &s->conv),
            "depthwise convolution create");
        /* pointwise (C*M, F) -> [F][C*M] */
        const size_t CM = C * M;
        if (!(pw_packed = malloc(CM * Cout * sizeof(float))) ||
            !(s->mid = alloc_floats(s->pixels * CM))) {
            snprintf(why, why_size, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < CM; i++)
            for (size_t f = 0; f < Cout; f++)
                pw_packed[f * CM + i] = c->pointwise_kernel[i * Cout + f];
        TRY(xnn_create_convolution2d_nhwc_f32(0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, CM, Cout, CM, Cout,
                                              pw_packed, bias, out_min, out_max, 0, &s->pw),
            "pointwise convolution create");
    }

    switch (s->kind) {
    case XP_ACT_SIGMOID:
    case XP_ACT_SWISH:
        TRY(xnn_create_sigmoid_nc_f32(Cout, Cout, Cout, 0, &s->act), "sigmoid create");
        break;
    case XP_ACT_ELU:
        TRY(xnn_create_elu_nc_f32(Cout, Cout, Cout,
                                  d->activation_alpha ? d->activation_alpha : 1.0f, 0, &s->act),
            "elu create");
        break;
    case XP_ACT_LEAKY_RELU:
        TRY(xnn_create_leaky_relu_nc_f32(
                Cout, Cout, Cout, d->activation_alpha ? d->activation_alpha : 0.2f, 0, &s->act),
            "leaky_relu create");
        break;
    case XP_ACT_HARDSWISH:
        TRY(xnn_create_hardswish_nc_f32(Cout, Cout, Cout, 0, &s->act), "hardswish create");
        break;
    default:
        break;
    }
    if (s->kind == XP_ACT_SWISH)
        TRY(xnn_create_multiply_nd_f32(-INFINITY, INFINITY, 0, &s->mul), "multiply create");
    if (s->act && !(s->pre = alloc_floats(s->out_elems))) {
        snprintf(why, why_size, "out of memory");
        goto fail;
    }
    free(packed);
    free(pw_packed);
    return s;
fail:
    free(packed);
    free(pw_packed);
    xp_release(s);
    return NULL;
}

/* Binds every operator to this run's arrays: conv reads input; the convolution result goes
 * to pre when an activation operator follows, else straight to output. */
static enum xnn_status xp_setup(xp_state *s, const float *input, float *output) {
    float *conv_out = s->act ? s->pre : output;
    enum xnn_status st;
    st = xnn_setup_convolution2d_nhwc_f32(s->conv, s->batch, s->in_h, s->in_w, input,
                                          s->pw ? s->mid : conv_out, s->pool);
    if (st == xnn_status_success && s->pw)
        st = xnn_setup_convolution2d_nhwc_f32(s->pw, s->batch, s->out_h, s->out_w, s->mid, conv_out,
                                              s->pool);
    if (st != xnn_status_success) return st;
    switch (s->kind) {
    case XP_ACT_SIGMOID:
    case XP_ACT_SWISH:
        st = xnn_setup_sigmoid_nc_f32(s->act, s->pixels, s->pre, output, s->pool);
        break;
    case XP_ACT_ELU:
        st = xnn_setup_elu_nc_f32(s->act, s->pixels, s->pre, output, s->pool);
        break;
    case XP_ACT_LEAKY_RELU:
        st = xnn_setup_leaky_relu_nc_f32(s->act, s->pixels, s->pre, output, s->pool);
        break;
    case XP_ACT_HARDSWISH:
        st = xnn_setup_hardswish_nc_f32(s->act, s->pixels, s->pre, output, s->pool);
        break;
    default:
        break;
    }
    if (st == xnn_status_success && s->mul) {
        /* output = pre * sigmoid(pre), elementwise, in place on output */
        size_t shape[1] = {s->out_elems};
        st = xnn_setup_multiply_nd_f32(s->mul, 1, shape, 1, shape, s->pre, output, output, s->pool);
    }
    return st;
}

typedef struct xp_loop_ctx {
    float *y;
    convblas_activation act;
} xp_loop_ctx;

/* The activations this XNNPACK has no operator for, in place, on [start, start + n). */
static void xp_loop(void *context, size_t start, size_t n) {
    const xp_loop_ctx *ctx = context;
    float *y = ctx->y + start;
    switch (ctx->act) {
    case CONVBLAS_TANH:
        for (size_t i = 0; i < n; i++) y[i] = tanhf(y[i]);
        break;
    case CONVBLAS_GELU:
        for (size_t i = 0; i < n; i++)
            y[i] = 0.5f * y[i] * (1.0f + erff(y[i] * 0.70710678118654752f));
        break;
    case CONVBLAS_SOFTPLUS:
        for (size_t i = 0; i < n; i++) {
            float x = y[i];
            y[i] = (x > 0.0f ? x : 0.0f) + log1pf(expf(-fabsf(x)));
        }
        break;
    case CONVBLAS_HARD_SIGMOID:
        for (size_t i = 0; i < n; i++) y[i] = fminf(fmaxf(0.2f * y[i] + 0.5f, 0.0f), 1.0f);
        break;
    default:
        break;
    }
}

static int xp_run(void *state, const float *input, float *output) {
    xp_state *s = state;
    if (!s->bound || input != s->bound_input || output != s->bound_output) {
        s->bound = false;
        if (xp_setup(s, input, output) != xnn_status_success) return -1;
        s->bound = true;
        s->bound_input = input;
        s->bound_output = output;
    }
    if (xnn_run_operator(s->conv, s->pool) != xnn_status_success) return -1;
    if (s->pw && xnn_run_operator(s->pw, s->pool) != xnn_status_success) return -1;
    if (s->act && xnn_run_operator(s->act, s->pool) != xnn_status_success) return -1;
    if (s->mul && xnn_run_operator(s->mul, s->pool) != xnn_status_success) return -1;
    if (s->kind == XP_ACT_LOOP) {
        xp_loop_ctx ctx = {output, s->activation};
        pthreadpool_parallelize_1d_tile_1d(s->pool, xp_loop, &ctx, s->out_elems, 4096, 0);
    }
    return 0;
}

const bench_peer bench_peer_xnnpack = {
    .name = "XNNPACK",
    .version = xp_version,
    .prepare = xp_prepare,
    .run = xp_run,
    .release = xp_release,
};

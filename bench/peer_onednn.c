/* The oneDNN peer: the layer as a oneDNN user with Keras-layout tensors would run it.
 *
 * Mapping (one convolution primitive per stage, forward_inference, direct algorithm):
 *  - Every layer is 2D: a 1D layer has height 1, as TensorFlow's conv1d does it; (N, L, C)
 *    is (N, 1, L, C) in memory, so the arrays are the same. oneDNN 2.6 has its direct
 *    depthwise kernels (brdgmm_dw, jit_dw) for 2D only; given 3-D tensors it falls back to
 *    im2col + GEMM, e.g. 15 ms instead of 0.4 ms for conformer_dw.
 *  - src and dst: the caller's plain arrays, nhwc for channels_last and nchw for
 *    channels_first. When oneDNN has only a GEMM-based (im2col) implementation for the
 *    spatial stage on that plain layout (it is so for plain nchw with every direct kernel,
 *    and for a few nhwc cases such as quartz_c2's dilated depthwise), the peer asks oneDNN
 *    for its own choice of layout ('any') instead, as frameworks do, and reorders the input
 *    into it and the output back inside run (timed); if oneDNN picks the plain layout anyway,
 *    no reorder is made.
 *  - CONV: weights oihw (groups 1) or goihw (groups G, o = F/G, i = C/G). The Keras kernel
 *    (k..., C/G, F) is hwio, or hwigo with groups, as a user memory reordered once into the
 *    format the primitive picked ('any').
 *  - DEPTHWISE: a grouped convolution with groups = C, i = 1, o = depth_multiplier; the
 *    Keras depthwise kernel (k..., C, M) is hwigo (output channel c * M + m).
 *  - SEPARABLE: that depthwise primitive (no bias, no activation) into an intermediate
 *    buffer in the layout the depthwise primitive produces, then a 1x1 convolution whose
 *    weights are the pointwise kernel (1..., C*M, F), i.e. hwio; bias and activation belong
 *    to the second one.
 *  - Padding per spatial dimension, from the Keras rules: VALID 0/0; SAME pad_total split
 *    floor(total / 2) before, the rest after (TensorFlow's rule); CAUSAL ek - 1 before.
 *    Dilation is oneDNN's zero-based d - 1. Strides with dilation are passed as they are.
 *  - Bias: the primitive's bias argument (dims {out_channels}, plain).
 *  - Activation: eltwise post-ops on the last primitive (see append_activation).
 *
 * Untimed (prepare): primitive descriptors and primitives, the one-time weight reorders,
 * the bias copy, the user-mode scratchpads, the intermediate buffer and the buffers for
 * oneDNN's own layouts. Timed (run): setting the src/dst data handles, the input reorder
 * (if any), executing the primitive(s), the output reorder (if any), waiting on the stream.
 *
 * Threads: this libdnnl is built on OpenMP, where a primitive uses omp_get_max_threads() of
 * the calling thread both when it is created (blocking decisions) and when it runs. So
 * prepare and run set omp_set_num_threads(threads) around their oneDNN calls and restore
 * the caller's value afterwards. This file needs OpenMP's header and runtime (-fopenmp, or
 * meson's dependency('openmp')). */
#include "peer.h"

#include <dnnl.h>
#include <dnnl_debug.h>
#include <omp.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct onednn_stage {
    dnnl_primitive_t prim;
    dnnl_memory_t weights;  /* in the primitive's format, reordered once in prepare */
    dnnl_memory_t scratch;  /* the primitive's user-mode scratchpad; NULL when it needs none */
    dnnl_memory_t src, dst; /* borrowed from the state */
    dnnl_memory_t bias;     /* borrowed; NULL: no bias on this stage */
} onednn_stage;

typedef struct onednn_state {
    int threads;
    int stages; /* 1, or 2 for SEPARABLE */
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_memory_desc_t src_md, dst_md; /* the caller's plain layouts */
    dnnl_memory_t src, dst;            /* the caller's arrays: handles set in run */
    dnnl_memory_t bias;
    /* what build() makes */
    dnnl_memory_t src_own, dst_own; /* oneDNN's own layouts when not the plain ones, else NULL */
    dnnl_primitive_t reorder_in, reorder_out; /* src -> src_own, dst_own -> dst (timed) */
    dnnl_memory_t mid;                        /* SEPARABLE: the depthwise output */
    onednn_stage stage[2];
} onednn_state;

/* The geometry of the layer in oneDNN's terms, from the case. */
typedef struct onednn_geom {
    dnnl_dims_t src_dims, dst_dims, mid_dims, w_dims, pw_dims;
    int w_ndims;
    dnnl_format_tag_t w_tag;
    dnnl_dims_t strides, dilates, pad_l, pad_r;
} onednn_geom;

static const char *onednn_version(void) {
    static char text[64];
    const dnnl_version_t *v = dnnl_version();
    snprintf(text, sizeof text, "%d.%d.%d", v->major, v->minor, v->patch);
    return text;
}

/* activation(x) after the bias, as eltwise post-ops (oneDNN 2.6 names):
 *  linear: none; relu: relu(alpha 0); relu6: clip [0, 6]; sigmoid: logistic; tanh: tanh;
 *  gelu: gelu_erf (the exact form); swish: swish with alpha 1 (x * sigmoid(x));
 *  elu: elu(alpha, default 1); softplus: soft_relu (log(1 + e^x)); hard_sigmoid: linear
 *  0.2 x + 0.5 then clip [0, 1] (2.6 has no hardsigmoid); hard_swish: hardswish
 *  (x * relu6(x + 3) / 6); leaky_relu: relu with alpha (default 0.2). */
static dnnl_status_t append_activation(dnnl_post_ops_t po, convblas_activation act, float alpha) {
    switch (act) {
    case CONVBLAS_LINEAR:
        return dnnl_success;
    case CONVBLAS_RELU:
        return dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0, 0);
    case CONVBLAS_RELU6:
        return dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_clip, 0, 6);
    case CONVBLAS_SIGMOID:
        return dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_logistic, 0, 0);
    case CONVBLAS_TANH:
        return dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_tanh, 0, 0);
    case CONVBLAS_GELU:
        return dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_erf, 0, 0);
    case CONVBLAS_SWISH:
        return dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_swish, 1, 0);
    case CONVBLAS_ELU:
        return dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_elu, alpha ? alpha : 1.0f, 0);
    case CONVBLAS_SOFTPLUS:
        return dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_soft_relu, 0, 0);
    case CONVBLAS_HARD_SIGMOID: {
        dnnl_status_t st = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_linear, 0.2f, 0.5f);
        if (st != dnnl_success) return st;
        return dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_clip, 0, 1);
    }
    case CONVBLAS_HARD_SWISH:
        return dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_hardswish, 0, 0);
    case CONVBLAS_LEAKY_RELU:
        return dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, alpha ? alpha : 0.2f, 0);
    }
    return dnnl_unimplemented;
}

#define TRY(call, what)                                                                            \
    do {                                                                                           \
        dnnl_status_t st_ = (call);                                                                \
        if (st_ != dnnl_success) {                                                                 \
            snprintf(why, why_size, "oneDNN %s: %s", what, dnnl_status2str(st_));                  \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

/* One convolution stage: the primitive (weights 'any'), its weights reordered once from the
 * user's Keras-layout array, its scratchpad. src_md/dst_md are plain or 'any'; the formats
 * the primitive settled on are returned in src_out/dst_out, and in *gemm whether oneDNN
 * picked a GEMM-based implementation. */
static int make_stage(onednn_state *s, onednn_stage *stage, const dnnl_memory_desc_t *src_md,
                      const dnnl_memory_desc_t *dst_md, int w_ndims, const dnnl_dims_t w_dims,
                      dnnl_format_tag_t w_user_tag, const float *kernel,
                      const dnnl_memory_desc_t *bias_md, const dnnl_dims_t strides,
                      const dnnl_dims_t dilates, const dnnl_dims_t pad_l, const dnnl_dims_t pad_r,
                      const convblas_layer_desc *d, dnnl_memory_desc_t *src_out,
                      dnnl_memory_desc_t *dst_out, bool *gemm, char *why, size_t why_size) {
    dnnl_memory_desc_t w_any, w_user;
    dnnl_convolution_desc_t cd;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL, rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_memory_t user = NULL;
    const char *impl = NULL;

    TRY(dnnl_memory_desc_init_by_tag(&w_any, w_ndims, w_dims, dnnl_f32, dnnl_format_tag_any),
        "weights descriptor");
    TRY(dnnl_memory_desc_init_by_tag(&w_user, w_ndims, w_dims, dnnl_f32, w_user_tag),
        "user weights descriptor");
    TRY(dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                                   dnnl_convolution_direct, src_md, &w_any, bias_md,
                                                   dst_md, strides, dilates, pad_l, pad_r),
        "convolution descriptor");
    TRY(dnnl_primitive_attr_create(&attr), "attribute");
    TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad");
    if (d) { /* the last stage: activation post-ops */
        TRY(dnnl_post_ops_create(&po), "post-ops");
        TRY(append_activation(po, d->activation, d->activation_alpha), "activation post-op");
        TRY(dnnl_primitive_attr_set_post_ops(attr, po), "post-ops");
    }
    TRY(dnnl_primitive_desc_create(&pd, &cd, attr, s->engine, NULL), "convolution");
    TRY(dnnl_primitive_create(&stage->prim, pd), "convolution primitive");
    *src_out = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    *dst_out = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    TRY(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl), "implementation");
    *gemm = impl && strstr(impl, "gemm");

    /* The one-time weight reorder: Keras layout -> the primitive's format. */
    const dnnl_memory_desc_t *w_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    TRY(dnnl_memory_create(&stage->weights, w_md, s->engine, DNNL_MEMORY_ALLOCATE),
        "weights memory");
    TRY(dnnl_memory_create(&user, &w_user, s->engine, (void *)kernel), "user weights memory");
    TRY(dnnl_reorder_primitive_desc_create(&rpd, &w_user, s->engine, w_md, s->engine, NULL),
        "weights reorder");
    TRY(dnnl_primitive_create(&reorder, rpd), "weights reorder primitive");
    dnnl_exec_arg_t rargs[2] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, stage->weights}};
    TRY(dnnl_primitive_execute(reorder, s->stream, 2, rargs), "weights reorder");
    TRY(dnnl_stream_wait(s->stream), "stream wait");

    const dnnl_memory_desc_t *sp_md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (sp_md && dnnl_memory_desc_get_size(sp_md) > 0)
        TRY(dnnl_memory_create(&stage->scratch, sp_md, s->engine, DNNL_MEMORY_ALLOCATE),
            "scratchpad memory");

    dnnl_primitive_destroy(reorder);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_destroy(user);
    dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return 0;
fail:
    if (reorder) dnnl_primitive_destroy(reorder);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (user) dnnl_memory_destroy(user);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return -1;
}

/* A reorder of activations, run in run() (timed). */
static int make_reorder(onednn_state *s, const dnnl_memory_desc_t *from,
                        const dnnl_memory_desc_t *to, dnnl_primitive_t *prim, char *why,
                        size_t why_size) {
    dnnl_primitive_desc_t rpd = NULL;
    TRY(dnnl_reorder_primitive_desc_create(&rpd, from, s->engine, to, s->engine, NULL),
        "activation reorder");
    TRY(dnnl_primitive_create(prim, rpd), "activation reorder primitive");
    dnnl_primitive_desc_destroy(rpd);
    return 0;
fail:
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    return -1;
}

/* Frees what build() made. */
static void clear_build(onednn_state *s) {
    for (int i = 0; i < 2; i++) {
        if (s->stage[i].prim) dnnl_primitive_destroy(s->stage[i].prim);
        if (s->stage[i].weights) dnnl_memory_destroy(s->stage[i].weights);
        if (s->stage[i].scratch) dnnl_memory_destroy(s->stage[i].scratch);
    }
    memset(s->stage, 0, sizeof s->stage);
    if (s->reorder_in) dnnl_primitive_destroy(s->reorder_in);
    if (s->reorder_out) dnnl_primitive_destroy(s->reorder_out);
    if (s->src_own) dnnl_memory_destroy(s->src_own);
    if (s->dst_own) dnnl_memory_destroy(s->dst_own);
    if (s->mid) dnnl_memory_destroy(s->mid);
    s->reorder_in = s->reorder_out = NULL;
    s->src_own = s->dst_own = s->mid = NULL;
    s->stages = 0;
}

static void onednn_release(void *state) {
    onednn_state *s = state;
    if (!s) return;
    clear_build(s);
    if (s->src) dnnl_memory_destroy(s->src);
    if (s->dst) dnnl_memory_destroy(s->dst);
    if (s->bias) dnnl_memory_destroy(s->bias);
    if (s->stream) dnnl_stream_destroy(s->stream);
    if (s->engine) dnnl_engine_destroy(s->engine);
    free(s);
}

/* The stages, with src/dst in the plain layouts (own == false) or in oneDNN's choice (own),
 * then the reorders from and to the caller's layouts where the choice differs. *gemm: the
 * spatial (first) stage is GEMM-based. */
static int build(onednn_state *s, const bench_case *c, const onednn_geom *g, bool own, bool *gemm,
                 char *why, size_t why_size) {
    const convblas_layer_desc *d = &c->desc;
    const dnnl_format_tag_t plain =
        d->data_format == CONVBLAS_CHANNELS_LAST ? dnnl_nhwc : dnnl_nchw;
    const dnnl_format_tag_t tag = own ? dnnl_format_tag_any : plain;
    const dnnl_memory_desc_t *bias_md = NULL;
    dnnl_memory_desc_t src_md, dst_md, mid_md, got_src, got_dst, got_mid, unused;
    const dnnl_dims_t ones = {1, 1}, zeros = {0, 0};
    bool pw_gemm;

    if (s->bias) TRY(dnnl_memory_get_memory_desc(s->bias, &bias_md), "bias descriptor");
    TRY(dnnl_memory_desc_init_by_tag(&src_md, 4, g->src_dims, dnnl_f32, tag), "src descriptor");
    TRY(dnnl_memory_desc_init_by_tag(&dst_md, 4, g->dst_dims, dnnl_f32, tag), "dst descriptor");
    if (d->op != CONVBLAS_SEPARABLE) {
        s->stages = 1;
        if (make_stage(s, &s->stage[0], &src_md, &dst_md, g->w_ndims, g->w_dims, g->w_tag,
                       c->kernel, bias_md, g->strides, g->dilates, g->pad_l, g->pad_r, d, &got_src,
                       &got_dst, gemm, why, why_size))
            goto fail;
    } else {
        s->stages = 2;
        TRY(dnnl_memory_desc_init_by_tag(&mid_md, 4, g->mid_dims, dnnl_f32, tag),
            "intermediate descriptor");
        if (make_stage(s, &s->stage[0], &src_md, &mid_md, g->w_ndims, g->w_dims, g->w_tag,
                       c->kernel, NULL, g->strides, g->dilates, g->pad_l, g->pad_r, NULL, &got_src,
                       &got_mid, gemm, why, why_size))
            goto fail;
        TRY(dnnl_memory_create(&s->mid, &got_mid, s->engine, DNNL_MEMORY_ALLOCATE),
            "intermediate memory");
        if (make_stage(s, &s->stage[1], &got_mid, &dst_md, 4, g->pw_dims, dnnl_hwio,
                       c->pointwise_kernel, bias_md, ones, zeros, zeros, zeros, d, &unused,
                       &got_dst, &pw_gemm, why, why_size))
            goto fail;
    }

    dnnl_memory_t first_src = s->src, last_dst = s->dst;
    if (!dnnl_memory_desc_equal(&got_src, &s->src_md)) {
        TRY(dnnl_memory_create(&s->src_own, &got_src, s->engine, DNNL_MEMORY_ALLOCATE),
            "src memory");
        if (make_reorder(s, &s->src_md, &got_src, &s->reorder_in, why, why_size)) goto fail;
        first_src = s->src_own;
    }
    if (!dnnl_memory_desc_equal(&got_dst, &s->dst_md)) {
        TRY(dnnl_memory_create(&s->dst_own, &got_dst, s->engine, DNNL_MEMORY_ALLOCATE),
            "dst memory");
        if (make_reorder(s, &got_dst, &s->dst_md, &s->reorder_out, why, why_size)) goto fail;
        last_dst = s->dst_own;
    }
    s->stage[0].src = first_src;
    s->stage[0].dst = s->stages == 2 ? s->mid : last_dst;
    if (s->stages == 2) s->stage[1].src = s->mid, s->stage[1].dst = last_dst;
    s->stage[s->stages - 1].bias = s->bias;
    return 0;
fail:
    clear_build(s);
    return -1;
}

/* Pads of one spatial dimension by the Keras rules (design section 2). */
static void keras_pads(const convblas_layer_desc *d, int64_t in, int64_t out, int64_t k,
                       int64_t stride, int64_t dil, dnnl_dim_t *before, dnnl_dim_t *after) {
    int64_t ek = (k - 1) * dil + 1;
    if (d->padding == CONVBLAS_VALID) {
        *before = 0;
        *after = 0;
    } else if (d->padding == CONVBLAS_CAUSAL) {
        *before = ek - 1;
        *after = 0;
    } else {
        int64_t total = (out - 1) * stride + ek - in;
        if (total < 0) total = 0;
        *before = total / 2;
        *after = total - *before;
    }
}

static void geometry(const bench_case *c, onednn_geom *g) {
    const convblas_layer_desc *d = &c->desc;
    const int off = 2 - d->rank; /* a 1D layer's index 0 is the width, index 1 */
    const int64_t N = c->input.batch, C = c->input.channels, Cout = c->output.channels;
    const int64_t M = d->depth_multiplier > 0 ? d->depth_multiplier : 1;
    const int64_t G = d->op == CONVBLAS_CONV && d->groups > 1 ? d->groups : 1;
    dnnl_dims_t in_sp = {1, 1}, out_sp = {1, 1}, ks = {1, 1};

    memset(g, 0, sizeof *g);
    for (int i = 0; i < 2; i++) g->strides[i] = 1;
    for (int j = 0; j < d->rank; j++) {
        int i = j + off;
        int64_t st = d->strides[j] > 0 ? d->strides[j] : 1;
        int64_t dl = d->dilation_rate[j] > 0 ? d->dilation_rate[j] : 1;
        in_sp[i] = c->input.spatial[j];
        out_sp[i] = c->output.spatial[j];
        ks[i] = d->kernel_size[j];
        g->strides[i] = st;
        g->dilates[i] = dl - 1;
        keras_pads(d, in_sp[i], out_sp[i], ks[i], st, dl, &g->pad_l[i], &g->pad_r[i]);
    }
    const dnnl_dims_t src = {N, C, in_sp[0], in_sp[1]}, dst = {N, Cout, out_sp[0], out_sp[1]},
                      mid = {N, C * M, out_sp[0], out_sp[1]}, pw = {Cout, C * M, 1, 1};
    memcpy(g->src_dims, src, sizeof src);
    memcpy(g->dst_dims, dst, sizeof dst);
    memcpy(g->mid_dims, mid, sizeof mid);
    memcpy(g->pw_dims, pw, sizeof pw);
    /* Weights: logical dims (o, i, h, w) or (g, o, i, h, w); the user tags name the Keras
     * layouts: (h, w, i, o) = hwio, (h, w, i, g, o) = hwigo. */
    if (d->op == CONVBLAS_CONV && G == 1) {
        const dnnl_dims_t w = {Cout, C, ks[0], ks[1]};
        memcpy(g->w_dims, w, sizeof w);
        g->w_ndims = 4;
        g->w_tag = dnnl_hwio;
    } else if (d->op == CONVBLAS_CONV) {
        const dnnl_dims_t w = {G, Cout / G, C / G, ks[0], ks[1]};
        memcpy(g->w_dims, w, sizeof w);
        g->w_ndims = 5;
        g->w_tag = dnnl_hwigo;
    } else { /* DEPTHWISE and SEPARABLE's first stage: C groups of 1 -> M */
        const dnnl_dims_t w = {C, M, 1, ks[0], ks[1]};
        memcpy(g->w_dims, w, sizeof w);
        g->w_ndims = 5;
        g->w_tag = dnnl_hwigo;
    }
}

static void *onednn_prepare(const bench_case *c, int threads, char *why, size_t why_size) {
    const convblas_layer_desc *d = &c->desc;
    char dummy[1];
    if (!why || why_size == 0) why = dummy, why_size = sizeof dummy;
    if (threads < 1) {
        snprintf(why, why_size, "thread count must be positive");
        return NULL;
    }
    onednn_state *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    s->threads = threads;
    int prev_threads = omp_get_max_threads();
    omp_set_num_threads(threads);

    onednn_geom g;
    geometry(c, &g);
    const dnnl_format_tag_t plain =
        d->data_format == CONVBLAS_CHANNELS_LAST ? dnnl_nhwc : dnnl_nchw;
    const int64_t Cout = c->output.channels;
    TRY(dnnl_engine_create(&s->engine, dnnl_cpu, 0), "engine");
    TRY(dnnl_stream_create(&s->stream, s->engine, dnnl_stream_default_flags), "stream");
    TRY(dnnl_memory_desc_init_by_tag(&s->src_md, 4, g.src_dims, dnnl_f32, plain), "src descriptor");
    TRY(dnnl_memory_desc_init_by_tag(&s->dst_md, 4, g.dst_dims, dnnl_f32, plain), "dst descriptor");
    TRY(dnnl_memory_create(&s->src, &s->src_md, s->engine, DNNL_MEMORY_NONE), "src memory");
    TRY(dnnl_memory_create(&s->dst, &s->dst_md, s->engine, DNNL_MEMORY_NONE), "dst memory");
    if (d->use_bias) {
        dnnl_memory_desc_t bias_md;
        const dnnl_dims_t bias_dims = {Cout};
        void *handle = NULL;
        TRY(dnnl_memory_desc_init_by_tag(&bias_md, 1, bias_dims, dnnl_f32, dnnl_a),
            "bias descriptor");
        TRY(dnnl_memory_create(&s->bias, &bias_md, s->engine, DNNL_MEMORY_ALLOCATE), "bias memory");
        TRY(dnnl_memory_get_data_handle(s->bias, &handle), "bias memory");
        memcpy(handle, c->bias, (size_t)Cout * sizeof(float));
    }

    /* Plain layouts first; oneDNN's own when that is only im2col + GEMM (see the top). A
     * 1x1 stride-1 kernel needs no im2col: its GEMM on the plain layout is the right one. */
    bool gemm = false;
    const bool im2col = g.w_dims[g.w_ndims - 1] * g.w_dims[g.w_ndims - 2] > 1 || g.strides[0] > 1 ||
                        g.strides[1] > 1;
    if (build(s, c, &g, false, &gemm, why, why_size)) goto fail;
    if (gemm && im2col) {
        char ignored[256];
        clear_build(s);
        if (build(s, c, &g, true, &gemm, ignored, sizeof ignored) &&
            build(s, c, &g, false, &gemm, why, why_size))
            goto fail;
    }
    omp_set_num_threads(prev_threads);
    return s;
fail:
    omp_set_num_threads(prev_threads);
    onednn_release(s);
    return NULL;
}

static int onednn_run(void *state, const float *input, float *output) {
    onednn_state *s = state;
    int prev_threads = omp_get_max_threads();
    if (prev_threads != s->threads) omp_set_num_threads(s->threads);
    int rc = 0;
    if (dnnl_memory_set_data_handle(s->src, (void *)input) != dnnl_success ||
        dnnl_memory_set_data_handle(s->dst, output) != dnnl_success)
        rc = -1;
    if (rc == 0 && s->reorder_in) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, s->src}, {DNNL_ARG_TO, s->src_own}};
        if (dnnl_primitive_execute(s->reorder_in, s->stream, 2, args) != dnnl_success) rc = -1;
    }
    for (int i = 0; i < s->stages && rc == 0; i++) {
        const onednn_stage *st = &s->stage[i];
        dnnl_exec_arg_t args[5] = {
            {DNNL_ARG_SRC, st->src}, {DNNL_ARG_WEIGHTS, st->weights}, {DNNL_ARG_DST, st->dst}};
        int n = 3;
        if (st->bias) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, st->bias};
        if (st->scratch) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, st->scratch};
        if (dnnl_primitive_execute(st->prim, s->stream, n, args) != dnnl_success) rc = -1;
    }
    if (rc == 0 && s->reorder_out) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, s->dst_own}, {DNNL_ARG_TO, s->dst}};
        if (dnnl_primitive_execute(s->reorder_out, s->stream, 2, args) != dnnl_success) rc = -1;
    }
    if (dnnl_stream_wait(s->stream) != dnnl_success) rc = -1;
    if (prev_threads != s->threads) omp_set_num_threads(prev_threads);
    return rc;
}

const bench_peer bench_peer_onednn = {
    .name = "oneDNN",
    .version = onednn_version,
    .prepare = onednn_prepare,
    .run = onednn_run,
    .release = onednn_release,
};

/* Descriptor and input shape -> checked problem: every validation and every derived size
 * (output shape, padding, element counts) happens here, once. */
#include "convblas_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define INVALID CONVBLAS_INVALID_ARGUMENT

static const char *padding_name(convblas_padding p) {
    return p == CONVBLAS_VALID ? "VALID" : p == CONVBLAS_SAME ? "SAME" : "CAUSAL";
}

static convblas_status check_enums(const convblas_layer_desc *d) {
    if (d->op != CONVBLAS_CONV && d->op != CONVBLAS_DEPTHWISE && d->op != CONVBLAS_SEPARABLE)
        return cb_fail(INVALID,
                       "op (%d) must be CONVBLAS_CONV, CONVBLAS_DEPTHWISE or "
                       "CONVBLAS_SEPARABLE",
                       (int)d->op);
    if (d->rank != 1 && d->rank != 2) return cb_fail(INVALID, "rank (%d) must be 1 or 2", d->rank);
    if (d->padding != CONVBLAS_VALID && d->padding != CONVBLAS_SAME &&
        d->padding != CONVBLAS_CAUSAL)
        return cb_fail(INVALID,
                       "padding (%d) must be CONVBLAS_VALID, CONVBLAS_SAME or "
                       "CONVBLAS_CAUSAL",
                       (int)d->padding);
    if (d->padding == CONVBLAS_CAUSAL && d->rank != 1)
        return cb_fail(INVALID, "padding CONVBLAS_CAUSAL needs rank 1 (rank is %d)", d->rank);
    if (d->data_format != CONVBLAS_CHANNELS_LAST && d->data_format != CONVBLAS_CHANNELS_FIRST)
        return cb_fail(INVALID,
                       "data_format (%d) must be CONVBLAS_CHANNELS_LAST or "
                       "CONVBLAS_CHANNELS_FIRST",
                       (int)d->data_format);
    if ((int)d->activation < (int)CONVBLAS_LINEAR || (int)d->activation > (int)CONVBLAS_LEAKY_RELU)
        return cb_fail(INVALID, "activation (%d) is not a convblas_activation value",
                       (int)d->activation);
    if (!isfinite(d->activation_alpha))
        return cb_fail(INVALID, "activation_alpha (%g) must be a finite number",
                       (double)d->activation_alpha);
    return CONVBLAS_OK;
}

/* kernel, strides, dilation of each spatial dimension; 0 strides/dilation mean 1. */
static convblas_status check_window(const convblas_layer_desc *d) {
    for (int i = 0; i < d->rank; i++) {
        if (d->kernel_size[i] <= 0)
            return cb_fail(INVALID, "kernel_size[%d] (%lld) must be > 0", i,
                           (long long)d->kernel_size[i]);
        if (d->strides[i] < 0)
            return cb_fail(INVALID, "strides[%d] (%lld) must be >= 1 (0 means 1)", i,
                           (long long)d->strides[i]);
        if (d->dilation_rate[i] < 0)
            return cb_fail(INVALID, "dilation_rate[%d] (%lld) must be >= 1 (0 means 1)", i,
                           (long long)d->dilation_rate[i]);
    }
    return CONVBLAS_OK;
}

static convblas_status check_channels(const convblas_layer_desc *d, int64_t channels) {
    if (d->op != CONVBLAS_DEPTHWISE && d->filters <= 0)
        return cb_fail(INVALID, "filters (%lld) must be > 0", (long long)d->filters);
    if (d->op == CONVBLAS_CONV) {
        if (d->groups < 0)
            return cb_fail(INVALID, "groups (%lld) must be >= 1 (0 means 1)", (long long)d->groups);
        int64_t g = d->groups ? d->groups : 1;
        if (channels % g != 0)
            return cb_fail(INVALID, "groups (%lld) must divide channels (%lld)", (long long)g,
                           (long long)channels);
        if (d->filters % g != 0)
            return cb_fail(INVALID, "groups (%lld) must divide filters (%lld)", (long long)g,
                           (long long)d->filters);
    } else if (d->depth_multiplier < 0) {
        return cb_fail(INVALID, "depth_multiplier (%lld) must be >= 1 (0 means 1)",
                       (long long)d->depth_multiplier);
    }
    return CONVBLAS_OK;
}

static convblas_status check_input(const convblas_layer_desc *d, const convblas_shape *s) {
    if (s->batch < 0)
        return cb_fail(INVALID, "input batch (%lld) must be >= 0", (long long)s->batch);
    for (int i = 0; i < d->rank; i++)
        if (s->spatial[i] <= 0)
            return cb_fail(INVALID, "input spatial[%d] (%lld) must be > 0", i,
                           (long long)s->spatial[i]);
    if (s->channels <= 0)
        return cb_fail(INVALID, "input channels (%lld) must be > 0", (long long)s->channels);
    return CONVBLAS_OK;
}

/* One spatial dimension: output length and padding, by design section 2. */
static convblas_status derive_dim(const convblas_layer_desc *d, int i, int64_t in, int64_t *out,
                                  int64_t *pad_before, int64_t *pad_after) {
    int64_t k = d->kernel_size[i];
    int64_t s = d->strides[i] ? d->strides[i] : 1;
    int64_t dil = d->dilation_rate[i] ? d->dilation_rate[i] : 1;
    int64_t ek;
    if (!cb_mul(k - 1, dil, &ek) || !cb_add(ek, 1, &ek))
        return cb_fail(CONVBLAS_TOO_LARGE,
                       "the effective kernel of dimension %d ((kernel_size %lld - 1) * "
                       "dilation_rate %lld + 1) overflows int64_t",
                       i, (long long)k, (long long)dil);
    if (d->padding == CONVBLAS_VALID) {
        if (in < ek)
            return cb_fail(INVALID,
                           "input spatial[%d] (%lld) is shorter than the effective kernel "
                           "(%lld = (kernel_size %lld - 1) * dilation_rate %lld + 1) with "
                           "padding %s; use SAME or a longer input",
                           i, (long long)in, (long long)ek, (long long)k, (long long)dil,
                           padding_name(d->padding));
        *out = (in - ek) / s + 1;
        *pad_before = *pad_after = 0;
        return CONVBLAS_OK;
    }
    *out = in / s + (in % s != 0);
    if (d->padding == CONVBLAS_CAUSAL) {
        *pad_before = ek - 1;
        *pad_after = 0;
        return CONVBLAS_OK;
    }
    /* (out - 1) * s + ek - in cannot overflow: (out - 1) * s < in and ek fits. */
    int64_t total = cb_max((*out - 1) * s + (ek - in), 0);
    *pad_before = total / 2;
    *pad_after = total - *pad_before;
    return CONVBLAS_OK;
}

static convblas_status too_large(const char *what, const int64_t *factors, int n) {
    char dims[160] = "";
    size_t used = 0;
    for (int i = 0; i < n && used < sizeof dims; i++)
        used += (size_t)snprintf(dims + used, sizeof dims - used, "%s%lld", i ? " x " : "",
                                 (long long)factors[i]);
    return cb_fail(CONVBLAS_TOO_LARGE,
                   "%s (%s elements) is too large: its byte count "
                   "overflows int64_t",
                   what, dims);
}

/* elems = product of the factors, with room to count its bytes. */
static bool count_elems(int64_t *elems, int n, const int64_t *factors) {
    int64_t e = 1;
    for (int i = 0; i < n; i++)
        if (!cb_mul(e, factors[i], &e)) return false;
    int64_t bytes;
    *elems = e;
    return cb_mul(e, (int64_t)sizeof(float), &bytes);
}

static convblas_status derive_sizes(cb_problem *p) {
    int64_t in_f[] = {p->batch, p->in_h, p->in_w, p->channels};
    if (!count_elems(&p->in_elems, 4, in_f)) return too_large("the input", in_f, 4);
    if (!count_elems(&p->in_plane, 2, in_f + 1)) return too_large("the input", in_f, 4);
    int64_t mid_f[] = {p->groups, p->group_out};
    if (!count_elems(&p->mid_channels, 2, mid_f))
        return too_large("the output channel count", mid_f, 2);
    if (!p->has_pointwise) p->out_channels = p->mid_channels;
    int64_t out_f[] = {p->batch, p->out_h, p->out_w, p->out_channels};
    if (!count_elems(&p->out_elems, 4, out_f)) return too_large("the output", out_f, 4);
    if (!count_elems(&p->out_plane, 2, out_f + 1)) return too_large("the output", out_f, 4);
    int64_t k_f[] = {p->k_h, p->k_w, p->group_in, p->mid_channels};
    if (!count_elems(&p->kernel_elems, 4, k_f)) return too_large("the kernel", k_f, 4);
    if (!count_elems(&p->taps, 2, k_f)) return too_large("the kernel", k_f, 4);
    int64_t pw_f[] = {p->mid_channels, p->has_pointwise ? p->out_channels : 0};
    if (!count_elems(&p->pointwise_elems, 2, pw_f))
        return too_large("the pointwise kernel", pw_f, 2);
    /* In double: only a figure for reports and cost models. */
    double positions = (double)p->batch * (double)p->out_plane;
    p->flops = 2.0 * positions * (double)p->mid_channels * (double)(p->taps * p->group_in);
    if (p->has_pointwise)
        p->flops += 2.0 * positions * (double)p->mid_channels * (double)p->out_channels;
    return CONVBLAS_OK;
}

static void resolve_layer(cb_problem *p, const convblas_layer_desc *d, const convblas_shape *s) {
    p->desc = *d;
    p->op = d->op;
    p->format = d->data_format;
    p->activation = d->activation;
    p->use_bias = d->use_bias;
    p->alpha = d->activation_alpha;
    if (p->alpha == 0.0f)
        p->alpha = d->activation == CONVBLAS_ELU          ? 1.0f
                   : d->activation == CONVBLAS_LEAKY_RELU ? 0.2f
                                                          : 0.0f;
    p->batch = s->batch;
    p->channels = s->channels;
    /* Rank 1 is the 2D case with height 1 and a 1-tap kernel along it. */
    int w = d->rank - 1;
    p->in_h = d->rank == 2 ? s->spatial[0] : 1;
    p->in_w = s->spatial[w];
    p->k_h = d->rank == 2 ? d->kernel_size[0] : 1;
    p->k_w = d->kernel_size[w];
    p->s_h = d->rank == 2 && d->strides[0] ? d->strides[0] : 1;
    p->s_w = d->strides[w] ? d->strides[w] : 1;
    p->d_h = d->rank == 2 && d->dilation_rate[0] ? d->dilation_rate[0] : 1;
    p->d_w = d->dilation_rate[w] ? d->dilation_rate[w] : 1;
    int64_t mult = d->depth_multiplier ? d->depth_multiplier : 1;
    if (d->op == CONVBLAS_CONV) {
        p->groups = d->groups ? d->groups : 1;
        p->group_in = s->channels / p->groups;
        p->group_out = d->filters / p->groups;
    } else {
        p->groups = s->channels;
        p->group_in = 1;
        p->group_out = mult;
    }
    p->has_pointwise = d->op == CONVBLAS_SEPARABLE;
    p->out_channels = d->op == CONVBLAS_DEPTHWISE ? 0 : d->filters; /* set in derive_sizes */
}

convblas_status cb_problem_init(cb_problem *p, const convblas_layer_desc *desc,
                                const convblas_shape *input) {
    if (!desc) return cb_fail(INVALID, "the layer descriptor (desc) is NULL");
    if (!input) return cb_fail(INVALID, "the input shape (input) is NULL");
    convblas_status st;
    if ((st = check_enums(desc)) || (st = check_window(desc)) || (st = check_input(desc, input)) ||
        (st = check_channels(desc, input->channels)))
        return st;
    memset(p, 0, sizeof *p);
    resolve_layer(p, desc, input);
    int64_t out[2] = {1, 1}, before[2] = {0, 0}, after[2] = {0, 0};
    for (int i = 0; i < desc->rank; i++)
        if ((st = derive_dim(desc, i, input->spatial[i], &out[i], &before[i], &after[i])))
            return st;
    int w = desc->rank - 1;
    p->out_h = desc->rank == 2 ? out[0] : 1;
    p->out_w = out[w];
    p->pad_top = desc->rank == 2 ? before[0] : 0;
    p->pad_bottom = desc->rank == 2 ? after[0] : 0;
    p->pad_left = before[w];
    p->pad_right = after[w];
    if ((st = derive_sizes(p))) return st;
    p->input = *input;
    if (desc->rank == 1) p->input.spatial[1] = 0;
    p->output = (convblas_shape){.batch = p->batch,
                                 .spatial = {out[0], desc->rank == 2 ? out[1] : 0},
                                 .channels = p->out_channels};
    return CONVBLAS_OK;
}

convblas_status convblas_output_shape(const convblas_layer_desc *desc, const convblas_shape *input,
                                      convblas_shape *output) {
    if (!output) return cb_fail(INVALID, "the output shape pointer (output) is NULL");
    cb_problem p;
    convblas_status st = cb_problem_init(&p, desc, input);
    if (st == CONVBLAS_OK) *output = p.output;
    return st;
}

#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

long tu_failures = 0;

int tu_finish(const char *test_name) {
    if (tu_failures) {
        printf("%s: FAILED (%ld failed checks)\n", test_name, tu_failures);
        return 1;
    }
    printf("%s: OK\n", test_name);
    return 0;
}

/* ---- PRNG ---- */

void tu_rng_seed(tu_rng *r, uint64_t seed) {
    r->state = seed ^ 0x5DEECE66DULL;
}

uint64_t tu_rng_next(tu_rng *r) {
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

int64_t tu_rng_int(tu_rng *r, int64_t lo, int64_t hi) {
    if (hi <= lo) return lo;
    uint64_t span = (uint64_t)(hi - lo) + 1;
    return lo + (int64_t)(tu_rng_next(r) % span);
}

double tu_rng_unit(tu_rng *r) {
    return (double)(tu_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

bool tu_rng_chance(tu_rng *r, double p) {
    return tu_rng_unit(r) < p;
}

void tu_fill(tu_rng *r, float *p, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * (float)tu_rng_unit(r);
}

/* ---- guarded buffers ---- */

static const uint32_t sentinel_bits = 0x7FC5A5A5u; /* a quiet NaN with a payload */

static void put_sentinel(float *p, size_t n) {
    for (size_t i = 0; i < n; i++) memcpy(p + i, &sentinel_bits, sizeof sentinel_bits);
}

static bool is_sentinel(const float *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, p + i, sizeof b);
        if (b != sentinel_bits) return false;
    }
    return true;
}

float *tu_guarded_alloc(size_t n) {
    float *base = malloc((n + 2 * TU_GUARD) * sizeof *base);
    if (!base) return NULL;
    put_sentinel(base, n + 2 * TU_GUARD);
    return base + TU_GUARD;
}

bool tu_guards_intact(const float *data, size_t n) {
    return is_sentinel(data - TU_GUARD, TU_GUARD) && is_sentinel(data + n, TU_GUARD);
}

void tu_guarded_free(float *data) {
    if (data) free(data - TU_GUARD);
}

/* ---- comparison ---- */

double tu_rel_error(const float *y, const float *ref, size_t n, size_t *worst) {
    double maxref = 0, maxdiff = 0;
    size_t wi = 0;
    bool bad = false;
    for (size_t i = 0; i < n; i++) {
        double r = ref[i], v = y[i];
        if (!isfinite(r)) { /* the reference is never expected to be, but be exact about it */
            if (!(isnan(r) ? isnan(v) : v == r)) {
                bad = true;
                wi = i;
            }
            continue;
        }
        if (fabs(r) > maxref) maxref = fabs(r);
        if (!isfinite(v)) {
            if (!bad) wi = i;
            bad = true;
            continue;
        }
        double diff = fabs(v - r);
        if (diff > maxdiff) {
            maxdiff = diff;
            if (!bad) wi = i;
        }
    }
    if (worst) *worst = wi;
    if (bad) return INFINITY;
    return maxdiff / (maxref > 1 ? maxref : 1);
}

/* ---- printing ---- */

const char *tu_op_name(convblas_op op) {
    switch (op) {
    case CONVBLAS_CONV:
        return "CONVBLAS_CONV";
    case CONVBLAS_DEPTHWISE:
        return "CONVBLAS_DEPTHWISE";
    case CONVBLAS_SEPARABLE:
        return "CONVBLAS_SEPARABLE";
    }
    return "(convblas_op)?";
}

const char *tu_padding_name(convblas_padding p) {
    switch (p) {
    case CONVBLAS_VALID:
        return "CONVBLAS_VALID";
    case CONVBLAS_SAME:
        return "CONVBLAS_SAME";
    case CONVBLAS_CAUSAL:
        return "CONVBLAS_CAUSAL";
    }
    return "(convblas_padding)?";
}

const char *tu_format_name(convblas_data_format f) {
    switch (f) {
    case CONVBLAS_CHANNELS_LAST:
        return "CONVBLAS_CHANNELS_LAST";
    case CONVBLAS_CHANNELS_FIRST:
        return "CONVBLAS_CHANNELS_FIRST";
    }
    return "(convblas_data_format)?";
}

const char *tu_activation_name(convblas_activation a) {
    static const char *const names[] = {
        "CONVBLAS_LINEAR",   "CONVBLAS_RELU",         "CONVBLAS_RELU6",      "CONVBLAS_SIGMOID",
        "CONVBLAS_TANH",     "CONVBLAS_GELU",         "CONVBLAS_SWISH",      "CONVBLAS_ELU",
        "CONVBLAS_SOFTPLUS", "CONVBLAS_HARD_SIGMOID", "CONVBLAS_HARD_SWISH", "CONVBLAS_LEAKY_RELU"};
    if ((int)a < 0 || (int)a >= (int)(sizeof names / sizeof names[0]))
        return "(convblas_activation)?";
    return names[a];
}

int tu_strategy_index(const char *name) {
    for (int i = 0; i < convblas_strategy_count(); i++)
        if (strcmp(convblas_strategy_name(i), name) == 0) return i;
    return -1;
}

double tu_conv_macs(const convblas_layer_desc *d, const convblas_shape *in) {
    double taps = (double)d->kernel_size[0] * (d->rank == 2 ? (double)d->kernel_size[1] : 1.0);
    double plane = (double)in->spatial[0] * (d->rank == 2 ? (double)in->spatial[1] : 1.0);
    double s = (double)(d->strides[0] ? d->strides[0] : 1) *
               (d->rank == 2 ? (double)(d->strides[1] ? d->strides[1] : 1) : 1.0);
    double groups = d->groups > 1 ? (double)d->groups : 1.0;
    return (double)in->batch * plane / s * (double)d->filters * taps * (double)in->channels /
           groups;
}

bool tu_strategy_missing_cpu(const char *name) {
    convblas_layer_desc d = {.op = CONVBLAS_CONV, .rank = 1, .filters = 32, .kernel_size = {3}};
    convblas_shape in = {.batch = 1, .spatial = {64}, .channels = 16};
    convblas_plan_options o = {.mode = CONVBLAS_ESTIMATE, .strategy = name, .threads = 1};
    convblas_plan *plan = NULL;
    convblas_status st = convblas_plan_create(&plan, &d, &in, &o);
    convblas_plan_destroy(plan);
    return st == CONVBLAS_UNSUPPORTED && strstr(convblas_last_error(), "AVX-512") != NULL;
}

const char *tu_status_str(convblas_status s) {
    switch (s) {
    case CONVBLAS_OK:
        return "OK";
    case CONVBLAS_INVALID_ARGUMENT:
        return "INVALID_ARGUMENT";
    case CONVBLAS_UNSUPPORTED:
        return "UNSUPPORTED";
    case CONVBLAS_OUT_OF_MEMORY:
        return "OUT_OF_MEMORY";
    case CONVBLAS_TOO_LARGE:
        return "TOO_LARGE";
    case CONVBLAS_IO_ERROR:
        return "IO_ERROR";
    }
    return "(unknown status)";
}

void tu_print_case(FILE *out, const convblas_layer_desc *d, const convblas_shape *in) {
    fprintf(out,
            "  convblas_layer_desc desc = {.op = %s, .rank = %d, .filters = %lld,\n"
            "      .kernel_size = {%lld, %lld}, .strides = {%lld, %lld},"
            " .dilation_rate = {%lld, %lld},\n"
            "      .padding = %s, .data_format = %s,\n"
            "      .groups = %lld, .depth_multiplier = %lld, .activation = %s,\n"
            "      .activation_alpha = %.9gf, .use_bias = %s};\n",
            tu_op_name(d->op), d->rank, (long long)d->filters, (long long)d->kernel_size[0],
            (long long)d->kernel_size[1], (long long)d->strides[0], (long long)d->strides[1],
            (long long)d->dilation_rate[0], (long long)d->dilation_rate[1],
            tu_padding_name(d->padding), tu_format_name(d->data_format), (long long)d->groups,
            (long long)d->depth_multiplier, tu_activation_name(d->activation),
            (double)d->activation_alpha, d->use_bias ? "true" : "false");
    fprintf(out,
            "  convblas_shape in = {.batch = %lld, .spatial = {%lld, %lld}, .channels = %lld};\n",
            (long long)in->batch, (long long)in->spatial[0], (long long)in->spatial[1],
            (long long)in->channels);
}

void tu_print_shape(FILE *out, const char *label, const convblas_shape *s, int rank) {
    if (rank == 1)
        fprintf(out, "  %s: batch %lld, length %lld, channels %lld\n", label, (long long)s->batch,
                (long long)s->spatial[0], (long long)s->channels);
    else
        fprintf(out, "  %s: batch %lld, %lld x %lld, channels %lld\n", label, (long long)s->batch,
                (long long)s->spatial[0], (long long)s->spatial[1], (long long)s->channels);
}

/* ---- data ---- */

static float *dup_floats(const float *p, size_t n) {
    float *q = malloc((n ? n : 1) * sizeof *q);
    if (q) memcpy(q, p, (n ? n : 1) * sizeof *q);
    return q;
}

static float *random_floats(tu_rng *r, size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (p) {
        p[0] = 0;
        tu_fill(r, p, n, -1.0f, 1.0f);
    }
    return p;
}

void tu_data_free(tu_data *t) {
    free(t->x);
    free(t->kernel);
    free(t->pointwise);
    free(t->bias);
    free(t->x_copy);
    free(t->kernel_copy);
    free(t->pointwise_copy);
    free(t->bias_copy);
    free(t->ref);
    memset(t, 0, sizeof *t);
}

convblas_status tu_data_make(tu_data *t, const convblas_layer_desc *d, const convblas_shape *in,
                             tu_rng *rng) {
    memset(t, 0, sizeof *t);
    convblas_status st = ref_layer_sizes(d, in, &t->sz);
    if (st != CONVBLAS_OK) return st;
    t->x = random_floats(rng, t->sz.input);
    t->kernel = random_floats(rng, t->sz.kernel);
    t->pointwise = random_floats(rng, t->sz.pointwise);
    t->bias = random_floats(rng, t->sz.bias);
    t->ref = malloc((t->sz.output ? t->sz.output : 1) * sizeof *t->ref);
    if (!t->x || !t->kernel || !t->pointwise || !t->bias || !t->ref) {
        fprintf(stderr, "test: out of memory making data\n");
        exit(2);
    }
    t->x_copy = dup_floats(t->x, t->sz.input);
    t->kernel_copy = dup_floats(t->kernel, t->sz.kernel);
    t->pointwise_copy = dup_floats(t->pointwise, t->sz.pointwise);
    t->bias_copy = dup_floats(t->bias, t->sz.bias);
    if (!t->x_copy || !t->kernel_copy || !t->pointwise_copy || !t->bias_copy) {
        fprintf(stderr, "test: out of memory making data\n");
        exit(2);
    }
    t->w.kernel = t->kernel;
    t->w.pointwise_kernel = d->op == CONVBLAS_SEPARABLE ? t->pointwise : NULL;
    t->w.bias = d->use_bias ? t->bias : NULL;
    convblas_shape out;
    st = ref_forward(d, in, t->x, &t->w, t->ref, &out);
    if (st != CONVBLAS_OK) {
        tu_data_free(t);
        return st;
    }
    return CONVBLAS_OK;
}

/* ---- running ---- */

static bool same_shape(const convblas_shape *a, const convblas_shape *b) {
    return a->batch == b->batch && a->spatial[0] == b->spatial[0] &&
           a->spatial[1] == b->spatial[1] && a->channels == b->channels;
}

static bool unchanged(const float *a, const float *b, size_t n) {
    return n == 0 || memcmp(a, b, n * sizeof *a) == 0;
}

tu_run_result tu_run(const convblas_layer_desc *d, const convblas_shape *in, const tu_data *t,
                     const tu_run_opts *o, double *err) {
    char why[1024];
    size_t wl = 0;
    why[0] = 0;
#define WHY(...)                                                                                   \
    do {                                                                                           \
        if (wl < sizeof why) {                                                                     \
            int n_ = snprintf(why + wl, sizeof why - wl, __VA_ARGS__);                             \
            if (n_ > 0) wl += (size_t)n_;                                                          \
        }                                                                                          \
    } while (0)

    if (err) *err = 0;
    convblas_plan_options po = {.mode = o->mode,
                                .strategy = o->strategy,
                                .threads = o->threads,
                                .workspace_limit = o->workspace_limit};
    convblas_plan *plan = (convblas_plan *)&po; /* must be overwritten */
    convblas_status st = convblas_plan_create(&plan, d, in, &po);
    float *y = NULL;
    void *ws = NULL;
    double e = 0;
    size_t worst = 0;
    tu_run_result result = TU_RUN_OK;

    if (st != CONVBLAS_OK) {
        if (plan != NULL) WHY("plan_create failed but did not set *plan to NULL; ");
        if (convblas_last_error()[0] == 0) WHY("plan_create failed with no message; ");
        if (st == CONVBLAS_UNSUPPORTED && (o->strategy || o->may_be_unsupported) && wl == 0)
            return TU_RUN_UNSUPPORTED;
        WHY("plan_create returned %s: %s", tu_status_str(st), convblas_last_error());
        plan = NULL;
        result = TU_RUN_FAIL;
        goto report;
    }
    const char *chosen = convblas_plan_strategy(plan);
    if (!chosen) WHY("plan has no strategy name; ");
    if (chosen && o->strategy && strcmp(chosen, o->strategy) != 0)
        WHY("forced %s but the plan runs %s; ", o->strategy, chosen);
    size_t wsize = convblas_plan_workspace_size(plan);
    convblas_shape out;
    memset(&out, 0x5A, sizeof out);
    convblas_status os = convblas_output_shape(d, in, &out);
    if (os != CONVBLAS_OK || !same_shape(&out, &t->sz.out))
        WHY("convblas_output_shape gave %s, batch %lld, spatial {%lld, %lld}, channels %lld; ",
            tu_status_str(os), (long long)out.batch, (long long)out.spatial[0],
            (long long)out.spatial[1], (long long)out.channels);
    if (o->workspace_limit && wsize > o->workspace_limit)
        WHY("workspace %zu bytes exceeds the limit %zu; ", wsize, o->workspace_limit);

    y = tu_guarded_alloc(t->sz.output);
    if (!y) {
        fprintf(stderr, "test: out of memory\n");
        exit(2);
    }
    if (o->own_workspace) {
        ws = malloc(wsize ? wsize : 1);
        if (!ws) {
            fprintf(stderr, "test: out of memory (workspace %zu bytes)\n", wsize);
            exit(2);
        }
        memset(ws, 0xFF, wsize ? wsize : 1); /* NaN garbage: no strategy may rely on zeros */
    }
    st = convblas_execute(plan, t->x, &t->w, y, ws);
    if (st != CONVBLAS_OK) {
        WHY("execute returned %s: %s; ", tu_status_str(st), convblas_last_error());
    } else {
        e = tu_rel_error(y, t->ref, t->sz.output, &worst);
        if (!(e <= TU_TOLERANCE))
            WHY("relative error %.3g > %.1g (worst at element %zu: got %.9g, expected %.9g); ", e,
                TU_TOLERANCE, worst, (double)y[worst], (double)t->ref[worst]);
    }
    if (!tu_guards_intact(y, t->sz.output)) WHY("wrote outside the output buffer; ");
    if (!unchanged(t->x, t->x_copy, t->sz.input)) WHY("modified the input; ");
    if (!unchanged(t->kernel, t->kernel_copy, t->sz.kernel)) WHY("modified the kernel; ");
    if (!unchanged(t->pointwise, t->pointwise_copy, t->sz.pointwise))
        WHY("modified the pointwise kernel; ");
    if (!unchanged(t->bias, t->bias_copy, t->sz.bias)) WHY("modified the bias; ");
    if (o->out_copy && t->sz.output) memcpy(o->out_copy, y, t->sz.output * sizeof *y);
    if (wl) result = TU_RUN_FAIL;

report:
    if (result == TU_RUN_FAIL) {
        tu_failures++;
        fprintf(stderr, "FAIL: strategy %s%s%s, threads %d, %s workspace, limit %zu, %s: %s\n",
                o->strategy ? o->strategy : "(planner)", plan && !o->strategy ? " -> " : "",
                plan && !o->strategy ? convblas_plan_strategy(plan) : "", o->threads,
                o->own_workspace ? "caller" : "NULL", o->workspace_limit,
                o->mode == CONVBLAS_MEASURE ? "MEASURE" : "ESTIMATE", why);
        tu_print_case(stderr, d, in);
        tu_print_shape(stderr, "expected output", &t->sz.out, d->rank);
        if (plan) {
            char text[8192];
            if (convblas_plan_describe(plan, text, sizeof text) >= 0)
                fprintf(stderr, "  plan:\n%s\n", text);
        }
    }
    if (err) *err = e;
    free(ws);
    tu_guarded_free(y);
    convblas_plan_destroy(plan);
    return result;
#undef WHY
}

int tu_run_all(const convblas_layer_desc *d, const convblas_shape *in, const tu_data *t,
               int threads, bool own_workspace, tu_stats *st) {
    int count = convblas_strategy_count();
    CHECKF(count > 0 && count <= TU_MAX_STRATEGIES, "strategy count %d", count);
    if (count > TU_MAX_STRATEGIES) count = TU_MAX_STRATEGIES;
    int failed = 0;
    for (int s = -1; s < count; s++) {
        tu_run_opts o = {.strategy = s < 0 ? NULL : convblas_strategy_name(s),
                         .threads = threads,
                         .own_workspace = own_workspace};
        int slot = s < 0 ? count : s;
        double e = 0;
        tu_run_result r = tu_run(d, in, t, &o, &e);
        if (st) {
            if (r == TU_RUN_OK) st->executed[slot]++;
            if (r == TU_RUN_UNSUPPORTED) st->unsupported[slot]++;
            if (r == TU_RUN_FAIL) st->failed[slot]++;
            if (r == TU_RUN_OK && e > st->max_err) st->max_err = e;
        }
        failed += r == TU_RUN_FAIL;
    }
    return failed;
}

int tu_check_layer(const convblas_layer_desc *d, const convblas_shape *in, uint64_t seed,
                   int threads, tu_stats *st) {
    tu_rng rng;
    tu_rng_seed(&rng, seed);
    tu_data t;
    convblas_status s = tu_data_make(&t, d, in, &rng);
    if (s != CONVBLAS_OK) {
        tu_failures++;
        fprintf(stderr, "FAIL: the reference rejects a case the test means to be valid (%s):\n",
                tu_status_str(s));
        tu_print_case(stderr, d, in);
        return 1;
    }
    int failed = tu_run_all(d, in, &t, threads, (seed & 1) != 0, st);
    tu_data_free(&t);
    return failed;
}

void tu_tally(tu_stats *st, int slot, tu_run_result res, double err) {
    st->executed[slot] += res == TU_RUN_OK;
    st->unsupported[slot] += res == TU_RUN_UNSUPPORTED;
    st->failed[slot] += res == TU_RUN_FAIL;
    if (err > st->max_err) st->max_err = err;
}

void tu_print_stats(FILE *out, const char *label, const tu_stats *st) {
    int count = convblas_strategy_count();
    if (count > TU_MAX_STRATEGIES) count = TU_MAX_STRATEGIES;
    fprintf(out, "%s: max relative error %.3g\n", label, st->max_err);
    for (int s = 0; s <= count; s++)
        fprintf(out, "  %-20s executed %6ld  unsupported %6ld  failed %ld\n",
                s < count ? convblas_strategy_name(s) : "(planner)", st->executed[s],
                st->unsupported[s], st->failed[s]);
}

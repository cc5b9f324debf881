/* fuzz_execute: arbitrary bytes as a small valid layer (every op, rank, data format,
 * padding, activation; groups, multipliers, strides, dilations; bias on and off; junk in
 * the fields the op ignores) with its input and weights, run with every strategy forced
 * and with the planner's pick, each output compared with the reference convolution of
 * test/ (test_util's tu_run: tolerance, guards around the output, inputs left unchanged).
 * Then one bad call to execute, which must fail cleanly without writing the output.
 * Any mismatch aborts after printing the case. */
#include "convblas.h"
#include "fuzz_bytes.h"
#include "reference.h"
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Multiply-adds per input: large enough for tiles and edges, small enough for hundreds of
 * inputs a second under the sanitizers. */
#define MAX_COST 150000.0

typedef struct exec_case {
    convblas_layer_desc desc;
    convblas_shape in;
    int threads;
    bool own_workspace, measure, junk_weights;
    size_t workspace_limit;
    int value_mode; /* 0: PRNG uniform [-1, 1]; 1: quarters from the bytes; 2: both mixed */
    int bad_call;
    uint8_t overlap; /* where the output starts when it overlaps the input */
} exec_case;

static int64_t effective_kernel(int64_t k, int64_t d) {
    return (k - 1) * (d ? d : 1) + 1;
}

static double cost(const convblas_layer_desc *d, const convblas_shape *in) {
    convblas_shape out;
    if (ref_output_shape(d, in, &out) != CONVBLAS_OK) return 1e30;
    double pos = (double)out.batch * (double)out.spatial[0] * (d->rank == 2 ? out.spatial[1] : 1);
    double taps = (double)d->kernel_size[0] * (d->rank == 2 ? (double)d->kernel_size[1] : 1);
    double mult = d->depth_multiplier ? (double)d->depth_multiplier : 1;
    double c = (double)in->channels;
    if (d->op == CONVBLAS_CONV)
        return pos * taps * c / (double)(d->groups ? d->groups : 1) * (double)d->filters;
    double dw = pos * taps * c * mult;
    return d->op == CONVBLAS_SEPARABLE ? dw + pos * c * mult * (double)d->filters : dw;
}

/* Channels, filters, groups and multiplier that fit together; junk where ignored. */
static void decode_channels(fz_bytes *b, convblas_layer_desc *d, convblas_shape *in) {
    if (d->op == CONVBLAS_CONV) {
        int64_t g = fz_pick(b, 4); /* 0: the default, 1 */
        int64_t eg = g ? g : 1;
        in->channels = eg * (1 + fz_pick(b, (int)(12 / eg)));
        d->filters = eg * (1 + fz_pick(b, (int)(12 / eg)));
        d->groups = g;
        d->depth_multiplier = fz_i64(b); /* ignored by CONV */
    } else {
        in->channels = 1 + fz_pick(b, 12);
        d->depth_multiplier = fz_pick(b, 5); /* 0: the default, 1 */
        d->filters = 1 + fz_pick(b, 12);
        if (d->op == CONVBLAS_DEPTHWISE) d->filters = fz_i64(b); /* ignored */
        d->groups = fz_i64(b);                                   /* ignored */
    }
}

/* Each spatial dimension: kernel, stride, dilation and a length the padding accepts. */
static void decode_window(fz_bytes *b, convblas_layer_desc *d, convblas_shape *in) {
    int max_len = d->rank == 1 ? 40 : 24;
    for (int i = 0; i < 2; i++) {
        d->kernel_size[i] = 1 + fz_pick(b, 7);
        d->strides[i] = fz_pick(b, 4);
        d->dilation_rate[i] = fz_pick(b, 4);
        int64_t ek = effective_kernel(d->kernel_size[i], d->dilation_rate[i]);
        int64_t lo = d->padding == CONVBLAS_VALID ? ek : 1;
        in->spatial[i] = lo + fz_pick(b, (int)(max_len - lo + 1));
        if (i >= d->rank) { /* not read at rank 1: anything goes */
            d->kernel_size[i] = fz_i64(b);
            d->strides[i] = fz_i64(b);
            d->dilation_rate[i] = fz_i64(b);
            in->spatial[i] = fz_i64(b);
        }
    }
}

/* Shorter inputs, then a smaller batch, until the layer is cheap enough. */
static void shrink(convblas_layer_desc *d, convblas_shape *in) {
    while (cost(d, in) > MAX_COST) {
        int i = d->rank == 2 && in->spatial[0] > in->spatial[1] ? 0 : d->rank - 1;
        int64_t lo = d->padding == CONVBLAS_VALID
                         ? effective_kernel(d->kernel_size[i], d->dilation_rate[i])
                         : 1;
        int other = d->rank == 2 ? 1 - i : i;
        int64_t lo_o = d->padding == CONVBLAS_VALID
                           ? effective_kernel(d->kernel_size[other], d->dilation_rate[other])
                           : 1;
        if (in->spatial[i] > lo)
            in->spatial[i]--;
        else if (in->spatial[other] > lo_o)
            in->spatial[other]--;
        else if (in->batch > 1)
            in->batch--;
        else
            break; /* cannot happen within the bounds above; the layer is run anyway */
    }
}

static const float alphas[] = {0.0f, 0.1f, 0.3f, 1.5f, -0.5f, 2.0f, 0.01f, 1.0f};
static const size_t limits[] = {
    0, 0, 0, 0, (size_t)1 << 20, (size_t)64 << 10, (size_t)16 << 10, (size_t)4 << 10};

static void decode(fz_bytes *b, exec_case *c) {
    memset(c, 0, sizeof *c);
    convblas_layer_desc *d = &c->desc;
    d->op = (convblas_op)fz_pick(b, 3);
    d->rank = 1 + fz_pick(b, 2);
    d->data_format = (convblas_data_format)fz_pick(b, 2);
    d->padding = (convblas_padding)fz_pick(b, d->rank == 1 ? 3 : 2);
    d->activation = (convblas_activation)fz_pick(b, 12);
    uint8_t f = fz_u8(b);
    d->use_bias = f & 1;
    d->activation_alpha = alphas[(f >> 1) & 7];
    c->in.batch = fz_pick(b, 4);
    decode_channels(b, d, &c->in);
    decode_window(b, d, &c->in);
    uint8_t run = fz_u8(b);
    c->threads = 1 + run % 3;
    c->own_workspace = (run >> 2) & 1;
    c->measure = ((run >> 3) & 3) == 3;
    c->junk_weights = (run >> 5) & 1;
    c->workspace_limit = limits[fz_pick(b, 8)];
    uint8_t v = fz_u8(b);
    c->value_mode = v % 3;
    c->bad_call = (v >> 2) % 12; /* 0..7 pick one bad call, the rest none */
    c->overlap = fz_u8(b);
    shrink(d, &c->in);
}

/* A multiple of 1/4 in [-2, 2]: sums of their products stay exact in float. */
static float quarter(fz_bytes *b, tu_rng *r) {
    int k = b->pos < b->size ? fz_u8(b) % 17 : (int)tu_rng_int(r, 0, 16);
    return (float)(k - 8) * 0.25f;
}

static void fill(float *p, size_t n, int mode, fz_bytes *b, tu_rng *r) {
    if (mode == 0) return; /* keep tu_data_make's uniform [-1, 1] */
    for (size_t i = 0; i < n; i++)
        if (mode == 1 || (i & 1)) p[i] = quarter(b, r);
}

/* The values the bytes ask for, their copies, and the reference output for them. */
static void make_values(const exec_case *c, tu_data *t, fz_bytes *b, tu_rng *r) {
    fill(t->x, t->sz.input, c->value_mode, b, r);
    fill(t->kernel, t->sz.kernel, c->value_mode, b, r);
    fill(t->pointwise, t->sz.pointwise, c->value_mode, b, r);
    fill(t->bias, t->sz.bias, c->value_mode, b, r);
    memcpy(t->x_copy, t->x, t->sz.input * sizeof(float));
    memcpy(t->kernel_copy, t->kernel, t->sz.kernel * sizeof(float));
    memcpy(t->pointwise_copy, t->pointwise, t->sz.pointwise * sizeof(float));
    memcpy(t->bias_copy, t->bias, t->sz.bias * sizeof(float));
    if (ref_forward(&c->desc, &c->in, t->x, &t->w, t->ref, NULL) != CONVBLAS_OK) abort();
}

static void print_case(const exec_case *c) {
    fprintf(stderr, "  threads %d, own workspace %d, workspace_limit %zu, measure %d, values %d\n",
            c->threads, c->own_workspace, c->workspace_limit, c->measure, c->value_mode);
    tu_print_case(stderr, &c->desc, &c->in);
}

static void run_all(const exec_case *c, const tu_data *t) {
    int count = convblas_strategy_count();
    for (int s = -1; s < count; s++) {
        tu_run_opts o = {.strategy = s < 0 ? NULL : convblas_strategy_name(s),
                         .threads = c->threads,
                         .own_workspace = c->own_workspace,
                         .workspace_limit = c->workspace_limit,
                         .mode = s < 0 && c->measure ? CONVBLAS_MEASURE : CONVBLAS_ESTIMATE,
                         .may_be_unsupported =
                             c->workspace_limit && c->workspace_limit < ((size_t)64 << 10)};
        tu_run(&c->desc, &c->in, t, &o, NULL);
        if (tu_failures) {
            fprintf(stderr, "fuzz_execute: mismatch (details above)\n");
            print_case(c);
            abort();
        }
    }
}

static void bad_call_failed(const exec_case *c, const char *what, convblas_status st) {
    fprintf(stderr,
            "fuzz_execute: execute with %s returned %s (\"%s\"); expected "
            "INVALID_ARGUMENT with a message and the output untouched\n",
            what, convblas_status_name(st), convblas_last_error());
    print_case(c);
    abort();
}

/* One operand wrong: execute must say so and write nothing. */
static void check_bad_call(const exec_case *c, const tu_data *t) {
    static const char *const what[] = {"a NULL plan",   "a NULL input",
                                       "NULL weights",  "a NULL output",
                                       "a NULL kernel", "a NULL pointwise kernel",
                                       "a NULL bias",   "overlapping input and output"};
    int k = c->bad_call;
    if (k >= 8 || (k == 5 && c->desc.op != CONVBLAS_SEPARABLE) || (k == 6 && !c->desc.use_bias))
        return;
    size_t nin = t->sz.input, nout = t->sz.output;
    if (k == 7 && (nin == 0 || nout == 0)) return;
    convblas_plan *plan;
    convblas_plan_options o = {.threads = c->threads, .workspace_limit = c->workspace_limit};
    if (convblas_plan_create(&plan, &c->desc, &c->in, &o) != CONVBLAS_OK) return; /* tight limit */
    /* One buffer holds both: the input at nout, the output anywhere it overlaps. */
    size_t total = nin + 2 * nout;
    float *buf = malloc(total * sizeof *buf), *copy = malloc(total * sizeof *copy);
    if (!buf || !copy) abort();
    memset(buf, 0, nout * sizeof *buf);
    memcpy(buf + nout, t->x, nin * sizeof *buf);
    memset(buf + nout + nin, 0, nout * sizeof *buf);
    memcpy(copy, buf, total * sizeof *buf);
    float *x = buf + nout, *y = buf + nout + nin;
    if (k == 7) y = x - (nout - 1) + c->overlap * 7919u % (nin + nout - 1);
    convblas_weights w = t->w;
    if (k == 4) w.kernel = NULL;
    if (k == 5) w.pointwise_kernel = NULL;
    if (k == 6) w.bias = NULL;
    convblas_status st = convblas_execute(k == 0 ? NULL : plan, k == 1 ? NULL : x,
                                          k == 2 ? NULL : &w, k == 3 ? NULL : y, NULL);
    bool ok = st == CONVBLAS_INVALID_ARGUMENT && convblas_last_error()[0] &&
              memcmp(buf, copy, total * sizeof *buf) == 0;
    free(buf);
    free(copy);
    convblas_plan_destroy(plan);
    if (!ok) bad_call_failed(c, what[k], st);
}

static bool print_cases;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    print_cases = getenv("FUZZ_PRINT") != NULL; /* to see what a saved input means */
    /* the cases say what to force, not the caller's environment */
    unsetenv("CONVBLAS_STRATEGY");
    unsetenv("CONVBLAS_NUM_THREADS");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_bytes b = fz_start(data, size);
    exec_case c;
    decode(&b, &c);
    if (print_cases) print_case(&c);
    tu_rng rng;
    tu_rng_seed(&rng, fz_hash(data, size));
    tu_data t;
    if (tu_data_make(&t, &c.desc, &c.in, &rng) != CONVBLAS_OK) {
        fprintf(stderr, "fuzz_execute: the harness made a layer the reference rejects\n");
        print_case(&c);
        abort();
    }
    make_values(&c, &t, &b, &rng);
    /* ignored weights given anyway, all NaN: a strategy that reads them shows */
    float *nan = NULL;
    if (c.junk_weights) {
        size_t n = (size_t)(t.sz.out.channels * 64 + 1);
        nan = tu_guarded_alloc(n);
        if (!t.w.bias) t.w.bias = nan;
        if (!t.w.pointwise_kernel) t.w.pointwise_kernel = nan;
    }
    run_all(&c, &t);
    check_bad_call(&c, &t);
    tu_guarded_free(nan);
    tu_data_free(&t);
#ifdef FUZZ_HAVE_WISDOM
    /* MEASURE records wisdom: forget it, so that every input plans the same way alone */
    convblas_wisdom_forget();
#endif
    return 0;
}

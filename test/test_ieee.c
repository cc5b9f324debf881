/* IEEE special values and denormals, every op, rank and format, every strategy forced by
 * name and the planner's pick.
 *
 *  1. NaN and +/-Inf in the input (interior, first position, last position: next to the
 *     padding), in the kernel, the pointwise kernel and the bias. The expected output is
 *     the double reference's: IEEE arithmetic decides where NaN (Inf * 0, Inf - Inf) and
 *     +/-Inf land, padding contributes nothing (no 0 * Inf), and the activation is applied
 *     after. Every element must have the reference's class (NaN, +Inf, -Inf, finite);
 *     finite ones must agree as in test_sweep; every strategy must give the same pattern.
 *     NaN sign and payload are not compared.
 *  2. Each activation on NaN, +/-Inf and large finite values, through a 1x1 layer.
 *  3. Denormal inputs and weights, and products that underflow, against the reference
 *     with an absolute tolerance of a few denormal ulps per product.
 *  4. x86: plan creation (ESTIMATE, MEASURE) and execute leave the caller's MXCSR control
 *     bits (FTZ, DAZ, rounding, exception masks) as they were, FTZ/DAZ set or not.
 *
 *   test_ieee [--kernel-padding] [--verbose]
 *
 * --kernel-padding runs only the cases where a NaN or Inf in the kernel meets the padding
 * (the rest run without it).
 */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define HAVE_MXCSR 1
#endif

#define NUM_ACTIVATIONS 12

static bool verbose;

/* Which cases run: the kernel's NaN/Inf meeting the padding (see meets_padding) apart, so
 * that a known failure there can be registered as such without hiding the rest. */
typedef enum { RUN_MAIN, RUN_KERNEL_PADDING } run_set;
static run_set selected = RUN_MAIN;

static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "test_ieee: out of memory\n");
        exit(2);
    }
    return p;
}

/* ---- layers ---------------------------------------------------------------------------- */

typedef struct layer {
    const char *name;
    convblas_layer_desc d;
    convblas_shape in;
} layer;

#define CONV1(...)                                                                                 \
    { .op = CONVBLAS_CONV, .rank = 1, .use_bias = true, __VA_ARGS__ }
#define CONV2(...)                                                                                 \
    { .op = CONVBLAS_CONV, .rank = 2, .use_bias = true, __VA_ARGS__ }
#define DW1(...)                                                                                   \
    { .op = CONVBLAS_DEPTHWISE, .rank = 1, .use_bias = true, __VA_ARGS__ }
#define DW2(...)                                                                                   \
    { .op = CONVBLAS_DEPTHWISE, .rank = 2, .use_bias = true, __VA_ARGS__ }
#define SEP1(...)                                                                                  \
    { .op = CONVBLAS_SEPARABLE, .rank = 1, .use_bias = true, __VA_ARGS__ }
#define SEP2(...)                                                                                  \
    { .op = CONVBLAS_SEPARABLE, .rank = 2, .use_bias = true, __VA_ARGS__ }

/* Same, causal and valid padding, strides and dilations, groups and multipliers, pointwise
 * shapes (pointwise_gemm), and more than 16 channels (a vector and a tail). */
static const layer layers[] = {
    {"conv1d same",
     CONV1(.filters = 4, .kernel_size = {3}, .padding = CONVBLAS_SAME),
     {2, {11}, 3}},
    {"conv1d causal s2 d2",
     CONV1(.filters = 3, .kernel_size = {3}, .strides = {2}, .dilation_rate = {2},
           .padding = CONVBLAS_CAUSAL),
     {1, {13}, 2}},
    {"conv1d valid groups d3",
     CONV1(.filters = 4, .kernel_size = {2}, .dilation_rate = {3}, .groups = 2),
     {2, {10}, 4}},
    {"conv1d pointwise", CONV1(.filters = 5, .kernel_size = {1}), {2, {9}, 3}},
    {"conv2d same",
     CONV2(.filters = 3, .kernel_size = {3, 3}, .padding = CONVBLAS_SAME),
     {1, {6, 7}, 2}},
    {"conv2d same s2 d2",
     CONV2(.filters = 2, .kernel_size = {3, 2}, .strides = {2, 2}, .dilation_rate = {1, 2},
           .padding = CONVBLAS_SAME),
     {2, {7, 8}, 3}},
    {"conv2d pointwise", CONV2(.filters = 3, .kernel_size = {1, 1}), {1, {4, 5}, 3}},
    {"depthwise1d same m2",
     DW1(.kernel_size = {3}, .padding = CONVBLAS_SAME, .depth_multiplier = 2),
     {2, {11}, 3}},
    {"depthwise1d causal s2 d2",
     DW1(.kernel_size = {4}, .strides = {2}, .dilation_rate = {2}, .padding = CONVBLAS_CAUSAL),
     {1, {14}, 5}},
    {"depthwise1d valid 17ch", DW1(.kernel_size = {3}), {1, {8}, 17}},
    {"depthwise2d same", DW2(.kernel_size = {3, 3}, .padding = CONVBLAS_SAME), {2, {6, 6}, 4}},
    {"depthwise2d same s2 d2 m2",
     DW2(.kernel_size = {3, 3}, .strides = {2, 2}, .dilation_rate = {2, 1},
         .padding = CONVBLAS_SAME, .depth_multiplier = 2),
     {1, {9, 8}, 3}},
    {"separable1d same m2",
     SEP1(.filters = 4, .kernel_size = {3}, .padding = CONVBLAS_SAME, .depth_multiplier = 2),
     {2, {10}, 3}},
    {"separable1d causal s2 d2",
     SEP1(.filters = 3, .kernel_size = {3}, .strides = {2}, .dilation_rate = {2},
          .padding = CONVBLAS_CAUSAL),
     {1, {13}, 2}},
    {"separable1d pointwise", SEP1(.filters = 4, .kernel_size = {1}), {1, {9}, 3}},
    {"separable2d same",
     SEP2(.filters = 3, .kernel_size = {3, 3}, .padding = CONVBLAS_SAME),
     {1, {6, 7}, 3}},
    {"separable2d valid s2",
     SEP2(.filters = 2, .kernel_size = {2, 3}, .strides = {2, 1}),
     {1, {7, 8}, 2}},
};
enum { LAYERS = sizeof layers / sizeof layers[0] };

/* ---- classes and comparison ------------------------------------------------------------- */

typedef enum { C_FINITE, C_NAN, C_PINF, C_NINF } fclass;

static fclass classify(double v) {
    if (isnan(v)) return C_NAN;
    if (isinf(v)) return v > 0 ? C_PINF : C_NINF;
    return C_FINITE;
}

static const char *class_name(fclass c) {
    static const char *const names[] = {"finite", "NaN", "+Inf", "-Inf"};
    return names[c];
}

/* Every element in the expected class; finite ones within TU_TOLERANCE relative to the
 * largest finite expected value (at least 1), as tu_rel_error measures. Returns the index of
 * the first bad element, or -1. */
static long first_mismatch(const float *y, const float *want, size_t n) {
    double scale = 1;
    for (size_t i = 0; i < n; i++)
        if (isfinite(want[i]) && fabs(want[i]) > scale) scale = fabs(want[i]);
    for (size_t i = 0; i < n; i++) {
        fclass c = classify(want[i]);
        if (classify(y[i]) != c) return (long)i;
        if (c == C_FINITE && !(fabs((double)y[i] - want[i]) <= TU_TOLERANCE * scale))
            return (long)i;
    }
    return -1;
}

/* ---- the expected output ------------------------------------------------------------------ */

/* The reference's output, except where the pre-activation value is NaN: the activation of a
 * NaN is NaN (IEEE's maximum, TensorFlow's relu), where the reference's `x > 0 ? x : 0`
 * relu would give 0. */
static void expected_output(const convblas_layer_desc *d, const convblas_shape *in, const float *x,
                            const convblas_weights *w, float *want, size_t n) {
    ref_forward(d, in, x, w, want, NULL);
    convblas_layer_desc lin = *d;
    lin.activation = CONVBLAS_LINEAR;
    float *pre = xmalloc(n * sizeof(float));
    ref_forward(&lin, in, x, w, pre, NULL);
    for (size_t i = 0; i < n; i++)
        if (isnan(pre[i])) want[i] = NAN;
    free(pre);
}

/* ---- one layer's data --------------------------------------------------------------------- */

typedef struct data {
    ref_sizes sz;
    float *x, *kernel, *pointwise, *bias, *want;
} data;

static void data_alloc(data *t, const convblas_layer_desc *d, const convblas_shape *in) {
    memset(t, 0, sizeof *t);
    if (ref_layer_sizes(d, in, &t->sz) != CONVBLAS_OK) {
        fprintf(stderr, "test_ieee: the reference rejects a layer\n");
        tu_print_case(stderr, d, in);
        exit(2);
    }
    t->x = xmalloc(t->sz.input * sizeof(float));
    t->kernel = xmalloc(t->sz.kernel * sizeof(float));
    t->pointwise = xmalloc(t->sz.pointwise * sizeof(float));
    t->bias = xmalloc(t->sz.bias * sizeof(float));
    t->want = xmalloc(t->sz.output * sizeof(float));
}

/* Uniform in +/-[lo, hi) with random signs: no zeros unless lo is 0. */
static void fill_magnitude(tu_rng *r, float *p, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) {
        float m = lo + (hi - lo) * (float)tu_rng_unit(r);
        p[i] = tu_rng_chance(r, 0.5) ? -m : m;
    }
}

static void data_free(data *t) {
    free(t->x);
    free(t->kernel);
    free(t->pointwise);
    free(t->bias);
    free(t->want);
}

static convblas_weights weights_of(const data *t, const convblas_layer_desc *d) {
    return (convblas_weights){.kernel = t->kernel,
                              .pointwise_kernel = d->op == CONVBLAS_SEPARABLE ? t->pointwise : NULL,
                              .bias = d->use_bias ? t->bias : NULL};
}

/* ---- running every strategy ----------------------------------------------------------------- */

/* How many times each strategy (index count: the planner) ran a case of each part. */
static long ran[TU_MAX_STRATEGIES + 1];

typedef bool (*compare_fn)(const float *y, const float *want, size_t n, long *bad, const void *ctx);

static bool compare_classes(const float *y, const float *want, size_t n, long *bad,
                            const void *ctx) {
    (void)ctx;
    *bad = first_mismatch(y, want, n);
    return *bad < 0;
}

/* Runs d on t's data with strategy s (-1: the planner) and compares with t->want; the
 * output's classes go to classes (if not NULL). Returns false if the strategy cannot run the
 * layer. */
static bool run_one(const char *what, const convblas_layer_desc *d, const convblas_shape *in,
                    const data *t, int s, compare_fn cmp, const void *ctx, unsigned char *classes) {
    const char *forced = s < 0 ? NULL : convblas_strategy_name(s);
    convblas_plan_options o = {.strategy = forced, .threads = 1 + (s & 1)};
    convblas_plan *plan = NULL;
    convblas_status st = convblas_plan_create(&plan, d, in, &o);
    if (st == CONVBLAS_UNSUPPORTED && forced) return false;
    const char *name = forced ? forced : "(planner)";
    if (st != CONVBLAS_OK) {
        CHECKF(0, "%s, %s: plan_create %s: %s", what, name, tu_status_str(st),
               convblas_last_error());
        return false;
    }
    size_t n = t->sz.output;
    float *y = tu_guarded_alloc(n);
    convblas_weights w = weights_of(t, d);
    st = convblas_execute(plan, t->x, &w, y, NULL);
    long bad = -1;
    if (st != CONVBLAS_OK) {
        CHECKF(0, "%s, %s: execute %s: %s", what, name, tu_status_str(st), convblas_last_error());
    } else if (!cmp(y, t->want, n, &bad, ctx)) {
        tu_failures++;
        fprintf(stderr, "FAIL: %s, %s (plan %s): element %ld is %.9g (%s), expected %.9g (%s)\n",
                what, name, convblas_plan_strategy(plan), bad, (double)y[bad],
                class_name(classify(y[bad])), (double)t->want[bad],
                class_name(classify(t->want[bad])));
        tu_print_case(stderr, d, in);
    }
    CHECKF(tu_guards_intact(y, n), "%s, %s: wrote outside the output", what, name);
    for (size_t i = 0; classes && i < n; i++) classes[i] = (unsigned char)classify(y[i]);
    ran[s < 0 ? convblas_strategy_count() : s]++;
    tu_guarded_free(y);
    convblas_plan_destroy(plan);
    return true;
}

/* Every strategy and the planner; their output classes must agree with each other. */
static void run_all(const char *what, const convblas_layer_desc *d, const convblas_shape *in,
                    const data *t, compare_fn cmp, const void *ctx) {
    size_t n = t->sz.output;
    unsigned char *first = xmalloc(n), *classes = xmalloc(n);
    const char *first_name = NULL;
    int count = convblas_strategy_count();
    for (int s = -1; s < count; s++) {
        if (!run_one(what, d, in, t, s, cmp, ctx, classes)) continue;
        const char *name = s < 0 ? "(planner)" : convblas_strategy_name(s);
        if (!first_name) {
            memcpy(first, classes, n);
            first_name = name;
        } else {
            CHECKF(memcmp(first, classes, n) == 0, "%s: %s and %s give different NaN/Inf patterns",
                   what, first_name, name);
        }
    }
    free(first);
    free(classes);
}

/* ---- part 1: special values in the operands ---------------------------------------------- */

/* Index of (n, c, h, w) of an input of layer l (rank 1: h = 0). */
static size_t input_at(const layer *l, convblas_data_format f, int64_t n, int64_t c, int64_t h,
                       int64_t w) {
    int64_t H = l->d.rank == 2 ? l->in.spatial[0] : 1;
    int64_t W = l->d.rank == 2 ? l->in.spatial[1] : l->in.spatial[0], C = l->in.channels;
    if (f == CONVBLAS_CHANNELS_LAST) return (size_t)(((n * H + h) * W + w) * C + c);
    return (size_t)(((n * C + c) * H + h) * W + w);
}

typedef enum {
    S_INPUT_NAN_INTERIOR,
    S_INPUT_INF_FIRST,    /* first position: next to the padding before */
    S_INPUT_NINF_LAST,    /* last position: next to the padding after */
    S_INPUT_INF_PAIR,     /* +Inf and -Inf side by side: Inf - Inf where windows share them */
    S_KERNEL,             /* +Inf in the first tap (the one padding meets), NaN in the last */
    S_INF_TIMES_ZERO,     /* +Inf in the first tap, a 0 in the input */
    S_ZERO_TAP_INF_INPUT, /* a 0 in the first tap, -Inf in the input */
    S_POINTWISE,          /* +Inf and -Inf in the pointwise kernel */
    S_BIAS,               /* NaN, +Inf, -Inf bias */
    SCENARIOS
} scenario;

static const char *const scenario_names[SCENARIOS] = {
    "NaN in the input's interior",        "+Inf at the input's first position",
    "-Inf at the input's last position",  "+Inf and -Inf side by side in the input",
    "+Inf and NaN in the kernel",         "+Inf in the kernel, 0 in the input",
    "0 in the kernel, -Inf in the input", "+Inf and -Inf in the pointwise kernel",
    "NaN, +Inf and -Inf in the bias"};

/* Puts scenario sc's special values into t (already filled with random finite data).
 * Returns false when the scenario does not apply to the layer. */
static bool place_specials(const layer *l, convblas_data_format f, data *t, scenario sc) {
    int64_t N = l->in.batch, C = l->in.channels;
    int64_t H = l->d.rank == 2 ? l->in.spatial[0] : 1;
    int64_t W = l->d.rank == 2 ? l->in.spatial[1] : l->in.spatial[0];
    size_t mid = input_at(l, f, N - 1, C / 2, H / 2, W / 2);
    switch (sc) {
    case S_INPUT_NAN_INTERIOR:
        t->x[mid] = NAN;
        return true;
    case S_INPUT_INF_FIRST:
        t->x[input_at(l, f, 0, 0, 0, 0)] = INFINITY;
        return true;
    case S_INPUT_NINF_LAST:
        t->x[input_at(l, f, N - 1, C - 1, H - 1, W - 1)] = -INFINITY;
        return true;
    case S_INPUT_INF_PAIR:
        t->x[input_at(l, f, 0, 0, H / 2, W / 2)] = INFINITY;
        t->x[input_at(l, f, 0, 0, H / 2, W / 2 + (W > 1))] = -INFINITY;
        return true;
    case S_KERNEL:
        t->kernel[0] = INFINITY;
        t->kernel[t->sz.kernel - 1] = NAN;
        return true;
    case S_INF_TIMES_ZERO:
        t->kernel[0] = INFINITY;
        t->x[input_at(l, f, 0, 0, H / 2, W / 2)] = 0.0f;
        return true;
    case S_ZERO_TAP_INF_INPUT:
        t->kernel[0] = 0.0f;
        t->x[input_at(l, f, 0, 0, H / 2, W / 2)] = -INFINITY;
        return true;
    case S_POINTWISE:
        if (!t->sz.pointwise) return false;
        t->pointwise[0] = INFINITY;
        t->pointwise[t->sz.pointwise - 1] = -INFINITY;
        return true;
    case S_BIAS:
        t->bias[0] = NAN;
        t->bias[1 % t->sz.bias] = INFINITY;
        if (t->sz.bias > 2) t->bias[2] = -INFINITY;
        return true;
    case SCENARIOS:
        break;
    }
    return false;
}

/* A non-finite kernel value in a layer with padding: the padded positions must contribute
 * nothing, not 0 * Inf = NaN. */
static bool meets_padding(const layer *l, scenario sc) {
    bool kernel_special = sc == S_KERNEL || sc == S_INF_TIMES_ZERO;
    return kernel_special && l->d.padding != CONVBLAS_VALID;
}

static void test_specials(void) {
    long cases = 0;
    for (int li = 0; li < LAYERS; li++)
        for (int f = 0; f < 2; f++)
            for (int sc = 0; sc < SCENARIOS; sc++)
                for (int a = 0; a < 2; a++) {
                    const layer *l = &layers[li];
                    convblas_layer_desc d = l->d;
                    d.data_format = f ? CONVBLAS_CHANNELS_FIRST : CONVBLAS_CHANNELS_LAST;
                    /* linear, then an activation that moves over every case */
                    d.activation = a ? (convblas_activation)((li + sc + f) % NUM_ACTIVATIONS)
                                     : CONVBLAS_LINEAR;
                    data t;
                    data_alloc(&t, &d, &l->in);
                    tu_rng rng;
                    tu_rng_seed(&rng, (uint64_t)(li * 100 + sc * 2 + f));
                    fill_magnitude(&rng, t.x, t.sz.input, 0.25f, 1.0f);
                    fill_magnitude(&rng, t.kernel, t.sz.kernel, 0.25f, 1.0f);
                    fill_magnitude(&rng, t.pointwise, t.sz.pointwise, 0.25f, 1.0f);
                    fill_magnitude(&rng, t.bias, t.sz.bias, 0.0f, 0.5f);
                    bool wanted =
                        meets_padding(l, (scenario)sc) == (selected == RUN_KERNEL_PADDING);
                    if (wanted && place_specials(l, d.data_format, &t, (scenario)sc)) {
                        convblas_weights w = weights_of(&t, &d);
                        expected_output(&d, &l->in, t.x, &w, t.want, t.sz.output);
                        char what[200];
                        snprintf(what, sizeof what, "%s %s, %s, %s", l->name,
                                 f ? "channels_first" : "channels_last", scenario_names[sc],
                                 tu_activation_name(d.activation));
                        run_all(what, &d, &l->in, &t, compare_classes, NULL);
                        cases++;
                    }
                    data_free(&t);
                }
    printf("special values: %ld cases\n", cases);
}

/* ---- part 2: the activations on special values -------------------------------------------- */

static const float probe_values[] = {
    NAN,    INFINITY, -INFINITY, 0.0f,   -0.0f,  1.0f,  -1.0f,  2.5f,  -2.5f,  7.0f,  -7.0f, 20.0f,
    -20.0f, 88.5f,    -88.5f,    100.0f, -104.f, 1e30f, -1e30f, 5e37f, -5e37f, 1e-3f, -1e-3f};
enum { PROBES = sizeof probe_values / sizeof probe_values[0], PROBE_LEN = 41 };

/* Nothing above FLT_MAX / 6: hard_swish's x * relu6(x + 3) / 6 overflows there in float, as
 * Keras's float32 does too, while the double reference stays finite. */

/* A 1x1 layer with weight 1 that carries each probe value to the activation; PROBE_LEN
 * positions so that the values fall in vector bodies and tails. */
static void test_activations(void) {
    const convblas_op ops[] = {CONVBLAS_CONV, CONVBLAS_DEPTHWISE, CONVBLAS_SEPARABLE};
    long cases = 0;
    for (int op = 0; op < 3; op++)
        for (int f = 0; f < 2; f++)
            for (int a = 0; a < NUM_ACTIVATIONS; a++)
                for (int alpha = 0; alpha < 2; alpha++) {
                    convblas_layer_desc d = {.op = ops[op],
                                             .rank = 1,
                                             .filters = 1,
                                             .kernel_size = {1},
                                             .data_format = f ? CONVBLAS_CHANNELS_FIRST
                                                              : CONVBLAS_CHANNELS_LAST,
                                             .activation = (convblas_activation)a,
                                             .activation_alpha = alpha ? 0.5f : 0.0f};
                    if (alpha && a != CONVBLAS_ELU && a != CONVBLAS_LEAKY_RELU) continue;
                    convblas_shape in = {.batch = 1, .spatial = {PROBE_LEN}, .channels = 1};
                    data t;
                    data_alloc(&t, &d, &in);
                    for (size_t i = 0; i < t.sz.input; i++) t.x[i] = probe_values[(i * 7) % PROBES];
                    t.kernel[0] = 1.0f;
                    if (t.sz.pointwise) t.pointwise[0] = 1.0f;
                    convblas_weights w = weights_of(&t, &d);
                    expected_output(&d, &in, t.x, &w, t.want, t.sz.output);
                    char what[160];
                    snprintf(what, sizeof what, "%s on special values (%s, %s, alpha %g)",
                             tu_activation_name(d.activation), tu_op_name(d.op),
                             f ? "channels_first" : "channels_last", (double)d.activation_alpha);
                    run_all(what, &d, &in, &t, compare_classes, NULL);
                    data_free(&t);
                    cases++;
                }
    printf("activations on special values: %ld cases\n", cases);
}

/* ---- part 3: denormals ------------------------------------------------------------------------
 */

/* The floats between 0 and FLT_MIN are multiples of 2^-149; a product rounds by at most half
 * of one, sums of them are exact. So each output may be off by about one denormal ulp per
 * product it sums (both stages for SEPARABLE), plus a relative part for outputs that leave
 * the denormal range (sigmoid of a denormal is 0.5). */
typedef struct denormal_tol {
    double ulps; /* allowed error in units of 2^-149 */
} denormal_tol;

static bool compare_denormal(const float *y, const float *want, size_t n, long *bad,
                             const void *ctx) {
    const denormal_tol *tol = ctx;
    const double ulp = ldexp(1.0, -149);
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)y[i] - (double)want[i]);
        if (!(err <= tol->ulps * ulp + 1e-5 * fabs(want[i]))) {
            *bad = (long)i;
            return false;
        }
    }
    *bad = -1;
    return true;
}

typedef struct denormal_mode {
    const char *name;
    float x_lo, x_hi, w_lo, w_hi; /* magnitudes of input and of every weight */
    bool expect_nonzero;          /* some output must be non-zero: the test is not vacuous */
} denormal_mode;

static const denormal_mode denormal_modes[] = {
    {"denormal input", 1e-39f, 1e-38f, 0.25f, 1.0f, true},
    {"denormal weights", 0.25f, 1.0f, 1e-41f, 1e-39f, true},
    {"products underflow into denormals", 1e-20f, 4e-20f, 1e-20f, 4e-20f, true},
    {"products underflow to zero", 1e-25f, 4e-25f, 1e-25f, 4e-25f, false},
};
enum { DENORMAL_MODES = sizeof denormal_modes / sizeof denormal_modes[0] };

/* Products each output sums: taps x input channels of a group (one for depthwise); for
 * SEPARABLE the depthwise stage's error is multiplied into each pointwise product. */
static double products_per_output(const convblas_layer_desc *d, const convblas_shape *in) {
    double taps = (double)d->kernel_size[0] * (d->rank == 2 ? (double)d->kernel_size[1] : 1.0);
    int64_t m = d->depth_multiplier ? d->depth_multiplier : 1;
    if (d->op == CONVBLAS_CONV) return taps * (double)(in->channels / (d->groups ? d->groups : 1));
    if (d->op == CONVBLAS_DEPTHWISE) return taps;
    return (taps + 1) * (double)(in->channels * m + 1);
}

static bool any_nonzero(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (v[i] != 0) return true;
    return false;
}

static void test_denormals(void) {
    long cases = 0;
    for (int li = 0; li < LAYERS; li++)
        for (int f = 0; f < 2; f++)
            for (int m = 0; m < DENORMAL_MODES; m++) {
                const layer *l = &layers[li];
                const denormal_mode *dm = &denormal_modes[m];
                convblas_layer_desc d = l->d;
                d.data_format = f ? CONVBLAS_CHANNELS_FIRST : CONVBLAS_CHANNELS_LAST;
                d.activation = (convblas_activation)((li + m) % NUM_ACTIVATIONS);
                if (m == 0) d.activation = CONVBLAS_LINEAR; /* denormals out, untouched */
                data t;
                data_alloc(&t, &d, &l->in);
                tu_rng rng;
                tu_rng_seed(&rng, (uint64_t)(7000 + li * 10 + m * 2 + f));
                fill_magnitude(&rng, t.x, t.sz.input, dm->x_lo, dm->x_hi);
                fill_magnitude(&rng, t.kernel, t.sz.kernel, dm->w_lo, dm->w_hi);
                fill_magnitude(&rng, t.pointwise, t.sz.pointwise, dm->w_lo, dm->w_hi);
                fill_magnitude(&rng, t.bias, t.sz.bias, 0.0f, 1e-40f);
                convblas_weights w = weights_of(&t, &d);
                expected_output(&d, &l->in, t.x, &w, t.want, t.sz.output);
                if (dm->expect_nonzero && d.activation == CONVBLAS_LINEAR)
                    CHECKF(any_nonzero(t.want, t.sz.output), "%s: the reference is all zero",
                           dm->name);
                denormal_tol tol = {.ulps = products_per_output(&d, &l->in) + 8};
                char what[200];
                snprintf(what, sizeof what, "%s %s, %s, %s", l->name,
                         f ? "channels_first" : "channels_last", dm->name,
                         tu_activation_name(d.activation));
                run_all(what, &d, &l->in, &t, compare_denormal, &tol);
                data_free(&t);
                cases++;
            }
    printf("denormals: %ld cases\n", cases);
}

/* ---- part 4: the caller's MXCSR ----------------------------------------------------------------
 */

#ifdef HAVE_MXCSR
enum { MXCSR_FLAGS = 0x3F, MXCSR_DAZ = 0x40, MXCSR_FTZ = 0x8000 };

/* The control bits; the sticky exception flags (bits 0-5) are the arithmetic's to set. */
static unsigned control_bits(void) {
    return _mm_getcsr() & ~(unsigned)MXCSR_FLAGS;
}

static void check_csr(unsigned before, const char *after_what, const char *setting) {
    unsigned now = control_bits();
    CHECKF(now == before, "MXCSR control bits 0x%04x before %s, 0x%04x after (%s)", before,
           after_what, now, setting);
}

/* Plans (ESTIMATE and MEASURE, every strategy forced) and executes on 1 and 2 threads,
 * reading the control bits after each call. */
static void mxcsr_round(const layer *l, unsigned before, const char *setting) {
    convblas_layer_desc d = l->d;
    data t;
    data_alloc(&t, &d, &l->in);
    tu_rng rng;
    tu_rng_seed(&rng, 99);
    fill_magnitude(&rng, t.x, t.sz.input, 1e-39f, 1e-38f); /* denormals: DAZ matters */
    fill_magnitude(&rng, t.kernel, t.sz.kernel, 0.25f, 1.0f);
    fill_magnitude(&rng, t.pointwise, t.sz.pointwise, 0.25f, 1.0f);
    fill_magnitude(&rng, t.bias, t.sz.bias, 0.0f, 1e-40f);
    convblas_weights w = weights_of(&t, &d);
    float *y = xmalloc(t.sz.output * sizeof(float));
    for (int s = -1; s < convblas_strategy_count(); s++)
        for (int mode = 0; mode < 2; mode++)
            for (int th = 1; th <= 2; th++) {
                convblas_plan_options o = {.mode = mode ? CONVBLAS_MEASURE : CONVBLAS_ESTIMATE,
                                           .strategy = s < 0 ? NULL : convblas_strategy_name(s),
                                           .threads = th};
                convblas_plan *plan = NULL;
                convblas_status st = convblas_plan_create(&plan, &d, &l->in, &o);
                check_csr(before, mode ? "plan_create (MEASURE)" : "plan_create (ESTIMATE)",
                          setting);
                if (st != CONVBLAS_OK) continue;
                st = convblas_execute(plan, t.x, &w, y, NULL);
                CHECKF(st == CONVBLAS_OK, "execute: %s", convblas_last_error());
                check_csr(before, "execute", setting);
                convblas_plan_destroy(plan);
            }
    free(y);
    data_free(&t);
}

static void test_mxcsr(void) {
    unsigned saved = _mm_getcsr();
    for (int ftz = 0; ftz < 2; ftz++) {
        unsigned csr = saved & ~(unsigned)(MXCSR_FTZ | MXCSR_DAZ | MXCSR_FLAGS);
        if (ftz) csr |= MXCSR_FTZ | MXCSR_DAZ;
        _mm_setcsr(csr);
        unsigned before = control_bits();
        const char *setting = ftz ? "FTZ and DAZ set by the caller" : "FTZ and DAZ clear";
        for (int li = 0; li < LAYERS; li += 3) mxcsr_round(&layers[li], before, setting);
    }
    _mm_setcsr(saved);
    printf("MXCSR: unchanged by plan_create and execute, FTZ/DAZ on and off\n");
}
#endif

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--verbose")) {
            verbose = true;
        } else if (!strcmp(argv[i], "--kernel-padding")) {
            selected = RUN_KERNEL_PADDING;
        } else {
            fprintf(stderr, "usage: %s [--kernel-padding] [--verbose]\n", argv[0]);
            return 2;
        }
    }
    int count = convblas_strategy_count();
    if (count > TU_MAX_STRATEGIES) {
        fprintf(stderr, "test_ieee: %d strategies, more than %d\n", count, TU_MAX_STRATEGIES);
        return 2;
    }
    test_specials();
    if (selected == RUN_MAIN) {
        test_activations();
        test_denormals();
#ifdef HAVE_MXCSR
        test_mxcsr();
#endif
    }
    for (int s = 0; s <= count && selected == RUN_MAIN; s++) {
        CHECKF(ran[s] > 0 || (s < count && tu_strategy_missing_cpu(convblas_strategy_name(s))),
               "%s never ran", s < count ? convblas_strategy_name(s) : "the planner");
        if (verbose)
            printf("  %-20s %ld runs\n", s < count ? convblas_strategy_name(s) : "(planner)",
                   ran[s]);
    }
    return tu_finish("ieee");
}

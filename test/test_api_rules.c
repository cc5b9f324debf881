/* The rules of the public API contract (design section 3) that are not errors: the
 * per-thread last error, status and strategy names, NULL plans, describe's snprintf
 * behaviour, defaults (0 = Keras's), batch 0, rank 1 ignoring index 1, fields that do not
 * apply being ignored, caller workspace vs NULL, forcing through CONVBLAS_STRATEGY, thread
 * counts, workspace limits, concurrent execution of one plan, version and build info. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* setenv, unsetenv */
#endif

#include <convblas.h>

#include "crash_report.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- checking ------------------------------------------------------------------------ */

static int failures;
static int checks;
static char current[256] = "(setup)";
static pthread_mutex_t check_lock = PTHREAD_MUTEX_INITIALIZER;

static void set_case(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_case(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(current, sizeof current, fmt, ap);
    va_end(ap);
}

static int check_(int ok, const char *expr, int line) {
    pthread_mutex_lock(&check_lock);
    checks++;
    if (!ok) {
        failures++;
        fprintf(stderr, "test_api_rules.c:%d: CHECK failed: %s\n  case: %s\n", line, expr, current);
    }
    pthread_mutex_unlock(&check_lock);
    return ok;
}
#define CHECK(cond) check_((cond) ? 1 : 0, #cond, __LINE__)

static int check_ok_(convblas_status st, const char *call, int line) {
    if (st == CONVBLAS_OK) return check_(1, call, line);
    char what[512];
    snprintf(what, sizeof what, "%s returned %s: %s", call, convblas_status_name(st),
             convblas_last_error());
    return check_(0, what, line);
}
#define CHECK_OK(call) check_ok_((call), #call, __LINE__)

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "test_api_rules: out of memory\n");
        exit(2);
    }
    return p;
}

/* ---- layers and data ----------------------------------------------------------------- */

static uint32_t rng_state = 12345u;
static float rnd(void) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) * (1.0f / 8388608.0f) - 1.0f;
}
static float *random_floats(int64_t n) {
    float *p = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = rnd();
    return p;
}

static int64_t shape_elems(const convblas_shape *s, int rank) {
    return s->batch * s->spatial[0] * (rank == 2 ? s->spatial[1] : 1) * s->channels;
}

/* Weights and input for a layer whose descriptor has every field clean (no garbage). */
typedef struct data {
    int64_t in_n, k_n, pw_n, b_n;
    float *x, *kernel, *pointwise, *bias;
} data;

static data make_data(const convblas_layer_desc *d, const convblas_shape *s) {
    data t;
    int64_t taps = d->kernel_size[0] * (d->rank == 2 ? d->kernel_size[1] : 1);
    int64_t mult = d->depth_multiplier > 0 ? d->depth_multiplier : 1;
    int64_t groups = d->groups > 0 ? d->groups : 1;
    t.in_n = shape_elems(s, d->rank);
    switch (d->op) {
    case CONVBLAS_CONV:
        t.k_n = taps * (s->channels / groups) * d->filters;
        t.pw_n = 0;
        t.b_n = d->filters;
        break;
    case CONVBLAS_DEPTHWISE:
        t.k_n = taps * s->channels * mult;
        t.pw_n = 0;
        t.b_n = s->channels * mult;
        break;
    default:
        t.k_n = taps * s->channels * mult;
        t.pw_n = s->channels * mult * d->filters;
        t.b_n = d->filters;
        break;
    }
    t.x = random_floats(t.in_n);
    t.kernel = random_floats(t.k_n);
    t.pointwise = random_floats(t.pw_n);
    t.bias = random_floats(t.b_n);
    return t;
}
static void free_data(data *t) {
    free(t->x);
    free(t->kernel);
    free(t->pointwise);
    free(t->bias);
}
static convblas_weights weights_of(const data *t) {
    return (convblas_weights){
        .kernel = t->kernel, .pointwise_kernel = t->pointwise, .bias = t->bias};
}

/* Plans (with options o) and runs d on t's data; returns the output (malloc'd), its shape
 * and element count, or NULL (and a failed check) on any error. */
static float *run(const convblas_layer_desc *d, const convblas_shape *s,
                  const convblas_plan_options *o, const data *t, convblas_shape *out,
                  int64_t *out_n) {
    convblas_plan *plan = NULL;
    if (!CHECK_OK(convblas_output_shape(d, s, out))) return NULL;
    if (!CHECK_OK(convblas_plan_create(&plan, d, s, o))) return NULL;
    *out_n = shape_elems(out, d->rank);
    float *y = xmalloc((size_t)(*out_n > 0 ? *out_n : 1) * sizeof(float));
    convblas_weights w = weights_of(t);
    if (!CHECK_OK(convblas_execute(plan, t->x, &w, y, NULL))) {
        free(y);
        y = NULL;
    }
    convblas_plan_destroy(plan);
    return y;
}

static int same_shape(const convblas_shape *a, const convblas_shape *b) {
    return a->batch == b->batch && a->spatial[0] == b->spatial[0] &&
           a->spatial[1] == b->spatial[1] && a->channels == b->channels;
}

static int close_arrays(const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!(fabsf(a[i] - b[i]) <= 1e-5f * (1.0f + fabsf(a[i])))) {
            fprintf(stderr, "  element %lld: %.9g vs %.9g\n", (long long)i, (double)a[i],
                    (double)b[i]);
            return 0;
        }
    return 1;
}

/* The same layer twice, d_ref clean and d_alt with other spellings of the same meaning:
 * same output shape, same values. */
static void check_equivalent(const char *what, const convblas_layer_desc *d_ref,
                             const convblas_shape *s_ref, const convblas_layer_desc *d_alt,
                             const convblas_shape *s_alt) {
    set_case("%s", what);
    data t = make_data(d_ref, s_ref);
    convblas_shape o1, o2;
    int64_t n1 = 0, n2 = 0;
    float *y1 = run(d_ref, s_ref, NULL, &t, &o1, &n1);
    float *y2 = run(d_alt, s_alt, NULL, &t, &o2, &n2);
    if (y1 && y2) {
        CHECK(same_shape(&o1, &o2));
        if (CHECK(n1 == n2)) CHECK(close_arrays(y1, y2, n1));
    }
    free(y1);
    free(y2);
    free_data(&t);
}

static char *describe_text(const convblas_plan *plan) {
    int n = convblas_plan_describe(plan, NULL, 0);
    if (!CHECK(n > 0)) return NULL;
    char *text = xmalloc((size_t)n + 1);
    CHECK(convblas_plan_describe(plan, text, (size_t)n + 1) == n);
    CHECK(strlen(text) == (size_t)n);
    return text;
}

static int strategy_index(const char *name) {
    for (int i = 0; i < convblas_strategy_count(); i++)
        if (strcmp(convblas_strategy_name(i), name) == 0) return i;
    return -1;
}

/* ---- last error and threads --------------------------------------------------------- */

typedef struct thread_report {
    int saw_null;
    char first[512];      /* last_error on entry */
    char after_fail[512]; /* after its own failure */
    char after_ok[512];   /* after a successful call that followed */
    int concurrent_bad;   /* concurrent phase: iterations whose message was not its own */
    int rank;             /* the bad rank this thread uses */
} thread_report;

static pthread_barrier_t barrier;
static int use_barrier;

static void fail_with_rank(int rank) {
    convblas_layer_desc d = {.op = CONVBLAS_CONV, .rank = rank, .filters = 1, .kernel_size = {1}};
    convblas_shape s = {.batch = 1, .spatial = {4}, .channels = 1}, out;
    (void)convblas_output_shape(&d, &s, &out);
}

static void *thread_main(void *arg) {
    thread_report *r = arg;
    const char *e = convblas_last_error();
    r->saw_null = e == NULL;
    snprintf(r->first, sizeof r->first, "%s", e ? e : "(NULL)");
    if (use_barrier) pthread_barrier_wait(&barrier);
    fail_with_rank(r->rank);
    snprintf(r->after_fail, sizeof r->after_fail, "%s", convblas_last_error());
    convblas_layer_desc d = {.op = CONVBLAS_CONV, .rank = 1, .filters = 1, .kernel_size = {1}};
    convblas_shape s = {.batch = 1, .spatial = {4}, .channels = 1}, out;
    (void)convblas_output_shape(&d, &s, &out);
    snprintf(r->after_ok, sizeof r->after_ok, "%s", convblas_last_error());
    if (use_barrier) {
        char mine[512];
        snprintf(mine, sizeof mine, "%s", r->after_fail);
        pthread_barrier_wait(&barrier);
        for (int i = 0; i < 2000; i++) {
            fail_with_rank(r->rank);
            if (strcmp(convblas_last_error(), mine) != 0) r->concurrent_bad++;
        }
    }
    return NULL;
}

static void test_last_error(void) {
    /* main has made no call yet */
    set_case("last_error before any failure (main thread)");
    const char *e = convblas_last_error();
    CHECK(e != NULL);
    if (e) CHECK(e[0] == '\0');

    /* a fresh thread sees "" */
    set_case("last_error in a fresh thread");
    thread_report a = {.rank = 5};
    pthread_t id;
    CHECK(pthread_create(&id, NULL, thread_main, &a) == 0);
    pthread_join(id, NULL);
    CHECK(!a.saw_null);
    CHECK(strcmp(a.first, "") == 0);
    CHECK(a.after_fail[0] != '\0' && strstr(a.after_fail, "5") != NULL);
    CHECK(strcmp(a.after_ok, a.after_fail) == 0);

    /* the thread's failure does not show in main */
    set_case("another thread's failure does not show");
    e = convblas_last_error();
    CHECK(e != NULL && e[0] == '\0');

    /* main fails; a new thread still sees "", and main keeps its own message */
    set_case("main's failure does not show in a new thread");
    fail_with_rank(9);
    char mine[512];
    snprintf(mine, sizeof mine, "%s", convblas_last_error());
    CHECK(mine[0] != '\0' && strstr(mine, "9") != NULL);
    thread_report b = {.rank = 6};
    CHECK(pthread_create(&id, NULL, thread_main, &b) == 0);
    pthread_join(id, NULL);
    CHECK(strcmp(b.first, "") == 0);
    CHECK(strcmp(convblas_last_error(), mine) == 0);

    /* successful calls of every kind do not clear it */
    set_case("successful calls do not clear last_error");
    convblas_layer_desc d = {.op = CONVBLAS_CONV, .rank = 1, .filters = 3, .kernel_size = {2}};
    convblas_shape s = {.batch = 1, .spatial = {5}, .channels = 2}, out;
    CHECK_OK(convblas_output_shape(&d, &s, &out));
    CHECK(strcmp(convblas_last_error(), mine) == 0);
    convblas_plan *plan = NULL;
    CHECK_OK(convblas_plan_create(&plan, &d, &s, NULL));
    CHECK(strcmp(convblas_last_error(), mine) == 0);
    data t = make_data(&d, &s);
    float y[12];
    convblas_weights w = weights_of(&t);
    CHECK_OK(convblas_execute(plan, t.x, &w, y, NULL));
    char buf[64];
    (void)convblas_plan_describe(plan, buf, sizeof buf);
    (void)convblas_plan_strategy(plan);
    (void)convblas_plan_workspace_size(plan);
    (void)convblas_status_name(CONVBLAS_OK);
    (void)convblas_version();
    (void)convblas_build_info();
    convblas_plan_destroy(plan);
    free_data(&t);
    CHECK(strcmp(convblas_last_error(), mine) == 0);

    /* two threads failing at once, each keeps seeing its own message */
    set_case("concurrent failures in two threads");
    use_barrier = 1;
    pthread_barrier_init(&barrier, NULL, 2);
    thread_report c1 = {.rank = 11}, c2 = {.rank = 22};
    pthread_t i1, i2;
    CHECK(pthread_create(&i1, NULL, thread_main, &c1) == 0);
    CHECK(pthread_create(&i2, NULL, thread_main, &c2) == 0);
    pthread_join(i1, NULL);
    pthread_join(i2, NULL);
    pthread_barrier_destroy(&barrier);
    use_barrier = 0;
    CHECK(strcmp(c1.first, "") == 0 && strcmp(c2.first, "") == 0);
    CHECK(strcmp(c1.after_fail, c2.after_fail) != 0);
    CHECK(c1.concurrent_bad == 0 && c2.concurrent_bad == 0);
    CHECK(strcmp(convblas_last_error(), mine) == 0);
}

/* ---- names ----------------------------------------------------------------------------- */

static void test_names(void) {
    set_case("status names");
    static const struct {
        convblas_status s;
        const char *name;
    } names[] = {{CONVBLAS_OK, "OK"},
                 {CONVBLAS_INVALID_ARGUMENT, "INVALID_ARGUMENT"},
                 {CONVBLAS_UNSUPPORTED, "UNSUPPORTED"},
                 {CONVBLAS_OUT_OF_MEMORY, "OUT_OF_MEMORY"},
                 {CONVBLAS_TOO_LARGE, "TOO_LARGE"},
                 {CONVBLAS_IO_ERROR, "IO_ERROR"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *n = convblas_status_name(names[i].s);
        if (CHECK(n != NULL)) CHECK(strcmp(n, names[i].name) == 0);
    }
    const int unknown[] = {6, 99, -1, INT32_MAX};
    for (int i = 0; i < 4; i++) {
        const char *n = convblas_status_name((convblas_status)unknown[i]);
        if (CHECK(n != NULL)) CHECK(strcmp(n, "UNKNOWN") == 0);
    }

    set_case("strategy names");
    int count = convblas_strategy_count();
    CHECK(count > 0);
    CHECK(convblas_strategy_name(-1) == NULL);
    CHECK(convblas_strategy_name(count) == NULL);
    CHECK(convblas_strategy_name(count + 1) == NULL);
    CHECK(convblas_strategy_name(INT32_MIN) == NULL);
    CHECK(convblas_strategy_name(INT32_MAX) == NULL);
    for (int i = 0; i < count; i++) {
        const char *n = convblas_strategy_name(i);
        if (!CHECK(n != NULL)) continue;
        CHECK(n[0] != '\0');
        CHECK(strategy_index(n) == i); /* unique: the first with this name is i */
        for (const char *c = n; *c; c++)
            CHECK((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_');
    }
    CHECK(strategy_index("im2col_gemm") >= 0); /* design section 4: works for every layer */

    set_case("version and build info");
    const char *v = convblas_version();
    if (CHECK(v != NULL)) {
        int major, minor, patch;
        char rest;
        CHECK(v[0] != '\0');
        CHECK(sscanf(v, "%d.%d.%d%c", &major, &minor, &patch, &rest) == 3);
    }
    const char *b = convblas_build_info();
    if (CHECK(b != NULL)) CHECK(strlen(b) > 0);
}

/* ---- NULL plans and describe --------------------------------------------------------- */

static void test_null_plan(void) {
    set_case("NULL plan");
    CHECK(convblas_plan_strategy(NULL) == NULL);
    char buf[16] = "untouched";
    CHECK(convblas_plan_describe(NULL, buf, sizeof buf) == -1);
    CHECK(strcmp(buf, "untouched") == 0 || buf[0] == '\0');
    CHECK(convblas_plan_describe(NULL, NULL, 0) == -1);
    CHECK(convblas_plan_workspace_size(NULL) == 0);
    convblas_plan_destroy(NULL);
}

static void test_describe(void) {
    set_case("describe is snprintf-like");
    convblas_layer_desc d = {.op = CONVBLAS_CONV,
                             .rank = 1,
                             .filters = 8,
                             .kernel_size = {3},
                             .padding = CONVBLAS_SAME,
                             .activation = CONVBLAS_RELU,
                             .use_bias = true};
    convblas_shape s = {.batch = 2, .spatial = {20}, .channels = 4};
    convblas_plan *plan = NULL;
    if (!CHECK_OK(convblas_plan_create(&plan, &d, &s, NULL))) return;
    const char *strategy = convblas_plan_strategy(plan);
    CHECK(strategy != NULL && strategy_index(strategy) >= 0);

    int n = convblas_plan_describe(plan, NULL, 0);
    CHECK(n > 0);
    char *full = describe_text(plan);
    if (!full) {
        convblas_plan_destroy(plan);
        return;
    }
    CHECK(strstr(full, strategy) != NULL);
    /* stable: the same text every time */
    char *again = describe_text(plan);
    if (again) CHECK(strcmp(full, again) == 0);
    free(again);

    /* buffers of every size up to the full length and beyond: truncated, terminated, the
     * bytes after `size` untouched, the return value always the full length */
    char *buf = xmalloc((size_t)n + 64);
    for (size_t size = 0; size <= (size_t)n + 8; size++) {
        memset(buf, 'Z', (size_t)n + 64);
        int r = convblas_plan_describe(plan, buf, size);
        if (!CHECK(r == n)) break;
        if (size == 0) {
            CHECK(buf[0] == 'Z');
            continue;
        }
        size_t kept = size - 1 < (size_t)n ? size - 1 : (size_t)n;
        CHECK(buf[kept] == '\0');
        CHECK(memcmp(buf, full, kept) == 0);
        for (size_t i = size; i < (size_t)n + 64; i++)
            if (buf[i] != 'Z') {
                CHECK(!"describe wrote past size");
                break;
            }
    }
    /* a non-NULL buffer with size 0 is not written */
    memset(buf, 'Z', 4);
    CHECK(convblas_plan_describe(plan, buf, 0) == n);
    CHECK(buf[0] == 'Z');
    free(buf);
    free(full);
    convblas_plan_destroy(plan);

    /* On a layer some strategy cannot run, describe says which and why ("rejected"). */
    set_case("describe names rejected strategies");
    convblas_layer_desc k3 = {
        .op = CONVBLAS_CONV, .rank = 1, .filters = 8, .kernel_size = {3}, .strides = {2}};
    if (!CHECK_OK(convblas_plan_create(&plan, &k3, &s, NULL))) return;
    full = describe_text(plan);
    int rejected = 0;
    for (int i = 0; full && i < convblas_strategy_count(); i++) {
        const char *name = convblas_strategy_name(i);
        convblas_plan_options o = {.strategy = name};
        convblas_plan *forced = NULL;
        convblas_status st = convblas_plan_create(&forced, &k3, &s, &o);
        CHECK(st == CONVBLAS_OK || st == CONVBLAS_UNSUPPORTED);
        if (st == CONVBLAS_UNSUPPORTED) {
            rejected++;
            CHECK(strstr(full, name) != NULL);
        }
        convblas_plan_destroy(forced);
    }
    if (full && strategy_index("pointwise_gemm") >= 0) {
        CHECK(rejected > 0);
        CHECK(strstr(full, "pointwise_gemm") != NULL);
    }
    if (full && rejected > 0) CHECK(strstr(full, "rejected") != NULL);
    free(full);
    convblas_plan_destroy(plan);
}

/* ---- defaults and ignored fields ----------------------------------------------------- */

static convblas_layer_desc layer(convblas_op op, int rank, convblas_data_format f) {
    convblas_layer_desc d = {.op = op,
                             .rank = rank,
                             .filters = op == CONVBLAS_DEPTHWISE ? 0 : 6,
                             .kernel_size = {3, 2},
                             .padding = CONVBLAS_SAME,
                             .data_format = f,
                             .activation = CONVBLAS_TANH,
                             .use_bias = true};
    return d;
}
static convblas_shape shape_for(int rank) {
    return rank == 2 ? (convblas_shape){.batch = 2, .spatial = {5, 6}, .channels = 4}
                     : (convblas_shape){.batch = 3, .spatial = {9}, .channels = 4};
}

static void test_defaults(void) {
    const convblas_op ops[] = {CONVBLAS_CONV, CONVBLAS_DEPTHWISE, CONVBLAS_SEPARABLE};
    for (int oi = 0; oi < 3; oi++)
        for (int rank = 1; rank <= 2; rank++)
            for (int f = 0; f < 2; f++) {
                convblas_layer_desc zero = layer(ops[oi], rank, (convblas_data_format)f);
                convblas_shape s = shape_for(rank);
                convblas_layer_desc ones = zero;
                ones.strides[0] = ones.strides[1] = 1;
                ones.dilation_rate[0] = ones.dilation_rate[1] = 1;
                if (ops[oi] == CONVBLAS_CONV)
                    ones.groups = 1;
                else
                    ones.depth_multiplier = 1;
                char what[128];
                snprintf(what, sizeof what, "0 means 1 (op %d, rank %d, format %d)", oi, rank, f);
                check_equivalent(what, &zero, &s, &ones, &s);

                /* activation_alpha 0 is Keras's default: elu 1, leaky_relu 0.2 */
                convblas_layer_desc a0 = zero, a1 = zero;
                a0.activation = a1.activation = CONVBLAS_LEAKY_RELU;
                a1.activation_alpha = 0.2f;
                snprintf(what, sizeof what, "leaky_relu alpha 0 means 0.2 (op %d, rank %d)", oi,
                         rank);
                check_equivalent(what, &a1, &s, &a0, &s);
                a0.activation = a1.activation = CONVBLAS_ELU;
                a1.activation_alpha = 1.0f;
                snprintf(what, sizeof what, "elu alpha 0 means 1 (op %d, rank %d)", oi, rank);
                check_equivalent(what, &a1, &s, &a0, &s);
            }

    /* output_shape: 0 and 1 give the same shape; strides > 1 with dilation > 1 accepted */
    set_case("strides and dilation together");
    convblas_layer_desc d = layer(CONVBLAS_CONV, 1, CONVBLAS_CHANNELS_LAST);
    d.strides[0] = 2;
    d.dilation_rate[0] = 2;
    d.padding = CONVBLAS_VALID;
    convblas_shape s = {.batch = 1, .spatial = {11}, .channels = 4}, out;
    CHECK_OK(convblas_output_shape(&d, &s, &out));
    CHECK(out.spatial[0] == (11 - 5) / 2 + 1);
}

static void test_rank1_ignores_index1(void) {
    const convblas_op ops[] = {CONVBLAS_CONV, CONVBLAS_DEPTHWISE, CONVBLAS_SEPARABLE};
    const convblas_padding pads[] = {CONVBLAS_VALID, CONVBLAS_SAME, CONVBLAS_CAUSAL};
    for (int oi = 0; oi < 3; oi++)
        for (int pi = 0; pi < 3; pi++)
            for (int f = 0; f < 2; f++) {
                convblas_layer_desc clean = layer(ops[oi], 1, (convblas_data_format)f);
                clean.padding = pads[pi];
                clean.kernel_size[1] = 0;
                convblas_shape s = shape_for(1);
                convblas_layer_desc junk = clean;
                junk.kernel_size[1] = -9;
                junk.strides[1] = -3;
                junk.dilation_rate[1] = -2;
                convblas_shape sj = s;
                sj.spatial[1] = -7;
                char what[128];
                snprintf(what, sizeof what, "rank 1 ignores index 1 (op %d, padding %d, format %d)",
                         oi, pi, f);
                check_equivalent(what, &clean, &s, &junk, &sj);
                set_case("%s: output spatial[1]", what);
                convblas_shape out = {.spatial = {-1, -1}};
                CHECK_OK(convblas_output_shape(&junk, &sj, &out));
                CHECK(out.spatial[1] == 0);
                sj.spatial[1] = INT64_MAX;
                junk.kernel_size[1] = INT64_MAX;
                junk.dilation_rate[1] = INT64_MAX;
                CHECK_OK(convblas_output_shape(&junk, &sj, &out));
                CHECK(out.spatial[1] == 0);
            }
}

static void test_ignored_fields(void) {
    for (int rank = 1; rank <= 2; rank++) {
        convblas_shape s = shape_for(rank);
        char what[128];

        /* DEPTHWISE ignores filters and groups */
        convblas_layer_desc clean = layer(CONVBLAS_DEPTHWISE, rank, CONVBLAS_CHANNELS_LAST);
        clean.depth_multiplier = 2;
        convblas_layer_desc junk = clean;
        junk.filters = -3;
        junk.groups = -5;
        snprintf(what, sizeof what, "DEPTHWISE ignores filters -3, groups -5 (rank %d)", rank);
        check_equivalent(what, &clean, &s, &junk, &s);
        junk.filters = 7;
        junk.groups = 3; /* would not divide channels 4 */
        snprintf(what, sizeof what, "DEPTHWISE ignores filters 7, groups 3 (rank %d)", rank);
        check_equivalent(what, &clean, &s, &junk, &s);

        /* SEPARABLE ignores groups */
        clean = layer(CONVBLAS_SEPARABLE, rank, CONVBLAS_CHANNELS_FIRST);
        junk = clean;
        junk.groups = -5;
        snprintf(what, sizeof what, "SEPARABLE ignores groups -5 (rank %d)", rank);
        check_equivalent(what, &clean, &s, &junk, &s);
        junk.groups = 3;
        snprintf(what, sizeof what, "SEPARABLE ignores groups 3 (rank %d)", rank);
        check_equivalent(what, &clean, &s, &junk, &s);

        /* CONV ignores depth_multiplier */
        clean = layer(CONVBLAS_CONV, rank, CONVBLAS_CHANNELS_LAST);
        clean.groups = 2;
        junk = clean;
        junk.depth_multiplier = -4;
        snprintf(what, sizeof what, "CONV ignores depth_multiplier -4 (rank %d)", rank);
        check_equivalent(what, &clean, &s, &junk, &s);
    }
}

/* ---- batch 0 ---------------------------------------------------------------------------- */

static void test_batch0(void) {
    const convblas_op ops[] = {CONVBLAS_CONV, CONVBLAS_DEPTHWISE, CONVBLAS_SEPARABLE};
    for (int oi = 0; oi < 3; oi++)
        for (int rank = 1; rank <= 2; rank++) {
            set_case("batch 0 (op %d, rank %d)", oi, rank);
            convblas_layer_desc d = layer(ops[oi], rank, CONVBLAS_CHANNELS_LAST);
            convblas_shape s = shape_for(rank);
            data t = make_data(&d, &s); /* batch > 0 sized: plenty */
            s.batch = 0;
            convblas_shape out;
            CHECK_OK(convblas_output_shape(&d, &s, &out));
            CHECK(out.batch == 0);
            CHECK(out.channels == (ops[oi] == CONVBLAS_DEPTHWISE ? s.channels : d.filters));
            float sentinel[16];
            for (int i = 0; i < 16; i++) sentinel[i] = -777.0f;
            convblas_weights w = weights_of(&t);
            for (int m = 0; m < 2; m++) {
                convblas_plan_options o = {.mode = m ? CONVBLAS_MEASURE : CONVBLAS_ESTIMATE};
                convblas_plan *plan = NULL;
                if (!CHECK_OK(convblas_plan_create(&plan, &d, &s, &o))) continue;
                CHECK_OK(convblas_execute(plan, t.x, &w, sentinel, NULL));
                char ws[64];
                CHECK_OK(convblas_execute(plan, t.x, &w, sentinel, ws));
                convblas_plan_destroy(plan);
            }
            for (int i = 0; i < convblas_strategy_count(); i++) {
                convblas_plan_options o = {.strategy = convblas_strategy_name(i)};
                convblas_plan *plan = NULL;
                convblas_status st = convblas_plan_create(&plan, &d, &s, &o);
                CHECK(st == CONVBLAS_OK || st == CONVBLAS_UNSUPPORTED);
                if (st == CONVBLAS_OK) CHECK_OK(convblas_execute(plan, t.x, &w, sentinel, NULL));
                convblas_plan_destroy(plan);
            }
            for (int i = 0; i < 16; i++) CHECK(sentinel[i] == -777.0f);
            free_data(&t);
        }
}

/* ---- workspace ---------------------------------------------------------------------- */

static convblas_layer_desc ws_layers[6];
static convblas_shape ws_shapes[6];
static void init_ws_layers(void) {
    ws_layers[0] = layer(CONVBLAS_CONV, 1, CONVBLAS_CHANNELS_LAST);
    ws_layers[1] = layer(CONVBLAS_CONV, 2, CONVBLAS_CHANNELS_FIRST);
    ws_layers[2] = layer(CONVBLAS_DEPTHWISE, 1, CONVBLAS_CHANNELS_FIRST);
    ws_layers[3] = layer(CONVBLAS_SEPARABLE, 2, CONVBLAS_CHANNELS_LAST);
    ws_layers[4] = layer(CONVBLAS_CONV, 1, CONVBLAS_CHANNELS_FIRST);
    ws_layers[4].kernel_size[0] = 1;
    ws_layers[5] = layer(CONVBLAS_CONV, 2, CONVBLAS_CHANNELS_LAST);
    ws_layers[5].kernel_size[0] = ws_layers[5].kernel_size[1] = 1;
    ws_layers[5].groups = 2;
    for (int l = 0; l < 6; l++) {
        ws_shapes[l] = ws_layers[l].rank == 2
                           ? (convblas_shape){.batch = 3, .spatial = {17, 13}, .channels = 8}
                           : (convblas_shape){.batch = 3, .spatial = {200}, .channels = 8};
    }
}

/* Every strategy that can run the layer: caller workspace (exactly its size, from malloc)
 * and NULL give identical output; a second run gives it again. */
static void test_workspace(void) {
    for (int l = 0; l < 6; l++)
        for (int i = 0; i < convblas_strategy_count(); i++) {
            const char *name = convblas_strategy_name(i);
            set_case("caller workspace vs NULL (layer %d, %s)", l, name);
            convblas_layer_desc *d = &ws_layers[l];
            convblas_shape *s = &ws_shapes[l];
            convblas_plan_options o = {.strategy = name, .threads = 3};
            convblas_plan *plan = NULL;
            convblas_status st = convblas_plan_create(&plan, d, s, &o);
            CHECK(st == CONVBLAS_OK || st == CONVBLAS_UNSUPPORTED);
            if (st != CONVBLAS_OK) continue;
            CHECK(strcmp(convblas_plan_strategy(plan), name) == 0);
            convblas_shape out;
            CHECK_OK(convblas_output_shape(d, s, &out));
            int64_t n = shape_elems(&out, d->rank);
            data t = make_data(d, s);
            convblas_weights w = weights_of(&t);
            float *y1 = xmalloc((size_t)n * sizeof(float));
            float *y2 = xmalloc((size_t)n * sizeof(float));
            float *y3 = xmalloc((size_t)n * sizeof(float));
            for (int64_t k = 0; k < n; k++) y1[k] = y2[k] = y3[k] = NAN;
            size_t bytes = convblas_plan_workspace_size(plan);
            void *ws = bytes ? xmalloc(bytes) : NULL;
            if (ws) memset(ws, 0xA5, bytes);
            CHECK_OK(convblas_execute(plan, t.x, &w, y1, NULL));
            if (bytes)
                CHECK_OK(convblas_execute(plan, t.x, &w, y2, ws));
            else
                memcpy(y2, y1, (size_t)n * sizeof(float));
            CHECK_OK(convblas_execute(plan, t.x, &w, y3, NULL));
            CHECK(memcmp(y1, y2, (size_t)n * sizeof(float)) == 0);
            CHECK(memcmp(y1, y3, (size_t)n * sizeof(float)) == 0);
            int finite = 1;
            for (int64_t k = 0; k < n; k++) finite &= isfinite(y1[k]) != 0;
            CHECK(finite);
            free(ws);
            free(y1);
            free(y2);
            free(y3);
            free_data(&t);
            convblas_plan_destroy(plan);
        }
}

/* Plans never exceed options.workspace_limit, and a limited plan computes the same. */
static void test_workspace_limit(void) {
    const size_t limits[] = {4096, 1000, 100, 64 << 10};
    for (int l = 0; l < 6; l++)
        for (int li = 0; li < 4; li++)
            for (int i = -1; i < convblas_strategy_count(); i++) {
                const char *name = i < 0 ? NULL : convblas_strategy_name(i);
                set_case("workspace_limit %zu (layer %d, %s)", limits[li], l,
                         name ? name : "planner");
                convblas_layer_desc *d = &ws_layers[l];
                convblas_shape *s = &ws_shapes[l];
                convblas_plan_options o = {.strategy = name, .workspace_limit = limits[li]};
                convblas_plan *plan = NULL;
                convblas_status st = convblas_plan_create(&plan, d, s, &o);
                CHECK(st == CONVBLAS_OK || st == CONVBLAS_UNSUPPORTED);
                if (st != CONVBLAS_OK) continue;
                CHECK(convblas_plan_workspace_size(plan) <= limits[li]);
                convblas_plan_destroy(plan);
                data t = make_data(d, s);
                convblas_shape o1, o2;
                int64_t n1 = 0, n2 = 0;
                convblas_plan_options unlimited = {.strategy = name};
                float *y1 = run(d, s, &unlimited, &t, &o1, &n1);
                float *y2 = run(d, s, &o, &t, &o2, &n2);
                if (y1 && y2 && CHECK(n1 == n2)) CHECK(close_arrays(y1, y2, n1));
                free(y1);
                free(y2);
                free_data(&t);
            }
}

/* ---- forcing and threads -------------------------------------------------------------- */

static void test_env_forcing(void) {
    for (int i = 0; i < convblas_strategy_count(); i++) {
        const char *name = convblas_strategy_name(i);
        for (int l = 0; l < 6; l++) {
            set_case("CONVBLAS_STRATEGY=%s (layer %d)", name, l);
            convblas_plan_options forced = {.strategy = name};
            convblas_plan *plan = NULL;
            convblas_status st = convblas_plan_create(&plan, &ws_layers[l], &ws_shapes[l], &forced);
            convblas_plan_destroy(plan);
            if (st != CONVBLAS_OK) continue;
            setenv("CONVBLAS_STRATEGY", name, 1);
            plan = NULL;
            if (CHECK_OK(convblas_plan_create(&plan, &ws_layers[l], &ws_shapes[l], NULL))) {
                CHECK(strcmp(convblas_plan_strategy(plan), name) == 0);
                char *text = describe_text(plan);
                if (text) CHECK(strstr(text, "CONVBLAS_STRATEGY") != NULL);
                free(text);
            }
            convblas_plan_destroy(plan);
            /* also in MEASURE mode */
            convblas_plan_options m = {.mode = CONVBLAS_MEASURE};
            plan = NULL;
            if (CHECK_OK(convblas_plan_create(&plan, &ws_layers[l], &ws_shapes[l], &m)))
                CHECK(strcmp(convblas_plan_strategy(plan), name) == 0);
            convblas_plan_destroy(plan);
            /* options.strategy wins over the environment */
            for (int j = 0; j < convblas_strategy_count(); j++) {
                convblas_plan_options other = {.strategy = convblas_strategy_name(j)};
                plan = NULL;
                st = convblas_plan_create(&plan, &ws_layers[l], &ws_shapes[l], &other);
                CHECK(st == CONVBLAS_OK || st == CONVBLAS_UNSUPPORTED);
                if (st == CONVBLAS_OK)
                    CHECK(strcmp(convblas_plan_strategy(plan), convblas_strategy_name(j)) == 0);
                convblas_plan_destroy(plan);
            }
            unsetenv("CONVBLAS_STRATEGY");
        }
    }
    /* an empty CONVBLAS_STRATEGY is the same as none */
    set_case("empty CONVBLAS_STRATEGY");
    setenv("CONVBLAS_STRATEGY", "", 1);
    convblas_plan *plan = NULL;
    CHECK_OK(convblas_plan_create(&plan, &ws_layers[0], &ws_shapes[0], NULL));
    convblas_plan_destroy(plan);
    unsetenv("CONVBLAS_STRATEGY");
}

static int mentions_threads(const char *text, int n) {
    char a[32], b[32], c[32], d[32];
    snprintf(a, sizeof a, "threads %d", n);
    snprintf(b, sizeof b, "%d thread", n);
    snprintf(c, sizeof c, "threads: %d", n);
    snprintf(d, sizeof d, "threads=%d", n);
    return strstr(text, a) || strstr(text, b) || strstr(text, c) || strstr(text, d);
}

static void test_threads(void) {
    /* a layer with plenty of independent work */
    convblas_layer_desc d = layer(CONVBLAS_CONV, 1, CONVBLAS_CHANNELS_LAST);
    convblas_shape s = {.batch = 16, .spatial = {512}, .channels = 8};
    data t = make_data(&d, &s);
    convblas_shape out;
    int64_t n = 0;
    float *ref = NULL;
    const int counts[] = {1, 2, 3, 7};
    for (int ci = 0; ci < 4; ci++)
        for (int via_env = 0; via_env < 2; via_env++) {
            set_case("threads %d via %s", counts[ci], via_env ? "CONVBLAS_NUM_THREADS" : "options");
            convblas_plan_options o = {.threads = via_env ? 0 : counts[ci]};
            char v[16];
            snprintf(v, sizeof v, "%d", counts[ci]);
            if (via_env) setenv("CONVBLAS_NUM_THREADS", v, 1);
            convblas_plan *plan = NULL;
            if (CHECK_OK(convblas_plan_create(&plan, &d, &s, &o))) {
                char *text = describe_text(plan);
                if (text) {
                    CHECK(strstr(text, "thread") != NULL);
                    if (counts[ci] == 1) CHECK(mentions_threads(text, 1));
                    for (int k = counts[ci] + 1; k <= 16; k++) {
                        if (mentions_threads(text, k)) {
                            CHECK(!"describe shows more threads than asked for");
                            break;
                        }
                    }
                }
                free(text);
            }
            convblas_plan_destroy(plan);
            /* the thread count changes nothing in the result */
            float *y = run(&d, &s, &o, &t, &out, &n);
            unsetenv("CONVBLAS_NUM_THREADS");
            if (!ref)
                ref = y;
            else {
                if (y) CHECK(close_arrays(ref, y, n));
                free(y);
            }
        }
    /* options.threads wins over the environment */
    set_case("options.threads wins over CONVBLAS_NUM_THREADS");
    setenv("CONVBLAS_NUM_THREADS", "5", 1);
    convblas_plan_options o = {.threads = 1};
    convblas_plan *plan = NULL;
    if (CHECK_OK(convblas_plan_create(&plan, &d, &s, &o))) {
        char *text = describe_text(plan);
        if (text) CHECK(mentions_threads(text, 1) && !mentions_threads(text, 5));
        free(text);
    }
    convblas_plan_destroy(plan);
    unsetenv("CONVBLAS_NUM_THREADS");
    free(ref);
    free_data(&t);
}

/* ---- one plan, many threads ------------------------------------------------------------ */

typedef struct exec_job {
    const convblas_plan *plan;
    const data *t;
    int64_t n;
    const float *ref;
    int own_workspace;
    int mismatches;
    int errors;
} exec_job;

static void *exec_thread(void *arg) {
    exec_job *j = arg;
    float *y = xmalloc((size_t)j->n * sizeof(float));
    size_t bytes = convblas_plan_workspace_size(j->plan);
    void *ws = j->own_workspace && bytes ? xmalloc(bytes) : NULL;
    convblas_weights w = weights_of(j->t);
    for (int it = 0; it < 20; it++) {
        if (convblas_execute(j->plan, j->t->x, &w, y, ws) != CONVBLAS_OK)
            j->errors++;
        else if (memcmp(y, j->ref, (size_t)j->n * sizeof(float)) != 0)
            j->mismatches++;
    }
    free(ws);
    free(y);
    return NULL;
}

static void test_concurrent_execute(void) {
    for (int l = 0; l < 6; l++) {
        set_case("one plan executed from 4 threads at once (layer %d)", l);
        convblas_layer_desc *d = &ws_layers[l];
        convblas_shape *s = &ws_shapes[l];
        convblas_plan_options o = {.threads = 2};
        convblas_plan *plan = NULL;
        if (!CHECK_OK(convblas_plan_create(&plan, d, s, &o))) continue;
        char *before = describe_text(plan);
        convblas_shape out;
        CHECK_OK(convblas_output_shape(d, s, &out));
        int64_t n = shape_elems(&out, d->rank);
        data t = make_data(d, s);
        convblas_weights w = weights_of(&t);
        float *ref = xmalloc((size_t)n * sizeof(float));
        CHECK_OK(convblas_execute(plan, t.x, &w, ref, NULL));
        exec_job jobs[4];
        pthread_t ids[4];
        for (int k = 0; k < 4; k++) {
            jobs[k] = (exec_job){.plan = plan, .t = &t, .n = n, .ref = ref, .own_workspace = k % 2};
            CHECK(pthread_create(&ids[k], NULL, exec_thread, &jobs[k]) == 0);
        }
        for (int k = 0; k < 4; k++) {
            pthread_join(ids[k], NULL);
            CHECK(jobs[k].errors == 0);
            CHECK(jobs[k].mismatches == 0);
        }
        /* immutable: the same account after all that */
        char *after = describe_text(plan);
        if (before && after) CHECK(strcmp(before, after) == 0);
        free(before);
        free(after);
        free(ref);
        free_data(&t);
        convblas_plan_destroy(plan);
    }
}

int main(void) {
    crash_report_install("test_api_rules", current, sizeof current);
    unsetenv("CONVBLAS_STRATEGY");
    unsetenv("CONVBLAS_NUM_THREADS");
    /* First: before any other convblas call of this thread (the last error must be ""). */
    test_last_error();
    init_ws_layers();
    test_names();
    test_null_plan();
    test_describe();
    test_defaults();
    test_rank1_ignores_index1();
    test_ignored_fields();
    test_batch0();
    test_workspace();
    test_workspace_limit();
    test_env_forcing();
    test_threads();
    test_concurrent_execute();
    printf("test_api_rules: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}

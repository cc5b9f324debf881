/* Every allocation failure the library can meet, reached with the test-only allocator of
 * the CONVBLAS_FAULT_INJECTION build (lib/fault_injection.h): for a set of layers, both
 * planner modes, the planner's choice and every strategy forced, and execute with and
 * without a caller workspace, the sequence plan_create + execute + destroy is first run
 * to count its allocations, then run once per allocation with that one failing. The
 * failing call must return CONVBLAS_OUT_OF_MEMORY with a message, leave the output
 * untouched and leak nothing (the ASan/LSan build checks that); with failures off again,
 * the sequence must succeed and compute the same output. Wisdom is forgotten before each
 * run, so that MEASURE times (and allocates) every time; its recording may fail without
 * failing the plan, but must then remember nothing. Wisdom import and export are failed at
 * each of their allocations too: out of memory, with the wisdom and the file unchanged. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* write, unsetenv, mkdtemp */
#endif

#include <convblas.h>

#include "crash_report.h"

#include "fault_injection.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;
static int checks;
static char current[256] = "(setup)";

static int check_(int ok, const char *expr, int line) {
    checks++;
    if (!ok) {
        failures++;
        fprintf(stderr,
                "test_alloc_failure.c:%d: CHECK failed: %s\n  case: %s\n  last_error: \"%s\"\n",
                line, expr, current, convblas_last_error());
    }
    return ok;
}
#define CHECK(cond) check_((cond) ? 1 : 0, #cond, __LINE__)

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "test_alloc_failure: out of memory\n");
        exit(2);
    }
    return p;
}

static int contains_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] &&
               tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n) return 1;
    }
    return 0;
}

/* ---- layers ------------------------------------------------------------------------- */

typedef struct layer {
    const char *name;
    convblas_layer_desc desc;
    convblas_shape shape;
} layer;

static const layer layers[] = {
    {"Conv1D channels_last k3 same relu bias",
     {.op = CONVBLAS_CONV,
      .rank = 1,
      .filters = 8,
      .kernel_size = {3},
      .padding = CONVBLAS_SAME,
      .activation = CONVBLAS_RELU,
      .use_bias = true},
     {.batch = 2, .spatial = {33}, .channels = 5}},
    {"Conv1D channels_first k3 stride 2 valid",
     {.op = CONVBLAS_CONV,
      .rank = 1,
      .filters = 6,
      .kernel_size = {3},
      .strides = {2},
      .data_format = CONVBLAS_CHANNELS_FIRST},
     {.batch = 3, .spatial = {21}, .channels = 4}},
    {"Conv1D causal dilation 2 groups 2",
     {.op = CONVBLAS_CONV,
      .rank = 1,
      .filters = 6,
      .kernel_size = {3},
      .dilation_rate = {2},
      .padding = CONVBLAS_CAUSAL,
      .groups = 2,
      .use_bias = true},
     {.batch = 2, .spatial = {17}, .channels = 4}},
    {"Conv2D channels_last 3x3 groups 2",
     {.op = CONVBLAS_CONV,
      .rank = 2,
      .filters = 8,
      .kernel_size = {3, 3},
      .groups = 2,
      .padding = CONVBLAS_SAME,
      .activation = CONVBLAS_GELU,
      .use_bias = true},
     {.batch = 2, .spatial = {9, 7}, .channels = 4}},
    {"Conv2D channels_first 3x2 dilation 2",
     {.op = CONVBLAS_CONV,
      .rank = 2,
      .filters = 5,
      .kernel_size = {3, 2},
      .dilation_rate = {2, 1},
      .data_format = CONVBLAS_CHANNELS_FIRST},
     {.batch = 2, .spatial = {10, 8}, .channels = 3}},
    {"Conv1D 1x1 channels_last (pointwise-able)",
     {.op = CONVBLAS_CONV, .rank = 1, .filters = 16, .kernel_size = {1}, .use_bias = true},
     {.batch = 4, .spatial = {50}, .channels = 12}},
    {"Conv2D 1x1 channels_first (pointwise-able)",
     {.op = CONVBLAS_CONV,
      .rank = 2,
      .filters = 7,
      .kernel_size = {1, 1},
      .data_format = CONVBLAS_CHANNELS_FIRST,
      .activation = CONVBLAS_SIGMOID},
     {.batch = 2, .spatial = {6, 9}, .channels = 10}},
    {"DepthwiseConv1D causal multiplier 2",
     {.op = CONVBLAS_DEPTHWISE,
      .rank = 1,
      .kernel_size = {4},
      .padding = CONVBLAS_CAUSAL,
      .depth_multiplier = 2,
      .use_bias = true},
     {.batch = 2, .spatial = {25}, .channels = 6}},
    {"DepthwiseConv2D channels_first",
     {.op = CONVBLAS_DEPTHWISE,
      .rank = 2,
      .kernel_size = {3, 3},
      .strides = {2, 1},
      .padding = CONVBLAS_SAME,
      .data_format = CONVBLAS_CHANNELS_FIRST},
     {.batch = 2, .spatial = {8, 7}, .channels = 5}},
    {"SeparableConv1D multiplier 2",
     {.op = CONVBLAS_SEPARABLE,
      .rank = 1,
      .filters = 9,
      .kernel_size = {3},
      .depth_multiplier = 2,
      .padding = CONVBLAS_SAME,
      .activation = CONVBLAS_SWISH,
      .use_bias = true},
     {.batch = 3, .spatial = {19}, .channels = 4}},
    {"SeparableConv2D channels_first",
     {.op = CONVBLAS_SEPARABLE,
      .rank = 2,
      .filters = 6,
      .kernel_size = {2, 3},
      .data_format = CONVBLAS_CHANNELS_FIRST},
     {.batch = 2, .spatial = {7, 8}, .channels = 3}},
};
enum { LAYERS = sizeof layers / sizeof layers[0] };

static int64_t shape_elems(const convblas_shape *s, int rank) {
    return s->batch * s->spatial[0] * (rank == 2 ? s->spatial[1] : 1) * s->channels;
}

static float *random_floats(int64_t n, uint32_t seed) {
    float *p = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) * (1.0f / 8388608.0f) - 1.0f;
    }
    return p;
}

typedef struct operands {
    float *x, *kernel, *pointwise, *bias;
    convblas_weights w;
    int64_t out_n;
} operands;

static operands make_operands(const layer *l) {
    const convblas_layer_desc *d = &l->desc;
    const convblas_shape *s = &l->shape;
    operands o;
    int64_t taps = d->kernel_size[0] * (d->rank == 2 ? d->kernel_size[1] : 1);
    int64_t mult = d->depth_multiplier ? d->depth_multiplier : 1;
    int64_t groups = d->groups ? d->groups : 1;
    int64_t k_n = d->op == CONVBLAS_CONV ? taps * s->channels / groups * d->filters
                                         : taps * s->channels * mult;
    int64_t pw_n = d->op == CONVBLAS_SEPARABLE ? s->channels * mult * d->filters : 0;
    int64_t b_n = d->op == CONVBLAS_DEPTHWISE ? s->channels * mult : d->filters;
    convblas_shape out;
    if (convblas_output_shape(d, s, &out) != CONVBLAS_OK) {
        fprintf(stderr, "test_alloc_failure: bad layer %s: %s\n", l->name, convblas_last_error());
        exit(2);
    }
    o.out_n = shape_elems(&out, d->rank);
    o.x = random_floats(shape_elems(s, d->rank), 1u);
    o.kernel = random_floats(k_n, 2u);
    o.pointwise = random_floats(pw_n, 3u);
    o.bias = random_floats(b_n, 4u);
    o.w = (convblas_weights){
        .kernel = o.kernel, .pointwise_kernel = o.pointwise, .bias = d->use_bias ? o.bias : NULL};
    return o;
}

static void free_operands(operands *o) {
    free(o->x);
    free(o->kernel);
    free(o->pointwise);
    free(o->bias);
}

/* ---- the sequence under test ------------------------------------------------------------ */

typedef enum { STEP_NONE, STEP_CREATE, STEP_EXECUTE } step;

typedef struct result {
    convblas_status status;
    step failed; /* which call failed */
    int plan_null_after_failure;
} result;

static result sequence(const layer *l, const convblas_plan_options *opt, int caller_ws,
                       const operands *o, float *y) {
    result r = {CONVBLAS_OK, STEP_NONE, 1};
    convblas_wisdom_forget(); /* a wisdom hit would skip MEASURE's allocations */
    convblas_plan *plan = (convblas_plan *)(uintptr_t)0x1;
    r.status = convblas_plan_create(&plan, &l->desc, &l->shape, opt);
    if (r.status != CONVBLAS_OK) {
        r.failed = STEP_CREATE;
        r.plan_null_after_failure = plan == NULL;
        return r;
    }
    char text[256];
    (void)convblas_plan_describe(plan, text, sizeof text);
    void *ws = NULL;
    if (caller_ws) {
        size_t bytes = convblas_plan_workspace_size(plan);
        ws = xmalloc(bytes); /* the test's own allocation: not counted */
    }
    r.status = convblas_execute(plan, o->x, &o->w, y, ws);
    if (r.status != CONVBLAS_OK) r.failed = STEP_EXECUTE;
    free(ws);
    convblas_plan_destroy(plan);
    return r;
}

static int close_arrays(const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!(fabsf(a[i] - b[i]) <= 1e-5f * (1.0f + fabsf(a[i])))) return 0;
    return 1;
}

static const float SENTINEL = -4242.25f;

static int all_sentinel(const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&y[i], &SENTINEL, sizeof SENTINEL) != 0) return 0;
    return 1;
}

static int combos, failure_points, create_failures, execute_failures, not_reached;
static int dropped_records;

/* Whether a successful MEASURE plan left no wisdom behind (its recording ran out of
 * memory): then a plan of the same key does not say "from wisdom". */
static int wisdom_dropped(const layer *l, const convblas_plan_options *opt) {
    if (opt->mode != CONVBLAS_MEASURE || opt->strategy) return 0;
    convblas_plan_options estimate = *opt;
    estimate.mode = CONVBLAS_ESTIMATE;
    convblas_plan *plan = NULL;
    if (convblas_plan_create(&plan, &l->desc, &l->shape, &estimate) != CONVBLAS_OK) return 0;
    char text[2048];
    (void)convblas_plan_describe(plan, text, sizeof text);
    convblas_plan_destroy(plan);
    return strstr(text, "from wisdom") == NULL;
}

static void exercise(const layer *l, const operands *o, const convblas_plan_options *opt,
                     int caller_ws) {
    float *ref = xmalloc((size_t)o->out_n * sizeof(float));
    float *y = xmalloc((size_t)o->out_n * sizeof(float));

    /* count */
    cb_fault_fail_nth(-1);
    result r = sequence(l, opt, caller_ws, o, ref);
    int64_t count = cb_fault_allocations();
    if (r.status == CONVBLAS_UNSUPPORTED && opt->strategy) goto done; /* forced, unfit */
    if (!CHECK(r.status == CONVBLAS_OK)) goto done;
    CHECK(count >= 1); /* the plan itself, at least */
    combos++;

    for (int64_t n = 0; n < count; n++) {
        snprintf(current, sizeof current, "%s, mode %s, %s, %s, fail #%lld", l->name,
                 opt->mode == CONVBLAS_MEASURE ? "MEASURE" : "ESTIMATE",
                 opt->strategy ? opt->strategy : "planner's choice",
                 caller_ws ? "caller workspace" : "NULL workspace", (long long)n);
        for (int64_t i = 0; i < o->out_n; i++) y[i] = SENTINEL;
        cb_fault_fail_nth(n);
        r = sequence(l, opt, caller_ws, o, y);
        int64_t made = cb_fault_allocations();
        cb_fault_fail_nth(-1);
        if (r.status == CONVBLAS_OK) {
            /* Recording wisdom is best effort: the plan stands, nothing is remembered. */
            if (made > n && wisdom_dropped(l, opt)) {
                dropped_records++;
                continue;
            }
            /* MEASURE may pick another strategy this time, with fewer allocations: then the
             * n-th allocation never happened. Anything else is a swallowed failure. */
            CHECK(made <= n);
            not_reached++;
            continue;
        }
        failure_points++;
        CHECK(r.status == CONVBLAS_OUT_OF_MEMORY);
        const char *msg = convblas_last_error();
        CHECK(msg != NULL && msg[0] != '\0');
        if (msg) CHECK(contains_ci(msg, "memory"));
        CHECK(all_sentinel(y, o->out_n));
        if (r.failed == STEP_CREATE) {
            create_failures++;
            CHECK(r.plan_null_after_failure);
        } else {
            execute_failures++;
        }
        /* failures off: the same sequence succeeds and computes the same */
        for (int64_t i = 0; i < o->out_n; i++) y[i] = SENTINEL;
        r = sequence(l, opt, caller_ws, o, y);
        if (CHECK(r.status == CONVBLAS_OK)) CHECK(close_arrays(ref, y, o->out_n));
    }
    /* one past the count: nothing fails, so the count was complete */
    snprintf(current, sizeof current, "%s, %s: failing allocation #count", l->name,
             opt->strategy ? opt->strategy : "planner's choice");
    cb_fault_fail_nth(count);
    r = sequence(l, opt, caller_ws, o, y);
    int64_t made = cb_fault_allocations();
    cb_fault_fail_nth(-1);
    CHECK(r.status == CONVBLAS_OK || made > count);
done:
    cb_fault_fail_nth(-1);
    free(ref);
    free(y);
}

/* Calls that must not allocate at all: validation failures, output_shape, names. */
static void test_no_allocation_paths(void) {
    snprintf(current, sizeof current, "no allocation on error paths");
    convblas_layer_desc bad = layers[0].desc;
    bad.rank = 3;
    convblas_plan *plan = NULL;
    convblas_shape out;
    cb_fault_fail_nth(0); /* any allocation would fail, and show in the count */
    CHECK(convblas_plan_create(&plan, &bad, &layers[0].shape, NULL) == CONVBLAS_INVALID_ARGUMENT);
    CHECK(convblas_output_shape(&layers[0].desc, &layers[0].shape, &out) == CONVBLAS_OK);
    CHECK(convblas_output_shape(&bad, &layers[0].shape, &out) == CONVBLAS_INVALID_ARGUMENT);
    convblas_plan_options unknown = {.strategy = "no_such_strategy"};
    CHECK(convblas_plan_create(&plan, &layers[0].desc, &layers[0].shape, &unknown) ==
          CONVBLAS_INVALID_ARGUMENT);
    (void)convblas_strategy_name(0);
    (void)convblas_status_name(CONVBLAS_OK);
    (void)convblas_version();
    CHECK(cb_fault_allocations() == 0);
    /* execute's argument errors allocate nothing either */
    cb_fault_fail_nth(-1);
    if (CHECK(convblas_plan_create(&plan, &layers[0].desc, &layers[0].shape, NULL) ==
              CONVBLAS_OK)) {
        operands o = make_operands(&layers[0]);
        cb_fault_fail_nth(0);
        CHECK(convblas_execute(plan, NULL, &o.w, o.x, NULL) == CONVBLAS_INVALID_ARGUMENT);
        CHECK(convblas_execute(plan, o.x, &o.w, o.x, NULL) == CONVBLAS_INVALID_ARGUMENT);
        CHECK(cb_fault_allocations() == 0);
        cb_fault_fail_nth(-1);
        free_operands(&o);
    }
    convblas_plan_destroy(plan);
}

/* ---- wisdom import and export ------------------------------------------------------- */

static char wisdom_dir[64];

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *text = xmalloc(1 << 16);
    size_t n = fread(text, 1, (1 << 16) - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

/* The process's wisdom as text (exported with failures off). */
static char *wisdom_now(const char *path) {
    cb_fault_fail_nth(-1);
    CHECK(convblas_wisdom_export(path) == CONVBLAS_OK);
    return read_text(path);
}

static int same_text(const char *a, const char *b) {
    return a && b && strcmp(a, b) == 0;
}

static int files_in_dir(void) {
    int n = 0;
    DIR *d = opendir(wisdom_dir);
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

static void record(const layer *l) {
    convblas_plan_options m = {.mode = CONVBLAS_MEASURE, .threads = 2};
    convblas_plan *plan = NULL;
    CHECK(convblas_plan_create(&plan, &l->desc, &l->shape, &m) == CONVBLAS_OK);
    convblas_plan_destroy(plan);
}

/* Each allocation of import fails in turn: out of memory, the wisdom as it was; then the
 * same for export: out of memory, the old file in place and no temporary left. */
static void test_wisdom_io(void) {
    snprintf(wisdom_dir, sizeof wisdom_dir, "/tmp/convblas-alloc-XXXXXX");
    if (!CHECK(mkdtemp(wisdom_dir) != NULL)) return;
    char file[128], snap[128], out[128];
    snprintf(file, sizeof file, "%s/in.wisdom", wisdom_dir);
    snprintf(snap, sizeof snap, "%s/snap.wisdom", wisdom_dir);
    snprintf(out, sizeof out, "%s/out.wisdom", wisdom_dir);
    convblas_wisdom_forget();
    record(&layers[0]);
    record(&layers[7]);
    CHECK(convblas_wisdom_export(file) == CONVBLAS_OK);
    convblas_wisdom_forget();
    record(&layers[9]);
    char *before = wisdom_now(snap);
    int io_points = 0;
    for (int64_t n = 0;; n++) {
        snprintf(current, sizeof current, "wisdom import, fail #%lld", (long long)n);
        cb_fault_fail_nth(n);
        convblas_status st = convblas_wisdom_import(file);
        int64_t made = cb_fault_allocations();
        cb_fault_fail_nth(-1);
        if (st == CONVBLAS_OK) {
            CHECK(made <= n);
            break;
        }
        io_points++;
        CHECK(st == CONVBLAS_OUT_OF_MEMORY && contains_ci(convblas_last_error(), "memory"));
        char *now = wisdom_now(snap);
        CHECK(same_text(before, now));
        free(now);
    }
    char *merged = wisdom_now(snap);
    CHECK(!same_text(before, merged));
    static const char old[] = "old contents\n";
    FILE *f = fopen(out, "wb");
    if (f) fputs(old, f), fclose(f);
    int files = files_in_dir();
    for (int64_t n = 0;; n++) {
        snprintf(current, sizeof current, "wisdom export, fail #%lld", (long long)n);
        cb_fault_fail_nth(n);
        convblas_status st = convblas_wisdom_export(out);
        int64_t made = cb_fault_allocations();
        cb_fault_fail_nth(-1);
        char *now = read_text(out);
        if (st == CONVBLAS_OK) {
            CHECK(made <= n && same_text(now, merged));
            free(now);
            break;
        }
        io_points++;
        CHECK(st == CONVBLAS_OUT_OF_MEMORY && contains_ci(convblas_last_error(), "memory"));
        CHECK(same_text(now, old));
        CHECK(files_in_dir() == files);
        free(now);
    }
    CHECK(io_points >= 3); /* import's tables and merge, export's copy */
    failure_points += io_points;
    free(before);
    free(merged);
    convblas_wisdom_forget();
    unlink(file);
    unlink(snap);
    unlink(out);
    rmdir(wisdom_dir);
}

int main(void) {
    crash_report_install("test_alloc_failure", current, sizeof current);
    unsetenv("CONVBLAS_STRATEGY");
    unsetenv("CONVBLAS_NUM_THREADS");
    test_no_allocation_paths();
    const convblas_planner_mode modes[] = {CONVBLAS_ESTIMATE, CONVBLAS_MEASURE};
    for (int li = 0; li < LAYERS; li++) {
        operands o = make_operands(&layers[li]);
        for (int m = 0; m < 2; m++)
            for (int s = -1; s < convblas_strategy_count(); s++)
                for (int ws = 0; ws < 2; ws++) {
                    convblas_plan_options opt = {.mode = modes[m],
                                                 .strategy =
                                                     s < 0 ? NULL : convblas_strategy_name(s),
                                                 .threads = 2};
                    exercise(&layers[li], &o, &opt, ws);
                }
        free_operands(&o);
    }
    test_wisdom_io();
    snprintf(current, sizeof current, "wisdom recording");
    CHECK(dropped_records > 0); /* a recording did run out of memory, harmlessly */
    printf("test_alloc_failure: %d sequences, %d allocation failure points exercised "
           "(%d in plan_create, %d in execute, %d not reached, %d wisdom records dropped), %d "
           "checks, %d failures\n",
           combos, failure_points, create_failures, execute_failures, not_reached, dropped_records,
           checks, failures);
    if (failure_points == 0) {
        fprintf(stderr, "test_alloc_failure: no allocation failure was exercised\n");
        return 1;
    }
    return failures ? 1 : 0;
}

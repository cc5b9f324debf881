/* Every error path of the public API: each bad input gives its exact status, a message in
 * convblas_last_error() that names the field and its value, no plan (*plan is NULL), an
 * untouched output, and no leak (the ASan/LSan build catches those). For every descriptor
 * or shape error, convblas_output_shape must give the same status and the same message as
 * convblas_plan_create (design section 3). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* setenv, unsetenv */
#endif

#include <convblas.h>

#include "crash_report.h"

#include <ctype.h>
#include <math.h>
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
static int cases;
static char current[256] = "(setup)";

static void set_case(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_case(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(current, sizeof current, fmt, ap);
    va_end(ap);
    cases++;
}

static int check_(int ok, const char *expr, int line) {
    checks++;
    if (!ok) {
        failures++;
        fprintf(stderr, "test_errors.c:%d: CHECK failed: %s\n  case: %s\n  last_error: \"%s\"\n",
                line, expr, current, convblas_last_error());
    }
    return ok;
}
#define CHECK(cond) check_((cond) ? 1 : 0, #cond, __LINE__)

static int check_status_(convblas_status got, convblas_status want, const char *call, int line) {
    checks++;
    if (got != want) {
        failures++;
        fprintf(stderr,
                "test_errors.c:%d: %s returned %s, expected %s\n  case: %s\n"
                "  last_error: \"%s\"\n",
                line, call, convblas_status_name(got), convblas_status_name(want), current,
                convblas_last_error());
        return 0;
    }
    return 1;
}
#define CHECK_STATUS(got, want, call) check_status_((got), (want), (call), __LINE__)

/* Case-insensitive substring search. */
static int contains_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] &&
               tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n) return 1;
    }
    return n == 0;
}

/* Each needle must occur in msg (case-insensitive); a needle "a|b" is satisfied by either
 * alternative. The list ends with NULL. */
static void check_needles_(const char *msg, const char *const *needles, int line) {
    for (int i = 0; needles && needles[i]; i++) {
        char alt[128];
        snprintf(alt, sizeof alt, "%s", needles[i]);
        int found = 0;
        for (char *tok = alt, *bar; tok && !found; tok = bar ? bar + 1 : NULL) {
            bar = strchr(tok, '|');
            if (bar) *bar = '\0';
            found = contains_ci(msg, tok);
        }
        checks++;
        if (!found) {
            failures++;
            fprintf(stderr,
                    "test_errors.c:%d: the message does not mention \"%s\"\n  case: %s\n"
                    "  message: \"%s\"\n",
                    line, needles[i], current, msg);
        }
    }
}

#define NEEDLES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Leaves a known message in convblas_last_error(), so that a later check can tell that the
 * call under test replaced it. */
static char primer[512];
static void prime(void) {
    convblas_layer_desc d = {.op = CONVBLAS_CONV, .rank = 77, .filters = 1, .kernel_size = {1}};
    convblas_shape s = {.batch = 1, .spatial = {1}, .channels = 1}, out;
    convblas_status st = convblas_output_shape(&d, &s, &out);
    CHECK(st == CONVBLAS_INVALID_ARGUMENT);
    snprintf(primer, sizeof primer, "%s", convblas_last_error());
    CHECK(primer[0] != '\0');
}

/* The message of a failure: non-empty, not the primer's, mentions every needle. */
static void check_message_(const char *const *needles, int line) {
    const char *msg = convblas_last_error();
    checks++;
    if (!msg || !msg[0] || strcmp(msg, primer) == 0) {
        failures++;
        fprintf(stderr,
                "test_errors.c:%d: the failing call left no message of its own\n  case: %s\n"
                "  last_error: \"%s\"\n",
                line, current, msg ? msg : "(NULL)");
        return;
    }
    check_needles_(msg, needles, line);
}

/* ---- layers -------------------------------------------------------------------------- */

static convblas_layer_desc conv1d(void) {
    return (convblas_layer_desc){.op = CONVBLAS_CONV, .rank = 1, .filters = 8, .kernel_size = {3}};
}
static convblas_layer_desc conv2d(void) {
    return (convblas_layer_desc){
        .op = CONVBLAS_CONV, .rank = 2, .filters = 8, .kernel_size = {3, 3}};
}
static convblas_layer_desc depthwise1d(void) {
    return (convblas_layer_desc){.op = CONVBLAS_DEPTHWISE, .rank = 1, .kernel_size = {3}};
}
static convblas_layer_desc separable1d(void) {
    return (convblas_layer_desc){
        .op = CONVBLAS_SEPARABLE, .rank = 1, .filters = 8, .kernel_size = {3}};
}
static convblas_shape shape1d(void) {
    return (convblas_shape){.batch = 2, .spatial = {10}, .channels = 4};
}
static convblas_shape shape2d(void) {
    return (convblas_shape){.batch = 2, .spatial = {6, 7}, .channels = 4};
}

static const convblas_shape shape_sentinel = {
    .batch = -111, .spatial = {-222, -333}, .channels = -444};

static int strategy_index(const char *name) {
    for (int i = 0; i < convblas_strategy_count(); i++)
        if (strcmp(convblas_strategy_name(i), name) == 0) return i;
    return -1;
}

/* A pointer value that is not NULL, to see that a failing plan_create sets *plan to NULL. */
static convblas_plan *garbage_plan(void) {
    return (convblas_plan *)(uintptr_t)0x1;
}

/* ---- descriptor and shape errors ------------------------------------------------------ */

/* plan_create (options NULL, ESTIMATE, MEASURE, every strategy forced) and output_shape must
 * all fail with `want` and the very same message. */
static void desc_error_(const char *name, const convblas_layer_desc *d, const convblas_shape *s,
                        convblas_status want, const char *const *needles, int line) {
    set_case("%s (line %d)", name, line);
    prime();
    convblas_plan *plan = garbage_plan();
    convblas_status st = convblas_plan_create(&plan, d, s, NULL);
    CHECK_STATUS(st, want, "convblas_plan_create");
    CHECK(plan == NULL);
    check_message_(needles, line);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", convblas_last_error());

    convblas_plan_options variants[2] = {{.mode = CONVBLAS_ESTIMATE, .threads = 2},
                                         {.mode = CONVBLAS_MEASURE, .workspace_limit = 1}};
    for (int v = 0; v < 2; v++) {
        prime();
        plan = garbage_plan();
        st = convblas_plan_create(&plan, d, s, &variants[v]);
        CHECK_STATUS(st, want, "convblas_plan_create (explicit options)");
        CHECK(plan == NULL);
        CHECK(strcmp(convblas_last_error(), msg) == 0);
    }
    for (int i = 0; i < convblas_strategy_count(); i++) {
        convblas_plan_options o = {.strategy = convblas_strategy_name(i)};
        prime();
        plan = garbage_plan();
        st = convblas_plan_create(&plan, d, s, &o);
        CHECK_STATUS(st, want, "convblas_plan_create (forced strategy)");
        CHECK(plan == NULL);
        CHECK(strcmp(convblas_last_error(), msg) == 0);
    }

    prime();
    convblas_shape out = shape_sentinel;
    st = convblas_output_shape(d, s, &out);
    CHECK_STATUS(st, want, "convblas_output_shape");
    CHECK(memcmp(&out, &shape_sentinel, sizeof out) == 0);
    if (strcmp(convblas_last_error(), msg) != 0) {
        CHECK(!"output_shape's message equals plan_create's");
        fprintf(stderr, "  plan_create:  \"%s\"\n  output_shape: \"%s\"\n", msg,
                convblas_last_error());
    }
    if (plan && plan != garbage_plan()) convblas_plan_destroy(plan);
}
#define DESC_ERROR(name, d, s, want, ...)                                                          \
    desc_error_((name), &(d), &(s), (want), NEEDLES(__VA_ARGS__), __LINE__)

/* A descriptor that must be accepted (a field that does not apply, a boundary value). */
static void desc_ok_(const char *name, const convblas_layer_desc *d, const convblas_shape *s,
                     int line) {
    set_case("%s (line %d)", name, line);
    convblas_shape out = shape_sentinel;
    CHECK_STATUS(convblas_output_shape(d, s, &out), CONVBLAS_OK, "convblas_output_shape");
    convblas_plan *plan = NULL;
    CHECK_STATUS(convblas_plan_create(&plan, d, s, NULL), CONVBLAS_OK, "convblas_plan_create");
    CHECK(plan != NULL);
    convblas_plan_destroy(plan);
}
#define DESC_OK(name, d, s) desc_ok_((name), &(d), &(s), __LINE__)

static void test_null_desc_pointers(void) {
    convblas_layer_desc d = conv1d();
    convblas_shape s = shape1d();
    convblas_shape out = shape_sentinel;

    set_case("plan_create: plan out-pointer NULL");
    prime();
    CHECK_STATUS(convblas_plan_create(NULL, &d, &s, NULL), CONVBLAS_INVALID_ARGUMENT,
                 "convblas_plan_create");
    check_message_(NEEDLES("plan", "null"), __LINE__);

    set_case("output_shape: output NULL");
    prime();
    CHECK_STATUS(convblas_output_shape(&d, &s, NULL), CONVBLAS_INVALID_ARGUMENT,
                 "convblas_output_shape");
    check_message_(NEEDLES("output", "null"), __LINE__);
    CHECK(out.batch == shape_sentinel.batch);
}

/* DESC_ERROR takes lvalues; these wrap the NULL cases, which have none. */
static void test_null_desc_pointers2(void) {
    convblas_layer_desc d = conv1d();
    convblas_shape s = shape1d();
    desc_error_("desc NULL", NULL, &s, CONVBLAS_INVALID_ARGUMENT, NEEDLES("desc", "null"),
                __LINE__);
    desc_error_("input shape NULL", &d, NULL, CONVBLAS_INVALID_ARGUMENT, NEEDLES("input", "null"),
                __LINE__);
    desc_error_("desc and input shape NULL", NULL, NULL, CONVBLAS_INVALID_ARGUMENT, NEEDLES("null"),
                __LINE__);
}

static void test_enums_and_rank(void) {
    convblas_shape s = shape1d();
    const int ranks[] = {0, 3, -1};
    for (int i = 0; i < 3; i++) {
        convblas_layer_desc d = conv1d();
        d.rank = ranks[i];
        char v[16];
        snprintf(v, sizeof v, "%d", ranks[i]);
        DESC_ERROR("rank", d, s, CONVBLAS_INVALID_ARGUMENT, "rank", v);
    }
    const int bad[] = {99, -1, 3};
    for (int i = 0; i < 3; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", bad[i]);
        convblas_layer_desc d = conv1d();
        d.op = (convblas_op)bad[i];
        DESC_ERROR("op", d, s, CONVBLAS_INVALID_ARGUMENT, "op", v);
        d = conv1d();
        d.padding = (convblas_padding)bad[i];
        DESC_ERROR("padding", d, s, CONVBLAS_INVALID_ARGUMENT, "padding", v);
        d = conv1d();
        d.data_format = (convblas_data_format)(bad[i] == 3 ? 2 : bad[i]);
        snprintf(v, sizeof v, "%d", bad[i] == 3 ? 2 : bad[i]);
        DESC_ERROR("data_format", d, s, CONVBLAS_INVALID_ARGUMENT, "data_format", v);
        d = conv1d();
        d.activation = (convblas_activation)(bad[i] == 3 ? 12 : bad[i]);
        snprintf(v, sizeof v, "%d", bad[i] == 3 ? 12 : bad[i]);
        DESC_ERROR("activation", d, s, CONVBLAS_INVALID_ARGUMENT, "activation", v);
    }
    /* An unknown enum on another op and rank, too. */
    convblas_layer_desc d = depthwise1d();
    d.activation = (convblas_activation)1000;
    DESC_ERROR("activation on DEPTHWISE", d, s, CONVBLAS_INVALID_ARGUMENT, "activation", "1000");
    convblas_shape s2 = shape2d();
    d = conv2d();
    d.padding = (convblas_padding)42;
    DESC_ERROR("padding at rank 2", d, s2, CONVBLAS_INVALID_ARGUMENT, "padding", "42");

    /* causal at rank 2, for each op */
    const convblas_op ops[] = {CONVBLAS_CONV, CONVBLAS_DEPTHWISE, CONVBLAS_SEPARABLE};
    for (int i = 0; i < 3; i++) {
        d = conv2d();
        d.op = ops[i];
        d.padding = CONVBLAS_CAUSAL;
        DESC_ERROR("causal at rank 2", d, s2, CONVBLAS_INVALID_ARGUMENT, "causal", "rank", "2");
    }

    /* non-finite activation_alpha */
    const float alphas[] = {NAN, INFINITY, -INFINITY};
    const char *names[] = {"nan", "inf", "inf"};
    const convblas_activation acts[] = {CONVBLAS_LEAKY_RELU, CONVBLAS_ELU};
    for (int a = 0; a < 2; a++)
        for (int i = 0; i < 3; i++) {
            d = conv1d();
            d.activation = acts[a];
            d.activation_alpha = alphas[i];
            DESC_ERROR("activation_alpha non-finite", d, s, CONVBLAS_INVALID_ARGUMENT,
                       "activation_alpha", names[i]);
        }
}

static void test_sizes_and_negatives(void) {
    convblas_shape s = shape1d(), s2 = shape2d();
    convblas_layer_desc d;

    /* kernel_size <= 0, at rank 1 and in each dimension at rank 2 */
    d = conv1d();
    d.kernel_size[0] = 0;
    DESC_ERROR("kernel_size 0", d, s, CONVBLAS_INVALID_ARGUMENT, "kernel_size", "0");
    d.kernel_size[0] = -5;
    DESC_ERROR("kernel_size -5", d, s, CONVBLAS_INVALID_ARGUMENT, "kernel_size", "-5");
    d = depthwise1d();
    d.kernel_size[0] = -9;
    DESC_ERROR("depthwise kernel_size -9", d, s, CONVBLAS_INVALID_ARGUMENT, "kernel_size", "-9");
    d = conv2d();
    d.kernel_size[0] = -6;
    DESC_ERROR("kernel_size[0] -6 at rank 2", d, s2, CONVBLAS_INVALID_ARGUMENT, "kernel_size",
               "-6");
    d = conv2d();
    d.kernel_size[1] = 0;
    DESC_ERROR("kernel_size[1] 0 at rank 2", d, s2, CONVBLAS_INVALID_ARGUMENT, "kernel_size", "0");

    /* filters <= 0 for CONV and SEPARABLE (ignored for DEPTHWISE) */
    d = conv1d();
    d.filters = 0;
    DESC_ERROR("conv filters 0", d, s, CONVBLAS_INVALID_ARGUMENT, "filters", "0");
    d.filters = -4;
    DESC_ERROR("conv filters -4", d, s, CONVBLAS_INVALID_ARGUMENT, "filters", "-4");
    d = separable1d();
    d.filters = 0;
    DESC_ERROR("separable filters 0", d, s, CONVBLAS_INVALID_ARGUMENT, "filters", "0");
    d.filters = -17;
    DESC_ERROR("separable filters -17", d, s, CONVBLAS_INVALID_ARGUMENT, "filters", "-17");
    d = conv2d();
    d.op = CONVBLAS_SEPARABLE;
    d.filters = -3;
    DESC_ERROR("separable2d filters -3", d, s2, CONVBLAS_INVALID_ARGUMENT, "filters", "-3");
    d = depthwise1d();
    d.filters = -4;
    DESC_OK("depthwise ignores filters -4", d, s);
    d.filters = 0;
    DESC_OK("depthwise ignores filters 0", d, s);

    /* channels <= 0 */
    convblas_shape t = shape1d();
    t.channels = 0;
    d = conv1d();
    DESC_ERROR("channels 0", d, t, CONVBLAS_INVALID_ARGUMENT, "channels", "0");
    t.channels = -2;
    DESC_ERROR("channels -2", d, t, CONVBLAS_INVALID_ARGUMENT, "channels", "-2");
    d = depthwise1d();
    DESC_ERROR("depthwise channels -2", d, t, CONVBLAS_INVALID_ARGUMENT, "channels", "-2");

    /* spatial <= 0 */
    t = shape1d();
    t.spatial[0] = 0;
    d = conv1d();
    d.padding = CONVBLAS_SAME;
    DESC_ERROR("spatial 0 (same)", d, t, CONVBLAS_INVALID_ARGUMENT, "spatial", "0");
    t.spatial[0] = -8;
    DESC_ERROR("spatial -8", d, t, CONVBLAS_INVALID_ARGUMENT, "spatial", "-8");
    t = shape2d();
    t.spatial[1] = -3;
    d = conv2d();
    DESC_ERROR("spatial[1] -3 at rank 2", d, t, CONVBLAS_INVALID_ARGUMENT, "spatial", "-3");
    t = shape2d();
    t.spatial[0] = 0;
    DESC_ERROR("spatial[0] 0 at rank 2", d, t, CONVBLAS_INVALID_ARGUMENT, "spatial", "0");

    /* negative strides, dilation_rate, groups, depth_multiplier, batch */
    d = conv1d();
    d.strides[0] = -3;
    DESC_ERROR("strides -3", d, s, CONVBLAS_INVALID_ARGUMENT, "strides", "-3");
    d = conv2d();
    d.strides[1] = -2;
    DESC_ERROR("strides[1] -2", d, s2, CONVBLAS_INVALID_ARGUMENT, "strides", "-2");
    d = conv1d();
    d.dilation_rate[0] = -7;
    DESC_ERROR("dilation_rate -7", d, s, CONVBLAS_INVALID_ARGUMENT, "dilation_rate", "-7");
    d = conv2d();
    d.dilation_rate[0] = -1;
    DESC_ERROR("dilation_rate[0] -1", d, s2, CONVBLAS_INVALID_ARGUMENT, "dilation_rate", "-1");
    d = conv1d();
    d.groups = -4;
    DESC_ERROR("groups -4", d, s, CONVBLAS_INVALID_ARGUMENT, "groups", "-4");
    d = depthwise1d();
    d.depth_multiplier = -5;
    DESC_ERROR("depth_multiplier -5 (depthwise)", d, s, CONVBLAS_INVALID_ARGUMENT,
               "depth_multiplier", "-5");
    d = separable1d();
    d.depth_multiplier = -6;
    DESC_ERROR("depth_multiplier -6 (separable)", d, s, CONVBLAS_INVALID_ARGUMENT,
               "depth_multiplier", "-6");
    t = shape1d();
    t.batch = -6;
    d = conv1d();
    DESC_ERROR("batch -6", d, t, CONVBLAS_INVALID_ARGUMENT, "batch", "-6");
    t.batch = INT64_MIN;
    DESC_ERROR("batch INT64_MIN", d, t, CONVBLAS_INVALID_ARGUMENT, "batch", "-9223372036854775808");

    /* groups must divide channels and filters */
    t = (convblas_shape){.batch = 1, .spatial = {10}, .channels = 64};
    d = conv1d();
    d.filters = 48;
    d.groups = 3;
    DESC_ERROR("groups 3, channels 64", d, t, CONVBLAS_INVALID_ARGUMENT, "groups", "3", "64",
               "channels");
    d.groups = 4;
    d.filters = 30;
    DESC_ERROR("groups 4, filters 30", d, t, CONVBLAS_INVALID_ARGUMENT, "groups", "4", "30",
               "filters");
    d.groups = 128;
    d.filters = 128;
    DESC_ERROR("groups 128 > channels 64", d, t, CONVBLAS_INVALID_ARGUMENT, "groups", "128", "64");

    /* valid padding, input shorter than the effective kernel */
    t = (convblas_shape){.batch = 1, .spatial = {4}, .channels = 2};
    d = conv1d();
    d.kernel_size[0] = 5;
    DESC_ERROR("valid, input 4 < kernel 5", d, t, CONVBLAS_INVALID_ARGUMENT, "4", "5",
               "spatial|length|input");
    t.spatial[0] = 7;
    d.kernel_size[0] = 3;
    d.dilation_rate[0] = 4;
    DESC_ERROR("valid, input 7 < effective kernel 9 (dilation 4)", d, t, CONVBLAS_INVALID_ARGUMENT,
               "7", "9", "dilation");
    d = depthwise1d();
    d.kernel_size[0] = 3;
    d.dilation_rate[0] = 4;
    DESC_ERROR("depthwise valid, input 7 < effective kernel 9", d, t, CONVBLAS_INVALID_ARGUMENT,
               "7", "9");
    t = (convblas_shape){.batch = 1, .spatial = {10, 2}, .channels = 2};
    d = conv2d();
    DESC_ERROR("valid 2D, width 2 < kernel 3", d, t, CONVBLAS_INVALID_ARGUMENT, "2", "3");
    /* the same shapes are fine with SAME (and CAUSAL at rank 1) */
    d.padding = CONVBLAS_SAME;
    DESC_OK("same 2D, width 2, kernel 3", d, t);
    t = (convblas_shape){.batch = 1, .spatial = {7}, .channels = 2};
    d = conv1d();
    d.kernel_size[0] = 3;
    d.dilation_rate[0] = 4;
    d.padding = CONVBLAS_CAUSAL;
    DESC_OK("causal, input 7, effective kernel 9", d, t);
    t.spatial[0] = 9;
    d.padding = CONVBLAS_VALID;
    DESC_OK("valid, input 9 == effective kernel 9", d, t);
}

static void test_too_large(void) {
    const int64_t half = INT64_MAX / 2;
    char v[32];
    convblas_layer_desc d = conv1d();
    convblas_shape t = {.batch = half, .spatial = {1000}, .channels = 16};
    DESC_ERROR("batch INT64_MAX/2, spatial 1000", d, t, CONVBLAS_TOO_LARGE, "input");

    /* elements fit, bytes do not */
    d.kernel_size[0] = 1;
    t = (convblas_shape){.batch = INT64_MAX / 4, .spatial = {1}, .channels = 3};
    DESC_ERROR("input bytes overflow", d, t, CONVBLAS_TOO_LARGE, "input");
    t = (convblas_shape){.batch = 1, .spatial = {INT64_MAX}, .channels = 1};
    DESC_ERROR("spatial INT64_MAX", d, t, CONVBLAS_TOO_LARGE, "input");

    convblas_layer_desc d2 = conv2d();
    d2.kernel_size[0] = d2.kernel_size[1] = 1;
    t = (convblas_shape){.batch = 1, .spatial = {half, 3}, .channels = 1};
    DESC_ERROR("rank 2, height INT64_MAX/2, width 3", d2, t, CONVBLAS_TOO_LARGE, "input");

    /* the effective kernel (kernel_size - 1) * dilation + 1 overflows */
    d = conv1d();
    d.padding = CONVBLAS_SAME;
    d.kernel_size[0] = 4;
    d.dilation_rate[0] = half;
    snprintf(v, sizeof v, "%lld", (long long)half);
    t = shape1d();
    DESC_ERROR("kernel_size 4 * dilation INT64_MAX/2", d, t, CONVBLAS_TOO_LARGE, "dilation_rate",
               v);
    d.kernel_size[0] = half;
    d.dilation_rate[0] = 3;
    DESC_ERROR("kernel_size INT64_MAX/2 * dilation 3", d, t, CONVBLAS_TOO_LARGE,
               "kernel_size|kernel");
    d.padding = CONVBLAS_VALID;
    DESC_ERROR("kernel_size INT64_MAX/2 * dilation 3, valid", d, t, CONVBLAS_TOO_LARGE,
               "kernel_size|kernel");
    d.padding = CONVBLAS_CAUSAL;
    DESC_ERROR("kernel_size INT64_MAX/2 * dilation 3, causal", d, t, CONVBLAS_TOO_LARGE,
               "kernel_size|kernel");
    d2 = conv2d();
    d2.padding = CONVBLAS_SAME;
    d2.kernel_size[1] = 5;
    d2.dilation_rate[1] = half;
    t = shape2d();
    DESC_ERROR("rank 2, kernel_size[1] 5 * dilation INT64_MAX/2", d2, t, CONVBLAS_TOO_LARGE,
               "dilation_rate", v);

    /* the kernel's element count overflows (SAME keeps the shape valid) */
    d = conv1d();
    d.padding = CONVBLAS_SAME;
    d.kernel_size[0] = half;
    t = shape1d();
    DESC_ERROR("kernel_size INT64_MAX/2 (kernel elements)", d, t, CONVBLAS_TOO_LARGE, "kernel");

    /* the output's element count overflows */
    d = conv1d();
    d.filters = half;
    t = shape1d();
    DESC_ERROR("filters INT64_MAX/2", d, t, CONVBLAS_TOO_LARGE, "output|kernel|filters");
    d = separable1d();
    d.filters = half;
    DESC_ERROR("separable filters INT64_MAX/2", d, t, CONVBLAS_TOO_LARGE, "output|kernel|filters");
    d = depthwise1d();
    d.depth_multiplier = half;
    DESC_ERROR("depth_multiplier INT64_MAX/2", d, t, CONVBLAS_TOO_LARGE,
               "output|kernel|depth_multiplier|channel");
    d = separable1d();
    d.depth_multiplier = INT64_MAX / 3;
    DESC_ERROR("separable depth_multiplier INT64_MAX/3", d, t, CONVBLAS_TOO_LARGE,
               "output|kernel|depth_multiplier|channel");
}

/* ---- options and environment ------------------------------------------------------- */

/* plan_create with options must fail with want and the needles; output_shape (no options)
 * succeeds on the same descriptor. */
static void options_error_(const char *name, const convblas_layer_desc *d, const convblas_shape *s,
                           const convblas_plan_options *o, convblas_status want,
                           const char *const *needles, int line) {
    set_case("%s (line %d)", name, line);
    prime();
    convblas_plan *plan = garbage_plan();
    convblas_status st = convblas_plan_create(&plan, d, s, o);
    CHECK_STATUS(st, want, "convblas_plan_create");
    CHECK(plan == NULL);
    check_message_(needles, line);
    if (plan && plan != garbage_plan()) convblas_plan_destroy(plan);
}
#define OPTIONS_ERROR(name, d, s, o, want, ...)                                                    \
    options_error_((name), &(d), &(s), (o), (want), NEEDLES(__VA_ARGS__), __LINE__)

static convblas_plan *plan_ok_(const char *name, const convblas_layer_desc *d,
                               const convblas_shape *s, const convblas_plan_options *o, int line) {
    set_case("%s (line %d)", name, line);
    convblas_plan *plan = NULL;
    CHECK_STATUS(convblas_plan_create(&plan, d, s, o), CONVBLAS_OK, "convblas_plan_create");
    CHECK(plan != NULL);
    return plan;
}
#define PLAN_OK(name, d, s, o) plan_ok_((name), &(d), &(s), (o), __LINE__)

static void test_options(void) {
    convblas_layer_desc d = conv1d();
    convblas_shape s = shape1d();
    convblas_plan_options o = {0};

    o.threads = -7;
    OPTIONS_ERROR("threads -7", d, s, &o, CONVBLAS_INVALID_ARGUMENT, "threads", "-7");
    o.threads = -1;
    OPTIONS_ERROR("threads -1", d, s, &o, CONVBLAS_INVALID_ARGUMENT, "threads", "-1");
    o = (convblas_plan_options){.mode = (convblas_planner_mode)99};
    OPTIONS_ERROR("mode 99", d, s, &o, CONVBLAS_INVALID_ARGUMENT, "mode", "99");
    o.mode = (convblas_planner_mode)-1;
    OPTIONS_ERROR("mode -1", d, s, &o, CONVBLAS_INVALID_ARGUMENT, "mode", "-1");
    o.mode = (convblas_planner_mode)2;
    OPTIONS_ERROR("mode 2", d, s, &o, CONVBLAS_INVALID_ARGUMENT, "mode", "2");

    /* unknown strategy names */
    o = (convblas_plan_options){.strategy = "no_such_strategy"};
    OPTIONS_ERROR("options.strategy unknown", d, s, &o, CONVBLAS_INVALID_ARGUMENT,
                  "no_such_strategy", "strategy");
    o.strategy = "";
    OPTIONS_ERROR("options.strategy empty", d, s, &o, CONVBLAS_INVALID_ARGUMENT, "strategy");
    o.strategy = "IM2COL_GEMM";
    OPTIONS_ERROR("options.strategy wrong case", d, s, &o, CONVBLAS_INVALID_ARGUMENT,
                  "IM2COL_GEMM");

    const char *real = convblas_strategy_name(0);
    CHECK(real != NULL);

    setenv("CONVBLAS_STRATEGY", "bogus_lowering", 1);
    OPTIONS_ERROR("CONVBLAS_STRATEGY unknown, options NULL", d, s, NULL, CONVBLAS_INVALID_ARGUMENT,
                  "bogus_lowering", "CONVBLAS_STRATEGY");
    o = (convblas_plan_options){.mode = CONVBLAS_MEASURE};
    OPTIONS_ERROR("CONVBLAS_STRATEGY unknown, MEASURE", d, s, &o, CONVBLAS_INVALID_ARGUMENT,
                  "bogus_lowering", "CONVBLAS_STRATEGY");
    /* options.strategy wins over the environment */
    o = (convblas_plan_options){.strategy = real};
    convblas_plan *plan = PLAN_OK("options.strategy wins over a bad CONVBLAS_STRATEGY", d, s, &o);
    if (plan) CHECK(strcmp(convblas_plan_strategy(plan), real) == 0);
    convblas_plan_destroy(plan);
    setenv("CONVBLAS_STRATEGY", real, 1);
    o = (convblas_plan_options){.strategy = "also_bogus"};
    OPTIONS_ERROR("bad options.strategy, good CONVBLAS_STRATEGY", d, s, &o,
                  CONVBLAS_INVALID_ARGUMENT, "also_bogus");
    /* output_shape reads no environment */
    set_case("output_shape with bad CONVBLAS_STRATEGY");
    setenv("CONVBLAS_STRATEGY", "bogus_lowering", 1);
    convblas_shape out;
    CHECK_STATUS(convblas_output_shape(&d, &s, &out), CONVBLAS_OK, "convblas_output_shape");
    unsetenv("CONVBLAS_STRATEGY");

    /* invalid CONVBLAS_NUM_THREADS */
    const char *bad_threads[] = {"abc", "-2", "4x", "99999999999999999999", "1.5"};
    for (int i = 0; i < 5; i++) {
        setenv("CONVBLAS_NUM_THREADS", bad_threads[i], 1);
        OPTIONS_ERROR("CONVBLAS_NUM_THREADS invalid", d, s, NULL, CONVBLAS_INVALID_ARGUMENT,
                      "CONVBLAS_NUM_THREADS", bad_threads[i]);
        /* options.threads > 0 wins: the environment is not consulted */
        o = (convblas_plan_options){.threads = 2};
        plan = PLAN_OK("options.threads wins over a bad CONVBLAS_NUM_THREADS", d, s, &o);
        convblas_plan_destroy(plan);
    }
    setenv("CONVBLAS_NUM_THREADS", "3", 1);
    plan = PLAN_OK("CONVBLAS_NUM_THREADS 3", d, s, NULL);
    convblas_plan_destroy(plan);
    unsetenv("CONVBLAS_NUM_THREADS");
}

/* Forced strategies that cannot run the layer, and workspace limits no strategy fits. */
static void test_unsupported(void) {
    convblas_shape s = shape1d(), s2 = shape2d();
    convblas_layer_desc d = conv1d();
    convblas_plan_options o = {0};

    if (strategy_index("pointwise_gemm") >= 0) {
        o.strategy = "pointwise_gemm";
        OPTIONS_ERROR("pointwise_gemm forced on a kernel-3 conv", d, s, &o, CONVBLAS_UNSUPPORTED,
                      "pointwise_gemm");
        d.kernel_size[0] = 1;
        d.strides[0] = 2;
        OPTIONS_ERROR("pointwise_gemm forced on a stride-2 1x1 conv", d, s, &o,
                      CONVBLAS_UNSUPPORTED, "pointwise_gemm");
        convblas_layer_desc d2 = conv2d();
        d2.kernel_size[1] = 1;
        OPTIONS_ERROR("pointwise_gemm forced on a 3x1 conv", d2, s2, &o, CONVBLAS_UNSUPPORTED,
                      "pointwise_gemm");
        d = depthwise1d();
        d.kernel_size[0] = 1;
        OPTIONS_ERROR("pointwise_gemm forced on a depthwise layer", d, s, &o, CONVBLAS_UNSUPPORTED,
                      "pointwise_gemm");
        d = conv1d();
        d.kernel_size[0] = 1;
        convblas_plan *plan = PLAN_OK("pointwise_gemm forced on a 1x1 conv", d, s, &o);
        if (plan) CHECK(strcmp(convblas_plan_strategy(plan), "pointwise_gemm") == 0);
        convblas_plan_destroy(plan);
        /* the same through the environment */
        d = conv1d();
        setenv("CONVBLAS_STRATEGY", "pointwise_gemm", 1);
        OPTIONS_ERROR("pointwise_gemm forced by CONVBLAS_STRATEGY on a kernel-3 conv", d, s, NULL,
                      CONVBLAS_UNSUPPORTED, "pointwise_gemm", "CONVBLAS_STRATEGY");
        unsetenv("CONVBLAS_STRATEGY");
    }

    /* Every strategy forced on a set of layers: OK, or UNSUPPORTED naming the strategy. */
    convblas_layer_desc layers[6] = {conv1d(),      conv2d(), depthwise1d(),
                                     separable1d(), conv1d(), conv2d()};
    layers[4].kernel_size[0] = 1;
    layers[5].op = CONVBLAS_DEPTHWISE;
    layers[5].depth_multiplier = 2;
    for (int l = 0; l < 6; l++)
        for (int i = 0; i < convblas_strategy_count(); i++) {
            const char *name = convblas_strategy_name(i);
            set_case("strategy %s forced on layer %d", name, l);
            o = (convblas_plan_options){.strategy = name};
            prime();
            convblas_plan *plan = garbage_plan();
            convblas_status st =
                convblas_plan_create(&plan, &layers[l], layers[l].rank == 2 ? &s2 : &s, &o);
            CHECK(st == CONVBLAS_OK || st == CONVBLAS_UNSUPPORTED);
            if (st == CONVBLAS_OK) {
                CHECK(plan != NULL && strcmp(convblas_plan_strategy(plan), name) == 0);
                convblas_plan_destroy(plan);
            } else {
                CHECK(plan == NULL);
                check_message_(NEEDLES(name), __LINE__);
            }
        }

    /* im2col_gemm's workspace is bounded by tiling (design section 4): a limit that holds
     * the columns of 8 output positions (8 * taps * channels floats) is enough for it. */
    if (strategy_index("im2col_gemm") >= 0) {
        d = conv1d();
        d.filters = 16;
        convblas_shape big = {.batch = 2, .spatial = {64}, .channels = 16};
        for (int threads = 1; threads <= 4; threads *= 4) {
            size_t limit = 8 * 3 * 16 * sizeof(float); /* 1536 bytes */
            o = (convblas_plan_options){
                .strategy = "im2col_gemm", .workspace_limit = limit, .threads = threads};
            convblas_plan *plan =
                PLAN_OK("im2col_gemm tiles down to a 1536-byte limit", d, big, &o);
            if (plan) CHECK(convblas_plan_workspace_size(plan) <= limit);
            convblas_plan_destroy(plan);
        }
    }

    /* A workspace limit of 1 byte on a layer whose im2col lowering needs a column buffer:
     * each forced strategy fits (workspace <= 1) or is UNSUPPORTED saying why; if none
     * fits, the planner says so too. */
    const size_t limits[] = {1, 7, 64};
    for (int li = 0; li < 3; li++) {
        d = conv1d();
        d.filters = 16;
        convblas_shape big = {.batch = 2, .spatial = {64}, .channels = 16};
        int fits = 0;
        for (int i = 0; i < convblas_strategy_count(); i++) {
            const char *name = convblas_strategy_name(i);
            set_case("workspace_limit %zu, %s forced", limits[li], name);
            o = (convblas_plan_options){.strategy = name, .workspace_limit = limits[li]};
            prime();
            convblas_plan *plan = garbage_plan();
            convblas_status st = convblas_plan_create(&plan, &d, &big, &o);
            CHECK(st == CONVBLAS_OK || st == CONVBLAS_UNSUPPORTED);
            if (st == CONVBLAS_OK) {
                fits++;
                CHECK(convblas_plan_workspace_size(plan) <= limits[li]);
                convblas_plan_destroy(plan);
            } else {
                CHECK(plan == NULL);
                check_message_(NEEDLES(name), __LINE__);
                if (strcmp(name, "im2col_gemm") == 0)
                    check_message_(NEEDLES("workspace"), __LINE__);
            }
        }
        char lim[32];
        snprintf(lim, sizeof lim, "%zu", limits[li]);
        o = (convblas_plan_options){.workspace_limit = limits[li]};
        if (fits == 0) {
            OPTIONS_ERROR("no strategy fits the workspace limit", d, big, &o, CONVBLAS_UNSUPPORTED,
                          "workspace", lim);
            o.mode = CONVBLAS_MEASURE;
            OPTIONS_ERROR("no strategy fits the workspace limit (MEASURE)", d, big, &o,
                          CONVBLAS_UNSUPPORTED, "workspace", lim);
        } else {
            convblas_plan *plan = PLAN_OK("some strategy fits the workspace limit", d, big, &o);
            if (plan) CHECK(convblas_plan_workspace_size(plan) <= limits[li]);
            convblas_plan_destroy(plan);
        }
    }
}

/* ---- execute ------------------------------------------------------------------------- */

static const float SENTINEL = -12345.5f;

typedef struct operands {
    convblas_plan *plan;
    convblas_shape in, out;
    int64_t in_n, out_n, k_n, pw_n, b_n;
    float *x, *kernel, *pointwise, *bias, *y, *y_copy;
} operands;

static int64_t elems(const convblas_shape *s, int rank) {
    return s->batch * s->spatial[0] * (rank == 2 ? s->spatial[1] : 1) * s->channels;
}

static float *filled(int64_t n, float v) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "test_errors: out of memory\n");
        exit(2);
    }
    for (int64_t i = 0; i < n; i++) p[i] = v + (float)(i % 7) * 0.125f;
    return p;
}

static void operands_init(operands *op, const convblas_layer_desc *d, const convblas_shape *s) {
    memset(op, 0, sizeof *op);
    op->in = *s;
    set_case("execute setup");
    CHECK_STATUS(convblas_output_shape(d, s, &op->out), CONVBLAS_OK, "convblas_output_shape");
    CHECK_STATUS(convblas_plan_create(&op->plan, d, s, NULL), CONVBLAS_OK, "convblas_plan_create");
    int64_t taps = d->kernel_size[0] * (d->rank == 2 ? d->kernel_size[1] : 1);
    int64_t mult = d->depth_multiplier ? d->depth_multiplier : 1;
    op->in_n = elems(s, d->rank);
    op->out_n = elems(&op->out, d->rank);
    op->k_n = d->op == CONVBLAS_CONV ? taps * s->channels * d->filters : taps * s->channels * mult;
    op->pw_n = d->op == CONVBLAS_SEPARABLE ? s->channels * mult * d->filters : 0;
    op->b_n = op->out.channels;
    op->x = filled(op->in_n, 0.5f);
    op->kernel = filled(op->k_n, -0.25f);
    op->pointwise = filled(op->pw_n, 0.125f);
    op->bias = filled(op->b_n, 1.0f);
    op->y = filled(op->out_n, SENTINEL);
    op->y_copy = filled(op->out_n, SENTINEL);
}

static void operands_free(operands *op) {
    convblas_plan_destroy(op->plan);
    free(op->x);
    free(op->kernel);
    free(op->pointwise);
    free(op->bias);
    free(op->y);
    free(op->y_copy);
}

static void exec_error_(const char *name, operands *op, const convblas_plan *plan, const float *x,
                        const convblas_weights *w, float *y, convblas_status want,
                        const char *const *needles, int line) {
    set_case("%s (line %d)", name, line);
    memcpy(op->y, op->y_copy, (size_t)op->out_n * sizeof(float));
    prime();
    convblas_status st = convblas_execute(plan, x, w, y, NULL);
    CHECK_STATUS(st, want, "convblas_execute");
    check_message_(needles, line);
    CHECK(memcmp(op->y, op->y_copy, (size_t)op->out_n * sizeof(float)) == 0);
    /* with a caller workspace too */
    size_t ws_bytes = convblas_plan_workspace_size(plan);
    void *ws = malloc(ws_bytes ? ws_bytes : 1);
    prime();
    st = convblas_execute(plan, x, w, y, ws);
    CHECK_STATUS(st, want, "convblas_execute (caller workspace)");
    check_message_(needles, line);
    CHECK(memcmp(op->y, op->y_copy, (size_t)op->out_n * sizeof(float)) == 0);
    free(ws);
}
#define EXEC_ERROR(name, op, plan, x, w, y, want, ...)                                             \
    exec_error_((name), (op), (plan), (x), (w), (y), (want), NEEDLES(__VA_ARGS__), __LINE__)

static void exec_ok_(const char *name, const convblas_plan *plan, const float *x,
                     const convblas_weights *w, float *y, int line) {
    set_case("%s (line %d)", name, line);
    CHECK_STATUS(convblas_execute(plan, x, w, y, NULL), CONVBLAS_OK, "convblas_execute");
}
#define EXEC_OK(name, plan, x, w, y) exec_ok_((name), (plan), (x), (w), (y), __LINE__)

static void test_execute_pointers(void) {
    /* CONV with bias */
    convblas_layer_desc d = conv1d();
    d.use_bias = true;
    convblas_shape s = shape1d();
    operands op;
    operands_init(&op, &d, &s);
    convblas_weights w = {.kernel = op.kernel, .bias = op.bias};
    convblas_weights w_nok = {.bias = op.bias};
    convblas_weights w_nob = {.kernel = op.kernel};
    EXEC_ERROR("execute: plan NULL", &op, NULL, op.x, &w, op.y, CONVBLAS_INVALID_ARGUMENT, "plan",
               "null");
    EXEC_ERROR("execute: input NULL", &op, op.plan, NULL, &w, op.y, CONVBLAS_INVALID_ARGUMENT,
               "input", "null");
    EXEC_ERROR("execute: weights NULL", &op, op.plan, op.x, NULL, op.y, CONVBLAS_INVALID_ARGUMENT,
               "weights", "null");
    EXEC_ERROR("execute: weights->kernel NULL", &op, op.plan, op.x, &w_nok, op.y,
               CONVBLAS_INVALID_ARGUMENT, "kernel", "null");
    EXEC_ERROR("execute: bias NULL with use_bias", &op, op.plan, op.x, &w_nob, op.y,
               CONVBLAS_INVALID_ARGUMENT, "bias", "null|use_bias");
    EXEC_ERROR("execute: output NULL", &op, op.plan, op.x, &w, NULL, CONVBLAS_INVALID_ARGUMENT,
               "output", "null");
    EXEC_OK("execute: valid (conv, bias)", op.plan, op.x, &w, op.y);
    operands_free(&op);

    /* CONV without bias: a NULL bias and a NULL pointwise kernel are fine */
    d = conv1d();
    operands_init(&op, &d, &s);
    w = (convblas_weights){.kernel = op.kernel};
    EXEC_OK("execute: conv, no bias, bias NULL", op.plan, op.x, &w, op.y);
    operands_free(&op);

    /* DEPTHWISE */
    d = depthwise1d();
    d.use_bias = true;
    d.depth_multiplier = 2;
    operands_init(&op, &d, &s);
    w = (convblas_weights){.bias = op.bias};
    EXEC_ERROR("execute: depthwise kernel NULL", &op, op.plan, op.x, &w, op.y,
               CONVBLAS_INVALID_ARGUMENT, "kernel", "null");
    w = (convblas_weights){.kernel = op.kernel};
    EXEC_ERROR("execute: depthwise bias NULL", &op, op.plan, op.x, &w, op.y,
               CONVBLAS_INVALID_ARGUMENT, "bias", "null|use_bias");
    operands_free(&op);

    /* SEPARABLE, 1D and 2D */
    for (int rank = 1; rank <= 2; rank++) {
        d = rank == 1 ? separable1d() : conv2d();
        d.op = CONVBLAS_SEPARABLE;
        d.use_bias = true;
        convblas_shape ss = rank == 1 ? shape1d() : shape2d();
        operands_init(&op, &d, &ss);
        w = (convblas_weights){.kernel = op.kernel, .bias = op.bias};
        EXEC_ERROR("execute: separable pointwise_kernel NULL", &op, op.plan, op.x, &w, op.y,
                   CONVBLAS_INVALID_ARGUMENT, "pointwise_kernel|pointwise", "null");
        w = (convblas_weights){.pointwise_kernel = op.pointwise, .bias = op.bias};
        EXEC_ERROR("execute: separable depthwise kernel NULL", &op, op.plan, op.x, &w, op.y,
                   CONVBLAS_INVALID_ARGUMENT, "kernel", "null");
        w = (convblas_weights){.kernel = op.kernel, .pointwise_kernel = op.pointwise};
        EXEC_ERROR("execute: separable bias NULL", &op, op.plan, op.x, &w, op.y,
                   CONVBLAS_INVALID_ARGUMENT, "bias", "null|use_bias");
        w = (convblas_weights){
            .kernel = op.kernel, .pointwise_kernel = op.pointwise, .bias = op.bias};
        EXEC_OK("execute: valid (separable)", op.plan, op.x, &w, op.y);
        operands_free(&op);
    }
}

/* Input and output overlapping: partly, wholly, either one first. Status and message; the
 * shared buffer must come back unchanged. */
static void overlap_case_(const char *name, const convblas_plan *plan, const float *x, float *y,
                          const convblas_weights *w, float *buf, int64_t buf_n,
                          convblas_status want, int line) {
    set_case("%s (line %d)", name, line);
    float *copy = malloc((size_t)buf_n * sizeof(float));
    memcpy(copy, buf, (size_t)buf_n * sizeof(float));
    prime();
    convblas_status st = convblas_execute(plan, x, w, y, NULL);
    CHECK_STATUS(st, want, "convblas_execute");
    if (want != CONVBLAS_OK) {
        check_message_(NEEDLES("overlap"), line);
        CHECK(memcmp(buf, copy, (size_t)buf_n * sizeof(float)) == 0);
    }
    free(copy);
}
#define OVERLAP(name, plan, x, y, w, buf, n, want)                                                 \
    overlap_case_((name), (plan), (x), (y), (w), (buf), (n), (want), __LINE__)

static void test_overlap(void) {
    const convblas_layer_desc descs[3] = {conv1d(), depthwise1d(), separable1d()};
    for (int l = 0; l < 3; l++) {
        convblas_shape s = shape1d();
        operands op;
        operands_init(&op, &descs[l], &s);
        convblas_weights w = {
            .kernel = op.kernel, .pointwise_kernel = op.pointwise, .bias = op.bias};
        int64_t in_n = op.in_n, out_n = op.out_n, n = in_n + out_n + 8;
        float *buf = filled(n, 0.25f);
        OVERLAP("overlap: output is input", op.plan, buf, buf, &w, buf, n,
                CONVBLAS_INVALID_ARGUMENT);
        OVERLAP("overlap: output starts at input's last float", op.plan, buf, buf + in_n - 1, &w,
                buf, n, CONVBLAS_INVALID_ARGUMENT);
        OVERLAP("overlap: output starts one float into input", op.plan, buf, buf + 1, &w, buf, n,
                CONVBLAS_INVALID_ARGUMENT);
        OVERLAP("overlap: input starts at output's last float", op.plan, buf + out_n - 1, buf, &w,
                buf, n, CONVBLAS_INVALID_ARGUMENT);
        OVERLAP("overlap: input starts inside output", op.plan, buf + 2, buf, &w, buf, n,
                CONVBLAS_INVALID_ARGUMENT);
        /* adjacent but disjoint: fine */
        OVERLAP("adjacent: output right after input", op.plan, buf, buf + in_n, &w, buf, n,
                CONVBLAS_OK);
        OVERLAP("adjacent: input right after output", op.plan, buf + out_n, buf, &w, buf, n,
                CONVBLAS_OK);
        free(buf);
        operands_free(&op);
    }
}

/* A huge but well-formed layer plans fine (nothing is allocated at planning time). */
static void test_big_but_valid(void) {
    convblas_layer_desc d = conv1d();
    d.filters = 64;
    convblas_shape s = {.batch = (int64_t)1 << 20, .spatial = {(int64_t)1 << 20}, .channels = 64};
    set_case("big but valid: output_shape");
    convblas_shape out;
    CHECK_STATUS(convblas_output_shape(&d, &s, &out), CONVBLAS_OK, "convblas_output_shape");
    CHECK(out.batch == s.batch && out.spatial[0] == s.spatial[0] - 2 && out.channels == 64);
    convblas_plan_options o = {.mode = CONVBLAS_ESTIMATE};
    convblas_plan *plan = PLAN_OK("big but valid: plan_create", d, s, &o);
    convblas_plan_destroy(plan);
}

/* Extreme but valid values: huge dilation, huge strides. Plans succeed, and every strategy
 * that accepts them computes the obvious answer without overflowing (the UBSan build checks
 * the arithmetic). One channel, one filter, no bias, linear. */
typedef struct extreme {
    const char *name;
    convblas_layer_desc d;
    int64_t length;
    float kernel[3];
    float expect[5]; /* for x = 1, 2, 3, 4, 5 */
    int64_t out_len;
} extreme;

static void test_extreme_valid(void) {
    const int64_t D = INT64_MAX / 2;
    const extreme cases_[] = {
        {"dilation INT64_MAX/2, causal: only the last tap lands",
         {.op = CONVBLAS_CONV,
          .rank = 1,
          .filters = 1,
          .kernel_size = {2},
          .dilation_rate = {D},
          .padding = CONVBLAS_CAUSAL},
         5,
         {0.5f, 2.0f},
         {2, 4, 6, 8, 10},
         5},
        {"depthwise, dilation INT64_MAX/2, causal",
         {.op = CONVBLAS_DEPTHWISE,
          .rank = 1,
          .kernel_size = {2},
          .dilation_rate = {D},
          .padding = CONVBLAS_CAUSAL},
         5,
         {0.5f, 2.0f},
         {2, 4, 6, 8, 10},
         5},
        {"dilation INT64_MAX/2, same: no tap lands",
         {.op = CONVBLAS_CONV,
          .rank = 1,
          .filters = 1,
          .kernel_size = {2},
          .dilation_rate = {D},
          .padding = CONVBLAS_SAME},
         5,
         {0.5f, 2.0f},
         {0, 0, 0, 0, 0},
         5},
        /* o * s + t * d overflows here; o * s - pad + t * d does not (fuzz_plan) */
        {"dilation INT64_MAX-1, same: no tap lands",
         {.op = CONVBLAS_CONV,
          .rank = 1,
          .filters = 1,
          .kernel_size = {2},
          .dilation_rate = {INT64_MAX - 1},
          .padding = CONVBLAS_SAME},
         5,
         {0.5f, 2.0f},
         {0, 0, 0, 0, 0},
         5},
        {"dilation INT64_MAX-1, causal: only the last tap lands",
         {.op = CONVBLAS_CONV,
          .rank = 1,
          .filters = 1,
          .kernel_size = {2},
          .dilation_rate = {INT64_MAX - 1},
          .padding = CONVBLAS_CAUSAL},
         5,
         {0.5f, 2.0f},
         {2, 4, 6, 8, 10},
         5},
        {"separable, dilation INT64_MAX-1, causal",
         {.op = CONVBLAS_SEPARABLE,
          .rank = 1,
          .filters = 1,
          .kernel_size = {2},
          .dilation_rate = {INT64_MAX - 1},
          .padding = CONVBLAS_CAUSAL},
         5,
         {0.5f, 2.0f},
         {2, 4, 6, 8, 10},
         5},
        {"dilation INT64_MAX (kernel 1), valid",
         {.op = CONVBLAS_CONV,
          .rank = 1,
          .filters = 1,
          .kernel_size = {1},
          .dilation_rate = {INT64_MAX}},
         5,
         {3.0f},
         {3, 6, 9, 12, 15},
         5},
        {"stride INT64_MAX, valid, kernel 1",
         {.op = CONVBLAS_CONV, .rank = 1, .filters = 1, .kernel_size = {1}, .strides = {INT64_MAX}},
         5,
         {3.0f},
         {3},
         1},
        {"stride INT64_MAX, same, kernel 3",
         {.op = CONVBLAS_CONV,
          .rank = 1,
          .filters = 1,
          .kernel_size = {3},
          .strides = {INT64_MAX},
          .padding = CONVBLAS_SAME},
         5,
         {1.0f, 10.0f, 100.0f},
         {321},
         1},
        {"stride INT64_MAX, causal, kernel 3",
         {.op = CONVBLAS_CONV,
          .rank = 1,
          .filters = 1,
          .kernel_size = {3},
          .strides = {INT64_MAX},
          .padding = CONVBLAS_CAUSAL},
         5,
         {1.0f, 10.0f, 100.0f},
         {100},
         1},
        {"stride and dilation INT64_MAX/2, same",
         {.op = CONVBLAS_CONV,
          .rank = 1,
          .filters = 1,
          .kernel_size = {3},
          .strides = {D},
          .dilation_rate = {D},
          .padding = CONVBLAS_SAME},
         5,
         {1.0f, 10.0f, 100.0f},
         {30},
         1}, /* pad_before 2^62 - 3: tap 1 reads x[2] */
    };
    const float x[5] = {1, 2, 3, 4, 5};
    for (size_t c = 0; c < sizeof cases_ / sizeof cases_[0]; c++) {
        const extreme *e = &cases_[c];
        convblas_shape s = {.batch = 1, .spatial = {e->length}, .channels = 1}, out;
        set_case("extreme valid: %s", e->name);
        CHECK_STATUS(convblas_output_shape(&e->d, &s, &out), CONVBLAS_OK, "convblas_output_shape");
        CHECK(out.spatial[0] == e->out_len && out.channels == 1);
        for (int i = -1; i < convblas_strategy_count(); i++) {
            const char *name = i < 0 ? NULL : convblas_strategy_name(i);
            set_case("extreme valid: %s (%s)", e->name, name ? name : "planner");
            convblas_plan_options o = {.strategy = name};
            convblas_plan *plan = NULL;
            convblas_status st = convblas_plan_create(&plan, &e->d, &s, &o);
            if (name && st == CONVBLAS_UNSUPPORTED) continue;
            if (!CHECK_STATUS(st, CONVBLAS_OK, "convblas_plan_create")) continue;
            float y[5] = {-1, -1, -1, -1, -1};
            const float one = 1.0f; /* SEPARABLE: the identity pointwise kernel */
            convblas_weights w = {.kernel = e->kernel, .pointwise_kernel = &one};
            if (CHECK_STATUS(convblas_execute(plan, x, &w, y, NULL), CONVBLAS_OK,
                             "convblas_execute")) {
                for (int64_t t = 0; t < e->out_len; t++)
                    if (!CHECK(fabsf(y[t] - e->expect[t]) <= 1e-4f))
                        fprintf(stderr, "  y[%lld] = %g, expected %g\n", (long long)t, (double)y[t],
                                (double)e->expect[t]);
                for (int64_t t = e->out_len; t < 5; t++) CHECK(y[t] == -1.0f);
            }
            convblas_plan_destroy(plan);
        }
    }

    /* A channel count past the BLAS integer range: well-formed, so no strategy able to run
     * it is UNSUPPORTED (not a crash, not a wrong status), and the message says why. */
    convblas_layer_desc d = conv1d();
    d.kernel_size[0] = 1;
    d.filters = 1;
    convblas_shape s = {.batch = 1, .spatial = {1}, .channels = (int64_t)1 << 31};
    set_case("channels 2^31 (past the BLAS int range)");
    prime();
    convblas_plan *plan = garbage_plan();
    convblas_status st = convblas_plan_create(&plan, &d, &s, NULL);
    CHECK(st == CONVBLAS_OK || st == CONVBLAS_UNSUPPORTED);
    if (st == CONVBLAS_UNSUPPORTED) {
        CHECK(plan == NULL);
        check_message_(NEEDLES("BLAS|integer|range"), __LINE__);
    } else {
        convblas_plan_destroy(plan);
    }
}

int main(void) {
    crash_report_install("test_errors", current, sizeof current);
    unsetenv("CONVBLAS_STRATEGY");
    unsetenv("CONVBLAS_NUM_THREADS");
    test_null_desc_pointers2();
    test_null_desc_pointers();
    test_enums_and_rank();
    test_sizes_and_negatives();
    test_too_large();
    test_options();
    test_unsupported();
    test_execute_pointers();
    test_overlap();
    test_big_but_valid();
    test_extreme_valid();
    printf("test_errors: %d cases, %d checks, %d failures\n", cases, checks, failures);
    return failures ? 1 : 0;
}
